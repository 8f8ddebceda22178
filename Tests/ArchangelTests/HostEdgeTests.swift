// Resource limits and bad input at the host's edges, against a real
// `archangel serve` process whose memory and descriptors are read from
// /proc/<pid>: each test checks that they are flat at the end.
@testable import Archangel
import ArchangelCore
import ArchangelSystem
import CArchangel
import Glibc
import Testing

@Suite("Host edges", .serialized)
struct HostEdgeTests {
    /// RSS may move this much (KiB) between the warmed-up start and the end.
    static let rssTolerance = 4096

    /// The host's descriptor count once it stops moving (a hang-up in progress is not a leak).
    static func settledDescriptors(_ host: ServeProcess, expecting: Int? = nil) -> Int {
        var count = host.descriptorCount
        for _ in 0..<200 {
            usleep(10_000)
            let again = host.descriptorCount
            if let expecting, again == expecting { return again }
            if expecting == nil, again == count { return again }
            count = again
        }
        return count
    }

    static func report(_ name: String, _ host: ServeProcess, fds: (Int, Int), rss: (Int, Int)) {
        print("host edges, \(name): host fds \(fds.0) -> \(fds.1), VmRSS \(rss.0) -> \(rss.1) KiB")
    }

    /// Sends `bytes` (with `descriptors`) on a fresh connection; returns the reply's status, or nil if none came.
    static func raw(_ bytes: [UInt8], descriptors: [Int32] = [], socket: String) throws -> Int32? {
        let connection = try UnixSocket.connect(to: socket)
        try bytes.withUnsafeBytes { try connection.send($0, descriptors: descriptors) }
        guard try connection.waitReadable(timeout: .seconds(5)) else { return nil }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { buffer.deallocate() }
        let (count, fds) = try connection.receive(into: buffer)
        fds.forEach { close($0) }
        guard count >= MemoryLayout<archangel_host_reply>.size else { return nil }
        return UnsafeRawBufferPointer(buffer).loadUnaligned(as: archangel_host_reply.self).status
    }

    /// One message each way on `channel` between two attached sides, to show the host still serves.
    static func exchange(_ kernel: Channel, _ user: Channel, _ n: Int) throws {
        try kernel.send(.syscallEvent, bytes: pattern(40, seed: n), timeout: .seconds(5))
        #expect(try user.receive(timeout: .seconds(5)).bytes == pattern(40, seed: n))
        try user.send(.aiResponse, bytes: pattern(1500, seed: n), timeout: .seconds(5))
        #expect(try kernel.receive(timeout: .seconds(5)).bytes == pattern(1500, seed: n))
    }

