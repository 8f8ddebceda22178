// The verdict loop end to end on the real kernel: archangel_sensors.ko's
// requests answered by the rules engine (`archangel engine`) or by an engine
// in this process, enforced by the module. Runs where /dev/archangel_sensors
// opens: in the VM (scripts/kernel-test, Debian 6.1 and 6.12).
import Archangel
import ArchangelSensors
import ArchangelSystem
import CArchangel
import Foundation
import Glibc
import Synchronization
import Testing

/// The counters of /proc/archangel/sensors, as "section.key" (e.g. "verdict.requests", "cache.hits").
func sensorsCounters() -> [String: UInt64] {
    guard let text = try? String(contentsOfFile: "/proc/archangel/sensors", encoding: .utf8) else { return [:] }
    var out: [String: UInt64] = [:]
    for line in text.split(separator: "\n") {
        let words = line.split(separator: " ")
        guard let section = words.first, ["verdict", "cache", "flows", "enforce", "channel"].contains(String(section)) else { continue }
        for word in words.dropFirst() {
            let pair = word.split(separator: "=", maxSplits: 1)
            if pair.count == 2, let value = UInt64(pair[1]) { out["\(section).\(pair[0])"] = value }
        }
    }
    return out
}

/// The sensors switched on, from /proc/archangel/sensors' `sensor NAME state=on ...` lines.
func sensorsOn() -> Set<String> {
    guard let text = try? String(contentsOfFile: "/proc/archangel/sensors", encoding: .utf8) else { return [] }
    return Set(text.split(separator: "\n").compactMap { line -> String? in
        let words = line.split(separator: " ")
        return words.count > 2 && words[0] == "sensor" && words[2] == "state=on" ? String(words[1]) : nil
    })
}

/// The state letter of /proc/PID/stat (R, S, T, ...), nil when gone.
func processState(_ pid: pid_t) -> String? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return nil }
    return stat[stat.index(after: close)...].split(separator: " ").first.map(String.init)
}

/// Runs `path` (no arguments) and returns its status (128 + signal when killed) and how long it took, ns.
func timedRun(_ path: String) throws -> (status: Int32, nanoseconds: UInt64) {
    let start = archangel_monotonic_ns()
    let child = try ChildProcess(executable: path, arguments: [])
    let status = child.wait()
    return (status, archangel_monotonic_ns() - start)
}

/// A directory of busybox links under /tmp: exec'ing `dir/true` runs busybox's true under that path.
func busyboxLinks(_ directory: String) -> String {
    mkdir(directory, 0o755)
    unlink(directory + "/true")
    symlink("/bin/busybox", directory + "/true")
    return directory + "/true"
}

/// Sends one UDP datagram to 127.0.0.1:`port`; the errno when sendto fails (EPERM when NF_DROP), else 0.
func sendUDP(port: UInt16, from socket: Int32) -> Int32 {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    let sent = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(socket, "x", 1, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    return sent == 1 ? 0 : errno
}

/// A UDP socket bound to 127.0.0.1:`port`, non-blocking.
func boundUDP(port: UInt16) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    return fd
}

/// Datagrams waiting on `fd`.
func drainUDP(_ fd: Int32) -> Int {
    var n = 0
    var buffer = [UInt8](repeating: 0, count: 64)
    while recv(fd, &buffer, buffer.count, 0) > 0 { n += 1 }
    return n
}

extension OperatorCLIKernelTests {
    @Suite("Sensors and the verdict loop on the kernel", .serialized)
    struct SensorsEngineKernelTests {
        static var available: Bool { access(SensorsDevice.defaultPath, R_OK | W_OK) == 0 }

