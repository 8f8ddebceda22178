import Archangel
import CArchangel
import Glibc
import Synchronization
import Testing

/// The conformance suite: what every backend must do, run against each one.
@Suite("Conformance", .serialized)
struct ConformanceTests {
    @Test("every type and priority arrives intact in both directions", arguments: Backends.all.map { $0 as any ConformanceTarget & Sendable })
    func everyTypeAndPriorityRoundTrips(target: any ConformanceTarget & Sendable) throws {
        let c = try target.open(configuration: .default)
        defer { c.close() }
        var lastSequence: UInt64 = 0
        for type in MessageType.allCases {
            for priority in MessagePriority.allCases {
                let seed = Int(type.rawValue) * 4 + Int(priority.rawValue)
                let before = archangel_monotonic_ns()
                try c.peer.send(type, priority: priority, bytes: pattern(seed * 3, seed: seed))
                let down = try c.user.receive(timeout: .seconds(5))
                #expect(down.type == type && down.priority == priority)
                #expect(down.bytes == pattern(seed * 3, seed: seed))
                #expect(down.sequence == lastSequence + 1)
                // The stamp is CLOCK_MONOTONIC read during the send, on every backend
                // (the kernel's ktime_get_ns() is the same clock): never ahead of ours.
                #expect(down.timestamp >= before && down.timestamp <= archangel_monotonic_ns())
                lastSequence = down.sequence
                try c.user.send(type, priority: priority, bytes: pattern(seed, seed: seed + 1))
                let up = try c.peer.receive(timeout: .seconds(5))
                #expect(up.type == type && up.priority == priority && up.bytes == pattern(seed, seed: seed + 1))
            }
        }
    }

    @Test("payloads above the threshold travel through the pool, scattered and reassembled",
          arguments: Backends.all.map { $0 as any ConformanceTarget & Sendable })
    func largePayloadsUseThePool(target: any ConformanceTarget & Sendable) throws {
        let c = try target.open(configuration: .default)
        defer { c.close() }
        for size in [1025, 4096, 4097, 64 * 1024, c.user.maxPayload] {
            let bytes = pattern(size, seed: size)
            try c.peer.send(.aiRequest, bytes: bytes)
            let (flags, segments, copy) = try c.user.receive(timeout: .seconds(5)) { view in
                (view.flags, view.segmentCount, view.bytes)
            }
            #expect(flags.contains(.dma))
            #expect(segments == (size + 4095) / 4096)
            #expect(copy == bytes)
            try c.user.send(.aiResponse, bytes: bytes)
            #expect(try c.peer.receive(timeout: .seconds(5)).bytes == bytes)
        }
        let stats = try #require(c.statistics())
        #expect(stats.toUser.poolTransfers == 5 && stats.toKernel.poolTransfers == 5)
        #expect(stats.toUser.poolInUse == 0)
    }

    @Test("the express lane overtakes a full normal lane", arguments: Backends.all.map { $0 as any ConformanceTarget & Sendable })
    func expressLaneOvertakes(target: any ConformanceTarget & Sendable) throws {
        let c = try target.open(configuration: .small)
        defer { c.close() }
        var routine = 0
        while try c.peer.trySend(.syscallEvent, priority: .low, bytes: pattern(40, seed: routine)) { routine += 1 }
        #expect(routine > 10)
        try c.peer.send(.control, priority: .critical, bytes: [9, 9, 9], timeout: .seconds(1))
        try c.peer.send(.networkEvent, priority: .high, bytes: [8], timeout: .seconds(1))
        #expect(try c.user.receive(timeout: .seconds(1)).priority == .critical)
        #expect(try c.user.receive(timeout: .seconds(1)).priority == .high)
        for i in 0..<routine {
            let m = try c.user.receive(timeout: .seconds(1))
            #expect(m.priority == .low && m.bytes == pattern(40, seed: i))
        }
    }

