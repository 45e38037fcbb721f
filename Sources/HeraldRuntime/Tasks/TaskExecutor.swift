// The task executor carries out the mediator's plans. It is loop-confined like
// ScheduleService: the mediator, the queues and the cron timers live on the loop
// thread; claiming ticks and recording runs happen on the PostgreSQL pool; task
// bodies run on each queue's own worker threads (TaskExecutor+Queues.swift); every
// result comes back to the loop with `loop.execute`.

import CoreMetrics
import Foundation
import HeraldCore
import HeraldIO
import HeraldTasks
import Logging

/// Why the executor cannot be built.
public enum TaskExecutorError: Error, Sendable, CustomStringConvertible {
    /// The registered tasks do not form a graph.
    case registry(TaskRegistryError)
    /// An enable setting or `LOG_TZ` is invalid.
    case setting(TaskSettingError)
    /// A task's schedule cannot be resolved with the settings.
    case schedule(TaskName, TaskScheduleError)

    public var description: String {
        switch self {
        case .registry(let e): return "\(e)"
        case .setting(let e): return "\(e)"
        case .schedule(let task, let e): return "schedule of \(task): \(e)"
        }
    }
}

/// How a `request` ended.
public enum TaskRequestResult: Sendable, Hashable {
    /// The chain's target finished (or was skipped) with this outcome.
    case finished(TaskOutcome)
    /// The request was refused (unknown task).
    case rejected(MediatorRejection)
}

/// Runs the registered tasks: cron ticks claimed once across instances, requests,
/// dependency chains, per-queue concurrency, task locks, run records and status events.
///
/// Create, start, request and stop on the loop thread.
public final class TaskExecutor: @unchecked Sendable {
    let loop: EventLoop
    let pool: PostgresPool
    let locks: TaskLockClient?
    let registry: TaskRegistry
    let settings: TaskSettings
    let instanceID: String
    let observers: [any TaskObserver]
    let middleware: TaskMiddlewareChain
    let clock: any HeraldClock
    let logger: Logger
    /// Where task progress goes (default: the log at `info`).
    public var progressSink: @Sendable (TaskProgress) -> Void

    var mediator: Mediator
    let schedules: [TaskName: ResolvedTaskSchedule]
    /// How each task runs (native, celery, off); a task absent here runs natively.
    let modes: [TaskName: ResolvedRunMode]
    /// The tick a planned tick run serves (Unix seconds), handed to its context.
    var tickTimes: [TaskRunID: Int64] = [:]
    /// The latest end of a run of each task on this instance: status and wall time.
    public private(set) var lastOutcomes: [TaskName: (status: String, at: Double, seconds: Double?)] = [:]
    /// Whether a re-send of unsent `celery` ticks is in flight.
    var resendInFlight = false
    /// Counts `celery` ticks the sweep found claimed but never enqueued
    /// (`herald_sweep_found_total{kind="celery_tick"}`); nil counts nothing.
    public var resentTicks: CoreMetrics.Counter?
    var queues: [String: QueueState] = [:]
    var timers: [TaskName: LoopTimer] = [:]
    var nextFires: [TaskName: Int64] = [:]
    var completions: [ChainID: @Sendable (TaskRequestResult) -> Void] = [:]
    var cancellations: [TaskRunID: TaskCancellationFlag] = [:]
    var startedAt: [TaskRunID: MonotonicInstant] = [:]
    /// Cause and dry-run mode of runs still waiting for their dependencies.
    var waiting: [TaskRunID: (cause: RunCause, dryRun: Bool)] = [:]
    var running = false
    /// True once ``stop()`` ran: runs launched from then on start cancelled.
    var stopped = false

