/// The 28-byte packed header in front of every record (`struct archangel_msg_header`).
///
/// Loaded from shared memory field by field into this value exactly once;
/// everything after that works on the copy, never on the shared bytes.
public struct RecordHeader: Equatable, Sendable {
    /// `ARCHANGEL_MSG_MAGIC` in a valid record.
    public var magic: UInt32
    /// The raw message type (1...7, or 0 in a padding record).
    public var type: UInt8
    /// The raw priority (0...3).
    public var priority: UInt8
    /// The raw flags (`ARCHANGEL_MSG_F_*`).
    public var flags: UInt16
    /// Record bytes including this header, excluding alignment padding.
    public var size: UInt32
    /// Per-direction sequence number.
    public var sequence: UInt64
    /// CLOCK_MONOTONIC nanoseconds at send.
    public var timestamp: UInt64

    /// Creates a header from its fields.
    @inlinable
    public init(magic: UInt32 = ABI.messageMagic, type: UInt8, priority: UInt8, flags: UInt16,
                size: UInt32, sequence: UInt64, timestamp: UInt64) {
        self.magic = magic
        self.type = type
        self.priority = priority
        self.flags = flags
        self.size = size
        self.sequence = sequence
        self.timestamp = timestamp
    }

    /// Reads a header at `pointer` (any alignment). Each byte is read once.
    @inlinable
    public init(loadingFrom pointer: UnsafeRawPointer) {
        magic = UInt32(littleEndian: pointer.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        type = pointer.load(fromByteOffset: 4, as: UInt8.self)
        priority = pointer.load(fromByteOffset: 5, as: UInt8.self)
        flags = UInt16(littleEndian: pointer.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
        size = UInt32(littleEndian: pointer.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        sequence = UInt64(littleEndian: pointer.loadUnaligned(fromByteOffset: 12, as: UInt64.self))
        timestamp = UInt64(littleEndian: pointer.loadUnaligned(fromByteOffset: 20, as: UInt64.self))
    }

    /// Writes the header at `pointer` (any alignment).
    @inlinable
    public func store(to pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: magic.littleEndian, toByteOffset: 0, as: UInt32.self)
        pointer.storeBytes(of: type, toByteOffset: 4, as: UInt8.self)
        pointer.storeBytes(of: priority, toByteOffset: 5, as: UInt8.self)
        pointer.storeBytes(of: flags.littleEndian, toByteOffset: 6, as: UInt16.self)
        pointer.storeBytes(of: size.littleEndian, toByteOffset: 8, as: UInt32.self)
        pointer.storeBytes(of: sequence.littleEndian, toByteOffset: 12, as: UInt64.self)
        pointer.storeBytes(of: timestamp.littleEndian, toByteOffset: 20, as: UInt64.self)
    }
}

/// One scatter-gather element (`struct archangel_pool_desc`), copied out of shared memory.
public struct PoolDescriptor: Equatable, Sendable {
    /// Buffer index in the sender's pool.
    public var buffer: UInt32
    /// Byte offset in that buffer.
    public var offset: UInt32
    /// Bytes of payload in that buffer.
    public var length: UInt32

    /// Creates a descriptor.
    @inlinable public init(buffer: UInt32, offset: UInt32, length: UInt32) {
        self.buffer = buffer
        self.offset = offset
        self.length = length
    }

    /// Reads a descriptor and its reserved word at `pointer` (any alignment).
    @inlinable
    public static func load(from pointer: UnsafeRawPointer) -> (PoolDescriptor, reserved: UInt32) {
        (PoolDescriptor(
            buffer: UInt32(littleEndian: pointer.loadUnaligned(fromByteOffset: 0, as: UInt32.self)),
            offset: UInt32(littleEndian: pointer.loadUnaligned(fromByteOffset: 4, as: UInt32.self)),
            length: UInt32(littleEndian: pointer.loadUnaligned(fromByteOffset: 8, as: UInt32.self))),
         UInt32(littleEndian: pointer.loadUnaligned(fromByteOffset: 12, as: UInt32.self)))
    }

    /// Writes the descriptor, with a zero reserved word, at `pointer`.
    @inlinable
    public func store(to pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: buffer.littleEndian, toByteOffset: 0, as: UInt32.self)
        pointer.storeBytes(of: offset.littleEndian, toByteOffset: 4, as: UInt32.self)
        pointer.storeBytes(of: length.littleEndian, toByteOffset: 8, as: UInt32.self)
        pointer.storeBytes(of: UInt32(0), toByteOffset: 12, as: UInt32.self)
    }
}
