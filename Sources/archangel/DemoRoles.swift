import Archangel
import ArchangelSystem
import Glibc
import CArchangel

/// The demo's synthetic sensor: the kernel side producing every message type.
///
/// Two phases, so that the report shows what the priority lanes buy:
/// `aloneRequests` AI requests one at a time on the express lane with
/// nothing else flowing (each waits for its verdict), then the flood:
/// `events` routine events on the normal lane with `requests` AI requests
/// spread among them, sent without waiting, alternately on the express lane
/// (priority critical, which also makes the wake-up urgent: no coalescing
/// delay) and on the normal lane (priority normal), so that one run measures
/// both behind the same flood. The engine answers with the request's priority.
struct DemoSensor {
    let channel: Channel
    let events: Int
    let requests: Int
    let largeEvery: Int
    var aloneRequests = 0
    /// Messages per second of the flood phase (events and requests), paced by
    /// absolute deadlines; 0: as fast as the channel takes them.
    var floodRate = 0
    /// Verdicts received so far (the collector's count), for the one-at-a-time phase.
    var answered: (@Sendable () -> Int)? = nil

    /// The phase of a request, in the top byte of its tag (the first 8 payload bytes, echoed in the verdict).
    enum Phase: UInt64, CaseIterable {
        case alone = 0, floodExpress = 1, floodNormal = 2
    }

    static func tag(_ phase: Phase, _ index: Int) -> UInt64 { phase.rawValue << 56 | UInt64(index) }

    func run() throws {
        var small = [UInt8](repeating: 0, count: 64)
        var large = [UInt8](repeating: 0, count: 16 * 1024)
        for i in 0..<large.count { large[i] = UInt8(truncatingIfNeeded: i &* 31) }
        func request(_ index: Int, _ phase: Phase, priority: MessagePriority) throws {
            let isLarge = largeEvery > 0 && index % largeEvery == 0
            let payloadSize = isLarge ? 1024 + 1 + (index % 15) * 1024 : 64
            if isLarge {
                try large.withUnsafeMutableBytes { raw in
                    raw.storeBytes(of: Self.tag(phase, index), as: UInt64.self)
                    try channel.send(.aiRequest, priority: priority,
                                     bytes: UnsafeRawBufferPointer(rebasing: raw[0..<payloadSize]))
                }
            } else {
                try small.withUnsafeMutableBytes { raw in
                    raw.storeBytes(of: Self.tag(phase, index), as: UInt64.self)
                    try channel.send(.aiRequest, priority: priority, bytes: UnsafeRawBufferPointer(raw))
                }
            }
        }
        // Alone: one request at a time, each answered before the next.
        for i in 0..<aloneRequests {
            try request(i, .alone, priority: .critical)
            while (answered?() ?? .max) <= i { sched_yield() }
        }
        // The flood, with the requests spread among the events.
        let eventTypes: [MessageType] = [.syscallEvent, .networkEvent, .memoryEvent, .syscallEvent, .networkEvent,
                                         .control, .stats]
        let total = events + requests
        let requestEvery = requests > 0 ? max(1, total / requests) : Int.max
        var sentRequests = 0
        var sentEvents = 0
        let start = archangel_monotonic_ns()
        let period = floodRate > 0 ? 1_000_000_000 / UInt64(floodRate) : 0
        for i in 0..<total {
            if period > 0 {
                // Message i leaves at start + i * period; sleeps shorter than 50 µs are not worth a timer.
                let due = start &+ UInt64(i) &* period
                if due > archangel_monotonic_ns() &+ 50_000 { sleepUntil(monotonicNanoseconds: due) }
            }
            if (i % requestEvery == 0 && sentRequests < requests) || sentEvents == events {
                let express = sentRequests % 2 == 0
                try request(sentRequests, express ? .floodExpress : .floodNormal, priority: express ? .critical : .normal)
                sentRequests += 1
            } else {
                let type = eventTypes[sentEvents % eventTypes.count]
                let priority: MessagePriority = sentEvents % 97 == 0 ? .normal : .low
                try small.withUnsafeMutableBytes { raw in
                    raw.storeBytes(of: UInt64(sentEvents), as: UInt64.self)
                    try channel.send(type, priority: priority, bytes: UnsafeRawBufferPointer(raw))
                }
                sentEvents += 1
            }
        }
    }
}

/// The demo's AI engine: the user side answering every request.
struct DemoEngine {
    let channel: Channel
    let expected: Int

    /// What the engine saw.
    struct Tally {
        var byType = [Int](repeating: 0, count: 8)
        var poolMessages = 0
        var bytes = 0
    }

    /// Receives `expected` messages; answers each AI request with a verdict
    /// whose payload echoes the request's send timestamp (for the latency figure).
    func run() throws(ChannelError) -> Tally {
        var tally = Tally()
        var reply = [UInt8](repeating: 0, count: 24)
        for _ in 0..<expected {
            var request: (sequence: UInt64, timestamp: UInt64, verdict: UInt64, priority: MessagePriority, tag: UInt64)?
            try channel.receive { view in
                tally.byType[Int(view.type.rawValue)] += 1
                tally.bytes += view.count
                if view.flags.contains(.dma) { tally.poolMessages += 1 }
                if view.type == .aiRequest {
                    // "Classify": a checksum over every segment stands in for inference.
                    var sum: UInt64 = 0
                    for s in 0..<view.segmentCount {
                        for byte in view.segment(s) { sum = sum &* 31 &+ UInt64(byte) }
                    }
                    let first = view.segment(0)
                    let tag = first.count >= 8 ? first.loadUnaligned(as: UInt64.self) : 0
                    request = (view.sequence, view.timestamp, sum & 1, view.priority, tag)
                }
            }
            if let request {
                reply.withUnsafeMutableBytes { raw in
                    raw.storeBytes(of: request.timestamp, as: UInt64.self)
                    raw.storeBytes(of: request.verdict, toByteOffset: 8, as: UInt64.self)
                    raw.storeBytes(of: request.tag, toByteOffset: 16, as: UInt64.self)
                }
                try channel.send(.aiResponse, priority: request.priority, bytes: reply, correlation: request.sequence)
            }
        }
        return tally
    }
}

/// The sensor's collector: receives verdicts and measures request → response latency.
struct DemoCollector {
    let channel: Channel
    let expected: Int
    /// Counts the verdicts received, for the sensor's one-at-a-time phase.
    var received: (@Sendable (Int) -> Void)? = nil

    /// Round trips in nanoseconds by the request's phase, in arrival order.
    func run() throws(ChannelError) -> [DemoSensor.Phase: [UInt64]] {
        var latencies: [DemoSensor.Phase: [UInt64]] = [:]
        for n in 0..<expected {
            let (sentAt, tag) = try channel.receive { view -> (UInt64, UInt64) in
                guard let bytes = view.contiguousBytes, bytes.count >= 24 else { return (0, 0) }
                return (bytes.loadUnaligned(as: UInt64.self), bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
            }
            let phase = DemoSensor.Phase(rawValue: tag >> 56) ?? .floodNormal
            latencies[phase, default: []].append(archangel_monotonic_ns() &- sentAt)
            received?(n + 1)
        }
        return latencies
    }
}
