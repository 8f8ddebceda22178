// Fuzzes the decoders of archangel_sensors.ko's records (`SensorEvent.decode`,
// `SensorEvent.decodeAll` for batched payloads, `SensorRequest.decode` for
// AI_REQUEST payloads) and the two forms `archangel events` prints.
// The first byte picks the decoder; the rest is the payload.
// Invariants:
//  - a decoded record used exactly its kind's size (`recordSize`), no more
//    than the payload, and its header fields are the little-endian words at
//    the offsets of archangel_sensors_uapi.h (checked here independently);
//  - strings hold no NUL and no more characters than their field's bytes;
//    syscall records carry 6 arguments, a return value exactly on exit;
//    addresses are 4 bytes for IPv4 and 16 for IPv6;
//  - re-encoding the event (a reference encoder here) decodes to the same
//    event (parse(render(x)) == x) whenever its strings re-encode in place;
//  - decodeAll decodes records back to back and uses every byte, or fails
//    exactly where decoding one after another fails;
//  - a request's event is the event its bytes decode to, of the size it names;
//  - `json` is valid JSON (Foundation parses it) with the event's kind and
//    strings, and `text` is one line.
import ArchangelSensors
import Foundation
import FuzzSupport

func u16(_ b: UnsafeRawBufferPointer, _ o: Int) -> UInt16 { UInt16(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt16.self)) }
func u32(_ b: UnsafeRawBufferPointer, _ o: Int) -> UInt32 { UInt32(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
func u64(_ b: UnsafeRawBufferPointer, _ o: Int) -> UInt64 { UInt64(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt64.self)) }

/// The record of `event`, laid out as archangel_sensors_uapi.h says; nil when a string does not fit its field.
func encode(_ e: SensorEvent) -> [UInt8]? {
    let kind: UInt16
    switch e.body {
    case .exec: kind = 1
    case .exit: kind = 2
    case .syscall: kind = 3
    case .network: kind = 4
    case .memoryFaults: kind = 5
    case .writableExecutable: kind = 6
    case .lost: kind = 7
    }
    var out = [UInt8](repeating: 0, count: SensorEvent.recordSize(kind: kind)!)
    var fits = true
    out.withUnsafeMutableBytes { raw in
        func put<T: FixedWidthInteger>(_ v: T, _ o: Int) { raw.storeBytes(of: v.littleEndian, toByteOffset: o, as: T.self) }
        func string(_ s: String, _ o: Int, _ n: Int) {
            let bytes = Array(s.utf8)
            guard bytes.count <= n else { fits = false; return }
            for (i, b) in bytes.enumerated() { raw[o + i] = b }
        }
        put(SensorEvent.version, 0); put(kind, 2); put(e.cpu, 4); put(e.pid, 8); put(e.tgid, 12); put(e.uid, 16)
        put(e.flags, 20); put(e.timestamp, 24)
        switch e.body {
        case let .exec(ppid, verdict, comm, filename):
            put(ppid, 40); put(UInt32(filename.utf8.count), 44); put(verdict?.rawValue ?? 0xff, 48)
            string(comm, 56, 16); string(filename, 72, 255)
        case let .exit(code, minor, major, comm):
            put(code, 40); put(minor, 48); put(major, 56); string(comm, 64, 16)
        case let .syscall(number, arguments, ret):
            put(number, 40)
            for (i, a) in arguments.enumerated() { put(a, 48 + 8 * i) }
            put(UInt64(bitPattern: ret ?? 0), 96)
            if ret == nil { /* an enter record's ret word is not read */ }
        case let .network(p):
            put(p.family, 40); put(UInt8(p.outbound ? 1 : 0), 41); put(p.protocolNumber, 42)
            put(p.verdict?.rawValue ?? 0xff, 43); put(p.sourcePort, 44); put(p.destinationPort, 46); put(p.length, 48)
            for (i, b) in p.source.enumerated() { raw[56 + i] = b }
            for (i, b) in p.destination.enumerated() { raw[72 + i] = b }
        case let .memoryFaults(count, address):
            put(count, 40); put(address, 48)
        case let .writableExecutable(nr, prot, address, length, flags):
            put(nr, 40); put(prot, 44); put(address, 48); put(length, 56); put(flags, 64)
        case let .lost(sensor, count):
            put(sensor, 40); put(count, 48)
        }
    }
    return fits ? out : nil
}

func checkEvent(_ e: SensorEvent, used: Int, from b: UnsafeRawBufferPointer) {
    let kind = u16(b, 2)
    require(used == SensorEvent.recordSize(kind: kind) && used <= b.count, "used \(used) for kind \(kind) of \(b.count)")
    require(u16(b, 0) == SensorEvent.version, "decoded version \(u16(b, 0))")
    require(e.cpu == u32(b, 4) && e.pid == u32(b, 8) && e.tgid == u32(b, 12) && e.uid == u32(b, 16)
            && e.flags == u32(b, 20) && e.timestamp == u64(b, 24), "header fields are not the record's words")
    func string(_ s: String, max: Int) {
        require(!s.unicodeScalars.contains("\0") && s.unicodeScalars.count <= max, "string \(s.debugDescription) of a \(max)-byte field")
    }
    switch e.body {
    case let .exec(ppid, _, comm, filename):
        require(kind == 1 && ppid == u32(b, 40), "exec fields")
        string(comm, max: 16); string(filename, max: Int(u32(b, 44)))
    case let .exit(code, minor, major, comm):
        require(kind == 2 && code == u32(b, 40) && minor == u64(b, 48) && major == u64(b, 56), "exit fields")
        string(comm, max: 16)
    case let .syscall(number, arguments, ret):
        require(kind == 3 && number == u32(b, 40) && arguments.count == 6, "syscall fields")
        require((ret == nil) == (e.flags & 1 == 0), "syscall ret present on enter or missing on exit")
        require(arguments == (0..<6).map { u64(b, 48 + 8 * $0) }, "syscall arguments")
    case let .network(p):
        require(kind == 4 && (p.family == 4 || p.family == 6), "network family \(p.family)")
        let width = p.family == 4 ? 4 : 16
        require(p.source.count == width && p.destination.count == width, "address widths")
        require(p.sourcePort == u16(b, 44) && p.destinationPort == u16(b, 46) && p.length == u32(b, 48), "network fields")
        _ = SensorEvent.Packet.text(p.source)
    case let .memoryFaults(count, address):
        require(kind == 5 && count == u64(b, 40) && address == u64(b, 48), "fault fields")
    case let .writableExecutable(nr, prot, address, length, flags):
        require(kind == 6 && nr == u32(b, 40) && prot == u32(b, 44) && address == u64(b, 48)
                && length == u64(b, 56) && flags == u64(b, 64), "W^X fields")
    case let .lost(sensor, count):
        require(kind == 7 && sensor == u32(b, 40) && count == u64(b, 48), "lost fields")
    }
    // Round trip through the reference encoder.
    if let bytes = encode(e) {
        bytes.withUnsafeBytes { raw in
            do {
                let (again, n) = try SensorEvent.decode(raw)
                require(again == e && n == used, "decode(encode(e)) != e: \(again) vs \(e)")
            } catch {
                require(false, "the re-encoded event does not decode: \(error)")
            }
        }
    }
    // What `archangel events` prints.
    let text = e.text
    require(!text.contains("\n") && !text.contains("\r"), "text is not one line: \(text.debugDescription)")
    let json = e.json
    guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
        require(false, "json does not parse: \(json)")
        return
    }
    require(object["kind"] as? String == e.kind, "json kind")
    switch e.body {
    case let .exec(_, _, comm, filename):
        require(object["comm"] as? String == comm && object["filename"] as? String == filename, "json strings of exec")
    case let .exit(_, _, _, comm):
        require(object["comm"] as? String == comm, "json comm of exit")
    default: break
    }
}

