// The one protocol every task implements, and the context it runs in. Both are
// protocols so HeraldCore stays pure: the executor (HeraldRuntime) provides a
// context backed by logs, settings and a cancellation flag; tests provide one in
// memory. Cross-cutting behaviour wraps `run` as middleware (TaskMiddleware).

/// A task: its declaration and the work it does.
///
/// Tasks are values built once per topology load with their ``TaskDescriptor``
/// and registered in a ``TaskRegistry``; the executor calls ``run(_:)`` off the
/// loop thread, through the middleware chain, when the mediator plans a run.
public protocol HeraldTask: Sendable {
    /// The declaration (name, dependencies, schedule, queue, enable settings, policies).
    var descriptor: TaskDescriptor { get }

    /// Does the work once. Honour ``TaskContext/isDryRun`` (read, count and report,
    /// but change nothing) and check ``TaskContext/isCancelled`` between batches.
    /// Throwing marks the run failed and skips the tasks that depend on it.
    func run(_ context: any TaskContext) async throws -> TaskReport
}

extension HeraldTask {
    /// The task's name.
    public var name: TaskName { descriptor.name }
}

/// What a task sees of the world while it runs.
public protocol TaskContext: Sendable {
    /// This run's identifier (the mediator's run id), for logs and status events.
    var runID: TaskRunID { get }
    /// True when the run must not change anything (`herald run-task --dry-run`).
    var isDryRun: Bool { get }
    /// True once the run should stop at the next safe point (shutdown, timeout).
    var isCancelled: Bool { get }
    /// The settings the task reads (Dify's environment names).
    var settings: TaskSettings { get }
    /// The clock: tasks compute cut-offs from it, never from the system directly.
    var clock: any HeraldClock { get }
    /// The tick this run serves, in Unix seconds, when its schedule fired it (nil for
    /// requests and dependencies). The tick was claimed once across every instance.
    var scheduledAt: Int64? { get }

    /// Reports progress: a short message plus bounded key/value details
    /// (`batch`, `rows`, `table`), shown by `herald run-task` and logged.
    func progress(_ message: String, _ details: [(key: String, value: String)])
}

extension TaskContext {
    /// No tick unless the context says so.
    public var scheduledAt: Int64? { nil }

    /// Reports a progress message without details.
    public func progress(_ message: String) { progress(message, []) }

    /// Throws ``TaskCancellation`` when the run has been cancelled.
    public func checkCancellation() throws(TaskCancellation) {
        if isCancelled { throw TaskCancellation(runID: runID) }
    }
}

/// Thrown by ``TaskContext/checkCancellation()``: the run stopped early on request.
public struct TaskCancellation: Error, Sendable, Hashable, CustomStringConvertible {
    /// The run that stopped.
    public let runID: TaskRunID

    /// The cancellation of `runID`.
    public init(runID: TaskRunID) { self.runID = runID }

    public var description: String { "run \(runID) cancelled" }
}

/// Thrown by a run that defers its work without trying it, because what it needs is known to be
/// unavailable (a dependency's circuit breaker is open). The run ends `skipped` with this reason and
/// is not retried: the next scheduled run tries again.
public struct TaskDeferral: Error, Sendable, Hashable, CustomStringConvertible {
    /// Why the work waits.
    public let reason: String

    /// A deferral because of `reason`.
    public init(reason: String) { self.reason = reason }

    public var description: String { "deferred: \(reason)" }
}

/// What a finished run reports: counters for metrics and logs, and an optional note.
public struct TaskReport: Sendable, Hashable {
    /// Named counts, e.g. `["messages": 1200, "batches": 2]` (keys are bounded, never IDs).
    public var counts: [String: Int]
    /// One line for the operator ("mail disabled: MAIL_TYPE unset"), or nil.
    public var note: String?

    /// A report with `counts` and `note`.
    public init(counts: [String: Int] = [:], note: String? = nil) {
        self.counts = counts
        self.note = note
    }

    /// Nothing to report.
    public static let empty = TaskReport()
}

/// How a run ended, as the executor tells the mediator.
public enum TaskOutcome: Sendable, Hashable, CustomStringConvertible {
    /// The run did its work.
    case succeeded
    /// The run threw or timed out; `reason` is the error's one-line description.
    case failed(reason: String)
    /// The run did not do its work, not through a fault: its lock was held elsewhere
    /// with `when_held: skip`, or it was cancelled at shutdown.
    case skipped(reason: String)

    /// `succeeded`, `failed`, `skipped`: the `status` label of `herald_task_runs_total`.
    public var status: String {
        switch self {
        case .succeeded: return "succeeded"
        case .failed: return "failed"
        case .skipped: return "skipped"
        }
    }

    public var description: String {
        switch self {
        case .succeeded: return "succeeded"
        case .failed(let reason): return "failed: \(reason)"
        case .skipped(let reason): return "skipped: \(reason)"
        }
    }
}
