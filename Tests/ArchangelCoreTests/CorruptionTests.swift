// Shared memory that lies: every index, header, descriptor and return entry
// the peer could scribble over is checked once, a bad one throws a typed
// `ChannelError.corrupted`, counts one error, and leaves that side failed.
import ArchangelCore
import CArchangel
import Testing

extension TestChannel {
    /// Writes a record straight into `lane`'s data area, as a rogue or buggy producer would.
    func writeRecord(_ lane: Lane = .normal, at position: Int, type: UInt8 = MessageType.control.rawValue,
                     priority: UInt8? = nil, flags: UInt16 = 0, size: Int, sequence: UInt64 = 1) {
        let priority = priority ?? (lane == .express ? 2 : 1)
        RecordHeader(type: type, priority: priority, flags: flags, size: UInt32(size), sequence: sequence,
                     timestamp: 0).store(to: data(lane) + position)
    }

    /// Sets the shared producer index of `lane`, as the sender publishes it.
    func setProducerIndex(_ lane: Lane, _ value: UInt64) { store64(value, ring(lane).producer) }
    /// Sets the shared consumer index of `lane`, as the receiver releases it.
    func setConsumerIndex(_ lane: Lane, _ value: UInt64) { store64(value, ring(lane).consumer) }

    /// Appends `entries` to the pool's return ring and publishes them, as a receiver would.
    func injectReturns(_ entries: [UInt32], from start: UInt64 = 0) {
        let returns = lanes.pool.returns
        let count = UInt64(returns.size / 4)
        for (i, entry) in entries.enumerated() {
            store32(entry, returns.data + Int((start + UInt64(i)) % count) * 4)
        }
        store64(start + UInt64(entries.count), returns.producer)
    }

    /// Rewrites page 0.
    func modifyHeader(_ change: (inout archangel_channel_header) -> Void) {
        var header = base.load(as: archangel_channel_header.self)
        change(&header)
        base.storeBytes(of: header, as: archangel_channel_header.self)
    }
}

/// Expects the receiver to throw `.corrupted(reason)` now and on every later call, counted once.
func expectReceiverFailed(_ channel: TestChannel, _ reason: CorruptionReason,
                          sourceLocation: SourceLocation = #_sourceLocation) {
    for attempt in 0..<3 {
        #expect(throws: ChannelError.corrupted(reason), "attempt \(attempt)", sourceLocation: sourceLocation) {
            try channel.receive()
        }
    }
    #expect(throws: ChannelError.corrupted(reason), sourceLocation: sourceLocation) {
        try channel.receiver.prepareToSleep()
    }
    #expect(channel.receiver.error == .corrupted(reason), sourceLocation: sourceLocation)
    #expect(channel.receiver.counters.load(.errors) == 1, sourceLocation: sourceLocation)
}

/// Expects the sender to have failed with `.corrupted(reason)`, counted once, and to refuse all later work.
func expectSenderFailed(_ channel: TestChannel, _ reason: CorruptionReason,
                        sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(channel.sender.error == .corrupted(reason), sourceLocation: sourceLocation)
    #expect(throws: ChannelError.corrupted(reason), sourceLocation: sourceLocation) {
        try channel.send(count: 1, seed: 0)
    }
    #expect(throws: ChannelError.corrupted(reason), sourceLocation: sourceLocation) {
        try channel.send(count: 500, seed: 0, priority: .critical)
    }
    #expect(throws: ChannelError.corrupted(reason), sourceLocation: sourceLocation) {
        try channel.sender.reclaimBuffers()
    }
    #expect(throws: ChannelError.corrupted(reason), sourceLocation: sourceLocation) {
        try channel.sender.tryBeginLoan(capacity: 10)
    }
    #expect(channel.sender.counters.load(.errors) == 1, sourceLocation: sourceLocation)
}

@Suite struct CorruptionTests {
    static let normal = "to_user.normal"
    static let express = "to_user.express"

