import Synchronization

/// The first error that stopped one half of a channel, readable from any thread.
///
/// Later failures keep the first error: it is the cause, the rest are consequences.
final class FailureLatch: Sendable {
    private let first = PthreadLock<ChannelError?>(nil)

    /// The first recorded error, if any.
    var error: ChannelError? { first.withLock { $0 } }

    /// Records `error` unless one is recorded already; returns the first one.
    func record(_ error: ChannelError) -> ChannelError {
        first.withLock { stored in
            if stored == nil { stored = error }
            return stored!
        }
    }
}
