import Synchronization

/// The counters each side of a direction keeps.
public enum Counter: Int, CaseIterable, Sendable {
    /// Messages published by the sender.
    case messagesSent
    /// Payload bytes published by the sender.
    case bytesSent
    /// Messages delivered to the receiver.
    case messagesReceived
    /// Payload bytes delivered to the receiver.
    case bytesReceived
    /// Messages refused outright (too large for the channel); never queued.
    case rejected
    /// Shared memory that failed validation (the channel is then in error).
    case errors
    /// Sends that found the ring full or the pool empty.
    case queueFull
    /// Messages carried by pool descriptors.
    case poolTransfers
    /// Large payloads copied inline because the pool was empty.
    case copyFallbacks
    /// Wake-ups signalled to a sleeping peer.
    case notificationsSent
    /// Publications that needed no wake-up because the peer was awake.
    case notificationsSuppressed
    /// Times this side went to sleep waiting for the peer.
    case waits
    /// Largest backlog seen on the normal lane, bytes.
    case normalHighWater
    /// Largest backlog seen on the express lane, bytes.
    case expressHighWater
    /// Pool buffers lent out and not yet returned (sender side).
    case poolBuffersInUse
    /// Publications whose wake-up was deferred to a trailing edge, or merged
    /// into one already pending (sender side; docs/efficiency.md).
    case notificationsCoalesced
    /// Timed polls: sleeps of one window with only the express lane armed,
    /// which end by themselves (receiver side; docs/efficiency.md).
    case timedWaits
}

/// A block of counters written by one thread and read by any.
///
/// The writer uses a relaxed load and store instead of a read-modify-write:
/// only one thread writes, so no increment is lost, and the hot path issues
/// no locked instruction. Readers see each counter atomically but not the
/// block as one snapshot. The block fills whole cache lines so that the two
/// sides' blocks never share one.
public struct CounterBlock: @unchecked Sendable {
    @usableFromInline let base: UnsafeMutablePointer<Atomic<UInt64>>

    /// Allocates a zeroed block. Free it with `deallocate()`.
    public static func allocate() -> CounterBlock {
        let count = (Counter.allCases.count + 7) / 8 * 8
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * 8, alignment: ABI.cacheLine)
        raw.initializeMemory(as: UInt64.self, repeating: 0, count: count)
        return CounterBlock(base: raw.assumingMemoryBound(to: Atomic<UInt64>.self))
    }

    @usableFromInline init(base: UnsafeMutablePointer<Atomic<UInt64>>) { self.base = base }

    /// Bytes of one block (whole cache lines).
    public static let byteCount = (Counter.allCases.count + 7) / 8 * 8 * 8

    /// A block in memory someone else owns (a shared mapping the host reads),
    /// `byteCount` bytes at `pointer`, 64-byte aligned and zeroed by the owner.
    public init(at pointer: UnsafeMutableRawPointer) {
        base = pointer.assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// Frees the block.
    public func deallocate() { UnsafeMutableRawPointer(base).deallocate() }

    /// Adds `amount` to `counter`. Only the block's writer may call this.
    @inlinable
    public func add(_ counter: Counter, _ amount: UInt64 = 1) {
        let slot = base + counter.rawValue
        slot.pointee.store(slot.pointee.load(ordering: .relaxed) &+ amount, ordering: .relaxed)
    }

    /// Sets `counter`. Only the block's writer may call this.
    @inlinable
    public func set(_ counter: Counter, _ value: UInt64) {
        (base + counter.rawValue).pointee.store(value, ordering: .relaxed)
    }

    /// Reads `counter` (any thread).
    @inlinable
    public func load(_ counter: Counter) -> UInt64 {
        (base + counter.rawValue).pointee.load(ordering: .relaxed)
    }
}
