// A host killed with SIGKILL and restarted: its clients bring the channel
// memory back and the messages in the rings carry on (docs/recovery.md).
@testable import Archangel
import ArchangelCore
import ArchangelSystem
import CArchangel
import Glibc
import Logging
import Testing

@Suite("Host restart", .serialized)
struct KillRecoveryTests {
    /// Opens `side` of channel 0, retrying while the host starts.
    static func attach(_ side: ChannelSide, socket: String) throws -> Channel {
        let backend = UserspaceBackend(socketPath: socket)
        var lastError: ChannelError?
        for _ in 0..<500 {
            do { return try backend.attach(0, side: side) } catch {
                lastError = error
                usleep(10_000)
            }
        }
        throw lastError ?? .closed
    }

    static func number(_ message: Message) -> UInt64 {
        message.bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }

    static func payload(_ n: UInt64, size: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: UInt8(truncatingIfNeeded: n), count: max(size, 8))
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: n.littleEndian, as: UInt64.self) }
        return bytes
    }

    @Test("serve killed with SIGKILL and restarted: both peers reattach and every unread message is still there")
    func hostKilledAndRestarted() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let socket = directory.path + "/host.sock"
        let first = try ServeProcess(socket: socket)
        let sensor = try Self.attach(.kernel, socket: socket), engine = try Self.attach(.user, socket: socket)
        // Unread both ways, inline and through the pool, both lanes; some read already.
        for n in 0..<40 as Range<UInt64> {
            try sensor.send(.syscallEvent, priority: n % 5 == 0 ? .high : .normal,
                            bytes: Self.payload(n, size: n % 3 == 0 ? 3000 : 32), timeout: .seconds(5))
        }
        for n in 0..<10 as Range<UInt64> { try engine.send(.aiResponse, bytes: Self.payload(1000 + n, size: 64)) }
        var delivered: [UInt64] = []
        for _ in 0..<15 { delivered.append(Self.number(try engine.receive(timeout: .seconds(5)))) }
        first.kill()
        // Both peers notice the hang-up.
        for _ in 0..<500 where engine.isOpen || sensor.isOpen { usleep(2_000) }
        #expect(throws: ChannelError.peerDisconnected) { _ = try engine.receive(timeout: .seconds(5)) }
        #expect(throws: ChannelError.peerDisconnected) { try sensor.send(.control, bytes: [1]) }
        let second = try ServeProcess(socket: socket)
        defer { second.stop() }
        let engine2 = try Self.attach(.user, socket: socket)
        #expect(engine2.hostRecovery == .adopted(unread: 35))
        let sensor2 = try Self.attach(.kernel, socket: socket)
        // The sensor brought the same memory back: nothing left to adopt, a plain attach.
        #expect(sensor2.hostRecovery == .adopted(unread: 35))
        while let message = try engine2.tryReceive() { delivered.append(Self.number(message)) }
        #expect(delivered.sorted() == Array(0..<40), "every message to the engine, once")
        var answers: [UInt64] = []
        while let message = try sensor2.tryReceive() { answers.append(Self.number(message)) }
        #expect(answers == Array(1000..<1010))
        // And the channel carries on both ways, pool included.
        for n in 40..<200 as Range<UInt64> {
            try sensor2.send(.syscallEvent, bytes: Self.payload(n, size: 2000), timeout: .seconds(5))
            #expect(Self.number(try engine2.receive(timeout: .seconds(5))) == n)
        }
        let stats = try UserspaceBackend.statisticsText(socket: socket)
        #expect(stats.contains("pool_in_use=0"), "\(stats)")
        sensor2.close()
        engine2.close()
    }

    @Test("a host with peers of its own on the channel refuses the memory, and the peer reports the loss")
    func adoptionRefusedIsReportedLost() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let socket = directory.path + "/host.sock"
        let first = try ServeProcess(socket: socket)
        let sensor = try Self.attach(.kernel, socket: socket)
        for n in 0..<7 as Range<UInt64> { try sensor.send(.syscallEvent, bytes: Self.payload(n, size: 16)) }
        first.kill()
        for _ in 0..<500 where sensor.isOpen { usleep(2_000) }
        let second = try ServeProcess(socket: socket)
        defer { second.stop() }
        // A new engine takes channel 0 on the new host first: the memory can no longer replace it.
        let engine = try Self.attach(.user, socket: socket)
        #expect(engine.hostRecovery == .none)
        let sensor2 = try Self.attach(.kernel, socket: socket)
        guard case .lost(let messages, _) = sensor2.hostRecovery else {
            Issue.record("expected the loss to be reported, got \(sensor2.hostRecovery)")
            return
        }
        #expect(messages == 7)
        try sensor2.send(.syscallEvent, bytes: Self.payload(99, size: 16))
        #expect(Self.number(try engine.receive(timeout: .seconds(5))) == 99)
    }

    @Test("a destroyed channel's memory is not kept: the next attach starts afresh")
    func destroyedChannelIsNotKept() throws {
        let host = try BrokerHost()
        try host.manager.createChannel(id: 0)
        let sensor = try UserspaceBackend(socketPath: host.socket).openKernelSide(0)
        try sensor.send(.syscallEvent, bytes: [1, 2, 3])
        try UserspaceBackend.destroyChannel(0, socket: host.socket)
        for _ in 0..<500 where sensor.isOpen { usleep(2_000) }
        #expect(RetainedMemory.take(path: host.socket, id: 0, side: .kernel) == nil)
    }

    @Test("memory brought for adoption is checked like any untrusted input; the host serves on")
    func badAdoptionsRefused() throws {
        let host = try BrokerHost()
        try host.manager.createChannel(id: 1)
        let good = try UserspaceBackend(socketPath: host.socket).openUserSide(1)
        func adopt(_ memory: Int32, channel: UInt32 = 0) throws -> Int32? {
            let counters = try SharedMemory(memfdNamed: "c", size: Int(ARCHANGEL_HOST_COUNTERS_SIZE))
            let request = HostProtocol.request(.attach, channel: channel, kernelSide: true, adopt: true)
            do {
                _ = try HostProtocol.exchange(request, at: host.socket, descriptors: [counters.descriptor, memory])
                return 0
            } catch .hostRefused(let status, _) {
                return status
            } catch {
                return -1
            }
        }
        // Not sealed against shrinking.
        let unsealed = open(host.directory.path + "/plain", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        ftruncate(unsealed, 1 << 20)
        #expect(try adopt(unsealed) == -EPROTO)
        close(unsealed)
        // Sealed, but zeros (no channel header), then a pipe, then channel 1's own memory as channel 0.
        let zeros = try SharedMemory(memfdNamed: "zeros", size: 1 << 20)
        #expect(try adopt(zeros.descriptor) == -EIO)
        var pipeFDs: [Int32] = [0, 0]
        pipe(&pipeFDs)
        #expect(try adopt(pipeFDs[0]) == -EPROTO)
        pipeFDs.forEach { close($0) }
        let channelOne = try host.manager.hosted(1).kernel.memory
        #expect(try adopt(channelOne.descriptor) == -EPROTO)
        // A real channel's memory with a scribbled index.
        let layout = try ChannelLayout(configuration: .small, channelID: 0)
        let scribbled = try SharedMemory(memfdNamed: "scribbled", size: layout.totalSize)
        layout.writeHeader(to: scribbled.base)
        scribbled.base.storeBytes(of: UInt64(1 << 40), toByteOffset: layout.toUser.normal.producer, as: UInt64.self)
        #expect(try adopt(scribbled.descriptor) == -EIO)
        #expect(host.manager.channelIDs == [1])
        // A well-formed one is adopted.
        let fine = try SharedMemory(memfdNamed: "fine", size: layout.totalSize)
        layout.writeHeader(to: fine.base)
        #expect(try adopt(fine.descriptor) == 0)
        #expect(host.manager.channelIDs == [0, 1])
        try host.manager.channel(1).send(.syscallEvent, bytes: [7])
        #expect(try good.receive(timeout: .seconds(5)).bytes == [7])
    }
}
