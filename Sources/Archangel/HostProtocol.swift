import ArchangelCore
import ArchangelSystem
import CArchangel
import Glibc

/// The userspace host's attach protocol (`archangel_host_protocol.h`):
/// one request from the client, one reply from the host, each a single
/// SOCK_SEQPACKET message with descriptors attached.
enum HostProtocol {
    /// What a client asks for.
    enum Operation: UInt32 {
        case attach = 1
        case statistics = 2
        case destroy = 3
        case sharedRegion = 4
    }

    static let requestSize = MemoryLayout<archangel_host_request>.size
    static let replySize = MemoryLayout<archangel_host_reply>.size
    /// Room for a reply with the statistics text of many channels.
    static let maxReply = 1 << 20

    /// A request as the host decoded and checked it.
    struct Request {
        var operation: Operation
        var channel: UInt32?
        var create: Bool
        var kernelSide: Bool
        /// An attach that brings back the channel memfd of a host that died.
        var adopt: Bool = false
        var geometry: ChannelConfiguration?
        var clientABI: UInt32
    }

    /// Builds a request.
    static func request(_ operation: Operation, channel: UInt32?, create: Bool = false, kernelSide: Bool = false,
                        adopt: Bool = false, geometry: ChannelConfiguration? = nil,
                        abi: UInt32 = ABI.version) -> archangel_host_request {
        var r = archangel_host_request()
        r.magic = ARCHANGEL_HOST_MAGIC
        r.abi_version = abi
        r.op = operation.rawValue
        r.channel_id = channel ?? ARCHANGEL_HOST_ANY_CHANNEL
        r.flags = (create ? ARCHANGEL_HOST_F_CREATE : 0) | (kernelSide ? ARCHANGEL_HOST_F_KERNEL_SIDE : 0)
            | (adopt ? ARCHANGEL_HOST_F_ADOPT : 0)
        if let g = geometry {
            r.normal_ring_bytes = UInt32(g.normalRingBytes)
            r.express_ring_bytes = UInt32(g.expressRingBytes)
            r.pool_buffer_size = UInt32(g.poolBufferSize)
            r.pool_buffer_count = UInt32(g.poolBufferCount)
            r.pool_threshold = UInt32(g.poolThreshold)
            r.max_segments = UInt32(g.maxSegments)
        }
        return r
    }

    /// Decodes and checks a request read from a client. Throws `protocolViolation` or `abiMismatch`.
    static func decode(_ bytes: UnsafeRawBufferPointer) throws(ChannelError) -> Request {
        guard bytes.count == requestSize else {
            throw .protocolViolation("a request is \(requestSize) bytes, got \(bytes.count)")
        }
        let r = bytes.loadUnaligned(as: archangel_host_request.self)
        guard r.magic == ARCHANGEL_HOST_MAGIC else {
            throw .protocolViolation("bad magic 0x\(String(r.magic, radix: 16)): not an Archangel client")
        }
        guard r.abi_version >> 16 == ABI.version >> 16 else { throw .abiMismatch(ours: ABI.version, theirs: r.abi_version) }
        guard let operation = Operation(rawValue: r.op) else { throw .protocolViolation("unknown operation \(r.op)") }
        // ARCHANGEL_HOST_F_KNOWN (a macro of three terms Swift does not import).
        let known = ARCHANGEL_HOST_F_CREATE | ARCHANGEL_HOST_F_KERNEL_SIDE | ARCHANGEL_HOST_F_ADOPT
        guard r.flags & ~known == 0 else {
            throw .protocolViolation("unknown flags 0x\(String(r.flags, radix: 16))")
        }
        let reserved = r.reserved
        guard reserved.0 == 0, reserved.1 == 0, reserved.2 == 0, reserved.3 == 0, reserved.4 == 0 else {
            throw .protocolViolation("reserved request fields are not zero")
        }
        var geometry: ChannelConfiguration?
        if r.normal_ring_bytes != 0 {
            geometry = ChannelConfiguration(normalRingBytes: Int(r.normal_ring_bytes),
                                            expressRingBytes: Int(r.express_ring_bytes),
                                            poolBufferSize: Int(r.pool_buffer_size),
                                            poolBufferCount: Int(r.pool_buffer_count),
                                            poolThreshold: Int(r.pool_threshold), maxSegments: Int(r.max_segments))
        }
        return Request(operation: operation,
                       channel: r.channel_id == ARCHANGEL_HOST_ANY_CHANNEL ? nil : r.channel_id,
                       create: r.flags & ARCHANGEL_HOST_F_CREATE != 0,
                       kernelSide: r.flags & ARCHANGEL_HOST_F_KERNEL_SIDE != 0,
                       adopt: r.flags & ARCHANGEL_HOST_F_ADOPT != 0,
                       geometry: geometry, clientABI: r.abi_version)
    }

