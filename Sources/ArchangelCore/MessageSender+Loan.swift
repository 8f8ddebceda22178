/// Zero-copy sending: borrow pool buffers, write the payload in place, commit.
///
/// One loan at a time per sender (the sender is single-threaded anyway).
/// The `Archangel` module wraps these calls in a non-copyable `Loan` that
/// cannot be committed twice or forgotten.
extension MessageSender {
    /// Lends pool buffers enough for `capacity` payload bytes.
    ///
    /// - Returns: false when the pool has too few free buffers now (would block).
    /// - Throws: `loanOutstanding` if a loan is open, `payloadTooLarge` if the
    ///   pool can never hold `capacity`, `corrupted` on bad shared memory.
    public func tryBeginLoan(capacity: Int, countFull: Bool = true) throws(ChannelError) -> Bool {
        try checkUsable()
        let s = state
        guard !s.pointee.loanOpen else { throw .loanOutstanding }
        guard s.pointee.pool.enabled, capacity >= 0 else { throw reject(capacity) }
        let segments = max(1, s.pointee.pool.segments(for: capacity))
        guard segments <= s.pointee.pool.maxSegments else { throw reject(capacity) }
        if s.pointee.pool.freeCount < segments {
            do { try s.pointee.pool.reclaim() } catch { throw fail(error) }
            guard s.pointee.pool.freeCount >= segments else {
                if countFull { counters.add(.queueFull) }
                return false
            }
        }
        for i in 0..<segments { s.pointee.loanBuffers[i] = s.pointee.pool.take() }
        s.pointee.loanCount = segments
        s.pointee.loanOpen = true
        counters.set(.poolBuffersInUse, UInt64(s.pointee.pool.inUse))
        return true
    }

    /// Number of buffers in the open loan.
    public var loanSegmentCount: Int { state.pointee.loanOpen ? state.pointee.loanCount : 0 }

    /// Writable memory of buffer `index` of the open loan.
    public func loanSegment(_ index: Int) -> UnsafeMutableRawBufferPointer {
        precondition(state.pointee.loanOpen && index >= 0 && index < state.pointee.loanCount, "no such loan segment")
        let pool = state.pointee.pool
        return UnsafeMutableRawBufferPointer(start: pool.buffer(state.pointee.loanBuffers[index]),
                                             count: pool.bufferSize)
    }

    /// Sends the open loan's first `length` bytes (filled in order across its segments).
    ///
    /// Unused buffers go back to the pool. On `.wouldBlock` the loan stays open.
    public func tryCommitLoan(type: MessageType, priority: MessagePriority, length: Int,
                              correlation: UInt64? = nil, publish: Bool = true,
                              countFull: Bool = true) throws(ChannelError) -> SendOutcome {
        try checkUsable()
        let s = state
        precondition(s.pointee.loanOpen, "commit without an open loan")
        let bufferSize = s.pointee.pool.bufferSize
        guard length >= 0, length <= s.pointee.loanCount * bufferSize else {
            counters.add(.rejected)
            throw .payloadTooLarge(size: length, limit: s.pointee.loanCount * bufferSize)
        }
        let used = max(1, (length + bufferSize - 1) / bufferSize)
        let extra = correlation == nil ? 0 : ABI.correlationSize
        let recordLength = ABI.headerSize + extra + used * ABI.descriptorSize
        let lane = priority.lane
        let record: UnsafeMutableRawPointer?
        do {
            record = lane == .normal ? try s.pointee.normal.reserve(length: recordLength)
                                     : try s.pointee.express.reserve(length: recordLength)
        } catch { throw fail(error) }
        guard let record else {
            if countFull { counters.add(.queueFull) }
            return .wouldBlock(.ringFull(lane: lane, length: recordLength))
        }
        var cursor = record + ABI.headerSize
        var flags = MessageFlags.dma.rawValue
        if let correlation {
            cursor.storeBytes(of: correlation.littleEndian, as: UInt64.self)
            cursor += ABI.correlationSize
            flags |= MessageFlags.correlated.rawValue
        }
        var remaining = length
        for i in 0..<used {
            let chunk = min(bufferSize, remaining)
            PoolDescriptor(buffer: s.pointee.loanBuffers[i], offset: 0, length: UInt32(chunk))
                .store(to: cursor + i * ABI.descriptorSize)
            remaining -= chunk
        }
        for i in used..<s.pointee.loanCount { s.pointee.pool.putBack(s.pointee.loanBuffers[i]) }
        s.pointee.loanOpen = false
        s.pointee.loanCount = 0
        counters.add(.poolTransfers)
        counters.set(.poolBuffersInUse, UInt64(s.pointee.pool.inUse))
        finishRecord(record, lane: lane, type: type, priority: priority, flags: flags, length: recordLength,
                     payloadBytes: length, publish: publish)
        return .sent
    }

    /// Gives the open loan's buffers back to the pool unsent. Does nothing without a loan.
    public func cancelLoan() {
        let s = state
        guard s.pointee.loanOpen else { return }
        for i in 0..<s.pointee.loanCount { s.pointee.pool.putBack(s.pointee.loanBuffers[i]) }
        s.pointee.loanOpen = false
        s.pointee.loanCount = 0
        counters.set(.poolBuffersInUse, UInt64(s.pointee.pool.inUse))
    }
}
