import CArchangelBench

/// The plain C ring of `CArchangelBench`: the speed of light the bridge is read against.
enum PlainRingBaseline {
    /// Streaming through the plain ring, measured once.
    static func throughput(messages: Int, payload: Int) throws -> Measurement {
        var elapsed: UInt64 = 0
        let result = plain_ring_bench_throughput(UInt64(messages), UInt32(payload), 4096, &elapsed)
        guard result == 0 else { throw BenchError.baselineFailed("plain_ring_bench_throughput", result) }
        return Measurement(name: "plain_ring.throughput", backend: "baseline", payloadBytes: payload,
                           messagesPerSecond: Double(messages) / (Double(elapsed) / 1e9), rttP50: 0, rttP99: 0,
                           allocationsPerMessage: nil, messages: messages, runs: 1)
    }

    /// Ping-pong through two plain rings, measured once.
    static func roundTrip(roundTrips: Int, payload: Int) throws -> Measurement {
        var samples = [UInt64](repeating: 0, count: roundTrips)
        let result = samples.withUnsafeMutableBufferPointer {
            plain_ring_bench_pingpong(UInt64(roundTrips), UInt32(payload), $0.baseAddress)
        }
        guard result == 0 else { throw BenchError.baselineFailed("plain_ring_bench_pingpong", result) }
        let (p50, p99) = Percentile.latency(samples)
        return Measurement(name: "plain_ring.rtt", backend: "baseline", payloadBytes: payload,
                           messagesPerSecond: 0, rttP50: p50, rttP99: p99,
                           allocationsPerMessage: nil, messages: roundTrips, runs: 1, quantiles: Percentile.quantiles(samples))
    }
}

/// A benchmark that could not run.
public enum BenchError: Error, CustomStringConvertible {
    /// A C baseline loop returned a negative errno.
    case baselineFailed(String, Int32)
    /// A message arrived out of order or damaged: the bridge is broken.
    case outOfOrder(expected: UInt64, got: UInt64)

    public var description: String {
        switch self {
        case let .baselineFailed(name, code): "\(name) failed with \(code)"
        case let .outOfOrder(expected, got): "message \(got) arrived where \(expected) was expected"
        }
    }
}
