// Per-queue workers. Each topology queue gets its own threads (as many as its
// concurrency) behind a Swift `TaskExecutor`, and a task's async `run` executes
// with that executor as its preference: task bodies make long blocking libpq,
// hiredis and libcurl calls, which must not occupy Swift's small cooperative
// pool. The loop only counts runs in flight and starts the next one.

import Foundation
import HeraldCore
import HeraldIO
import HeraldTasks
import Logging

/// A Swift concurrency executor backed by dedicated threads (one queue's workers).
final class QueueThreads: _Concurrency.TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopping = false

    init(name: String, threads: Int) {
        for index in 0..<max(1, threads) {
            let thread = Thread { [self] in work() }
            thread.name = "herald-task-\(name)-\(index)"
            thread.start()
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Lets the threads exit once no job is queued.
    func shutdown() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

/// One queue's limit, runs waiting for a slot, and runs in flight.
struct QueueState {
    let name: String
    let limit: Int
    var pending: [TaskRun] = []
    var inFlight = 0
    var threads: QueueThreads?

    init(name: String, limit: Int) {
        self.name = name
        self.limit = limit
    }
}

extension TaskExecutor {
    /// Queues `run` on its task's queue and starts what the limit allows. On the loop.
    func enqueue(_ run: TaskRun) {
        let queue = mediator.graph.descriptor(run.task)?.queue ?? "default"
        if queues[queue] == nil { queues[queue] = QueueState(name: queue, limit: 1) }
        queues[queue]!.pending.append(run)
        pump(queue)
    }

    private func pump(_ name: String) {
        while var state = queues[name], state.inFlight < state.limit, !state.pending.isEmpty {
            let run = state.pending.removeFirst()
            state.inFlight += 1
            if state.threads == nil { state.threads = QueueThreads(name: name, threads: state.limit) }
            queues[name] = state
            launch(run, on: state.threads!, queue: name)
        }
    }

    private func launch(_ run: TaskRun, on threads: QueueThreads, queue: String) {
        guard let task = registry[run.task] else {
            finishRun(run, queue: queue, outcome: .failed(reason: "no implementation"), report: nil)
            return
        }
        let flag = TaskCancellationFlag()
        if stopped { flag.cancel() }
        cancellations[run.runID] = flag
        startedAt[run.runID] = clock.now
        announce(run.task, run.runID, .running, cause: run.cause, dryRun: run.dryRun)
        let context = TaskRunContext(
            task: run.task, runID: run.runID, isDryRun: run.dryRun, settings: settings,
            clock: clock, cancellation: flag, scheduledAt: tickTimes[run.runID],
            progressSink: progressSink)
        Task(executorPreference: threads) { [self] in
            let (outcome, report) = await execute(run, task: task, context: context)
            loop.execute { [self] in finishRun(run, queue: queue, outcome: outcome, report: report) }
        }
    }

    /// Lock, record, run through the middleware, record, unlock. On a queue thread.
    private func execute(
        _ run: TaskRun, task: any HeraldTask, context: TaskRunContext
    ) async
        -> (TaskOutcome, TaskReport?)
    {
        var lease: TaskLockLease?
        if !run.dryRun, case .exclusive(let lock) = task.descriptor.lock, let locks {
            do {
                lease = try locks.lease(lock)
            } catch {
                return recorded(run, .failed(reason: "\(error)"), nil)
            }
            if lease == nil {
                let reason = "lock \(TaskLockClient.redisKey(lock, keyPrefix: locks.keyPrefix)) held elsewhere"
                return recorded(run, lock.whenHeld == .skip ? .skipped(reason: reason) : .failed(reason: reason), nil)
            }
        }
        defer {
            if let lease {
                if lease.isLost {
                    logger.warning("task lock was lost while the task ran", metadata: ["lock": "\(lease.handle)"])
                }
                do { try lease.release() } catch {
                    logger.warning(
                        "cannot release task lock", metadata: ["lock": "\(lease.handle)", "error": "\(error)"])
                }
            }
        }
        do {
            try pool.withConnection { c in
                try recordRun(
                    c, task: run.task, runID: run.runID, cause: run.cause.description, dryRun: run.dryRun,
                    outcome: nil, report: nil, finished: false)
            }
        } catch {
            logger.warning("cannot record task run start", metadata: ["run_id": "\(run.runID)", "error": "\(error)"])
        }
        let outcome: TaskOutcome
        var report: TaskReport?
        do {
            report = try await middleware.run(task, context: context)
            outcome = .succeeded
        } catch let cancelled as TaskCancellation {
            outcome = .skipped(reason: cancelled.description)
        } catch let deferral as TaskDeferral {
            outcome = .skipped(reason: deferral.description)
        } catch {
            outcome = .failed(reason: Self.oneLine(error))
        }
        return recorded(run, outcome, report)
    }

    /// Writes the final row of `run` (blocking) and returns its arguments.
    private func recorded(_ run: TaskRun, _ outcome: TaskOutcome, _ report: TaskReport?) -> (TaskOutcome, TaskReport?) {
        do {
            try pool.withConnection { c in
                try recordRun(
                    c, task: run.task, runID: run.runID, cause: run.cause.description, dryRun: run.dryRun,
                    outcome: outcome, report: report, finished: true)
            }
        } catch {
            logger.warning("cannot record task run", metadata: ["run_id": "\(run.runID)", "error": "\(error)"])
        }
        return (outcome, report)
    }

    /// Back on the loop: free the slot, announce, tell the mediator, start what follows.
    func finishRun(_ run: TaskRun, queue: String, outcome: TaskOutcome, report: TaskReport?) {
        queues[queue]?.inFlight -= 1
        cancellations[run.runID] = nil
        tickTimes[run.runID] = nil
        let duration = startedAt.removeValue(forKey: run.runID).map { clock.now.duration(since: $0).seconds }
        let status: TaskRunStatus
        var reason: String?
        switch outcome {
        case .succeeded: status = .succeeded
        case .failed(let r): status = .failed; reason = r
        case .skipped(let r): status = .skipped; reason = r
        }
        announce(
            run.task, run.runID, status, cause: run.cause, dryRun: run.dryRun, reason: reason ?? report?.note,
            duration: duration)
        carryOut(mediator.handle(.finished(run.task, runID: run.runID, outcome: outcome)))
        if stopped { stopThreadsIfIdle() } else { pump(queue) }
    }

    /// After stop: lets each idle queue's threads exit.
    func stopThreadsIfIdle() {
        guard stopped else { return }
        for name in queues.keys where queues[name]!.inFlight == 0 {
            queues[name]!.threads?.shutdown()
            queues[name]!.threads = nil
        }
    }

    func logRecordFailure(_ result: Result<Void, any Error>, _ runID: TaskRunID) {
        if case .failure(let error) = result {
            logger.warning("cannot record task run", metadata: ["run_id": "\(runID)", "error": "\(error)"])
        }
    }

    static let recordRunSQL = """
        INSERT INTO herald.task_runs (run_id, task, cause, dry_run, status, finished_at, report, error)
        VALUES ($1, $2, $3, $4::boolean, $5, CASE WHEN $6::boolean THEN now() END, $7::jsonb, $8)
        ON CONFLICT (run_id) DO UPDATE SET status = EXCLUDED.status, finished_at = EXCLUDED.finished_at,
            report = EXCLUDED.report, error = EXCLUDED.error
        """

    /// Inserts or updates the `herald.task_runs` row of one run (blocking).
    func recordRun(
        _ c: PostgresConnection, task: TaskName, runID: TaskRunID, cause: String, dryRun: Bool,
        outcome: TaskOutcome?, report: TaskReport?, finished: Bool
    ) throws {
        let status = outcome?.status ?? "running"
        var error: String?
        switch outcome {
        case .failed(let r)?, .skipped(let r)?: error = r
        default: break
        }
        try c.query(
            Self.recordRunSQL,
            [
                runID.rawValue, task.rawValue, cause, dryRun ? "true" : "false", status, finished ? "true" : "false",
                report.map(Self.reportJSON), error,
            ])
    }

    /// `{"counts":{…},"note":…}`.
    static func reportJSON(_ report: TaskReport) -> String {
        let counts = report.counts.sorted { $0.key < $1.key }
            .map { "\(TaskStatusEvent.quote($0.key)):\($0.value)" }.joined(separator: ",")
        let note = report.note.map(TaskStatusEvent.quote) ?? "null"
        return "{\"counts\":{\(counts)},\"note\":\(note)}"
    }

    /// The error's description on one line.
    static func oneLine(_ error: any Error) -> String {
        String(describing: error).split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}
