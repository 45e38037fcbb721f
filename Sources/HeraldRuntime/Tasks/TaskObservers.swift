// Every change of a run's state (queued, running, succeeded, failed, skipped) is
// announced once by the executor and observed here: a log line, the Prometheus
// counters and timers, and a JSON event on the Redis channel `herald_task_status`
// for dashboards and `herald run-task`. Observers never block the loop.

import CoreMetrics
import Dispatch
import Foundation
import HeraldCore
import HeraldIO
import Logging
import Synchronization

/// A run's state as announced in logs, metrics and status events.
public enum TaskRunStatus: String, Sendable, Hashable, CaseIterable {
    case queued, running, succeeded, failed, skipped
}

/// One state change of one run.
public struct TaskStatusEvent: Sendable, Hashable {
    /// The task.
    public var task: TaskName
    /// The run (nil for a skip decided before a run was planned, e.g. a disabled tick).
    public var runID: TaskRunID?
    /// The new state.
    public var status: TaskRunStatus
    /// Wall-clock Unix seconds of the change.
    public var at: Double
    /// Why the run was planned (`tick`, `request`, `dependency of X`).
    public var cause: String?
    /// Whether the run changes nothing.
    public var dryRun: Bool
    /// Why it failed or was skipped.
    public var reason: String?
    /// The run's duration, on its final state.
    public var durationSeconds: Double?
    /// The instance that announced it.
    public var instance: String

    /// An event.
    public init(
        task: TaskName, runID: TaskRunID?, status: TaskRunStatus, at: Double, cause: String? = nil,
        dryRun: Bool = false, reason: String? = nil, durationSeconds: Double? = nil, instance: String
    ) {
        self.task = task
        self.runID = runID
        self.status = status
        self.at = at
        self.cause = cause
        self.dryRun = dryRun
        self.reason = reason
        self.durationSeconds = durationSeconds
        self.instance = instance
    }

    /// `{"task":…,"run_id":…,"status":…,"at":"<ISO-8601 UTC>",…}` as published.
    public var json: String {
        var fields: [(String, String)] = [
            ("task", Self.quote(task.rawValue)),
            ("run_id", runID.map { Self.quote($0.rawValue) } ?? "null"),
            ("status", Self.quote(status.rawValue)),
            ("at", Self.quote(Self.iso8601(at))),
            ("instance", Self.quote(instance)),
            ("dry_run", dryRun ? "true" : "false"),
        ]
        if let cause { fields.append(("cause", Self.quote(cause))) }
        if let reason { fields.append(("reason", Self.quote(reason))) }
        if let durationSeconds { fields.append(("duration_seconds", String(format: "%.6f", durationSeconds))) }
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }

    static func iso8601(_ seconds: Double) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }

    /// A JSON string literal (the log handler's escaping, one implementation).
    static func quote(_ s: String) -> String { HeraldLogHandler.jsonString(s) }
}

/// Receives every state change, on the executor's loop thread: must not block.
public protocol TaskObserver: Sendable {
    /// Called once per state change.
    func observe(_ event: TaskStatusEvent)
}

/// Logs each state change: `info` for queued/running/succeeded/skipped, `error` for failed.
public struct TaskLogObserver: TaskObserver {
    let logger: Logger

    /// Logs through `logger`.
    public init(logger: Logger) { self.logger = logger }

    public func observe(_ event: TaskStatusEvent) {
        var metadata: Logger.Metadata = ["task": "\(event.task)", "status": "\(event.status.rawValue)"]
        if let runID = event.runID { metadata["run_id"] = "\(runID)" }
        if let cause = event.cause { metadata["cause"] = "\(cause)" }
        if event.dryRun { metadata["dry_run"] = "true" }
        if let reason = event.reason { metadata["reason"] = "\(reason)" }
        if let d = event.durationSeconds { metadata["duration_s"] = "\(String(format: "%.3f", d))" }
        logger.log(level: event.status == .failed ? .error : .info, "task \(event.status.rawValue)", metadata: metadata)
    }
}

/// Metric names of the task executor.
public enum TaskMetricName {
    /// Finished runs by task and final status (succeeded, failed, skipped).
    public static let runs = "herald_task_runs_total"
    /// Run durations by task.
    public static let duration = "herald_task_duration_seconds"
}

/// `herald_task_runs_total{task,status}` and `herald_task_duration_seconds{task}`.
public final class TaskMetricsObserver: TaskObserver {
    private let factory: any MetricsFactory
    private let counters = Mutex<[String: CoreMetrics.Counter]>([:])
    private let timers = Mutex<[TaskName: CoreMetrics.Timer]>([:])

