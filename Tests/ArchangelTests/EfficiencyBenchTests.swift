// The efficiency suite through its real processes: `archangel bench --suite
// efficiency` hosts, and spawns a paced sender and a receiver process.
// Counts only, never timings (docs/benchmarks.md#the-efficiency-suite).
import ArchangelSystem
import Foundation
import Testing

@Suite struct EfficiencyBenchTests {
    @Test func tinySuiteReportsConsistentCountsAsDocumentedJSON() throws {
        let bench = try ChildProcess(executable: archangelExecutable, arguments: [
            "bench", "--suite", "efficiency", "--backend", "userspace", "--presets", "balanced",
            "--rates", "1000", "--seconds", "1", "--idle-seconds", "1", "--runs", "1", "--json"])
        let output = bench.readAllOutput()
        #expect(bench.wait() == 0)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        #expect(document["suite"] as? String == "efficiency")
        #expect(document["backend"] as? String == "userspace")
        #expect(document["payload_bytes"] as? Int == 64)
        let cells = try #require(document["cells"] as? [[String: Any]])
        #expect(cells.count == 1)
        let cell = try #require(cells.first)
        #expect(cell["preset"] as? String == "balanced")
        #expect(cell["rate"] as? Int == 1000)
        for field in ["receiver_cpu_percent", "sender_cpu_percent", "pacing_cpu_percent", "sender_overhead_percent",
                      "receiver_wakeups_per_second", "receiver_switches_per_second", "sender_syscalls_per_message",
                      "receiver_syscalls_per_message", "latency_p50_ns", "latency_p99_ns", "latency_p999_ns",
                      "latency_max_ns", "idle_wakeups_per_second", "idle_cpu_percent"] {
            #expect(cell[field] is NSNumber, "missing \(field)")
        }
        func number(_ key: String) -> Double { (cell[key] as? NSNumber)?.doubleValue ?? -1 }
        // Every message offered at 1k msgs/s is sent and delivered, none twice.
        #expect(number("offered") == 1000)
        #expect(number("sent") == number("offered"))
        #expect(number("delivered") == number("offered"))
        #expect(number("negative_latencies") == 0)
        #expect(number("latency_p50_ns") > 0)
        #expect(number("latency_p50_ns") <= number("latency_p99_ns"))
        #expect(number("latency_p99_ns") <= number("latency_p999_ns"))
        #expect(number("latency_p999_ns") <= number("latency_max_ns"))
        #expect(number("receiver_wakeups_per_second") >= 0)
        let bars = try #require(document["bars"] as? [[String: Any]])
        #expect(!bars.isEmpty)
        #expect(bars.allSatisfy { ["met", "missed", "not measured"].contains($0["verdict"] as? String ?? "") })
    }
}
