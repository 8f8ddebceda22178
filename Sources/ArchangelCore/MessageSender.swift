import CArchangel
import Synchronization

/// Why a non-blocking send could not go out now. Not an error: retry after the
/// receiver makes progress, or wait for it with `prepareToWait(for:)`.
public enum SendBlock: Sendable, Equatable {
    /// The lane's ring has no room for a record of `length` bytes.
    case ringFull(lane: Lane, length: Int)
    /// The pool has fewer than `buffers` free buffers and the payload is too large to copy inline.
    case poolEmpty(buffers: Int)
}

/// The result of a non-blocking send.
public enum SendOutcome: Sendable, Equatable {
    /// Published (or committed, when publication was deferred).
    case sent
    /// Nothing was sent; see the reason.
    case wouldBlock(SendBlock)
}

/// How a sender fills in the header's timestamp.
public enum TimestampPolicy: Sendable, Equatable {
    /// CLOCK_MONOTONIC nanoseconds, read once per publication (messages sent
    /// with deferred publication share the first one's reading). The default.
    case monotonic
    /// No clock read at all: every timestamp is 0. Saves one `clock_gettime`
    /// (about 20-25 ns here) per publication, for latency-critical paths
    /// that do not use timestamps.
    case none
}

/// The sending half of one direction of a channel, on raw channel memory.
///
/// Single producer: one thread at a time (the class is `Sendable` so that it
/// can be handed to that thread). All mutable state lives behind one pointer
/// so that the hot path pays for no reference counting or exclusivity checks.
public final class MessageSender: @unchecked Sendable {
    @usableFromInline
    struct State {
        @usableFromInline var normal: RecordRingProducer
        @usableFromInline var express: RecordRingProducer
        @usableFromInline var pool: PoolLender
        @usableFromInline var sequence: UInt64
        @usableFromInline var failed: Bool
        @usableFromInline var loanCount: Int
        @usableFromInline var loanOpen: Bool
        @usableFromInline let loanBuffers: UnsafeMutablePointer<UInt32>
        /// Clock reading shared by the messages of an unpublished batch (0: none taken yet).
        @usableFromInline var batchTimestamp: UInt64
        /// A committed, unpublished message asked for an urgent wake-up.
        @usableFromInline var pendingUrgent: Bool
        /// At most one wake-up of a blocking receiver per window.
        @usableFromInline var coalescer: WakeCoalescer
    }

    @usableFromInline let state: UnsafeMutablePointer<State>
    /// This side's counters (the receiver of the same direction keeps its own).
    public let counters: CounterBlock
    @usableFromInline let notifier: any PeerNotifier
    private let failure = FailureLatch()
    private let ownsCounters: Bool
    /// Which direction this sender feeds.
    public let direction: Direction
    /// The largest payload this sender accepts.
    public let maxPayload: Int
    /// How headers are timestamped.
    public let timestamps: TimestampPolicy
    /// How this sender wakes its receiver (docs/efficiency.md).
    public let waitPolicy: WaitPolicy
    // Copies of what statistics readers on other threads need; `state` is the sender thread's.
    private let normalWords: RingWords
    private let expressWords: RingWords
    private let returnWords: RingWords?
    /// Pool buffers in all.
    public let poolSize: Int

