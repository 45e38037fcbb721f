// The daemon: builds the subsystems in an explicit order on the loop thread
// and tears them down in reverse. Owns the event sources, the adaptive sweep,
// the metrics/health endpoint and the signal handlers, and routes every
// accepted event through the topology's routes to the handler of each task.
//
// Start-up order: topology -> metrics endpoint -> Redis command connection ->
// Redis subscriber -> PostgreSQL listener -> database pool and schedules ->
// tasks (started with the schedules once the schema is ready) -> sweep timer ->
// signals.

import CoreMetrics
import Foundation
import Glibc
import HeraldCore
import HeraldIO
import HeraldTasks
import Logging
import Synchronization

/// The Herald daemon. Create it, then call `start()` on the loop thread.
public final class Daemon: @unchecked Sendable {
    public let settings: Settings
    public let loop: EventLoop
    public let metrics: HeraldMetrics
    public let intake: EventIntake
    public let logger: Logger
    /// Extra work for every sweep, on the loop thread, before the sweep event is routed; none by default.
    public var sweepHooks: [(SweepReason) -> Void] = []
    /// Work to do on SIGHUP, on the loop thread.
    public var reloadHooks: [() -> Void] = []
    /// Observes every accepted event, on the loop thread (after the daemon's own routing).
    public var onEvent: ((Event) -> Void)?
    /// Observes every route an event took: (route name, task, how it was handled), on the loop thread.
    public var onRouted: ((String, TaskName, String) -> Void)?
    /// Observes every source state change (name, state), on the loop thread.
    public var onSourceChange: ((String, String) -> Void)?
    /// Called on the loop after shutdown completes.
    public var onStopped: (() -> Void)?
    /// Why the daemon stopped on its own (a schema newer than this build); `herald run` exits 1 with it.
    public private(set) var fatalProblem: String?

    private var redisCommand: RedisConnection?
    private var redisSubscriber: RedisConnection?
    private var listener: PostgresListener?
    var http: HTTPServer?
    var acceptBurst = BurstLimiter()
    private var signals: [SignalWatcher] = []
    public private(set) var pool: PostgresPool?
    public private(set) var schedules: ScheduleService?
    /// The trigger refresh (native `trigger_provider_refresh_task`), started with the schedules.
    public internal(set) var triggerRefresh: TriggerRefreshService?
    /// The plugin upgrade checks (native `check_upgradable_plugin_task`), started with the schedules.
    public internal(set) var pluginChecks: PluginCheckService?
    /// `herald_queue_length` of the monitored queues, and their alert mails (QueueMonitor.swift).
    public internal(set) var queueMonitor: QueueMonitor?
    var services: Bool { schedules != nil || triggerRefresh != nil || pluginChecks != nil }
    /// The topology with each task's way of running (nil when the file is missing or unusable).
    public private(set) var topology: ResolvedTopology?
    /// The task executor (nil when the topology is missing or invalid).
    public private(set) var tasks: TaskExecutor?
    /// The settings the tasks read (Dify's `ENABLE_*`, `LOG_TZ`, ...); set before `start()`.
    public var taskEnvironment: [String: String] = HeraldTaskCatalog.processEnvironment
    private var schemaReady = false
    private var schemaCheckInFlight = false
    /// Why the daemon is not ready beyond its sources (health shows them): the schema behind or
    /// ahead of this build, the topology missing or invalid; each source's last failure.
    private var schemaProblem: String?
    private var topologyProblem: String?
    private var sourceProblems: [String: String] = [:]
    private var planner: SweepPlanner
    private lazy var sweepTimer = LoopTimer(loop: loop) { [unowned self] in self.sweepIfDue() }
    private var lastSweepWall: Double?
    private var lastSweepReason: SweepReason?
    private var sweepCount = 0
    private var keyspaceEvents: Bool?
    private var startedWall: Double = 0
    private var running = false
    /// True once a stop signal started the schedules' drain.
    private var draining = false

    public init(settings: Settings, loop: EventLoop, logger: Logger, metrics: HeraldMetrics = HeraldMetrics()) {
        self.settings = settings
        self.loop = loop
        self.logger = logger
        self.metrics = metrics
        self.intake = EventIntake(metrics: metrics, logger: logger, keyPrefix: settings.redisKeyNamespace)
        self.planner = SweepPlanner(healthyInterval: settings.sweepInterval, start: MonotonicNow.instant)
        self.intake.handler = { [unowned self] event in self.route(event) }
    }

