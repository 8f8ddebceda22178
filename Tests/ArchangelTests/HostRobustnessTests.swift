// A host keeps serving every other channel whatever one client does.
@testable import Archangel
import ArchangelCore
import ArchangelSystem
import CArchangel
import Glibc
import Testing

@Suite("Host robustness", .serialized)
struct HostRobustnessTests {
    /// A host with a healthy channel 0 and a client on it, and channel 1 for the bad client.
    struct Fixture {
        let host: TestHost
        let good: Channel

        init() throws {
            host = try TestHost(channel: .small)
            try host.manager.createChannel(id: 0)
            try host.manager.createChannel(id: 1)
            good = try Channel.open(0, backend: .userspace(socket: host.socket))
        }

        /// One message each way on channel 0.
        func goodChannelStillWorks(_ round: Int = 0) throws {
            let kernel = try host.manager.channel(0)
            try kernel.send(.syscallEvent, bytes: pattern(40, seed: round))
            #expect(try good.receive(timeout: .seconds(5)).bytes == pattern(40, seed: round))
            try good.send(.aiResponse, bytes: pattern(600, seed: round + 1))
            #expect(try kernel.receive(timeout: .seconds(5)).bytes == pattern(600, seed: round + 1))
        }

        /// Sends raw bytes as a client would and returns the host's reply (nil: it hung up).
        func rawExchange(_ bytes: [UInt8]) throws -> archangel_host_reply? {
            let socket = try UnixSocket.connect(to: host.socket)
            try bytes.withUnsafeBytes { try socket.send($0) }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
            defer { buffer.deallocate() }
            guard try socket.waitReadable(timeout: .seconds(5)) else { return nil }
            let (count, fds) = try socket.receive(into: buffer)
            for fd in fds { close(fd) }
            guard count >= MemoryLayout<archangel_host_reply>.size else { return nil }
            // After a refusal the host hangs up.
            let reply = UnsafeRawBufferPointer(buffer).loadUnaligned(as: archangel_host_reply.self)
            #expect(try socket.waitReadable(timeout: .seconds(5)))
            #expect(try socket.receive(into: buffer).0 == 0, "the host hung up after refusing")
            return reply
        }
    }