    /// Binds the sending side of `direction` in channel memory at `base`.
    ///
    /// - Parameters:
    ///   - notifier: wakes the receiver when it sleeps.
    ///   - sequenceStart: the last sequence number already used (0 for a new channel).
    ///   - timestamps: how headers are timestamped.
    ///   - waitPolicy: how to wake the receiver; the default signals every
    ///     sleep at once (`.lowLatency`). Channels pass their own policy.
    ///   - resume: where to start when taking over a channel in use (`ResumePoint.sender`); nil for a new one.
    ///   - counters: where to count (e.g. memory a host reads); nil allocates a private block.
    public init(base: UnsafeMutableRawPointer, layout: ChannelLayout, direction: Direction,
                notifier: any PeerNotifier, sequenceStart: UInt64 = 0, timestamps: TimestampPolicy = .monotonic,
                waitPolicy: WaitPolicy = .lowLatency, resume: ResumePoint.Sender? = nil,
                counters: CounterBlock? = nil) {
        self.timestamps = timestamps
        self.waitPolicy = waitPolicy
        let d = layout.direction(direction)
        let name = "\(direction)"
        let r = resume ?? ResumePoint.Sender()
        let pool = PoolLender(base: base, layout: d.pool, name: name, inFlight: r.buffersInFlight,
                              returnStart: r.returnConsumer, returnEpisode: r.returnEpisode)
        let normal = RecordRingProducer(base: base, layout: d.normal, name: "\(name).normal", start: r.normal,
                                        consumerSeen: r.normalConsumer, spaceEpisode: r.normalEpisode)
        let express = RecordRingProducer(base: base, layout: d.express, name: "\(name).express", start: r.express,
                                         consumerSeen: r.expressConsumer, spaceEpisode: r.expressEpisode)
        let sequenceStart = max(sequenceStart, r.lastSequence)
        state = .allocate(capacity: 1)
        state.initialize(to: State(normal: normal, express: express, pool: pool, sequence: sequenceStart,
                                   failed: false, loanCount: 0, loanOpen: false,
                                   loanBuffers: .allocate(capacity: max(d.pool.maxSegments, 1)),
                                   batchTimestamp: 0, pendingUrgent: false,
                                   coalescer: WakeCoalescer(window: waitPolicy.windowNanoseconds)))
        self.counters = counters ?? .allocate()
        ownsCounters = counters == nil
        self.notifier = notifier
        self.direction = direction
        normalWords = normal.words
        expressWords = express.words
        poolSize = pool.count
        returnWords = pool.returns?.words
        let inline = min(normal.maxRecord, express.maxRecord) - ABI.headerSize - ABI.correlationSize
        maxPayload = pool.enabled ? max(inline, min(pool.maxSegments, pool.count) * pool.bufferSize) : inline
    }

    deinit {
        state.pointee.pool.deallocate()
        state.pointee.loanBuffers.deallocate()
        state.deinitialize(count: 1)
        state.deallocate()
        if ownsCounters { counters.deallocate() }
    }

    /// The error that stopped this sender, if any.
    public var error: ChannelError? { failure.error }

    /// Pool buffers currently lent to the receiver (sender thread only).
    public var poolBuffersInUse: Int { state.pointee.pool.inUse }

    @usableFromInline
    func fail(_ error: ChannelError) -> ChannelError {
        state.pointee.failed = true
        counters.add(.errors)
        return failure.record(error)
    }

    @inlinable
    func checkUsable() throws(ChannelError) {
        if state.pointee.failed { throw failedError() }
    }

    @usableFromInline
    func failedError() -> ChannelError { error ?? .closed }

