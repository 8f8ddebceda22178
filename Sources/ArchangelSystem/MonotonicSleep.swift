import Glibc

/// Sleeps until `deadline` (CLOCK_MONOTONIC nanoseconds, absolute), resuming
/// after signals; returns at once when it has passed. Absolute deadlines are
/// what paced loops need: a late wake-up does not shift the schedule.
public func sleepUntil(monotonicNanoseconds deadline: UInt64) {
    var spec = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
    while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &spec, nil) == EINTR {}
}
