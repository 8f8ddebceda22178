/// Wakes the peer of a direction. The system layer implements it with an
/// eventfd (or the kernel with a wait queue); the core only calls it.
public protocol PeerNotifier: AnyObject, Sendable {
    /// Wakes the peer. Must not block and must be safe to call from any thread.
    func notify()

    /// Wakes the peer at `deadline` (CLOCK_MONOTONIC nanoseconds), from a
    /// timer, even if nothing else happens meanwhile: the trailing edge of
    /// coalesced wake-ups (docs/efficiency.md). Must not block.
    ///
    /// The default implementation wakes at once, which keeps every delivery
    /// promise and gives up only the coalescing.
    func notify(atNanoseconds deadline: UInt64)
}

extension PeerNotifier {
    /// Wakes at once (see the requirement).
    public func notify(atNanoseconds deadline: UInt64) { notify() }
}

/// A notifier for endpoints whose peer never sleeps (tests, spinning benchmarks).
public final class NoNotifier: PeerNotifier {
    /// Creates one.
    public init() {}
    /// Does nothing.
    public func notify() {}
    /// Does nothing.
    public func notify(atNanoseconds deadline: UInt64) {}
}
