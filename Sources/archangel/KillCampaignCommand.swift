import Archangel
import ArchangelSystem
import ArgumentParser
import CArchangel
import Glibc

/// `archangel kill-campaign` (hidden): SIGKILLs the sender, the receiver and
/// the `serve` host of one channel at random moments, restarts each, and
/// checks from the processes' logs that every committed message was
/// delivered exactly once or its loss reported, and that nothing leaked
/// (docs/recovery.md, "The kill campaign"). `scripts/kill-campaign` runs it.
///
/// With `--role sender|receiver` it is one of the two peers instead.
struct KillCampaignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kill-campaign",
        abstract: "Kill the sender, the receiver and the host at random moments; check delivery and leaks.",
        shouldDisplay: false
    )

    @Option(help: "Kills per role (sender, receiver, host).")
    var runs = 100
    @Option(help: "Seed of the kill schedule (default: from the clock; printed either way).")
    var seed: UInt64?
    @Option(name: .customLong("max-delay-ms"), help: "Each kill comes 0..<this many milliseconds after the system settled.")
    var maxDelayMs = 60
    @Option(help: "Where to put the socket and the logs (default: a fresh directory under /tmp, removed on success).")
    var directory: String?
    @Option(help: "Messages the sender sends per millisecond at most.")
    var burst = 5
    @Option(help: "Internal: run as this peer (sender or receiver).")
    var role: String?
    @Option(help: "Internal: the host socket of a peer.")
    var socket: String?
    @Option(help: "Internal: the log file of a peer.")
    var log: String?

    func validate() throws {
        guard runs >= 0, maxDelayMs >= 1, burst >= 1 else { throw ValidationError("--runs >= 0, --max-delay-ms >= 1, --burst >= 1") }
        if let role, !["sender", "receiver"].contains(role) { throw ValidationError("--role is sender or receiver") }
        if role != nil, socket == nil || log == nil { throw ValidationError("a --role needs --socket and --log") }
    }

    func run() throws {
        if let role, let socket, let log {
            let peer = try CampaignPeer(socket: socket, logPath: log)
            if role == "sender" { peer.sendForever(burst: burst) } else { peer.receiveForever() }
        }
        let seed = self.seed ?? archangel_monotonic_ns() ^ UInt64(getpid())
        var campaign = try KillCampaign(runs: runs, seed: seed, maxDelayMs: maxDelayMs, burst: burst, directory: directory)
        let ok = campaign.run()
        throw ExitCode(ok ? 0 : 1)
    }
}

// MARK: The peers

/// A log written with one `write(2)` per line on an O_APPEND file: a line
/// written is in the file even if the process is SIGKILLed right after (no
/// user-space buffer, no fsync needed: the page cache outlives the process).
struct CampaignLog {
    let fd: Int32

    init(path: String) throws {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ChannelError.system(operation: "open \(path)", errno: errno) }
    }

    func line(_ text: String) {
        var text = text + "\n"
        text.withUTF8 { bytes in _ = write(fd, bytes.baseAddress, bytes.count) }
    }

    /// The number on the last `A` or `C` line of the file at `path` (0 if none).
    static func lastSequence(path: String) -> UInt64 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        let size = lseek(fd, 0, SEEK_END)
        let start = max(0, size - 4096)
        var bytes = [UInt8](repeating: 0, count: Int(size - start))
        let count = pread(fd, &bytes, bytes.count, start)
        guard count > 0 else { return 0 }
        for line in String(decoding: bytes[..<count], as: UTF8.self).split(separator: "\n").reversed() {
            if line.hasPrefix("A ") || line.hasPrefix("C "), let n = UInt64(line.dropFirst(2)) { return n }
        }
        return 0
    }
}

/// Payload `n`: the number (8 bytes, little endian), then bytes derived from it.
enum CampaignPayload {
    static func size(_ n: UInt64) -> Int { n % 5 == 0 ? 2000 : 24 + Int(n % 97) }

    static func fill(_ buffer: UnsafeMutableRawBufferPointer, _ n: UInt64) {
        buffer.storeBytes(of: n.littleEndian, as: UInt64.self)
        for i in 8..<buffer.count { buffer[i] = UInt8(truncatingIfNeeded: n &* 31 &+ UInt64(i)) }
    }

