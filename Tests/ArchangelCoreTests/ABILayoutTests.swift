// The shared ABI: the C structs of archangel_uapi.h have the sizes and offsets
// its _Static_asserts promise, and the Swift mirrors agree with them.
import ArchangelCore
import CArchangel
import Testing

@Suite struct ABILayoutTests {
    @Test func recordHeaderIsTwentyEightPackedBytesWithTheSeedsFieldOffsets() {
        typealias H = archangel_msg_header
        #expect(MemoryLayout<H>.size == 28)
        #expect(MemoryLayout<H>.offset(of: \.magic) == 0)
        #expect(MemoryLayout<H>.offset(of: \.type) == 4)
        #expect(MemoryLayout<H>.offset(of: \.priority) == 5)
        #expect(MemoryLayout<H>.offset(of: \.flags) == 6)
        #expect(MemoryLayout<H>.offset(of: \.size) == 8)
        #expect(MemoryLayout<H>.offset(of: \.sequence) == 12)
        #expect(MemoryLayout<H>.offset(of: \.timestamp) == 20)
        #expect(ABI.headerSize == 28)
        #expect(ARCHANGEL_MSG_HEADER_SIZE == 28)
        #expect(ABI.recordAlignment == 8)
        #expect(ABI.minimumRecord == 32)
        #expect(ABI.minimumRecord >= ABI.headerSize)
        #expect(ABI.correlationSize == 8)
    }

    @Test func poolDescriptorIsSixteenBytes() {
        typealias D = archangel_pool_desc
        #expect(MemoryLayout<D>.size == 16)
        #expect(MemoryLayout<D>.offset(of: \.buffer) == 0)
        #expect(MemoryLayout<D>.offset(of: \.offset) == 4)
        #expect(MemoryLayout<D>.offset(of: \.length) == 8)
        #expect(MemoryLayout<D>.offset(of: \.reserved) == 12)
        #expect(ABI.descriptorSize == 16)
    }

    @Test func ringPoolDirectionAndChannelOffsetStructsMatchTheStaticAsserts() {
        #expect(MemoryLayout<archangel_ring_offsets>.size == 48)
        #expect(MemoryLayout<archangel_ring_offsets>.offset(of: \.producer) == 0)
        #expect(MemoryLayout<archangel_ring_offsets>.offset(of: \.consumer) == 8)
        #expect(MemoryLayout<archangel_ring_offsets>.offset(of: \.need_wakeup) == 16)
        #expect(MemoryLayout<archangel_ring_offsets>.offset(of: \.need_space) == 24)
        #expect(MemoryLayout<archangel_ring_offsets>.offset(of: \.data) == 32)
        #expect(MemoryLayout<archangel_ring_offsets>.offset(of: \.size) == 40)
        #expect(MemoryLayout<archangel_ring_offsets>.offset(of: \.entry_size) == 44)

        #expect(MemoryLayout<archangel_pool_offsets>.size == 80)
        #expect(MemoryLayout<archangel_pool_offsets>.offset(of: \.returns) == 24)

        #expect(MemoryLayout<archangel_direction_offsets>.size == 176)
        #expect(MemoryLayout<archangel_direction_offsets>.offset(of: \.express) == 48)
        #expect(MemoryLayout<archangel_direction_offsets>.offset(of: \.pool) == 96)

        #expect(MemoryLayout<archangel_channel_offsets>.size == 424)
        #expect(MemoryLayout<archangel_channel_offsets>.offset(of: \.total_size) == 8)
        #expect(MemoryLayout<archangel_channel_offsets>.offset(of: \.kernel_lines) == 24)
        #expect(MemoryLayout<archangel_channel_offsets>.offset(of: \.to_user) == 40)
        #expect(MemoryLayout<archangel_channel_offsets>.offset(of: \.to_kernel) == 216)
        #expect(MemoryLayout<archangel_channel_offsets>.offset(of: \.reserved) == 392)

        #expect(MemoryLayout<archangel_channel_header>.size == 432)
        #expect(MemoryLayout<archangel_channel_header>.offset(of: \.offsets) == 8)
    }

