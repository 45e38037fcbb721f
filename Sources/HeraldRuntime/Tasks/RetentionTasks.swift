// The two retention cleanups as executor tasks: `clean_messages` and
// `clean_workflow_runlogs_precise`. Each reads its settings from the run's context
// (Dify's names), holds a connection of its own for the whole run (never one of the
// pool's, which the schedules' claims need), reports progress at
// most every few seconds, counts deleted rows per table in herald_rows_deleted_total,
// and ends with a summary whose counts land in herald.task_runs.

import CoreMetrics
import Foundation
import HeraldCore
import HeraldIO
import HeraldTasks
import Synchronization

/// A counter family with fixed label names, one counter per label values, made on first use.
public final class LabeledCounter: Sendable {
    /// The metric's name.
    public let name: String
    private let labels: [String]
    private let factory: any MetricsFactory
    private let counters = Mutex<[[String]: CoreMetrics.Counter]>([:])

    public init(name: String, labels: [String], factory: any MetricsFactory) {
        self.name = name
        self.labels = labels
        self.factory = factory
    }

    /// Adds `n` (nothing when `n` ≤ 0) to the counter of `values` (one per label, in order).
    public func add(_ values: [String], _ n: Int) {
        guard n > 0 else { return }
        let counter = counters.withLock { map in
            if let c = map[values] { return c }
            let c = Counter(label: name, dimensions: Array(zip(labels, values)), factory: factory)
            map[values] = c
            return c
        }
        counter.increment(by: n)
    }
}

/// `herald_rows_deleted_total{task,table}`.
public final class RowsDeletedCounter: Sendable {
    /// The metric's name.
    public static let name = "herald_rows_deleted_total"
    private let counter: LabeledCounter

    public init(factory: any MetricsFactory) {
        counter = LabeledCounter(name: Self.name, labels: ["task", "table"], factory: factory)
    }

    /// Adds `rows` deleted from `table` by `task`.
    public func add(task: TaskName, table: String, rows: Int) { counter.add([task.rawValue, table], rows) }
}

/// `herald_billing_lookup_errors_total{kind}`: `plan_batch` (a `/subscription/plan/batch` chunk
/// failed; its tenants were kept) and `cache_value` (an unreadable `tenant_plan:` value; asked again).
public enum BillingLookupErrors {
    public static let name = "herald_billing_lookup_errors_total"
}

extension DatasetTaskResources {
    func retentionSettings(_ context: any TaskContext) throws(DatasetTaskRunError) -> RetentionSettings {
        do { return try RetentionSettings.load(from: context.settings.values) } catch { throw .settings("\(error)") }
    }

    /// The progress share of a run: `scanned` of `total` candidates, the percentage, and the
    /// seconds left at the rate so far (none without a total or before the first batch).
    static func share(scanned: Int, of total: Int?, elapsed: Double) -> [(key: String, value: String)] {
        guard let total, total > 0, scanned > 0 else { return [] }
        let done = min(scanned, total)
        let percent = Double(done) * 100 / Double(total)
        let eta = elapsed * Double(total - done) / Double(done)
        return [
            ("scanned", String(scanned)), ("of", String(total)), ("percent", String(format: "%.1f", percent)),
            ("eta_s", String(Int(eta.rounded()))),
        ]
    }

