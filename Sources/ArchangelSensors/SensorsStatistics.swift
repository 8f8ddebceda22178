import CArchangel

/// The module's counters (`struct archangel_sensors_stats`; the same as
/// `/proc/archangel/sensors`, docs/sensors.md), cumulative over its life.
public struct SensorsStatistics: Sendable, Equatable {
    /// One record kind's counts: `observed = sent + dropped` at every moment.
    public struct KindCounts: Sendable, Equatable {
        public var observed: UInt64, sent: UInt64, dropped: UInt64, lostReported: UInt64
    }

    /// The attached channel, nil when detached.
    public var channel: UInt32?
    /// The engine's process id, 0 when none.
    public var enginePid: UInt32
    /// Requests waiting for a verdict now.
    public var pending: UInt32
    /// Per record kind, indexed by the kind (1 exec ... 7 lost); [0] is unused.
    public var kinds: [KindCounts]
    public var lostRecords: UInt64, sendErrors: UInt64
    public var requests: UInt64, requestsUnsent: UInt64, responses: UInt64, responsesLate: UInt64
    public var responsesBad: UInt64, timeouts: UInt64, detachResolved: UInt64, pendingFull: UInt64
    public var verdictAllow: UInt64, verdictDeny: UInt64, verdictKill: UInt64
    public var cacheHits: UInt64, cacheMisses: UInt64, cacheInserts: UInt64, cacheEvictions: UInt64
    public var execKilled: UInt64, execStopped: UInt64, execContinued: UInt64, packetsDropped: UInt64
    /// Verdict round trips, request to enforcement, in the module's clock.
    public var roundTrips: UInt64, roundTripNanosecondsTotal: UInt64, roundTripNanosecondsMax: UInt64

    init(_ s: archangel_sensors_stats) {
        channel = s.channel_id == ARCHANGEL_SENSORS_NO_CHANNEL ? nil : s.channel_id
        enginePid = s.engine_pid
        pending = s.pending
        kinds = withUnsafeBytes(of: s.kinds) { raw in
            raw.bindMemory(to: archangel_sensors_kind_stats.self).map {
                KindCounts(observed: $0.observed, sent: $0.sent, dropped: $0.dropped, lostReported: $0.lost_reported)
            }
        }
        lostRecords = s.lost_records
        sendErrors = s.send_errors
        requests = s.requests
        requestsUnsent = s.requests_unsent
        responses = s.responses
        responsesLate = s.responses_late
        responsesBad = s.responses_bad
        timeouts = s.timeouts
        detachResolved = s.detach_resolved
        pendingFull = s.pending_full
        verdictAllow = s.verdict_allow
        verdictDeny = s.verdict_deny
        verdictKill = s.verdict_kill
        cacheHits = s.cache_hits
        cacheMisses = s.cache_misses
        cacheInserts = s.cache_inserts
        cacheEvictions = s.cache_evictions
        execKilled = s.exec_killed
        execStopped = s.exec_stopped
        execContinued = s.exec_continued
        packetsDropped = s.packets_dropped
        roundTrips = s.rtt_count
        roundTripNanosecondsTotal = s.rtt_ns_total
        roundTripNanosecondsMax = s.rtt_ns_max
    }
}
