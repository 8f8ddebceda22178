import Archangel
import ArchangelSystem
import Glibc
import Testing

/// The kernel backend where the module is not loaded (the host), and `.auto`.
@Suite("Kernel backend without the module")
struct KernelBackendTests {
    @Test("a missing device says to load the module")
    func missingDeviceSaysToLoadTheModule() throws {
        let backend = KernelBackend(devicePath: "/nonexistent/archangel")
        #expect(backend.name == "kernel")
        #expect(!KernelBackend.isAvailable(devicePath: backend.devicePath))
        #expect(throws: ChannelError.deviceUnavailable(path: "/nonexistent/archangel", errno: ENOENT)) {
            try Channel.open(ChannelID(0), backend: backend)
        }
        let text = ChannelError.deviceUnavailable(path: "/dev/archangel", errno: ENOENT).description
        #expect(text.contains("is the archangel module loaded?"))
        #expect(ChannelError.deviceUnavailable(path: "/dev/archangel", errno: EACCES).description
            .contains("run as root"))
    }

    @Test("a device node without the module's ioctls is refused with the errno")
    func nonArchangelDeviceIsRefused() throws {
        // /dev/null opens but knows no archangel ioctl.
        let device = try KernelDevice(path: "/dev/null")
        #expect(throws: ChannelError.self) { try device.attach(0) }
        device.close()
        #expect(throws: ChannelError.closed) { try device.attach(0) }
        #expect(device.notify(.data) == EBADF)
    }

    @Test("auto falls back to the userspace host when there is no device")
    func autoFallsBackToTheHost() throws {
        let manager = try CommManager(configuration: .init(maxChannels: 2))
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let server = try HostServer(manager: manager, configuration: .init(socketPath: directory.path + "/host.sock"))
        defer { server.stop() }
        let id = try manager.createChannel()
        let backend = AutoBackend(devicePath: "/nonexistent/archangel", socketPath: server.configuration.socketPath)
        #expect(backend.name == "auto")
        let user = try Channel.open(id, backend: backend)
        defer { user.close() }
        try manager.send(channel: id, type: .control, bytes: [1, 2, 3])
        #expect(try user.receive(timeout: .seconds(5)).bytes == [1, 2, 3])
    }
}
