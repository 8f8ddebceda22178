import ArchangelCore
import CArchangel
import Glibc

/// A plain POSIX thread running one closure: for loops that block in system
/// calls (receive pumps, demo peers), which must not sit on Swift's
/// cooperative thread pool.
public final class SystemThread: @unchecked Sendable {
    private var thread = pthread_t()
    private var joined = false

    private final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    /// Starts a thread running `body`.
    ///
    /// - Parameter detached: the thread cleans up after itself and cannot be
    ///   joined (for threads that end on their own, such as receive pumps).
    /// - Throws: `ChannelError.system` when the thread cannot be created.
    public init(name: String, detached: Bool = false, _ body: @escaping @Sendable () -> Void) throws(ChannelError) {
        let box = Unmanaged.passRetained(Box({
            archangel_set_thread_name(name)
            body()
        })).toOpaque()
        let result = pthread_create(&thread, nil, { argument in
            let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        guard result == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            throw .system(operation: "pthread_create", errno: result)
        }
        if detached {
            pthread_detach(thread)
            joined = true
        }
    }

    /// Waits for the thread to finish. Call at most once, from another thread.
    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(thread, nil)
    }

    /// Pins the calling thread to `cpu`; ignored where that CPU does not exist.
    public static func pinCurrent(to cpu: Int) {
        _ = archangel_pin_current_thread(Int32(cpu))
    }
}
