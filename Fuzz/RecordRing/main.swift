// Fuzzes the receiving side of a direction over memory a hostile sender
// controls: both lanes' record bytes and producer indices, the consumer and
// `delivered` words a dead predecessor left, the return ring's indices, the
// return intent, the pool's bytes (`MessageReceiver`, `RecordRingConsumer`,
// `ResumePoint.receiver` and the read-only walk of `ResumePoint.sender`).
//
// The channel is to_user of a small layout (512-byte lanes, 4 pool buffers
// of 256 bytes, 4 segments), in memory where everything but the receiver's
// own regions is poisoned for AddressSanitizer (plain, batch, size-limited
// and held receives): any access outside its two
// rings, their index words, its progress line, the return ring and the
// pool is reported. Input: see `Input` below; seeds are rings the real
// sender wrote. Invariants:
//  - every delivered payload lies inside its lane's ring (inline) or inside
//    one pool buffer per segment (pool), with count = the sum of segments,
//    copyBytes copying min(count, room) bytes equal to `bytes`;
//  - no more messages per lane than records fit between start and producer;
//  - a failure is `.corrupted` (or `bufferTooSmall` for a size limit), is
//    counted exactly once in `errors`, and the receiver stays failed;
//  - a clean end (both lanes empty) leaves each lane's shared consumer index
//    and `delivered` word at its producer index, `messagesReceived` = the
//    messages delivered, and exactly the pool segments delivered returned;
//  - differential: when no payload was scribbled on, the read-only walk of
//    `ResumePoint.sender` fails exactly when... it fails, the receiver fails
//    too; when the receiver ends clean, the walk counted the same messages,
//    and every pool buffer delivered is among its buffers in flight.
@testable import ArchangelCore
import CArchangel
import FuzzSupport

let layout: ChannelLayout = {
    var l = try! ChannelLayout(configuration: ChannelConfiguration(
        normalRingBytes: 4096, expressRingBytes: 4096, poolBufferSize: 256, poolBufferCount: 4,
        poolThreshold: 64, maxSegments: 4), channelID: 1)
    // Smaller lanes than a creator allows (load allows them): more wraps and edges per byte.
    l.toUser.normal.size = 512
    l.toUser.express.size = 512
    try! l.validate(mappedSize: l.totalSize)
    return l
}()
let d = layout.toUser
let poolBytes = d.pool.bufferCount * d.pool.bufferSize
let progressSize = MemoryLayout<archangel_receiver_progress>.size

/// The fuzz input, in order (integers little-endian).
struct Input {
    /// Bit 0: resume through `ResumePoint`; 1: batch receive; 2: size limit; 3: scribble over the
    /// rings while a message is lent; 4: held receive (`tryHoldBatch`, then `release`).
    var mode: UInt8 = 0
    var normalStart: UInt64 = 0, normalProducer: UInt64 = 0
    var expressStart: UInt64 = 0, expressProducer: UInt64 = 0
    /// The return ring: our producer index (as resumed) and the sender's consumer index.
    var returnsProducer: UInt64 = 0, returnsConsumer: UInt64 = 0
    /// The progress line: return intent, delivered per lane.
    var intent: UInt64 = 0, deliveredNormal: UInt64 = 0, deliveredExpress: UInt64 = 0
    var needSpaceNormal: UInt32 = 0, needSpaceExpress: UInt32 = 0
    var sizeLimit: UInt16 = 0, copyRoom: UInt16 = 0
    /// Ring data: normal, express, returns, then the pool (short input: zeros).
    var normal: [UInt8] = [], express: [UInt8] = [], returns: [UInt8] = [], pool: [UInt8] = []

    init() {}

