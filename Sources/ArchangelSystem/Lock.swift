import Glibc

/// A value guarded by a pthread mutex.
///
/// Used where threads of ours contend with tasks: ThreadSanitizer intercepts
/// pthread mutexes and so sees the ordering they create, which it cannot do
/// for locks built from atomics inside uninstrumented runtime code.
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
    public func withLock<R>(_ body: (inout State) throws -> R) rethrows -> R {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body(&state)
    }
}
