import Glibc

/// What was wrong with shared memory when a channel stopped trusting it.
///
/// Every case names the value that failed its check, so a corrupted channel
/// can be diagnosed from its error alone.
public enum CorruptionReason: Equatable, Sendable, CustomStringConvertible {
    /// A producer or consumer index moved backwards or ran further than the ring holds.
    case indexOutOfRange(ring: String, index: UInt64, expectedWithin: ClosedRange<UInt64>)
    /// A record did not start with `"ARCH"`.
    case badMagic(ring: String, position: UInt64, found: UInt32)
    /// A record's size is below the header size, runs past the published data or past the ring's end.
    case badRecordSize(ring: String, position: UInt64, size: UInt32, available: UInt64)
    /// A record's type is not 1...7.
    case badType(ring: String, position: UInt64, type: UInt8)
    /// A record's priority is not 0...3, or does not belong on this lane.
    case badPriority(ring: String, position: UInt64, priority: UInt8)
    /// A record carries flags this ABI version does not define, or a padding record is malformed.
    case badFlags(ring: String, position: UInt64, flags: UInt16)
    /// A descriptor names a buffer or a byte range outside the pool, or has a non-zero reserved word.
    case badDescriptor(index: Int, buffer: UInt32, offset: UInt32, length: UInt32)
    /// A descriptor names a buffer the receiver already holds.
    case bufferNotOwned(buffer: UInt32)
    /// The return ring gave back a buffer index that is out of range or was not lent out.
    case badReturn(buffer: UInt32)
    /// The return ring had no room although it is sized for every buffer.
    case returnRingOverflow
    /// The channel memory's header or offsets did not describe a valid layout.
    case badLayout(String)
    /// The peer (e.g. the kernel module) found this side's writes invalid and
    /// failed the channel; the text says where to look.
    case reportedByPeer(String)

    public var description: String {
        switch self {
        case let .indexOutOfRange(ring, index, range):
            "\(ring): index \(index) outside \(range.lowerBound)...\(range.upperBound)"
        case let .badMagic(ring, position, found):
            "\(ring): record at \(position) has magic 0x\(String(found, radix: 16)), expected 0x41524348"
        case let .badRecordSize(ring, position, size, available):
            "\(ring): record at \(position) has size \(size) with \(available) bytes available"
        case let .badType(ring, position, type):
            "\(ring): record at \(position) has unknown type \(type)"
        case let .badPriority(ring, position, priority):
            "\(ring): record at \(position) has priority \(priority), invalid on this lane"
        case let .badFlags(ring, position, flags):
            "\(ring): record at \(position) has invalid flags 0x\(String(flags, radix: 16))"
        case let .badDescriptor(index, buffer, offset, length):
            "descriptor \(index) (buffer \(buffer), offset \(offset), length \(length)) is outside the pool"
        case let .bufferNotOwned(buffer):
            "buffer \(buffer) is already held by the receiver"
        case let .badReturn(buffer):
            "return ring gave back buffer \(buffer), which was not lent out"
        case .returnRingOverflow:
            "return ring full although it holds every buffer: the sender does not consume it"
        case let .badLayout(what):
            "bad channel layout: \(what)"
        case let .reportedByPeer(what):
            "the peer failed the channel: \(what)"
        }
    }
}

