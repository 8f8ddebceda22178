// Shared fixtures for the ArchangelCore tests: channel memory, a sender and a
// receiver bound to it, raw access to the shared words, payload patterns, a
// seeded random generator and a counting notifier.
import ArchangelCore
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing

extension ChannelConfiguration {
    /// 4 KiB lanes and a pool of 8 × 256-byte buffers, so every edge is a few records away.
    ///
    /// A 4 KiB ring takes records of at most 1024 bytes (a quarter), i.e. inline
    /// payloads up to 996 bytes (988 leaving room for a correlation word).
    static let small = ChannelConfiguration(normalRingBytes: 4096, expressRingBytes: 4096,
                                            poolBufferSize: 256, poolBufferCount: 8,
                                            poolThreshold: 128, maxSegments: 8)

    /// Like `small`, but without a buffer pool: every payload travels inline.
    static let smallNoPool = ChannelConfiguration(normalRingBytes: 4096, expressRingBytes: 4096,
                                                  poolBufferSize: 256, poolBufferCount: 0,
                                                  poolThreshold: 128, maxSegments: 8)
}

/// Channel memory for one test, with the sender and the receiver of one direction bound to it.
///
/// The memory lives as long as this object; tests reach the sender and receiver
/// through it (`channel.sender`), which keeps it alive while they are used.
final class TestChannel {
    let layout: ChannelLayout
    let base: UnsafeMutableRawPointer
    let direction: Direction
    let sender: MessageSender
    let receiver: MessageReceiver
    private let mapping: (start: UnsafeMutableRawPointer, length: Int)?

    /// Lays out a channel in zeroed memory and binds both ends of `direction`.
    ///
    /// With `guardPages`, the memory is mapped with an inaccessible page on each
    /// side, so a read or write just outside the channel crashes the test.
    init(_ configuration: ChannelConfiguration = .small, direction: Direction = .toUser,
         senderNotifier: any PeerNotifier = NoNotifier(), receiverNotifier: any PeerNotifier = NoNotifier(),
         guardPages: Bool = false, waitPolicy: WaitPolicy = .lowLatency) throws {
        layout = try ChannelLayout(configuration: configuration, channelID: 7)
        let page = ABI.pageSize
        if guardPages {
            let length = layout.totalSize + 2 * page
            let start = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            guard let start, start != MAP_FAILED else { throw ChannelError.system(operation: "mmap", errno: errno) }
            mprotect(start, page, PROT_NONE)
            mprotect(start + page + layout.totalSize, page, PROT_NONE)
            base = start + page
            mapping = (start, length)
        } else {
            base = .allocate(byteCount: layout.totalSize, alignment: page)
            base.initializeMemory(as: UInt8.self, repeating: 0, count: layout.totalSize)
            mapping = nil
        }
        layout.writeHeader(to: base)
        self.direction = direction
        sender = MessageSender(base: base, layout: layout, direction: direction, notifier: senderNotifier,
                               waitPolicy: waitPolicy)
        receiver = MessageReceiver(base: base, layout: layout, direction: direction, notifier: receiverNotifier)
    }

    deinit {
        if let mapping { munmap(mapping.start, mapping.length) } else { base.deallocate() }
    }

    /// The layout of this channel's direction.
    var lanes: DirectionLayout { layout.direction(direction) }
    /// The ring of `lane` in this channel's direction.
    func ring(_ lane: Lane) -> RingLayout { lanes.ring(lane) }
    /// The data area of `lane`.
    func data(_ lane: Lane) -> UnsafeMutableRawPointer { base + ring(lane).data }
    /// The shared name of a lane in errors, e.g. `to_user.normal`.
    func ringName(_ lane: Lane) -> String { "\(direction).\(lane)" }

    func load64(_ offset: Int) -> UInt64 { base.load(fromByteOffset: offset, as: UInt64.self) }
    func store64(_ value: UInt64, _ offset: Int) { base.storeBytes(of: value, toByteOffset: offset, as: UInt64.self) }
    func load32(_ offset: Int) -> UInt32 { base.load(fromByteOffset: offset, as: UInt32.self) }
    func store32(_ value: UInt32, _ offset: Int) { base.storeBytes(of: value, toByteOffset: offset, as: UInt32.self) }

    /// The shared producer index of `lane`, as the receiver would read it.
    func producerIndex(_ lane: Lane) -> UInt64 { load64(ring(lane).producer) }
    /// The shared consumer index of `lane`, as the sender would read it.
    func consumerIndex(_ lane: Lane) -> UInt64 { load64(ring(lane).consumer) }

    /// Whether `buffer` lies entirely inside channel memory.
    func contains(_ buffer: UnsafeRawBufferPointer) -> Bool {
        guard let start = buffer.baseAddress else { return buffer.isEmpty }
        let low = UnsafeRawPointer(base), high = UnsafeRawPointer(base + layout.totalSize)
        return start >= low && start <= high && start + buffer.count <= high
    }

