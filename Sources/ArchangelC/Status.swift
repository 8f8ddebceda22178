// libarchangel's error codes, version and strings (include/archangel.h).
import Archangel
import CArchangelAPI
import Glibc

/// The ARCHANGEL_E_* code of `error`, after recording its text for `archangel_last_error`.
func status(_ error: ChannelError, timeout: Int64? = nil) -> Int32 {
    let code: archangel_status
    switch error {
    case .timedOut: code = timeout == 0 ? ARCHANGEL_E_AGAIN : ARCHANGEL_E_TIMEDOUT
    case .closed: code = ARCHANGEL_E_CLOSED
    case .corrupted: code = ARCHANGEL_E_CORRUPTED
    case .payloadTooLarge: code = ARCHANGEL_E_TOO_LARGE
    case .bufferTooSmall: code = ARCHANGEL_E_BUFFER_TOO_SMALL
    case .invalidConfiguration, .invalidChannelID: code = ARCHANGEL_E_INVALID
    case .channelNotFound: code = ARCHANGEL_E_NOT_FOUND
    case .channelExists: code = ARCHANGEL_E_EXISTS
    case .tooManyChannels: code = ARCHANGEL_E_TOO_MANY
    case .abiMismatch: code = ARCHANGEL_E_ABI
    case .loanOutstanding, .receiverInUse, .sideInUse: code = ARCHANGEL_E_BUSY
    case .peerDisconnected: code = ARCHANGEL_E_DISCONNECTED
    case .hostUnavailable, .deviceUnavailable: code = ARCHANGEL_E_UNAVAILABLE
    case .hostRefused: code = ARCHANGEL_E_REFUSED
    case .protocolViolation: code = ARCHANGEL_E_PROTOCOL
    case .system: code = ARCHANGEL_E_SYSTEM
    }
    if code != ARCHANGEL_E_AGAIN { setLastError(error.description) }
    return code.rawValue
}

/// An ARCHANGEL_E_INVALID for a bad argument, described for `archangel_last_error`.
func invalid(_ what: String) -> Int32 {
    setLastError("invalid argument: \(what)")
    return ARCHANGEL_E_INVALID.rawValue
}

func setLastError(_ text: String) {
    text.withCString { archangel_api_set_last_error($0) }
}

/// Runs `body`, turning a thrown `ChannelError` into its code.
@inline(__always)
func run(timeout: Int64? = nil, _ body: () throws(ChannelError) -> Int32) -> Int32 {
    do {
        return try body()
    } catch {
        return status(error, timeout: timeout)
    }
}

/// A C timeout (ns; negative: forever) as the Swift API's.
@inline(__always)
func duration(_ nanoseconds: Int64) -> Duration? {
    nanoseconds < 0 ? nil : .nanoseconds(nanoseconds)
}

/// The preset `ARCHANGEL_WAIT_PRESET_*` names, or nil.
func waitPolicy(_ preset: Int32) -> WaitPolicy? {
    switch UInt32(bitPattern: preset) {
    case ARCHANGEL_WAIT_PRESET_BALANCED.rawValue: .balanced
    case ARCHANGEL_WAIT_PRESET_RESPONSIVE.rawValue: .responsive
    case ARCHANGEL_WAIT_PRESET_EFFICIENT.rawValue: .efficient
    case ARCHANGEL_WAIT_PRESET_LOW_LATENCY.rawValue: .lowLatency
    case ARCHANGEL_WAIT_PRESET_SLEEP_AT_ONCE.rawValue: .sleepAtOnce
    default: nil
    }
}

/// Copies `text` into a C buffer like snprintf: NUL-terminated, cut to fit; returns its full length.
func copyText(_ text: String, to buffer: UnsafeMutablePointer<CChar>?, length: Int) -> Int32 {
    var utf8 = Array(text.utf8)
    let total = Int32(clamping: utf8.count)
    if let buffer, length > 0 {
        let n = min(utf8.count, length - 1)
        utf8.withUnsafeMutableBytes { raw in
            UnsafeMutableRawPointer(buffer).copyMemory(from: raw.baseAddress!, byteCount: n)
        }
        buffer[n] = 0
    }
    return total
}

// MARK: Versions and strings

@_cdecl("archangel_version")
public func cVersion() -> UInt32 {
    UInt32(ARCHANGEL_API_VERSION_MAJOR) << 16 | UInt32(ARCHANGEL_API_VERSION_MINOR) << 8 | UInt32(ARCHANGEL_API_VERSION_PATCH)
}

@_cdecl("archangel_version_string")
public func cVersionString() -> UnsafePointer<CChar> {
    staticCString("\(ARCHANGEL_API_VERSION_MAJOR).\(ARCHANGEL_API_VERSION_MINOR).\(ARCHANGEL_API_VERSION_PATCH)")
}

@_cdecl("archangel_shared_abi_version")
public func cABIVersion() -> UInt32 { ABI.version }

@_cdecl("archangel_strerror")
public func cStrerror(_ code: Int32) -> UnsafePointer<CChar> {
    let text: String = switch code {
    case ARCHANGEL_OK.rawValue: "success"
    case ARCHANGEL_E_AGAIN.rawValue: "would block: the ring is full, the pool empty, or nothing is queued"
    case ARCHANGEL_E_TIMEDOUT.rawValue: "timed out"
    case ARCHANGEL_E_CLOSED.rawValue: "channel closed"
    case ARCHANGEL_E_CORRUPTED.rawValue: "channel memory corrupted; the channel is unusable: destroy and recreate it"
    case ARCHANGEL_E_TOO_LARGE.rawValue: "payload too large for this channel"
    case ARCHANGEL_E_BUFFER_TOO_SMALL.rawValue: "buffer too small for the message; it is still queued"
    case ARCHANGEL_E_INVALID.rawValue: "invalid argument or configuration"
    case ARCHANGEL_E_NOT_FOUND.rawValue: "no such channel"
    case ARCHANGEL_E_EXISTS.rawValue: "channel exists already"
    case ARCHANGEL_E_TOO_MANY.rawValue: "all channels are in use"
    case ARCHANGEL_E_ABI.rawValue: "ABI version mismatch between the two sides"
    case ARCHANGEL_E_BUSY.rawValue: "busy: a loan is open, the side is attached elsewhere, or the receiver is in use"
    case ARCHANGEL_E_DISCONNECTED.rawValue: "the peer disconnected"
    case ARCHANGEL_E_UNAVAILABLE.rawValue: "no Archangel host at the socket, or no kernel device"
    case ARCHANGEL_E_REFUSED.rawValue: "the host refused the request"
    case ARCHANGEL_E_PROTOCOL.rawValue: "attach protocol violated"
    case ARCHANGEL_E_SYSTEM.rawValue: "a system call failed"
    default: "unknown error"
    }
    return staticCString(text)
}

/// Interned C strings: each distinct text is allocated once and never freed.
private let interned = PthreadLock<[String: UnsafeMutablePointer<CChar>]>([:])

func staticCString(_ text: String) -> UnsafePointer<CChar> {
    interned.withLock { table in
        if let known = table[text] { return UnsafePointer(known) }
        let copy = strdup(text)!
        table[text] = copy
        return UnsafePointer(copy)
    }
}
