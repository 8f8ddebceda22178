import Archangel
import ArchangelSystem
import CArchangel
import Glibc
import ArchangelCore

/// `archangel bench --backend kernel`: the bridge between the kernel module
/// and this process, against the same traffic pushed through `read()` and
/// `write()` on `/dev/archangel_rw`. Needs root and the module loaded.
///
/// The kernel side of every figure is the module's in-kernel load generator
/// (`ARCHANGEL_IOC_LOADGEN`, run in a thread of this process): PRODUCE for
/// kernel -> user, SINK for user -> kernel, ECHO for round trips. The bridge
/// figures run it on a channel this process attaches through `.kernel`; the
/// baselines run the same modes on a `/dev/archangel_rw` file, whose FIFOs
/// this process reads and writes. Each round measures a baseline right
/// before its bridge figure; the ratios are medians of per-round ratios.
/// Under TCG only the ratios mean anything.
public enum KernelBenchmarks {
    /// Each bridge figure against its `read()`/`write()` baseline. The issue's
    /// bar: the rings beat `read()`/`write()` at least 10x in throughput at 64 B.
    public static let comparisons: [BenchSuite.Comparison] = [
        .init(figure: "kernel.k2u.throughput", baseline: "rw.k2u.throughput", bar: .atLeast(10)),
        .init(figure: "kernel.u2k.throughput", baseline: "rw.u2k.throughput", bar: .atLeast(10)),
        .init(figure: "kernel.rtt", baseline: "rw.rtt"),
        .init(figure: "kernel.k2u.throughput.64k", baseline: "rw.k2u.throughput.64k"),
        .init(figure: "kernel.u2k.throughput.64k", baseline: "rw.u2k.throughput.64k"),
        .init(figure: "kernel.rtt.64k", baseline: "rw.rtt.64k"),
    ]

    /// The large payload: 64 KiB, through the pool on the bridge (16 buffers).
    static let large = 64 * 1024

    /// Runs `options.runs` rounds of every figure and returns the medians.
    ///
    /// 64 KiB figures use 1/64 of `options.messages` (at least 200) and
    /// 1/16 of `options.roundTrips` (at least 100).
    public static func run(_ options: BenchSuite.Options, progress: (String) -> Void) throws -> [Measurement] {
        let user = try KernelBackend().attach(nil)
        let id = user.id
        defer {
            user.close()
            try? KernelBackend.destroyChannel(id)
        }
        let small = options.payload
        let bigMessages = max(200, options.messages / 64), bigRoundTrips = max(100, options.roundTrips / 16)
        var rounds: [[Measurement]] = []
        for round in 1...options.runs {
            progress("round \(round) of \(options.runs)")
            var row: [Measurement] = []
            for (payload, messages, roundTrips, suffix) in [(small, options.messages, options.roundTrips, ""),
                                                            (large, bigMessages, bigRoundTrips, ".64k")] {
                row.append(try rwKernelToUser(payload: payload, messages: messages, suffix: suffix))
                row.append(try kernelToUser(user, payload: payload, messages: messages, suffix: suffix))
                row.append(try rwUserToKernel(payload: payload, messages: messages, suffix: suffix))
                row.append(try userToKernel(user, payload: payload, messages: messages, suffix: suffix))
                row.append(try rwRoundTrip(payload: payload, roundTrips: roundTrips, suffix: suffix))
                row.append(try roundTrip(user, payload: payload, roundTrips: roundTrips, suffix: suffix))
            }
            BenchSuite.applyComparisons(comparisons, to: &row)
            rounds.append(row)
        }
        return BenchSuite.medians(rounds)
    }

    // MARK: The load generator in a thread

    /// Runs one load-generator run on `device` in a thread of its own; `join()` returns its outcome.
    final class Generator: @unchecked Sendable {
        private let thread: SystemThread
        private let outcome = PthreadLock<Result<KernelDevice.LoadResult, ChannelError>?>(nil)

        init(_ device: KernelDevice, channel: UInt32, mode: KernelDevice.LoadMode, size: Int = 0, count: Int,
             batch: Bool = false) throws {
            let outcome = self.outcome
            thread = try SystemThread(name: "bench-loadgen") {
                let result = Result { () throws(ChannelError) in
                    try device.loadgen(channel: channel, mode: mode, size: size, count: UInt64(count), batch: batch)
                }
                outcome.withLock { $0 = result }
            }
        }

        @discardableResult
        func join() throws -> KernelDevice.LoadResult {
            thread.join()
            return try outcome.withLock { $0 }!.get()
        }
    }

