// Real processes: the `archangel` executable built beside this test bundle,
// spawned, attached to a host running in this process, and killed.
@testable import Archangel
import CArchangel
import ArchangelCore
import ArchangelSystem
import Glibc
import Logging
import Synchronization
import Testing

/// The `archangel` executable SwiftPM built next to the test bundle.
let archangelExecutable: String = {
    let bundle = ChildProcess.currentExecutable
    return String(bundle[..<(bundle.lastIndex(of: "/") ?? bundle.startIndex)]) + "/archangel"
}()

/// A host serving one manager from a fresh private directory.
final class TestHost: Sendable {
    let manager: CommManager
    let server: HostServer
    let directory = TemporaryDirectory()
    var socket: String { server.configuration.socketPath }

    init(maxChannels: Int = 4, channel: ChannelConfiguration = .default, allowKernelSide: Bool = true) throws {
        manager = try CommManager(configuration: .init(maxChannels: maxChannels, channel: channel))
        var logger = Logger(label: "archangel.test.host")
        logger.logLevel = .error
        server = try HostServer(manager: manager,
                                configuration: .init(socketPath: directory.path + "/host.sock",
                                                     allowKernelSide: allowKernelSide),
                                logger: logger)
    }

    deinit {
        server.stop()
        directory.remove()
    }
}

/// Collects a child's output lines on a thread of its own, so the child never blocks on a full pipe.
final class OutputCollector: Sendable {
    private let lines = PthreadLock<[String]>([])
    private let thread: SystemThread

    init(_ child: ChildProcess) throws {
        let lines = self.lines
        thread = try SystemThread(name: "test-output") {
            while let line = child.readLine() { lines.withLock { $0.append(line) } }
        }
    }

    /// Lines read so far.
    var count: Int { lines.withLock { $0.count } }

    /// Every line, once the child's output has closed.
    func finish() -> [String] {
        thread.join()
        return lines.withLock { $0 }
    }
}

