import Synchronization

/// Where one side of a direction starts when it takes over a channel that
/// was already in use: after a crash of the process that held that side, or
/// on an attach to a channel the host created earlier.
///
/// Everything comes from shared memory, read once and checked. A fresh
/// channel is all zeros, so taking it over gives the same start as creating
/// it. docs/recovery.md explains why these starts lose nothing and deliver
/// nothing twice.
public enum ResumePoint {
    /// Start of a receiver: the consumer indices its predecessor published,
    /// and the return ring after finishing the predecessor's last return.
    public struct Receiver: Sendable, Equatable {
        /// Consumer index of the normal lane.
        public var normal: UInt64 = 0
        /// Consumer index of the express lane.
        public var express: UInt64 = 0
        /// Sleep counters to continue, per lane (normal, express).
        public var normalEpisode: UInt32 = 0, expressEpisode: UInt32 = 0
        /// Producer index of the return ring, after completing a pending return.
        public var returnProducer: UInt64 = 0
        /// The sender's consumer index of the return ring, as read.
        public var returnConsumer: UInt64 = 0
        /// Buffers handed back by completing the predecessor's return intent.
        public var completedReturns: Int = 0
    }

    /// Start of a sender: producer indices, the buffers still in flight
    /// (everything else in the pool is free), and the last sequence used.
    public struct Sender: Sendable, Equatable {
        /// Producer index of the normal lane.
        public var normal: UInt64 = 0
        /// The receiver's consumer index of the normal lane, as read.
        public var normalConsumer: UInt64 = 0
        /// Producer index of the express lane.
        public var express: UInt64 = 0
        /// The receiver's consumer index of the express lane, as read.
        public var expressConsumer: UInt64 = 0
        /// Wait counters to continue, per lane (normal, express).
        public var normalEpisode: UInt32 = 0, expressEpisode: UInt32 = 0
        /// Where to resume draining the return ring.
        public var returnConsumer: UInt64 = 0
        /// The return ring's sleep counter to continue (a sender waiting for buffers sleeps on it).
        public var returnEpisode: UInt32 = 0
        /// Buffers that are not free: named by unread messages, or on their way back.
        public var buffersInFlight: [UInt32] = []
        /// The highest sequence number among the unread messages (0 if none).
        public var lastSequence: UInt64 = 0
        /// Messages published and not yet consumed, both lanes.
        public var unreadMessages: Int = 0
    }

