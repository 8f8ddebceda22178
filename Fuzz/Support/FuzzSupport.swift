// Shared helpers of the fuzzers (docs/fuzzing.md): reading a fuzz input
// field by field, failing an invariant loudly, ASan poisoning, and writing
// seed inputs made by the code's own encoders.
#if canImport(Glibc)
import Glibc
#endif

/// Fails the run when an invariant does not hold: prints what and where,
/// then traps (libFuzzer reports a crash and writes the input).
public func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                    file: StaticString = #fileID, line: UInt = #line) {
    if condition() { return }
    let text = "INVARIANT FAILED (\(file):\(line)): \(message())\n"
    printError(text)
    abort()
}

/// Writes `text` to standard error, unbuffered.
public func printError(_ text: String) {
    var bytes = Array(text.utf8)
    _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
}

/// A fuzz input read front to back; reads past the end yield zeros, so every
/// input decodes to something.
public struct FuzzInput {
    public let bytes: UnsafeRawBufferPointer
    public private(set) var position = 0

    public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        bytes = UnsafeRawBufferPointer(start: data.map(UnsafeRawPointer.init), count: data == nil ? 0 : size)
    }

    public var remaining: Int { bytes.count - position }
    public var isEmpty: Bool { remaining == 0 }

    public mutating func u8() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    public mutating func u16() -> UInt16 { UInt16(u8()) | UInt16(u8()) << 8 }
    public mutating func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }
    public mutating func u64() -> UInt64 { UInt64(u32()) | UInt64(u32()) << 32 }
    public mutating func bool() -> Bool { u8() & 1 != 0 }

    /// Up to `count` bytes (fewer at the end of the input).
    public mutating func take(_ count: Int) -> UnsafeRawBufferPointer {
        let n = max(0, min(count, remaining))
        defer { position += n }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + n)])
    }

    /// Everything not read yet.
    public mutating func rest() -> UnsafeRawBufferPointer { take(remaining) }
}

@_silgen_name("__asan_poison_memory_region")
private func asanPoison(_ address: UnsafeRawPointer, _ size: Int)
@_silgen_name("__asan_unpoison_memory_region")
private func asanUnpoison(_ address: UnsafeRawPointer, _ size: Int)

/// Memory of `size` bytes, page aligned, all of it poisoned for AddressSanitizer
/// except the ranges `allow(_:_:)` opens: any access elsewhere is reported.
public final class GuardedMemory {
    public let base: UnsafeMutableRawPointer
    public let size: Int

    public init(size: Int) {
        self.size = size
        base = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        asanPoison(base, size)
    }

    /// Lets the code under test touch `count` bytes at `offset`.
    public func allow(_ offset: Int, _ count: Int) {
        require(offset >= 0 && count >= 0 && offset + count <= size, "allow \(offset)+\(count) of \(size)")
        asanUnpoison(base + offset, count)
    }

    /// Opens everything (for setting up) or closes everything again.
    public func allowAll() { asanUnpoison(base, size) }
    public func forbidAll() { asanPoison(base, size) }

    /// Whether `pointer ..< pointer + count` lies inside `offset ..< offset + length`.
    public func contains(_ pointer: UnsafeRawPointer?, count: Int, inside offset: Int, _ length: Int) -> Bool {
        guard let pointer else { return count == 0 }
        let start = pointer - UnsafeRawPointer(base)
        return start >= offset && count >= 0 && start + count <= offset + length
    }

    deinit {
        asanUnpoison(base, size)
        base.deallocate()
    }
}

/// When `ARCHANGEL_FUZZ_WRITE_SEEDS=DIR` is set, writes `seeds` as `DIR/<name>`
/// and exits: how `scripts/fuzz --seeds` makes Fuzz/corpus/<fuzzer>/ from the
/// code's own encoders.
public func writeSeedsIfAsked(_ seeds: () -> [(name: String, bytes: [UInt8])]) {
    guard let dir = getenv("ARCHANGEL_FUZZ_WRITE_SEEDS").map({ String(cString: $0) }) else { return }
    for seed in seeds() {
        let path = "\(dir)/\(seed.name)"
        guard let file = fopen(path, "wb") else {
            printError("cannot write \(path)\n")
            exit(1)
        }
        _ = seed.bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        fclose(file)
    }
    exit(0)
}

/// One run of a fuzzer over one input.
public typealias FuzzTarget = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

@_silgen_name("LLVMFuzzerRunDriver")
private func runDriver(_ argc: UnsafeMutablePointer<CInt>,
                       _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                       _ target: FuzzTarget) -> CInt

nonisolated(unsafe) private var currentTarget: FuzzTarget?

/// The symbol libFuzzer's own objects refer to; runs the target `runFuzzer` was given.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    currentTarget?(data, size) ?? 0
}

/// A fuzzer's `main`: writes the seeds when asked (`writeSeedsIfAsked`),
/// else hands the command line to libFuzzer with `target` as the test.
public func runFuzzer(seeds: () -> [(name: String, bytes: [UInt8])], _ target: FuzzTarget) -> Never {
    writeSeedsIfAsked(seeds)
    currentTarget = target
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(runDriver(&argc, &argv, target))
}

/// Bytes of a string (for text seeds).
public func utf8(_ text: String) -> [UInt8] { Array(text.utf8) }