        /// Starts `archangel engine` on `rules` (YAML), logging JSON to `log`, and waits until it
        /// is attached and has switched on `sensors`.
        func startEngine(rules: String, log: String, sensors: Set<String>) throws -> ChildProcess {
            let file = "/tmp/archangel-test-rules-\(getpid()).yaml"
            try rules.write(toFile: file, atomically: true, encoding: .utf8)
            unlink(log)
            let engine = try ChildProcess(executable: archangelExecutable, arguments: [
                "engine", "--rules", file, "--json", "--log", log])
            let start = archangel_monotonic_ns()
            while sensorsCounters()["channel.engine"] != UInt64(engine.pid) || !sensors.isSubset(of: sensorsOn()) {
                if engine.wait(timeout: .milliseconds(50)) != nil || archangel_monotonic_ns() - start > 60_000_000_000 {
                    Issue.record("the engine did not attach (status \(String(describing: engine.wait(timeout: .zero))))")
                    break
                }
            }
            return engine
        }

        func logObjects(_ path: String) -> [[String: Any]] {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }

        @Test("a denied exec dies by SIGKILL, an allowed one runs, the cached verdict needs no round trip, UDP to a denied port is dropped")
        func denyAllowCacheAndUDP() throws {
            guard Self.available else { return }
            let denied = busyboxLinks("/tmp/archangel-deny")
            let log = "/tmp/archangel-engine-\(getpid()).log"
            let engine = try startEngine(rules: """
                sensors:
                  exec: {policy: hold, default: allow, deadline_ms: 10000}
                  net: {policy: hold, default: allow, deadline_ms: 10000}
                exec:
                  - {name: no-tmp-deny, path: /tmp/archangel-deny/**, verdict: deny}
                network:
                  - {name: no-udp-40999, protocol: udp, ports: [40999], verdict: deny}
                """, log: log, sensors: ["exec", "net"])
            defer {
                engine.signal(SIGKILL)
                _ = engine.wait()
            }
            let allowed = try timedRun("/bin/true")
            #expect(allowed.status == 0, "an allowed exec runs")
            let first = try timedRun(denied)
            #expect(first.status == 128 + SIGKILL, "a denied exec dies by SIGKILL")
            let before = sensorsCounters()
            let again = try timedRun(denied)
            let after = sensorsCounters()
            #expect(again.status == 128 + SIGKILL)
            #expect(after["verdict.requests"] == before["verdict.requests"], "a cached verdict makes no request")
            #expect((after["cache.hits"] ?? 0) > (before["cache.hits"] ?? 0), "\(before) -> \(after)")

            // UDP: the denied port's first datagram is held (dropped until the verdict), then the flow is denied.
            let receiver = boundUDP(port: 40999), control = boundUDP(port: 41000)
            let sender = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            defer { close(receiver); close(control); close(sender) }
            var controlReceived = 0
            for _ in 0..<100 where controlReceived == 0 {
                _ = sendUDP(port: 41000, from: sender)
                usleep(50_000)
                controlReceived += drainUDP(control)
            }
            #expect(controlReceived > 0, "an allowed UDP flow passes once answered")
            var refused = 0
            for _ in 0..<20 {
                if sendUDP(port: 40999, from: sender) == EPERM { refused += 1 }
                usleep(20_000)
            }
            #expect(drainUDP(receiver) == 0, "no datagram to the denied port arrives")
            #expect(refused == 20, "every send to the denied port fails with EPERM (NF_DROP)")
            #expect((sensorsCounters()["flows.packets_dropped"] ?? 0) >= 20)

            engine.signal(SIGTERM)
            #expect(engine.wait(timeout: .seconds(30)) == 0, "SIGTERM stops the engine cleanly")
            let objects = logObjects(log)
            #expect(objects.contains { $0["verdict"] as? String == "deny" && $0["subject"] as? String == denied
                                       && $0["rule"] as? String == "no-tmp-deny" }, "\(objects)")
            #expect(objects.contains { $0["verdict"] as? String == "allow" && $0["subject"] as? String == "/bin/true" })
            #expect(objects.contains { $0["verdict"] as? String == "deny" && $0["rule"] as? String == "no-udp-40999"
                                       && $0["kind"] as? String == "net" })
            #expect(sensorsCounters()["channel.engine"] == 0 || sensorsCounters()["channel.engine"] == nil)
        }

        /// An engine in this process that never answers.
        struct Silent: VerdictEngine {
            mutating func decide(_ request: SensorRequest) -> EngineDecision? { nil }
        }

        @Test("an engine that never answers: the deadline applies the default, fail-open and fail-closed")
        func deadlineDefault() throws {
            guard Self.available else { return }
            for (fallback, expected) in [(Verdict.allow, Int32(0)), (.deny, 128 + SIGKILL)] {
                let session = try SensorSession(sensors: [
                    .exec: SensorConfiguration(policy: .hold, defaultVerdict: fallback, deadlineMilliseconds: 300)])
                let stop = Atomic<Bool>(false)
                // The loop runs on that thread only; this one reads the session after joining it.
                nonisolated(unsafe) let running = session
                let loop = try SystemThread(name: "silent-engine") {
                    var engine = Silent()
                    try? running.run(&engine, shouldStop: { stop.load(ordering: .relaxed) })
                }
                let before = sensorsCounters()
                let run = try timedRun("/bin/true")
                stop.store(true, ordering: .relaxed)
                loop.join()
                let after = sensorsCounters()
                session.close()
                #expect(run.status == expected, "default \(fallback)")
                #expect(run.nanoseconds >= 300_000_000, "held until the deadline: \(run.nanoseconds) ns")
                #expect(run.nanoseconds < 10_000_000_000, "and not much longer")
                #expect((after["verdict.timeouts"] ?? 0) > (before["verdict.timeouts"] ?? 0))
                #expect(session.counters.unanswered >= 1)
            }
        }

        @Test("an engine killed mid-run: every pending request is resolved with its default at once, nothing hangs")
        func engineKilledWhilePending() throws {
            guard Self.available else { return }
            let log = "/tmp/archangel-engine-killed-\(getpid()).log"
            let engine = try startEngine(rules: """
                sensors:
                  exec: {policy: hold, default: allow, deadline_ms: 30000}
                exec:
                  - {name: all-allowed, path: "**", verdict: allow, ttl_ms: 0}
                """, log: log, sensors: ["exec"])
            // Stopped, the engine answers nothing: the execs stay held. SIGSTOP is asynchronous:
            // wait until it has taken effect (state T), or it may still answer the first exec.
            engine.signal(SIGSTOP)
            let stopping = archangel_monotonic_ns()
            while processState(engine.pid) != "T" && archangel_monotonic_ns() - stopping < 10_000_000_000 { usleep(5_000) }
            let before = sensorsCounters()
            let start = archangel_monotonic_ns()
            let children = try (0..<4).map { _ in try ChildProcess(executable: "/bin/true", arguments: []) }
            // Until all four are pending (held, SIGSTOPped by the module; the module's own count,
            // since other suites' processes may exec meanwhile).
            while (sensorsCounters()["channel.pending"] ?? 0) < 4 && archangel_monotonic_ns() - start < 20_000_000_000 {
                usleep(20_000)
            }
            let pendingAtKill = sensorsCounters()["channel.pending"] ?? 0
            #expect(pendingAtKill >= 4, "the four execs are held: \(pendingAtKill) pending")
            engine.signal(SIGKILL)
            _ = engine.wait()
            let killed = archangel_monotonic_ns()
            let statuses = children.map { $0.wait(timeout: .seconds(20)) }
            let resolvedIn = archangel_monotonic_ns() - killed
            #expect(statuses.allSatisfy { $0 == 0 }, "every held exec runs on with the default allow: \(statuses)")
            #expect(resolvedIn < 10_000_000_000, "at once, not at the 30 s deadline: \(resolvedIn) ns")
            let after = sensorsCounters()
            #expect((after["verdict.detach_resolved"] ?? 0) >= (before["verdict.detach_resolved"] ?? 0) + pendingAtKill,
                    "every pending request resolved at detach: \(after)")
            #expect(after["channel.engine"] == 0 || after["channel.engine"] == nil, "detached")
        }
    }
}
