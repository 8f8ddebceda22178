import ArchangelCore
import CArchangel
import Glibc

/// An open file of `/dev/archangel`, the archangel kernel module's device:
/// its ioctls (create, attach, destroy, eventfds, notify, the extra shared
/// region, the load generator) and the piecewise mapping of a channel's
/// memory. See docs/abi.md, "Device interface".
///
/// Each open file is unbound until `attach` (or `create` with `attach`)
/// binds it to one channel as that channel's single user side; closing it
/// detaches, and the kernel keeps the channel and its messages for the next
/// attacher. The descriptor sits behind a lock so that `close()` can race
/// with a notifying thread without the ioctl reaching a reused descriptor.
public final class KernelDevice: @unchecked Sendable {
    /// The module's device node.
    public static let defaultPath = "/dev/archangel"
    /// The load generator's read()/write() baseline device.
    public static let readWritePath = "/dev/archangel_rw"
    /// The module's statistics file.
    public static let statisticsPath = "/proc/archangel/comm"

    /// The path this file was opened from.
    public let path: String
    private let fd: PthreadLock<Int32>

    /// Whether a device node exists at `path` (the module is loaded); says nothing of permissions.
    public static func exists(at path: String = defaultPath) -> Bool {
        access(path, F_OK) == 0
    }

    /// Opens the device read-write, close-on-exec.
    ///
    /// - Throws: `deviceUnavailable` with the open's errno: ENOENT when the
    ///   module is not loaded, EACCES when this process may not open it (0600: root).
    public init(path: String = defaultPath) throws(ChannelError) {
        self.path = path
        var descriptor: Int32
        repeat { descriptor = open(path, O_RDWR | O_CLOEXEC) } while descriptor < 0 && errno == EINTR
        guard descriptor >= 0 else { throw .deviceUnavailable(path: path, errno: errno) }
        fd = PthreadLock(descriptor)
    }

    deinit { close() }

    /// Closes the file (idempotent). A bound file detaches from its channel;
    /// later calls fail with `closed`.
    public func close() {
        fd.withLock { descriptor in
            if descriptor >= 0 { Glibc.close(descriptor) }
            descriptor = -1
        }
    }

    /// The raw descriptor, or -1 once closed. Valid only until `close()`:
    /// use it for `poll` from a thread that `close()` waits for.
    public var descriptor: Int32 { fd.withLock { $0 } }

    /// Issues `request` with `argument`, under the lock that `close()` takes.
    ///
    /// - Returns: the ioctl's non-negative result.
    /// - Throws: the errno, mapped by `failure`.
    private func ioctl<T: BitwiseCopyable>(_ request: UInt, _ argument: inout T, _ name: String,
                          failure: (Int32) -> ChannelError) throws(ChannelError) -> Int32 {
        let (result, code): (Int32, Int32) = fd.withLock { descriptor in
            guard descriptor >= 0 else { return (-1, EBADF) }
            while true {
                let r = withUnsafeMutableBytes(of: &argument) { archangel_ioctl(descriptor, request, $0.baseAddress) }
                if r >= 0 { return (r, 0) }
                if errno != EINTR { return (r, errno) }
            }
        }
        guard result < 0 else { return result }
        throw code == EBADF ? .closed : failure(code)
    }

    /// The generic mapping of errors any ioctl may return.
    private func common(_ name: String, _ code: Int32, channel: UInt32? = nil) -> ChannelError {
        switch code {
        case EPIPE: .closed
        case ENOENT: channel.map { .channelNotFound($0) } ?? .system(operation: name, errno: code)
        case EIO:
            .corrupted(.reportedByPeer("the kernel found a bad index, record, descriptor or return entry "
                + "written by the user side (errors in \(Self.statisticsPath))"))
        default: .system(operation: "\(name) on \(path)", errno: code)
        }
    }

    // MARK: Channels

