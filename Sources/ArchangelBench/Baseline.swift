import CArchangelBench

/// The plain C ring of `CArchangelBench`: the speed of light the bridge is read against.
enum PlainRingBaseline {
    static func throughput(messages: Int, payload: Int, runs: Int) throws -> Measurement {
        var rates: [Double] = []
        for _ in 0..<runs {
            var elapsed: UInt64 = 0
            let result = plain_ring_bench_throughput(UInt64(messages), UInt32(payload), 4096, &elapsed)
            guard result == 0 else { throw BenchError.baselineFailed("plain_ring_bench_throughput", result) }
            rates.append(Double(messages) / (Double(elapsed) / 1e9))
        }
        return Measurement(name: "plain_ring.throughput", backend: "baseline", payloadBytes: payload,
                           messagesPerSecond: Percentile.median(rates), rttP50: 0, rttP99: 0,
                           allocationsPerMessage: nil, messages: messages, runs: runs)
    }

    static func roundTrip(roundTrips: Int, payload: Int, runs: Int) throws -> Measurement {
        var p50s: [Double] = [], p99s: [Double] = []
        var samples = [UInt64](repeating: 0, count: roundTrips)
        for _ in 0..<runs {
            let result = samples.withUnsafeMutableBufferPointer {
                plain_ring_bench_pingpong(UInt64(roundTrips), UInt32(payload), $0.baseAddress)
            }
            guard result == 0 else { throw BenchError.baselineFailed("plain_ring_bench_pingpong", result) }
            let values = samples.map { Double($0) }
            p50s.append(Percentile.of(values, 0.5))
            p99s.append(Percentile.of(values, 0.99))
        }
        return Measurement(name: "plain_ring.rtt", backend: "baseline", payloadBytes: payload,
                           messagesPerSecond: 0, rttP50: Percentile.median(p50s), rttP99: Percentile.median(p99s),
                           allocationsPerMessage: nil, messages: roundTrips, runs: runs)
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
