import Archangel
import Glibc

/// The crash-test client (`archangel demo-role follower`): attaches the user
/// side of a channel, and for each message it receives
///
/// - writes `R <counter>` to standard output while the message is still lent
///   (inside the receive closure), so a line can name a message whose
///   delivery never completed if the process is killed right after it;
/// - answers with one message of its own, numbered from 0 in this process,
///   `[pid: 4][number: 8]`, every fifth one large enough for the pool.
///
/// It stops at a `control` message (the end of the stream). The multi-process
/// tests kill it with SIGKILL at random moments and check that its successors
/// carry on with nothing lost and nothing consumed twice (docs/recovery.md).
struct FollowerRole {
    let channel: Channel

    func run() throws {
        let pid = UInt32(getpid())
        var sent: UInt64 = 0
        var answer = [UInt8](repeating: 0xA5, count: 3000)
        var done = false
        while !done {
            try channel.receive { view in
                if view.type == .control {
                    done = true
                    return
                }
                var counter: UInt64 = 0
                withUnsafeMutableBytes(of: &counter) { _ = view.copyBytes(to: $0) }
                var line = "R \(UInt64(littleEndian: counter))\n"
                line.withUTF8 { bytes in _ = write(1, bytes.baseAddress, bytes.count) }
            }
            if done { break }
            let size = sent % 5 == 4 ? answer.count : 12
            answer.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: pid.littleEndian, as: UInt32.self)
                raw.storeBytes(of: sent.littleEndian, toByteOffset: 4, as: UInt64.self)
            }
            try answer.withUnsafeBytes { raw in
                try channel.send(.aiResponse, bytes: UnsafeRawBufferPointer(rebasing: raw[0..<size]))
            }
            sent += 1
        }
    }
}
