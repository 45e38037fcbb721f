// `herald run-task NAME [--dry-run]`: runs one task (and the dependencies it needs
// first) now, in this process, against the configured servers: a local executor on
// its own loop, with the same locks, run records and status events as the daemon,
// printing each state change and progress line, then a summary.

import ArgumentParser
import Foundation
import HeraldCore
import HeraldIO
import HeraldRuntime
import HeraldTasks
import Logging
import Synchronization

/// Prints state changes for the operator.
struct RunTaskPrinter: TaskObserver {
    func observe(_ event: TaskStatusEvent) {
        var line = "\(event.task) [\(event.runID?.rawValue ?? "-")] \(event.status.rawValue)"
        if let d = event.durationSeconds { line += String(format: " in %.3fs", d) }
        if let reason = event.reason { line += ": \(reason)" }
        print(line)
    }
}

/// `herald run-task NAME [--dry-run] [--topology FILE]`.
struct RunTaskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run-task",
        abstract: "Run one task now (its dependencies first), in this process.",
        discussion: """
            Uses the daemon's settings, topology, task locks and herald.task_runs. A native task \
            runs Herald's implementation here; a celery task enqueues Dify's Celery task now \
            (its name, queue, args and kwargs). With --dry-run the tasks read and count but \
            change nothing. Exit status: 0 succeeded, 1 failed or skipped, 2 unknown task, a task \
            that is off or runs only inside the daemon, or bad settings.
            """
    )

    @Argument(help: "The task name, e.g. clean_embedding_cache_task.")
    var name: String

    @Flag(name: .long, help: "Read and report, change nothing.")
    var dryRun = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The topology file (default: HERALD_TOPOLOGY, else topology/default.json).",
            valueName: "file"))
    var topology: String?

    func run() throws {
        let command = "herald run-task"
        let settings = try CLI.settings()
        let resolved = try TopologyFile.resolve(
            TopologyFile.path(self.topology ?? settings.topologyPath), command: command)
        let topology = resolved.topology
        HeraldLogHandler.bootstrap(format: settings.logFormat, level: settings.logLevel)
        var logger = Logger(label: "herald.run-task")
        logger.logLevel = settings.logLevel
        let environment = TaskSettings.applyingHeraldOverrides(ProcessInfo.processInfo.environment)
        let pool = PostgresPool(connInfo: settings.database, size: 2)
        let billing = BillingHTTPSource.from(environment: environment)
        let resources = DatasetTaskResources(
            pool: pool, redis: settings.redis, broker: settings.celeryBroker, redisKeyPrefix: settings.redisKeyPrefix,
            origin: "herald@\(settings.instanceID)", billing: billing, billingBulk: billing)
        let loop: EventLoop
        let executor: TaskExecutor
        do {
            let task = TaskName(rawValue: name)
            guard topology.task(task) != nil else {
                let known = topology.graph.order.map(\.rawValue).joined(separator: ", ")
                CLI.fail("unknown task '\(name)' (the topology declares: \(known))", code: 2)
            }
            if resolved.mode(task) == .off { CLI.fail(TaskHandlerError.off(task).description, code: 2) }
            if resolved.isService(task) { CLI.fail(TaskHandlerError.runsAsService(task).description, code: 2) }
            let registry = try HeraldTaskCatalog.make(resolved, resources: resources)
            loop = try EventLoop()
            executor = try TaskExecutor(
                loop: loop, pool: pool, topology: topology, registry: registry, settings: TaskSettings(environment),
                locks: TaskLockClient(endpoint: settings.redis, keyPrefix: settings.redisKeyPrefix),
                instanceID: settings.instanceID + "-cli", modes: resolved.modes,
                observers: [RunTaskPrinter(), TaskStatusPublisher(endpoint: settings.redis)],
                middleware: TaskMiddlewareChain(), logger: logger)
        } catch {
            CLI.fail("\(error)", code: 2)
        }
        executor.progressSink = { p in
            print("  \(p.task): \(p.message)" + p.details.map { " \($0.key)=\($0.value)" }.joined())
        }
        let result = Mutex<TaskRequestResult?>(nil)
        loop.start(name: "herald-run-task")
        loop.execute {
            executor.start(armingSchedules: false)
            executor.request(TaskName(rawValue: name), dryRun: dryRun) { r in
                result.withLock { $0 = r }
                executor.stop()
                loop.stop()
            }
        }
        loop.waitUntilStopped()
        switch result.withLock({ $0 }) {
        case .finished(.succeeded)?:
            print("\(name): succeeded" + (dryRun ? " (dry run, nothing changed)" : ""))
        case .finished(let outcome)?:
            print("\(name): \(outcome)")
            throw ExitCode(1)
        case .rejected(let why)?:
            CLI.fail("\(name): \(why)", code: 2)
        case nil:
            CLI.fail("\(name): the run did not finish", code: 1)
        }
    }
}
