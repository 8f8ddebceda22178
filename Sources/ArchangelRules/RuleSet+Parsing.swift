import ArchangelSensors
import Foundation
import Yams

extension RuleSet {
    /// Reads and checks the rules file at `path`; its name says its format (`.json`, `.yaml`, `.yml`).
    public static func load(path: String) throws(RulesError) -> RuleSet {
        guard let format = RulesFormat(path: path) else {
            throw RulesError(file: path, field: "", message: "name the file .json, .yaml or .yml to say its format")
        }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw RulesError(file: path, field: "", message: "cannot read it: \(error.localizedDescription)")
        }
        return try parse(text, format: format, file: path)
    }

    /// Parses and checks a rules document (docs/rules.md).
    ///
    /// JSON must be strict JSON; YAML is read by Yams (libyaml). Unknown keys,
    /// values out of range and bad patterns, addresses or ports are errors
    /// that name the field and its line.
    public static func parse(_ text: String, format: RulesFormat, file: String? = nil) throws(RulesError) -> RuleSet {
        if format == .json {
            do {
                _ = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
            } catch {
                throw RulesError(file: file, field: "", message: "not valid JSON: \(error.localizedDescription)")
            }
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw RulesError(file: file, field: "", message: "not valid \(format == .json ? "JSON" : "YAML"): \(error)")
        } catch {
            throw RulesError(file: file, field: "", message: "cannot parse it: \(error)")
        }
        guard let root else { throw RulesError(file: file, field: "", message: "the document is empty") }
        return try RuleSetParser(file: file).ruleSet(RulesNode(node: root, field: "", file: file))
    }
}

/// The rules document's schema, one function per section.
struct RuleSetParser {
    let file: String?

    static let verdicts = ["allow", "deny", "kill"]
    static let maxTTL = 86_400_000

    func ruleSet(_ root: RulesNode) throws(RulesError) -> RuleSet {
        let top = try root.mapping(allowed: ["version", "default", "sensors", "exec", "network", "memory"])
        if let version = top["version"] {
            let v = try version.integer(in: 0...Int(Int32.max))
            guard v == RuleSet.version else {
                throw version.error("version \(v); this build reads version \(RuleSet.version)")
            }
        }
        var set = RuleSet()
        if let defaults = top["default"] {
            let fields = try defaults.mapping(allowed: ["verdict", "ttl_ms"])
            set.defaults = try outcome(fields, fallback: set.defaults)
        }
        set.exec = try (top["exec"]?.items() ?? []).enumerated().map { (i, node) throws(RulesError) in
            try execRule(node, index: i)
        }
        set.network = try (top["network"]?.items() ?? []).enumerated().map { (i, node) throws(RulesError) in
            try networkRule(node, index: i)
        }
        set.memory = try (top["memory"]?.items() ?? []).enumerated().map { (i, node) throws(RulesError) in
            try memoryRule(node, index: i)
        }
        if let sensors = top["sensors"] {
            set.sensors = try self.sensors(sensors)
        } else {
            // No section: switch on what the rules need, in the safest useful mode.
            if !set.exec.isEmpty { set.sensors[.exec] = SensorConfiguration(policy: .hold) }
            if !set.network.isEmpty { set.sensors[.network] = SensorConfiguration(policy: .allowAndAsk) }
            if !set.memory.isEmpty { set.sensors[.memory] = SensorConfiguration(flags: .noFaultSummaries) }
        }
        return set
    }

    func verdict(_ node: RulesNode) throws(RulesError) -> Verdict {
        switch try node.oneOf(Self.verdicts) {
        case "deny": .deny
        case "kill": .kill
        default: .allow
        }
    }

    func outcome(_ fields: [String: RulesNode], fallback: RuleSet.Outcome) throws(RulesError) -> RuleSet.Outcome {
        var out = fallback
        if let v = fields["verdict"] { out.verdict = try verdict(v) }
        if let t = fields["ttl_ms"] { out.ttlMilliseconds = UInt32(try t.integer(in: 0...Self.maxTTL)) }
        return out
    }

    func ruleOutcome(_ fields: [String: RulesNode], in node: RulesNode) throws(RulesError) -> RuleSet.Outcome {
        guard let v = fields["verdict"] else { throw node.error("a rule needs a verdict (allow, deny or kill)") }
        // A rule's verdict is cached as long as the defaults say unless it says otherwise.
        return try outcome(fields, fallback: RuleSet.Outcome(verdict: try verdict(v), ttlMilliseconds: 60_000))
    }

