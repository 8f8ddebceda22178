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
    ///
    /// When this process held channel `id` through a host that died, it kept
    /// the channel's memory (`RetainedMemory`); the attach brings it back for
    /// the new host to adopt (the peer's process brings the same memory, or
    /// attaches to it once adopted), and the channel
    /// carries on with them (`hostRecovery` says `.adopted`). A host that
    /// cannot adopt it refuses; the attach then starts afresh and
    /// `hostRecovery` reports the messages lost (docs/recovery.md).
    public func attach(_ id: ChannelID?, side: ChannelSide) throws(ChannelError) -> Channel {
        try waitPolicy.validate()
        let counters = try SharedMemory(memfdNamed: "archangel-counters", size: Int(ARCHANGEL_HOST_COUNTERS_SIZE))
        var kept: (memory: SharedMemory, unread: Int)?
        if let id, let memory = RetainedMemory.take(path: socketPath, id: id.rawValue, side: side) {
            // Brought back even with nothing unread now: the peer may still be
            // publishing into it (a send under way when the host died commits).
            kept = (memory, RetainedMemory.unreadMessages(in: memory))
        }
        func request(adopt: Bool) -> archangel_host_request {
            HostProtocol.request(.attach, channel: id?.rawValue, create: create, kernelSide: side == .kernel,
                                 adopt: adopt, geometry: geometry)
        }
        var recovery = HostRecovery.none
        let socket: UnixSocket, reply: HostProtocol.Reply
        do {
            (socket, reply) = try HostProtocol.exchange(request(adopt: kept != nil), at: socketPath,
                                                        descriptors: [counters.descriptor] + (kept.map { [$0.memory.descriptor] } ?? []))
            if let kept { recovery = .adopted(unread: kept.unread) }
        } catch {
            guard let kept else { throw error }
            guard case .hostRefused(let status, let reason) = error,
                  [-EEXIST, -EPERM, -EPROTO, -EIO, -EINVAL].contains(status) else {
                // No host yet, or a host that went away: keep the memory for the next try.
                RetainedMemory.put(kept.memory, path: socketPath, id: id?.rawValue ?? 0, side: side)
                throw error
            }
            // This host will not adopt it: its messages are lost; say so and start afresh.
            recovery = .lost(messages: kept.unread, reason: reason)
            (socket, reply) = try HostProtocol.exchange(request(adopt: false), at: socketPath,
                                                        descriptors: [counters.descriptor])
        }
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
        if let kept, case .adopted = recovery,
           SharedMemory.identity(of: fds[0]).map({ kept.memory.identity?.sameObject(as: $0) ?? false }) != true {
            throw .protocolViolation("the host adopted the memory brought back but answered with other memory")
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
        let attachment = try HostAttachment(socket: socket, link: link, counters: counters, memory: memory,
                                            retainAs: (socketPath, channelID.rawValue, side), recovery: recovery)
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

/// What attaching found of the channel memory this process kept when its
/// previous host died (`Channel.hostRecovery`).
public enum HostRecovery: Sendable, Equatable {
    /// Nothing was kept: a first attach, or the previous host did not die.
    case none
    /// The host adopted the memory: the `unread` messages in it are delivered as usual.
    case adopted(unread: Int)
    /// The host could not adopt it (`reason`): the `messages` unread in it,
    /// both directions, are lost. The channel started afresh.
    case lost(messages: Int, reason: String)
}

extension Channel {
    /// For a channel of the userspace host: whether this attach brought back
    /// the memory of a host that died, and what became of its messages.
    public var hostRecovery: HostRecovery { (attachment as? HostAttachment)?.recovery ?? .none }
}

/// Channel memory this process kept when the host it had attached through
/// hung up without a word (it died), per socket path, channel id and side, for
/// the next attach to bring back (docs/recovery.md).
enum RetainedMemory {
    private static let table = PthreadLock<[String: SharedMemory]>([:])

    private static func key(_ path: String, _ id: UInt32, _ side: ChannelSide) -> String { "\(id).\(side)@\(path)" }

    static func put(_ memory: SharedMemory, path: String, id: UInt32, side: ChannelSide) {
        table.withLock { $0[key(path, id, side)] = memory }
    }

    static func take(path: String, id: UInt32, side: ChannelSide) -> SharedMemory? {
        table.withLock { $0.removeValue(forKey: key(path, id, side)) }
    }

    /// Messages published and not consumed in either direction (0 when the memory does not check out).
    static func unreadMessages(in memory: SharedMemory) -> Int {
        guard let layout = try? ChannelLayout.load(from: memory.base, size: memory.size) else { return 0 }
        var unread = 0
        for direction in Direction.allCases {
            guard let start = try? ResumePoint.sender(base: memory.base, layout: layout, direction: direction) else {
                return 0
            }
            unread += start.unreadMessages
        }
        return unread
    }
}

/// The connection that holds a side of a hosted channel, watched by a small
/// thread: when the host hangs up, the channel closes with `peerDisconnected`.
/// A host that died hangs up without a word: the watcher then keeps the
/// channel memory (`RetainedMemory`) for the next attach; a host that
/// destroyed the channel says so first, and the memory goes.
final class HostAttachment: ChannelAttachment, @unchecked Sendable {
    private let socket: PthreadLock<UnixSocket?>
    private let stopSignal: EventFD
    private let watcher: SystemThread
    /// Where this process's counters live (the host maps them read-only).
    let counters: SharedMemory
    /// What this attach found of memory kept from a host that died.
    let recovery: HostRecovery

    init(socket: UnixSocket, link: ChannelLink, counters: SharedMemory, memory: SharedMemory,
         retainAs key: (path: String, id: UInt32, side: ChannelSide), recovery: HostRecovery) throws(ChannelError) {
        self.counters = counters
        self.recovery = recovery
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
                // The host writes to an attached client only to say its channel was destroyed.
                var byte: UInt8 = 0
                let said = recv(descriptor, &byte, 1, Int32(MSG_DONTWAIT))
                if said <= 0 { RetainedMemory.put(memory, path: key.path, id: key.id, side: key.side) }
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
