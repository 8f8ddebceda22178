import Archangel
import ArgumentParser
import CArchangel
import Glibc

extension MessageType: ExpressibleByArgument {
    /// Accepts the statistics names (`syscall_event`), with dashes too (`syscall-event`), or the number.
    public init?(argument: String) {
        let name = argument.replacingOccurrences(of: "-", with: "_")
        if let number = UInt8(argument), let type = MessageType(rawValue: number) {
            self = type
        } else if let type = MessageType.allCases.first(where: { $0.description == name }) {
            self = type
        } else {
            return nil
        }
    }

    public static var allValueStrings: [String] { allCases.map(\.description) }
}

extension MessagePriority: ExpressibleByArgument {
    /// Accepts `low`, `normal`, `high`, `critical` or the number.
    public init?(argument: String) {
        if let number = UInt8(argument), let priority = MessagePriority(rawValue: number) {
            self = priority
        } else if let priority = MessagePriority.allCases.first(where: { $0.description == argument }) {
            self = priority
        } else {
            return nil
        }
    }

    public static var allValueStrings: [String] { allCases.map(\.description) }
}

extension ChannelSide: ExpressibleByArgument {}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}

/// One line of JSON for a message.
func jsonLine(_ fields: [(String, String)]) -> String {
    "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
}

/// `archangel send`: push messages onto a channel from a shell.
struct SendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send messages on a channel of a userspace host (as the kernel side by default: a stand-in sensor)."
    )

    @OptionGroup var socketOption: SocketOption
    @Option(help: "Channel id (created if the host does not have it).")
    var channel: UInt32 = 0
    @Option(help: "Message type: \(MessageType.allValueStrings.joined(separator: ", ")).")
    var type: MessageType = .syscallEvent
    @Option(help: "Priority: low, normal, high, critical.")
    var priority: MessagePriority = .normal
    @Option(help: "Messages to send.")
    var count = 1
    @Option(help: "Payload bytes per message (filled with a pattern; the first 8 bytes number the message).")
    var size = 64
    @Option(help: "Payload text instead of a pattern.")
    var text: String?
    @Option(help: "Which side to send from: kernel (towards AI engines) or user (towards the sensor).")
    var side: ChannelSide = .kernel
    @Option(help: "Seconds to wait for room when the channel is full.")
    var timeout: Double = 5
    @Flag(help: "Print a JSON summary.")
    var json = false

    func validate() throws {
        guard count >= 1 else { throw ValidationError("--count must be at least 1") }
        guard size >= 0 else { throw ValidationError("--size must not be negative") }
    }

    func run() throws {
        let backend = UserspaceBackend(socketPath: socketOption.socket)
        let endpoint = try backend.attach(ChannelID(channel), side: side)
        defer { endpoint.close() }
        var payload = text.map { Array($0.utf8) } ?? (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
        let start = archangel_monotonic_ns()
        for i in 0..<count {
            if text == nil && payload.count >= 8 {
                payload.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(i).littleEndian, as: UInt64.self) }
            }
            try endpoint.send(type, priority: priority, bytes: payload, timeout: .milliseconds(Int64(timeout * 1000)))
        }
        let elapsed = Double(archangel_monotonic_ns() - start) / 1e9
        if json {
            print(jsonLine([("channel", "\(endpoint.id)"), ("side", "\"\(side)\""), ("type", "\"\(type)\""),
                            ("priority", "\"\(priority)\""), ("count", "\(count)"), ("size", "\(payload.count)"),
                            ("last_sequence", "\(endpoint.sender.lastSequence)"), ("seconds", "\(elapsed)")]))
        } else {
            print("sent \(count) \(type) message\(count == 1 ? "" : "s") of \(payload.count) bytes (\(priority)) "
                + "on channel \(endpoint.id) as the \(side) side, sequences up to \(endpoint.sender.lastSequence)")
        }
    }
}

/// `archangel recv`: watch messages arriving on a channel.
struct RecvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recv",
        abstract: "Receive and print messages from a channel of a userspace host (as the user side by default)."
    )

    @OptionGroup var socketOption: SocketOption
    @Option(help: "Channel id (created if the host does not have it).")
    var channel: UInt32 = 0
    @Option(help: "Stop after this many messages (0: run until interrupted or the host goes away).")
    var count = 0
    @Option(help: "Stop when no message arrives for this many seconds (0: wait forever).")
    var timeout: Double = 0
    @Option(help: "Only print messages of this type (others are received and counted).")
    var type: MessageType?
    @Option(help: "Only print messages of at least this priority.")
    var priority: MessagePriority?
    @Option(help: "Which side to receive on: user (from the sensor) or kernel (from AI engines).")
    var side: ChannelSide = .user
    @Option(help: "Payload bytes to show per message.")
    var show = 16
    @Flag(help: "Print one JSON object per message.")
    var json = false

    func run() throws {
        let backend = UserspaceBackend(socketPath: socketOption.socket)
        let endpoint = try backend.attach(ChannelID(channel), side: side)
        defer { endpoint.close() }
        if !json { printError("watching channel \(endpoint.id) as the \(side) side; Ctrl-C stops") }
        var received = 0
        while count == 0 || received < count {
            let wait: Duration? = timeout > 0 ? .milliseconds(Int64(timeout * 1000)) : nil
            let outcome = Result { () throws(ChannelError) -> String? in
                try endpoint.receive(timeout: wait) { view in describe(view) }
            }
            let line: String?
            switch outcome {
            case .success(let text): line = text
            case .failure(.timedOut): return finish(received)
            case .failure(.peerDisconnected):
                printError("the host went away")
                return finish(received)
            case .failure(let error): throw error
            }
            received += 1
            if let line { print(line) }
        }
        finish(received)
    }

    private func finish(_ received: Int) {
        if !json { printError("received \(received) message\(received == 1 ? "" : "s")") }
    }

    private func describe(_ view: MessageView) -> String? {
        if let type, view.type != type { return nil }
        if let priority, view.priority < priority { return nil }
        let latency = Int64(bitPattern: archangel_monotonic_ns() &- view.timestamp)
        var head = [UInt8](repeating: 0, count: min(show, view.count))
        _ = head.withUnsafeMutableBytes { view.copyBytes(to: $0) }
        let hex = head.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        if json {
            return jsonLine([("sequence", "\(view.sequence)"), ("type", "\"\(view.type)\""),
                             ("priority", "\"\(view.priority)\""), ("size", "\(view.count)"),
                             ("pool", view.flags.contains(.dma) ? "true" : "false"),
                             ("copied", view.flags.contains(.copied) ? "true" : "false"),
                             ("correlation", view.correlation.map { "\($0)" } ?? "null"),
                             ("timestamp", "\(view.timestamp)"), ("latency_ns", "\(latency)"),
                             ("head", "\"\(hex)\"")])
        }
        return "#\(view.sequence) \(view.type) \(view.priority) \(view.count) B"
            + (view.flags.contains(.dma) ? " (pool)" : "") + (view.flags.contains(.copied) ? " (copied: pool empty)" : "")
            + (view.correlation.map { " re #\($0)" } ?? "")
            + " \(latency / 1000) µs: \(hex)\(view.count > head.count ? "…" : "")"
    }
}
