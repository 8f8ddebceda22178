import Archangel
import ArchangelSystem
import ArgumentParser
import CArchangel
import Glibc
import Logging
import Synchronization

/// `archangel demo`: a sensor (kernel side) and an AI engine (user side) on one channel.
///
/// With the userspace backend (the default) this process is the host, and the
/// sensor and the engine are two more processes attached through its socket;
/// with `--backend in-process` all three are threads of this process.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a synthetic sensor and AI engine over the bridge and report throughput, latency and statistics."
    )

    @OptionGroup var backendOption: BackendOption
    @Option(help: "Events (syscall, network, memory, control, stats) the sensor sends.")
    var events = 200_000
    @Option(help: "AI requests the sensor sends; the engine answers each.")
    var requests = 20_000
    @Option(name: .customLong("large-every"), help: "Every Nth request carries an over-1-KiB payload (0: none).")
    var largeEvery = 10
    @Option(name: .customLong("alone-requests"),
            help: "AI requests sent first, one at a time with nothing else flowing (the unloaded round trip).")
    var aloneRequests = 2_000
    @Option(name: .customLong("sensor-execs"),
            help: "Kernel backend: execs per case of the verdict-loop part on real events (archangel_sensors.ko; 0 skips it).")
    var sensorExecs = 20
    @Option(name: .customLong("engine-wait"),
            help: "Kernel backend: the wait preset of the verdict loop's engine (balanced, responsive, efficient, low-latency).")
    var engineWait = EngineCommand.defaultWait
    @Option(name: .customLong("flood-rate"),
            help: "Messages per second of the flood phase, paced (0: as fast as the channel takes them).")
    var floodRate = 100_000

    func validate() throws {
        guard events >= 0, requests >= 0, aloneRequests >= 0, events + requests > 0, largeEvery >= 0,
              floodRate >= 0, floodRate <= 100_000_000 else {
            throw ValidationError("--events, --requests and --alone-requests must be non-negative, and --events and --requests not both 0")
        }
        guard (0...100_000).contains(sensorExecs) else { throw ValidationError("--sensor-execs must be 0...100000") }
        guard WaitPolicy.named(engineWait) != nil else {
            throw ValidationError("unknown --engine-wait '\(engineWait)'; use: " + WaitPolicy.presetNames.joined(separator: ", "))
        }
    }

    /// How the flood phase is paced, as the report prints it.
    var floodText: String { floodRate > 0 ? "paced at \(floodRate) msgs/s" : "as fast as the channel takes them" }

    func run() throws {
        let backend = backendOption.backend
        if backend == "kernel" || (backend == "auto" && KernelBackend.isAvailable()) { return try runKernel() }
        let manager = try CommManager()
        let id = try manager.createChannel()
        let report = backendOption.backend == "in-process"
            ? try runThreads(manager: manager, id: id) : try runProcesses(manager: manager, id: id)
        report.print(statistics: manager.statistics().text)
        manager.destroyChannel(id)
    }

    /// The host here, the sensor and the engine in two processes of their own.
    private func runProcesses(manager: CommManager, id: ChannelID) throws -> DemoReport {
        var template = Array("/tmp/archangel-demo-XXXXXX".utf8CString)
        let directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        let socket = directory + "/host.sock"
        defer {
            unlink(socket + ".lock")
            rmdir(directory)
        }
        var logger = Logger(label: "archangel.demo.host")
        logger.logLevel = .warning
        let server = try HostServer(manager: manager,
                                    configuration: .init(socketPath: socket, allowKernelSide: true), logger: logger)
        defer { server.stop() }
        print("archangel demo: channel \(id), backend userspace (host pid \(getpid()), socket \(socket)), "
            + "\(aloneRequests) AI requests alone, then \(events) events + \(requests) AI requests")
        let executable = ChildProcess.currentExecutable
        let common = ["--socket", socket, "--channel", "\(id)"]
        let start = archangel_monotonic_ns()
        let engine = try ChildProcess(executable: executable, arguments: ["demo-role", "engine"] + common
            + ["--expected", "\(events + requests + aloneRequests)"])
        let sensor = try ChildProcess(executable: executable, arguments: ["demo-role", "sensor"] + common
            + ["--events", "\(events)", "--requests", "\(requests)", "--large-every", "\(largeEvery)",
               "--alone-requests", "\(aloneRequests)", "--flood-rate", "\(floodRate)"])
        let sensorOutput = sensor.readAllOutput(), engineOutput = engine.readAllOutput()
        let sensorStatus = sensor.wait(), engineStatus = engine.wait()
        let elapsed = Double(archangel_monotonic_ns() - start) / 1e9
        guard sensorStatus == 0, engineStatus == 0 else {
            throw ValidationError("demo failed: sensor process exited with \(sensorStatus), engine with \(engineStatus)")
        }
        print("sensor: pid \(sensor.pid), engine: pid \(engine.pid)")
        return DemoReport(total: events + (requests + aloneRequests) * 2, seconds: elapsed, events: events,
                          floodText: floodText,
                          engine: try DemoEngine.Tally(line: engineOutput),
                          roundTrips: try DemoRoundTrips.phases(output: sensorOutput))
    }

    /// All three roles as threads of this process.
    private func runThreads(manager: CommManager, id: ChannelID) throws -> DemoReport {
        let kernel = try manager.channel(id)
        let user = try Channel.open(id, backend: .inProcess(manager))
        print("archangel demo: channel \(id), backend in-process, \(aloneRequests) AI requests alone, then "
            + "\(events) events + \(requests) AI requests")
        let failures = Mutex<[String]>([])
        let engineResult = Mutex<DemoEngine.Tally?>(nil)
        let latencies = Mutex<[DemoSensor.Phase: [UInt64]]>([:])
        let answered = Atomic<Int>(0)
        let start = archangel_monotonic_ns()
        let expected = events + requests + aloneRequests, verdicts = requests + aloneRequests
        let engine = try SystemThread(name: "demo-engine") {
            do {
                let tally = try DemoEngine(channel: user, expected: expected).run()
                engineResult.withLock { $0 = tally }
            } catch { failures.withLock { $0.append("engine: \(error)") } }
        }
        let collector = try SystemThread(name: "demo-collector") {
            do {
                let result = try DemoCollector(channel: kernel, expected: verdicts,
                                               received: { answered.store($0, ordering: .releasing) }).run()
                latencies.withLock { $0 = result }
            } catch { failures.withLock { $0.append("collector: \(error)") } }
        }
        do {
            try DemoSensor(channel: kernel, events: events, requests: requests, largeEvery: largeEvery,
                           aloneRequests: aloneRequests, floodRate: floodRate,
                           answered: { answered.load(ordering: .acquiring) }).run()
        } catch {
            failures.withLock { $0.append("sensor: \(error)") }
            manager.destroyChannel(id)
        }
        engine.join()
        collector.join()
        let elapsed = Double(archangel_monotonic_ns() - start) / 1e9
        if let problems = failures.withLock({ $0.isEmpty ? nil : $0 }) {
            throw ValidationError("demo failed: " + problems.joined(separator: "; "))
        }
        return DemoReport(total: events + verdicts * 2, seconds: elapsed, events: events, floodText: floodText,
                          engine: engineResult.withLock { $0 }!,
                          roundTrips: latencies.withLock { $0 }.mapValues(DemoRoundTrips.init))
    }
}

