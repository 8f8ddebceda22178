import Archangel
import ArchangelMetrics
import ArgumentParser
import Glibc
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// `archangel serve`: the userspace host daemon.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Host channels for other processes over a Unix socket (memfd shared memory, no kernel module).",
        discussion: """
            Clients attach with the library's `.userspace(socket:)` backend, or with `archangel send`/`recv`. \
            Only this user and root may attach unless --group names a group. SIGTERM or SIGINT stop the host \
            gracefully (swift-service-lifecycle): the metrics endpoint closes, the host closes its clients' \
            connections and removes its socket and lock file, and the process exits 0. A host killed outright \
            leaves a socket file that the next `serve` removes itself, and its clients keep their channels' memory: \
            when they attach to the next `serve`, it adopts that memory and the messages in the rings carry on \
            (docs/recovery.md). With --metrics-listen ADDR:PORT it \
            serves Prometheus' /metrics over HTTP (port 0: any free port; the URL is printed on standard \
            output). See docs/operations.md.
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
    @Option(name: .customLong("metrics-listen"),
            help: "Serve Prometheus metrics at http://ADDR:PORT/metrics (for example 127.0.0.1:9464).")
    var metricsListen: String?
    @Option(name: .customLong("metrics-interval"), help: "Seconds between two reads of the statistics for the metrics.")
    var metricsInterval = 1.0
    @Option(name: .customLong("handshake-timeout"),
            help: "Seconds a connection may stay without a request before the host hangs it up.")
    var handshakeTimeout = 5.0
    @Option(name: .customLong("max-connections"), help: "Most client connections at once; more are refused.")
    var maxConnections = 512

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
        guard channels >= 0, channels <= maxChannels else { throw ValidationError("--channels must be 0...--max-channels") }
        if let group, HostAccess.groupID(group) == nil { throw ValidationError("no group '\(group)'") }
        if let metricsListen, Self.hostAndPort(metricsListen) == nil {
            throw ValidationError("--metrics-listen takes ADDR:PORT (for example 127.0.0.1:9464 or [::1]:9464), not '\(metricsListen)'")
        }
        guard metricsInterval >= 0.05, metricsInterval <= 3600 else {
            throw ValidationError("--metrics-interval takes 0.05...3600 seconds")
        }
        guard handshakeTimeout >= 0.01, handshakeTimeout <= 3600 else {
            throw ValidationError("--handshake-timeout takes 0.01...3600 seconds")
        }
        guard maxConnections >= 1, maxConnections <= 65536 else { throw ValidationError("--max-connections takes 1...65536") }
    }

    /// `ADDR:PORT` or `[V6ADDR]:PORT`, the port 0...65535.
    static func hostAndPort(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel)!
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "archangel.serve")
        let manager = try CommManager(configuration: .init(maxChannels: maxChannels))
        for id in 0..<channels { try manager.createChannel(id: ChannelID(UInt32(id))) }
        let access = HostAccess(group: group.flatMap(HostAccess.groupID))
        let server = try HostServer(manager: manager,
                                    configuration: .init(socketPath: socketOption.socket, access: access,
                                                         allowKernelSide: true, adoptMemory: true,
                                                         handshakeTimeout: .nanoseconds(Int64(handshakeTimeout * 1e9)),
                                                         maxConnections: maxConnections))
        var services: [any Service] = [HostService(server: server)]
        if let metricsListen, let (host, port) = Self.hostAndPort(metricsListen) {
            let registry = PrometheusCollectorRegistry()
            let factory = PrometheusMetricsFactory(registry: registry)
            MetricsSystem.bootstrap(factory)
            let reporter = StatisticsMetricsReporter(manager: manager, factory: factory)
            try reporter.update()
            services.append(ReporterService(reporter: reporter, interval: metricsInterval))
            services.append(MetricsHTTPServer(host: host, port: port, registry: registry, logger: logger) { bound in
                let shown = host.contains(":") ? "[\(host)]" : host
                // Unbuffered, so a parent reading the pipe sees it at once.
                _ = writeAll(STDOUT_FILENO, "archangel serve: metrics at http://\(shown):\(bound)/metrics\n")
            })
        }
        let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) },
                                                      gracefulShutdownSignals: [.sigterm, .sigint],
                                                      logger: logger))
        try await group.run()
        logger.notice("stopped")
    }
}

/// The host as a service: it serves from its own threads until the graceful
/// shutdown, then stops (closing its clients and removing its socket).
struct HostService: Service {
    let server: HostServer

    func run() async throws {
        try? await gracefulShutdown()
        server.stop()
    }
}

/// Refreshes the metrics from the statistics every `interval` seconds until the graceful shutdown.
struct ReporterService: Service {
    let reporter: StatisticsMetricsReporter
    let interval: Double

    func run() async throws {
        try reporter.start(every: .nanoseconds(Int64(interval * 1e9)))
        try? await gracefulShutdown()
        reporter.stop()
    }
}
