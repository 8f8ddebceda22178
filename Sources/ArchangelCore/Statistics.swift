/// Figures for one direction of one channel, taken at one moment.
///
/// Each figure is read atomically; the set is not one atomic snapshot (the
/// writers never lock), which is fine for monitoring.
public struct DirectionStatistics: Sendable, Equatable {
    /// Messages published by the sender.
    public var messagesSent: UInt64 = 0
    /// Payload bytes published by the sender.
    public var bytesSent: UInt64 = 0
    /// Messages delivered to the receiver.
    public var messagesReceived: UInt64 = 0
    /// Payload bytes delivered to the receiver.
    public var bytesReceived: UInt64 = 0
    /// Messages refused as too large.
    public var rejected: UInt64 = 0
    /// Validation failures of shared memory.
    public var errors: UInt64 = 0
    /// Sends that found the ring full or the pool empty.
    public var queueFull: UInt64 = 0
    /// Bytes in the two lanes now (published, not released).
    public var ringUsed: UInt64 = 0
    /// Bytes the two lanes hold together.
    public var ringSize: UInt64 = 0
    /// Largest backlog seen on either lane, bytes.
    public var ringHighWater: UInt64 = 0
    /// Messages carried through the buffer pool.
    public var poolTransfers: UInt64 = 0
    /// Large payloads copied inline because the pool was empty.
    public var copyFallbacks: UInt64 = 0
    /// Pool buffers lent out now.
    public var poolInUse: UInt64 = 0
    /// Pool buffers in all.
    public var poolSize: UInt64 = 0
    /// Wake-ups signalled (both ways: data to the receiver, room to the sender).
    public var notificationsSent: UInt64 = 0
    /// Publications that needed no wake-up.
    public var notificationsSuppressed: UInt64 = 0
    /// Times either side slept waiting.
    public var waits: UInt64 = 0
    /// `notify_coalesced`: publications whose wake-up went to a trailing edge (sender).
    public var notificationsCoalesced: UInt64 = 0
    /// `timed_waits`: timed polls of one window (receiver).
    public var timedWaits: UInt64 = 0

    /// Creates zeroed figures.
    public init() {}

    /// The figures in the order and with the keys of the text format.
    public var fields: [(key: String, value: UInt64)] {
        [("messages_sent", messagesSent), ("bytes_sent", bytesSent),
         ("messages_received", messagesReceived), ("bytes_received", bytesReceived),
         ("rejected", rejected), ("errors", errors), ("queue_full", queueFull),
         ("ring_used", ringUsed), ("ring_size", ringSize), ("ring_hwm", ringHighWater),
         ("pool_transfers", poolTransfers), ("copy_fallbacks", copyFallbacks),
         ("pool_in_use", poolInUse), ("pool_size", poolSize),
         ("notify_sent", notificationsSent), ("notify_suppressed", notificationsSuppressed),
         ("waits", waits), ("notify_coalesced", notificationsCoalesced), ("timed_waits", timedWaits)]
    }

    /// Sets the figure named `key`; returns false for an unknown key.
    mutating func set(_ key: String, _ value: UInt64) -> Bool {
        switch key {
        case "messages_sent": messagesSent = value
        case "bytes_sent": bytesSent = value
        case "messages_received": messagesReceived = value
        case "bytes_received": bytesReceived = value
        case "rejected": rejected = value
        case "errors": errors = value
        case "queue_full": queueFull = value
        case "ring_used": ringUsed = value
        case "ring_size": ringSize = value
        case "ring_hwm": ringHighWater = value
        case "pool_transfers": poolTransfers = value
        case "copy_fallbacks": copyFallbacks = value
        case "pool_in_use": poolInUse = value
        case "pool_size": poolSize = value
        case "notify_sent": notificationsSent = value
        case "notify_suppressed": notificationsSuppressed = value
        case "waits": waits = value
        case "notify_coalesced": notificationsCoalesced = value
        case "timed_waits": timedWaits = value
        default: return false
        }
        return true
    }
}

/// The state of a channel as statistics show it.
public enum ChannelHealth: String, Sendable, Equatable {
    /// Working.
    case active
    /// Shared memory failed validation; the channel refuses all traffic.
    case failed
}