    /// An executor over `registry`'s tasks; queue limits come from `topology`
    /// (a queue it does not declare runs one task at a time). `modes` says how each task
    /// runs: `off` tasks never tick and a chain skips them; service tasks
    /// (``HeraldTaskCatalog/serviceTasks`` running natively) are not ticked here.
    ///
    /// Run IDs are `<instanceID>-<start time, hex>-<n>`: unique per instance and per start,
    /// so `herald.task_runs` rows of an earlier start are never overwritten.
    public init(
        loop: EventLoop, pool: PostgresPool, topology: Topology, registry: TaskRegistry, settings: TaskSettings,
        locks: TaskLockClient?, instanceID: String, modes: [TaskName: ResolvedRunMode] = [:],
        observers: [any TaskObserver], middleware: TaskMiddlewareChain? = nil,
        clock: any HeraldClock = SystemClock(), logger: Logger
    ) throws(TaskExecutorError) {
        self.loop = loop
        self.modes = modes
        self.pool = pool
        self.locks = locks
        self.registry = registry
        self.settings = settings
        self.instanceID = instanceID
        self.observers = observers
        self.middleware =
            middleware ?? TaskMiddlewareChain([TaskLoggingMiddleware(logger: logger), TaskRetryMiddleware()])
        self.clock = clock
        self.logger = logger
        self.progressSink = { p in
            var metadata: Logger.Metadata = ["task": "\(p.task)", "run_id": "\(p.runID)"]
            for (k, v) in p.details { metadata[k] = "\(v)" }
            logger.info("\(p.message)", metadata: metadata)
        }
        let graph: TaskGraph
        do { graph = try registry.graph() } catch { throw .registry(error) }
        var disabled: Set<TaskName> = []
        var schedules: [TaskName: ResolvedTaskSchedule] = [:]
        for descriptor in graph.descriptors {
            do {
                if !(try descriptor.isEnabled(settings)) { disabled.insert(descriptor.name) }
            } catch {
                throw .setting(error)
            }
            if modes[descriptor.name] == .off { disabled.insert(descriptor.name) }
            guard let schedule = descriptor.schedule else { continue }
            do {
                schedules[descriptor.name] = try schedule.resolve(settings)
            } catch {
                throw .schedule(descriptor.name, error)
            }
        }
        self.schedules = schedules
        let stamp = String(UInt64(max(0, clock.wallSeconds * 1000)), radix: 16)
        self.mediator = Mediator(graph: graph, disabled: disabled, runIDPrefix: "\(instanceID)-\(stamp)-")
        for descriptor in graph.descriptors where queues[descriptor.queue] == nil {
            let limit = max(1, topology.queue(descriptor.queue)?.concurrency ?? 1)
            queues[descriptor.queue] = QueueState(name: descriptor.queue, limit: limit)
        }
    }

    /// Tasks whose enable settings are off or whose run mode is `off` (their ticks are not armed).
    public var disabledTasks: Set<TaskName> { mediator.disabled }

    /// How `task` runs (native unless the resolved topology said otherwise).
    public func mode(_ task: TaskName) -> ResolvedRunMode { modes[task] ?? .native }

    /// Whether the executor ticks `task`: it has a schedule, is enabled, and is not run by a
    /// daemon service.
    func ticks(_ task: TaskName) -> Bool {
        schedules[task] != nil && !mediator.disabled.contains(task)
            && !(mode(task) == .native && HeraldTaskCatalog.serviceTasks.contains(task))
    }

    /// The next tick of each armed task (Unix seconds), for `herald status`.
    public var armedTicks: [TaskName: Int64] { nextFires.filter { timers[$0.key] != nil } }

    /// Runs waiting or running now.
    public var activeRuns: [Mediator.ActiveRun] { mediator.activeRuns }

    // MARK: Lifecycle

    /// Arms a timer per enabled cron task and catches up missed `run_once` ticks (unless
    /// `armingSchedules` is false: `herald run-task` only runs what it requests). Call on the loop.
    public func start(armingSchedules: Bool = true) {
        loop.assertInLoop()
        guard !running else { return }
        running = true
        let now = clock.wallSeconds
        for name in mediator.graph.order where armingSchedules && ticks(name) {
            let timer = LoopTimer(loop: loop) { [unowned self] in self.timerFired(name) }
            timers[name] = timer
            arm(name, after: now)
            if mediator.graph.descriptor(name)?.missedRuns == .runOnce, case .cron(let cron)? = schedules[name],
                let previous = Self.previousFire(cron, atOrBefore: Int64(now.rounded(.down)))
            {
                claimTick(name, at: previous, missed: true)
            }
        }
        let names: (ResolvedRunMode) -> String = { mode in
            self.mediator.graph.order.filter { self.mode($0) == mode }.map(\.rawValue).joined(separator: ",")
        }
        logger.info(
            "task executor started",
            metadata: [
                "tasks": "\(mediator.graph.order.count)", "armed": "\(timers.count)",
                "native": "\(names(.native))", "celery": "\(names(.celery))", "off": "\(names(.off))",
                "disabled": "\(mediator.disabled.sorted().map(\.rawValue).joined(separator: ","))",
            ])
    }

