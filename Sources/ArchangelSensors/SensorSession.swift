import Archangel
import ArchangelSystem
import CArchangel
import Glibc

/// An engine's session with archangel_sensors.ko: a channel of its own in
/// the archangel module, the sensors attached to it and configured, and the
/// loop that feeds a `VerdictEngine` and sends its answers (docs/sensors.md,
/// "Writing an engine").
///
/// Closing it (or the process dying) detaches the sensors: the module
/// resolves every pending request with its default at once.
public final class SensorSession {
    /// The engine's side of the channel the sensors send to.
    public let channel: Channel
    /// `/dev/archangel_sensors`, attached.
    public let device: SensorsDevice
    /// What the loop did so far.
    public private(set) var counters = Counters()
    private var closed = false

    /// The loop's own counts (the module's are `device.statistics()`).
    public struct Counters: Sendable, Equatable {
        /// Records decoded, asked about or not.
        public var events: UInt64 = 0
        /// AI_REQUESTs received.
        public var requests: UInt64 = 0
        /// Requests answered (an AI_RESPONSE sent).
        public var answered: UInt64 = 0
        /// Requests the engine left to the module's default (decide returned nil).
        public var unanswered: UInt64 = 0
        /// Answers that could not be sent before the request's deadline.
        public var answersUnsent: UInt64 = 0
        /// Payloads refused by the decoder (counted, logged, skipped).
        public var undecodable: UInt64 = 0
        /// Records the module announced lost (the sum of LOST records' counts).
        public var lostAnnounced: UInt64 = 0
        /// Alerts raised and processes killed by `observe`.
        public var alerts: UInt64 = 0, kills: UInt64 = 0
    }

    /// One thing the loop did, for the decision log and `archangel events`.
    public enum Record: Sendable {
        /// A request and the engine's answer; `latency` from the event to the answer sent, nanoseconds.
        case decided(SensorRequest, EngineDecision, latency: UInt64)
        /// A request the engine did not answer: the module applies `request.defaultVerdict` at its deadline.
        case unanswered(SensorRequest)
        /// An answer that could not be sent in time (the module applies the default).
        case answerUnsent(SensorRequest, EngineDecision, ChannelError)
        /// An event, asked about or not (only with `events: true`).
        case event(SensorEvent)
        /// `observe`'s alert or kill.
        case acted(SensorEvent, EngineAction)
        /// A payload of message type `type` that did not decode.
        case undecodable(MessageType, SensorDecodingError)
    }

    /// Creates a channel on the archangel module, attaches the sensors to it
    /// and configures them; the sensors not named stay off.
    ///
    /// - Parameters:
    ///   - sensors: each sensor's configuration.
    ///   - batchBytes: 0 sends one record per message; 256...65536 batches syscall and net records per CPU.
    ///   - devicePath: the sensors' control device.
    /// - Throws: `ChannelError` from the channel, `SensorsDevice.DeviceError` from the device.
    public init(sensors: [SensorsDevice.Sensor: SensorConfiguration], batchBytes: UInt32 = 0,
                backend: KernelBackend = KernelBackend(), devicePath: String = SensorsDevice.defaultPath) throws {
        channel = try backend.attach(nil)
        do {
            device = try SensorsDevice(path: devicePath)
            try device.attach(channel: channel.id.rawValue, batchBytes: batchBytes)
            // Exec first: a request about an exec must find the session ready for it.
            for sensor in SensorsDevice.Sensor.allCases {
                guard let configuration = sensors[sensor] else { continue }
                try device.configure(sensor, configuration)
            }
        } catch {
            let id = channel.id
            channel.close()
            try? KernelBackend.destroyChannel(id, devicePath: backend.devicePath)
            throw error
        }
        self.devicePath = backend.devicePath
    }

    private let devicePath: String

    deinit { close() }

    /// Detaches the sensors (pending requests get their defaults), then closes and destroys the channel.
    public func close() {
        guard !closed else { return }
        closed = true
        try? device.detach()
        let id = channel.id
        channel.close()
        try? KernelBackend.destroyChannel(id, devicePath: devicePath)
    }

