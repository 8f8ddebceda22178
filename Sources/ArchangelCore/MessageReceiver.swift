import Synchronization

/// The receiving half of one direction of a channel, on raw channel memory.
///
/// Single consumer: one thread at a time. Drains the express lane before the
/// normal lane, validates every record and descriptor before use, and lends
/// each message in place for the length of a closure.
public final class MessageReceiver: @unchecked Sendable {
    @usableFromInline
    struct State {
        @usableFromInline var normal: RecordRingConsumer
        @usableFromInline var express: RecordRingConsumer
        @usableFromInline var pool: PoolBorrower
        @usableFromInline var failed: Bool
    }

    @usableFromInline let state: UnsafeMutablePointer<State>
    /// This side's counters.
    public let counters: CounterBlock
    @usableFromInline let notifier: any PeerNotifier
    private let failure = FailureLatch()
    private let ownsCounters: Bool
    /// Which direction this receiver drains.
    public let direction: Direction

    /// Binds the receiving side of `direction` in channel memory at `base`.
    ///
    /// - Parameters:
    ///   - notifier: wakes the sender when it waits for room or buffers.
    ///   - resume: where to start when taking over a channel in use (`ResumePoint.receiver`); nil for a new one.
    ///   - counters: where to count (e.g. memory a host reads); nil allocates a private block.
    public init(base: UnsafeMutableRawPointer, layout: ChannelLayout, direction: Direction,
                notifier: any PeerNotifier, resume: ResumePoint.Receiver? = nil, counters: CounterBlock? = nil) {
        let d = layout.direction(direction)
        let name = "\(direction)"
        let r = resume ?? ResumePoint.Receiver()
        ownsCounters = counters == nil
        let counters = counters ?? .allocate()
        self.counters = counters
        let normal = RecordRingConsumer(base: base, layout: d.normal, lane: .normal, name: "\(name).normal",
                                        start: r.normal, wakeEpisode: r.normalEpisode,
                                        delivered: ReceiverProgress.delivered(layout: d, lane: .normal),
                                        highWater: counters.base + Counter.normalHighWater.rawValue)
        let express = RecordRingConsumer(base: base, layout: d.express, lane: .express, name: "\(name).express",
                                         start: r.express, wakeEpisode: r.expressEpisode,
                                         delivered: ReceiverProgress.delivered(layout: d, lane: .express),
                                         highWater: counters.base + Counter.expressHighWater.rawValue)
        state = .allocate(capacity: 1)
        state.initialize(to: State(normal: normal, express: express,
                                   pool: PoolBorrower(base: base, layout: d.pool, name: name,
                                                      returnStart: r.returnProducer, returnsSeen: r.returnConsumer),
                                   failed: false))
        self.notifier = notifier
        self.direction = direction
    }

    deinit {
        state.pointee.pool.deallocate()
        state.deinitialize(count: 1)
        state.deallocate()
        if ownsCounters { counters.deallocate() }
    }

    /// The error that stopped this receiver, if any.
    public var error: ChannelError? { failure.error }

    @usableFromInline
    func fail(_ error: ChannelError) -> ChannelError {
        state.pointee.failed = true
        counters.add(.errors)
        return failure.record(error)
    }

    /// Lends the next message to `body`, express lane first, without blocking.
    ///
    /// Returns nil when both lanes are empty. The message's ring space and pool
    /// buffers are released when `body` returns.
    /// - Throws: `corrupted` when shared memory fails a check (from then on, always).
    @inlinable
    public func tryReceive<R>(_ body: (MessageView) -> R) throws(ChannelError) -> R? {
        switch try next(sizeLimit: nil, body) {
        case .delivered(let result): result
        case .empty, .tooLarge: nil
        }
    }

    /// Like `tryReceive`, but leaves a message whose payload exceeds `sizeLimit`
    /// queued and untouched, and throws `bufferTooSmall` for it.
    @inlinable
    public func tryReceive<R>(sizeLimit: Int, _ body: (MessageView) -> R) throws(ChannelError) -> R? {
        switch try next(sizeLimit: sizeLimit, body) {
        case .delivered(let result): return result
        case .empty: return nil
        case .tooLarge(let needed): throw .bufferTooSmall(needed: needed, available: sizeLimit)
        }
    }

    /// Lends up to `limit` queued messages to `body`, one after another, without blocking.
    ///
    /// The batch form of `tryReceive` for high message rates: the express lane
    /// is checked before each message as usual, but state checks and the
    /// final release happen once per batch. Returns the number delivered
    /// (0 when both lanes are empty).
    @inlinable
    public func tryReceiveBatch(limit: Int, _ body: (MessageView) -> Void) throws(ChannelError) -> Int {
        let s = state
        if s.pointee.failed { throw error ?? .closed }
        var delivered = 0
        do {
            while delivered < limit {
                if let record = try s.pointee.express.peek() {
                    _ = try deliver(record, lane: .express, sizeLimit: nil, body)
                } else if let record = try s.pointee.normal.peek() {
                    _ = try deliver(record, lane: .normal, sizeLimit: nil, body)
                } else {
                    break
                }
                delivered += 1
            }
        } catch { throw fail(error) }
        if delivered < limit { releaseConsumed() }
        return delivered
    }

    @usableFromInline
    enum Delivery<R> {
        case delivered(R)
        case empty
        case tooLarge(Int)
    }