    /// Every accepted event goes through here. The sweep reaches every periodic safety net
    /// (the schedules' fallback claim, unsent `celery` ticks); an external event goes through
    /// the topology's routes to the handler of each task they name: the schedule service for
    /// a native `workflow_schedule_task`, the task executor for the other native and `celery`
    /// tasks (one run per task per second across instances), nothing for an `off` task.
    private func route(_ event: Event) {
        defer { onEvent?(event) }
        switch event {
        case .sweep:
            schedules?.handle(event)
            triggerRefresh?.handle(event)
            pluginChecks?.handle(event)
            tasks?.resendUnsentTicks(olderThan: Double(settings.scheduleResendAfterSeconds))
            return
        case .timerFired:
            return
        case .scheduleChanged, .keyExpired, .tableChanged:
            break
        }
        guard let topology else { return }
        for route in topology.topology.routes(matching: event) {
            let task = route.task
            let handling: String
            switch topology.mode(task) {
            case .off:
                handling = "off"
            case .native where topology.isService(task) && task == .triggerProviderRefresh:
                handling = triggerRefresh == nil ? "no_service" : "service"
                triggerRefresh?.handle(event)
            case .native where topology.isService(task) && task == .checkUpgradablePlugin:
                handling = pluginChecks == nil ? "no_service" : "service"
                pluginChecks?.handle(event)
            case .native where topology.isService(task):
                handling = schedules == nil ? "no_service" : "service"
                schedules?.handle(event)
            case .native, .celery:
                handling = tasks == nil ? "no_executor" : "executor"
                tasks?.requestFromEvent(task, route: route.name)
            }
            metrics.routed(route.name, handling)
            onRouted?(route.name, task, handling)
        }
    }

    /// The bound metrics port (useful when configured as 0).
    public var metricsPort: Int? { http?.port }

    // MARK: Lifecycle