    /// Reads the receiving side of `direction` and finishes its predecessor's
    /// buffer return if it died between publishing its consumer index and its
    /// returns (step 4 of the return protocol).
    ///
    /// Only whoever now owns the receiving side may call this: it writes the
    /// return ring's producer index. The host calls it when a client's
    /// connection drops; a new client calls it when it attaches.
    ///
    /// - Parameter complete: false only reads (a host checking memory a
    ///   client brought back, whose receiver may still be running): nothing is
    ///   published, and the result is where a successor would start.
    /// - Throws: `corrupted` when an index is out of range.
    public static func receiver(base: UnsafeMutableRawPointer, layout: ChannelLayout,
                                direction: Direction, complete: Bool = true) throws(ChannelError) -> Receiver {
        let d = layout.direction(direction)
        var start = Receiver()
        for lane in [Lane.normal, .express] {
            let words = RingWords(base: base, layout: d.ring(lane), name: "\(direction).\(lane)")
            let consumer = words.kConsumer.pointee.load(ordering: .acquiring)
            // (B) pairs with (A).
            let producer = words.kProducer.pointee.load(ordering: .acquiring)
            try words.check(producer, from: consumer, to: consumer &+ words.size)
            let resumeAt = ReceiverProgress.resumeIndex(base: base, layout: d, lane: lane,
                                                        consumer: consumer, producer: producer)
            if resumeAt != consumer && complete {
                // Hand the space of the messages delivered but not yet released
                // back to the producer now. (C) pairs with (D).
                words.kConsumer.pointee.store(resumeAt, ordering: .releasing)
            }
            let episode = words.kNeedWakeup.pointee.load(ordering: .relaxed) >> 1
            if lane == .normal {
                start.normal = resumeAt
                start.normalEpisode = episode
            } else {
                start.express = resumeAt
                start.expressEpisode = episode
            }
        }
        guard d.pool.bufferCount > 0 else { return start }
        let returns = RingWords(base: base, layout: d.pool.returns, name: "\(direction).returns")
        let entries = UInt64(d.pool.returns.size / 4)
        let producer = returns.kProducer.pointee.load(ordering: .acquiring)
        let consumer = returns.kConsumer.pointee.load(ordering: .acquiring)
        try returns.check(producer, from: consumer, to: consumer &+ entries)
        start.returnProducer = producer
        start.returnConsumer = consumer
        let intent = ReturnIntent(ReceiverProgress.intent(base: base, layout: d).pointee.load(ordering: .acquiring))
        let laneDelivered = intent.express ? start.express : start.normal
        let missing = intent.missingEntries(returnProducer: producer, maxSegments: d.pool.maxSegments)
        if missing > 0, intent.consumer == UInt32(truncatingIfNeeded: laneDelivered),
           producer &+ UInt64(missing) &- consumer <= entries {
            // Step 3 happened and step 4 did not: the message was consumed, so
            // its buffers go back. (A) pairs with the sender's (B).
            start.returnProducer = producer &+ UInt64(missing)
            start.completedReturns = missing
            if complete { returns.kProducer.pointee.store(start.returnProducer, ordering: .releasing) }
        }
        return start
    }

    /// Reads the sending side of `direction`: where its producer stopped,
    /// and which pool buffers are still in flight.
    ///
    /// The receiver may be running meanwhile; the reads are ordered so that
    /// no buffer on its way back is missed (consumer indices, then the
    /// intent, then the return ring), and a buffer seen twice is harmless.
    ///
    /// - Throws: `corrupted` when an index, record or descriptor fails its check.
    public static func sender(base: UnsafeMutableRawPointer, layout: ChannelLayout,
                              direction: Direction) throws(ChannelError) -> Sender {
        let d = layout.direction(direction)
        var start = Sender()
        let count = d.pool.bufferCount
        var inFlight = [Bool](repeating: false, count: count)
        for lane in [Lane.normal, .express] {
            let name = "\(direction).\(lane)"
            let words = RingWords(base: base, layout: d.ring(lane), name: name)
            let producer = words.kProducer.pointee.load(ordering: .acquiring)
            let consumer = words.kConsumer.pointee.load(ordering: .acquiring)
            try words.check(producer, from: consumer, to: consumer &+ words.size)
            // Records before `delivered` are consumed, even if their space is not released yet.
            let unread = ReceiverProgress.resumeIndex(base: base, layout: d, lane: lane,
                                                      consumer: consumer, producer: producer)
            let episode = words.kNeedSpace.pointee.load(ordering: .relaxed) >> 1
            if lane == .normal {
                (start.normal, start.normalConsumer, start.normalEpisode) = (producer, consumer, episode)
            } else {
                (start.express, start.expressConsumer, start.expressEpisode) = (producer, consumer, episode)
            }
            // Walk the unread records, read-only, as a consumer would.
            var walker = RecordRingConsumer(base: base, layout: d.ring(lane), lane: lane, name: name, start: unread)
            while let record = try walker.peek() {
                start.lastSequence = max(start.lastSequence, record.header.sequence)
                start.unreadMessages += 1
                if record.flags.contains(.dma) {
                    let n = record.payloadLength / ABI.descriptorSize
                    for i in 0..<n {
                        let (descriptor, _) = PoolDescriptor.load(from: record.payload + i * ABI.descriptorSize)
                        guard Int(descriptor.buffer) < count else {
                            throw .corrupted(.badDescriptor(index: i, buffer: descriptor.buffer,
                                                            offset: descriptor.offset, length: descriptor.length))
                        }
                        inFlight[Int(descriptor.buffer)] = true
                    }
                }
                walker.skip(past: record)
            }
        }
        if count > 0 {
            let intent = ReturnIntent(ReceiverProgress.intent(base: base, layout: d).pointee.load(ordering: .acquiring))
            let returns = RingWords(base: base, layout: d.pool.returns, name: "\(direction).returns")
            let entries = UInt64(d.pool.returns.size / 4)
            let consumer = returns.kConsumer.pointee.load(ordering: .acquiring)
            let producer = returns.kProducer.pointee.load(ordering: .acquiring)
            try returns.check(producer, from: consumer, to: consumer &+ entries)
            start.returnConsumer = consumer
            // Continue the sleep counter: the receiver signals a sleep only once
            // per counter value, so restarting it could repeat a value it
            // already signalled and lose the wake-up.
            start.returnEpisode = returns.kNeedWakeup.pointee.load(ordering: .relaxed) >> 1
            // Published returns, plus those staged behind an intent.
            let staged = UInt64(intent.missingEntries(returnProducer: producer, maxSegments: d.pool.maxSegments))
            var index = consumer
            while index != producer &+ staged {
                let slot = returns.data + Int((index & (entries - 1)) * 4)
                let buffer = Int(UInt32(littleEndian: slot.loadUnaligned(as: UInt32.self)))
                // A bad index is the receiver's to answer for when it is drained; skip it here.
                if buffer < count { inFlight[buffer] = true }
                index &+= 1
            }
        }
        start.buffersInFlight = inFlight.indices.filter { inFlight[$0] }.map { UInt32($0) }
        return start
    }
}

