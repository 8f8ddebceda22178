@testable import Archangel
import Glibc
import Synchronization
import Testing

/// What happens to the whole channel when one side finds its memory scribbled over.
@Suite("Channel failure", .serialized)
struct CorruptionRecoveryTests {
    @Test("a corrupted record fails the channel for both sides, and a blocked peer wakes with the same error")
    func corruptionClosesTheChannelForBothSides() throws {
        let manager = try CommManager()
        let id = try manager.createChannel()
        defer { manager.destroyChannel(id) }
        let kernel = try manager.channel(id)
        let user = try Channel.open(id, backend: .inProcess(manager))

        let blockedOutcome = Mutex<ChannelError?>(nil)
        let blocked = try PeerThread {
            do { _ = try user.receive(timeout: .seconds(30)) } catch let error as ChannelError {
                blockedOutcome.withLock { $0 = error }
            }
        }
        usleep(20_000)
        try user.send(.aiRequest, bytes: [1, 2, 3])
        // Scribble over the record's magic, as a hostile user-side process could.
        let record = kernel.memory.base + kernel.layout.toKernel.normal.data
        record.storeBytes(of: UInt32(0xdead_beef), as: UInt32.self)

        let expected = ChannelError.corrupted(.badMagic(ring: "to_kernel.normal", position: 0, found: 0xdead_beef))
        #expect(throws: expected) { try kernel.receive(timeout: .seconds(1)) }
        try blocked.join()
        #expect(blockedOutcome.withLock { $0 } == expected)
        #expect(throws: expected) { try user.send(.control, bytes: [1]) }
        let stats = try #require(manager.statistics().channels.first)
        #expect(stats.health == .failed)
        #expect(stats.toKernel.errors == 1)
    }
}
