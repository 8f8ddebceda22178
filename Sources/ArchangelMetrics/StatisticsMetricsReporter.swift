import Archangel
import ArchangelSystem
import CoreMetrics
import Glibc
import Synchronization

/// Reports a bridge's statistics through swift-metrics, so that whatever
/// metrics backend the application bootstrapped (Prometheus, StatsD,
/// OpenTelemetry) picks up its counters (docs/statistics.md#swift-metrics).
///
/// Each figure of the statistics text becomes one metric named as in
/// `archangel stats --format prometheus` (`StatisticsReport.metrics`), with
/// `channel` and `direction` dimensions: counters (`*_total`) are
/// incremented by what they grew since the last update, levels (ring bytes,
/// pool buffers) are gauges. `archangel_channels`, `archangel_channels_max`
/// and `archangel_channel_failed{channel}` are gauges too. A channel whose
/// counters went down was recreated: its counters restart from the new values.
///
/// Call `update()` yourself, or `start(every:)` for a thread that does.
public final class StatisticsMetricsReporter: Sendable {
    /// Where the statistics come from: a manager, a host's socket, the module.
    public let source: @Sendable () throws -> StatisticsReport
    private let factory: any MetricsFactory
    private let state = Mutex(State())
    private let stopRequested = Atomic<Bool>(false)

    private struct State {
        /// The last value of each counter, by metric name and dimensions.
        var last: [String: UInt64] = [:]
        var counters: [String: CoreMetrics.Counter] = [:]
        var gauges: [String: CoreMetrics.Gauge] = [:]
        var thread: SystemThread?
        var updates = 0
        var lastError: String?
    }

    /// Reports the statistics of `manager` (this process's channels).
    public convenience init(manager: CommManager, factory: any MetricsFactory = MetricsSystem.factory) {
        self.init(factory: factory) { [manager] in manager.statistics() }
    }

    /// Reports what `source` returns at each update.
    public init(factory: any MetricsFactory = MetricsSystem.factory,
                source: @escaping @Sendable () throws -> StatisticsReport) {
        self.source = source
        self.factory = factory
    }

    deinit { stop() }

    /// Updates updated so far, and the last update's error (nil: it worked).
    public var status: (updates: Int, lastError: String?) {
        state.withLock { ($0.updates, $0.lastError) }
    }

    /// Reads the statistics once and reports them.
    ///
    /// - Throws: what `source` throws (the metrics keep their last values).
    public func update() throws {
        let report: StatisticsReport
        do {
            report = try source()
        } catch {
            state.withLock { $0.lastError = "\(error)" }
            throw error
        }
        state.withLock { state in
            state.updates += 1
            state.lastError = nil
            gauge("archangel_channels", [], &state).record(report.channels.count)
            gauge("archangel_channels_max", [], &state).record(report.maxChannels)
            for channel in report.channels {
                let id = "\(channel.id)"
                gauge("archangel_channel_failed", [("channel", id)], &state)
                    .record(channel.health == .failed ? 1 : 0)
                for (direction, figures) in [("to_user", channel.toUser), ("to_kernel", channel.toKernel)] {
                    let dimensions = [("channel", id), ("direction", direction)]
                    let values = Dictionary(figures.fields.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
                    for metric in StatisticsReport.metrics {
                        let value = values[metric.key] ?? 0
                        if metric.counter {
                            let key = Self.key(metric.name, dimensions)
                            let previous = state.last[key] ?? 0
                            // Went down: the channel was recreated, its counters restarted.
                            let delta = value >= previous ? value - previous : value
                            state.last[key] = value
                            if delta > 0 { counter(metric.name, dimensions, &state).increment(by: Int64(clamping: delta)) }
                            else if state.counters[key] == nil { _ = counter(metric.name, dimensions, &state) }
                        } else {
                            gauge(metric.name, dimensions, &state).record(Int64(clamping: value))
                        }
                    }
                }
            }
        }
    }

    /// Updates every `interval` on a thread of its own until `stop()`.
    /// Errors (a host gone away) are kept in `status` and retried.
    public func start(every interval: Duration = .seconds(1)) throws {
        let nanoseconds = max(WaitPolicy.nanoseconds(interval), 1_000_000)
        try state.withLock { state in
            guard state.thread == nil else { return }
            stopRequested.store(false, ordering: .relaxed)
            state.thread = try SystemThread(name: "archangel-metrics") { [self] in
                while !stopRequested.load(ordering: .relaxed) {
                    try? update()
                    var remaining = nanoseconds
                    // Sleep in slices, so that stop() returns within 50 ms.
                    while remaining > 0 && !stopRequested.load(ordering: .relaxed) {
                        let slice = min(remaining, 50_000_000)
                        var spec = timespec(tv_sec: 0, tv_nsec: Int(slice))
                        _ = nanosleep(&spec, nil)
                        remaining -= slice
                    }
                }
            }
        }
    }

    /// Stops the thread `start(every:)` started, waiting for it.
    public func stop() {
        stopRequested.store(true, ordering: .relaxed)
        let thread = state.withLock { state -> SystemThread? in
            defer { state.thread = nil }
            return state.thread
        }
        thread?.join()
    }

    private static func key(_ name: String, _ dimensions: [(String, String)]) -> String {
        name + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
    }

    private func counter(_ name: String, _ dimensions: [(String, String)], _ state: inout State) -> CoreMetrics.Counter {
        let key = Self.key(name, dimensions)
        if let existing = state.counters[key] { return existing }
        let made = CoreMetrics.Counter(label: name, dimensions: dimensions, factory: factory)
        state.counters[key] = made
        return made
    }

    private func gauge(_ name: String, _ dimensions: [(String, String)], _ state: inout State) -> CoreMetrics.Gauge {
        let key = Self.key(name, dimensions)
        if let existing = state.gauges[key] { return existing }
        let made = CoreMetrics.Gauge(label: name, dimensions: dimensions, factory: factory)
        state.gauges[key] = made
        return made
    }
}
