import ArchangelCore
import ArchangelSystem
import CArchangel
import Glibc
import Synchronization

/// Channels of the archangel kernel module, reached through `/dev/archangel`:
/// the kernel side is kernel code (a sensor calling
/// `archangel_comm_send_message`), this process is the user side.
///
/// Opening attaches the user side of a channel: the device file binds to it
/// (one user side per channel), the channel's kernel pages are mapped
/// (header and the kernel's lines read-only), this process's eventfds are
/// registered for the kernel to signal, and the same rings run as on every
/// other backend. The kernel is woken with the `ARCHANGEL_IOC_NOTIFY` ioctl,
/// only when it sleeps. The open file is the liveness link: when the
/// channel is destroyed, blocked and later calls throw `closed`; when the
/// kernel finds this side's writes invalid, they throw `corrupted`. If this
/// process dies, the module keeps the channel and every committed message,
/// and the next process to attach carries on where this one stopped
/// (docs/recovery.md). Needs root (the device is 0600) and the module loaded.
/// See docs/kernel-backend.md.
public struct KernelBackend: ChannelBackend {
    /// The device node.
    public var devicePath: String
    /// Create the channel if the module does not have it yet (with `geometry`, or the module's default).
    public var create: Bool
    /// Geometry for a channel this open creates; nil takes the module's default.
    public var geometry: ChannelConfiguration?
    /// How blocking calls wait.
    public var waitPolicy: WaitPolicy
    /// How this side timestamps what it sends.
    public var timestamps: TimestampPolicy

    /// Creates a backend for the device at `devicePath`.
    public init(devicePath: String = KernelDevice.defaultPath, create: Bool = true,
                geometry: ChannelConfiguration? = nil, waitPolicy: WaitPolicy = .default,
                timestamps: TimestampPolicy = .monotonic) {
        self.devicePath = devicePath
        self.create = create
        self.geometry = geometry
        self.waitPolicy = waitPolicy
        self.timestamps = timestamps
    }

    /// `kernel`.
    public var name: String { "kernel" }

    /// Whether the module's device node exists (it says nothing of permissions).
    public static func isAvailable(devicePath: String = KernelDevice.defaultPath) -> Bool {
        KernelDevice.exists(at: devicePath)
    }

    /// Attaches the user side of channel `id`.
    ///
    /// - Throws: `deviceUnavailable` (module not loaded, or not root),
    ///   `channelNotFound` (and `create` is off), `sideInUse` (another
    ///   process holds the user side), `abiMismatch`, `corrupted` (the
    ///   channel memory does not check out), `closed` (destroyed meanwhile).
    public func openUserSide(_ id: ChannelID) throws(ChannelError) -> Channel { try attach(id) }

    /// Attaches the user side of channel `id`, or of a new channel with the lowest free id when `id` is nil.
    ///
    /// - Throws: as `openUserSide`; with `create`, also `tooManyChannels` and `invalidConfiguration`.
    public func attach(_ id: ChannelID?) throws(ChannelError) -> Channel {
        let device = try KernelDevice(path: devicePath)
        var channelID: UInt32
        if let id {
            channelID = id.rawValue
            do {
                _ = try device.attach(channelID)
            } catch .channelNotFound(let missing) {
                guard create else { throw .channelNotFound(missing) }
                do {
                    channelID = try device.create(id: channelID, geometry: geometry, attach: true)
                } catch .channelExists {
                    // Created by someone else meanwhile: attach to it below.
                }
            }
        } else {
            guard create else {
                throw .invalidConfiguration("no channel id to attach, and create is off: name a channel")
            }
            channelID = try device.create(id: nil, geometry: geometry, attach: true)
        }
        // Attaching again on the bound file reports the geometry (and binds, after a lost create race).
        let attachment = try device.attach(channelID)
        return try Self.open(device: device, attachment: attachment, channelID: channelID,
                             waitPolicy: waitPolicy, timestamps: timestamps)
    }

