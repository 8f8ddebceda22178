import CArchangel

/// Where one ring lives in channel memory (`struct archangel_ring_offsets`).
public struct RingLayout: Equatable, Sendable {
    /// Offset of the `UInt64` producer counter.
    public var producer: Int
    /// Offset of the `UInt64` consumer counter.
    public var consumer: Int
    /// Offset of the `UInt32` need-wakeup word (written by the consumer).
    public var needWakeup: Int
    /// Offset of the `UInt32` need-space word (written by the producer).
    public var needSpace: Int
    /// Offset of the data area.
    public var data: Int
    /// Bytes of the data area, a power of two.
    public var size: Int
    /// 0 for variable-length records, else the fixed entry size.
    public var entrySize: Int

    init(_ c: archangel_ring_offsets) {
        // Clamped, not converted: a peer's offset above Int.max must fail
        // `validate`, not trap here.
        producer = Int(clamping: c.producer)
        consumer = Int(clamping: c.consumer)
        needWakeup = Int(clamping: c.need_wakeup)
        needSpace = Int(clamping: c.need_space)
        data = Int(clamping: c.data)
        size = Int(c.size)
        entrySize = Int(c.entry_size)
    }

    init(producer: Int, consumer: Int, needWakeup: Int, needSpace: Int, data: Int, size: Int, entrySize: Int) {
        self.producer = producer
        self.consumer = consumer
        self.needWakeup = needWakeup
        self.needSpace = needSpace
        self.data = data
        self.size = size
        self.entrySize = entrySize
    }

    var c: archangel_ring_offsets {
        archangel_ring_offsets(producer: UInt64(producer), consumer: UInt64(consumer),
                               need_wakeup: UInt64(needWakeup), need_space: UInt64(needSpace),
                               data: UInt64(data), size: UInt32(size), entry_size: UInt32(entrySize))
    }
}

/// The buffer pool of one direction (`struct archangel_pool_offsets`).
public struct PoolLayout: Equatable, Sendable {
    /// Offset of the first buffer; 0 when there is no pool.
    public var buffers: Int
    /// Bytes per buffer.
    public var bufferSize: Int
    /// Number of buffers.
    public var bufferCount: Int
    /// Payloads above this size use the pool.
    public var threshold: Int
    /// The most descriptors in one message.
    public var maxSegments: Int
    /// The ring through which the receiver hands buffers back.
    public var returns: RingLayout
    /// Offset of the receiver's `UInt64` return-intent word (`ARCHANGEL_RETURN_INTENT`),
    /// which lets a successor finish a dead receiver's buffer return (docs/recovery.md).
    public var returnIntent: Int

    init(_ c: archangel_pool_offsets) {
        buffers = Int(clamping: c.buffers)
        bufferSize = Int(c.buffer_size)
        bufferCount = Int(c.buffer_count)
        threshold = Int(c.threshold)
        maxSegments = Int(c.max_segments)
        returns = RingLayout(c.returns)
        returnIntent = Int(clamping: c.return_intent)
    }

    init(buffers: Int, bufferSize: Int, bufferCount: Int, threshold: Int, maxSegments: Int, returns: RingLayout,
         returnIntent: Int) {
        self.buffers = buffers
        self.bufferSize = bufferSize
        self.bufferCount = bufferCount
        self.threshold = threshold
        self.maxSegments = maxSegments
        self.returns = returns
        self.returnIntent = returnIntent
    }

    var c: archangel_pool_offsets {
        archangel_pool_offsets(buffers: UInt64(buffers), buffer_size: UInt32(bufferSize),
                               buffer_count: UInt32(bufferCount), threshold: UInt32(threshold),
                               max_segments: UInt32(maxSegments), returns: returns.c,
                               return_intent: UInt64(returnIntent))
    }
}

/// Everything one direction uses (`struct archangel_direction_offsets`).
public struct DirectionLayout: Equatable, Sendable {
    /// The lane for `low` and `normal`.
    public var normal: RingLayout
    /// The lane for `high` and `critical`.
    public var express: RingLayout
    /// The sender's buffer pool.
    public var pool: PoolLayout