    /// Creates a channel in the module.
    ///
    /// - Parameters:
    ///   - id: the id to take; nil takes the lowest free one.
    ///   - geometry: the channel's geometry, taken exactly; nil takes the module's default.
    ///   - attach: also bind this file to the new channel (as `attach` does).
    /// - Returns: the new channel's id.
    /// - Throws: `channelExists`, `tooManyChannels`, `invalidConfiguration`
    ///   (the module refused the geometry), `sideInUse` (this file is bound already).
    public func create(id: UInt32?, geometry: ChannelConfiguration?, attach: Bool) throws(ChannelError) -> UInt32 {
        var req = archangel_create_req()
        req.channel_id = id ?? ARCHANGEL_CHANNEL_ANY
        req.flags = attach ? ARCHANGEL_CREATE_ATTACH : 0
        if let g = geometry {
            try g.validate()
            req.flags |= ARCHANGEL_CREATE_EXACT
            req.normal_ring_bytes = UInt32(g.normalRingBytes)
            req.express_ring_bytes = UInt32(g.expressRingBytes)
            req.pool_buffer_size = UInt32(g.poolBufferSize)
            req.pool_buffer_count = UInt32(g.poolBufferCount)
            req.pool_threshold = UInt32(g.poolThreshold)
            req.max_segments = UInt32(g.maxSegments)
        }
        let path = path
        _ = try ioctl(UInt(archangel_ioc_create), &req, "ARCHANGEL_IOC_CREATE") { code in
            switch code {
            case EEXIST: .channelExists(id ?? 0)
            case ENOSPC: .tooManyChannels(limit: Self.maxChannels)
            case EBUSY: .sideInUse(id ?? ARCHANGEL_CHANNEL_ANY)
            case EINVAL: .invalidConfiguration("the module refused the channel geometry or id "
                + "(ids are 0..<\(Self.maxChannels); see docs/abi.md)")
            default: .system(operation: "ARCHANGEL_IOC_CREATE on \(path)", errno: code)
            }
        }
        return req.channel_id
    }

    /// What `attach` reports: the channel's geometry and the bytes to map.
    public struct Attachment: Sendable {
        /// The channel's layout offsets, as the module computed them.
        public var offsets: archangel_channel_offsets
        /// Bytes to reserve and map (the layout's total size).
        public var mmapSize: Int
        /// The module's ABI version.
        public var abiVersion: UInt32
    }

    /// Binds this file to channel `id` as its user side.
    ///
    /// - Throws: `channelNotFound`; `sideInUse` (another file holds the user
    ///   side, or this file is bound to another channel); `abiMismatch` with
    ///   both versions; `closed` (destroyed).
    public func attach(_ id: UInt32) throws(ChannelError) -> Attachment {
        var req = archangel_attach_req()
        req.channel_id = id
        req.abi_version = archangel_abi_version
        let ours = archangel_abi_version
        do throws(ChannelError) {
            _ = try ioctl(UInt(archangel_ioc_attach), &req, "ARCHANGEL_IOC_ATTACH") { code in
                switch code {
                case EBUSY: .sideInUse(id)
                case EPROTO: .abiMismatch(ours: ours, theirs: 0)
                default: common("ARCHANGEL_IOC_ATTACH", code, channel: id)
                }
            }
        } catch .abiMismatch {
            // The module wrote its own version back into the request.
            throw .abiMismatch(ours: ours, theirs: req.abi_version)
        }
        return Attachment(offsets: req.offsets, mmapSize: Int(clamping: req.mmap_size), abiVersion: req.abi_version)
    }

    /// Destroys channel `id` (any file may): a bound user side sees `closed`.
    ///
    /// - Throws: `channelNotFound`.
    public func destroy(_ id: UInt32) throws(ChannelError) {
        var value = id
        _ = try ioctl(UInt(archangel_ioc_destroy), &value, "ARCHANGEL_IOC_DESTROY") { code in
            common("ARCHANGEL_IOC_DESTROY", code, channel: id)
        }
    }

    /// Registers the eventfds the kernel signals (-1 unregisters one).
    ///
    /// - Parameters:
    ///   - data: signalled when the kernel published on `to_user` and this side asked for a wake-up.
    ///   - space: signalled when the kernel freed room on `to_kernel` and this side asked for it.
    public func setEventFDs(data: Int32, space: Int32) throws(ChannelError) {
        var req = archangel_eventfds()
        req.data_fd = data
        req.space_fd = space
        _ = try ioctl(UInt(archangel_ioc_set_eventfds), &req, "ARCHANGEL_IOC_SET_EVENTFDS") { code in
            common("ARCHANGEL_IOC_SET_EVENTFDS", code)
        }
    }

