import Archangel
import ArchangelSystem
import Glibc
import Testing

/// The held receive behind the C and Python bindings (`Channel.receiveHeld`,
/// `MessageReceiver.tryHoldBatch`/`release`): lent payloads stay valid and
/// untouched until released, nothing is lost or delivered twice. Also runs
/// under `--sanitize=thread` (scripts/test).
@Suite("Held receive")
struct HeldReceiveTests {
    func pair(_ configuration: ChannelConfiguration = .default) throws -> (CommManager, Channel, Channel) {
        let manager = try CommManager(configuration: .init(maxChannels: 1))
        let id = try manager.createChannel(configuration: configuration)
        return (manager, try manager.channel(id), try manager.userEndpoint(id))
    }

    @Test("held inline payloads keep their ring space until release, then all arrive once, in order")
    func heldInlinePayloadsStayIntact() throws {
        let (manager, kernel, user) = try pair()
        defer { withExtendedLifetime(manager) {} }
        var sent = 0
        while try kernel.trySend(.networkEvent, bytes: [UInt8](repeating: UInt8(sent & 0xff), count: 64)) { sent += 1 }
        var views: [UnsafeRawBufferPointer] = []
        var sequences: [UInt64] = []
        let held = try user.receiveHeld(limit: 64, timeout: .zero) { view in
            views.append(view.contiguousBytes!)
            sequences.append(view.sequence)
        }
        #expect(held.count == 64 && sequences == Array(1...64))
        // Nothing was released: the ring is still full for the sender.
        #expect(try kernel.trySend(.networkEvent, bytes: [UInt8](repeating: 0xee, count: 64)) == false)
        for (i, view) in views.enumerated() { #expect(view.allSatisfy { $0 == UInt8(i & 0xff) }) }
        try user.release(held)
        var received = 64
        while received < sent {
            let more = try user.receiveHeld(limit: 256, timeout: .zero) { view in
                #expect(view.sequence == UInt64(received + 1))
                received += 1
            }
            try user.release(more)
        }
        #expect(received == sent)
        #expect(try user.tryReceive { _ in 0 } == nil)
        let base = user.memoryBase
        #expect(views.allSatisfy { $0.baseAddress! >= base && $0.baseAddress! + $0.count <= base + user.memorySize })
    }

    @Test("a held pool message keeps its buffers until release, which returns them")
    func heldPoolMessage() throws {
        let (manager, kernel, user) = try pair()
        defer { withExtendedLifetime(manager) {} }
        let payload = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try kernel.send(.memoryEvent, bytes: payload)
        try kernel.send(.memoryEvent, bytes: payload)
        var copy: [UInt8] = []
        var segments = 0
        let held = try user.receiveHeld(limit: 8, timeout: .seconds(1)) { view in
            copy = view.bytes
            segments = view.segmentCount
            let base = user.memoryBase
            for i in 0..<view.segmentCount {
                let piece = view.segment(i)
                #expect(piece.baseAddress! >= base && piece.baseAddress! + piece.count <= base + user.memorySize)
            }
        }
        #expect(held.count == 1)  // a pool message ends a batch
        #expect(copy == payload && segments == 3)
        #expect(kernel.sender.poolBuffersInUse == 6)
        try user.release(held)
        try kernel.sender.reclaimBuffers()
        #expect(kernel.sender.poolBuffersInUse == 3)
        let second = try user.receiveHeld(limit: 8, timeout: .seconds(1)) { view in #expect(view.count == 10_000) }
        try user.release(second)
        try kernel.sender.reclaimBuffers()
        #expect(kernel.sender.poolBuffersInUse == 0)
    }

    @Test("two threads: 200,000 messages through held batches, in order, none lost or repeated")
    func twoThreads() throws {
        let (manager, kernel, user) = try pair()
        defer { withExtendedLifetime(manager) {} }
        let count = 200_000
        let sender = try SystemThread(name: "held-sender") {
            var value = 0
            while value < count {
                try? withUnsafeBytes(of: value) { raw in
                    try kernel.send(.syscallEvent, bytes: raw, timeout: .seconds(10))
                }
                value += 1
            }
        }
        var next = 0
        var ok = true
        while next < count {
            let held = try user.receiveHeld(limit: 128, timeout: .seconds(10)) { view in
                let value = view.contiguousBytes!.loadUnaligned(as: Int.self)
                if value != next { ok = false }
                next += 1
            }
            try user.release(held)
        }
        sender.join()
        #expect(ok && next == count)
        #expect(user.receiver.counters.load(.messagesReceived) == UInt64(count))
    }
}
