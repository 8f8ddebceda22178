// Channel calls of libarchangel: send, receive (lent in place), request,
// loans, statistics (include/archangel.h).
import Archangel
import CArchangelAPI
import Glibc

// MARK: Channel handles

@_cdecl("archangel_channel_close")
public func cChannelClose(_ channel: OpaquePointer?) {
    guard let channel else { return }
    free(channel, as: ChannelBox.self)
}

@_cdecl("archangel_channel_shutdown")
public func cChannelShutdown(_ channel: OpaquePointer?) {
    guard let channel else { return }
    channelBox(channel).channel.close()
}

@_cdecl("archangel_channel_is_open")
public func cChannelIsOpen(_ channel: OpaquePointer?) -> Int32 {
    guard let channel else { return 0 }
    return channelBox(channel).channel.isOpen ? 1 : 0
}

@_cdecl("archangel_channel_id")
public func cChannelID(_ channel: OpaquePointer?) -> UInt32 {
    guard let channel else { return UInt32.max }
    return channelBox(channel).channel.id.rawValue
}

@_cdecl("archangel_channel_max_payload")
public func cChannelMaxPayload(_ channel: OpaquePointer?) -> Int {
    guard let channel else { return 0 }
    return channelBox(channel).channel.maxPayload
}

@_cdecl("archangel_channel_memory")
public func cChannelMemory(_ channel: OpaquePointer?, _ base: UnsafeMutablePointer<UnsafeRawPointer?>?,
                           _ size: UnsafeMutablePointer<Int>?) -> Int32 {
    guard let channel else { return invalid("channel is NULL") }
    let b = channelBox(channel)
    base?.pointee = b.base
    size?.pointee = b.channel.memorySize
    return 0
}

// MARK: Sending

@inline(__always)
func checked(_ type: UInt8, _ priority: UInt8) -> (MessageType, MessagePriority)? {
    guard let t = MessageType(rawValue: type), let p = MessagePriority(rawValue: priority) else { return nil }
    return (t, p)
}

@_cdecl("archangel_try_send")
public func cTrySend(_ channel: OpaquePointer?, _ type: UInt8, _ priority: UInt8, _ data: UnsafeRawPointer?,
                     _ size: Int, _ options: UInt32) -> Int32 {
    guard let channel, data != nil || size == 0, size >= 0 else { return invalid("channel or data is NULL") }
    guard let (t, p) = checked(type, priority) else { return invalid("type \(type) or priority \(priority)") }
    return withChannelBox(channel) { b in
        run { () throws(ChannelError) in
            try b.channel.trySend(t, priority: p, bytes: UnsafeRawBufferPointer(start: data, count: size),
                                  options: SendOptions(rawValue: options)) ? 0 : ARCHANGEL_E_AGAIN.rawValue
        }
    }
}

@_cdecl("archangel_send")
public func cSend(_ channel: OpaquePointer?, _ type: UInt8, _ priority: UInt8, _ data: UnsafeRawPointer?,
                  _ size: Int, _ timeout: Int64, _ options: UInt32) -> Int32 {
    guard let channel, data != nil || size == 0, size >= 0 else { return invalid("channel or data is NULL") }
    guard let (t, p) = checked(type, priority) else { return invalid("type \(type) or priority \(priority)") }
    let c = channelBox(channel).channel
    return run(timeout: timeout) { () throws(ChannelError) in
        try c.send(t, priority: p, bytes: UnsafeRawBufferPointer(start: data, count: size),
                   timeout: duration(timeout), options: SendOptions(rawValue: options))
        return 0
    }
}

@_cdecl("archangel_last_sequence")
public func cLastSequence(_ channel: OpaquePointer?) -> UInt64 {
    guard let channel else { return 0 }
    return channelBox(channel).channel.sender.lastSequence
}

// MARK: Receiving

@_cdecl("archangel_release")
public func cRelease(_ channel: OpaquePointer?) -> Int32 {
    guard let channel else { return invalid("channel is NULL") }
    let b = channelBox(channel)
    return run { () throws(ChannelError) in try b.releaseHeld(); return 0 }
}

@_cdecl("archangel_receive")
public func cReceive(_ channel: OpaquePointer?, _ message: UnsafeMutablePointer<archangel_message>?,
                     _ timeout: Int64) -> Int32 {
    guard let channel, let message else { return invalid("channel or msg is NULL") }
    return withChannelBox(channel) { b in
        run(timeout: timeout) { () throws(ChannelError) in
            try b.releaseHeld()
            b.held = try b.channel.receiveHeld(limit: 1, timeout: duration(timeout)) { view in
                b.describe(view, in: message)
            }
            return 0
        }
    }
}

@_cdecl("archangel_try_receive")
public func cTryReceive(_ channel: OpaquePointer?, _ message: UnsafeMutablePointer<archangel_message>?) -> Int32 {
    cReceive(channel, message, 0)
}

