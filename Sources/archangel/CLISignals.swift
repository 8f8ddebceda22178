import Glibc
import Synchronization

/// Signals the operator commands turn into flags: Ctrl-C (SIGINT) and SIGTERM
/// ask `recv` and `top` to stop cleanly (print the summary, restore the
/// terminal); SIGWINCH asks `top` to redraw at the new size.
enum CLISignals {
    /// Set by SIGINT or SIGTERM.
    static let stopRequested = Atomic<Bool>(false)
    /// Set by SIGWINCH; taken (cleared) by the redraw.
    static let resized = Atomic<Bool>(false)

    /// Installs the handlers (without SA_RESTART, so a sleep returns early with EINTR).
    static func install(resize: Bool = false) {
        var stop = sigaction()
        stop.__sigaction_handler.sa_handler = { _ in CLISignals.stopRequested.store(true, ordering: .relaxed) }
        sigemptyset(&stop.sa_mask)
        sigaction(SIGINT, &stop, nil)
        sigaction(SIGTERM, &stop, nil)
        if resize {
            var winch = sigaction()
            winch.__sigaction_handler.sa_handler = { _ in CLISignals.resized.store(true, ordering: .relaxed) }
            sigemptyset(&winch.sa_mask)
            sigaction(SIGWINCH, &winch, nil)
        }
    }

    static var stopping: Bool { stopRequested.load(ordering: .relaxed) }
}
