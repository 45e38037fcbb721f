// The handlers of tasks Herald does not run with its own code. A `celery` task
// enqueues Dify's own Celery task, as Celery beat would, and records its tick as
// enqueued so that no instance re-sends it; an `off` task and a service task
// (run continuously by the daemon, not by the executor) refuse a run clearly.

import HeraldCore
import HeraldIO
import HeraldTasks

/// A `celery` beat entry: each run enqueues Dify's Celery task on Dify's queue.
///
/// A tick's message has the id `uuid5(ns, "beat:<task>@<tick>")` and is pushed together
/// with a marker, so a tick re-sent after a crash reaches the queue once; a request
/// (`herald run-task`, a dependency, an event) sends a fresh message each time.
public struct CeleryBeatTask: HeraldTask {
    public let descriptor: TaskDescriptor
    /// Dify's task, queue and arguments.
    public let call: CeleryBeatCall
    let sender: CeleryBeatSender
    let pool: PostgresPool

    /// The handler of `descriptor`, sending `call` through `sender`.
    public init(descriptor: TaskDescriptor, call: CeleryBeatCall, sender: CeleryBeatSender, pool: PostgresPool) {
        self.descriptor = descriptor
        self.call = call
        self.sender = sender
        self.pool = pool
    }

    static let markEnqueuedSQL = """
        UPDATE herald.task_ticks SET enqueued_at = now()
         WHERE task = $1 AND tick_at = to_timestamp($2::double precision) AT TIME ZONE 'UTC'
        """

    public func run(_ context: any TaskContext) async throws -> TaskReport {
        let key = sender.queueKey(call)
        if context.isDryRun {
            _ = try CeleryBeatSender.celeryTask(call, task: name, tick: context.scheduledAt)
            return TaskReport(counts: ["enqueued": 0], note: "dry run: would enqueue \(call.task) on \(key)")
        }
        let result = try sender.send(call, task: name, tick: context.scheduledAt)
        if let tick = context.scheduledAt {
            try pool.withConnection { c in _ = try c.query(Self.markEnqueuedSQL, [name.rawValue, String(tick)]) }
        }
        switch result {
        case .enqueued(let id):
            context.progress("enqueued", [("celery_task", call.task), ("queue", key), ("task_id", id)])
            return TaskReport(counts: ["enqueued": 1], note: "enqueued \(call.task) on \(key)")
        case .alreadySent(let id):
            context.progress("already enqueued", [("celery_task", call.task), ("queue", key), ("task_id", id)])
            return TaskReport(
                counts: ["enqueued": 0, "already_sent": 1],
                note: "tick already enqueued: \(call.task) on \(key)")
        }
    }
}

/// Why a task refused to run.
public enum TaskHandlerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The topology sets the task's run mode to `off`.
    case off(TaskName)
    /// The task runs continuously inside `herald run`, not as one run.
    case runsAsService(TaskName)

    public var description: String {
        switch self {
        case .off(let task): return "task '\(task)' is off in the topology (run: off)"
        case .runsAsService(let task):
            return
                "task '\(task)' runs continuously inside `herald run` (timers, events and the sweep), not as one run;"
                + " `herald publish schedule ID --run-now` fires one plan now"
        }
    }
}

/// A task whose run mode is `off`: never ticks; a run (only by direct request) fails clearly.
public struct OffTask: HeraldTask {
    public let descriptor: TaskDescriptor

    /// The handler of an `off` task.
    public init(descriptor: TaskDescriptor) { self.descriptor = descriptor }

    public func run(_ context: any TaskContext) async throws -> TaskReport { throw TaskHandlerError.off(name) }
}

/// A task that a daemon service runs natively and continuously (workflow schedules): the
/// executor neither ticks nor runs it; the daemon routes its events to the service.
public struct ServiceTask: HeraldTask {
    public let descriptor: TaskDescriptor

    /// The executor's placeholder for a service task.
    public init(descriptor: TaskDescriptor) { self.descriptor = descriptor }

    public func run(_ context: any TaskContext) async throws -> TaskReport {
        throw TaskHandlerError.runsAsService(name)
    }
}