    /// The number in a payload, or nil when its size or bytes do not match it.
    static func check(_ view: MessageView) -> UInt64? {
        var bytes = [UInt8](repeating: 0, count: 2048)
        let count = bytes.withUnsafeMutableBytes { view.copyBytes(to: $0) }
        guard count >= 8 else { return nil }
        let n = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard count == size(n) else { return nil }
        for i in 8..<count where bytes[i] != UInt8(truncatingIfNeeded: n &* 31 &+ UInt64(i)) { return nil }
        return n
    }
}

/// One peer of the campaign, attached to channel 0 of the host at `socket`.
///
/// The sender (kernel side) logs `A n` before sending message `n` and `C n`
/// once the send returned success: `n` is committed. The receiver (user
/// side) logs `D n` inside the receive closure, while the message is still
/// lent (its delivery is not complete: killed now, it is delivered again),
/// and `K n` after the receive returned. Both log `S pid` at start and `U
/// pid recovery` after each attach, and `L k` when a host could not adopt
/// the memory they kept and `k` messages were lost (reported, counted).
struct CampaignPeer {
    let socket: String
    let logPath: String
    let log: CampaignLog

    init(socket: String, logPath: String) throws {
        self.socket = socket
        self.logPath = logPath
        log = try CampaignLog(path: logPath)
    }

    func attach(_ side: ChannelSide) -> Channel {
        let backend = UserspaceBackend(socketPath: socket)
        while true {
            if let channel = try? backend.attach(0, side: side) {
                switch channel.hostRecovery {
                case .none: log.line("U \(getpid()) fresh")
                case .adopted(let unread): log.line("U \(getpid()) adopted \(unread)")
                case .lost(let messages, _):
                    log.line("L \(messages)")
                    log.line("U \(getpid()) lost \(messages)")
                }
                return channel
            }
            usleep(2_000)
        }
    }

    func sendForever(burst: Int) -> Never {
        log.line("S \(getpid())")
        var n = CampaignLog.lastSequence(path: logPath) + 1
        var buffer = [UInt8](repeating: 0, count: 2048)
        while true {
            let channel = attach(.kernel)
            var sentThisTick = 0
            var tick = archangel_monotonic_ns() / 1_000_000
            sending: while true {
                let size = CampaignPayload.size(n)
                buffer.withUnsafeMutableBytes { CampaignPayload.fill(UnsafeMutableRawBufferPointer(rebasing: $0[0..<size]), n) }
                log.line("A \(n)")
                do {
                    try buffer.withUnsafeBytes { raw in
                        try channel.send(.syscallEvent, priority: n % 7 == 0 ? .high : .normal,
                                         bytes: UnsafeRawBufferPointer(rebasing: raw[0..<size]), timeout: .seconds(1))
                    }
                    log.line("C \(n)")
                    n += 1
                } catch ChannelError.timedOut {
                    continue  // not sent; try again
                } catch {
                    // The host went away (not sent): a fresh number, attach again.
                    n += 1
                    break sending
                }
                sentThisTick += 1
                if sentThisTick >= burst {
                    let now = archangel_monotonic_ns() / 1_000_000
                    if now == tick { usleep(1_000) }
                    tick = archangel_monotonic_ns() / 1_000_000
                    sentThisTick = 0
                }
            }
            channel.close()
        }
    }

    func receiveForever() -> Never {
        log.line("S \(getpid())")
        while true {
            let channel = attach(.user)
            while true {
                do {
                    let n = try channel.receive(timeout: .seconds(1)) { view -> UInt64? in
                        let n = CampaignPayload.check(view)
                        log.line(n.map { "D \($0)" } ?? "X \(view.sequence)")
                        // Every 8th delivery takes a while, so that some kills land inside one.
                        if let n, n % 8 == 0 { usleep(300) }
                        return n
                    }
                    if let n { log.line("K \(n)") }
                } catch ChannelError.timedOut {
                    continue
                } catch {
                    break
                }
            }
            channel.close()
        }
    }
}

// MARK: The driver

struct KillCampaign {
    enum Role: String, CaseIterable { case sender, receiver, host }

    let runs: Int
    let seed: UInt64
    let maxDelayMs: Int
    let burst: Int
    let directory: String
    let removeDirectory: Bool
    var generator: SplitMixGenerator
    let executable = ChildProcess.currentExecutable
    var socket: String { directory + "/host.sock" }
    var senderLog: String { directory + "/sender.log" }
    var receiverLog: String { directory + "/receiver.log" }

