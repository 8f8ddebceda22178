import Archangel

/// `archangel bench`: the bridge and its baselines, measured in the same run.
public enum BenchSuite {
    /// What to run.
    public struct Options: Sendable {
        /// Backend name: `in-process` (the bridge between two threads against
        /// the plain ring), or `userspace` (the cross-process baselines and the
        /// bridge's figures from ``crossProcessBridge``).
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
        /// Round trips per blocking-latency run (`--backend userspace`): each
        /// costs two sleeps and two wake-ups, tens of microseconds on a VM.
        public var blockingRoundTrips: Int = 20_000
        /// The bridge's side of the cross-process figures (`--backend
        /// userspace`), or nil to measure only the baselines.
        ///
        /// The suite calls it once, before the first round, and keeps the
        /// object it returns until the last round has run (or one failed),
        /// then drops it: set up the host, the channels and the spawned peer
        /// process in the factory, tear them down in `deinit`. Register it
        /// before calling ``BenchSuite/run(_:progress:)``:
        ///
        /// ```swift
        /// options.crossProcessBridge = { try UserspaceBridgeBenchmark(options: $0) }
        /// ```
        public var crossProcessBridge: (@Sendable (Options) throws -> any CrossProcessBridgeBenchmark)? = nil

        /// Creates the defaults.
        public init() {}
    }

    /// The phases of a cross-process round, in the order they run.
    ///
    /// Each phase runs its baselines, then asks the registered
    /// ``CrossProcessBridgeBenchmark`` for its figures of that phase, so that
    /// a bridge figure is measured right after the baselines it is read
    /// against.
    public enum Phase: Sendable, CaseIterable {
        /// Baselines: `pipe.throughput`, `shm_ring.throughput`, `unix_socket.throughput`.
        /// The bridge's: `bridge.throughput` (and any other streaming figure).
        case throughput
        /// Baselines: `unix_socket.rtt`, `pipe.rtt`, `shm_ring.rtt`, all busy-polling.
        /// The bridge's: `bridge.rtt`, `bridge.rtt.64k` (spinning round trips).
        case roundTrip
        /// Baselines: `unix_socket.blocking_rtt`, `pipe.blocking_rtt`, `eventfd.blocking_rtt`.
        /// The bridge's: `bridge.blocking_rtt` (both sides asleep on eventfds).
        case blockingRoundTrip
    }

    /// A bar a figure is held to: its median per-round ratio to a named
    /// figure of the same round.
    public struct Comparison: Sendable {
        /// The limit on the ratio.
        public enum Bar: Sendable {
            /// The figure must be at least this many times the baseline's
            /// rate (throughput: "×N faster").
            case atLeast(Double)
            /// The figure's p50 must be at most this many times the baseline's.
            case atMost(Double)
        }

        /// The figure compared, e.g. `bridge.throughput`.
        public var figure: String
        /// The figure it is divided by, from the same round: a baseline or
        /// another bridge figure (`bridge.rtt.64k` is read against `bridge.rtt`).
        public var baseline: String
        /// The bar, or nil to report the ratio only.
        public var bar: Bar?

        /// Creates a comparison of `figure` against `baseline`.
        public init(figure: String, baseline: String, bar: Bar? = nil) {
            self.figure = figure
            self.baseline = baseline
            self.bar = bar
        }

        /// Whether `ratio` meets the bar (true when there is none).
        public func meets(_ ratio: Double) -> Bool {
            switch bar {
            case let .atLeast(limit): ratio >= limit
            case let .atMost(limit): ratio <= limit
            case nil: true
            }
        }
    }

    /// The bars of `--backend userspace` (issue 3). A figure listed here gets
    /// its `ratio` from the suite, whoever measured it; add a row to compare
    /// a new figure. Throughput figures divide rates (higher is better),
    /// round trips divide p50s (lower is better).
    public static let crossProcessComparisons: [Comparison] = [
        Comparison(figure: "bridge.throughput", baseline: "unix_socket.throughput", bar: .atLeast(40)),
        Comparison(figure: "bridge.rtt", baseline: "shm_ring.rtt", bar: .atMost(1.1)),
        Comparison(figure: "bridge.blocking_rtt", baseline: "eventfd.blocking_rtt", bar: .atMost(1.05)),
        Comparison(figure: "bridge.rtt.64k", baseline: "bridge.rtt", bar: .atMost(1.5)),
        // No bar: how far above a socket shared memory gets at all on this
        // machine, which tells whether the bridge's 40x is within reach.
        Comparison(figure: "shm_ring.throughput", baseline: "unix_socket.throughput"),
    ]

