// The kill campaign's driver, briefly: `scripts/kill-campaign` runs it at length.
import ArchangelSystem
import Testing

@Suite("Kill campaign", .serialized)
struct KillCampaignTests {
    @Test("a few SIGKILLs of the sender, the receiver and the host: nothing lost, nothing consumed twice, nothing leaked")
    func shortCampaign() throws {
        let campaign = try ChildProcess(executable: archangelExecutable,
                                        arguments: ["kill-campaign", "--runs", "5", "--seed", "12"])
        let output = campaign.readAllOutput()
        #expect(campaign.wait() == 0, "\(output)")
        #expect(output.contains("kill-campaign: passed"), "\(output)")
        #expect(output.contains("duplicates 0, committed but never delivered 0"), "\(output)")
    }
}
