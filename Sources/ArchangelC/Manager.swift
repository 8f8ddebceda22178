// The manager, host and open calls of libarchangel (include/archangel.h).
import Archangel
import CArchangelAPI
import Glibc
import Logging

// MARK: Manager

@_cdecl("archangel_manager_create")
public func cManagerCreate(_ maxChannels: UInt32, _ preset: Int32, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guard let out else { return invalid("out is NULL") }
    guard let policy = waitPolicy(preset) else { return invalid("wait preset \(preset)") }
    return run { () throws(ChannelError) in
        let manager = try CommManager(configuration: .init(maxChannels: maxChannels == 0 ? 16 : Int(maxChannels),
                                                           waitPolicy: policy))
        out.pointee = handle(ManagerBox(manager))
        return 0
    }
}

@_cdecl("archangel_manager_destroy")
public func cManagerDestroy(_ manager: OpaquePointer?) {
    guard let manager else { return }
    let m = box(manager, as: ManagerBox.self).manager
    for id in m.channelIDs { m.destroyChannel(id) }
    free(manager, as: ManagerBox.self)
}

func manager(_ pointer: OpaquePointer) -> CommManager { box(pointer, as: ManagerBox.self).manager }

func configuration(_ g: UnsafePointer<archangel_geometry>?) -> ChannelConfiguration {
    var c = ChannelConfiguration.default
    guard let g = g?.pointee else { return c }
    if g.normal_ring_bytes != 0 { c.normalRingBytes = Int(g.normal_ring_bytes) }
    if g.express_ring_bytes != 0 { c.expressRingBytes = Int(g.express_ring_bytes) }
    if g.pool_buffer_size != 0 { c.poolBufferSize = Int(g.pool_buffer_size) }
    if g.pool_buffer_count == UInt32.max { c.poolBufferCount = 0 } else if g.pool_buffer_count != 0 {
        c.poolBufferCount = Int(g.pool_buffer_count)
    }
    if g.pool_threshold != 0 { c.poolThreshold = Int(g.pool_threshold) }
    if g.max_segments != 0 { c.maxSegments = Int(g.max_segments) }
    return c
}

@_cdecl("archangel_comm_channel_create_with")
public func cChannelCreateWith(_ m: OpaquePointer?, _ id: UnsafeMutablePointer<UInt32>?,
                               _ geometry: UnsafePointer<archangel_geometry>?) -> Int32 {
    guard let m, let id else { return invalid("manager or channel_id is NULL") }
    return run { () throws(ChannelError) in
        let wanted = id.pointee == ARCHANGEL_ANY_CHANNEL ? nil : ChannelID(id.pointee)
        let config = configuration(geometry)
        try config.validate()
        id.pointee = try manager(m).createChannel(id: wanted, configuration: config).rawValue
        return 0
    }
}

@_cdecl("archangel_comm_channel_create")
public func cChannelCreate(_ m: OpaquePointer?, _ id: UnsafeMutablePointer<UInt32>?) -> Int32 {
    cChannelCreateWith(m, id, nil)
}

@_cdecl("archangel_comm_channel_destroy")
public func cChannelDestroy(_ m: OpaquePointer?, _ id: UInt32) -> Int32 {
    guard let m else { return invalid("manager is NULL") }
    guard manager(m).destroyChannel(ChannelID(id)) else { return status(.channelNotFound(id)) }
    return 0
}

@_cdecl("archangel_comm_send_message")
public func cCommSend(_ m: OpaquePointer?, _ id: UInt32, _ type: UInt8, _ priority: UInt8,
                      _ data: UnsafeRawPointer?, _ size: UInt32) -> Int32 {
    guard let m else { return invalid("manager is NULL") }
    guard let t = MessageType(rawValue: type), let p = MessagePriority(rawValue: priority) else {
        return invalid("type \(type) or priority \(priority)")
    }
    guard data != nil || size == 0 else { return invalid("data is NULL") }
    return run { () throws(ChannelError) in
        try manager(m).send(channel: ChannelID(id), type: t, priority: p,
                            bytes: UnsafeRawBufferPointer(start: data, count: Int(size)))
        return 0
    }
}

@_cdecl("archangel_comm_receive_message")
public func cCommReceive(_ m: OpaquePointer?, _ id: UInt32, _ type: UnsafeMutablePointer<UInt8>?,
                         _ data: UnsafeMutableRawPointer?, _ maxSize: UInt32) -> Int32 {
    guard let m else { return invalid("manager is NULL") }
    guard data != nil || maxSize == 0 else { return invalid("data is NULL") }
    return run { () throws(ChannelError) in
        let info = try manager(m).receive(channel: ChannelID(id),
                                          into: UnsafeMutableRawBufferPointer(start: data, count: Int(maxSize)))
        type?.pointee = info.type.rawValue
        return Int32(clamping: info.count)
    }
}

@_cdecl("archangel_comm_notify_kernel")
public func cNotifyKernel(_ m: OpaquePointer?, _ id: UInt32) -> Int32 {
    guard let m else { return invalid("manager is NULL") }
    return run { () throws(ChannelError) in try manager(m).notifyKernel(channel: ChannelID(id)); return 0 }
}

