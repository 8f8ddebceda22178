import Archangel
import ArchangelSystem
import Glibc
import Synchronization
import Testing

/// Messages for the long stress test: 10^7 by default; the sanitizer run
/// sets ARCHANGEL_STRESS_MESSAGES lower (TSan slows every access ~10x).
let stressMessages: Int = {
    if let text = getenv("ARCHANGEL_STRESS_MESSAGES"), let value = Int(String(cString: text)), value > 0 { return value }
    return 10_000_000
}()

/// Two threads, real contention. These also run under `--sanitize=thread` (scripts/test).
@Suite("Concurrency", .serialized)
struct ConcurrencyTests {
    @Test("ten million messages cross two threads in order, none lost or repeated")
    func tenMillionMessagesInOrder() throws {
        let c = try InProcessTarget().open(configuration: .default)
        defer { c.close() }
        let total = stressMessages
        let peer = c.peer as! Channel  // the in-process peer is a Channel
        let producer = try PeerThread {
            var payload = [UInt8](repeating: 0, count: 24)
            for i in 0..<total {
                payload.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(i), as: UInt64.self) }
                // Alternate lanes and batch publication, as a busy sensor would.
                let priority: MessagePriority = i % 1000 == 0 ? .high : .normal
                try payload.withUnsafeBytes { bytes in
                    while true {
                        switch try peer.sender.trySend(type: .syscallEvent, priority: priority, payload: bytes,
                                                       publish: i % 16 == 15 || i == total - 1) {
                        case .sent: return
                        case .wouldBlock: peer.sender.publish()
                        }
                    }
                }
            }
        }
        var lastNormal: UInt64 = 0, lastExpress: UInt64 = 0
        var lastSequence = [UInt64](repeating: 0, count: 2)
        var received = 0, outOfOrder = 0
        while received < total {
            let ok = try c.user.receive(timeout: .seconds(30)) { view -> Bool in
                let value = view.contiguousBytes!.loadUnaligned(as: UInt64.self) + 1
                let lane = view.priority.lane.rawValue
                // Within a lane, payload numbers and sequence numbers both strictly increase.
                let inOrder: Bool
                if view.priority.lane == .express {
                    inOrder = value > lastExpress && value % 1000 == 1
                    lastExpress = value
                } else {
                    inOrder = value > lastNormal
                    lastNormal = value
                }
                let sequenceOK = view.sequence > lastSequence[lane] && view.sequence == value
                lastSequence[lane] = view.sequence
                return inOrder && sequenceOK
            }
            if !ok { outOfOrder += 1 }
            received += 1
        }
        try producer.join()
        #expect(outOfOrder == 0)
        #expect(try c.user.tryReceive() == nil)
        let stats = try #require(c.statistics())
        #expect(stats.toUser.messagesSent == UInt64(total) && stats.toUser.messagesReceived == UInt64(total))
        #expect(stats.toUser.errors == 0)
    }

    @Test("no wake-up is lost when both sides sleep at every chance")
    func noLostWakeups() throws {
        // Sleep at once: every empty ring or full ring goes through the
        // need-wakeup protocol, and a lost wake-up shows as a 10 s timeout.
        let manager = try CommManager(configuration: .init(channel: .small, waitPolicy: .sleepAtOnce))
        let id = try manager.createChannel()
        defer { manager.destroyChannel(id) }
        let kernel = try manager.channel(id)
        let user = try Channel.open(id, backend: .inProcess(manager))
        let total = min(stressMessages / 50, 200_000)
        let producer = try PeerThread {
            var rng = SplitMix(seed: 7)
            for i in 0..<total {
                try kernel.send(.networkEvent, bytes: [UInt8(truncatingIfNeeded: i)], timeout: .seconds(10))
                if rng.next() % 64 == 0 { usleep(UInt32(rng.next() % 50)) }
            }
        }
        var rng = SplitMix(seed: 11)
        for i in 0..<total {
            let m = try user.receive(timeout: .seconds(10))
            #expect(m.bytes == [UInt8(truncatingIfNeeded: i)])
            if rng.next() % 64 == 0 { usleep(UInt32(rng.next() % 50)) }
        }
        try producer.join()
        let stats = try #require(manager.statistics().channels.first)
        #expect(stats.toUser.waits > 0)
        #expect(stats.toUser.notificationsSent > 0)
    }

    @Test("a sender blocked on an empty pool is woken when buffers come back")
    func poolExhaustionBlocksAndRecovers() throws {
        let manager = try CommManager(configuration: .init(channel: .small, waitPolicy: .sleepAtOnce))
        let id = try manager.createChannel()
        defer { manager.destroyChannel(id) }
        let kernel = try manager.channel(id)
        let user = try Channel.open(id, backend: .inProcess(manager))
        // 8 KiB payloads use all 8 pool buffers and are too big to copy inline:
        // every send waits for the previous message's buffers.
        let total = stressMessages >= 1_000_000 ? 2_000 : 300
        let producer = try PeerThread {
            for i in 0..<total { try kernel.send(.aiRequest, bytes: pattern(8192, seed: i), timeout: .seconds(10)) }
        }
        for i in 0..<total {
            let ok = try user.receive(timeout: .seconds(10)) { view in
                view.flags.contains(.dma) && view.segmentCount == 8 && view.bytes == pattern(8192, seed: i)
            }
            #expect(ok)
        }
        try producer.join()
        let stats = try #require(manager.statistics().channels.first)
        #expect(stats.toUser.poolTransfers == UInt64(total))
        #expect(stats.toUser.copyFallbacks == 0)
        #expect(stats.toUser.poolInUse == 0)
    }

    @Test("requests from one task and events from the peer interleave under load")
    func requestsUnderLoad() async throws {
        let c = try InProcessTarget().open(configuration: .default)
        defer { c.close() }
        let peer = c.peer as! Channel  // the in-process peer is a Channel
        let requests = stressMessages >= 1_000_000 ? 2_000 : 300
        let responder = try PeerThread {
            for _ in 0..<requests {
                let request = try peer.receive(timeout: .seconds(10))
                try peer.send(.memoryEvent, bytes: [1])
                try peer.respond(to: request, bytes: request.bytes)
            }
        }
        for i in 0..<requests {
            let bytes = withUnsafeBytes(of: UInt32(i)) { Array($0) }
            let response = try await c.user.request(bytes: bytes)
            #expect(response.bytes == bytes)
        }
        try responder.join()
        var events = 0
        for try await _ in c.user.messages {
            events += 1
            if events == requests { break }
        }
        #expect(events == requests)
    }
}

/// A small deterministic generator for test randomness.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
