import Archangel
import ArchangelSystem
import ArgumentParser
import Glibc

/// The backends the operator commands (`send`, `recv`, `stats`, `top`) reach.
/// The in-process backend is not one of them: its channels live inside one program.
enum CLIBackendChoice: String, ExpressibleByArgument, CaseIterable {
    case auto, userspace, kernel
}

/// `--backend userspace|kernel|auto` of the operator commands.
struct CLIBackendOption: ParsableArguments {
    @Option(help: ArgumentHelp(
        "userspace (a host's socket), kernel (/dev/archangel) or auto.",
        discussion: "auto: the userspace host when --socket is given; else /dev/archangel when the module is "
            + "loaded and the device opens (root); else the userspace host at the default socket."))
    var backend: CLIBackendChoice = .auto
}

/// The backend a command settled on, and why.
struct ResolvedBackend {
    enum Kind: Equatable {
        case userspace(socket: String)
        case kernel(device: String)
    }

    var kind: Kind
    /// Why this one: the operator named it, or what `auto` found.
    var reason: String

    var name: String {
        switch kind {
        case .userspace: "userspace"
        case .kernel: "kernel"
        }
    }

    /// `userspace (host at PATH)` or `kernel (/dev/archangel)`.
    var summary: String {
        switch kind {
        case .userspace(let socket): "userspace (host at \(socket))"
        case .kernel(let device): "kernel (\(device))"
        }
    }

    /// Says on standard error which backend was chosen (standard output stays data).
    func announce(_ command: String) {
        printError("archangel \(command): backend \(summary): \(reason)")
    }

    /// Settles `choice`: see `CLIBackendOption` for the `auto` rule.
    ///
    /// - Parameter statisticsOnly: the command only reads statistics, which need no device access:
    ///   under `auto` it also takes the kernel module's /proc/archangel/comm when the device does not
    ///   open (not root) and no host answers.
    static func resolve(_ choice: CLIBackendChoice, socket: SocketOption,
                        statisticsOnly: Bool = false) -> ResolvedBackend {
        let device = KernelDevice.defaultPath
        switch choice {
        case .userspace:
            return ResolvedBackend(kind: .userspace(socket: socket.socket), reason: "--backend userspace")
        case .kernel:
            return ResolvedBackend(kind: .kernel(device: device), reason: "--backend kernel")
        case .auto:
            if socket.isExplicit {
                return ResolvedBackend(kind: .userspace(socket: socket.socket), reason: "auto: --socket names a host")
            }
            let opened = deviceOpens(device)
            if opened == 0 {
                return ResolvedBackend(kind: .kernel(device: device),
                                       reason: "auto: the module is loaded and \(device) opens")
            }
            let why = opened == ENOENT || opened == ENODEV || opened == ENXIO
                ? "auto: no kernel module (\(device) is missing)"
                : "auto: \(device) does not open (\(ABI.describe(errno: opened)))"
            if statisticsOnly, access(KernelDevice.statisticsPath, R_OK) == 0,
               (try? UserspaceBackend.statisticsText(socket: socket.socket)) == nil {
                return ResolvedBackend(kind: .kernel(device: device),
                                       reason: why + ", no host answers, \(KernelDevice.statisticsPath) is readable")
            }
            return ResolvedBackend(kind: .userspace(socket: socket.socket), reason: why + ", so the userspace host")
        }
    }

    /// 0 when `path` opens read-write, else the open's errno.
    private static func deviceOpens(_ path: String) -> Int32 {
        var descriptor: Int32
        repeat { descriptor = Glibc.open(path, O_RDWR | O_CLOEXEC) } while descriptor < 0 && errno == EINTR
        guard descriptor >= 0 else { return errno }
        Glibc.close(descriptor)
        return 0
    }

    /// The statistics text of this backend (the `/proc/archangel/comm` format).
    func statisticsText() throws(ChannelError) -> String {
        switch kind {
        case .userspace(let socket): try UserspaceBackend.statisticsText(socket: socket)
        case .kernel: try KernelBackend.statisticsText()
        }
    }

    /// The statistics of this backend, parsed.
    ///
    /// - Throws: `ChannelError` reaching the backend; `OperatorError` when
    ///   the text does not parse (a host or module of another release).
    func statisticsReport() throws -> StatisticsReport {
        let text = try statisticsText()
        do {
            return try StatisticsReport(parsing: text)
        } catch {
            throw OperatorError(cause: "the \(name) statistics do not parse: \(error)",
                                fix: "use the same release for this command and the \(name == "kernel" ? "module" : "host")",
                                exitCode: OperatorError.software)
        }
    }

    /// How many channels this backend can hold (ids are 0..<limit), or nil when it cannot tell.
    func channelLimit() throws(ChannelError) -> Int? {
        switch kind {
        case .userspace:
            // Also the first contact with the host: a missing host shows here.
            return (try? StatisticsReport(parsing: try statisticsText()))?.maxChannels
        case .kernel(let device):
            guard KernelDevice.exists(at: device) else { throw .deviceUnavailable(path: device, errno: ENOENT) }
            return KernelDevice.maxChannels
        }
    }

    /// Opens `side` of channel `id` (nil: the backend's natural side for `defaultSide`).
    ///
    /// On the kernel backend this process is always the user side: the kernel side is kernel code.
    /// - Throws: `OperatorError` with the cause and the fix.
    func open(channel id: UInt32, side: ChannelSide?, defaultSide: ChannelSide) throws -> Channel {
        do {
            if let limit = try channelLimit(), Int(id) >= limit {
                throw ChannelError.invalidChannelID(id, limit: limit)
            }
            switch kind {
            case .userspace(let socket):
                return try UserspaceBackend(socketPath: socket).attach(ChannelID(id), side: side ?? defaultSide)
            case .kernel(let device):
                if side == .kernel {
                    throw OperatorError(
                        cause: "--side kernel is not available on the kernel backend: the kernel side of a "
                            + "module channel is kernel code",
                        fix: "drop --side (this process is the user side), or use --backend userspace with a host",
                        exitCode: OperatorError.usage)
                }
                return try KernelBackend(devicePath: device).attach(ChannelID(id))
            }
        } catch let error as ChannelError {
            throw OperatorError(error, backend: self, channel: id)
        }
    }
}
