// The Swift peer of scripts/bench-bindings: the same roles as
// examples/c/bindings_bench.c, written against the Swift API, so that the C
// and Python bindings are compared with Swift in one setting (a userspace
// host, the balanced wait preset).
//
//   archangel-bindings-bench recv SOCK CH N BATCH     user side: receive N, print msgs/s
//   archangel-bindings-bench request SOCK CH N SIZE   kernel side: N round trips, print median/p99 ns
import Archangel
import Glibc

func nowNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// CPU time of this process: throughput per CPU-second does not depend on how much of a core we got.
func cpuNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func fail(_ what: String, _ error: any Error) -> Never {
    FileHandleStderr.write("archangel-bindings-bench: \(what): \(error)\n")
    exit(1)
}

enum FileHandleStderr {
    static func write(_ text: String) { writeLine(text, to: 2) }
}

/// Unbuffered, so that the driver sees each line at once.
func writeLine(_ text: String, to fd: Int32 = 1) {
    var bytes = Array(text.utf8)
    if bytes.last != 10 { bytes.append(10) }
    _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
}

let args = CommandLine.arguments
if args.count >= 2 && args[1] == "micro" {
    // In-process, one thread: the per-call cost of the Swift API itself (compare examples' C micro run).
    do {
        let manager = try CommManager(configuration: .init(maxChannels: 1))
        let cid = try manager.createChannel()
        let k = try manager.channel(cid), u = try manager.userEndpoint(cid)
        let payload = [UInt8](repeating: 0, count: 64)
        var tSend: UInt64 = 0, tRecv: UInt64 = 0, tBatch: UInt64 = 0, n = 0, nb = 0
        try payload.withUnsafeBytes { raw in
            for _ in 0..<2000 {
                let t0 = cpuNs()
                var c = 0
                while c < 600, try k.trySend(.syscallEvent, bytes: raw) { c += 1 }
                let t1 = cpuNs()
                for _ in 0..<(c / 2) { _ = try u.receive(timeout: .zero) { $0.count } }
                let t2 = cpuNs()
                var left = c - c / 2
                while left > 0 { left -= try u.receiveBatch(limit: 256, timeout: .zero) { _ in } }
                let t3 = cpuNs()
                tSend += t1 - t0; tRecv += t2 - t1; tBatch += t3 - t2; n += c / 2; nb += c - c / 2
            }
        }
        writeLine("swift: trySend \(Double(tSend) / Double(n + nb)) ns/msg, receive \(Double(tRecv) / Double(n)) ns/msg, "
            + "receiveBatch(256) \(Double(tBatch) / Double(nb)) ns/msg")
    } catch { fail("micro", error) }
    exit(0)
}
guard args.count >= 5 else {
    FileHandleStderr.write("usage: archangel-bindings-bench recv|request SOCK CH N [BATCH|SIZE]\n")
    exit(2)
}
let role = args[1], socket = args[2]
let id = ChannelID(UInt32(args[3])!)
let n = Int(args[4])!
let extra = args.count > 5 ? Int(args[5])! : 0
// ARCHANGEL_BENCH_PRESET: the ARCHANGEL_WAIT_PRESET_* number every peer uses (default 0, balanced).
let presets: [WaitPolicy] = [.balanced, .responsive, .efficient, .lowLatency, .sleepAtOnce]
let presetIndex = getenv("ARCHANGEL_BENCH_PRESET").flatMap { Int(String(cString: $0)) } ?? 0
let backend = UserspaceBackend(socketPath: socket, create: true, waitPolicy: presets[presetIndex])

switch role {
case "recv":
    let channel: Channel
    do { channel = try backend.attach(id, side: .user) } catch { fail("attach", error) }
    writeLine("{\"attached\":true}")
    let batch = extra > 0 ? extra : 256
    var got = 0, bytes = 0
    var start: UInt64 = 0, cpuStart: UInt64 = 0
    do {
        while got < n {
            if batch == 1 {
                bytes += try channel.receive(timeout: nil) { $0.count }
                got += 1
            } else {
                got += try channel.receiveBatch(limit: batch, timeout: nil) { bytes += $0.count }
            }
            if start == 0 {
                start = nowNs()
                cpuStart = cpuNs()
            }
        }
    } catch { fail("receive", error) }
    let elapsed = Double(nowNs() - start) / 1e9, cpu = Double(cpuNs() - cpuStart) / 1e9
    writeLine("{\"role\":\"recv\",\"lang\":\"swift\",\"batch\":\(batch),\"messages\":\(got),\"bytes\":\(bytes),"
        + "\"msgs_per_s\":\(Int(Double(got) / elapsed)),\"msgs_per_cpu_s\":\(Int(Double(got) / cpu))}")
    channel.close()
case "request":
    let channel: Channel
    do { channel = try backend.attach(id, side: .kernel) } catch { fail("attach", error) }
    let payload = [UInt8](repeating: 0, count: extra > 0 ? extra : 64)
    let warmup = n / 10 + 10
    var samples = [UInt64](repeating: 0, count: n)
    do {
        for i in -warmup..<n {
            let t0 = nowNs()
            // Urgent, as archangel_request sends: the requester waits for the answer.
            try channel.send(.aiRequest, bytes: payload, timeout: .seconds(5), options: .urgent)
            let sequence = channel.sender.lastSequence
            while try channel.receive(timeout: .seconds(5), { $0.correlation }) != sequence {}
            if i >= 0 { samples[i] = nowNs() - t0 }
        }
    } catch { fail("request", error) }
    samples.sort()
    writeLine("{\"role\":\"request\",\"lang\":\"swift\",\"round_trips\":\(n),\"median_ns\":\(samples[n / 2]),"
        + "\"p99_ns\":\(samples[n * 99 / 100])}")
    channel.close()
default:
    FileHandleStderr.write("archangel-bindings-bench: unknown role \(role)\n")
    exit(2)
}