    /// The ring of `lane`.
    public func ring(_ lane: Lane) -> RingLayout { lane == .normal ? normal : express }
}

/// Which way a direction carries messages.
public enum Direction: Int, Sendable, CaseIterable, CustomStringConvertible {
    /// Kernel side to user side.
    case toUser = 0
    /// User side to kernel side.
    case toKernel = 1

    /// `to_user` or `to_kernel`, as in the statistics text.
    public var description: String { self == .toUser ? "to_user" : "to_kernel" }
}

/// The whole geometry of a channel (`struct archangel_channel_offsets`).
///
/// The creator computes it with `init(configuration:channelID:)` and writes it
/// into page 0; whoever attaches reads it back with `load(from:size:)`, which
/// checks every offset before anything uses it.
public struct ChannelLayout: Equatable, Sendable {
    /// The creator's ABI version.
    public var abiVersion: UInt32
    /// The creator's feature bits.
    public var features: UInt32
    /// Bytes of channel memory.
    public var totalSize: Int
    /// The channel's id in its manager.
    public var channelID: UInt32
    /// Page of index lines written by the kernel side.
    public var kernelLines: Int
    /// Page of index lines written by the user side.
    public var userLines: Int
    /// Kernel to user.
    public var toUser: DirectionLayout
    /// User to kernel.
    public var toKernel: DirectionLayout

    /// The layout of `direction`.
    public func direction(_ direction: Direction) -> DirectionLayout {
        direction == .toUser ? toUser : toKernel
    }

    /// Lays out a new channel.
    ///
    /// - Throws: `ChannelError.invalidConfiguration` if the configuration does not validate.
    public init(configuration: ChannelConfiguration, channelID: UInt32) throws(ChannelError) {
        try configuration.validate()
        let page = ABI.pageSize
        let line = ABI.cacheLine
        kernelLines = page
        userLines = 2 * page
        var kernelCursor = kernelLines
        var userCursor = userLines
        var dataCursor = 3 * page
        func takeLine(_ cursor: inout Int) -> Int {
            defer { cursor += line }
            return cursor
        }
        func takeData(_ bytes: Int) -> Int {
            defer { dataCursor += (bytes + page - 1) / page * page }
            return dataCursor
        }
        // The producer writes `producer` and `needSpace`; the consumer writes
        // `consumer` and `needWakeup`. Each goes on its writer's page.
        func ring(producerSide: inout Int, consumerSide: inout Int, size: Int, entrySize: Int) -> RingLayout {
            RingLayout(producer: takeLine(&producerSide), consumer: takeLine(&consumerSide),
                       needWakeup: takeLine(&consumerSide), needSpace: takeLine(&producerSide),
                       data: takeData(size), size: size, entrySize: entrySize)
        }
        let c = configuration
        let returnEntries = max(8, c.poolBufferCount).nextPowerOfTwo
        func direction(producer: inout Int, consumer: inout Int) -> DirectionLayout {
            let normal = ring(producerSide: &producer, consumerSide: &consumer, size: c.normalRingBytes, entrySize: 0)
            let express = ring(producerSide: &producer, consumerSide: &consumer, size: c.expressRingBytes, entrySize: 0)
            // Returns flow the other way: the receiver produces them.
            let returns = ring(producerSide: &consumer, consumerSide: &producer, size: returnEntries * 4, entrySize: 4)
            return DirectionLayout(normal: normal, express: express,
                                   pool: PoolLayout(buffers: 0, bufferSize: c.poolBufferSize,
                                                    bufferCount: c.poolBufferCount, threshold: c.poolThreshold,
                                                    maxSegments: min(c.maxSegments, max(1, c.poolBufferCount)),
                                                    returns: returns, returnIntent: 0))
        }
        toUser = direction(producer: &kernelCursor, consumer: &userCursor)
        toKernel = direction(producer: &userCursor, consumer: &kernelCursor)
        // Taken after both directions so that the lines above keep their places.
        toUser.pool.returnIntent = takeLine(&userCursor)
        toKernel.pool.returnIntent = takeLine(&kernelCursor)
        if c.poolBufferCount > 0 {
            toUser.pool.buffers = takeData(c.poolBufferCount * c.poolBufferSize)
            toKernel.pool.buffers = takeData(c.poolBufferCount * c.poolBufferSize)
        }
        abiVersion = ABI.version
        features = ABI.features
        totalSize = dataCursor
        self.channelID = channelID
    }