    /// Stops the timers and asks running tasks to stop at their next safe point;
    /// waiting runs are dropped. Call on the loop.
    public func stop() {
        loop.assertInLoop()
        guard running else { return }
        running = false
        stopped = true
        for timer in timers.values { timer.cancel() }
        timers.removeAll()
        for flag in cancellations.values { flag.cancel() }
        for name in queues.keys { queues[name]!.pending.removeAll() }
        stopThreadsIfIdle()
        logger.info("task executor stopped", metadata: ["running": "\(cancellations.count)"])
    }

    // MARK: Triggers

    /// Runs `task` (and the dependencies it needs first); `completion` gets the target's
    /// outcome on the loop. Call on the loop.
    public func request(
        _ task: TaskName, dryRun: Bool = false,
        completion: @escaping @Sendable (TaskRequestResult) -> Void = { _ in }
    ) {
        loop.assertInLoop()
        let plan = mediator.handle(.request(task, dryRun: dryRun))
        if let chain = plan.chain { completions[chain] = completion }
        for step in plan.steps {
            if case .rejected(_, let why) = step { completion(.rejected(why)) }
        }
        carryOut(plan)
    }

    /// An event routed to `task` (by the route `route`): claims the current second as a tick
    /// of `task`, so that however many instances receive the event (pub/sub and NOTIFY reach
    /// every instance), one runs the task, and a `celery` task is enqueued once. Events within
    /// the same second coalesce; a disabled task is skipped as its ticks are. Call on the loop.
    public func requestFromEvent(_ task: TaskName, route: String) {
        loop.assertInLoop()
        guard running, mediator.graph.descriptor(task) != nil else { return }
        logger.debug("event routed to task", metadata: ["task": "\(task)", "route": "\(route)"])
        claimTick(task, at: Int64(clock.wallSeconds.rounded(.down)), missed: false)
    }

    /// Claims the tick of `task` scheduled at `unixSeconds` in `herald.task_ticks` and,
    /// if this instance won it, runs the task as a tick. Call on the loop.
    public func tick(_ task: TaskName, scheduledAt unixSeconds: Int64) {
        loop.assertInLoop()
        claimTick(task, at: unixSeconds, missed: false)
    }

    private func arm(_ name: TaskName, after unixSeconds: Double) {
        guard let schedule = schedules[name], let timer = timers[name] else { return }
        do {
            let fire = try schedule.nextTick(afterUnixSeconds: unixSeconds)
            nextFires[name] = fire
            let delay = max(0, Double(fire) - clock.wallSeconds)
            timer.schedule(after: .nanoseconds(Int64(delay * 1e9)))
        } catch {
            logger.error("task schedule never fires; not armed", metadata: ["task": "\(name)", "error": "\(error)"])
        }
    }

    private func timerFired(_ name: TaskName) {
        guard running, let fire = nextFires[name] else { return }
        let now = clock.wallSeconds
        if now + 0.001 < Double(fire) {  // the monotonic timer ran ahead of the wall clock
            timers[name]?.schedule(after: .nanoseconds(Int64((Double(fire) - now) * 1e9)))
            return
        }
        claimTick(name, at: fire, missed: false)
        arm(name, after: max(now, Double(fire)))
    }

    static let claimTickSQL = """
        INSERT INTO herald.task_ticks (task, tick_at, claimed_by, run_mode)
        VALUES ($1, to_timestamp($2::double precision) AT TIME ZONE 'UTC', $3, $4)
        ON CONFLICT (task, tick_at) DO NOTHING
        """

    func claimTick(_ name: TaskName, at unixSeconds: Int64, missed: Bool) {
        let instance = instanceID
        let mode = mode(name).rawValue
        pool.run(
            on: loop,
            { c in
                try c.query(Self.claimTickSQL, [name.rawValue, String(unixSeconds), instance, mode]).affected
            }
        ) { [self] result in
            let metadata: Logger.Metadata = ["task": "\(name)", "tick_at": "\(unixSeconds)", "missed": "\(missed)"]
            switch result {
            case .success(1):
                // Claimed during shutdown: a native tick is lost; a celery tick is re-sent by a peer's sweep.
                guard !stopped else { return }
                logger.info(missed ? "missed tick claimed: running once" : "tick claimed", metadata: metadata)
                runTick(name, at: unixSeconds)
            case .success:
                logger.debug("tick claimed by another instance", metadata: metadata)
            case .failure(let error):
                logger.error("cannot claim tick", metadata: metadata.merging(["error": "\(error)"]) { a, _ in a })
            }
        }
    }

