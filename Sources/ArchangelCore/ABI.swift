#if canImport(Glibc)
import Glibc
#endif
import CArchangel

/// The kind of a message, as the seed's `enum archangel_msg_type` numbers it.
public enum MessageType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// An AI inference request (`ARCHANGEL_MSG_AI_REQUEST`).
    case aiRequest = 1
    /// An AI inference response (`ARCHANGEL_MSG_AI_RESPONSE`).
    case aiResponse = 2
    /// A system call event (`ARCHANGEL_MSG_SYSCALL_EVENT`).
    case syscallEvent = 3
    /// A network packet event (`ARCHANGEL_MSG_NETWORK_EVENT`).
    case networkEvent = 4
    /// A memory access event (`ARCHANGEL_MSG_MEMORY_EVENT`).
    case memoryEvent = 5
    /// A control message (`ARCHANGEL_MSG_CONTROL`).
    case control = 6
    /// A statistics update (`ARCHANGEL_MSG_STATS`).
    case stats = 7

    /// The name used in statistics and command output, e.g. `ai_request`.
    public var description: String {
        switch self {
        case .aiRequest: "ai_request"
        case .aiResponse: "ai_response"
        case .syscallEvent: "syscall_event"
        case .networkEvent: "network_event"
        case .memoryEvent: "memory_event"
        case .control: "control"
        case .stats: "stats"
        }
    }
}

/// How urgent a message is, as the seed's `enum archangel_msg_priority` numbers it.
///
/// `high` and `critical` travel on the express lane, which receivers drain first.
public enum MessagePriority: UInt8, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    /// `ARCHANGEL_PRIORITY_LOW`.
    case low = 0
    /// `ARCHANGEL_PRIORITY_NORMAL`.
    case normal = 1
    /// `ARCHANGEL_PRIORITY_HIGH`.
    case high = 2
    /// `ARCHANGEL_PRIORITY_CRITICAL`.
    case critical = 3

    /// The lane this priority travels on.
    @inlinable public var lane: Lane { self >= .high ? .express : .normal }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The lower-case name, e.g. `critical`.
    public var description: String {
        switch self {
        case .low: "low"
        case .normal: "normal"
        case .high: "high"
        case .critical: "critical"
        }
    }
}

/// One of the two rings of a direction.
public enum Lane: Int, Sendable, CaseIterable, CustomStringConvertible {
    /// `low` and `normal` messages.
    case normal = 0
    /// `high` and `critical` messages; drained before the normal lane.
    case express = 1

    /// `normal` or `express`.
    public var description: String { self == .normal ? "normal" : "express" }
}

/// The flags of a record header (`ARCHANGEL_MSG_F_*`).
public struct MessageFlags: OptionSet, Sendable, Hashable {
    /// The flag bits as they appear in the header.
    public let rawValue: UInt16
    /// Wraps raw flag bits.
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// The payload is a list of descriptors into the sender's buffer pool.
    public static let dma = MessageFlags(rawValue: UInt16(ARCHANGEL_MSG_F_DMA))
    /// A padding record that fills the ring up to its end; never delivered.
    public static let pad = MessageFlags(rawValue: UInt16(ARCHANGEL_MSG_F_PAD))
    /// A 64-bit request sequence number precedes the payload.
    public static let correlated = MessageFlags(rawValue: UInt16(ARCHANGEL_MSG_F_CORRELATED))
    /// The payload was meant for the pool but was copied inline because the pool was empty.
    public static let copied = MessageFlags(rawValue: UInt16(ARCHANGEL_MSG_F_COPIED))
    /// Every flag this ABI version defines.
    public static let known = MessageFlags(rawValue: UInt16(archangel_msg_flags_known))
}

/// The numbers of the shared ABI (`archangel_uapi.h`), in Swift.
public enum ABI {
    /// `ARCHANGEL_ABI_VERSION`: major in the high 16 bits, minor in the low 16.
    public static let version = archangel_abi_version
    /// The feature bits this build implements (`ARCHANGEL_FEATURES_ALL`).
    public static let features = archangel_features_all
    /// `"ARCH"`, the first four bytes of every record.
    public static let messageMagic = UInt32(ARCHANGEL_MSG_MAGIC)
    /// `"ACHN"`, the first four bytes of channel memory.
    public static let channelMagic = UInt32(ARCHANGEL_CHANNEL_MAGIC)
    /// Size of the packed record header.
    public static let headerSize = Int(ARCHANGEL_MSG_HEADER_SIZE)
    /// Records start at multiples of this.
    public static let recordAlignment = Int(ARCHANGEL_RECORD_ALIGN)
    /// The smallest record, a header rounded up to the alignment.
    public static let minimumRecord = Int(ARCHANGEL_RECORD_MIN)
    /// Size of the correlation word of a correlated record.
    public static let correlationSize = Int(ARCHANGEL_CORRELATION_SIZE)
    /// Size of one scatter-gather descriptor.
    public static let descriptorSize = MemoryLayout<archangel_pool_desc>.size
    /// A cache line, the unit of index placement.
    public static let cacheLine = Int(ARCHANGEL_CACHELINE)
    /// The page size layouts are aligned to.
    public static let pageSize = Int(ARCHANGEL_PAGE_SIZE)

    /// Renders a version number as `major.minor`.
    public static func describe(version: UInt32) -> String { "\(version >> 16).\(version & 0xffff)" }

    /// `errno` as text, e.g. `ECONNREFUSED (Connection refused)`.
    public static func describe(errno code: Int32) -> String {
        let names: [Int32: String] = [
            EPERM: "EPERM", ENOENT: "ENOENT", EACCES: "EACCES", EEXIST: "EEXIST", EINVAL: "EINVAL",
            EBUSY: "EBUSY", ENOSPC: "ENOSPC", EPROTO: "EPROTO", ECONNREFUSED: "ECONNREFUSED", EPIPE: "EPIPE",
            EMSGSIZE: "EMSGSIZE", EAGAIN: "EAGAIN", EADDRINUSE: "EADDRINUSE", EPROTONOSUPPORT: "EPROTONOSUPPORT", EMFILE: "EMFILE", ENOMEM: "ENOMEM", ENOTSUP: "ENOTSUP",
        ]
        let text = strerror(code).map { String(cString: $0) } ?? "unknown error"
        return "\(names[code] ?? "errno \(code)") (\(text))"
    }

    /// `size` rounded up to the record alignment.
    @inlinable public static func recordStride(_ size: Int) -> Int { (size + 7) & ~7 }
}
