import ArchangelBench
import ArgumentParser

/// `archangel bench-peer`: the peer process of `archangel bench --backend userspace`.
struct BenchPeerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-peer",
        abstract: "The peer process of `archangel bench --backend userspace` (started by it).",
        shouldDisplay: false
    )

    @OptionGroup var socketOption: SocketOption

    func run() throws { try BenchPeer.run(socket: socketOption.socket) }
}
