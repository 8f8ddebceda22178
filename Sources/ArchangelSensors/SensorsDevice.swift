import CArchangel
import Glibc

/// `/dev/archangel_sensors`: attaches the sensors to an archangel channel and
/// configures them (archangel_sensors_ioctl.h, docs/sensors.md). The file
/// that attaches is the engine: closing it detaches, and every pending
/// request is resolved with its default.
public final class SensorsDevice {
    /// The device's path.
    public static let defaultPath = "/dev/archangel_sensors"
    private let descriptor: Int32

    /// The sensors of the module.
    public enum Sensor: UInt32, CaseIterable, Sendable {
        case exec = 0, syscall = 1, network = 2, memory = 3

        /// `exec`, `syscall`, `net`, `mem`.
        public var name: String { ["exec", "syscall", "net", "mem"][Int(rawValue)] }
        /// The sensor called `name`, or nil.
        public init?(name: String) {
            guard let found = Self.allCases.first(where: { $0.name == name || "\($0)" == name }) else { return nil }
            self = found
        }
    }

    /// What failed, with the errno's name.
    public struct DeviceError: Error, CustomStringConvertible {
        public var operation: String
        public var code: Int32
        public var description: String {
            let reason = String(cString: strerror(code))
            switch code {
            case ENOENT where operation == "open":
                return "\(SensorsDevice.defaultPath) is missing: load the sensor module (modprobe archangel_sensors)"
            case EACCES, EPERM: return "\(operation): permission denied (\(reason)): run as root"
            case EBUSY: return "\(operation): another engine is attached (\(reason)); one at a time"
            default: return "\(operation): \(reason) (errno \(code))"
            }
        }
    }

    /// Opens the device.
    public init(path: String = SensorsDevice.defaultPath) throws {
        descriptor = open(path, O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { throw DeviceError(operation: "open", code: errno) }
    }

    deinit { close(descriptor) }

    private func ioctl<T: BitwiseCopyable>(_ request: UInt, _ value: inout T, _ name: String) throws {
        while withUnsafeMutableBytes(of: &value, { archangel_ioctl(descriptor, request, $0.baseAddress) }) < 0 {
            if errno == EINTR { continue }
            throw DeviceError(operation: name, code: errno)
        }
    }

    /// Sends the sensors' records to archangel channel `channel` (this file becomes the engine).
    ///
    /// - Parameters:
    ///   - batchBytes: 0 sends one record per message; 256...65536 batches the
    ///     syscall and net sensors' records per CPU into messages of up to that size.
    ///   - batchMicroseconds: with batches, a record's longest wait (0: 1000).
    public func attach(channel: UInt32, batchBytes: UInt32 = 0, batchMicroseconds: UInt32 = 0) throws {
        var req = archangel_sensors_attach()
        req.channel_id = channel
        req.batch_bytes = batchBytes
        req.batch_us = batchMicroseconds
        try ioctl(UInt(archangel_sensors_ioc_attach), &req, "ARCHANGEL_SENSORS_IOC_ATTACH")
    }

    /// Detaches now, as closing the file does: every sensor off, every pending request resolved with its default.
    public func detach() throws {
        while archangel_ioctl(descriptor, UInt(archangel_sensors_ioc_detach), nil) < 0 {
            if errno == EINTR { continue }
            throw DeviceError(operation: "ARCHANGEL_SENSORS_IOC_DETACH", code: errno)
        }
    }

    /// Switches `sensor` on in observe mode (records only, no requests);
    /// for the syscall sensor, `syscalls` lists the numbers traced.
    public func enableObserving(_ sensor: Sensor, syscalls: [Int] = []) throws {
        try configure(sensor, SensorConfiguration(policy: .observe, syscalls: syscalls))
    }

    /// Configures `sensor` (switches it on or off, sets its policy and
    /// defaults); the module checks every field (`-EINVAL` names none, so
    /// check `SensorConfiguration` against docs/sensors.md first).
    public func configure(_ sensor: Sensor, _ configuration: SensorConfiguration) throws {
        var config = archangel_sensors_config()
        config.sensor = sensor.rawValue
        config.flags = configuration.flags.rawValue | (configuration.enabled ? UInt32(ARCHANGEL_SENSORS_F_ENABLED) : 0)
        config.policy = configuration.policy.rawValue
        config.default_verdict = configuration.defaultVerdict.rawValue
        config.deadline_ms = configuration.deadlineMilliseconds
        config.interval_ms = configuration.intervalMilliseconds
        if sensor == .syscall {
            withUnsafeMutableBytes(of: &config.syscalls) { raw in
                let words = raw.bindMemory(to: UInt64.self)
                for n in configuration.syscalls where n >= 0 && n < Int(ARCHANGEL_SENSORS_SYSCALL_BITS) {
                    words[n / 64] |= UInt64(1) << UInt64(n % 64)
                }
            }
        }
        try ioctl(UInt(archangel_sensors_ioc_configure), &config, "ARCHANGEL_SENSORS_IOC_CONFIGURE \(sensor.name)")
    }

    /// The module's counters now (`ARCHANGEL_SENSORS_IOC_GET_STATS`).
    public func statistics() throws -> SensorsStatistics {
        var raw = archangel_sensors_stats()
        try ioctl(UInt(archangel_sensors_ioc_get_stats), &raw, "ARCHANGEL_SENSORS_IOC_GET_STATS")
        return SensorsStatistics(raw)
    }
}