    /// Runs a cleaner on one pooled connection with progress, metrics and the summary.
    func runRetention(
        _ task: TaskName, _ context: any TaskContext, parent: String,
        _ body: (PostgresConnection, Date, () -> Bool, (RetentionBatch, RetentionReport) -> Void)
            throws -> RetentionReport
    ) throws -> TaskReport {
        let now = Date(timeIntervalSince1970: context.clock.wallSeconds)
        func uptime() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
        let started = uptime()
        var lastProgress = started
        let dry = context.isDryRun
        let report = try pool.withDedicatedConnection { c in
            try body(c, now, { !context.isCancelled }) { batch, running in
                if !dry { for (table, n) in batch.deleted { rowsDeleted?(task, table, n) } }
                let t = uptime()
                if t - lastProgress >= 5 {
                    lastProgress = t
                    var details: [(key: String, value: String)] = [
                        ("batches", String(running.batches)), (parent, String(running.deleted[parent] ?? 0)),
                        ("rows", String(running.totalDeleted)), ("batch_size", String(running.finalBatchSize)),
                    ]
                    details += Self.share(scanned: running.scanned, of: running.candidates, elapsed: t - started)
                    context.progress(dry ? "counting" : "deleting", details)
                }
            }
        }
        try context.checkCancellation()
        var details: [(key: String, value: String)] = [("cutoff", report.cutoff), ("batches", String(report.batches))]
        for (table, n) in report.deleted.sorted(by: { $0.key < $1.key }) { details.append((table, String(n))) }
        details.append(("longest_batch_ms", String(format: "%.1f", Double(report.longestBatchMicros) / 1000)))
        context.progress(dry ? "dry run: would delete" : "deleted", details)
        let parentCount = report.deleted[parent] ?? 0
        return TaskReport(
            counts: [
                parent: parentCount, "rows": report.totalDeleted, "batches": report.batches, "scanned": report.scanned,
                "kept": report.kept, "retries": report.retries, "timeouts": report.timeouts,
                "longest_batch_us": report.longestBatchMicros,
                "batch_size": report.finalBatchSize,
            ],
            note: dry ? "dry run: \(parentCount) \(parent) (\(report.totalDeleted) rows) would be deleted" : nil)
    }
}

/// `clean_messages`: expired messages and their children, per Dify's billing policy.
public struct CleanMessagesTask: HeraldTask {
    public let descriptor: TaskDescriptor
    let resources: DatasetTaskResources

    public init(descriptor: TaskDescriptor, resources: DatasetTaskResources) {
        self.descriptor = descriptor
        self.resources = resources
    }

    public func run(_ context: any TaskContext) async throws -> TaskReport {
        let settings = try resources.retentionSettings(context)
        var policy = RetentionPolicy.everyTenant
        var lookup: TenantBillingLookup?
        if settings.billingEnabled {
            guard let bulk = resources.billingBulk else {
                throw DatasetTaskRunError.settings("BILLING_ENABLED=true but BILLING_API_URL is not set")
            }
            // Without Redis every tenant is asked of the API (Dify's fallback).
            let redis = try? RedisClient.gated(endpoint: resources.redis)
            let l = TenantBillingLookup(source: bulk, redis: redis)
            let whitelist = try l.whitelist()
            policy = .sandbox(
                .init(
                    whitelist: whitelist, graceDays: settings.gracePeriodDays,
                    now: Int64(context.clock.wallSeconds)))
            lookup = l
            context.progress(
                "billing policy",
                [
                    ("whitelisted", String(whitelist.count)),
                    ("grace_days", String(settings.gracePeriodDays)),
                ])
        }
        let cleaner = MessagesCleaner(settings: settings, policy: policy, billing: lookup)
        let task = name
        defer {
            if let lookup {
                resources.billingErrors?("plan_batch", lookup.failedChunks)
                resources.billingErrors?("cache_value", lookup.badCacheValues)
                if lookup.failedChunks > 0 {
                    context.progress(
                        "billing lookups failed; those tenants were kept",
                        [
                            ("chunks", String(lookup.failedChunks)), ("first_error", lookup.firstFailure ?? ""),
                        ])
                }
                if lookup.badCacheValues > 0 {
                    context.progress(
                        "unreadable tenant_plan cache values; asked billing instead",
                        [("values", String(lookup.badCacheValues))])
                }
            }
        }
        return try resources.runRetention(task, context, parent: "messages") { c, now, go, onBatch in
            try cleaner.run(c, now: now, dryRun: context.isDryRun, shouldContinue: go, onBatch: onBatch)
        }
    }
}

/// `clean_workflow_runlogs_precise`: expired ended workflow runs and everything attached.
public struct CleanWorkflowRunLogsTask: HeraldTask {
    public let descriptor: TaskDescriptor
    let resources: DatasetTaskResources

    public init(descriptor: TaskDescriptor, resources: DatasetTaskResources) {
        self.descriptor = descriptor
        self.resources = resources
    }

    public func run(_ context: any TaskContext) async throws -> TaskReport {
        let cleaner = WorkflowRunLogsCleaner(settings: try resources.retentionSettings(context))
        return try resources.runRetention(name, context, parent: "workflow_runs") { c, now, go, onBatch in
            try cleaner.run(c, now: now, dryRun: context.isDryRun, shouldContinue: go, onBatch: onBatch)
        }
    }
}