    /// A channel holding one published 4-byte message (a 32-byte record) on `lane`.
    static func oneMessage(on lane: Lane = .normal) throws -> TestChannel {
        let channel = try TestChannel(.small)
        try channel.send(count: 4, seed: 1, priority: lane == .normal ? .normal : .high)
        return channel
    }

    // MARK: - Record headers

    @Test func aRecordWithoutTheMagicIsCorrupted() throws {
        let channel = try Self.oneMessage()
        channel.store32(0xDEAD_BEEF, channel.ring(.normal).data)
        expectReceiverFailed(channel, .badMagic(ring: Self.normal, position: 0, found: 0xDEAD_BEEF))
    }

    @Test(arguments: [0, 1, 20, 27] as [UInt32])
    func aRecordSmallerThanItsHeaderIsCorrupted(size: UInt32) throws {
        let channel = try Self.oneMessage()
        channel.store32(size, channel.ring(.normal).data + 8)
        expectReceiverFailed(channel, .badRecordSize(ring: Self.normal, position: 0, size: size, available: 32))
    }

    @Test(arguments: [33, 40, 1024, 4096, .max] as [UInt32])
    func aRecordRunningPastThePublishedBytesIsCorrupted(size: UInt32) throws {
        let channel = try Self.oneMessage()
        channel.store32(size, channel.ring(.normal).data + 8)
        expectReceiverFailed(channel, .badRecordSize(ring: Self.normal, position: 0, size: size, available: 32))
    }

    @Test func aRecordRunningPastTheEndOfTheRingIsCorrupted() throws {
        let channel = try TestChannel(.small)
        for i in 0..<4 { channel.writeRecord(at: i * 1016, size: 1016, sequence: UInt64(i + 1)) }
        channel.setProducerIndex(.normal, 4064)
        #expect(try channel.drain().count == 4)
        #expect(channel.consumerIndex(.normal) == 4064)
        // 32 bytes remain before the end; a 40-byte record there would wrap.
        channel.writeRecord(at: 4064, size: 40, sequence: 5)
        channel.writeRecord(at: 0, size: 32, sequence: 6)
        channel.setProducerIndex(.normal, 4064 + 32 + 32)
        expectReceiverFailed(channel, .badRecordSize(ring: Self.normal, position: 4064, size: 40, available: 32))
    }

    @Test func aPublishedIndexEndingInsideAnImplicitSkipIsCorrupted() throws {
        let channel = try TestChannel(.small)
        for i in 0..<5 { channel.writeRecord(at: i * 816, size: 816, sequence: UInt64(i + 1)) }
        channel.setProducerIndex(.normal, 4080)
        #expect(try channel.drain().count == 5)
        // The 16-byte tail is skipped by both sides, so the producer cannot stop inside it.
        channel.setProducerIndex(.normal, 4088)
        expectReceiverFailed(channel, .badRecordSize(ring: Self.normal, position: 4080, size: 16, available: 8))
    }

    @Test(arguments: [0, 8, 9, 255] as [UInt8])
    func aRecordOfUnknownTypeIsCorrupted(type: UInt8) throws {
        let channel = try Self.oneMessage()
        channel.base.storeBytes(of: type, toByteOffset: channel.ring(.normal).data + 4, as: UInt8.self)
        expectReceiverFailed(channel, .badType(ring: Self.normal, position: 0, type: type))
    }

    @Test(arguments: [2, 3, 4, 7, 255] as [UInt8])
    func aNormalLaneRecordWithExpressOrInvalidPriorityIsCorrupted(priority: UInt8) throws {
        let channel = try Self.oneMessage(on: .normal)
        channel.base.storeBytes(of: priority, toByteOffset: channel.ring(.normal).data + 5, as: UInt8.self)
        expectReceiverFailed(channel, .badPriority(ring: Self.normal, position: 0, priority: priority))
    }

    @Test(arguments: [0, 1, 4, 7] as [UInt8])
    func anExpressLaneRecordWithNormalOrInvalidPriorityIsCorrupted(priority: UInt8) throws {
        let channel = try Self.oneMessage(on: .express)
        channel.base.storeBytes(of: priority, toByteOffset: channel.ring(.express).data + 5, as: UInt8.self)
        expectReceiverFailed(channel, .badPriority(ring: Self.express, position: 0, priority: priority))
    }

