import Archangel
import ArchangelSystem
import ArgumentParser
import CArchangel
import Glibc

/// `archangel send`: push messages onto a channel from a shell.
struct SendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send messages on a channel (of a userspace host, or of the kernel module).",
        discussion: """
            The payload is, in order of precedence: each line of standard input (`send -`) or of --file, \
            one message per line without its newline; the --text string; or --size bytes of a pattern whose \
            first 8 bytes number the message (little endian, from 0). On the userspace backend this process \
            sends as the kernel side by default (a stand-in sensor, towards AI engines); on the kernel \
            backend it is always the user side (towards the module). The backend chosen is printed on \
            standard error. See docs/cli.md.
            """
    )

    @OptionGroup var backendOption: CLIBackendOption
    @OptionGroup var socketOption: SocketOption
    @Argument(help: "`-` sends each line of standard input as one message.")
    var input: String?
    @Option(help: "Send each line of this file as one message (`-`: standard input).")
    var file: String?
    @Option(help: "Channel id (created if it does not exist yet; 0..15 unless the host or module has another limit).")
    var channel: UInt32 = 0
    @Option(help: "Message type: \(MessageType.allValueStrings.joined(separator: ", ")) (dashes work too), or its number.")
    var type: MessageType = .syscallEvent
    @Option(help: "Priority: low, normal, high, critical (high and critical take the express lane).")
    var priority: MessagePriority = .normal
    @Option(help: "Messages to send (default: 1; with line input, every line). With line input it caps the lines sent.")
    var count: Int?
    @Option(help: "Messages per second, paced by absolute deadlines (message i leaves at start + i/N s; a late one does not delay the rest). Default: as fast as the channel takes them.")
    var rate: Double?
    @Option(help: "Payload bytes per message of the pattern.")
    var size = 64
    @Option(help: "Payload text instead of a pattern (the same text every message).")
    var text: String?
    @Option(help: "Which side to send from on the userspace backend: kernel (towards AI engines, the default) or user (towards the sensor).")
    var side: ChannelSide?
    @Option(help: "Seconds to wait for room when the channel is full before failing.")
    var timeout: Double = 5
    @Flag(help: "Print a JSON summary.")
    var json = false

    func validate() throws {
        if let count { guard count >= 1 else { throw ValidationError("--count must be at least 1") } }
        guard size >= 0 else { throw ValidationError("--size must not be negative") }
        if let rate { guard rate > 0, rate.isFinite else { throw ValidationError("--rate must be above 0") } }
        guard timeout >= 0 else { throw ValidationError("--timeout must not be negative") }
        if let input, input != "-" {
            throw ValidationError("the only argument is `-` (standard input); use --file \(input) for a file")
        }
        guard input == nil || file == nil else { throw ValidationError("give `-` or --file, not both") }
        guard (input == nil && file == nil) || text == nil else {
            throw ValidationError("--text and line input (`-`, --file) exclude each other")
        }
    }

    func run() throws {
        let backend = ResolvedBackend.resolve(backendOption.backend, socket: socketOption)
        backend.announce("send")
        try reportingOperatorErrors("send", backend: backend) {
            let endpoint = try backend.open(channel: channel, side: side, defaultSide: .kernel)
            defer { endpoint.close() }
            var sender = PacedSender(endpoint: endpoint, type: type, priority: priority, rate: rate,
                                     timeout: .milliseconds(Int64(timeout * 1000)), backend: backend)
            if let path = input ?? file {
                try sendLines(from: path, with: &sender)
            } else {
                try sendGenerated(with: &sender)
            }
            report(sender, endpoint: endpoint)
        }
    }

    /// One message per line of `path` (`-`: standard input), at most `count`.
    private func sendLines(from path: String, with sender: inout PacedSender) throws {
        let name = path == "-" ? "standard input" : path
        guard let stream = path == "-" ? fdopen(STDIN_FILENO, "r") : fopen(path, "r") else {
            throw OperatorError(cause: "cannot open \(path): \(ABI.describe(errno: errno))",
                                fix: "check the path and its permissions", exitCode: OperatorError.dataError)
        }
        defer { fclose(stream) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        var number = 0
        while count.map({ number < $0 }) ?? true {
            let length = getline(&line, &capacity, stream)
            guard length >= 0, let line else { break }
            number += 1
            var bytes = UnsafeRawBufferPointer(start: line, count: length)
            if bytes.last == UInt8(ascii: "\n") { bytes = UnsafeRawBufferPointer(rebasing: bytes.dropLast()) }
            let limit = sender.endpoint.maxPayload
            guard bytes.count <= limit else {
                throw OperatorError(
                    cause: "line \(number) of \(name) is \(bytes.count) bytes: too large for one message (channel \(channel)'s limit is \(limit) bytes)",
                    fix: "split the line, or recreate the channel with a larger pool buffer", exitCode: OperatorError.dataError)
            }
            try sender.send(bytes)
        }
    }

    /// `count` messages of the --text or of the numbered pattern.
    private func sendGenerated(with sender: inout PacedSender) throws {
        var payload = text.map { Array($0.utf8) } ?? (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
        let limit = sender.endpoint.maxPayload
        guard payload.count <= limit else {
            throw OperatorError(ChannelError.payloadTooLarge(size: payload.count, limit: limit),
                                backend: sender.backend, channel: channel)
        }
        for i in 0..<(count ?? 1) {
            if text == nil && payload.count >= 8 {
                payload.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(i).littleEndian, as: UInt64.self) }
            }
            try payload.withUnsafeBytes { try sender.send($0) }
        }
    }

    private func report(_ sender: PacedSender, endpoint: Channel) {
        let elapsed = Double(sender.lastNanoseconds &- sender.startNanoseconds) / 1e9
        let last = endpoint.sender.lastSequence
        let first = sender.sent > 0 ? last - UInt64(sender.sent) + 1 : 0
        if json {
            print(jsonLine([("channel", "\(endpoint.id)"), ("backend", "\"\(sender.backend.name)\""),
                            ("side", "\"\(endpoint.side)\""), ("type", "\"\(type)\""),
                            ("priority", "\"\(priority)\""), ("count", "\(sender.sent)"), ("bytes", "\(sender.bytes)"),
                            ("size", "\(sender.lastSize)"), ("first_sequence", "\(first)"),
                            ("last_sequence", "\(last)"), ("seconds", "\(elapsed)")]))
        } else {
            let n = sender.sent
            print("sent \(n) \(type) message\(n == 1 ? "" : "s") (\(sender.bytes) bytes, \(priority)) on channel \(endpoint.id) as the \(endpoint.side) side, sequences \(first)..\(last)"
                + (rate != nil ? String(format1: " in %.3f s", elapsed) : ""))
        }
    }
}

