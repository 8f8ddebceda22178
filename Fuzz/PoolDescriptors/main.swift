// Fuzzes the buffer pool's two parsers of peer-written data, and the
// scatter-gather view over what they accept:
//  - the receiver's `PoolBorrower.borrow`: a pool message's descriptor list
//    (buffer, offset, length, reserved), against buffers already held;
//  - `MessageView` over the segments it accepted (segment, copyBytes, bytes,
//    contiguousBytes), and the return of those buffers (`stageReturn`);
//  - the sender's `PoolLender.reclaim`: buffer indices the receiver wrote
//    into the return ring, and the ring's producer index.
// Pool: 8 buffers of 256 bytes, 8 segments, in memory where everything but
// the pool, the return ring and the progress line is poisoned.
// Invariants (a reference model decides what must be accepted):
//  - borrow accepts exactly the lists the model accepts (length a multiple
//    of 16, 1...8 descriptors, reserved 0, buffer < 8, offset + length
//    <= 256, no buffer twice or already held), with the model's segment
//    count and total, each segment exactly its buffer's bytes;
//  - the held bitmap is the old one plus the list's buffers after an
//    accept, and exactly the old one after a refusal;
//  - the view copies min(count, room) bytes equal to the concatenated segments;
//  - the return ring then holds exactly the list's buffers, in order;
//  - reclaim frees exactly the lent buffers the ring returned, in order, up
//    to the first bad one (not lent or out of range), which it refuses;
//    free + lent = 8 always, the free stack holding distinct, unlent buffers.
@testable import ArchangelCore
import CArchangel
import FuzzSupport

let layout = try! ChannelLayout(configuration: ChannelConfiguration(
    normalRingBytes: 4096, expressRingBytes: 4096, poolBufferSize: 256, poolBufferCount: 8,
    poolThreshold: 128, maxSegments: 8), channelID: 2)
let d = layout.toUser
let pool = d.pool
let progressSize = MemoryLayout<archangel_receiver_progress>.size

func memory() -> GuardedMemory {
    let m = GuardedMemory(size: layout.totalSize)
    m.allow(pool.buffers, pool.bufferCount * pool.bufferSize)
    let r = pool.returns
    m.allow(r.producer, 8); m.allow(r.consumer, 8); m.allow(r.needWakeup, 4); m.allow(r.needSpace, 4)
    m.allow(r.data, r.size)
    m.allow(pool.returnIntent, progressSize)
    return m
}

func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var f = FuzzInput(data, size)
    let held0 = f.u8()
    let listLength = Int(f.u8())
    let room = Int(f.u16() % 2100)
    let descriptors = Array(f.take(listLength))
    // Sender side: lent buffers, the return ring's producer and entries.
    let lentMask = f.u8()
    let returnsProducer = UInt64(f.u8() % 12)
    let entries = Array(f.take(4 * (pool.returns.size / 4)))
    let poolBytes = Array(f.rest())

    let m = memory()
    let base = m.base
    poolBytes.withUnsafeBytes { (base + pool.buffers).copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(base), byteCount: min($0.count, 2048)) }
    borrowSide(m, held0: held0, descriptors: descriptors, room: room)
    lendSide(m, lentMask: lentMask, producer: returnsProducer, entries: entries)
    return 0
}

