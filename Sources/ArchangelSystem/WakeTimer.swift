import ArchangelCore
import CArchangel
import Glibc

/// The trailing edge of coalesced wake-ups: one thread per process that
/// signals notifiers at the times senders asked for (docs/efficiency.md).
///
/// It starts with the first request and then sleeps on a condition variable
/// (CLOCK_MONOTONIC) until the earliest deadline; with nothing pending it
/// sleeps with no timeout at all, so an idle process has no timer armed and
/// makes no wake-ups. A sender schedules at most one signal per window, so a
/// request costs at most one futex wake per window, never one per message.
public final class WakeTimer: @unchecked Sendable {
    /// The process's timer.
    public static let shared = WakeTimer()

    private struct Entry {
        let deadline: UInt64
        let notifier: any PeerNotifier
    }

    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    /// Pending signals, a binary min-heap on the deadline (guarded by `mutex`).
    private var heap: [Entry] = []
    private var started = false
    /// Signals delivered so far (guarded by `mutex`; for tests and statistics).
    private var fired: UInt64 = 0

    private init() {
        pthread_mutex_init(&mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(&condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    /// Signals `notifier` at `deadline` (CLOCK_MONOTONIC nanoseconds), or at
    /// once if it has passed. Never blocks for long: a lock and a heap push.
    public func schedule(_ notifier: any PeerNotifier, atNanoseconds deadline: UInt64) {
        pthread_mutex_lock(&mutex)
        heap.append(Entry(deadline: deadline, notifier: notifier))
        siftUp(heap.count - 1)
        let earliest = heap[0].deadline == deadline
        var start = false
        if !started {
            started = true
            start = true
        }
        pthread_mutex_unlock(&mutex)
        if start {
            do {
                _ = try SystemThread(name: "archangel-wake", detached: true) { [self] in run() }
            } catch {
                // No thread: signal now rather than never (the delivery promise).
                notifier.notify()
                pthread_mutex_lock(&mutex)
                started = false
                pthread_mutex_unlock(&mutex)
            }
        } else if earliest {
            pthread_cond_signal(&condition)
        }
    }

    /// Signals delivered by this timer so far.
    public var firedCount: UInt64 {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return fired
    }

    /// Signals scheduled and not yet delivered.
    public var pendingCount: Int {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return heap.count
    }

    private func run() {
        // A short window must not oversleep by the default 50 µs of slack.
        _ = archangel_set_timer_slack(1_000)
        pthread_mutex_lock(&mutex)
        while true {
            guard let first = heap.first else {
                pthread_cond_wait(&condition, &mutex)
                continue
            }
            let now = archangel_monotonic_ns()
            if first.deadline > now {
                var until = timespec(tv_sec: Int(first.deadline / 1_000_000_000),
                                     tv_nsec: Int(first.deadline % 1_000_000_000))
                pthread_cond_timedwait(&condition, &mutex, &until)
                continue
            }
            let due = popFirst()
            fired &+= 1
            pthread_mutex_unlock(&mutex)
            due.notifier.notify()
            pthread_mutex_lock(&mutex)
        }
    }

    private func popFirst() -> Entry {
        let first = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0)
        }
        return first
    }

    private func siftUp(_ index: Int) {
        var child = index
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].deadline < heap[parent].deadline else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private func siftDown(_ index: Int) {
        var parent = index
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < heap.count && heap[left].deadline < heap[smallest].deadline { smallest = left }
            if right < heap.count && heap[right].deadline < heap[smallest].deadline { smallest = right }
            guard smallest != parent else { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
