/// An AI_REQUEST of archangel_sensors.ko: what the module asks about, by
/// when, and what it does if nobody answers (`struct archangel_sensor_request`).
public struct SensorRequest: Sendable, Equatable {
    /// Unique while the module is loaded; the response carries it back.
    public var id: UInt64
    /// CLOCK_MONOTONIC nanoseconds after which `defaultVerdict` applies.
    public var deadline: UInt64
    /// Applied at the deadline, or at once when the engine goes away.
    public var defaultVerdict: Verdict
    /// The event asked about.
    public var event: SensorEvent

    /// Creates a request (for engines' tests and replays; the module's come from `decode`).
    public init(id: UInt64, deadline: UInt64, defaultVerdict: Verdict, event: SensorEvent) {
        self.id = id
        self.deadline = deadline
        self.defaultVerdict = defaultVerdict
        self.event = event
    }

    /// Bytes of the request header before the event.
    public static let headerSize = 24

    /// Decodes an AI_REQUEST payload (checked as `SensorEvent.decode` checks events).
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(SensorDecodingError) -> SensorRequest {
        guard bytes.count >= headerSize else { throw .truncated(needed: headerSize, have: bytes.count) }
        let r = Reader(bytes)
        try r.zero(17, 3)
        guard let verdict = Verdict(byte: r.u8(16)) else { throw .badField("request.default_verdict \(r.u8(16))") }
        let size = Int(r.u32(20))
        guard size <= bytes.count - headerSize else { throw .truncated(needed: headerSize + size, have: bytes.count) }
        let (event, used) = try SensorEvent.decode(UnsafeRawBufferPointer(rebasing: bytes[headerSize..<(headerSize + size)]))
        guard used == size else { throw .badField("request.event_size \(size) for a \(used)-byte record") }
        return SensorRequest(id: r.u64(0), deadline: r.u64(8), defaultVerdict: verdict, event: event)
    }
}

/// An engine's answer (`struct archangel_sensor_response`, the AI_RESPONSE payload).
public struct SensorResponse: Sendable, Equatable {
    /// The request's id.
    public var id: UInt64
    /// What to do.
    public var verdict: Verdict
    /// How long the module may cache the verdict, milliseconds (0: not at all).
    public var ttlMilliseconds: UInt32
    /// The engine's score, 0...1,000,000 (informative; logged by the module).
    public var score: UInt32

    /// Creates an answer to request `id`.
    public init(id: UInt64, verdict: Verdict, ttlMilliseconds: UInt32 = 0, score: UInt32 = 0) {
        self.id = id
        self.verdict = verdict
        self.ttlMilliseconds = ttlMilliseconds
        self.score = min(score, 1_000_000)
    }

    /// The 24-byte payload, little-endian, padding zero.
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 24)
        out.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: id.littleEndian, toByteOffset: 0, as: UInt64.self)
            raw.storeBytes(of: verdict.rawValue, toByteOffset: 8, as: UInt8.self)
            raw.storeBytes(of: ttlMilliseconds.littleEndian, toByteOffset: 12, as: UInt32.self)
            raw.storeBytes(of: score.littleEndian, toByteOffset: 16, as: UInt32.self)
        }
        return out
    }
}

/// What an engine decided about a request, and why (for its decision log).
public struct EngineDecision: Sendable, Equatable {
    /// What to do.
    public var verdict: Verdict
    /// How long the module may cache it, milliseconds (0: ask again next time).
    public var ttlMilliseconds: UInt32
    /// The engine's score, 0...1,000,000 (informative).
    public var score: UInt32
    /// Why: a rule's name, or what a classifier saw. Logged, never sent.
    public var reason: String

    /// Creates a decision.
    public init(verdict: Verdict, ttlMilliseconds: UInt32 = 0, score: UInt32 = 0, reason: String = "") {
        self.verdict = verdict
        self.ttlMilliseconds = ttlMilliseconds
        self.score = min(score, 1_000_000)
        self.reason = reason
    }

    /// The AI_RESPONSE answering request `id` with this decision.
    public func response(to id: UInt64) -> SensorResponse {
        SensorResponse(id: id, verdict: verdict, ttlMilliseconds: ttlMilliseconds, score: score)
    }
}

/// What an engine does about an event nobody asked about (the module only
/// asks about execs and new flows; a W^X mapping, say, is only reported).
public enum EngineAction: Sendable, Equatable {
    /// Let it be.
    case none
    /// Log it as an alert; nothing is enforced.
    case alert(reason: String)
    /// SIGKILL the process (tgid) from userspace, and log why. Done after
    /// the event, so the process may have run meanwhile.
    case kill(tgid: UInt32, reason: String)
}

/// What decides about the module's requests: the rules engine
/// (`ArchangelRules.RulesEngine`) is one implementation; a user's own
/// classifier is another (docs/sensors.md, "Writing an engine").
///
/// `SensorSession.run` calls it from one thread, one message at a time:
/// `observe` for every event (those asked about too, first), `decide` for
/// every request. `decide` should answer well before `request.deadline`, or
/// the module applies the request's default.
public protocol VerdictEngine {
    /// The verdict for `request`; nil leaves it to the deadline's default.
    mutating func decide(_ request: SensorRequest) -> EngineDecision?
    /// Sees every event, asked about or not (to keep per-process state, or
    /// to act on events the module only reports); the default does nothing.
    mutating func observe(_ event: SensorEvent) -> EngineAction
}

extension VerdictEngine {
    public mutating func observe(_ event: SensorEvent) -> EngineAction { .none }
}
