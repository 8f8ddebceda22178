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
            "--idle-seconds", "\(idleSeconds)", "--settle-ms", "\(settleMs)"] + (options.pinned ? ["--pin"] : []))
        guard receiver.readLine() == "ready" else { throw EfficiencyError.role("the receiver did not attach") }
        let sender = try ChildProcess(executable: options.executable, arguments: [
            "bench-efficiency-role", "--role", "sender", "--socket", socket, "--preset", preset,
            "--rate", "\(rate)", "--seconds", "\(options.seconds)", "--pace-quantum-ns", "\(options.paceQuantum)"]
            + (options.pinned ? ["--pin"] : []))
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
        let settle = settle(policy), seconds = options.seconds, quantum = options.paceQuantum
        return try runRoles(pinned: options.pinned, senderName: "eff-sender", sender: {
            try EfficiencyRoles.sender(kernel, rate: rate, seconds: seconds, paceQuantum: quantum,
                                       who: EfficiencyRoles.thisThread)
        }, receiver: {
            try EfficiencyRoles.receiver(user, idleSeconds: idleSeconds, settle: settle, who: EfficiencyRoles.thisThread)
        })
    }
}

/// `--backend kernel`: the module's channel, its kernel side driven by the
/// in-kernel load generator (`ARCHANGEL_IOC_LOADGEN`, PRODUCE, PACED: one
/// hrtimer sleep per message in the calling thread, so the kernel's own
/// producer and its coalesced wake-ups are what is measured), the user side
/// received by a thread of this process with the preset.
///
/// The sender thread's CPU (`RUSAGE_THREAD`) is the loadgen ioctl's: its
/// pacing and its sends, in kernel mode. Its pacing cost is measured first
/// by the userspace pacer with one sleep per message (quantum 0), the same
/// schedule the loadgen follows; hrtimer interrupts and the module's
/// trailing-edge timers run in interrupt context and are charged to
/// neither thread. The wake-up counts of the kernel's producer come from
/// `/proc/archangel/comm` (`to_user notify_*`) read around the run.
final class KernelEfficiencyRunner: EfficiencyCellRunner {
    let options: EfficiencySuite.Options

    init(_ options: EfficiencySuite.Options) { self.options = options }

    func cell(preset: String, policy: WaitPolicy, rate: Int, idleSeconds: Double) throws -> EfficiencyFigures {
        let user = try KernelBackend(waitPolicy: policy).attach(nil)
        let id = user.id.rawValue
        defer {
            user.close()
            // One channel per cell; the module holds 16.
            try? KernelDevice().destroy(id)
        }
        let count = UInt64(max(1, Double(rate) * options.seconds))
        let interval = UInt64(1_000_000_000 / rate)
        let settle = settle(policy), seconds = options.seconds
        return try runRoles(pinned: options.pinned, senderName: "eff-loadgen", sender: {
            let who = EfficiencyRoles.thisThread
            let pacer = EfficiencyPacer(rate: rate, duration: UInt64(seconds * 1e9), quantum: 0)
            let p0 = ResourceSnapshot.take(who)
            _ = try pacer.run(nil)
            let p1 = ResourceSnapshot.take(who)
            let n0 = try Self.producerWakeups(channel: id)
            let device = try KernelDevice()
            defer { device.close() }
            let s0 = ResourceSnapshot.take(who)
            let done = try device.loadgen(channel: id, mode: .produce, size: EfficiencyRoles.payloadBytes,
                                          count: count, interval: interval).done
            let s1 = ResourceSnapshot.take(who)
            let n1 = try Self.producerWakeups(channel: id)
            return EfficiencyFigures([
                "offered": Double(count), "sent": Double(done),
                "sender_window_ns": Double(s1.time - s0.time), "sender_cpu_ns": Double(s1.cpu - s0.cpu),
                "pacing_window_ns": Double(p1.time - p0.time), "pacing_cpu_ns": Double(p1.cpu - p0.cpu),
                "notify_sent": Double(n1.sent - n0.sent), "notify_suppressed": Double(n1.suppressed - n0.suppressed),
                "notify_coalesced": Double(n1.coalesced - n0.coalesced),
            ])
        }, receiver: {
            try EfficiencyRoles.receiver(user, idleSeconds: idleSeconds, settle: settle, markless: count,
                                         who: EfficiencyRoles.thisThread)
        })
    }

    /// The kernel producer's wake-up counters of channel `id` (kernel to user).
    private static func producerWakeups(channel id: UInt32) throws -> (sent: UInt64, suppressed: UInt64, coalesced: UInt64) {
        let report = try StatisticsReport(parsing: try KernelBackend.statisticsText())
        guard let channel = report.channels.first(where: { $0.id == id }) else {
            throw EfficiencyError.role("channel \(id) is missing from /proc/archangel/comm")
        }
        return (channel.toUser.notificationsSent, channel.toUser.notificationsSuppressed,
                channel.toUser.notificationsCoalesced)
    }
}

extension EfficiencyCellRunner {
    /// Runs the two roles of a cell as threads of this process (pinned to
    /// CPU 0 and CPU 1 when asked), waits for both, and merges their figures.
    ///
    /// - Throws: the sender's error first, then the receiver's.
    func runRoles(pinned: Bool, senderName: String,
                  sender: @escaping @Sendable () throws -> EfficiencyFigures,
                  receiver: @escaping @Sendable () throws -> EfficiencyFigures) throws -> EfficiencyFigures {
        let receiverOutcome = PthreadLock<Result<EfficiencyFigures, any Error>?>(nil)
        let senderOutcome = PthreadLock<Result<EfficiencyFigures, any Error>?>(nil)
        let receiving = try SystemThread(name: "eff-receiver") {
            if pinned { SystemThread.pinCurrent(to: 1) }
            let r = Result { try receiver() }
            receiverOutcome.withLock { $0 = r }
        }
        let sending = try SystemThread(name: senderName) {
            if pinned { SystemThread.pinCurrent(to: 0) }
            let r = Result { try sender() }
            senderOutcome.withLock { $0 = r }
        }
        sending.join()
        receiving.join()
        let sent = try senderOutcome.withLock { $0 }!.get()
        let received = try receiverOutcome.withLock { $0 }!.get()
        return sent.merging(received)
    }
}