    @Test("a client that creates channels until the limit gets tooManyChannels; the host's memory and descriptors stay flat")
    func channelLimit() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let host = try ServeProcess(socket: directory.path + "/host.sock", arguments: ["--max-channels", "4", "--channels", "0"])
        defer { host.stop() }
        let backend = UserspaceBackend(socketPath: host.socket)
        let fdsBefore = Self.settledDescriptors(host)
        var opened: [Channel] = []
        var refusal: ChannelError?
        while refusal == nil && opened.count < 10 {
            do { opened.append(try backend.attach(nil, side: .user)) } catch { refusal = error }
        }
        #expect(opened.count == 4)
        #expect(refusal == .tooManyChannels(limit: 4))
        // Warmed up: now a thousand more refusals cost nothing.
        for _ in 0..<50 { _ = try? backend.attach(nil, side: .user) }
        let rssWarm = host.residentKiB, fdsFull = Self.settledDescriptors(host)
        for _ in 0..<1000 {
            #expect(throws: ChannelError.tooManyChannels(limit: 4)) { _ = try backend.attach(nil, side: .user) }
        }
        let rssAfter = host.residentKiB
        #expect(Self.settledDescriptors(host, expecting: fdsFull) == fdsFull)
        #expect(abs(rssAfter - rssWarm) <= Self.rssTolerance, "VmRSS \(rssWarm) -> \(rssAfter) KiB")
        // Closing and destroying the channels gives every descriptor back.
        for channel in opened {
            channel.close()
            try UserspaceBackend.destroyChannel(channel.id, socket: host.socket)
        }
        let fdsAfter = Self.settledDescriptors(host, expecting: fdsBefore)
        #expect(fdsAfter == fdsBefore)
        Self.report("channel limit", host, fds: (fdsBefore, fdsAfter), rss: (rssWarm, rssAfter))
    }

    @Test("clients that connect and never speak are hung up after the handshake timeout, and block nobody meanwhile")
    func silentClients() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let host = try ServeProcess(socket: directory.path + "/host.sock", arguments: ["--handshake-timeout", "1"])
        defer { host.stop() }
        let kernel = try UserspaceBackend(socketPath: host.socket).openKernelSide(0)
        let user = try UserspaceBackend(socketPath: host.socket).openUserSide(0)
        try Self.exchange(kernel, user, 0)
        let fdsBefore = Self.settledDescriptors(host), rssBefore = host.residentKiB
        var silent: [UnixSocket] = []
        for _ in 0..<200 { silent.append(try UnixSocket.connect(to: host.socket)) }
        // While they sit there, the attached clients are served, and statistics answered.
        for n in 1...20 { try Self.exchange(kernel, user, n) }
        #expect(try UserspaceBackend.statisticsText(socket: host.socket).hasPrefix("archangel-comm"))
        // After the timeout every silent connection is hung up.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { buffer.deallocate() }
        var hungUp = 0
        for connection in silent where try connection.waitReadable(timeout: .seconds(30)) {
            if try connection.receive(into: buffer).0 == 0 { hungUp += 1 }
        }
        #expect(hungUp == silent.count)
        silent.removeAll()
        try Self.exchange(kernel, user, 99)
        let fdsAfter = Self.settledDescriptors(host, expecting: fdsBefore), rssAfter = host.residentKiB
        #expect(fdsAfter == fdsBefore)
        #expect(abs(rssAfter - rssBefore) <= Self.rssTolerance, "VmRSS \(rssBefore) -> \(rssAfter) KiB")
        Self.report("silent clients", host, fds: (fdsBefore, fdsAfter), rss: (rssBefore, rssAfter))
    }

    @Test("past the connection limit a client is refused at once with EMFILE and a reason; the attached ones are served")
    func connectionLimit() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let host = try ServeProcess(socket: directory.path + "/host.sock",
                                    arguments: ["--handshake-timeout", "120", "--max-connections", "20"])
        defer { host.stop() }
        let kernel = try UserspaceBackend(socketPath: host.socket).openKernelSide(0)
        let user = try UserspaceBackend(socketPath: host.socket).openUserSide(0)
        let fdsBefore = Self.settledDescriptors(host)
        // 18 silent connections and the 2 attached sides fill the 20 places.
        var silent: [UnixSocket] = []
        for _ in 0..<18 { silent.append(try UnixSocket.connect(to: host.socket)) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { buffer.deallocate() }
        for _ in 0..<5 {
            let extra = try UnixSocket.connect(to: host.socket)
            #expect(try extra.waitReadable(timeout: .seconds(30)))
            let (count, _) = try extra.receive(into: buffer)
            #expect(count >= MemoryLayout<archangel_host_reply>.size)
            if count >= MemoryLayout<archangel_host_reply>.size {
                let reply = UnsafeRawBufferPointer(buffer).loadUnaligned(as: archangel_host_reply.self)
                #expect(reply.status == -EMFILE)
                #expect(HostProtocol.message(of: reply).contains("at most 20 connections"))
            }
        }
        try Self.exchange(kernel, user, 1)
        silent.removeAll()
        let fdsAfter = Self.settledDescriptors(host, expecting: fdsBefore)
        #expect(fdsAfter == fdsBefore)
        // With places free again, a request is answered.
        #expect(try UserspaceBackend.statisticsText(socket: host.socket).hasPrefix("archangel-comm"))
        Self.report("connection limit", host, fds: (fdsBefore, fdsAfter), rss: (host.residentKiB, host.residentKiB))
    }

    @Test("garbage on the host socket, with and without descriptors, gets refusals; nothing accumulates in the host")
    func garbage() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let host = try ServeProcess(socket: directory.path + "/host.sock", arguments: ["--channels", "2"])
        defer { host.stop() }
        let kernel = try UserspaceBackend(socketPath: host.socket).openKernelSide(1)
        let user = try UserspaceBackend(socketPath: host.socket).openUserSide(1)
        var generator = SplitMix(seed: 0x6A4B_A6E)
        let memfd = try SharedMemory(memfdNamed: "garbage", size: 4096)
        let eventfd = try EventFD()
        func round(_ i: Int) throws {
            let count = Int(generator.next() % 700) + 1
            var bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            if i % 3 == 0, count >= HostProtocol.requestSize {
                // Right size and magic, the rest random: deeper into the checks.
                bytes = Array(bytes.prefix(HostProtocol.requestSize))
                bytes.withUnsafeMutableBytes { $0.storeBytes(of: ARCHANGEL_HOST_MAGIC, as: UInt32.self) }
            }
            let fds: [Int32] = i % 4 == 0 ? [memfd.descriptor, eventfd.descriptor] : i % 4 == 1 ? [memfd.descriptor] : []
            let status = try Self.raw(bytes, descriptors: fds, socket: host.socket)
            #expect(status.map { $0 < 0 } ?? true, "round \(i): a garbage request was accepted")
        }
        for i in 0..<200 { try round(i) }
        let fdsBefore = Self.settledDescriptors(host), rssBefore = host.residentKiB
        for i in 200..<3200 {
            try round(i)
            if i % 500 == 0 { try Self.exchange(kernel, user, i) }
        }
        try Self.exchange(kernel, user, 0)
        let fdsAfter = Self.settledDescriptors(host, expecting: fdsBefore), rssAfter = host.residentKiB
        #expect(fdsAfter == fdsBefore, "the host kept descriptors that garbage carried")
        #expect(abs(rssAfter - rssBefore) <= Self.rssTolerance, "VmRSS \(rssBefore) -> \(rssAfter) KiB")
        Self.report("garbage", host, fds: (fdsBefore, fdsAfter), rss: (rssBefore, rssAfter))
    }

    @Test("10,000 connect/disconnect cycles, one in ten a full attach and detach: the host ends where it started")
    func connectCycles() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let host = try ServeProcess(socket: directory.path + "/host.sock", arguments: ["--channels", "2"])
        defer { host.stop() }
        let kernel = try UserspaceBackend(socketPath: host.socket).openKernelSide(1)
        let backend = UserspaceBackend(socketPath: host.socket)
        func cycle(_ i: Int) throws {
            if i % 10 == 0 {
                // The side is free again once the host saw the previous hang-up.
                var user: Channel?
                for _ in 0..<500 where user == nil {
                    user = try? backend.openUserSide(1)
                    if user == nil { usleep(1_000) }
                }
                let channel = try #require(user)
                try kernel.send(.syscallEvent, bytes: pattern(64, seed: i), timeout: .seconds(5))
                #expect(try channel.receive(timeout: .seconds(5)).bytes == pattern(64, seed: i))
                channel.close()
            } else {
                _ = try UnixSocket.connect(to: host.socket)
            }
        }
        for i in 0..<500 { try cycle(i) }
        let fdsBefore = Self.settledDescriptors(host), rssBefore = host.residentKiB
        for i in 500..<10_500 { try cycle(i) }
        let fdsAfter = Self.settledDescriptors(host, expecting: fdsBefore), rssAfter = host.residentKiB
        #expect(fdsAfter == fdsBefore)
        #expect(abs(rssAfter - rssBefore) <= Self.rssTolerance, "VmRSS \(rssBefore) -> \(rssAfter) KiB")
        // Every past client of the user side is still counted.
        let stats = try UserspaceBackend.statisticsText(socket: host.socket)
        #expect(stats.contains("messages_received=1050 "), "\(stats)")
        Self.report("10,000 connect cycles", host, fds: (fdsBefore, fdsAfter), rss: (rssBefore, rssAfter))
    }

    @Test("a peer that stops reading while the other floods: the flooder gets would-block, counted; the host and other channels are unaffected")
    func stalledReader() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let host = try ServeProcess(socket: directory.path + "/host.sock", arguments: ["--channels", "2"])
        defer { host.stop() }
        let backend = UserspaceBackend(socketPath: host.socket)
        let flooder = try backend.openKernelSide(0), stalled = try backend.openUserSide(0)
        let kernel = try backend.openKernelSide(1), user = try backend.openUserSide(1)
        try Self.exchange(kernel, user, 0)
        let fdsBefore = Self.settledDescriptors(host), rssBefore = host.residentKiB
        var sent = 0, full = 0
        let payload = pattern(1200, seed: 3)
        for i in 0..<200_000 {
            if try flooder.trySend(.networkEvent, bytes: payload) { sent += 1 } else { full += 1 }
            if i % 20_000 == 0 { try Self.exchange(kernel, user, i) }
        }
        #expect(sent > 0 && full > 0 && sent + full == 200_000)
        #expect(throws: ChannelError.timedOut) { try flooder.send(.networkEvent, bytes: payload, timeout: .milliseconds(20)) }
        let stats = try UserspaceBackend.statisticsText(socket: host.socket)
        let line = stats.split(separator: "\n").first { $0.contains("to_user") } ?? ""
        #expect(line.contains("messages_sent=\(sent) ") && line.contains("queue_full=\(full + 1) "), "\(line)")
        try Self.exchange(kernel, user, 1)
        let fdsAfter = Self.settledDescriptors(host, expecting: fdsBefore), rssAfter = host.residentKiB
        #expect(fdsAfter == fdsBefore)
        #expect(abs(rssAfter - rssBefore) <= Self.rssTolerance, "VmRSS \(rssBefore) -> \(rssAfter) KiB")
        // The reader comes back and gets everything that was accepted, in order.
        var received = 0
        while let message = try stalled.tryReceive() {
            #expect(message.bytes == payload)
            received += 1
        }
        #expect(received == sent)
        Self.report("stalled reader (\(sent) sent, \(full) would-block)", host, fds: (fdsBefore, fdsAfter),
                    rss: (rssBefore, rssAfter))
    }
}
