import ArchangelCore
import ArchangelSystem
import CArchangel
import Glibc

/// Channels hosted by another process (`archangel serve`, or a program
/// embedding a `HostServer`), reached over its Unix socket: the embedded
/// default, with no kernel module and no privileges.
///
/// Opening attaches one side of a channel: the host passes the channel's
/// memfd and eventfds (SCM_RIGHTS), this process maps them and runs the same
/// rings as every other backend. The connection stays open as the liveness
/// link: if the host dies, blocked and later calls throw `peerDisconnected`;
/// if this process dies, the host frees the side for a successor, which
/// carries on exactly where this one stopped (docs/recovery.md).
public struct UserspaceBackend: ChannelBackend {
    /// The host's socket.
    public var socketPath: String
    /// Create the channel if the host does not have it yet (with `geometry`, or the host's default).
    public var create: Bool
    /// Geometry for a channel this open creates; nil takes the host's default.
    public var geometry: ChannelConfiguration?
    /// How blocking calls wait.
    public var waitPolicy: WaitPolicy
    /// How this side timestamps what it sends.
    public var timestamps: TimestampPolicy

    /// Creates a backend for the host at `socketPath`.
    public init(socketPath: String = HostServer.defaultSocketPath, create: Bool = true,
                geometry: ChannelConfiguration? = nil, waitPolicy: WaitPolicy = .default,
                timestamps: TimestampPolicy = .monotonic) {
        self.socketPath = socketPath
        self.create = create
        self.geometry = geometry
        self.waitPolicy = waitPolicy
        self.timestamps = timestamps
    }

    /// `userspace`.
    public var name: String { "userspace" }

    /// Attaches the user side of channel `id`.
    ///
    /// - Throws: `hostUnavailable` (no host at the path), `abiMismatch`,
    ///   `sideInUse` (another process holds that side), `hostRefused`,
    ///   `protocolViolation`, `corrupted` (the channel memory does not check out).
    public func openUserSide(_ id: ChannelID) throws(ChannelError) -> Channel { try attach(id, side: .user) }

    /// Attaches the kernel side of channel `id` (a sensor process), where the host allows it.
    public func openKernelSide(_ id: ChannelID) throws(ChannelError) -> Channel { try attach(id, side: .kernel) }

    /// Attaches `side` of channel `id`, or of a new channel with the lowest free id when `id` is nil.
    public func attach(_ id: ChannelID?, side: ChannelSide) throws(ChannelError) -> Channel {
        try waitPolicy.validate()
        let counters = try SharedMemory(memfdNamed: "archangel-counters", size: Int(ARCHANGEL_HOST_COUNTERS_SIZE))
        let request = HostProtocol.request(.attach, channel: id?.rawValue, create: create,
                                           kernelSide: side == .kernel, geometry: geometry)
        let (socket, reply) = try HostProtocol.exchange(request, at: socketPath, descriptors: [counters.descriptor])
        var fds = reply.descriptors
        defer { for fd in fds where fd >= 0 { close(fd) } }
        guard fds.count >= 5, reply.header.side == (side == .kernel ? 1 : 0) else {
            throw .protocolViolation("an attach reply carries at least 5 descriptors and our side, got "
                + "\(fds.count) and side \(reply.header.side)")
        }
        // Each descriptor leaves `fds` before the call that takes it over
        // (which closes it on failure), so none is closed twice.
        func take(_ index: Int) -> Int32 {
            defer { fds[index] = -1 }
            return fds[index]
        }
        let size = Int(clamping: reply.header.memory_size)
        let memory = try SharedMemory(mapping: take(0), size: size)
        let layout = try ChannelLayout.load(from: memory.base, size: size)
        guard layout.offsets == reply.header.offsets else {
            throw .protocolViolation("the offsets in the reply differ from those in the channel memory")
        }
        let channelID = ChannelID(reply.header.channel_id)
        guard layout.channelID == channelID.rawValue else {
            throw .protocolViolation("the host answered for channel \(channelID), the memory is channel \(layout.channelID)")
        }
        let dataReady = EventFD(adopting: take(1)), spaceReady = EventFD(adopting: take(2))
        let peerData = EventFD(adopting: take(3)), peerSpace = EventFD(adopting: take(4))
        var region: SharedMemory?
        if fds.count >= 6, reply.header.shared_size > 0 {
            region = try SharedMemory(mapping: take(5), size: Int(clamping: reply.header.shared_size))
        }
        // Take over where the side's previous holder stopped (a fresh channel is all zeros).
        let takeover = Channel.Takeover(
            sender: try ResumePoint.sender(base: memory.base, layout: layout, direction: side.outgoing),
            receiver: try ResumePoint.receiver(base: memory.base, layout: layout, direction: side.incoming),
            senderCounters: CounterBlock(at: counters.base),
            receiverCounters: CounterBlock(at: counters.base + CounterBlock.byteCount))
        let link = ChannelLink(wakers: [dataReady, spaceReady])
        let attachment = try HostAttachment(socket: socket, link: link, counters: counters)
        let path = socketPath
        let slot = RegionSlot { Self.fetchRegion(of: channelID, at: path) }
        if let region { slot.region.withLock { $0 = region } }
        let channel = Channel(id: channelID, side: side, memory: memory, layout: layout, dataReady: dataReady,
                              spaceReady: spaceReady, peerData: peerData, peerSpace: peerSpace, link: link,
                              waitPolicy: waitPolicy, extraRegion: slot, timestamps: timestamps, takeover: takeover,
                              attachment: attachment)
        // The takeover may have released space a predecessor had consumed: wake a sender waiting for it.
        channel.receiver.releaseConsumed()
        return channel
    }

