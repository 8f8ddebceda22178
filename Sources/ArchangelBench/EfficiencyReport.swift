/// The efficiency suite's table, JSON document and bars (issue 9), judged on medians.
public enum EfficiencyReport {
    /// One bar of issue 9 and its verdict.
    public struct Verdict: Sendable {
        /// What is held to the bar, e.g. `balanced 1000 msgs/s receiver CPU <= 1.0%`.
        public var bar: String
        /// The median measured, or nil when the cell was not run.
        public var value: Double?
        /// Whether it met the bar (false when not measured).
        public var met: Bool
    }

    /// Issue 9's bars over the cells that were run.
    public static func verdicts(_ cells: [EfficiencySuite.Cell]) -> [Verdict] {
        func cell(_ preset: String, _ rate: Int) -> EfficiencySuite.Cell? {
            cells.first { $0.preset == preset && $0.rate == rate }
        }
        var out: [Verdict] = []
        func bar(_ preset: String, _ rate: Int, _ key: String, _ limit: Double, _ text: String) {
            let value = cell(preset, rate)?.figures[key]
            out.append(Verdict(bar: "\(preset) \(rate) msgs/s \(text)", value: value, met: value.map { $0 <= limit } ?? false))
        }
        for (rate, cpu) in [(1_000, 1.0), (10_000, 1.5), (100_000, 2.0)] {
            bar("balanced", rate, "receiver_cpu_percent", cpu, "receiver CPU <= \(cpu)%")
            bar("balanced", rate, "latency_p99_ns", 1_200_000, "p99 <= 1.2 ms")
        }
        bar("responsive", 100_000, "receiver_cpu_percent", 7, "receiver CPU <= 7%")
        bar("responsive", 100_000, "latency_p99_ns", 150_000, "p99 <= 150 us")
        bar("efficient", 10_000, "receiver_cpu_percent", 0.5, "receiver CPU <= 0.5%")
        bar("efficient", 100_000, "receiver_cpu_percent", 1.0, "receiver CPU <= 1.0%")
        for rate in [10_000, 100_000] { bar("efficient", rate, "latency_p99_ns", 12_000_000, "p99 <= 12 ms") }
        bar("balanced", 100_000, "sender_syscalls_per_message", 0.01, "sender system calls/msg <= 0.01")
        for c in cells where c.preset != "lowLatency" {
            let over = c.figures["sender_overhead_percent"], receiver = c.figures["receiver_cpu_percent"]
            out.append(Verdict(bar: "\(c.preset) \(c.rate) msgs/s sender overhead <= receiver CPU",
                               value: over, met: over != nil && receiver != nil && over! <= receiver!))
        }
        for c in cells where c.figures["idle_wakeups_per_second"] != nil {
            let w = c.figures["idle_wakeups_per_second"]!, cpu = c.figures["idle_cpu_percent"] ?? 0
            out.append(Verdict(bar: "\(c.preset) idle wake-ups/s == 0", value: w, met: w == 0))
            out.append(Verdict(bar: "\(c.preset) idle CPU <= 0.01%", value: cpu, met: cpu <= 0.01))
        }
        if let top = cells.map(\.rate).max(), top >= 1_000_000,
           let b = cell("balanced", top)?.figures["delivered_per_second"],
           let l = cell("lowLatency", top)?.figures["delivered_per_second"], l > 0 {
            out.append(Verdict(bar: "balanced \(top) msgs/s throughput >= 0.9x lowLatency", value: b / l, met: b / l >= 0.9))
        }
        return out
    }

