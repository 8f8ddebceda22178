import ArchangelCore
import ArchangelSystem
import Synchronization

/// The communication manager: owns up to `maxChannels` channels and plays the
/// kernel side of each (the seed's `archangel_comm_manager`).
///
/// Embed it to *be* the host: sensors send with `send(channel:...)` and
/// receive answers with `receive(channel:...)`, the seed's calls; AI engines
/// open the user side of a channel through a backend (`InProcessBackend`
/// here; the userspace host and the kernel module later).
public final class CommManager: Sendable {
    /// Limits and defaults of a manager.
    public struct Configuration: Sendable, Equatable {
        /// The most channels at once (ids 0..<maxChannels). The seed's default is 16.
        public var maxChannels: Int
        /// Geometry of new channels.
        public var channel: ChannelConfiguration
        /// How blocking calls wait.
        public var waitPolicy: WaitPolicy
        /// How both sides timestamp what they send.
        public var timestamps: TimestampPolicy

        /// Creates a configuration.
        public init(maxChannels: Int = 16, channel: ChannelConfiguration = .default,
                    waitPolicy: WaitPolicy = .default, timestamps: TimestampPolicy = .monotonic) {
            self.maxChannels = maxChannels
            self.channel = channel
            self.waitPolicy = waitPolicy
            self.timestamps = timestamps
        }
    }

    /// Both endpoints of a hosted channel.
    struct Hosted: Sendable {
        let kernel: Channel
        let user: Channel
        let link: ChannelLink
        /// Sides held by processes attached through a `HostServer`.
        let remote = RemoteSides()

        /// The local endpoint of `side`.
        func endpoint(_ side: ChannelSide) -> Channel { side == .kernel ? kernel : user }
    }

    /// The configuration in force.
    public let configuration: Configuration
    private let channels = PthreadLock<[UInt32: Hosted]>([:])
    /// Ids chosen by a `createChannel` still building them, so no other call picks them.
    private let reserved = PthreadLock<Set<UInt32>>([])

    /// Creates a manager with no channels.
    ///
    /// - Throws: `invalidConfiguration` for a limit outside 1...4096 or bad channel geometry.
    public init(configuration: Configuration = .init()) throws(ChannelError) {
        guard configuration.maxChannels >= 1, configuration.maxChannels <= 4096 else {
            throw .invalidConfiguration("maxChannels = \(configuration.maxChannels): must be 1...4096")
        }
        try configuration.channel.validate()
        try configuration.waitPolicy.validate()
        self.configuration = configuration
    }

    deinit {
        for hosted in channels.withLock({ Array($0.values) }) { hosted.link.close() }
    }

    // MARK: Channel management (archangel_comm_channel_create / _destroy / _get)

    /// Creates a channel with the lowest free id, or with `id`.
    ///
    /// - Throws: `tooManyChannels`, `channelExists`, `invalidChannelID`, or a system error.
    @discardableResult
    public func createChannel(id: ChannelID? = nil, configuration: ChannelConfiguration? = nil) throws(ChannelError)
        -> ChannelID {
        let limit = self.configuration.maxChannels
        // Reserve the id under the lock, build outside it (mmap and eventfds take time).
        let chosen = try channels.withLock { (table) throws(ChannelError) -> UInt32 in
            try reserved.withLock { (taken) throws(ChannelError) -> UInt32 in
                let busy = Set(table.keys).union(taken)
                let pick: UInt32
                if let id {
                    guard Int(id.rawValue) < limit else { throw .invalidChannelID(id.rawValue, limit: limit) }
                    guard !busy.contains(id.rawValue) else { throw .channelExists(id.rawValue) }
                    pick = id.rawValue
                } else {
                    guard let free = (0..<UInt32(limit)).first(where: { !busy.contains($0) }) else {
                        throw .tooManyChannels(limit: limit)
                    }
                    pick = free
                }
                taken.insert(pick)
                return pick
            }
        }
        defer { _ = reserved.withLock { $0.remove(chosen) } }
        let hosted = try Self.build(id: chosen, configuration: configuration ?? self.configuration.channel,
                                    waitPolicy: self.configuration.waitPolicy,
                                    timestamps: self.configuration.timestamps)
        channels.withLock { $0[chosen] = hosted }
        return ChannelID(chosen)
    }

