import ArchangelCore
import ArchangelSystem
import CArchangel
import Glibc
import Logging

/// The userspace host: serves a `CommManager`'s channels to other processes
/// over a Unix socket, so that clients attach with `.userspace(socket:)`.
///
/// `archangel serve` runs one; a program that wants to be the host embeds
/// one around its own manager and plays the kernel side itself. A client's
/// connection stays open while it holds a side of a channel: when it hangs
/// up (or dies), the host finishes the client's pending buffer return, keeps
/// the channel and its messages, and lets another process attach in its
/// place (docs/recovery.md).
public final class HostServer: Sendable {
    /// How a host listens and whom it lets in.
    public struct Configuration: Sendable {
        /// Where the socket lives.
        public var socketPath: String
        /// Who may attach.
        public var access: HostAccess
        /// Whether clients may attach the kernel side (a sensor process). A
        /// daemon that only brokers channels allows it; a program that plays
        /// the kernel side itself does not.
        public var allowKernelSide: Bool
        /// Whether a client may create channels by attaching to an id that does not exist.
        public var allowCreate: Bool
        /// Whether clients whose previous host died may bring its channel
        /// memory back (`ARCHANGEL_HOST_F_ADOPT`), so the messages in the
        /// rings survive a host restart (docs/recovery.md). Only for a host
        /// that brokers channels and never uses its manager's endpoints itself
        /// (`archangel serve`): adopting replaces a channel it has not used.
        public var adoptMemory: Bool
        /// How long a connection may stay without a request before the host
        /// hangs it up (a client that connects and never speaks).
        public var handshakeTimeout: Duration
        /// The most connections at once, attached or not; more are refused
        /// (`EMFILE`), so a flood of idle connections cannot take every descriptor.
        public var maxConnections: Int

        /// Creates a configuration.
        public init(socketPath: String = HostServer.defaultSocketPath, access: HostAccess = HostAccess(),
                    allowKernelSide: Bool = false, allowCreate: Bool = true, adoptMemory: Bool = false,
                    handshakeTimeout: Duration = .seconds(5), maxConnections: Int = 512) {
            self.socketPath = socketPath
            self.access = access
            self.allowKernelSide = allowKernelSide
            self.allowCreate = allowCreate
            self.adoptMemory = adoptMemory
            self.handshakeTimeout = handshakeTimeout
            self.maxConnections = maxConnections
        }
    }

    /// Largest channel memory a client may bring back for adoption.
    static let maxAdoptedBytes = 8 << 30

    /// `$XDG_RUNTIME_DIR/archangel.sock`; as root `/run/archangel/archangel.sock`;
    /// else `/tmp/archangel-<uid>/archangel.sock`.
    public static var defaultSocketPath: String {
        if geteuid() == 0 { return "/run/archangel/archangel.sock" }
        if let runtime = getenv("XDG_RUNTIME_DIR").map({ String(cString: $0) }), !runtime.isEmpty {
            return runtime + "/archangel.sock"
        }
        return "/tmp/archangel-\(geteuid())/archangel.sock"
    }

    /// The manager whose channels are served.
    public let manager: CommManager
    /// The configuration in force.
    public let configuration: Configuration
    let logger: Logger
    private let listener: UnixSocket
    private let lockFile: Int32
    private let wake: EventFD
    private let running = PthreadLock(true)
    private let loop = PthreadLock<SystemThread?>(nil)
    private let sessions = PthreadLock<[HostSession]>([])

