/// Per-send requests about waking the receiver (docs/efficiency.md).
public struct SendOptions: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    /// Creates options from `ARCHANGEL_SEND_*` bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Wake the receiver now, whatever the coalescing: also a receiver that
    /// polls by itself. Priority `critical` implies it (`ARCHANGEL_SEND_URGENT`).
    public static let urgent = SendOptions(rawValue: 1 << 0)
    /// More follows: take no leading-edge wake-up, only the trailing edge, so
    /// the delay bound still holds if nothing follows (`ARCHANGEL_SEND_NO_WAKEUP`).
    public static let noWakeup = SendOptions(rawValue: 1 << 1)
}

/// The producer's half of the wake-up policy: at most one wake-up of a
/// sleeping receiver per window, the leading edge at once and the trailing
/// edge on a timer (docs/efficiency.md, "The producer").
///
/// Pure bookkeeping on times the caller reads: no clock and no system call
/// here, so the decisions are tested with made-up times.
public struct WakeCoalescer: Sendable {
    /// What to do about a receiver that blocks with need-wakeup armed.
    public enum Decision: Equatable, Sendable {
        /// Signal now (the leading edge, or a full lane).
        case signalNow
        /// Schedule one signal at this time (the trailing edge, nanoseconds).
        case signalAt(UInt64)
        /// A trailing edge is already pending and covers this publication.
        case merged
    }

    /// The window in nanoseconds; 0 signals every sleep at once.
    public let window: UInt64
    /// When the last signal was sent or is scheduled (0: never).
    public private(set) var lastSignal: UInt64 = 0
    /// When the pending trailing edge fires (0: none pending).
    public private(set) var pendingUntil: UInt64 = 0

    /// Creates a coalescer for a window of `window` nanoseconds.
    public init(window: UInt64) { self.window = window }

    /// Decides about a publication that found the receiver blocking.
    ///
    /// - Parameters:
    ///   - now: the time (CLOCK_MONOTONIC nanoseconds).
    ///   - noWakeup: the sender said more follows: never the leading edge.
    ///   - laneFull: a lane holds more than the wake batch: signal now.
    public mutating func decide(now: UInt64, noWakeup: Bool, laneFull: Bool) -> Decision {
        if window == 0 || laneFull {
            lastSignal = now
            return .signalNow
        }
        if pendingUntil != 0 {
            if now < pendingUntil { return .merged }
            pendingUntil = 0
        }
        let sinceLast = now &- lastSignal
        if !noWakeup && (lastSignal == 0 || sinceLast >= window) {
            lastSignal = now
            return .signalNow
        }
        // Within a window of the last signal: fire one window after it. With
        // noWakeup and no recent signal: one window from now.
        let deadline = lastSignal != 0 && sinceLast < window ? lastSignal &+ window : now &+ window
        pendingUntil = deadline
        lastSignal = deadline
        return .signalAt(deadline)
    }

    /// Records a signal sent for another reason (an urgent message) at `now`.
    public mutating func signalled(at now: UInt64) {
        if now > lastSignal { lastSignal = now }
    }
}