    /// Sends `payload` without blocking.
    @discardableResult
    func send(_ payload: [UInt8], type: MessageType = .control, priority: MessagePriority = .normal,
              correlation: UInt64? = nil, publish: Bool = true,
              options: SendOptions = []) throws(ChannelError) -> SendOutcome {
        let sender = self.sender
        let result = payload.withUnsafeBytes { raw in
            Result { () throws(ChannelError) -> SendOutcome in
                try sender.trySend(type: type, priority: priority, payload: raw, correlation: correlation,
                                   publish: publish, options: options)
            }
        }
        return try result.get()
    }

    /// Sends `count` pattern bytes seeded by `seed`.
    @discardableResult
    func send(count: Int, seed: UInt64, type: MessageType = .control, priority: MessagePriority = .normal,
              correlation: UInt64? = nil, publish: Bool = true,
              options: SendOptions = []) throws(ChannelError) -> SendOutcome {
        try send(pattern(count, seed: seed), type: type, priority: priority, correlation: correlation,
                 publish: publish, options: options)
    }

    /// Receives one message and copies out everything a test checks.
    func receive(sizeLimit: Int? = nil) throws(ChannelError) -> Received? {
        let channel = self
        let body = { (view: MessageView) -> Received in Received(view, in: channel) }
        if let sizeLimit { return try receiver.tryReceive(sizeLimit: sizeLimit, body) }
        return try receiver.tryReceive(body)
    }

    /// Receives until both lanes are empty.
    func drain() throws(ChannelError) -> [Received] {
        var out: [Received] = []
        while let message = try receive() { out.append(message) }
        return out
    }
}

/// A received message, copied out of its `MessageView`.
struct Received {
    var type: MessageType
    var priority: MessagePriority
    var sequence: UInt64
    var timestamp: UInt64
    var flags: MessageFlags
    var correlation: UInt64?
    var count: Int
    /// The payload gathered with `copyBytes(to:)`.
    var bytes: [UInt8]
    /// The payload gathered segment by segment.
    var segmentBytes: [[UInt8]]
    /// Where each segment lies.
    var segmentStarts: [UnsafeRawPointer?]
    /// Every segment lay inside channel memory and the segments add up to `count`.
    var wellFormed: Bool

    init(_ view: MessageView, in channel: TestChannel) {
        type = view.type
        priority = view.priority
        sequence = view.sequence
        timestamp = view.timestamp
        flags = view.flags
        correlation = view.correlation
        count = view.count
        var copy = [UInt8](repeating: 0, count: view.count)
        let copied = copy.withUnsafeMutableBytes { view.copyBytes(to: $0) }
        bytes = copy
        var total = 0
        var inside = copied == view.count
        segmentBytes = []
        segmentStarts = []
        for i in 0..<view.segmentCount {
            let piece = view.segment(i)
            inside = inside && channel.contains(piece)
            total += piece.count
            segmentBytes.append(Array(piece))
            segmentStarts.append(piece.baseAddress)
        }
        wellFormed = inside && total == view.count
    }

    var segmentCount: Int { segmentBytes.count }
}

/// `count` bytes that depend on `seed` and on their position.
func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    bytes.withUnsafeMutableBytes { if let start = $0.baseAddress { fillPattern(start, count: count, seed: seed) } }
    return bytes
}

/// Writes the bytes of `pattern(count, seed:)` to `pointer`.
func fillPattern(_ pointer: UnsafeMutableRawPointer, count: Int, seed: UInt64) {
    precondition(count >= 0, "negative pattern length")
    let bytes = pointer.assumingMemoryBound(to: UInt8.self)
    for i in 0..<count { bytes[i] = patternByte(i, seed: seed) }
}

/// Whether `pointer` holds `pattern(count, seed:)`.
func matchesPattern(_ pointer: UnsafeRawPointer, count: Int, seed: UInt64) -> Bool {
    let bytes = pointer.assumingMemoryBound(to: UInt8.self)
    for i in 0..<count where bytes[i] != patternByte(i, seed: seed) { return false }
    return true
}

@inline(__always)
func patternByte(_ i: Int, seed: UInt64) -> UInt8 {
    let n = UInt64(i)
    return UInt8(truncatingIfNeeded: seed &* 0x9E37_79B9 &+ n &* 0x37 &+ (n >> 8) &+ (seed >> 8))
}

/// SplitMix64: a tiny seeded generator, so that random tests repeat exactly.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A notifier that counts its calls.
final class CountingNotifier: PeerNotifier {
    private let calls = Atomic<Int>(0)
    private let timed = Atomic<Int>(0)
    private let lastDeadline = Atomic<UInt64>(0)
    init() {}
    func notify() { calls.add(1, ordering: .relaxed) }
    /// Records a trailing-edge request without waking anyone.
    func notify(atNanoseconds deadline: UInt64) {
        timed.add(1, ordering: .relaxed)
        lastDeadline.store(deadline, ordering: .relaxed)
    }
    /// Immediate signals.
    var count: Int { calls.load(ordering: .relaxed) }
    /// Trailing-edge signals requested.
    var scheduled: Int { timed.load(ordering: .relaxed) }
    /// The last trailing-edge deadline requested.
    var deadline: UInt64 { lastDeadline.load(ordering: .relaxed) }
}
