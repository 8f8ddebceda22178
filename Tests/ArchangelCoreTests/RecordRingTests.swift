// The variable-length record rings: fill and drain, exact fits, wrap-around at
// every payload size, padding and implicit skips, batched release, free-running
// indices across UInt64 overflow, and the two lanes.
import ArchangelCore
import Testing

/// One ring of a test channel driven directly through `RecordRingProducer` / `RecordRingConsumer`.
final class RingFixture {
    let channel: TestChannel
    let lane: Lane
    let ring: RingLayout
    let data: UnsafeMutableRawPointer
    var producer: RecordRingProducer
    var consumer: RecordRingConsumer
    /// Sequence of the last record written.
    var written: UInt64 = 0
    /// Sequence of the last record read.
    var read: UInt64 = 0
    /// Whether the last `readNext` reported a producer waiting for space.
    var lastWake = false

    init(lane: Lane = .normal, start: UInt64 = 0) throws {
        channel = try TestChannel(.small)
        self.lane = lane
        ring = channel.ring(lane)
        data = channel.data(lane)
        // Both sides resume from `start`, so the shared words say the same.
        channel.store64(start, ring.producer)
        channel.store64(start, ring.consumer)
        producer = RecordRingProducer(base: channel.base, layout: ring, name: "test.\(lane)", start: start)
        consumer = RecordRingConsumer(base: channel.base, layout: ring, lane: lane, name: "test.\(lane)",
                                      start: start)
    }

    var size: Int { ring.size }

    /// Reserves, writes and commits a record of `length` bytes (header included).
    ///
    /// Returns its position in the data area, or nil when the ring is full.
    func write(length: Int) throws(ChannelError) -> Int? {
        guard let record = try producer.reserve(length: length) else { return nil }
        written += 1
        RecordHeader(type: MessageType.control.rawValue, priority: lane == .express ? 3 : 1, flags: 0,
                     size: UInt32(length), sequence: written, timestamp: 0).store(to: record)
        fillPattern(record + ABI.headerSize, count: length - ABI.headerSize, seed: written)
        producer.commit(length: length)
        return UnsafeRawPointer(data).distance(to: record)
    }

    func publish() { _ = producer.publishIndex() }

    /// Peeks the next record, checks it is the next one written, intact, and
    /// inside the data area, then advances past it. Returns its position and length.
    /// Reads the next record and says whether the consumer reported a producer waiting for space.
    func readNextReportingWake() throws(ChannelError) -> Bool {
        _ = try readNext()
        return lastWake
    }

    func readNext() throws(ChannelError) -> (position: Int, length: Int)? {
        guard let record = try consumer.peek() else { return nil }
        read += 1
        let position = UnsafeRawPointer(data).distance(to: record.payload) - ABI.headerSize
        #expect(record.header.sequence == read)
        #expect(record.header.magic == ABI.messageMagic)
        #expect(record.type == .control)
        #expect(record.correlation == nil)
        #expect(position >= 0 && position % 8 == 0)
        #expect(position + Int(record.header.size) <= size, "a record never wraps")
        #expect(record.payloadLength == Int(record.header.size) - ABI.headerSize)
        #expect(matchesPattern(record.payload, count: record.payloadLength, seed: read),
                "payload of record \(read) (\(record.payloadLength) bytes at \(position))")
        lastWake = consumer.advance(past: record)
        return (position, Int(record.header.size))
    }

    /// Reads everything published, then releases the space.
    @discardableResult
    func drain() throws(ChannelError) -> Int {
        var count = 0
        while try readNext() != nil { count += 1 }
        _ = consumer.release()
        return count
    }
}

@Suite struct RecordRingTests {
    @Test(arguments: Lane.allCases)
    func emptyRingPeeksNil(lane: Lane) throws {
        let ring = try RingFixture(lane: lane)
        #expect(try ring.consumer.peek() == nil)
        #expect(try ring.consumer.hasData() == false)
        #expect(ring.consumer.capacity == 4096)
        #expect(ring.producer.capacity == 4096)
        #expect(ring.producer.maxRecord == 1024)
    }

