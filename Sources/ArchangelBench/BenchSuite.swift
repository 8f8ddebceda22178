import Archangel

/// `archangel bench`: the bridge and its baselines, measured in the same run.
public enum BenchSuite {
    /// What to run.
    public struct Options: Sendable {
        /// Backend name; only `in-process` here until the other backends land.
        public var backend: String = "in-process"
        /// Payload bytes for the small-message figures.
        public var payload: Int = 64
        /// Messages per throughput run.
        public var messages: Int = 2_000_000
        /// Round trips per latency run.
        public var roundTrips: Int = 100_000
        /// Runs per figure; medians are reported.
        public var runs: Int = 5
        /// Messages per publication in the batched throughput figure.
        public var batch: Int = 32

        /// Creates the defaults.
        public init() {}
    }

    /// Runs every benchmark and returns the measurements, baselines first.
    ///
    /// The machine's speed drifts (a noisy 2-vCPU VM can change speed between
    /// seconds), so each round measures the baseline right before the bridge,
    /// and the ratio reported is the median of the per-round ratios.
    public static func run(_ options: Options, progress: (String) -> Void = { _ in }) throws -> [Measurement] {
        let manager = try CommManager(configuration: .init(maxChannels: 1))
        let id = try manager.createChannel()
        defer { manager.destroyChannel(id) }
        let kernel = try manager.channel(id)
        let user = try Channel.open(id, backend: .inProcess(manager))
        // The same bridge with `TimestampPolicy.none`: what the header's clock read costs.
        let untimedManager = try CommManager(configuration: .init(maxChannels: 1, timestamps: .none))
        let untimedID = try untimedManager.createChannel()
        defer { untimedManager.destroyChannel(untimedID) }
        let untimedKernel = try untimedManager.channel(untimedID)
        let untimedUser = try Channel.open(untimedID, backend: .inProcess(untimedManager))
        var rounds: [[Measurement]] = []
        for round in 1...options.runs {
            progress("round \(round) of \(options.runs)")
            var row: [Measurement] = []
            row.append(try PlainRingBaseline.throughput(messages: options.messages, payload: options.payload))
            for batch in [options.batch, 1] {
                var m = try BridgeBenchmarks.throughput(kernel: kernel, user: user, backend: options.backend,
                                                        messages: options.messages, payload: options.payload,
                                                        batch: batch)
                m.ratio = m.messagesPerSecond / row[0].messagesPerSecond
                row.append(m)
            }
            row.append(try PlainRingBaseline.roundTrip(roundTrips: options.roundTrips, payload: options.payload))
            var rtt = try BridgeBenchmarks.roundTrip(kernel: kernel, user: user, backend: options.backend,
                                                     roundTrips: options.roundTrips, payload: options.payload)
            rtt.ratio = rtt.rttP50 / row[3].rttP50
            row.append(rtt)
            var untimed = try BridgeBenchmarks.roundTrip(kernel: untimedKernel, user: untimedUser,
                                                         backend: options.backend, roundTrips: options.roundTrips,
                                                         payload: options.payload)
            untimed.name = "bridge.rtt.untimed"
            untimed.ratio = untimed.rttP50 / row[3].rttP50
            row.append(untimed)
            rounds.append(row)
        }
        // Medians per figure across rounds.
        return rounds[0].indices.map { column in
            var m = rounds[0][column]
            let all = rounds.map { $0[column] }
            m.messagesPerSecond = Percentile.median(all.map(\.messagesPerSecond))
            m.rttP50 = Percentile.median(all.map(\.rttP50))
            m.rttP99 = Percentile.median(all.map(\.rttP99))
            if m.allocationsPerMessage != nil {
                m.allocationsPerMessage = Percentile.median(all.compactMap(\.allocationsPerMessage))
            }
            if m.ratio != nil { m.ratio = Percentile.median(all.compactMap(\.ratio)) }
            m.runs = rounds.count
            return m
        }
    }

    /// A human-readable table with the ratios against the plain ring.
    public static func report(_ results: [Measurement]) -> String {
        var out = "benchmark                      backend     payload      msgs/s   rtt p50   rtt p99  allocs/msg  vs plain ring (median of per-round ratios)\n"
        for m in results {
            var ratio = ""
            if let r = m.ratio {
                ratio = (m.messagesPerSecond > 0 ? "throughput " : "rtt ") + "\(format(r, 2))x"
            }
            out += pad(m.name, 30) + " " + pad(m.backend, 11) + pad("\(m.payloadBytes) B", 8, right: true)
                + pad(m.messagesPerSecond > 0 ? "\(format(m.messagesPerSecond / 1e6, 1))M" : "-", 12, right: true)
                + pad(m.rttP50 > 0 ? "\(Int(m.rttP50)) ns" : "-", 10, right: true)
                + pad(m.rttP99 > 0 ? "\(Int(m.rttP99)) ns" : "-", 10, right: true)
                + pad(m.allocationsPerMessage.map { format($0, 3) } ?? "n/a", 12, right: true)
                + "  " + ratio + "\n"
        }
        return out
    }

    /// The measurements as a JSON array.
    public static func json(_ results: [Measurement]) -> String {
        "[\n" + results.map { "  " + $0.json }.joined(separator: ",\n") + "\n]"
    }

    static func format(_ value: Double, _ decimals: Int) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        var text = "\(rounded)"
        if let dot = text.firstIndex(of: ".") {
            let have = text.distance(from: dot, to: text.endIndex) - 1
            if have < decimals { text += String(repeating: "0", count: decimals - have) }
        }
        return text
    }

    static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - text.count))
        return right ? fill + text : text + fill
    }
}