    /// Starts every subsystem in order. Call on the loop thread.
    public func start(installSignalHandlers: Bool = true) throws(IOError) {
        loop.assertInLoop()
        guard !running else { return }
        running = true
        startedWall = loop.wallSeconds
        for (k, v) in settings.redactedSummary { logger.debug("setting", metadata: ["key": "\(k)", "value": "\(v)"]) }
        for w in settings.warnings { logger.warning("\(w)") }

        // 0. The topology: sources, routes and how each task runs. Without one the daemon
        // runs the schedules alone (timers and the sweep; no events are routed).
        switch HeraldTaskCatalog.loadResult(path: settings.topologyPath) {
        case .success(let resolved):
            topology = resolved
            topologyProblem = nil
        case .failure(let problem):
            logger.error(
                "\(problem.message); running without tasks", metadata: ["topology": "\(settings.topologyPath)"])
            topologyProblem = problem.message
        }
        if let topology { logTopology(topology) }

        // 1. Metrics and health first, so a failing start is observable; libevent's own warnings and
        // the dependencies' breakers report through the log and the metrics.
        LibeventLog.installRateLimited(logger: logger)
        Circuits.shared.export(to: metrics, logger: logger)
        if let addr = settings.metricsAddress { try startMetricsEndpoint(addr) }

        // 2. Redis command connection: CONFIG SET for keyspace events, later commands.
        let cmd = RedisConnection(name: "redis_command", loop: loop, endpoint: settings.redis)
        cmd.onStateChange = { [unowned self] state, reason in
            self.sourceChanged("redis_command", state.rawValue, reason)
        }
        cmd.onReady = { [unowned self] in self.enableKeyspaceEvents() }
        redisCommand = cmd
        cmd.start()

        // 3. Redis subscriber: schedule events and key expiry.
        // The channels are the declared sources' (the topology check allows only the fixed ones, docs/events.md).
        let sub = RedisConnection(name: "redis_subscriber", loop: loop, endpoint: settings.redis)
        sub.subscribe(channel(of: .redisPubSub)) { [unowned self] payload in self.intake.schedulePayload(payload) }
        sub.subscribe(Channels.expiredKeyEvents(database: settings.redis.database)) { [unowned self] payload in
            self.intake.expiredKey(payload)
        }
        sub.onStateChange = { [unowned self] state, reason in
            self.sourceChanged("redis_subscriber", state.rawValue, reason)
        }
        redisSubscriber = sub
        sub.start()

        // 4. PostgreSQL LISTEN.
        let pg = PostgresListener(loop: loop, connInfo: settings.database, channels: [channel(of: .postgresNotify)])
        pg.onNotify = { [unowned self] _, payload in self.intake.notifyPayload(payload) }
        pg.onStateChange = { [unowned self] state, reason in
            self.sourceChanged("postgres_listener", state.rawValue, reason)
        }
        listener = pg
        pg.start()

        // 5. Ordinary database connections for off-loop work, and the schedules on top.
        let pool = PostgresPool(connInfo: settings.database, size: settings.databasePoolSize)
        self.pool = pool
        // Workflow schedules run natively unless the topology says `celery` or `off` for
        // workflow_schedule_task (or its enable setting is off).
        let scheduleMode = topology?.mode(.workflowSchedule) ?? .native
        if settings.schedulesEnabled && scheduleMode != .native {
            logger.info(
                "workflow schedules not run by the schedule service",
                metadata: [
                    "task": "\(TaskName.workflowSchedule)", "run": "\(scheduleMode)",
                ])
        }
        if settings.schedulesEnabled && scheduleMode == .native {
            var options = ScheduleOptions()
            options.horizonSeconds = settings.scheduleHorizonSeconds
            options.sweepBatch = settings.schedulePollerBatchSize
            options.maxDispatchPerSecond = settings.scheduleMaxDispatchPerTick
            options.maxInFlight = max(1, settings.databasePoolSize - 2)
            options.resendAfterSeconds = settings.scheduleResendAfterSeconds
            options.leadMicros = settings.scheduleLead.nanosecondsClamped / 1000
            options.encodeAhead = settings.scheduleEncodeAhead
            schedules = ScheduleService(
                loop: loop, pool: pool, broker: settings.celeryBroker, redisKeyPrefix: settings.redisKeyPrefix,
                instanceID: settings.instanceID,
                metrics: ScheduleMetrics(factory: metrics.factory, queue: "schedule_executor"),
                options: options, logger: logger)
        }
        makeTriggerRefresh(pool: pool)
        makePluginChecks(pool: pool)
        if services { checkSchema() }

        // 5b. Tasks from the topology file; they start with the schedules once the schema is
        // ready (at once when schedules are off). A missing or invalid file is logged and skipped.
        tasks = topology.flatMap { makeExecutor($0, pool: pool) }
        if !services { tasks?.start() }
        makeQueueMonitor()

        // 6. The sweep: one at start, then adaptive.
        for name in HeraldMetrics.sourceNames { planner.sourceChanged(name, up: false, now: MonotonicNow.instant) }
        armSweep()

        // 7. Signals as loop events.
        if installSignalHandlers {
            signal(SIGPIPE, SIG_IGN)
            signals = [
                try SignalWatcher(loop: loop, signal: SIGTERM) { [unowned self] _ in
                    self.stopGracefully(reason: "SIGTERM")
                },
                try SignalWatcher(loop: loop, signal: SIGINT) { [unowned self] _ in
                    self.stopGracefully(reason: "SIGINT")
                },
                try SignalWatcher(loop: loop, signal: SIGHUP) { [unowned self] _ in self.reload() },
            ]
        }
        logger.info("herald started", metadata: ["instance": "\(settings.instanceID)"])
    }

    /// SIGTERM and SIGINT: stops the sweep and the tasks (runs are asked to stop at their next
    /// safe point), drains the schedules (nothing new is claimed; what this instance claimed is
    /// pushed at its instant, at most `HERALD_SCHEDULE_LEAD` ahead, and recorded), then shuts
    /// down. A second signal during the drain shuts down at once. Call on the loop thread.
    public func stopGracefully(reason: String) {
        loop.assertInLoop()
        guard running else { return }
        if draining {
            logger.warning("second stop signal: shutting down without waiting for the drain")
            return shutdown(reason: reason)
        }
        guard let schedules else { return shutdown(reason: reason) }
        draining = true
        logger.info("stopping: draining schedules", metadata: ["reason": "\(reason)"])
        sweepTimer.cancel()
        tasks?.stop()
        schedules.drain(deadline: settings.scheduleLead + .seconds(5)) { [unowned self] in self.shutdown(reason: reason)
        }
    }