    /// The table: one row per cell, then the idle phases, then the bars.
    public static func table(_ cells: [EfficiencySuite.Cell], options: EfficiencySuite.Options) -> String {
        func f(_ v: Double?, _ d: Int) -> String { v.map { BenchSuite.format($0, d) } ?? "-" }
        func us(_ v: Double?) -> String { v.map { BenchSuite.format($0 / 1000, 1) } ?? "-" }
        let head = ["preset", "rate", "recv CPU%", "send CPU%", "pacing%", "overhead%", "wakeups/s", "ctxsw/s",
                    "send sc/msg", "recv sc/msg", "p50 us", "p99 us", "p99.9 us", "max us", "delivered/offered"]
        let widths = [11, 8, 10, 10, 9, 10, 10, 9, 12, 12, 9, 9, 10, 10, 19]
        func row(_ fields: [String]) -> String {
            zip(fields, widths).enumerated().map { i, p in BenchSuite.pad(p.0, p.1, right: i > 0) }.joined(separator: " ")
        }
        var out = "efficiency suite, backend \(options.backend), 64-byte messages (medians over rounds; CPU in % of one core)\n"
            + "placement: " + (options.pinned ? "pinned, sender and receiver on different CPUs" : "the scheduler's")
            + "; pacing quantum \(options.paceQuantum / 1000) us\n"
        out += row(head) + "\n"
        for c in cells {
            let x = c.figures
            out += row([c.preset, "\(c.rate)", f(x["receiver_cpu_percent"], 2), f(x["sender_cpu_percent"], 2),
                        f(x["pacing_cpu_percent"], 2), f(x["sender_overhead_percent"], 2),
                        f(x["receiver_wakeups_per_second"], 0), f(x["receiver_switches_per_second"], 0),
                        f(x["sender_syscalls_per_message"], 4), f(x["receiver_syscalls_per_message"], 4),
                        us(x["latency_p50_ns"]), us(x["latency_p99_ns"]), us(x["latency_p999_ns"]),
                        us(x["latency_max_ns"]),
                        "\(Int(x["delivered"] ?? 0))/\(Int(x["offered"] ?? 0))"]) + "\n"
        }
        out += "\nidle (receiver blocked on a quiet channel, after the preset's last rate):\n"
        for c in cells where c.figures["idle_wakeups_per_second"] != nil {
            out += "  " + BenchSuite.pad(c.preset, 11) + "  wake-ups/s " + f(c.figures["idle_wakeups_per_second"], 2)
                + "  ctxsw/s " + f(c.figures["idle_switches_per_second"], 2)
                + "  CPU% " + f(c.figures["idle_cpu_percent"], 4) + "\n"
        }
        out += "\nbars (issue 9, medians):\n"
        for v in verdicts(cells) {
            out += "  BAR " + BenchSuite.pad(v.bar, 62) + " " + BenchSuite.pad(f(v.value, 4), 12, right: true)
                + "  " + (v.value == nil ? "not measured" : v.met ? "met" : "MISSED") + "\n"
        }
        return out
    }

    /// The names of a cell object's figures in the JSON, in print order (docs/benchmarks.md).
    static let cellFields = [
        "offered", "sent", "delivered", "delivered_ratio", "delivered_per_second",
        "receiver_cpu_percent", "sender_cpu_percent", "pacing_cpu_percent", "sender_overhead_percent",
        "receiver_wakeups_per_second", "receiver_switches_per_second",
        "sender_syscalls_per_message", "receiver_syscalls_per_message", "notify_coalesced_per_message",
        "latency_p50_ns", "latency_p99_ns", "latency_p999_ns", "latency_max_ns", "negative_latencies",
        "idle_wakeups_per_second", "idle_switches_per_second", "idle_cpu_percent",
    ]

    /// The JSON document: the options, one object per cell, and the bars.
    public static func json(_ cells: [EfficiencySuite.Cell], options: EfficiencySuite.Options) -> String {
        func number(_ v: Double) -> String {
            v.isFinite ? (v == v.rounded() && abs(v) < 1e15 ? "\(Int(v))" : "\((v * 10000).rounded() / 10000)") : "0"
        }
        func quoted(_ s: String) -> String { "\"" + s.replacingOccurrences("\"", "'") + "\"" }
        var out = "{\n  \"suite\": \"efficiency\", \"backend\": \(quoted(options.backend)), \"payload_bytes\": 64, "
            + "\"seconds\": \(number(options.seconds)), \"idle_seconds\": \(number(options.idleSeconds)), "
            + "\"runs\": \(options.runs), \"pinned\": \(options.pinned), "
            + "\"pace_quantum_ns\": \(options.paceQuantum),\n  \"cells\": [\n"
        out += cells.map { c in
            var fields = ["\"preset\": \(quoted(c.preset))", "\"rate\": \(c.rate)", "\"runs\": \(c.runs)"]
            for key in cellFields { if let v = c.figures[key] { fields.append("\"\(key)\": \(number(v))") } }
            return "    {" + fields.joined(separator: ", ") + "}"
        }.joined(separator: ",\n")
        out += "\n  ],\n  \"bars\": [\n"
        out += verdicts(cells).map { v in
            "    {\"bar\": \(quoted(v.bar)), \"value\": \(v.value.map(number) ?? "null"), "
                + "\"verdict\": \"\(v.value == nil ? "not measured" : v.met ? "met" : "missed")\"}"
        }.joined(separator: ",\n")
        return out + "\n  ]\n}"
    }
}

extension String {
    func replacingOccurrences(_ target: Character, _ replacement: Character) -> String {
        String(map { $0 == target ? replacement : $0 })
    }
}
