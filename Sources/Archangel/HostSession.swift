import ArchangelCore
import ArchangelSystem
import CArchangel
import Glibc
import Logging

/// One client connection of a `HostServer`: first a request, then, for an
/// attach, the liveness link of the side the client holds.
///
/// Used by the host's event-loop thread only.
final class HostSession: @unchecked Sendable {
    let socket: UnixSocket
    let credentials: UnixSocket.Credentials
    private unowned let server: HostServer
    /// The side this client holds, once attached.
    private var attached: (id: UInt32, side: ChannelSide, hosted: CommManager.Hosted)?
    private var finished = false
    /// When the connection was accepted (CLOCK_MONOTONIC ns), for the handshake timeout.
    private let connectedAt = archangel_monotonic_ns()

    init(socket: UnixSocket, credentials: UnixSocket.Credentials, server: HostServer) {
        self.socket = socket
        self.credentials = credentials
        self.server = server
    }

    /// Whether the client has been connected for `timeout` ns without a request that kept it (an attach).
    func handshakeExpired(now: UInt64, timeout: UInt64) -> Bool {
        attached == nil && !finished && now &- connectedAt > timeout
    }

    /// Tells an attached client that its channel was destroyed (so it does not
    /// keep the memory for a successor host); it is hung up next.
    func sayDestroyed() {
        guard let attached, !finished else { return }
        try? HostProtocol.send(HostProtocol.failure(.channelNotFound(attached.id)), on: socket)
    }

    var attachedChannel: UInt32? { attached?.id }

    var logger: Logger {
        var logger = server.logger
        logger[metadataKey: "pid"] = "\(credentials.pid)"
        if let attached {
            logger[metadataKey: "channel"] = "\(attached.id)"
            logger[metadataKey: "side"] = "\(attached.side)"
        }
        return logger
    }

    /// Whether the channel this client holds was destroyed under it.
    func channelWasDestroyed() -> Bool {
        guard let attached, !finished else { return false }
        return (try? server.manager.hosted(ChannelID(attached.id))) == nil
    }

