// Which implementation runs each task of a topology. Every beat entry resolves
// to one way of running: `native` (Herald's own code: an executor task, or the
// schedule service for workflow_schedule_task), `celery` (Herald enqueues Dify's
// own Celery task at each tick) or `off`. A task that cannot be run the way the
// file asks, or a route to such a task, is refused here with the file named.

import Foundation
import Glibc
import HeraldCore
import HeraldIO
import HeraldTasks
import Logging

/// Why a topology cannot be run by this build.
public enum TaskCatalogError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The task asks for a way of running that this build cannot honour.
    case noHandler(file: String, task: TaskName, mode: TaskRunMode)
    /// An enabled route triggers a task that has no handler.
    case routeWithoutHandler(file: String, route: String, task: TaskName, mode: TaskRunMode)

    public var description: String {
        switch self {
        case .noHandler(let file, let task, let mode):
            return "\(file): task '\(task)': \(Self.why(mode))"
        case .routeWithoutHandler(let file, let route, let task, let mode):
            return "\(file): route '\(route)': task '\(task)' has no handler: \(Self.why(mode))"
        }
    }

    private static func why(_ mode: TaskRunMode) -> String {
        switch mode {
        case .native: return "run is 'native' but this build has no implementation of it (use 'celery' or 'off')"
        case .celery: return "run is 'celery' but no 'celery' object names Dify's task and queue"
        case .auto, .off:
            return
                "this build has no implementation of it and no 'celery' object names Dify's task (add one, or set run to 'off')"
        }
    }
}

/// A topology with every task's way of running resolved.
public struct ResolvedTopology: Sendable {
    /// The validated file.
    public let topology: Topology
    /// Where it was read from (for errors and logs).
    public let path: String
    /// How each task runs.
    public let modes: [TaskName: ResolvedRunMode]

    /// How `task` runs (`off` for a task the topology does not declare).
    public func mode(_ task: TaskName) -> ResolvedRunMode { modes[task] ?? .off }

    /// Whether `task` runs natively inside a daemon service rather than the task executor.
    public func isService(_ task: TaskName) -> Bool {
        mode(task) == .native && HeraldTaskCatalog.serviceTasks.contains(task)
    }

    /// The tasks that run each way, in dependency order.
    public func tasks(running mode: ResolvedRunMode) -> [TaskName] {
        topology.graph.order.filter { self.mode($0) == mode }
    }

    /// How a task's events are handled, for the routing table: `native (schedule service)`,
    /// `native (executor)`, `celery (<task> on <queue>)` or `off (ignored)`.
    public func handling(_ task: TaskName) -> String {
        switch mode(task) {
        case .native:
            guard isService(task) else { return "native (executor)" }
            switch task {
            case .triggerProviderRefresh: return "native (trigger refresh service)"
            case .checkUpgradablePlugin: return "native (plugin check service)"
            case .queueMonitor: return "native (queue monitor)"
            default: return "native (schedule service)"
            }
        case .celery: return "celery (" + (topology.task(task)?.celery?.description ?? "?") + ")"
        case .off: return "off (ignored)"
        }
    }

    /// One line per route: name, source (kind, channel), what it matches, the task and how it runs.
    public var routingTable: [[String]] {
        topology.routes.map { route in
            let source = topology.source(route.source)
            let sourceText = source.map { "\($0.name) (\($0.kind.rawValue) \($0.channel))" } ?? route.source
            var match = route.event.rawValue
            if !route.tables.isEmpty { match += " tables=" + route.tables.joined(separator: ",") }
            if let prefix = route.keyPrefix { match += " key_prefix=" + prefix }
            let how = route.enabled ? handling(route.task) : "disabled route"
            return [route.name, sourceText, match, route.task.rawValue, how]
        }
    }
}

/// Builds the registry of the tasks a topology declares, each with its handler.
public enum HeraldTaskCatalog {
    /// This process's environment with `HERALD_<NAME>` overrides applied (the daemon's task settings).
    public static var processEnvironment: [String: String] {
        TaskSettings.applyingHeraldOverrides(ProcessInfo.processInfo.environment)
    }