    @Test(arguments: zip(MessageType.allCases, [
        ARCHANGEL_MSG_AI_REQUEST, ARCHANGEL_MSG_AI_RESPONSE, ARCHANGEL_MSG_SYSCALL_EVENT,
        ARCHANGEL_MSG_NETWORK_EVENT, ARCHANGEL_MSG_MEMORY_EVENT, ARCHANGEL_MSG_CONTROL, ARCHANGEL_MSG_STATS,
    ].map(\.rawValue)))
    func messageTypeRawValuesEqualTheCEnum(type: MessageType, cValue: UInt32) {
        #expect(UInt32(type.rawValue) == cValue)
    }

    @Test func messageTypesCoverExactlyOneThroughSeven() {
        #expect(MessageType.allCases.map(\.rawValue) == Array(1...7))
        #expect(UInt32(MessageType.allCases.first!.rawValue) == ARCHANGEL_MSG_AI_REQUEST.rawValue, "ARCHANGEL_MSG_TYPE_MIN")
        #expect(UInt32(MessageType.allCases.last!.rawValue) == ARCHANGEL_MSG_STATS.rawValue, "ARCHANGEL_MSG_TYPE_MAX")
        #expect(MessageType(rawValue: 0) == nil)
        #expect(MessageType(rawValue: 8) == nil)
    }

    @Test(arguments: zip(MessagePriority.allCases, [
        ARCHANGEL_PRIORITY_LOW, ARCHANGEL_PRIORITY_NORMAL, ARCHANGEL_PRIORITY_HIGH, ARCHANGEL_PRIORITY_CRITICAL,
    ].map(\.rawValue)))
    func messagePriorityRawValuesEqualTheCEnum(priority: MessagePriority, cValue: UInt32) {
        #expect(UInt32(priority.rawValue) == cValue)
    }

    @Test func highAndCriticalMapToTheExpressLaneAndTheRestToNormal() {
        #expect(MessagePriority.allCases.map(\.lane) == [.normal, .normal, .express, .express])
        #expect(UInt32(MessagePriority.critical.rawValue) == ARCHANGEL_PRIORITY_CRITICAL.rawValue, "ARCHANGEL_PRIORITY_MAX")
    }

    @Test func messageFlagsEqualTheCDefines() {
        #expect(MessageFlags.dma.rawValue == UInt16(ARCHANGEL_MSG_F_DMA))
        #expect(MessageFlags.pad.rawValue == UInt16(ARCHANGEL_MSG_F_PAD))
        #expect(MessageFlags.correlated.rawValue == UInt16(ARCHANGEL_MSG_F_CORRELATED))
        #expect(MessageFlags.copied.rawValue == UInt16(ARCHANGEL_MSG_F_COPIED))
        #expect(MessageFlags.known == [.dma, .pad, .correlated, .copied])
        #expect(MessageFlags.known.rawValue == 0xF)
    }

    @Test func waitConfigMatchesTheStaticAsserts() {
        #expect(MemoryLayout<archangel_wait_config>.size == 40)
        #expect(MemoryLayout<archangel_wait_config>.offset(of: \.flags) == 0)
        #expect(MemoryLayout<archangel_wait_config>.offset(of: \.wake_batch) == 4)
        #expect(MemoryLayout<archangel_wait_config>.offset(of: \.max_delay_ns) == 8)
        #expect(MemoryLayout<archangel_wait_config>.offset(of: \.spin_ns) == 16)
        #expect(MemoryLayout<archangel_wait_config>.offset(of: \.reserved) == 24)
        #expect(SendOptions.urgent.rawValue == ARCHANGEL_SEND_URGENT)
        #expect(SendOptions.noWakeup.rawValue == ARCHANGEL_SEND_NO_WAKEUP)
    }

