import ArgumentParser

/// The `archangel` command.
@main
struct ArchangelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "archangel",
        abstract: "Archangel: a lock-free kernel <-> userspace message bridge.",
        subcommands: [DemoCommand.self, ServeCommand.self, StatsCommand.self, TopCommand.self, EventsCommand.self, EngineCommand.self, SendCommand.self, RecvCommand.self,
                      BenchCommand.self, DemoRoleCommand.self, BenchPeerCommand.self,
                      BenchEfficiencyRoleCommand.self, KillCampaignCommand.self],
        defaultSubcommand: DemoCommand.self
    )
}