    /// Sends one message without blocking.
    ///
    /// Payloads above the pool threshold travel by descriptor through the
    /// pool; when it has too few free buffers they are copied inline if they
    /// fit the ring (counted as a fallback), otherwise the send would block.
    ///
    /// - Parameters:
    ///   - correlation: the sequence of the request this message answers.
    ///   - publish: false defers publication to a later `publish()`, so a
    ///     batch costs one index store and one fence.
    ///   - countFull: false keeps a would-block out of the `queue_full`
    ///     counter (a blocking send's retries count once).
    ///   - options: `urgent` (wake now; implied by `critical`) and `noWakeup`
    ///     (more follows); see docs/efficiency.md.
    /// - Returns: `.sent`, or `.wouldBlock` with the reason (nothing was sent).
    /// - Throws: `payloadTooLarge`, or `corrupted` once shared memory failed a check.
    @inlinable
    public func trySend(type: MessageType, priority: MessagePriority, payload: UnsafeRawBufferPointer,
                        correlation: UInt64? = nil, publish: Bool = true,
                        countFull: Bool = true, options: SendOptions = []) throws(ChannelError) -> SendOutcome {
        try checkUsable()
        let s = state
        let count = payload.count
        guard count <= maxPayload else { throw reject(count) }
        let extra = correlation == nil ? 0 : ABI.correlationSize
        var flags: UInt16 = correlation == nil ? 0 : MessageFlags.correlated.rawValue
        let lane = priority.lane
        let maxRecord = lane == .normal ? s.pointee.normal.maxRecord : s.pointee.express.maxRecord
        let fitsInline = ABI.headerSize + extra + count <= maxRecord
        var viaPool = false
        var segments = 0
        if count > s.pointee.pool.threshold && s.pointee.pool.enabled {
            segments = s.pointee.pool.segments(for: count)
            // More segments than a message may span: it fits inline (maxPayload guarantees one of the two).
            if segments <= s.pointee.pool.maxSegments {
                if s.pointee.pool.freeCount < segments {
                    do { try s.pointee.pool.reclaim() } catch { throw fail(error) }
                }
                if s.pointee.pool.freeCount >= segments {
                    viaPool = true
                } else if fitsInline {
                    flags |= MessageFlags.copied.rawValue
                } else {
                    if countFull { counters.add(.queueFull) }
                    return .wouldBlock(.poolEmpty(buffers: segments))
                }
            }
        }
        let body = viaPool ? segments * ABI.descriptorSize : count
        let length = ABI.headerSize + extra + body
        guard length <= maxRecord else { throw reject(count) }
        let record: UnsafeMutableRawPointer?
        do {
            record = lane == .normal ? try s.pointee.normal.reserve(length: length)
                                     : try s.pointee.express.reserve(length: length)
        } catch { throw fail(error) }
        guard let record else {
            if countFull { counters.add(.queueFull) }
            return .wouldBlock(.ringFull(lane: lane, length: length))
        }
        var cursor = record + ABI.headerSize
        if let correlation {
            cursor.storeBytes(of: correlation.littleEndian, as: UInt64.self)
            cursor += ABI.correlationSize
        }
        if viaPool {
            flags |= MessageFlags.dma.rawValue
            var offset = 0
            for i in 0..<segments {
                let index = s.pointee.pool.take()
                let chunk = min(s.pointee.pool.bufferSize, count - offset)
                s.pointee.pool.buffer(index).copyMemory(from: payload.baseAddress! + offset, byteCount: chunk)
                PoolDescriptor(buffer: index, offset: 0, length: UInt32(chunk))
                    .store(to: cursor + i * ABI.descriptorSize)
                offset += chunk
            }
            counters.add(.poolTransfers)
            counters.set(.poolBuffersInUse, UInt64(s.pointee.pool.inUse))
        } else {
            if count > 0 { cursor.copyMemory(from: payload.baseAddress!, byteCount: count) }
            if flags & MessageFlags.copied.rawValue != 0 { counters.add(.copyFallbacks) }
        }
        finishRecord(record, lane: lane, type: type, priority: priority, flags: flags, length: length,
                     payloadBytes: count, publish: publish, options: options)
        return .sent
    }

    @usableFromInline
    func reject(_ size: Int) -> ChannelError {
        counters.add(.rejected)
        return .payloadTooLarge(size: size, limit: maxPayload)
    }

