import Archangel
import ArgumentParser
import Glibc

/// `archangel stats`: the statistics of a host or of the kernel module.
struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Print per-channel statistics (the /proc/archangel/comm format, or Prometheus text)."
    )

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, prometheus }
    enum Source: String, ExpressibleByArgument, CaseIterable { case auto, userspace, kernel }

    @OptionGroup var socketOption: SocketOption
    @Option(help: "text or prometheus.")
    var format: Format = .text
    @Option(help: "auto (the kernel module's /proc/archangel/comm if loaded, else the host), userspace or kernel.")
    var source: Source = .auto

    static let procPath = "/proc/archangel/comm"

    func run() throws {
        let useKernel = source == .kernel || (source == .auto && access(Self.procPath, R_OK) == 0)
        let text = useKernel ? try Self.readProc() : try UserspaceBackend.statisticsText(socket: socketOption.socket)
        switch format {
        case .text: print(text, terminator: "")
        case .prometheus: print(try StatisticsReport(parsing: text).prometheusText, terminator: "")
        }
    }

    static func readProc() throws -> String {
        guard let file = fopen(procPath, "r") else {
            throw ValidationError("cannot read \(procPath) (errno \(errno)): is the archangel module loaded?")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count == 0 { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
