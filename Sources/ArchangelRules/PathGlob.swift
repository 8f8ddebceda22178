/// A shell-style pattern for executable paths.
///
/// `*` matches any run of characters but `/`, `**` any run including `/`,
/// `?` one character but `/`, `[abc]`, `[a-z]` and `[!a-z]` one character of
/// (or not of) a set, `\x` the character x. A pattern without a `/` matches
/// the path's last component, so `sh` matches `/bin/sh` (as .gitignore
/// does); a pattern with one matches the whole path. Matching is on bytes,
/// so non-UTF-8 names match too.
public struct PathGlob: Sendable, Equatable, CustomStringConvertible {
    enum Token: Sendable, Equatable {
        case byte(UInt8)
        case any        // ?
        case star       // *
        case globstar   // **
        case set([ClosedRange<UInt8>], negated: Bool)
    }

    /// The pattern as written.
    public let description: String
    let tokens: [Token]
    let basenameOnly: Bool
    /// How many leading tokens are literal bytes.
    let literalPrefix: Int

    /// Compiles `pattern`.
    /// - Throws: `PathGlob.Invalid` for an empty pattern, an unclosed `[`, or a trailing `\`.
    public init(_ pattern: String) throws(Invalid) {
        let bytes = Array(pattern.utf8)
        guard !bytes.isEmpty else { throw Invalid(pattern: pattern, reason: "empty pattern") }
        var tokens: [Token] = []
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            switch c {
            case UInt8(ascii: "*"):
                if i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "*") {
                    tokens.append(.globstar)
                    i += 2
                    while i < bytes.count && bytes[i] == UInt8(ascii: "*") { i += 1 }
                    continue
                }
                tokens.append(.star)
            case UInt8(ascii: "?"):
                tokens.append(.any)
            case UInt8(ascii: "\\"):
                guard i + 1 < bytes.count else { throw Invalid(pattern: pattern, reason: "a trailing \\ escapes nothing") }
                i += 1
                tokens.append(.byte(bytes[i]))
            case UInt8(ascii: "["):
                var j = i + 1
                var negated = false
                if j < bytes.count && (bytes[j] == UInt8(ascii: "!") || bytes[j] == UInt8(ascii: "^")) {
                    negated = true
                    j += 1
                }
                var ranges: [ClosedRange<UInt8>] = []
                var first = true
                while j < bytes.count && (first || bytes[j] != UInt8(ascii: "]")) {
                    first = false
                    let low = bytes[j]
                    if j + 2 < bytes.count && bytes[j + 1] == UInt8(ascii: "-") && bytes[j + 2] != UInt8(ascii: "]") {
                        let high = bytes[j + 2]
                        guard low <= high else {
                            throw Invalid(pattern: pattern, reason: "the range \(Character(Unicode.Scalar(low)))-\(Character(Unicode.Scalar(high))) is reversed")
                        }
                        ranges.append(low...high)
                        j += 3
                    } else {
                        ranges.append(low...low)
                        j += 1
                    }
                }
                guard j < bytes.count else { throw Invalid(pattern: pattern, reason: "a [ is not closed") }
                tokens.append(.set(ranges, negated: negated))
                i = j
            default:
                tokens.append(.byte(c))
            }
            i += 1
        }
        self.description = pattern
        self.tokens = tokens
        self.literalPrefix = tokens.firstIndex { if case .byte = $0 { false } else { true } } ?? tokens.count
        self.basenameOnly = !bytes.contains(UInt8(ascii: "/"))
    }

    /// Why a pattern does not compile.
    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public var pattern: String
        public var reason: String
        public var description: String { "the pattern '\(pattern)' is invalid: \(reason)" }
    }

    /// True when `path` matches (its last component only, for a pattern without `/`).
    public func matches(_ path: String) -> Bool {
        var path = path
        return path.withUTF8 { all -> Bool in
            var text = all
            if basenameOnly, let slash = all.lastIndex(of: UInt8(ascii: "/")) {
                text = UnsafeBufferPointer(rebasing: all[(slash + 1)...])
            }
            return Self.match(tokens, prefix: literalPrefix, text)
        }
    }

    /// Dynamic programming over (token, byte): O(tokens x bytes), no
    /// backtracking blow-up; two rows, allocated once per call. The
    /// pattern's literal prefix is compared first, which decides most
    /// non-matching paths of a rules file without the table.
    static func match(_ tokens: [Token], prefix: Int, _ text: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = text.count
        guard prefix <= n else { return false }
        for i in 0..<prefix {
            guard case let .byte(b) = tokens[i], b == text[i] else { return false }
        }
        if prefix == tokens.count { return prefix == n }
        var reach = [Bool](repeating: false, count: n + 1)
        var next = [Bool](repeating: false, count: n + 1)
        // reach[j]: the tokens so far can consume exactly text[0..<j].
        reach[prefix] = true
        for token in tokens[prefix...] {
            var any = false
            switch token {
            case .star, .globstar:
                var open = false
                for j in 0...n {
                    if reach[j] { open = true }
                    next[j] = open
                    any = any || open
                    // `*` cannot cross a `/`: text[j] == '/' closes the run after j.
                    if open && token == .star && j < n && text[j] == UInt8(ascii: "/") { open = false }
                }
            default:
                next[0] = false
                for j in 0..<n {
                    let hit = reach[j] && Self.accepts(token, text[j])
                    next[j + 1] = hit
                    any = any || hit
                }
            }
            swap(&reach, &next)
            if !any { return false }
        }
        return reach[n]
    }

    static func accepts(_ token: Token, _ byte: UInt8) -> Bool {
        switch token {
        case let .byte(b): return b == byte
        case .any: return byte != UInt8(ascii: "/")
        case let .set(ranges, negated):
            let inside = ranges.contains { $0.contains(byte) }
            return byte != UInt8(ascii: "/") && inside != negated
        case .star, .globstar: return false
        }
    }
}