func borrowSide(_ m: GuardedMemory, held0: UInt8, descriptors: [UInt8], room: Int) {
    let base = m.base
    var borrower = PoolBorrower(base: base, layout: pool, name: "to_user")
    defer { borrower.deallocate() }
    borrower.held[0] = UInt64(held0)
    // The model.
    let n = descriptors.count / 16
    var expected: (count: Int, bytes: Int, pieces: [(buffer: Int, offset: Int, length: Int)])? = nil
    if descriptors.count % 16 == 0, n >= 1, n <= pool.maxSegments {
        var taken = UInt64(held0)
        var pieces: [(Int, Int, Int)] = []
        for i in 0..<n {
            func word(_ k: Int) -> Int { (0..<4).reduce(0) { $0 | Int(descriptors[16 * i + 4 * k + $1]) << (8 * $1) } }
            let (b, o, l, r) = (word(0), word(1), word(2), word(3))
            guard r == 0, b < pool.bufferCount, o <= pool.bufferSize, l <= pool.bufferSize - o,
                  taken & (1 << UInt64(b)) == 0 else { pieces = []; break }
            taken |= 1 << UInt64(b)
            pieces.append((b, o, l))
        }
        if pieces.count == n { expected = (n, pieces.reduce(0) { $0 + $1.2 }, pieces) }
    }
    // Descriptors live in a ring record: give them poisoned-free memory of their own.
    let list = UnsafeMutableRawPointer.allocate(byteCount: max(descriptors.count, 1), alignment: 8)
    defer { list.deallocate() }
    descriptors.withUnsafeBytes { list.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(list), byteCount: $0.count) }
    let result: (count: Int, bytes: Int)
    do {
        result = try borrower.borrow(descriptors: UnsafeRawPointer(list), length: descriptors.count)
    } catch {
        require(expected == nil, "borrow refused a list the model accepts: \(error)")
        guard case .corrupted(let reason) = error else { require(false, "borrow threw \(error)"); return }
        switch reason {
        case .badDescriptor, .bufferNotOwned: break
        default: require(false, "borrow threw \(reason)")
        }
        require(borrower.held[0] == UInt64(held0),
                "a refused list changed the held bitmap: \(String(held0, radix: 2)) -> \(String(borrower.held[0], radix: 2))")
        return
    }
    guard let expected else { require(false, "borrow accepted a list the model refuses"); return }
    require(result.count == expected.count && result.bytes == expected.bytes,
            "borrow gave \(result), the model \(expected.count) segments of \(expected.bytes) bytes")
    var held = UInt64(held0)
    var concatenated: [UInt8] = []
    for (i, piece) in expected.pieces.enumerated() {
        held |= 1 << UInt64(piece.buffer)
        let segment = borrower.segments[i]
        let at = pool.buffers + piece.buffer * pool.bufferSize + piece.offset
        require(segment.baseAddress == UnsafeRawPointer(base + at) && segment.count == piece.length,
                "segment \(i) is not buffer \(piece.buffer) at \(piece.offset) for \(piece.length)")
        require(borrower.segmentBuffers[i] == UInt32(piece.buffer), "segment \(i)'s buffer")
        concatenated += Array(UnsafeRawBufferPointer(start: base + at, count: piece.length))
    }
    require(borrower.held[0] == held, "held bitmap after borrow")

    // The view a body gets.
    let header = RecordHeader(type: 3, priority: 1, flags: MessageFlags.dma.rawValue, size: 0, sequence: 1, timestamp: 2)
    let record = RingRecord(header: header, payload: UnsafeRawPointer(list), payloadLength: descriptors.count,
                            correlation: nil, stride: 0)
    let view = MessageView(record: record, count: result.bytes, segments: UnsafePointer(borrower.segments),
                           segmentCount: result.count)
    require(view.bytes == concatenated, "view.bytes is not the concatenated segments")
    var out = [UInt8](repeating: 0xee, count: room)
    let copied = out.withUnsafeMutableBytes { view.copyBytes(to: $0) }
    require(copied == min(room, result.bytes) && out.prefix(copied).elementsEqual(concatenated.prefix(copied)),
            "copyBytes gave \(copied) bytes for \(result.bytes) into \(room)")
    require(out.dropFirst(copied).allSatisfy { $0 == 0xee }, "copyBytes wrote past what it reported")
    require((view.contiguousBytes != nil) == (result.count == 1), "contiguousBytes with \(result.count) segments")

    // Return them.
    do {
        try borrower.stageReturn(count: result.count, consumerAfter: 64, express: false)
    } catch {
        require(false, "returning \(result.count) buffers to an empty return ring: \(error)")
    }
    _ = borrower.publishReturns()
    require(borrower.held[0] == UInt64(held0), "returned buffers still held")
    let r = pool.returns
    require((base + r.producer).load(as: UInt64.self) == UInt64(result.count), "return ring producer")
    for (i, piece) in expected.pieces.enumerated() {
        require((base + r.data + 4 * i).load(as: UInt32.self) == UInt32(piece.buffer), "return entry \(i)")
    }
}

