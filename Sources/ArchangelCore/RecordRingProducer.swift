import Synchronization

/// The producer half of a variable-length record ring.
///
/// Single producer: exactly one thread at a time may use a value of this type.
/// The producer owns its index; it never reads it back from shared memory.
/// Records never wrap: when one does not fit before the end of the data area,
/// a padding record (or, for a tail shorter than a header, an implicit skip
/// both sides compute) fills the rest.
public struct RecordRingProducer {
    @usableFromInline let words: RingWords
    /// Bytes published or about to be, our own truth.
    @usableFromInline var producer: UInt64
    /// Last consumer index we read; refreshed only when the ring looks full.
    @usableFromInline var cachedConsumer: UInt64
    /// Producer index as last published to the consumer.
    @usableFromInline var published: UInt64
    /// The consumer's need-wakeup word we last signalled (one wake-up per sleep).
    @usableFromInline var lastWoken: UInt32 = 0
    /// Counts our waits for space; its value goes into the need-space word.
    @usableFromInline var spaceEpisode: UInt32 = 0

    /// The largest record this ring accepts.
    public let maxRecord: Int

    /// Binds the producer side of the ring at `layout` in channel memory.
    ///
    /// - Parameters:
    ///   - start: the index to resume from (0 for a new channel; see `ResumePoint`).
    ///   - consumerSeen: the consumer's index as last read and checked.
    ///   - spaceEpisode: the wait counter to continue from (the need-space word's bits 1...31).
    public init(base: UnsafeMutableRawPointer, layout: RingLayout, name: String, start: UInt64 = 0,
                consumerSeen: UInt64 = 0, spaceEpisode: UInt32 = 0) {
        words = RingWords(base: base, layout: layout, name: name)
        producer = start
        cachedConsumer = consumerSeen
        published = start
        self.spaceEpisode = spaceEpisode
        maxRecord = ChannelConfiguration.maxRecord(ringBytes: layout.size)
    }

    /// The ring's data size.
    public var capacity: UInt64 { words.size }

    /// Reserves room for a record of `length` bytes (header included).
    ///
    /// Returns where to write it, or nil when the ring is full. Nothing becomes
    /// visible to the consumer until `commit(length:)` and `publish()`.
    ///
    /// - Throws: `ChannelError.corrupted` if the consumer index is out of range.
    @inlinable
    public mutating func reserve(length: Int) throws(ChannelError) -> UnsafeMutableRawPointer? {
        let stride = UInt64(ABI.recordStride(length))
        let position = producer & words.mask
        let tail = words.size - position
        let padding = stride > tail ? tail : 0
        if producer &+ padding &+ stride &- cachedConsumer > words.size {
            // (D) pairs with (C): once we see the consumer's index, the records
            // it covers have been read and their space may be overwritten.
            let consumer = words.kConsumer.pointee.load(ordering: .acquiring)
            try words.check(consumer, from: cachedConsumer, to: published)
            cachedConsumer = consumer
            if producer &+ padding &+ stride &- consumer > words.size { return nil }
        }
        if padding > 0 {
            if padding >= UInt64(ABI.headerSize) {
                RecordHeader(type: 0, priority: 0, flags: MessageFlags.pad.rawValue, size: UInt32(padding),
                             sequence: 0, timestamp: 0).store(to: words.data + Int(position))
            }
            producer &+= padding
        }
        return words.data + Int(producer & words.mask)
    }

    /// Makes the record written at the last reservation part of the next publication.
    @inlinable
    public mutating func commit(length: Int) {
        producer &+= UInt64(ABI.recordStride(length))
    }

    /// Whether committed records wait for `publish()`.
    @inlinable public var hasUnpublished: Bool { producer != published }