    /// Writes the header, commits the record and optionally publishes it.
    @inlinable
    func finishRecord(_ record: UnsafeMutableRawPointer, lane: Lane, type: MessageType, priority: MessagePriority,
                      flags: UInt16, length: Int, payloadBytes: Int, publish: Bool, options: SendOptions = []) {
        let s = state
        s.pointee.sequence &+= 1
        // The clock is read once per publication: messages committed with
        // deferred publication share the first one's reading (a batch is
        // built within nanoseconds; reading the clock per message would cost
        // more than the rest of the send). It is CLOCK_MONOTONIC itself, so
        // the stamp is never ahead of any other process's clock_gettime or
        // of the kernel's ktime_get_ns() (docs/memory-ordering.md#timestamps).
        if s.pointee.batchTimestamp == 0 && timestamps == .monotonic {
            s.pointee.batchTimestamp = archangel_monotonic_ns()
        }
        RecordHeader(type: type.rawValue, priority: priority.rawValue, flags: flags, size: UInt32(length),
                     sequence: s.pointee.sequence, timestamp: s.pointee.batchTimestamp).store(to: record)
        if lane == .normal { s.pointee.normal.commit(length: length) } else { s.pointee.express.commit(length: length) }
        if priority == .critical || options.contains(.urgent) { s.pointee.pendingUrgent = true }
        counters.add(.messagesSent)
        counters.add(.bytesSent, UInt64(payloadBytes))
        if publish { self.publish(options) }
    }

    /// The sequence number of the last message sent (sender thread only).
    public var lastSequence: UInt64 { state.pointee.sequence }

    /// Publishes everything committed on both lanes and wakes the receiver
    /// if it sleeps, by the rules of docs/efficiency.md: an urgent batch
    /// (`options.urgent`, or a committed `critical` or urgent message) wakes
    /// a blocking or polling receiver at once; otherwise only a blocking one
    /// is woken, at most once per window of this sender's `waitPolicy`
    /// (leading edge now, trailing edge on a timer). `noWakeup` defers to the
    /// trailing edge.
    @inlinable
    public func publish(_ options: SendOptions = []) {
        let s = state
        s.pointee.batchTimestamp = 0
        // Express first: the receiver drains it first, so it should see it first.
        let express = s.pointee.express.publishIndex()
        let normal = s.pointee.normal.publishIndex()
        guard express || normal else { return }
        let urgent = s.pointee.pendingUrgent || options.contains(.urgent)
        s.pointee.pendingUrgent = false
        // (E): the seq_cst index stores above come before these seq_cst loads.
        let normalWord = s.pointee.normal.needWakeupWord()
        let blocking = NeedFlag.isNewSleep(normalWord, lastSignalled: s.pointee.normal.lastWoken)
        // A receiver that polls by itself arms the express word only: it
        // matters to urgent batches, and to a sender that does not coalesce.
        // A polling receiver still gets woken when a lane fills past the wake
        // batch, so that a long window never fills the ring (the stale cached
        // consumer index overestimates the fill, so this reads the consumer's
        // line only when a lane may really be that full).
        // The express word, read once: here when the normal one announces a sleep, else below.
        var expressWordRead: UInt32? = nil
        if blocking && !urgent && waitPolicy.adaptive {
            // Only the normal lane armed: a paced poll, whose receiver looks
            // again by itself within its window. The leading edge only.
            let expressWord = s.pointee.express.needWakeupWord()
            expressWordRead = expressWord
            if expressWord & NeedFlag.bit == 0 {
                if s.pointee.coalescer.pacedLeadingEdge(now: archangel_monotonic_ns(), laneFull: lanesPastWakeBatch()) {
                    s.pointee.normal.lastWoken = normalWord
                    signalReceiver()
                } else {
                    counters.add(.notificationsSuppressed)
                }
                return
            }
        }
        let full = !blocking && !urgent && waitPolicy.adaptive && lanesPastWakeBatch()
        if !blocking && !urgent && !full && waitPolicy.adaptive {
            counters.add(.notificationsSuppressed)
            return
        }
        let expressWord = expressWordRead ?? s.pointee.express.needWakeupWord()
        let polling = NeedFlag.isNewSleep(expressWord, lastSignalled: s.pointee.express.lastWoken)
        guard blocking || polling else {
            // A full lane behind a sleep that a pending trailing edge covers
            // brings that edge forward: the burst must not fill the ring.
            if full && s.pointee.coalescer.pendingUntil != 0,
               case let now = archangel_monotonic_ns(), now < s.pointee.coalescer.pendingUntil {
                s.pointee.coalescer.firedEarly(at: now)
                signalReceiver()
                return
            }
            counters.add(.notificationsSuppressed)
            return
        }
        // Whatever happens next covers this sleep: a signal now or a timer.
        if blocking { s.pointee.normal.lastWoken = normalWord }
        if polling { s.pointee.express.lastWoken = expressWord }
        guard waitPolicy.adaptive else {
            signalReceiver()
            return
        }
        let now = archangel_monotonic_ns()
        if urgent || full {
            s.pointee.coalescer.signalled(at: now)
            signalReceiver()
            return
        }
        switch s.pointee.coalescer.decide(now: now, noWakeup: options.contains(.noWakeup),
                                          laneFull: lanesPastWakeBatch()) {
        case .signalNow:
            signalReceiver()
        case .signalAt(let deadline):
            counters.add(.notificationsSent)
            counters.add(.notificationsCoalesced)
            notifier.notify(atNanoseconds: deadline)
        case .merged:
            counters.add(.notificationsCoalesced)
        }
    }

