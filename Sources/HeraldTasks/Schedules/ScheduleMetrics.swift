// The schedule subsystem's metrics, created once with bounded labels.

import CoreMetrics

/// Counters and histograms of workflow schedules (names fixed, listed in docs/metrics.md).
public struct ScheduleMetrics: Sendable {
    public enum Via: String, Sendable, CaseIterable { case timer, event, sweep, runNow = "run_now" }
    /// What failed, for `herald_schedule_errors_total{operation}`.
    public enum Operation: String, Sendable, CaseIterable {
        case windowLoad = "window_load", read, claim, sweep, resend, push, markEnqueued = "mark_enqueued"
        case runNow = "run_now", triggerLookup = "trigger_lookup"

        /// The operations without which due plans are not found or not sent: while one fails,
        /// health says so.
        public static let findingDuePlans: Set<Operation> = [.windowLoad, .read, .claim, .sweep, .resend]
    }

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
    let windowLoads: CoreMetrics.Counter
    private let errors: [Operation: CoreMetrics.Counter]

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
        windowLoads = Counter(label: "herald_schedule_window_loads_total", dimensions: [], factory: factory)
        var e: [Operation: CoreMetrics.Counter] = [:]
        for o in Operation.allCases {
            e[o] = Counter(
                label: "herald_schedule_errors_total", dimensions: [("operation", o.rawValue)], factory: factory)
        }
        errors = e
    }

    func failed(_ operation: Operation) {
        errors[operation]?.increment()
    }

    func fired(_ via: Via, _ n: Int) {
        if n > 0 { fires[via]?.increment(by: n) }
    }
}