/// The return-intent word (`ARCHANGEL_RETURN_INTENT` in the ABI header).
@usableFromInline
struct ReturnIntent {
    @usableFromInline static let expressBit: UInt64 = 1
    /// Low 32 bits of the lane's consumer index after the message (bit 0 cleared).
    let consumer: UInt32
    /// Whether the message came on the express lane.
    let express: Bool
    /// Low 32 bits of the return ring's producer index after the entries.
    let returns: UInt32

    init(_ word: UInt64) {
        express = word & Self.expressBit != 0
        consumer = UInt32(truncatingIfNeeded: word) & ~1
        returns = UInt32(truncatingIfNeeded: word >> 32)
    }

    /// Entries staged behind this intent and not yet published, or 0 when
    /// the intent is complete or makes no sense (a scribbled word).
    func missingEntries(returnProducer: UInt64, maxSegments: Int) -> Int {
        let distance = returns &- UInt32(truncatingIfNeeded: returnProducer)
        return distance >= 1 && distance <= UInt32(maxSegments) ? Int(distance) : 0
    }
}

/// The receiver's progress line (`struct archangel_receiver_progress`): the
/// return intent, then each lane's `delivered` index.
enum ReceiverProgress {
    /// Offset of `lane`'s delivered word.
    static func delivered(layout: DirectionLayout, lane: Lane) -> Int {
        layout.pool.returnIntent + 8 + (lane == .express ? 8 : 0)
    }

    /// The return-intent word, first in the progress line.
    static func intent(base: UnsafeMutableRawPointer, layout: DirectionLayout) -> UnsafeMutablePointer<Atomic<UInt64>> {
        (base + layout.pool.returnIntent).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// Where the messages not yet delivered start: the receiver's
    /// `delivered` word when it lies between the consumer and producer
    /// indices, else the consumer index (a receiver that keeps no
    /// `delivered` word publishes its consumer index after every message).
    static func resumeIndex(base: UnsafeMutableRawPointer, layout: DirectionLayout, lane: Lane,
                            consumer: UInt64, producer: UInt64) -> UInt64 {
        let delivered = (base + delivered(layout: layout, lane: lane)).assumingMemoryBound(to: Atomic<UInt64>.self)
            .pointee.load(ordering: .acquiring)
        return delivered &- consumer <= producer &- consumer ? delivered : consumer
    }
}
