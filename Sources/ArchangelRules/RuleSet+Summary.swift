import ArchangelSensors

extension RuleSet {
    /// What the rules say, one line per rule and sensor (`archangel engine --check`).
    public var summary: String {
        func verdict(_ o: Outcome) -> String { "\(o.verdict) ttl_ms=\(o.ttlMilliseconds)" }
        func list<T>(_ items: [T]) -> String { items.isEmpty ? "any" : items.map { "\($0)" }.joined(separator: ",") }
        var lines = ["rules version \(RuleSet.version): default \(verdict(defaults))"]
        for sensor in SensorsDevice.Sensor.allCases {
            guard let c = sensors[sensor] else {
                lines.append("sensor \(sensor.name): off")
                continue
            }
            var text = "sensor \(sensor.name): \(c.enabled ? "on" : "off") policy=\(c.policy.name) default=\(c.defaultVerdict)"
            text += " deadline_ms=\(c.deadlineMilliseconds == 0 ? 1000 : c.deadlineMilliseconds) flags=0x\(String(c.flags.rawValue, radix: 16))"
            if !c.syscalls.isEmpty { text += " syscalls=\(list(c.syscalls))" }
            lines.append(text)
        }
        for r in exec {
            lines.append("exec \(r.name): path=\(list(r.paths)) parent=\(list(r.parents)) uid=\(list(r.uids)) -> \(verdict(r.outcome))")
        }
        for r in network {
            let ports = r.ports.map { $0.lowerBound == $0.upperBound ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }
            lines.append("network \(r.name): direction=\(r.direction.rawValue) protocol=\(list(r.protocols)) "
                + "remote=\(list(r.remote)) local=\(list(r.local)) ports=\(list(ports)) -> \(verdict(r.outcome))")
        }
        for r in memory { lines.append("memory \(r.name): path=\(list(r.paths)) -> \(r.action.rawValue)") }
        return lines.joined(separator: "\n")
    }
}
