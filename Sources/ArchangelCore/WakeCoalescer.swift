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
/// sleeping receiver per window on average, the leading edge at once and the
/// trailing edge on a timer (docs/efficiency.md, "The producer").
///
/// The budget is a generic cell rate algorithm (the ATM traffic shaper): a
/// theoretical time `tat` advances 9/10 of a window per signal, and a signal
/// may go out once `now` is within a tenth of a window of it. A source one
/// window apart, give or take its jitter, therefore always takes the leading
/// edge (no timer, no added delay: a budget of exactly one window would make
/// such a source wait for a timer whenever its jitter ran ahead), while a
/// faster one is held to about one signal per window (at most 10/9), never
/// two closer than 8/10 of a window.
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
    /// How early before `tat` a signal may go: a tenth of a window.
    public var tolerance: UInt64 { window / 10 }
    /// How far `tat` advances per signal: 9/10 of a window.
    public var interval: UInt64 { window - window / 10 }
    /// The theoretical time of the next signal (0: no signal yet).
    public private(set) var tat: UInt64 = 0
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
            signalled(at: now)
            return .signalNow
        }
        if pendingUntil != 0 {
            if now < pendingUntil { return .merged }
            pendingUntil = 0
        }
        let earliest = tat > tolerance ? tat - tolerance : 0
        if !noWakeup && now >= earliest {
            signalled(at: now)
            return .signalNow
        }
        // The earliest time the budget allows, which is at most one window
        // from now; with noWakeup, one window from now.
        let deadline = noWakeup ? max(earliest, now &+ window) : earliest
        pendingUntil = deadline
        tat = max(tat, deadline) &+ interval
        return .signalAt(deadline)
    }

    /// Records that the pending trailing edge was sent early, at `now` (a
    /// lane passed the wake batch): later publications no longer ride on it.
    /// Its timer still fires, as one spurious wake-up.
    public mutating func firedEarly(at now: UInt64) {
        pendingUntil = 0
        signalled(at: now)
    }

    /// Records a signal sent at `now` (the leading edge, or an urgent message).
    ///
    /// `tat` stays within one window of now: signals that go out whatever
    /// the budget (urgent sends, a lane past the wake batch, an early
    /// trailing edge) would otherwise push it several windows ahead, and a
    /// normal message's trailing edge with it, past the promised "one window
    /// plus one wake-up" (found by the model check, verification/README.md).
    public mutating func signalled(at now: UInt64) {
        tat = min(max(tat, now) &+ interval, now &+ window)
        pacedDue = now &+ pacedSpacing
    }

    /// The earliest time a paced poll may be signalled again (0: at once).
    public private(set) var pacedDue: UInt64 = 0
    /// How far apart paced-poll signals are: 19/20 of a window, so that a
    /// steady source's signal lands before the receiver's own timeout (one
    /// window after it went back to sleep) and the receiver wakes once per
    /// window, by the signal; at most 21 signals per 20 windows.
    public var pacedSpacing: UInt64 { window - window / 20 }

    /// Decides about a publication that found the receiver in a paced poll
    /// (docs/efficiency.md, "Paced polls"): the leading edge only, at most
    /// one signal per `pacedSpacing`; no trailing edge, since the receiver's
    /// own timeout (one window) bounds the delay. True: signal now.
    public mutating func pacedLeadingEdge(now: UInt64, laneFull: Bool) -> Bool {
        guard laneFull || now >= pacedDue else { return false }
        signalled(at: now)
        return true
    }
}
