// Every metric Herald exports, created once with bounded labels (never an ID),
// through swift-metrics backed by a swift-prometheus registry that /metrics
// renders. One registry per daemon, so in-process tests stay independent.

import CoreMetrics
import HeraldCore
import Prometheus

/// Stable metric names: never renamed, dashboards and alerts use them (docs/metrics.md).
public enum MetricName {
    public static let events = "herald_events_total"
    public static let sourceUp = "herald_source_up"
    public static let sweeps = "herald_sweeps_total"
    public static let sweepFound = "herald_sweep_found_total"
    public static let reloads = "herald_reloads_total"
    public static let keyspaceEvents = "herald_redis_keyspace_events_enabled"
    public static let routedEvents = "herald_routed_events_total"
}

/// The daemon's metrics.
public final class HeraldMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let factory: PrometheusMetricsFactory
    private let eventCounters: [String: CoreMetrics.Counter]
    /// The same counters indexed by (source ordinal * 3 + outcome ordinal), for the hot path.
    private let eventCounterTable: [CoreMetrics.Counter]
    private let sweepCounters: [SweepReason: CoreMetrics.Counter]
    public let reloads: CoreMetrics.Counter
    public let keyspaceEventsEnabled: CoreMetrics.Gauge
    /// `herald_sweep_found_total{kind="celery_tick"}`: `celery` ticks claimed but never enqueued.
    public let sweepFoundCeleryTicks: CoreMetrics.Counter
    private let sourceGauges: [String: CoreMetrics.Gauge]

    /// The event sources Herald reports `herald_source_up` for.
    public static let sourceNames = ["redis_subscriber", "redis_command", "postgres_listener"]

    public init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(500), .milliseconds(1), .milliseconds(5), .milliseconds(10),
            .milliseconds(50), .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5), .seconds(30),
            .seconds(60),
        ]
        self.registry = registry
        self.factory = factory
        var events: [String: CoreMetrics.Counter] = [:]
        for s in EventSourceKind.allCases {
            for o in [EventOutcome.accepted, .rejected, .ignored] {
                events["\(s.rawValue)/\(o.rawValue)"] = Counter(
                    label: MetricName.events, dimensions: [("source", s.rawValue), ("outcome", o.rawValue)],
                    factory: factory)
            }
        }
        eventCounters = events
        eventCounterTable = EventSourceKind.allCases.flatMap { s in
            [EventOutcome.accepted, .rejected, .ignored].map { o in events["\(s.rawValue)/\(o.rawValue)"]! }
        }
        var sweeps: [SweepReason: CoreMetrics.Counter] = [:]
        for r in [SweepReason.interval, .reconnect, .startup, .manual] {
            sweeps[r] = Counter(label: MetricName.sweeps, dimensions: [("reason", r.rawValue)], factory: factory)
        }
        sweepCounters = sweeps
        var gauges: [String: CoreMetrics.Gauge] = [:]
        for name in Self.sourceNames {
            let g = Gauge(label: MetricName.sourceUp, dimensions: [("source", name)], factory: factory)
            g.record(0)
            gauges[name] = g
        }
        sourceGauges = gauges
        reloads = Counter(label: MetricName.reloads, factory: factory)
        keyspaceEventsEnabled = Gauge(label: MetricName.keyspaceEvents, factory: factory)
        sweepFoundCeleryTicks = Counter(
            label: MetricName.sweepFound, dimensions: [("kind", "celery_tick")], factory: factory)
        Gauge(label: "herald_build_info", dimensions: [("version", HeraldVersion.string)], factory: factory).record(1)
    }

    /// Counts one event taken through `route` and how its task handled it
    /// (`service`, `executor`, `off`, `no_service`, `no_executor`). Route names come from
    /// the topology, so the label set is bounded by the file.
    public func routed(_ route: String, _ handling: String) {
        Counter(
            label: MetricName.routedEvents, dimensions: [("route", route), ("handling", handling)], factory: factory
        )
        .increment()
    }

    /// Counts one event decision.
    @inline(__always)
    public func event(_ source: EventSourceKind, _ outcome: EventOutcome) {
        eventCounterTable[Self.ordinal(source) * 3 + Self.ordinal(outcome)].increment()
    }

    static func ordinal(_ s: EventSourceKind) -> Int {
        switch s {
        case .redisPubSub: return 0
        case .redisExpiry: return 1
        case .postgresNotify: return 2
        case .timer: return 3
        case .sweep: return 4
        }
    }

    static func ordinal(_ o: EventOutcome) -> Int {
        switch o {
        case .accepted: return 0
        case .rejected: return 1
        case .ignored: return 2
        }
    }

    /// The pre-built counter for one (source, outcome), for hot paths.
    public func eventCounter(_ source: EventSourceKind, _ outcome: EventOutcome) -> CoreMetrics.Counter {
        eventCounters["\(source.rawValue)/\(outcome.rawValue)"]!
    }

    public func sweep(_ reason: SweepReason) { sweepCounters[reason]?.increment() }

    public func sourceUp(_ name: String, _ up: Bool) { sourceGauges[name]?.record(up ? 1 : 0) }

    /// The Prometheus text exposition.
    public func render() -> [UInt8] {
        var buf: [UInt8] = []
        buf.reserveCapacity(8192)
        registry.emit(into: &buf)
        return buf
    }
}
