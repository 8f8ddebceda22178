// Rules files: what parses, and errors that name the field and the line.
import ArchangelRules
import ArchangelSensors
import Testing

private func error(_ text: String, _ format: RulesFormat = .yaml) -> RulesError? {
    do {
        _ = try RuleSet.parse(text, format: format, file: "r")
        return nil
    } catch {
        return error
    }
}

@Suite struct RuleSetParsingTests {
    @Test func jsonAndYAMLSayTheSameThing() throws {
        let json = """
            {"version": 1, "default": {"verdict": "deny", "ttl_ms": 0},
             "sensors": {"exec": {"policy": "deny-ask", "default": "deny", "deadline_ms": 250},
                         "net": {"policy": "hold", "every_packet": true},
                         "syscall": {"numbers": [59, 322], "exit": true}},
             "exec": [{"name": "ok", "path": "/usr/bin/*", "verdict": "allow", "ttl_ms": 1000}],
             "network": [{"ports": [22, "8000-8080"], "local": "127.0.0.0/8", "direction": "in", "verdict": "allow"}]}
            """
        let yaml = """
            version: 1
            default: {verdict: deny, ttl_ms: 0}
            sensors:
              exec: {policy: deny-ask, default: deny, deadline_ms: 250}
              net: {policy: hold, every_packet: true}
              syscall: {numbers: [59, 322], exit: true}
            exec:
              - {name: ok, path: /usr/bin/*, verdict: allow, ttl_ms: 1000}
            network:
              - ports: [22, 8000-8080]
                local: 127.0.0.0/8
                direction: in
                verdict: allow
            """
        let a = try RuleSet.parse(json, format: .json)
        let b = try RuleSet.parse(yaml, format: .yaml)
        #expect(a == b)
        #expect(a.defaults == RuleSet.Outcome(verdict: .deny, ttlMilliseconds: 0))
        #expect(a.sensors[.exec] == SensorConfiguration(policy: .denyAndAsk, defaultVerdict: .deny, deadlineMilliseconds: 250))
        #expect(a.sensors[.network]?.flags == .everyPacket && a.sensors[.network]?.policy == .hold)
        #expect(a.sensors[.syscall]?.syscalls == [59, 322] && a.sensors[.syscall]?.flags == .syscallExit)
        #expect(a.network[0].ports == [22...22, 8000...8080] && a.network[0].direction == .inbound)
        #expect(a.exec[0].outcome.ttlMilliseconds == 1000)
    }

    @Test func mistakesNameTheFieldAndTheLine() throws {
        let typo = try #require(error("exec:\n  - path: /bin/sh\n    verdcit: deny\n"))
        #expect(typo.field == "exec[0].verdcit" && typo.line == 3 && typo.message.contains("unknown key"))
        #expect(typo.description.hasPrefix("r:3:"))
        let verdict = try #require(error("exec:\n  - path: /bin/sh\n    verdict: deni\n"))
        #expect(verdict.field == "exec[0].verdict" && verdict.message.contains("allow, deny, kill"))
        #expect(error("exec:\n  - path: /bin/sh\n")?.message.contains("needs a verdict") == true)
        #expect(error("network:\n  - remote: 10.0.0.0/33\n    verdict: deny\n")?.field == "network[0].remote")
        #expect(error("network:\n  - ports: [70000]\n    verdict: deny\n")?.field == "network[0].ports[0]")
        #expect(error("network:\n  - ports: 9-3\n    verdict: deny\n")?.message.contains("LOW-HIGH") == true)
        #expect(error("exec:\n  - path: '[a-'\n    verdict: deny\n")?.message.contains("not closed") == true)
        #expect(error("version: 2\n")?.message.contains("version 2") == true)
        #expect(error("sensors:\n  syscall: {exit: true}\n")?.message.contains("needs numbers") == true)
        #expect(error("sensors:\n  exec: {policy: sometimes}\n")?.field == "sensors.exec.policy")
        #expect(error("exec: {path: x}\n")?.message.contains("expected a list") == true)
        #expect(error("")?.message.contains("empty") == true)
        #expect(error("exec: [\n", .yaml)?.message.contains("not valid YAML") == true)
        #expect(error("exec: []\n", .json)?.message.contains("not valid JSON") == true)
        #expect(error("{\"exec\": [], \"exec\": []}", .json) != nil)
        #expect(error("exec:\n  - {name: \"a\\nb\", verdict: deny}\n")?.message.contains("control characters") == true)
        // Two bad sensors: always the first in the sensors' order is named.
        for _ in 0..<20 {
            #expect(error("sensors:\n  syscall: {exit: true}\n  exec: {policy: sometimes}\n")?.field == "sensors.exec.policy")
        }
    }

