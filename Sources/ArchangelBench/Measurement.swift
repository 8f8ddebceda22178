/// One benchmark figure set, as `archangel bench --json` prints it.
public struct Measurement: Sendable {
    /// What was measured, e.g. `bridge.throughput.batched`.
    public var name: String
    /// `in-process`, `userspace`, `kernel`, or `baseline` for comparison transports.
    public var backend: String
    /// Payload bytes per message.
    public var payloadBytes: Int
    /// Median messages per second over the runs (0 when not measured).
    public var messagesPerSecond: Double
    /// Median round trip, nanoseconds (0 when not measured).
    public var rttP50: Double
    /// 99th-percentile round trip, nanoseconds (0 when not measured).
    public var rttP99: Double
    /// Heap allocations per message on the measured path, when counted.
    public var allocationsPerMessage: Double?
    /// Messages (or round trips) per run.
    public var messages: Int
    /// Runs the medians are taken over.
    public var runs: Int
    /// The median over rounds of this figure divided by the plain ring's in the
    /// same round (throughput: higher is better; round trip: lower is better).
    public var ratio: Double? = nil
    /// The round-trip distribution of the round whose p50 is the median:
    /// 1,001 quantiles (0, 0.1%, ..., 100%) in nanoseconds; empty for
    /// throughput figures. `archangel bench --report` draws it.
    public var quantiles: [Double] = []

    /// The measurement as one JSON object.
    public var json: String {
        var fields = [
            "\"name\": \"\(name)\"", "\"backend\": \"\(backend)\"", "\"payload_bytes\": \(payloadBytes)",
            "\"messages_per_second\": \(Int(messagesPerSecond.rounded()))",
            "\"rtt_p50_ns\": \(Int(rttP50.rounded()))", "\"rtt_p99_ns\": \(Int(rttP99.rounded()))",
            "\"messages\": \(messages)", "\"runs\": \(runs)",
        ]
        if let ratio {
            fields.append("\"vs_baseline\": \((ratio * 1000).rounded() / 1000)")
        }
        if let allocationsPerMessage {
            fields.append("\"allocations_per_message\": \(allocationsPerMessage)")
        }
        return "{" + fields.joined(separator: ", ") + "}"
    }
}

/// Order statistics of a sample set.
enum Percentile {
    /// The `p` quantile (0...1) of `values`, nearest rank.
    static func of(_ values: [Double], _ p: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        let rank = min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))
        return sorted[rank]
    }

    static func median(_ values: [Double]) -> Double { of(values, 0.5) }

    /// The 1,001 quantiles 0, 0.001, ..., 1 of round-trip samples in nanoseconds.
    static func quantiles(_ samples: [UInt64]) -> [Double] {
        guard !samples.isEmpty else { return [] }
        let sorted = samples.sorted()
        return (0...1000).map { k in
            Double(sorted[min(sorted.count - 1, Int(Double(k) / 1000 * Double(sorted.count - 1)))])
        }
    }

    /// p50 and p99 of round-trip samples in nanoseconds.
    static func latency(_ samples: [UInt64]) -> (p50: Double, p99: Double) {
        let values = samples.map { Double($0) }
        return (of(values, 0.5), of(values, 0.99))
    }
}
