import Archangel
import ArchangelCore
import ArchangelSystem
import CArchangel
import Glibc
import Histogram

/// The two roles of an efficiency cell, each run in its own process
/// (`archangel bench-efficiency-role`) or thread (`--backend in-process`):
/// a paced sender and a blocking receiver. Each returns its figures as
/// named numbers (``EfficiencyFigures``).
public enum EfficiencyRoles {
    /// Control payload that opens the measured window (normal lane, so it stays in order).
    static let startMark: UInt8 = 1
    /// Control payload that closes it; bytes 1...8 carry the messages sent.
    static let stopMark: UInt8 = 2
    /// `who` for a role with a process of its own (`RUSAGE_SELF`: every thread, the coalescing timer's included).
    public static let wholeProcess: Int32 = 0
    /// `who` for a role in a thread (`RUSAGE_THREAD`).
    public static let thisThread: Int32 = 1

    /// Pins the calling thread to `cpu` (ignored when it does not exist), as the other benches do.
    public static func pin(to cpu: Int) { SystemThread.pinCurrent(to: cpu) }

    /// Payload bytes of every measured message.
    public static let payloadBytes = 64

    /// The sender: the pacing loop alone for `seconds` (its cost), then the
    /// same loop sending 64-byte messages, between a start and a stop mark.
    ///
    /// - Parameter who: `RUSAGE_SELF` in a process of its own, `RUSAGE_THREAD` in a thread.
    public static func sender(_ channel: Channel, rate: Int, seconds: Double, paceQuantum: UInt64 = 50_000,
                              who: Int32) throws -> EfficiencyFigures {
        let pacer = EfficiencyPacer(rate: rate, duration: UInt64(seconds * 1e9), quantum: paceQuantum)
        let p0 = ResourceSnapshot.take(who)
        _ = try pacer.run(nil)
        let p1 = ResourceSnapshot.take(who)
        try channel.send(.control, bytes: [startMark], timeout: .seconds(30), options: .urgent)
        var payload = [UInt8](repeating: 0x5a, count: payloadBytes)
        let counters = channel.sender.counters
        let c0 = (counters.load(.notificationsSent), counters.load(.notificationsSuppressed),
                  counters.load(.notificationsCoalesced))
        let s0 = ResourceSnapshot.take(who)
        let outcome = try payload.withUnsafeMutableBytes { raw in
            try pacer.run { i in
                raw.storeBytes(of: UInt64(i).littleEndian, as: UInt64.self)
                try channel.send(.syscallEvent, bytes: UnsafeRawBufferPointer(raw), timeout: .seconds(30))
            }
        }
        let s1 = ResourceSnapshot.take(who)
        let c1 = (counters.load(.notificationsSent), counters.load(.notificationsSuppressed),
                  counters.load(.notificationsCoalesced))
        var stop = [UInt8](repeating: 0, count: 9)
        stop[0] = stopMark
        stop.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(outcome.sent).littleEndian, toByteOffset: 1, as: UInt64.self) }
        try channel.send(.control, bytes: stop, timeout: .seconds(30), options: .urgent)
        return EfficiencyFigures([
            "offered": Double(outcome.offered), "sent": Double(outcome.sent),
            "sender_window_ns": Double(s1.time - s0.time), "sender_cpu_ns": Double(s1.cpu - s0.cpu),
            "pacing_window_ns": Double(p1.time - p0.time), "pacing_cpu_ns": Double(p1.cpu - p0.cpu),
            "notify_sent": Double(c1.0 - c0.0), "notify_suppressed": Double(c1.1 - c0.1),
            "notify_coalesced": Double(c1.2 - c0.2),
        ])
    }

    /// The receiver: blocking `receiveBatch` calls with the channel's wait
    /// policy; from the start mark to the stop mark it records each message's
    /// latency (CLOCK_MONOTONIC now minus the header's timestamp) in an HDR
    /// histogram, and counts its sleeps and CPU. Then, when `idleSeconds` is
    /// above 0, it lets the channel settle and measures an idle phase: one
    /// blocking receive that ends by its timeout.
    ///
    /// - Parameter markless: the sender cannot send marks (the kernel's load
    ///   generator): the window opens at the first message and closes at this
    ///   many messages.
    public static func receiver(_ channel: Channel, idleSeconds: Double, settle: Duration,
                                markless: UInt64? = nil, who: Int32) throws -> EfficiencyFigures {
        var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000_000,
                                          numberOfSignificantValueDigits: .three)
        var started = false, stopped = false
        var expected: UInt64 = .max
        var delivered: UInt64 = 0, negative: UInt64 = 0
        var r0 = ResourceSnapshot.take(who), r1 = r0
        let counters = channel.receiver.counters
        func sleeps() -> UInt64 { counters.load(.waits) + counters.load(.timedWaits) }
        var w0 = sleeps(), w1 = w0
        if let markless { stopped = true; expected = markless }
        while !(stopped && delivered >= expected) {
            _ = try channel.receiveBatch(limit: 256, timeout: .seconds(60)) { view in
                if markless != nil && !started {
                    // The first message opens the window; its own wake-up is outside it.
                    started = true
                    r0 = ResourceSnapshot.take(who)
                    w0 = sleeps()
                }
                // Markless, every message is data (the load generator cycles through every type).
                if markless == nil, view.type == .control, let bytes = view.contiguousBytes, let mark = bytes.first {
                    if mark == startMark {
                        started = true
                        r0 = ResourceSnapshot.take(who)
                        w0 = sleeps()
                    } else if mark == stopMark, bytes.count == 9 {
                        stopped = true
                        expected = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 1, as: UInt64.self))
                    }
                    return
                }
                guard started else { return }
                let now = archangel_monotonic_ns()
                if now < view.timestamp { negative += 1 }
                let latency = now > view.timestamp ? now - view.timestamp : 0
                _ = histogram.record(min(max(latency, 1), 59_999_999_999))
                delivered += 1
            }
        }
        r1 = ResourceSnapshot.take(who)
        w1 = sleeps()
        var figures: [String: Double] = [
            "delivered": Double(delivered), "receiver_window_ns": Double(r1.time - r0.time),
            "receiver_cpu_ns": Double(r1.cpu - r0.cpu), "receiver_sleeps": Double(w1 - w0),
            "receiver_voluntary_switches": Double(r1.voluntarySwitches - r0.voluntarySwitches),
            "latency_p50_ns": Double(histogram.valueAtPercentile(50)),
            "latency_p99_ns": Double(histogram.valueAtPercentile(99)),
            "latency_p999_ns": Double(histogram.valueAtPercentile(99.9)),
            "latency_max_ns": Double(histogram.max), "negative_latencies": Double(negative),
        ]
        if idleSeconds > 0 {
            // Let a timed-polling phase fall back to blocking and any trailing edge fire.
            _ = try? channel.receive(timeout: settle) { _ in 0 }
            let i0 = ResourceSnapshot.take(who), s0 = sleeps()
            let got = try? channel.receive(timeout: .nanoseconds(Int64(idleSeconds * 1e9))) { _ in 0 }
            let i1 = ResourceSnapshot.take(who), s1 = sleeps()
            // The one sleep that ends the phase at its timeout is the phase itself, not a wake-up.
            figures["idle_window_ns"] = Double(i1.time - i0.time)
            figures["idle_cpu_ns"] = Double(i1.cpu - i0.cpu)
            figures["idle_wakeups"] = Double(max(Int64(s1 - s0) - 1, 0)) + (got == nil ? 0 : 1)
            figures["idle_voluntary_switches"] = Double(max(Int64(i1.voluntarySwitches - i0.voluntarySwitches) - 1, 0))
        }
        return EfficiencyFigures(figures)
    }
}

/// Named numbers a role reports, passed between processes as one line of
/// text (`result name=value ...`) on the role's standard output.
public struct EfficiencyFigures: Sendable {
    /// The figures by name.
    public var values: [String: Double]

    /// Wraps `values`.
    public init(_ values: [String: Double]) { self.values = values }

    /// The value of `name`, 0 when absent.
    public subscript(_ name: String) -> Double { values[name] ?? 0 }

    /// The wire form: `result a=1 b=2.5`, names sorted.
    public var line: String {
        "result " + values.keys.sorted().map { "\($0)=\(values[$0]!)" }.joined(separator: " ")
    }

    /// Parses the wire form; nil when `line` is not one.
    public init?(line: String) {
        guard line.hasPrefix("result ") else { return nil }
        var values: [String: Double] = [:]
        for field in line.dropFirst(7).split(separator: " ") {
            let parts = field.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let value = Double(parts[1]) else { return nil }
            values[String(parts[0])] = value
        }
        self.values = values
    }

    /// Both sets in one (`other` wins on a shared name).
    public func merging(_ other: EfficiencyFigures) -> EfficiencyFigures {
        EfficiencyFigures(values.merging(other.values) { _, b in b })
    }
}
