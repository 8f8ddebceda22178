// Fuzzes the rules file loader (`RuleSet.parse(_:format:)`, JSON or YAML
// through Yams), the patterns and ranges it compiles (`PathGlob`,
// `AddressRange`), and the engine deciding with what it loaded.
// The first byte's bit 0 picks the format (0 JSON, 1 YAML); the rest is the file.
// Invariants:
//  - a refusal names a line of the file (1 ... lines + 1) when it names one,
//    and has a description;
//  - JSON is YAML: a document JSON accepts parses to the same rule set as YAML;
//  - parsing is deterministic (the same text gives the same set, or error, twice;
//    except which of two bad sensors is reported, and the order in which Yams
//    lists duplicated keys: see docs/fuzzing.md);
//  - what parses is within the schema's ranges (ttl <= 1 day, ports low <= high,
//    deadlines 1...60000 ms, syscalls 0...511), every glob recompiles from its
//    text to itself, every address range's text (`description`) parses back to itself;
//  - the summary has one line per sensor and rule (when no name holds a line break);
//  - the engine decides: an exec's decision names the first rule whose path,
//    uid and parent match, else "default", with ttl 0 when a context rule
//    could decide that path; a flow's likewise; verdicts are the rule's.
import ArchangelRules
import ArchangelSensors
import FuzzSupport

func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var f = FuzzInput(data, size)
    let format: RulesFormat = f.u8() & 1 == 0 ? .json : .yaml
    let text = String(decoding: f.rest(), as: UTF8.self)
    // Lines as YAML counts them: \n, \r, \r\n, NEL, LS and PS all end one (counted apart here: an upper bound).
    let breaks: Set<Unicode.Scalar> = ["\n", "\r", "\u{85}", "\u{2028}", "\u{2029}"]
    let lines = 1 + text.unicodeScalars.filter { breaks.contains($0) }.count
    let first: Result<RuleSet, RulesError>
    do { first = .success(try RuleSet.parse(text, format: format)) } catch { first = .failure(error) }
    let second: Result<RuleSet, RulesError>
    do { second = .success(try RuleSet.parse(text, format: format)) } catch { second = .failure(error) }
    switch (first, second) {
    case let (.success(a), .success(b)): require(a == b, "two parses of one text differ")
    case let (.failure(a), .failure(b)):
        // Known: the sensors section is checked in Dictionary order, which varies from one
        // parse to the next, so with two bad sensors either may be reported (docs/fuzzing.md).
        let sensors = a.field.hasPrefix("sensors.") && b.field.hasPrefix("sensors.")
        // Known too: Yams lists a mapping's duplicated keys in hash order.
        let duplicates = a.field.isEmpty && a.message.contains("duplicated key") && a.file == b.file
            && a.line == b.line && a.column == b.column && a.field == b.field
        require(a == b || sensors || duplicates, "two parses of one text fail differently: \(a) / \(b)")
    default: require(false, "two parses of one text: one failed")
    }
    let rules: RuleSet
    switch first {
    case .failure(let error):
        if let line = error.line { require(line >= 1 && line <= lines + 1, "error at line \(line) of \(lines)") }
        require(!error.description.isEmpty && !error.message.isEmpty, "an error without a message")
        return 0
    case .success(let r):
        rules = r
    }
    if format == .json {
        do {
            let yaml = try RuleSet.parse(text, format: .yaml)
            require(yaml == rules, "the JSON document parses differently as YAML")
        } catch {
            require(false, "a JSON document JSON accepts is refused as YAML: \(error)")
        }
    }
    checkRanges(rules)
    checkSummary(rules)
    checkEngine(rules)
    return 0
}

func checkRanges(_ rules: RuleSet) {
    func outcome(_ o: RuleSet.Outcome) { require(o.ttlMilliseconds <= 86_400_000, "ttl \(o.ttlMilliseconds)") }
    outcome(rules.defaults)
    func globs(_ g: [PathGlob]) {
        for glob in g {
            guard let again = try? PathGlob(glob.description) else { require(false, "glob '\(glob)' does not recompile"); return }
            require(again == glob, "glob '\(glob)' recompiles differently")
        }
    }
    for r in rules.exec { outcome(r.outcome); globs(r.paths); globs(r.parents) }
    for r in rules.memory { globs(r.paths) }
    for r in rules.network {
        outcome(r.outcome)
        for p in r.ports { require(p.lowerBound <= p.upperBound, "ports \(p)") }
        for range in r.remote + r.local {
            require((range.family == 4 && range.network.count == 4 && range.prefixLength <= 32)
                    || (range.family == 6 && range.network.count == 16 && range.prefixLength <= 128), "range \(range)")
            guard let again = try? AddressRange(range.description) else {
                require(false, "range '\(range)' does not parse back"); return
            }
            require(again == range, "range '\(range)' parses back differently")
            require(range.contains(range.network), "range \(range) does not contain its own network")
        }
    }
    for (_, c) in rules.sensors {
        require(c.deadlineMilliseconds == 0 || (1...60_000).contains(c.deadlineMilliseconds), "deadline \(c.deadlineMilliseconds)")
        require(c.syscalls.allSatisfy { (0...511).contains($0) }, "syscalls \(c.syscalls)")
    }
}

func checkSummary(_ rules: RuleSet) {
    let summary = rules.summary
    let names = rules.exec.map(\.name) + rules.network.map(\.name) + rules.memory.map(\.name)
    let patterns = (rules.exec.flatMap { $0.paths + $0.parents } + rules.memory.flatMap(\.paths)).map(\.description)
    guard !(names + patterns).contains(where: { $0.contains(where: \.isNewline) }) else { return }
    let expected = 1 + SensorsDevice.Sensor.allCases.count + rules.exec.count + rules.network.count + rules.memory.count
    let count = summary.split(separator: "\n", omittingEmptySubsequences: false).count
    require(count == expected, "summary of \(count) lines for \(expected) sensors and rules")
}

