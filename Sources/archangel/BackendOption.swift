import ArgumentParser

/// `--backend`, shared by every command that opens channels.
struct BackendOption: ParsableArguments {
    /// Backends this build can open. The userspace host and the kernel module join later.
    static let available = ["in-process"]

    @Option(help: "Backend: \(BackendOption.available.joined(separator: ", ")).")
    var backend = "in-process"

    func validate() throws {
        guard Self.available.contains(backend) else {
            throw ValidationError("backend '\(backend)' is not available in this build; use one of: "
                + Self.available.joined(separator: ", "))
        }
    }
}
