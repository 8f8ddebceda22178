import ArchangelCore
import CArchangel
import Glibc

/// One place for libc contact: retries EINTR and turns failures into
/// `ChannelError.system` naming the call.
@usableFromInline
enum SystemCall {
    /// Runs `call` until it does not fail with EINTR; throws on any other failure.
    @inlinable
    static func retrying<T: BinaryInteger>(_ name: String, _ call: () -> T) throws(ChannelError) -> T {
        while true {
            let result = call()
            if result >= 0 { return result }
            let code = errno
            if code == EINTR { continue }
            throw ChannelError.system(operation: name, errno: code)
        }
    }

    /// Waits until `descriptor` is readable (or hung up) or `timeout` passes (nil: forever).
    ///
    /// - Returns: false on timeout.
    static func waitReadable(_ descriptor: Int32, timeout: Duration?) throws(ChannelError) -> Bool {
        var pfd = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let ready: Int32
        if let timeout {
            var ts = timespec(timeout)
            ready = try retrying("ppoll") { archangel_ppoll(&pfd, 1, &ts) }
        } else {
            ready = try retrying("ppoll") { archangel_ppoll(&pfd, 1, nil) }
        }
        return ready > 0
    }
}

extension timespec {
    /// A timespec for a non-negative duration.
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self.init(tv_sec: Int(max(seconds, 0)), tv_nsec: seconds < 0 ? 0 : Int(attoseconds / 1_000_000_000))
    }
}