    /// A rule's name: printable, since it goes into one-line logs.
    func name(_ node: RulesNode?, default fallback: String) throws(RulesError) -> String {
        guard let node else { return fallback }
        let text = try node.string()
        guard !text.isEmpty, !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw node.error("a name must be non-empty and have no control characters (it goes into one-line logs)")
        }
        return text
    }

    func globs(_ node: RulesNode?) throws(RulesError) -> [PathGlob] {
        guard let node else { return [] }
        return try node.list().map { (item) throws(RulesError) in
            let text = try item.string()
            do throws(PathGlob.Invalid) {
                return try PathGlob(text)
            } catch {
                throw item.error(error.description)
            }
        }
    }

    func execRule(_ node: RulesNode, index: Int) throws(RulesError) -> RuleSet.ExecRule {
        let f = try node.mapping(allowed: ["name", "path", "parent", "uid", "verdict", "ttl_ms"])
        let uids = try (f["uid"]?.list() ?? []).map { (n) throws(RulesError) in UInt32(try n.integer(in: 0...Int(UInt32.max))) }
        return RuleSet.ExecRule(name: try name(f["name"], default: "exec[\(index)]"), paths: try globs(f["path"]),
                                parents: try globs(f["parent"]), uids: uids, outcome: try ruleOutcome(f, in: node))
    }

    func networkRule(_ node: RulesNode, index: Int) throws(RulesError) -> RuleSet.NetworkRule {
        let f = try node.mapping(allowed: ["name", "direction", "protocol", "remote", "local", "ports", "verdict", "ttl_ms"])
        let direction = try f["direction"].map { (n) throws(RulesError) in
            RuleSet.NetworkRule.Direction(rawValue: try n.oneOf(["in", "out", "any"]))!
        } ?? .any
        let protocols = try (f["protocol"]?.list() ?? []).map { (n) throws(RulesError) -> UInt8 in
            let names: [String: UInt8] = ["tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "sctp": 132]
            if let number = names[try n.string().lowercased()] { return number }
            guard n.node.int != nil else { throw n.error("expected tcp, udp, icmp, icmpv6, sctp or a protocol number") }
            return UInt8(try n.integer(in: 0...255))
        }
        func ranges(_ node: RulesNode?) throws(RulesError) -> [AddressRange] {
            try (node?.list() ?? []).map { (n) throws(RulesError) in
                let text = try n.string()
                do throws(AddressRange.Invalid) {
                    return try AddressRange(text)
                } catch {
                    throw n.error(error.description)
                }
            }
        }
        let ports = try (f["ports"]?.list() ?? []).map { (n) throws(RulesError) -> ClosedRange<UInt16> in
            let text = try n.string()
            let bounds = text.split(separator: "-", omittingEmptySubsequences: false).map { UInt16($0) }
            switch bounds.count {
            case 1 where bounds[0] != nil: return bounds[0]!...bounds[0]!
            case 2 where bounds[0] != nil && bounds[1] != nil && bounds[0]! <= bounds[1]!: return bounds[0]!...bounds[1]!
            default: throw n.error("'\(text)' is not a port (0...65535) or a range LOW-HIGH")
            }
        }
        return RuleSet.NetworkRule(name: try name(f["name"], default: "network[\(index)]"), direction: direction,
                                   protocols: protocols, remote: try ranges(f["remote"]), local: try ranges(f["local"]),
                                   ports: ports, outcome: try ruleOutcome(f, in: node))
    }

    func memoryRule(_ node: RulesNode, index: Int) throws(RulesError) -> RuleSet.MemoryRule {
        let f = try node.mapping(allowed: ["name", "path", "action"])
        guard let action = f["action"] else { throw node.error("a memory rule needs an action (alert, kill or allow)") }
        return RuleSet.MemoryRule(name: try name(f["name"], default: "memory[\(index)]"), paths: try globs(f["path"]),
                                  action: RuleSet.MemoryRule.Action(rawValue: try action.oneOf(["alert", "kill", "allow"]))!)
    }

    func sensors(_ node: RulesNode) throws(RulesError) -> [SensorsDevice.Sensor: SensorConfiguration] {
        let f = try node.mapping(allowed: ["exec", "net", "mem", "syscall"])
        var out: [SensorsDevice.Sensor: SensorConfiguration] = [:]
        // In a fixed order, so that a file with two mistakes always names the same one first.
        for sensor in SensorsDevice.Sensor.allCases {
            guard let value = f[sensor.name] else { continue }
            var allowed = ["enabled"]
            switch sensor {
            case .exec: allowed += ["policy", "default", "deadline_ms", "exit_records"]
            case .network: allowed += ["policy", "default", "deadline_ms", "every_packet"]
            case .memory: allowed += ["interval_ms", "faults", "wx"]
            case .syscall: allowed += ["numbers", "exit"]
            }
            let s = try value.mapping(allowed: allowed)
            var config = SensorConfiguration(policy: sensor == .exec ? .hold : sensor == .network ? .allowAndAsk : .observe)
            if let e = s["enabled"] { config.enabled = try e.bool() }
            if let p = s["policy"] {
                let names = SensorConfiguration.Policy.allCases.map(\.name)
                config.policy = SensorConfiguration.Policy(name: try p.oneOf(names))!
            }
            if let d = s["default"] { config.defaultVerdict = try verdict(d) }
            if let d = s["deadline_ms"] { config.deadlineMilliseconds = UInt32(try d.integer(in: 1...60_000)) }
            if let i = s["interval_ms"] { config.intervalMilliseconds = UInt32(try i.integer(in: 10...60_000)) }
            if let x = s["exit_records"], !(try x.bool()) { config.flags.insert(.noExitRecords) }
            if let x = s["every_packet"], try x.bool() { config.flags.insert(.everyPacket) }
            if let x = s["faults"], !(try x.bool()) { config.flags.insert(.noFaultSummaries) }
            if let x = s["wx"], !(try x.bool()) { config.flags.insert(.noWritableExecutable) }
            if let x = s["exit"], try x.bool() { config.flags.insert(.syscallExit) }
            if let numbers = s["numbers"] {
                config.syscalls = try numbers.list().map { (n) throws(RulesError) in try n.integer(in: 0...511) }
            }
            if sensor == .syscall && config.enabled && config.syscalls.isEmpty {
                throw value.error("the syscall sensor needs numbers (it traces nothing otherwise)")
            }
            out[sensor] = config
        }
        return out
    }
}
