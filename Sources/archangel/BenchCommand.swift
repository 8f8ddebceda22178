import ArchangelBench
import ArgumentParser
import Archangel
import Glibc

/// `archangel bench`: throughput and round trip of the bridge beside a plain C ring
/// (`--backend in-process`), or beside cross-process baselines: a Unix socket, a pipe,
/// the plain ring in shared memory and an eventfd ping-pong (`--backend userspace`).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the bridge against its baselines in the same run (medians of several runs).",
        discussion: """
            in-process: the bridge against a plain C SPSC ring between two threads.
            userspace: baselines between two processes (Unix socket, pipe, the plain ring in \
            memfd shared memory, an eventfd ping-pong) and the bridge's cross-process figures, \
            each read against its baseline (docs/benchmarks.md).
            """
    )

    @OptionGroup var backendOption: BackendOption
    @Option(help: "Payload bytes per message.")
    var payload = 64
    @Option(help: "Messages per throughput run.")
    var messages = 2_000_000
    @Option(name: .customLong("round-trips"), help: "Round trips per latency run.")
    var roundTrips = 100_000
    @Option(help: "Runs per figure; medians are reported.")
    var runs = 5
    @Option(help: "Messages per publication in the batched throughput figure.")
    var batch = 32
    @Option(name: .customLong("blocking-round-trips"),
            help: "Round trips per blocking-latency run (--backend userspace).")
    var blockingRoundTrips = 20_000
    @Flag(help: "Print the measurements as a JSON array (the efficiency suite: one JSON document).")
    var json = false
    @Option(help: "Suite: the default ratios against baselines, or `efficiency` (docs/benchmarks.md#the-efficiency-suite).")
    var suite: String?
    @Option(help: "Efficiency suite: offered rates, msgs/s, comma-separated.")
    var rates = "1000,10000,100000,1000000"
    @Option(help: "Efficiency suite: wait presets, comma-separated.")
    var presets = WaitPolicy.presetNames.joined(separator: ",")
    @Option(help: "Efficiency suite: seconds per cell (sending; pacing alone takes as long again).")
    var seconds = 3.0
    @Option(name: .customLong("idle-seconds"), help: "Efficiency suite: idle phase after each preset's last rate, seconds.")
    var idleSeconds = 10.0
    @Option(help: "Also write the figures to this HTML file, with latency CDF and histogram charts (SVG) of each round trip beside its baseline.")
    var report: String?
    @Flag(help: "Efficiency suite: pin the sender and the receiver to different CPUs (default: the scheduler places them; a cross-CPU wake-up costs about 3x a same-CPU one in these VMs, docs/efficiency.md).")
    var pin = false
    @Option(name: .customLong("pace-quantum-us"),
            help: "Efficiency suite: the sender's shortest sleep, µs (messages due within it leave in one burst; 0: one sleep per message).")
    var paceQuantumMicroseconds = 50.0

    func validate() throws {
        if suite != nil {
            guard report == nil else { throw ValidationError("--report draws the default suite; the efficiency suite has --json") }
            guard seconds > 0, idleSeconds >= 0, runs > 0 else {
                throw ValidationError("--seconds and --runs must be positive, --idle-seconds not negative")
            }
            return
        }
        guard payload >= 8, payload <= 1024 else { throw ValidationError("--payload must be 8...1024") }
        guard messages > 0, roundTrips > 0, runs > 0, batch > 0, blockingRoundTrips > 0 else {
            throw ValidationError(
                "--messages, --round-trips, --blocking-round-trips, --runs and --batch must be positive")
        }
    }

    func run() throws {
        if let suite {
            guard suite == "efficiency" else { throw ValidationError("--suite takes `efficiency`") }
            return try runEfficiency()
        }
        var options = BenchSuite.Options()
        options.backend = backendOption.backend
        options.payload = payload
        options.messages = messages
        options.roundTrips = roundTrips
        options.runs = runs
        options.batch = batch
        options.blockingRoundTrips = blockingRoundTrips
        // The bridge's cross-process figures: this process hosts, a spawned
        // `archangel bench-peer` attaches through the host's socket.
        if options.backend == "userspace" {
            options.crossProcessBridge = { try UserspaceBridgeBenchmark(options: $0) }
        }
        let results = try BenchSuite.run(options) { step in
            if !json { printError("  running \(step)...") }
        }
        let comparisons = BenchSuite.comparisons(for: options.backend)
        print(json ? BenchSuite.json(results, comparisons: comparisons)
                   : BenchSuite.report(results, comparisons: comparisons))
        if let report {
            let html = BenchHTMLReport.render(results, comparisons: comparisons,
                                              title: "archangel bench, backend \(options.backend), \(payload)-byte payloads")
            guard let file = fopen(report, "w") else {
                printError("archangel bench: error: cannot write \(report): \(String(cString: strerror(errno)))")
                throw ExitCode(74)
            }
            fputs(html, file)
            fclose(file)
            if !json { printError("  wrote \(report)") }
        }
    }
}

extension BenchCommand {
    /// `--suite efficiency`: every preset at every rate, medians of `--runs` rounds (3 unless given).
    func runEfficiency() throws {
        var options = EfficiencySuite.Options()
        options.backend = backendOption.backend == "auto" ? "userspace" : backendOption.backend
        let rateList = rates.split(separator: ",").compactMap { Int(String($0.filter { $0 != " " })) }
        guard !rateList.isEmpty, rateList.allSatisfy({ $0 > 0 && $0 <= 10_000_000 }) else {
            throw ValidationError("--rates takes positive rates up to 10000000, comma-separated")
        }
        options.rates = rateList
        options.presets = presets.split(separator: ",").map(String.init)
        for preset in options.presets where WaitPolicy.named(preset) == nil {
            throw ValidationError("unknown preset '\(preset)'; use: " + WaitPolicy.presetNames.joined(separator: ", "))
        }
        options.seconds = seconds
        options.idleSeconds = idleSeconds
        guard paceQuantumMicroseconds >= 0, paceQuantumMicroseconds <= 1_000_000 else {
            throw ValidationError("--pace-quantum-us takes 0...1000000")
        }
        options.pinned = pin
        options.paceQuantum = UInt64(paceQuantumMicroseconds * 1000)
        options.runs = CommandLine.arguments.contains("--runs") ? runs : 3
        do {
            let cells = try EfficiencySuite.run(options) { step in
                if !json { printError("  \(step)...") }
            }
            print(json ? EfficiencyReport.json(cells, options: options)
                       : EfficiencyReport.table(cells, options: options))
        } catch let error as EfficiencyError {
            printError("error: \(error)")
            throw ExitCode.failure
        }
    }
}