func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var f = FuzzInput(data, size)
    let which = f.u8() % 3
    let payload = f.rest()
    switch which {
    case 0:
        guard let (event, used) = try? SensorEvent.decode(payload) else { return 0 }
        checkEvent(event, used: used, from: payload)
    case 1:
        // One after another, as the reference for decodeAll.
        var expected: [SensorEvent] = []
        var offset = 0
        var failed = false
        while offset < payload.count {
            let rest = UnsafeRawBufferPointer(rebasing: payload[offset...])
            guard let (event, used) = try? SensorEvent.decode(rest) else { failed = true; break }
            checkEvent(event, used: used, from: rest)
            expected.append(event)
            offset += used
        }
        do {
            let all = try SensorEvent.decodeAll(payload)
            require(!failed && all == expected && offset == payload.count, "decodeAll differs from decoding in turn")
        } catch {
            require(failed, "decodeAll failed where decoding in turn did not: \(error)")
        }
    default:
        do {
            let request = try SensorRequest.decode(payload)
            let size = Int(u32(payload, 20))
            let event = UnsafeRawBufferPointer(rebasing: payload[SensorRequest.headerSize..<(SensorRequest.headerSize + size)])
            let (alone, used) = try SensorEvent.decode(event)
            require(alone == request.event && used == size, "the request's event is not its bytes'")
            require(request.id == u64(payload, 0) && request.deadline == u64(payload, 8)
                    && request.defaultVerdict.rawValue == payload[16], "request header fields")
            checkEvent(request.event, used: used, from: event)
            let response = EngineDecision(verdict: .deny, ttlMilliseconds: 5, score: UInt32.max).response(to: request.id)
            require(response.bytes.count == 24 && response.score <= 1_000_000, "response encoding")
        } catch {
            // Typed: only a SensorDecodingError can come out (checked by the compiler).
        }
    }
    return 0
}