    @Test(arguments: [0x10, 0x20, 0x100, 0x8000, 0xFFF0] as [UInt16])
    func aRecordWithUnknownFlagsIsCorrupted(flags: UInt16) throws {
        let channel = try Self.oneMessage()
        channel.base.storeBytes(of: flags, toByteOffset: channel.ring(.normal).data + 6, as: UInt16.self)
        expectReceiverFailed(channel, .badFlags(ring: Self.normal, position: 0, flags: flags))
    }

    @Test func aPaddingRecordWithOtherFlagsIsCorrupted() throws {
        let channel = try TestChannel(.small)
        channel.writeRecord(at: 0, type: 0, priority: 0, flags: 0x3, size: 4096)
        channel.setProducerIndex(.normal, 4096)
        expectReceiverFailed(channel, .badFlags(ring: Self.normal, position: 0, flags: 0x3))
    }

    @Test func aPaddingRecordWithATypeIsCorrupted() throws {
        let channel = try TestChannel(.small)
        channel.writeRecord(at: 0, type: 1, priority: 0, flags: MessageFlags.pad.rawValue, size: 4096)
        channel.setProducerIndex(.normal, 4096)
        expectReceiverFailed(channel, .badFlags(ring: Self.normal, position: 0, flags: 0x2))
    }

    @Test func aPaddingRecordThatStopsShortOfTheEndIsCorrupted() throws {
        let channel = try TestChannel(.small)
        channel.writeRecord(at: 0, type: 0, priority: 0, flags: MessageFlags.pad.rawValue, size: 32)
        channel.writeRecord(at: 32, size: 32)
        channel.setProducerIndex(.normal, 64)
        expectReceiverFailed(channel, .badFlags(ring: Self.normal, position: 0, flags: 0x2))
    }

    @Test func aCorrelatedRecordWithoutRoomForItsCorrelationIsCorrupted() throws {
        let channel = try TestChannel(.small)
        try channel.send([])
        channel.base.storeBytes(of: MessageFlags.correlated.rawValue, toByteOffset: channel.ring(.normal).data + 6,
                                as: UInt16.self)
        expectReceiverFailed(channel, .badRecordSize(ring: Self.normal, position: 0, size: 28, available: 32))
    }

    @Test func validRecordsBeforeACorruptOneAreStillDelivered() throws {
        let channel = try TestChannel(.small)
        for i in 0..<3 { try channel.send(count: 8, seed: UInt64(i)) }
        channel.store32(0, channel.ring(.normal).data + 2 * 40)
        #expect(try channel.receive()?.bytes == pattern(8, seed: 0))
        #expect(try channel.receive()?.bytes == pattern(8, seed: 1))
        expectReceiverFailed(channel, .badMagic(ring: Self.normal, position: 80, found: 0))
        #expect(channel.receiver.counters.load(.messagesReceived) == 2)
    }

    // MARK: - Indices

    @Test(arguments: Lane.allCases)
    func aProducerIndexMovedBackwardsIsCorrupted(lane: Lane) throws {
        let channel = try TestChannel(.small)
        for i in 0..<2 { try channel.send(count: 4, seed: UInt64(i), priority: lane == .normal ? .low : .critical) }
        #expect(try channel.drain().count == 2)
        channel.setProducerIndex(lane, 32)
        expectReceiverFailed(channel, .indexOutOfRange(ring: channel.ringName(lane), index: 32,
                                                       expectedWithin: 64...(64 + 4096)))
    }

    @Test(arguments: Lane.allCases)
    func aProducerIndexBeyondTheConsumerPlusTheRingSizeIsCorrupted(lane: Lane) throws {
        let channel = try TestChannel(.small)
        for i in 0..<2 { try channel.send(count: 4, seed: UInt64(i), priority: lane == .normal ? .low : .critical) }
        #expect(try channel.drain().count == 2)
        channel.setProducerIndex(lane, 64 + 4096 + 8)
        expectReceiverFailed(channel, .indexOutOfRange(ring: channel.ringName(lane), index: 64 + 4096 + 8,
                                                       expectedWithin: 64...(64 + 4096)))
    }

