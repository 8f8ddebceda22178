import Archangel
import ArchangelSystem
import CArchangel
import Glibc
import Logging

/// The bridge's side of `archangel bench --backend userspace`: this process
/// is the host (kernel side, pinned to CPU 0), and a spawned `archangel
/// bench-peer` process attaches the user side through the host's socket
/// (pinned to CPU 1), as every client of the userspace backend does.
///
/// The peer takes its orders over the channel itself: one `control` message
/// per figure (`BenchPeerCommand`), so every figure runs over the same
/// attached channel, between the same two processes, as its baselines.
public final class UserspaceBridgeBenchmark: CrossProcessBridgeBenchmark {
    let options: BenchSuite.Options
    let manager: CommManager
    let server: HostServer
    let kernel: Channel
    let peer: ChildProcess
    let directory: String
    private var samples: [UInt64]

    /// Starts the host and the peer process.
    ///
    /// - Parameter executable: the `archangel` executable that runs `bench-peer`.
    public init(options: BenchSuite.Options,
                executable: String = ChildProcess.currentExecutable) throws {
        self.options = options
        var template = Array("/tmp/archangel-bench-XXXXXX".utf8CString)
        directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        // Both sides sleep at once in blocking calls: the blocking figure is
        // "both asleep", like its eventfd baseline. The spinning figures use
        // the non-blocking calls in loops.
        manager = try CommManager(configuration: .init(maxChannels: 1, waitPolicy: .sleepAtOnce, timestamps: .none))
        let id = try manager.createChannel()
        kernel = try manager.channel(id)
        var logger = Logger(label: "archangel.bench.host")
        logger.logLevel = .warning
        server = try HostServer(manager: manager, configuration: .init(socketPath: directory + "/host.sock"),
                                logger: logger)
        peer = try ChildProcess(executable: executable, arguments: ["bench-peer", "--socket", directory + "/host.sock"])
        samples = [UInt64](repeating: 0, count: max(options.roundTrips, options.blockingRoundTrips))
        SystemThread.pinCurrent(to: 0)
        // The peer says hello once attached.
        _ = try kernel.receive(timeout: .seconds(30))
    }

    deinit {
        try? command(.exit, count: 0, size: 0)
        _ = peer.wait()
        server.stop()
        unlink(directory + "/host.sock.lock")
        rmdir(directory)
    }

    private func command(_ mode: BenchPeerCommand.Mode, count: Int, size: Int) throws {
        let order = BenchPeerCommand(mode: mode, count: UInt64(count), size: UInt32(size)).bytes
        try kernel.send(.control, priority: .critical, bytes: order, timeout: .seconds(30))
    }

    public func measure(_ phase: BenchSuite.Phase, round: Int) throws -> [Measurement] {
        switch phase {
        case .throughput: [try throughput()]
        case .roundTrip: [try spinningRoundTrip(size: options.payload, name: "bridge.rtt"),
                          try spinningRoundTrip(size: 64 * 1024, name: "bridge.rtt.64k")]
        case .blockingRoundTrip: [try blockingRoundTrip()]
        }
    }

    /// `bridge.throughput`: the peer streams `messages` messages to this
    /// process, publishing every 32; this process drains them in batches.
    private func throughput() throws -> Measurement {
        let total = options.messages
        let receiver = kernel.receiver
        try command(.stream, count: total, size: options.payload)
        let start = archangel_monotonic_ns()
        var received = 0
        var expected: UInt64 = 0
        var disorder: UInt64?
        while received < total {
            let n = try receiver.tryReceiveBatch(limit: 256) { view in
                let number = view.contiguousBytes.map { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) } ?? 0
                if number != expected, disorder == nil { disorder = number }
                expected += 1
            }
            received += n
        }
        let elapsed = archangel_monotonic_ns() - start
        if let disorder { throw BenchError.outOfOrder(expected: expected, got: disorder) }
        return Measurement(name: "bridge.throughput", backend: "userspace", payloadBytes: options.payload,
                           messagesPerSecond: Double(total) / (Double(elapsed) / 1e9), rttP50: 0, rttP99: 0,
                           allocationsPerMessage: nil, messages: total, runs: 1)
    }

    /// `bridge.rtt` / `bridge.rtt.64k`: this process sends `size` bytes, the
    /// peer answers each with 64 bytes; both sides busy-poll the
    /// non-blocking calls. A payload above the pool threshold travels by
    /// descriptor: this process loans pool buffers and commits them, the
    /// peer reads the message in place (its first and last byte) and
    /// returns the buffers. Neither side copies the payload, which is the
    /// point of the pool; writing or summing 64 KiB would measure memory
    /// bandwidth, not the bridge.
    private func spinningRoundTrip(size: Int, name: String) throws -> Measurement {
        let count = options.roundTrips
        try command(.echoSpinning, count: count, size: size)
        let small = [UInt8](repeating: 0x42, count: size)
        // The endpoint's halves, hoisted out of the loop as the in-process figures do.
        let sender = kernel.sender, receiver = kernel.receiver
        try samples.withUnsafeMutableBufferPointer { out in
            try small.withUnsafeBytes { payload in
                for i in 0..<count {
                    let start = archangel_monotonic_ns()
                    if size > 1024 {
                        while try !sender.tryBeginLoan(capacity: size) {}
                        sender.loanSegment(0)[0] = UInt8(truncatingIfNeeded: i)
                        while case .wouldBlock = try sender.tryCommitLoan(type: .aiRequest, priority: .normal,
                                                                          length: size) {}
                    } else {
                        while case .wouldBlock = try sender.trySend(type: .aiRequest, priority: .normal,
                                                                    payload: payload) {}
                    }
                    while try receiver.tryReceive({ $0.count }) == nil {}
                    out[i] = archangel_monotonic_ns() - start
                }
            }
        }
        let (p50, p99) = percentiles(count)
        return Measurement(name: name, backend: "userspace", payloadBytes: size, messagesPerSecond: 0,
                           rttP50: p50, rttP99: p99, allocationsPerMessage: nil, messages: count, runs: 1,
                           quantiles: Percentile.quantiles(Array(samples[0..<count])))
    }

    /// `bridge.blocking_rtt`: the same ping-pong with both sides asleep in
    /// the blocking calls (need-wakeup set, eventfd wait) between messages.
    private func blockingRoundTrip() throws -> Measurement {
        let count = options.blockingRoundTrips
        try command(.echoBlocking, count: count, size: options.payload)
        let payload = [UInt8](repeating: 0x42, count: options.payload)
        try samples.withUnsafeMutableBufferPointer { out in
            try payload.withUnsafeBytes { bytes in
                for i in 0..<count {
                    let start = archangel_monotonic_ns()
                    try kernel.send(.aiRequest, bytes: bytes)
                    _ = try kernel.receive { $0.count }
                    out[i] = archangel_monotonic_ns() - start
                }
            }
        }
        let (p50, p99) = percentiles(count)
        return Measurement(name: "bridge.blocking_rtt", backend: "userspace", payloadBytes: options.payload,
                           messagesPerSecond: 0, rttP50: p50, rttP99: p99, allocationsPerMessage: nil,
                           messages: count, runs: 1, quantiles: Percentile.quantiles(Array(samples[0..<count])))
    }

    private func percentiles(_ count: Int) -> (Double, Double) {
        Percentile.latency(Array(samples[0..<count]))
    }
}

