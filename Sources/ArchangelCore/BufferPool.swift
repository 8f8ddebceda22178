import Synchronization

/// The sender's view of its direction's buffer pool.
///
/// Free buffers sit on a private stack (never in shared memory, so the
/// receiver cannot forge one); a bitmap marks the buffers lent to the
/// receiver. Buffers come back through the return ring, and each returned
/// index is checked against the bitmap before it is trusted.
@usableFromInline
struct PoolLender {
    @usableFromInline let buffers: UnsafeMutableRawPointer?
    @usableFromInline let bufferSize: Int
    @usableFromInline let count: Int
    @usableFromInline let threshold: Int
    @usableFromInline let maxSegments: Int
    @usableFromInline let freeStack: UnsafeMutablePointer<UInt32>
    @usableFromInline var freeCount: Int
    @usableFromInline let lent: UnsafeMutablePointer<UInt64>
    @usableFromInline var returns: IndexRingConsumer?

    /// Binds the lending side.
    ///
    /// - Parameters:
    ///   - inFlight: buffers that are not free (a sender taking over; see `ResumePoint.sender`).
    ///   - returnStart: where to resume draining the return ring.
    init(base: UnsafeMutableRawPointer, layout: PoolLayout, name: String, inFlight: [UInt32] = [],
         returnStart: UInt64 = 0, returnEpisode: UInt32 = 0) {
        count = layout.bufferCount
        bufferSize = layout.bufferSize
        threshold = layout.threshold
        maxSegments = layout.maxSegments
        buffers = count > 0 ? base + layout.buffers : nil
        let words = max((count + 63) / 64, 1)
        lent = .allocate(capacity: words)
        lent.initialize(repeating: 0, count: words)
        for index in inFlight where Int(index) < count { lent[Int(index) >> 6] |= 1 << UInt64(index & 63) }
        freeStack = .allocate(capacity: max(count, 1))
        // Highest index at the bottom, so buffer 0 is lent first (easier to read in tests).
        freeCount = 0
        for i in (0..<count).reversed() where lent[i >> 6] & (1 << UInt64(i & 63)) == 0 {
            freeStack[freeCount] = UInt32(i)
            freeCount += 1
        }
        returns = count > 0 ? IndexRingConsumer(base: base, layout: layout.returns, name: "\(name).returns",
                                                start: returnStart, wakeEpisode: returnEpisode) : nil
    }

    func deallocate() {
        freeStack.deallocate()
        lent.deallocate()
    }

    @usableFromInline var enabled: Bool { count > 0 }
    @usableFromInline var inUse: Int { count - freeCount }

    /// Number of buffers a payload of `length` bytes spans.
    @inlinable func segments(for length: Int) -> Int { (length + bufferSize - 1) / bufferSize }

    /// Takes back every buffer the receiver returned, checking each index.
    @inlinable
    mutating func reclaim() throws(ChannelError) {
        guard var ring = returns else { return }
        defer { returns = ring }
        _ = try ring.drain { (index) throws(ChannelError) in
            let i = Int(index)
            guard i < count, lent[i >> 6] & (1 << UInt64(i & 63)) != 0 else {
                throw .corrupted(.badReturn(buffer: index))
            }
            lent[i >> 6] &= ~(1 << UInt64(i & 63))
            freeStack[freeCount] = index
            freeCount += 1
        }
    }

    /// Takes a free buffer and marks it lent. The caller checked `freeCount`.
    @inlinable
    mutating func take() -> UInt32 {
        freeCount -= 1
        let index = freeStack[freeCount]
        lent[Int(index) >> 6] |= 1 << UInt64(index & 63)
        return index
    }

    /// Puts back a buffer that was taken but never sent (a cancelled loan).
    mutating func putBack(_ index: UInt32) {
        lent[Int(index) >> 6] &= ~(1 << UInt64(index & 63))
        freeStack[freeCount] = index
        freeCount += 1
    }

    @inlinable func buffer(_ index: UInt32) -> UnsafeMutableRawPointer {
        buffers! + Int(index) * bufferSize
    }
}

/// The receiver's view of the sender's buffer pool.
///
/// A bitmap marks the buffers the receiver holds, so a descriptor naming a
/// buffer twice (in one message, or while an earlier message still holds it)
/// is caught as corruption instead of handing out aliased memory.
@usableFromInline
struct PoolBorrower {
    @usableFromInline let buffers: UnsafeRawPointer?
    @usableFromInline let bufferSize: Int
    @usableFromInline let count: Int
    @usableFromInline let maxSegments: Int
    @usableFromInline let held: UnsafeMutablePointer<UInt64>
    @usableFromInline var returns: IndexRingProducer?
    /// Our return-intent word in shared memory (`ARCHANGEL_RETURN_INTENT`).
    @usableFromInline let kIntent: UnsafeMutablePointer<Atomic<UInt64>>?
    /// Where the current message's segments are described to the caller.
    @usableFromInline let segments: UnsafeMutablePointer<UnsafeRawBufferPointer>
    /// The buffer index behind each segment, for the return.
    @usableFromInline let segmentBuffers: UnsafeMutablePointer<UInt32>

