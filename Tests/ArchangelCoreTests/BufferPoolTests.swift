// The buffer pool: large payloads by descriptor, scatter-gather, exhaustion and
// the inline-copy fallback, buffer return without leaks, and the loan API.
import ArchangelCore
import Testing

@Suite struct BufferPoolTests {
    /// Where buffer `index` of the channel's pool starts.
    static func bufferStart(_ channel: TestChannel, _ index: Int) -> UnsafeRawPointer {
        UnsafeRawPointer(channel.base + channel.lanes.pool.buffers + index * channel.lanes.pool.bufferSize)
    }

    @Test func aPayloadAtTheThresholdStaysInline() throws {
        let channel = try TestChannel(.small)
        #expect(try channel.send(count: 128, seed: 1) == .sent)
        #expect(channel.sender.poolBuffersInUse == 0)
        let message = try #require(try channel.receive())
        #expect(message.flags.isEmpty)
        #expect(message.bytes == pattern(128, seed: 1))
        #expect(channel.sender.counters.load(.poolTransfers) == 0)
    }

    @Test(arguments: [129, 200, 256])
    func aPayloadAboveTheThresholdTravelsThroughThePool(count: Int) throws {
        let channel = try TestChannel(.small)
        #expect(try channel.send(count: count, seed: 3) == .sent)
        // The ring carries a header and one descriptor, not the payload.
        #expect(channel.producerIndex(.normal) == UInt64(ABI.recordStride(ABI.headerSize + ABI.descriptorSize)))
        let header = RecordHeader(loadingFrom: channel.data(.normal))
        #expect(header.flags == MessageFlags.dma.rawValue)
        #expect(header.size == UInt32(ABI.headerSize + ABI.descriptorSize))
        let (descriptor, reserved) = PoolDescriptor.load(from: channel.data(.normal) + ABI.headerSize)
        #expect(descriptor == PoolDescriptor(buffer: 0, offset: 0, length: UInt32(count)))
        #expect(reserved == 0)
        #expect(channel.sender.poolBuffersInUse == 1)
        #expect(channel.sender.counters.load(.poolTransfers) == 1)
        #expect(channel.sender.counters.load(.poolBuffersInUse) == 1)

        let message = try #require(try channel.receive())
        #expect(message.flags == .dma)
        #expect(message.count == count)
        #expect(message.bytes == pattern(count, seed: 3))
        #expect(message.segmentStarts == [Self.bufferStart(channel, 0)], "read in place, no copy")
        #expect(channel.receiver.counters.load(.poolTransfers) == 1)
        #expect(channel.receiver.counters.load(.bytesReceived) == UInt64(count))
    }

    @Test(arguments: [129, 255, 256, 257, 511, 512, 513, 1000, 1024, 1025, 1500, 1792, 1793, 2047, 2048])
    func scatterGatherReassemblesPayloadsSpanningOneToMaxSegmentsBuffers(count: Int) throws {
        let channel = try TestChannel(.small)
        #expect(channel.sender.maxPayload == 2048)
        #expect(try channel.send(count: count, seed: UInt64(count), priority: .critical, correlation: 42) == .sent)
        let segments = (count + 255) / 256
        #expect(channel.sender.poolBuffersInUse == segments)
        let message = try #require(try channel.receive())
        #expect(message.flags == [.dma, .correlated])
        #expect(message.correlation == 42)
        #expect(message.priority == .critical)
        #expect(message.count == count)
        #expect(message.wellFormed)
        #expect(message.bytes == pattern(count, seed: UInt64(count)), "copyBytes gathers the pieces in order")
        #expect(message.segmentCount == segments)
        // Segment by segment: full buffers, then the remainder, each in its own buffer.
        let expected = pattern(count, seed: UInt64(count))
        for i in 0..<message.segmentCount {
            let piece = Array(expected[(i * 256)..<min(count, (i + 1) * 256)])
            #expect(message.segmentBytes[i] == piece, "segment \(i)")
            #expect(message.segmentStarts[i] == Self.bufferStart(channel, i), "segment \(i)")
        }
        try channel.sender.reclaimBuffers()
        #expect(channel.sender.poolBuffersInUse == 0)
    }

