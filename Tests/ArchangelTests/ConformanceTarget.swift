import Archangel
import ArchangelCore
import Glibc
import ArchangelSystem
import Synchronization

/// A backend under test: gives the conformance suite a fresh channel whose
/// user side is opened through the backend, plus the kernel-side peer that
/// the suite drives. The next backends (userspace host, kernel module) add a
/// target here and run the suite unchanged.
protocol ConformanceTarget: Sendable, CustomStringConvertible {
    /// Opens a fresh channel with `configuration`, both sides waiting and waking by `waitPolicy`.
    func open(configuration: ChannelConfiguration, waitPolicy: WaitPolicy) throws -> ConformanceChannel
}

extension ConformanceTarget {
    /// Opens a fresh channel with `configuration` and the default wait policy.
    func open(configuration: ChannelConfiguration) throws -> ConformanceChannel {
        try open(configuration: configuration, waitPolicy: .default)
    }
}

/// The kernel side as the suite drives it: a `Channel` for the in-process and
/// userspace backends; for the kernel module, the module's own send and
/// receive reached through test ioctls.
protocol ConformancePeer: Sendable {
    /// Sends one message, waiting up to `timeout` for room (nil: as long as it takes).
    func peerSend(_ type: MessageType, priority: MessagePriority, bytes: [UInt8], correlation: UInt64?,
                  timeout: Duration?) throws
    /// Sends one message if there is room now; false when full.
    func peerTrySend(_ type: MessageType, priority: MessagePriority, bytes: [UInt8]) throws -> Bool
    /// Receives one message, waiting up to `timeout`.
    func peerReceive(timeout: Duration?) throws -> Message
}

extension ConformancePeer {
    func send(_ type: MessageType, priority: MessagePriority = .normal, bytes: [UInt8],
              timeout: Duration? = nil) throws {
        try peerSend(type, priority: priority, bytes: bytes, correlation: nil, timeout: timeout)
    }

    func trySend(_ type: MessageType, priority: MessagePriority = .normal, bytes: [UInt8]) throws -> Bool {
        try peerTrySend(type, priority: priority, bytes: bytes)
    }

    func receive(timeout: Duration?) throws -> Message { try peerReceive(timeout: timeout) }

    /// Answers `request` with a response that names it.
    func respond(to request: Message, type: MessageType = .aiResponse, bytes: [UInt8]) throws {
        try peerSend(type, priority: request.priority, bytes: bytes, correlation: request.sequence, timeout: nil)
    }
}

extension Channel: ConformancePeer {
    func peerSend(_ type: MessageType, priority: MessagePriority, bytes: [UInt8], correlation: UInt64?,
                  timeout: Duration?) throws {
        try send(type, priority: priority, bytes: bytes, correlation: correlation, timeout: timeout)
    }

    func peerTrySend(_ type: MessageType, priority: MessagePriority, bytes: [UInt8]) throws -> Bool {
        try trySend(type, priority: priority, bytes: bytes)
    }

    func peerReceive(timeout: Duration?) throws -> Message { try receive(timeout: timeout) }
}

/// One channel under test.
struct ConformanceChannel: Sendable {
    /// The user side, opened through the backend.
    let user: Channel
    /// The kernel side the suite drives.
    let peer: any ConformancePeer
    /// Releases the channel.
    let close: @Sendable () -> Void
    /// The statistics as the backend reports them.
    let statistics: @Sendable () -> ChannelStatistics?
}

/// The in-process backend: both sides in this process.
struct InProcessTarget: ConformanceTarget {
    var description: String { "in-process" }

    func open(configuration: ChannelConfiguration, waitPolicy: WaitPolicy) throws -> ConformanceChannel {
        let manager = try CommManager(configuration: .init(maxChannels: 4, channel: configuration, waitPolicy: waitPolicy))
        let id = try manager.createChannel()
        let user = try Channel.open(id, backend: .inProcess(manager))
        return ConformanceChannel(user: user, peer: try manager.channel(id),
                                  close: { manager.destroyChannel(id) },
                                  statistics: { manager.statistics().channels.first })
    }
}

/// The userspace host: a `HostServer` in this process serves a manager, and
/// the user side is attached through its socket as another process would
/// (memfd and eventfds passed with SCM_RIGHTS, counters read by the host).
struct UserspaceTarget: ConformanceTarget {
    var description: String { "userspace" }

    func open(configuration: ChannelConfiguration, waitPolicy: WaitPolicy) throws -> ConformanceChannel {
        let manager = try CommManager(configuration: .init(maxChannels: 4, channel: configuration, waitPolicy: waitPolicy))
        let directory = TemporaryDirectory()
        let server = try HostServer(manager: manager, configuration: .init(socketPath: directory.path + "/host.sock"))
        let id = try manager.createChannel()
        let user = try Channel.open(id, backend: UserspaceBackend(socketPath: server.configuration.socketPath,
                                                                  waitPolicy: waitPolicy))
        return ConformanceChannel(user: user, peer: try manager.channel(id),
                                  close: {
                                      user.close()
                                      server.stop()
                                      manager.destroyChannel(id)
                                      directory.remove()
                                  },
                                  statistics: {
                                      // The host's report, as `archangel stats` reads it.
                                      let text = try? UserspaceBackend.statisticsText(socket: server.configuration.socketPath)
                                      return text.flatMap { try? StatisticsReport(parsing: $0) }?.channels.first
                                  })
    }
}

/// A private directory under /tmp for sockets, removed by `remove()`.
struct TemporaryDirectory: Sendable {
    let path: String

    init() {
        var template = Array("/tmp/archangel-test-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    func remove() {
        if let entries = try? listEntries() {
            for entry in entries { unlink(path + "/" + entry) }
        }
        rmdir(path)
    }

    private func listEntries() throws -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

/// Every backend the suite runs against.
enum Backends {
    static let all: [any ConformanceTarget] = KernelTarget.including([InProcessTarget(), UserspaceTarget()])
}

/// Small geometry so that full rings and empty pools are cheap to reach.
extension ChannelConfiguration {
    static let small = ChannelConfiguration(normalRingBytes: 4096, expressRingBytes: 4096, poolBufferSize: 1024,
                                            poolBufferCount: 8, poolThreshold: 512, maxSegments: 8)
}

/// A payload whose bytes depend on a seed, to catch mix-ups.
func pattern(_ count: Int, seed: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ seed &* 13) }
}

/// Runs a peer's part of a test on its own thread: blocking calls must not
/// sit on Swift's cooperative pool (two threads on a 2-core machine), or
/// they starve the tasks the test awaits.
final class PeerThread: Sendable {
    private let thread: SystemThread
    private let failure: FailureBox

    final class FailureBox: Sendable {
        let error = Mutex<(any Error)?>(nil)
    }

    init(_ body: @escaping @Sendable () throws -> Void) throws {
        let failure = FailureBox()
        self.failure = failure
        thread = try SystemThread(name: "test-peer") {
            do { try body() } catch { failure.error.withLock { $0 = error } }
        }
    }

    /// Waits for the thread and rethrows what it threw.
    func join() throws {
        thread.join()
        if let error = failure.error.withLock({ $0 }) { throw error }
    }
}
