// Decoding archangel_sensors.ko's records as the kernel writes them (byte
// offsets from the static asserts of archangel_sensors_uapi.h), and refusing
// what does not check out.
@testable import ArchangelSensors
import CArchangel
import Foundation
import Testing

/// A record of `size` bytes with the common header filled in.
private func record(kind: UInt16, size: Int, flags: UInt32 = 0) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: size)
    put(&bytes, 0, UInt16(1)); put(&bytes, 2, kind); put(&bytes, 4, UInt32(1)); put(&bytes, 8, UInt32(4242))
    put(&bytes, 12, UInt32(4240)); put(&bytes, 16, UInt32(1000)); put(&bytes, 20, flags); put(&bytes, 24, UInt64(123_456_789))
    return bytes
}

private func put<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ offset: Int, _ value: T) {
    withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { bytes[offset + i] = b } }
}

private func decode(_ bytes: [UInt8]) throws -> SensorEvent {
    try bytes.withUnsafeBytes { raw in try SensorEvent.decode(raw).0 }
}

@Suite struct SensorEventTests {
    @Test func theRecordSizesAreTheHeaders() {
        #expect(SensorEvent.recordSize(kind: UInt16(ARCHANGEL_SENSOR_EXEC)) == MemoryLayout<archangel_sensor_exec>.size)
        #expect(SensorEvent.recordSize(kind: UInt16(ARCHANGEL_SENSOR_NET)) == MemoryLayout<archangel_sensor_net>.size)
        #expect(SensorEvent.recordSize(kind: UInt16(ARCHANGEL_SENSOR_LOST)) == MemoryLayout<archangel_sensor_lost>.size)
        #expect(SensorEvent.recordSize(kind: UInt16(ARCHANGEL_SENSOR_SYSCALL)) == MemoryLayout<archangel_sensor_syscall>.size)
        #expect(MemoryLayout<archangel_sensor_event>.size == SensorEvent.headerSize)
        #expect(MemoryLayout<archangel_sensor_request>.size == SensorRequest.headerSize)
        #expect(MemoryLayout<archangel_sensor_response>.size == SensorResponse(id: 1, verdict: .allow).bytes.count)
    }

    @Test func anExecDecodes() throws {
        var bytes = record(kind: 1, size: 328)
        put(&bytes, 40, UInt32(1)); put(&bytes, 44, UInt32(9)); bytes[48] = 0xff
        for (i, c) in "true".utf8.enumerated() { bytes[56 + i] = c }
        for (i, c) in "/bin/true".utf8.enumerated() { bytes[72 + i] = c }
        let event = try decode(bytes)
        #expect(event.pid == 4242 && event.tgid == 4240 && event.uid == 1000 && event.timestamp == 123_456_789)
        #expect(event.body == .exec(ppid: 1, verdict: nil, comm: "true", filename: "/bin/true"))
    }

    @Test func aPacketDecodesWithItsAddresses() throws {
        var bytes = record(kind: 4, size: 88, flags: 1)
        bytes[40] = 4; bytes[41] = 1; bytes[42] = 17; bytes[43] = 1
        put(&bytes, 44, UInt16(40000)); put(&bytes, 46, UInt16(53)); put(&bytes, 48, UInt32(76))
        bytes[56...59] = [127, 0, 0, 1]; bytes[72...75] = [10, 1, 2, 3]
        guard case .network(let p) = try decode(bytes).body else { Issue.record("not a packet"); return }
        #expect(p.outbound && p.protocolNumber == 17 && p.verdict == .deny && p.destinationPort == 53 && p.length == 76)
        #expect(SensorEvent.Packet.text(p.source) == "127.0.0.1" && SensorEvent.Packet.text(p.destination) == "10.1.2.3")
    }

