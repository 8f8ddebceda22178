/// A received message with its payload copied out of shared memory.
///
/// The convenient form (one allocation for the payload). For the zero-copy
/// form use `Channel.receive(_:)` with a closure that gets a `MessageView`.
public struct Message: Sendable, Equatable {
    /// The message type.
    public var type: MessageType
    /// The priority it was sent with.
    public var priority: MessagePriority
    /// The sender's sequence number.
    public var sequence: UInt64
    /// CLOCK_MONOTONIC nanoseconds at send.
    public var timestamp: UInt64
    /// Record flags (`dma`, `copied`, `correlated`).
    public var flags: MessageFlags
    /// The request this message answers, if it is a correlated response.
    public var correlation: UInt64?
    /// The payload.
    public var bytes: [UInt8]

    /// A message with these fields (e.g. one a test peer received outside a `Channel`).
    public init(type: MessageType, priority: MessagePriority, sequence: UInt64, timestamp: UInt64,
                flags: MessageFlags, correlation: UInt64?, bytes: [UInt8]) {
        self.type = type
        self.priority = priority
        self.sequence = sequence
        self.timestamp = timestamp
        self.flags = flags
        self.correlation = correlation
        self.bytes = bytes
    }

    /// Copies a lent message.
    public init(_ view: MessageView) {
        type = view.type
        priority = view.priority
        sequence = view.sequence
        timestamp = view.timestamp
        flags = view.flags
        correlation = view.correlation
        bytes = view.bytes
    }
}

/// What `Channel.receive(into:)` received: everything about the message except its bytes.
public struct MessageInfo: Sendable, Equatable {
    /// The message type.
    public var type: MessageType
    /// The priority it was sent with.
    public var priority: MessagePriority
    /// The sender's sequence number.
    public var sequence: UInt64
    /// CLOCK_MONOTONIC nanoseconds at send.
    public var timestamp: UInt64
    /// The request this message answers, if any.
    public var correlation: UInt64?
    /// Payload bytes written to the buffer.
    public var count: Int

    init(_ view: MessageView, count: Int) {
        type = view.type
        priority = view.priority
        sequence = view.sequence
        timestamp = view.timestamp
        correlation = view.correlation
        self.count = count
    }
}
