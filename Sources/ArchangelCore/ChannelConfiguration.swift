/// The geometry of one channel: ring sizes and buffer-pool shape.
///
/// The defaults keep a channel under 1 MiB (about 700 KiB) while holding
/// hundreds of small messages per lane and 64 pool buffers per direction.
public struct ChannelConfiguration: Sendable, Equatable {
    /// Bytes of each normal-lane ring (a power of two, at least 4 KiB).
    public var normalRingBytes: Int = 64 * 1024
    /// Bytes of each express-lane ring (a power of two, at least 4 KiB).
    public var expressRingBytes: Int = 16 * 1024
    /// Bytes per pool buffer (a power of two, 256 B to 1 MiB).
    public var poolBufferSize: Int = 4096
    /// Pool buffers per direction; 0 disables the pool.
    public var poolBufferCount: Int = 64
    /// Payloads larger than this many bytes travel through the pool.
    public var poolThreshold: Int = 1024
    /// The most pool buffers one message may span (scatter-gather).
    public var maxSegments: Int = 32

    /// The default geometry.
    public static let `default` = ChannelConfiguration()

    /// Creates a configuration; every argument defaults to the value above.
    public init(normalRingBytes: Int = 64 * 1024, expressRingBytes: Int = 16 * 1024,
                poolBufferSize: Int = 4096, poolBufferCount: Int = 64,
                poolThreshold: Int = 1024, maxSegments: Int = 32) {
        self.normalRingBytes = normalRingBytes
        self.expressRingBytes = expressRingBytes
        self.poolBufferSize = poolBufferSize
        self.poolBufferCount = poolBufferCount
        self.poolThreshold = poolThreshold
        self.maxSegments = maxSegments
    }

    /// Checks every value.
    ///
    /// - Throws: `ChannelError.invalidConfiguration` naming the first bad value.
    public func validate() throws(ChannelError) {
        func fail(_ text: String) -> ChannelError { .invalidConfiguration(text) }
        for (name, bytes) in [("normalRingBytes", normalRingBytes), ("expressRingBytes", expressRingBytes)] {
            guard bytes >= 4096, bytes <= 1 << 30, bytes.nonzeroBitCount == 1 else {
                throw fail("\(name) = \(bytes): must be a power of two from 4096 to 1 GiB")
            }
        }
        guard poolBufferCount >= 0, poolBufferCount <= 1 << 20 else {
            throw fail("poolBufferCount = \(poolBufferCount): must be 0...1048576")
        }
        guard poolBufferSize >= 256, poolBufferSize <= 1 << 20, poolBufferSize.nonzeroBitCount == 1 else {
            throw fail("poolBufferSize = \(poolBufferSize): must be a power of two from 256 to 1 MiB")
        }
        let smallerRing = min(normalRingBytes, expressRingBytes)
        guard poolThreshold >= 0, poolThreshold <= maxInlinePayload(ringBytes: smallerRing) else {
            throw fail("poolThreshold = \(poolThreshold): must be 0...\(maxInlinePayload(ringBytes: smallerRing)) so that small messages fit every lane")
        }
        // A pool message's descriptor list is a record of its own: it must fit the smaller lane.
        let segmentLimit = (Self.maxRecord(ringBytes: smallerRing) - ABI.headerSize - ABI.correlationSize)
            / ABI.descriptorSize
        guard maxSegments >= 1, maxSegments <= min(256, segmentLimit) else {
            throw fail("maxSegments = \(maxSegments): must be 1...\(min(256, segmentLimit)) so that a descriptor list fits a \(smallerRing)-byte ring")
        }
    }

    /// The largest record a ring of `ringBytes` accepts: a quarter of it, so a
    /// record always fits once the consumer catches up, whatever the wrap point.
    public static func maxRecord(ringBytes: Int) -> Int { ringBytes / 4 }

    /// The largest payload that travels inline in a ring of `ringBytes`.
    public func maxInlinePayload(ringBytes: Int) -> Int {
        Self.maxRecord(ringBytes: ringBytes) - ABI.headerSize - ABI.correlationSize
    }

    /// The largest payload a message may carry on this channel.
    public var maxPayload: Int {
        let inline = maxInlinePayload(ringBytes: min(normalRingBytes, expressRingBytes))
        guard poolBufferCount > 0 else { return inline }
        return max(inline, min(maxSegments, poolBufferCount) * poolBufferSize)
    }
}
