import Synchronization

/// A record as found in the ring: its validated header copy and where it lies.
///
/// The payload pointer stays valid until the consumer advances past the
/// record; after that the producer may overwrite it.
public struct RingRecord {
    /// The header, copied out of shared memory once and validated.
    public let header: RecordHeader
    /// The first byte after the header (and after the correlation word, if any).
    public let payload: UnsafeRawPointer
    /// Payload bytes (for a pool message: the descriptor list).
    public let payloadLength: Int
    /// The request sequence this message answers, for correlated records.
    public let correlation: UInt64?
    /// Bytes the record occupies in the ring.
    @usableFromInline let stride: UInt64

    @usableFromInline
    init(header: RecordHeader, payload: UnsafeRawPointer, payloadLength: Int, correlation: UInt64?, stride: UInt64) {
        self.header = header
        self.payload = payload
        self.payloadLength = payloadLength
        self.correlation = correlation
        self.stride = stride
    }

    /// The validated message type.
    public var type: MessageType { MessageType(rawValue: header.type)! }
    /// The validated priority.
    public var priority: MessagePriority { MessagePriority(rawValue: header.priority)! }
    /// The validated flags.
    public var flags: MessageFlags { MessageFlags(rawValue: header.flags) }
}

/// The consumer half of a variable-length record ring.
///
/// Single consumer: exactly one thread at a time may use a value of this type.
/// It reads the producer index only when its cached copy says the ring is
/// empty, copies and checks each header once, and releases consumed space in
/// batches (a quarter of the ring, or whenever it finds the ring empty).
/// After every message it stores the index in its own `delivered` word (a
/// line the producer never reads), so that a successor taking over after a
/// crash resumes exactly after the last message delivered (docs/recovery.md).
public struct RecordRingConsumer {
    @usableFromInline let words: RingWords
    @usableFromInline let lane: Lane
    /// Our `delivered` word in the receiver's progress line, if we keep one.
    @usableFromInline let kDelivered: UnsafeMutablePointer<Atomic<UInt64>>?
    /// Everything before this has been read.
    @usableFromInline var consumer: UInt64
    /// Consumer index as last stored for the producer to see.
    @usableFromInline var published: UInt64
    /// Consumer index at the last fence and need-space check.
    @usableFromInline var released: UInt64
    /// Last producer index we read and checked.
    @usableFromInline var cachedProducer: UInt64
    @usableFromInline let releaseBatch: UInt64
    /// Counts our sleeps; its value goes into the need-wakeup word.
    @usableFromInline var wakeEpisode: UInt32 = 0
    /// The producer's need-space word we last signalled.
    @usableFromInline var lastSpaceSignalled: UInt32 = 0
    /// Where to record the largest backlog seen at a refresh (a statistics counter).
    @usableFromInline let highWater: UnsafeMutablePointer<Atomic<UInt64>>?

    /// Binds the consumer side of the ring at `layout` in channel memory.
    ///
    /// - Parameters:
    ///   - start: the index to resume from (0 for a new channel; see `ResumePoint`).
    ///   - wakeEpisode: the sleep counter to continue from (the need-wakeup word's bits 1...31).
    ///   - delivered: offset of this lane's `delivered` word (nil: none, e.g. for scans).
    public init(base: UnsafeMutableRawPointer, layout: RingLayout, lane: Lane, name: String, start: UInt64 = 0,
                wakeEpisode: UInt32 = 0, delivered: Int? = nil,
                highWater: UnsafeMutablePointer<Atomic<UInt64>>? = nil) {
        self.highWater = highWater
        kDelivered = delivered.map { (base + $0).assumingMemoryBound(to: Atomic<UInt64>.self) }
        words = RingWords(base: base, layout: layout, name: name)
        self.lane = lane
        consumer = start
        published = start
        released = start
        cachedProducer = start
        self.wakeEpisode = wakeEpisode
        releaseBatch = UInt64(layout.size / 4)
    }

    /// The ring's data size.
    public var capacity: UInt64 { words.size }