    @Test func aProducerIndexAFullRingAheadPassesTheIndexCheckButNotTheHeaderCheck() throws {
        let channel = try TestChannel(.small)
        for i in 0..<2 { try channel.send(count: 4, seed: UInt64(i)) }
        #expect(try channel.drain().count == 2)
        channel.setProducerIndex(.normal, 64 + 4096)
        expectReceiverFailed(channel, .badMagic(ring: Self.normal, position: 64, found: 0))
    }

    @Test func aConsumerIndexBeyondWhatWasPublishedFailsTheSender() throws {
        let channel = try TestChannel(.small)
        for i in 0..<128 { #expect(try channel.send(count: 4, seed: UInt64(i)) == .sent) }
        #expect(try channel.send(count: 4, seed: 0) == .wouldBlock(.ringFull(lane: .normal, length: 32)))
        channel.setConsumerIndex(.normal, 4104)
        let reason = CorruptionReason.indexOutOfRange(ring: Self.normal, index: 4104, expectedWithin: 0...4096)
        #expect(throws: ChannelError.corrupted(reason)) { try channel.send(count: 4, seed: 0) }
        expectSenderFailed(channel, reason)
    }

    @Test func aConsumerIndexMovedBackwardsFailsTheSender() throws {
        let channel = try TestChannel(.small)
        for i in 0..<128 { try channel.send(count: 4, seed: UInt64(i)) }
        for _ in 0..<32 { _ = try channel.receive() }
        #expect(channel.consumerIndex(.normal) == 1024)
        for i in 0..<32 { #expect(try channel.send(count: 4, seed: UInt64(i)) == .sent) }
        #expect(try channel.send(count: 4, seed: 0) == .wouldBlock(.ringFull(lane: .normal, length: 32)))
        channel.setConsumerIndex(.normal, 512)
        let reason = CorruptionReason.indexOutOfRange(ring: Self.normal, index: 512, expectedWithin: 1024...5120)
        #expect(throws: ChannelError.corrupted(reason)) { try channel.send(count: 4, seed: 0) }
        expectSenderFailed(channel, reason)
    }

    @Test func aConsumerIndexCheckedWhileWaitingForSpaceFailsTheSender() throws {
        let channel = try TestChannel(.smallNoPool)
        for i in 0..<4 { try channel.send(count: 988, seed: UInt64(i), priority: .high) }
        #expect(channel.producerIndex(.express) == 4064)
        channel.setConsumerIndex(.express, 1 << 40)
        let reason = CorruptionReason.indexOutOfRange(ring: Self.express, index: 1 << 40, expectedWithin: 0...4064)
        #expect(throws: ChannelError.corrupted(reason)) {
            try channel.sender.prepareToWait(for: .ringFull(lane: .express, length: 64))
        }
        expectSenderFailed(channel, reason)
    }

    // MARK: - Descriptors

    /// A channel holding one 300-byte pool message: descriptors (0, 0, 256) and (1, 0, 44).
    static func poolMessage() throws -> TestChannel {
        let channel = try TestChannel(.small)
        #expect(try channel.send(count: 300, seed: 3) == .sent)
        return channel
    }

    /// Offset of field `field` (0 buffer, 4 offset, 8 length, 12 reserved) of descriptor `index`.
    static func descriptorField(_ channel: TestChannel, _ index: Int, _ field: Int) -> Int {
        channel.ring(.normal).data + ABI.headerSize + index * ABI.descriptorSize + field
    }

    @Test(arguments: [8, 9, 1000, .max] as [UInt32])
    func aDescriptorNamingABufferOutsideThePoolIsCorrupted(buffer: UInt32) throws {
        let channel = try Self.poolMessage()
        channel.store32(buffer, Self.descriptorField(channel, 0, 0))
        expectReceiverFailed(channel, .badDescriptor(index: 0, buffer: buffer, offset: 0, length: 256))
    }

    @Test(arguments: [(213, 44), (256, 1), (300, 44), (0, 257), (1, 256), (.max, 44), (8, .max)] as [(UInt32, UInt32)])
    func aDescriptorRangeBeyondItsBufferIsCorrupted(offset: UInt32, length: UInt32) throws {
        let channel = try Self.poolMessage()
        channel.store32(offset, Self.descriptorField(channel, 1, 4))
        channel.store32(length, Self.descriptorField(channel, 1, 8))
        expectReceiverFailed(channel, .badDescriptor(index: 1, buffer: 1, offset: offset, length: length))
    }

    @Test func aDescriptorRangeEndingExactlyAtItsBufferEndIsFine() throws {
        let channel = try Self.poolMessage()
        channel.store32(212, Self.descriptorField(channel, 1, 4))
        let message = try #require(try channel.receive())
        #expect(message.count == 300)
        #expect(message.segmentBytes[0] == Array(pattern(300, seed: 3).prefix(256)))
        #expect(message.wellFormed)
    }

    @Test func aDescriptorWithANonZeroReservedWordIsCorrupted() throws {
        let channel = try Self.poolMessage()
        channel.store32(1, Self.descriptorField(channel, 1, 12))
        expectReceiverFailed(channel, .badDescriptor(index: 1, buffer: 1, offset: 0, length: 44))
    }

    @Test func aMessageNamingTheSameBufferTwiceIsCorrupted() throws {
        let channel = try Self.poolMessage()
        channel.store32(0, Self.descriptorField(channel, 1, 0))
        expectReceiverFailed(channel, .bufferNotOwned(buffer: 0))
    }

    @Test(arguments: [0, 8, 20, 31])
    func aDescriptorListThatIsEmptyOrNotWholeDescriptorsIsCorrupted(bytes: Int) throws {
        let channel = try Self.poolMessage()
        channel.store32(UInt32(ABI.headerSize + bytes), channel.ring(.normal).data + 8)
        expectReceiverFailed(channel, .badDescriptor(index: -1, buffer: 0, offset: 0, length: UInt32(bytes)))
    }

    @Test func aDescriptorListLongerThanMaxSegmentsIsCorrupted() throws {
        let channel = try TestChannel(.small)
        let size = ABI.headerSize + 9 * ABI.descriptorSize
        channel.writeRecord(at: 0, flags: MessageFlags.dma.rawValue, size: size)
        for i in 0..<9 {
            PoolDescriptor(buffer: UInt32(i % 8), offset: 0, length: 1)
                .store(to: channel.data(.normal) + ABI.headerSize + i * ABI.descriptorSize)
        }
        channel.setProducerIndex(.normal, UInt64(ABI.recordStride(size)))
        expectReceiverFailed(channel, .badDescriptor(index: -1, buffer: 0, offset: 0, length: 144))
    }

    // MARK: - The return ring

    @Test(arguments: [5, 8, 99, .max] as [UInt32])
    func aReturnOfABufferNeverLentFailsTheSender(buffer: UInt32) throws {
        let channel = try TestChannel(.small)
        try channel.send(count: 200, seed: 1) // buffer 0 is lent
        channel.injectReturns([buffer])
        #expect(throws: ChannelError.corrupted(.badReturn(buffer: buffer))) { try channel.sender.reclaimBuffers() }
        expectSenderFailed(channel, .badReturn(buffer: buffer))
    }

    @Test func aBufferReturnedTwiceFailsTheSender() throws {
        let channel = try TestChannel(.small)
        try channel.send(count: 300, seed: 1)
        #expect(try channel.receive()?.count == 300)
        #expect(channel.load64(channel.lanes.pool.returns.producer) == 2)
        channel.injectReturns([0], from: 2)
        #expect(throws: ChannelError.corrupted(.badReturn(buffer: 0))) { try channel.sender.reclaimBuffers() }
        expectSenderFailed(channel, .badReturn(buffer: 0))
    }

    @Test func aBadReturnFoundWhileASendReclaimsFailsThatSend() throws {
        let channel = try TestChannel(.small)
        for i in 0..<8 { try channel.send(count: 200, seed: UInt64(i)) }
        channel.injectReturns([42])
        #expect(throws: ChannelError.corrupted(.badReturn(buffer: 42))) { try channel.send(count: 200, seed: 9) }
        expectSenderFailed(channel, .badReturn(buffer: 42))
    }

    @Test func aReturnRingProducerIndexBeyondItsSizeFailsTheSender() throws {
        let channel = try TestChannel(.small)
        channel.store64(9, channel.lanes.pool.returns.producer)
        let reason = CorruptionReason.indexOutOfRange(ring: "to_user.returns", index: 9, expectedWithin: 0...8)
        #expect(throws: ChannelError.corrupted(reason)) { try channel.sender.reclaimBuffers() }
        expectSenderFailed(channel, reason)
    }

    @Test func aReturnRingConsumerIndexOutOfRangeFailsTheReceiver() throws {
        let channel = try TestChannel(.small)
        for i in 0..<8 { try channel.send(count: 200, seed: UInt64(i)) }
        #expect(try channel.drain().count == 8)
        // The sender reclaims the eight returns to send again.
        #expect(try channel.send(count: 200, seed: 8) == .sent)
        #expect(channel.load64(channel.lanes.pool.returns.consumer) == 8)
        channel.store64(100, channel.lanes.pool.returns.consumer)
        let reason = CorruptionReason.indexOutOfRange(ring: "to_user.returns", index: 100, expectedWithin: 0...8)
        expectReceiverFailed(channel, reason)
    }

    // MARK: - Channel layout

    /// Like `small`, with the fewest pool buffers whose return ring `load` accepts (see below).
    static let loadable = ChannelConfiguration(normalRingBytes: 4096, expressRingBytes: 4096, poolBufferSize: 256,
                                               poolBufferCount: 32, poolThreshold: 128, maxSegments: 8)

    /// Runs `load` on the channel's memory and returns the text of the `.badLayout` it must throw.
    static func badLayout(_ channel: TestChannel, size: Int? = nil,
                          sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        let error = #expect(throws: ChannelError.self, sourceLocation: sourceLocation) {
            try ChannelLayout.load(from: channel.base, size: size ?? channel.layout.totalSize)
        }
        guard case .corrupted(.badLayout(let text))? = error else {
            Issue.record("expected .corrupted(.badLayout), got \(String(describing: error))",
                         sourceLocation: sourceLocation)
            return nil
        }
        return text
    }