    private static func fetchRegion(of id: ChannelID, at path: String) -> SharedMemory? {
        guard let (_, reply) = try? HostProtocol.exchange(HostProtocol.request(.sharedRegion, channel: id.rawValue),
                                                         at: path),
              let fd = reply.descriptors.first else { return nil }
        for extra in reply.descriptors.dropFirst() { close(extra) }
        return try? SharedMemory(mapping: fd, size: Int(clamping: reply.header.shared_size))
    }

    // MARK: Host requests without an attach

    /// The host's statistics text (the `/proc/archangel/comm` format).
    public static func statisticsText(socket path: String = HostServer.defaultSocketPath) throws(ChannelError) -> String {
        let (_, reply) = try HostProtocol.exchange(HostProtocol.request(.statistics, channel: nil), at: path)
        for fd in reply.descriptors { close(fd) }
        return String(decoding: reply.text, as: UTF8.self)
    }

    /// Asks the host to destroy channel `id`; processes attached to it see `peerDisconnected`.
    public static func destroyChannel(_ id: ChannelID, socket path: String = HostServer.defaultSocketPath)
        throws(ChannelError) {
        let (_, reply) = try HostProtocol.exchange(HostProtocol.request(.destroy, channel: id.rawValue), at: path)
        for fd in reply.descriptors { close(fd) }
    }
}

extension ChannelBackend where Self == UserspaceBackend {
    /// Channels of the host listening at `socket` (default: `HostServer.defaultSocketPath`).
    public static func userspace(socket: String = HostServer.defaultSocketPath) -> UserspaceBackend {
        UserspaceBackend(socketPath: socket)
    }
}

extension archangel_channel_offsets: @retroactive Equatable {
    /// Byte-wise equality (the struct has no padding).
    public static func == (a: Self, b: Self) -> Bool {
        withUnsafeBytes(of: a) { x in withUnsafeBytes(of: b) { y in x.elementsEqual(y) } }
    }
}

/// The connection that holds a side of a hosted channel, watched by a small
/// thread: when the host hangs up, the channel closes with `peerDisconnected`.
final class HostAttachment: ChannelAttachment, @unchecked Sendable {
    private let socket: PthreadLock<UnixSocket?>
    private let stopSignal: EventFD
    private let watcher: SystemThread
    /// Where this process's counters live (the host maps them read-only).
    let counters: SharedMemory

    init(socket: UnixSocket, link: ChannelLink, counters: SharedMemory) throws(ChannelError) {
        self.counters = counters
        let stopSignal = try EventFD()
        self.stopSignal = stopSignal
        self.socket = PthreadLock(socket)
        let descriptor = socket.descriptor
        watcher = try SystemThread(name: "archangel-attach") {
            var fds = [pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: stopSignal.descriptor, events: Int16(POLLIN), revents: 0)]
            while true {
                let ready = archangel_ppoll(&fds, 2, nil)
                if ready < 0 && errno == EINTR { continue }
                if fds[1].revents != 0 { return }  // detached by us
                // The host never writes to an attached client: readable means hung up.
                link.close(because: .peerDisconnected)
                return
            }
        }
    }

    func detach() {
        stopSignal.notify()
        watcher.join()
        socket.withLock { $0 = nil }
    }

    deinit { detach() }
}