    /// The tasks the executor runs natively with this build's code.
    public static let executorTasks: [TaskName] = [
        .cleanEmbeddingCache, .cleanUnusedDatasets, .mailCleanDocumentNotify, .cleanMessages,
        .cleanWorkflowRunLogsPrecise, .createTiDBServerless, .updateTiDBServerlessStatus,
    ]

    /// The tasks a daemon service runs natively and continuously: workflow schedules
    /// (precise timers, events and the fallback sweep of the schedule service) and the trigger
    /// refresh (the same, over the subscriptions' due instants) and the plugin upgrade checks
    /// (each tenant at its time of day), and the queue monitor (every few seconds).
    public static let serviceTasks: Set<TaskName> = [
        .workflowSchedule, .triggerProviderRefresh, .checkUpgradablePlugin, .queueMonitor,
    ]

    /// Every task this build implements natively.
    public static var implemented: [TaskName] { executorTasks + serviceTasks.sorted() }

    /// Resolves how every task of `topology` runs; refuses a route or task without a handler.
    public static func resolve(_ topology: Topology, path: String) throws(TaskCatalogError) -> ResolvedTopology {
        var modes: [TaskName: ResolvedRunMode] = [:]
        var failed: [TaskName: TaskRunMode] = [:]
        for task in topology.tasks {
            let implemented = executorTasks.contains(task.name) || serviceTasks.contains(task.name)
            if let mode = ResolvedRunMode.resolve(task.run, implemented: implemented, hasCelery: task.celery != nil) {
                modes[task.name] = mode
            } else {
                failed[task.name] = task.run
            }
        }
        for route in topology.routes where route.enabled {
            if let mode = failed[route.task] {
                throw .routeWithoutHandler(file: path, route: route.name, task: route.task, mode: mode)
            }
        }
        for name in topology.graph.order {
            if let mode = failed[name] { throw .noHandler(file: path, task: name, mode: mode) }
        }
        return ResolvedTopology(topology: topology, path: path, modes: modes)
    }

    /// A registry with a handler for every task of `resolved`: Herald's implementation
    /// (`native`), Dify's Celery task (`celery`) or a refusal (`off`, and the service
    /// tasks, which the daemon runs outside the executor).
    public static func make(
        _ resolved: ResolvedTopology, resources: DatasetTaskResources
    ) throws(TaskRegistryError)
        -> TaskRegistry
    {
        var registry = TaskRegistry()
        let sender = CeleryBeatSender(
            broker: resources.broker, redisKeyPrefix: resources.redisKeyPrefix,
            origin: resources.origin)
        for descriptor in resolved.topology.tasks {
            switch resolved.mode(descriptor.name) {
            case .off:
                try registry.register(OffTask(descriptor: descriptor))
            case .celery:
                try registry.register(
                    CeleryBeatTask(
                        descriptor: descriptor.with(lock: .none), call: descriptor.celery!,
                        sender: sender, pool: resources.pool))
            case .native where serviceTasks.contains(descriptor.name):
                try registry.register(ServiceTask(descriptor: descriptor))
            case .native:
                try registry.register(try nativeTask(descriptor, resources: resources))
            }
        }
        return registry
    }

    private static func nativeTask(
        _ descriptor: TaskDescriptor, resources: DatasetTaskResources
    )
        throws(TaskRegistryError) -> any HeraldTask
    {
        switch descriptor.name {
        case .cleanEmbeddingCache: return EmbeddingCacheTask(descriptor: descriptor, resources: resources)
        case .cleanUnusedDatasets: return UnusedDatasetsTask(descriptor: descriptor, resources: resources)
        case .mailCleanDocumentNotify: return DocumentNotifyMailTask(descriptor: descriptor, resources: resources)
        case .cleanMessages: return CleanMessagesTask(descriptor: descriptor, resources: resources)
        case .cleanWorkflowRunLogsPrecise: return CleanWorkflowRunLogsTask(descriptor: descriptor, resources: resources)
        case .createTiDBServerless: return CreateTiDBServerlessTask(descriptor: descriptor, resources: resources)
        case .updateTiDBServerlessStatus:
            return UpdateTiDBServerlessStatusTask(descriptor: descriptor, resources: resources)
        default: throw .notImplemented([descriptor.name])
        }
    }

