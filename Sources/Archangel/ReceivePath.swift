import ArchangelCore
import ArchangelSystem
import CArchangel

/// Everything a blocking receive needs, apart from the `Channel` itself: the
/// receiver, the data eventfd, the link, and the adaptive wait state.
///
/// Kept apart so that a receive pump can block in it without holding the
/// channel: dropping the channel then still runs its `deinit`, which stops
/// the pump. Touched by the receiving thread only (one at a time, like the
/// receiver), except `stop`.
final class ReceivePath: @unchecked Sendable {
    let receiver: MessageReceiver
    /// This endpoint's sender: a send since the last empty ring means a reply may come soon.
    let sender: MessageSender
    let dataReady: EventFD
    let link: ChannelLink
    let policy: WaitPolicy
    /// What the receiver's memory and side depend on (the mapping, the host
    /// connection): a pump still inside a receive keeps them alive.
    let owners: [AnyObject]
    private var adaptive: AdaptiveReceiveWait
    /// Whether this thread's timer slack was lowered for a short window already.
    private var slackSet = false

    init(receiver: MessageReceiver, sender: MessageSender, dataReady: EventFD, link: ChannelLink, policy: WaitPolicy,
         owners: [AnyObject]) {
        self.owners = owners
        self.receiver = receiver
        self.sender = sender
        self.dataReady = dataReady
        self.link = link
        self.policy = policy
        adaptive = AdaptiveReceiveWait(window: policy.windowNanoseconds, spinBudget: policy.spinNanoseconds)
    }

    /// Retries `attempt` until it yields a value, waiting by the policy between tries.
    ///
    /// - Parameters:
    ///   - timeout: nil waits as long as it takes.
    ///   - stopped: checked after every wake-up; true ends the wait with `closed`
    ///     (a receive pump being stopped wakes the eventfd first).
    func receive<R>(timeout: Duration?, stopped: (() -> Bool)? = nil,
                    _ attempt: () throws(ChannelError) -> R?) throws(ChannelError) -> R {
        if policy.adaptive { return try adaptiveLoop(timeout: timeout, stopped: stopped, attempt) }
        var result: R?
        try spinThenSleep(link: link, event: dataReady, spin: policy.spin, timeout: timeout, stopped: stopped) {
            (_) throws(ChannelError) -> Bool? in
            result = try attempt()
            return result == nil ? true : nil
        } prepare: { (_: Bool) throws(ChannelError) -> Bool in
            try receiver.prepareToSleep()
        } finish: { _ in
            receiver.finishSleep()
        }
        return result!
    }

    /// The receive loop of an adaptive policy (docs/efficiency.md): block with
    /// need-wakeup armed on both lanes; poll once per window with only the
    /// express lane armed while messages arrive at least twice per window;
    /// spin only while a reply is expected within the spin budget.
    ///
    /// The clock is read only when the ring is empty, never per message.
    private func adaptiveLoop<R>(timeout: Duration?, stopped: (() -> Bool)?,
                                 _ attempt: () throws(ChannelError) -> R?) throws(ChannelError) -> R {
        var deadline: UInt64? = nil
        while true {
            guard link.isOpen, stopped?() != true else { throw link.closedError }
            if let result = try link.guarding(attempt) { return result }
            let now = archangel_monotonic_ns()
            if let timeout, deadline == nil { deadline = now &+ WaitPolicy.nanoseconds(timeout) }
            if let deadline, now >= deadline { throw .timedOut }
            // The sender's counter, not its sequence: another thread may be
            // sending on this endpoint, and the counter is the atomic one.
            var action = adaptive.onEmpty(now: now, received: receiver.counters.load(.messagesReceived),
                                          sent: sender.counters.load(.messagesSent))
            if case .spin(let until) = action {
                if let result = try spin(until: min(until, deadline ?? .max), attempt) { return result }
                action = adaptive.afterSpin()
            }
            let remaining = deadline.map { $0 > now ? $0 - now : 0 }
            switch action {
            case .poll(let window) where policy.pacedPolls:
                lowerTimerSlack(for: window)
                if try link.guarding({ () throws(ChannelError) in try receiver.prepareToPacedPoll() }) {
                    defer { receiver.finishSleep() }
                    guard link.isOpen else { throw link.closedError }
                    _ = try dataReady.wait(timeout: .nanoseconds(Int64(min(window, remaining ?? .max))))
                }
            case .poll(let window):
                lowerTimerSlack(for: window)
                if try link.guarding({ () throws(ChannelError) in try receiver.prepareToPoll() }) {
                    defer { receiver.finishPoll() }
                    guard link.isOpen else { throw link.closedError }
                    _ = try dataReady.wait(timeout: .nanoseconds(Int64(min(window, remaining ?? .max))))
                }
            case .block, .spin:
                if try link.guarding({ () throws(ChannelError) in try receiver.prepareToSleep() }) {
                    defer { receiver.finishSleep() }
                    guard link.isOpen else { throw link.closedError }
                    _ = try dataReady.wait(timeout: remaining.map { .nanoseconds(Int64(min($0, UInt64(Int64.max)))) })
                }
            }
        }
    }

    /// Polls `attempt` until `until` (the clock read every 32 polls: it costs more than a poll).
    private func spin<R>(until: UInt64, _ attempt: () throws(ChannelError) -> R?) throws(ChannelError) -> R? {
        var polls = 0
        while true {
            guard link.isOpen else { throw link.closedError }
            if let result = try link.guarding(attempt) { return result }
            polls += 1
            if polls & 31 == 0 && archangel_monotonic_ns() >= until { return nil }
        }
    }

    /// A timed poll of a short window must not oversleep by the thread's
    /// default 50 µs of timer slack: lowered once, to a twentieth of the window.
    private func lowerTimerSlack(for window: UInt64) {
        let wanted = window / 20
        guard !slackSet, wanted < 50_000 else { return }
        slackSet = true
        _ = archangel_set_timer_slack(max(wanted, 1_000))
    }
}
