// The rates `archangel top` shows, from two statistics reports.
@testable import ArchangelCore
import Testing

@Suite struct StatisticsRatesTests {
    private func report(sent: UInt64, bytes: UInt64, used: UInt64, copies: UInt64 = 0, full: UInt64 = 0,
                        wakeups: UInt64 = 0, id: UInt32 = 3) -> StatisticsReport {
        var channel = ChannelStatistics(id: id, health: .active)
        channel.toUser.messagesSent = sent
        channel.toUser.bytesSent = bytes
        channel.toUser.ringUsed = used
        channel.toUser.ringSize = 1000
        channel.toUser.poolInUse = 5
        channel.toUser.poolSize = 64
        channel.toUser.copyFallbacks = copies
        channel.toUser.queueFull = full
        channel.toUser.notificationsSent = wakeups
        return StatisticsReport(channels: [channel], maxChannels: 16)
    }

    @Test func ratesAreDeltasOverTheIntervalAndLevelsAreNow() {
        let earlier = report(sent: 100, bytes: 6_400, used: 100, copies: 1, full: 2, wakeups: 10)
        let later = report(sent: 2_100, bytes: 134_400, used: 250, copies: 4, full: 2, wakeups: 510)
        let rows = later.rates(since: earlier, seconds: 2)
        #expect(rows.count == 2)
        let row = rows[0]
        #expect(row.channel == 3 && row.direction == "to_user" && row.health == .active)
        #expect(row.messagesPerSecond == 1_000)
        #expect(row.bytesPerSecond == 64_000)
        #expect(row.ringFill == 0.25)
        #expect(row.poolInUse == 5 && row.poolSize == 64)
        #expect(row.copyFallbacks == 3 && row.drops == 0)
        #expect(row.wakeupsPerSecond == 250)
        #expect(rows[1].direction == "to_kernel" && rows[1].messagesPerSecond == 0)
    }

    @Test func aNewOrRecreatedChannelCountsFromZero() {
        let fresh = report(sent: 50, bytes: 500, used: 0)
        #expect(fresh.rates(since: nil, seconds: 1)[0].messagesPerSecond == 50)
        // The counters went down: the channel was destroyed and created again.
        let recreated = fresh.rates(since: report(sent: 9_000, bytes: 90_000, used: 0), seconds: 1)
        #expect(recreated[0].messagesPerSecond == 50)
    }

    @Test func theTableFitsTheWidthAndFormatsUnits() {
        let rows = report(sent: 3_500_000, bytes: 7_000_000_000, used: 1000)
            .rates(since: report(sent: 0, bytes: 0, used: 0), seconds: 1)
        let lines = RatesTable.lines(rows)
        #expect(lines.count == 3)
        #expect(lines[0].hasPrefix("CH  DIRECTION"))
        #expect(lines[1].contains("3.50M") && lines[1].contains("7.00G") && lines[1].contains("100.0"))
        #expect(RatesTable.lines(rows, width: 20).allSatisfy { $0.count <= 20 })
        #expect(RatesTable.human(0) == "0" && RatesTable.human(950) == "950" && RatesTable.human(12_345) == "12.3k")
        #expect(RatesTable.fixed(1.005, 2) == "1.01" || RatesTable.fixed(1.005, 2) == "1.00")
        #expect(RatesTable.fixed(2.5, 1) == "2.5" && RatesTable.fixed(3, 0) == "3")
    }
}