    @Test func aFileSaysItsFormatByItsName() {
        #expect(throws: RulesError.self) { try RuleSet.load(path: "/nonexistent/rules.txt") }
        do {
            _ = try RuleSet.load(path: "/nonexistent/rules.yaml")
            Issue.record("a missing file is an error")
        } catch {
            #expect(error.file == "/nonexistent/rules.yaml" && error.message.contains("cannot read"))
        }
    }

    @Test func globsMatchAsDocumented() throws {
        func m(_ p: String, _ s: String) throws -> Bool { try PathGlob(p).matches(s) }
        #expect(try m("/tmp/**", "/tmp/a/b/c"))
        #expect(try m("/tmp/*", "/tmp/a"))
        #expect(try !m("/tmp/*", "/tmp/a/b"))
        #expect(try m("sh", "/bin/sh") && m("sh", "sh") && !m("sh", "/bin/bash"))
        #expect(try m("*sh", "/usr/bin/bash"))
        #expect(try m("/usr/**/python3*", "/usr/local/bin/python3.11"))
        #expect(try m("/bin/[bcd]ash", "/bin/dash") && !m("/bin/[!bcd]ash", "/bin/dash"))
        #expect(try m("/opt/a\\*b", "/opt/a*b") && !m("/opt/a\\*b", "/opt/axb"))
        #expect(try m("/x/?", "/x/y") && !m("/x/?", "/x//"))
        #expect(try !m("/usr/bin/*", "/usr/bin"))
        // Long names cost tokens x bytes, no exponential backtracking.
        let long = "/" + String(repeating: "a", count: 4000)
        #expect(try !m("/" + String(repeating: "*a", count: 40) + "b", long))
        #expect(throws: PathGlob.Invalid.self) { try PathGlob("") }
        #expect(throws: PathGlob.Invalid.self) { try PathGlob("/a\\") }
        #expect(throws: PathGlob.Invalid.self) { try PathGlob("[z-a]") }
    }

    @Test func addressRangesCoverTheirPrefixesOnly() throws {
        let net = try AddressRange("192.168.1.77/24")
        #expect(net.description == "192.168.1.0/24")
        #expect(net.contains([192, 168, 1, 255]) && !net.contains([192, 168, 2, 1]))
        #expect(try AddressRange("0.0.0.0/0").contains([1, 2, 3, 4]))
        #expect(try AddressRange("10.0.0.1").contains([10, 0, 0, 1]) && !AddressRange("10.0.0.1").contains([10, 0, 0, 2]))
        let six = try AddressRange("2001:db8::/33")
        #expect(six.contains([0x20, 0x01, 0x0d, 0xb8, 0x7f] + [UInt8](repeating: 0, count: 11)))
        #expect(!six.contains([0x20, 0x01, 0x0d, 0xb8, 0x80] + [UInt8](repeating: 0, count: 11)))
        #expect(!six.contains([10, 0, 0, 1]))
        #expect(throws: AddressRange.Invalid.self) { try AddressRange("10.0.0.0/8/8") }
        #expect(throws: AddressRange.Invalid.self) { try AddressRange("host.example") }
        #expect(throws: AddressRange.Invalid.self) { try AddressRange("::/129") }
    }

    @Test func theSummarySaysWhatTheFileSays() throws {
        let rules = try RuleSet.parse("exec:\n  - {name: t, path: /tmp/**, verdict: deny}\n", format: .yaml)
        #expect(rules.summary.contains("exec t: path=/tmp/** parent=any uid=any -> deny ttl_ms=60000"))
        #expect(rules.summary.contains("sensor exec: on policy=hold"))
        #expect(rules.summary.contains("sensor net: off"))
    }
}