    /// Hosts channel `id` on `memory`, channel memory that already holds a
    /// channel (kept by a client when its previous host died), instead of
    /// creating it. The endpoints here start where the memory says
    /// (`takeover`); the caller has checked it (`HostServer`).
    ///
    /// - Throws: `channelExists`, `invalidChannelID`, or a system error.
    func adoptChannel(id: ChannelID, memory: SharedMemory, layout: ChannelLayout,
                      takeover: (kernel: Channel.Takeover, user: Channel.Takeover)) throws(ChannelError) {
        let limit = configuration.maxChannels
        try channels.withLock { (table) throws(ChannelError) in
            guard Int(id.rawValue) < limit else { throw .invalidChannelID(id.rawValue, limit: limit) }
            guard table[id.rawValue] == nil, !reserved.withLock({ $0.contains(id.rawValue) }) else {
                throw .channelExists(id.rawValue)
            }
            table[id.rawValue] = try Self.build(id: id.rawValue, configuration: .default, waitPolicy: configuration.waitPolicy,
                                                timestamps: configuration.timestamps,
                                                adopting: (memory, layout, takeover))
        }
    }

    private static func build(id: UInt32, configuration: ChannelConfiguration, waitPolicy: WaitPolicy,
                              timestamps: TimestampPolicy,
                              adopting: (SharedMemory, ChannelLayout, (kernel: Channel.Takeover, user: Channel.Takeover))?
                                = nil) throws(ChannelError) -> Hosted {
        let layout: ChannelLayout, memory: SharedMemory
        if let (adopted, adoptedLayout, _) = adopting {
            (memory, layout) = (adopted, adoptedLayout)
        } else {
            layout = try ChannelLayout(configuration: configuration, channelID: id)
            memory = try SharedMemory(memfdNamed: "archangel-channel-\(id)", size: layout.totalSize)
            layout.writeHeader(to: memory.base)
        }
        // Each side waits for data on one eventfd and for room on another.
        let kernelData = try EventFD(), kernelSpace = try EventFD()
        let userData = try EventFD(), userSpace = try EventFD()
        let link = ChannelLink(wakers: [kernelData, kernelSpace, userData, userSpace])
        let region = RegionSlot()
        let kernel = Channel(id: ChannelID(id), side: .kernel, memory: memory, layout: layout,
                             dataReady: kernelData, spaceReady: kernelSpace,
                             peerData: userData, peerSpace: userSpace, link: link, waitPolicy: waitPolicy,
                             extraRegion: region, timestamps: timestamps, takeover: adopting?.2.kernel)
        let user = Channel(id: ChannelID(id), side: .user, memory: memory, layout: layout,
                           dataReady: userData, spaceReady: userSpace,
                           peerData: kernelData, peerSpace: kernelSpace, link: link, waitPolicy: waitPolicy,
                           extraRegion: region, timestamps: timestamps, takeover: adopting?.2.user)
        return Hosted(kernel: kernel, user: user, link: link)
    }

    /// Destroys channel `id`: both endpoints are closed, blocked calls throw
    /// `closed`, and the memory goes once the last endpoint reference is dropped.
    ///
    /// - Returns: false when no such channel exists.
    @discardableResult
    public func destroyChannel(_ id: ChannelID) -> Bool {
        guard let hosted = channels.withLock({ $0.removeValue(forKey: id.rawValue) }) else { return false }
        hosted.link.close()
        hosted.kernel.close()
        hosted.user.close()
        return true
    }

    /// The kernel-side endpoint of channel `id`.
    public func channel(_ id: ChannelID) throws(ChannelError) -> Channel { try hosted(id).kernel }

    /// The user-side endpoint of channel `id`, for in-process peers (see `InProcessBackend`).
    public func userEndpoint(_ id: ChannelID) throws(ChannelError) -> Channel { try hosted(id).user }

    /// Ids of the channels in use, ascending.
    public var channelIDs: [ChannelID] { channels.withLock { $0.keys.sorted().map { ChannelID(rawValue: $0) } } }

    func hosted(_ id: ChannelID) throws(ChannelError) -> Hosted {
        guard let hosted = channels.withLock({ $0[id.rawValue] }) else { throw .channelNotFound(id.rawValue) }
        return hosted
    }

    // MARK: Messages (archangel_comm_send_message / _receive_message)

    /// Sends kernel → user on channel `id`, waiting for room (nil timeout: as long as it takes).
    public func send(channel id: ChannelID, type: MessageType, priority: MessagePriority = .normal,
                     bytes: UnsafeRawBufferPointer, timeout: Duration? = nil) throws(ChannelError) {
        try channel(id).send(type, priority: priority, bytes: bytes, timeout: timeout)
    }

    /// Sends kernel → user on channel `id`.
    public func send(channel id: ChannelID, type: MessageType, priority: MessagePriority = .normal,
                     bytes: [UInt8], timeout: Duration? = nil) throws(ChannelError) {
        try channel(id).send(type, priority: priority, bytes: bytes, timeout: timeout)
    }

    /// Receives a user → kernel message into `buffer`; see `Channel.receive(into:timeout:)`.
    public func receive(channel id: ChannelID, into buffer: UnsafeMutableRawBufferPointer,
                        timeout: Duration? = nil) throws(ChannelError) -> MessageInfo {
        try channel(id).receive(into: buffer, timeout: timeout)
    }

