import ArchangelRules
import Testing

@Suite struct RulesFormatTests {
    @Test func formatFollowsTheFileName() {
        #expect(RulesFormat(path: "/etc/archangel/rules.json") == .json)
        #expect(RulesFormat(path: "rules.YAML") == .yaml)
        #expect(RulesFormat(path: "rules.yml") == .yaml)
        #expect(RulesFormat(path: "rules.txt") == nil)
    }
}
