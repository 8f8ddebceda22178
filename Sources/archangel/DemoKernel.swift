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
            + "\(aloneRequests) AI requests alone, then \(events) events + \(requests) AI requests")
        let failures = Mutex<[String]>([])
        let events = self.events, requests = self.requests, largeEvery = self.largeEvery
        let alone = aloneRequests
        // The flood's pacing: the kernel's events one per interval, the requests spread over the same time.
        let floodInterval = floodRate > 0 ? UInt64(1_000_000_000 / floodRate) : 0
        let requestInterval = floodRate > 0 && requests > 0 ? floodInterval * UInt64(max(events, 1)) / UInt64(requests) : 0
        let start = archangel_monotonic_ns()
        // The kernel's verdicts: ECHO answers each request with its payload.
        let echo = try SystemThread(name: "demo-echo") {
            guard requests + alone > 0 else { return }
            do {
                try KernelDevice().loadgen(channel: id.rawValue, mode: .echo, count: UInt64(requests + alone))
            } catch { failures.withLock { $0.append("kernel echo (LOADGEN ECHO): \(error)") } }
        }
        var tally = DemoEngine.Tally()
        var latencies: [DemoSensor.Phase: [UInt64]] = [:]
        /// The round trip of a verdict (the kernel echoes the request's payload: send time, then tag), or nil.
        func verdict(_ view: MessageView) -> (DemoSensor.Phase, UInt64)? {
            guard view.type == .aiResponse, view.correlation != nil else { return nil }
            var head = [UInt8](repeating: 0, count: 16)
            _ = head.withUnsafeMutableBytes { view.copyBytes(to: $0) }
            return head.withUnsafeBytes { raw in
                (DemoSensor.Phase(rawValue: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self) >> 56) ?? .floodNormal,
                 raw.loadUnaligned(as: UInt64.self))
            }
        }
        // Alone: one request at a time, express lane, nothing else flowing.
        do {
            var payload = [UInt8](repeating: 0, count: 64)
            for i in 0..<alone {
                payload.withUnsafeMutableBytes { raw in
                    raw.storeBytes(of: archangel_monotonic_ns(), as: UInt64.self)
                    raw.storeBytes(of: DemoSensor.tag(.alone, i), toByteOffset: 8, as: UInt64.self)
                }
                try user.send(.aiRequest, priority: .critical, bytes: payload)
                let answer = try user.receive(timeout: .seconds(30)) { view in verdict(view) }
                if let (phase, sentAt) = answer { latencies[phase, default: []].append(archangel_monotonic_ns() &- sentAt) }
                tally.byType[Int(MessageType.aiResponse.rawValue)] += 1
            }
        } catch {
            failures.withLock { $0.append("alone requests: \(error)") }
            try? KernelBackend.destroyChannel(id)
        }
        // The sensor: PRODUCE in the kernel, in a thread of this process (the ioctl runs in the caller).
        let sensor = try SystemThread(name: "demo-loadgen") {
            guard events > 0 else { return }
            do {
                try KernelDevice().loadgen(channel: id.rawValue, mode: .produce, size: 64, count: UInt64(events),
                                           interval: floodInterval)
            } catch { failures.withLock { $0.append("kernel sensor (LOADGEN PRODUCE): \(error)") } }
        }
        // This process asks: every request carries its send time (the kernel echoes it back).
        let requester = try SystemThread(name: "demo-requests") {
            let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 8)
            defer { payload.deallocate() }
            payload.initializeMemory(as: UInt8.self, repeating: 0)
            do {
                let requestsStart = archangel_monotonic_ns()
                for i in 0..<requests {
                    if requestInterval > 0 {
                        sleepUntil(monotonicNanoseconds: requestsStart &+ UInt64(i) &* requestInterval)
                    }
                    let size = largeEvery > 0 && i % largeEvery == largeEvery - 1 ? 2048 : 64
                    // Alternately on the express lane and on the normal lane, behind the same flood.
                    let express = i % 2 == 0
                    payload.storeBytes(of: archangel_monotonic_ns(), as: UInt64.self)
                    payload.storeBytes(of: DemoSensor.tag(express ? .floodExpress : .floodNormal, i),
                                       toByteOffset: 8, as: UInt64.self)
                    try user.send(.aiRequest, priority: express ? .critical : .normal,
                                  bytes: UnsafeRawBufferPointer(rebasing: payload[0..<size]))
                }
            } catch { failures.withLock { $0.append("requests: \(error)") } }
        }
        // The engine: everything the kernel sends, events and verdicts alike.
        do {
            for _ in 0..<(events + requests) {
                let answer = try user.receive(timeout: .seconds(30)) { view -> (DemoSensor.Phase, UInt64)? in
                    tally.byType[Int(view.type.rawValue)] += 1
                    tally.bytes += view.count
                    if view.flags.contains(.dma) { tally.poolMessages += 1 }
                    // The kernel's verdicts are correlated; PRODUCE's own AI_RESPONSE events are not.
                    return verdict(view)
                }
                if let (phase, sentAt) = answer { latencies[phase, default: []].append(archangel_monotonic_ns() &- sentAt) }
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
        DemoReport(total: events + (requests + alone) * 2, seconds: elapsed, events: events, floodText: floodText,
                   engine: tally,
                   roundTrips: latencies.mapValues(DemoRoundTrips.init))
            .print(statistics: statistics)
        if sensorExecs > 0 { try DemoVerdictLoop(execs: sensorExecs, wait: WaitPolicy.named(engineWait) ?? .balanced).run() }
    }
}
