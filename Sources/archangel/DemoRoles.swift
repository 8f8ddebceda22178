import Archangel
import CArchangel

/// The demo's synthetic sensor: the kernel side producing every message type.
struct DemoSensor {
    let channel: Channel
    let events: Int
    let requests: Int
    let largeEvery: Int

    /// Sends `events` events (syscall, network, memory, control, stats) with
    /// `requests` AI requests spread among them; every `largeEvery`-th request
    /// carries an over-1-KiB payload (through the pool).
    func run() throws {
        var small = [UInt8](repeating: 0, count: 64)
        var large = [UInt8](repeating: 0, count: 16 * 1024)
        for i in 0..<large.count { large[i] = UInt8(truncatingIfNeeded: i &* 31) }
        let eventTypes: [MessageType] = [.syscallEvent, .networkEvent, .memoryEvent, .syscallEvent, .networkEvent,
                                         .control, .stats]
        let total = events + requests
        let requestEvery = requests > 0 ? max(1, total / requests) : Int.max
        var sentRequests = 0
        var sentEvents = 0
        for i in 0..<total {
            if (i % requestEvery == 0 && sentRequests < requests) || sentEvents == events {
                let isLarge = largeEvery > 0 && sentRequests % largeEvery == 0
                let payloadSize = isLarge ? 1024 + 1 + (sentRequests % 15) * 1024 : 64
                if isLarge {
                    try large.withUnsafeMutableBytes { raw in
                        raw.storeBytes(of: UInt64(sentRequests), as: UInt64.self)
                        try channel.send(.aiRequest, priority: .high,
                                         bytes: UnsafeRawBufferPointer(rebasing: raw[0..<payloadSize]))
                    }
                } else {
                    try small.withUnsafeMutableBytes { raw in
                        raw.storeBytes(of: UInt64(sentRequests), as: UInt64.self)
                        try channel.send(.aiRequest, priority: .normal, bytes: UnsafeRawBufferPointer(raw))
                    }
                }
                sentRequests += 1
            } else {
                let type = eventTypes[sentEvents % eventTypes.count]
                let priority: MessagePriority = sentEvents % 97 == 0 ? .critical : .low
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
        var reply = [UInt8](repeating: 0, count: 16)
        for _ in 0..<expected {
            var request: (sequence: UInt64, timestamp: UInt64, verdict: UInt64, priority: MessagePriority)?
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
                    request = (view.sequence, view.timestamp, sum & 1, view.priority)
                }
            }
            if let request {
                reply.withUnsafeMutableBytes { raw in
                    raw.storeBytes(of: request.timestamp, as: UInt64.self)
                    raw.storeBytes(of: request.verdict, toByteOffset: 8, as: UInt64.self)
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

    /// Round trips in nanoseconds, one per response, in arrival order.
    func run() throws(ChannelError) -> [UInt64] {
        var latencies = [UInt64]()
        latencies.reserveCapacity(expected)
        for _ in 0..<expected {
            let sentAt = try channel.receive { view -> UInt64 in
                view.contiguousBytes?.loadUnaligned(as: UInt64.self) ?? 0
            }
            latencies.append(archangel_monotonic_ns() &- sentAt)
        }
        return latencies
    }
}
