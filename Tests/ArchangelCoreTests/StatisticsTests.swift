// Counters kept by senders and receivers, wake-up accounting, and the
// statistics text format.
import ArchangelCore
import Testing

@Suite struct StatisticsTests {
    // MARK: - Counters

    @Test func aNewCounterBlockIsZeroAndAddsAndSets() {
        let block = CounterBlock.allocate()
        defer { block.deallocate() }
        #expect(Counter.allCases.allSatisfy { block.load($0) == 0 })
        block.add(.messagesSent)
        block.add(.bytesSent, 40)
        block.add(.bytesSent, 2)
        block.set(.poolBuffersInUse, 7)
        block.set(.poolBuffersInUse, 3)
        #expect(block.load(.messagesSent) == 1)
        #expect(block.load(.bytesSent) == 42)
        #expect(block.load(.poolBuffersInUse) == 3)
        #expect(block.load(.messagesReceived) == 0)
    }

    @Test func countersTrackMessagesBytesAndPoolTransfersOnBothSides() throws {
        let channel = try TestChannel(.small)
        for (count, priority) in [(10, MessagePriority.normal), (20, .high), (0, .low), (500, .critical)] {
            #expect(try channel.send(count: count, seed: 1, priority: priority) == .sent)
        }
        let sender = channel.sender.counters
        #expect(sender.load(.messagesSent) == 4)
        #expect(sender.load(.bytesSent) == 530)
        #expect(sender.load(.poolTransfers) == 1)
        #expect(sender.load(.poolBuffersInUse) == 2)
        #expect(channel.receiver.counters.load(.messagesReceived) == 0)

        #expect(try channel.drain().count == 4)
        let receiver = channel.receiver.counters
        #expect(receiver.load(.messagesReceived) == 4)
        #expect(receiver.load(.bytesReceived) == 530)
        #expect(receiver.load(.poolTransfers) == 1)
        for counter in [Counter.errors, .rejected, .queueFull, .copyFallbacks] {
            #expect(sender.load(counter) == 0, "\(counter)")
            #expect(receiver.load(counter) == 0, "\(counter)")
        }
    }

