// The schedule subsystem's metrics, created once with bounded labels.

import CoreMetrics

/// Counters and histograms of workflow schedules (names fixed, listed in docs/metrics.md).
public struct ScheduleMetrics: Sendable {
    public enum Via: String, Sendable, CaseIterable { case timer, event, sweep, runNow = "run_now" }

    private let fires: [Via: CoreMetrics.Counter]
    let lateness: CoreMetrics.Timer
    let dispatched: CoreMetrics.Counter
    let duplicatesSuppressed: CoreMetrics.Counter
    let sweepFound: CoreMetrics.Counter
    let sweepResent: CoreMetrics.Counter
    let quarantined: CoreMetrics.Counter
    let dispatchErrors: CoreMetrics.Counter
    let armed: CoreMetrics.Gauge
    let runNowDropped: CoreMetrics.Counter
    let planReads: CoreMetrics.Counter

    public init(factory: any MetricsFactory, queue: String) {
        var f: [Via: CoreMetrics.Counter] = [:]
        for v in Via.allCases {
            f[v] = Counter(label: "herald_schedule_fires_total", dimensions: [("via", v.rawValue)], factory: factory)
        }
        fires = f
        lateness = Timer(label: "herald_schedule_fire_lateness_seconds", dimensions: [], factory: factory)
        dispatched = Counter(label: "herald_dispatch_total", dimensions: [("queue", queue)], factory: factory)
        duplicatesSuppressed = Counter(
            label: "herald_dispatch_duplicates_suppressed_total", dimensions: [("queue", queue)], factory: factory)
        sweepFound = Counter(label: "herald_sweep_found_total", dimensions: [("kind", "schedule")], factory: factory)
        sweepResent = Counter(
            label: "herald_sweep_found_total", dimensions: [("kind", "schedule_unenqueued")], factory: factory)
        quarantined = Counter(label: "herald_schedule_quarantined_total", dimensions: [], factory: factory)
        dispatchErrors = Counter(
            label: "herald_dispatch_errors_total", dimensions: [("queue", queue)], factory: factory)
        armed = Gauge(label: "herald_schedule_armed_plans", dimensions: [], factory: factory)
        runNowDropped = Counter(label: "herald_schedule_run_now_refused_total", dimensions: [], factory: factory)
        planReads = Counter(label: "herald_schedule_plan_reads_total", dimensions: [], factory: factory)
    }

    func fired(_ via: Via, _ n: Int) {
        if n > 0 { fires[via]?.increment(by: n) }
    }
}
