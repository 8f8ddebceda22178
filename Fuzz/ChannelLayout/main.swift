// Fuzzes `ChannelLayout.load(from:size:)`: page 0 of channel memory, as a
// peer (the kernel, a host, a client bringing memory back) wrote it.
//
// Input: a little-endian u32, the mapped size claimed; then the 432-byte
// header (`struct archangel_channel_header`); then one byte of options.
// Invariants:
//  - load reads the header and nothing else (the header sits alone in
//    poisoned memory: AddressSanitizer reports any other read);
//  - a loaded layout has every region aligned, inside total_size <= the
//    mapped size and apart from the others (checked again here, independently);
//  - it round-trips: writeHeader(layout) loads back equal;
//  - it works: in memory of exactly total_size bytes (when that is at most
//    2 MiB), with everything outside the mapping poisoned, a sender and a
//    receiver of each direction bound to it carry an inline message on each
//    lane, and a pool message when there is a pool, intact (of sizes within
//    the sender's `maxPayload`).
@testable import ArchangelCore
import CArchangel
import FuzzSupport

let headerSize = MemoryLayout<archangel_channel_header>.size

func seed(_ configuration: ChannelConfiguration, id: UInt32, ringBytes: Int? = nil) -> [UInt8] {
    var layout = try! ChannelLayout(configuration: configuration, channelID: id)
    if let ringBytes {
        // Lanes smaller than a creator makes, as small as load allows.
        layout.toUser.normal.size = ringBytes; layout.toUser.express.size = ringBytes
        layout.toKernel.normal.size = ringBytes; layout.toKernel.express.size = ringBytes
        try! layout.validate(mappedSize: layout.totalSize)
    }
    var bytes = [UInt8](repeating: 0, count: 4 + headerSize + 1)
    bytes.withUnsafeMutableBytes { raw in
        raw.storeBytes(of: UInt32(layout.totalSize).littleEndian, as: UInt32.self)
        layout.writeHeader(to: raw.baseAddress! + 4)
    }
    return bytes
}

func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mapped = Int(input.u32())
    let header = GuardedMemory(size: 4096)
    header.allowAll()
    header.base.copyMemory(from: input.take(headerSize).baseAddress ?? UnsafeRawPointer(header.base),
                           byteCount: min(headerSize, max(0, size - 4)))
    header.forbidAll()
    header.allow(0, headerSize)
    let options = input.u8()
    let layout: ChannelLayout
    do {
        layout = try ChannelLayout.load(from: header.base, size: mapped)
    } catch {
        switch error {
        case .abiMismatch, .corrupted(.badLayout): break
        default: require(false, "load threw \(error)")
        }
        return 0
    }
    checkRegions(layout, mapped: mapped)

    // Round trip through the header writer.
    let copy = GuardedMemory(size: 4096)
    copy.allowAll()
    layout.writeHeader(to: copy.base)
    do {
        let again = try ChannelLayout.load(from: copy.base, size: mapped)
        require(again == layout, "writeHeader(load(x)) loads back different")
    } catch {
        require(false, "the header of a loaded layout does not load: \(error)")
    }

    if layout.totalSize <= 2 << 20 { carryMessages(layout, options: options) }
    return 0
}

