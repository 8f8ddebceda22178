import ArchangelSensors
import Glibc

/// The rules engine: a `VerdictEngine` that decides by a `RuleSet`.
///
/// It keeps a table of the processes whose exec it saw (tgid -> path), to
/// know a parent's executable for parent -> child rules and a process's for
/// memory rules; a process it did not see exec (started before the engine)
/// is looked up with `executableOf`, by default `/proc/PID/exe`.
public struct RulesEngine: VerdictEngine {
    /// The rules in force.
    public let rules: RuleSet
    /// Finds the executable of a process the engine did not see exec.
    public var executableOf: @Sendable (UInt32) -> String?
    /// Executables by tgid, from exec records; bounded by `maxProcesses`.
    private(set) var processes: [UInt32: String] = [:]
    /// The process table's bound (a full table is emptied, then refilled: lookups fall back to `executableOf`).
    public static let maxProcesses = 65_536

    /// Creates an engine for `rules`.
    public init(rules: RuleSet, executableOf: @escaping @Sendable (UInt32) -> String? = RulesEngine.procExecutable) {
        self.rules = rules
        self.executableOf = executableOf
    }

    /// `readlink /proc/PID/exe`, nil when the process is gone or unreadable.
    @Sendable public static func procExecutable(_ pid: UInt32) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/\(pid)/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The executable of process `tgid` as far as the engine knows.
    public func executable(of tgid: UInt32) -> String? {
        processes[tgid] ?? executableOf(tgid)
    }

    public mutating func observe(_ event: SensorEvent) -> EngineAction {
        switch event.body {
        case let .exec(_, _, _, filename):
            if processes.count >= Self.maxProcesses { processes.removeAll(keepingCapacity: true) }
            processes[event.tgid] = filename
        case .exit where event.flags & 1 != 0:  // the group's last thread
            processes[event.tgid] = nil
        case .writableExecutable:
            return memoryAction(event)
        default:
            break
        }
        return .none
    }

    public mutating func decide(_ request: SensorRequest) -> EngineDecision? { decision(for: request) }

    /// The decision for `request` (what `decide` answers), without changing the engine.
    public func decision(for request: SensorRequest) -> EngineDecision? {
        switch request.event.body {
        case .exec: decideExec(request.event)
        case let .network(packet): decideFlow(packet)
        default: nil  // the module asks about nothing else; leave it to the default
        }
    }

    /// An exec's decision: the first matching rule, else the defaults. Not
    /// cached when a rule that could decide this path looks at more than
    /// the path (the module caches by path only).
    public func decideExec(_ event: SensorEvent) -> EngineDecision {
        guard case let .exec(ppid, _, _, filename) = event.body else {
            return EngineDecision(verdict: rules.defaults.verdict, reason: "default")
        }
        var contextual = false
        lazy var parent = executable(of: ppid)
        for rule in rules.exec {
            guard rule.paths.isEmpty || rule.paths.contains(where: { $0.matches(filename) }) else { continue }
            contextual = contextual || rule.dependsOnContext
            if !rule.uids.isEmpty && !rule.uids.contains(event.uid) { continue }
            if !rule.parents.isEmpty {
                guard let parent, rule.parents.contains(where: { $0.matches(parent) }) else { continue }
            }
            return EngineDecision(verdict: rule.outcome.verdict, ttlMilliseconds: contextual ? 0 : rule.outcome.ttlMilliseconds,
                                  score: rule.outcome.verdict == .allow ? 0 : 1_000_000, reason: rule.name)
        }
        return EngineDecision(verdict: rules.defaults.verdict,
                              ttlMilliseconds: contextual ? 0 : rules.defaults.ttlMilliseconds, reason: "default")
    }

    /// A new flow's decision, by its first packet (the module caches it per flow).
    public func decideFlow(_ packet: SensorEvent.Packet) -> EngineDecision {
        let remote = packet.outbound ? packet.destination : packet.source
        let local = packet.outbound ? packet.source : packet.destination
        for rule in rules.network {
            switch rule.direction {
            case .inbound where packet.outbound, .outbound where !packet.outbound: continue
            default: break
            }
            if !rule.protocols.isEmpty && !rule.protocols.contains(packet.protocolNumber) { continue }
            if !rule.remote.isEmpty && !rule.remote.contains(where: { $0.contains(remote) }) { continue }
            if !rule.local.isEmpty && !rule.local.contains(where: { $0.contains(local) }) { continue }
            if !rule.ports.isEmpty && !rule.ports.contains(where: { $0.contains(packet.destinationPort) }) { continue }
            return EngineDecision(verdict: rule.outcome.verdict, ttlMilliseconds: rule.outcome.ttlMilliseconds,
                                  score: rule.outcome.verdict == .allow ? 0 : 1_000_000, reason: rule.name)
        }
        return EngineDecision(verdict: rules.defaults.verdict, ttlMilliseconds: rules.defaults.ttlMilliseconds,
                              reason: "default")
    }

    /// A W^X mapping's action: the first memory rule whose paths match the process.
    public func memoryAction(_ event: SensorEvent) -> EngineAction {
        guard !rules.memory.isEmpty else { return .none }
        let path = executable(of: event.tgid)
        for rule in rules.memory {
            if !rule.paths.isEmpty {
                guard let path, rule.paths.contains(where: { $0.matches(path) }) else { continue }
            }
            let what = "\(rule.name): W^X mapping by \(path ?? "pid \(event.tgid)")"
            switch rule.action {
            case .allow: return .none
            case .alert: return .alert(reason: what)
            case .kill: return .kill(tgid: event.tgid, reason: what)
            }
        }
        return .none
    }
}