    init(_ f: inout FuzzInput) {
        mode = f.u8()
        normalStart = f.u64(); normalProducer = f.u64()
        expressStart = f.u64(); expressProducer = f.u64()
        returnsProducer = f.u64(); returnsConsumer = f.u64()
        intent = f.u64(); deliveredNormal = f.u64(); deliveredExpress = f.u64()
        needSpaceNormal = f.u32(); needSpaceExpress = f.u32()
        sizeLimit = f.u16(); copyRoom = f.u16()
        normal = Array(f.take(d.normal.size)); express = Array(f.take(d.express.size))
        returns = Array(f.take(d.pool.returns.size)); pool = Array(f.take(poolBytes))
    }

    var bytes: [UInt8] {
        var out: [UInt8] = [mode]
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        for v in [normalStart, normalProducer, expressStart, expressProducer, returnsProducer, returnsConsumer,
                  intent, deliveredNormal, deliveredExpress] { put(v) }
        put(needSpaceNormal); put(needSpaceExpress); put(sizeLimit); put(copyRoom)
        return out + normal + express + returns + pool
    }
}

func store(_ base: UnsafeMutableRawPointer, _ offset: Int, _ value: UInt64) { (base + offset).storeBytes(of: value, as: UInt64.self) }
func store32(_ base: UnsafeMutableRawPointer, _ offset: Int, _ value: UInt32) { (base + offset).storeBytes(of: value, as: UInt32.self) }
func load(_ base: UnsafeMutableRawPointer, _ offset: Int) -> UInt64 { (base + offset).load(as: UInt64.self) }
func copy(_ bytes: [UInt8], to pointer: UnsafeMutableRawPointer, max: Int) {
    bytes.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(pointer), byteCount: min($0.count, max)) }
}

/// The receiver's regions of to_user: all it may touch.
func allowReceiverRegions(_ m: GuardedMemory) {
    for ring in [d.normal, d.express, d.pool.returns] {
        m.allow(ring.producer, 8); m.allow(ring.consumer, 8)
        m.allow(ring.needWakeup, 4); m.allow(ring.needSpace, 4)
        m.allow(ring.data, ring.size)
    }
    m.allow(d.pool.returnIntent, progressSize)
    m.allow(d.pool.buffers, poolBytes)
}

