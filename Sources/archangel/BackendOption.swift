import Archangel
import ArgumentParser

/// `--backend`, shared by `demo` and `bench` (which can also run everything in one process).
/// `send`, `recv`, `stats` and `top` take `CLIBackendOption` instead (CLIBackend.swift).
struct BackendOption: ParsableArguments {
    /// Backends this build can open. `userspace` is the embedded default; `kernel` needs the module
    /// (and root); `auto` is `kernel` when /dev/archangel exists, else `userspace`.
    static let available = ["userspace", "in-process", "kernel", "auto"]

    @Option(help: "Backend: \(BackendOption.available.joined(separator: ", ")).")
    var backend = "userspace"

    func validate() throws {
        guard Self.available.contains(backend) else {
            throw ValidationError("backend '\(backend)' is not available in this build; use one of: "
                + Self.available.joined(separator: ", "))
        }
    }
}

/// `--socket`: where the userspace host listens.
struct SocketOption: ParsableArguments {
    @Option(name: .customLong("socket"),
            help: "The userspace host's socket (default: $XDG_RUNTIME_DIR/archangel.sock, as root /run/archangel/archangel.sock).")
    var socketArgument: String?

    /// The socket to use: the one given, else the host's default.
    var socket: String { socketArgument ?? HostServer.defaultSocketPath }

    /// Whether `--socket` was given (under `--backend auto` it selects the userspace host).
    var isExplicit: Bool { socketArgument != nil }
}
