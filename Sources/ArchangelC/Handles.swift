// The objects behind libarchangel's opaque handles (include/archangel.h).
import Archangel
import CArchangelAPI
import Glibc

/// `archangel_manager`: an in-process `CommManager`.
final class ManagerBox {
    let manager: CommManager
    init(_ manager: CommManager) { self.manager = manager }
}

/// `archangel_host`: a `HostServer` serving a manager.
final class HostBox {
    let host: HostServer
    init(_ host: HostServer) { self.host = host }
}

/// `archangel_channel`: one endpoint, with what it lends out.
///
/// Used by one sending and one receiving thread at a time, like the
/// `Channel` (the header's rules); the receive state below belongs to the
/// receiving thread, the loan to the sending one.
final class ChannelBox {
    let channel: Channel
    let base: UnsafeRawPointer
    /// What the receiving thread lends out. Behind a pointer, not in `var`
    /// properties: a class's stored properties cost a dynamic exclusivity
    /// check per access, several per receive.
    struct ReceiveState {
        /// What the last receive holds (released by the next one or `archangel_release`).
        var held = HeldMessages()
        /// Segments of the last pool message held, described in `segments`.
        var poolSegmentCount = 0
    }
    let rx: UnsafeMutablePointer<ReceiveState>
    /// The segments of the last pool message held, described to C.
    let segments: UnsafeMutablePointer<archangel_segment>
    static let segmentCapacity = 256
    /// The open loan, if any (sending thread).
    var loan: Loan?

    init(_ channel: Channel) {
        self.channel = channel
        base = channel.memoryBase
        rx = .allocate(capacity: 1)
        rx.initialize(to: ReceiveState())
        segments = .allocate(capacity: Self.segmentCapacity)
        segments.initialize(repeating: archangel_segment(data: nil, size: 0), count: Self.segmentCapacity)
    }

    deinit {
        try? releaseHeld()
        loan = nil
        segments.deallocate()
        rx.deallocate()
    }

    /// What the last receive holds (a computed property: no exclusivity check).
    var held: HeldMessages {
        @inline(__always) get { rx.pointee.held }
        @inline(__always) set { rx.pointee.held = newValue }
    }

    /// Segments of the last pool message held.
    var poolSegmentCount: Int { rx.pointee.poolSegmentCount }

    /// Gives back what the last receive lent.
    @inline(__always)
    func releaseHeld() throws(ChannelError) {
        guard rx.pointee.held.count > 0 else { return }
        let h = rx.pointee.held
        rx.pointee = ReceiveState()
        try channel.release(h)
    }

    /// Describes `view` in `message`; the segments of a pool message go to `segments`.
    @inline(__always)
    func describe(_ view: MessageView, in message: UnsafeMutablePointer<archangel_message>) {
        let first = view.segment(0)
        message.pointee.data = first.baseAddress
        message.pointee.size = view.count
        message.pointee.sequence = view.sequence
        message.pointee.timestamp = view.timestamp
        message.pointee.correlation = view.correlation ?? 0
        message.pointee.type = view.type.rawValue
        message.pointee.priority = view.priority.rawValue
        message.pointee.flags = view.flags.rawValue
        message.pointee.segment_count = UInt32(view.segmentCount)
        if view.flags.contains(.dma) {
            recordSegments(view)
            message.pointee.segments = UnsafePointer(segments)
        } else {
            message.pointee.segments = nil
        }
    }

    @inline(__always)
    func recordSegments(_ view: MessageView) {
        let n = min(view.segmentCount, Self.segmentCapacity)
        for i in 0..<n {
            let piece = view.segment(i)
            segments[i] = archangel_segment(data: piece.baseAddress, size: piece.count)
        }
        rx.pointee.poolSegmentCount = n
    }
}

// MARK: Handle conversion

@inline(__always)
func handle(_ object: AnyObject) -> OpaquePointer { OpaquePointer(Unmanaged.passRetained(object).toOpaque()) }

@inline(__always)
func box<T: AnyObject>(_ pointer: OpaquePointer, as: T.Type) -> T {
    Unmanaged<T>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
}

@inline(__always)
func free<T: AnyObject>(_ pointer: OpaquePointer, as: T.Type) {
    Unmanaged<T>.fromOpaque(UnsafeRawPointer(pointer)).release()
}

@inline(__always)
func channelBox(_ pointer: OpaquePointer) -> ChannelBox { box(pointer, as: ChannelBox.self) }

/// Runs `body` with the handle's box, without retaining it: the caller's
/// handle keeps it alive for the call (the hot paths: receive, send).
@inline(__always)
func withChannelBox<R>(_ pointer: OpaquePointer, _ body: (ChannelBox) -> R) -> R {
    Unmanaged<ChannelBox>.fromOpaque(UnsafeRawPointer(pointer))._withUnsafeGuaranteedRef(body)
}