@_cdecl("archangel_receive_batch")
public func cReceiveBatch(_ channel: OpaquePointer?, _ messages: UnsafeMutablePointer<archangel_message>?,
                          _ max: Int, _ timeout: Int64) -> Int32 {
    guard let channel, let messages, max > 0 else { return invalid("channel or msgs is NULL, or max is 0") }
    let b = channelBox(channel)
    return run(timeout: timeout) { () throws(ChannelError) in
        try b.releaseHeld()
        var i = 0
        b.held = try b.channel.receiveHeld(limit: max, timeout: duration(timeout)) { view in
            b.describe(view, in: messages + i)
            i += 1
        }
        return Int32(i)
    }
}

@_cdecl("archangel_receive_offsets")
public func cReceiveOffsets(_ channel: OpaquePointer?, _ offsets: UnsafeMutablePointer<UInt64>?,
                            _ sizes: UnsafeMutablePointer<UInt32>?, _ info: UnsafeMutablePointer<UInt32>?,
                            _ sequences: UnsafeMutablePointer<UInt64>?, _ correlations: UnsafeMutablePointer<UInt64>?,
                            _ max: Int, _ timeout: Int64) -> Int32 {
    guard let channel, let offsets, let sizes, max > 0 else {
        return invalid("channel, offsets or sizes is NULL, or max is 0")
    }
    let b = channelBox(channel)
    let base = b.base
    return run(timeout: timeout) { () throws(ChannelError) in
        try b.releaseHeld()
        var i = 0
        b.held = try b.channel.receiveHeld(limit: max, timeout: duration(timeout)) { view in
            let first = view.segment(0)
            offsets[i] = UInt64(first.baseAddress.map { $0 - base } ?? 0)
            sizes[i] = UInt32(truncatingIfNeeded: first.count)
            if let info {
                info[i] = UInt32(view.type.rawValue) | UInt32(view.priority.rawValue) << 8
                    | UInt32(view.flags.rawValue) << 16
            }
            sequences?[i] = view.sequence
            correlations?[i] = view.correlation ?? 0
            if view.flags.contains(.dma) { b.recordSegments(view) }
            i += 1
        }
        return Int32(i)
    }
}

@_cdecl("archangel_held_segments")
public func cHeldSegments(_ channel: OpaquePointer?, _ offsets: UnsafeMutablePointer<UInt64>?,
                          _ sizes: UnsafeMutablePointer<UInt32>?, _ max: Int) -> Int32 {
    guard let channel else { return invalid("channel is NULL") }
    let b = channelBox(channel)
    let n = Swift.min(b.poolSegmentCount, Swift.max(max, 0))
    for i in 0..<n {
        offsets?[i] = UInt64(b.segments[i].data.map { $0 - b.base } ?? 0)
        sizes?[i] = UInt32(truncatingIfNeeded: b.segments[i].size)
    }
    return Int32(b.poolSegmentCount)
}

@_cdecl("archangel_receive_copy")
public func cReceiveCopy(_ channel: OpaquePointer?, _ buffer: UnsafeMutableRawPointer?, _ capacity: Int,
                         _ info: UnsafeMutablePointer<archangel_message>?, _ timeout: Int64) -> Int32 {
    guard let channel, buffer != nil || capacity == 0, capacity >= 0 else { return invalid("channel or buf is NULL") }
    let b = channelBox(channel)
    return run(timeout: timeout) { () throws(ChannelError) in
        try b.releaseHeld()
        let got = try b.channel.receive(into: UnsafeMutableRawBufferPointer(start: buffer, count: capacity),
                                        timeout: duration(timeout))
        if let info {
            info.pointee = archangel_message(
                data: UnsafeRawPointer(buffer), size: got.count, sequence: got.sequence, timestamp: got.timestamp,
                correlation: got.correlation ?? 0, type: got.type.rawValue, priority: got.priority.rawValue,
                flags: got.correlation == nil ? 0 : UInt16(ARCHANGEL_MSG_F_CORRELATED), segment_count: 1,
                segments: nil)
        }
        return Int32(clamping: got.count)
    }
}

// MARK: Request / response

@_cdecl("archangel_respond")
public func cRespond(_ channel: OpaquePointer?, _ request: UnsafePointer<archangel_message>?, _ type: UInt8,
                     _ data: UnsafeRawPointer?, _ size: Int, _ timeout: Int64) -> Int32 {
    guard let channel, let request, data != nil || size == 0, size >= 0 else {
        return invalid("channel, request or data is NULL")
    }
    guard let (t, p) = checked(type, request.pointee.priority) else { return invalid("type \(type)") }
    let c = channelBox(channel).channel
    let correlation = request.pointee.sequence
    return run(timeout: timeout) { () throws(ChannelError) in
        try c.send(t, priority: p, bytes: UnsafeRawBufferPointer(start: data, count: size), correlation: correlation,
                   timeout: duration(timeout), options: .urgent)
        return 0
    }
}