    @Test func abiVersionMagicsAndFeaturesHaveTheirDocumentedValues() {
        #expect(ABI.version == (UInt32(ARCHANGEL_ABI_VERSION_MAJOR) << 16) | UInt32(ARCHANGEL_ABI_VERSION_MINOR))
        #expect(ABI.version == 0x0001_0001)
        #expect(ABI.describe(version: ABI.version) == "1.1")
        #expect(ABI.describe(version: 0x0002_0003) == "2.3")
        #expect(ABI.messageMagic == 0x4152_4348)
        #expect(ABI.channelMagic == 0x4E48_4341)
        #expect(ABI.features == 0x1F)
        #expect(ABI.cacheLine == 64)
        #expect(ABI.pageSize == 4096)
    }

    @Test func channelMagicSpellsACHNInMemory() {
        var magic = ABI.channelMagic.littleEndian
        let bytes = withUnsafeBytes(of: &magic) { Array($0) }
        #expect(bytes == Array("ACHN".utf8))
    }

    @Test(arguments: [0, 1, 7, 8, 9, 1017, 1024])
    func recordStrideRoundsUpToEightBytes(size: Int) {
        let stride = ABI.recordStride(size)
        #expect(stride % 8 == 0)
        #expect(stride >= size)
        #expect(stride - size < 8)
    }

    static let sampleHeader = RecordHeader(magic: ABI.messageMagic, type: 6, priority: 3, flags: 0x0C,
                                           size: 0x0102_0304, sequence: 0x1122_3344_5566_7788,
                                           timestamp: 0x99AA_BBCC_DDEE_FF01)

