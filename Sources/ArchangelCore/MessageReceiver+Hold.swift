import Synchronization

/// Messages a receiver lent out and still holds: their ring space and pool
/// buffers stay the receiver's until `MessageReceiver.release(_:)`.
///
/// The closure-scoped `tryReceive` releases a message when its closure
/// returns; a C or Python caller cannot keep a closure open, so the bindings
/// (docs/bindings.md) hold messages across calls with this instead.
public struct HeldMessages: Sendable, Equatable {
    /// Messages held (0: none).
    public var count: Int = 0
    /// Whether any held message came from the express / normal lane.
    var express = false
    var normal = false
    /// The pool message that ends the batch, if any: its lane, segment count and record stride.
    var poolLane: Lane? = nil
    var poolSegments = 0
    var poolStride: UInt64 = 0

    /// Nothing held.
    public init() {}
}

extension RecordRingConsumer {
    /// Steps past `record` as delivered, publishing nothing: its space stays
    /// ours until `release()` (the bindings' held receive).
    @inlinable
    mutating func hold(past record: RingRecord) {
        consumer &+= record.stride
        // Delivered for good, as in `advance(past:)`: a successor resumes after it.
        kDelivered?.pointee.store(consumer, ordering: .releasing)
    }

    /// Publishes the consumed position once a batch (a quarter ring) has
    /// built up since the last fenced release, as `advance(past:)` does.
    @inlinable
    mutating func releaseIfBatched() -> Bool {
        consumer &- released >= releaseBatch ? release() : false
    }
}

extension MessageReceiver {
    /// Lends up to `limit` queued messages to `body` and keeps holding them:
    /// each view's payload stays valid (and unchanged by the sender) after
    /// `body` returns, until `release(_:)`.
    ///
    /// A pool message ends the batch (its segment list is the last one
    /// described). Call `release(_:)` with the result before the next
    /// receive of any kind on this receiver, and before sleeping: both would
    /// publish the held space. Returns the held set (count 0: both lanes empty).
    /// - Throws: `corrupted` when shared memory fails a check (from then on, always).
    public func tryHoldBatch(limit: Int, _ body: (MessageView) -> Void) throws(ChannelError) -> HeldMessages {
        let s = state
        if s.pointee.failed { throw error ?? .closed }
        var held = HeldMessages()
        do {
            while held.count < max(limit, 1) {
                let lane: Lane
                let record: RingRecord
                if let r = try s.pointee.express.peek() {
                    lane = .express
                    record = r
                } else if let r = try s.pointee.normal.peek() {
                    lane = .normal
                    record = r
                } else {
                    break
                }
                if lane == .express { held.express = true } else { held.normal = true }
                held.count += 1
                if record.header.flags & MessageFlags.dma.rawValue != 0 {
                    let (n, bytes) = try s.pointee.pool.borrow(descriptors: record.payload,
                                                              length: record.payloadLength)
                    body(MessageView(record: record, count: bytes, segments: UnsafePointer(s.pointee.pool.segments),
                                     segmentCount: n))
                    counters.add(.poolTransfers)
                    counters.add(.bytesReceived, UInt64(bytes))
                    counters.add(.messagesReceived)
                    // Consumed at release, after its buffers are staged (the return protocol).
                    held.poolLane = lane
                    held.poolSegments = n
                    held.poolStride = record.stride
                    break
                }
                body(MessageView(record: record, count: record.payloadLength, segments: nil, segmentCount: 1))
                counters.add(.bytesReceived, UInt64(record.payloadLength))
                counters.add(.messagesReceived)
                if lane == .express { s.pointee.express.hold(past: record) } else { s.pointee.normal.hold(past: record) }
            }
        } catch { throw fail(error) }
        // Nothing held: hand back consumed space now, as `tryReceive` does on an empty ring.
        if held.count == 0 { releaseConsumed() }
        return held
    }

    /// Gives back what `tryHoldBatch` held: the ring space to the sender (in
    /// quarter-ring batches, like `tryReceive`) and the pool buffers through
    /// the return ring, waking the sender if it waits.
    /// - Throws: `corrupted` when the return ring is found overflowing.
    public func release(_ held: HeldMessages) throws(ChannelError) {
        guard held.count > 0 else { return }
        let s = state
        var wakeSender = false
        if let lane = held.poolLane {
            // The return protocol (docs/recovery.md): stage the returns and
            // the intent, publish the consumer index, then the returns.
            let after = (lane == .express ? s.pointee.express.consumer : s.pointee.normal.consumer) &+ held.poolStride
            do {
                try s.pointee.pool.stageReturn(count: held.poolSegments, consumerAfter: after,
                                               express: lane == .express)
            } catch { throw fail(error) }
            if lane == .express {
                s.pointee.express.consumer = after
                s.pointee.express.kDelivered?.pointee.store(after, ordering: .releasing)
            } else {
                s.pointee.normal.consumer = after
                s.pointee.normal.kDelivered?.pointee.store(after, ordering: .releasing)
            }
        }
        // Publication in quarter-ring batches, as `advance(past:)` does; an
        // empty ring or a sleep publishes the rest (`releaseConsumed`).
        if held.express { wakeSender = s.pointee.express.releaseIfBatched() || wakeSender }
        if held.normal { wakeSender = s.pointee.normal.releaseIfBatched() || wakeSender }
        if held.poolLane != nil { wakeSender = s.pointee.pool.publishReturns() || wakeSender }
        if wakeSender { notifySender() }
    }
}
