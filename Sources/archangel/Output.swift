import Glibc

/// Writes a line to standard error (progress and diagnostics stay off stdout,
/// so `--json` output can be piped).
func printError(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
}