    @Test func committedRecordsStayInvisibleUntilPublished() throws {
        let ring = try RingFixture()
        #expect(try ring.write(length: 40) == 0)
        #expect(try ring.consumer.peek() == nil)
        #expect(ring.channel.producerIndex(.normal) == 0)
        ring.publish()
        #expect(ring.channel.producerIndex(.normal) == 40)
        #expect(try ring.readNext()?.position == 0)
    }

    @Test(arguments: [28, 32, 33, 100, 504, 1000, 1024])
    func ringAcceptsRecordsUntilFullThenReserveSaysNilWithoutThrowing(length: Int) throws {
        let ring = try RingFixture()
        let stride = ABI.recordStride(length)
        var positions: [Int] = []
        while let position = try ring.write(length: length) { positions.append(position) }
        #expect(positions.count == 4096 / stride)
        #expect(positions == Array(Swift.stride(from: 0, to: positions.count * stride, by: stride)))
        // Full is not an error, and stays "full" until the consumer releases.
        #expect(try ring.write(length: length) == nil)
        ring.publish()
        #expect(try ring.drain() == positions.count)
        #expect(ring.read == ring.written)
        #expect(try ring.consumer.peek() == nil)
    }

    @Test func recordsThatExactlyFillTheRingAllFitAndTheNextDoesNot() throws {
        let ring = try RingFixture()
        for round in 0..<3 {
            for i in 0..<4 { #expect(try ring.write(length: 1024) == i * 1024, "round \(round)") }
            #expect(try ring.write(length: 32) == nil, "the ring is exactly full")
            ring.publish()
            #expect(try ring.drain() == 4)
        }
        #expect(ring.channel.producerIndex(.normal) == 3 * 4096)
        #expect(ring.channel.consumerIndex(.normal) == 3 * 4096)
    }

    @Test func aRecordThatExactlyFillsTheTailNeedsNoPadding() throws {
        let ring = try RingFixture()
        for _ in 0..<3 { _ = try ring.write(length: 1024) }
        #expect(try ring.write(length: 960) == 3072)
        ring.publish()
        #expect(try ring.drain() == 4)
        // 64 bytes remain before the end: a 64-byte record lands there, the next at 0.
        #expect(try ring.write(length: 64) == 4032)
        #expect(try ring.write(length: 64) == 0)
        ring.publish()
        #expect(try ring.readNext()?.position == 4032)
        #expect(try ring.readNext()?.position == 0)
    }

    /// Fills the ring up to `4096 - tail`, drains it, and returns the fixture.
    static func ring(withTail tail: Int, lane: Lane = .normal) throws -> RingFixture {
        let ring = try RingFixture(lane: lane)
        var remaining = 4096 - tail
        while remaining > 0 {
            // Pieces of at most a quarter ring, none shorter than a header.
            let length = remaining > 1024 && remaining - 1024 < ABI.minimumRecord ? 512 : min(1024, remaining)
            _ = try ring.write(length: length)
            remaining -= length
        }
        ring.publish()
        try ring.drain()
        return ring
    }

    @Test(arguments: [8, 16, 24, 32, 40, 64, 1016])
    func aRecordThatDoesNotFitTheTailGoesToTheStartBehindPaddingOrAnImplicitSkip(tail: Int) throws {
        let ring = try Self.ring(withTail: tail)
        let tailStart = ring.data + (4096 - tail)
        tailStart.initializeMemory(as: UInt8.self, repeating: 0xAB, count: tail)

        let length = max(tail + 8, ABI.headerSize)
        #expect(try ring.write(length: length) == 0, "the record starts the next lap")
        if tail >= ABI.headerSize {
            // A padding record covers the whole tail.
            let pad = RecordHeader(loadingFrom: tailStart)
            #expect(pad == RecordHeader(type: 0, priority: 0, flags: MessageFlags.pad.rawValue, size: UInt32(tail),
                                        sequence: 0, timestamp: 0))
        } else {
            // Too short for a header: both sides skip it implicitly, nothing is written.
            #expect(Array(UnsafeRawBufferPointer(start: tailStart, count: tail)).allSatisfy { $0 == 0xAB })
        }
        ring.publish()
        #expect(ring.channel.producerIndex(.normal) == UInt64(4096 + ABI.recordStride(length)))
        let next = try ring.readNext()
        #expect(next?.position == 0)
        #expect(next?.length == length)
        #expect(try ring.readNext() == nil)
    }

    @Test func paddingIsSkippedEvenWhenItIsTheLastPublishedBytesBeforeTheRecord() throws {
        // The padding becomes visible together with the record after it; a
        // consumer that has caught up must skip it and find the record.
        let ring = try Self.ring(withTail: 40, lane: .express)
        #expect(try ring.write(length: 100) == 0)
        #expect(try ring.consumer.hasData() == false)
        ring.publish()
        #expect(try ring.consumer.hasData())
        #expect(try ring.readNext()?.position == 0)
    }

    @Test func everyPayloadSizeUpToTheLargestInlineRecordWrapsTheRingTwiceIntact() throws {
        // A 4 KiB ring takes records up to 1024 bytes: payloads 0...996.
        let largest = ChannelConfiguration.maxRecord(ringBytes: 4096) - ABI.headerSize
        #expect(largest == 996)
        var checked = 0
        var tails = (exact: 0, skip: 0, pad: 0)
        for payload in 0...largest {
            let ring = try RingFixture()
            let length = ABI.headerSize + payload
            var laps = 0
            var last = -1
            var padded = 0
            while laps < 2 || last < 64 {
                guard let position = try ring.write(length: length) else {
                    ring.publish()
                    try ring.drain()
                    continue
                }
                if position < last {
                    laps += 1
                    let tail = 4096 - ABI.recordStride(length) - last
                    padded += tail
                    if tail == 0 { tails.exact += 1 } else if tail < ABI.headerSize { tails.skip += 1 } else { tails.pad += 1 }
                }
                last = position
            }
            ring.publish()
            try ring.drain()
            // The indices count every byte, padding and skips included.
            let indexRight = ring.channel.producerIndex(.normal)
                == ring.written * UInt64(ABI.recordStride(length)) + UInt64(padded)
            #expect(ring.read == ring.written, "payload \(payload)")
            #expect(laps >= 2, "payload \(payload)")
            #expect(indexRight, "payload \(payload)")
            if ring.read != ring.written || !indexRight { break }
            checked += 1
        }
        #expect(checked == largest + 1)
        // Every way a lap can end was exercised many times.
        #expect(tails.exact >= 50 && tails.skip >= 150 && tails.pad >= 1500, "\(tails)")
    }

    @Test func consumerReleasesAfterAQuarterOfTheRingSoTheProducerSeesSpaceOnlyThen() throws {
        let ring = try RingFixture()
        for _ in 0..<128 { #expect(try ring.write(length: 32) != nil) }
        ring.publish()
        #expect(try ring.write(length: 32) == nil)
        // Reading 31 records (992 bytes) releases nothing yet.
        for _ in 0..<31 { _ = try ring.readNext() }
        #expect(ring.channel.consumerIndex(.normal) == 0)
        #expect(try ring.write(length: 32) == nil)
        // The 32nd completes a quarter (1024 bytes) and releases it in one store.
        _ = try ring.readNext()
        #expect(ring.channel.consumerIndex(.normal) == 1024)
        for _ in 0..<32 { #expect(try ring.write(length: 32) != nil) }
        #expect(try ring.write(length: 32) == nil)
    }

    @Test func anExplicitReleaseHandsBackSpaceBeforeTheBatchIsComplete() throws {
        let ring = try RingFixture()
        for _ in 0..<128 { _ = try ring.write(length: 32) }
        ring.publish()
        _ = try ring.readNext()
        #expect(try ring.write(length: 32) == nil)
        #expect(ring.consumer.release() == false, "the producer did not ask for space")
        #expect(ring.channel.consumerIndex(.normal) == 32)
        #expect(try ring.write(length: 32) == 0, "the freed first slot")
        #expect(try ring.write(length: 32) == nil)
        #expect(ring.consumer.release() == false, "nothing new to release")
    }

    @Test func releaseReportsAProducerWaitingForSpace() throws {
        let ring = try RingFixture()
        for _ in 0..<4 { _ = try ring.write(length: 1024) }
        ring.publish()
        #expect(try ring.producer.prepareToWaitForSpace(length: 64) == true)
        // Consuming a quarter ring releases it, and reports the waiting producer.
        let record = try #require(try ring.consumer.peek())
        #expect(ring.consumer.advance(past: record) == true)
        #expect(ring.channel.consumerIndex(.normal) == 1024)
        #expect(try ring.producer.prepareToWaitForSpace(length: 64) == false, "room appeared")
        #expect(ring.channel.load32(ring.ring.needSpace) & 1 == 0, "the flag is cleared again")
        #expect(try ring.write(length: 64) == 0)
    }

    @Test(arguments: [8, 2048, 4064, 4096, 12288] as [UInt64])
    func freeRunningIndicesKeepWorkingAcrossUInt64Overflow(bytesBeforeOverflow: UInt64) throws {
        let start = 0 &- bytesBeforeOverflow
        let ring = try RingFixture(start: start)
        var lengths = SplitMix64(seed: bytesBeforeOverflow)
        var written = 0
        while written < 3 * 4096 {
            let length = Int.random(in: 28...1024, using: &lengths)
            if try ring.write(length: length) == nil {
                ring.publish()
                try ring.drain()
            } else {
                written += ABI.recordStride(length)
            }
        }
        ring.publish()
        try ring.drain()
        #expect(ring.read == ring.written)
        #expect(ring.channel.producerIndex(.normal) < start, "the index wrapped past zero")
        #expect(ring.channel.producerIndex(.normal) == ring.channel.consumerIndex(.normal))
    }

    // MARK: - Through MessageSender / MessageReceiver

    @Test func senderSaysWouldBlockWhenTheRingIsFullAndRecoversAfterTheReceiverDrains() throws {
        let channel = try TestChannel(.small)
        for i in 0..<128 { #expect(try channel.send(count: 4, seed: UInt64(i)) == .sent) }
        #expect(try channel.send(count: 4, seed: 999) == .wouldBlock(.ringFull(lane: .normal, length: 32)))
        #expect(try channel.send(count: 4, seed: 999, priority: .high) == .sent, "the express lane is separate")
        let received = try channel.drain()
        #expect(received.count == 129)
        #expect(received.first?.priority == .high)
        #expect(received.dropFirst().map(\.sequence) == Array(1...128))
        for (i, message) in received.dropFirst().enumerated() {
            #expect(message.bytes == pattern(4, seed: UInt64(i)))
        }
        #expect(try channel.send(count: 4, seed: 1000) == .sent)
    }

    @Test(arguments: MessagePriority.allCases)
    func eachPriorityTravelsOnItsLane(priority: MessagePriority) throws {
        let channel = try TestChannel(.small)
        #expect(try channel.send(count: 10, seed: 1, priority: priority) == .sent)
        let used = ABI.recordStride(ABI.headerSize + 10)
        #expect(channel.producerIndex(priority.lane) == UInt64(used))
        #expect(channel.producerIndex(priority.lane == .normal ? .express : .normal) == 0)
        let header = RecordHeader(loadingFrom: channel.data(priority.lane))
        #expect(header.priority == priority.rawValue)
        #expect(header.sequence == 1)
        let message = try #require(try channel.receive())
        #expect(message.priority == priority)
        #expect(message.bytes == pattern(10, seed: 1))
    }

    @Test func expressLaneIsDrainedBeforeTheNormalLane() throws {
        let channel = try TestChannel(.small)
        let priorities: [MessagePriority] = [.low, .normal, .high, .critical, .normal, .critical, .low, .high]
        for (i, priority) in priorities.enumerated() {
            #expect(try channel.send(count: i, seed: UInt64(i), priority: priority) == .sent)
        }
        let received = try channel.drain()
        #expect(received.map(\.sequence) == [3, 4, 6, 8, 1, 2, 5, 7])
        #expect(received.map(\.priority) == [.high, .critical, .critical, .high, .low, .normal, .normal, .low])
        for message in received {
            #expect(message.bytes == pattern(Int(message.sequence) - 1, seed: message.sequence - 1))
        }
        // An express message sent later still overtakes waiting normal ones.
        for i in 0..<3 { try channel.send(count: 1, seed: UInt64(i)) }
        _ = try channel.receive()
        try channel.send(count: 1, seed: 9, priority: .critical)
        #expect(try channel.drain().map(\.priority) == [.critical, .normal, .normal])
    }

    @Test func messagesCarryTypeSequenceTimestampAndCorrelation() throws {
        let channel = try TestChannel(.small)
        try channel.send(count: 16, seed: 1, type: .aiRequest)
        try channel.send(count: 16, seed: 2, type: .aiResponse, correlation: 1)
        try channel.send(count: 0, seed: 3, type: .stats, correlation: .max)
        let received = try channel.drain()
        #expect(received.map(\.type) == [.aiRequest, .aiResponse, .stats])
        #expect(received.map(\.sequence) == [1, 2, 3])
        #expect(received.map(\.correlation) == [nil, 1, .max])
        #expect(received.map { $0.flags.contains(.correlated) } == [false, true, true])
        #expect(received.map(\.count) == [16, 16, 0])
        #expect(received[1].bytes == pattern(16, seed: 2))
        #expect(received.allSatisfy { $0.timestamp > 0 && $0.wellFormed && $0.segmentCount == 1 })
        #expect(received[0].timestamp <= received[2].timestamp)
        #expect(channel.sender.lastSequence == 3)
    }

    @Test func deferredPublicationMakesABatchVisibleAtOnce() throws {
        let channel = try TestChannel(.small)
        for i in 0..<5 { try channel.send(count: 8, seed: UInt64(i), priority: i == 2 ? .high : .normal, publish: false) }
        #expect(try channel.receive() == nil)
        channel.sender.publish()
        let received = try channel.drain()
        #expect(received.map(\.sequence) == [3, 1, 2, 4, 5])
        #expect(Set(received.map(\.timestamp)).count == 1, "a batch shares one clock reading")
    }

    @Test(arguments: [0, 1, 500, 980, 988])
    func inlinePayloadsUpToTheRecordLimitArriveIntact(count: Int) throws {
        let channel = try TestChannel(.smallNoPool)
        #expect(try channel.send(count: count, seed: 5) == .sent)
        let message = try #require(try channel.receive())
        #expect(message.bytes == pattern(count, seed: 5))
        #expect(message.flags.isEmpty)
        #expect(message.wellFormed)
    }

    @Test func anInlinePayloadOverTheRecordLimitIsRejectedNotQueued() throws {
        let channel = try TestChannel(.smallNoPool)
        #expect(throws: ChannelError.payloadTooLarge(size: 997, limit: channel.sender.maxPayload)) {
            try channel.send(count: 997, seed: 1)
        }
        #expect(channel.sender.counters.load(.rejected) == 1)
        #expect(channel.producerIndex(.normal) == 0)
        #expect(try channel.send(count: 4, seed: 1) == .sent, "a rejection does not fail the sender")
    }

    @Test func aMessageOverTheReceiveLimitStaysQueued() throws {
        let channel = try TestChannel(.small)
        try channel.send(count: 100, seed: 1)
        #expect(throws: ChannelError.bufferTooSmall(needed: 100, available: 99)) {
            try channel.receive(sizeLimit: 99)
        }
        let message = try #require(try channel.receive(sizeLimit: 100))
        #expect(message.bytes == pattern(100, seed: 1))
        #expect(channel.receiver.error == nil)
    }
}