    @Test func batchedPayloadsDecodeRecordByRecord() throws {
        var lost = record(kind: 7, size: 56)
        put(&lost, 40, UInt32(3)); put(&lost, 48, UInt64(1970))
        var sys = record(kind: 3, size: 104, flags: 1)
        put(&sys, 40, UInt32(110)); put(&sys, 96, Int64(-1))
        let events = try (lost + sys).withUnsafeBytes { try SensorEvent.decodeAll($0) }
        #expect(events.map(\.body) == [.lost(sensor: 3, count: 1970),
                                       .syscall(number: 110, arguments: [0, 0, 0, 0, 0, 0], ret: -1)])
    }

    @Test func hostileRecordsAreRefusedWithTheReason() {
        let exec = record(kind: 1, size: 328)
        #expect(throws: SensorDecodingError.truncated(needed: 328, have: 100)) { try decode(Array(exec[0..<100])) }
        var version = exec; version[0] = 9
        #expect(throws: SensorDecodingError.unsupportedVersion(9)) { try decode(version) }
        var kind = exec; kind[2] = 99
        #expect(throws: SensorDecodingError.unknownKind(99)) { try decode(kind) }
        var reserved = exec; reserved[33] = 1
        #expect(throws: SensorDecodingError.nonZeroReserved(offset: 32)) { try decode(reserved) }
        var pad = exec; pad[50] = 1
        #expect(throws: SensorDecodingError.nonZeroReserved(offset: 50)) { try decode(pad) }
        var length = exec; put(&length, 44, UInt32(300))
        #expect(throws: SensorDecodingError.self) { try decode(length) }
        var family = record(kind: 4, size: 88); family[40] = 5
        #expect(throws: SensorDecodingError.self) { try decode(family) }
        // A filename without a NUL inside its length stops at the length, never past the field.
        var long = exec; put(&long, 44, UInt32(255))
        for i in 72..<328 { long[i] = 0x41 }
        if case .exec(_, _, _, let name) = try? decode(long).body { #expect(name.utf8.count == 255) }
    }

    @Test func requestsAndResponsesRoundTrip() throws {
        var request = [UInt8](repeating: 0, count: 24)
        put(&request, 0, UInt64(77)); put(&request, 8, UInt64(5_000_000_000)); request[16] = 1; put(&request, 20, UInt32(56))
        var lost = record(kind: 7, size: 56); put(&lost, 48, UInt64(2))
        let decoded = try (request + lost).withUnsafeBytes { try SensorRequest.decode($0) }
        #expect(decoded.id == 77 && decoded.defaultVerdict == .deny && decoded.event.body == .lost(sensor: 0, count: 2))
        var wrongSize = request; put(&wrongSize, 20, UInt32(60))
        #expect(throws: SensorDecodingError.self) { try (wrongSize + lost + [0, 0, 0, 0]).withUnsafeBytes { try SensorRequest.decode($0) } }
        let response = SensorResponse(id: 77, verdict: .kill, ttlMilliseconds: 60_000, score: 2_000_000).bytes
        #expect(response.count == 24 && response[8] == 2 && response[0] == 77)
        #expect(response[16..<20] == [0x40, 0x42, 0x0f, 0x00], "the score is capped at 1,000,000")
    }

    @Test func theJSONFormParsesAndCarriesTheFields() throws {
        var bytes = record(kind: 1, size: 328)
        put(&bytes, 40, UInt32(1)); put(&bytes, 44, UInt32(13)); bytes[48] = 0xff
        for (i, c) in "a\"b".utf8.enumerated() { bytes[56 + i] = c }
        for (i, c) in "/tmp/x\ty\\\"z".utf8.enumerated() { bytes[72 + i] = c }
        let event = try decode(bytes)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(event.json.utf8)) as? [String: Any])
        #expect(object["kind"] as? String == "exec" && object["pid"] as? Int == 4242 && object["tgid"] as? Int == 4240)
        #expect(object["comm"] as? String == "a\"b" && object["filename"] as? String == "/tmp/x\ty\\\"z")
        #expect(object["verdict"] is NSNull)
        #expect(event.text.hasPrefix("exec pid=4240/4242 uid=1000"))
    }

    @Test func aVerdictEngineIsAProtocolUsersImplement() throws {
        struct DenyShells: VerdictEngine {
            var seen = 0
            mutating func observe(_ event: SensorEvent) -> EngineAction {
                seen += 1
                return .none
            }
            mutating func decide(_ request: SensorRequest) -> EngineDecision? {
                guard case .exec(_, _, _, let path) = request.event.body else { return nil }
                return EngineDecision(verdict: path.hasSuffix("/sh") ? .deny : .allow, ttlMilliseconds: 1000, reason: "shell")
            }
        }
        var engine = DenyShells()
        let event = SensorEvent(cpu: 0, pid: 1, tgid: 1, uid: 0, flags: 0, timestamp: 0,
                                body: .exec(ppid: 0, verdict: nil, comm: "sh", filename: "/bin/sh"))
        let action = engine.observe(event)
        #expect(action == .none)
        let answer = engine.decide(SensorRequest(id: 5, deadline: 0, defaultVerdict: .allow, event: event))
        let decision = try #require(answer)
        #expect(decision.verdict == .deny)
        #expect(decision.response(to: 5) == SensorResponse(id: 5, verdict: .deny, ttlMilliseconds: 1000))
        #expect(engine.seen == 1)
    }
}
