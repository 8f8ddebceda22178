// The rules engine's decisions, from rules files as an operator writes them.
import ArchangelRules
import ArchangelSensors
import Testing

private func exec(_ path: String, ppid: UInt32 = 100, uid: UInt32 = 1000, tgid: UInt32 = 200) -> SensorRequest {
    SensorRequest(id: 1, deadline: 0, defaultVerdict: .allow,
                  event: SensorEvent(pid: tgid, tgid: tgid, uid: uid,
                                     body: .exec(ppid: ppid, verdict: nil, comm: "x", filename: path)))
}

private func udp(to address: [UInt8], port: UInt16, outbound: Bool = true, proto: UInt8 = 17) -> SensorRequest {
    let packet = SensorEvent.Packet(family: address.count == 4 ? 4 : 6, outbound: outbound, protocolNumber: proto,
                                    sourcePort: 40000, destinationPort: port,
                                    source: address.count == 4 ? [10, 0, 0, 1] : [UInt8](repeating: 0, count: 15) + [1],
                                    destination: address)
    return SensorRequest(id: 2, deadline: 0, defaultVerdict: .allow,
                         event: SensorEvent(pid: 0, tgid: 0, body: .network(packet)))
}

private let yaml = """
    version: 1
    default: {verdict: allow, ttl_ms: 5000}
    exec:
      - name: no-tmp
        path: /tmp/**
        verdict: deny
      - name: web-no-shell
        parent: /usr/sbin/nginx
        path: [sh, bash]
        verdict: kill
      - name: root-tools
        path: /usr/sbin/*
        uid: 0
        verdict: allow
        ttl_ms: 100000
      - name: no-sbin-for-users
        path: /usr/sbin/*
        verdict: deny
    network:
      - name: no-dns-outside
        direction: out
        protocol: udp
        remote: [0.0.0.0/0]
        ports: [53]
        verdict: deny
      - name: no-irc
        protocol: [tcp]
        ports: ["6660-6669"]
        verdict: deny
      - name: v6-ula
        remote: fd00::/8
        verdict: kill
    memory:
      - name: jit-ok
        path: /usr/bin/node
        action: allow
      - name: wx
        action: kill
    """

@Suite struct RulesEngineTests {
    let engine: RulesEngine

    init() throws {
        let rules = try RuleSet.parse(yaml, format: .yaml, file: "rules.yaml")
        engine = RulesEngine(rules: rules) { pid in pid == 100 ? "/usr/sbin/nginx" : pid == 7 ? "/usr/bin/node" : nil }
    }

    @Test func execPathGlobsDecideAndTheirVerdictsAreCached() throws {
        let e = engine
        let d = try #require(e.decision(for: exec("/tmp/a/b/payload")))
        #expect(d.verdict == .deny && d.reason == "no-tmp" && d.ttlMilliseconds == 60_000 && d.score == 1_000_000)
        let ok = try #require(e.decision(for: exec("/usr/bin/ls")))
        #expect(ok.verdict == .allow && ok.reason == "default" && ok.ttlMilliseconds == 5000)
    }

    @Test func parentToChildRulesLookAtTheParentAndAreNeverCached() throws {
        let e = engine
        let shellFromWeb = try #require(e.decision(for: exec("/bin/sh", ppid: 100)))
        #expect(shellFromWeb.verdict == .kill && shellFromWeb.reason == "web-no-shell" && shellFromWeb.ttlMilliseconds == 0)
        // The same path from another parent: allowed by default, and not cached either (the module caches by path).
        let shellFromLogin = try #require(e.decision(for: exec("/bin/sh", ppid: 55)))
        #expect(shellFromLogin.verdict == .allow && shellFromLogin.ttlMilliseconds == 0)
        // A path no contextual rule can match is cached as usual.
        #expect(e.decision(for: exec("/usr/bin/true", ppid: 100))?.ttlMilliseconds == 5000)
    }

