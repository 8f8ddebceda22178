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
        let channel: Channel
        do {
            channel = try KernelBackend().attach(nil)
        } catch {
            throw OperatorError(error, backend: backend)
        }
        let id = channel.id.rawValue
        defer {
            channel.close()
            try? KernelDevice().destroy(id)
        }
        let device: SensorsDevice
        do {
            device = try SensorsDevice()
            try device.attach(channel: id)
            for sensor in chosen { try device.enableObserving(sensor, syscalls: numbers) }
        } catch {
            printError("archangel events: error: \(error)")
            throw ExitCode(69)
        }
        CLISignals.install()
        printError("archangel events: channel \(id), sensors \(chosen.map(\.name).joined(separator: ",")); Ctrl-C stops")
        var printed = 0
        while !CLISignals.stopping && (count == 0 || printed < count) {
            do throws(ChannelError) {
                let lines = try channel.receive(timeout: .milliseconds(250)) { view -> [String] in
                    var bytes = [UInt8](repeating: 0, count: view.count)
                    _ = bytes.withUnsafeMutableBytes { view.copyBytes(to: $0) }
                    return bytes.withUnsafeBytes { raw -> [String] in
                        if view.type == .aiRequest, let request = try? SensorRequest.decode(raw) {
                            return [json ? request.event.json : "request id=\(request.id) " + request.event.text]
                        }
                        do {
                            return try SensorEvent.decodeAll(raw).map { json ? $0.json : $0.text }
                        } catch {
                            return [json ? "{\"kind\": \"undecodable\", \"error\": \(jsonString("\(error)"))}"
                                         : "undecodable \(view.type) record: \(error)"]
                        }
                    }
                }
                for line in lines where count == 0 || printed < count {
                    print(line)
                    printed += 1
                }
                fflush(nil)
            } catch .timedOut {
                continue
            } catch {
                throw OperatorError(error, backend: backend)
            }
        }
    }
}
