import Archangel
import ArgumentParser
import CArchangel
import Glibc

extension MessageType: ExpressibleByArgument {
    /// Accepts the statistics names (`syscall_event`), with dashes too (`syscall-event`), or the number.
    public init?(argument: String) {
        let name = argument.replacingOccurrences(of: "-", with: "_")
        if let number = UInt8(argument), let type = MessageType(rawValue: number) {
            self = type
        } else if let type = MessageType.allCases.first(where: { $0.description == name }) {
            self = type
        } else {
            return nil
        }
    }

    public static var allValueStrings: [String] { allCases.map(\.description) }
}

extension MessagePriority: ExpressibleByArgument {
    /// Accepts `low`, `normal`, `high`, `critical` or the number.
    public init?(argument: String) {
        if let number = UInt8(argument), let priority = MessagePriority(rawValue: number) {
            self = priority
        } else if let priority = MessagePriority.allCases.first(where: { $0.description == argument }) {
            self = priority
        } else {
            return nil
        }
    }

    public static var allValueStrings: [String] { allCases.map(\.description) }
}

extension ChannelSide: ExpressibleByArgument {}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}

/// One line of JSON for a message.
func jsonLine(_ fields: [(String, String)]) -> String {
    "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
}

/// Standard base64 (RFC 4648, with padding) of `bytes`: the `payload` of `recv --json`.
func base64(_ bytes: UnsafeRawBufferPointer) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out = [UInt8]()
    out.reserveCapacity((bytes.count + 2) / 3 * 4)
    var index = 0
    while index + 3 <= bytes.count {
        let word = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
        for shift in [18, 12, 6, 0] { out.append(alphabet[Int(word >> UInt32(shift) & 63)]) }
        index += 3
    }
    let rest = bytes.count - index
    if rest > 0 {
        let word = UInt32(bytes[index]) << 16 | (rest == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
        out.append(alphabet[Int(word >> 18 & 63)])
        out.append(alphabet[Int(word >> 12 & 63)])
        out.append(rest == 2 ? alphabet[Int(word >> 6 & 63)] : UInt8(ascii: "="))
        out.append(UInt8(ascii: "="))
    }
    return String(decoding: out, as: UTF8.self)
}