func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var f = FuzzInput(data, size)
    let input = Input(&f)
    let m = GuardedMemory(size: layout.totalSize)
    allowReceiverRegions(m)
    let base = m.base
    store(base, d.normal.consumer, input.normalStart); store(base, d.normal.producer, input.normalProducer)
    store(base, d.express.consumer, input.expressStart); store(base, d.express.producer, input.expressProducer)
    store(base, d.pool.returns.producer, input.returnsProducer); store(base, d.pool.returns.consumer, input.returnsConsumer)
    store(base, d.pool.returnIntent, input.intent)
    store(base, d.pool.returnIntent + 8, input.deliveredNormal); store(base, d.pool.returnIntent + 16, input.deliveredExpress)
    store32(base, d.normal.needSpace, input.needSpaceNormal); store32(base, d.express.needSpace, input.needSpaceExpress)
    copy(input.normal, to: base + d.normal.data, max: d.normal.size)
    copy(input.express, to: base + d.express.data, max: d.express.size)
    copy(input.returns, to: base + d.pool.returns.data, max: d.pool.returns.size)
    copy(input.pool, to: base + d.pool.buffers, max: poolBytes)

    let resume = input.mode & 1 != 0, batch = input.mode & 2 != 0, limited = input.mode & 4 != 0
    let scribble = input.mode & 8 != 0, hold = input.mode & 16 != 0
    // The sender's read-only walk, before anything moves (it reads the sending side's view of to_user,
    // which also lies in the receiver's regions: its producer indices and the pool's return ring).
    var walk: ResumePoint.Sender?
    var walkFailed = false
    var start = ResumePoint.Receiver(normal: input.normalStart, express: input.expressStart,
                                     returnProducer: input.returnsProducer, returnConsumer: input.returnsConsumer)
    if resume {
        do { walk = try ResumePoint.sender(base: base, layout: layout, direction: .toUser) } catch {
            guard case .corrupted = error else { require(false, "ResumePoint.sender threw \(error)"); return 0 }
            walkFailed = true
        }
        do {
            start = try ResumePoint.receiver(base: base, layout: layout, direction: .toUser)
        } catch {
            guard case .corrupted = error else { require(false, "ResumePoint.receiver threw \(error)"); return 0 }
            // The walk checks the same indices first.
            require(walkFailed, "ResumePoint.receiver failed where the sender's walk did not: \(error)")
            return 0
        }
        for (lane, at, consumer, producer) in [(Lane.normal, start.normal, input.normalStart, input.normalProducer),
                                               (.express, start.express, input.expressStart, input.expressProducer)] {
            require(at &- consumer <= producer &- consumer, "\(lane) resumes at \(at), outside \(consumer)...\(producer)")
        }
        require(start.completedReturns <= d.pool.maxSegments, "completed \(start.completedReturns) returns")
        if let walk {
            require(walk.buffersInFlight.allSatisfy { Int($0) < d.pool.bufferCount }, "in flight \(walk.buffersInFlight)")
            require(walk.buffersInFlight == Array(Set(walk.buffersInFlight)).sorted(), "in flight not sorted, unique")
        }
    }

    let receiver = MessageReceiver(base: base, layout: layout, direction: .toUser, notifier: NoNotifier(),
                                   resume: start)
    let limit = Int(input.sizeLimit % 1200)
    var delivered = [Lane.normal: 0, .express: 0]
    var poolBuffersSeen: Set<UInt32> = []
    var scribbles = 0
    var segmentsDelivered = 0
    var failure: ChannelError?
    func check(_ view: MessageView) {
        let lane = view.priority.lane
        delivered[lane, default: 0] += 1
        require(view.segmentCount >= 1, "\(view.segmentCount) segments")
        var total = 0
        if view.flags.contains(.dma) {
            require(view.segmentCount <= d.pool.maxSegments, "\(view.segmentCount) segments > \(d.pool.maxSegments)")
            segmentsDelivered += view.segmentCount
            for i in 0..<view.segmentCount {
                let piece = view.segment(i)
                total += piece.count
                guard let start = piece.baseAddress else { require(piece.count == 0, "segment without memory"); continue }
                let offset = UnsafeRawPointer(start) - UnsafeRawPointer(base) - d.pool.buffers
                // An empty segment may sit at its buffer's end (offset = buffer size): the next one's start.
                guard piece.count > 0 else {
                    require(offset >= 0 && offset <= poolBytes, "empty segment \(i) at pool offset \(offset)")
                    continue
                }
                let buffer = offset / d.pool.bufferSize
                require(offset >= 0 && buffer < d.pool.bufferCount
                        && offset + piece.count <= (buffer + 1) * d.pool.bufferSize,
                        "segment \(i) at pool offset \(offset) (\(piece.count) bytes) leaves its buffer")
                poolBuffersSeen.insert(UInt32(buffer))
            }
        } else {
            require(view.segmentCount == 1, "inline message in \(view.segmentCount) segments")
            let piece = view.segment(0)
            total = piece.count
            let ring = lane == .normal ? d.normal : d.express
            require(m.contains(piece.baseAddress, count: piece.count, inside: ring.data, ring.size),
                    "inline payload outside the \(lane) ring")
        }
        require(total == view.count, "count \(view.count) != segments' \(total)")
        let bytes = view.bytes
        require(bytes.count == view.count, "bytes \(bytes.count) of \(view.count)")
        let room = Int(input.copyRoom % 1100)
        var out = [UInt8](repeating: 0, count: room)
        let copied = out.withUnsafeMutableBytes { view.copyBytes(to: $0) }
        require(copied == min(room, view.count) && out.prefix(copied).elementsEqual(bytes.prefix(copied)),
                "copyBytes copied \(copied) of \(view.count) into \(room)")
        if scribble {
            // A hostile sender rewrites everything while the message is lent.
            scribbles += 1
            let value = UInt8(truncatingIfNeeded: input.mode &+ UInt8(truncatingIfNeeded: scribbles))
            (base + d.normal.data).initializeMemory(as: UInt8.self, repeating: value, count: d.normal.size)
            (base + d.express.data).initializeMemory(as: UInt8.self, repeating: value ^ 0x5a, count: d.express.size)
        }
    }
    var rounds = 0
    receiving: while rounds < 80 {
        rounds += 1
        do throws(ChannelError) {
            if hold {
                let held = try receiver.tryHoldBatch(limit: 1 + rounds % 5, { check($0) })
                if held.count == 0 { break receiving }
                try receiver.release(held)
            } else if batch {
                if try receiver.tryReceiveBatch(limit: 1 + rounds % 5, { check($0) }) == 0 { break receiving }
            } else if limited {
                if try receiver.tryReceive(sizeLimit: limit, { check($0) }) == nil { break receiving }
            } else {
                if try receiver.tryReceive({ check($0) }) == nil { break receiving }
            }
        } catch {
            failure = error
            break receiving
        }
    }
    require(rounds < 80, "more than 79 receive rounds from two 512-byte rings")
    for (lane, startAt, producer) in [(Lane.normal, start.normal, input.normalProducer),
                                      (.express, start.express, input.expressProducer)] {
        let most = Int(min(producer &- startAt, 512) / UInt64(ABI.minimumRecord))
        require(scribble || delivered[lane, default: 0] <= most,
                "\(delivered[lane, default: 0]) \(lane) messages from \(producer &- startAt) bytes")
    }
    let total = delivered.values.reduce(0, +)
    // A return ring found full fails the channel after the body saw the message: that one is not counted.
    // (A held message is counted when lent, before its release finds the ring full.)
    let uncounted = failure == .corrupted(.returnRingOverflow) && !hold ? 1 : 0
    require(receiver.counters.load(.messagesReceived) == UInt64(total - uncounted),
            "messagesReceived \(receiver.counters.load(.messagesReceived)) != delivered \(total), mode \(input.mode), failure \(String(describing: failure))")
    let returnsNow = load(base, d.pool.returns.producer)
    if let failure {
        switch failure {
        case .corrupted:
            require(receiver.counters.load(.errors) == 1, "errors = \(receiver.counters.load(.errors)) after a failure")
            require(receiver.error == failure, "the receiver's error is not the one thrown")
            do {
                _ = try receiver.tryReceive { _ in () }
                require(false, "a failed receiver received again")
            } catch {
                require(error == failure, "a failed receiver threw \(error), first \(failure)")
            }
            require(receiver.counters.load(.errors) == 1, "errors counted again")
        case .bufferTooSmall(let needed, let available):
            require(limited && needed > available && available == limit, "bufferTooSmall(\(needed), \(available))")
            require(receiver.counters.load(.errors) == 0, "a size limit counted as an error")
        default:
            require(false, "receive threw \(failure)")
        }
    } else {
        // Clean end: both lanes empty and published.
        for (lane, ring, producer, word) in [(Lane.normal, d.normal, input.normalProducer, 8),
                                             (.express, d.express, input.expressProducer, 16)] {
            require(load(base, ring.consumer) == producer, "\(lane) consumer index not at the producer after draining")
            if delivered[lane, default: 0] > 0 {
                require(load(base, d.pool.returnIntent + word) == producer, "\(lane) delivered word behind")
            }
        }
        // Every pool buffer delivered went back through the return ring, and nothing else.
        require(returnsNow &- start.returnProducer == UInt64(segmentsDelivered),
                "\(returnsNow &- start.returnProducer) buffers returned for \(segmentsDelivered) pool segments delivered")
        if resume && !scribble && !limited {
            require(!walkFailed, "the receiver drained what the sender's walk refused")
            if let walk {
                require(walk.unreadMessages == total, "walk saw \(walk.unreadMessages) messages, receiver \(total)")
                require(poolBuffersSeen.isSubset(of: Set(walk.buffersInFlight)),
                        "delivered buffers \(poolBuffersSeen) not in flight \(walk.buffersInFlight)")
            }
        }
    }
    if resume && walkFailed && !scribble && !limited {
        require(failure != nil, "the sender's walk failed but the receiver ended clean")
    }
    return 0
}

