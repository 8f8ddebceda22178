/// How a rules file is written: JSON, or YAML (a superset of JSON, read by Yams).
public enum RulesFormat: String, Sendable, CaseIterable {
    case json, yaml

    /// The format a file's name says: `.json` is JSON, `.yaml` and `.yml` are YAML; nil otherwise.
    public init?(path: String) {
        let lower = path.lowercased()
        if lower.hasSuffix(".json") {
            self = .json
        } else if lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") {
            self = .yaml
        } else {
            return nil
        }
    }
}