    @Test func everyRefusedSendOnAFullRingCountsOneQueueFull() throws {
        let channel = try TestChannel(.small)
        for i in 0..<128 { try channel.send(count: 4, seed: UInt64(i)) }
        #expect(channel.sender.counters.load(.queueFull) == 0)
        for _ in 0..<3 { #expect(try channel.send(count: 4, seed: 0) != .sent) }
        #expect(channel.sender.counters.load(.queueFull) == 3)
        #expect(channel.sender.counters.load(.messagesSent) == 128)
        #expect(channel.sender.counters.load(.errors) == 0)
    }

    @Test func theReceiverRecordsTheLargestBacklogPerLane() throws {
        let channel = try TestChannel(.small)
        for i in 0..<3 { try channel.send(count: 4, seed: UInt64(i)) }
        try channel.send(count: 36, seed: 9, priority: .high)
        _ = try channel.drain()
        try channel.send(count: 4, seed: 0)
        _ = try channel.drain()
        #expect(channel.receiver.counters.load(.normalHighWater) == 96)
        #expect(channel.receiver.counters.load(.expressHighWater) == 64)
    }

    @Test func ringUsedNowCountsPublishedUnreleasedBytes() throws {
        let channel = try TestChannel(.small)
        #expect(channel.sender.ringSize == 8192)
        #expect(channel.sender.ringUsedNow() == 0)
        try channel.send(count: 4, seed: 0)
        try channel.send(count: 4, seed: 0, priority: .critical)
        #expect(channel.sender.ringUsedNow() == 64)
        _ = try channel.drain()
        #expect(channel.sender.ringUsedNow() == 0)
    }

    // MARK: - Wake-ups

    @Test func aSendNotifiesOnlyAReceiverThatAnnouncedSleep() throws {
        let notifier = CountingNotifier()
        let channel = try TestChannel(.small, senderNotifier: notifier)
        let counters = channel.sender.counters

        try channel.send(count: 4, seed: 1)
        #expect(notifier.count == 0)
        #expect(counters.load(.notificationsSuppressed) == 1)
        #expect(counters.load(.notificationsSent) == 0)

        _ = try channel.drain()
        #expect(try channel.receiver.prepareToSleep() == true)
        #expect(channel.receiver.counters.load(.waits) == 1)
        for lane in Lane.allCases { #expect(channel.load32(channel.ring(lane).needWakeup) & 1 == 1) }

        try channel.send(count: 4, seed: 2)
        #expect(notifier.count == 1)
        #expect(counters.load(.notificationsSent) == 1)
        // One signal covers the sleep on both lanes: the express lane's word of
        // the same sleep draws no second one (docs/efficiency.md).
        try channel.send(count: 4, seed: 3, priority: .high)
        #expect(notifier.count == 1)

        channel.receiver.finishSleep()
        try channel.send(count: 4, seed: 4)
        #expect(notifier.count == 1)
        #expect(counters.load(.notificationsSent) == 1)
        #expect(counters.load(.notificationsSuppressed) == 3)
    }

    @Test func prepareToSleepWithDataWaitingSaysDoNotSleepAndClearsTheFlags() throws {
        let notifier = CountingNotifier()
        let channel = try TestChannel(.small, senderNotifier: notifier)
        try channel.send(count: 4, seed: 1, priority: .critical)
        #expect(try channel.receiver.prepareToSleep() == false)
        #expect(channel.receiver.counters.load(.waits) == 0)
        for lane in Lane.allCases { #expect(channel.load32(channel.ring(lane).needWakeup) & 1 == 0) }
        try channel.send(count: 4, seed: 2)
        #expect(notifier.count == 0)
    }

    @Test func aDeferredBatchMakesOneNotificationDecision() throws {
        let notifier = CountingNotifier()
        let channel = try TestChannel(.small, senderNotifier: notifier)
        #expect(try channel.receiver.prepareToSleep())
        for i in 0..<5 { try channel.send(count: 4, seed: UInt64(i), publish: false) }
        #expect(notifier.count == 0)
        channel.sender.publish()
        #expect(notifier.count == 1)
        #expect(channel.sender.counters.load(.notificationsSent) == 1)
        #expect(channel.sender.counters.load(.notificationsSuppressed) == 0)
        #expect(channel.sender.counters.load(.messagesSent) == 5)
    }

    @Test func publishingNothingCountsASuppressionAndSignalsNobody() throws {
        // docs/statistics.md: notify_suppressed counts publish() calls that signalled
        // nothing, "calls with nothing new to publish count too".
        let notifier = CountingNotifier()
        let channel = try TestChannel(.small, senderNotifier: notifier)
        #expect(try channel.receiver.prepareToSleep())
        channel.sender.publish()
        channel.sender.publish()
        #expect(notifier.count == 0, "nothing new: a sleeping receiver is not woken")
        #expect(channel.sender.counters.load(.notificationsSuppressed) == 0, "only publications that carry records count")
        #expect(channel.sender.counters.load(.notificationsSent) == 0)
        #expect(channel.producerIndex(.normal) == 0)
    }

    @Test func theReceiverWakesASenderWaitingForRingSpace() throws {
        let notifier = CountingNotifier()
        let channel = try TestChannel(.small, receiverNotifier: notifier)
        for i in 0..<128 { try channel.send(count: 4, seed: UInt64(i)) }
        let block = SendBlock.ringFull(lane: .normal, length: 32)
        #expect(try channel.send(count: 4, seed: 0) == .wouldBlock(block))
        #expect(try channel.sender.prepareToWait(for: block) == true)
        // Space is released a quarter ring at a time: the 32nd message wakes the sender.
        for _ in 0..<31 { _ = try channel.receive() }
        #expect(notifier.count == 0)
        _ = try channel.receive()
        #expect(notifier.count == 1)
        #expect(channel.receiver.counters.load(.notificationsSent) == 1)
        channel.sender.finishWait(for: block)
        #expect(channel.load32(channel.ring(.normal).needSpace) & 1 == 0)
        #expect(try channel.send(count: 4, seed: 0) == .sent)
    }

    @Test func theReceiverWakesASenderWaitingForPoolBuffers() throws {
        let notifier = CountingNotifier()
        let channel = try TestChannel(.small, receiverNotifier: notifier)
        for i in 0..<8 { try channel.send(count: 200, seed: UInt64(i)) }
        let outcome = try channel.send(count: 1500, seed: 9)
        #expect(outcome == .wouldBlock(.poolEmpty(buffers: 6)))
        guard case .wouldBlock(let block) = outcome else { return }
        #expect(try channel.sender.prepareToWait(for: block) == true)
        #expect(channel.sender.counters.load(.waits) == 1)
        _ = try channel.receive()
        #expect(notifier.count == 1, "returning a buffer wakes the sleeping sender")
        channel.sender.finishWait(for: block)
        for _ in 0..<7 { _ = try channel.receive() }
        #expect(notifier.count == 1, "the sender no longer sleeps")
        #expect(try channel.send(count: 1500, seed: 9) == .sent)
    }

    // MARK: - The text format

    static func figures(_ seed: UInt64) -> DirectionStatistics {
        var figures = DirectionStatistics()
        figures.messagesSent = seed
        figures.bytesSent = seed * 64
        figures.messagesReceived = seed - 1
        figures.bytesReceived = seed * 63
        figures.rejected = 1
        figures.errors = 2
        figures.queueFull = 3
        figures.ringUsed = 4
        figures.ringSize = 81920
        figures.ringHighWater = 5
        figures.poolTransfers = 6
        figures.copyFallbacks = 7
        figures.poolInUse = 8
        figures.poolSize = 64
        figures.notificationsSent = 9
        figures.notificationsSuppressed = 10
        figures.waits = .max
        return figures
    }

    static let sample = StatisticsReport(channels: [
        ChannelStatistics(id: 0, health: .active, toUser: figures(10), toKernel: figures(20)),
        ChannelStatistics(id: 15, health: .failed, toUser: figures(30), toKernel: DirectionStatistics()),
    ], maxChannels: 16)

    @Test func theReportTextStartsWithTheVersionAndChannelCount() {
        let lines = Self.sample.text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 9)
        #expect(lines[0] == "archangel-comm 1")
        #expect(lines[1] == "channels 2/16")
        #expect(lines[2] == "channel 0 active")
        #expect(lines[3].hasPrefix("  to_user messages_sent=10 bytes_sent=640 messages_received=9 "))
        #expect(lines[3].hasSuffix(" notify_sent=9 notify_suppressed=10 waits=18446744073709551615 notify_coalesced=0 timed_waits=0"))
        #expect(lines[4].hasPrefix("  to_kernel messages_sent=20 "))
        #expect(lines[5] == "channel 15 failed")
        #expect(lines[8].isEmpty, "the text ends with a newline")
    }

    @Test func everyFigureHasItsOwnKey() {
        let keys = DirectionStatistics().fields.map(\.key)
        #expect(keys.count == 19)
        #expect(Set(keys).count == keys.count)
        #expect(Self.figures(10).fields.map(\.value).contains(.max))
    }

    @Test(arguments: [
        sample,
        StatisticsReport(channels: [], maxChannels: 0),
        StatisticsReport(channels: [ChannelStatistics(id: .max)], maxChannels: 1),
    ])
    func theReportTextParsesBackToTheSameReport(report: StatisticsReport) throws {
        let parsed = try StatisticsReport(parsing: report.text)
        #expect(parsed == report)
        #expect(parsed.text == report.text)
    }

    @Test func unknownKeysAreIgnoredAndMissingOnesAreZero() throws {
        let text = "archangel-comm 1\nchannels 1/4\nchannel 3 active\n  to_user messages_sent=5 future_key=99\n"
        let report = try StatisticsReport(parsing: text)
        #expect(report.maxChannels == 4)
        #expect(report.channels.count == 1)
        #expect(report.channels[0].id == 3)
        #expect(report.channels[0].toUser.messagesSent == 5)
        #expect(report.channels[0].toUser.bytesSent == 0)
        #expect(report.channels[0].toKernel == DirectionStatistics())
    }

    static let header = "archangel-comm 1\nchannels 1/16\n"

    @Test(arguments: [
        ("", 1, ""),
        ("hello\n", 1, ""),
        ("archangel-comm 1\n", 2, ""),
        ("archangel-comm 1\nchannels 2\n", 2, ""),
        ("archangel-comm 1\nchannels 2/x\n", 2, ""),
        (header + "channel x active\n", 3, "channel x active"),
        (header + "channel 0 sleeping\n", 3, "channel 0 sleeping"),
        (header + "channel 0\n", 3, "channel 0"),
        (header + "  to_user messages_sent=1\n", 3, "  to_user messages_sent=1"),
        (header + "channel 0 active\n  to_user messages_sent=abc\n", 4, "  to_user messages_sent=abc"),
        (header + "channel 0 active\n  to_user messages_sent\n", 4, "  to_user messages_sent"),
        (header + "channel 0 active\n  to_kernel waits=-1\n", 4, "  to_kernel waits=-1"),
        (header + "channel 0 active\n  to_user waits=1\n  sideways x=1\n", 5, "  sideways x=1"),
    ])
    func aParseErrorNamesTheLineThatDoesNotParse(text: String, line: Int, offending: String) {
        let error = #expect(throws: StatisticsFormatError.self) { try StatisticsReport(parsing: text) }
        #expect(error?.line == line)
        if !offending.isEmpty { #expect(error?.text == offending) }
        #expect(error?.description.contains("line \(line)") == true)
    }

    @Test func parseErrorLineNumbersCountBlankLines() {
        // The offending line is line 4; the blank line 3 must count.
        let text = "archangel-comm 1\nchannels 1/16\n\nchannel 0 bogus\n"
        let error = #expect(throws: StatisticsFormatError.self) { try StatisticsReport(parsing: text) }
        #expect(error?.line == 4)
        #expect(error?.text == "channel 0 bogus")
    }
}

@Suite struct PrometheusTests {
    @Test func everyTextFigureAppearsAsAMetricWithChannelAndDirectionLabels() throws {
        var up = DirectionStatistics()
        up.messagesSent = 12
        up.queueFull = 3
        up.poolInUse = 2
        let report = StatisticsReport(channels: [ChannelStatistics(id: 4, health: .failed, toUser: up)],
                                      maxChannels: 16)
        let text = report.prometheusText
        #expect(text.contains("archangel_messages_sent_total{channel=\"4\",direction=\"to_user\"} 12\n"))
        #expect(text.contains("archangel_queue_full_total{channel=\"4\",direction=\"to_user\"} 3\n"))
        #expect(text.contains("archangel_pool_buffers_in_use{channel=\"4\",direction=\"to_user\"} 2\n"))
        #expect(text.contains("archangel_messages_sent_total{channel=\"4\",direction=\"to_kernel\"} 0\n"))
        #expect(text.contains("archangel_channel_failed{channel=\"4\"} 1\n"))
        #expect(text.contains("archangel_channels_max 16\n"))
        // Every key of the text format has a metric, and every metric a TYPE line.
        for (key, _) in DirectionStatistics().fields {
            #expect(text.contains("direction=\"to_user\"}"), "\(key)")
        }
        let types = text.split(separator: "\n").filter { $0.hasPrefix("# TYPE") }.count
        #expect(types == DirectionStatistics().fields.count + 3)
        // Each sample line is `name{labels} value` with a numeric value.
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            #expect(parts.count == 2 && UInt64(parts[1]) != nil, "\(line)")
        }
    }
}
