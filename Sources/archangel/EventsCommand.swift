import Archangel
import ArchangelSensors
import ArchangelSystem
import ArgumentParser
import Glibc

/// `archangel events`: the sensors' records, decoded, as text or JSON lines.
struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Stream the kernel sensors' events (archangel_sensors.ko), decoded, as text or JSON lines.",
        discussion: """
            Creates a channel in the archangel module, attaches the sensors to it (this process becomes \
            the engine, and is excluded from tracing), switches the chosen sensors on in observe mode \
            (records only: no verdict requests), and prints each record: one line of text, or with --json \
            one JSON object per line (kind, timestamp, cpu, pid, tgid, uid, flags, then the kind's fields; \
            docs/sensors.md), for jq and SIEM pipelines. Records dropped on a full ring arrive as `lost` \
            records with their count. Needs root and both modules loaded. Ctrl-C stops; the sensors are \
            detached and the channel destroyed.
            """
    )

    @Option(help: "Sensors to switch on, comma-separated: exec, syscall, net, mem.")
    var sensors = "exec"
    @Option(help: "syscall sensor: the system call numbers traced, comma-separated (x86-64), e.g. 59,322 for execve and execveat.")
    var syscalls = ""
    @Option(help: "Stop after this many events (0: until Ctrl-C).")
    var count = 0
    @Flag(help: "One JSON object per line.")
    var json = false

    func run() throws {
        let chosen = try sensors.split(separator: ",").map { name -> SensorsDevice.Sensor in
            guard let sensor = SensorsDevice.Sensor(name: String(name)) else {
                throw ValidationError("unknown sensor '\(name)'; use exec, syscall, net, mem")
            }
            return sensor
        }
        let numbers = syscalls.split(separator: ",").compactMap { Int($0) }
        if chosen.contains(.syscall) && numbers.isEmpty {
            throw ValidationError("the syscall sensor needs --syscalls (numbers), or it traces nothing")
        }
        let backend = ResolvedBackend(kind: .kernel(device: KernelDevice.defaultPath), reason: "events needs the kernel module")
        var configurations: [SensorsDevice.Sensor: SensorConfiguration] = [:]
        for sensor in chosen { configurations[sensor] = SensorConfiguration(policy: .observe, syscalls: numbers) }
        let session: SensorSession
        do {
            session = try SensorSession(sensors: configurations)
        } catch let error as ChannelError {
            throw OperatorError(error, backend: backend)
        } catch {
            printError("archangel events: error: \(error)")
            throw ExitCode(69)
        }
        defer { session.close() }
        CLISignals.install()
        printError("archangel events: channel \(session.channel.id), sensors \(chosen.map(\.name).joined(separator: ",")); Ctrl-C stops")
        var printed = 0
        var engine = Observer()
        let json = self.json, count = self.count
        do throws(ChannelError) {
            try session.run(&engine, events: true, shouldStop: { CLISignals.stopping || (count > 0 && printed >= count) }) { record in
                let line: String
                switch record {
                case let .event(event): line = json ? event.json : event.text
                case let .undecodable(type, error):
                    line = json ? "{\"kind\": \"undecodable\", \"type\": \(jsonString("\(type)")), \"error\": \(jsonString("\(error)"))}"
                                : "undecodable \(type) record: \(error)"
                default: return
                }
                guard count == 0 || printed < count else { return }
                _ = writeAll(STDOUT_FILENO, line + "\n")
                printed += 1
            }
        } catch {
            throw OperatorError(error, backend: backend)
        }
    }
}

/// `events` decides nothing: the sensors run in observe mode, so no request comes.
private struct Observer: VerdictEngine {
    mutating func decide(_ request: SensorRequest) -> EngineDecision? { nil }
}