    /// Handles what arrived on the socket; false when the session is over.
    func readable() -> Bool {
        guard !finished else { return false }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 8)
        defer { buffer.deallocate() }
        let count: Int
        let descriptors: [Int32]
        do { (count, descriptors) = try socket.receive(into: buffer) } catch {
            logger.warning("connection failed", metadata: ["error": "\(error)"])
            return false
        }
        defer { for fd in descriptors { close(fd) } }
        if count == 0 { return false }  // hung up: `hangUp` does the rest
        if attached != nil {
            logger.warning("an attached client sent data; attached clients must stay silent: disconnecting it")
            return false
        }
        let request: HostProtocol.Request
        do { request = try HostProtocol.decode(UnsafeRawBufferPointer(rebasing: buffer[..<count])) } catch {
            logger.warning("bad request: disconnecting the client", metadata: ["error": "\(error)"])
            try? HostProtocol.send(HostProtocol.failure(error), on: socket)
            return false
        }
        do throws(ChannelError) {
            switch request.operation {
            case .attach:
                try attach(request, descriptors: descriptors)
                return true
            case .statistics:
                var reply = HostProtocol.success()
                reply.channel_id = UInt32(server.manager.channelIDs.count)
                try HostProtocol.send(reply, text: Array(server.manager.statistics().text.utf8), on: socket)
            case .destroy:
                guard let id = request.channel else { throw .channelNotFound(ARCHANGEL_HOST_ANY_CHANNEL) }
                guard server.manager.destroyChannel(ChannelID(id)) else { throw .channelNotFound(id) }
                logger.info("channel destroyed at a client's request", metadata: ["channel": "\(id)"])
                server.dropSessions(of: id)
                var reply = HostProtocol.success()
                reply.channel_id = id
                try HostProtocol.send(reply, on: socket)
            case .sharedRegion:
                guard let id = request.channel else { throw .channelNotFound(ARCHANGEL_HOST_ANY_CHANNEL) }
                let hosted = try server.manager.hosted(ChannelID(id))
                var reply = HostProtocol.success()
                reply.channel_id = id
                if let region = hosted.kernel.extraRegion.current() {
                    reply.shared_size = UInt64(region.size)
                    try HostProtocol.send(reply, descriptors: [region.descriptor], on: socket)
                } else {
                    try HostProtocol.send(reply, on: socket)
                }
            }
        } catch {
            logger.notice("request refused", metadata: ["operation": "\(request.operation)", "error": "\(error)"])
            try? HostProtocol.send(HostProtocol.failure(error), on: socket)
        }
        return false
    }

    private func attach(_ request: HostProtocol.Request, descriptors: [Int32]) throws(ChannelError) {
        let manager = server.manager
        let side: ChannelSide = request.kernelSide ? .kernel : .user
        if side == .kernel && !server.configuration.allowKernelSide {
            throw .hostRefused(status: -EPERM, reason: "this host plays the kernel side of its channels itself; "
                + "attach the user side")
        }
        let expected = request.adopt ? 2 : 1
        guard descriptors.count == expected else {
            throw .protocolViolation("an attach carries \(expected) descriptor\(expected == 1 ? "" : "s") (the client's "
                + "counters\(request.adopt ? ", the memory to adopt" : "")), got \(descriptors.count)")
        }
        let id: ChannelID
        if request.adopt {
            id = try server.adopt(channel: request.channel, descriptor: descriptors[1])
        } else if let wanted = request.channel, (try? manager.hosted(ChannelID(wanted))) != nil {
            id = ChannelID(wanted)
        } else if request.create && server.configuration.allowCreate {
            id = try manager.createChannel(id: request.channel.map { ChannelID($0) }, configuration: request.geometry)
            logger.info("channel created for a client", metadata: ["channel": "\(id)"])
        } else {
            throw .channelNotFound(request.channel ?? ARCHANGEL_HOST_ANY_CHANNEL)
        }
        let hosted = try manager.hosted(id)
        // A counters memfd the client could truncate would fault our statistics reads (SIGBUS).
        guard SharedMemory.identity(of: descriptors[0])?.sizeSealed == true else {
            throw .protocolViolation("the counters descriptor is not a memfd sealed against shrinking (F_SEAL_SHRINK)")
        }
        // The mapping takes its own descriptor: the one received is closed by our caller.
        let counters = try SharedMemory(mapping: dup(descriptors[0]), size: Int(ARCHANGEL_HOST_COUNTERS_SIZE),
                                        writable: false)
        let remote = RemoteCounters(sender: CounterBlock(at: counters.base),
                                    receiver: CounterBlock(at: counters.base + CounterBlock.byteCount),
                                    mapping: counters)
        guard hosted.remote.claim(side, counters: remote) else { throw .sideInUse(id.rawValue) }
        let mine = hosted.endpoint(side), peer = hosted.endpoint(side == .kernel ? .user : .kernel)
        var reply = HostProtocol.success()
        reply.channel_id = id.rawValue
        reply.memory_size = UInt64(mine.memory.size)
        reply.side = side == .kernel ? 1 : 0
        reply.offsets = mine.layout.offsets
        var fds = [mine.memory.descriptor, mine.dataReady.descriptor, mine.spaceReady.descriptor,
                   peer.dataReady.descriptor, peer.spaceReady.descriptor]
        if let region = hosted.kernel.extraRegion.current() {
            reply.shared_size = UInt64(region.size)
            fds.append(region.descriptor)
        }
        do {
            try HostProtocol.send(reply, descriptors: fds, on: socket)
        } catch {
            hosted.remote.release(side)
            throw error
        }
        attached = (id.rawValue, side, hosted)
        logger.info("client attached", metadata: ["uid": "\(credentials.uid)"])
    }

    /// Ends the session. For an attached client: finishes the buffer return
    /// it may have left half done, and frees its side for the next process.
    func hangUp() {
        guard !finished else { return }
        finished = true
        guard let attached else { return }
        let memory = attached.hosted.kernel.memory
        do {
            let start = try ResumePoint.receiver(base: memory.base, layout: attached.hosted.kernel.layout,
                                                 direction: attached.side.incoming)
            logger.info("client detached; its side is free for another process",
                        metadata: ["completed_returns": "\(start.completedReturns)"])
            // Space the client consumed and buffers it returned are free now: wake a waiting sender.
            attached.hosted.endpoint(attached.side == .kernel ? .user : .kernel).spaceReady.notify()
        } catch {
            logger.error("client detached leaving its side's memory corrupted", metadata: ["error": "\(error)"])
        }
        attached.hosted.remote.release(attached.side)
    }
}

extension HostProtocol {
    /// A reply saying "done", to fill in.
    static func success() -> archangel_host_reply {
        var reply = archangel_host_reply()
        reply.magic = ARCHANGEL_HOST_MAGIC
        reply.abi_version = ABI.version
        return reply
    }
}