@_cdecl("archangel_comm_notify_user")
public func cNotifyUser(_ m: OpaquePointer?, _ id: UInt32) -> Int32 {
    guard let m else { return invalid("manager is NULL") }
    return run { () throws(ChannelError) in try manager(m).notifyUser(channel: ChannelID(id)); return 0 }
}

@_cdecl("archangel_manager_stats_text")
public func cManagerStatsText(_ m: OpaquePointer?, _ buffer: UnsafeMutablePointer<CChar>?, _ length: Int) -> Int32 {
    guard let m else { return invalid("manager is NULL") }
    return copyText(manager(m).statistics().text, to: buffer, length: length)
}

// MARK: Host

@_cdecl("archangel_host_start")
public func cHostStart(_ m: OpaquePointer?, _ path: UnsafePointer<CChar>?, _ allowKernelSide: Int32,
                       _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guard let m, let out else { return invalid("manager or out is NULL") }
    let socket = path.map { String(cString: $0) } ?? HostServer.defaultSocketPath
    return run { () throws(ChannelError) in
        // Warnings and errors only: a library does not chatter on stderr.
        var logger = Logger(label: "archangel.host")
        logger.logLevel = getenv("ARCHANGEL_LOG_LEVEL").flatMap { Logger.Level(rawValue: String(cString: $0)) } ?? .warning
        let host = try HostServer(manager: manager(m),
                                  configuration: .init(socketPath: socket, allowKernelSide: allowKernelSide != 0),
                                  logger: logger)
        out.pointee = handle(HostBox(host))
        return 0
    }
}

@_cdecl("archangel_host_stop")
public func cHostStop(_ host: OpaquePointer?) {
    guard let host else { return }
    box(host, as: HostBox.self).host.stop()
    free(host, as: HostBox.self)
}

@_cdecl("archangel_host_stats_text")
public func cHostStatsText(_ path: UnsafePointer<CChar>?, _ buffer: UnsafeMutablePointer<CChar>?,
                           _ length: Int) -> Int32 {
    let socket = path.map { String(cString: $0) } ?? HostServer.defaultSocketPath
    return run { () throws(ChannelError) in
        copyText(try UserspaceBackend.statisticsText(socket: socket), to: buffer, length: length)
    }
}

// MARK: Opening channels

func opened(_ out: UnsafeMutablePointer<OpaquePointer?>, _ channel: Channel) -> Int32 {
    out.pointee = handle(ChannelBox(channel))
    return 0
}

@_cdecl("archangel_open_in_process")
public func cOpenInProcess(_ m: OpaquePointer?, _ id: UInt32, _ side: Int32,
                           _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guard let m, let out else { return invalid("manager or out is NULL") }
    guard side == ARCHANGEL_SIDE_USER || side == ARCHANGEL_SIDE_KERNEL else { return invalid("side \(side)") }
    return run { () throws(ChannelError) in
        let channel = side == ARCHANGEL_SIDE_KERNEL ? try manager(m).channel(ChannelID(id))
                                                    : try manager(m).userEndpoint(ChannelID(id))
        return opened(out, channel)
    }
}

@_cdecl("archangel_open_userspace")
public func cOpenUserspace(_ path: UnsafePointer<CChar>?, _ id: UInt32, _ side: Int32, _ create: Int32,
                           _ preset: Int32, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guard let out else { return invalid("out is NULL") }
    guard side == ARCHANGEL_SIDE_USER || side == ARCHANGEL_SIDE_KERNEL else { return invalid("side \(side)") }
    guard let policy = waitPolicy(preset) else { return invalid("wait preset \(preset)") }
    let backend = UserspaceBackend(socketPath: path.map { String(cString: $0) } ?? HostServer.defaultSocketPath,
                                   create: create != 0, waitPolicy: policy)
    return run { () throws(ChannelError) in
        let channel = try backend.attach(id == ARCHANGEL_ANY_CHANNEL ? nil : ChannelID(id),
                                         side: side == ARCHANGEL_SIDE_KERNEL ? .kernel : .user)
        return opened(out, channel)
    }
}

@_cdecl("archangel_open_kernel")
public func cOpenKernel(_ path: UnsafePointer<CChar>?, _ id: UInt32, _ create: Int32, _ preset: Int32,
                        _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guard let out else { return invalid("out is NULL") }
    guard let policy = waitPolicy(preset) else { return invalid("wait preset \(preset)") }
    let backend = KernelBackend(devicePath: path.map { String(cString: $0) } ?? "/dev/archangel",
                                create: create != 0, waitPolicy: policy)
    return run { () throws(ChannelError) in
        opened(out, try backend.attach(id == ARCHANGEL_ANY_CHANNEL ? nil : ChannelID(id)))
    }
}

@_cdecl("archangel_kernel_available")
public func cKernelAvailable(_ path: UnsafePointer<CChar>?) -> Int32 {
    let device = path.map { String(cString: $0) } ?? "/dev/archangel"
    return access(device, R_OK | W_OK) == 0 ? 1 : 0
}
