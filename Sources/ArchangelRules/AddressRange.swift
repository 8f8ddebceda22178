import Glibc

/// An IPv4 or IPv6 network in CIDR form (`10.0.0.0/8`, `fd00::/8`), or one
/// address (`127.0.0.1`, a /32 or /128).
public struct AddressRange: Sendable, Equatable, CustomStringConvertible {
    /// 4 or 6.
    public let family: UInt8
    /// The network's address, network byte order (4 or 16 bytes); bits past the prefix are zero.
    public let network: [UInt8]
    /// Bits of the prefix (0...32 or 0...128).
    public let prefixLength: Int

    /// Parses `text`.
    /// - Throws: `AddressRange.Invalid` naming what does not parse.
    public init(_ text: String) throws(Invalid) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let addressText = parts.first, !addressText.isEmpty else {
            throw Invalid(text: text, reason: "expected ADDRESS or ADDRESS/PREFIX")
        }
        var bytes = [UInt8](repeating: 0, count: 16)
        let family: UInt8
        let width: Int
        if bytes.withUnsafeMutableBytes({ inet_pton(AF_INET, String(addressText), $0.baseAddress) }) == 1 {
            family = 4
            width = 4
        } else if bytes.withUnsafeMutableBytes({ inet_pton(AF_INET6, String(addressText), $0.baseAddress) }) == 1 {
            family = 6
            width = 16
        } else {
            throw Invalid(text: text, reason: "'\(addressText)' is neither an IPv4 nor an IPv6 address")
        }
        var prefix = width * 8
        if parts.count == 2 {
            guard let p = Int(parts[1]), p >= 0, p <= width * 8 else {
                throw Invalid(text: text, reason: "the prefix must be 0...\(width * 8)")
            }
            prefix = p
        }
        var network = Array(bytes[0..<width])
        for bit in prefix..<(width * 8) { network[bit / 8] &= ~(UInt8(0x80) >> UInt8(bit % 8)) }
        self.family = family
        self.network = network
        self.prefixLength = prefix
    }

    /// Why a range does not parse.
    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public var text: String
        public var reason: String
        public var description: String { "'\(text)' is not an address range: \(reason)" }
    }

    /// True when `address` (4 or 16 bytes, network order) lies in the range.
    public func contains(_ address: [UInt8]) -> Bool {
        guard address.count == network.count else { return false }
        var bits = prefixLength
        var i = 0
        while bits >= 8 {
            if address[i] != network[i] { return false }
            bits -= 8
            i += 1
        }
        if bits > 0 {
            let mask = UInt8(0xff) << UInt8(8 - bits)
            if address[i] & mask != network[i] { return false }
        }
        return true
    }

    public var description: String {
        var buffer = [CChar](repeating: 0, count: 64)
        let af = family == 4 ? AF_INET : AF_INET6
        _ = network.withUnsafeBytes { inet_ntop(af, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
        let text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return "\(text)/\(prefixLength)"
    }
}
