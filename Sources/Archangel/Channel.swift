import ArchangelCore
import ArchangelSystem
import Synchronization

/// One end of a bidirectional channel: sends on its outgoing direction and
/// receives from its incoming one.
///
/// The same type serves the kernel side (held by a `CommManager`) and the
/// user side (opened through a backend). Each direction is single-producer,
/// single-consumer: send from one thread at a time and receive from one
/// thread at a time (they may be two different threads). Blocking calls wait
/// by the endpoint's `WaitPolicy` (docs/efficiency.md): by default they
/// sleep on an eventfd with need-wakeup armed, poll once per window while
/// messages stream in, and spin only while a reply is expected within the
/// spin budget, so a busy peer costs no system call and an idle one no CPU.
public final class Channel: Sendable {
    /// The channel id.
    public let id: ChannelID
    /// Which end this is.
    public let side: ChannelSide
    /// The sending half (outgoing direction).
    public let sender: MessageSender
    /// The receiving half (incoming direction).
    public let receiver: MessageReceiver
    /// The geometry of the channel memory.
    public let layout: ChannelLayout
    /// How blocking calls wait.
    public let waitPolicy: WaitPolicy

    let memory: SharedMemory
    let dataReady: EventFD
    let spaceReady: EventFD
    @usableFromInline let link: ChannelLink
    let pump = PthreadLock<ReceivePump?>(nil)
    /// Set once the pump exists: checked by every synchronous receive, so an
    /// atomic load rather than the pump's lock.
    @usableFromInline let pumpStarted = Atomic<Bool>(false)
    let extraRegion: RegionSlot
    /// How blocking receives wait (the receiving thread only, like the receiver).
    let receivePath: ReceivePath

    /// What ties an endpoint in another process to its host (the connection,
    /// the counters mapping); released when the endpoint goes.
    let attachment: (any ChannelAttachment)?

    init(id: ChannelID, side: ChannelSide, memory: SharedMemory, layout: ChannelLayout,
         dataReady: EventFD, spaceReady: EventFD, peerData: any PeerNotifier, peerSpace: any PeerNotifier,
         link: ChannelLink, waitPolicy: WaitPolicy, extraRegion: RegionSlot, timestamps: TimestampPolicy,
         takeover: Takeover? = nil, attachment: (any ChannelAttachment)? = nil) {
        self.id = id
        self.side = side
        self.memory = memory
        self.layout = layout
        self.dataReady = dataReady
        self.spaceReady = spaceReady
        self.link = link
        self.waitPolicy = waitPolicy
        self.extraRegion = extraRegion
        self.attachment = attachment
        sender = MessageSender(base: memory.base, layout: layout, direction: side.outgoing, notifier: peerData,
                               timestamps: timestamps, waitPolicy: waitPolicy, resume: takeover?.sender,
                               counters: takeover?.senderCounters)
        receiver = MessageReceiver(base: memory.base, layout: layout, direction: side.incoming, notifier: peerSpace,
                                   resume: takeover?.receiver, counters: takeover?.receiverCounters)
        receivePath = ReceivePath(receiver: receiver, sender: sender, dataReady: dataReady, link: link,
                                  policy: waitPolicy, owners: [memory] + (attachment.map { [$0] } ?? []))
    }

    /// How an endpoint takes over a side of a channel already in use.
    struct Takeover {
        var sender: ResumePoint.Sender
        var receiver: ResumePoint.Receiver
        var senderCounters: CounterBlock?
        var receiverCounters: CounterBlock?
    }

    deinit {
        pump.withLock { $0?.stop() }
    }

    /// The largest payload one message may carry.
    public var maxPayload: Int { sender.maxPayload }

    /// Whether the channel is still open.
    public var isOpen: Bool { link.isOpen }

    /// Closes the channel for both ends and wakes every blocked call, which then throws `closed`.
    ///
    /// A channel also closes itself when either side finds its shared memory
    /// corrupted; blocked calls then throw that `corrupted` error.
    public func close() {
        link.close()
        pump.withLock { $0?.stop() }
        attachment?.detach()
    }

    // MARK: Sending

    /// Sends a message without blocking.
    ///
    /// - Parameter options: `urgent` wakes the receiver now whatever the
    ///   coalescing (`critical` implies it); `noWakeup` says more follows
    ///   (docs/efficiency.md).
    /// - Returns: true when sent, false when the ring is full or the pool is
    ///   empty (would block; counted as `queue_full`).
    /// - Throws: `payloadTooLarge`, `closed`, `corrupted`.
    @discardableResult
    public func trySend(_ type: MessageType, priority: MessagePriority = .normal,
                        bytes: UnsafeRawBufferPointer, options: SendOptions = []) throws(ChannelError) -> Bool {
        guard link.isOpen else { throw link.closedError }
        return try failingChannel { () throws(ChannelError) in
            try sender.trySend(type: type, priority: priority, payload: bytes, options: options) == .sent
        }
    }

