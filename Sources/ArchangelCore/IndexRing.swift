import Synchronization

/// The producer half of a ring of 32-bit entries (a pool's return ring).
///
/// Single producer. Same protocol and barriers as the record rings, with
/// indices counting entries instead of bytes.
public struct IndexRingProducer {
    @usableFromInline let words: RingWords
    @usableFromInline let entries: UInt64
    @usableFromInline var producer: UInt64
    @usableFromInline var cachedConsumer: UInt64
    @usableFromInline var published: UInt64
    @usableFromInline var lastWoken: UInt32 = 0

    /// Binds the producer side of the ring at `layout`.
    ///
    /// `start` is the index to resume from and `consumerSeen` the consumer's
    /// index as last read (both 0 for a new channel).
    public init(base: UnsafeMutableRawPointer, layout: RingLayout, name: String, start: UInt64 = 0,
                consumerSeen: UInt64 = 0) {
        words = RingWords(base: base, layout: layout, name: name)
        entries = UInt64(layout.size / 4)
        producer = start
        cachedConsumer = consumerSeen
        published = start
    }

    /// Appends `value`; returns false when the ring is full.
    ///
    /// - Throws: `ChannelError.corrupted` if the consumer index is out of range.
    @inlinable
    public mutating func push(_ value: UInt32) throws(ChannelError) -> Bool {
        if producer &- cachedConsumer >= entries {
            // (D) pairs with (C).
            let consumer = words.kConsumer.pointee.load(ordering: .acquiring)
            guard consumer &- cachedConsumer <= published &- cachedConsumer else {
                throw .corrupted(.indexOutOfRange(ring: words.name, index: consumer,
                                                  expectedWithin: RingWords.window(cachedConsumer, published)))
            }
            cachedConsumer = consumer
            if producer &- consumer >= entries { return false }
        }
        let slot = (words.data + Int((producer & (entries - 1)) * 4)).assumingMemoryBound(to: UInt32.self)
        slot.pointee = value.littleEndian
        producer &+= 1
        return true
    }

    /// Publishes pushed entries; returns true when the consumer asked to be woken.
    @inlinable
    public mutating func publish() -> Bool {
        guard producer != published else { return false }
        published = producer
        return words.publishProducer(producer, lastWoken: &lastWoken)
    }
}

/// The consumer half of a ring of 32-bit entries.
///
/// Single consumer; releases after every `drain`, which is rare (buffers come
/// back in batches).
public struct IndexRingConsumer {
    @usableFromInline let words: RingWords
    @usableFromInline let entries: UInt64
    @usableFromInline var consumer: UInt64
    @usableFromInline var cachedProducer: UInt64
    @usableFromInline var wakeEpisode: UInt32 = 0

    /// Binds the consumer side of the ring at `layout`.
    ///
    /// `start` is the index to resume from and `wakeEpisode` the sleep counter
    /// to continue (both 0 for a new channel; see `ResumePoint`).
    public init(base: UnsafeMutableRawPointer, layout: RingLayout, name: String, start: UInt64 = 0,
                wakeEpisode: UInt32 = 0) {
        words = RingWords(base: base, layout: layout, name: name)
        entries = UInt64(layout.size / 4)
        consumer = start
        cachedProducer = start
        self.wakeEpisode = wakeEpisode
    }

    /// Calls `body` with every published entry, then releases them.
    ///
    /// Each entry is read once. Returns the number drained.
    /// - Throws: `ChannelError.corrupted` if the producer index is out of range,
    ///   or whatever `body` throws (entries before the throwing one stay consumed).
    @inlinable
    public mutating func drain(_ body: (UInt32) throws(ChannelError) -> Void) throws(ChannelError) -> Int {
        // (B) pairs with (A).
        let producer = words.kProducer.pointee.load(ordering: .acquiring)
        guard producer &- consumer <= entries else {
            throw .corrupted(.indexOutOfRange(ring: words.name, index: producer,
                                              expectedWithin: RingWords.window(consumer, consumer &+ entries)))
        }
        cachedProducer = producer
        var count = 0
        defer {
            if count > 0 {
                // (C) pairs with (D).
                words.kConsumer.pointee.store(consumer, ordering: .releasing)
            }
        }
        while consumer != producer {
            let slot = (words.data + Int((consumer & (entries - 1)) * 4)).assumingMemoryBound(to: UInt32.self)
            let value = UInt32(littleEndian: slot.pointee)
            consumer &+= 1
            count += 1
            try body(value)
        }
        return count
    }

    /// Sets the need-wakeup flag, fences, and re-checks: returns true when the
    /// ring is still empty and the caller may sleep until signalled.
    public mutating func prepareToSleep() -> Bool {
        words.kNeedWakeup.pointee.store(NeedFlag.raise(&wakeEpisode), ordering: .relaxed)
        // (F) pairs with (E).
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if words.kProducer.pointee.load(ordering: .acquiring) != consumer {
            finishSleep()
            return false
        }
        return true
    }

    /// Clears the need-wakeup flag.
    public func finishSleep() {
        words.kNeedWakeup.pointee.store(NeedFlag.lower(wakeEpisode), ordering: .relaxed)
    }
}
