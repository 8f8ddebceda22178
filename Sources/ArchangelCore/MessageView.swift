/// A received message lent in place from shared memory.
///
/// Valid only inside the closure it is passed to: when that returns, the
/// ring space and pool buffers behind it go back to the sender. Copy out what
/// you need to keep (`copyBytes(to:)`, `bytes`). The header fields are the
/// validated copy, not shared memory. The payload bytes are shared memory:
/// a hostile sender could change them while you read, so read what you
/// decide on once (or copy it first), as the bridge does with headers.
public struct MessageView {
    /// The message type.
    public let type: MessageType
    /// The priority it was sent with.
    public let priority: MessagePriority
    /// The sender's sequence number for it.
    public let sequence: UInt64
    /// CLOCK_MONOTONIC nanoseconds when it was sent.
    public let timestamp: UInt64
    /// Its flags (`dma` for pool transfers, `copied` for fallbacks, ...).
    public let flags: MessageFlags
    /// The request this message answers, if it is a correlated response.
    public let correlation: UInt64?
    /// Payload bytes in all.
    public let count: Int
    @usableFromInline let segmentList: UnsafePointer<UnsafeRawBufferPointer>?
    @usableFromInline let inline: UnsafeRawBufferPointer
    /// Number of contiguous pieces (1 unless the payload spans several pool buffers).
    public let segmentCount: Int

    @inlinable
    init(record: RingRecord, count: Int, segments: UnsafePointer<UnsafeRawBufferPointer>?, segmentCount: Int) {
        type = record.type
        priority = record.priority
        sequence = record.header.sequence
        timestamp = record.header.timestamp
        flags = record.flags
        correlation = record.correlation
        self.count = count
        segmentList = segments
        self.segmentCount = segmentCount
        inline = segments == nil ? UnsafeRawBufferPointer(start: record.payload, count: record.payloadLength)
                                 : UnsafeRawBufferPointer(start: nil, count: 0)
    }

    /// Piece `index` of the payload, in order.
    @inlinable
    public func segment(_ index: Int) -> UnsafeRawBufferPointer {
        precondition(index >= 0 && index < segmentCount, "segment \(index) of \(segmentCount)")
        return segmentList.map { $0[index] } ?? inline
    }

    /// The payload when it is one piece (always for inline messages), else nil.
    @inlinable
    public var contiguousBytes: UnsafeRawBufferPointer? { segmentCount == 1 ? segment(0) : nil }

    /// Copies the payload (all pieces, in order) to `destination`.
    ///
    /// Returns the bytes copied: `min(count, destination.count)`.
    @inlinable
    public func copyBytes(to destination: UnsafeMutableRawBufferPointer) -> Int {
        var copied = 0
        for i in 0..<segmentCount where copied < destination.count {
            let piece = segment(i)
            let n = min(piece.count, destination.count - copied)
            if n > 0 { (destination.baseAddress! + copied).copyMemory(from: piece.baseAddress!, byteCount: n) }
            copied += n
        }
        return copied
    }

    /// The payload copied into a new array (allocates).
    public var bytes: [UInt8] {
        // An empty payload must not go through `unsafeUninitializedCapacity`:
        // with capacity 0 it stores the count into the shared empty-array
        // singleton, which ThreadSanitizer rightly reports as a race with
        // any other thread reading an empty array.
        guard count > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialized = copyBytes(to: UnsafeMutableRawBufferPointer(buffer))
        }
    }
}