/// Figures for one channel.
public struct ChannelStatistics: Sendable, Equatable {
    /// The channel id.
    public var id: UInt32
    /// Working or failed.
    public var health: ChannelHealth
    /// Kernel side to user side.
    public var toUser: DirectionStatistics
    /// User side to kernel side.
    public var toKernel: DirectionStatistics

    /// Creates figures for channel `id`.
    public init(id: UInt32, health: ChannelHealth = .active,
                toUser: DirectionStatistics = .init(), toKernel: DirectionStatistics = .init()) {
        self.id = id
        self.health = health
        self.toUser = toUser
        self.toKernel = toKernel
    }
}

/// The statistics of a whole communication manager, and their text format.
///
/// The format (docs/statistics.md) is what `/proc/archangel/comm` prints and
/// what the userspace host serves:
///
///     archangel-comm 1
///     channels 2/16
///     channel 0 active
///       to_user messages_sent=10 bytes_sent=640 ... waits=0
///       to_kernel messages_sent=10 ...
///
/// Every figure is `key=value` with a decimal value; keys never change meaning,
/// new keys may be appended.
public struct StatisticsReport: Sendable, Equatable {
    /// The format version on the first line.
    public static let formatVersion = 1
    /// Channels in use.
    public var channels: [ChannelStatistics]
    /// The manager's channel limit.
    public var maxChannels: Int

    /// Creates a report.
    public init(channels: [ChannelStatistics], maxChannels: Int) {
        self.channels = channels
        self.maxChannels = maxChannels
    }

    /// The report in the text format.
    public var text: String {
        var out = "archangel-comm \(Self.formatVersion)\nchannels \(channels.count)/\(maxChannels)\n"
        for channel in channels {
            out += "channel \(channel.id) \(channel.health.rawValue)\n"
            for (name, figures) in [("to_user", channel.toUser), ("to_kernel", channel.toKernel)] {
                out += "  \(name)"
                for (key, value) in figures.fields { out += " \(key)=\(value)" }
                out += "\n"
            }
        }
        return out
    }

    /// Parses the text format. Unknown keys are ignored (newer writers may add some).
    ///
    /// - Throws: `StatisticsFormatError` naming the line that does not parse.
    public init(parsing text: String) throws(StatisticsFormatError) {
        // Keep empty lines in the count so that errors name the real line number.
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).makeIterator()
        guard let first = lines.next(), first.hasPrefix("archangel-comm ") else {
            throw StatisticsFormatError(line: 1, text: "missing 'archangel-comm' header")
        }
        guard let second = lines.next(), second.hasPrefix("channels "),
              let slash = second.firstIndex(of: "/"),
              let max = Int(second[second.index(after: slash)...]) else {
            throw StatisticsFormatError(line: 2, text: "missing 'channels N/MAX' line")
        }
        maxChannels = max
        channels = []
        var number = 2
        for line in IteratorSequence(lines) {
            number += 1
            if line.isEmpty { continue }
            let words = line.split(separator: " ")
            if words.first == "channel" {
                guard words.count >= 3, let id = UInt32(words[1]), let health = ChannelHealth(rawValue: String(words[2]))
                else { throw StatisticsFormatError(line: number, text: String(line)) }
                channels.append(ChannelStatistics(id: id, health: health))
            } else if let name = words.first, name == "to_user" || name == "to_kernel", !channels.isEmpty {
                var figures = DirectionStatistics()
                for pair in words.dropFirst() {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2, let value = UInt64(parts[1]) else {
                        throw StatisticsFormatError(line: number, text: String(line))
                    }
                    _ = figures.set(String(parts[0]), value)
                }
                if name == "to_user" { channels[channels.count - 1].toUser = figures }
                else { channels[channels.count - 1].toKernel = figures }
            } else {
                throw StatisticsFormatError(line: number, text: String(line))
            }
        }
    }
}

/// A statistics text that does not follow the format.
public struct StatisticsFormatError: Error, Equatable, Sendable, CustomStringConvertible {
    /// 1-based line number.
    public var line: Int
    /// The offending line or what was missing.
    public var text: String
    public var description: String { "statistics text, line \(line): cannot parse '\(text)'" }
}
