import Archangel
import ArgumentParser
import Glibc
import Logging

/// `archangel serve`: the userspace host daemon.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Host channels for other processes over a Unix socket (memfd shared memory, no kernel module).",
        discussion: """
            Clients attach with the library's `.userspace(socket:)` backend, or with `archangel send`/`recv`. \
            Only this user and root may attach unless --group names a group. SIGTERM or SIGINT stop the host; \
            a host killed outright leaves a socket file that the next `serve` removes itself.
            """
    )

    @OptionGroup var socketOption: SocketOption
    @Option(help: "Also admit members of this group (name or number); the socket becomes 0660.")
    var group: String?
    @Option(name: .customLong("max-channels"), help: "Most channels at once.")
    var maxChannels = 16
    @Option(help: "Create channels 0..<N at start (clients may also create them by attaching).")
    var channels = 1
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
        guard channels >= 0, channels <= maxChannels else { throw ValidationError("--channels must be 0...--max-channels") }
        if let group, HostAccess.groupID(group) == nil { throw ValidationError("no group '\(group)'") }
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel)!
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        // Block the stop signals before any thread starts, so that every thread
        // inherits the mask and only `sigwait` below takes them.
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGINT)
        sigaddset(&stopSignals, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &stopSignals, nil)

        let manager = try CommManager(configuration: .init(maxChannels: maxChannels))
        for id in 0..<channels { try manager.createChannel(id: ChannelID(UInt32(id))) }
        let access = HostAccess(group: group.flatMap(HostAccess.groupID))
        let server = try HostServer(manager: manager,
                                    configuration: .init(socketPath: socketOption.socket, access: access,
                                                         allowKernelSide: true))
        var received: Int32 = 0
        sigwait(&stopSignals, &received)
        Logger(label: "archangel.serve").notice("stopping on signal \(received)")
        server.stop()
    }
}
