import ArchangelCore
import ArchangelSystem
import Synchronization

/// Drives a channel's receive side for its async interface.
///
/// A dedicated thread (not the cooperative pool: it blocks in `ppoll`)
/// receives messages, resolves pending `request` calls by correlation, and
/// queues everything else for `messages`. The queue is bounded: when it is
/// full the thread stops receiving, the ring fills up, and the sender feels
/// the back-pressure (except while a `request` waits, see `run`). Nothing is dropped.
final class ReceivePump: @unchecked Sendable {
    struct State {
        var queue: [Message] = []
        var head = 0
        var waiter: CheckedContinuation<Message?, any Error>?
        var pending: [UInt64: CheckedContinuation<Message, any Error>] = [:]
        var failure: ChannelError?
        var stopped = false
        var pumpWaitingForRoom = false
    }

    let state = PthreadLock(State())
    let roomAvailable: EventFD
    let capacity: Int
    /// The channel's receive side. The thread holds this, not the channel,
    /// so that dropping the channel runs its deinit, which stops the pump.
    let path: ReceivePath
    private var thread: SystemThread?

    init(channel: Channel, capacity: Int) throws(ChannelError) {
        roomAvailable = try EventFD()
        self.capacity = capacity
        path = channel.receivePath
        thread = try SystemThread(name: "archangel-rx\(channel.id)", detached: true) { [self] in run() }
    }

    /// The thread: receives until stopped or the channel closes. It blocks
    /// with no timeout (an idle channel costs no wake-up); `stop` wakes it.
    private func run() {
        while true {
            let full = state.withLock { s -> Bool? in
                if s.stopped { return nil }
                // A full queue stops the pump, unless a request waits: its
                // response may sit behind the queued messages in the ring, and
                // stopping would deadlock the caller. Then the queue grows.
                s.pumpWaitingForRoom = s.queue.count - s.head >= capacity && s.pending.isEmpty
                return s.pumpWaitingForRoom
            }
            guard let full else { return }
            if full {
                _ = try? roomAvailable.wait(timeout: nil)
                continue
            }
            do {
                let message = try path.receive(timeout: nil, stopped: { [state] in state.withLock { $0.stopped } }) {
                    () throws(ChannelError) in try path.receiver.tryReceive { Message($0) }
                }
                deliver(message)
            } catch {
                finish(with: error)
                return
            }
        }
    }

    private func deliver(_ message: Message) {
        let resume: (CheckedContinuation<Message, any Error>?, CheckedContinuation<Message?, any Error>?) =
            state.withLock { s in
                if let correlation = message.correlation, let request = s.pending.removeValue(forKey: correlation) {
                    return (request, nil)
                }
                if let waiter = s.waiter {
                    s.waiter = nil
                    return (nil, waiter)
                }
                s.queue.append(message)
                return (nil, nil)
            }
        resume.0?.resume(returning: message)
        resume.1?.resume(returning: message)
    }

    private func finish(with error: ChannelError) {
        let (waiter, pending) = state.withLock { s in
            s.failure = error
            s.stopped = true
            defer { s.waiter = nil; s.pending = [:] }
            return (s.waiter, s.pending)
        }
        // A closed channel ends the message sequence normally; other errors surface.
        if error == .closed { waiter?.resume(returning: nil) } else { waiter?.resume(throwing: error) }
        for (_, request) in pending { request.resume(throwing: error) }
    }

    /// Stops the thread (it wakes at once) and fails whatever waits.
    func stop() {
        finish(with: .closed)
        roomAvailable.notify()
        path.dataReady.notify()
    }

    /// The next queued message; suspends until one arrives. nil once the channel closed.
    func next() async throws -> Message? {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Message?, any Error>) in
            let (result, wakePump) = state.withLock { s -> (Result<Message?, ChannelError>?, Bool) in
                if s.head < s.queue.count {
                    let message = s.queue[s.head]
                    s.head += 1
                    if s.head > 64 && s.head * 2 > s.queue.count {
                        s.queue.removeFirst(s.head)
                        s.head = 0
                    }
                    return (.success(message), s.pumpWaitingForRoom)
                }
                if let failure = s.failure { return (failure == .closed ? .success(nil) : .failure(failure), false) }
                precondition(s.waiter == nil, "one task at a time may iterate a channel's messages")
                s.waiter = continuation
                return (nil, false)
            }
            if wakePump { roomAvailable.notify() }
            if let result { continuation.resume(with: result) }
        }
    }

    /// Registers interest in the response to request `sequence`.
    func expectResponse(to sequence: UInt64, _ continuation: CheckedContinuation<Message, any Error>) {
        let (failure, wakePump) = state.withLock { s -> (ChannelError?, Bool) in
            if let failure = s.failure { return (failure, false) }
            s.pending[sequence] = continuation
            return (nil, s.pumpWaitingForRoom)
        }
        if let failure { continuation.resume(throwing: failure) }
        // A pump paused on a full queue must resume: the response may be behind the queued messages.
        if wakePump { roomAvailable.notify() }
    }

    /// Withdraws interest (send failed or the task was cancelled); resumes with `error`.
    func cancelResponse(to sequence: UInt64, with error: any Error) {
        let continuation = state.withLock { $0.pending.removeValue(forKey: sequence) }
        continuation?.resume(throwing: error)
    }
}
