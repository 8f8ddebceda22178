import ArchangelSystem
import CArchangel
import Glibc

/// What a process (or thread) has cost so far: CPU time and voluntary
/// context switches, read at the start and the end of a measured phase.
///
/// The corresponding C functions are `getrusage` and `clock_gettime`.
public struct ResourceSnapshot: Sendable {
    /// CLOCK_MONOTONIC nanoseconds when the snapshot was taken.
    public var time: UInt64
    /// User plus system CPU time, nanoseconds.
    public var cpu: UInt64
    /// Voluntary context switches of the calling thread (/proc/thread-self/status),
    /// the cross-check of the receiver's wake-up counters: each sleep is one.
    public var voluntarySwitches: UInt64

    /// Takes a snapshot. `who` is `RUSAGE_SELF` (the whole process: every
    /// thread, the coalescing timer thread included) or `RUSAGE_THREAD`.
    public static func take(_ who: Int32) -> ResourceSnapshot {
        var usage = rusage()
        _ = getrusage(who, &usage)
        func ns(_ t: timeval) -> UInt64 { UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_usec) * 1_000 }
        return ResourceSnapshot(time: archangel_monotonic_ns(), cpu: ns(usage.ru_utime) + ns(usage.ru_stime),
                                voluntarySwitches: threadVoluntarySwitches())
    }

    /// `voluntary_ctxt_switches` of /proc/thread-self/status (0 when unreadable).
    static func threadVoluntarySwitches() -> UInt64 {
        guard let file = fopen("/proc/thread-self/status", "r") else { return 0 }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.hasPrefix("voluntary_ctxt_switches:") {
                return UInt64(text.dropFirst("voluntary_ctxt_switches:".count)
                    .trimmingCharacters(in: " \t\n")) ?? 0
            }
        }
        return 0
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var s = self
        while let c = s.first, set.contains(c) { s.removeFirst() }
        while let c = s.last, set.contains(c) { s.removeLast() }
        return String(s)
    }
}

/// The paced loop of the efficiency suite's sender: message `i` is due at
/// `start + i / rate` (absolute deadlines, so a late wake-up is followed by
/// a catch-up burst of everything due, not by a shifted schedule). It sleeps
/// with `clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)` after lowering the
/// thread's timer slack to 1 ns, so the sleeps end on time. No sleep is
/// shorter than `quantum`: at rates whose period is below it, each wake-up
/// sends the burst that has come due, so a 100k msgs/s schedule costs 20k
/// sleeps a second rather than 100k.
public struct EfficiencyPacer: Sendable {
    /// Messages per second.
    public var rate: Int
    /// Length of the run, nanoseconds.
    public var duration: UInt64
    /// Shortest sleep, nanoseconds.
    public var quantum: UInt64

    /// Creates a pacer of `rate` messages per second for `duration`
    /// nanoseconds whose sleeps last at least `quantum` nanoseconds.
    public init(rate: Int, duration: UInt64, quantum: UInt64 = 0) {
        self.rate = rate
        self.duration = duration
        self.quantum = quantum
    }

    /// What one paced run did.
    public struct Outcome: Sendable {
        /// Messages due by the end of the run.
        public var offered: Int
        /// Messages `send` accepted.
        public var sent: Int
    }

    /// Runs the schedule, calling `send` for each message due (nil: the same
    /// loop without sending, which measures what pacing alone costs). A
    /// `send` that blocks on a full ring makes the loop fall behind; what is
    /// still due at the end is offered but not sent.
    public func run(_ send: ((Int) throws -> Void)?) throws -> Outcome {
        _ = archangel_set_timer_slack(1)
        let start = archangel_monotonic_ns()
        let end = start + duration
        let total = Int(UInt64(rate) * duration / 1_000_000_000)
        var sent = 0
        var virtual = 0
        while true {
            let now = archangel_monotonic_ns()
            if now >= end { break }
            let due = min(total, Int(UInt64(rate) * (now - start) / 1_000_000_000) + 1)
            while virtual < due {
                if let send { try send(virtual)
                    sent += 1 }
                virtual += 1
            }
            if virtual >= total { break }
            // The next message's deadline, absolute.
            let next = max(start + UInt64(virtual) * 1_000_000_000 / UInt64(rate), now + quantum)
            sleepUntil(monotonicNanoseconds: next)
        }
        // Wait out the window so every run lasts `duration`.
        sleepUntil(monotonicNanoseconds: end)
        return Outcome(offered: total, sent: send == nil ? 0 : sent)
    }
}
