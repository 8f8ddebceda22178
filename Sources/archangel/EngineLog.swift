import ArchangelSensors
import Glibc

/// The engine's decision log: one line per decision, alert, kill,
/// unanswered request or refused payload, as text or as a JSON object
/// (docs/rules.md, "Decision log"); with `--events`, every event too.
struct EngineLog {
    let descriptor: Int32
    let json: Bool

    /// The line for `record`.
    func line(_ record: SensorSession.Record) -> String {
        switch record {
        case let .decided(request, decision, latency):
            return request.line(json: json, what: "decision", verdict: "\(decision.verdict)", fields: [
                ("rule", jsonString(decision.reason)), ("ttl_ms", "\(decision.ttlMilliseconds)"),
                ("score", "\(decision.score)"), ("latency_us", String(format1: Double(latency) / 1000)),
            ])
        case let .unanswered(request):
            return request.line(json: json, what: "unanswered", verdict: "\(request.defaultVerdict)",
                                fields: [("rule", jsonString("default at deadline"))])
        case let .answerUnsent(request, decision, error):
            return request.line(json: json, what: "answer_unsent", verdict: "\(request.defaultVerdict)", fields: [
                ("rule", jsonString(decision.reason)), ("error", jsonString("\(error)")),
            ])
        case let .event(event):
            return json ? event.json : "event " + event.text
        case let .acted(event, action):
            let (what, reason): (String, String) = switch action {
            case let .alert(reason): ("alert", reason)
            case let .kill(_, reason): ("kill", reason)
            case .none: ("none", "")
            }
            if json {
                return "{\"log\": \"\(what)\", \"timestamp\": \(event.timestamp), \"pid\": \(event.pid), "
                    + "\"tgid\": \(event.tgid), \"uid\": \(event.uid), \"reason\": \(jsonString(reason)), \"event\": \(event.json)}"
            }
            return "\(what) tgid=\(event.tgid) uid=\(event.uid) \(jsonString(reason))"
        case let .undecodable(type, error):
            return json ? "{\"log\": \"undecodable\", \"type\": \(jsonString("\(type)")), \"error\": \(jsonString("\(error)"))}"
                        : "undecodable \(type) payload: \(error)"
        }
    }

    func write(_ record: SensorSession.Record) {
        _ = writeAll(descriptor, line(record) + "\n")
    }
}

extension SensorRequest {
    /// What the request is about, for a log line: the exec'd path, or the flow.
    var subject: String {
        switch event.body {
        case let .exec(_, _, _, filename): return filename
        case let .network(p):
            let names: [UInt8: String] = [6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"]
            let proto = names[p.protocolNumber] ?? "proto \(p.protocolNumber)"
            return "\(proto) \(SensorEvent.Packet.text(p.source)):\(p.sourcePort) -> "
                + "\(SensorEvent.Packet.text(p.destination)):\(p.destinationPort) \(p.outbound ? "out" : "in")"
        default: return event.kind
        }
    }

    func line(json: Bool, what: String, verdict: String, fields: [(String, String)]) -> String {
        var parent: [(String, String)] = []
        if case let .exec(ppid, _, _, _) = event.body { parent = [("ppid", "\(ppid)")] }
        let all: [(String, String)] = [("log", jsonString(what)), ("verdict", jsonString(verdict)),
                                       ("request", "\(id)"), ("kind", jsonString(event.kind)),
                                       ("subject", jsonString(subject)), ("pid", "\(event.pid)"),
                                       ("tgid", "\(event.tgid)"), ("uid", "\(event.uid)")] + parent + fields
        if json { return "{" + all.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}" }
        let rest = (parent + fields).map { "\($0.0)=\($0.1)" }.joined(separator: " ")
        // The subject is quoted and escaped: an exec'd path is chosen by whoever exec'd it, and a
        // newline in it must not start a forged line of the log.
        return "\(what) \(verdict) \(event.kind) \(jsonString(subject)) request=\(id) pid=\(event.pid) uid=\(event.uid) \(rest)"
    }
}

extension String {
    /// `value` with one decimal.
    init(format1 value: Double) {
        let tenths = Int((value * 10).rounded())
        self = "\(tenths / 10).\(abs(tenths % 10))"
    }
}
