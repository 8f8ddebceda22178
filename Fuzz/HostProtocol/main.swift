// Fuzzes the userspace host's socket protocol (archangel_host_protocol.h),
// both ends of it:
//  - first byte even: the rest is one request datagram a client sent, read
//    by the host with `HostProtocol.decode` (what `HostSession.readable`
//    does with every request);
//  - first byte odd: the next byte's low 2 bits give how many descriptors
//    ride along, the rest is the reply datagram a host sent, read by the
//    client's `HostProtocol.exchange` over a real SOCK_SEQPACKET socket.
// Invariants:
//  - decode accepts exactly what a reference model accepts (64 bytes, magic,
//    ABI major, operation 1...4, known flags, zero reserved words) and the
//    accepted request re-encodes (`HostProtocol.request`) to the same bytes,
//    bar the geometry words that a zero normal_ring_bytes leaves unread;
//  - a client's geometry that validates lays out (`ChannelLayout(configuration:)`)
//    and that layout loads back from its header (creator and loader agree);
//    one that does not validate is refused as `invalidConfiguration`;
//  - failure replies carry their text, cut to 159 bytes, NUL-terminated;
//  - exchange accepts exactly the replies the model accepts (>= 640 bytes,
//    magic, ABI major, status 0, fd_count and text_size as carried), returns
//    the text after the header and the descriptors carried, maps refusals to
//    sideInUse / tooManyChannels / hostRefused by status, and never leaks a
//    descriptor (the process's open descriptors are counted around it).
@testable import Archangel
import ArchangelCore
import ArchangelSystem
import CArchangel
import FuzzSupport
import Glibc

let requestSize = MemoryLayout<archangel_host_request>.size
let replySize = MemoryLayout<archangel_host_reply>.size

nonisolated(unsafe) var listenerPath = ""
nonisolated(unsafe) var listener: UnixSocket?

func openDescriptors() -> Int {
    guard let dir = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(dir) }
    var n = 0
    while readdir(dir) != nil { n += 1 }
    return n
}

func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var f = FuzzInput(data, size)
    let selector = f.u8()
    if selector & 1 == 0 {
        decodeRequest(f.rest())
    } else {
        let fds = Int(f.u8() & 3)
        exchangeReply(Array(f.rest().prefix(8192)), descriptors: fds)
    }
    return 0
}

func word(_ bytes: UnsafeRawBufferPointer, _ index: Int) -> UInt32 {
    UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self))
}

func decodeRequest(_ bytes: UnsafeRawBufferPointer) {
    let modelAccepts = bytes.count == requestSize
        && word(bytes, 0) == ARCHANGEL_HOST_MAGIC && word(bytes, 1) >> 16 == ABI.version >> 16
        && (1...4).contains(word(bytes, 2))
        && word(bytes, 4) & ~(ARCHANGEL_HOST_F_CREATE | ARCHANGEL_HOST_F_KERNEL_SIDE | ARCHANGEL_HOST_F_ADOPT) == 0
        && (11..<16).allSatisfy { word(bytes, $0) == 0 }
    let request: HostProtocol.Request
    do {
        request = try HostProtocol.decode(bytes)
    } catch {
        require(!modelAccepts, "decode refused a request the model accepts: \(error)")
        switch error {
        case .protocolViolation, .abiMismatch: break
        default: require(false, "decode threw \(error)")
        }
        // What the host sends back before hanging up.
        let reply = HostProtocol.failure(error)
        let text = HostProtocol.message(of: reply)
        require(text.utf8.count <= 159, "failure text of \(text.utf8.count) bytes")
        require(error.description.utf8.starts(with: text.utf8) || text.contains("\u{FFFD}"),
                "failure text is not the error's: \(text)")
        require(reply.status == -HostProtocol.status(of: error) && reply.status < 0, "failure status \(reply.status)")
        return
    }
    require(modelAccepts, "decode accepted a request the model refuses")
    var again = HostProtocol.request(request.operation, channel: request.channel, create: request.create,
                                     kernelSide: request.kernelSide, adopt: request.adopt,
                                     geometry: request.geometry, abi: request.clientABI)
    var expected = Array(bytes)
    if word(bytes, 5) == 0 { for i in 20..<44 { expected[i] = 0 } }
    let encoded = withUnsafeBytes(of: &again) { Array($0) }
    require(encoded == expected, "request(decode(x)) != x")
    guard let geometry = request.geometry else { return }
    do {
        try geometry.validate()
    } catch {
        guard case .invalidConfiguration = error else { require(false, "validate threw \(error)"); return }
        return
    }
    do {
        let layout = try ChannelLayout(configuration: geometry, channelID: request.channel ?? 0)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<archangel_channel_header>.size, alignment: 8)
        defer { raw.deallocate() }
        layout.writeHeader(to: raw)
        let loaded = try ChannelLayout.load(from: raw, size: layout.totalSize)
        require(loaded == layout, "a created layout loads back different")
        require(geometry.maxPayload >= geometry.maxInlinePayload(ringBytes: min(geometry.normalRingBytes,
                                                                                   geometry.expressRingBytes)),
                "maxPayload below the inline limit")
    } catch {
        require(false, "a validated geometry does not lay out and load: \(error) (\(geometry))")
    }
}