    @Test(arguments: [
        loadable,
        .default,
        ChannelConfiguration(normalRingBytes: 8192, expressRingBytes: 4096, poolBufferSize: 1024,
                             poolBufferCount: 0, poolThreshold: 100, maxSegments: 4),
    ])
    func loadReadsBackTheLayoutThatInitCreated(configuration: ChannelConfiguration) throws {
        let channel = try TestChannel(configuration)
        let loaded = try ChannelLayout.load(from: channel.base, size: channel.layout.totalSize)
        #expect(loaded == channel.layout)
        #expect(loaded.channelID == 7)
    }

    @Test(arguments: [1, 8, 16, 17])
    func loadReadsBackTheLayoutInitCreatesForAPoolOf16BuffersOrFewer(buffers: Int) throws {
        // init gives the return ring max(8, buffers) rounded up to a power of two entries of
        // 4 bytes (32 or 64 bytes for up to 16 buffers), but validate() demands at least
        // 4 × ARCHANGEL_RECORD_MIN = 128 bytes of every ring, record ring or not: a freshly
        // created channel with a small pool does not load.
        var configuration = ChannelConfiguration.small
        configuration.poolBufferCount = buffers
        configuration.maxSegments = min(8, buffers)
        let channel = try TestChannel(configuration)
        let loaded = try ChannelLayout.load(from: channel.base, size: channel.layout.totalSize)
        #expect(loaded == channel.layout)
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func loadRejectsGarbageInPageZero(seed: UInt64) throws {
        let channel = try TestChannel(Self.loadable)
        var random = SplitMix64(seed: seed)
        for offset in Swift.stride(from: 0, to: ABI.pageSize, by: 8) { channel.store64(random.next(), offset) }
        #expect(Self.badLayout(channel)?.contains("magic") == true)
    }

    @Test func loadRejectsMemoryTooSmallForTheHeaderOrTheLayout() throws {
        let channel = try TestChannel(Self.loadable)
        #expect(Self.badLayout(channel, size: 100) != nil)
        #expect(Self.badLayout(channel, size: channel.layout.totalSize - 4096)?.contains("exceeds mapped") == true)
    }

    @Test func loadRejectsOverlappingRegions() throws {
        let channel = try TestChannel(Self.loadable)
        channel.modifyHeader { $0.offsets.to_kernel.normal.data = $0.offsets.to_user.normal.data }
        #expect(Self.badLayout(channel)?.contains("overlaps") == true)
    }

    @Test func loadRejectsTwoRingsSharingAnIndexLine() throws {
        let channel = try TestChannel(Self.loadable)
        channel.modifyHeader { $0.offsets.to_user.express.producer = $0.offsets.to_user.normal.producer }
        #expect(Self.badLayout(channel)?.contains("overlaps") == true)
    }

    @Test func loadRejectsAPoolOverlappingARing() throws {
        let channel = try TestChannel(Self.loadable)
        channel.modifyHeader { $0.offsets.to_user.pool.buffers = $0.offsets.to_kernel.express.data }
        #expect(Self.badLayout(channel)?.contains("overlaps") == true)
    }

    @Test func loadRejectsAMisalignedIndex() throws {
        let channel = try TestChannel(Self.loadable)
        channel.modifyHeader { $0.offsets.to_user.normal.consumer += 4 }
        #expect(Self.badLayout(channel)?.contains("misaligned") == true)
    }

    @Test func loadRejectsARegionOutsideTheChannel() throws {
        let channel = try TestChannel(Self.loadable)
        channel.modifyHeader { $0.offsets.to_kernel.express.data = $0.offsets.total_size - 2048 }
        #expect(Self.badLayout(channel) != nil)
    }

    @Test(arguments: [0, 100, 3000, 1 << 31] as [UInt32])
    func loadRejectsARingSizeThatIsNotAUsablePowerOfTwo(size: UInt32) throws {
        let channel = try TestChannel(Self.loadable)
        channel.modifyHeader { $0.offsets.to_user.normal.size = size }
        #expect(Self.badLayout(channel) != nil)
    }

    @Test func loadRejectsAReturnRingTooSmallForThePool() throws {
        let channel = try TestChannel(Self.loadable)
        channel.modifyHeader { $0.offsets.to_kernel.pool.buffer_count = 33 }
        #expect(Self.badLayout(channel) != nil)
    }

    @Test(arguments: [0x0000_0000, 0x0002_0000, 0xFFFF_0000] as [UInt32])
    func loadRejectsAnotherMajorABIVersion(version: UInt32) throws {
        let channel = try TestChannel(Self.loadable)
        channel.modifyHeader { $0.offsets.abi_version = version }
        #expect(throws: ChannelError.abiMismatch(ours: ABI.version, theirs: version)) {
            try ChannelLayout.load(from: channel.base, size: channel.layout.totalSize)
        }
    }