/// Seeds: rings the real sender wrote, as inputs.
func seeds() -> [(name: String, bytes: [UInt8])] {
    func capture(_ name: String, mode: UInt8, _ send: (MessageSender, MessageReceiver) throws -> Void) -> (String, [UInt8]) {
        let base = UnsafeMutableRawPointer.allocate(byteCount: layout.totalSize, alignment: 4096)
        defer { base.deallocate() }
        base.initializeMemory(as: UInt8.self, repeating: 0, count: layout.totalSize)
        let sender = MessageSender(base: base, layout: layout, direction: .toUser, notifier: NoNotifier(),
                                   timestamps: .none)
        let receiver = MessageReceiver(base: base, layout: layout, direction: .toUser, notifier: NoNotifier())
        try! send(sender, receiver)
        var i = Input()
        i.mode = mode
        i.normalStart = load(base, d.normal.consumer); i.normalProducer = load(base, d.normal.producer)
        i.expressStart = load(base, d.express.consumer); i.expressProducer = load(base, d.express.producer)
        i.returnsProducer = load(base, d.pool.returns.producer); i.returnsConsumer = load(base, d.pool.returns.consumer)
        i.intent = load(base, d.pool.returnIntent)
        i.deliveredNormal = load(base, d.pool.returnIntent + 8); i.deliveredExpress = load(base, d.pool.returnIntent + 16)
        i.sizeLimit = 100; i.copyRoom = 50
        func bytes(_ offset: Int, _ count: Int) -> [UInt8] { Array(UnsafeRawBufferPointer(start: base + offset, count: count)) }
        i.normal = bytes(d.normal.data, d.normal.size); i.express = bytes(d.express.data, d.express.size)
        i.returns = bytes(d.pool.returns.data, d.pool.returns.size); i.pool = bytes(d.pool.buffers, poolBytes)
        return (name, i.bytes)
    }
    func send(_ s: MessageSender, _ length: Int, _ priority: MessagePriority = .normal, correlation: UInt64? = nil) throws {
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0) }
        _ = try payload.withUnsafeBytes { try s.trySend(type: .syscallEvent, priority: priority, payload: $0,
                                                         correlation: correlation) }
    }
    func drain(_ r: MessageReceiver) throws { while try r.tryReceive({ _ in () }) != nil {} }
    return [
        capture("inline", mode: 0) { s, _ in for n in [0, 1, 7, 8, 40, 60] { try send(s, n) } },
        capture("both-lanes", mode: 2) { s, _ in
            try send(s, 10); try send(s, 20, .high); try send(s, 5, .critical, correlation: 99); try send(s, 30, .low)
        },
        capture("pool", mode: 0) { s, _ in try send(s, 65); try send(s, 700, .high); try send(s, 3) },
        capture("wrapped", mode: 0) { s, r in
            for _ in 0..<5 { try send(s, 50); try send(s, 20, .high) }
            try drain(r)
            for n in [60, 33, 90, 12] { try send(s, n); try send(s, n / 2, .critical) }
        },
        capture("resume", mode: 1) { s, r in
            try send(s, 30); try send(s, 300); try send(s, 8, .high)
            _ = try r.tryReceive { _ in () }
            try send(s, 44)
        },
        capture("held", mode: 17) { s, r in
            try send(s, 12); try send(s, 200); try send(s, 9, .critical); try send(s, 70)
            _ = try r.tryReceive { _ in () }
        },
        capture("size-limit-scribble", mode: 12) { s, _ in try send(s, 90); try send(s, 120); try send(s, 4, .high) },
    ]
}

runFuzzer(seeds: seeds, fuzz)