@_cdecl("archangel_request")
public func cRequest(_ channel: OpaquePointer?, _ type: UInt8, _ priority: UInt8, _ data: UnsafeRawPointer?,
                     _ size: Int, _ reply: UnsafeMutablePointer<archangel_message>?, _ timeout: Int64,
                     _ skipped: UnsafeMutablePointer<UInt64>?) -> Int32 {
    guard let channel, let reply, data != nil || size == 0, size >= 0 else {
        return invalid("channel, reply or data is NULL")
    }
    guard let (t, p) = checked(type, priority) else { return invalid("type \(type) or priority \(priority)") }
    let b = channelBox(channel)
    let deadline: ContinuousClock.Instant? = timeout < 0 ? nil : .now + .nanoseconds(timeout)
    return run(timeout: timeout) { () throws(ChannelError) in
        try b.releaseHeld()
        // Urgent: the caller waits for the answer, so a wake-up coalesced to
        // the window's trailing edge would only add latency (up to the window).
        try b.channel.send(t, priority: p, bytes: UnsafeRawBufferPointer(start: data, count: size),
                           timeout: duration(timeout), options: .urgent)
        let sequence = b.channel.sender.lastSequence
        while true {
            let left: Duration? = deadline.map { Swift.max(.zero, $0 - .now) }
            var matched = false
            b.held = try b.channel.receiveHeld(limit: 1, timeout: left) { view in
                matched = view.correlation == sequence
                if matched { b.describe(view, in: reply) }
            }
            if matched { return 0 }
            try b.releaseHeld()
            skipped?.pointee += 1
        }
    }
}

// MARK: Loans

@_cdecl("archangel_loan")
public func cLoan(_ channel: OpaquePointer?, _ capacity: Int, _ timeout: Int64) -> Int32 {
    guard let channel, capacity >= 0 else { return invalid("channel is NULL or capacity negative") }
    let b = channelBox(channel)
    if b.loan != nil { return status(.loanOutstanding) }
    return run(timeout: timeout) { () throws(ChannelError) in
        b.loan = try b.channel.loan(capacity: capacity, timeout: duration(timeout))
        return Int32(b.channel.sender.loanSegmentCount)
    }
}

@_cdecl("archangel_loan_segment")
public func cLoanSegment(_ channel: OpaquePointer?, _ index: UInt32,
                         _ size: UnsafeMutablePointer<Int>?) -> UnsafeMutableRawPointer? {
    guard let channel else { return nil }
    let b = channelBox(channel)
    guard b.loan != nil, Int(index) < b.channel.sender.loanSegmentCount else {
        size?.pointee = 0
        return nil
    }
    let segment = b.channel.sender.loanSegment(Int(index))
    size?.pointee = segment.count
    return segment.baseAddress
}

@_cdecl("archangel_loan_commit")
public func cLoanCommit(_ channel: OpaquePointer?, _ type: UInt8, _ priority: UInt8, _ length: Int,
                        _ correlation: UInt64, _ timeout: Int64) -> Int32 {
    guard let channel else { return invalid("channel is NULL") }
    let b = channelBox(channel)
    guard let loan = b.loan.take() else {
        setLastError("no loan is open on this channel")
        return ARCHANGEL_E_INVALID.rawValue
    }
    guard let (t, p) = checked(type, priority), length >= 0, length <= loan.capacity else {
        loan.cancel()
        return invalid("type \(type), priority \(priority) or length \(length)")
    }
    do {
        try loan.commit(t, priority: p, length: length, correlation: correlation == 0 ? nil : correlation,
                        timeout: duration(timeout))
        return 0
    } catch {
        return status(error, timeout: timeout)
    }
}

@_cdecl("archangel_loan_cancel")
public func cLoanCancel(_ channel: OpaquePointer?) {
    guard let channel else { return }
    channelBox(channel).loan.take()?.cancel()
}

// MARK: Statistics

@_cdecl("archangel_channel_stats")
public func cChannelStats(_ channel: OpaquePointer?, _ out: UnsafeMutablePointer<archangel_stats>?) -> Int32 {
    guard let channel, let out else { return invalid("channel or out is NULL") }
    let c = channelBox(channel).channel
    let s = c.sender.counters, r = c.receiver.counters
    out.pointee = archangel_stats(
        messages_sent: s.load(.messagesSent), bytes_sent: s.load(.bytesSent),
        messages_received: r.load(.messagesReceived), bytes_received: r.load(.bytesReceived),
        rejected: s.load(.rejected), errors: s.load(.errors) + r.load(.errors), queue_full: s.load(.queueFull),
        pool_transfers: s.load(.poolTransfers), copy_fallbacks: s.load(.copyFallbacks),
        notifications_sent: s.load(.notificationsSent) + r.load(.notificationsSent),
        notifications_suppressed: s.load(.notificationsSuppressed),
        notifications_coalesced: s.load(.notificationsCoalesced),
        waits: s.load(.waits) + r.load(.waits), timed_waits: s.load(.timedWaits) + r.load(.timedWaits),
        ring_used: c.sender.ringUsedNow(), ring_size: c.sender.ringSize,
        pool_in_use: UInt64(c.sender.poolBuffersInUse), pool_size: UInt64(c.sender.poolSize))
    return 0
}