func seeds() -> [(name: String, bytes: [UInt8])] {
    let events: [(String, SensorEvent)] = [
        ("exec", SensorEvent(cpu: 1, pid: 100, tgid: 100, uid: 1000, timestamp: 123456789,
                             body: .exec(ppid: 1, verdict: .allow, comm: "bash", filename: "/usr/bin/ls"))),
        ("exec-none", SensorEvent(pid: 7, tgid: 7, body: .exec(ppid: 2, verdict: nil, comm: "sh\u{1}\"x", filename: "/tmp/a b"))),
        ("exit", SensorEvent(pid: 5, tgid: 4, flags: 1, body: .exit(code: 256, minorFaults: 10, majorFaults: 1, comm: "cat"))),
        ("syscall-enter", SensorEvent(pid: 9, tgid: 9, body: .syscall(number: 59, arguments: [1, 2, 3, 4, 5, 6], ret: nil))),
        ("syscall-exit", SensorEvent(pid: 9, tgid: 9, flags: 1, body: .syscall(number: 0, arguments: [0, 0, 0, 0, 0, 0], ret: -14))),
        ("net4", SensorEvent(pid: 3, tgid: 3, body: .network(.init(family: 4, outbound: true, protocolNumber: 6, verdict: .deny,
                             sourcePort: 40000, destinationPort: 443, length: 60, source: [10, 0, 0, 1], destination: [1, 1, 1, 1])))),
        ("net6", SensorEvent(pid: 3, tgid: 3, body: .network(.init(family: 6, outbound: false, protocolNumber: 17, sourcePort: 53,
                             destinationPort: 5353, length: 100, source: Array(repeating: 0xfe, count: 16), destination: Array(0..<16))))),
        ("faults", SensorEvent(pid: 8, tgid: 8, body: .memoryFaults(count: 1000, lastAddress: 0x7fff_0000))),
        ("wx", SensorEvent(pid: 8, tgid: 8, body: .writableExecutable(syscall: 10, prot: 7, address: 0x1000, length: 4096, mapFlags: 0x22))),
        ("lost", SensorEvent(cpu: 3, pid: 0, tgid: 0, body: .lost(sensor: 2, count: 99))),
    ]
    for (name, event) in events {
        // The reference encoder agrees with the decoder on every seed.
        let decoded = encode(event)!.withUnsafeBytes { try? SensorEvent.decode($0) }
        require(decoded?.0 == event, "seed \(name) does not decode to its event: \(String(describing: decoded))")
    }
    var out: [(String, [UInt8])] = events.map { ("decode-\($0.0)", [0] + encode($0.1)!) }
    out.append(("batch", [1] + events.flatMap { encode($0.1)! }))
    out.append(("batch-execs", [1] + encode(events[0].1)! + encode(events[1].1)!))
    for (name, event) in [events[0], events[5]] {
        let record = encode(event)!
        var header = [UInt8](repeating: 0, count: SensorRequest.headerSize)
        header.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt64(42).littleEndian, toByteOffset: 0, as: UInt64.self)
            raw.storeBytes(of: UInt64(1_000_000).littleEndian, toByteOffset: 8, as: UInt64.self)
            raw.storeBytes(of: UInt8(1), toByteOffset: 16, as: UInt8.self)
            raw.storeBytes(of: UInt32(record.count).littleEndian, toByteOffset: 20, as: UInt32.self)
        }
        out.append(("request-\(name)", [2] + header + record))
    }
    return out
}

runFuzzer(seeds: seeds, fuzz)
