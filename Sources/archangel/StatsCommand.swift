import Archangel
import ArgumentParser
import Glibc

/// `archangel stats`: the statistics of a host or of the kernel module.
struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Print per-channel statistics (the /proc/archangel/comm format, or Prometheus text).",
        discussion: """
            --backend auto reads the kernel module's /proc/archangel/comm when /dev/archangel opens, the \
            userspace host when --socket is given or the device does not open; and /proc/archangel/comm \
            again if no host answers but the module is loaded (reading it needs no root). The backend \
            chosen is printed on standard error. --source is the older name of --backend.
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, prometheus }

    @OptionGroup var socketOption: SocketOption
    @Option(help: "text or prometheus.")
    var format: Format = .text
    @Option(name: [.customLong("backend"), .customLong("source")],
            help: "userspace (the host's counters), kernel (/proc/archangel/comm) or auto.")
    var backend: CLIBackendChoice = .auto

    func run() throws {
        let resolved = ResolvedBackend.resolve(backend, socket: socketOption, statisticsOnly: true)
        resolved.announce("stats")
        try reportingOperatorErrors("stats", backend: resolved) {
            switch format {
            case .text:
                let text = try resolved.statisticsText()
                print(text, terminator: text.hasSuffix("\n") ? "" : "\n")
            case .prometheus:
                print(try resolved.statisticsReport().prometheusText, terminator: "")
            }
        }
    }
}
