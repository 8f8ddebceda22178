import Archangel
import CArchangel
import Testing

/// Manager-level options.
@Suite struct ConfigurationTests {
    @Test("timestamps: monotonic stamps every publication, none leaves them 0")
    func timestampPolicies() throws {
        for policy in [TimestampPolicy.monotonic, .none] {
            let manager = try CommManager(configuration: .init(timestamps: policy))
            let id = try manager.createChannel()
            let kernel = try manager.channel(id)
            let user = try Channel.open(id, backend: .inProcess(manager))
            let before = archangel_monotonic_ns()
            try kernel.send(.syscallEvent, bytes: [1])
            let m = try user.receive(timeout: .seconds(1))
            if policy == .none {
                #expect(m.timestamp == 0)
            } else {
                // The stamp is CLOCK_MONOTONIC read during the send: between the two readings around it.
                #expect(m.timestamp >= before && m.timestamp <= archangel_monotonic_ns())
            }
            manager.destroyChannel(id)
        }
    }

    @Test("a manager refuses a channel limit outside 1...4096 and ids beyond its limit")
    func limits() throws {
        #expect(throws: ChannelError.invalidConfiguration("maxChannels = 0: must be 1...4096")) {
            try CommManager(configuration: .init(maxChannels: 0))
        }
        let manager = try CommManager(configuration: .init(maxChannels: 2))
        #expect(try manager.createChannel() == 0)
        #expect(throws: ChannelError.invalidChannelID(5, limit: 2)) { try manager.createChannel(id: 5) }
        #expect(throws: ChannelError.channelExists(0)) { try manager.createChannel(id: 0) }
        #expect(try manager.createChannel() == 1)
        #expect(throws: ChannelError.tooManyChannels(limit: 2)) { try manager.createChannel() }
        #expect(manager.destroyChannel(0))
        #expect(!manager.destroyChannel(0))
        #expect(throws: ChannelError.channelNotFound(0)) { try manager.channel(0) }
        #expect(try manager.createChannel() == 0)
        #expect(manager.channelIDs == [0, 1])
    }

    @Test("the extra shared region is seen by both sides and goes away on cleanup")
    func sharedRegion() throws {
        let manager = try CommManager()
        let id = try manager.createChannel()
        let kernel = try manager.channel(id)
        let user = try Channel.open(id, backend: .inProcess(manager))
        #expect(!kernel.hasSharedRegion)
        try manager.setupSharedMemory(channel: id, size: 10_000)
        let size = kernel.withSharedRegion { region in
            region.storeBytes(of: UInt64(0xfeed), toByteOffset: 4096, as: UInt64.self)
            return region.count
        }
        #expect(size == 12_288)
        #expect(user.withSharedRegion { $0.load(fromByteOffset: 4096, as: UInt64.self) } == 0xfeed)
        manager.cleanupSharedMemory(channel: id)
        #expect(!user.hasSharedRegion)
    }
}