func checkEngine(_ rules: RuleSet) {
    let parentPath = "/usr/bin/parent"
    let engine = RulesEngine(rules: rules, executableOf: { _ in parentPath })
    // Paths to ask about: every literal-looking glob's text, and a few fixed ones.
    var paths = ["/bin/sh", "/usr/bin/ls", "/tmp/x", "", "/"]
    for r in rules.exec { paths += r.paths.map(\.description).prefix(3) }
    for path in paths.prefix(12) {
        for uid: UInt32 in [0, 1000] {
            let event = SensorEvent(pid: 10, tgid: 10, uid: uid, body: .exec(ppid: 1, verdict: nil, comm: "x", filename: path))
            let decision = engine.decideExec(event)
            // The model: first rule whose path, uid and parent match.
            var contextual = false
            var chosen: RuleSet.ExecRule?
            for rule in rules.exec {
                guard rule.paths.isEmpty || rule.paths.contains(where: { $0.matches(path) }) else { continue }
                contextual = contextual || rule.dependsOnContext
                if !rule.uids.isEmpty && !rule.uids.contains(uid) { continue }
                if !rule.parents.isEmpty && !rule.parents.contains(where: { $0.matches(parentPath) }) { continue }
                chosen = rule
                break
            }
            let outcome = chosen?.outcome ?? rules.defaults
            require(decision.reason == (chosen?.name ?? "default"), "exec \(path): decided by '\(decision.reason)'")
            require(decision.verdict == outcome.verdict, "exec \(path): verdict \(decision.verdict)")
            require(decision.ttlMilliseconds == (contextual ? 0 : outcome.ttlMilliseconds),
                    "exec \(path): ttl \(decision.ttlMilliseconds), contextual \(contextual)")
            require(decision.score <= 1_000_000, "score \(decision.score)")
        }
    }
    var addresses: [[UInt8]] = [[127, 0, 0, 1], [10, 1, 2, 3], [UInt8](repeating: 0, count: 16)]
    for r in rules.network { addresses += (r.remote + r.local).map(\.network).prefix(2) }
    for address in addresses.prefix(8) {
        let other: [UInt8] = address.count == 4 ? [192, 168, 0, 1] : [UInt8](repeating: 0xfe, count: 16)
        for outbound in [false, true] {
            let packet = SensorEvent.Packet(family: address.count == 4 ? 4 : 6, outbound: outbound, protocolNumber: 6,
                                            sourcePort: 40000, destinationPort: 22,
                                            source: outbound ? other : address, destination: outbound ? address : other)
            let decision = engine.decideFlow(packet)
            let chosen = rules.network.first { rule in
                switch rule.direction {
                case .inbound where outbound, .outbound where !outbound: return false
                default: break
                }
                return (rule.protocols.isEmpty || rule.protocols.contains(6))
                    && (rule.remote.isEmpty || rule.remote.contains { $0.contains(address) })
                    && (rule.local.isEmpty || rule.local.contains { $0.contains(other) })
                    && (rule.ports.isEmpty || rule.ports.contains { $0.contains(22) })
            }
            require(decision.reason == (chosen?.name ?? "default") && decision.verdict == (chosen?.outcome ?? rules.defaults).verdict,
                    "flow decided by '\(decision.reason)'")
        }
    }
}

func seeds() -> [(name: String, bytes: [UInt8])] {
    let json = """
        {"version": 1, "default": {"verdict": "deny", "ttl_ms": 0},
         "sensors": {"exec": {"policy": "deny-ask", "default": "deny", "deadline_ms": 250},
                     "net": {"policy": "hold", "every_packet": true},
                     "mem": {"interval_ms": 100, "faults": false},
                     "syscall": {"numbers": [59, 322], "exit": true}},
         "exec": [{"name": "ok", "path": "/usr/bin/*", "verdict": "allow", "ttl_ms": 1000},
                  {"path": ["/tmp/**", "*.sh"], "parent": "/usr/bin/[a-p]*", "uid": [0, 1000], "verdict": "kill"}],
         "network": [{"ports": [22, "8000-8080"], "local": "127.0.0.0/8", "direction": "in", "verdict": "allow"},
                     {"remote": ["10.0.0.0/8", "fd00::/8"], "protocol": ["tcp", 17], "direction": "out", "verdict": "deny"}],
         "memory": [{"path": "/usr/lib/jvm/**", "action": "allow"}, {"action": "alert"}]}
        """
    let yaml = """
        version: 1
        default: {verdict: allow, ttl_ms: 60000}
        exec:
          - name: no shells from web
            path: [/bin/sh, /bin/bash, /usr/bin/dash]
            parent: /usr/sbin/nginx
            verdict: deny
          - path: '/opt/app/bin/\\[x]'
            verdict: allow
        network:
          - ports: 0-1023
            direction: any
            remote: ::1
            verdict: kill
        memory:
          - {path: /usr/bin/python3*, action: kill}
        """
    return [
        ("json", [0] + Array(json.utf8)),
        ("json-as-yaml", [1] + Array(json.utf8)),
        ("yaml", [1] + Array(yaml.utf8)),
        ("minimal", [0] + Array("{\"version\": 1}".utf8)),
        ("typo", [1] + Array("exec:\n  - path: /bin/sh\n    verdcit: deny\n".utf8)),
    ]
}

runFuzzer(seeds: seeds, fuzz)
