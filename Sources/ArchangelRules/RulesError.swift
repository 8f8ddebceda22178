/// Why a rules file was refused: where, and what to write instead.
public struct RulesError: Error, Equatable, CustomStringConvertible {
    /// The file, when the text came from one.
    public var file: String?
    /// 1-based line and column, when known.
    public var line: Int?, column: Int?
    /// The field, e.g. `exec[2].verdict`; empty for the whole document.
    public var field: String
    /// What is wrong and what is expected.
    public var message: String

    /// Creates an error.
    public init(file: String? = nil, line: Int? = nil, column: Int? = nil, field: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.message = message
    }

    public var description: String {
        var place = file ?? "rules"
        if let line { place += ":\(line)" + (column.map { ":\($0)" } ?? "") }
        return field.isEmpty ? "\(place): \(message)" : "\(place): \(field): \(message)"
    }
}