    /// Builds the user-side `Channel` over a device file bound to `channelID`.
    static func open(device: KernelDevice, attachment: KernelDevice.Attachment, channelID: UInt32,
                     waitPolicy: WaitPolicy, timestamps: TimestampPolicy) throws(ChannelError) -> Channel {
        let memory = try device.mapChannel(attachment)
        let layout = try ChannelLayout.load(from: memory.base, size: memory.size)
        guard layout.offsets == attachment.offsets else {
            throw .protocolViolation("the offsets ARCHANGEL_IOC_ATTACH reported differ from those in the channel memory")
        }
        guard layout.channelID == channelID else {
            throw .protocolViolation("attached channel \(channelID), the memory says channel \(layout.channelID)")
        }
        let dataReady = try EventFD(), spaceReady = try EventFD()
        try device.setEventFDs(data: dataReady.descriptor, space: spaceReady.descriptor)
        // The kernel's side of the channel waits and wakes by the same policy as this one.
        try waitPolicy.validate()
        try device.setWait(waitPolicy)
        // Take over where the side's previous holder stopped (a fresh channel is all zeros).
        // The counters are this process's own: the module counts only the kernel side.
        let takeover = Channel.Takeover(
            sender: try ResumePoint.sender(base: memory.base, layout: layout, direction: ChannelSide.user.outgoing),
            receiver: try ResumePoint.receiver(base: memory.base, layout: layout, direction: ChannelSide.user.incoming),
            senderCounters: nil, receiverCounters: nil)
        let link = ChannelLink(wakers: [dataReady, spaceReady])
        let watcher = try KernelAttachment(device: device, link: link)
        let slot = RegionSlot { try? device.mapSharedRegion() }
        let channel = Channel(id: ChannelID(channelID), side: .user, memory: memory, layout: layout,
                              dataReady: dataReady, spaceReady: spaceReady,
                              peerData: KernelNotifier(device: device, wake: .data),
                              peerSpace: KernelNotifier(device: device, wake: .space),
                              link: link, waitPolicy: waitPolicy, extraRegion: slot, timestamps: timestamps,
                              takeover: takeover, attachment: watcher)
        // The takeover may have released space a predecessor had consumed: wake a kernel sender waiting for it.
        channel.receiver.releaseConsumed()
        return channel
    }

    // MARK: Requests without an attach

    /// Creates channel `id` (nil: the lowest free id) in the module without attaching to it.
    ///
    /// - Parameter geometry: taken exactly; nil takes the module's default.
    /// - Returns: the new channel's id.
    /// - Throws: `deviceUnavailable`, `channelExists`, `tooManyChannels`, `invalidConfiguration`.
    public static func createChannel(_ id: ChannelID? = nil, geometry: ChannelConfiguration? = nil,
                                     devicePath: String = KernelDevice.defaultPath) throws(ChannelError) -> ChannelID {
        let device = try KernelDevice(path: devicePath)
        return ChannelID(try device.create(id: id?.rawValue, geometry: geometry, attach: false))
    }

    /// Destroys channel `id` in the module: its user side sees `closed`, kernel callers `-EPIPE`.
    ///
    /// - Throws: `deviceUnavailable`, `channelNotFound`.
    public static func destroyChannel(_ id: ChannelID, devicePath: String = KernelDevice.defaultPath)
        throws(ChannelError) {
        try KernelDevice(path: devicePath).destroy(id.rawValue)
    }

    /// The module's statistics text (`/proc/archangel/comm`): the kernel side's counters.
    ///
    /// - Throws: `deviceUnavailable` when the module is not loaded.
    public static func statisticsText() throws(ChannelError) -> String {
        try KernelDevice.statisticsText()
    }

