import Archangel
import ArchangelSystem
import Glibc
import Logging

/// `--backend userspace`: this process hosts (a `CommManager` behind a
/// `HostServer`); per cell, a receiver process attaches the user side and a
/// sender process the kernel side, both `archangel bench-efficiency-role`,
/// each reporting its figures as one `result` line on its standard output.
final class UserspaceEfficiencyRunner: EfficiencyCellRunner {
    let options: EfficiencySuite.Options
    let manager: CommManager
    let server: HostServer
    let directory: String
    var socket: String { directory + "/host.sock" }

    init(_ options: EfficiencySuite.Options) throws {
        self.options = options
        var template = Array("/tmp/archangel-efficiency-XXXXXX".utf8CString)
        directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        manager = try CommManager(configuration: .init(maxChannels: 1))
        _ = try manager.createChannel()
        var logger = Logger(label: "archangel.bench.efficiency")
        logger.logLevel = .warning
        server = try HostServer(manager: manager,
                                configuration: .init(socketPath: directory + "/host.sock", allowKernelSide: true),
                                logger: logger)
    }

    deinit {
        server.stop()
        unlink(socket + ".lock")
        rmdir(directory)
    }

    func cell(preset: String, policy: WaitPolicy, rate: Int, idleSeconds: Double) throws -> EfficiencyFigures {
        let settleMs = Int(WaitPolicy.nanoseconds(settle(policy)) / 1_000_000)
        let receiver = try ChildProcess(executable: options.executable, arguments: [
            "bench-efficiency-role", "--role", "receiver", "--socket", socket, "--preset", preset,
            "--idle-seconds", "\(idleSeconds)", "--settle-ms", "\(settleMs)"])
        guard receiver.readLine() == "ready" else { throw EfficiencyError.role("the receiver did not attach") }
        let sender = try ChildProcess(executable: options.executable, arguments: [
            "bench-efficiency-role", "--role", "sender", "--socket", socket, "--preset", preset,
            "--rate", "\(rate)", "--seconds", "\(options.seconds)"])
        let sent = try result(of: sender, "sender")
        let received = try result(of: receiver, "receiver")
        return sent.merging(received)
    }

    private func result(of child: ChildProcess, _ role: String) throws -> EfficiencyFigures {
        var figures: EfficiencyFigures?
        while let line = child.readLine() {
            if let parsed = EfficiencyFigures(line: line) { figures = parsed }
        }
        let status = child.wait()
        guard status == 0, let figures else {
            throw EfficiencyError.role("the \(role) process ended with status \(status)"
                                       + (figures == nil ? " and no result" : ""))
        }
        return figures
    }
}

/// `--backend in-process`: one `CommManager` per cell with the preset, the
/// sender on its kernel-side endpoint and the receiver on its user-side
/// endpoint, each in a thread of this process (CPU per thread: RUSAGE_THREAD,
/// so the process-wide coalescing timer thread is not counted).
final class InProcessEfficiencyRunner: EfficiencyCellRunner {
    let options: EfficiencySuite.Options

    init(_ options: EfficiencySuite.Options) { self.options = options }

    func cell(preset: String, policy: WaitPolicy, rate: Int, idleSeconds: Double) throws -> EfficiencyFigures {
        let manager = try CommManager(configuration: .init(maxChannels: 1, waitPolicy: policy))
        let id = try manager.createChannel()
        defer { manager.destroyChannel(id) }
        let kernel = try manager.channel(id)
        let user = try Channel.open(id, backend: .inProcess(manager))
        let receiverOutcome = PthreadLock<Result<EfficiencyFigures, any Error>?>(nil)
        let senderOutcome = PthreadLock<Result<EfficiencyFigures, any Error>?>(nil)
        let settle = settle(policy), seconds = options.seconds
        let receiving = try SystemThread(name: "eff-receiver") {
            SystemThread.pinCurrent(to: 1)
            let r = Result { try EfficiencyRoles.receiver(user, idleSeconds: idleSeconds, settle: settle,
                                                          who: EfficiencyRoles.thisThread) }
            receiverOutcome.withLock { $0 = r }
        }
        let sending = try SystemThread(name: "eff-sender") {
            SystemThread.pinCurrent(to: 0)
            let r = Result { try EfficiencyRoles.sender(kernel, rate: rate, seconds: seconds, who: EfficiencyRoles.thisThread) }
            senderOutcome.withLock { $0 = r }
        }
        sending.join()
        receiving.join()
        let sent = try senderOutcome.withLock { $0 }!.get()
        let received = try receiverOutcome.withLock { $0 }!.get()
        return sent.merging(received)
    }
}
