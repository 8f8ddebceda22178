import ArchangelCore

extension Channel {
    /// Lends up to `limit` messages to `body`, waiting for the first, and
    /// keeps holding them: each view stays valid after `body` returns, until
    /// `release(_:)`. For callers that cannot keep a closure open across the
    /// use of a payload (the C and Python bindings, docs/bindings.md).
    ///
    /// Release what this returns before the next receive of any kind on this
    /// endpoint. A pool message ends a batch.
    /// - Throws: `timedOut`, `closed`, `corrupted`, `receiverInUse`.
    public func receiveHeld(limit: Int = 1, timeout: Duration? = nil,
                            _ body: (MessageView) -> Void) throws(ChannelError) -> HeldMessages {
        try checkDirectReceive()
        let receiver = self.receiver
        // A message already queued is taken here, without the wait loop's closures (as `receive` does).
        guard link.isOpen else { throw link.closedError }
        do {
            let held = try receiver.tryHoldBatch(limit: limit, body)
            if held.count > 0 { return held }
        } catch {
            throw link.failed(error)
        }
        return try receiveLoop(timeout: timeout) { () throws(ChannelError) -> HeldMessages? in
            let held = try receiver.tryHoldBatch(limit: limit, body)
            return held.count > 0 ? held : nil
        }
    }

    /// Gives back messages held by `receiveHeld` (ring space and pool buffers).
    public func release(_ held: HeldMessages) throws(ChannelError) {
        try failingChannel { () throws(ChannelError) in try receiver.release(held) }
    }

    /// The start of the channel memory this endpoint maps; every payload a
    /// view lends lies in `memoryBase ..< memoryBase + layout.totalSize`.
    public var memoryBase: UnsafeRawPointer { UnsafeRawPointer(memory.base) }

    /// Bytes of channel memory mapped at `memoryBase`.
    public var memorySize: Int { memory.size }
}