    /// Channel `channel`'s statistics: the module's view (`/proc/archangel/comm`)
    /// completed with the counters this user side keeps in its own memory.
    ///
    /// For each direction the sender's counters come from the side that
    /// sends and the receiver's from the side that receives, so nothing is
    /// counted twice. Nil when the module does not list the channel.
    public static func statistics(of channel: Channel) -> ChannelStatistics? {
        guard let text = try? statisticsText(), let report = try? StatisticsReport(parsing: text),
              let kernel = report.channels.first(where: { $0.id == channel.id.rawValue }) else { return nil }
        return kernel.completed(userSender: channel.sender, userReceiver: channel.receiver)
    }
}

extension ChannelBackend where Self == KernelBackend {
    /// Channels of the archangel kernel module, through `/dev/archangel`.
    public static var kernel: KernelBackend { KernelBackend() }
}

extension ChannelStatistics {
    /// The kernel's view of a channel completed with the user side's own counters.
    func completed(userSender: MessageSender, userReceiver: MessageReceiver) -> ChannelStatistics {
        var s = self
        let tx = userSender.counters, rx = userReceiver.counters
        // to_user: the kernel sends (its counters are in /proc), this process receives.
        s.toUser.messagesReceived = rx.load(.messagesReceived)
        s.toUser.bytesReceived = rx.load(.bytesReceived)
        s.toUser.errors &+= rx.load(.errors)
        s.toUser.notificationsSent &+= rx.load(.notificationsSent)
        s.toUser.waits &+= rx.load(.waits)
        s.toUser.timedWaits &+= rx.load(.timedWaits)
        s.toUser.ringHighWater = max(s.toUser.ringHighWater, rx.load(.normalHighWater), rx.load(.expressHighWater))
        // to_kernel: this process sends, the kernel receives.
        s.toKernel.messagesSent = tx.load(.messagesSent)
        s.toKernel.bytesSent = tx.load(.bytesSent)
        s.toKernel.rejected = tx.load(.rejected)
        s.toKernel.queueFull = tx.load(.queueFull)
        s.toKernel.poolTransfers = tx.load(.poolTransfers)
        s.toKernel.copyFallbacks = tx.load(.copyFallbacks)
        s.toKernel.notificationsSuppressed = tx.load(.notificationsSuppressed)
        s.toKernel.errors &+= tx.load(.errors)
        s.toKernel.notificationsSent &+= tx.load(.notificationsSent)
        s.toKernel.waits &+= tx.load(.waits)
        s.toKernel.notificationsCoalesced = tx.load(.notificationsCoalesced)
        if userSender.error != nil || userReceiver.error != nil { s.health = .failed }
        return s
    }
}

/// Wakes the kernel side with `ARCHANGEL_IOC_NOTIFY`: the user sender's
/// `peerData` (DATA wakes kernel receivers), its receiver's `peerSpace`
/// (SPACE wakes kernel senders waiting for room or buffers). Called only
/// when the kernel announced a sleep on its read-only page.
final class KernelNotifier: PeerNotifier {
    private let device: KernelDevice
    private let wake: KernelDevice.Wake

    init(device: KernelDevice, wake: KernelDevice.Wake) {
        self.device = device
        self.wake = wake
    }

    func notify() {
        // EPIPE (destroyed) and EBADF (closed) are reported by the watcher and the link.
        device.notify(wake)
    }

    /// The trailing edge of a coalesced wake-up, from the process's timer thread.
    func notify(atNanoseconds deadline: UInt64) {
        WakeTimer.shared.schedule(self, atNanoseconds: deadline)
    }
}

/// The bound device file of a kernel channel, watched by a small thread:
/// the module reports a destroyed channel, or one it failed because this
/// side wrote something invalid, as EPOLLHUP | EPOLLERR on the file. The
/// watcher then closes the link with `closed` or the corruption. Detaching
/// closes the file, which frees the user side for another process.
final class KernelAttachment: ChannelAttachment, @unchecked Sendable {
    private let device: KernelDevice
    private let stopSignal: EventFD
    private let watcher: SystemThread
    private let detached = Atomic<Bool>(false)

