import ArchangelSensors

/// A rules file, parsed and checked (docs/rules.md): the module's sensor
/// settings, and ordered rules for execs, network flows and W^X mappings.
/// In each list the first rule that matches decides; no match means `defaults`.
public struct RuleSet: Sendable, Equatable {
    /// The rules file format this build reads.
    public static let version = 1

    /// The verdict and cache time when no rule matches.
    public var defaults: Outcome
    /// How the engine configures each sensor; a sensor absent here stays off.
    public var sensors: [SensorsDevice.Sensor: SensorConfiguration]
    public var exec: [ExecRule]
    public var network: [NetworkRule]
    public var memory: [MemoryRule]

    /// A rule's verdict and how long the module may cache it.
    public struct Outcome: Sendable, Equatable {
        public var verdict: Verdict
        /// Milliseconds; 0 asks again every time.
        public var ttlMilliseconds: UInt32

        public init(verdict: Verdict, ttlMilliseconds: UInt32) {
            self.verdict = verdict
            self.ttlMilliseconds = ttlMilliseconds
        }
    }

    /// Decides execs: the new image's path, the parent's, the real uid.
    public struct ExecRule: Sendable, Equatable {
        /// Named in the decision log; `exec[N]` when the file names none.
        public var name: String
        /// The exec'd path matches one of these (empty: any).
        public var paths: [PathGlob]
        /// The parent's executable matches one of these (empty: any): parent -> child rules.
        public var parents: [PathGlob]
        /// The real uid is one of these (empty: any).
        public var uids: [UInt32]
        public var outcome: Outcome

        /// True when the decision depends on more than the path, so the
        /// module (which caches by path) must not cache it.
        public var dependsOnContext: Bool { !parents.isEmpty || !uids.isEmpty }
    }

    /// Decides new network flows by their first packet.
    public struct NetworkRule: Sendable, Equatable {
        public enum Direction: String, Sendable { case inbound = "in", outbound = "out", any }
        public var name: String
        public var direction: Direction
        /// IPPROTO numbers (6 tcp, 17 udp, 1 icmp, 58 icmpv6); empty: any.
        public var protocols: [UInt8]
        /// The far end's address (destination when outbound, source when inbound); empty: any.
        public var remote: [AddressRange]
        /// This host's address; empty: any.
        public var local: [AddressRange]
        /// The packet's destination port (the service: remote when outbound, local when inbound); empty: any.
        public var ports: [ClosedRange<UInt16>]
        public var outcome: Outcome
    }

    /// Acts on W^X mappings (the module reports them; it does not ask).
    public struct MemoryRule: Sendable, Equatable {
        public enum Action: String, Sendable { case alert, kill, allow }
        public var name: String
        /// The process's executable matches one of these (empty: any).
        public var paths: [PathGlob]
        /// `alert` logs, `kill` SIGKILLs the process from userspace, `allow` says nothing.
        public var action: Action
    }

    /// Creates a rule set.
    public init(defaults: Outcome = Outcome(verdict: .allow, ttlMilliseconds: 60_000),
                sensors: [SensorsDevice.Sensor: SensorConfiguration] = [:],
                exec: [ExecRule] = [], network: [NetworkRule] = [], memory: [MemoryRule] = []) {
        self.defaults = defaults
        self.sensors = sensors
        self.exec = exec
        self.network = network
        self.memory = memory
    }
}
