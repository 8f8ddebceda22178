// Helpers of the kill and edge tests: an `archangel serve` child process
// and what /proc says about it.
@testable import Archangel
import ArchangelSystem
import Glibc
import Logging

/// `archangel serve` as a child process, at a socket of its own.
final class ServeProcess {
    let socket: String
    let child: ChildProcess
    var pid: Int32 { child.pid }

    /// Starts `serve` and waits until it answers a statistics request.
    init(socket: String, arguments: [String] = []) throws {
        self.socket = socket
        child = try ChildProcess(executable: archangelExecutable,
                                 arguments: ["serve", "--socket", socket, "--log-level", "critical"] + arguments)
        for _ in 0..<1000 where (try? UserspaceBackend.statisticsText(socket: socket)) == nil { usleep(5_000) }
    }

    func kill() {
        child.signal(SIGKILL)
        _ = child.wait()
    }

    func stop() {
        child.signal(SIGTERM)
        if child.wait(timeout: .seconds(10)) == nil { kill() }
    }

    /// VmRSS in KiB.
    var residentKiB: Int { ProcFS.residentKiB(pid) }
    /// Open descriptors.
    var descriptorCount: Int { ProcFS.descriptorCount(pid) }
}

enum ProcFS {
    /// VmRSS of `pid` in KiB (0 when unreadable).
    static func residentKiB(_ pid: Int32) -> Int {
        let fd = open("/proc/\(pid)/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 8192)
        let count = read(fd, &bytes, bytes.count)
        guard count > 0 else { return 0 }
        let text = String(decoding: bytes[..<count], as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        }
        return 0
    }

    /// Entries of /proc/`pid`/fd.
    static func descriptorCount(_ pid: Int32) -> Int { entries("/proc/\(pid)/fd").count }

    /// Names in a directory, without . and ..
    static func entries(_ path: String) -> [String] {
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

/// An in-process host like `TestHost`, with the daemon's settings (kernel side and adoption allowed).
final class BrokerHost: Sendable {
    let manager: CommManager
    let server: HostServer
    let directory = TemporaryDirectory()
    var socket: String { server.configuration.socketPath }

    init(maxChannels: Int = 4, channel: ChannelConfiguration = .default,
         handshakeTimeout: Duration = .seconds(5), maxConnections: Int = 512) throws {
        manager = try CommManager(configuration: .init(maxChannels: maxChannels, channel: channel))
        var logger = Logger(label: "archangel.test.broker")
        logger.logLevel = .critical
        server = try HostServer(manager: manager,
                                configuration: .init(socketPath: directory.path + "/host.sock", allowKernelSide: true,
                                                     adoptMemory: true, handshakeTimeout: handshakeTimeout,
                                                     maxConnections: maxConnections),
                                logger: logger)
    }

    deinit {
        server.stop()
        directory.remove()
    }
}