/// Errors of channel operations.
///
/// A full ring is not an error: non-blocking calls report "would block" in
/// their result, and blocking calls wait.
public enum ChannelError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Shared memory failed validation. The channel stays in this error state;
    /// destroy it and create a new one.
    case corrupted(CorruptionReason)
    /// The payload cannot be sent on this channel at all.
    case payloadTooLarge(size: Int, limit: Int)
    /// A receive buffer was too small for the message; the message stays queued.
    case bufferTooSmall(needed: Int, available: Int)
    /// A blocking call waited for its whole timeout.
    case timedOut
    /// The channel was destroyed or closed while in use.
    case closed
    /// No channel has this id.
    case channelNotFound(UInt32)
    /// A channel with this id exists already.
    case channelExists(UInt32)
    /// The manager already holds its configured maximum of channels.
    case tooManyChannels(limit: Int)
    /// The id is beyond the manager's configured maximum.
    case invalidChannelID(UInt32, limit: Int)
    /// The configuration is not usable; the text says which value and why.
    case invalidConfiguration(String)
    /// The peer was built against another ABI version.
    case abiMismatch(ours: UInt32, theirs: UInt32)
    /// A loan is still open on this sender; commit or cancel it first.
    case loanOutstanding
    /// The other side went away.
    case peerDisconnected
    /// The receive side is driven by the channel's async interface
    /// (`messages` or `request`); synchronous receives would steal its messages.
    case receiverInUse
    /// A system call failed.
    case system(operation: String, errno: Int32)
    /// No host answers at this socket path (`errno` from connect).
    case hostUnavailable(path: String, errno: Int32)
    /// The host refused the request; `reason` is its explanation.
    case hostRefused(status: Int32, reason: String)
    /// The host or client broke the attach protocol; the text says how.
    case protocolViolation(String)
    /// This side of the channel is already attached by another process.
    case sideInUse(UInt32)
    /// The kernel device cannot be opened (`errno` from open): the module is
    /// not loaded (ENOENT, ENODEV, ENXIO) or this process may not use it (EACCES, EPERM).
    case deviceUnavailable(path: String, errno: Int32)

    public var description: String {
        switch self {
        case let .corrupted(reason):
            "channel memory corrupted (\(reason)); the channel is unusable: destroy and recreate it"
        case let .payloadTooLarge(size, limit):
            "payload of \(size) bytes exceeds this channel's limit of \(limit) bytes; raise the pool size or split the message"
        case let .bufferTooSmall(needed, available):
            "message needs \(needed) bytes but the buffer holds \(available); it is still queued"
        case .timedOut:
            "timed out"
        case .closed:
            "channel closed"
        case let .channelNotFound(id):
            "no channel with id \(id)"
        case let .channelExists(id):
            "channel \(id) exists already"
        case let .tooManyChannels(limit):
            "all \(limit) channels are in use; destroy one or raise the limit"
        case let .invalidChannelID(id, limit):
            "channel id \(id) is out of range 0..<\(limit)"
        case let .invalidConfiguration(what):
            "invalid configuration: \(what)"
        case let .abiMismatch(ours, theirs):
            "ABI version mismatch: this build speaks \(ABI.describe(version: ours)), the peer \(ABI.describe(version: theirs)); upgrade the older side"
        case .loanOutstanding:
            "a loan is already open on this sender; commit or cancel it first"
        case .peerDisconnected:
            "the peer disconnected"
        case .receiverInUse:
            "the receive side is driven by `messages`/`request`; receive through them, not synchronously"
        case let .system(operation, errno):
            "\(operation) failed: \(ABI.describe(errno: errno))"
        case let .hostUnavailable(path, errno):
            "no Archangel host at \(path) (\(ABI.describe(errno: errno))); start one with `archangel serve` or pass --socket"
        case let .hostRefused(status, reason):
            "the host refused: \(reason) (\(ABI.describe(errno: -status)))"
        case let .protocolViolation(what):
            "attach protocol violated: \(what)"
        case let .sideInUse(id):
            "that side of channel \(id) is attached by another process; close it there, or wait until it exits"
        case let .deviceUnavailable(path, errno):
            switch errno {
            case ENOENT, ENODEV, ENXIO:
                "no \(path) (\(ABI.describe(errno: errno))): is the archangel module loaded? "
                    + "Load it (insmod kernel/archangel.ko) or use the userspace backend"
            case EACCES, EPERM:
                "\(path) is 0600 (\(ABI.describe(errno: errno))): run as root, or use the userspace backend"
            default:
                "cannot open \(path): \(ABI.describe(errno: errno))"
            }
        }
    }
}
