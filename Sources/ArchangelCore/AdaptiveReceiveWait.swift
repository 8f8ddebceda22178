/// The receiver's half of the wake-up policy: block with need-wakeup armed,
/// switch to timed polling once per window while messages arrive at least
/// twice per window, go back to blocking at the first empty poll, and spin
/// only while a reply is expected within the spin budget
/// (docs/efficiency.md, "The consumer").
///
/// Pure bookkeeping on times and counts the caller reads when the ring runs
/// empty: no clock and no system call here, so the decisions are tested
/// with made-up times. One receiving thread at a time.
public struct AdaptiveReceiveWait: Sendable {
    /// What the receiver does about an empty ring.
    public enum Action: Equatable, Sendable {
        /// Poll the ring without sleeping until this time (nanoseconds).
        case spin(until: UInt64)
        /// Arm the express lane only and sleep for this many nanoseconds.
        case poll(for: UInt64)
        /// Arm both lanes and sleep until signalled.
        case block
    }

    /// The two phases.
    public enum Phase: Equatable, Sendable {
        /// Sleeping with need-wakeup armed on both lanes.
        case blocking
        /// Sleeping one window at a time with only the express lane armed.
        case polling
    }

    /// The window in nanoseconds.
    public let window: UInt64
    /// The spin budget in nanoseconds.
    public let spinBudget: UInt64
    /// The phase now.
    public private(set) var phase = Phase.blocking
    /// The recent gap between messages, smoothed by half (`UInt64.max`: none seen).
    public private(set) var gap = UInt64.max

    private var markTime: UInt64 = 0
    private var markReceived: UInt64 = 0
    private var markSent: UInt64 = 0
    private var lastWasPoll = false
    private var spun = false

    /// Creates the state for a window of `window` and a spin budget of `spinBudget` nanoseconds.
    public init(window: UInt64, spinBudget: UInt64) {
        self.window = max(window, 1)
        self.spinBudget = spinBudget
    }

    /// Decides what to do about an empty ring at `now`.
    ///
    /// - Parameters:
    ///   - received: messages this receiver has delivered so far (its counter).
    ///   - sent: messages this endpoint has sent so far (its sender's counter):
    ///     a change since the last empty ring means a request is out and a
    ///     reply may come soon.
    public mutating func onEmpty(now: UInt64, received: UInt64, sent: UInt64) -> Action {
        let count = received &- markReceived
        let elapsed = markTime == 0 ? UInt64.max : now &- markTime
        if count > 0 {
            let sample = elapsed / count
            gap = gap == .max ? sample : gap / 2 + sample / 2
        } else if lastWasPoll {
            // A whole window without a message: the burst is over.
            phase = .blocking
            gap = max(elapsed, window)
        }
        let replyExpected = sent != markSent
        markTime = now
        markReceived = received
        markSent = sent
        lastWasPoll = false
        if count > 0 { spun = false }
        if phase == .blocking && replyExpected && !spun && gap < spinBudget {
            spun = true
            return .spin(until: now &+ spinBudget)
        }
        return sleep()
    }

    /// Decides how to sleep after a spin that found nothing.
    public mutating func afterSpin() -> Action { sleep() }

    private mutating func sleep() -> Action {
        if phase == .blocking && gap <= window / 2 { phase = .polling }
        if phase == .polling {
            lastWasPoll = true
            return .poll(for: window)
        }
        return .block
    }
}