    init(_ c: archangel_channel_offsets) {
        abiVersion = c.abi_version
        features = c.features
        totalSize = Int(clamping: c.total_size)
        channelID = c.channel_id
        kernelLines = Int(clamping: c.kernel_lines)
        userLines = Int(clamping: c.user_lines)
        toUser = DirectionLayout(normal: RingLayout(c.to_user.normal), express: RingLayout(c.to_user.express),
                                 pool: PoolLayout(c.to_user.pool))
        toKernel = DirectionLayout(normal: RingLayout(c.to_kernel.normal), express: RingLayout(c.to_kernel.express),
                                   pool: PoolLayout(c.to_kernel.pool))
    }

    /// The C struct for ioctls and sockets.
    public var offsets: archangel_channel_offsets {
        var c = archangel_channel_offsets()
        c.abi_version = abiVersion
        c.features = features
        c.total_size = UInt64(totalSize)
        c.channel_id = channelID
        c.kernel_lines = UInt64(kernelLines)
        c.user_lines = UInt64(userLines)
        c.to_user = archangel_direction_offsets(normal: toUser.normal.c, express: toUser.express.c, pool: toUser.pool.c)
        c.to_kernel = archangel_direction_offsets(normal: toKernel.normal.c, express: toKernel.express.c,
                                                  pool: toKernel.pool.c)
        return c
    }

    /// Writes page 0 (`struct archangel_channel_header`) into fresh, zeroed channel memory.
    public func writeHeader(to base: UnsafeMutableRawPointer) {
        var header = archangel_channel_header()
        header.magic = ABI.channelMagic
        header.header_size = UInt32(MemoryLayout<archangel_channel_header>.size)
        header.offsets = offsets
        base.storeBytes(of: header, as: archangel_channel_header.self)
    }

    /// Reads page 0 of channel memory of `size` bytes once, then validates the copy.
    ///
    /// - Throws: `ChannelError.abiMismatch` for another major version,
    ///   `ChannelError.corrupted(.badLayout)` for anything else that does not add up.
    public static func load(from base: UnsafeRawPointer, size: Int) throws(ChannelError) -> ChannelLayout {
        guard size >= MemoryLayout<archangel_channel_header>.size else {
            throw .corrupted(.badLayout("memory of \(size) bytes cannot hold a channel header"))
        }
        let header = base.loadUnaligned(as: archangel_channel_header.self)
        guard header.magic == ABI.channelMagic else {
            throw .corrupted(.badLayout("channel magic is 0x\(String(header.magic, radix: 16))"))
        }
        guard header.header_size == UInt32(MemoryLayout<archangel_channel_header>.size) else {
            throw .corrupted(.badLayout("header size \(header.header_size)"))
        }
        let reserved = header.offsets.reserved
        guard header.offsets.reserved0 == 0, reserved.0 == 0, reserved.1 == 0, reserved.2 == 0, reserved.3 == 0 else {
            throw .corrupted(.badLayout("reserved fields are not zero"))
        }
        let layout = ChannelLayout(header.offsets)
        try layout.validate(mappedSize: size)
        return layout
    }