    /// Starts serving `manager` at `configuration.socketPath`.
    ///
    /// Takes the socket's lock file (`<socket>.lock`, flock), so a second
    /// host on the same path fails at once; then removes a stale socket file
    /// that a crashed host left behind, and listens.
    ///
    /// - Throws: `hostRefused(EADDRINUSE)` when another host runs on this path; `system` otherwise.
    public init(manager: CommManager, configuration: Configuration = .init(),
                logger: Logger = Logger(label: "archangel.host")) throws(ChannelError) {
        self.manager = manager
        self.configuration = configuration
        self.logger = logger
        let path = configuration.socketPath
        try Self.makeParentDirectory(of: path, group: configuration.access.group)
        let lock = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw .system(operation: "open \(path).lock", errno: errno) }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(lock)
            if code == EWOULDBLOCK {
                throw .hostRefused(status: -EADDRINUSE, reason: "another Archangel host is serving \(path)")
            }
            throw .system(operation: "flock \(path).lock", errno: code)
        }
        lockFile = lock
        // We hold the lock, so a socket file here is a crashed host's leftover.
        if unlink(path) == 0 { logger.notice("removed a stale socket left by an earlier host", metadata: ["path": "\(path)"]) }
        do throws(ChannelError) {
            listener = try UnixSocket.listen(at: path, mode: configuration.access.socketMode)
            if let group = configuration.access.group, chown(path, UInt32.max, group) != 0 {
                throw ChannelError.system(operation: "chown \(path)", errno: errno)
            }
            wake = try EventFD()
        } catch {
            close(lock)
            throw error
        }
        let thread = try SystemThread(name: "archangel-host") { [self] in self.serve() }
        loop.withLock { $0 = thread }
        logger.info("serving", metadata: ["socket": "\(path)", "max_channels": "\(manager.configuration.maxChannels)"])
    }

    deinit { stop() }

    /// Stops serving: hangs up every client (they see `peerDisconnected`),
    /// removes the socket file and releases the lock. The manager and its
    /// channels stay as they are. Idempotent.
    public func stop() {
        let wasRunning = running.withLock { r in defer { r = false }; return r }
        guard wasRunning else { return }
        wake.notify()
        loop.withLock { $0 }?.join()
        sessions.withLock { $0.removeAll() }
        unlink(configuration.socketPath)
        close(lockFile)
        logger.info("stopped", metadata: ["socket": "\(configuration.socketPath)"])
    }

    /// Number of client connections now (attached or mid-request).
    public var connectionCount: Int { sessions.withLock { $0.count } }

    private static func makeParentDirectory(of path: String, group: UInt32?) throws(ChannelError) {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return }
        let directory = String(path[..<slash])
        var status = stat()
        if stat(directory, &status) == 0 { return }
        guard mkdir(directory, group == nil ? 0o700 : 0o750) == 0 || errno == EEXIST else {
            throw .system(operation: "mkdir \(directory)", errno: errno)
        }
        if let group { _ = chown(directory, UInt32.max, group) }
    }

    // MARK: The event loop

    private func serve() {
        while running.withLock({ $0 }) {
            let current = sessions.withLock { $0 }
            var fds = [pollfd(fd: wake.descriptor, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: listener.descriptor, events: Int16(POLLIN), revents: 0)]
            fds += current.map { pollfd(fd: $0.socket.descriptor, events: Int16(POLLIN), revents: 0) }
            // The timeout lets the loop notice channels destroyed through the manager.
            var timeout = timespec(tv_sec: 0, tv_nsec: 200_000_000)
            let ready = archangel_ppoll(&fds, UInt(fds.count), &timeout)
            if ready < 0 && errno != EINTR {
                logger.error("poll failed; the host stops serving", metadata: ["errno": "\(errno)"])
                return
            }
            if fds[0].revents != 0 { wake.reset() }
            for (session, pfd) in zip(current, fds.dropFirst(2)) where pfd.revents != 0 {
                if !session.readable() { drop(session) }
            }
            let now = archangel_monotonic_ns()
            for session in current {
                if session.channelWasDestroyed() {
                    session.sayDestroyed()
                    drop(session)
                } else if session.handshakeExpired(now: now, timeout: handshakeNanoseconds) {
                    session.logger.notice("a client connected and sent no request in time: hung up")
                    drop(session)
                }
            }
            if fds[1].revents & Int16(POLLIN) != 0 { acceptClient() }
        }
    }

    private var handshakeNanoseconds: UInt64 {
        let (seconds, attoseconds) = configuration.handshakeTimeout.components
        return UInt64(max(seconds, 0)) * 1_000_000_000 + UInt64(max(attoseconds, 0) / 1_000_000_000)
    }

    private func acceptClient() {
        let socket: UnixSocket
        do { socket = try listener.accept() } catch {
            logger.warning("accept failed", metadata: ["error": "\(error)"])
            // Out of descriptors: the listener stays readable; do not spin on it.
            if case .system(_, let code) = error, code == EMFILE || code == ENFILE { usleep(10_000) }
            return
        }
        guard connectionCount < configuration.maxConnections else {
            logger.warning("client refused: too many connections", metadata: ["limit": "\(configuration.maxConnections)"])
            var reply = HostProtocol.failure(.hostRefused(status: -EMFILE, reason: ""))
            HostProtocol.setMessage(&reply, "this host serves at most \(configuration.maxConnections) connections at "
                + "once; try again later")
            try? HostProtocol.send(reply, on: socket)
            return
        }
        let credentials: UnixSocket.Credentials
        do { credentials = try socket.peerCredentials() } catch {
            logger.warning("cannot read a client's credentials; refused", metadata: ["error": "\(error)"])
            return
        }
        guard configuration.access.allows(credentials) else {
            logger.warning("client refused: not allowed by the access policy",
                           metadata: ["pid": "\(credentials.pid)", "uid": "\(credentials.uid)"])
            var reply = HostProtocol.failure(.hostRefused(status: -EACCES, reason: ""))
            HostProtocol.setMessage(&reply, "uid \(credentials.uid) may not use this host; it admits uid "
                + "\(configuration.access.owner), root"
                + (configuration.access.group.map { " and group \($0)" } ?? "") + " (see archangel serve --group)")
            try? HostProtocol.send(reply, on: socket)
            return
        }
        sessions.withLock { $0.append(HostSession(socket: socket, credentials: credentials, server: self)) }
    }

    private func drop(_ session: HostSession) {
        session.hangUp()
        sessions.withLock { list in list.removeAll { $0 === session } }
    }

    /// Hangs up the sessions attached to channel `id` (it was destroyed),
    /// telling them so first: a client keeps the memory of a channel whose
    /// host hung up without a word (the host died), not of a destroyed one.
    func dropSessions(of id: UInt32) {
        let attached = sessions.withLock { $0.filter { $0.attachedChannel == id } }
        for session in attached {
            session.sayDestroyed()
            drop(session)
        }
    }

    // MARK: Adopting the memory of a host that died

    /// Hosts the channel memory a client kept when its previous host died,
    /// so the messages in its rings survive the restart; returns the channel
    /// to attach.
    ///
    /// The client is not trusted: the descriptor must be a memfd whose size
    /// is sealed (no truncation under our mapping), of a size within limits,
    /// not the memory of another channel here; the channel header in it must
    /// validate (`ChannelLayout.load`), name `wanted`, and every index,
    /// record and descriptor a successor would read must check out
    /// (`ResumePoint`, read only: the client's old endpoints may still run).
    /// A channel `wanted` already here is either that same memory (another
    /// client adopted it first: nothing to do), or replaced when nobody
    /// attached to it and it holds no message; otherwise the adoption is
    /// refused (`EEXIST`) and the client reports its messages lost.
    func adopt(channel wanted: UInt32?, descriptor: Int32) throws(ChannelError) -> ChannelID {
        guard configuration.adoptMemory else {
            throw .hostRefused(status: -EPERM, reason: "this host does not adopt channel memory kept by clients; "
                + "attach afresh")
        }
        guard let wanted else { throw .protocolViolation("an adopting attach names its channel") }
        let id = ChannelID(wanted)
        guard let identity = SharedMemory.identity(of: descriptor), identity.isRegularFile else {
            throw .protocolViolation("the memory brought for adoption is not a memfd")
        }
        if let existing = try? manager.hosted(id) {
            if let here = existing.kernel.memory.identity, here.sameObject(as: identity) { return id }
            guard Self.unused(existing) else {
                throw .hostRefused(status: -EEXIST, reason: "channel \(wanted) on this host already has peers or "
                    + "messages of its own; the memory brought back cannot replace it")
            }
            manager.destroyChannel(id)
            dropSessions(of: wanted)
            logger.info("replacing an unused channel by memory a client kept", metadata: ["channel": "\(wanted)"])
        }
        guard identity.sizeSealed else {
            throw .protocolViolation("the memory brought for adoption is not sealed against shrinking (F_SEAL_SHRINK)")
        }
        guard identity.size >= ABI.pageSize, identity.size <= Self.maxAdoptedBytes else {
            throw .protocolViolation("the memory brought for adoption is \(identity.size) bytes")
        }
        for other in manager.channelIDs {
            if let memory = try? manager.hosted(other).kernel.memory.identity, memory.sameObject(as: identity) {
                throw .protocolViolation("the memory brought for adoption as channel \(wanted) is channel \(other)'s")
            }
        }
        let memory = try SharedMemory(mapping: dup(descriptor), size: identity.size)
        let layout = try ChannelLayout.load(from: memory.base, size: identity.size)
        guard layout.channelID == wanted, layout.totalSize == identity.size else {
            throw .protocolViolation("the memory brought for adoption as channel \(wanted) holds channel "
                + "\(layout.channelID) of \(layout.totalSize) bytes in \(identity.size)")
        }
        func takeover(_ side: ChannelSide) throws(ChannelError) -> Channel.Takeover {
            Channel.Takeover(
                sender: try ResumePoint.sender(base: memory.base, layout: layout, direction: side.outgoing),
                receiver: try ResumePoint.receiver(base: memory.base, layout: layout, direction: side.incoming,
                                                   complete: false),
                senderCounters: nil, receiverCounters: nil)
        }
        let kernel = try takeover(.kernel), user = try takeover(.user)
        try manager.adoptChannel(id: id, memory: memory, layout: layout, takeover: (kernel, user))
        logger.notice("adopted the memory of a channel that a client kept from an earlier host", metadata: [
            "channel": "\(wanted)", "to_user_unread": "\(kernel.sender.unreadMessages)",
            "to_kernel_unread": "\(user.sender.unreadMessages)"])
        return id
    }

    /// Whether replacing `hosted` loses nothing: nobody attached, no message in it, no buffer lent.
    private static func unused(_ hosted: CommManager.Hosted) -> Bool {
        guard !hosted.remote.isAttached(.kernel), !hosted.remote.isAttached(.user) else { return false }
        let memory = hosted.kernel.memory, layout = hosted.kernel.layout
        for direction in Direction.allCases {
            guard let start = try? ResumePoint.sender(base: memory.base, layout: layout, direction: direction),
                  start.unreadMessages == 0, start.buffersInFlight.isEmpty else { return false }
        }
        return true
    }
}
