import Archangel
import ArgumentParser
import CArchangel
import Glibc

/// `archangel recv`: watch messages arriving on a channel.
struct RecvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recv",
        abstract: "Receive and print messages from a channel (of a userspace host, or of the kernel module).",
        discussion: """
            Delivery is at-least-once: each message is printed and flushed to standard output while it is \
            still held, and released only after the write returned. A recv killed between the two leaves \
            the message queued, and the next recv on that side prints it again, with the same sequence \
            number. So a reader sees every message, some possibly twice; duplicates and gaps show by \
            sequence number (--quiet counts them). If standard output cannot be written, recv exits (74) \
            without releasing the message. Ctrl-C stops after the current message and prints the summary. \
            The backend chosen and the summary go to standard error (with --quiet the summary is the output). \
            See docs/cli.md.
            """
    )

    @OptionGroup var backendOption: CLIBackendOption
    @OptionGroup var socketOption: SocketOption
    @Option(help: "Channel id (created if it does not exist yet; 0..15 unless the host or module has another limit).")
    var channel: UInt32 = 0
    @Option(help: "Stop after this many messages (0: run until interrupted or the host goes away).")
    var count = 0
    @Option(help: "Stop when no message arrives for this many seconds (0: wait forever).")
    var timeout: Double = 0
    @Option(help: "Only print messages of this type (others are received and counted).")
    var type: MessageType?
    @Option(help: "Only print messages of at least this priority.")
    var priority: MessagePriority?
    @Option(help: "Which side to receive on, userspace backend: user (from the sensor, the default) or kernel (from AI engines). The kernel backend is always the user side.")
    var side: ChannelSide?
    @Option(help: "Payload bytes to show per message (text output).")
    var show = 16
    @Flag(help: "Print one JSON object per message (type, priority, sequence, timestamp, size, payload in base64).")
    var json = false
    @Flag(help: "Print nothing per message; at the end, a summary: received, bytes, first/last sequence, missing sequences and duplicates.")
    var quiet = false

    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count must not be negative") }
        guard timeout >= 0 else { throw ValidationError("--timeout must not be negative") }
        guard show >= 0 else { throw ValidationError("--show must not be negative") }
    }

    func run() throws {
        let backend = ResolvedBackend.resolve(backendOption.backend, socket: socketOption)
        backend.announce("recv")
        try reportingOperatorErrors("recv", backend: backend) {
            let endpoint = try backend.open(channel: channel, side: side, defaultSide: .user)
            defer { endpoint.close() }
            CLISignals.install()
            if !json && !quiet { printError("watching channel \(endpoint.id) as the \(endpoint.side) side; Ctrl-C stops") }
            let tally = try receive(from: endpoint, backend: backend)
            if quiet {
                print(json ? tally.json(channel: endpoint.id.rawValue) : tally.text)
            } else {
                printError(tally.text)
            }
        }
    }

    /// Receives until `count`, the idle timeout, Ctrl-C or the peer going away.
    private func receive(from endpoint: Channel, backend: ResolvedBackend) throws -> SequenceTally {
        var tally = SequenceTally()
        var idleSince = archangel_monotonic_ns()
        let idleLimit = UInt64(timeout * 1e9)
        while (count == 0 || tally.received < count) && !CLISignals.stopping {
            // Wait in slices, so Ctrl-C and the idle timeout are noticed within a quarter second.
            let slice: Duration = .milliseconds(250)
            do throws(ChannelError) {
                try endpoint.receive(timeout: slice) { view in
                    tally.record(view)
                    // Printed and flushed before the closure returns, that is before the release.
                    if !quiet, let line = describe(view) { writeOrExit(line + "\n") }
                }
                idleSince = archangel_monotonic_ns()
            } catch .timedOut {
                if idleLimit > 0 && archangel_monotonic_ns() &- idleSince >= idleLimit { break }
            } catch .peerDisconnected {
                printError("archangel recv: the host went away; restart it with `archangel serve`")
                break
            } catch .closed {
                printError("archangel recv: channel \(endpoint.id) was destroyed")
                break
            } catch {
                throw OperatorError(error, backend: backend, channel: channel)
            }
        }
        return tally
    }

    /// Writes all of `text` to standard output, or exits 74 without returning
    /// (so the message being printed is not released: at-least-once).
    private func writeOrExit(_ text: String) {
        let ok = writeAll(STDOUT_FILENO, text)
        if !ok {
            printError("archangel recv: error: cannot write to standard output (\(ABI.describe(errno: errno))); the message stays queued for the next reader\n  fix: check where the output goes (a closed pipe, a full disk)")
            _exit(OperatorError.ioError)
        }
    }

    /// The line printed for `view`, or nil when the filters skip it.
    private func describe(_ view: MessageView) -> String? {
        if let type, view.type != type { return nil }
        if let priority, view.priority < priority { return nil }
        let latency = Int64(bitPattern: archangel_monotonic_ns() &- view.timestamp)
        if json {
            let payload = view.contiguousBytes.map(base64) ?? view.bytes.withUnsafeBytes(base64)
            return jsonLine([("sequence", "\(view.sequence)"), ("type", "\"\(view.type)\""),
                             ("priority", "\"\(view.priority)\""), ("size", "\(view.count)"),
                             ("timestamp", "\(view.timestamp)"),
                             ("pool", view.flags.contains(.dma) ? "true" : "false"),
                             ("copied", view.flags.contains(.copied) ? "true" : "false"),
                             ("correlation", view.correlation.map { "\($0)" } ?? "null"),
                             ("latency_ns", "\(latency)"), ("payload", "\"\(payload)\"")])
        }
        var head = [UInt8](repeating: 0, count: min(show, view.count))
        _ = head.withUnsafeMutableBytes { view.copyBytes(to: $0) }
        let hex = head.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        return "#\(view.sequence) \(view.type) \(view.priority) \(view.count) B"
            + (view.flags.contains(.dma) ? " (pool)" : "") + (view.flags.contains(.copied) ? " (copied: pool empty)" : "")
            + (view.correlation.map { " re #\($0)" } ?? "")
            + " \(latency / 1000) µs: \(hex)\(view.count > head.count ? "…" : "")"
    }
}