    /// Checks that the layout is of our ABI major version and that every region
    /// is aligned, inside `mappedSize` bytes and apart from every other.
    public func validate(mappedSize: Int) throws(ChannelError) {
        guard abiVersion >> 16 == ABI.version >> 16 else { throw .abiMismatch(ours: ABI.version, theirs: abiVersion) }
        func bad(_ text: String) -> ChannelError { .corrupted(.badLayout(text)) }
        // Features we do not implement would mean records we cannot read.
        guard features & ~ABI.features == 0 else {
            throw bad("features 0x\(String(features, radix: 16)) include some this build does not implement")
        }
        guard totalSize <= mappedSize else { throw bad("total size \(totalSize) exceeds mapped \(mappedSize)") }
        var regions: [(name: String, start: Int, end: Int)] = [
            ("header", 0, MemoryLayout<archangel_channel_header>.size),
        ]
        func line(_ name: String, _ offset: Int, _ bytes: Int) throws(ChannelError) {
            guard offset >= 0, offset % 8 == 0, offset <= totalSize - bytes else {
                throw bad("\(name) at \(offset) is misaligned or outside \(totalSize) bytes")
            }
            regions.append((name, offset, offset + bytes))
        }
        func ring(_ name: String, _ r: RingLayout, entrySize: Int) throws(ChannelError) {
            try line("\(name).producer", r.producer, 8)
            try line("\(name).consumer", r.consumer, 8)
            try line("\(name).need_wakeup", r.needWakeup, 4)
            try line("\(name).need_space", r.needSpace, 4)
            guard r.entrySize == entrySize else { throw bad("\(name) entry size \(r.entrySize), expected \(entrySize)") }
            // A record ring takes records of up to a quarter of it, and must take at
            // least a correlated empty message (header and correlation word): 256 bytes.
            let minimum = entrySize == 0 ? (4 * (ABI.headerSize + ABI.correlationSize)).nextPowerOfTwo : 8 * entrySize
            guard r.size >= minimum, r.size.nonzeroBitCount == 1, r.size <= 1 << 30 else {
                throw bad("\(name) size \(r.size) is not a power of two from \(minimum) to 1 GiB")
            }
            guard r.data % ABI.pageSize == 0 else { throw bad("\(name).data at \(r.data) is not page aligned") }
            try line("\(name).data", r.data, r.size)
        }
        for d in Direction.allCases {
            let dir = direction(d)
            try line("\(d).progress", dir.pool.returnIntent, MemoryLayout<archangel_receiver_progress>.size)
            try ring("\(d).normal", dir.normal, entrySize: 0)
            try ring("\(d).express", dir.express, entrySize: 0)
            let pool = dir.pool
            // Both ends size per-message arrays by it, pool or not (creators write 1 without a pool).
            guard pool.maxSegments >= 1, pool.maxSegments <= 256 else {
                throw bad("\(d).pool max segments \(pool.maxSegments) is not 1...256")
            }
            if pool.bufferCount > 0 {
                let descriptorRecord = ABI.headerSize + ABI.correlationSize + pool.maxSegments * ABI.descriptorSize
                let maxRecord = ChannelConfiguration.maxRecord(ringBytes: min(dir.normal.size, dir.express.size))
                guard pool.bufferSize >= 256, pool.bufferSize.nonzeroBitCount == 1, pool.bufferSize <= 1 << 20,
                      pool.bufferCount <= 1 << 20, pool.maxSegments >= 1, pool.maxSegments <= 256,
                      descriptorRecord <= maxRecord, pool.buffers % ABI.pageSize == 0
                else { throw bad("\(d).pool geometry \(pool.bufferCount)x\(pool.bufferSize), \(pool.maxSegments) segments") }
                // As every creator checks (`ChannelConfiguration.validate`): a payload at the
                // threshold fits inline, else the sender would refuse payloads within its limit.
                guard pool.threshold <= maxRecord - ABI.headerSize - ABI.correlationSize else {
                    throw bad("\(d).pool threshold \(pool.threshold) is above the largest inline payload")
                }
                try line("\(d).pool.buffers", pool.buffers, pool.bufferCount * pool.bufferSize)
                try ring("\(d).pool.returns", pool.returns, entrySize: 4)
                guard pool.returns.size / 4 >= pool.bufferCount else {
                    throw bad("\(d).pool.returns holds \(pool.returns.size / 4) entries for \(pool.bufferCount) buffers")
                }
            }
        }
        regions.sort { $0.start < $1.start }
        for (a, b) in zip(regions, regions.dropFirst()) where a.end > b.start {
            throw bad("\(a.name) overlaps \(b.name)")
        }
    }
}

extension Int {
    /// The smallest power of two not below `self` (self ≥ 1).
    var nextPowerOfTwo: Int { self <= 1 ? 1 : 1 << (Int.bitWidth - (self - 1).leadingZeroBitCount) }
}
