import ArchangelCore

/// Pool buffers lent for one outgoing message: write the payload in place,
/// then commit. No copy at all.
///
/// Non-copyable, so it is committed or cancelled exactly once; dropping it
/// without either gives the buffers back.
public struct Loan: ~Copyable {
    let channel: Channel
    private var done = false

    init(channel: Channel) { self.channel = channel }

    /// Bytes the loan can hold.
    public var capacity: Int { channel.sender.loanSegmentCount * channel.layout.direction(channel.side.outgoing).pool.bufferSize }

    /// Number of buffers (scatter-gather segments).
    public var segmentCount: Int { channel.sender.loanSegmentCount }

    /// Writable memory of segment `index`; the payload fills segments in order.
    public func segment(_ index: Int) -> UnsafeMutableRawBufferPointer { channel.sender.loanSegment(index) }

    /// Copies `bytes` into the loan at `offset`, across segments.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int = 0) {
        precondition(offset >= 0 && offset + bytes.count <= capacity, "write past the loan's capacity")
        var written = 0
        var position = offset
        while written < bytes.count {
            let piece = segment(position / (capacity / segmentCount))
            let inPiece = position % piece.count
            let n = min(piece.count - inPiece, bytes.count - written)
            (piece.baseAddress! + inPiece).copyMemory(from: bytes.baseAddress! + written, byteCount: n)
            written += n
            position += n
        }
    }

    /// Sends the first `length` bytes, waiting for ring room if needed.
    public consuming func commit(_ type: MessageType, priority: MessagePriority = .normal, length: Int,
                                 correlation: UInt64? = nil, timeout: Duration? = nil) throws(ChannelError) {
        let channel = self.channel
        done = true
        do {
            try channel.waitLoop(timeout: timeout, event: channel.spaceReady) { (first) throws(ChannelError) -> SendBlock? in
                switch try channel.sender.tryCommitLoan(type: type, priority: priority, length: length,
                                                        correlation: correlation, countFull: first) {
                case .sent: return nil
                case .wouldBlock(let block): return block
                }
            } prepare: { (block) throws(ChannelError) -> Bool in
                try channel.sender.prepareToWait(for: block)
            } finish: { block in
                channel.sender.finishWait(for: block)
            }
        } catch {
            channel.sender.cancelLoan()
            throw error
        }
    }

    /// Gives the buffers back unsent.
    public consuming func cancel() {
        done = true
        channel.sender.cancelLoan()
    }

    deinit {
        if !done { channel.sender.cancelLoan() }
    }
}

extension Channel {
    /// Borrows pool buffers for a message of up to `capacity` bytes, waiting for free buffers.
    ///
    /// - Throws: `payloadTooLarge` when the pool can never hold `capacity`,
    ///   `loanOutstanding` while another loan is open, `timedOut`, `closed`.
    public func loan(capacity: Int, timeout: Duration? = nil) throws(ChannelError) -> Loan {
        try waitLoop(timeout: timeout, event: spaceReady) { (first) throws(ChannelError) -> SendBlock? in
            let bufferSize = layout.direction(side.outgoing).pool.bufferSize
            return try sender.tryBeginLoan(capacity: capacity, countFull: first)
                ? nil : .poolEmpty(buffers: max(1, (capacity + bufferSize - 1) / bufferSize))
        } prepare: { (block) throws(ChannelError) -> Bool in
            try sender.prepareToWait(for: block)
        } finish: { block in
            sender.finishWait(for: block)
        }
        return Loan(channel: self)
    }
}
