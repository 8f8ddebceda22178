import ArchangelCore
import Synchronization

/// State both endpoints of one channel share: whether it is still open.
///
/// Closing wakes every waiter on both sides, so nobody sleeps on a channel
/// that has gone away.
@usableFromInline
final class ChannelLink: Sendable {
    private let open = Atomic<Bool>(true)
    private let reason = PthreadLock<ChannelError?>(nil)
    private let wakers: [any PeerNotifier]

    init(wakers: [any PeerNotifier]) { self.wakers = wakers }

    @usableFromInline var isOpen: Bool { open.load(ordering: .acquiring) }

    /// Why the channel is closed: `.closed`, or the corruption one side found.
    @usableFromInline var closedError: ChannelError { reason.withLock { $0 } ?? .closed }

    /// Marks the channel closed and wakes every sleeper. Idempotent; the first reason wins.
    ///
    /// A side that finds the shared memory corrupted closes the channel with
    /// that error, so its peer's blocked calls end with the same error instead
    /// of waiting for messages that will never come.
    func close(because error: ChannelError = .closed) {
        reason.withLock { if $0 == nil { $0 = error } }
        guard open.exchange(false, ordering: .acquiringAndReleasing) else { return }
        for waker in wakers { waker.notify() }
    }

    /// Runs `operation`; a corruption it reports closes the channel for both
    /// sides with that error, so nobody keeps waiting on broken memory.
    func guarding<R>(_ operation: () throws(ChannelError) -> R) throws(ChannelError) -> R {
        do {
            return try operation()
        } catch {
            throw failed(error)
        }
    }

    /// Closes the channel when `error` is a corruption; returns `error` to rethrow.
    @usableFromInline
    func failed(_ error: ChannelError) -> ChannelError {
        if case .corrupted = error { close(because: error) }
        return error
    }
}