    /// Returns the next message record, or nil when the ring is empty.
    ///
    /// Padding is skipped here. The record stays in the ring until `advance(past:)`.
    ///
    /// - Throws: `ChannelError.corrupted` when an index or header fails its check.
    @inlinable
    public mutating func peek() throws(ChannelError) -> RingRecord? {
        while true {
            if consumer == cachedProducer {
                // (B) pairs with (A): records up to this index are fully written.
                let producer = words.kProducer.pointee.load(ordering: .acquiring)
                try words.check(producer, from: cachedProducer, to: published &+ words.size)
                cachedProducer = producer
                if producer == consumer { return nil }
                if let highWater {
                    let backlog = producer &- consumer
                    // Single writer: a relaxed load and store, no read-modify-write.
                    if backlog > highWater.pointee.load(ordering: .relaxed) {
                        highWater.pointee.store(backlog, ordering: .relaxed)
                    }
                }
            }
            let available = cachedProducer &- consumer
            let position = consumer & words.mask
            let tail = words.size &- position
            if tail < UInt64(ABI.headerSize) {
                // A tail too short for a header is skipped implicitly by both sides.
                guard available >= tail else { throw corrupt(.badRecordSize(ring: words.name, position: consumer,
                                                                            size: UInt32(tail), available: available)) }
                consumer &+= tail
                continue
            }
            let pointer = UnsafeRawPointer(words.data + Int(position))
            let header = RecordHeader(loadingFrom: pointer)
            guard header.magic == ABI.messageMagic else {
                throw corrupt(.badMagic(ring: words.name, position: consumer, found: header.magic))
            }
            let size = UInt64(header.size)
            let stride = (size &+ 7) & ~7
            guard size >= UInt64(ABI.headerSize), stride <= tail, stride <= available else {
                throw corrupt(.badRecordSize(ring: words.name, position: consumer, size: header.size,
                                             available: min(available, tail)))
            }
            if header.flags & MessageFlags.pad.rawValue != 0 {
                guard header.flags == MessageFlags.pad.rawValue, header.type == 0, size == tail else {
                    throw corrupt(.badFlags(ring: words.name, position: consumer, flags: header.flags))
                }
                consumer &+= tail
                continue
            }
            guard header.type >= 1, header.type <= 7 else {
                throw corrupt(.badType(ring: words.name, position: consumer, type: header.type))
            }
            guard header.priority <= 3, (header.priority >= 2) == (lane == .express) else {
                throw corrupt(.badPriority(ring: words.name, position: consumer, priority: header.priority))
            }
            guard header.flags & ~MessageFlags.known.rawValue == 0 else {
                throw corrupt(.badFlags(ring: words.name, position: consumer, flags: header.flags))
            }
            var payload = pointer + ABI.headerSize
            var length = Int(size) - ABI.headerSize
            var correlation: UInt64? = nil
            if header.flags & MessageFlags.correlated.rawValue != 0 {
                guard length >= ABI.correlationSize else {
                    throw corrupt(.badRecordSize(ring: words.name, position: consumer, size: header.size,
                                                 available: available))
                }
                correlation = UInt64(littleEndian: payload.loadUnaligned(as: UInt64.self))
                payload += ABI.correlationSize
                length -= ABI.correlationSize
            }
            return RingRecord(header: header, payload: payload, payloadLength: length,
                              correlation: correlation, stride: stride)
        }
    }

    @usableFromInline
    func corrupt(_ reason: CorruptionReason) -> ChannelError { .corrupted(reason) }

    /// The index just past `record`: what the consumer index becomes when it is consumed.
    @inlinable
    public func index(after record: RingRecord) -> UInt64 { consumer &+ record.stride }

    /// Consumes `record`; its bytes may be overwritten once the space is released.
    ///
    /// Returns true when the producer asked to be woken for space (the caller signals it).
    @inlinable
    public mutating func advance(past record: RingRecord) -> Bool {
        consumer &+= record.stride
        // The message is delivered for good: a successor resumes after it.
        // Our own line, never read by the producer: one store that stays in
        // our cache. Release pairs with a resuming sender's acquire load.
        kDelivered?.pointee.store(consumer, ordering: .releasing)
        if consumer &- released >= releaseBatch { return release() }
        return false
    }

    /// Publishes the consumed position to the producer, then checks whether it waits for room.
    ///
    /// Returns true when the producer is waiting for space (the caller signals it).
    @inlinable
    public mutating func release() -> Bool {
        guard consumer != released else { return false }
        released = consumer
        published = consumer
        // (C) pairs with (D): our reads of the records are done before the producer reuses the space.
        words.kConsumer.pointee.store(consumer, ordering: .releasing)
        // (G) pairs with (H): the index store is ordered before the flag load.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        return NeedFlag.shouldSignal(words.kNeedSpace.pointee.load(ordering: .relaxed),
                                     lastSignalled: &lastSpaceSignalled)
    }

    /// Publishes the consumed position (padding skipped since the last
    /// message included) and looks at the need-space word, without a fence.
    ///
    /// For the moments the consumer runs out of work (an empty ring, a
    /// sleep). No fence is needed there: a producer can be stuck waiting for
    /// room only if it last read our index more than half a ring behind the
    /// index we publish now (a record needs less than half a ring, padding
    /// included), and while we consumed that half ring we passed at least one
    /// fenced `release()` (one per quarter ring) after its read, which saw
    /// its flag. docs/memory-ordering.md has the argument in full.
    /// `released` stays where the last fence was, so the quarter-ring
    /// batches keep counting from there.
    ///
    /// Returns true when the producer is waiting for space (the caller signals it).
    @inlinable
    public mutating func settle() -> Bool {
        // Nothing consumed since the last look: nothing to publish, and a
        // producer that waits has been seen already. This keeps an idle
        // spinning receiver to the one load of the producer index.
        guard consumer != published else { return false }
        published = consumer
        // (C) pairs with (D).
        words.kConsumer.pointee.store(consumer, ordering: .releasing)
        return NeedFlag.shouldSignal(words.kNeedSpace.pointee.load(ordering: .relaxed),
                                     lastSignalled: &lastSpaceSignalled)
    }

    /// Steps past `record` without publishing anything: for scanning records
    /// one does not own (see `ResumePoint`).
    @inlinable
    mutating func skip(past record: RingRecord) { consumer &+= record.stride }

    /// Sets this ring's need-wakeup flag. Follow with a full fence and `hasData()`
    /// before sleeping (see `ChannelReceiver.prepareToSleep`).
    public mutating func setNeedWakeup() {
        words.kNeedWakeup.pointee.store(NeedFlag.raise(&wakeEpisode), ordering: .relaxed)
    }

    /// Clears this ring's need-wakeup flag.
    public func clearNeedWakeup() {
        words.kNeedWakeup.pointee.store(NeedFlag.lower(wakeEpisode), ordering: .relaxed)
    }

    /// Whether records are waiting, re-reading the producer index if needed.
    public mutating func hasData() throws(ChannelError) -> Bool {
        if consumer != cachedProducer { return true }
        // (B) pairs with (A).
        let producer = words.kProducer.pointee.load(ordering: .acquiring)
        try words.check(producer, from: cachedProducer, to: published &+ words.size)
        cachedProducer = producer
        return producer != consumer
    }

}