    @Test func theParentsExecSeenByTheEngineWinsOverProc() throws {
        var e = RulesEngine(rules: engine.rules) { _ in nil }
        #expect(e.decision(for: exec("/bin/sh", ppid: 300))?.verdict == .allow)
        _ = e.observe(exec("/usr/sbin/nginx", tgid: 300).event)
        #expect(e.decision(for: exec("/bin/sh", ppid: 300))?.verdict == .kill)
        // The parent's group exits: forgotten.
        _ = e.observe(SensorEvent(pid: 300, tgid: 300, flags: 1, body: .exit(code: 0, minorFaults: 0, majorFaults: 0, comm: "nginx")))
        #expect(e.decision(for: exec("/bin/sh", ppid: 300))?.verdict == .allow)
    }

    @Test func uidRulesMatchOnlyTheirUsersAndFallThrough() throws {
        let e = engine
        let root = try #require(e.decision(for: exec("/usr/sbin/iptables", uid: 0)))
        #expect(root.verdict == .allow && root.reason == "root-tools" && root.ttlMilliseconds == 0)
        let user = try #require(e.decision(for: exec("/usr/sbin/iptables", uid: 1000)))
        #expect(user.verdict == .deny && user.reason == "no-sbin-for-users" && user.ttlMilliseconds == 0)
    }

    @Test func networkRulesMatchDirectionProtocolCIDRAndPorts() throws {
        let e = engine
        #expect(e.decision(for: udp(to: [8, 8, 8, 8], port: 53))?.reason == "no-dns-outside")
        #expect(e.decision(for: udp(to: [8, 8, 8, 8], port: 53, outbound: false))?.verdict == .allow)
        #expect(e.decision(for: udp(to: [8, 8, 8, 8], port: 54))?.verdict == .allow)
        #expect(e.decision(for: udp(to: [1, 2, 3, 4], port: 6667, proto: 6))?.reason == "no-irc")
        #expect(e.decision(for: udp(to: [1, 2, 3, 4], port: 6670, proto: 6))?.verdict == .allow)
        #expect(e.decision(for: udp(to: [0xfd] + [UInt8](repeating: 0, count: 14) + [9], port: 80, proto: 6))?.verdict == .kill)
        #expect(e.decision(for: udp(to: [0xfe] + [UInt8](repeating: 0, count: 15), port: 80, proto: 6))?.verdict == .allow)
    }

    @Test func writableExecutableMappingsAreActedOnByTheFirstMatchingRule() {
        var e = engine
        let wx = SensorEvent.Body.writableExecutable(syscall: 10, prot: 7, address: 0x1000, length: 4096, mapFlags: 0)
        let node = e.observe(SensorEvent(pid: 7, tgid: 7, body: wx))
        #expect(node == .none)
        guard case let .kill(tgid, reason) = e.observe(SensorEvent(pid: 9, tgid: 9, body: wx)) else {
            Issue.record("a W^X mapping outside node is killed")
            return
        }
        #expect(tgid == 9 && reason.hasPrefix("wx:"))
    }

    @Test func requestsOfOtherKindsAreLeftToTheDefault() {
        let e = engine
        let request = SensorRequest(id: 3, deadline: 0, defaultVerdict: .deny,
                                    event: SensorEvent(pid: 1, tgid: 1, body: .lost(sensor: 1, count: 2)))
        #expect(e.decision(for: request) == nil)
    }

    @Test func withoutASensorsSectionTheRulesSwitchOnWhatTheyNeed() throws {
        let rules = try RuleSet.parse(yaml, format: .yaml)
        #expect(rules.sensors[.exec]?.policy == .hold)
        #expect(rules.sensors[.network]?.policy == .allowAndAsk)
        #expect(rules.sensors[.memory]?.flags == .noFaultSummaries)
        #expect(rules.sensors[.syscall] == nil)
    }
}
