import ArchangelBench
import ArgumentParser
import Glibc

/// `archangel bench`: throughput and round trip of the bridge beside a plain C ring.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the bridge against a plain C SPSC ring, in the same run (medians of several runs)."
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
    @Flag(help: "Print the measurements as a JSON array.")
    var json = false

    func validate() throws {
        guard payload >= 8, payload <= 1024 else { throw ValidationError("--payload must be 8...1024") }
        guard messages > 0, roundTrips > 0, runs > 0, batch > 0 else {
            throw ValidationError("--messages, --round-trips, --runs and --batch must be positive")
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
        let results = try BenchSuite.run(options) { step in
            if !json { printError("  running \(step)...") }
        }
        print(json ? BenchSuite.json(results) : BenchSuite.report(results))
    }
}
