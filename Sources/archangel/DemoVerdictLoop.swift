import Archangel
import ArchangelRules
import ArchangelSensors
import ArchangelSystem
import ArgumentParser
import CArchangel
import Glibc
import Synchronization

/// `archangel demo --backend kernel`, second part: the verdict loop on real
/// events. archangel_sensors.ko holds each exec (SIGSTOP) and asks; the
/// rules engine (this process, on another thread) answers; the module
/// enforces: a denied image is SIGKILLed before it runs, an allowed one is
/// resumed, a cached verdict needs no round trip, a denied UDP flow is
/// dropped. Skipped, with the reason, when the sensor module is not loaded.
struct DemoVerdictLoop {
    /// Execs per case.
    var execs: Int
    /// The engine's wait policy.
    var wait: WaitPolicy

    /// The demo's rules: three names for the same `true`, decided three ways.
    static let rules = """
        sensors:
          exec: {policy: hold, default: allow, deadline_ms: 5000}
          net: {policy: hold, default: allow, deadline_ms: 5000}
        exec:
          - {name: demo-deny, path: /tmp/archangel-demo/deny/*, verdict: deny}
          - {name: demo-ask-every-time, path: /tmp/archangel-demo/ask/*, verdict: allow, ttl_ms: 0}
          - {name: demo-cached, path: /tmp/archangel-demo/cached/*, verdict: allow, ttl_ms: 60000}
        network:
          - {name: demo-no-udp-40998, protocol: udp, ports: [40998], verdict: deny}
        """

    /// The cases, in the order they run: (label, path, expected status).
    static let cases: [(String, String, Int32)] = [
        ("allowed by round trip (hold, ttl 0)", "/tmp/archangel-demo/ask/true", 0),
        ("allowed from the cache", "/tmp/archangel-demo/cached/true", 0),
        ("denied (killed before it runs)", "/tmp/archangel-demo/deny/true", 128 + SIGKILL),
    ]