    /// Receives a user → kernel message, copying it out.
    public func receive(channel id: ChannelID, timeout: Duration? = nil) throws(ChannelError) -> Message {
        try channel(id).receive(timeout: timeout)
    }

    // MARK: Notifications (archangel_comm_notify_kernel / _notify_user)

    /// Wakes the kernel side's receiver of channel `id`.
    public func notifyKernel(channel id: ChannelID) throws(ChannelError) { try hosted(id).kernel.wakeReceiver() }

    /// Wakes the user side's receiver of channel `id`.
    public func notifyUser(channel id: ChannelID) throws(ChannelError) { try hosted(id).user.wakeReceiver() }

    // MARK: Extra shared memory (archangel_comm_setup_shared_memory / _cleanup_shared_memory)

    /// Sets up an extra shared region of `size` bytes for channel `id`, visible to both sides
    /// through `Channel.withSharedRegion`. Replaces an earlier one.
    public func setupSharedMemory(channel id: ChannelID, size: Int) throws(ChannelError) {
        guard size > 0, size <= 1 << 30 else {
            throw .invalidConfiguration("shared memory size \(size): must be 1 byte to 1 GiB")
        }
        let hosted = try hosted(id)
        let pageRounded = (size + ABI.pageSize - 1) / ABI.pageSize * ABI.pageSize
        let region = try SharedMemory(memfdNamed: "archangel-shared-\(id)", size: pageRounded)
        hosted.kernel.extraRegion.region.withLock { $0 = region }
    }

    /// Removes channel `id`'s extra shared region (unmapped once no caller still uses it).
    public func cleanupSharedMemory(channel id: ChannelID) {
        guard let hosted = try? hosted(id) else { return }
        hosted.kernel.extraRegion.region.withLock { $0 = nil }
    }

    // MARK: Statistics

    /// The statistics of every channel, in the `/proc/archangel/comm` format's model.
    public func statistics() -> StatisticsReport {
        let hosted = channels.withLock { $0.sorted { $0.key < $1.key }.map(\.value) }
        return StatisticsReport(channels: hosted.map { Self.statistics($0) },
                                maxChannels: configuration.maxChannels)
    }

    static func statistics(_ hosted: Hosted) -> ChannelStatistics {
        // Under the sides' lock, so that a client leaving meanwhile is counted once.
        hosted.remote.withIncarnations { remoteKernel, remoteUser in statistics(hosted, remoteKernel, remoteUser) }
    }

    private static func statistics(_ hosted: Hosted, _ remoteKernel: [RemoteCounters],
                                   _ remoteUser: [RemoteCounters]) -> ChannelStatistics {
        let kernel = hosted.kernel, user = hosted.user
        let remoteErrors = (remoteKernel + remoteUser).reduce(UInt64(0)) {
            $0 + $1.sender.load(.errors) + $1.receiver.load(.errors)
        }
        let failed = [kernel.sender.error, kernel.receiver.error, user.sender.error, user.receiver.error]
            .contains { $0 != nil } || remoteErrors > 0
        // A side held remotely counts in its process's memory; its gauges
        // (buffers in use) are the latest holder's.
        return ChannelStatistics(
            id: kernel.id.rawValue, health: failed ? .failed : .active,
            toUser: .init(senders: [kernel.sender.counters] + remoteKernel.map(\.sender),
                          receivers: [user.receiver.counters] + remoteUser.map(\.receiver),
                          gauges: remoteKernel.last?.sender ?? kernel.sender.counters, rings: kernel.sender),
            toKernel: .init(senders: [user.sender.counters] + remoteUser.map(\.sender),
                            receivers: [kernel.receiver.counters] + remoteKernel.map(\.receiver),
                            gauges: remoteUser.last?.sender ?? user.sender.counters, rings: user.sender))
    }
}

/// The counters of one process that holds a side of a channel, or the sum of
/// those that held it before.
struct RemoteCounters: Sendable {
    let sender: CounterBlock
    let receiver: CounterBlock
    /// Keeps the read-only mapping of the process's counters alive (nil for the sum).
    let mapping: SharedMemory?
}

/// Which sides of a hosted channel are held by other processes, with their
/// counters, and the sum of the counters of every process that held one
/// before (so figures survive a client, and a departed client costs the host
/// no descriptor or mapping: ten thousand attach cycles keep it flat).
final class RemoteSides: Sendable {
    private struct State {
        var current: [ChannelSide: RemoteCounters] = [:]
        var retired: [ChannelSide: RemoteCounters] = [:]
    }
    private let state = PthreadLock(State())

    deinit {
        state.withLock { s in
            for sum in s.retired.values {
                sum.sender.deallocate()
                sum.receiver.deallocate()
            }
        }
    }

