import ArchangelCore
import CArchangel
import Glibc

/// An eventfd: the wake-up signal between the two sides of a channel.
///
/// Non-blocking, so `notify()` never stalls the notifying side; waiting is a
/// `ppoll` with a timeout followed by a read that resets the counter.
/// The corresponding C function is `eventfd`.
public final class EventFD: PeerNotifier, @unchecked Sendable {
    /// The file descriptor (owned: closed on deinit).
    public let descriptor: Int32

    /// Creates an eventfd with counter 0, close-on-exec and non-blocking.
    ///
    /// - Throws: `ChannelError.system` when the process is out of descriptors.
    public init() throws(ChannelError) {
        descriptor = try SystemCall.retrying("eventfd") {
            archangel_eventfd(0, archangel_efd_cloexec() | archangel_efd_nonblock())
        }
    }

    /// Adopts an eventfd received from elsewhere (another process, the kernel).
    public init(adopting descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Adds 1 to the counter, waking a waiter. Never blocks.
    public func notify() {
        var one: UInt64 = 1
        // EAGAIN means the counter is saturated: a wake-up is pending anyway.
        _ = withUnsafeBytes(of: &one) { write(descriptor, $0.baseAddress, 8) }
    }

    /// Adds 1 to the counter at `deadline` (CLOCK_MONOTONIC nanoseconds), from
    /// the process's `WakeTimer`: the trailing edge of a coalesced wake-up.
    public func notify(atNanoseconds deadline: UInt64) {
        WakeTimer.shared.schedule(self, atNanoseconds: deadline)
    }

    /// Waits until notified or until `timeout` passes (nil: forever), then resets the counter.
    ///
    /// - Returns: true when notified, false on timeout.
    public func wait(timeout: Duration?) throws(ChannelError) -> Bool {
        guard try SystemCall.waitReadable(descriptor, timeout: timeout) else { return false }
        reset()
        return true
    }

    /// Clears a pending notification without waiting.
    public func reset() {
        var value: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &value) { read(descriptor, $0.baseAddress, 8) }
    }
}