@Suite("Multi-process", .serialized)
struct MultiProcessTests {
    @Test("a sensor process and an AI-engine process exchange messages through the host")
    func sendAndReceiveProcesses() throws {
        let host = try TestHost()
        try host.manager.createChannel(id: 0)
        let receiver = try ChildProcess(executable: archangelExecutable, arguments: [
            "recv", "--socket", host.socket, "--channel", "0", "--count", "300", "--json", "--timeout", "20"])
        let output = try OutputCollector(receiver)
        let sender = try ChildProcess(executable: archangelExecutable, arguments: [
            "send", "--socket", host.socket, "--channel", "0", "--count", "300", "--size", "1500",
            "--type", "memory-event", "--priority", "critical"])
        #expect(sender.wait() == 0)
        #expect(receiver.wait() == 0)
        let lines = output.finish()
        #expect(lines.count == 300)
        for (i, line) in lines.enumerated() {
            // Through the pool, or copied inline when the receiver had every buffer.
            #expect(line.contains("\"sequence\": \(i + 1),") && line.contains("\"type\": \"memory_event\"")
                && line.contains("\"priority\": \"critical\"") && line.contains("\"size\": 1500,")
                && (line.contains("\"pool\": true") || line.contains("\"copied\": true")), "\(line)")
        }
        let stats = try #require(host.manager.statistics().channels.first)
        #expect(stats.toUser.messagesSent == 300 && stats.toUser.messagesReceived == 300)
        #expect(stats.toUser.poolTransfers + stats.toUser.copyFallbacks == 300 && stats.toUser.poolInUse == 0)
    }

    @Test("a client killed at random moments a hundred times loses nothing and gets nothing consumed twice")
    func killedClientsResumeExactly() throws {
        let kills = Int(ProcessInfoLite.environment("ARCHANGEL_KILL_ROUNDS") ?? "") ?? 100
        let host = try TestHost(channel: .small)
        let id = try host.manager.createChannel(id: 0)
        let kernel = try host.manager.channel(id)
        // The host streams numbered messages, every third one through the pool.
        let stop = Atomic<Bool>(false)
        let sentCount = Atomic<UInt64>(0)
        let streamer = try PeerThread {
            var payload = [UInt8](repeating: 0x5A, count: 700)
            var counter: UInt64 = 0
            while !stop.load(ordering: .acquiring) {
                let size = counter % 3 == 2 ? 700 : 16
                payload.withUnsafeMutableBytes { $0.storeBytes(of: counter.littleEndian, as: UInt64.self) }
                do {
                    try payload.withUnsafeBytes { raw in
                        try kernel.send(.syscallEvent, bytes: UnsafeRawBufferPointer(rebasing: raw[0..<size]),
                                        timeout: .milliseconds(20))
                    }
                } catch ChannelError.timedOut {
                    continue
                }
                counter += 1
                sentCount.store(counter, ordering: .releasing)
            }
            try kernel.send(.control, bytes: [0], timeout: .seconds(30))
        }
        // The host also collects what the clients send back: per process, numbers from 0, contiguous.
        let answers = Mutex<[UInt32: [UInt64]]>([:])
        let collecting = Atomic<Bool>(true)
        let collector = try PeerThread {
            while collecting.load(ordering: .acquiring) {
                let got: (UInt32, UInt64)?
                do {
                    got = try kernel.receive(timeout: .milliseconds(50)) { view -> (UInt32, UInt64) in
                        var head = [UInt8](repeating: 0, count: 12)
                        _ = head.withUnsafeMutableBytes { view.copyBytes(to: $0) }
                        return head.withUnsafeBytes {
                            (UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)),
                             UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt64.self)))
                        }
                    }
                } catch ChannelError.timedOut { got = nil }
                if let (pid, number) = got { answers.withLock { $0[pid, default: []].append(number) } }
            }
        }
        var generator = SplitMix(seed: 0xA7C4_A9E1)
        var logs: [[UInt64]] = []
        func follower() throws -> (ChildProcess, OutputCollector) {
            let child = try ChildProcess(executable: archangelExecutable, arguments: [
                "demo-role", "follower", "--socket", host.socket, "--channel", "0"])
            return (child, try OutputCollector(child))
        }
        func parse(_ lines: [String]) -> [UInt64] {
            lines.compactMap { $0.hasPrefix("R ") ? UInt64($0.dropFirst(2)) : nil }
        }
        for round in 0..<kills {
            let (child, output) = try follower()
            // Random kill points: every other round from the spawn (often before
            // the attach), the others once the stream flows (a slow start, as
            // under ThreadSanitizer, would otherwise leave no kill mid-stream).
            if round % 2 == 1 {
                for _ in 0..<1000 where output.count == 0 { usleep(2_000) }
                usleep(UInt32(generator.next() % 10_000))
            } else {
                usleep(UInt32(generator.next() % 40_000))
            }
            child.signal(SIGKILL)
            #expect(child.wait() == 128 + SIGKILL)
            logs.append(parse(output.finish()))
        }
        stop.store(true, ordering: .releasing)
        let (last, lastOutput) = try follower()
        // A lost wake-up or a leaked buffer would leave it waiting forever: give it a minute.
        let lastStatus = last.wait(timeout: .seconds(60))
        if lastStatus == nil { last.signal(SIGKILL) }
        #expect(lastStatus == 0, "the last follower drains the stream and stops at its end")
        logs.append(parse(lastOutput.finish()))
        try streamer.join()
        collecting.store(false, ordering: .releasing)
        try collector.join()

        // to_user: concatenated in order, each process starts where the previous
        // one's consumption ended. A process's last line may name a message it
        // was still handling when killed (not consumed): the next one gets it again.
        let total = sentCount.load(ordering: .acquiring)
        var expected: UInt64 = 0
        var redelivered = 0
        for log in logs where !log.isEmpty {
            var log = log[...]
            if log.first == expected &- 1, expected > 0 {
                redelivered += 1   // the previous process's in-flight message, delivered again
                log = log.dropFirst()
            }
            for value in log {
                #expect(value == expected, "expected message \(expected), got \(value): lost or repeated")
                if value != expected { return }
                expected += 1
            }
        }
        #expect(expected == total, "every one of the \(total) messages sent was delivered")
        // Redelivery is possible only for a message whose receive closure was
        // cut short; it must be rare next to the kills.
        #expect(redelivered <= kills)
        // to_kernel: each process's answers arrive once each, in order, from 0.
        let byProcess = answers.withLock { $0 }
        for (pid, numbers) in byProcess {
            #expect(numbers == Array(0..<UInt64(numbers.count)), "answers of process \(pid)")
        }
        let stats = try #require(host.manager.statistics().channels.first)
        #expect(stats.health == .active && stats.toUser.errors == 0 && stats.toKernel.errors == 0)
        #expect(stats.toUser.poolInUse == 0, "the killed clients' loans all came back")
        print("kill test: \(kills) kills, \(total) messages, \(redelivered) in-flight redeliveries, "
            + "\(byProcess.count) processes answered")
    }

    @Test("across processes, the receiver's clock minus a header timestamp is never negative")
    func timestampsNeverAheadAcrossProcesses() throws {
        // 1,000,000 messages as the issue asks; fewer under ThreadSanitizer,
        // whose stage caps the stress count (ARCHANGEL_STRESS_MESSAGES).
        let count = min(1_000_000, ProcessInfoLite.environment("ARCHANGEL_STRESS_MESSAGES").flatMap(Int.init) ?? .max)
        let host = try TestHost()
        try host.manager.createChannel(id: 0)
        let user = try Channel.open(0, backend: .userspace(socket: host.socket))
        let sender = try ChildProcess(executable: archangelExecutable, arguments: [
            "send", "--socket", host.socket, "--channel", "0", "--count", "\(count)", "--size", "8", "--timeout", "60"])
        var received = 0, negative = 0, lastSequence: UInt64 = 0, worst: Int64 = 0
        while received < count {
            received += try user.receiveBatch(limit: 256, timeout: .seconds(60)) { view in
                // Read after the message is here: a stamp ahead of this clock would show as negative.
                let age = Int64(bitPattern: archangel_monotonic_ns() &- view.timestamp)
                if age < 0 { negative += 1; worst = min(worst, age) }
                if view.sequence != lastSequence + 1 { negative += 1_000_000 }
                lastSequence = view.sequence
            }
        }
        #expect(sender.wait() == 0)
        #expect(received == count)
        #expect(negative == 0, "\(negative) messages stamped ahead of the receiver's clock (worst \(worst) ns) or out of order")
    }

    @Test("a host killed with SIGKILL wakes its clients with peerDisconnected, and a new host cleans up after it")
    func killedHost() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let socket = directory.path + "/host.sock"
        func serve() throws -> ChildProcess {
            let host = try ChildProcess(executable: archangelExecutable,
                                        arguments: ["serve", "--socket", socket, "--log-level", "error"])
            // Ready once it answers (a stale socket file may exist before it binds its own).
            for _ in 0..<1000 where (try? UserspaceBackend.statisticsText(socket: socket)) == nil { usleep(10_000) }
            return host
        }
        let first = try serve()
        let user = try Channel.open(0, backend: .userspace(socket: socket))
        let outcome = Mutex<ChannelError?>(nil)
        let waiter = try PeerThread {
            do { _ = try user.receive(timeout: .seconds(60)) } catch { outcome.withLock { $0 = error as? ChannelError } }
        }
        usleep(50_000)
        first.signal(SIGKILL)
        _ = first.wait()
        try waiter.join()
        #expect(outcome.withLock { $0 } == .peerDisconnected)
        #expect(throws: ChannelError.peerDisconnected) { try user.send(.control, bytes: [1]) }
        #expect(access(socket, F_OK) == 0, "the killed host left its socket file")
        let second = try serve()
        defer { second.signal(SIGTERM); _ = second.wait() }
        let again = try Channel.open(0, backend: .userspace(socket: socket))
        #expect(again.isOpen)
        #expect(try UserspaceBackend.statisticsText(socket: socket).hasPrefix("archangel-comm 1\n"))
    }
}

/// `getenv` as a String.
enum ProcessInfoLite {
    static func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
}
