import Archangel
import ArchangelSystem
import CArchangel
import CArchangelBench
import Synchronization

/// Benchmarks of the bridge itself, between the two endpoints of one channel.
///
/// The kernel side runs on a second thread pinned to CPU 1, the user side on
/// the caller's thread pinned to CPU 0, as the C baseline does.
enum BridgeBenchmarks {
    /// One-way streaming kernel → user, measured once. `batch` messages share
    /// one publication (1 = publish every message).
    static func throughput(kernel: Channel, user: Channel, backend: String, messages: Int, payload: Int,
                           batch: Int) throws -> Measurement {
        let (elapsed, allocated) = try oneThroughputRun(kernel: kernel, user: user, messages: messages,
                                                       payload: payload, batch: batch)
        return Measurement(name: batch > 1 ? "bridge.throughput.batched" : "bridge.throughput.unbatched",
                           backend: backend, payloadBytes: payload,
                           messagesPerSecond: Double(messages) / (Double(elapsed) / 1e9), rttP50: 0, rttP99: 0,
                           allocationsPerMessage: allocationsPerMessage(allocated, messages),
                           messages: messages, runs: 1)
    }

    private static func oneThroughputRun(kernel: Channel, user: Channel, messages: Int, payload: Int,
                                         batch: Int) throws -> (elapsed: UInt64, allocations: UInt64) {
        let start = Atomic<Bool>(false)
        let ready = Atomic<Bool>(false)
        let producerFailure = Mutex<(any Error)?>(nil)
        SystemThread.pinCurrent(to: 0)
        let producer = try SystemThread(name: "bench-producer") {
            SystemThread.pinCurrent(to: 1)
            var buffer = [UInt8](repeating: 0xA5, count: max(payload, 8))
            let sender = kernel.sender
            ready.store(true, ordering: .releasing)
            while !start.load(ordering: .acquiring) {}
            do {
                try buffer.withUnsafeMutableBytes { raw in
                    let bytes = UnsafeRawBufferPointer(raw)
                    var sent = 0
                    while sent < messages {
                        raw.storeBytes(of: UInt64(sent), as: UInt64.self)
                        let publishNow = batch <= 1 || (sent + 1) % batch == 0 || sent + 1 == messages
                        switch try sender.trySend(type: .syscallEvent, priority: .normal, payload: bytes,
                                                  publish: publishNow) {
                        case .sent:
                            sent += 1
                        case .wouldBlock:
                            sender.publish()
                        }
                    }
                }
            } catch {
                producerFailure.withLock { $0 = error }
            }
        }
        while !ready.load(ordering: .acquiring) {}
        let allocationsBefore = archangel_alloc_count()
        let t0 = archangel_monotonic_ns()
        start.store(true, ordering: .releasing)
        var expected: UInt64 = 0
        var mismatch: UInt64? = nil
        let receiver = user.receiver
        while expected < UInt64(messages) {
            let got = try receiver.tryReceive { view -> UInt64 in
                view.contiguousBytes!.loadUnaligned(as: UInt64.self)
            }
            guard let got else {
                if producerFailure.withLock({ $0 != nil }) { break }
                continue
            }
            if got != expected { mismatch = got; break }
            expected += 1
        }
        let t1 = archangel_monotonic_ns()
        let allocationsAfter = archangel_alloc_count()
        producer.join()
        if let error = producerFailure.withLock({ $0 }) { throw error }
        if let mismatch { throw BenchError.outOfOrder(expected: expected, got: mismatch) }
        return (t1 - t0, allocationsAfter - allocationsBefore)
    }

    /// Spinning ping-pong, measured once: user sends, kernel side echoes, user times each round trip.
    static func roundTrip(kernel: Channel, user: Channel, backend: String, roundTrips: Int,
                          payload: Int) throws -> Measurement {
        var samples = [UInt64](repeating: 0, count: roundTrips)
        let allocated = try samples.withUnsafeMutableBufferPointer { out in
            try oneRoundTripRun(kernel: kernel, user: user, roundTrips: roundTrips, payload: payload, samples: out)
        }
        let (p50, p99) = Percentile.latency(samples)
        return Measurement(name: "bridge.rtt", backend: backend, payloadBytes: payload, messagesPerSecond: 0,
                           rttP50: p50, rttP99: p99, allocationsPerMessage: allocationsPerMessage(allocated, roundTrips),
                           messages: roundTrips, runs: 1, quantiles: Percentile.quantiles(samples))
    }

    /// Allocations per message, or nil when the counter is not compiled in (sanitizer builds).
    private static func allocationsPerMessage(_ allocated: UInt64, _ messages: Int) -> Double? {
        archangel_alloc_counting_available() == 1 ? Double(allocated) / Double(messages) : nil
    }

    private static func oneRoundTripRun(kernel: Channel, user: Channel, roundTrips: Int, payload: Int,
                                        samples: UnsafeMutableBufferPointer<UInt64>) throws -> UInt64 {
        let warmUp = 10_000
        let total = warmUp + roundTrips
        SystemThread.pinCurrent(to: 0)
        let echoFailure = Mutex<(any Error)?>(nil)
        let echo = try SystemThread(name: "bench-echo") {
            SystemThread.pinCurrent(to: 1)
            // Hoisted so the loop pays no reference counting; the closure
            // captures only a raw buffer (capturing a class reference costs a
            // retain and release per call). The echo copies the payload, as
            // the C baseline's echo does.
            let receiver = kernel.receiver, sender = kernel.sender
            let reply = UnsafeMutableRawBufferPointer.allocate(byteCount: max(payload, 8), alignment: 8)
            defer { reply.deallocate() }
            do {
                var echoed = 0
                while echoed < total {
                    guard let count = try receiver.tryReceive({ view in view.copyBytes(to: reply) }) else { continue }
                    let bytes = UnsafeRawBufferPointer(rebasing: reply[0..<count])
                    while try sender.trySend(type: .aiResponse, priority: .normal, payload: bytes) != .sent {}
                    echoed += 1
                }
            } catch {
                echoFailure.withLock { $0 = error }
            }
        }
        let buffer = [UInt8](repeating: 0x5A, count: max(payload, 8))
        var allocationsBefore: UInt64 = 0
        let sender = user.sender, receiver = user.receiver
        try buffer.withUnsafeBytes { bytes in
            for i in 0..<total {
                if i == warmUp { allocationsBefore = archangel_alloc_count() }
                let t0 = archangel_monotonic_ns()
                while try sender.trySend(type: .aiRequest, priority: .normal, payload: bytes) != .sent {}
                while try receiver.tryReceive({ _ in () }) == nil {
                    if echoFailure.withLock({ $0 != nil }) { break }
                }
                let t1 = archangel_monotonic_ns()
                if i >= warmUp { samples[i - warmUp] = t1 - t0 }
            }
        }
        let allocationsAfter = archangel_alloc_count()
        echo.join()
        if let error = echoFailure.withLock({ $0 }) { throw error }
        return allocationsAfter - allocationsBefore
    }
}
