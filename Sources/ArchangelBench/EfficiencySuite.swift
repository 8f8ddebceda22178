import Archangel
import ArchangelSystem
import Glibc
import Logging

/// `archangel bench --suite efficiency`: what a channel costs at typical
/// event rates (docs/benchmarks.md#the-efficiency-suite). A paced sender and
/// a blocking receiver exchange 64-byte messages, every wait preset at every
/// rate, for `runs` rounds; each figure is the median over rounds.
public enum EfficiencySuite {
    /// What to run.
    public struct Options: Sendable {
        /// `userspace` (host here, sender and receiver processes), `in-process` (two threads) or `kernel`.
        public var backend = "userspace"
        /// Offered rates, messages per second.
        public var rates = [1_000, 10_000, 100_000, 1_000_000]
        /// Wait presets, by `WaitPolicy.named`.
        public var presets = WaitPolicy.presetNames
        /// Length of each cell's sending phase (and of its pacing-only phase), seconds.
        public var seconds = 3.0
        /// Length of the idle phase after each preset's last rate, seconds (0: none).
        public var idleSeconds = 10.0
        /// Rounds; medians are reported.
        public var runs = 3
        /// Pins the sender to CPU 0 and the receiver to CPU 1 (false: the
        /// scheduler places them, as it does for a deployed bridge). On these
        /// virtual machines a wake-up across CPUs costs the woken side about
        /// three times a wake-up the scheduler keeps on one CPU (docs/benchmarks.md).
        public var pinned = false
        /// The sender's shortest sleep, nanoseconds: above about 20k msgs/s it
        /// sends what is due in bursts at most this far apart instead of
        /// sleeping once per message, so that pacing does not burn the core the
        /// figures are read against.
        public var paceQuantum: UInt64 = 50_000
        /// The `archangel` executable whose hidden `bench-efficiency-role` runs the roles.
        public var executable = ChildProcess.currentExecutable

        /// Creates the defaults.
        public init() {}
    }

    /// One preset at one rate, reduced to medians over rounds.
    public struct Cell: Sendable {
        /// The preset's name.
        public var preset: String
        /// The offered rate, messages per second.
        public var rate: Int
        /// Derived figures (see ``derive(_:)``), medians over rounds.
        public var figures: [String: Double]
        /// Rounds the medians are taken over.
        public var runs: Int
    }

    /// Runs the suite; `progress` gets one line per cell.
    ///
    /// - Throws: ``EfficiencyError`` when a role fails or the backend is unavailable.
    public static func run(_ options: Options, progress: (String) -> Void = { _ in }) throws -> [Cell] {
        let runner: any EfficiencyCellRunner
        switch options.backend {
        case "userspace": runner = try UserspaceEfficiencyRunner(options)
        case "in-process": runner = InProcessEfficiencyRunner(options)
        case "kernel":
            guard KernelBackend.isAvailable() else { throw EfficiencyError.kernelUnavailable }
            runner = KernelEfficiencyRunner(options)
        default: throw EfficiencyError.badOption("unknown backend '\(options.backend)'")
        }
        var samples: [String: [[String: Double]]] = [:]
        for round in 1...options.runs {
            for preset in options.presets {
                guard let policy = WaitPolicy.named(preset) else { throw EfficiencyError.badOption("unknown preset '\(preset)'") }
                for (index, rate) in options.rates.enumerated() {
                    let idle = index == options.rates.count - 1 ? options.idleSeconds : 0
                    progress("round \(round) of \(options.runs): \(preset) at \(rate) msgs/s"
                             + (idle > 0 ? ", then \(idle) s idle" : ""))
                    let raw = try runner.cell(preset: preset, policy: policy, rate: rate, idleSeconds: idle)
                    try check(raw, preset: preset, rate: rate)
                    samples["\(preset)/\(rate)", default: []].append(derive(raw))
                }
            }
        }
        var cells: [Cell] = []
        for preset in options.presets {
            for rate in options.rates {
                let all = samples["\(preset)/\(rate)"] ?? []
                var medians: [String: Double] = [:]
                for key in Set(all.flatMap(\.keys)) {
                    medians[key] = Percentile.median(all.compactMap { $0[key] })
                }
                cells.append(Cell(preset: preset, rate: rate, figures: medians, runs: all.count))
            }
        }
        return cells
    }