    /// Stops every subsystem in the reverse of start-up order. Call on the loop thread.
    public func shutdown(reason: String) {
        loop.assertInLoop()
        guard running else { return }
        running = false
        logger.info("shutting down", metadata: ["reason": "\(reason)"])
        signals.removeAll()  // 7
        sweepTimer.cancel()  // 6
        tasks?.stop(); tasks = nil  // 5b
        queueMonitor?.stop(); queueMonitor = nil
        schedules?.stop(); schedules = nil  // 5
        triggerRefresh?.stop(); triggerRefresh = nil
        pluginChecks?.stop(); pluginChecks = nil
        pool = nil
        listener?.stop(); listener = nil  // 4
        redisSubscriber?.stop(); redisSubscriber = nil  // 3
        redisCommand?.stop(); redisCommand = nil  // 2
        http?.close(); http = nil  // 1
        logger.info("herald stopped")
        onStopped?()
    }

    /// Starts the schedules once the database schema is at Herald's version; until
    /// then says clearly what to do, and checks again on every sweep.
    private func checkSchema() {
        guard !schemaReady, !schemaCheckInFlight, let pool, services else { return }
        schemaCheckInFlight = true
        let latest = Migrations.latestVersion
        pool.run(on: loop, { c in try Migrator.appliedVersions(c).max() ?? 0 }) { [unowned self] result in
            schemaCheckInFlight = false
            guard running else { return }
            switch result {
            case .success(let v) where v > latest:
                // A schema newer than this build (a newer Herald migrated it): refused, rather than
                // run statements written for another schema.
                let problem =
                    "database schema is at version \(v), newer than this build's \(latest) (Herald \(HeraldVersion.string)): "
                    + "run the newer Herald, or roll the database back (docs/operations.md)"
                schemaProblem = problem
                logger.critical("\(problem); stopping")
                fatalProblem = problem
                shutdown(reason: "schema newer than this build")
            case .success(let v) where v == latest:
                schemaReady = true
                schemaProblem = nil
                schedules?.start()
                triggerRefresh?.start()
                pluginChecks?.start()
                logger.info("schedules started", metadata: ["schema_version": "\(v)"])
                tasks?.start()
            case .success(let v):
                let problem = "database schema is at version \(v), Herald needs \(latest): run `herald migrate`"
                schemaProblem = problem
                logger.error("\(problem); schedules wait until then")
            case .failure(let e):
                schemaProblem = "cannot read the schema version: \(e)"
                logger.error("cannot read the schema version; schedules wait", metadata: ["error": "\(e)"])
            }
        }
    }

    /// SIGHUP: re-reads and validates the topology off the loop. An invalid file is logged with
    /// the same error as `herald topology check` and the current topology stays; a valid one
    /// replaces the task executor once no task run is in progress (checked every 5 s).
    private func reload() {
        metrics.reloads.increment()
        logger.info("SIGHUP: reloading", metadata: ["topology": "\(settings.topologyPath)"])
        for hook in reloadHooks { hook() }
        let path = settings.topologyPath
        DispatchQueue.global().async { [loop] in
            let outcome: Result<Void, TopologyReloadError>
            if let bytes = FileManager.default.contents(atPath: path) {
                do {
                    _ = try Topology.load(json: bytes)
                    outcome = .success(())
                } catch {
                    outcome = .failure(.invalid("\(error)"))
                }
            } else {
                outcome = .failure(.unreadable)
            }
            loop.execute { [self] in
                switch outcome {
                case .success: replaceTasksWhenIdle()
                case .failure(let e):
                    logger.error(
                        "SIGHUP: topology not reloaded; keeping the current one",
                        metadata: ["topology": "\(path)", "error": "\(e)"])
                }
            }
        }
    }

    private func replaceTasksWhenIdle() {
        guard running else { return }
        if let current = tasks, !current.activeRuns.isEmpty {
            logger.info(
                "SIGHUP: topology reload waits for running tasks", metadata: ["runs": "\(current.activeRuns.count)"])
            reloadRetry.schedule(after: .seconds(5))
            return
        }
        guard let reloaded = HeraldTaskCatalog.load(path: settings.topologyPath, logger: logger) else {
            logger.error(
                "SIGHUP: topology not reloaded; keeping the current one",
                metadata: ["topology": "\(settings.topologyPath)"])
            return
        }
        if reloaded.mode(.workflowSchedule) != (topology?.mode(.workflowSchedule) ?? .native) {
            logger.warning(
                "SIGHUP: the run mode of workflow_schedule_task changed; it takes effect at the next restart")
        }
        tasks?.stop()
        topology = reloaded
        topologyProblem = nil
        logTopology(reloaded)
        tasks = makeExecutor(reloaded, pool: pool!)
        if schemaReady || !services { tasks?.start() }
        logger.info("SIGHUP: topology reloaded", metadata: ["tasks": "\(tasks != nil)"])
    }