    /// Runs `engine` until `shouldStop` says so (checked at least every
    /// `pollInterval`) or `limit` records were handled.
    ///
    /// Every record is decoded and given to `engine.observe` (a request's
    /// event too, before `decide`); each request's decision is sent as an
    /// AI_RESPONSE on the express lane, urgent, waiting for room no longer
    /// than the request's deadline. Actions of `observe`: an alert is only
    /// reported; a kill sends SIGKILL to the process (never to pid 1 or to
    /// this process). `report` sees everything the loop did.
    ///
    /// - Throws: `ChannelError` when the channel fails or is destroyed.
    public func run<Engine: VerdictEngine>(_ engine: inout Engine, events: Bool = false, limit: UInt64 = 0,
                                           pollInterval: Duration = .milliseconds(100),
                                           shouldStop: () -> Bool = { false },
                                           report: (Record) -> Void = { _ in }) throws(ChannelError) {
        var handled: UInt64 = 0
        while !shouldStop() && (limit == 0 || handled < limit) {
            let items: [Item]
            do {
                items = try channel.receive(timeout: pollInterval) { view in Self.decode(view) }
            } catch .timedOut {
                continue
            }
            for item in items {
                handled += 1
                try handle(item, engine: &engine, events: events, report: report)
            }
        }
    }

    /// What one message carried, decoded while it was lent (nothing points into the ring afterwards).
    enum Item {
        case request(SensorRequest)
        case event(SensorEvent)
        case undecodable(MessageType, SensorDecodingError)
    }

    static func decode(_ view: MessageView) -> [Item] {
        // A pooled payload may come in several segments: those are copied into one.
        if let raw = view.contiguousBytes { return decode(view.type, raw) }
        return view.bytes.withUnsafeBytes { decode(view.type, $0) }
    }

    static func decode(_ type: MessageType, _ raw: UnsafeRawBufferPointer) -> [Item] {
        do throws(SensorDecodingError) {
            if type == .aiRequest { return [.request(try SensorRequest.decode(raw))] }
            return try SensorEvent.decodeAll(raw).map { .event($0) }
        } catch {
            return [.undecodable(type, error)]
        }
    }

    private func handle<Engine: VerdictEngine>(_ item: Item, engine: inout Engine, events: Bool,
                                               report: (Record) -> Void) throws(ChannelError) {
        switch item {
        case let .undecodable(type, error):
            counters.undecodable += 1
            report(.undecodable(type, error))
        case let .event(event):
            observe(event, engine: &engine, events: events, report: report)
        case let .request(request):
            counters.requests += 1
            observe(request.event, engine: &engine, events: events, report: report)
            guard let decision = engine.decide(request) else {
                counters.unanswered += 1
                report(.unanswered(request))
                return
            }
            let now = archangel_monotonic_ns()
            let left = request.deadline > now ? request.deadline - now : 0
            do {
                try channel.send(.aiResponse, priority: .high, bytes: decision.response(to: request.id).bytes,
                                 timeout: .nanoseconds(Int64(clamping: max(left, 1_000_000))), options: .urgent)
            } catch .timedOut {
                counters.answersUnsent += 1
                report(.answerUnsent(request, decision, .timedOut))
                return
            }
            counters.answered += 1
            let sent = archangel_monotonic_ns()
            report(.decided(request, decision, latency: sent > request.event.timestamp ? sent - request.event.timestamp : 0))
        }
    }

    private func observe<Engine: VerdictEngine>(_ event: SensorEvent, engine: inout Engine, events: Bool,
                                                report: (Record) -> Void) {
        counters.events += 1
        if case let .lost(_, count) = event.body { counters.lostAnnounced += count }
        if events { report(.event(event)) }
        let action = engine.observe(event)
        switch action {
        case .none:
            return
        case .alert:
            counters.alerts += 1
        case let .kill(tgid, _):
            guard tgid > 1, pid_t(tgid) != getpid() else { return }
            if Glibc.kill(pid_t(tgid), SIGKILL) == 0 { counters.kills += 1 }
        }
        report(.acted(event, action))
    }
}