/// What the demo prints, each figure with one line saying what it measures.
struct DemoReport {
    var total: Int
    var seconds: Double
    var events: Int
    /// The flood's pacing, as printed.
    var floodText = "as fast as the channel takes them"
    var engine: DemoEngine.Tally
    var roundTrips: [DemoSensor.Phase: DemoRoundTrips]

    func print(statistics: String) {
        Swift.print("")
        Swift.print("throughput: \(total) messages in \(format(seconds * 1000)) ms = "
            + "\(format(Double(total) / seconds / 1e6)) M msgs/s")
        Swift.print("  every message of both directions (events, requests, verdicts), from the sensor's start to the last delivery, "
            + "the one-at-a-time requests included; the flood is \(floodText) (--flood-rate 0: as fast as the bridge takes them)")
        Swift.print("engine saw: " + MessageType.allCases.map { "\($0)=\(engine.byType[Int($0.rawValue)])" }
            .joined(separator: " ") + ", \(engine.poolMessages) through the pool, \(engine.bytes) payload bytes")
        Swift.print("  messages the AI engine received, by type; pool: payloads over 1 KiB lent zero-copy from the buffer pool")
        let lines: [(DemoSensor.Phase, String, String)] = [
            (.alone, "AI round trip alone, express lane (critical)",
             "one request at a time with nothing else flowing: the bridge's unloaded request -> verdict time"),
            (.floodExpress, "AI round trip under flood, express lane (critical)",
             "requests sent among \(events) routine events without waiting (\(floodText)): they pass the flood and wake the engine at once"),
            (.floodNormal, "AI round trip under flood, normal lane",
             "the same requests at priority normal: behind the events, and woken only by the coalesced wake-ups (balanced: within 1 ms)"),
        ]
        for (phase, title, meaning) in lines {
            guard let r = roundTrips[phase], r.count > 0 else { continue }
            Swift.print("\(title) (µs, \(r.count) requests): p50 \(format(r.p50 / 1000))  p90 \(format(r.p90 / 1000))"
                + "  p99 \(format(r.p99 / 1000))  max \(format(r.max / 1000))")
            Swift.print("  \(meaning); request send to verdict receive, CLOCK_MONOTONIC in the sensor")
        }
        Swift.print("")
        Swift.print("statistics (the channel's counters, docs/statistics.md: to_user is sensor -> engine, to_kernel the verdicts):")
        Swift.print(statistics, terminator: "")
    }

    private func format(_ value: Double) -> String { "\((value * 10).rounded() / 10)" }
}

/// Percentiles of the request → response round trips, in nanoseconds.
struct DemoRoundTrips {
    var count = 0
    var p50 = 0.0, p90 = 0.0, p99 = 0.0, max = 0.0