    /// Binds the borrowing side; `returnStart` is the return ring's producer
    /// index to resume from, `returnsSeen` its consumer index (see `ResumePoint`).
    init(base: UnsafeMutableRawPointer, layout: PoolLayout, name: String, returnStart: UInt64 = 0,
         returnsSeen: UInt64 = 0) {
        count = layout.bufferCount
        bufferSize = layout.bufferSize
        maxSegments = max(layout.maxSegments, 1)
        buffers = count > 0 ? UnsafeRawPointer(base + layout.buffers) : nil
        let words = max((count + 63) / 64, 1)
        held = .allocate(capacity: words)
        held.initialize(repeating: 0, count: words)
        segments = .allocate(capacity: maxSegments)
        segments.initialize(repeating: UnsafeRawBufferPointer(start: nil, count: 0), count: maxSegments)
        segmentBuffers = .allocate(capacity: maxSegments)
        returns = count > 0 ? IndexRingProducer(base: base, layout: layout.returns, name: "\(name).returns",
                                                start: returnStart, consumerSeen: returnsSeen) : nil
        kIntent = count > 0 ? (base + layout.returnIntent).assumingMemoryBound(to: Atomic<UInt64>.self) : nil
    }

    func deallocate() {
        held.deallocate()
        segments.deallocate()
        segmentBuffers.deallocate()
    }

    /// Reads and checks the descriptor list of a pool message, once each.
    ///
    /// Fills `segments`; returns the number of segments and the total length.
    @inlinable
    mutating func borrow(descriptors: UnsafeRawPointer, length: Int) throws(ChannelError) -> (count: Int, bytes: Int) {
        let n = length / ABI.descriptorSize
        guard count > 0, length % ABI.descriptorSize == 0, n >= 1, n <= maxSegments else {
            throw .corrupted(.badDescriptor(index: -1, buffer: 0, offset: 0, length: UInt32(clamping: length)))
        }
        var total = 0
        for i in 0..<n {
            let (d, reserved) = PoolDescriptor.load(from: descriptors + i * ABI.descriptorSize)
            let b = Int(d.buffer)
            guard reserved == 0, b < count, Int(d.offset) <= bufferSize, Int(d.length) <= bufferSize - Int(d.offset)
            else {
                // Undo this message's marks: the channel fails, but the bitmap stays exact.
                for j in 0..<i { release(segmentBuffers[j]) }
                throw .corrupted(.badDescriptor(index: i, buffer: d.buffer, offset: d.offset, length: d.length))
            }
            let bit: UInt64 = 1 << UInt64(b & 63)
            guard held[b >> 6] & bit == 0 else {
                for j in 0..<i { release(segmentBuffers[j]) }
                throw .corrupted(.bufferNotOwned(buffer: d.buffer))
            }
            held[b >> 6] |= bit
            segmentBuffers[i] = d.buffer
            segments[i] = UnsafeRawBufferPointer(start: buffers! + b * bufferSize + Int(d.offset), count: Int(d.length))
            total += Int(d.length)
        }
        return (n, total)
    }

    @inlinable mutating func release(_ index: UInt32) {
        held[Int(index) >> 6] &= ~(1 << UInt64(index & 63))
    }

    /// Writes the buffers of the last borrowed message into the return ring,
    /// unpublished, and records the return intent for a successor.
    ///
    /// Steps 1 and 2 of the return protocol (docs/recovery.md): the caller
    /// then publishes the lane's consumer index (`consumerAfter`) and calls
    /// `publishReturns()`. A process that dies between the two publications
    /// leaves an intent that its successor (or the host) completes.
    @inlinable
    mutating func stageReturn(count n: Int, consumerAfter: UInt64, express: Bool) throws(ChannelError) {
        guard var ring = returns else { return }
        defer { returns = ring }
        for i in 0..<n {
            let index = segmentBuffers[i]
            release(index)
            // The ring holds every buffer, so it is full only if the sender stopped draining it.
            guard try ring.push(index) else { throw .corrupted(.returnRingOverflow) }
        }
        let intent = UInt64(UInt32(truncatingIfNeeded: ring.producer)) << 32
            | UInt64(UInt32(truncatingIfNeeded: consumerAfter)) | (express ? ReturnIntent.expressBit : 0)
        // Pairs with the acquire load in `ResumePoint`: the entries are written before the intent.
        kIntent!.pointee.store(intent, ordering: .releasing)
    }

    /// Publishes staged returns (step 4); true when the sender sleeps waiting for buffers (signal it).
    @inlinable
    mutating func publishReturns() -> Bool {
        guard var ring = returns else { return false }
        defer { returns = ring }
        return ring.publish()
    }
}
