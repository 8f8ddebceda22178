/// The id of a channel in its communication manager (0 up to the manager's limit).
public struct ChannelID: RawRepresentable, Hashable, Comparable, Sendable, ExpressibleByIntegerLiteral,
    CustomStringConvertible {
    /// The numeric id, as the seed's C API passes it.
    public let rawValue: UInt32

    /// Wraps a numeric id.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Wraps a numeric id.
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    /// Allows `let id: ChannelID = 0`.
    public init(integerLiteral value: UInt32) { rawValue = value }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "\(rawValue)" }
}

/// Which end of a channel an endpoint is.
public enum ChannelSide: String, Sendable, CustomStringConvertible {
    /// The sensor side: the kernel module, the host daemon, or an embedding program.
    case kernel
    /// The AI-engine / monitor side.
    case user

    /// The direction this side sends on.
    public var outgoing: Direction { self == .kernel ? .toUser : .toKernel }
    /// The direction this side receives from.
    public var incoming: Direction { self == .kernel ? .toKernel : .toUser }
    public var description: String { rawValue }
}
