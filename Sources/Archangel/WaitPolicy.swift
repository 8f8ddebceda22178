/// How a blocking call waits: spin first (no system call while the peer is
/// busy), then sleep on the eventfd with the need-wakeup protocol.
public struct WaitPolicy: Sendable, Equatable {
    /// How long to poll the ring before going to sleep. Measured in time, not
    /// iterations, so that it means the same in debug and release builds.
    public var spin: Duration

    /// Creates a policy.
    public init(spin: Duration = .microseconds(20)) {
        self.spin = spin
    }

    /// The default: spin 20 µs (a busy peer answers well within that), then sleep.
    public static let `default` = WaitPolicy()
    /// Never spin: sleep as soon as the ring is empty (least CPU).
    public static let sleepAtOnce = WaitPolicy(spin: .zero)
}