    /// Publishes every committed record to the consumer, without looking at
    /// its need-wakeup word; the sender decides about the wake-up for both
    /// lanes at once (`MessageSender.publish`).
    ///
    /// Returns false when there was nothing new to publish (no store made).
    @inlinable
    public mutating func publishIndex() -> Bool {
        guard producer != published else { return false }
        published = producer
        // (A) pairs with (B): the records written before are visible before the index.
        // (E), first half: a sequentially consistent store, so that the
        // caller's sequentially consistent load of the need word is ordered
        // after it (one `xchg` on x86; see RingWords.publishProducer).
        words.kProducer.pointee.store(producer, ordering: .sequentiallyConsistent)
        return true
    }

    /// The consumer's need-wakeup word, read after `publishIndex()`.
    ///
    /// (E), second half, pairs with (F): a consumer going to sleep either sees
    /// our index or we see its word.
    @inlinable
    public func needWakeupWord() -> UInt32 {
        words.kNeedWakeup.pointee.load(ordering: .sequentiallyConsistent)
    }

    /// Whether more than `threshold` bytes (0: a quarter of the ring) are
    /// published and unread, re-reading the consumer index only when the
    /// cached one says so. For the wake-batch rule of coalesced wake-ups.
    ///
    /// - Throws: `ChannelError.corrupted` if the consumer index is out of range.
    @inlinable
    public mutating func unreadExceeds(_ threshold: Int) throws(ChannelError) -> Bool {
        let limit = threshold > 0 ? UInt64(threshold) : words.size / 4
        if published &- cachedConsumer <= limit { return false }
        // (D) pairs with (C), as in reserve.
        let consumer = words.kConsumer.pointee.load(ordering: .acquiring)
        try words.check(consumer, from: cachedConsumer, to: published)
        cachedConsumer = consumer
        return published &- consumer > limit
    }

    /// Announces that the producer is about to wait for room, then re-checks.
    ///
    /// Returns true when the ring still has no room for `length` bytes, so
    /// the caller may sleep until the consumer signals; false when room
    /// appeared meanwhile (the flag is cleared again).
    public mutating func prepareToWaitForSpace(length: Int) throws(ChannelError) -> Bool {
        words.kNeedSpace.pointee.store(NeedFlag.raise(&spaceEpisode), ordering: .relaxed)
        // (H) pairs with (G): the flag is visible before we re-read the consumer index.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        let consumer = words.kConsumer.pointee.load(ordering: .acquiring)
        try words.check(consumer, from: cachedConsumer, to: published)
        cachedConsumer = consumer
        let stride = UInt64(ABI.recordStride(length))
        let tail = words.size - (producer & words.mask)
        let needed = stride > tail ? tail + stride : stride
        if producer &+ needed &- consumer > words.size { return true }
        finishWaitingForSpace()
        return false
    }

    /// Clears the need-space flag after a wait.
    public func finishWaitingForSpace() {
        words.kNeedSpace.pointee.store(NeedFlag.lower(spaceEpisode), ordering: .relaxed)
    }
}

/// The need-wakeup / need-space words.
///
/// Bit 0 says "I sleep, wake me"; bits 1...31 count the sleeper's sleeps.
/// The signalling side remembers the last word it signalled, so a sleeper
/// that stays asleep for a while is signalled once, not once per publication,
/// and a new sleep (a new count) is always signalled.
@usableFromInline enum NeedFlag {
    @usableFromInline static let bit: UInt32 = 1

    /// The word for a new sleep: advances the episode and sets bit 0.
    @inlinable static func raise(_ episode: inout UInt32) -> UInt32 {
        episode = (episode &+ 1) & 0x7fff_ffff
        return episode << 1 | bit
    }

    /// The word after the sleep: same episode, bit 0 clear.
    @inlinable static func lower(_ episode: UInt32) -> UInt32 { episode << 1 }

    /// Whether `word` announces a sleep not signalled yet (without recording it).
    @inlinable static func isNewSleep(_ word: UInt32, lastSignalled: UInt32) -> Bool {
        word & bit != 0 && word != lastSignalled
    }

    /// Whether `word` asks for a wake-up we have not sent yet.
    @inlinable static func shouldSignal(_ word: UInt32, lastSignalled: inout UInt32) -> Bool {
        guard word & bit != 0, word != lastSignalled else { return false }
        lastSignalled = word
        return true
    }
}
