import ArchangelCore
import Synchronization

/// State both endpoints of one channel share: whether it is still open.
///
/// Closing wakes every waiter on both sides, so nobody sleeps on a channel
/// that has gone away.
final class ChannelLink: Sendable {
    private let open = Atomic<Bool>(true)
    private let wakers: [any PeerNotifier]

    init(wakers: [any PeerNotifier]) { self.wakers = wakers }

    var isOpen: Bool { open.load(ordering: .acquiring) }

    /// Marks the channel closed and wakes every sleeper. Idempotent.
    func close() {
        guard open.exchange(false, ordering: .acquiringAndReleasing) else { return }
        for waker in wakers { waker.notify() }
    }
}
