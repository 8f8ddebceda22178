import ArchangelCore

/// Where a channel's user side comes from. Every backend hands out the same
/// `Channel` over the same ring protocol; only the memory and the wake-ups
/// are provided differently.
public protocol ChannelBackend: Sendable {
    /// A short name for reports (`in-process`, `userspace`, `kernel`).
    var name: String { get }
    /// Opens the user side of channel `id`.
    func openUserSide(_ id: ChannelID) throws(ChannelError) -> Channel
}

/// Both ends in this process: the kernel side is a `CommManager` you hold.
public struct InProcessBackend: ChannelBackend {
    /// The manager that hosts the channels.
    public let manager: CommManager
    /// Wraps `manager`.
    public init(manager: CommManager) { self.manager = manager }
    /// `in-process`.
    public var name: String { "in-process" }
    /// The manager's user endpoint of `id`.
    public func openUserSide(_ id: ChannelID) throws(ChannelError) -> Channel { try manager.userEndpoint(id) }
}

extension ChannelBackend where Self == InProcessBackend {
    /// Both ends in this process, hosted by `manager`.
    public static func inProcess(_ manager: CommManager) -> InProcessBackend { InProcessBackend(manager: manager) }
}

extension Channel {
    /// Opens the user side of channel `id` through `backend`.
    public static func open(_ id: ChannelID, backend: some ChannelBackend) throws(ChannelError) -> Channel {
        try backend.openUserSide(id)
    }
}