func lendSide(_ m: GuardedMemory, lentMask: UInt8, producer: UInt64, entries: [UInt8]) {
    let base = m.base
    let r = pool.returns
    let inFlight = (0..<UInt32(pool.bufferCount)).filter { lentMask & (1 << $0) != 0 }
    var lender = PoolLender(base: base, layout: pool, name: "to_user", inFlight: inFlight)
    defer { lender.deallocate() }
    require(lender.freeCount == pool.bufferCount - inFlight.count, "free count at start")
    (base + r.consumer).storeBytes(of: UInt64(0), as: UInt64.self)
    (base + r.producer).storeBytes(of: producer, as: UInt64.self)
    entries.withUnsafeBytes { (base + r.data).copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(base), byteCount: min($0.count, r.size)) }
    let slots = UInt64(r.size / 4)
    // The model: entries 0..<producer in order; the first not lent (or out of range) is refused.
    var lent = inFlight.reduce(UInt64(0)) { $0 | 1 << UInt64($1) }
    var freed: [UInt32] = []
    var refused = false
    if producer <= slots {
        for i in 0..<Int(producer) {
            let value = (base + r.data + 4 * i).load(as: UInt32.self)
            guard value < UInt32(pool.bufferCount), lent & (1 << UInt64(value)) != 0 else { refused = true; break }
            lent &= ~(1 << UInt64(value))
            freed.append(value)
        }
    }
    let freeBefore = lender.freeCount
    do {
        try lender.reclaim()
        require(producer <= slots && !refused, "reclaim accepted \(producer) entries the model refuses")
    } catch {
        require(producer > slots || refused, "reclaim refused what the model accepts: \(error)")
        guard case .corrupted(let reason) = error else { require(false, "reclaim threw \(error)"); return }
        switch reason {
        case .indexOutOfRange: require(producer > slots, "index refused within the ring")
        case .badReturn: require(refused, "badReturn the model does not see")
        default: require(false, "reclaim threw \(reason)")
        }
    }
    if producer <= slots {
        require(lender.freeCount == freeBefore + freed.count, "freed \(lender.freeCount - freeBefore), model \(freed.count)")
        for (i, buffer) in freed.enumerated() {
            require(lender.freeStack[freeBefore + i] == buffer, "free stack entry \(i)")
        }
    }
    let free = (0..<lender.freeCount).map { lender.freeStack[$0] }
    require(Set(free).count == free.count && free.allSatisfy { Int($0) < pool.bufferCount }, "free stack \(free)")
    let lentNow = (0..<pool.bufferCount).filter { lender.lent[0] & (1 << UInt64($0)) != 0 }
    require(lentNow.count + free.count == pool.bufferCount, "\(lentNow.count) lent + \(free.count) free")
    require(free.allSatisfy { lender.lent[0] & (1 << UInt64($0)) == 0 }, "a free buffer is marked lent")
}

func seeds() -> [(name: String, bytes: [UInt8])] {
    func descriptor(_ b: UInt32, _ o: UInt32, _ l: UInt32) -> [UInt8] {
        var out: [UInt8] = []
        for v in [b, o, l, 0] { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        return out
    }
    func input(held: UInt8, list: [[UInt8]], room: UInt16, lent: UInt8, returned: [UInt32]) -> [UInt8] {
        let bytes = list.flatMap { $0 }
        var out: [UInt8] = [held, UInt8(bytes.count)]
        withUnsafeBytes(of: room.littleEndian) { out += $0 }
        out += bytes
        out += [lent, UInt8(returned.count)]
        var ring = [UInt8](repeating: 0, count: pool.returns.size)
        for (i, v) in returned.enumerated() { withUnsafeBytes(of: v.littleEndian) { ring.replaceSubrange(4 * i..<4 * i + 4, with: $0) } }
        return out + ring + (0..<2048).map { UInt8(truncatingIfNeeded: $0 * 7) }
    }
    return [
        ("one-segment", input(held: 0, list: [descriptor(0, 0, 256)], room: 300, lent: 1, returned: [0])),
        ("scatter", input(held: 0b1000_0001, list: [descriptor(1, 0, 256), descriptor(2, 0, 256), descriptor(3, 0, 100)],
                          room: 400, lent: 0b1110, returned: [3, 1, 2])),
        ("offsets", input(held: 0, list: [descriptor(7, 200, 56), descriptor(4, 10, 0)], room: 20, lent: 0xff,
                          returned: [7, 6, 5, 4, 3, 2, 1, 0])),
        ("eight", input(held: 0, list: (0..<8).map { descriptor($0, 0, 256) }, room: 2048, lent: 0xf0, returned: [4, 5])),
    ]
}

runFuzzer(seeds: seeds, fuzz)