    @inlinable
    func next<R>(sizeLimit: Int?, _ body: (MessageView) -> R) throws(ChannelError) -> Delivery<R> {
        let s = state
        if s.pointee.failed { throw error ?? .closed }
        do {
            if let record = try s.pointee.express.peek() {
                return try deliver(record, lane: .express, sizeLimit: sizeLimit, body)
            }
            if let record = try s.pointee.normal.peek() {
                return try deliver(record, lane: .normal, sizeLimit: sizeLimit, body)
            }
        } catch { throw fail(error) }
        // Empty: hand back any consumed space now instead of waiting for a full batch.
        releaseConsumed()
        return .empty
    }

    @inlinable
    func deliver<R>(_ record: RingRecord, lane: Lane, sizeLimit: Int?,
                    _ body: (MessageView) -> R) throws(ChannelError) -> Delivery<R> {
        let s = state
        let result: R
        var wakeSender: Bool
        if record.header.flags & MessageFlags.dma.rawValue != 0 {
            let (n, bytes) = try s.pointee.pool.borrow(descriptors: record.payload, length: record.payloadLength)
            if let sizeLimit, bytes > sizeLimit {
                for i in 0..<n { s.pointee.pool.release(s.pointee.pool.segmentBuffers[i]) }
                return .tooLarge(bytes)
            }
            result = body(MessageView(record: record, count: bytes, segments: UnsafePointer(s.pointee.pool.segments),
                                      segmentCount: n))
            // The return protocol (docs/recovery.md): stage the returns and
            // the intent, publish the consumer index, then the returns.
            let after = lane == .express ? s.pointee.express.index(after: record) : s.pointee.normal.index(after: record)
            try s.pointee.pool.stageReturn(count: n, consumerAfter: after, express: lane == .express)
            counters.add(.poolTransfers)
            counters.add(.bytesReceived, UInt64(bytes))
            counters.add(.messagesReceived)
            if lane == .express {
                wakeSender = s.pointee.express.advance(past: record)
            } else {
                wakeSender = s.pointee.normal.advance(past: record)
            }
            wakeSender = s.pointee.pool.publishReturns() || wakeSender
            if wakeSender { notifySender() }
            return .delivered(result)
        }
        if let sizeLimit, record.payloadLength > sizeLimit { return .tooLarge(record.payloadLength) }
        result = body(MessageView(record: record, count: record.payloadLength, segments: nil, segmentCount: 1))
        counters.add(.bytesReceived, UInt64(record.payloadLength))
        counters.add(.messagesReceived)
        if lane == .express {
            wakeSender = s.pointee.express.advance(past: record)
        } else {
            wakeSender = s.pointee.normal.advance(past: record)
        }
        if wakeSender { notifySender() }
        return .delivered(result)
    }

    @usableFromInline
    func notifySender() {
        counters.add(.notificationsSent)
        notifier.notify()
    }

    /// Publishes consumed space on both lanes now, waking the sender if it waits.
    ///
    /// Called when the receiver runs out of work, and after a takeover; fence-free
    /// (see `RecordRingConsumer.settle`).
    @inlinable
    public func releaseConsumed() {
        let a = state.pointee.express.settle()
        let b = state.pointee.normal.settle()
        if a || b { notifySender() }
    }

    /// Announces that the receiver is about to sleep, then re-checks both lanes.
    ///
    /// Returns true when both lanes are still empty and the caller may block
    /// until the sender signals; false when data arrived (flags are cleared).
    public func prepareToSleep() throws(ChannelError) -> Bool {
        try announce(normalLane: true)
    }

    /// Announces a timed poll, then re-checks both lanes: arms the express
    /// lane's need-wakeup word only, which tells the sender "I look again by
    /// myself within my window; wake me only for an urgent message"
    /// (docs/efficiency.md).
    ///
    /// Returns true when both lanes are still empty and the caller may sleep
    /// for one window (then `finishPoll()`); false when data arrived.
    public func prepareToPoll() throws(ChannelError) -> Bool {
        try announce(normalLane: false)
    }

    /// Announces a paced poll, then re-checks both lanes: arms the normal
    /// lane's need-wakeup word only, which tells the sender "I look again by
    /// myself within my window; wake me at most once per window, at the
    /// first message due" (docs/efficiency.md, "Paced polls"). Then sleep
    /// for one window and `finishSleep()`.
    public func prepareToPacedPoll() throws(ChannelError) -> Bool {
        try announce(normalLane: true, expressLane: false)
    }

    /// Arms the express lane's need-wakeup word (and the normal lane's for a
    /// blocking sleep), fences, and re-checks both lanes; counts the sleep.
    private func announce(normalLane: Bool, expressLane: Bool = true) throws(ChannelError) -> Bool {
        let s = state
        if s.pointee.failed { throw error ?? .closed }
        releaseConsumed()
        if expressLane { s.pointee.express.setNeedWakeup() }
        if normalLane { s.pointee.normal.setNeedWakeup() }
        // (F) pairs with (E): our flags are visible before we re-read the producer indices.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        do {
            let expressHasData = try s.pointee.express.hasData()
            let normalHasData = try s.pointee.normal.hasData()
            if expressHasData || normalHasData {
                if normalLane { finishSleep() } else { finishPoll() }
                return false
            }
        } catch { throw fail(error) }
        counters.add(normalLane && expressLane ? .waits : .timedWaits)
        return true
    }

    /// Clears the express lane's need-wakeup flag after a timed poll.
    public func finishPoll() {
        state.pointee.express.clearNeedWakeup()
    }

    /// Clears the need-wakeup flags after sleeping.
    public func finishSleep() {
        state.pointee.express.clearNeedWakeup()
        state.pointee.normal.clearNeedWakeup()
    }
}