    /// Sends a message without blocking.
    @discardableResult
    public func trySend(_ type: MessageType, priority: MessagePriority = .normal,
                        bytes: [UInt8], options: SendOptions = []) throws(ChannelError) -> Bool {
        try withBytes(bytes) { (raw) throws(ChannelError) in
            try trySend(type, priority: priority, bytes: raw, options: options)
        }
    }

    /// Sends a message, waiting for room when the ring is full or the pool empty.
    ///
    /// - Parameters:
    ///   - correlation: the sequence of the request this message answers (see `respond(to:...)`).
    ///   - timeout: how long to wait for room; nil waits as long as it takes.
    ///   - options: `urgent` (wake now; `critical` implies it) or `noWakeup` (more follows).
    /// - Throws: `timedOut`, `payloadTooLarge`, `closed`, `corrupted`.
    public func send(_ type: MessageType, priority: MessagePriority = .normal, bytes: UnsafeRawBufferPointer,
                     correlation: UInt64? = nil, timeout: Duration? = nil,
                     options: SendOptions = []) throws(ChannelError) {
        // The common case, room now, without the wait loop's closures.
        guard link.isOpen else { throw link.closedError }
        let outcome: SendOutcome
        do {
            outcome = try sender.trySend(type: type, priority: priority, payload: bytes, correlation: correlation,
                                         options: options)
        } catch {
            throw link.failed(error)
        }
        guard case .wouldBlock = outcome else { return }
        // Counted as queue_full once, above; the retries are not.
        try waitLoop(timeout: timeout, event: spaceReady) { (_) throws(ChannelError) -> SendBlock? in
            switch try sender.trySend(type: type, priority: priority, payload: bytes, correlation: correlation,
                                      countFull: false, options: options) {
            case .sent: return nil
            case .wouldBlock(let block): return block
            }
        } prepare: { (block) throws(ChannelError) -> Bool in
            try sender.prepareToWait(for: block)
        } finish: { block in
            sender.finishWait(for: block)
        }
    }

    /// Sends a message, waiting for room.
    public func send(_ type: MessageType, priority: MessagePriority = .normal, bytes: [UInt8],
                     correlation: UInt64? = nil, timeout: Duration? = nil,
                     options: SendOptions = []) throws(ChannelError) {
        try withBytes(bytes) { (raw) throws(ChannelError) in
            try send(type, priority: priority, bytes: raw, correlation: correlation, timeout: timeout,
                     options: options)
        }
    }

    /// Answers `request`: sends a message whose correlation names the request's sequence.
    ///
    /// A response is awaited by definition, so it is sent `urgent` by
    /// default: it wakes the requester at once, whatever the coalescing.
    public func respond(to request: MessageView, type: MessageType = .aiResponse,
                        priority: MessagePriority? = nil, bytes: UnsafeRawBufferPointer,
                        timeout: Duration? = nil, options: SendOptions = .urgent) throws(ChannelError) {
        try send(type, priority: priority ?? request.priority, bytes: bytes, correlation: request.sequence,
                 timeout: timeout, options: options)
    }

    /// Answers `request`: sends a message whose correlation names the request's sequence (`urgent` by default).
    public func respond(to request: Message, type: MessageType = .aiResponse,
                        priority: MessagePriority? = nil, bytes: [UInt8], timeout: Duration? = nil,
                        options: SendOptions = .urgent) throws(ChannelError) {
        try withBytes(bytes) { (raw) throws(ChannelError) in
            try send(type, priority: priority ?? request.priority, bytes: raw, correlation: request.sequence,
                     timeout: timeout, options: options)
        }
    }

    // MARK: Receiving

    /// Lends the next message to `body` in place (zero copy), waiting for one.
    ///
    /// The view is valid only inside `body`; ring space and pool buffers go
    /// back to the sender when it returns.
    /// - Parameter timeout: nil waits as long as it takes; `.zero` does not wait.
    /// - Throws: `timedOut`, `closed`, `corrupted`, `receiverInUse`.
    @inlinable
    public func receive<R>(timeout: Duration? = nil, _ body: (MessageView) -> R) throws(ChannelError) -> R {
        // A message already queued is received here, in code the caller
        // specializes for its `R`: the generic wait loop below costs about
        // 130 ns a call unspecialized, five times the receive itself.
        if let result = try tryReceive(body) { return result }
        return try receiveUnchecked(timeout: timeout, body)
    }

    @usableFromInline
    func receiveUnchecked<R>(timeout: Duration?, _ body: (MessageView) -> R) throws(ChannelError) -> R {
        try receiveLoop(timeout: timeout) { () throws(ChannelError) in try receiver.tryReceive(body) }
    }