    /// Fails on an inconsistent count: a lost or invented message, never a timing.
    static func check(_ raw: EfficiencyFigures, preset: String, rate: Int) throws {
        guard raw["delivered"] == raw["sent"], raw["sent"] <= raw["offered"] else {
            throw EfficiencyError.inconsistent("\(preset) at \(rate) msgs/s: offered \(Int(raw["offered"])), "
                + "sent \(Int(raw["sent"])), delivered \(Int(raw["delivered"]))")
        }
    }

    /// The reported figures of one round of one cell, from the roles' raw counts.
    static func derive(_ raw: EfficiencyFigures) -> [String: Double] {
        func pct(_ cpu: String, _ window: String) -> Double { raw[window] > 0 ? raw[cpu] / raw[window] * 100 : 0 }
        let window = raw["receiver_window_ns"] / 1e9
        let delivered = max(raw["delivered"], 1)
        var out: [String: Double] = [
            "offered": raw["offered"], "sent": raw["sent"], "delivered": raw["delivered"],
            "delivered_ratio": raw["offered"] > 0 ? raw["delivered"] / raw["offered"] : 0,
            "delivered_per_second": raw["sender_window_ns"] > 0 ? raw["delivered"] / (raw["sender_window_ns"] / 1e9) : 0,
            "receiver_cpu_percent": pct("receiver_cpu_ns", "receiver_window_ns"),
            "sender_cpu_percent": pct("sender_cpu_ns", "sender_window_ns"),
            "pacing_cpu_percent": pct("pacing_cpu_ns", "pacing_window_ns"),
            "receiver_wakeups_per_second": window > 0 ? raw["receiver_sleeps"] / window : 0,
            "receiver_switches_per_second": window > 0 ? raw["receiver_voluntary_switches"] / window : 0,
            "sender_syscalls_per_message": raw["notify_sent"] / delivered,
            "receiver_syscalls_per_message": 2 * raw["receiver_sleeps"] / delivered,
            "notify_coalesced_per_message": raw["notify_coalesced"] / delivered,
            "latency_p50_ns": raw["latency_p50_ns"], "latency_p99_ns": raw["latency_p99_ns"],
            "latency_p999_ns": raw["latency_p999_ns"], "latency_max_ns": raw["latency_max_ns"],
            "negative_latencies": raw["negative_latencies"],
        ]
        out["sender_overhead_percent"] = out["sender_cpu_percent"]! - out["pacing_cpu_percent"]!
        if raw.values["idle_window_ns"] != nil {
            let idle = raw["idle_window_ns"] / 1e9
            out["idle_wakeups_per_second"] = idle > 0 ? raw["idle_wakeups"] / idle : 0
            out["idle_switches_per_second"] = idle > 0 ? raw["idle_voluntary_switches"] / idle : 0
            out["idle_cpu_percent"] = pct("idle_cpu_ns", "idle_window_ns")
        }
        return out
    }
}

/// Why the efficiency suite could not run or stopped.
public enum EfficiencyError: Error, CustomStringConvertible {
    /// `--backend kernel` without `/dev/archangel`.
    case kernelUnavailable
    /// An option the suite cannot use.
    case badOption(String)
    /// A role process failed or said something unexpected.
    case role(String)
    /// Counts that do not add up (a message lost or delivered twice).
    case inconsistent(String)

    /// What went wrong, for the user.
    public var description: String {
        switch self {
        case .kernelUnavailable:
            "--backend kernel needs the archangel module (/dev/archangel is absent); it runs in the VM (scripts/kernel-test)"
        case .badOption(let what): "efficiency suite: \(what)"
        case .role(let what): "efficiency suite: a role failed: \(what)"
        case .inconsistent(let what): "efficiency suite: inconsistent counts: \(what)"
        }
    }
}

/// Runs one cell (one preset at one rate) of the suite on one backend.
protocol EfficiencyCellRunner {
    /// The sender's and the receiver's raw figures of one cell, merged.
    func cell(preset: String, policy: WaitPolicy, rate: Int, idleSeconds: Double) throws -> EfficiencyFigures
}

extension EfficiencyCellRunner {
    /// How long the receiver waits before an idle phase: a timed-polling
    /// phase ends at its first empty window, and a trailing edge fires
    /// within one window; three windows and 20 ms cover both.
    func settle(_ policy: WaitPolicy) -> Duration {
        .nanoseconds(Int64(3 * policy.windowNanoseconds + 20_000_000))
    }
}