    /// The comparisons that apply to a run on `backend`: the cross-process
    /// bars for `userspace`, none otherwise (the in-process figures carry
    /// their ratio to the plain ring).
    public static func comparisons(for backend: String) -> [Comparison] {
        backend == "userspace" ? crossProcessComparisons : backend == "kernel" ? KernelBenchmarks.comparisons : []
    }

    /// Runs every benchmark and returns the measurements, baselines first.
    ///
    /// The machine's speed drifts (a noisy 2-vCPU VM can change speed between
    /// seconds), so each round measures the baseline right before the bridge,
    /// and the ratio reported is the median of the per-round ratios.
    ///
    /// With `options.backend == "userspace"` it runs the cross-process
    /// figures instead (see ``runCrossProcess(_:progress:)``).
    public static func run(_ options: Options, progress: (String) -> Void = { _ in }) throws -> [Measurement] {
        if options.backend == "userspace" { return try runCrossProcess(options, progress: progress) }
        if options.backend == "kernel" { return try KernelBenchmarks.run(options, progress: progress) }
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
        return medians(rounds)
    }

    /// The cross-process figures of `--backend userspace`: every baseline of
    /// `CrossProcessBaselines`, and the bridge's figures when
    /// `options.crossProcessBridge` is set, in `options.runs` rounds.
    ///
    /// Each round runs the ``Phase``s in order; each phase runs its
    /// baselines, then the bridge's figures of that phase. Then every figure
    /// named in ``crossProcessComparisons`` gets its ratio to its baseline of
    /// the same round, and the figures are reduced to medians over rounds as
    /// in the in-process suite. The bridge must return the same figures
    /// every round.
    static func runCrossProcess(_ options: Options, progress: (String) -> Void) throws -> [Measurement] {
        let bridge = try options.crossProcessBridge?(options)
        if bridge == nil { progress("the baselines only: no bridge benchmark is registered") }
        let comparisons = comparisons(for: options.backend)
        var rounds: [[Measurement]] = []
        for round in 1...options.runs {
            progress("round \(round) of \(options.runs)")
            var row: [Measurement] = []
            for phase in Phase.allCases {
                row += try crossProcessBaselines(phase, options)
                if let bridge { row += try bridge.measure(phase, round: round) }
            }
            applyComparisons(comparisons, to: &row)
            rounds.append(row)
        }
        return medians(rounds)
    }

    /// One phase's baselines, measured once each.
    static func crossProcessBaselines(_ phase: Phase, _ options: Options) throws -> [Measurement] {
        let payload = options.payload
        switch phase {
        case .throughput:
            // Each phase ends with the baseline its bridge figure is held to,
            // so the two run back to back (the VM's speed changes within seconds).
            return [
                try CrossProcessBaselines.streamThroughput(.pipe, messages: options.messages, payload: payload),
                try CrossProcessBaselines.shmRingThroughput(messages: options.messages, payload: payload),
                try CrossProcessBaselines.streamThroughput(.unixSocket, messages: options.messages, payload: payload),
            ]
        case .roundTrip:
            return [
                try CrossProcessBaselines.streamRoundTrip(.unixSocket, spinning: true,
                                                          roundTrips: options.roundTrips, payload: payload),
                try CrossProcessBaselines.streamRoundTrip(.pipe, spinning: true,
                                                          roundTrips: options.roundTrips, payload: payload),
                try CrossProcessBaselines.shmRingRoundTrip(roundTrips: options.roundTrips, payload: payload),
            ]
        case .blockingRoundTrip:
            return [
                try CrossProcessBaselines.streamRoundTrip(.unixSocket, spinning: false,
                                                          roundTrips: options.blockingRoundTrips, payload: payload),
                try CrossProcessBaselines.streamRoundTrip(.pipe, spinning: false,
                                                          roundTrips: options.blockingRoundTrips, payload: payload),
                try CrossProcessBaselines.eventfdBlockingRoundTrip(roundTrips: options.blockingRoundTrips),
            ]
        }
    }