    static func message(_ reply: archangel_host_reply) -> String {
        withUnsafeBytes(of: reply.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    @Test("a client of another ABI major version is refused with both versions named")
    func wrongABIVersion() throws {
        let f = try Fixture()
        var request = archangel_host_request()
        request.magic = ARCHANGEL_HOST_MAGIC
        request.abi_version = (ABI.version >> 16 + 1) << 16
        request.op = 1
        let reply = try #require(try f.rawExchange(withUnsafeBytes(of: &request) { Array($0) }))
        #expect(reply.status == -EPROTO)
        let text = Self.message(reply)
        #expect(text.contains(ABI.describe(version: ABI.version)) && text.contains("2.0"), "\(text)")
        try f.goodChannelStillWorks()
    }

    @Test("garbage on the socket gets a clear refusal and the host serves on")
    func garbageBytes() throws {
        let f = try Fixture()
        var generator = SplitMix(seed: 42)
        for round in 0..<20 {
            let count = Int(generator.next() % 200) + 1
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            let reply = try #require(try f.rawExchange(bytes))
            #expect(reply.status == -EPROTO, "round \(round): \(count) bytes")
            try f.goodChannelStillWorks(round)
        }
        // A request of the right size with a wrong magic, and one with reserved bits set.
        var request = archangel_host_request()
        request.magic = 0xDEAD_BEEF
        #expect(try f.rawExchange(withUnsafeBytes(of: &request) { Array($0) })?.status == -EPROTO)
        request.magic = ARCHANGEL_HOST_MAGIC
        request.abi_version = ABI.version
        request.op = 2
        request.reserved.2 = 1
        #expect(try f.rawExchange(withUnsafeBytes(of: &request) { Array($0) })?.status == -EPROTO)
        // A client that connects and leaves without a word.
        _ = try UnixSocket.connect(to: f.host.socket)
        try f.goodChannelStillWorks(99)
    }

    @Test("a client that scribbles over its shared memory fails only its own channel")
    func scribbler() throws {
        let f = try Fixture()
        let bad = try Channel.open(1, backend: .userspace(socket: f.host.socket))
        let kernel = try f.host.manager.channel(1)
        var generator = SplitMix(seed: 7)
        var failure: ChannelError?
        for round in 0..<2_000 where failure == nil {
            // Scribble a few random words anywhere in the channel memory the client maps.
            for _ in 0..<4 {
                let offset = Int(generator.next() % UInt64(bad.memory.size - 8)) & ~7
                bad.memory.base.storeBytes(of: generator.next(), toByteOffset: offset, as: UInt64.self)
            }
            do {
                _ = try kernel.trySend(.networkEvent, bytes: pattern(Int(generator.next() % 900), seed: round))
                _ = try kernel.tryReceive()
                if round % 50 == 0 { try f.goodChannelStillWorks(round) }
            } catch {
                failure = error as? ChannelError ?? .closed
            }
        }
        guard case .corrupted = failure else {
            Issue.record("the host never noticed the scribbling: \(String(describing: failure))")
            return
        }
        let stats = f.host.manager.statistics().channels
        #expect(stats.first { $0.id == 1 }?.health == .failed)
        #expect((stats.first { $0.id == 1 }.map { $0.toUser.errors + $0.toKernel.errors } ?? 0) >= 1)
        #expect(stats.first { $0.id == 0 }?.health == .active)
        try f.goodChannelStillWorks(1)
        bad.close()
    }

    @Test("a client that never reads fills its channel: the host's sends would block and are counted")
    func clientThatNeverReads() throws {
        let f = try Fixture()
        let idle = try Channel.open(1, backend: .userspace(socket: f.host.socket))
        let kernel = try f.host.manager.channel(1)
        var sent = 0
        while try kernel.trySend(.syscallEvent, bytes: pattern(64, seed: sent)) { sent += 1 }
        #expect(sent > 10)
        #expect(throws: ChannelError.timedOut) {
            try kernel.send(.syscallEvent, bytes: pattern(64, seed: 0), timeout: .milliseconds(50))
        }
        try f.goodChannelStillWorks()
        let stats = try #require(f.host.manager.statistics().channels.first { $0.id == 1 })
        #expect(stats.toUser.queueFull >= 2 && stats.toUser.messagesSent == UInt64(sent))
        #expect(stats.health == .active)
        idle.close()
    }

    @Test("a side already held by another process is refused with sideInUse, and freed when that process leaves")
    func sideInUse() throws {
        let f = try Fixture()
        #expect(throws: ChannelError.sideInUse(0)) { _ = try Channel.open(0, backend: .userspace(socket: f.host.socket)) }
        f.good.close()
        // The host notices the hang-up within its poll; retry briefly.
        var reattached: Channel?
        for _ in 0..<100 where reattached == nil {
            reattached = try? Channel.open(0, backend: .userspace(socket: f.host.socket))
            if reattached == nil { usleep(10_000) }
        }
        #expect(reattached != nil)
    }

    @Test("a host that plays the kernel side itself refuses a kernel-side attach")
    func kernelSideRefused() throws {
        let host = try TestHost(allowKernelSide: false)
        try host.manager.createChannel(id: 0)
        #expect(throws: ChannelError.self) {
            _ = try UserspaceBackend(socketPath: host.socket).openKernelSide(0)
        }
    }

    @Test("the access policy admits the owner, root and the named group, and nobody else")
    func accessPolicy() {
        let own = HostAccess()
        #expect(own.allows(.init(pid: 1, uid: own.owner, gid: 12345)))
        #expect(own.allows(.init(pid: 1, uid: 0, gid: 0)))
        #expect(!own.allows(.init(pid: 1, uid: own.owner &+ 4242, gid: 4242)))
        #expect(own.socketMode == 0o600)
        let grouped = HostAccess(group: 4242)
        #expect(grouped.allows(.init(pid: 1, uid: own.owner &+ 4242, gid: 4242)))
        #expect(!grouped.allows(.init(pid: 1, uid: own.owner &+ 4242, gid: 4243)))
        #expect(grouped.socketMode == 0o660)
    }

    @Test("no host at the path is a clear error")
    func noHost() {
        #expect(throws: ChannelError.hostUnavailable(path: "/tmp/archangel-no-such-dir/x.sock", errno: ENOENT)) {
            _ = try Channel.open(0, backend: .userspace(socket: "/tmp/archangel-no-such-dir/x.sock"))
        }
    }
}