    @Test(arguments: 0..<8)
    func recordHeaderStoreWritesTheCStructByteForByteAtAnyAlignment(misalignment: Int) {
        let header = Self.sampleHeader
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 16)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0xEE, count: 64)
        header.store(to: buffer + misalignment)

        let c = (buffer + misalignment).loadUnaligned(as: archangel_msg_header.self)
        #expect(c.magic == header.magic)
        #expect(c.type == header.type)
        #expect(c.priority == header.priority)
        #expect(c.flags == header.flags)
        #expect(c.size == header.size)
        #expect(c.sequence == header.sequence)
        #expect(c.timestamp == header.timestamp)

        var reference = archangel_msg_header(magic: header.magic, type: header.type, priority: header.priority,
                                             flags: header.flags, size: header.size, sequence: header.sequence,
                                             timestamp: header.timestamp)
        let expected = withUnsafeBytes(of: &reference) { Array($0) }
        #expect(Array(UnsafeRawBufferPointer(start: buffer + misalignment, count: 28)) == expected)
        // Nothing outside the 28 bytes is touched.
        #expect(Array(UnsafeRawBufferPointer(start: buffer, count: misalignment)).allSatisfy { $0 == 0xEE })
        #expect(Array(UnsafeRawBufferPointer(start: buffer + misalignment + 28, count: 36 - misalignment))
            .allSatisfy { $0 == 0xEE })
    }

    @Test(arguments: 0..<8)
    func recordHeaderLoadsWhatTheCStructWrote(misalignment: Int) {
        var c = archangel_msg_header(magic: 0x4152_4348, type: 2, priority: 1, flags: 4, size: 77,
                                     sequence: .max - 1, timestamp: 123_456_789)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 16)
        defer { buffer.deallocate() }
        withUnsafeBytes(of: &c) { (buffer + misalignment).copyMemory(from: $0.baseAddress!, byteCount: 28) }
        let header = RecordHeader(loadingFrom: buffer + misalignment)
        #expect(header == RecordHeader(type: 2, priority: 1, flags: 4, size: 77, sequence: .max - 1,
                                       timestamp: 123_456_789))
    }

    @Test func poolDescriptorStoreMatchesTheCStructWithAZeroReservedWord() {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 32, alignment: 16)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0xFF, count: 32)
        let descriptor = PoolDescriptor(buffer: 5, offset: 17, length: 239)
        descriptor.store(to: buffer + 3)
        let c = (buffer + 3).loadUnaligned(as: archangel_pool_desc.self)
        #expect(c.buffer == 5 && c.offset == 17 && c.length == 239 && c.reserved == 0)
        let (loaded, reserved) = PoolDescriptor.load(from: buffer + 3)
        #expect(loaded == descriptor)
        #expect(reserved == 0)
    }

    @Test(arguments: [
        (ChannelConfiguration(normalRingBytes: 2048), "normalRingBytes"),
        (ChannelConfiguration(normalRingBytes: 12288), "normalRingBytes"),
        (ChannelConfiguration(expressRingBytes: 1 << 31), "expressRingBytes"),
        (ChannelConfiguration(poolBufferSize: 128), "poolBufferSize"),
        (ChannelConfiguration(poolBufferSize: 3000), "poolBufferSize"),
        (ChannelConfiguration(poolBufferCount: -1), "poolBufferCount"),
        (ChannelConfiguration(poolBufferCount: (1 << 20) + 1), "poolBufferCount"),
        (ChannelConfiguration(poolThreshold: -1), "poolThreshold"),
        (ChannelConfiguration(expressRingBytes: 4096, poolThreshold: 989), "poolThreshold"),
        (ChannelConfiguration(maxSegments: 0), "maxSegments"),
        (ChannelConfiguration(maxSegments: 257), "maxSegments"),
    ])
    func anInvalidConfigurationIsRefusedNamingTheValue(configuration: ChannelConfiguration, field: String) {
        let error = #expect(throws: ChannelError.self) { try configuration.validate() }
        guard case .invalidConfiguration(let text)? = error else {
            Issue.record("expected invalidConfiguration, got \(String(describing: error))")
            return
        }
        #expect(text.hasPrefix(field))
        #expect(throws: error!) { try ChannelLayout(configuration: configuration, channelID: 0) }
    }

    @Test(arguments: [ChannelConfiguration.default, .small, .smallNoPool,
                      ChannelConfiguration(expressRingBytes: 4096, poolThreshold: 988, maxSegments: 1)])
    func aValidConfigurationsMaxPayloadIsWhatItsSenderAccepts(configuration: ChannelConfiguration) throws {
        try configuration.validate()
        let channel = try TestChannel(configuration)
        #expect(channel.sender.maxPayload == configuration.maxPayload)
        #expect(channel.sender.poolSize == configuration.poolBufferCount)
        #expect(channel.layout.totalSize < 1 << 20, "a channel stays under 1 MiB")
    }

    @Test func channelHeaderIsWrittenWithMagicSizeAndTheLayoutsOffsets() throws {
        let channel = try TestChannel()
        let header = channel.base.load(as: archangel_channel_header.self)
        #expect(header.magic == ABI.channelMagic)
        #expect(header.header_size == 432)
        let offsets = header.offsets
        let layout = channel.layout
        #expect(offsets.abi_version == ABI.version)
        #expect(offsets.features == ABI.features)
        #expect(offsets.total_size == UInt64(layout.totalSize))
        #expect(offsets.channel_id == 7)
        #expect(offsets.reserved0 == 0)
        #expect(offsets.reserved == (0, 0, 0, 0))
        #expect(offsets.kernel_lines == 4096)
        #expect(offsets.user_lines == 8192)
        #expect(offsets.to_user.normal.data == UInt64(layout.toUser.normal.data))
        #expect(offsets.to_user.normal.size == 4096)
        #expect(offsets.to_user.normal.entry_size == 0)
        #expect(offsets.to_kernel.express.producer == UInt64(layout.toKernel.express.producer))
        #expect(offsets.to_user.pool.buffer_count == 8)
        #expect(offsets.to_user.pool.buffer_size == 256)
        #expect(offsets.to_user.pool.threshold == 128)
        #expect(offsets.to_user.pool.max_segments == 8)
        #expect(offsets.to_user.pool.returns.entry_size == 4)
        #expect(offsets.to_kernel.pool.buffers == UInt64(layout.toKernel.pool.buffers))
    }

    @Test(arguments: Direction.allCases)
    func eachIndexLivesOnTheLinesPageOfTheSideThatWritesIt(direction: Direction) throws {
        let layout = try ChannelLayout(configuration: .small, channelID: 0)
        let d = layout.direction(direction)
        // The sender of to_user is the kernel side; of to_kernel, the user side.
        let senderPage = direction == .toUser ? layout.kernelLines : layout.userLines
        let receiverPage = direction == .toUser ? layout.userLines : layout.kernelLines
        func onPage(_ offset: Int, _ page: Int) -> Bool { offset >= page && offset < page + ABI.pageSize }
        for ring in [d.normal, d.express] {
            #expect(onPage(ring.producer, senderPage))
            #expect(onPage(ring.needSpace, senderPage))
            #expect(onPage(ring.consumer, receiverPage))
            #expect(onPage(ring.needWakeup, receiverPage))
        }
        // The return ring flows the other way.
        #expect(onPage(d.pool.returns.producer, receiverPage))
        #expect(onPage(d.pool.returns.consumer, senderPage))
        #expect(onPage(d.pool.returnIntent, receiverPage))
    }

    @Test func everyIndexHasACacheLineOfItsOwnAndEveryDataAreaIsPageAligned() throws {
        let layout = try ChannelLayout(configuration: .small, channelID: 0)
        var lines: [Int] = []
        var areas: [(start: Int, end: Int)] = []
        for direction in Direction.allCases {
            let d = layout.direction(direction)
            for ring in [d.normal, d.express, d.pool.returns] {
                lines += [ring.producer, ring.consumer, ring.needWakeup, ring.needSpace]
                areas.append((ring.data, ring.data + ring.size))
            }
            areas.append((d.pool.buffers, d.pool.buffers + d.pool.bufferCount * d.pool.bufferSize))
            lines.append(d.pool.returnIntent)
        }
        #expect(lines.allSatisfy { $0 % ABI.cacheLine == 0 })
        #expect(Set(lines).count == lines.count)
        #expect(areas.allSatisfy { $0.start % ABI.pageSize == 0 && $0.start >= 3 * ABI.pageSize })
        #expect(areas.allSatisfy { $0.end <= layout.totalSize })
        let sorted = areas.sorted { $0.start < $1.start }
        for (a, b) in zip(sorted, sorted.dropFirst()) { #expect(a.end <= b.start) }
        #expect(layout.totalSize % ABI.pageSize == 0)
    }

    @Test func everyFieldOfTheOffsetStructsSitsWhereTheHeaderAssertsIt() {
        typealias P = archangel_pool_offsets
        #expect(MemoryLayout<P>.offset(of: \.buffers) == 0)
        #expect(MemoryLayout<P>.offset(of: \.buffer_size) == 8)
        #expect(MemoryLayout<P>.offset(of: \.buffer_count) == 12)
        #expect(MemoryLayout<P>.offset(of: \.threshold) == 16)
        #expect(MemoryLayout<P>.offset(of: \.max_segments) == 20)
        #expect(MemoryLayout<P>.offset(of: \.return_intent) == 72)
        #expect(MemoryLayout<archangel_direction_offsets>.offset(of: \.normal) == 0)
        typealias C = archangel_channel_offsets
        #expect(MemoryLayout<C>.offset(of: \.abi_version) == 0)
        #expect(MemoryLayout<C>.offset(of: \.features) == 4)
        #expect(MemoryLayout<C>.offset(of: \.channel_id) == 16)
        #expect(MemoryLayout<C>.offset(of: \.reserved0) == 20)
        #expect(MemoryLayout<C>.offset(of: \.user_lines) == 32)
        #expect(MemoryLayout<archangel_channel_header>.offset(of: \.magic) == 0)
        #expect(MemoryLayout<archangel_channel_header>.offset(of: \.header_size) == 4)
    }
}
