import Archangel
import ArgumentParser
import CArchangel
import Glibc

/// `archangel top`: a live view of every channel, refreshed every second.
struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "A live view of every channel and direction: rates, ring fill, pool, drops, wake-ups.",
        discussion: """
            One row per channel and direction: messages and payload bytes published per second, ring \
            fill now (% of the ring's bytes), pool buffers lent out now / in all, copy fallbacks (pool \
            empty), drops (refused as too large, or found the ring full or the pool empty) and \
            shared-memory errors over the last interval, and wake-ups signalled per second. Rates are \
            over the interval between two reads of the statistics (the host's, or the module's \
            /proc/archangel/comm). It redraws in place and fits the terminal's width (a resize \
            redraws at once); Ctrl-C (or SIGTERM) stops it and restores the terminal. --once \
            prints one plain snapshot (it reads twice, --interval apart) with no terminal control codes. \
            See docs/cli.md#top.
            """
    )

    @OptionGroup var backendOption: CLIBackendOption
    @OptionGroup var socketOption: SocketOption
    @Option(help: "Seconds between refreshes (and between the two reads of --once).")
    var interval = 1.0
    @Flag(help: "Print one snapshot and exit, without terminal control codes.")
    var once = false
    @Option(help: "Stop after this many refreshes (0: until Ctrl-C).")
    var count = 0

    func validate() throws {
        guard interval >= 0.05, interval <= 3600 else { throw ValidationError("--interval takes 0.05...3600 seconds") }
        guard count >= 0 else { throw ValidationError("--count must not be negative") }
    }

    func run() throws {
        let backend = ResolvedBackend.resolve(backendOption.backend, socket: socketOption, statisticsOnly: true)
        backend.announce("top")
        try reportingOperatorErrors("top", backend: backend) {
            var previous = try backend.statisticsReport()
            var previousTime = archangel_monotonic_ns()
            if once {
                pause(interval)
                let now = try backend.statisticsReport()
                let seconds = Double(archangel_monotonic_ns() - previousTime) / 1e9
                let lines = RatesTable.lines(now.rates(since: previous, seconds: seconds))
                print(header(backend, now, seconds))
                for line in lines { print(line) }
                return
            }
            CLISignals.install(resize: true)
            let terminal = isatty(STDOUT_FILENO) == 1
            if terminal { emit("\u{1B}[?1049h\u{1B}[?25l") }  // the alternate screen, the cursor hidden
            defer { if terminal { emit("\u{1B}[?25h\u{1B}[?1049l") } }
            var refreshes = 0
            while !CLISignals.stopping && (count == 0 || refreshes < count) {
                pause(interval)
                if CLISignals.stopping { break }
                let now = try backend.statisticsReport()
                let time = archangel_monotonic_ns()
                let seconds = Double(time - previousTime) / 1e9
                let (width, height) = terminal ? terminalSize() : (Int.max, Int.max)
                var lines = [header(backend, now, seconds)] + RatesTable.lines(now.rates(since: previous, seconds: seconds),
                                                                                width: width)
                if lines.count > height { lines = Array(lines.prefix(height - 1)) + ["(\(lines.count - height + 1) more rows)"] }
                emit((terminal ? "\u{1B}[H\u{1B}[2J" : "") + lines.map { String($0.prefix(width)) }.joined(separator: "\n")
                     + "\n")
                previous = now
                previousTime = time
                refreshes += 1
            }
        }
    }

    private func header(_ backend: ResolvedBackend, _ report: StatisticsReport, _ seconds: Double) -> String {
        "archangel top: \(backend.summary), channels \(report.channels.count)/\(report.maxChannels), "
            + "rates over \(RatesTable.fixed(seconds, 2)) s" + (once ? "" : "; Ctrl-C quits")
    }

    /// Sleeps `seconds`, returning early on a signal (Ctrl-C, a resize).
    private func pause(_ seconds: Double) {
        let end = archangel_monotonic_ns() + UInt64(seconds * 1e9)
        while !CLISignals.stopping {
            if CLISignals.resized.exchange(false, ordering: .relaxed) { return }
            let now = archangel_monotonic_ns()
            if now >= end { return }
            var spec = timespec(tv_sec: Int((end - now) / 1_000_000_000), tv_nsec: Int((end - now) % 1_000_000_000))
            _ = nanosleep(&spec, nil)  // EINTR on a signal: the loop checks the flags
        }
    }

    /// Columns and rows of the terminal on standard output (80x24 when it cannot tell).
    private func terminalSize() -> (Int, Int) {
        var size = winsize()
        guard archangel_ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0, size.ws_row > 0 else {
            return (80, 24)
        }
        return (Int(size.ws_col), Int(size.ws_row))
    }

    private func emit(_ text: String) { _ = writeAll(STDOUT_FILENO, text) }
}
