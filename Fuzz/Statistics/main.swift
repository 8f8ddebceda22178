// Fuzzes the statistics text parser (`StatisticsReport(parsing:)`, the text
// of /proc/archangel/comm and of the host's statistics reply) and its two
// renderers. Invariants:
//  - a refusal names a line that exists (1 ... number of lines);
//  - whatever parses renders to text that parses back to the same report,
//    and rendering that again gives the same text (parse(render(x)) == x);
//  - the Prometheus rendering has one sample line per channel count, limit,
//    channel health and (metric, channel, direction), every one `name{...} value`;
//  - `rates(since:seconds:)` gives two rows per channel, fills within 0...1.
@testable import ArchangelCore
import FuzzSupport

func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let text = String(decoding: input.rest(), as: UTF8.self)
    let lineCount = text.split(separator: "\n", omittingEmptySubsequences: false).count
    let report: StatisticsReport
    do {
        report = try StatisticsReport(parsing: text)
    } catch {
        require(error.line >= 1 && error.line <= max(lineCount, 2), "error line \(error.line) of \(lineCount) lines")
        return 0
    }
    let rendered = report.text
    let again: StatisticsReport
    do { again = try StatisticsReport(parsing: rendered) } catch {
        require(false, "rendered report does not parse: \(error)\n\(rendered)")
        return 0
    }
    require(again == report, "parse(render(x)) != x\n\(rendered)")
    require(again.text == rendered, "render is not stable")

    let prometheus = report.prometheusText
    var samples = 0
    for line in prometheus.split(separator: "\n") where !line.hasPrefix("#") {
        samples += 1
        let parts = line.split(separator: " ")
        require(parts.count == 2 && (Int64(parts[1]) != nil || UInt64(parts[1]) != nil),
                "bad Prometheus sample line '\(line)'")
        require(parts[0].hasPrefix("archangel_"), "bad metric name in '\(line)'")
    }
    let channels = report.channels.count
    require(samples == 2 + channels + StatisticsReport.metrics.count * 2 * channels,
            "\(samples) Prometheus samples for \(channels) channels")

    let rows = report.rates(since: again, seconds: 1)
    require(rows.count == 2 * channels, "\(rows.count) rate rows for \(channels) channels")
    let uniqueIDs = Set(report.channels.map(\.id)).count == channels
    for row in rows {
        require(row.ringFill >= 0 && row.ringFill <= 1, "ring fill \(row.ringFill)")
        // Against itself every counter's delta is zero (when ids name one channel each).
        require(!uniqueIDs || (row.messagesPerSecond == 0 && row.errors == 0 && row.drops == 0),
                "rates of a report against itself are not zero: \(row)")
    }
    _ = RatesTable.lines(rows, width: Int(size % 200))
    return 0
}

runFuzzer(seeds: {
        var busy = ChannelStatistics(id: 3, health: .failed)
        for (i, key) in busy.toUser.fields.map(\.key).enumerated() { _ = busy.toUser.set(key, UInt64(i) * 1000 + 7) }
        busy.toKernel.messagesSent = .max
        busy.toKernel.ringSize = 81920
        busy.toKernel.ringUsed = 4096
        return [
            ("empty-manager", utf8(StatisticsReport(channels: [], maxChannels: 16).text)),
            ("one-channel", utf8(StatisticsReport(channels: [ChannelStatistics(id: 0)], maxChannels: 16).text)),
            ("two-channels", utf8(StatisticsReport(channels: [ChannelStatistics(id: 0), busy], maxChannels: 4).text)),
            // A newer writer's extra key, and empty lines, are accepted.
            ("newer-keys", utf8("archangel-comm 1\nchannels 1/16\n\nchannel 7 active\n  to_user messages_sent=1 future_key=9\n  to_kernel waits=2\n")),
        ]
    }, fuzz)
