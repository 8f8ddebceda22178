import CArchangel

/// How an endpoint waits for its peer and wakes it: the efficiency knobs of
/// docs/efficiency.md, the same on every backend (the kernel module takes
/// them as `struct archangel_wait_config`).
///
/// Four presets cover the usual trade-offs between CPU and added latency;
/// the knobs can also be set one by one.
public struct WaitPolicy: Sendable, Equatable, CustomStringConvertible {
    /// The window `W`: no message waits longer than this plus one wake-up.
    ///
    /// An adaptive receiver that sees at least two messages per window polls
    /// once per window instead of sleeping with need-wakeup armed, and an
    /// adaptive sender signals a sleeping receiver at most once per window
    /// (leading edge at once, trailing edge on a timer). Ignored when
    /// `adaptive` is false.
    public var maxDeliveryDelay: Duration

    /// The spin budget: how long to poll the ring before going to sleep.
    ///
    /// Adaptive receivers spin only when a reply is expected soon (their
    /// endpoint sent since its last empty ring) and the recent gap between
    /// messages is shorter than this; otherwise they sleep at once. Measured
    /// in time, not iterations, so that it means the same in debug and
    /// release builds.
    public var spin: Duration

    /// Unread bytes in a lane above which an adaptive sender wakes a sleeping
    /// receiver at once instead of deferring to the trailing edge, so that a
    /// burst never fills the ring behind a sleeper. 0 means a quarter of the lane.
    public var wakeBatch: Int

    /// Timed polling, coalesced wake-ups and adaptive spin. False is the
    /// wave-1 behaviour: spin `spin`, then sleep; signal every sleep at once.
    public var adaptive: Bool

    /// How an adaptive receiver polls while messages stream (docs/efficiency.md,
    /// "Paced polls"). True (`.balanced`): it sleeps one window at a time with
    /// the normal lane's need-wakeup armed, and the sender wakes it at the
    /// first message due, at most once per window, so that it is woken by an
    /// eventfd (about 8-14 µs of CPU here) rather than by its timer (about 28
    /// µs); the sender pays one eventfd write per window. False: the receiver
    /// polls on its own timer with only the express lane armed, and the
    /// sender makes no system call at all while it polls.
    ///
    /// Measured here (docs/efficiency.md, "Paced polls"): with a 1 ms window
    /// paced polls cut the receiver's CPU by a third at 10k and 100k msgs/s;
    /// with 100 µs they cost more (the signals outnumber the timer's polls)
    /// and with 10 ms they change nothing, so only `.balanced` uses them.
    public var pacedPolls: Bool

    /// Creates a policy from its knobs.
    public init(maxDeliveryDelay: Duration = .milliseconds(1), spin: Duration = .microseconds(10),
                wakeBatch: Int = 0, adaptive: Bool = true, pacedPolls: Bool = false) {
        self.maxDeliveryDelay = maxDeliveryDelay
        self.spin = spin
        self.wakeBatch = wakeBatch
        self.adaptive = adaptive
        self.pacedPolls = pacedPolls
    }

    /// Creates a spin-then-sleep policy (not adaptive), as wave 1 had.
    public init(spin: Duration) {
        self.init(maxDeliveryDelay: .zero, spin: spin, wakeBatch: 0, adaptive: false)
    }

