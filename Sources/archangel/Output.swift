import Glibc

/// Writes a line to standard error (progress and diagnostics stay off stdout,
/// so `--json` output can be piped).
func printError(_ text: String) {
    _ = writeAll(STDERR_FILENO, text + "\n")
}

/// Writes all of `text` to `descriptor` unbuffered (retrying EINTR and short
/// writes), so a reader of the pipe sees it at once and a line is never cut
/// by a later buffer flush; false when the write failed (errno says why).
func writeAll(_ descriptor: Int32, _ text: String) -> Bool {
    var text = text
    return text.withUTF8 { bytes -> Bool in
        var offset = 0
        while offset < bytes.count {
            let n = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }
}