/// What `recv` counted: messages, bytes, and the sequence numbers seen, to
/// find duplicates (a sequence seen twice) and gaps (sequences missing between
/// the lowest and the highest seen). The express lane may deliver a later
/// sequence before an earlier one; that is neither.
struct SequenceTally {
    private(set) var received = 0
    private(set) var bytes = 0
    private(set) var first: UInt64?
    private(set) var last: UInt64?
    private(set) var lowest = UInt64.max
    private(set) var highest: UInt64 = 0
    private(set) var distinct = 0
    /// Bit i: sequence `base + i` seen.
    private var bitmap: [UInt64] = []
    private var base: UInt64 = 0
    /// Sequences below `base` (delivered out of order before the first one seen).
    private var early: Set<UInt64> = []

    mutating func record(_ view: MessageView) {
        received += 1
        bytes += view.count
        let sequence = view.sequence
        if first == nil {
            first = sequence
            base = sequence
        }
        last = sequence
        lowest = min(lowest, sequence)
        highest = max(highest, sequence)
        if sequence < base {
            if early.insert(sequence).inserted { distinct += 1 }
            return
        }
        let offset = sequence - base
        let word = Int(offset / 64), bit = UInt64(1) << (offset % 64)
        if word >= bitmap.count { bitmap += [UInt64](repeating: 0, count: word - bitmap.count + 1) }
        if bitmap[word] & bit == 0 {
            bitmap[word] |= bit
            distinct += 1
        }
    }

    /// Messages received more than once.
    var duplicates: Int { received - distinct }
    /// Sequences missing between the lowest and the highest received.
    var missing: UInt64 { received == 0 ? 0 : highest - lowest + 1 - UInt64(distinct) }

    var text: String {
        let range = first.map { "sequences \($0)..\(last ?? $0)" } ?? "no sequences"
        return "received \(received) message\(received == 1 ? "" : "s"), \(bytes) bytes, \(range), \(missing) missing, \(duplicates) duplicate\(duplicates == 1 ? "" : "s")"
    }

    func json(channel: UInt32) -> String {
        jsonLine([("channel", "\(channel)"), ("received", "\(received)"), ("bytes", "\(bytes)"),
                  ("first_sequence", first.map { "\($0)" } ?? "null"), ("last_sequence", last.map { "\($0)" } ?? "null"),
                  ("lowest_sequence", received > 0 ? "\(lowest)" : "null"),
                  ("highest_sequence", received > 0 ? "\(highest)" : "null"),
                  ("missing", "\(missing)"), ("duplicates", "\(duplicates)")])
    }
}
