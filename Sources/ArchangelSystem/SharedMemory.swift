import ArchangelCore
import CArchangel
import Glibc

/// A region of shared memory mapped into this process, unmapped on deinit.
///
/// Backed by a memfd, so the same region can be passed to another process
/// (SCM_RIGHTS) and mapped there; the in-process backend uses it too, so that
/// every backend runs on the same kind of memory.
public final class SharedMemory: @unchecked Sendable {
    /// Start of the mapping.
    public let base: UnsafeMutableRawPointer
    /// Bytes mapped.
    public let size: Int
    /// The memfd behind the mapping, or -1 for anonymous memory.
    public let descriptor: Int32

    /// Creates a zero-filled memfd of `size` bytes and maps it read-write,
    /// shared. Its size is sealed (F_SEAL_SHRINK, F_SEAL_GROW), so a process it
    /// is passed to cannot make another's mapping fault by truncating it.
    ///
    /// - Parameter name: shown in /proc/PID/maps and fd listings.
    /// - Throws: `ChannelError.system` naming the call that failed.
    public init(memfdNamed name: String, size: Int) throws(ChannelError) {
        let fd = try SystemCall.retrying("memfd_create") { archangel_memfd_create(name) }
        do {
            _ = try SystemCall.retrying("ftruncate") { ftruncate(fd, off_t(size)) }
            // Whoever the memfd is passed to cannot truncate it under our mapping.
            _ = try SystemCall.retrying("fcntl(F_ADD_SEALS)") { archangel_memfd_seal_size(fd) }
            base = try Self.map(fd: fd, size: size)
        } catch {
            close(fd)
            throw error
        }
        self.size = size
        descriptor = fd
    }

    /// Maps `size` bytes of an existing descriptor (one received from a host or device).
    ///
    /// Takes ownership of `descriptor` (closed on deinit, and on failure).
    /// - Parameters:
    ///   - writable: false maps the memory read-only (a host reading a client's counters).
    /// - Throws: `system` when the descriptor is smaller than `size` or cannot be mapped.
    public init(mapping descriptor: Int32, size: Int, offset: Int = 0, writable: Bool = true) throws(ChannelError) {
        do throws(ChannelError) {
            var status = stat()
            guard fstat(descriptor, &status) == 0 else { throw ChannelError.system(operation: "fstat", errno: errno) }
            // A memfd shorter than promised would fault (SIGBUS) on first touch past its end.
            guard status.st_mode & S_IFMT != S_IFREG || Int(status.st_size) >= offset + size else {
                throw ChannelError.invalidConfiguration(
                    "shared memory descriptor holds \(status.st_size) bytes, \(offset + size) expected")
            }
            base = try Self.map(fd: descriptor, size: size, offset: offset, writable: writable)
        } catch {
            close(descriptor)
            throw error
        }
        self.size = size
        self.descriptor = descriptor
    }

    /// Adopts a mapping made elsewhere (the piecewise mapping of a kernel
    /// channel, or a region mapped from a device): unmapped on deinit, no descriptor.
    init(adoptingMapping base: UnsafeMutableRawPointer, size: Int) {
        self.base = base
        self.size = size
        descriptor = -1
    }

    /// What a descriptor refers to, for telling whether two descriptors name
    /// the same memory: its device, inode, file type and size.
    public struct Identity: Sendable, Equatable {
        /// Device and inode: equal for two descriptors of one memfd.
        public var device: UInt64, inode: UInt64
        /// Whether it is a regular file (a memfd is).
        public var isRegularFile: Bool
        /// Bytes.
        public var size: Int
        /// Whether it is a memfd whose size cannot shrink (F_SEAL_SHRINK).
        public var sizeSealed: Bool

        /// Same memory object.
        public func sameObject(as other: Identity) -> Bool { device == other.device && inode == other.inode }
    }

    /// The identity of `descriptor`, nil when fstat fails.
    public static func identity(of descriptor: Int32) -> Identity? {
        var status = stat()
        guard descriptor >= 0, fstat(descriptor, &status) == 0 else { return nil }
        return Identity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino),
                        isRegularFile: status.st_mode & S_IFMT == S_IFREG, size: Int(status.st_size),
                        sizeSealed: archangel_memfd_size_sealed(descriptor) == 1)
    }

    /// The identity of this memory's descriptor (nil for anonymous or device memory).
    public var identity: Identity? { Self.identity(of: descriptor) }

    private static func map(fd: Int32, size: Int, offset: Int = 0,
                            writable: Bool = true) throws(ChannelError) -> UnsafeMutableRawPointer {
        let protection = writable ? PROT_READ | PROT_WRITE : PROT_READ
        guard let pointer = mmap(nil, size, protection, MAP_SHARED, fd, off_t(offset)),
              pointer != MAP_FAILED else {
            throw .system(operation: "mmap", errno: errno)
        }
        return pointer
    }

    deinit {
        munmap(base, size)
        if descriptor >= 0 { close(descriptor) }
    }
}