    /// Metrics created through `factory` (``HeraldMetrics/factory``). The series of every task in
    /// `tasks` exist from the start, at 0, so dashboards and alerts see them before the first run.
    public init(factory: any MetricsFactory, tasks: [TaskName] = []) {
        self.factory = factory
        for task in tasks {
            for status in [TaskRunStatus.succeeded, .failed, .skipped] {
                _ = counter(task, status)
            }
            _ = timer(task)
        }
    }

    private func counter(_ task: TaskName, _ status: TaskRunStatus) -> CoreMetrics.Counter {
        let key = task.rawValue + "/" + status.rawValue
        return counters.withLock { map in
            if let c = map[key] { return c }
            let c = Counter(
                label: TaskMetricName.runs, dimensions: [("task", task.rawValue), ("status", status.rawValue)],
                factory: factory)
            map[key] = c
            return c
        }
    }

    private func timer(_ task: TaskName) -> CoreMetrics.Timer {
        timers.withLock { map in
            if let t = map[task] { return t }
            let t = CoreMetrics.Timer(
                label: TaskMetricName.duration, dimensions: [("task", task.rawValue)], factory: factory)
            map[task] = t
            return t
        }
    }

    public func observe(_ event: TaskStatusEvent) {
        switch event.status {
        case .succeeded, .failed, .skipped:
            counter(event.task, event.status).increment()
            if let d = event.durationSeconds, event.runID != nil {
                timer(event.task).recordNanoseconds(Int64((d * 1e9).rounded()))
            }
        case .queued, .running:
            break
        }
    }
}

/// PUBLISHes each event as JSON on `herald_task_status` (a channel, not a key: no
/// `REDIS_KEY_PREFIX`), from its own serial queue
/// with a blocking connection, so the loop never waits on Redis. Events are best-effort:
/// a failed publish is counted and the connection re-opened for the next one.
public final class TaskStatusPublisher: TaskObserver {
    /// The channel Herald publishes task status events on.
    public static let channel = "herald_task_status"

    private let endpoint: RedisEndpoint
    private let channel: String
    private let queue = DispatchQueue(label: "herald.task-status")
    private let connection = Mutex<RedisClient?>(nil)
    private let failed = Atomic<Int>(0)

    /// A publisher to `endpoint` on `channel`.
    public init(endpoint: RedisEndpoint, channel: String = TaskStatusPublisher.channel) {
        self.endpoint = endpoint
        self.channel = channel
    }

    /// Publishes that failed so far.
    public var failures: Int { failed.load(ordering: .relaxed) }

    public func observe(_ event: TaskStatusEvent) {
        let payload = event.json
        queue.async { [self] in publish(payload) }
    }

    /// Waits until every event observed so far has been published (tests, shutdown).
    public func flush() { queue.sync {} }

    private func publish(_ payload: String) {
        let ok = connection.withLock { conn -> Bool in
            do {
                if conn == nil || conn?.isHealthy == false { conn = try RedisClient.gated(endpoint: endpoint) }
                if case .error = try conn!.command(["PUBLISH", channel, payload]) { return false }
                return true
            } catch {
                conn = nil
                return false
            }
        }
        if !ok { failed.add(1, ordering: .relaxed) }
    }
}

/// The default middleware: logs a run's start and its end with the elapsed time and
/// the report's counts (the observers log state changes; this logs what the task did).
public struct TaskLoggingMiddleware: TaskMiddleware {
    let logger: Logger

    /// Logs through `logger`.
    public init(logger: Logger) { self.logger = logger }

    public func run(_ task: any HeraldTask, context: any TaskContext, next: TaskNext) async throws -> TaskReport {
        let start = context.clock.now
        var metadata: Logger.Metadata = ["task": "\(task.name)", "run_id": "\(context.runID)"]
        if context.isDryRun { metadata["dry_run"] = "true" }
        logger.debug("task body starting", metadata: metadata)
        do {
            let report = try await next(context)
            metadata["elapsed_s"] = "\(String(format: "%.3f", context.clock.now.duration(since: start).seconds))"
            for (key, value) in report.counts { metadata[key] = "\(value)" }
            if let note = report.note { metadata["note"] = "\(note)" }
            logger.info("task body finished", metadata: metadata)
            return report
        } catch {
            metadata["elapsed_s"] = "\(String(format: "%.3f", context.clock.now.duration(since: start).seconds))"
            metadata["error"] = "\(error)"
            logger.debug("task body threw", metadata: metadata)
            throw error
        }
    }
}