    /// Sets the ratio of every figure in `row` that a comparison names, to
    /// its baseline in the same row: rate over rate for throughput figures,
    /// p50 over p50 for round trips. A missing baseline leaves the ratio nil.
    static func applyComparisons(_ comparisons: [Comparison], to row: inout [Measurement]) {
        for comparison in comparisons {
            guard let index = row.firstIndex(where: { $0.name == comparison.figure }),
                  let baseline = row.first(where: { $0.name == comparison.baseline }) else { continue }
            let m = row[index]
            row[index].ratio = m.messagesPerSecond > 0
                ? m.messagesPerSecond / baseline.messagesPerSecond
                : m.rttP50 / baseline.rttP50
        }
    }

    /// Medians per figure across rounds, figures in the first round's order,
    /// matched by name.
    static func medians(_ rounds: [[Measurement]]) -> [Measurement] {
        guard let first = rounds.first else { return [] }
        return first.map { template in
            var m = template
            let all = rounds.compactMap { row in row.first { $0.name == template.name } }
            m.messagesPerSecond = Percentile.median(all.map(\.messagesPerSecond))
            m.rttP50 = Percentile.median(all.map(\.rttP50))
            m.rttP99 = Percentile.median(all.map(\.rttP99))
            if let middle = all.first(where: { $0.rttP50 == m.rttP50 }) { m.quantiles = middle.quantiles }
            if m.allocationsPerMessage != nil {
                m.allocationsPerMessage = Percentile.median(all.compactMap(\.allocationsPerMessage))
            }
            if m.ratio != nil { m.ratio = Percentile.median(all.compactMap(\.ratio)) }
            m.runs = all.count
            return m
        }
    }

