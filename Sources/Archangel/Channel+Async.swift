import ArchangelCore

/// The async interface: a message sequence and request/response.
///
/// Either one hands the receive side to a pump thread for the rest of the
/// channel's life; synchronous receives then throw `receiverInUse`.
extension Channel {
    /// Messages queued for `messages` before the pump stops receiving (back-pressure).
    public static let asyncQueueCapacity = 1024

    func startPump() throws(ChannelError) -> ReceivePump {
        try pump.withLock { (current) throws(ChannelError) -> ReceivePump in
            if let current { return current }
            let created = try ReceivePump(channel: self, capacity: Self.asyncQueueCapacity)
            current = created
            pumpStarted.store(true, ordering: .releasing)
            return created
        }
    }

    /// Every message received on this endpoint that is not a response to a pending `request`.
    ///
    /// The sequence ends when the channel closes and throws if its memory is
    /// found corrupted. One task at a time may iterate it.
    public var messages: Messages { Messages(channel: self) }

    /// An `AsyncSequence` of received messages.
    public struct Messages: AsyncSequence, Sendable {
        let channel: Channel

        /// Creates the iterator (starts the receive pump on first use).
        public func makeAsyncIterator() -> Iterator { Iterator(channel: channel) }

        /// Iterates received messages.
        public struct Iterator: AsyncIteratorProtocol {
            let channel: Channel

            /// The next message, or nil when the channel closed.
            public mutating func next() async throws -> Message? {
                try await channel.startPump().next()
            }
        }
    }

    /// Sends a request and waits for the message that answers it.
    ///
    /// The peer answers with `respond(to:...)`, which names this request's
    /// sequence number. Cancelling the task stops the wait (the request stays sent).
    /// A request is awaited by definition, so it is sent `urgent` by default
    /// (as `respond(to:)` is): coalesced, it would wait for the budget's
    /// trailing edge whenever the peer had just been woken.
    /// - Throws: send errors, `closed`, `CancellationError`.
    public func request(_ type: MessageType = .aiRequest, priority: MessagePriority = .normal,
                        bytes: [UInt8], options: SendOptions = .urgent) async throws -> Message {
        let pump = try startPump()
        // Single producer: nobody else sends on this endpoint, so the next sequence is ours.
        let sequence = sender.lastSequence &+ 1
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Message, any Error>) in
                pump.expectResponse(to: sequence, continuation)
                do {
                    try send(type, priority: priority, bytes: bytes, options: options)
                } catch {
                    pump.cancelResponse(to: sequence, with: error)
                }
            }
        } onCancel: {
            pump.cancelResponse(to: sequence, with: CancellationError())
        }
    }
}
