/// One record of archangel_sensors.ko (`archangel_sensors_uapi.h`), decoded
/// from a message payload that the kernel wrote: every field is read once,
/// checked (version, kind, size, reserved and padding fields), and copied,
/// so nothing here points into shared memory (docs/sensors.md).
public struct SensorEvent: Sendable, Equatable {
    /// The common header (`struct archangel_sensor_event`).
    public var cpu: UInt32, pid: UInt32, tgid: UInt32, uid: UInt32, flags: UInt32
    /// CLOCK_MONOTONIC nanoseconds when observed.
    public var timestamp: UInt64
    /// What was observed.
    public var body: Body

    /// The kind-specific part.
    public enum Body: Sendable, Equatable {
        /// `sched_process_exec`.
        case exec(ppid: UInt32, verdict: Verdict?, comm: String, filename: String)
        /// `sched_process_exit` (every thread; `flags` bit 0: the last one).
        case exit(code: UInt32, minorFaults: UInt64, majorFaults: UInt64, comm: String)
        /// `raw_syscalls` enter (`ret` nil) or exit.
        case syscall(number: UInt32, arguments: [UInt64], ret: Int64?)
        /// A packet at LOCAL_IN or LOCAL_OUT.
        case network(Packet)
        /// User page faults of a process since its last record.
        case memoryFaults(count: UInt64, lastAddress: UInt64)
        /// mmap/mprotect asking for write and execute at once.
        case writableExecutable(syscall: UInt32, prot: UInt32, address: UInt64, length: UInt64, mapFlags: UInt64)
        /// Events of `sensor` lost on a full ring on CPU `cpu`.
        case lost(sensor: UInt32, count: UInt64)
    }

    /// A packet's 5-tuple and length.
    public struct Packet: Sendable, Equatable {
        /// 4 or 6.
        public var family: UInt8
        /// True for LOCAL_OUT.
        public var outbound: Bool
        /// IPPROTO_* (6 TCP, 17 UDP).
        public var protocolNumber: UInt8
        /// The verdict applied to the packet, nil when none.
        public var verdict: Verdict?
        public var sourcePort: UInt16, destinationPort: UInt16
        /// IP packet bytes.
        public var length: UInt32
        /// Network byte order: 4 bytes for IPv4, 16 for IPv6.
        public var source: [UInt8], destination: [UInt8]

        /// Creates a packet's description.
        public init(family: UInt8, outbound: Bool, protocolNumber: UInt8, verdict: Verdict? = nil, sourcePort: UInt16,
                    destinationPort: UInt16, length: UInt32 = 0, source: [UInt8], destination: [UInt8]) {
            self.family = family
            self.outbound = outbound
            self.protocolNumber = protocolNumber
            self.verdict = verdict
            self.sourcePort = sourcePort
            self.destinationPort = destinationPort
            self.length = length
            self.source = source
            self.destination = destination
        }

        /// `a.b.c.d` or the full IPv6 form (eight groups).
        public static func text(_ address: [UInt8]) -> String {
            if address.count == 4 { return address.map { "\($0)" }.joined(separator: ".") }
            return stride(from: 0, to: address.count, by: 2).map {
                String(UInt16(address[$0]) << 8 | UInt16(address[$0 + 1]), radix: 16)
            }.joined(separator: ":")
        }
    }

    /// Creates an event (for engines' tests and replays; the module's come from `decode`).
    public init(cpu: UInt32 = 0, pid: UInt32, tgid: UInt32, uid: UInt32 = 0, flags: UInt32 = 0, timestamp: UInt64 = 0,
                body: Body) {
        self.cpu = cpu
        self.pid = pid
        self.tgid = tgid
        self.uid = uid
        self.flags = flags
        self.timestamp = timestamp
        self.body = body
    }

    /// `ARCHANGEL_SENSOR_VERSION`.
    public static let version: UInt16 = 1
    /// Bytes of the common header.
    public static let headerSize = 40

    /// The record's size for `kind`, nil for an unknown kind (`ARCHANGEL_SENSOR_RECORD_SIZE`).
    public static func recordSize(kind: UInt16) -> Int? {
        switch kind {
        case 1: 328
        case 2: 80
        case 3: 104
        case 4: 88
        case 5: 56
        case 6: 72
        case 7: 56
        default: nil
        }
    }

