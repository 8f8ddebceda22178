/// The forms `archangel events` prints: one line of text, or one JSON object.
extension SensorEvent {
    /// The kind's name: `exec`, `exit`, `syscall`, `net`, `mem_faults`, `mem_wx`, `lost`.
    public var kind: String {
        switch body {
        case .exec: "exec"
        case .exit: "exit"
        case .syscall: "syscall"
        case .network: "net"
        case .memoryFaults: "mem_faults"
        case .writableExecutable: "mem_wx"
        case .lost: "lost"
        }
    }

    /// The kind-specific fields as (name, JSON value) pairs.
    private var fields: [(String, String)] {
        func str(_ s: String) -> String { jsonString(s) }
        func verdict(_ v: Verdict?) -> String { v.map { str("\($0)") } ?? "null" }
        switch body {
        case let .exec(ppid, v, comm, filename):
            return [("ppid", "\(ppid)"), ("comm", str(comm)), ("filename", str(filename)), ("verdict", verdict(v))]
        case let .exit(code, minor, major, comm):
            return [("exit_code", "\(code)"), ("minor_faults", "\(minor)"), ("major_faults", "\(major)"), ("comm", str(comm))]
        case let .syscall(number, arguments, ret):
            return [("nr", "\(number)"), ("args", "[" + arguments.map { "\($0)" }.joined(separator: ",") + "]"),
                    ("ret", ret.map { "\($0)" } ?? "null")]
        case let .network(p):
            return [("family", "\(p.family)"), ("direction", str(p.outbound ? "out" : "in")),
                    ("protocol", "\(p.protocolNumber)"), ("src", str(Packet.text(p.source))), ("sport", "\(p.sourcePort)"),
                    ("dst", str(Packet.text(p.destination))), ("dport", "\(p.destinationPort)"),
                    ("length", "\(p.length)"), ("verdict", verdict(p.verdict))]
        case let .memoryFaults(count, address):
            return [("faults", "\(count)"), ("last_address", "\(address)")]
        case let .writableExecutable(nr, prot, address, length, mapFlags):
            return [("nr", "\(nr)"), ("prot", "\(prot)"), ("address", "\(address)"), ("length", "\(length)"),
                    ("map_flags", "\(mapFlags)")]
        case let .lost(sensor, count):
            return [("sensor", "\(sensor)"), ("count", "\(count)")]
        }
    }

    /// One JSON object: `kind`, the header (`timestamp`, `cpu`, `pid`, `tgid`, `uid`, `flags`), then the kind's fields.
    public var json: String {
        let all = [("kind", jsonString(kind)), ("timestamp", "\(timestamp)"), ("cpu", "\(cpu)"), ("pid", "\(pid)"),
                   ("tgid", "\(tgid)"), ("uid", "\(uid)"), ("flags", "\(flags)")] + fields
        return "{" + all.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }

    /// One line: `kind pid=… uid=… field=…`.
    public var text: String {
        "\(kind) pid=\(tgid)/\(pid) uid=\(uid) cpu=\(cpu) " + fields.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
    }
}

/// `s` as a JSON string literal (quotes, backslashes and control characters escaped).
public func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}