/// Every region of the layout, recomputed here, lies inside and apart.
func checkRegions(_ layout: ChannelLayout, mapped: Int) {
    require(layout.totalSize <= mapped, "total size \(layout.totalSize) > mapped \(mapped)")
    var regions: [(String, Int, Int)] = [("header", 0, headerSize)]
    func add(_ name: String, _ offset: Int, _ count: Int, align: Int) {
        require(offset >= 0 && count >= 0 && offset % align == 0, "\(name) at \(offset) (\(count) bytes) misaligned")
        require(offset <= layout.totalSize && count <= layout.totalSize - offset,
                "\(name) at \(offset)+\(count) outside \(layout.totalSize)")
        regions.append((name, offset, offset + count))
    }
    func ring(_ name: String, _ r: RingLayout, entry: Int) {
        add("\(name).producer", r.producer, 8, align: 8)
        add("\(name).consumer", r.consumer, 8, align: 8)
        add("\(name).need_wakeup", r.needWakeup, 4, align: 4)
        add("\(name).need_space", r.needSpace, 4, align: 4)
        add("\(name).data", r.data, r.size, align: ABI.pageSize)
        require(r.size > 0 && r.size & (r.size - 1) == 0, "\(name) size \(r.size)")
        require(r.entrySize == entry, "\(name) entry size \(r.entrySize)")
    }
    for d in Direction.allCases {
        let dir = layout.direction(d)
        add("\(d).progress", dir.pool.returnIntent, MemoryLayout<archangel_receiver_progress>.size, align: 8)
        ring("\(d).normal", dir.normal, entry: 0)
        ring("\(d).express", dir.express, entry: 0)
        // The largest descriptor list fits either lane.
        if dir.pool.bufferCount > 0 {
            add("\(d).pool", dir.pool.buffers, dir.pool.bufferCount * dir.pool.bufferSize, align: ABI.pageSize)
            ring("\(d).returns", dir.pool.returns, entry: 4)
            require(dir.pool.returns.size / 4 >= dir.pool.bufferCount, "\(d) return ring smaller than the pool")
            let list = ABI.headerSize + ABI.correlationSize + dir.pool.maxSegments * ABI.descriptorSize
            require(list <= min(dir.normal.size, dir.express.size) / 4, "\(d) descriptor list does not fit")
        }
    }
    regions.sort { $0.1 < $1.1 }
    for (a, b) in zip(regions, regions.dropFirst()) {
        require(a.2 <= b.1, "\(a.0) [\(a.1), \(a.2)) overlaps \(b.0) [\(b.1), \(b.2))")
    }
}

/// Binds both ends of each direction to memory of exactly `totalSize` bytes
/// and carries messages through every lane, and the pool.
func carryMessages(_ layout: ChannelLayout, options: UInt8) {
    let memory = GuardedMemory(size: max(layout.totalSize, 1))
    memory.allow(0, layout.totalSize)
    layout.writeHeader(to: memory.base)
    for direction in Direction.allCases {
        let sender = MessageSender(base: memory.base, layout: layout, direction: direction, notifier: NoNotifier())
        let receiver = MessageReceiver(base: memory.base, layout: layout, direction: direction, notifier: NoNotifier())
        let pool = layout.direction(direction).pool
        // Within the sender's limit: every loaded layout takes some correlated message
        // (lanes as small as load allows, 256 bytes, take 28-byte payloads).
        let limit = sender.maxPayload
        require(limit >= 0, "\(direction): a loaded layout whose sender takes no message (limit \(limit))")
        var lengths = [min(Int(options) % 64, max(limit, 0)), min(Int(options), max(limit, 0))]
        if pool.bufferCount > 0 {
            lengths.append(min(limit, pool.threshold + 1 + Int(options) * 37))
        }
        for (i, length) in lengths.enumerated() {
            let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) }
            let priority: MessagePriority = i % 2 == 0 ? .normal : .critical
            let correlation: UInt64? = UInt64(i)
            do {
                let outcome = try payload.withUnsafeBytes { raw throws(ChannelError) in
                    try sender.trySend(type: .control, priority: priority, payload: raw, correlation: correlation)
                }
                require(outcome == .sent, "\(direction): a \(length)-byte message on an empty channel: \(outcome)")
                let got = try receiver.tryReceive { view in (view.bytes, view.priority, view.correlation) }
                require(got?.0 == payload, "\(direction): message \(i) of \(length) bytes came back different")
                require(got?.1 == priority && got?.2 == correlation, "\(direction): message \(i) header changed")
                try sender.reclaimBuffers()
            } catch {
                require(false, "\(direction): carrying a \(length)-byte message over a loaded layout: \(error)")
            }
        }
    }
}

runFuzzer(seeds: {
    [("default", seed(.default, id: 0)),
     ("small-pool", seed(ChannelConfiguration(normalRingBytes: 4096, expressRingBytes: 4096, poolBufferSize: 256,
                                              poolBufferCount: 8, poolThreshold: 128, maxSegments: 8), id: 7)),
     ("no-pool", seed(ChannelConfiguration(normalRingBytes: 8192, expressRingBytes: 4096, poolBufferCount: 0, poolThreshold: 512), id: 1)),
     ("tiny-rings", seed(ChannelConfiguration(poolBufferCount: 0, poolThreshold: 512), id: 2, ringBytes: 256)),
     ("big-rings", seed(ChannelConfiguration(normalRingBytes: 1 << 20, expressRingBytes: 1 << 16, poolBufferSize: 1 << 16,
                                             poolBufferCount: 3, poolThreshold: 4000, maxSegments: 3), id: 15))]
}, fuzz)