    /// Retries `attempt` until it yields a value, waiting by the policy between tries.
    func receiveLoop<R>(timeout: Duration?, _ attempt: () throws(ChannelError) -> R?) throws(ChannelError) -> R {
        try receivePath.receive(timeout: timeout, attempt)
    }

    /// Lends up to `limit` messages to `body` in place, one after another,
    /// waiting for the first; returns how many were delivered (at least 1).
    ///
    /// The batch form of `receive` for high rates: one wait, then everything
    /// queued (express lane first), with the state checks and the release of
    /// ring space done once per batch. Each view is valid only inside `body`.
    /// - Throws: `timedOut`, `closed`, `corrupted`, `receiverInUse`.
    public func receiveBatch(limit: Int = 64, timeout: Duration? = nil,
                             _ body: (MessageView) -> Void) throws(ChannelError) -> Int {
        try checkDirectReceive()
        let receiver = self.receiver
        return try receiveLoop(timeout: timeout) { () throws(ChannelError) -> Int? in
            let n = try receiver.tryReceiveBatch(limit: max(limit, 1), body)
            return n > 0 ? n : nil
        }
    }

    /// Lends the next message to `body` if one is queued; nil otherwise. Never blocks.
    @inlinable
    public func tryReceive<R>(_ body: (MessageView) -> R) throws(ChannelError) -> R? {
        try checkDirectReceive()
        guard link.isOpen else { throw link.closedError }
        do {
            return try receiver.tryReceive(body)
        } catch {
            throw link.failed(error)
        }
    }

    /// Runs `operation`; a corruption it reports closes the channel for both sides.
    func failingChannel<R>(_ operation: () throws(ChannelError) -> R) throws(ChannelError) -> R {
        try link.guarding(operation)
    }

    /// Receives the next message, copying its payload out, waiting for one.
    public func receive(timeout: Duration? = nil) throws(ChannelError) -> Message {
        try receive(timeout: timeout) { Message($0) }
    }

    /// Receives the next message if one is queued, copying its payload out.
    public func tryReceive() throws(ChannelError) -> Message? {
        try tryReceive { Message($0) }
    }

    /// Receives the next message into `buffer` (the seed's `receive_message` shape; no allocation).
    ///
    /// - Throws: `bufferTooSmall` when the payload does not fit; the message then stays queued.
    public func receive(into buffer: UnsafeMutableRawBufferPointer,
                        timeout: Duration? = nil) throws(ChannelError) -> MessageInfo {
        try checkDirectReceive()
        return try receiveLoop(timeout: timeout) { () throws(ChannelError) in
            try receiver.tryReceive(sizeLimit: buffer.count) { MessageInfo($0, count: $0.copyBytes(to: buffer)) }
        }
    }

    @usableFromInline
    func checkDirectReceive() throws(ChannelError) {
        if pumpStarted.load(ordering: .acquiring) { throw .receiverInUse }
    }

    // MARK: Notifications (the seed's notify_kernel / notify_user)

    /// Wakes whoever waits to receive on this endpoint (e.g. to re-check a condition).
    public func wakeReceiver() { dataReady.notify() }

    // MARK: Waiting

    /// The spin-then-sleep loop of blocking sends (see `spinThenSleep`).
    func waitLoop<W>(timeout: Duration?, event: EventFD,
                     attempt: (_ first: Bool) throws(ChannelError) -> W?,
                     prepare: (W) throws(ChannelError) -> Bool,
                     finish: (W) -> Void) throws(ChannelError) {
        try spinThenSleep(link: link, event: event, spin: waitPolicy.spin, timeout: timeout,
                          attempt: attempt, prepare: prepare, finish: finish)
    }
}

/// The extra shared region of a channel, one slot both endpoints see.
final class RegionSlot: Sendable {
    let region = PthreadLock<SharedMemory?>(nil)
    /// Asks the host for its region when none is known here (endpoints in another process).
    let fetch: (@Sendable () -> SharedMemory?)?

    init(fetch: (@Sendable () -> SharedMemory?)? = nil) { self.fetch = fetch }

    /// The region, fetched from the host if needed; nil when there is none.
    func current() -> SharedMemory? {
        if let region = region.withLock({ $0 }) { return region }
        guard let fetched = fetch?() else { return nil }
        return region.withLock { slot in
            if slot == nil { slot = fetched }
            return slot
        }
    }
}

/// Ties an endpoint to a host in another process (see `UserspaceBackend`).
protocol ChannelAttachment: AnyObject, Sendable {
    /// Hangs up: the host then frees this side for another process.
    func detach()
}

/// `Array.withUnsafeBytes` for a body with typed throws.
func withBytes<R>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(ChannelError) -> R) throws(ChannelError) -> R {
    let result: Result<R, ChannelError> = bytes.withUnsafeBytes { raw in
        Result { () throws(ChannelError) -> R in try body(raw) }
    }
    return try result.get()
}