    private func makeExecutor(_ topology: ResolvedTopology, pool: PostgresPool) -> TaskExecutor? {
        let executor = HeraldTaskCatalog.daemonExecutor(
            topology, settings: settings, environment: taskEnvironment, loop: loop, pool: pool, metrics: metrics,
            logger: logger)
        executor?.resentTicks = metrics.sweepFoundCeleryTicks
        return executor
    }

    /// The channel of the declared source of `kind`, else the fixed one (docs/events.md).
    private func channel(of kind: EventSourceKind) -> String {
        topology?.topology.channel(of: kind) ?? TopologySource.contractChannel(for: kind) ?? ""
    }

    /// Logs how every task runs and the routing table, as `herald topology check` prints them.
    private func logTopology(_ resolved: ResolvedTopology) {
        let names: (ResolvedRunMode) -> String = { resolved.tasks(running: $0).map(\.rawValue).joined(separator: ",") }
        logger.info(
            "topology loaded",
            metadata: [
                "topology": "\(resolved.path)", "native": "\(names(.native))", "celery": "\(names(.celery))",
                "off": "\(names(.off))",
            ])
        let overrides = TaskSettings.heraldOverrides(
            in: ProcessInfo.processInfo.environment,
            among: Set(resolved.topology.tasks.flatMap { $0.enabledBy.map(\.key) }))
        if !overrides.isEmpty {
            logger.info(
                "Dify settings overridden for Herald (HERALD_<NAME>)",
                metadata: [
                    "settings": "\(overrides.joined(separator: ","))"
                ])
        }
        for row in resolved.routingTable {
            logger.info(
                "route",
                metadata: [
                    "route": "\(row[0])", "source": "\(row[1])", "match": "\(row[2])", "task": "\(row[3])",
                    "runs": "\(row[4])",
                ])
        }
    }

    private lazy var reloadRetry = LoopTimer(loop: loop) { [unowned self] in self.replaceTasksWhenIdle() }

    // MARK: Sources

    private func sourceChanged(_ name: String, _ state: String, _ reason: String?) {
        let up = state == "ready"
        metrics.sourceUp(name, up)
        if up {
            sourceProblems[name] = nil
        } else if let reason {
            let address = name == "postgres_listener" ? settings.database.redacted : settings.redis.redacted
            sourceProblems[name] = "\(name) \(state) (\(address)): \(reason)"
        }
        onSourceChange?(name, state)
        if up {
            logger.info("source up", metadata: ["source": "\(name)"])
        } else if let reason, running {
            logger.warning("source \(state)", metadata: ["source": "\(name)", "reason": "\(reason)"])
        }
        planner.sourceChanged(name, up: up, now: MonotonicNow.instant)
        armSweep()
    }

    /// CONFIG SET notify-keyspace-events Ex where allowed, keeping flags already set.
    private func enableKeyspaceEvents() {
        guard let cmd = redisCommand else { return }
        cmd.send(["CONFIG", "GET", "notify-keyspace-events"]) { [unowned self] reply in
            guard case .array(let items)? = reply, items.count == 2, let current = items[1].text else {
                if case .error(let m)? = reply { self.keyspaceRefused(m) }
                return
            }
            let flags = Set(current)
            let hasExpired = flags.contains("E") && (flags.contains("x") || flags.contains("A"))
            if hasExpired {
                self.keyspaceEnabled(current)
                return
            }
            var wanted = current
            for f in "Ex" where !flags.contains(f) { wanted.append(f) }
            cmd.send(["CONFIG", "SET", "notify-keyspace-events", wanted]) { [unowned self] r in
                switch r {
                case .status?: self.keyspaceEnabled(wanted)
                case .error(let m)?: self.keyspaceRefused(m)
                default: break
                }
            }
        }
    }

    private func keyspaceEnabled(_ flags: String) {
        keyspaceEvents = true
        metrics.keyspaceEventsEnabled.record(1)
        logger.info("redis keyspace expiry events enabled", metadata: ["notify-keyspace-events": "\(flags)"])
    }