    var host: ChildProcess?
    var sender: ChildProcess?
    var receiver: ChildProcess?
    /// `U` lines seen per log, and where the scan stopped.
    var attaches: [String: Int] = [:]
    var scanned: [String: Int] = [:]
    var kills: [Role: Int] = [:]
    /// Descriptor counts at each settled moment: host (per incarnation, first and all), peers.
    var hostFDs: [(first: Int, last: Int, min: Int, max: Int)] = []
    var peerFDs: [String: (first: Int, min: Int, max: Int)] = [:]
    var hostRSS: [Int] = []
    /// The most signalfd and timerfd descriptors seen in one process.
    var singletons = 0
    var stalls = 0

    init(runs: Int, seed: UInt64, maxDelayMs: Int, burst: Int, directory: String?) throws {
        self.runs = runs
        self.seed = seed
        self.maxDelayMs = maxDelayMs
        self.burst = burst
        generator = SplitMixGenerator(seed: seed)
        if let directory {
            mkdir(directory, 0o700)
            self.directory = directory
            removeDirectory = false
        } else {
            var template = Array("/tmp/archangel-kill-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else { throw ChannelError.system(operation: "mkdtemp", errno: errno) }
            self.directory = String(cString: made)
            removeDirectory = true
        }
    }

    func say(_ text: String) { _ = writeAll(STDOUT_FILENO, "kill-campaign: " + text + "\n") }

    mutating func startHost() throws {
        host = try ChildProcess(executable: executable, arguments: ["serve", "--socket", socket, "--log-level", "critical"])
    }

    func peer(_ role: String, log: String) throws -> ChildProcess {
        try ChildProcess(executable: executable, arguments: [
            "kill-campaign", "--role", role, "--socket", socket, "--log", log, "--burst", "\(burst)"])
    }

    /// Counts the `U` lines appended to `path` since the last scan.
    mutating func attachCount(_ path: String) -> Int {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var offset = scanned[path] ?? 0
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var carry: [UInt8] = []
        while true {
            let count = pread(fd, &chunk, chunk.count, off_t(offset))
            guard count > 0 else { break }
            var lineStart = 0
            let bytes = carry + chunk[..<count]
            for (i, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") {
                if bytes[lineStart] == UInt8(ascii: "U") { attaches[path, default: 0] += 1 }
                lineStart = i + 1
            }
            carry = Array(bytes[lineStart...])
            offset += count
        }
        // A partial line (never, with one write per line) is read again next time.
        scanned[path] = offset - carry.count
        return attaches[path] ?? 0
    }

    /// Waits until the host answers and both peers attached after `since`; false after 30 s.
    mutating func settle(since: (sender: Int, receiver: Int), needSender: Bool, needReceiver: Bool) -> Bool {
        for _ in 0..<15_000 {
            let s = attachCount(senderLog), r = attachCount(receiverLog)
            if (!needSender || s > since.sender) && (!needReceiver || r > since.receiver) { return true }
            usleep(2_000)
        }
        return false
    }

    mutating func recordCounts(newHost: Bool) {
        guard let host, let sender, let receiver else { return }
        // Counted: every descriptor but the process-wide singletons opened
        // lazily (serve's signalfds, set up after it already answers; the
        // wake-up timer's timerfd, at the first coalesced send), which are
        // checked apart: at most 3 of them.
        var fds = ProcFS.countedDescriptors(host.pid)
        singletons = max(singletons, ProcFS.singletonDescriptors(host.pid))
        if newHost || hostFDs.isEmpty {
            var stableSince = archangel_monotonic_ns()
            for _ in 0..<40 where archangel_monotonic_ns() - stableSince < 100_000_000 {
                usleep(20_000)
                let again = ProcFS.countedDescriptors(host.pid)
                if again != fds { fds = again; stableSince = archangel_monotonic_ns() }
            }
            hostFDs.append((fds, fds, fds, fds))
        } else {
            // A count other than the baseline is read again for up to 2 s (a hang-up being handled is a moment).
            let first = hostFDs.last!.first
            for _ in 0..<40 where fds != first {
                usleep(50_000)
                fds = ProcFS.countedDescriptors(host.pid)
            }
            if fds != first { say("host \(host.pid): \(fds) descriptors, first \(first): " + Self.listing(host.pid)) }
            let last = hostFDs.removeLast()
            hostFDs.append((last.first, fds, min(last.min, fds), max(last.max, fds)))
        }
        hostRSS.append(ProcFS.residentKiB(host.pid))
        for (name, child) in [("sender", sender), ("receiver", receiver)] {
            var count = ProcFS.countedDescriptors(child.pid)
            singletons = max(singletons, ProcFS.singletonDescriptors(child.pid))
            // Per process; a restarted peer starts a new record under the same name with its pid.
            let key = "\(name) \(child.pid)"
            if let first = peerFDs[key]?.first {
                for _ in 0..<40 where count != first {
                    usleep(50_000)
                    count = ProcFS.countedDescriptors(child.pid)
                }
                if count != first { say("\(key): \(count) descriptors, first \(first): " + Self.listing(child.pid)) }
            }
            let old = peerFDs[key] ?? (count, count, count)
            peerFDs[key] = (old.first, min(old.min, count), max(old.max, count))
        }
    }

    /// What each descriptor of `pid` is, for a count that moved.
    static func listing(_ pid: Int32) -> String {
        ProcFS.entries("/proc/\(pid)/fd").sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }.map { entry in
            var buffer = [CChar](repeating: 0, count: 256)
            let n = readlink("/proc/\(pid)/fd/\(entry)", &buffer, 255)
            return "\(entry)=" + String(decoding: buffer[0..<max(n, 0)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }.joined(separator: " ")
    }

    mutating func run() -> Bool {
        say("seed \(seed), \(runs) kills per role (sender, receiver, host), delays 0..<\(maxDelayMs) ms, directory \(directory)")
        let shmBefore = Set(ProcFS.entries("/dev/shm"))
        var schedule = Role.allCases.flatMap { Array(repeating: $0, count: runs) }
        schedule.shuffle(using: &generator)
        let started = archangel_monotonic_ns()
        do {
            try startHost()
            sender = try peer("sender", log: senderLog)
            receiver = try peer("receiver", log: receiverLog)
        } catch {
            say("cannot start: \(error)")
            return false
        }
        var since = (sender: 0, receiver: 0)
        var newHost = true
        if !settle(since: since, needSender: true, needReceiver: true) { stalls += 1 }
        for (round, role) in schedule.enumerated() {
            recordCounts(newHost: newHost)
            newHost = false
            since = (attachCount(senderLog), attachCount(receiverLog))
            usleep(UInt32(generator.next() % UInt64(maxDelayMs * 1000)))
            do {
                switch role {
                case .sender:
                    sender?.signal(SIGKILL); _ = sender?.wait()
                    sender = try peer("sender", log: senderLog)
                case .receiver:
                    receiver?.signal(SIGKILL); _ = receiver?.wait()
                    receiver = try peer("receiver", log: receiverLog)
                case .host:
                    host?.signal(SIGKILL); _ = host?.wait()
                    try startHost()
                    newHost = true
                }
            } catch {
                say("round \(round): cannot restart the \(role): \(error)")
                return false
            }
            kills[role, default: 0] += 1
            if !settle(since: since, needSender: role != .receiver, needReceiver: role != .sender) {
                stalls += 1
                say("round \(round): the system did not settle within 30 s after killing the \(role)")
            }
            if (round + 1) % 300 == 0 { say("\(round + 1) of \(schedule.count) kills") }
        }
        recordCounts(newHost: newHost)
        // The end: stop the sender, let the receiver drain everything committed, stop it and the host.
        sender?.signal(SIGKILL); _ = sender?.wait()
        var quiet = 0, lastSize = -1
        while quiet < 20 {  // 2 s without a new line in the receiver's log
            usleep(100_000)
            var status = stat()
            stat(receiverLog, &status)
            if Int(status.st_size) == lastSize { quiet += 1 } else { quiet = 0; lastSize = Int(status.st_size) }
        }
        receiver?.signal(SIGKILL); _ = receiver?.wait()
        let hostPid = host?.pid ?? 0
        host?.signal(SIGTERM)
        let hostExit = host?.wait(timeout: .seconds(10))
        if hostExit == nil { host?.signal(SIGKILL); _ = host?.wait() }
        let seconds = Double(archangel_monotonic_ns() - started) / 1e9

        let ledger = CampaignLedger(senderLog: senderLog, receiverLog: receiverLog)
        let leftovers = ProcFS.entries(directory).filter { !$0.hasSuffix(".log") }.sorted()
        let shmNew = Set(ProcFS.entries("/dev/shm")).subtracting(shmBefore).sorted()
        let hostFDGrowth = hostFDs.map { $0.max - $0.first }.max() ?? 0
        let peerFDGrowth = peerFDs.values.map { $0.max - $0.first }.max() ?? 0
        let hostFDRange = (hostFDs.map(\.min).min() ?? 0, hostFDs.map(\.max).max() ?? 0)
        say(String(format: "%.1f s", seconds) + ": kills sender \(kills[.sender] ?? 0), receiver \(kills[.receiver] ?? 0), "
            + "host \(kills[.host] ?? 0); stalls \(stalls)")
        say("messages: attempted \(ledger.attempted), committed \(ledger.committed), delivered \(ledger.deliveredDistinct) "
            + "distinct (\(ledger.deliveries) deliveries), redelivered after a kill mid-delivery \(ledger.redelivered), "
            + "delivered though not known committed \(ledger.uncommittedDelivered)")
        say("violations: duplicates \(ledger.duplicates), committed but never delivered \(ledger.missing), "
            + "never attempted but delivered \(ledger.phantoms), bad payloads \(ledger.badPayloads); "
            + "losses reported \(ledger.reportedLost) (attaches: \(ledger.adoptions) adopted the kept memory, "
            + "\(ledger.fresh) fresh, \(ledger.lossReports) lost)")
        say("resources: host fds at settled moments \(hostFDRange.0)...\(hostFDRange.1), growth within a host "
            + "\(hostFDGrowth); peer fd growth \(peerFDGrowth); signalfd+timerfd per process at most \(singletons); host VmRSS \(hostRSS.min() ?? 0)...\(hostRSS.max() ?? 0) KiB; "
            + "host \(hostPid) exit \(hostExit.map { "\($0)" } ?? "killed"); left in the socket directory: "
            + "\(leftovers.isEmpty ? "nothing" : leftovers.joined(separator: " ")); new in /dev/shm: "
            + "\(shmNew.isEmpty ? "nothing" : shmNew.joined(separator: " "))")
        let leaked = leftovers != ["host.sock.lock"] || !shmNew.isEmpty || hostFDGrowth != 0 || peerFDGrowth != 0
            || singletons > 3
        let ok = ledger.duplicates == 0 && ledger.missing <= ledger.reportedLost && ledger.phantoms == 0
            && ledger.badPayloads == 0 && stalls == 0 && !leaked && hostExit == 0
        if !ok {
            say("FAILED (logs kept in \(directory))")
            if !ledger.examples.isEmpty { say("first problems: " + ledger.examples.joined(separator: "; ")) }
        } else {
            say("passed")
            if removeDirectory {
                for name in ProcFS.entries(directory) { unlink(directory + "/" + name) }
                rmdir(directory)
            }
        }
        return ok
    }
}

/// What the logs say, checked.
///
/// - committed: the sender logged `C n` (its send returned success);
/// - a delivery is `D n`; it is complete when the same receiver process
///   logged `K n` or went on to another `D` (receives are sequential); the
///   last `D` of a killed receiver without its `K` is in flight: delivered
///   again to its successor, that is a redelivery, not a duplicate;
/// - a duplicate is a `D n` for a message whose earlier delivery was
///   complete; missing: committed and never delivered; phantom: delivered
///   and never attempted (`A n`). Delivered without a `C` is allowed: the
///   sender may have died between the publication and its log line.
struct CampaignLedger {
    var attempted = 0, committed = 0, deliveredDistinct = 0, deliveries = 0, redelivered = 0
    var duplicates = 0, missing = 0, phantoms = 0, badPayloads = 0, uncommittedDelivered = 0
    var reportedLost = 0, adoptions = 0, fresh = 0, lossReports = 0
    var examples: [String] = []

    init(senderLog: String, receiverLog: String) {
        var attemptedSet = Set<UInt64>(), committedSet = Set<UInt64>()
        Self.forEachLine(senderLog) { kind, rest in
            switch kind {
            case UInt8(ascii: "A"): if let n = UInt64(rest) { attemptedSet.insert(n) }
            case UInt8(ascii: "C"): if let n = UInt64(rest) { committedSet.insert(n) }
            case UInt8(ascii: "L"): reportedLost += Int(rest) ?? 0; lossReports += 1
            case UInt8(ascii: "U"): if rest.contains("adopted") { adoptions += 1 } else if rest.contains("fresh") { fresh += 1 }
            default: break
            }
        }
        var consumed = Set<UInt64>()
        var inFlight: UInt64?      // this receiver process's latest D without its K
        var orphans = Set<UInt64>()  // in flight when a receiver process ended
        Self.forEachLine(receiverLog) { kind, rest in
            switch kind {
            case UInt8(ascii: "S"):
                if let n = inFlight { orphans.insert(n) }
                inFlight = nil
            case UInt8(ascii: "D"):
                guard let n = UInt64(rest) else { return }
                if let previous = inFlight { consumed.insert(previous) }  // the closure returned
                deliveries += 1
                if consumed.contains(n) {
                    duplicates += 1
                    if examples.count < 5 { examples.append("message \(n) delivered again after its delivery completed") }
                } else if orphans.remove(n) != nil {
                    redelivered += 1
                }
                inFlight = n
            case UInt8(ascii: "K"):
                if let n = UInt64(rest) { consumed.insert(n); if inFlight == n { inFlight = nil } }
            case UInt8(ascii: "X"):
                badPayloads += 1
                if examples.count < 5 { examples.append("a payload that does not match its number (header sequence \(rest))") }
            case UInt8(ascii: "L"): reportedLost += Int(rest) ?? 0; lossReports += 1
            case UInt8(ascii: "U"): if rest.contains("adopted") { adoptions += 1 } else if rest.contains("fresh") { fresh += 1 }
            default: break
            }
        }
        if let n = inFlight { orphans.insert(n) }
        // An orphan never delivered again was consumed after all (killed after its closure returned).
        let delivered = consumed.union(orphans)
        attempted = attemptedSet.count
        committed = committedSet.count
        deliveredDistinct = delivered.count
        let missingSet = committedSet.subtracting(delivered)
        missing = missingSet.count
        if let n = missingSet.min(), examples.count < 5 { examples.append("committed message \(n) never delivered") }
        let phantomSet = delivered.subtracting(attemptedSet)
        phantoms = phantomSet.count
        if let n = phantomSet.min(), examples.count < 5 { examples.append("message \(n) delivered, never sent") }
        uncommittedDelivered = delivered.subtracting(committedSet).count - phantoms
    }

    /// Calls `body` with each line's first byte and the text after "X ".
    static func forEachLine(_ path: String, _ body: (UInt8, Substring) -> Void) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var carry: [UInt8] = []
        while true {
            let count = read(fd, &chunk, chunk.count)
            guard count > 0 else { break }
            let bytes = carry + chunk[..<count]
            var start = 0
            for i in bytes.indices where bytes[i] == UInt8(ascii: "\n") {
                if i - start >= 1 {
                    let text = String(decoding: bytes[start..<i], as: UTF8.self)
                    body(bytes[start], text.dropFirst(2))
                }
                start = i + 1
            }
            carry = Array(bytes[start...])
        }
    }
}

/// The campaign's reproducible random numbers (SplitMix64).
struct SplitMixGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// What /proc says about a process.
enum ProcFS {
    /// Entries of /proc/`pid`/fd.
    static func descriptorCount(_ pid: Int32) -> Int { entries("/proc/\(pid)/fd").count }

