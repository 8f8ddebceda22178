import ArchangelSystem
import Glibc

/// Who may talk to a host: its own user and root, and optionally the members of one group.
///
/// Checked against the credentials the kernel recorded at connect
/// (SO_PEERCRED), so a client cannot claim to be someone else.
public struct HostAccess: Sendable, Equatable {
    /// The host's effective user id.
    public let owner: UInt32
    /// A group whose members may attach too (the socket file is then 0660 and owned by it).
    public let group: UInt32?

    /// Only the host's user and root; with `group`, that group's members too.
    public init(group: UInt32? = nil) {
        owner = geteuid()
        self.group = group
    }

    /// The socket file's mode: 0600, or 0660 with a group.
    public var socketMode: mode_t { group == nil ? 0o600 : 0o660 }

    /// Whether a peer with these credentials may attach.
    public func allows(_ peer: UnixSocket.Credentials) -> Bool {
        if peer.uid == 0 || peer.uid == owner { return true }
        guard let group else { return false }
        if peer.gid == group { return true }
        return Self.members(of: group).contains(Self.userName(peer.uid) ?? "")
    }

    /// Looks a group up by name or number.
    public static func groupID(_ nameOrNumber: String) -> UInt32? {
        if let number = UInt32(nameOrNumber) { return number }
        return getgrnam(nameOrNumber).map { $0.pointee.gr_gid }
    }

    private static func members(of group: UInt32) -> [String] {
        guard let entry = getgrgid(group), var member = entry.pointee.gr_mem else { return [] }
        var names: [String] = []
        while let name = member.pointee {
            names.append(String(cString: name))
            member += 1
        }
        return names
    }

    private static func userName(_ uid: UInt32) -> String? {
        getpwuid(uid).map { String(cString: $0.pointee.pw_name) }
    }
}