    private func keyspaceRefused(_ message: String) {
        keyspaceEvents = false
        metrics.keyspaceEventsEnabled.record(0)
        logger.warning(
            "cannot enable redis keyspace expiry events; set notify-keyspace-events Ex in redis.conf. Until then expiry-driven work is found only by the sweep",
            metadata: ["redis_error": "\(message)"])
    }

    // MARK: Sweep

    private func armSweep() {
        guard running, !draining else { return }
        let now = MonotonicNow.instant
        let due = planner.due
        sweepTimer.schedule(after: due > now ? due.duration(since: now) : .zero)
    }

    private func sweepIfDue() {
        let now = MonotonicNow.instant
        guard let reason = planner.reasonIfDue(now: now) else {
            armSweep()
            return
        }
        planner.didSweep(at: now)
        sweepCount += 1
        lastSweepWall = loop.wallSeconds
        lastSweepReason = reason
        metrics.sweep(reason)
        logger.debug("sweep", metadata: ["reason": "\(reason.rawValue)", "interval_s": "\(planner.interval.seconds)"])
        if !schemaReady { checkSchema() }
        for hook in sweepHooks { hook(reason) }
        intake.internalEvent(.sweep(reason: reason))
        armSweep()
    }

    /// Runs a sweep now (tests, `herald status` tooling).
    public func sweepNow() {
        loop.assertInLoop()
        planner.sourceChanged("manual", up: false, now: MonotonicNow.instant)
        planner.sourceChanged("manual", up: true, now: MonotonicNow.instant)
        sweepIfDue()
    }

    // MARK: Status

    /// The current status. Call on the loop thread.
    public func status() -> DaemonStatus {
        loop.assertInLoop()
        let sources: [(String, String)] = [
            ("redis_subscriber", redisSubscriber?.state.rawValue ?? "stopped"),
            ("redis_command", redisCommand?.state.rawValue ?? "stopped"),
            ("postgres_listener", listener?.state.rawValue ?? "stopped"),
        ]
        return DaemonStatus(
            instanceID: settings.instanceID, sources: sources.map { (name: $0.0, state: $0.1) },
            lastSweepWallSeconds: lastSweepWall, lastSweepReason: lastSweepReason?.rawValue, sweeps: sweepCount,
            keyspaceEvents: keyspaceEvents, startedWallSeconds: startedWall, armedPlans: schedules?.armedCount,
            scheduleWindowLoads: schedules?.windowLoads,
            recentFires: (schedules?.recentFires ?? []).prefix(10).map {
                (plan: $0.plan.description, scheduledAt: $0.scheduledAt, via: $0.via)
            },
            tasks: taskRows(),
            problems: [schemaProblem, topologyProblem].compactMap { $0 }
                + sources.filter { $0.1 != "ready" }.compactMap { sourceProblems[$0.0] },
            scheduleFailures: (schedules?.failing ?? [:]).map {
                (operation: $0.key.rawValue, since: $0.value.since, error: $0.value.error)
            }
            .sorted { $0.operation < $1.operation },
            circuits: Circuits.shared.states.map { ($0.dependency, $0.state.rawValue, $0.lastFailure) })
    }

    private func taskRows() -> [TaskStatusRow] {
        guard let topology else { return [] }
        let ticks = tasks?.armedTicks ?? [:]
        return topology.topology.graph.order.map { name in
            let last = tasks?.lastOutcomes[name]
            let runs = topology.isService(name) ? "native (service)" : topology.mode(name).rawValue
            let disabled = tasks?.disabledTasks.contains(name) ?? true
            return TaskStatusRow(
                task: name.rawValue, runs: runs,
                enabled: topology.isService(name)
                    ? serviceRunning(name) : !disabled,
                nextTick: ticks[name], lastStatus: last?.status, lastAt: last?.at, lastSeconds: last?.seconds)
        }
    }

    /// The listener's backend pid (tests use it for pg_terminate_backend).
    public var listenerBackendPID: Int32? { listener?.backendPID }
}

/// Why a SIGHUP reload kept the current topology.
enum TopologyReloadError: Error, CustomStringConvertible {
    case unreadable
    case invalid(String)

    var description: String {
        switch self {
        case .unreadable: return "file not readable"
        case .invalid(let e): return e
        }
    }
}