/// An order from the benchmark host to its peer process, sent as a `control` message.
public struct BenchPeerCommand: Sendable {
    /// What the peer does next.
    public enum Mode: UInt32, Sendable {
        /// Leave.
        case exit = 0
        /// Send `count` messages of `size` bytes, numbered, publishing every 32.
        case stream = 1
        /// Answer `count` messages with 64 bytes each, busy-polling.
        case echoSpinning = 2
        /// Answer `count` messages with `size` bytes each, sleeping in blocking receives.
        case echoBlocking = 3
    }

    /// What to do.
    public var mode: Mode
    /// How many messages.
    public var count: UInt64
    /// Payload bytes.
    public var size: UInt32

    /// Creates an order.
    public init(mode: Mode, count: UInt64, size: UInt32) {
        self.mode = mode
        self.count = count
        self.size = size
    }

    /// The wire form: mode, count, size, little-endian.
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        out.withUnsafeMutableBytes {
            $0.storeBytes(of: mode.rawValue.littleEndian, as: UInt32.self)
            $0.storeBytes(of: count.littleEndian, toByteOffset: 4, as: UInt64.self)
            $0.storeBytes(of: size.littleEndian, toByteOffset: 12, as: UInt32.self)
        }
        return out
    }

    /// Parses the wire form; nil when malformed.
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 16,
              let mode = Mode(rawValue: UInt32(littleEndian: bytes.loadUnaligned(as: UInt32.self))) else { return nil }
        self.mode = mode
        count = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt64.self))
        size = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
    }
}

/// The peer process of `UserspaceBridgeBenchmark` (`archangel bench-peer`).
public enum BenchPeer {
    /// Attaches the user side of channel 0 at `socket` and follows orders until told to exit.
    public static func run(socket: String) throws {
        SystemThread.pinCurrent(to: 1)
        let user = try Channel.open(0, backend: UserspaceBackend(socketPath: socket, create: false,
                                                                 waitPolicy: .sleepAtOnce, timestamps: .none))
        defer { user.close() }
        try user.send(.control, bytes: [1])  // attached
        var payload = [UInt8](repeating: 0x24, count: 64 * 1024)
        while true {
            let order = try user.receive { view in
                view.contiguousBytes.flatMap { BenchPeerCommand($0) }
            }
            guard let order else { continue }
            switch order.mode {
            case .exit:
                return
            case .stream:
                let sender = user.sender
                let size = Int(order.size)
                try payload.withUnsafeMutableBytes { raw in
                    for i in 0..<order.count {
                        raw.storeBytes(of: i.littleEndian, as: UInt64.self)
                        let publish = i % 32 == 31 || i == order.count - 1
                        let bytes = UnsafeRawBufferPointer(rebasing: raw[0..<size])
                        while case .wouldBlock = try sender.trySend(type: .syscallEvent, priority: .normal,
                                                                    payload: bytes, publish: publish) {
                            sender.publish()
                        }
                    }
                }
            case .echoSpinning:
                let answer = [UInt8](repeating: 0x11, count: 64)
                let sender = user.sender, receiver = user.receiver
                try answer.withUnsafeBytes { bytes in
                    for _ in 0..<order.count {
                        var got: Int?
                        repeat {
                            got = try receiver.tryReceive { view -> Int in
                                // Touch the message where it lies: its first and last byte.
                                let first = view.segment(0).first ?? 0
                                let last = view.segment(view.segmentCount - 1).last ?? 0
                                return Int(first) + Int(last)
                            }
                        } while got == nil
                        while case .wouldBlock = try sender.trySend(type: .aiResponse, priority: .normal,
                                                                    payload: bytes) {}
                    }
                }
            case .echoBlocking:
                let size = Int(order.size)
                try payload.withUnsafeBytes { raw in
                    let bytes = UnsafeRawBufferPointer(rebasing: raw[0..<size])
                    for _ in 0..<order.count {
                        _ = try user.receive { $0.count }
                        try user.send(.aiResponse, bytes: bytes)
                    }
                }
            }
        }
    }
}