    @Test func loadAcceptsANewerMinorABIVersion() throws {
        let channel = try TestChannel(Self.loadable)
        channel.modifyHeader { $0.offsets.abi_version = ABI.version + 5 }
        let loaded = try ChannelLayout.load(from: channel.base, size: channel.layout.totalSize)
        #expect(loaded.abiVersion == ABI.version + 5)
        #expect(loaded.toUser == channel.layout.toUser)
    }

    // MARK: - Fuzz

    @Test func randomScribblesYieldValidMessagesOrCorruptedNeverACrashOrAStrayPointer() throws {
        var random = SplitMix64(seed: 0x5EED_A5C1)
        var outcomes = (delivered: 0, receiverFailed: 0, senderFailed: 0, clean: 0)
        for iteration in 0..<2000 {
            let direction = Direction.allCases.randomElement(using: &random)!
            let channel = try TestChannel(.small, direction: direction, guardPages: true)
            let lanes = channel.lanes
            var seed: UInt64 = 0

            // Some traffic first, so indices, padding and pool ownership vary.
            for _ in 0..<Int.random(in: 1...12, using: &random) {
                seed += 1
                let count = switch Int.random(in: 0..<3, using: &random) {
                case 0: Int.random(in: 0...128, using: &random)
                case 1: Int.random(in: 129...2048, using: &random)
                default: Int.random(in: 0...996, using: &random)
                }
                let priority = MessagePriority.allCases.randomElement(using: &random)!
                let correlation: UInt64? = Bool.random(using: &random) ? random.next() : nil
                _ = try channel.send(count: count, seed: seed, priority: priority, correlation: correlation)
                if Int.random(in: 0..<3, using: &random) == 0 { _ = try channel.receive() }
            }

            // Scribble over what the peers read from each other.
            let regions: [(offset: Int, length: Int, index: Bool)] = [
                (lanes.normal.data, lanes.normal.size, false), (lanes.express.data, lanes.express.size, false),
                (lanes.normal.data, 256, false), (lanes.express.data, 256, false),
                (lanes.normal.producer, 8, true), (lanes.express.producer, 8, true),
                (lanes.normal.consumer, 8, true), (lanes.express.consumer, 8, true),
                (lanes.pool.returns.producer, 8, true), (lanes.pool.returns.consumer, 8, true),
                (lanes.pool.returns.data, lanes.pool.returns.size, false),
            ]
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let region = regions.randomElement(using: &random)!
                if region.index {
                    let old = channel.load64(region.offset)
                    let new: UInt64 = switch Int.random(in: 0..<3, using: &random) {
                    case 0: random.next()
                    case 1: old &+ UInt64(bitPattern: Int64.random(in: -64...64, using: &random) * 8)
                    default: old &+ UInt64.random(in: 1...9000, using: &random)
                    }
                    channel.store64(new, region.offset)
                } else {
                    let length = Int.random(in: 1...16, using: &random)
                    let offset = region.offset + Int.random(in: 0...(region.length - length), using: &random)
                    for i in 0..<length {
                        channel.base.storeBytes(of: UInt8.random(in: 0...255, using: &random),
                                                toByteOffset: offset + i, as: UInt8.self)
                    }
                }
            }

            // The receiver delivers well-formed messages or fails with .corrupted, for good.
            var receiverFailed = false
            for _ in 0..<64 {
                do {
                    guard let message = try channel.receive() else { break }
                    outcomes.delivered += 1
                    if !message.wellFormed {
                        Issue.record("iteration \(iteration): a payload lies outside channel memory")
                        return
                    }
                } catch {
                    guard case .corrupted = error else {
                        Issue.record("iteration \(iteration): receiver threw \(error)")
                        return
                    }
                    guard (try? channel.receive()) == nil, channel.receiver.error == error,
                          channel.receiver.counters.load(.errors) == 1 else {
                        Issue.record("iteration \(iteration): receiver did not stay failed after \(error)")
                        return
                    }
                    receiverFailed = true
                    outcomes.receiverFailed += 1
                    break
                }
            }

            // The sender takes buffers back and sends on, or fails with .corrupted.
            do {
                try channel.sender.reclaimBuffers()
                for _ in 0..<4 {
                    seed += 1
                    _ = try channel.send(count: Int.random(in: 0...2048, using: &random), seed: seed)
                }
                if !receiverFailed { outcomes.clean += 1 }
            } catch {
                guard case .corrupted = error else {
                    Issue.record("iteration \(iteration): sender threw \(error)")
                    return
                }
                #expect(channel.sender.counters.load(.errors) == 1)
                outcomes.senderFailed += 1
            }
        }
        // The scribbles must actually hit something, and some runs survive them.
        #expect(outcomes.receiverFailed > 200)
        #expect(outcomes.senderFailed > 20)
        #expect(outcomes.delivered > 1000)
        #expect(outcomes.clean > 100)
    }
}
