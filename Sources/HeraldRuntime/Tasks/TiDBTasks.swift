// Dify's two TiDB pool beat tasks as executor tasks: `create_tidb_serverless_task` keeps
// TIDB_SERVERLESS_NUMBER idle clusters, `update_tidb_serverless_status_task` activates the new
// ones (HeraldTasks/TiDB/TiDBPool.swift does the work). Every TiDB Cloud call goes through the
// `tidb_api` breaker (Circuits.swift); while it is open a run defers (a progress line, no call,
// outcome `skipped`), and a persistent failure ends the run with its error instead of looping.

import CoreMetrics
import HeraldCore
import HeraldIO
import HeraldTasks

/// `herald_tidb_api_errors_total{call}`, `herald_tidb_clusters_created_total`,
/// `herald_tidb_clusters_activated_total`: created once, at zero.
public final class TiDBMetrics: Sendable {
    public static let apiErrorsName = "herald_tidb_api_errors_total"
    public static let createdName = "herald_tidb_clusters_created_total"
    public static let activatedName = "herald_tidb_clusters_activated_total"
    /// The `call` label's values.
    public static let calls = ["batch_create", "batch_get", "get_cluster"]

    private let apiErrors: [String: CoreMetrics.Counter]
    private let created: CoreMetrics.Counter
    private let activated: CoreMetrics.Counter

    public init(factory: any MetricsFactory) {
        var errors: [String: CoreMetrics.Counter] = [:]
        for call in Self.calls {
            let c = Counter(label: Self.apiErrorsName, dimensions: [("call", call)], factory: factory)
            c.increment(by: 0)
            errors[call] = c
        }
        apiErrors = errors
        created = Counter(label: Self.createdName, factory: factory)
        created.increment(by: 0)
        activated = Counter(label: Self.activatedName, factory: factory)
        activated.increment(by: 0)
    }

    /// Counts one failed call.
    public func apiError(_ call: String) { apiErrors[call]?.increment() }
    public func created(_ n: Int) { if n > 0 { created.increment(by: n) } }
    public func activated(_ n: Int) { if n > 0 { activated.increment(by: n) } }
}

extension DatasetTaskResources {
    func tidbSettings(_ context: any TaskContext) throws(DatasetTaskRunError) -> TiDBSettings {
        do { return try TiDBSettings.load(from: context.settings.values) } catch { throw .settings("\(error)") }
    }

    /// The pool over the task resources, its API calls behind the `tidb_api` breaker.
    func tidbPool(_ settings: TiDBSettings) throws(DatasetTaskRunError) -> TiDBPool {
        let api: (url: String, credentials: HTTPDigestCredentials)
        do { api = try settings.api() } catch { throw .settings("\(error)") }
        let metrics = tidbMetrics
        let client = TiDBCloudClient(
            apiURL: api.url, credentials: api.credentials,
            guarded: { body in
                do {
                    return try Circuits.shared.call(Circuits.tidbAPI) { try body() }
                } catch let open as CircuitOpenError {
                    throw TiDBAPIError.circuitOpen(open.description)
                }
            },
            failed: { call in metrics?.apiError(call) }, sleep: tidbSleep)
        return TiDBPool(settings: settings, client: client, redisKeyPrefix: redisKeyPrefix)
    }
}

/// A run that found the `tidb_api` breaker open: a progress line, and the run ends `skipped`.
private func deferred(_ why: String, _ context: any TaskContext) -> TaskDeferral {
    context.progress("deferred: the tidb_api circuit is open; the next run tries again")
    return TaskDeferral(reason: why)
}

/// `create_tidb_serverless_task`: tops the idle pool up to `TIDB_SERVERLESS_NUMBER`, 20 at a time.
public struct CreateTiDBServerlessTask: HeraldTask {
    public let descriptor: TaskDescriptor
    let resources: DatasetTaskResources

    /// The task as `descriptor` declares it.
    public init(descriptor: TaskDescriptor, resources: DatasetTaskResources) {
        self.descriptor = descriptor
        self.resources = resources
    }

    public func run(_ context: any TaskContext) async throws -> TaskReport {
        let settings = try resources.tidbSettings(context)
        guard settings.createJobEnabled else {
            return TaskReport(note: "CREATE_TIDB_SERVICE_JOB_ENABLED is false: nothing to do")
        }
        let pool = try resources.tidbPool(settings)
        let redis = try resources.redisClient(resources.redis)
        let metrics = resources.tidbMetrics
        let report: TiDBFillReport
        do {
            report = try pool.fill(
                resources.pool, redis: redis, dryRun: context.isDryRun, shouldContinue: { !context.isCancelled },
                created: { n in
                    metrics?.created(n)
                    context.progress("batch created", [("clusters", String(n))])
                })
        } catch TiDBAPIError.circuitOpen(let why) {
            throw deferred(why, context)
        }
        try context.checkCancellation()
        var note: String?
        if context.isDryRun {
            note = "dry run: \(report.wouldCreate) clusters would be asked for"
        } else if report.emptyBatch {
            note = "a batch created no usable cluster; the run stopped"
        }
        return TaskReport(
            counts: [
                "idle_before": report.idleBefore, "batches": report.batches, "created": report.created,
                "without_password": report.withoutPassword, "without_endpoint": report.withoutEndpoint,
            ], note: note)
    }
}

/// `update_tidb_serverless_status_task`: activates CREATING clusters the API reports ACTIVE.
public struct UpdateTiDBServerlessStatusTask: HeraldTask {
    public let descriptor: TaskDescriptor
    let resources: DatasetTaskResources

    /// The task as `descriptor` declares it.
    public init(descriptor: TaskDescriptor, resources: DatasetTaskResources) {
        self.descriptor = descriptor
        self.resources = resources
    }

    public func run(_ context: any TaskContext) async throws -> TaskReport {
        let settings = try resources.tidbSettings(context)
        let pool = try resources.tidbPool(settings)
        let metrics = resources.tidbMetrics
        let report: TiDBActivateReport
        do {
            report = try pool.activate(
                resources.pool, dryRun: context.isDryRun, shouldContinue: { !context.isCancelled },
                activated: { n in metrics?.activated(n) })
        } catch TiDBAPIError.circuitOpen(let why) {
            throw deferred(why, context)
        }
        try context.checkCancellation()
        return TaskReport(
            counts: [
                "creating": report.creating, "batches": report.batches, "activated": report.activated,
                "waiting_for_endpoint": report.waitingForEndpoint,
            ], note: context.isDryRun ? "dry run: nothing asked or changed" : nil)
    }
}
