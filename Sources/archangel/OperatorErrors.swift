import Archangel
import ArgumentParser
import Glibc

/// An error as the operator commands report it: what went wrong and what to do about it.
///
/// Every `ChannelError` a command can meet is mapped here, in one place, so
/// the same cause reads the same way in `send`, `recv`, `stats` and `top`.
/// The exit codes follow sysexits(3) (docs/cli.md#errors).
struct OperatorError: Error, CustomStringConvertible {
    /// What went wrong, with the path, id or size involved.
    var cause: String
    /// What to do about it.
    var fix: String
    /// The process's exit status.
    var exitCode: Int32

    /// EX_USAGE: a bad argument (channel id, size).
    static let usage: Int32 = 64
    /// EX_DATAERR: input that cannot be sent as given.
    static let dataError: Int32 = 65
    /// EX_UNAVAILABLE: no host, no module, the peer went away.
    static let unavailable: Int32 = 69
    /// EX_SOFTWARE: corruption, protocol violations.
    static let software: Int32 = 70
    /// EX_IOERR: the output could not be written.
    static let ioError: Int32 = 74
    /// EX_TEMPFAIL: try again later (timed out, side in use).
    static let temporary: Int32 = 75
    /// EX_NOPERM: permission denied on the device or the socket.
    static let permission: Int32 = 77

    var description: String { "\(cause)\n  fix: \(fix)" }

    init(cause: String, fix: String, exitCode: Int32) {
        self.cause = cause
        self.fix = fix
        self.exitCode = exitCode
    }

    /// Maps `error`, met on `backend` (and channel `channel`, if any), to its cause and fix.
    init(_ error: ChannelError, backend: ResolvedBackend, channel: UInt32? = nil) {
        let auto = backend.reason.hasPrefix("auto") ? " (\(backend.reason))" : ""
        switch error {
        case let .hostUnavailable(path, code) where code == EACCES || code == EPERM:
            self.init(cause: "permission denied on the host's socket \(path) (\(ABI.describe(errno: code)))",
                      fix: "run as the user who started `archangel serve` (or root), or have the host admit a "
                          + "group with `archangel serve --group NAME` and join it",
                      exitCode: Self.permission)
        case let .hostUnavailable(path, code):
            self.init(cause: "no Archangel host is running at \(path) (\(ABI.describe(errno: code)))\(auto)",
                      fix: "start one with `archangel serve` (it listens there by default; "
                          + "`archangel serve --socket PATH` elsewhere), pass --socket PATH of a running host, "
                          + "or use --backend kernel with the module loaded",
                      exitCode: Self.unavailable)
        case let .deviceUnavailable(path, code) where code == EACCES || code == EPERM:
            self.init(cause: "permission denied on \(path) (\(ABI.describe(errno: code))): the device is 0600",
                      fix: "run as root (sudo), or use --backend userspace with `archangel serve`",
                      exitCode: Self.permission)
        case let .deviceUnavailable(path, code) where code == ENOENT || code == ENODEV || code == ENXIO:
            self.init(cause: "the archangel kernel module is not loaded (\(path): \(ABI.describe(errno: code)))",
                      fix: "load it with `sudo modprobe archangel` (installed) or `sudo insmod kernel/archangel.ko` "
                          + "(built in the tree), or use --backend userspace with `archangel serve`",
                      exitCode: Self.unavailable)
        case let .deviceUnavailable(path, code):
            self.init(cause: "cannot open \(path): \(ABI.describe(errno: code))",
                      fix: "check the module with `lsmod | grep archangel` and `dmesg`, or use --backend userspace",
                      exitCode: Self.unavailable)
        case let .invalidChannelID(id, limit):
            self.init(cause: Self.badChannel(id, limit: limit, backend: backend),
                      fix: "pass --channel between 0 and \(limit - 1)"
                          + (backend.name == "userspace" ? " (a host started with `archangel serve --max-channels N` has 0..N-1)"
                                                          : " (the module's max_channels parameter sets the limit)"),
                      exitCode: Self.usage)
        case let .hostRefused(status, reason) where status == -EINVAL && reason.contains("out of range"):
            self.init(cause: "bad channel id\(channel.map { " \($0)" } ?? ""): \(reason)",
                      fix: "pass --channel within the host's range (0..15 unless `archangel serve --max-channels` changed it)",
                      exitCode: Self.usage)
        case let .payloadTooLarge(size, limit):
            self.init(cause: "a message of \(size) bytes is too large: channel\(channel.map { " \($0)" } ?? "")'s limit is \(limit) bytes",
                      fix: "send at most \(limit) bytes per message (--size, or shorter lines), or recreate the "
                          + "channel with a larger pool buffer",
                      exitCode: Self.usage)
        case let .sideInUse(id):
            self.init(cause: "that side of channel \(id) is held by another process (one reader and one writer per side)",
                      fix: "stop the other `archangel send`/`recv` (or program) on it, wait until it exits, or use "
                          + "another channel",
                      exitCode: Self.temporary)
        case .timedOut:
            self.init(cause: "timed out waiting for room on channel\(channel.map { " \($0)" } ?? ""): nothing is "
                          + "draining it",
                      fix: "start a receiver on the other side (`archangel recv`), or raise --timeout",
                      exitCode: Self.temporary)
        case .peerDisconnected:
            self.init(cause: "the host went away (stopped or killed) while the channel was in use",
                      fix: "restart it with `archangel serve`; then run the command again",
                      exitCode: Self.unavailable)
        case .closed:
            self.init(cause: "channel\(channel.map { " \($0)" } ?? "") was destroyed while in use",
                      fix: "create it again (attaching creates it) and run the command again",
                      exitCode: Self.unavailable)
        case let .abiMismatch(ours, theirs):
            self.init(cause: "ABI version mismatch: this archangel speaks \(ABI.describe(version: ours)), the "
                          + "\(backend.name == "kernel" ? "module" : "host") \(ABI.describe(version: theirs))",
                      fix: "upgrade the older side so both come from the same release",
                      exitCode: Self.software)
        case .corrupted, .protocolViolation:
            self.init(cause: error.description,
                      fix: "destroy and recreate the channel; if it repeats, report it with `archangel stats` output",
                      exitCode: Self.software)
        case let .tooManyChannels(limit):
            self.init(cause: "all \(limit) channels are in use, so channel\(channel.map { " \($0)" } ?? "") cannot be created",
                      fix: "use an existing channel (`archangel stats` lists them) or raise the limit",
                      exitCode: Self.temporary)
        default:
            self.init(cause: error.description, fix: "see docs/cli.md#errors", exitCode: 1)
        }
    }

    private static func badChannel(_ id: UInt32, limit: Int, backend: ResolvedBackend) -> String {
        let owner = backend.name == "kernel" ? "the kernel module" : "this host"
        return "bad channel id \(id): the valid range on \(owner) is 0..\(limit - 1)"
    }
}

/// Runs a command's body and reports its failure as `OperatorError` on standard error:
/// `archangel COMMAND: error: CAUSE` then `  fix: FIX`, exiting with the error's code.
func reportingOperatorErrors(_ command: String, backend: ResolvedBackend?, _ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as OperatorError {
        printError("archangel \(command): error: \(error)")
        throw ExitCode(error.exitCode)
    } catch let error as ChannelError {
        let mapped = backend.map { OperatorError(error, backend: $0) }
            ?? OperatorError(cause: error.description, fix: "see docs/cli.md#errors", exitCode: 1)
        printError("archangel \(command): error: \(mapped)")
        throw ExitCode(mapped.exitCode)
    }
}