    /// What descriptor `fd` of `pid` is (its /proc link).
    static func target(_ pid: Int32, _ fd: String) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let n = readlink("/proc/\(pid)/fd/\(fd)", &buffer, 255)
        return String(decoding: buffer[0..<max(n, 0)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func isSingleton(_ target: String) -> Bool {
        target == "anon_inode:[signalfd]" || target == "anon_inode:[timerfd]"
    }

    /// Descriptors of `pid` but its signalfds and timerfds.
    static func countedDescriptors(_ pid: Int32) -> Int {
        entries("/proc/\(pid)/fd").filter { !isSingleton(target(pid, $0)) }.count
    }

    /// Its signalfds and timerfds.
    static func singletonDescriptors(_ pid: Int32) -> Int {
        entries("/proc/\(pid)/fd").filter { isSingleton(target(pid, $0)) }.count
    }

    /// VmRSS of `pid` in KiB (0 when unreadable).
    static func residentKiB(_ pid: Int32) -> Int {
        let fd = open("/proc/\(pid)/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 8192)
        let count = read(fd, &bytes, bytes.count)
        guard count > 0 else { return 0 }
        for line in String(decoding: bytes[..<count], as: UTF8.self).split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
        return 0
    }

    /// Names in a directory, without . and ..
    static func entries(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
