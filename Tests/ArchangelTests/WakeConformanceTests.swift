import Archangel
import ArchangelSystem
import Glibc
import Testing

/// The delivery and idle promises of docs/efficiency.md, on every backend,
/// checked by counting rather than timing: a message sent right after
/// another reaches a blocked receiver with no further send (the trailing
/// edge), and an idle channel wakes nobody.
@Suite("Wake-up conformance", .serialized)
struct WakeConformanceTests {
    /// A long window, so that the second message surely falls within the
    /// window of the first one's wake-up, even on a loaded machine; the first
    /// comes 0.6 s after the receiver blocks, so it keeps blocking.
    static let policy = WaitPolicy(maxDeliveryDelay: .seconds(1), spin: .zero)

    /// Waits (bounded) until `condition` holds; false if it never did.
    static func eventually(_ condition: () -> Bool) -> Bool {
        for _ in 0..<10_000 {
            if condition() { return true }
            usleep(1_000)
        }
        return condition()
    }

    @Test("to_user: a message sent within a window of the last wake-up reaches the blocked receiver with no further send",
          arguments: Backends.all.map { $0 as any ConformanceTarget & Sendable })
    func trailingEdgeToUser(target: any ConformanceTarget & Sendable) throws {
        let c = try target.open(configuration: .default, waitPolicy: Self.policy)
        defer { c.close() }
        let user = c.user
        let receiver = try PeerThread {
            for i in 0..<2 {
                let m = try user.receive(timeout: .seconds(10))
                #expect(m.bytes == pattern(16, seed: i))
            }
        }
        // The receiver blocks, the first message wakes it (the leading edge);
        // it comes more than half a window later, so the receiver stays in the
        // blocking phase (fewer than two messages per window)...
        #expect(Self.eventually { user.receiver.counters.load(.waits) >= 1 })
        usleep(600_000)
        try c.peer.send(.syscallEvent, bytes: pattern(16, seed: 0))
        // ...and it blocks again, within the window of that wake-up.
        #expect(Self.eventually { user.receiver.counters.load(.waits) >= 2 })
        try c.peer.send(.syscallEvent, bytes: pattern(16, seed: 1))
        // Nothing else is sent: the trailing edge must deliver it.
        try receiver.join()
        let stats = try #require(c.statistics())
        #expect(stats.toUser.messagesReceived == 2)
        #expect(stats.toUser.notificationsCoalesced >= 1, "the second wake-up went to the trailing edge")
    }

    @Test("to_kernel: a message sent within a window of the last wake-up reaches the blocked peer with no further send",
          arguments: Backends.all.map { $0 as any ConformanceTarget & Sendable })
    func trailingEdgeToKernel(target: any ConformanceTarget & Sendable) throws {
        let c = try target.open(configuration: .default, waitPolicy: Self.policy)
        defer { c.close() }
        let peer = c.peer
        let receiver = try PeerThread {
            for i in 0..<2 {
                let m = try peer.receive(timeout: .seconds(10))
                #expect(m.bytes == pattern(16, seed: i))
            }
        }
        let waits = { c.statistics()?.toKernel.waits ?? 0 }
        #expect(Self.eventually { waits() >= 1 })
        usleep(600_000)
        try c.user.send(.aiResponse, bytes: pattern(16, seed: 0))
        #expect(Self.eventually { waits() >= 2 })
        try c.user.send(.aiResponse, bytes: pattern(16, seed: 1))
        try receiver.join()
        #expect(c.user.sender.counters.load(.notificationsCoalesced) >= 1, "the second wake-up went to the trailing edge")
    }

    @Test("an idle channel wakes nobody: no signal, no timed poll, no timer left armed",
          arguments: Backends.all.map { $0 as any ConformanceTarget & Sendable })
    func idleChannelMakesNoWakeups(target: any ConformanceTarget & Sendable) throws {
        let c = try target.open(configuration: .default, waitPolicy: .balanced)
        defer { c.close() }
        // A burst first, so that the receiver goes through timed polling and back.
        for i in 0..<200 { try c.peer.send(.syscallEvent, bytes: pattern(64, seed: i)) }
        for _ in 0..<200 { _ = try c.user.receive(timeout: .seconds(5)) }
        let counters = c.user.receiver.counters
        // Let any trailing edge fire, and the receiver's timed polls run out.
        #expect(throws: ChannelError.timedOut) { try c.user.receive(timeout: .milliseconds(50)) }
        // No timer left armed for this channel shows as no signal and no
        // extra wake-up below (the process-wide WakeTimer.shared.pendingCount
        // also counts other suites' channels, which run meanwhile).
        let before = (waits: counters.load(.waits), polls: counters.load(.timedWaits),
                      sent: c.statistics()?.toUser.notificationsSent ?? 0)
        // One blocking sleep for the whole idle second, ended by its timeout.
        #expect(throws: ChannelError.timedOut) { try c.user.receive(timeout: .seconds(1)) }
        #expect(counters.load(.timedWaits) == before.polls, "no timed poll while idle")
        #expect(counters.load(.waits) == before.waits + 1, "the one blocking sleep, not woken before its timeout")
        #expect((c.statistics()?.toUser.notificationsSent ?? 0) == before.sent, "nobody signalled")
    }
}