    @usableFromInline
    func signalReceiver() {
        counters.add(.notificationsSent)
        notifier.notify()
    }

    /// Whether a lane holds more unread bytes than the wake batch allows
    /// (a corrupted consumer index fails the sender and counts as full, so
    /// the receiver is woken to find the error too).
    @usableFromInline
    func lanesPastWakeBatch() -> Bool {
        do throws(ChannelError) {
            if try state.pointee.express.unreadExceeds(waitPolicy.wakeBatch) { return true }
            return try state.pointee.normal.unreadExceeds(waitPolicy.wakeBatch)
        } catch {
            _ = fail(error)
            return true
        }
    }

    /// Announces a wait for what `block` needs, then re-checks.
    ///
    /// Returns true when the caller may sleep until the receiver signals
    /// (ring space released, or buffers returned); false to retry at once.
    public func prepareToWait(for block: SendBlock) throws(ChannelError) -> Bool {
        try checkUsable()
        do {
            switch block {
            case let .ringFull(lane, length):
                let sleep = lane == .normal ? try state.pointee.normal.prepareToWaitForSpace(length: length)
                                            : try state.pointee.express.prepareToWaitForSpace(length: length)
                if sleep { counters.add(.waits) }
                return sleep
            case let .poolEmpty(buffers):
                guard var ring = state.pointee.pool.returns else { return false }
                defer { state.pointee.pool.returns = ring }
                let sleep = ring.prepareToSleep()
                if !sleep || state.pointee.pool.freeCount >= buffers { ring.finishSleep(); return false }
                counters.add(.waits)
                return true
            }
        } catch { throw fail(error) }
    }

    /// Clears the flag `prepareToWait(for:)` set, after the wait.
    public func finishWait(for block: SendBlock) {
        switch block {
        case let .ringFull(lane, _):
            if lane == .normal { state.pointee.normal.finishWaitingForSpace() }
            else { state.pointee.express.finishWaitingForSpace() }
        case .poolEmpty:
            state.pointee.pool.returns?.finishSleep()
        }
    }

    /// Takes back buffers the receiver returned. Sends do this on their own
    /// when the pool runs low; call it to see an up-to-date `poolBuffersInUse`.
    public func reclaimBuffers() throws(ChannelError) {
        try checkUsable()
        do { try state.pointee.pool.reclaim() } catch { throw fail(error) }
        counters.set(.poolBuffersInUse, UInt64(state.pointee.pool.inUse))
    }

    /// Ring bytes in use now on both lanes (racy, for statistics; any thread).
    public func ringUsedNow() -> UInt64 { normalWords.usedNow() + expressWords.usedNow() }

    /// Buffers the receiver has returned that this sender has not taken back yet (racy, any thread).
    public func returnsPendingNow() -> UInt64 { returnWords?.usedNow() ?? 0 }

    /// Bytes both lanes hold.
    public var ringSize: UInt64 { normalWords.size + expressWords.size }
}