    /// The default: `W` = 1 ms, about 1% of a core from 1k to 100k msgs/s.
    public static let balanced = WaitPolicy(maxDeliveryDelay: .nanoseconds(Int64(ARCHANGEL_WAIT_BALANCED_DELAY_NS)),
                                            spin: .nanoseconds(Int64(ARCHANGEL_WAIT_BALANCED_SPIN_NS)),
                                            pacedPolls: true)
    /// `W` = 100 µs: p99 about 100 µs for a few % of a core at 100k msgs/s.
    public static let responsive = WaitPolicy(maxDeliveryDelay: .nanoseconds(Int64(ARCHANGEL_WAIT_RESPONSIVE_DELAY_NS)),
                                              spin: .nanoseconds(Int64(ARCHANGEL_WAIT_RESPONSIVE_SPIN_NS)))
    /// `W` = 10 ms: the least CPU, for bulk telemetry.
    public static let efficient = WaitPolicy(maxDeliveryDelay: .nanoseconds(Int64(ARCHANGEL_WAIT_EFFICIENT_DELAY_NS)),
                                             spin: .nanoseconds(Int64(ARCHANGEL_WAIT_EFFICIENT_SPIN_NS)))
    /// Spin 20 µs, then sleep, and wake the peer at every sleep: sub-microsecond
    /// hand-off for whoever trades a core for it.
    public static let lowLatency = WaitPolicy(spin: .nanoseconds(Int64(ARCHANGEL_WAIT_LOW_LATENCY_SPIN_NS)))
    /// Never spin, never coalesce: sleep as soon as the ring is empty.
    public static let sleepAtOnce = WaitPolicy(spin: .zero)

    /// The default policy: `.balanced`.
    public static let `default` = WaitPolicy.balanced

    /// The presets' names, as `named(_:)` takes them and reports print them.
    public static let presetNames = ["balanced", "responsive", "efficient", "lowLatency"]

    /// The preset called `name` (`balanced`, `responsive`, `efficient`,
    /// `lowLatency`; also `low-latency`), or nil.
    ///
    /// An adaptive preset's name may end in `-paced` or `-timed` to choose
    /// how it polls (`pacedPolls` true or false), for comparisons such as
    /// `archangel bench --suite efficiency --presets balanced-paced,balanced-timed`.
    public static func named(_ name: String) -> WaitPolicy? {
        for (suffix, paced) in [("-paced", true), ("-timed", false)] where name.lowercased().hasSuffix(suffix) {
            guard var policy = named(String(name.dropLast(suffix.count))), policy.adaptive else { return nil }
            policy.pacedPolls = paced
            return policy
        }
        return switch name.lowercased() {
        case "balanced": .balanced
        case "responsive": .responsive
        case "efficient": .efficient
        case "lowlatency", "low-latency", "low_latency": .lowLatency
        default: nil
        }
    }

    /// The preset's name when this is one, else its knobs.
    public var description: String {
        for name in Self.presetNames where Self.named(name) == self { return name }
        if !adaptive { return "spin \(spin) then sleep" }
        return "adaptive W \(maxDeliveryDelay), spin \(spin), wakeBatch \(wakeBatch)"
    }

    /// The window in nanoseconds (0 when not adaptive).
    @inlinable
    public var windowNanoseconds: UInt64 { adaptive ? Self.nanoseconds(maxDeliveryDelay) : 0 }

    /// The spin budget in nanoseconds.
    @inlinable
    public var spinNanoseconds: UInt64 { Self.nanoseconds(spin) }

    /// A non-negative duration in whole nanoseconds (saturating).
    @inlinable
    public static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0, attoseconds >= 0 else { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : whole &+ UInt64(attoseconds / 1_000_000_000)
    }

    /// Checks the knobs against the bounds the kernel module also enforces.
    ///
    /// - Throws: `invalidConfiguration` naming the knob and its range.
    public func validate() throws(ChannelError) {
        if adaptive {
            let w = Self.nanoseconds(maxDeliveryDelay)
            guard w >= ARCHANGEL_WAIT_DELAY_MIN_NS && w <= ARCHANGEL_WAIT_DELAY_MAX_NS else {
                throw .invalidConfiguration("maxDeliveryDelay \(maxDeliveryDelay) is outside 10 µs ... 1 s")
            }
        }
        guard Self.nanoseconds(spin) <= ARCHANGEL_WAIT_SPIN_MAX_NS else {
            throw .invalidConfiguration("spin \(spin) is above 1 ms")
        }
        guard wakeBatch >= 0 && wakeBatch <= Int(UInt32.max) else {
            throw .invalidConfiguration("wakeBatch \(wakeBatch) is outside 0 ... \(UInt32.max)")
        }
    }
}
