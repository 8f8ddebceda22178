/// Wakes the peer of a direction. The system layer implements it with an
/// eventfd (or the kernel with a wait queue); the core only calls it.
public protocol PeerNotifier: AnyObject, Sendable {
    /// Wakes the peer. Must not block and must be safe to call from any thread.
    func notify()
}

/// A notifier for endpoints whose peer never sleeps (tests, spinning benchmarks).
public final class NoNotifier: PeerNotifier {
    /// Creates one.
    public init() {}
    /// Does nothing.
    public func notify() {}
}
