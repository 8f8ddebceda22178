import Glibc

/// A value guarded by a pthread mutex: the lock of every cold path here.
///
/// Not `Synchronization.Mutex`: ThreadSanitizer intercepts pthread mutexes
/// and so sees the ordering they create, but cannot see it for `Mutex`,
/// whose lock lives in uninstrumented runtime code, and reports races that
/// are not there. None of these locks is on the send/receive path.
public final class PthreadLock<State>: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var state: State

    /// Guards `initial`.
    public init(_ initial: State) {
        state = initial
        pthread_mutex_init(&mutex, nil)
    }

    deinit { pthread_mutex_destroy(&mutex) }

    /// Runs `body` with exclusive access to the state.
    public func withLock<R, E: Error>(_ body: (inout State) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body(&state)
    }
}