/// Sends one message at a time, paced by absolute deadlines when a rate is set.
struct PacedSender {
    let endpoint: Channel
    let type: MessageType
    let priority: MessagePriority
    let backend: ResolvedBackend
    let timeout: Duration
    /// Nanoseconds between deadlines, or nil for no pacing.
    let period: Double?
    private(set) var sent = 0
    private(set) var bytes = 0
    private(set) var lastSize = 0
    private(set) var startNanoseconds: UInt64 = 0
    private(set) var lastNanoseconds: UInt64 = 0

    init(endpoint: Channel, type: MessageType, priority: MessagePriority, rate: Double?, timeout: Duration,
         backend: ResolvedBackend) {
        self.endpoint = endpoint
        self.type = type
        self.priority = priority
        self.timeout = timeout
        self.backend = backend
        period = rate.map { 1e9 / $0 }
    }

    /// Waits for this message's deadline (start + sent × period), then sends `payload`.
    mutating func send(_ payload: UnsafeRawBufferPointer) throws {
        if sent == 0 { startNanoseconds = archangel_monotonic_ns() }
        if let period {
            // Deadlines from the start, not from the previous send: lateness does not accumulate.
            sleepUntil(monotonicNanoseconds: startNanoseconds &+ UInt64(Double(sent) * period))
        }
        do {
            try endpoint.send(type, priority: priority, bytes: payload, timeout: timeout)
        } catch {
            throw OperatorError(error, backend: backend, channel: endpoint.id.rawValue)
        }
        sent += 1
        bytes += payload.count
        lastSize = payload.count
        lastNanoseconds = archangel_monotonic_ns()
    }
}

extension String {
    /// `format` with one `%.Nf` conversion of `value` (printf without Foundation).
    init(format1 format: String, _ value: Double) {
        var buffer = [CChar](repeating: 0, count: 64)
        _ = withVaList([value]) { vsnprintf(&buffer, buffer.count, format, $0) }
        self = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
