import Yams

/// A node of a rules document with its place, for errors that say where:
/// the walk over Yams' tree that `RuleSet.parse` does.
struct RulesNode {
    let node: Node
    let field: String
    let file: String?

    func error(_ message: String) -> RulesError {
        RulesError(file: file, line: node.mark?.line, column: node.mark?.column, field: field, message: message)
    }

    /// A mapping's values by key; any other key is an error (a typo must not turn a rule off silently).
    func mapping(allowed: [String]) throws(RulesError) -> [String: RulesNode] {
        guard let mapping = node.mapping else { throw error("expected a mapping (key: value)") }
        var out: [String: RulesNode] = [:]
        for (key, value) in mapping {
            guard let name = key.string, key.scalar != nil else { throw error("a key must be a string") }
            let child = RulesNode(node: value, field: field.isEmpty ? name : "\(field).\(name)", file: file)
            guard allowed.contains(name) else {
                throw RulesNode(node: key, field: child.field, file: file)
                    .error("unknown key; expected one of \(allowed.joined(separator: ", "))")
            }
            guard out[name] == nil else { throw child.error("given twice") }
            out[name] = child
        }
        return out
    }

    /// A sequence's items, or this node alone when it is a scalar (so `path: /bin/sh` and `path: [/bin/sh]` are one).
    func list() throws(RulesError) -> [RulesNode] {
        if let sequence = node.sequence {
            return sequence.enumerated().map { RulesNode(node: $1, field: "\(field)[\($0)]", file: file) }
        }
        guard node.scalar != nil else { throw error("expected a value or a list of values") }
        return [self]
    }

    func items() throws(RulesError) -> [RulesNode] {
        guard let sequence = node.sequence else { throw error("expected a list") }
        return sequence.enumerated().map { RulesNode(node: $1, field: "\(field)[\($0)]", file: file) }
    }

    func string() throws(RulesError) -> String {
        guard let scalar = node.scalar else { throw error("expected a string") }
        return scalar.string
    }

    func integer(in range: ClosedRange<Int>) throws(RulesError) -> Int {
        guard node.scalar != nil, let value = node.int else { throw error("expected an integer") }
        guard range.contains(value) else { throw error("\(value) is outside \(range.lowerBound)...\(range.upperBound)") }
        return value
    }

    func bool() throws(RulesError) -> Bool {
        guard node.scalar != nil, let value = node.bool else { throw error("expected true or false") }
        return value
    }

    func oneOf(_ choices: [String]) throws(RulesError) -> String {
        let value = try string()
        guard choices.contains(value) else {
            throw error("'\(value)' is not one of \(choices.joined(separator: ", "))")
        }
        return value
    }
}
