import Archangel
import ArchangelRules
import ArchangelSensors
import ArchangelSystem
import ArgumentParser
import Glibc

/// `archangel engine --rules FILE`: the rules engine on the kernel backend.
struct EngineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Answer the kernel sensors' verdict requests by a rules file, and log each decision.",
        discussion: """
            Reads a rules file (JSON or YAML, by its name's extension; docs/rules.md): exec path globs, \
            parent -> child rules, network CIDR and port rules, W^X memory rules, and the sensors' policies. \
            Creates a channel in the archangel module, attaches archangel_sensors.ko to it (this process is \
            the engine, excluded from tracing), configures the sensors, then answers every AI_REQUEST with \
            the first matching rule's verdict (or the file's default) and logs it: one line of text, or a \
            JSON object with --json. Ctrl-C or SIGTERM stops: the sensors detach, every pending request \
            gets its sensor's default verdict, and a summary goes to standard error. Needs root and both \
            modules loaded. --check only reads and checks the file.
            """
    )

    @Option(help: "The rules file (.json, .yaml or .yml).")
    var rules: String
    @Flag(help: "Check the rules file, print what it says, and exit.")
    var check = false
    @Option(help: "Append the decision log to this file instead of standard output.")
    var log: String?
    @Flag(help: "Log one JSON object per line.")
    var json = false
    @Flag(help: "Log every event too, not only decisions and actions.")
    var events = false
    @Option(help: "Batch the syscall and net sensors' records per CPU into messages of this many bytes (0: one record per message; else 256...65536).")
    var batchBytes: UInt32 = 0
    @Option(help: "Stop after this many requests answered or left (0: until Ctrl-C).")
    var requests: UInt64 = 0
    @Option(help: "How the engine waits for the module's messages: a wait preset (balanced, responsive, efficient, low-latency; docs/efficiency.md).")
    var wait = EngineCommand.defaultWait

    /// The engine's default wait preset (docs/rules.md, "Latency").
    static let defaultWait = "balanced"

    func validate() throws {
        guard batchBytes == 0 || (256...65536).contains(batchBytes) else {
            throw ValidationError("--batch-bytes must be 0 or 256...65536")
        }
        guard WaitPolicy.named(wait) != nil else {
            throw ValidationError("unknown --wait '\(wait)'; use: " + WaitPolicy.presetNames.joined(separator: ", "))
        }
    }

    func run() throws {
        let ruleSet: RuleSet
        do {
            ruleSet = try RuleSet.load(path: rules)
        } catch {
            printError("archangel engine: error: \(error)")
            throw ExitCode(65)  // EX_DATAERR
        }
        if check {
            print(ruleSet.summary)
            return
        }
        guard !ruleSet.sensors.isEmpty else {
            printError("archangel engine: error: \(rules) switches no sensor on (no rules and no sensors section): nothing to do")
            throw ExitCode(65)
        }
        let out: Int32
        if let log {
            out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
            guard out >= 0 else {
                printError("archangel engine: error: cannot open the log \(log): \(String(cString: strerror(errno)))")
                throw ExitCode(73)  // EX_CANTCREAT
            }
        } else {
            out = STDOUT_FILENO
        }
        defer { if out != STDOUT_FILENO { close(out) } }
        let session: SensorSession
        do {
            session = try SensorSession(sensors: ruleSet.sensors, batchBytes: batchBytes,
                                        backend: KernelBackend(waitPolicy: WaitPolicy.named(wait) ?? .balanced))
        } catch let error as ChannelError {
            throw OperatorError(error, backend: ResolvedBackend(kind: .kernel(device: KernelDevice.defaultPath),
                                                                reason: "engine needs the kernel module"))
        } catch {
            printError("archangel engine: error: \(error)")
            throw ExitCode(69)  // EX_UNAVAILABLE
        }
        defer { session.close() }
        CLISignals.install()
        let sensorList = SensorsDevice.Sensor.allCases.compactMap { s in
            ruleSet.sensors[s].map { "\(s.name)(\($0.enabled ? $0.policy.name : "off"))" }
        }
        printError("archangel engine: channel \(session.channel.id), rules \(rules): \(ruleSet.exec.count) exec, "
            + "\(ruleSet.network.count) network, \(ruleSet.memory.count) memory; sensors \(sensorList.joined(separator: " ")); "
            + "Ctrl-C stops")
        var engine = RulesEngine(rules: ruleSet)
        let writer = EngineLog(descriptor: out, json: json)
        var latencies: [UInt64] = []
        var failure: (any Error)?
        do {
            try session.run(&engine, events: events, shouldStop: {
                CLISignals.stopping || (requests > 0 && session.counters.requests >= requests)
            }) { record in
                if case let .decided(_, _, latency) = record { latencies.append(latency) }
                writer.write(record)
            }
        } catch {
            failure = error
        }
        let module = try? session.device.statistics()
        session.close()
        printError(EngineSummary(counters: session.counters, module: module, latencies: latencies).text)
        if let failure {
            printError("archangel engine: error: \(failure)")
            throw ExitCode(1)
        }
    }
}

/// What `engine` prints at exit: its own counts and the module's.
struct EngineSummary {
    var counters: SensorSession.Counters
    var module: SensorsStatistics?
    var latencies: [UInt64]

    var text: String {
        var lines = ["archangel engine: events=\(counters.events) requests=\(counters.requests) answered=\(counters.answered) "
            + "unanswered=\(counters.unanswered) answers_unsent=\(counters.answersUnsent) undecodable=\(counters.undecodable) "
            + "lost_announced=\(counters.lostAnnounced) alerts=\(counters.alerts) kills=\(counters.kills)"]
        if !latencies.isEmpty {
            let sorted = latencies.sorted()
            func us(_ q: Double) -> String { String(format1: Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))]) / 1000) }
            lines.append("archangel engine: event to answer sent: median \(us(0.5)) us, p99 \(us(0.99)) us, max \(us(1)) us (\(sorted.count) answers)")
        }
        if let m = module {
            let mean = m.roundTrips > 0 ? String(format1: Double(m.roundTripNanosecondsTotal) / Double(m.roundTrips) / 1000) : "-"
            lines.append("archangel engine: module: requests=\(m.requests) responses=\(m.responses) timeouts=\(m.timeouts) "
                + "late=\(m.responsesLate) bad=\(m.responsesBad) cache_hits=\(m.cacheHits) exec_killed=\(m.execKilled) "
                + "packets_dropped=\(m.packetsDropped) round_trip_mean_us=\(mean) round_trip_max_us=\(String(format1: Double(m.roundTripNanosecondsMax) / 1000))")
        }
        return lines.joined(separator: "\n")
    }
}
