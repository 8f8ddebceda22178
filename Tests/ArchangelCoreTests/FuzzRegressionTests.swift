// Inputs the fuzzers (docs/fuzzing.md) found crashing, kept as tests: each
// input is the fuzzer's, inline, decoded the way the fuzzer decodes it.
@testable import ArchangelCore
import CArchangel
import Foundation
import Testing

@Suite struct FuzzRegressionTests {
    /// A fuzz input as the fuzzer reads it: `bytes`, zero-padded to `count`.
    static func input(base64: String, count: Int) -> [UInt8] {
        let bytes = [UInt8](Data(base64Encoded: base64)!)
        return bytes + [UInt8](repeating: 0, count: max(0, count - bytes.count))
    }

    /// FuzzChannelLayout: a header whose ring offsets are 0xffff_ffff_ffff_ffff
    /// trapped in `RingLayout.init` (`Int(UInt64)` overflows) instead of being
    /// refused: `load` must throw `.badLayout` for any page 0.
    @Test func layoutWithOffsetsAboveIntMaxIsRefused() {
        // u32 mapped size, then the 432-byte channel header ("ACHN", header_size 432, ...).
        let crash = Self.input(base64: "L8fHAEFDSE6wAQAAALABAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                                   + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAP///////////////////////////wAAAAAA"
                                   + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAp6AAA=",
                                   count: 4 + MemoryLayout<archangel_channel_header>.size)
        crash.withUnsafeBytes { raw in
            let mapped = Int(raw.loadUnaligned(as: UInt32.self))
            let error = #expect(throws: ChannelError.self) {
                try ChannelLayout.load(from: raw.baseAddress! + 4, size: mapped)
            }
            guard case .corrupted(.badLayout)? = error else {
                Issue.record("expected .corrupted(.badLayout), got \(String(describing: error))")
                return
            }
        }
    }

    /// The same for each 64-bit offset of a valid header set above Int.max.
    @Test(arguments: 0..<6) func layoutOffsetAboveIntMaxIsRefused(field: Int) throws {
        let layout = try ChannelLayout(configuration: .default, channelID: 0)
        var header = archangel_channel_header()
        withUnsafeMutableBytes(of: &header) { layout.writeHeader(to: $0.baseAddress!) }
        let huge: UInt64 = 1 << 63
        switch field {
        case 0: header.offsets.to_user.normal.producer = huge
        case 1: header.offsets.to_user.express.consumer = huge
        case 2: header.offsets.to_kernel.normal.need_wakeup = huge
        case 3: header.offsets.to_kernel.express.need_space = huge
        case 4: header.offsets.to_user.normal.data = .max
        default: header.offsets.to_kernel.pool.buffers = .max
        }
        let error = #expect(throws: ChannelError.self) {
            try withUnsafeBytes(of: &header) { raw throws(ChannelError) in
                _ = try ChannelLayout.load(from: raw.baseAddress!, size: layout.totalSize)
            }
        }
        guard case .corrupted(.badLayout)? = error else {
            Issue.record("expected .corrupted(.badLayout), got \(String(describing: error))")
            return
        }
    }

    /// FuzzChannelLayout: a header whose to_kernel pool threshold lies far above
    /// any inline payload loaded, and its sender then refused a 262,144-byte payload although its limit was
    /// 262,144 bytes: `load` must refuse what no creator writes, a threshold
    /// above the largest inline payload.
    @Test func layoutWithThresholdAboveInlineLimitIsRefused() {
        let crash = Self.input(base64: "ANAKAEFDSE6wAQAAAQABAB8AAAAA0AoAAAAAAAAAAAAAAAAAABAAAAAAAAAAFwAAAAAAAAAQAAAAAAAAACAA"
                                   + "AAAAAABAIAAAAAAAAEAQAAAAAAAAADAAAAAAAAAAAAEAAAAAAIAQAAAAAAAAgCAAAAAAAADAIAAAAAAAAMAQ"
                                   + "AAAAAAAAADABAAAAAAAAQAAAAAAAAADQAgAAAAAAABAAAEAAAAAABAAAIAAAAAAhAAAAAAAAABEAAAAAAABA"
                                   + "EQAAAAAAAEAhAAAAAAAAAHABAAAAAAAAAQAABAAAAAAjAAAAAAAAgCEAAAAAAACAEQAAAAAAAMARAAAAAAAA"
                                   + "wCEAAAAAAAAAgAEAAAAAAAAAAQAAAAAAACIAAAAAAAAAEgAAAAAAAEASAAAAAAAAQCIAAAAAAAAAgAIAAAAA"
                                   + "AABAAAAAAAAAANAGAAAAAAAAEAAAQAAAAAAEAAHgAAAAgBIAAAAAAACAIgAAAAAAAMAiAAAAAAAAwBIAAAAA"
                                   + "AAAAwAIAAAAAAAABAAAEAAAAABMAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                                   count: 4 + MemoryLayout<archangel_channel_header>.size)
        crash.withUnsafeBytes { raw in
            let mapped = Int(raw.loadUnaligned(as: UInt32.self))
            let error = #expect(throws: ChannelError.self) {
                try ChannelLayout.load(from: raw.baseAddress! + 4, size: mapped)
            }
            guard case .corrupted(.badLayout(let text))? = error else {
                Issue.record("expected .corrupted(.badLayout), got \(String(describing: error))")
                return
            }
            #expect(text.contains("threshold"))
        }
    }

    /// The same from a valid layout: each direction's threshold one above the inline limit.
    @Test(arguments: Direction.allCases) func layoutThresholdOneAboveInlineLimitIsRefused(direction: Direction) throws {
        let configuration = ChannelConfiguration(normalRingBytes: 8192, expressRingBytes: 4096, poolBufferSize: 256,
                                                 poolBufferCount: 8, poolThreshold: 128, maxSegments: 8)
        let layout = try ChannelLayout(configuration: configuration, channelID: 0)
        var header = archangel_channel_header()
        withUnsafeMutableBytes(of: &header) { layout.writeHeader(to: $0.baseAddress!) }
        let limit = UInt32(configuration.maxInlinePayload(ringBytes: 4096))
        if direction == .toUser { header.offsets.to_user.pool.threshold = limit + 1 }
        else { header.offsets.to_kernel.pool.threshold = limit + 1 }
        let error = #expect(throws: ChannelError.self) {
            try withUnsafeBytes(of: &header) { raw throws(ChannelError) in
                _ = try ChannelLayout.load(from: raw.baseAddress!, size: layout.totalSize)
            }
        }
        guard case .corrupted(.badLayout(let text))? = error else {
            Issue.record("expected .corrupted(.badLayout), got \(String(describing: error))")
            return
        }
        #expect(text.contains("threshold"))
        // At the limit it loads.
        if direction == .toUser { header.offsets.to_user.pool.threshold = limit }
        else { header.offsets.to_kernel.pool.threshold = limit }
        #expect(throws: Never.self) {
            try withUnsafeBytes(of: &header) { raw throws(ChannelError) in
                _ = try ChannelLayout.load(from: raw.baseAddress!, size: layout.totalSize)
            }
        }
    }

    /// FuzzChannelLayout: a header without a pool but with max_segments near
    /// 2^29 loaded (the segment limit was checked only with a pool), and
    /// binding a sender to it allocated 2 GiB for its loan list (a receiver
    /// 16 bytes a segment): `load` must refuse max_segments outside 1...256.
    @Test func layoutWithHugeMaxSegmentsWithoutPoolIsRefused() throws {
        let crash = Self.input(base64: "ALAAAEFDSE6wAQAAAQABAB8AAAAAsAAAAAAAAAEAAAAAAAAAABAAAAAAAAAAIAAAAAAAAAAQAAAAAAAAACAA"
                                   + "AAAAAABAIAAAAAAAAEAQAAAAAAAAADAAAAAAAAAAIAAAAAAAAIAQAAAAAAAAgCAAAAAAAADAIAAAAAAAAMAQ"
                                   + "AAAAAAAAAFAAAAAAAAAAEAAAAAAAAAAAAAAAAAAAABAAAAAAAAAAAgAAAQAAAAAhAAAAAAAAABEAAAAAAABA"
                                   + "EQAAAAAAAEAhAAAAAAAAAGAAAAAAAAAgAAAABAAAAAAjAAAAAAAAgCEAAAAAAACAEQAAAAAAAMARAAAAAAAA"
                                   + "wCEAAAAAAAAAcAAAAAAAAAAgAAAAAAAAACIAAAAAAAAAEgAAAAAAAEASAAAAAAAAQCIAAAAAAAAAkAAAAAAA"
                                   + "AAAQAAAAAAAAAAAAAAAAAAAAEAAAAAAAAAACAAABAAAggBIAAAAAAACAIgAAAAAAAMAiAAAAAAAAwBIAAAAA"
                                   + "AAAAoAAAAAAAACAAAAAEAAAAABMAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                                   count: 4 + MemoryLayout<archangel_channel_header>.size)
        crash.withUnsafeBytes { raw in
            let mapped = Int(raw.loadUnaligned(as: UInt32.self))
            let error = #expect(throws: ChannelError.self) {
                try ChannelLayout.load(from: raw.baseAddress! + 4, size: mapped)
            }
            guard case .corrupted(.badLayout(let text))? = error else {
                Issue.record("expected .corrupted(.badLayout), got \(String(describing: error))")
                return
            }
            #expect(text.contains("segments"))
        }
        let layout = try ChannelLayout(configuration: ChannelConfiguration(poolBufferCount: 0, poolThreshold: 512),
                                       channelID: 0)
        #expect(layout.toUser.pool.maxSegments == 1)
        var header = archangel_channel_header()
        withUnsafeMutableBytes(of: &header) { layout.writeHeader(to: $0.baseAddress!) }
        for value: UInt32 in [0, 257, 1 << 29] {
            header.offsets.to_kernel.pool.max_segments = value
            #expect(throws: ChannelError.self) {
                try withUnsafeBytes(of: &header) { raw throws(ChannelError) in
                    _ = try ChannelLayout.load(from: raw.baseAddress!, size: layout.totalSize)
                }
            }
        }
    }

    /// FuzzRecordRing: indices near 2^64 whose check window wraps past
    /// `UInt64.max` trapped building the error's `ClosedRange` (`low...high`
    /// with high < low) instead of reporting corruption. The fuzzer's input,
    /// to_user's words as it writes them: normal consumer and producer,
    /// express consumer and producer, return ring producer and consumer.
    static let wrappedIndices: [UInt64] = [.max, .max, .max, .max, .max - 1, .max]

    static func expectWrappedWindow(_ error: ChannelError?, sourceLocation: SourceLocation = #_sourceLocation) {
        guard case .corrupted(.indexOutOfRange(_, _, let range))? = error else {
            Issue.record("expected .corrupted(.indexOutOfRange), got \(String(describing: error))",
                         sourceLocation: sourceLocation)
            return
        }
        #expect(range.upperBound == .max, sourceLocation: sourceLocation)
    }

    @Test func resumeWithWrappedReturnIndicesReportsCorruption() throws {
        let channel = try TestChannel(.small)
        let d = channel.lanes
        let w = Self.wrappedIndices
        for (value, offset) in zip(w, [d.normal.consumer, d.normal.producer, d.express.consumer, d.express.producer,
                                       d.pool.returns.producer, d.pool.returns.consumer]) {
            channel.store64(value, offset)
        }
        Self.expectWrappedWindow(#expect(throws: ChannelError.self) {
            try ResumePoint.sender(base: channel.base, layout: channel.layout, direction: .toUser)
        })
        Self.expectWrappedWindow(#expect(throws: ChannelError.self) {
            try ResumePoint.receiver(base: channel.base, layout: channel.layout, direction: .toUser, complete: false)
        })
    }

    @Test func receiverWithWrappedWindowReportsCorruption() throws {
        let channel = try TestChannel(.small)
        // A receiver resuming just below 2^64; the producer index jumps past its window.
        let start = UInt64.max - 100
        channel.store64(start, channel.ring(.normal).consumer)
        channel.store64(5000, channel.ring(.normal).producer)
        var resume = ResumePoint.Receiver()
        resume.normal = start
        let receiver = MessageReceiver(base: channel.base, layout: channel.layout, direction: .toUser,
                                       notifier: NoNotifier(), resume: resume)
        Self.expectWrappedWindow(#expect(throws: ChannelError.self) { try receiver.tryReceive { _ in () } })
        #expect(receiver.counters.load(.errors) == 1)
    }

    @Test func senderWithWrappedReturnWindowReportsCorruption() throws {
        let channel = try TestChannel(.small)
        let d = channel.lanes
        // Returns drained up to just below 2^64; the receiver's producer index jumps past the window.
        channel.store64(UInt64.max - 2, d.pool.returns.consumer)
        channel.store64(100, d.pool.returns.producer)
        var resume = ResumePoint.Sender()
        resume.returnConsumer = UInt64.max - 2
        let sender = MessageSender(base: channel.base, layout: channel.layout, direction: .toUser,
                                   notifier: NoNotifier(), resume: resume)
        Self.expectWrappedWindow(#expect(throws: ChannelError.self) { try sender.reclaimBuffers() })
    }

    /// FuzzPoolDescriptors: a descriptor list whose later descriptor is bad
    /// (here: length past its buffer) left the earlier descriptors' buffers
    /// marked held; only a buffer named twice undid them. Either refusal must
    /// leave the receiver's held bitmap as it was. The fuzzer's list, inline
    /// (16 bytes a descriptor: buffer, offset, length, reserved):
    @Test func refusedDescriptorListLeavesHeldBitmapAsItWas() throws {
        let list: [UInt8] = [
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ]
        let layout = try ChannelLayout(configuration: ChannelConfiguration(
            normalRingBytes: 4096, expressRingBytes: 4096, poolBufferSize: 256, poolBufferCount: 8,
            poolThreshold: 128, maxSegments: 8), channelID: 2)
        let base = UnsafeMutableRawPointer.allocate(byteCount: layout.totalSize, alignment: ABI.pageSize)
        defer { base.deallocate() }
        base.initializeMemory(as: UInt8.self, repeating: 0, count: layout.totalSize)
        var borrower = PoolBorrower(base: base, layout: layout.toUser.pool, name: "to_user")
        defer { borrower.deallocate() }
        let descriptors = UnsafeMutableRawBufferPointer.allocate(byteCount: list.count, alignment: 8)
        defer { descriptors.deallocate() }
        descriptors.copyBytes(from: list)
        var refusal: ChannelError?
        do { _ = try borrower.borrow(descriptors: UnsafeRawPointer(descriptors.baseAddress!), length: list.count) } catch {
            refusal = error
        }
        guard case .corrupted(.badDescriptor(index: 5, _, _, _))? = refusal else {
            Issue.record("expected .corrupted(.badDescriptor) at index 5, got \(String(describing: refusal))")
            return
        }
        #expect(borrower.held[0] == 0)
        // The buffers of the refused list can be borrowed by the next list.
        descriptors.copyBytes(from: [UInt8](repeating: 0, count: list.count))
        descriptors.storeBytes(of: UInt32(256).littleEndian, toByteOffset: 8, as: UInt32.self)
        let result = try borrower.borrow(descriptors: UnsafeRawPointer(descriptors.baseAddress!), length: 16)
        #expect(result.count == 1 && result.bytes == 256 && borrower.held[0] == 1)
    }

    /// FuzzChannelLayout: a layout whose four lanes are 128 bytes (the least
    /// `load` took, 4 minimum records) loaded, but a record is at most a
    /// quarter of its ring, 32 bytes, too small for a header and a correlation
    /// word: the sender's limit was -4 bytes and it refused every message, even
    /// an empty one. `load` must refuse lanes below 256 bytes.
    @Test func layoutWithLanesTooSmallForAnyMessageIsRefused() throws {
        var layout = try ChannelLayout(configuration: ChannelConfiguration(poolBufferCount: 0, poolThreshold: 512),
                                       channelID: 2)
        func setLanes(_ bytes: Int) {
            layout.toUser.normal.size = bytes; layout.toUser.express.size = bytes
            layout.toKernel.normal.size = bytes; layout.toKernel.express.size = bytes
        }
        setLanes(128)
        let error = #expect(throws: ChannelError.self) { try layout.validate(mappedSize: layout.totalSize) }
        guard case .corrupted(.badLayout(let text))? = error else {
            Issue.record("expected .corrupted(.badLayout), got \(String(describing: error))")
            return
        }
        #expect(text.contains("size 128"))
        setLanes(256)
        try layout.validate(mappedSize: layout.totalSize)
        let base = UnsafeMutableRawPointer.allocate(byteCount: layout.totalSize, alignment: ABI.pageSize)
        defer { base.deallocate() }
        base.initializeMemory(as: UInt8.self, repeating: 0, count: layout.totalSize)
        layout.writeHeader(to: base)
        let loaded = try ChannelLayout.load(from: base, size: layout.totalSize)
        let sender = MessageSender(base: base, layout: loaded, direction: .toUser, notifier: NoNotifier())
        let receiver = MessageReceiver(base: base, layout: loaded, direction: .toUser, notifier: NoNotifier())
        #expect(sender.maxPayload == 64 - ABI.headerSize - ABI.correlationSize)
        let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: sender.maxPayload, alignment: 8)
        defer { payload.deallocate() }
        payload.initializeMemory(as: UInt8.self, repeating: 7)
        #expect(try sender.trySend(type: .control, priority: .normal, payload: UnsafeRawBufferPointer(payload),
                                   correlation: 1) == .sent)
        #expect(try receiver.tryReceive { $0.bytes } == [UInt8](repeating: 7, count: sender.maxPayload))
    }
}