    /// Sets how the kernel's side of the bound channel waits and wakes
    /// (`ARCHANGEL_IOC_SET_WAIT`): its in-kernel receivers, and its coalesced
    /// wake-ups of this side (docs/efficiency.md).
    ///
    /// - Throws: `invalidConfiguration` when the module refuses a value (EINVAL).
    public func setWait(_ policy: WaitPolicy) throws(ChannelError) {
        var req = archangel_wait_config()
        req.flags = policy.adaptive ? ARCHANGEL_WAIT_ADAPTIVE | (policy.pacedPolls ? ARCHANGEL_WAIT_PACED_POLLS : 0) : 0
        req.wake_batch = UInt32(clamping: policy.wakeBatch)
        req.max_delay_ns = policy.adaptive ? policy.windowNanoseconds : 0
        req.spin_ns = policy.spinNanoseconds
        _ = try ioctl(UInt(archangel_ioc_set_wait), &req, "ARCHANGEL_IOC_SET_WAIT") { code in
            code == EINVAL ? .invalidConfiguration("the module refused the wait policy \(policy)")
                           : common("ARCHANGEL_IOC_SET_WAIT", code)
        }
    }

    /// How the kernel's side of the bound channel waits and wakes (`ARCHANGEL_IOC_GET_WAIT`).
    public func wait() throws(ChannelError) -> WaitPolicy {
        var req = archangel_wait_config()
        _ = try ioctl(UInt(archangel_ioc_get_wait), &req, "ARCHANGEL_IOC_GET_WAIT") { code in
            common("ARCHANGEL_IOC_GET_WAIT", code)
        }
        return WaitPolicy(maxDeliveryDelay: .nanoseconds(Int64(clamping: req.max_delay_ns)),
                          spin: .nanoseconds(Int64(clamping: req.spin_ns)), wakeBatch: Int(req.wake_batch),
                          adaptive: req.flags & ARCHANGEL_WAIT_ADAPTIVE != 0,
                          pacedPolls: req.flags & ARCHANGEL_WAIT_PACED_POLLS != 0)
    }

    /// What `notify` wakes in the kernel.
    public struct Wake: OptionSet, Sendable {
        /// The mask bits.
        public let rawValue: UInt32
        /// Makes a mask.
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// Kernel receivers: this side published on `to_kernel`.
        public static let data = Wake(rawValue: ARCHANGEL_NOTIFY_DATA)
        /// Kernel senders: this side consumed on `to_user` or returned buffers.
        public static let space = Wake(rawValue: ARCHANGEL_NOTIFY_SPACE)
    }

    /// Wakes kernel threads waiting on the bound channel. Never blocks.
    ///
    /// - Returns: 0, or the errno (EPIPE once the channel is destroyed, EBADF once closed).
    @discardableResult
    public func notify(_ wake: Wake) -> Int32 {
        fd.withLock { descriptor in
            guard descriptor >= 0 else { return EBADF }
            var mask = wake.rawValue
            while archangel_ioctl(descriptor, UInt(archangel_ioc_notify), &mask) < 0 {
                if errno != EINTR { return errno }
            }
            return 0
        }
    }

    /// Whether the bound channel still lives: false once it is destroyed.
    public func isChannelAlive() -> Bool {
        (try? sharedRegionSize()) != nil
    }

    // MARK: The extra shared region

    /// Gives the bound channel an extra shared region of `size` bytes (rounded up to pages).
    ///
    /// - Throws: `channelExists`-like refusals as `system` (EEXIST: it has one; EINVAL: 0 or above 256 MiB).
    public func setupSharedRegion(size: Int) throws(ChannelError) {
        var value = UInt64(size)
        _ = try ioctl(UInt(archangel_ioc_setup_shm), &value, "ARCHANGEL_IOC_SETUP_SHM") { code in
            common("ARCHANGEL_IOC_SETUP_SHM", code)
        }
    }

    /// Removes the bound channel's extra shared region (mappings keep it until unmapped).
    public func cleanupSharedRegion() throws(ChannelError) {
        var unused: UInt64 = 0
        _ = try ioctl(UInt(archangel_ioc_cleanup_shm), &unused, "ARCHANGEL_IOC_CLEANUP_SHM") { code in
            common("ARCHANGEL_IOC_CLEANUP_SHM", code)
        }
    }