    /// Plans a tick run of `name` serving the tick at `unixSeconds` (already claimed here).
    func runTick(_ name: TaskName, at unixSeconds: Int64) {
        let plan = mediator.handle(.tick(name))
        for step in plan.steps {
            switch step {
            case .run(let run) where run.task == name && run.cause == .tick: tickTimes[run.runID] = unixSeconds
            case .waiting(let task, let runID, _) where task == name: tickTimes[runID] = unixSeconds
            default: break
            }
        }
        carryOut(plan)
    }

    // MARK: Plans

    /// Carries out every step of `plan`, in order. On the loop.
    func carryOut(_ plan: MediatorPlan) {
        for step in plan.steps {
            switch step {
            case .run(let run):
                // A run that waited for its dependencies was announced queued already.
                if waiting.removeValue(forKey: run.runID) == nil {
                    announce(run.task, run.runID, .queued, cause: run.cause, dryRun: run.dryRun)
                }
                enqueue(run)
            case .waiting(let task, let runID, let deps):
                let run = mediator.activeRun(runID)
                if let run { waiting[runID] = (run.cause, run.dryRun) }
                announce(
                    task, runID, .queued, cause: run?.cause, dryRun: run?.dryRun ?? false,
                    reason: "waiting for " + deps.map(\.rawValue).joined(separator: ", "))
            case .coalesced(let task, let into, let isRunning):
                logger.info(
                    "task already planned; trigger joins it",
                    metadata: ["task": "\(task)", "run_id": "\(into)", "running": "\(isRunning)"])
            case .skipped(let task, let runID, let reason):
                if let runID {
                    tickTimes[runID] = nil
                    let planned = waiting.removeValue(forKey: runID)
                    let dryRun = planned?.dryRun ?? false
                    announce(task, runID, .skipped, cause: planned?.cause, dryRun: dryRun, reason: reason.description)
                    let cause = planned?.cause.description ?? "dependency"
                    pool.run(
                        on: loop,
                        { [self] c in
                            try recordRun(
                                c, task: task, runID: runID, cause: cause, dryRun: dryRun,
                                outcome: .skipped(reason: reason.description), report: nil, finished: true)
                        }
                    ) { [self] r in logRecordFailure(r, runID) }
                } else {
                    logger.info("task skipped", metadata: ["task": "\(task)", "reason": "\(reason)"])
                }
            case .chainFinished(let chain, _, let outcome):
                completions.removeValue(forKey: chain)?(.finished(outcome))
            case .rejected(let task, let why):
                logger.warning("task trigger refused", metadata: ["task": "\(task)", "reason": "\(why)"])
            }
        }
    }

    /// Tells every observer. On the loop.
    func announce(
        _ task: TaskName, _ runID: TaskRunID?, _ status: TaskRunStatus, cause: RunCause?, dryRun: Bool,
        reason: String? = nil, duration: Double? = nil
    ) {
        let event = TaskStatusEvent(
            task: task, runID: runID, status: status, at: clock.wallSeconds,
            cause: cause?.description, dryRun: dryRun, reason: reason,
            durationSeconds: duration, instance: instanceID)
        for observer in observers { observer.observe(event) }
        switch status {
        case .succeeded, .failed, .skipped: lastOutcomes[task] = (status.rawValue, event.at, duration)
        default: break
        }
    }

    // MARK: Schedules

    /// The latest fire of `schedule` at or before `unixSeconds` within 400 days, or nil.
    public static func previousFire(_ schedule: CronSchedule, atOrBefore unixSeconds: Int64) -> Int64? {
        var window: Int64 = 3600
        while window <= 400 * 86_400 {
            guard let first = try? schedule.nextFire(afterUnixMicros: (unixSeconds - window) * 1_000_000).unixSeconds
            else { return nil }
            if first <= unixSeconds {
                var last = first
                while let next = try? schedule.nextFire(afterUnixMicros: last * 1_000_000).unixSeconds,
                    next <= unixSeconds
                {
                    last = next
                }
                return last
            }
            window *= 2
        }
        return nil
    }
}
