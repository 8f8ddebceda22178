import Archangel
import ArchangelSystem
import ArgumentParser
import CArchangel
import Synchronization

/// `archangel demo`: a sensor (kernel side) and an AI engine (user side) on one channel.
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

    func validate() throws {
        guard events >= 0, requests >= 0, events + requests > 0, largeEvery >= 0 else {
            throw ValidationError("--events and --requests must be non-negative, and not both 0")
        }
    }

    func run() throws {
        let manager = try CommManager()
        let id = try manager.createChannel()
        let kernel = try manager.channel(id)
        let user = try Channel.open(id, backend: .inProcess(manager))
        print("archangel demo: channel \(id), backend \(backendOption.backend), \(events) events + \(requests) AI requests")

        let failures = Mutex<[String]>([])
        let engineResult = Mutex<DemoEngine.Tally?>(nil)
        let latencies = Mutex<[UInt64]>([])
        let start = archangel_monotonic_ns()
        let engine = try SystemThread(name: "demo-engine") {
            do { engineResult.withLock { $0 = nil }
                 let tally = try DemoEngine(channel: user, expected: events + requests).run()
                 engineResult.withLock { $0 = tally }
            } catch { failures.withLock { $0.append("engine: \(error)") } }
        }
        let collector = try SystemThread(name: "demo-collector") {
            do {
                let result = try DemoCollector(channel: kernel, expected: requests).run()
                latencies.withLock { $0 = result }
            } catch { failures.withLock { $0.append("collector: \(error)") } }
        }
        do {
            try DemoSensor(channel: kernel, events: events, requests: requests, largeEvery: largeEvery).run()
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
        let tally = engineResult.withLock { $0 }!
        let rtts = latencies.withLock { $0 }.sorted()
        let total = events + requests * 2
        print("")
        print("delivered \(total) messages in \(format(elapsed * 1000)) ms: \(format(Double(total) / elapsed / 1e6)) M msgs/s")
        print("engine saw: " + MessageType.allCases.map { "\($0)=\(tally.byType[Int($0.rawValue)])" }
            .joined(separator: " ") + ", \(tally.poolMessages) through the pool, \(tally.bytes) payload bytes")
        if !rtts.isEmpty {
            func pct(_ p: Double) -> String {
                let i = min(rtts.count - 1, Int((p * Double(rtts.count)).rounded(.up)) - 1)
                return format(Double(rtts[max(i, 0)]) / 1000)
            }
            print("AI request -> response round trip (µs): p50 \(pct(0.5))  p90 \(pct(0.9))  p99 \(pct(0.99))  max \(pct(1.0))")
        }
        print("")
        print(manager.statistics().text, terminator: "")
        manager.destroyChannel(id)
    }

    private func format(_ value: Double) -> String {
        let scaled = (value * 10).rounded() / 10
        return "\(scaled)"
    }
}