func exchangeReply(_ reply: [UInt8], descriptors: Int) {
    if listener == nil {
        listenerPath = "/tmp/archangel-fuzz-host-\(getpid()).sock"
        unlink(listenerPath)
        listener = try! UnixSocket.listen(at: listenerPath, mode: 0o600)
        atexit { unlink(listenerPath) }
    }
    let server = listener!
    let before = openDescriptors()
    let host = try! SystemThread(name: "fuzz-host") {
        do {
            let client = try server.accept()
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 8)
            defer { buffer.deallocate() }
            let (_, received) = try client.receive(into: buffer)
            for fd in received { close(fd) }
            let fds = (0..<descriptors).map { _ in open("/dev/null", O_RDONLY | O_CLOEXEC) }
            defer { for fd in fds { close(fd) } }
            let out = UnsafeMutableRawBufferPointer.allocate(byteCount: max(reply.count, 1), alignment: 8)
            defer { out.deallocate() }
            out.copyBytes(from: reply)
            try client.send(UnsafeRawBufferPointer(rebasing: out[..<reply.count]), descriptors: fds)
            // Wait for the client to hang up before closing our end.
            _ = try client.waitReadable(timeout: .seconds(10))
        } catch {
            require(false, "the fuzz host failed: \(error)")
        }
    }
    let request = HostProtocol.request(.statistics, channel: nil)
    var modelAccepts = false
    var status: Int32 = 0
    reply.withUnsafeBytes { raw in
        guard raw.count >= replySize else { return }
        status = Int32(bitPattern: word(raw, 2))
        modelAccepts = word(raw, 0) == ARCHANGEL_HOST_MAGIC && word(raw, 1) >> 16 == ABI.version >> 16
            && status == 0 && Int(word(raw, 8)) == descriptors && Int(word(raw, 10)) == raw.count - replySize
    }
    let headerOK = reply.count >= replySize && reply.withUnsafeBytes {
        word($0, 0) == ARCHANGEL_HOST_MAGIC && word($0, 1) >> 16 == ABI.version >> 16
    }
    do {
        let (socket, answer) = try HostProtocol.exchange(request, at: listenerPath, timeout: .seconds(10))
        require(modelAccepts, "exchange accepted a reply the model refuses")
        require(answer.text == Array(reply.dropFirst(replySize)), "reply text is not what followed the header")
        require(answer.descriptors.count == descriptors, "\(answer.descriptors.count) descriptors of \(descriptors)")
        for fd in answer.descriptors { close(fd) }
        _ = socket
    } catch {
        require(!modelAccepts, "exchange refused a reply the model accepts: \(error)")
        switch error {
        case .peerDisconnected: require(reply.isEmpty, "peerDisconnected for \(reply.count) bytes")
        case .protocolViolation, .abiMismatch: break
        case .sideInUse: require(headerOK && status == -EBUSY, "sideInUse for status \(status)")
        case .tooManyChannels: require(headerOK && status == -ENOSPC, "tooManyChannels for status \(status)")
        case .hostRefused(let s, _): require(headerOK && s == status && s != 0, "hostRefused(\(s)) for status \(status)")
        default: require(false, "exchange threw \(error)")
        }
    }
    host.join()
    let after = openDescriptors()
    require(after == before, "descriptors open before the exchange: \(before), after: \(after)")
}

func seeds() -> [(name: String, bytes: [UInt8])] {
    func request(_ r: archangel_host_request) -> [UInt8] {
        var r = r
        return [0] + withUnsafeBytes(of: &r) { Array($0) }
    }
    func reply(_ r: archangel_host_reply, text: [UInt8] = [], fds: UInt8 = 0) -> [UInt8] {
        var r = r
        r.text_size = UInt32(text.count)
        r.fd_count = UInt32(fds)
        return [1, fds] + withUnsafeBytes(of: &r) { Array($0) } + text
    }
    let small = ChannelConfiguration(normalRingBytes: 4096, expressRingBytes: 4096, poolBufferSize: 256,
                                     poolBufferCount: 8, poolThreshold: 128, maxSegments: 8)
    var attached = HostProtocol.success()
    attached.channel_id = 3
    attached.offsets = try! ChannelLayout(configuration: small, channelID: 3).offsets
    return [
        ("attach", request(HostProtocol.request(.attach, channel: 3))),
        ("create", request(HostProtocol.request(.attach, channel: nil, create: true, geometry: small))),
        ("adopt-kernel", request(HostProtocol.request(.attach, channel: 9, kernelSide: true, adopt: true))),
        ("statistics", request(HostProtocol.request(.statistics, channel: nil))),
        ("destroy", request(HostProtocol.request(.destroy, channel: 1))),
        ("shared-region", request(HostProtocol.request(.sharedRegion, channel: 2))),
        ("reply-statistics", reply(HostProtocol.success(), text: Array(StatisticsReport(channels: [ChannelStatistics(id: 0)], maxChannels: 4).text.utf8))),
        ("reply-attach", reply(attached, fds: 3)),
        ("reply-busy", reply(HostProtocol.failure(.sideInUse(3)))),
        ("reply-full", reply(HostProtocol.failure(.tooManyChannels(limit: 16)))),
        ("reply-refused", reply(HostProtocol.failure(.channelNotFound(5)))),
    ]
}

runFuzzer(seeds: seeds, fuzz)