    /// Decodes the record at the start of `bytes`.
    ///
    /// - Returns: the event and the bytes it used (records of a batched payload follow each other).
    /// - Throws: `SensorDecodingError` naming what does not check out.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(SensorDecodingError) -> (SensorEvent, Int) {
        let r = Reader(bytes)
        guard bytes.count >= headerSize else { throw .truncated(needed: headerSize, have: bytes.count) }
        let version = r.u16(0), kind = r.u16(2)
        guard version == Self.version else { throw .unsupportedVersion(version) }
        guard let size = recordSize(kind: kind) else { throw .unknownKind(kind) }
        guard bytes.count >= size else { throw .truncated(needed: size, have: bytes.count) }
        guard r.u64(32) == 0 else { throw .nonZeroReserved(offset: 32) }
        let flags = r.u32(20)
        let body: Body
        switch kind {
        case 1:
            try r.zero(49, 7)
            let filenameLength = Int(r.u32(44))
            guard filenameLength < 256 else { throw .badField("exec.filename_len \(filenameLength) >= 256") }
            body = .exec(ppid: r.u32(40), verdict: Verdict(byte: r.u8(48)), comm: r.string(56, 16),
                         filename: r.string(72, filenameLength))
        case 2:
            try r.zero(44, 4)
            body = .exit(code: r.u32(40), minorFaults: r.u64(48), majorFaults: r.u64(56), comm: r.string(64, 16))
        case 3:
            try r.zero(44, 4)
            let exit = flags & 1 != 0
            body = .syscall(number: r.u32(40), arguments: (0..<6).map { r.u64(48 + 8 * $0) },
                            ret: exit ? Int64(bitPattern: r.u64(96)) : nil)
        case 4:
            try r.zero(52, 4)
            let family = r.u8(40)
            guard family == 4 || family == 6 else { throw .badField("net.family \(family)") }
            let direction = r.u8(41)
            guard direction <= 1 else { throw .badField("net.direction \(direction)") }
            let width = family == 4 ? 4 : 16
            body = .network(Packet(family: family, outbound: direction == 1, protocolNumber: r.u8(42),
                                   verdict: Verdict(byte: r.u8(43)), sourcePort: r.u16(44), destinationPort: r.u16(46),
                                   length: r.u32(48), source: r.bytes(56, width), destination: r.bytes(72, width)))
        case 5:
            body = .memoryFaults(count: r.u64(40), lastAddress: r.u64(48))
        case 6:
            body = .writableExecutable(syscall: r.u32(40), prot: r.u32(44), address: r.u64(48), length: r.u64(56),
                                       mapFlags: r.u64(64))
        default:  // 7
            try r.zero(44, 4)
            body = .lost(sensor: r.u32(40), count: r.u64(48))
        }
        let event = SensorEvent(cpu: r.u32(4), pid: r.u32(8), tgid: r.u32(12), uid: r.u32(16), flags: flags,
                                timestamp: r.u64(24), body: body)
        return (event, size)
    }

    /// Every record of a payload (one, or several when the module batches).
    public static func decodeAll(_ bytes: UnsafeRawBufferPointer) throws(SensorDecodingError) -> [SensorEvent] {
        var out: [SensorEvent] = []
        var offset = 0
        while offset < bytes.count {
            let (event, used) = try decode(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
            out.append(event)
            offset += used
        }
        return out
    }
}

/// A verdict of the loop (`ARCHANGEL_VERDICT_*`).
public enum Verdict: UInt8, Sendable, CaseIterable {
    /// Let it run or pass.
    case allow = 0
    /// Exec: SIGKILL before the new image runs; packet: NF_DROP.
    case deny = 1
    /// SIGKILL the task.
    case kill = 2

    /// nil for 0xff (none) or an unknown value.
    init?(byte: UInt8) { self.init(rawValue: byte) }
}

/// Why a sensor record was refused.
public enum SensorDecodingError: Error, Equatable, CustomStringConvertible {
    case truncated(needed: Int, have: Int)
    case unsupportedVersion(UInt16)
    case unknownKind(UInt16)
    case nonZeroReserved(offset: Int)
    case badField(String)

    public var description: String {
        switch self {
        case let .truncated(needed, have): "a sensor record needs \(needed) bytes, the payload has \(have)"
        case let .unsupportedVersion(v): "sensor record version \(v); this build reads version \(SensorEvent.version): use the module of the same release"
        case let .unknownKind(k): "unknown sensor record kind \(k)"
        case let .nonZeroReserved(offset): "a reserved or padding field at byte \(offset) is not zero"
        case let .badField(what): "a sensor record field is out of range: \(what)"
        }
    }
}

/// Little-endian reads at fixed offsets of a buffer already checked for size.
struct Reader {
    let bytes: UnsafeRawBufferPointer
    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }
    func u8(_ o: Int) -> UInt8 { bytes[o] }
    func u16(_ o: Int) -> UInt16 { UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: o, as: UInt16.self)) }
    func u32(_ o: Int) -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
    func u64(_ o: Int) -> UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
    func bytes(_ o: Int, _ n: Int) -> [UInt8] { Array(bytes[o..<(o + n)]) }
    /// Up to `n` bytes, cut at the first NUL, as UTF-8 (invalid bytes replaced).
    func string(_ o: Int, _ n: Int) -> String {
        let slice = bytes[o..<(o + n)]
        return String(decoding: slice.prefix { $0 != 0 }, as: UTF8.self)
    }
    func zero(_ o: Int, _ n: Int) throws(SensorDecodingError) {
        for i in o..<(o + n) where bytes[i] != 0 { throw .nonZeroReserved(offset: i) }
    }
}
