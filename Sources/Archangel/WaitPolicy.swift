/// How a blocking call waits: spin first (no system call while the peer is
/// busy), then sleep on the eventfd with the need-wakeup protocol.
public struct WaitPolicy: Sendable, Equatable {
    /// Polls of the ring before going to sleep. Each empty poll costs a few
    /// nanoseconds; 2,000 spin for roughly 10-40 µs.
    public var spinIterations: Int

    /// Creates a policy.
    public init(spinIterations: Int = 2_000) {
        self.spinIterations = spinIterations
    }

    /// The default: a short spin, then sleep.
    public static let `default` = WaitPolicy()
    /// Never spin: sleep as soon as the ring is empty (least CPU).
    public static let sleepAtOnce = WaitPolicy(spinIterations: 0)
}
