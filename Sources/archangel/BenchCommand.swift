import ArchangelBench
import ArgumentParser
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
    @Flag(help: "Print the measurements as a JSON array.")
    var json = false

    func validate() throws {
        guard payload >= 8, payload <= 1024 else { throw ValidationError("--payload must be 8...1024") }
        guard messages > 0, roundTrips > 0, runs > 0, batch > 0, blockingRoundTrips > 0 else {
            throw ValidationError(
                "--messages, --round-trips, --blocking-round-trips, --runs and --batch must be positive")
        }
    }

    func run() throws {
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
    }
}
