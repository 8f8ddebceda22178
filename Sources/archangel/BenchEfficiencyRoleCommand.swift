import Archangel
import ArchangelBench
import ArgumentParser
import Glibc

/// `archangel bench-efficiency-role`: the sender or receiver process of
/// `archangel bench --suite efficiency --backend userspace` (started by it).
/// It prints `ready` once attached, then one `result ...` line.
struct BenchEfficiencyRoleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-efficiency-role",
        abstract: "A role process of `archangel bench --suite efficiency` (started by it).",
        shouldDisplay: false
    )

    @Option(help: "sender or receiver.")
    var role: String
    @OptionGroup var socketOption: SocketOption
    @Option(help: "Wait preset.")
    var preset = "balanced"
    @Option(help: "Sender: messages per second.")
    var rate = 1000
    @Option(help: "Sender: seconds of pacing alone, then as many of sending.")
    var seconds = 3.0
    @Option(name: .customLong("idle-seconds"), help: "Receiver: idle phase after the stream, seconds.")
    var idleSeconds = 0.0
    @Option(name: .customLong("pace-quantum-ns"), help: "Sender: shortest sleep of the pacing loop, ns.")
    var paceQuantum: UInt64 = 50_000
    @Flag(help: "Pin the sender to CPU 0 and the receiver to CPU 1.")
    var pin = false
    @Option(name: .customLong("settle-ms"), help: "Receiver: quiet time before the idle phase, ms.")
    var settleMs = 50

    func run() throws {
        guard let policy = WaitPolicy.named(preset) else { throw ValidationError("unknown preset '\(preset)'") }
        let backend = UserspaceBackend(socketPath: socketOption.socket, create: false, waitPolicy: policy)
        switch role {
        case "sender":
            if pin { EfficiencyRoles.pin(to: 0) }
            let channel = try backend.attach(0, side: .kernel)
            defer { channel.close() }
            emit(try EfficiencyRoles.sender(channel, rate: rate, seconds: seconds, paceQuantum: paceQuantum,
                                            who: EfficiencyRoles.wholeProcess).line)
        case "receiver":
            if pin { EfficiencyRoles.pin(to: 1) }
            let channel = try backend.attach(0, side: .user)
            defer { channel.close() }
            emit("ready")
            emit(try EfficiencyRoles.receiver(channel, idleSeconds: idleSeconds,
                                               settle: .milliseconds(settleMs), who: EfficiencyRoles.wholeProcess).line)
        default:
            throw ValidationError("--role takes sender or receiver")
        }
    }
}

/// Writes a line to standard output at once (no stdio buffer): the bench reads
/// `ready` before it starts the sender.
private func emit(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { bytes in _ = write(1, bytes.baseAddress, bytes.count) }
}
