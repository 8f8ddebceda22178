/// What `archangel top` shows for one direction of one channel: rates over
/// the interval between two statistics reports, and the levels now.
public struct DirectionRates: Sendable, Equatable {
    /// The channel.
    public var channel: UInt32
    /// `to_user` or `to_kernel`.
    public var direction: String
    /// The channel's health now.
    public var health: ChannelHealth
    /// Messages published per second.
    public var messagesPerSecond: Double
    /// Payload bytes published per second.
    public var bytesPerSecond: Double
    /// Ring bytes in use now, as a fraction of the ring (0...1).
    public var ringFill: Double
    /// Pool buffers lent out now, and in all.
    public var poolInUse: UInt64, poolSize: UInt64
    /// Copy fallbacks (pool empty) over the interval.
    public var copyFallbacks: UInt64
    /// Messages refused (too large) and full-ring or empty-pool sends over the interval.
    public var drops: UInt64
    /// Shared-memory validation failures over the interval.
    public var errors: UInt64
    /// Wake-ups signalled per second.
    public var wakeupsPerSecond: Double
}

extension StatisticsReport {
    /// One row per channel and direction present in both reports: rates of
    /// the counters from `earlier` to `self` over `seconds`, levels from
    /// `self`. A channel new since `earlier` (or recreated, so that a counter
    /// went down) is measured from zero.
    public func rates(since earlier: StatisticsReport?, seconds: Double) -> [DirectionRates] {
        let interval = max(seconds, 1e-9)
        return channels.flatMap { channel -> [DirectionRates] in
            let before = earlier?.channels.first { $0.id == channel.id }
            return [("to_user", channel.toUser, before?.toUser), ("to_kernel", channel.toKernel, before?.toKernel)]
                .map { name, now, then in
                    // A counter that went down means the channel was recreated: count from zero.
                    let base = then.flatMap { $0.messagesSent <= now.messagesSent ? $0 : nil } ?? DirectionStatistics()
                    func delta(_ key: KeyPath<DirectionStatistics, UInt64>) -> UInt64 {
                        now[keyPath: key] >= base[keyPath: key] ? now[keyPath: key] - base[keyPath: key] : now[keyPath: key]
                    }
                    return DirectionRates(
                        channel: channel.id, direction: name, health: channel.health,
                        messagesPerSecond: Double(delta(\.messagesSent)) / interval,
                        bytesPerSecond: Double(delta(\.bytesSent)) / interval,
                        ringFill: now.ringSize == 0 ? 0 : min(1, Double(now.ringUsed) / Double(now.ringSize)),
                        poolInUse: now.poolInUse, poolSize: now.poolSize,
                        copyFallbacks: delta(\.copyFallbacks),
                        drops: delta(\.rejected) + delta(\.queueFull),
                        errors: delta(\.errors),
                        wakeupsPerSecond: Double(delta(\.notificationsSent)) / interval)
                }
        }
    }
}

/// The table `archangel top` draws: a header line and one line per row,
/// each cut to `width` columns.
public enum RatesTable {
    /// The column heads, in order.
    public static let heads = ["CH", "DIRECTION", "HEALTH", "MSGS/S", "BYTES/S", "RING%", "POOL", "COPIES",
                               "DROPS", "ERRORS", "WAKEUPS/S"]
    private static let widths = [3, 10, 7, 10, 10, 6, 9, 7, 7, 7, 10]

    /// The lines of the table for `rows`, none longer than `width` columns.
    public static func lines(_ rows: [DirectionRates], width: Int = .max) -> [String] {
        func line(_ fields: [String]) -> String {
            let text = zip(fields, widths).enumerated().map { i, pair in
                let (field, w) = pair
                let pad = String(repeating: " ", count: max(0, w - field.count))
                return i < 3 ? field + pad : pad + field
            }.joined(separator: " ")
            return String(text.prefix(max(width, 0)))
        }
        var out = [line(heads)]
        for r in rows {
            out.append(line(["\(r.channel)", r.direction, r.health.rawValue, human(r.messagesPerSecond),
                             human(r.bytesPerSecond), percent(r.ringFill), "\(r.poolInUse)/\(r.poolSize)",
                             "\(r.copyFallbacks)", "\(r.drops)", "\(r.errors)", human(r.wakeupsPerSecond)]))
        }
        return out
    }

    /// 0, 950, 12.3k, 4.56M, 7.89G: three significant figures at most.
    public static func human(_ value: Double) -> String {
        guard value.isFinite, value >= 0.5 else { return "0" }
        let units: [(Double, String)] = [(1e9, "G"), (1e6, "M"), (1e3, "k")]
        for (scale, suffix) in units where value >= scale {
            let scaled = value / scale
            return fixed(scaled, scaled >= 100 ? 0 : scaled >= 10 ? 1 : 2) + suffix
        }
        return fixed(value, 0)
    }

    private static func percent(_ fraction: Double) -> String { fixed(fraction * 100, 1) }

    /// `value` with `digits` decimals (no Foundation).
    public static func fixed(_ value: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        var text = "\(Int(rounded))"
        if digits > 0 {
            let fraction = Int(((rounded - Double(Int(rounded))) * scale).rounded())
            let digitsText = String(fraction)
            text += "." + String(repeating: "0", count: max(0, digits - digitsText.count)) + digitsText
        }
        return text
    }
}