    /// Reads and resolves the topology at `path`; nil with a clear log line when it is missing,
    /// invalid or asks for a handler this build lacks (the daemon then runs without tasks).
    public static func load(path: String, logger: Logger) -> ResolvedTopology? {
        switch loadResult(path: path) {
        case .success(let resolved): return resolved
        case .failure(let problem):
            logger.error("\(problem.message); running without tasks", metadata: ["topology": "\(path)"])
            return nil
        }
    }

    /// Why a topology could not be used (health shows it).
    public struct LoadProblem: Error, Sendable {
        public var message: String
    }

    /// ``load(path:logger:)`` without logging: the topology, or what is wrong with it.
    public static func loadResult(path: String) -> Result<ResolvedTopology, LoadProblem> {
        var st = stat()
        guard stat(path, &st) == 0 else {  // follows symlinks (a ConfigMap's file is one)
            return .failure(LoadProblem(message: "topology file not found: \(path)"))
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {  // not a FIFO or a device: nothing to read
            return .failure(LoadProblem(message: "topology is not a regular file: \(path)"))
        }
        guard let bytes = FileManager.default.contents(atPath: path) else {
            return .failure(LoadProblem(message: "topology file unreadable: \(path)"))
        }
        do {
            return .success(try resolve(try Topology.load(json: bytes), path: path))
        } catch let error as TaskCatalogError {
            return .failure(LoadProblem(message: "topology unusable: \(error)"))
        } catch {
            return .failure(LoadProblem(message: "topology invalid: \(path): \(error)"))
        }
    }

    /// The daemon's executor for `resolved`: every task's handler, with the log, metrics and
    /// Redis status observers. Nil (with a clear log line) when the tasks' settings are
    /// unusable: the daemon then runs without tasks.
    public static func daemonExecutor(
        _ resolved: ResolvedTopology, settings: Settings, environment: [String: String],
        loop: EventLoop, pool: PostgresPool, metrics: HeraldMetrics,
        logger: Logger
    ) -> TaskExecutor? {
        let billing = BillingHTTPSource.from(environment: environment)
        let rowsDeleted = RowsDeletedCounter(factory: metrics.factory)
        let billingErrors = LabeledCounter(name: BillingLookupErrors.name, labels: ["kind"], factory: metrics.factory)
        var resources = DatasetTaskResources(
            pool: pool, redis: settings.redis, broker: settings.celeryBroker, redisKeyPrefix: settings.redisKeyPrefix,
            origin: "herald@\(settings.instanceID)", billing: billing, billingBulk: billing,
            rowsDeleted: { task, table, n in rowsDeleted.add(task: task, table: table, rows: n) },
            billingErrors: { kind, n in billingErrors.add([kind], n) })
        resources.tidbMetrics = TiDBMetrics(factory: metrics.factory)
        do {
            let registry = try make(resolved, resources: resources)
            let taskSettings = TaskSettings(environment)
            if resolved.mode(.mailCleanDocumentNotify) == .native,
                (try? resolved.topology.task(.mailCleanDocumentNotify)?.isEnabled(taskSettings)) == true
            {
                do {
                    _ = try MailSettings.load(from: environment).transport(
                        requiredBy: TaskName.mailCleanDocumentNotify.rawValue)
                } catch {
                    logger.error(
                        "mail settings unusable; mail_clean_document_notify_task runs will fail",
                        metadata: ["error": "\(error)"])
                }
            }
            return try TaskExecutor(
                loop: loop, pool: pool, topology: resolved.topology, registry: registry, settings: taskSettings,
                locks: TaskLockClient(endpoint: settings.redis, keyPrefix: settings.redisKeyPrefix),
                instanceID: settings.instanceID, modes: resolved.modes,
                observers: [
                    TaskLogObserver(logger: logger),
                    TaskMetricsObserver(factory: metrics.factory, tasks: resolved.topology.graph.order),
                    TaskStatusPublisher(endpoint: settings.redis),
                ],
                logger: logger)
        } catch {
            logger.error(
                "tasks unusable; running without tasks",
                metadata: ["topology": "\(resolved.path)", "error": "\(error)"])
            return nil
        }
    }
}