    @Test func copyBytesStopsAtTheDestinationSize() throws {
        let channel = try TestChannel(.small)
        try channel.send(count: 700, seed: 9)
        let copied = try channel.receiver.tryReceive { view -> [UInt8] in
            var small = [UInt8](repeating: 0, count: 300)
            let n = small.withUnsafeMutableBytes { view.copyBytes(to: $0) }
            #expect(n == 300)
            #expect(view.contiguousBytes == nil, "three segments are not contiguous")
            return small
        }
        #expect(copied == Array(pattern(700, seed: 9).prefix(300)))
    }

    @Test func anEmptyPoolFallsBackToAnInlineCopyOrSaysPoolEmpty() throws {
        let channel = try TestChannel(.small)
        // Hold eight one-buffer messages unreceived: the pool is empty.
        for i in 0..<8 { #expect(try channel.send(count: 200, seed: UInt64(i)) == .sent) }
        #expect(channel.sender.poolBuffersInUse == 8)

        // Fits a record: copied inline and flagged.
        #expect(try channel.send(count: 500, seed: 100) == .sent)
        #expect(channel.sender.counters.load(.copyFallbacks) == 1)
        #expect(channel.sender.counters.load(.poolTransfers) == 8)

        // Does not fit a record: would block on the pool, nothing queued.
        let before = channel.producerIndex(.normal)
        #expect(try channel.send(count: 1500, seed: 101) == .wouldBlock(.poolEmpty(buffers: 6)))
        #expect(channel.sender.counters.load(.queueFull) == 1)
        #expect(channel.producerIndex(.normal) == before)
        #expect(channel.sender.lastSequence == 9)

        let received = try channel.drain()
        #expect(received.count == 9)
        #expect(received.prefix(8).allSatisfy { $0.flags == .dma })
        for (i, message) in received.prefix(8).enumerated() { #expect(message.bytes == pattern(200, seed: UInt64(i))) }
        let copied = try #require(received.last)
        #expect(copied.flags == .copied)
        #expect(copied.segmentCount == 1)
        #expect(copied.bytes == pattern(500, seed: 100))

        // Buffers come back through the return ring; the sender sees them after a reclaim.
        #expect(channel.sender.poolBuffersInUse == 8)
        try channel.sender.reclaimBuffers()
        #expect(channel.sender.poolBuffersInUse == 0)
        #expect(channel.sender.counters.load(.poolBuffersInUse) == 0)

        #expect(try channel.send(count: 1500, seed: 101) == .sent)
        let large = try #require(try channel.receive())
        #expect(large.flags == .dma)
        #expect(large.bytes == pattern(1500, seed: 101))
    }

    @Test func aSendThatFindsThePoolLowReclaimsReturnedBuffersByItself() throws {
        let channel = try TestChannel(.small)
        for round in 0..<20 {
            #expect(try channel.send(count: 2048, seed: UInt64(round)) == .sent, "round \(round)")
            #expect(try channel.receive()?.bytes == pattern(2048, seed: UInt64(round)))
        }
        #expect(channel.sender.counters.load(.copyFallbacks) == 0)
        #expect(channel.sender.counters.load(.queueFull) == 0)
    }

    @Test func randomTrafficLeaksNoBuffers() throws {
        let channel = try TestChannel(.small)
        var random = SplitMix64(seed: 0xB0FF)
        var pending: [(count: Int, seed: UInt64)] = []
        var seed: UInt64 = 0
        for _ in 0..<400 {
            if Bool.random(using: &random) || pending.isEmpty {
                seed += 1
                let count = Int.random(in: 0...2048, using: &random)
                if try channel.send(count: count, seed: seed) == .sent { pending.append((count, seed)) }
            } else {
                let message = try #require(try channel.receive())
                let expected = pending.removeFirst()
                #expect(message.bytes == pattern(expected.count, seed: expected.seed))
                #expect(message.wellFormed)
            }
        }
        for message in try channel.drain() {
            let expected = pending.removeFirst()
            #expect(message.bytes == pattern(expected.count, seed: expected.seed))
        }
        #expect(pending.isEmpty)
        try channel.sender.reclaimBuffers()
        #expect(channel.sender.poolBuffersInUse == 0)
        #expect(channel.sender.counters.load(.poolBuffersInUse) == 0)
        #expect(channel.sender.error == nil && channel.receiver.error == nil)
    }

    @Test func aPoolMessageOverTheReceiveLimitStaysQueuedAndHoldsNoBuffer() throws {
        let channel = try TestChannel(.small)
        try channel.send(count: 1000, seed: 4)
        for _ in 0..<3 {
            #expect(throws: ChannelError.bufferTooSmall(needed: 1000, available: 999)) {
                try channel.receive(sizeLimit: 999)
            }
        }
        // Had the refused attempts kept their buffers marked, this would be "already held".
        let message = try #require(try channel.receive(sizeLimit: 1000))
        #expect(message.bytes == pattern(1000, seed: 4))
        #expect(channel.receiver.error == nil)
    }

    @Test func aPayloadLargerThanThePoolCanEverHoldIsRejectedAndCounted() throws {
        let channel = try TestChannel(.small)
        #expect(throws: ChannelError.payloadTooLarge(size: 2049, limit: 2048)) {
            try channel.send(count: 2049, seed: 1)
        }
        #expect(channel.sender.counters.load(.rejected) == 1)
        #expect(throws: ChannelError.payloadTooLarge(size: 2049, limit: 2048)) {
            try channel.sender.tryBeginLoan(capacity: 2049)
        }
        #expect(channel.sender.counters.load(.rejected) == 2)
        #expect(channel.sender.counters.load(.messagesSent) == 0)
        #expect(channel.sender.error == nil)
        #expect(try channel.send(count: 2048, seed: 1) == .sent)
    }

    // MARK: - Loans

    @Test func aLoanIsWrittenInPlaceAndReceivedWithoutACopy() throws {
        let channel = try TestChannel(.small)
        let sender = channel.sender
        #expect(try sender.tryBeginLoan(capacity: 600))
        #expect(sender.loanSegmentCount == 3)
        #expect(sender.poolBuffersInUse == 3)
        let payload = pattern(600, seed: 77)
        var starts: [UnsafeRawPointer?] = []
        for i in 0..<sender.loanSegmentCount {
            let segment = sender.loanSegment(i)
            #expect(segment.count == 256)
            starts.append(UnsafeRawPointer(segment.baseAddress))
            let piece = payload[(i * 256)..<min(600, (i + 1) * 256)]
            segment.copyBytes(from: piece)
        }
        #expect(try sender.tryCommitLoan(type: .aiResponse, priority: .high, length: 600, correlation: 5) == .sent)
        #expect(sender.loanSegmentCount == 0)
        #expect(sender.counters.load(.poolTransfers) == 1)
        #expect(sender.counters.load(.bytesSent) == 600)

        let message = try #require(try channel.receive())
        #expect(message.type == .aiResponse)
        #expect(message.flags == [.dma, .correlated])
        #expect(message.correlation == 5)
        #expect(message.bytes == payload)
        #expect(message.segmentStarts == starts, "the receiver reads the very buffers the sender wrote")
        try sender.reclaimBuffers()
        #expect(sender.poolBuffersInUse == 0)
    }

    @Test func committingLessThanTheLoanReturnsTheUnusedBuffers() throws {
        let channel = try TestChannel(.small)
        let sender = channel.sender
        #expect(try sender.tryBeginLoan(capacity: 1024))
        #expect(sender.poolBuffersInUse == 4)
        fillPattern(sender.loanSegment(0).baseAddress!, count: 256, seed: 1)
        fillPattern(sender.loanSegment(1).baseAddress!, count: 44, seed: 2)
        #expect(try sender.tryCommitLoan(type: .control, priority: .normal, length: 300) == .sent)
        #expect(sender.poolBuffersInUse == 2)
        let message = try #require(try channel.receive())
        #expect(message.count == 300)
        #expect(message.segmentBytes == [pattern(256, seed: 1), pattern(44, seed: 2)])
    }

    @Test func anEmptyLoanSendsAnEmptyPoolMessage() throws {
        let channel = try TestChannel(.small)
        #expect(try channel.sender.tryBeginLoan(capacity: 0))
        #expect(channel.sender.loanSegmentCount == 1)
        #expect(try channel.sender.tryCommitLoan(type: .control, priority: .low, length: 0) == .sent)
        let message = try #require(try channel.receive())
        #expect(message.count == 0 && message.bytes.isEmpty && message.flags == .dma)
    }

    @Test func cancelLoanReturnsItsBuffers() throws {
        let channel = try TestChannel(.small)
        let sender = channel.sender
        #expect(try sender.tryBeginLoan(capacity: 2048))
        #expect(sender.poolBuffersInUse == 8)
        #expect(sender.counters.load(.poolBuffersInUse) == 8)
        sender.cancelLoan()
        #expect(sender.poolBuffersInUse == 0)
        #expect(sender.loanSegmentCount == 0)
        #expect(sender.counters.load(.poolBuffersInUse) == 0)
        sender.cancelLoan() // no loan: nothing happens
        #expect(sender.poolBuffersInUse == 0)
        #expect(try sender.tryBeginLoan(capacity: 2048), "every buffer is free again")
        sender.cancelLoan()
        #expect(try channel.receive() == nil, "nothing was sent")
    }

    @Test func aSecondLoanWhileOneIsOpenThrowsLoanOutstanding() throws {
        let channel = try TestChannel(.small)
        #expect(try channel.sender.tryBeginLoan(capacity: 10))
        #expect(throws: ChannelError.loanOutstanding) { try channel.sender.tryBeginLoan(capacity: 10) }
        #expect(channel.sender.poolBuffersInUse == 1)
        #expect(channel.sender.error == nil)
        channel.sender.cancelLoan()
        #expect(try channel.sender.tryBeginLoan(capacity: 10))
    }

    @Test func aLoanFromAnEmptyPoolWouldBlock() throws {
        let channel = try TestChannel(.small)
        for i in 0..<4 { try channel.send(count: 512, seed: UInt64(i)) }
        #expect(try channel.sender.tryBeginLoan(capacity: 1) == false)
        #expect(channel.sender.counters.load(.queueFull) == 1)
        _ = try channel.receive()
        #expect(try channel.sender.tryBeginLoan(capacity: 512), "the loan reclaims the returned buffers")
    }

    @Test func committingMoreThanTheLoanHoldsThrowsAndKeepsTheLoanOpen() throws {
        let channel = try TestChannel(.small)
        #expect(try channel.sender.tryBeginLoan(capacity: 256))
        #expect(throws: ChannelError.payloadTooLarge(size: 257, limit: 256)) {
            try channel.sender.tryCommitLoan(type: .control, priority: .normal, length: 257)
        }
        #expect(channel.sender.loanSegmentCount == 1)
        #expect(try channel.sender.tryCommitLoan(type: .control, priority: .normal, length: 256) == .sent)
    }

    @Test func aLoanCommitOnAFullRingWouldBlockAndKeepsTheLoanOpen() throws {
        let channel = try TestChannel(.small)
        for i in 0..<128 { try channel.send(count: 4, seed: UInt64(i), priority: .high) }
        #expect(try channel.sender.tryBeginLoan(capacity: 300))
        fillPattern(channel.sender.loanSegment(0).baseAddress!, count: 256, seed: 8)
        fillPattern(channel.sender.loanSegment(1).baseAddress!, count: 44, seed: 9)
        #expect(try channel.sender.tryCommitLoan(type: .control, priority: .high, length: 300)
                    == .wouldBlock(.ringFull(lane: .express, length: ABI.headerSize + 2 * ABI.descriptorSize)))
        #expect(channel.sender.loanSegmentCount == 2)
        #expect(try channel.drain().count == 128)
        #expect(try channel.sender.tryCommitLoan(type: .control, priority: .high, length: 300) == .sent)
        #expect(try channel.receive()?.segmentBytes == [pattern(256, seed: 8), pattern(44, seed: 9)])
    }

    @Test func aLoanOnAChannelWithoutAPoolIsRejected() throws {
        let channel = try TestChannel(.smallNoPool)
        #expect(throws: ChannelError.self) { try channel.sender.tryBeginLoan(capacity: 1) }
        #expect(channel.sender.counters.load(.rejected) == 1)
    }

    // MARK: - Limits that must agree with each other

    /// 256 buffers of 256 bytes and up to 256 segments on 4 KiB rings, whose records hold at most 1 KiB:
    /// 256 descriptors (4 KiB) cannot fit one record.
    /// As many segments as a 4 KiB ring's largest record can describe: (1024 - 28 - 8) / 16.
    static let manySegments = ChannelConfiguration(normalRingBytes: 4096, expressRingBytes: 4096, poolBufferSize: 256,
                                                   poolBufferCount: 256, poolThreshold: 128, maxSegments: 61)

    /// Sends and receives payloads from 0 to the sender's `maxPayload` on an otherwise idle channel;
    /// every one must go out (`maxPayload` is "the largest payload this sender accepts").
    static func expectEveryPayloadUpToMaxPayloadIsSent(_ configuration: ChannelConfiguration,
                                                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let channel = try TestChannel(configuration)
        let limit = channel.sender.maxPayload
        var sizes = Array(Swift.stride(from: 0, through: limit, by: max(1, limit / 40)))
        sizes += [configuration.poolThreshold, configuration.poolThreshold + 1, limit - 1, limit]
        for size in Set(sizes).sorted() {
            do {
                #expect(try channel.send(count: size, seed: UInt64(size)) == .sent, "payload \(size) of \(limit)",
                        sourceLocation: sourceLocation)
                #expect(try channel.receive()?.bytes == pattern(size, seed: UInt64(size)), "payload \(size)",
                        sourceLocation: sourceLocation)
            } catch {
                Issue.record("payload \(size) <= maxPayload \(limit) was refused: \(error)",
                             sourceLocation: sourceLocation)
                return
            }
        }
    }

    @Test(arguments: [ChannelConfiguration.small, .smallNoPool, .default])
    func senderAcceptsEveryPayloadUpToItsMaxPayload(configuration: ChannelConfiguration) throws {
        try Self.expectEveryPayloadUpToMaxPayloadIsSent(configuration)
    }

    @Test func maxPayloadIsAcceptedAtTheMostSegmentsARecordCanDescribe() throws {
        try Self.expectEveryPayloadUpToMaxPayloadIsSent(Self.manySegments)
    }

    @Test func moreSegmentsThanARecordCanDescribeAreRefusedByValidation() throws {
        var configuration = Self.manySegments
        configuration.maxSegments = 62
        #expect(throws: ChannelError.self) { try configuration.validate() }
    }

    @Test func aPayloadBelowMaxPayloadNeedingMoreSegmentsThanAllowedIsNotRejected() throws {
        // maxSegments 1: maxPayload is the inline limit (988), but a 257...988-byte payload is
        // above the threshold, needs 2+ segments, and is rejected instead of being sent inline.
        try Self.expectEveryPayloadUpToMaxPayloadIsSent(
            ChannelConfiguration(normalRingBytes: 4096, expressRingBytes: 4096, poolBufferSize: 256,
                                 poolBufferCount: 8, poolThreshold: 128, maxSegments: 1))
    }

    @Test func thePoolThresholdIsValidatedAgainstTheSmallerLane() throws {
        // validate() checks poolThreshold against the express lane only. With a normal lane
        // smaller than the express lane, payloads up to the threshold (2000) stay inline
        // although normal-lane records hold at most 996 payload bytes: they are rejected.
        let configuration = ChannelConfiguration(normalRingBytes: 4096, expressRingBytes: 16384,
                                                 poolBufferSize: 4096, poolBufferCount: 8,
                                                 poolThreshold: 2000, maxSegments: 8)
        guard (try? configuration.validate()) != nil else { return } // refusing it is a fix too
        try Self.expectEveryPayloadUpToMaxPayloadIsSent(configuration)
    }

    @Test(arguments: [1, 8, 60, 61])
    func aLoanCommitNeverWritesARecordLargerThanTheRingAllows(segments: Int) throws {
        let channel = try TestChannel(Self.manySegments)
        let capacity = segments * 256
        do {
            #expect(try channel.sender.tryBeginLoan(capacity: capacity))
            let outcome = try channel.sender.tryCommitLoan(type: .control, priority: .normal, length: capacity)
            // On an empty ring a commit must go out; anything else can never succeed.
            #expect(outcome == .sent, "a \(segments)-segment loan on an empty ring")
            if outcome == .sent {
                let header = RecordHeader(loadingFrom: channel.data(.normal))
                #expect(Int(header.size) <= ChannelConfiguration.maxRecord(ringBytes: 4096),
                        "record of \(header.size) bytes in a ring whose records are limited to 1024")
            }
        } catch ChannelError.payloadTooLarge {
            // Refusing such a loan up front is fine too.
        }
    }
}