    /// A reply saying `error` went wrong, with the text the client shows.
    static func failure(_ error: ChannelError) -> archangel_host_reply {
        var reply = archangel_host_reply()
        reply.magic = ARCHANGEL_HOST_MAGIC
        reply.abi_version = ABI.version
        reply.status = -status(of: error)
        if case .tooManyChannels(let limit) = error { reply.channel_id = UInt32(clamping: limit) }
        setMessage(&reply, error.description)
        return reply
    }

    /// The errno a refusal carries on the wire.
    static func status(of error: ChannelError) -> Int32 {
        switch error {
        case .channelNotFound: ENOENT
        case .channelExists: EEXIST
        case .tooManyChannels: ENOSPC
        case .invalidChannelID, .invalidConfiguration: EINVAL
        case .abiMismatch, .protocolViolation: EPROTO
        case .sideInUse: EBUSY
        case .hostRefused(let status, _): -status
        case .system(_, let errno): errno
        default: EIO
        }
    }

    static func setMessage(_ reply: inout archangel_host_reply, _ text: String) {
        let bytes = Array(text.utf8.prefix(159))
        withUnsafeMutableBytes(of: &reply.message) { raw in
            raw.initializeMemory(as: UInt8.self, repeating: 0)
            raw.copyBytes(from: bytes)
        }
    }

    static func message(of reply: archangel_host_reply) -> String {
        withUnsafeBytes(of: reply.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    /// Sends `reply` (plus `text` after it) with `descriptors` on `socket`.
    static func send(_ reply: archangel_host_reply, text: [UInt8] = [], descriptors: [Int32] = [],
                     on socket: UnixSocket) throws(ChannelError) {
        var reply = reply
        reply.text_size = UInt32(text.count)
        reply.fd_count = UInt32(descriptors.count)
        var bytes = [UInt8](repeating: 0, count: replySize + text.count)
        bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: reply, as: archangel_host_reply.self)
            if !text.isEmpty { UnsafeMutableRawBufferPointer(rebasing: raw[replySize...]).copyBytes(from: text) }
        }
        try withBytes(bytes) { (raw) throws(ChannelError) in try socket.send(raw, descriptors: descriptors) }
    }

    /// A reply as the client decoded and checked it, with the descriptors it carried (owned by the caller).
    struct Reply {
        var header: archangel_host_reply
        var text: [UInt8]
        var descriptors: [Int32]
    }

    /// Sends `request` on a fresh connection to `path` and reads the reply.
    ///
    /// Returns the connection too: for an attach it stays open as the liveness link.
    /// - Throws: `hostUnavailable`, `abiMismatch`, `hostRefused`, `sideInUse`, `protocolViolation`, `system`.
    static func exchange(_ request: archangel_host_request, at path: String, descriptors: [Int32] = [],
                         timeout: Duration = .seconds(10)) throws(ChannelError) -> (UnixSocket, Reply) {
        let socket: UnixSocket
        do {
            socket = try UnixSocket.connect(to: path)
        } catch {
            if case .system(_, let code) = error { throw .hostUnavailable(path: path, errno: code) }
            throw error
        }
        var request = request
        let requestBytes = withUnsafeBytes(of: &request) { Array($0) }
        try withBytes(requestBytes) { (raw) throws(ChannelError) in try socket.send(raw, descriptors: descriptors) }
        guard try socket.waitReadable(timeout: timeout) else {
            throw .protocolViolation("the host at \(path) did not answer within \(timeout)")
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: maxReply, alignment: 8)
        defer { buffer.deallocate() }
        let (count, fds) = try socket.receive(into: buffer)
        func closeAll() { for fd in fds { close(fd) } }
        guard count >= replySize else {
            closeAll()
            throw count == 0 ? .peerDisconnected
                : .protocolViolation("a reply is at least \(replySize) bytes, got \(count)")
        }
        let header = UnsafeRawBufferPointer(buffer).loadUnaligned(as: archangel_host_reply.self)
        guard header.magic == ARCHANGEL_HOST_MAGIC else {
            closeAll()
            throw .protocolViolation("bad reply magic 0x\(String(header.magic, radix: 16)): not an Archangel host")
        }
        guard header.abi_version >> 16 == ABI.version >> 16 else {
            closeAll()
            throw .abiMismatch(ours: ABI.version, theirs: header.abi_version)
        }
        guard header.status == 0 else {
            closeAll()
            let text = message(of: header)
            if header.status == -EBUSY { throw .sideInUse(header.channel_id) }
            if header.status == -ENOSPC, header.channel_id > 0 { throw .tooManyChannels(limit: Int(header.channel_id)) }
            throw .hostRefused(status: header.status, reason: text)
        }
        guard Int(header.fd_count) == fds.count, Int(header.text_size) == count - replySize else {
            closeAll()
            throw .protocolViolation("reply announces \(header.fd_count) descriptors and \(header.text_size) bytes of "
                + "text, carries \(fds.count) and \(count - replySize)")
        }
        let text = Array(UnsafeRawBufferPointer(rebasing: buffer[replySize..<count]))
        return (socket, Reply(header: header, text: text, descriptors: fds))
    }
}