    init(device: KernelDevice, link: ChannelLink) throws(ChannelError) {
        self.device = device
        let stopSignal = try EventFD()
        self.stopSignal = stopSignal
        // The descriptor stays open until detach() has joined this thread.
        let descriptor = device.descriptor
        watcher = try SystemThread(name: "archangel-kdev") {
            // events 0: only EPOLLHUP/EPOLLERR, which poll always reports; the
            // module's keyed EPOLLIN/EPOLLOUT wake-ups do not wake this thread.
            var fds = [pollfd(fd: descriptor, events: 0, revents: 0),
                       pollfd(fd: stopSignal.descriptor, events: Int16(POLLIN), revents: 0)]
            while true {
                fds[0].revents = 0
                fds[1].revents = 0
                let ready = archangel_ppoll(&fds, 2, nil)
                if ready < 0 && errno == EINTR { continue }
                if fds[1].revents != 0 { return }  // detached by us
                guard fds[0].revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 else { continue }
                if device.isChannelAlive() {
                    link.close(because: .corrupted(.reportedByPeer(
                        "the kernel found a bad index, record, descriptor or return entry written by this "
                            + "side (see errors in \(KernelDevice.statisticsPath)); destroy and recreate the channel")))
                } else {
                    link.close(because: .closed)
                }
                return
            }
        }
    }

    func detach() {
        guard !detached.exchange(true, ordering: .acquiringAndReleasing) else { return }
        stopSignal.notify()
        watcher.join()
        device.close()
    }

    deinit { detach() }
}

/// The kernel module when its device is there, else the userspace host:
/// `/dev/archangel` if it exists and opens, otherwise the host at `socketPath`.
public struct AutoBackend: ChannelBackend {
    /// The kernel module's device node.
    public var devicePath: String
    /// The userspace host's socket.
    public var socketPath: String
    /// Create the channel if it does not exist yet (either backend).
    public var create: Bool
    /// Geometry for a channel this open creates; nil takes the default.
    public var geometry: ChannelConfiguration?
    /// How blocking calls wait.
    public var waitPolicy: WaitPolicy
    /// How this side timestamps what it sends.
    public var timestamps: TimestampPolicy

    /// Creates a backend that prefers the device at `devicePath`, then the host at `socketPath`.
    public init(devicePath: String = KernelDevice.defaultPath, socketPath: String = HostServer.defaultSocketPath,
                create: Bool = true, geometry: ChannelConfiguration? = nil, waitPolicy: WaitPolicy = .default,
                timestamps: TimestampPolicy = .monotonic) {
        self.devicePath = devicePath
        self.socketPath = socketPath
        self.create = create
        self.geometry = geometry
        self.waitPolicy = waitPolicy
        self.timestamps = timestamps
    }

    /// `auto`.
    public var name: String { "auto" }

    /// The kernel backend this one tries first.
    public var kernel: KernelBackend {
        KernelBackend(devicePath: devicePath, create: create, geometry: geometry, waitPolicy: waitPolicy,
                      timestamps: timestamps)
    }

    /// The userspace backend it falls back to.
    public var userspace: UserspaceBackend {
        UserspaceBackend(socketPath: socketPath, create: create, geometry: geometry, waitPolicy: waitPolicy,
                         timestamps: timestamps)
    }

    /// Opens the user side of `id` through the kernel device when it exists and
    /// opens, else through the userspace host.
    ///
    /// - Throws: the kernel backend's errors once the device opened; else the userspace backend's.
    public func openUserSide(_ id: ChannelID) throws(ChannelError) -> Channel {
        if KernelDevice.exists(at: devicePath) {
            do {
                return try kernel.openUserSide(id)
            } catch .deviceUnavailable {
                // Present but not ours to open (not root): the host, then.
            }
        }
        return try userspace.openUserSide(id)
    }
}

extension ChannelBackend where Self == AutoBackend {
    /// `/dev/archangel` when the module is loaded and this process may open it, else the userspace host.
    public static var auto: AutoBackend { AutoBackend() }
}