    init(_ latencies: [UInt64]) {
        let sorted = latencies.sorted()
        count = sorted.count
        guard count > 0 else { return }
        func pct(_ p: Double) -> Double {
            Double(sorted[Swift.max(0, Swift.min(count - 1, Int((p * Double(count)).rounded(.up)) - 1))])
        }
        (p50, p90, p99, max) = (pct(0.5), pct(0.9), pct(0.99), pct(1.0))
    }

    /// The sensor process's line for one phase: `round_trips phase=P count=N p50=… p90=… p99=… max=…`.
    func line(_ phase: DemoSensor.Phase) -> String {
        "round_trips phase=\(phase.rawValue) count=\(count) p50=\(p50) p90=\(p90) p99=\(p99) max=\(max)"
    }

    init(values: [String: Double]) {
        count = Int(values["count"] ?? 0)
        (p50, p90, p99, max) = (values["p50"] ?? 0, values["p90"] ?? 0, values["p99"] ?? 0, values["max"] ?? 0)
    }

    /// Every phase's line of the sensor process's output.
    static func phases(output: String) throws -> [DemoSensor.Phase: DemoRoundTrips] {
        var out: [DemoSensor.Phase: DemoRoundTrips] = [:]
        for line in output.split(separator: "\n") where line.hasPrefix("round_trips ") {
            let values = try keyValues(String(line), prefix: "round_trips")
            guard let phase = values["phase"].flatMap({ DemoSensor.Phase(rawValue: UInt64($0)) }) else { continue }
            out[phase] = DemoRoundTrips(values: values)
        }
        return out
    }
}

extension DemoEngine.Tally {
    /// The engine process's line: `tally ai_request=… … pool=… bytes=…`.
    var line: String {
        "tally " + MessageType.allCases.map { "\($0)=\(byType[Int($0.rawValue)])" }.joined(separator: " ")
            + " pool=\(poolMessages) bytes=\(bytes)"
    }

    init(line: String) throws {
        let values = try keyValues(line, prefix: "tally")
        self.init()
        for type in MessageType.allCases { byType[Int(type.rawValue)] = Int(values["\(type)"] ?? 0) }
        poolMessages = Int(values["pool"] ?? 0)
        bytes = Int(values["bytes"] ?? 0)
    }
}

/// Parses `prefix key=value key=value` from the last line starting with `prefix`.
private func keyValues(_ output: String, prefix: String) throws -> [String: Double] {
    guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix(prefix + " ") }) else {
        throw ValidationError("demo: a role process printed no '\(prefix)' line")
    }
    var values: [String: Double] = [:]
    for pair in line.split(separator: " ").dropFirst() {
        let parts = pair.split(separator: "=")
        if parts.count == 2, let value = Double(parts[1]) { values[String(parts[0])] = value }
    }
    return values
}

/// `archangel demo-role`: one role of the multi-process demo (started by `archangel demo`).
struct DemoRoleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo-role",
        abstract: "Run one role of the multi-process demo (started by `archangel demo`).",
        shouldDisplay: false
    )

    enum Role: String, ExpressibleByArgument { case sensor, engine, follower }

    @Argument var role: Role
    @OptionGroup var socketOption: SocketOption
    @Option var channel: UInt32 = 0
    @Option var events = 0
    @Option var requests = 0
    @Option(name: .customLong("large-every")) var largeEvery = 10
    @Option(name: .customLong("alone-requests")) var aloneRequests = 0
    @Option(name: .customLong("flood-rate")) var floodRate = 0
    @Option var expected = 0

    func run() throws {
        let backend = UserspaceBackend(socketPath: socketOption.socket, create: false)
        switch role {
        case .follower:
            let user = try backend.attach(ChannelID(channel), side: .user)
            defer { user.close() }
            try FollowerRole(channel: user).run()
        case .engine:
            let user = try backend.attach(ChannelID(channel), side: .user)
            defer { user.close() }
            print(try DemoEngine(channel: user, expected: expected).run().line)
        case .sensor:
            let kernel = try backend.attach(ChannelID(channel), side: .kernel)
            defer { kernel.close() }
            let latencies = Mutex<[DemoSensor.Phase: [UInt64]]>([:])
            let failure = Mutex<String?>(nil)
            let answered = Atomic<Int>(0)
            let verdicts = requests + aloneRequests
            let collector = try SystemThread(name: "demo-collector") {
                do {
                    let result = try DemoCollector(channel: kernel, expected: verdicts,
                                                   received: { answered.store($0, ordering: .releasing) }).run()
                    latencies.withLock { $0 = result }
                } catch {
                    failure.withLock { $0 = "\(error)" }
                }
            }
            try DemoSensor(channel: kernel, events: events, requests: requests, largeEvery: largeEvery,
                           aloneRequests: aloneRequests, floodRate: floodRate,
                           answered: { answered.load(ordering: .acquiring) }).run()
            collector.join()
            if let problem = failure.withLock({ $0 }) { throw ValidationError("collector: \(problem)") }
            for (phase, values) in latencies.withLock({ $0 }) { print(DemoRoundTrips(values).line(phase)) }
        }
    }
}
