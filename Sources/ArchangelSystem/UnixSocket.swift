import ArchangelCore
import CArchangel
import Glibc

/// A connected or listening Unix domain socket of type `SOCK_SEQPACKET`:
/// reliable, ordered, and with message boundaries, so each protocol message
/// is one `send` and one `receive`, with its descriptors attached.
///
/// Owns its descriptor (closed on deinit). The corresponding C functions are
/// `socket`, `bind`, `listen`, `accept4`, `connect`, `sendmsg` and `recvmsg`.
public final class UnixSocket: @unchecked Sendable {
    /// The file descriptor.
    public let descriptor: Int32

    /// The credentials of the process at the other end (SO_PEERCRED).
    public struct Credentials: Sendable, Equatable {
        /// Process id.
        public var pid: Int32
        /// User id.
        public var uid: UInt32
        /// Group id.
        public var gid: UInt32

        /// Credentials as given.
        public init(pid: Int32, uid: UInt32, gid: UInt32) {
            self.pid = pid
            self.uid = uid
            self.gid = gid
        }
    }

    init(adopting descriptor: Int32) { self.descriptor = descriptor }

    deinit { close(descriptor) }

    private static func address(_ path: String) throws(ChannelError) -> (sockaddr_un, socklen_t) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity else {
            throw .invalidConfiguration("socket path '\(path)' must be 1 to \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return (address, socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1))
    }

    private static func makeSocket() throws(ChannelError) -> Int32 {
        try SystemCall.retrying("socket") { socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
    }

    /// Creates a socket listening at `path`, with file mode `mode` (set
    /// before anyone can connect: the socket is bound under a umask that
    /// grants nothing, then chmod'ed).
    ///
    /// - Throws: `system` naming the call; `EADDRINUSE` when the path exists.
    public static func listen(at path: String, mode: mode_t, backlog: Int32 = 64) throws(ChannelError) -> UnixSocket {
        let fd = try makeSocket()
        let socket = UnixSocket(adopting: fd)
        var (address, length) = try self.address(path)
        let old = umask(0o777)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        let bindErrno = errno
        umask(old)
        guard bound == 0 else { throw .system(operation: "bind \(path)", errno: bindErrno) }
        guard chmod(path, mode) == 0 else { throw .system(operation: "chmod \(path)", errno: errno) }
        guard Glibc.listen(fd, backlog) == 0 else { throw .system(operation: "listen", errno: errno) }
        return socket
    }

    /// Connects to the socket at `path`.
    ///
    /// - Throws: `system` (ENOENT or ECONNREFUSED when no host listens there).
    public static func connect(to path: String) throws(ChannelError) -> UnixSocket {
        let fd = try makeSocket()
        let socket = UnixSocket(adopting: fd)
        var (address, length) = try self.address(path)
        _ = try SystemCall.retrying("connect \(path)") {
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) }
            }
        }
        return socket
    }

    /// Accepts one connection (the listening socket is blocking; call after poll says it is readable).
    public func accept() throws(ChannelError) -> UnixSocket {
        let fd = try SystemCall.retrying("accept4") { archangel_accept_cloexec(descriptor) }
        return UnixSocket(adopting: fd)
    }

    /// The credentials of the peer process, as the kernel recorded them at connect.
    public func peerCredentials() throws(ChannelError) -> Credentials {
        var pid: pid_t = 0, uid: uid_t = 0, gid: gid_t = 0
        guard archangel_peer_credentials(descriptor, &pid, &uid, &gid) == 0 else {
            throw .system(operation: "getsockopt(SO_PEERCRED)", errno: errno)
        }
        return Credentials(pid: pid, uid: uid, gid: gid)
    }

    /// Sends `bytes` as one message with `descriptors` attached (they stay open here).
    public func send(_ bytes: UnsafeRawBufferPointer, descriptors: [Int32] = []) throws(ChannelError) {
        let sent = try SystemCall.retrying("sendmsg") {
            descriptors.withUnsafeBufferPointer { fds in
                archangel_send_with_fds(descriptor, bytes.baseAddress, bytes.count, fds.baseAddress, Int32(fds.count))
            }
        }
        guard sent == bytes.count else { throw .system(operation: "sendmsg (short)", errno: EMSGSIZE) }
    }

    /// Receives one message into `buffer`, with up to `ARCHANGEL_MAX_PASSED_FDS` descriptors, which the
    /// caller then owns.
    ///
    /// - Returns: the bytes received (0 when the peer hung up) and the descriptors.
    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws(ChannelError) -> (Int, [Int32]) {
        var fds = [Int32](repeating: -1, count: Int(ARCHANGEL_MAX_PASSED_FDS))
        var count: Int32 = 0
        let received = try SystemCall.retrying("recvmsg") {
            fds.withUnsafeMutableBufferPointer { out in
                archangel_receive_with_fds(descriptor, buffer.baseAddress, buffer.count, out.baseAddress,
                                           Int32(out.count), &count)
            }
        }
        return (received, Array(fds.prefix(Int(count))))
    }

    /// Waits until the socket is readable or hung up, or `timeout` passes.
    ///
    /// - Returns: false on timeout.
    public func waitReadable(timeout: Duration?) throws(ChannelError) -> Bool {
        try SystemCall.waitReadable(descriptor, timeout: timeout)
    }
}