    @Test("a full ring makes a non-blocking send say would-block and counts it",
          arguments: Backends.all.map { $0 as any ConformanceTarget & Sendable })
    func fullRingWouldBlock(target: any ConformanceTarget & Sendable) throws {
        let c = try target.open(configuration: .small)
        defer { c.close() }
        var sent = 0
        while try c.user.trySend(.memoryEvent, bytes: [UInt8](repeating: 1, count: 100)) { sent += 1 }
        #expect(try c.user.trySend(.memoryEvent, bytes: [1]) == false)
        #expect(throws: ChannelError.timedOut) {
            try c.user.send(.memoryEvent, bytes: [1], timeout: .milliseconds(20))
        }
        #expect(try #require(c.statistics()).toKernel.queueFull >= 2)
        for _ in 0..<sent { _ = try c.peer.receive(timeout: .seconds(1)) }
        #expect(try c.user.trySend(.memoryEvent, bytes: [1]))
    }

    @Test("a blocking receive times out, then wakes for a late message",
          arguments: Backends.all.map { $0 as any ConformanceTarget & Sendable })
    func blockingReceiveTimesOutAndWakes(target: any ConformanceTarget & Sendable) throws {
        let c = try target.open(configuration: .default)
        defer { c.close() }
        #expect(throws: ChannelError.timedOut) { try c.user.receive(timeout: .milliseconds(30)) }
        #expect(throws: ChannelError.timedOut) { try c.user.receive(timeout: .zero) }
        let peer = c.peer
        let late = try PeerThread {
            usleep(50_000)
            try peer.send(.syscallEvent, bytes: [42])
        }
        let m = try c.user.receive(timeout: .seconds(10))
        #expect(m.bytes == [42])
        try late.join()
        #expect(try #require(c.statistics()).toUser.waits >= 1)
    }

    @Test("a message too large for the caller's buffer stays queued",
          arguments: Backends.all.map { $0 as any ConformanceTarget & Sendable })
    func receiveIntoKeepsOversizedMessage(target: any ConformanceTarget & Sendable) throws {
        let c = try target.open(configuration: .default)
        defer { c.close() }
        for size in [100, 3000] {
            try c.peer.send(.networkEvent, bytes: pattern(size, seed: 1))
            let small = UnsafeMutableRawBufferPointer.allocate(byteCount: 50, alignment: 8)
            defer { small.deallocate() }
            #expect(throws: ChannelError.bufferTooSmall(needed: size, available: 50)) {
                try c.user.receive(into: small, timeout: .seconds(1))
            }
            let big = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
            defer { big.deallocate() }
            let info = try c.user.receive(into: big, timeout: .seconds(1))
            #expect(info.type == .networkEvent && info.count == size)
            #expect(Array(big[0..<size]) == pattern(size, seed: 1))
        }
    }

    @Test("request awaits the response that names it, events flow past it",
          arguments: Backends.all.map { $0 as any ConformanceTarget & Sendable })
    func requestResponse(target: any ConformanceTarget & Sendable) async throws {
        let c = try target.open(configuration: .default)
        defer { c.close() }
        let peer = c.peer
        let responder = try PeerThread {
            for _ in 0..<3 {
                let request = try peer.receive(timeout: .seconds(10))
                try peer.send(.syscallEvent, bytes: [7])  // unrelated traffic first
                try peer.respond(to: request, bytes: request.bytes.reversed())
            }
        }
        for i in 0..<3 {
            let response = try await c.user.request(.aiRequest, bytes: [UInt8(i), 1, 2])
            #expect(response.type == .aiResponse && response.bytes == [2, 1, UInt8(i)])
        }
        try responder.join()
        var events = 0
        for try await message in c.user.messages {
            #expect(message.type == .syscallEvent)
            events += 1
            if events == 3 { break }
        }
        #expect(throws: ChannelError.receiverInUse) { try c.user.tryReceive() }
    }

    @Test("a loan sends without a copy", arguments: Backends.all.map { $0 as any ConformanceTarget & Sendable })
    func loanSendsInPlace(target: any ConformanceTarget & Sendable) throws {
        let c = try target.open(configuration: .default)
        defer { c.close() }
        let bytes = pattern(10_000, seed: 5)
        let loan = try c.user.loan(capacity: bytes.count)
        #expect(loan.segmentCount == 3)
        bytes.withUnsafeBytes { loan.write($0) }
        try loan.commit(.aiRequest, priority: .high, length: bytes.count)
        let m = try c.peer.receive(timeout: .seconds(1))
        #expect(m.flags.contains(.dma) && m.bytes == bytes && m.priority == .high)
        let unused = try c.user.loan(capacity: 100)
        unused.cancel()
        #expect(c.user.sender.poolBuffersInUse <= 3)
    }

    @Test("closing wakes a blocked receiver with closed", arguments: Backends.all.map { $0 as any ConformanceTarget & Sendable })
    func closeWakesBlockedReceiver(target: any ConformanceTarget & Sendable) throws {
        let c = try target.open(configuration: .default)
        let user = c.user
        let outcome = Mutex<ChannelError?>(nil)
        let blocked = try PeerThread {
            do { _ = try user.receive(timeout: .seconds(30)) } catch let error as ChannelError { outcome.withLock { $0 = error } }
        }
        usleep(50_000)
        c.close()
        try blocked.join()
        #expect(outcome.withLock { $0 } == .closed)
        #expect(throws: ChannelError.closed) { try c.peer.send(.control, bytes: [1]) }
    }

    @Test("statistics count both directions and a too-large payload is rejected and counted",
          arguments: Backends.all.map { $0 as any ConformanceTarget & Sendable })
    func statisticsAndRejection(target: any ConformanceTarget & Sendable) throws {
        let c = try target.open(configuration: .default)
        defer { c.close() }
        for i in 0..<10 { try c.peer.send(.stats, bytes: pattern(i, seed: i)) }
        for _ in 0..<10 { _ = try c.user.receive(timeout: .seconds(1)) }
        #expect(throws: ChannelError.payloadTooLarge(size: c.user.maxPayload + 1, limit: c.user.maxPayload)) {
            try c.user.send(.aiRequest, bytes: [UInt8](repeating: 0, count: c.user.maxPayload + 1))
        }
        let stats = try #require(c.statistics())
        #expect(stats.health == .active)
        #expect(stats.toUser.messagesSent == 10 && stats.toUser.messagesReceived == 10)
        #expect(stats.toUser.bytesSent == 45 && stats.toUser.bytesReceived == 45)
        #expect(stats.toKernel.rejected == 1 && stats.toKernel.messagesSent == 0)
    }

    @Test("a batch receive delivers in order, express first, up to its limit",
          arguments: Backends.all.map { $0 as any ConformanceTarget & Sendable })
    func batchReceive(target: any ConformanceTarget & Sendable) throws {
        let c = try target.open(configuration: .default)
        defer { c.close() }
        for i in 0..<10 { try c.peer.send(.syscallEvent, priority: .normal, bytes: [UInt8(i)]) }
        try c.peer.send(.control, priority: .critical, bytes: [99])
        var seen: [UInt8] = []
        #expect(try c.user.receiver.tryReceiveBatch(limit: 4) { seen.append($0.contiguousBytes![0]) } == 4)
        #expect(seen == [99, 0, 1, 2])
        #expect(try c.user.receiver.tryReceiveBatch(limit: 100) { seen.append($0.contiguousBytes![0]) } == 7)
        #expect(seen == [99] + Array(0..<10))
        #expect(try c.user.receiver.tryReceiveBatch(limit: 100) { _ in } == 0)
    }
}
