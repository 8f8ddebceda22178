import Synchronization

/// The shared words of one ring, bound at the offsets of its `RingLayout`.
///
/// Names follow liburing: a `k` prefix marks memory the other side can write
/// at any moment. Memory ordering is described in docs/memory-ordering.md;
/// the letters (A)...(H) in comments refer to its diagram.
@usableFromInline
struct RingWords {
    @usableFromInline let kProducer: UnsafeMutablePointer<Atomic<UInt64>>
    @usableFromInline let kConsumer: UnsafeMutablePointer<Atomic<UInt64>>
    @usableFromInline let kNeedWakeup: UnsafeMutablePointer<Atomic<UInt32>>
    @usableFromInline let kNeedSpace: UnsafeMutablePointer<Atomic<UInt32>>
    @usableFromInline let data: UnsafeMutableRawPointer
    @usableFromInline let size: UInt64
    @usableFromInline let mask: UInt64
    /// Index of the ring's name (e.g. `to_user.express`) in `RingNames`: a
    /// plain integer, so that copying ring state costs no reference counting.
    @usableFromInline let nameIndex: Int

    /// The ring's name, for error messages.
    @usableFromInline var name: String { RingNames.name(nameIndex) }

    init(base: UnsafeMutableRawPointer, layout: RingLayout, name: String) {
        kProducer = (base + layout.producer).assumingMemoryBound(to: Atomic<UInt64>.self)
        kConsumer = (base + layout.consumer).assumingMemoryBound(to: Atomic<UInt64>.self)
        kNeedWakeup = (base + layout.needWakeup).assumingMemoryBound(to: Atomic<UInt32>.self)
        kNeedSpace = (base + layout.needSpace).assumingMemoryBound(to: Atomic<UInt32>.self)
        data = base + layout.data
        size = UInt64(layout.size)
        mask = UInt64(layout.size - 1)
        nameIndex = RingNames.intern(name)
    }

    /// Checks an index the other side published.
    ///
    /// It must lie within `low...high` (wrapping arithmetic): indices only
    /// grow, and never pass what the checking side allows. Anything else means
    /// the other side scribbled over the index.
    @inlinable
    func check(_ theirs: UInt64, from low: UInt64, to high: UInt64) throws(ChannelError) {
        guard theirs &- low <= high &- low else {
            throw .corrupted(.indexOutOfRange(ring: name, index: theirs, expectedWithin: Self.window(low, high)))
        }
    }

    /// `low...high` for the error of an index window, cut at `UInt64.max`
    /// when the window wraps there (a peer can put indices anywhere, and a
    /// `ClosedRange` with `high < low` traps instead of reporting).
    @inlinable
    static func window(_ low: UInt64, _ high: UInt64) -> ClosedRange<UInt64> {
        high >= low ? low...high : low...UInt64.max
    }

    /// Publishes `producer` to the consumer and reports whether it sleeps and
    /// has not been signalled for this sleep yet (the caller then signals it).
    @inlinable
    func publishProducer(_ producer: UInt64, lastWoken: inout UInt32) -> Bool {
        // (A) pairs with (B): the entries written before are visible before the index.
        // (E) pairs with (F): a sequentially consistent store and load order
        // the index store before the flag load, so a consumer going to sleep
        // either sees our index or we see its flag. On x86 this is one `xchg`
        // instead of a `mov` and an `mfence`, about half the cost.
        kProducer.pointee.store(producer, ordering: .sequentiallyConsistent)
        return NeedFlag.shouldSignal(kNeedWakeup.pointee.load(ordering: .sequentiallyConsistent),
                                     lastSignalled: &lastWoken)
    }

    /// Bytes (or entries) published and not yet released, from the shared indices now.
    ///
    /// For statistics only: two racy relaxed reads, clamped to the ring size.
    func usedNow() -> UInt64 {
        let consumer = kConsumer.pointee.load(ordering: .relaxed)
        let producer = kProducer.pointee.load(ordering: .relaxed)
        return min(producer &- consumer, size)
    }
}

/// Names of rings, interned once per distinct name.
///
/// Ring state lives in structs copied on hot paths; holding a `String` there
/// cost a retain and release per message. The set of names is small (one per
/// ring kind and direction), so the table stays small.
@usableFromInline
enum RingNames {
    private static let table = PthreadLock<[String]>([])

    static func intern(_ name: String) -> Int {
        table.withLock { names in
            if let index = names.firstIndex(of: name) { return index }
            names.append(name)
            return names.count - 1
        }
    }

    @usableFromInline
    static func name(_ index: Int) -> String { table.withLock { $0[index] } }
}
