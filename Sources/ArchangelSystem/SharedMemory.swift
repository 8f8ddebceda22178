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

    /// Creates a zero-filled memfd of `size` bytes and maps it read-write, shared.
    ///
    /// - Parameter name: shown in /proc/PID/maps and fd listings.
    /// - Throws: `ChannelError.system` naming the call that failed.
    public init(memfdNamed name: String, size: Int) throws(ChannelError) {
        let fd = try SystemCall.retrying("memfd_create") { archangel_memfd_create(name) }
        do {
            _ = try SystemCall.retrying("ftruncate") { ftruncate(fd, off_t(size)) }
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
