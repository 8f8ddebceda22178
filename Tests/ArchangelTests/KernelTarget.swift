import Archangel
import ArchangelSystem
import CArchangel
import Glibc

/// The kernel module: the channel is created in `archangel.ko` through
/// `/dev/archangel`, the user side attached through `.kernel` (mapped kernel
/// pages, eventfds the kernel signals, NOTIFY ioctls), and the kernel side
/// driven through `/dev/archangel_testpeer`, whose ioctls call the module's
/// exported in-kernel API. Statistics are the module's `/proc/archangel/comm`
/// completed with the user side's own counters. Runs only where both
/// devices exist (in the test VM: scripts/kernel-test), as root.
struct KernelTarget: ConformanceTarget {
    var description: String { "kernel" }

    /// Whether the module and the test peer are loaded here.
    static var isAvailable: Bool {
        KernelDevice.exists() && KernelDevice.exists(at: KernelTestPeer.path)
    }

    /// `others`, plus this target where the module is loaded.
    /// `ARCHANGEL_CONFORMANCE_BACKENDS=kernel` (set in the test VM) runs only this one.
    static func including(_ others: [any ConformanceTarget]) -> [any ConformanceTarget] {
        let only = getenv("ARCHANGEL_CONFORMANCE_BACKENDS").map { String(cString: $0) }
        let all = isAvailable ? others + [KernelTarget()] : others
        guard let only, !only.isEmpty else { return all }
        let names = only.split(separator: ",").map(String.init)
        return all.filter { names.contains($0.description) }
    }

    func open(configuration: ChannelConfiguration, waitPolicy: WaitPolicy) throws -> ConformanceChannel {
        let id = try KernelBackend.createChannel(geometry: configuration)
        let user: Channel
        let peer: KernelTestPeer
        do {
            // The backend also sets the module's side of the channel to the same policy.
            user = try Channel.open(id, backend: KernelBackend(create: false, waitPolicy: waitPolicy))
            peer = try KernelTestPeer(channel: id.rawValue, maxPayload: user.maxPayload)
        } catch {
            try? KernelBackend.destroyChannel(id)
            throw error
        }
        return ConformanceChannel(user: user, peer: peer,
                                  close: {
                                      user.close()
                                      try? KernelBackend.destroyChannel(id)
                                  },
                                  statistics: { KernelBackend.statistics(of: user) })
    }
}

/// The kernel side of a channel, played by `archangel_testpeer.ko` on behalf
/// of this process: each call is one ioctl that calls
/// `archangel_comm_send_message_ex` / `archangel_comm_receive_message_ex`.
final class KernelTestPeer: ConformancePeer, @unchecked Sendable {
    static let path = "/dev/archangel_testpeer"
    private let fd: Int32
    private let channel: UInt32
    private let maxPayload: Int

    init(channel: UInt32, maxPayload: Int) throws {
        fd = open(Self.path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw ChannelError.deviceUnavailable(path: Self.path, errno: errno) }
        self.channel = channel
        self.maxPayload = maxPayload
    }

    deinit { close(fd) }

    private static func milliseconds(_ timeout: Duration?) -> Int64 {
        guard let timeout else { return Int64(ARCHANGEL_TESTPEER_FOREVER) }
        let (seconds, attoseconds) = timeout.components
        return max(0, seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
    }

    /// The module's errno as the `ChannelError` a `Channel` would throw.
    private func error(_ code: Int32, size: Int = 0) -> ChannelError {
        switch code {
        case ETIMEDOUT: .timedOut
        case ENOENT, EPIPE: .closed
        case EMSGSIZE: .payloadTooLarge(size: size, limit: maxPayload)
        case EIO: .corrupted(.reportedByPeer("the module failed the channel"))
        default: .system(operation: "archangel_testpeer ioctl", errno: code)
        }
    }

    /// One send; false on EAGAIN.
    private func send(_ type: MessageType, priority: MessagePriority, bytes: [UInt8], correlation: UInt64?,
                      timeoutMilliseconds: Int64) throws -> Bool {
        var req = archangel_testpeer_send()
        req.channel_id = channel
        req.type = type.rawValue
        req.priority = priority.rawValue
        req.size = UInt32(bytes.count)
        req.timeout_ms = timeoutMilliseconds
        if let correlation {
            req.flags = ARCHANGEL_TESTPEER_CORRELATED
            req.correlation = correlation
        }
        let result: Int32 = bytes.withUnsafeBytes { payload in
            req.data = UInt64(UInt(bitPattern: payload.baseAddress))
            return withUnsafeMutableBytes(of: &req) { archangel_ioctl(fd, archangel_testpeer_ioc_send, $0.baseAddress) }
        }
        if result >= 0 { return true }
        let code = errno
        if code == EAGAIN { return false }
        throw error(code, size: bytes.count)
    }

    func peerSend(_ type: MessageType, priority: MessagePriority, bytes: [UInt8], correlation: UInt64?,
                  timeout: Duration?) throws {
        let sent = try send(type, priority: priority, bytes: bytes, correlation: correlation,
                            timeoutMilliseconds: Self.milliseconds(timeout))
        // A zero timeout does not wait: full is a timeout, as for a Channel.
        if !sent { throw ChannelError.timedOut }
    }

    func peerTrySend(_ type: MessageType, priority: MessagePriority, bytes: [UInt8]) throws -> Bool {
        try send(type, priority: priority, bytes: bytes, correlation: nil, timeoutMilliseconds: 0)
    }

    func peerReceive(timeout: Duration?) throws -> Message {
        var buffer = [UInt8](repeating: 0, count: max(maxPayload, 1))
        var req = archangel_testpeer_recv()
        req.channel_id = channel
        req.max_size = UInt32(buffer.count)
        req.timeout_ms = Self.milliseconds(timeout)
        let result: Int32 = buffer.withUnsafeMutableBytes { out in
            req.data = UInt64(UInt(bitPattern: out.baseAddress))
            return withUnsafeMutableBytes(of: &req) { archangel_ioctl(fd, archangel_testpeer_ioc_recv, $0.baseAddress) }
        }
        guard result >= 0 else {
            let code = errno
            throw code == EAGAIN ? ChannelError.timedOut : error(code)
        }
        buffer.removeSubrange(Int(req.size)...)
        let flags = MessageFlags(rawValue: req.flags)
        guard let type = MessageType(rawValue: req.type), let priority = MessagePriority(rawValue: req.priority) else {
            throw ChannelError.protocolViolation("the module delivered type \(req.type), priority \(req.priority)")
        }
        return Message(type: type, priority: priority, sequence: req.sequence, timestamp: req.timestamp, flags: flags,
                       correlation: flags.contains(.correlated) ? req.correlation : nil, bytes: buffer)
    }
}