    static func payloadBuffer(_ size: Int) -> UnsafeMutableRawBufferPointer {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 8), alignment: 8)
        buffer.initializeMemory(as: UInt8.self, repeating: 0xa5)
        return buffer
    }

    // MARK: Kernel -> user

    /// PRODUCE on the channel (publishing every 64), this process receiving in batches.
    static func kernelToUser(_ user: Channel, payload: Int, messages: Int, suffix: String) throws -> Measurement {
        let generator = try Generator(try KernelDevice(), channel: user.id.rawValue, mode: .produce, size: payload,
                                      count: messages, batch: true)
        let start = archangel_monotonic_ns()
        var received = 0
        while received < messages {
            let n = try user.receiver.tryReceiveBatch(limit: 256) { _ in }
            if n > 0 {
                received += n
            } else {
                try user.receive(timeout: .seconds(60)) { _ in }
                received += 1
            }
        }
        let elapsed = archangel_monotonic_ns() - start
        try generator.join()
        return .throughput(name: "kernel.k2u.throughput" + suffix, backend: "kernel", payloadBytes: payload,
                           messages: messages, elapsedNanoseconds: elapsed)
    }

    /// PRODUCE into a `/dev/archangel_rw` file, this process reading it.
    static func rwKernelToUser(payload: Int, messages: Int, suffix: String) throws -> Measurement {
        let rw = try KernelDevice(path: KernelDevice.readWritePath)
        let generator = try Generator(rw, channel: 0, mode: .produce, size: payload, count: messages)
        let buffer = payloadBuffer(Int(ARCHANGEL_RW_MAX_MSG))
        defer { buffer.deallocate() }
        let fd = rw.descriptor
        let start = archangel_monotonic_ns()
        for _ in 0..<messages {
            guard read(fd, buffer.baseAddress, buffer.count) >= 0 else {
                throw ChannelError.system(operation: "read of \(KernelDevice.readWritePath)", errno: errno)
            }
        }
        let elapsed = archangel_monotonic_ns() - start
        try generator.join()
        return .throughput(name: "rw.k2u.throughput" + suffix, backend: "baseline", payloadBytes: payload,
                           messages: messages, elapsedNanoseconds: elapsed)
    }

    // MARK: User -> kernel

    /// This process sending (64 messages per publication), SINK on the channel draining.
    static func userToKernel(_ user: Channel, payload: Int, messages: Int, suffix: String) throws -> Measurement {
        let buffer = payloadBuffer(payload)
        defer { buffer.deallocate() }
        let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<payload])
        let generator = try Generator(try KernelDevice(), channel: user.id.rawValue, mode: .sink, count: messages)
        let sender = user.sender
        let start = archangel_monotonic_ns()
        // Commit 64, publish once (as the kernel's PRODUCE does); when full,
        // publish and fall back to a blocking send, which sleeps and wakes the kernel.
        for i in 0..<messages {
            let publish = (i + 1) % 64 == 0 || i + 1 == messages
            if try sender.trySend(type: .syscallEvent, priority: .normal, payload: bytes, publish: publish) != .sent {
                sender.publish()
                try user.send(.syscallEvent, bytes: bytes, timeout: .seconds(60))
            }
        }
        try generator.join()
        let elapsed = archangel_monotonic_ns() - start
        return .throughput(name: "kernel.u2k.throughput" + suffix, backend: "kernel", payloadBytes: payload,
                           messages: messages, elapsedNanoseconds: elapsed)
    }

    /// This process writing to a `/dev/archangel_rw` file, SINK draining it.
    static func rwUserToKernel(payload: Int, messages: Int, suffix: String) throws -> Measurement {
        let rw = try KernelDevice(path: KernelDevice.readWritePath)
        let buffer = payloadBuffer(payload)
        defer { buffer.deallocate() }
        let generator = try Generator(rw, channel: 0, mode: .sink, count: messages)
        let fd = rw.descriptor
        let start = archangel_monotonic_ns()
        for _ in 0..<messages {
            guard write(fd, buffer.baseAddress, payload) == payload else {
                throw ChannelError.system(operation: "write to \(KernelDevice.readWritePath)", errno: errno)
            }
        }
        try generator.join()
        let elapsed = archangel_monotonic_ns() - start
        return .throughput(name: "rw.u2k.throughput" + suffix, backend: "baseline", payloadBytes: payload,
                           messages: messages, elapsedNanoseconds: elapsed)
    }

    // MARK: Round trips

    /// A request sent, the kernel's ECHO answer received: one sample per round trip.
    static func roundTrip(_ user: Channel, payload: Int, roundTrips: Int, suffix: String) throws -> Measurement {
        let buffer = payloadBuffer(payload)
        defer { buffer.deallocate() }
        let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<payload])
        let warmUp = min(100, roundTrips / 10)
        let generator = try Generator(try KernelDevice(), channel: user.id.rawValue, mode: .echo,
                                      count: roundTrips + warmUp)
        var samples: [UInt64] = []
        samples.reserveCapacity(roundTrips)
        for i in 0..<(roundTrips + warmUp) {
            let t0 = archangel_monotonic_ns()
            try user.send(.aiRequest, bytes: bytes, timeout: .seconds(60))
            try user.receive(timeout: .seconds(60)) { _ in }
            if i >= warmUp { samples.append(archangel_monotonic_ns() - t0) }
        }
        try generator.join()
        return .roundTrip(name: "kernel.rtt" + suffix, backend: "kernel", payloadBytes: payload, samples: samples)
    }

    /// write() then read() on a `/dev/archangel_rw` file answered by ECHO.
    static func rwRoundTrip(payload: Int, roundTrips: Int, suffix: String) throws -> Measurement {
        let rw = try KernelDevice(path: KernelDevice.readWritePath)
        let buffer = payloadBuffer(Int(ARCHANGEL_RW_MAX_MSG))
        defer { buffer.deallocate() }
        let warmUp = min(100, roundTrips / 10)
        let generator = try Generator(rw, channel: 0, mode: .echo, count: roundTrips + warmUp)
        let fd = rw.descriptor
        var samples: [UInt64] = []
        samples.reserveCapacity(roundTrips)
        for i in 0..<(roundTrips + warmUp) {
            let t0 = archangel_monotonic_ns()
            guard write(fd, buffer.baseAddress, payload) == payload, read(fd, buffer.baseAddress, buffer.count) >= 0 else {
                throw ChannelError.system(operation: "write/read of \(KernelDevice.readWritePath)", errno: errno)
            }
            if i >= warmUp { samples.append(archangel_monotonic_ns() - t0) }
        }
        try generator.join()
        return .roundTrip(name: "rw.rtt" + suffix, backend: "baseline", payloadBytes: payload, samples: samples)
    }
}
