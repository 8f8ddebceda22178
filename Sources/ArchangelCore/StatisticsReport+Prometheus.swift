/// The statistics in the Prometheus text exposition format (`archangel stats --format prometheus`).
extension StatisticsReport {
    /// How each text-format key is exposed: its metric name, kind (counter
    /// or gauge) and help. `ArchangelMetrics` reports the same names through
    /// swift-metrics.
    public static let metrics: [(key: String, name: String, counter: Bool, help: String)] = [
        ("messages_sent", "archangel_messages_sent_total", true, "Messages published by the sender."),
        ("bytes_sent", "archangel_bytes_sent_total", true, "Payload bytes published by the sender."),
        ("messages_received", "archangel_messages_received_total", true, "Messages delivered to the receiver."),
        ("bytes_received", "archangel_bytes_received_total", true, "Payload bytes delivered to the receiver."),
        ("rejected", "archangel_rejected_total", true, "Messages refused as too large; never queued."),
        ("errors", "archangel_errors_total", true, "Shared-memory validation failures."),
        ("queue_full", "archangel_queue_full_total", true, "Sends that found the ring full or the pool empty."),
        ("ring_used", "archangel_ring_used_bytes", false, "Bytes in the two lanes now."),
        ("ring_size", "archangel_ring_size_bytes", false, "Bytes the two lanes hold together."),
        ("ring_hwm", "archangel_ring_high_water_bytes", false, "Largest backlog seen on either lane."),
        ("pool_transfers", "archangel_pool_transfers_total", true, "Messages carried through the buffer pool."),
        ("copy_fallbacks", "archangel_copy_fallbacks_total", true, "Large payloads copied inline because the pool was empty."),
        ("pool_in_use", "archangel_pool_buffers_in_use", false, "Pool buffers lent out now."),
        ("pool_size", "archangel_pool_buffers", false, "Pool buffers in all."),
        ("notify_sent", "archangel_notifications_sent_total", true, "Wake-ups signalled to a sleeping peer."),
        ("notify_suppressed", "archangel_notifications_suppressed_total", true,
         "Publications that needed no wake-up because the peer was awake."),
        ("waits", "archangel_waits_total", true, "Times either side slept waiting."),
        ("notify_coalesced", "archangel_notifications_coalesced_total", true,
         "Publications whose wake-up was deferred to, or merged into, a trailing edge."),
        ("timed_waits", "archangel_timed_waits_total", true, "Timed polls: sleeps of one window that end by themselves."),
    ]

    /// The same figures as `text`, as Prometheus metrics with `channel` and
    /// `direction` labels, plus channel counts and health.
    public var prometheusText: String {
        var out = "# HELP archangel_channels Channels in use.\n# TYPE archangel_channels gauge\n"
        out += "archangel_channels \(channels.count)\n"
        out += "# HELP archangel_channels_max The manager's channel limit.\n# TYPE archangel_channels_max gauge\n"
        out += "archangel_channels_max \(maxChannels)\n"
        out += "# HELP archangel_channel_failed 1 when the channel's shared memory failed validation.\n"
        out += "# TYPE archangel_channel_failed gauge\n"
        for channel in channels {
            out += "archangel_channel_failed{channel=\"\(channel.id)\"} \(channel.health == .failed ? 1 : 0)\n"
        }
        for metric in Self.metrics {
            out += "# HELP \(metric.name) \(metric.help)\n# TYPE \(metric.name) \(metric.counter ? "counter" : "gauge")\n"
            for channel in channels {
                for (direction, figures) in [("to_user", channel.toUser), ("to_kernel", channel.toKernel)] {
                    let value = figures.fields.first { $0.key == metric.key }?.value ?? 0
                    out += "\(metric.name){channel=\"\(channel.id)\",direction=\"\(direction)\"} \(value)\n"
                }
            }
        }
        return out
    }
}
