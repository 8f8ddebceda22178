// The statistics through swift-metrics (StatisticsMetricsReporter), and
// `archangel serve --metrics-listen` scraped by a real HTTP client (curl)
// and checked against `archangel stats` (docs/statistics.md#metrics).
import Archangel
import ArchangelMetrics
import ArchangelSystem
import Foundation
import Glibc
import MetricsTestKit
import Testing

@Suite("Metrics", .serialized)
struct MetricsTests {
    @Test("the reporter turns counters into increments and levels into gauges, per channel and direction")
    func reporterReportsThroughSwiftMetrics() throws {
        let metrics = TestMetrics()
        let manager = try CommManager(configuration: .init(maxChannels: 2))
        let id = try manager.createChannel(id: 1)
        let kernel = try manager.channel(id)
        let user = try Channel.open(id, backend: .inProcess(manager))
        let reporter = StatisticsMetricsReporter(manager: manager, factory: metrics)
        for i in 0..<3 { try kernel.send(.syscallEvent, bytes: [UInt8](repeating: UInt8(i), count: 10)) }
        try reporter.update()
        let dims = [("channel", "1"), ("direction", "to_user")]
        let sent = try metrics.expectCounter("archangel_messages_sent_total", dims)
        #expect(sent.totalValue == 3)
        #expect(try metrics.expectCounter("archangel_bytes_sent_total", dims).totalValue == 30)
        #expect(try metrics.expectGauge("archangel_ring_used_bytes", dims).lastValue ?? 0 > 0)
        #expect(try metrics.expectGauge("archangel_channels").lastValue == 1)
        #expect(try metrics.expectGauge("archangel_channel_failed", [("channel", "1")]).lastValue == 0)
        // Two more and a receive: the counters grow by what happened, not by the totals again.
        for _ in 0..<2 { try kernel.send(.syscallEvent, bytes: [1, 2]) }
        _ = try user.receive(timeout: .seconds(1))
        try reporter.update()
        #expect(sent.totalValue == 5)
        #expect(try metrics.expectCounter("archangel_messages_received_total", dims).totalValue == 1)
        #expect(try metrics.expectCounter("archangel_messages_sent_total", [("channel", "1"), ("direction", "to_kernel")])
            .totalValue == 0)
        #expect(reporter.status.updates == 2 && reporter.status.lastError == nil)
        user.close()
    }

    @Test("serve --metrics-listen: /metrics over HTTP matches archangel stats; SIGTERM stops it cleanly")
    func serveExposesPrometheusMetrics() throws {
        guard access("/usr/bin/curl", X_OK) == 0 else {
            Issue.record("curl is missing: scripts/test installs it (apt)")
            return
        }
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let socket = directory.path + "/host.sock"
        let serve = try ChildProcess(executable: archangelExecutable, arguments: [
            "serve", "--socket", socket, "--metrics-listen", "127.0.0.1:0", "--metrics-interval", "0.1",
            "--log-level", "warning"])
        let line = try #require(serve.readLine(), "serve printed no metrics URL")
        let url = line.components(separatedBy: "metrics at ").last ?? line
        #expect(url.hasPrefix("http://127.0.0.1:") && url.hasSuffix("/metrics"))
        func run(_ executable: String, _ arguments: [String]) throws -> (Int32, String) {
            let child = try ChildProcess(executable: executable, arguments: arguments)
            let output = child.readAllOutput()
            return (child.wait(), output)
        }
        #expect(try run(archangelExecutable, ["send", "--socket", socket, "--count", "7", "--size", "100"]).0 == 0)
        #expect(try run(archangelExecutable, ["recv", "--socket", socket, "--count", "4", "--quiet"]).0 == 0)
        usleep(400_000)  // four refreshes of the metrics
        let (status, scraped) = try run("/usr/bin/curl", ["-sS", "--fail", "--max-time", "5", url])
        #expect(status == 0, "curl: \(scraped)")
        let (statsStatus, stats) = try run(archangelExecutable, ["stats", "--socket", socket])
        #expect(statsStatus == 0)
        let report = try StatisticsReport(parsing: stats)
        let channel = try #require(report.channels.first { $0.id == 0 })
        func scrapedValue(_ name: String, _ direction: String) -> Double? {
            let prefix = "\(name){channel=\"0\",direction=\"\(direction)\"} "
            return scraped.split(separator: "\n").first { $0.hasPrefix(prefix) }
                .flatMap { Double($0.dropFirst(prefix.count)) }
        }
        #expect(scrapedValue("archangel_messages_sent_total", "to_user") == Double(channel.toUser.messagesSent))
        #expect(scrapedValue("archangel_messages_sent_total", "to_user") == 7)
        #expect(scrapedValue("archangel_messages_received_total", "to_user") == Double(channel.toUser.messagesReceived))
        #expect(scrapedValue("archangel_bytes_sent_total", "to_user") == Double(channel.toUser.bytesSent))
        #expect(scrapedValue("archangel_pool_buffers", "to_user") == Double(channel.toUser.poolSize))
        #expect(scraped.contains("# TYPE archangel_messages_sent_total counter"))
        #expect(scraped.contains("archangel_channels_max 16"))
        // Only GET /metrics: other paths 404, other methods 405.
        #expect(try run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}",
                                          url.replacingOccurrences(of: "/metrics", with: "/other")]).1 == "404")
        #expect(try run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", url]).1 == "405")
        // The graceful stop.
        serve.signal(SIGTERM)
        #expect(serve.wait(timeout: .seconds(10)) == 0, "serve exits 0 on SIGTERM")
        #expect(access(socket, F_OK) != 0, "the socket is removed")
        let after = try run("/usr/bin/curl", ["-s", "--max-time", "2", url])
        #expect(after.0 != 0, "the endpoint is closed")
    }
}