    /// A human-readable table with the ratios against the plain ring, or,
    /// given `comparisons` (see ``comparisons(for:)``), against the baseline
    /// each comparison names, followed by the bars.
    public static func report(_ results: [Measurement], comparisons: [Comparison] = []) -> String {
        if !comparisons.isEmpty { return crossProcessReport(results, comparisons) }
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

    /// The cross-process table: a row per figure, its ratio spelled out
    /// against the baseline it was divided by, then one line per bar.
    static func crossProcessReport(_ results: [Measurement], _ comparisons: [Comparison]) -> String {
        var out = "benchmark                      backend     payload      msgs/s    rtt p50     rtt p99  allocs/msg"
            + "  vs baseline (median of per-round ratios)\n"
        for m in results {
            var ratio = ""
            if let r = m.ratio, let c = comparisons.first(where: { $0.figure == m.name }) {
                ratio = ratioText(r, throughput: m.messagesPerSecond > 0, baseline: c.baseline)
            }
            out += pad(m.name, 30) + " " + pad(m.backend, 11) + pad(byteCount(m.payloadBytes), 8, right: true)
                + pad(m.messagesPerSecond > 0 ? "\(format(m.messagesPerSecond / 1e6, 2))M" : "-", 12, right: true)
                + pad(m.rttP50 > 0 ? "\(Int(m.rttP50)) ns" : "-", 11, right: true)
                + pad(m.rttP99 > 0 ? "\(Int(m.rttP99)) ns" : "-", 12, right: true)
                + pad(m.allocationsPerMessage.map { format($0, 3) } ?? "n/a", 12, right: true)
                + "  " + ratio + "\n"
        }
        out += "\nbars (median of per-round ratios):\n"
        for c in comparisons {
            guard let bar = c.bar else { continue }
            let limit = switch bar {
            case let .atLeast(n): ">= \(format(n, 2))x faster than"
            case let .atMost(n): "<= \(format(n, 2))x"
            }
            var verdict = "not measured"
            if let m = results.first(where: { $0.name == c.figure }), let r = m.ratio {
                verdict = ratioText(r, throughput: m.messagesPerSecond > 0, baseline: nil)
                    + (c.meets(r) ? "  met" : "  MISSED")
            }
            out += "  " + pad(c.figure, 22) + pad(limit + " " + c.baseline, 50) + verdict + "\n"
        }
        return out
    }

    /// `42.31x faster than unix_socket.throughput`, `1.08x shm_ring.rtt`.
    static func ratioText(_ ratio: Double, throughput: Bool, baseline: String?) -> String {
        let suffix = baseline.map { throughput ? " faster than \($0)" : " \($0)" } ?? (throughput ? " faster" : "")
        return "\(format(ratio, 2))x" + suffix
    }

    /// `64 B`, `64 KiB`.
    static func byteCount(_ bytes: Int) -> String {
        bytes >= 1024 && bytes % 1024 == 0 ? "\(bytes / 1024) KiB" : "\(bytes) B"
    }

    /// The measurements as a JSON array. Given `comparisons`, each compared
    /// figure also names the figure its `vs_baseline` divides by, in a last
    /// field `baseline`.
    public static func json(_ results: [Measurement], comparisons: [Comparison] = []) -> String {
        let objects = results.map { m -> String in
            guard m.ratio != nil, let c = comparisons.first(where: { $0.figure == m.name }) else { return m.json }
            // Measurement.json is one object, so it ends with its closing brace.
            return String(m.json.dropLast()) + ", \"baseline\": \"\(c.baseline)\"}"
        }
        return "[\n" + objects.map { "  " + $0 }.joined(separator: ",\n") + "\n]"
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

/// The bridge's side of `archangel bench --backend userspace`, supplied by
/// the userspace backend and registered through
/// ``BenchSuite/Options/crossProcessBridge``.
///
/// The suite creates one for the whole run and calls ``measure(_:round:)``
/// once per phase per round, right after that phase's baselines, on the
/// thread that called ``BenchSuite/run(_:progress:)``. Measure each figure
/// once (`runs: 1`); the suite takes the medians over rounds and computes
/// the ratios of the figures in ``BenchSuite/crossProcessComparisons``
/// (`bridge.throughput`, `bridge.rtt`, `bridge.blocking_rtt`,
/// `bridge.rtt.64k`) against the baselines of the same round. Name the
/// figures exactly so, with `backend: "userspace"`, and return the same
/// figures in every round. Throwing ends the run.
public protocol CrossProcessBridgeBenchmark: AnyObject {
    /// The bridge's figures of `phase`, each measured once, for round
    /// `round` (1-based); an empty array for a phase with none.
    func measure(_ phase: BenchSuite.Phase, round: Int) throws -> [Measurement]
}

/// Public constructors for the figures a ``CrossProcessBridgeBenchmark``
/// returns from another module, computed the way the suite computes its own.
extension Measurement {
    /// A throughput figure measured once: `messages` in `elapsedNanoseconds`.
    public static func throughput(name: String, backend: String, payloadBytes: Int, messages: Int,
                                  elapsedNanoseconds: UInt64,
                                  allocationsPerMessage: Double? = nil) -> Measurement {
        Measurement(name: name, backend: backend, payloadBytes: payloadBytes,
                    messagesPerSecond: Double(messages) / (Double(elapsedNanoseconds) / 1e9), rttP50: 0, rttP99: 0,
                    allocationsPerMessage: allocationsPerMessage, messages: messages, runs: 1)
    }

    /// A round-trip figure measured once from per-round-trip durations in
    /// nanoseconds (warm-up excluded): p50 and p99 by nearest rank, as every
    /// round-trip figure of the suite.
    public static func roundTrip(name: String, backend: String, payloadBytes: Int, samples: [UInt64],
                                 allocationsPerMessage: Double? = nil) -> Measurement {
        let (p50, p99) = Percentile.latency(samples)
        return Measurement(name: name, backend: backend, payloadBytes: payloadBytes, messagesPerSecond: 0,
                           rttP50: p50, rttP99: p99, allocationsPerMessage: allocationsPerMessage,
                           messages: samples.count, runs: 1, quantiles: Percentile.quantiles(samples))
    }
}