    func run() throws {
        print("")
        guard access(SensorsDevice.defaultPath, R_OK | W_OK) == 0 else {
            print("verdict loop: skipped: \(SensorsDevice.defaultPath) does not open (load archangel_sensors.ko, as root)")
            return
        }
        guard access("/bin/true", X_OK) == 0 else {
            print("verdict loop: skipped: no /bin/true to exec")
            return
        }
        for dir in ["/tmp/archangel-demo", "/tmp/archangel-demo/deny", "/tmp/archangel-demo/ask", "/tmp/archangel-demo/cached"] {
            mkdir(dir, 0o755)
        }
        for (_, path, _) in Self.cases {
            unlink(path)
            guard symlink("/bin/true", path) == 0 else {
                throw ValidationError("demo: cannot link \(path) to /bin/true: \(String(cString: strerror(errno)))")
            }
        }
        // The baseline: the same execs with the exec sensor off.
        let baseline = try (0..<execs).map { _ in try Self.timedExec(Self.cases[0].1).nanoseconds }
        let ruleSet = try RuleSet.parse(Self.rules, format: .yaml)
        let session = try SensorSession(sensors: ruleSet.sensors, backend: KernelBackend(waitPolicy: wait))
        defer { session.close() }
        let start = try session.device.statistics()
        let stop = Atomic<Bool>(false)
        let records = Mutex<[String]>([])
        let latencies = Mutex<[UInt64]>([])
        // One thread runs the loop; this one reads the session only after joining it.
        nonisolated(unsafe) let running = session
        let engineThread = try SystemThread(name: "demo-engine") {
            var engine = RulesEngine(rules: ruleSet)
            let log = EngineLog(descriptor: -1, json: false)
            do {
                try running.run(&engine, shouldStop: { stop.load(ordering: .relaxed) }) { record in
                    if case let .decided(_, _, latency) = record { latencies.withLock { $0.append(latency) } }
                    if case .event = record { return }
                    records.withLock { $0.append(log.line(record)) }
                }
            } catch {
                records.withLock { $0.append("engine stopped: \(error)") }
            }
        }
        defer {
            stop.store(true, ordering: .relaxed)
            engineThread.join()
        }
        print("verdict loop: channel \(session.channel.id), archangel_sensors.ko holds each exec and asks; the rules engine answers")
        print("verdict loop: \(execs) execs per case; wall time of fork + exec + wait, median (p90), us")
        print("verdict loop:   exec sensor off: \(Self.summary(baseline))")
        var failures: [String] = []
        for (label, path, expected) in Self.cases {
            let before = try session.device.statistics()
            var times: [UInt64] = []
            var wrong = 0
            for _ in 0..<execs {
                let run = try Self.timedExec(path)
                times.append(run.nanoseconds)
                if run.status != expected { wrong += 1 }
            }
            let after = try session.device.statistics()
            print("verdict loop:   \(label): \(Self.summary(times)); requests \(after.requests - before.requests), "
                + "cache hits \(after.cacheHits - before.cacheHits), killed \(after.execKilled - before.execKilled)")
            if wrong > 0 { failures.append("\(wrong) of \(execs) execs of \(path) did not exit with \(expected)") }
        }
        // A denied UDP flow: its datagrams are dropped (NF_DROP), so sendto fails with EPERM. Sent
        // by a child: this process is the engine, which the sensors never trace.
        let refused = Self.refusedDatagrams(port: 40998, count: 10)
        if refused < 0 {
            print("verdict loop:   UDP: skipped: the loopback interface is down (ip link set lo up)")
        } else {
            print("verdict loop:   UDP to 127.0.0.1:40998 (rule demo-no-udp-40998): \(refused) of 10 datagrams dropped")
            if refused == 0 { failures.append("no datagram to the denied UDP port was dropped") }
        }
        stop.store(true, ordering: .relaxed)
        engineThread.join()
        let stats = try session.device.statistics()
        let answered = latencies.withLock { $0 }
        let trips = stats.roundTrips - start.roundTrips
        let mean = trips > 0 ? String(format1: Double(stats.roundTripNanosecondsTotal - start.roundTripNanosecondsTotal) / Double(trips) / 1000) : "-"
        print("verdict loop: engine: event to answer sent, median (p90) \(Self.summary(answered)) us over \(answered.count) answers; "
            + "module: request to enforcement, mean \(mean) us over \(trips), timeouts \(stats.timeouts - start.timeouts)")
        // The engine's channel: how its wake-ups went (docs/statistics.md).
        if let channelStats = KernelBackend.statistics(of: session.channel) {
            print("verdict loop: the engine's channel (docs/statistics.md):")
            for line in StatisticsReport(channels: [channelStats], maxChannels: KernelDevice.maxChannels).text
                .split(separator: "\n") where line.contains("to_user") || line.contains("to_kernel") {
                print("verdict loop:   " + line)
            }
        }
        // The log's first line of each rule, then how many lines there were.
        let lines = records.withLock { $0 }
        var seen = Set<String>()
        print("verdict loop: decision log, the first line of each rule (\(lines.count) lines in all):")
        for line in lines {
            let rule = line.split(separator: " ").first { $0.hasPrefix("rule=") }.map(String.init) ?? line
            if seen.insert(rule).inserted { print("  " + line) }
        }
        if !failures.isEmpty { throw ValidationError("demo: verdict loop: " + failures.joined(separator: "; ")) }
    }

    /// Datagrams of `count` sent to 127.0.0.1:`port` by a forked child that failed with EPERM
    /// (the child only calls socket, sendto, usleep and _exit: safe after fork in a threaded process).
    static func refusedDatagrams(port: UInt16, count: Int32) -> Int {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let child = fork()
        if child == 0 {
            let sender = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            var refused: Int32 = 0
            for _ in 0..<count {
                let sent = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(sender, "x", 1, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
                if sent < 0 && errno == EPERM { refused += 1 }
                if sent < 0 && errno == ENETUNREACH { _exit(255) }
                usleep(20_000)
            }
            _exit(refused)
        }
        guard child > 0 else { return 0 }
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        guard status & 0x7f == 0 else { return 0 }
        let code = Int((status >> 8) & 0xff)
        return code == 255 ? -1 : code
    }

    static func timedExec(_ path: String) throws -> (status: Int32, nanoseconds: UInt64) {
        let start = archangel_monotonic_ns()
        let child = try ChildProcess(executable: path, arguments: [])
        let status = child.wait()
        return (status, archangel_monotonic_ns() - start)
    }

    static func summary(_ values: [UInt64]) -> String {
        guard !values.isEmpty else { return "-" }
        let sorted = values.sorted()
        func us(_ q: Double) -> String { String(format1: Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))]) / 1000) }
        return "\(us(0.5)) (\(us(0.9)))"
    }
}