    /// The size of the bound channel's extra shared region; 0 when it has none.
    ///
    /// - Throws: `closed` once the channel is destroyed.
    public func sharedRegionSize() throws(ChannelError) -> Int {
        var size: UInt64 = 0
        _ = try ioctl(UInt(archangel_ioc_shm_size), &size, "ARCHANGEL_IOC_SHM_SIZE") { code in
            common("ARCHANGEL_IOC_SHM_SIZE", code)
        }
        return Int(clamping: size)
    }

    /// Maps the bound channel's extra shared region (read-write, shared); nil when it has none.
    public func mapSharedRegion() throws(ChannelError) -> SharedMemory? {
        let size = try sharedRegionSize()
        guard size > 0 else { return nil }
        let pointer: UnsafeMutableRawPointer? = fd.withLock { descriptor in
            guard descriptor >= 0,
                  let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor,
                               off_t(archangel_mmap_off_shared)),
                  p != MAP_FAILED else { return nil }
            return p
        }
        guard let pointer else { throw .system(operation: "mmap of the shared region of \(path)", errno: errno) }
        return SharedMemory(adoptingMapping: pointer, size: size)
    }

    // MARK: Channel memory

    /// Maps the bound channel's memory the way the module requires: the
    /// whole span reserved `PROT_NONE`, then each region `MAP_SHARED |
    /// MAP_FIXED` at file offset = layout offset: pages 0-1 (header and the
    /// kernel's lines) read-only, the rest of the rings read-write, each pool
    /// on its own, read-write.
    ///
    /// - Throws: `corrupted(.badLayout)` when the offsets do not describe
    ///   that shape; `system` when a mapping fails.
    public func mapChannel(_ attachment: Attachment) throws(ChannelError) -> SharedMemory {
        let o = attachment.offsets, size = attachment.mmapSize
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        func pageUp(_ n: Int) -> Int { (n + page - 1) / page * page }
        guard size > 3 * page, UInt64(size) == o.total_size, o.kernel_lines == UInt64(page),
              o.user_lines == UInt64(2 * page) else {
            throw .corrupted(.badLayout("the module reported \(size) bytes to map with kernel lines at "
                + "\(o.kernel_lines) and user lines at \(o.user_lines); expected pages 1 and 2"))
        }
        var regions: [(offset: Int, length: Int, writable: Bool)] = []
        var ringsEnd = size
        for pool in [o.to_user.pool, o.to_kernel.pool] where pool.buffer_count > 0 {
            let start = Int(clamping: pool.buffers)
            let length = pageUp(Int(pool.buffer_size) * Int(pool.buffer_count))
            guard start % page == 0, start >= 3 * page, start <= size, length <= size - start else {
                throw .corrupted(.badLayout("a pool at \(start), \(length) bytes, lies outside the \(size)-byte channel"))
            }
            ringsEnd = min(ringsEnd, start)
            regions.append((start, length, true))
        }
        regions.insert((2 * page, ringsEnd - 2 * page, true), at: 0)
        regions.insert((0, 2 * page, false), at: 0)

        guard let base = mmap(nil, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              base != MAP_FAILED else {
            throw .system(operation: "mmap (reserving \(size) bytes)", errno: errno)
        }
        let failure: (operation: String, errno: Int32)? = fd.withLock { descriptor in
            guard descriptor >= 0 else { return ("mmap of \(path)", EBADF) }
            for r in regions where r.length > 0 {
                let protection = r.writable ? PROT_READ | PROT_WRITE : PROT_READ
                let p = mmap(base + r.offset, r.length, protection, MAP_SHARED | MAP_FIXED, descriptor, off_t(r.offset))
                if p == MAP_FAILED {
                    return ("mmap of \(path) at offset \(r.offset), \(r.length) bytes", errno)
                }
            }
            return nil
        }
        if let failure {
            munmap(base, size)
            throw .system(operation: failure.operation, errno: failure.errno)
        }
        return SharedMemory(adoptingMapping: base, size: size)
    }

    // MARK: The load generator

    /// The in-kernel load generator's modes.
    public enum LoadMode: UInt32, Sendable {
        /// Send messages kernel -> user: type `1 + i % 7`, priority `i % 4`, a pattern payload.
        case produce = 1
        /// Receive messages and answer each with its payload (AI_RESPONSE, correlated for AI_REQUEST).
        case echo = 2
        /// Receive and drop messages.
        case sink = 3
    }

    /// What one load-generator run did.
    public struct LoadResult: Sendable {
        /// Messages sent or received.
        public var done: UInt64
        /// Kernel time from the first to the last message, in nanoseconds.
        public var elapsedNanoseconds: UInt64
    }

    /// Runs the in-kernel load generator in the calling thread on channel
    /// `id` (this file need not be bound). On `/dev/archangel_rw` the
    /// channel is ignored and the file's own FIFOs are used.
    ///
    /// - Parameters:
    ///   - blocking: wait for room or messages (else a full or empty ring ends the run).
    ///   - batch: PRODUCE publishes every 64 messages instead of each.
    ///   - interval: above 0, PRODUCE on `/dev/archangel` is paced: message i
    ///     is due at start + i × interval ns (`ARCHANGEL_LOADGEN_PACED`, at most 1 s).
    /// - Throws: `system` with EAGAIN (not blocking, ring full or empty), EINTR, ...;
    ///   `closed`, `channelNotFound`.
    @discardableResult
    public func loadgen(channel id: UInt32, mode: LoadMode, size: Int = 0, count: UInt64,
                        blocking: Bool = true, batch: Bool = false,
                        interval: UInt64 = 0) throws(ChannelError) -> LoadResult {
        var req = archangel_loadgen_req()
        req.channel_id = id
        req.mode = mode.rawValue
        req.size = UInt32(size)
        req.count = count
        req.flags = (blocking ? ARCHANGEL_LOADGEN_BLOCK : 0) | (batch ? ARCHANGEL_LOADGEN_BATCH : 0)
            | (interval > 0 ? ARCHANGEL_LOADGEN_PACED : 0)
        req.interval_ns = interval
        // Not under the lock: a run may block for long; the caller owns this file meanwhile.
        let descriptor = self.descriptor
        guard descriptor >= 0 else { throw .closed }
        while archangel_ioctl(descriptor, UInt(archangel_ioc_loadgen), &req) < 0 {
            let code = errno
            if code == EINTR { continue }
            throw common("ARCHANGEL_IOC_LOADGEN", code, channel: id)
        }
        return LoadResult(done: req.done, elapsedNanoseconds: req.elapsed_ns)
    }

    /// `/dev/archangel_rw` only: 1 makes write() queue on the file's own read FIFO.
    public func setLoopback(_ on: Bool) throws(ChannelError) {
        var value: UInt32 = on ? 1 : 0
        _ = try ioctl(UInt(archangel_ioc_rw_loopback), &value, "ARCHANGEL_IOC_RW_LOOPBACK") { code in
            common("ARCHANGEL_IOC_RW_LOOPBACK", code)
        }
    }

    /// The module's `max_channels` parameter (16 unless loaded with another), read from sysfs.
    public static var maxChannels: Int {
        guard let file = fopen("/sys/module/archangel/parameters/max_channels", "r") else { return 16 }
        defer { fclose(file) }
        var value: Int32 = 0
        return fscanf_int(file, &value) ? Int(value) : 16
    }

    /// The module's statistics text (`/proc/archangel/comm`).
    ///
    /// - Throws: `deviceUnavailable` when the file is missing (module not loaded).
    public static func statisticsText(path: String = statisticsPath) throws(ChannelError) -> String {
        guard let file = fopen(path, "r") else { throw .deviceUnavailable(path: path, errno: errno) }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, 4096, file) }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Reads one decimal integer from `file`.
private func fscanf_int(_ file: UnsafeMutablePointer<FILE>, _ value: inout Int32) -> Bool {
    var buffer = [CChar](repeating: 0, count: 32)
    guard fgets(&buffer, 32, file) != nil else { return false }
    let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    guard let n = Int32(text.trimmingCharacters(in: " \n")) else { return false }
    value = n
    return true
}

private extension String {
    func trimmingCharacters(in set: String) -> String {
        let skip = Set(set)
        var s = Substring(self)
        while let c = s.first, skip.contains(c) { s.removeFirst() }
        while let c = s.last, skip.contains(c) { s.removeLast() }
        return String(s)
    }
}
