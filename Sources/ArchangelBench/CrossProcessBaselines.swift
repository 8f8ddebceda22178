import CArchangelBench

/// The cross-process baselines of `archangel bench --backend userspace`.
///
/// Each figure runs between this process and a child forked for the run
/// (`Sources/CArchangelBench/crossproc_bench.c`); the child is plain C over
/// system calls, pinned to CPU 1 while the caller is pinned to CPU 0. They
/// are what two processes get without Archangel: the kernel's byte streams,
/// the plain ring in shared memory, and a bare eventfd wake-up. Every
/// function measures once; the suite takes medians over rounds.
enum CrossProcessBaselines {
    /// A byte-stream transport between the two processes.
    enum Stream {
        /// `socketpair(AF_UNIX, SOCK_STREAM)`.
        case unixSocket
        /// `pipe2()`; one per direction.
        case pipe

        /// The figure-name prefix.
        var name: String {
            switch self {
            case .unixSocket: "unix_socket"
            case .pipe: "pipe"
            }
        }

        var transport: Int32 {
            switch self {
            case .unixSocket: CROSSPROC_UNIX_SOCKET
            case .pipe: CROSSPROC_PIPE
            }
        }
    }

    /// `<stream>.throughput`: the child writes one message per `write()`;
    /// this process drains with 256 KiB reads and checks every message number.
    static func streamThroughput(_ stream: Stream, messages: Int, payload: Int) throws -> Measurement {
        var elapsed: UInt64 = 0
        let result = crossproc_bench_stream_throughput(stream.transport, UInt64(messages), UInt32(payload), &elapsed)
        guard result == 0 else { throw BenchError.baselineFailed("\(stream.name) throughput", result) }
        return throughputMeasurement("\(stream.name).throughput", messages: messages, payload: payload,
                                     elapsed: elapsed)
    }

    /// `<stream>.rtt` (both sides busy-poll nonblocking reads) or
    /// `<stream>.blocking_rtt` (both sides sleep in `read()`): a ping-pong of
    /// `payload` bytes.
    static func streamRoundTrip(_ stream: Stream, spinning: Bool, roundTrips: Int,
                                payload: Int) throws -> Measurement {
        let name = "\(stream.name).\(spinning ? "rtt" : "blocking_rtt")"
        return try roundTripMeasurement(name, roundTrips: roundTrips, payload: payload) {
            crossproc_bench_stream_pingpong(stream.transport, spinning ? 1 : 0, UInt64(roundTrips),
                                            UInt32(payload), $0)
        }
    }

    /// `shm_ring.throughput`: the plain ring (4,096 slots) in memfd shared
    /// memory, child pushing, this process reading in place; both busy-poll.
    static func shmRingThroughput(messages: Int, payload: Int) throws -> Measurement {
        var elapsed: UInt64 = 0
        let result = crossproc_bench_shm_ring_throughput(UInt64(messages), UInt32(payload), 4096, &elapsed)
        guard result == 0 else { throw BenchError.baselineFailed("shm_ring throughput", result) }
        return throughputMeasurement("shm_ring.throughput", messages: messages, payload: payload, elapsed: elapsed)
    }

    /// `shm_ring.rtt`: ping-pong through two plain rings in memfd shared
    /// memory, both sides busy-polling.
    static func shmRingRoundTrip(roundTrips: Int, payload: Int) throws -> Measurement {
        try roundTripMeasurement("shm_ring.rtt", roundTrips: roundTrips, payload: payload) {
            crossproc_bench_shm_ring_pingpong(UInt64(roundTrips), UInt32(payload), $0)
        }
    }

    /// `eventfd.blocking_rtt`: two eventfds, each side asleep in `read()`
    /// until the other writes. The "payload" is the 8-byte counter.
    static func eventfdBlockingRoundTrip(roundTrips: Int) throws -> Measurement {
        try roundTripMeasurement("eventfd.blocking_rtt", roundTrips: roundTrips, payload: 8) {
            crossproc_bench_eventfd_pingpong(UInt64(roundTrips), $0)
        }
    }

    private static func throughputMeasurement(_ name: String, messages: Int, payload: Int,
                                              elapsed: UInt64) -> Measurement {
        Measurement(name: name, backend: "baseline", payloadBytes: payload,
                    messagesPerSecond: Double(messages) / (Double(elapsed) / 1e9), rttP50: 0, rttP99: 0,
                    allocationsPerMessage: nil, messages: messages, runs: 1)
    }

    /// Runs `body` over a caller-allocated sample buffer and takes p50 and p99.
    private static func roundTripMeasurement(
        _ name: String, roundTrips: Int, payload: Int,
        _ body: (UnsafeMutablePointer<UInt64>?) -> Int32
    ) throws -> Measurement {
        var samples = [UInt64](repeating: 0, count: roundTrips)
        let result = samples.withUnsafeMutableBufferPointer { body($0.baseAddress) }
        guard result == 0 else { throw BenchError.baselineFailed(name, result) }
        let (p50, p99) = Percentile.latency(samples)
        return Measurement(name: name, backend: "baseline", payloadBytes: payload, messagesPerSecond: 0,
                           rttP50: p50, rttP99: p99, allocationsPerMessage: nil, messages: roundTrips, runs: 1, quantiles: Percentile.quantiles(samples))
    }
}
