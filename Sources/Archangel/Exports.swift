// The public API is this module plus the core's value types (MessageType,
// MessagePriority, ChannelError, statistics...), so users import one module.
@_exported import ArchangelCore
