import ArchangelCore
import ArchangelSystem

/// The spin-then-sleep loop of blocking sends, and of receives without an
/// adaptive policy (`.lowLatency`).
///
/// `attempt` returns nil when done, or what it waits for; its argument is
/// true on the first try only, so that a blocked call counts one
/// `queue_full` event, not one per retry. `prepare` runs the need-wakeup
/// protocol and says whether sleeping is safe; `finish` clears the flag
/// afterwards. `stopped`, when given, is checked after every wake-up and
/// ends the wait with the link's `closed` error.
func spinThenSleep<W>(link: ChannelLink, event: EventFD, spin: Duration, timeout: Duration?,
                      stopped: (() -> Bool)? = nil,
                      attempt: (_ first: Bool) throws(ChannelError) -> W?,
                      prepare: (W) throws(ChannelError) -> Bool,
                      finish: (W) -> Void) throws(ChannelError) {
    let clock = ContinuousClock()
    var now: ContinuousClock.Instant? = nil
    var deadline: ContinuousClock.Instant? = nil
    var spinUntil: ContinuousClock.Instant? = nil
    var polls = 0
    var first = true
    while true {
        guard link.isOpen, stopped?() != true else { throw link.closedError }
        guard let waitingFor = try link.guarding({ () throws(ChannelError) in try attempt(first) }) else { return }
        first = false
        // The clock is read every 32 polls only: it costs more than a poll.
        if polls & 31 == 0 {
            let t = clock.now
            if now == nil {
                deadline = timeout.map { t.advanced(by: $0) }
                spinUntil = t.advanced(by: spin)
            }
            now = t
            if let deadline, t >= deadline { throw .timedOut }
        }
        polls += 1
        if now! < spinUntil! { continue }
        var remaining: Duration? = nil
        if let deadline {
            remaining = now!.duration(to: deadline)
            if remaining! <= .zero { throw .timedOut }
        }
        if try link.guarding({ () throws(ChannelError) in try prepare(waitingFor) }) {
            defer { finish(waitingFor) }
            guard link.isOpen else { throw link.closedError }
            _ = try event.wait(timeout: remaining)
        }
        // After a wake-up, poll again before the next sleep; re-read the clock first.
        polls = 0
        spinUntil = now
    }
}