    /// Claims `side` for a process; false when another holds it.
    func claim(_ side: ChannelSide, counters: RemoteCounters) -> Bool {
        state.withLock { s in
            guard s.current[side] == nil else { return false }
            s.current[side] = counters
            return true
        }
    }

    /// Frees `side` after its process hung up: its counters join the sum of
    /// its predecessors' (point-in-time gauges: the latest holder's), and
    /// its mapping goes.
    func release(_ side: ChannelSide) {
        state.withLock { s in
            guard let leaving = s.current.removeValue(forKey: side) else { return }
            let sum = s.retired[side] ?? RemoteCounters(sender: .allocate(), receiver: .allocate(), mapping: nil)
            for (into, from) in [(sum.sender, leaving.sender), (sum.receiver, leaving.receiver)] {
                for counter in Counter.allCases {
                    let value = from.load(counter)
                    switch counter {
                    case .poolBuffersInUse: into.set(counter, value)
                    case .normalHighWater, .expressHighWater: into.set(counter, max(into.load(counter), value))
                    default: into.add(counter, value)
                    }
                }
            }
            s.retired[side] = sum
        }
    }

    /// Whether a process holds `side` now.
    func isAttached(_ side: ChannelSide) -> Bool { state.withLock { $0.current[side] != nil } }

    /// Runs `body` on the counters of each side (kernel, user): the sum of
    /// the past holders', then the current holder's; under the lock, so a
    /// holder leaving meanwhile is counted exactly once.
    func withIncarnations<R>(_ body: ([RemoteCounters], [RemoteCounters]) -> R) -> R {
        state.withLock { s in
            func list(_ side: ChannelSide) -> [RemoteCounters] { [s.retired[side], s.current[side]].compactMap { $0 } }
            return body(list(.kernel), list(.user))
        }
    }
}

extension DirectionStatistics {
    /// Combines the two sides' counters of one direction.
    public init(sender: MessageSender, receiver: MessageReceiver) {
        self.init(senders: [sender.counters], receivers: [receiver.counters], gauges: sender.counters, rings: sender)
    }

    /// Combines the counters of every holder of each side of one direction.
    ///
    /// - Parameters:
    ///   - senders, receivers: the counter blocks to add up (one per process that held the side).
    ///   - gauges: the block whose point-in-time figures count (the current sender's).
    ///   - rings: any sender bound to this direction's memory, to read ring occupancy from shared memory.
    init(senders: [CounterBlock], receivers: [CounterBlock], gauges: CounterBlock, rings: MessageSender) {
        self.init()
        func sum(_ blocks: [CounterBlock], _ counter: Counter) -> UInt64 {
            blocks.reduce(0) { $0 &+ $1.load(counter) }
        }
        messagesSent = sum(senders, .messagesSent)
        bytesSent = sum(senders, .bytesSent)
        messagesReceived = sum(receivers, .messagesReceived)
        bytesReceived = sum(receivers, .bytesReceived)
        rejected = sum(senders, .rejected)
        errors = sum(senders, .errors) + sum(receivers, .errors)
        queueFull = sum(senders, .queueFull)
        ringUsed = rings.ringUsedNow()
        ringSize = rings.ringSize
        ringHighWater = receivers.map { max($0.load(.normalHighWater), $0.load(.expressHighWater)) }.max() ?? 0
        poolTransfers = sum(senders, .poolTransfers)
        copyFallbacks = sum(senders, .copyFallbacks)
        // Returned buffers count as free even before the sender takes them back.
        let lent = gauges.load(.poolBuffersInUse), pending = rings.returnsPendingNow()
        poolInUse = lent > pending ? lent - pending : 0
        poolSize = UInt64(rings.poolSize)
        notificationsSent = sum(senders, .notificationsSent) + sum(receivers, .notificationsSent)
        notificationsSuppressed = sum(senders, .notificationsSuppressed)
        waits = sum(senders, .waits) + sum(receivers, .waits)
        notificationsCoalesced = sum(senders, .notificationsCoalesced)
        timedWaits = sum(senders, .timedWaits) + sum(receivers, .timedWaits)
    }
}

extension Channel {
    /// Lends the extra shared region set up with `CommManager.setupSharedMemory`
    /// to `body`; nil when there is none.
    ///
    /// Both sides see the same bytes; coordinate access through messages. The
    /// region stays mapped while `body` runs even if it is cleaned up meanwhile.
    public func withSharedRegion<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R? {
        guard let region = extraRegion.current() else { return nil }
        return try withExtendedLifetime(region) {
            try body(UnsafeMutableRawBufferPointer(start: region.base, count: region.size))
        }
    }

    /// Whether an extra shared region is set up.
    public var hasSharedRegion: Bool { extraRegion.current() != nil }
}
