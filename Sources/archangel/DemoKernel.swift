import Archangel
import ArchangelSystem
import ArgumentParser
import CArchangel
import Glibc
import Synchronization

/// `archangel demo --backend kernel`: the sensor is the kernel module's
/// in-kernel load generator, the engine is this process's user side.
///
/// One thread runs `ARCHANGEL_IOC_LOADGEN` PRODUCE (every message type, kernel
/// to user), another runs ECHO (the kernel answers each AI request with an
/// AI_RESPONSE correlated to it); this process sends the AI requests and
/// receives everything on the user side of a channel it creates in the
/// module and destroys at the end. Needs root and the module loaded.
extension DemoCommand {
    func runKernel() throws {
        let user = try KernelBackend().attach(nil)
        let id = user.id
        defer {
            user.close()
            try? KernelBackend.destroyChannel(id)
        }
        print("archangel demo: channel \(id), backend kernel (\(KernelDevice.defaultPath), in-kernel load generator), "
            + "\(events) events + \(requests) AI requests")
        let failures = Mutex<[String]>([])
        let events = self.events, requests = self.requests, largeEvery = self.largeEvery
        let start = archangel_monotonic_ns()
        // The sensor: PRODUCE in the kernel, in a thread of this process (the ioctl runs in the caller).
        let sensor = try SystemThread(name: "demo-loadgen") {
            guard events > 0 else { return }
            do {
                try KernelDevice().loadgen(channel: id.rawValue, mode: .produce, size: 64, count: UInt64(events))
            } catch { failures.withLock { $0.append("kernel sensor (LOADGEN PRODUCE): \(error)") } }
        }
        // The kernel's verdicts: ECHO answers each request with its payload.
        let echo = try SystemThread(name: "demo-echo") {
            guard requests > 0 else { return }
            do {
                try KernelDevice().loadgen(channel: id.rawValue, mode: .echo, count: UInt64(requests))
            } catch { failures.withLock { $0.append("kernel echo (LOADGEN ECHO): \(error)") } }
        }
        // This process asks: every request carries its send time (the kernel echoes it back).
        let requester = try SystemThread(name: "demo-requests") {
            let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 8)
            defer { payload.deallocate() }
            payload.initializeMemory(as: UInt8.self, repeating: 0)
            do {
                for i in 0..<requests {
                    let size = largeEvery > 0 && i % largeEvery == largeEvery - 1 ? 2048 : 64
                    payload.storeBytes(of: archangel_monotonic_ns(), as: UInt64.self)
                    try user.send(.aiRequest, priority: i % 16 == 0 ? .high : .normal,
                                  bytes: UnsafeRawBufferPointer(rebasing: payload[0..<size]))
                }
            } catch { failures.withLock { $0.append("requests: \(error)") } }
        }
        // The engine: everything the kernel sends, events and verdicts alike.
        var tally = DemoEngine.Tally()
        var latencies: [UInt64] = []
        latencies.reserveCapacity(requests)
        do {
            for _ in 0..<(events + requests) {
                let sentAt = try user.receive(timeout: .seconds(30)) { view -> UInt64? in
                    tally.byType[Int(view.type.rawValue)] += 1
                    tally.bytes += view.count
                    if view.flags.contains(.dma) { tally.poolMessages += 1 }
                    // The kernel's verdicts are correlated; PRODUCE's own AI_RESPONSE events are not.
                    guard view.type == .aiResponse, view.correlation != nil else { return nil }
                    var stamp: UInt64 = 0
                    withUnsafeMutableBytes(of: &stamp) { out in
                        var filled = 0
                        for s in 0..<view.segmentCount where filled < 8 {
                            let segment = view.segment(s)
                            let n = min(8 - filled, segment.count)
                            out.baseAddress!.advanced(by: filled).copyMemory(from: segment.baseAddress!, byteCount: n)
                            filled += n
                        }
                    }
                    return stamp
                }
                if let sentAt { latencies.append(archangel_monotonic_ns() &- sentAt) }
            }
        } catch {
            failures.withLock { $0.append("engine: \(error)") }
            // Unblock the kernel threads: destroying the channel ends their waits.
            try? KernelBackend.destroyChannel(id)
        }
        requester.join()
        sensor.join()
        echo.join()
        let elapsed = Double(archangel_monotonic_ns() - start) / 1e9
        if let problems = failures.withLock({ $0.isEmpty ? nil : $0 }) {
            throw ValidationError("demo failed: " + problems.joined(separator: "; "))
        }
        let statistics = KernelBackend.statistics(of: user)
            .map { StatisticsReport(channels: [$0], maxChannels: KernelDevice.maxChannels).text } ?? ""
        DemoReport(total: events + requests * 2, seconds: elapsed, engine: tally, roundTrips: DemoRoundTrips(latencies))
            .print(statistics: statistics)
    }
}
