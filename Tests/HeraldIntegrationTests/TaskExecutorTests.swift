// The task executor against real servers: a request runs the dataset chain in
// dependency order (seen in herald.task_runs, the observers and the Redis status
// channel); two executors on one database run a claimed tick once; a failed
// upstream skips the rest; the mail task leaves logs unnotified when a send fails.

import Foundation
import HeraldCore
import HeraldIO
import HeraldRuntime
import HeraldTasks
import Logging
import Synchronization
import XCTest

/// Records every status event.
final class RecordingObserver: TaskObserver {
    private let events = Mutex<[TaskStatusEvent]>([])
    func observe(_ event: TaskStatusEvent) { events.withLock { $0.append(event) } }
    var all: [TaskStatusEvent] { events.withLock { $0 } }
    func statuses(_ task: TaskName) -> [TaskRunStatus] { all.filter { $0.task == task }.map(\.status) }
}

/// An executor over the three dataset tasks on its own loop, against the fixture's database.
final class ExecutorHarness: @unchecked Sendable {
    let loop: EventLoop
    let executor: TaskExecutor
    let recorder = RecordingObserver()
    let publisher: TaskStatusPublisher

    static let chain: [TaskName] = [.cleanEmbeddingCache, .cleanUnusedDatasets, .mailCleanDocumentNotify]

    static let defaultTasks = [
        TaskDescriptor(name: .cleanEmbeddingCache, queue: "dataset"),
        TaskDescriptor(name: .cleanUnusedDatasets, dependencies: [.cleanEmbeddingCache], queue: "dataset"),
        TaskDescriptor(name: .mailCleanDocumentNotify, dependencies: [.cleanUnusedDatasets], queue: "dataset"),
    ]

    init(
        _ fx: DatasetFixture, env: [String: String], instance: String = "exec", billing: (any BillingPlanSource)? = nil,
        tasks: [TaskDescriptor] = ExecutorHarness.defaultTasks
    ) throws {
        let (r, d) = try TestServers.require()
        var info = try PostgresConnInfo(d)
        info["dbname"] = fx.database
        let pool = PostgresPool(connInfo: info, size: 3)
        let redis = try RedisEndpoint.parse(r)
        let topology = try Topology.make(
            queues: [TopologyQueue(name: "dataset", concurrency: 1)], tasks: tasks)
        let resources = DatasetTaskResources(
            pool: pool, redis: redis, broker: redis, redisKeyPrefix: fx.keyPrefix,
            origin: "herald@test", billing: billing)
        let resolved = try HeraldTaskCatalog.resolve(topology, path: "test")
        XCTAssertEqual(Set(resolved.modes.values), [.native])
        let registry = try HeraldTaskCatalog.make(resolved, resources: resources)
        var settings = ["HERALD_DATASET_INDEX_CLEANUP": "none"]
        settings.merge(env) { _, new in new }
        loop = try EventLoop()
        publisher = TaskStatusPublisher(endpoint: redis)
        var logger = Logger(label: "test.executor")
        logger.logLevel = .warning
        executor = try TaskExecutor(
            loop: loop, pool: pool, topology: topology, registry: registry, settings: TaskSettings(settings),
            locks: TaskLockClient(endpoint: redis, keyPrefix: fx.keyPrefix), instanceID: instance,
            observers: [recorder, TaskLogObserver(logger: logger), publisher], logger: logger)
        loop.start(name: "test-exec-\(instance)")
        loop.execute { [executor] in executor.start() }
    }

    /// Requests `task` and waits for its chain's outcome.
    func request(_ task: TaskName, dryRun: Bool = false, timeout: Double = 30) throws -> TaskRequestResult {
        let result = Mutex<TaskRequestResult?>(nil)
        loop.execute { [executor] in
            executor.request(task, dryRun: dryRun) { r in result.withLock { $0 = r } }
        }
        try waitUntil("request \(task)", timeout: timeout) { result.withLock { $0 } != nil }
        return try XCTUnwrap(result.withLock { $0 })
    }

    func stop() {
        loop.execute { [executor] in executor.stop() }
        loop.stop()
        loop.waitUntilStopped()
    }
}

final class TaskExecutorTests: XCTestCase {
    func fixture() throws -> DatasetFixture {
        let fx = try DatasetFixture()
        addTeardownBlock { fx.drop() }
        try fx.migrate()
        return fx
    }

    func harness(
        _ fx: DatasetFixture, env: [String: String] = [:], instance: String = "exec",
        billing: (any BillingPlanSource)? = nil,
        tasks: [TaskDescriptor] = ExecutorHarness.defaultTasks
    ) throws -> ExecutorHarness {
        let h = try ExecutorHarness(fx, env: env, instance: instance, billing: billing, tasks: tasks)
        addTeardownBlock { h.stop() }
        return h
    }

    /// `herald.task_runs` as (task, status), in start order.
    func runs(_ fx: DatasetFixture) throws -> [(String, String)] {
        try fx.conn.query("SELECT task, status FROM herald.task_runs ORDER BY started_at, run_id").rows
            .map { ($0[0] ?? "", $0[1] ?? "") }
    }

    func testRequestRunsTheChainInOrder() throws {
        let fx = try fixture()
        try fx.addEmbeddings(5, daysAgo: 40)
        try fx.addEmbeddings(3, daysAgo: 1)

        // Watch the status channel through the loop-side subscriber, as a dashboard would.
        let (r, _) = try TestServers.require()
        let payloads = Mutex<[String]>([])
        let subLoop = try EventLoop()
        subLoop.start(name: "test-status-sub")
        let ready = Mutex(false)
        let sub = RedisConnection(name: "status", loop: subLoop, endpoint: try RedisEndpoint.parse(r))
        subLoop.execute {
            sub.subscribe(TaskStatusPublisher.channel) { bytes in
                payloads.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) }
            }
            sub.onReady = { ready.withLock { $0 = true } }
            sub.start()
        }
        defer {
            subLoop.execute { sub.stop() }
            subLoop.stop()
            subLoop.waitUntilStopped()
        }
        try waitUntil("status subscriber ready") { ready.withLock { $0 } }
        Thread.sleep(forTimeInterval: 0.2)  // SUBSCRIBE confirmed after onReady

        let h = try harness(fx)
        XCTAssertEqual(try h.request(.mailCleanDocumentNotify), .finished(.succeeded))
        XCTAssertEqual(try runs(fx).map(\.0), ExecutorHarness.chain.map(\.rawValue))
        XCTAssertEqual(try runs(fx).map(\.1), ["succeeded", "succeeded", "succeeded"])
        XCTAssertEqual(try fx.scalar("SELECT count(*) FROM embeddings"), "3", "expired cache rows deleted")
        XCTAssertEqual(
            try fx.scalar(
                """
                SELECT (report->'counts'->>'deleted') FROM herald.task_runs WHERE task = 'clean_embedding_cache_task'
                """), "5")
        XCTAssertEqual(
            try fx.scalar(
                "SELECT report->>'note' FROM herald.task_runs WHERE task = $1",
                ["mail_clean_document_notify_task"]), "mail disabled: MAIL_TYPE unset")
        for task in ExecutorHarness.chain {
            XCTAssertEqual(h.recorder.statuses(task), [.queued, .running, .succeeded], "\(task)")
        }
        // Each task starts only after the one before it succeeded.
        let order = h.recorder.all.filter { $0.status != .queued }.map { "\($0.task.rawValue):\($0.status.rawValue)" }
        XCTAssertEqual(order, ExecutorHarness.chain.flatMap { ["\($0):running", "\($0):succeeded"] })

        h.publisher.flush()
        XCTAssertEqual(h.publisher.failures, 0)
        try waitUntil("9 status events on Redis") { payloads.withLock { $0.count } >= 9 }
        let events = try payloads.withLock { $0 }.map { try JSONReader.parse(Array($0.utf8)) }
        let finals = events.filter { $0["status"] == .string("succeeded") }
        XCTAssertEqual(
            finals.compactMap { if case .string(let t)? = $0["task"] { t } else { nil } },
            ExecutorHarness.chain.map(\.rawValue))
        for e in events {
            XCTAssertNotNil(e["run_id"])
            XCTAssertNotNil(e["at"])
        }
    }

    func testTwoExecutorsRunATickOnce() throws {
        let fx = try fixture()
        let a = try harness(fx, instance: "exec-a")
        let b = try harness(fx, instance: "exec-b")
        let tickAt = Int64(Date().timeIntervalSince1970) / 60 * 60
        a.loop.execute { a.executor.tick(.cleanEmbeddingCache, scheduledAt: tickAt) }
        b.loop.execute { b.executor.tick(.cleanEmbeddingCache, scheduledAt: tickAt) }
        try waitUntil("one run finished") {
            try fx.scalar("SELECT count(*) FROM herald.task_runs WHERE status = 'succeeded'") == "1"
        }
        Thread.sleep(forTimeInterval: 0.5)  // the loser had time to (wrongly) run
        XCTAssertEqual(try runs(fx).map(\.0), [TaskName.cleanEmbeddingCache.rawValue])
        XCTAssertEqual(try fx.scalar("SELECT count(*) FROM herald.task_ticks"), "1")
        let winner = try XCTUnwrap(try fx.scalar("SELECT claimed_by FROM herald.task_ticks"))
        XCTAssertTrue(["exec-a", "exec-b"].contains(winner))
        XCTAssertEqual(
            try fx.scalar("SELECT count(*) FROM herald.task_runs WHERE run_id LIKE $1", [winner + "-%"]), "1")
        // A second tick at the same time is claimed already: nothing runs.
        a.loop.execute { a.executor.tick(.cleanEmbeddingCache, scheduledAt: tickAt) }
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertEqual(try runs(fx).count, 1)
    }

    func testFailedUpstreamSkipsTheRest() throws {
        let fx = try fixture()
        let h = try harness(fx, env: ["PLAN_SANDBOX_CLEAN_DAY_SETTING": "0"])
        guard case .finished(.skipped(let reason)) = try h.request(.mailCleanDocumentNotify) else {
            return XCTFail("the target must be skipped")
        }
        XCTAssertTrue(reason.contains("clean_embedding_cache_task failed"), reason)
        // Skipped runs are recorded off the loop; the chain's answer may come first.
        try waitUntil("three run rows") { try runs(fx).count == 3 }
        // The two skips are recorded by background writes, in either order.
        XCTAssertEqual(
            try runs(fx).map { "\($0.0):\($0.1)" }.sorted(),
            [
                "clean_embedding_cache_task:failed", "clean_unused_datasets_task:skipped",
                "mail_clean_document_notify_task:skipped",
            ])
        XCTAssertEqual(h.recorder.statuses(.cleanEmbeddingCache), [.queued, .running, .failed])
        XCTAssertEqual(h.recorder.statuses(.cleanUnusedDatasets), [.queued, .skipped])
        XCTAssertEqual(h.recorder.statuses(.mailCleanDocumentNotify), [.queued, .skipped])
        XCTAssertNotNil(try fx.scalar("SELECT error FROM herald.task_runs WHERE task = 'clean_embedding_cache_task'"))
    }

    /// A tenant on the `team` plan with one logged knowledge base and an owner.
    func pendingLog(_ fx: DatasetFixture) throws -> String {
        let tenant = try fx.addTenant()
        try fx.addOwner(tenant: tenant, email: "owner@example.com")
        let dataset = try fx.addDataset(tenant: tenant, name: "Docs", createdDaysAgo: 1)
        return try fx.addLog(tenant: tenant, dataset: dataset)
    }

    func mailEnv(port: Int, caFile: String? = nil) -> [String: String] {
        var env = [
            "MAIL_TYPE": "smtp", "SMTP_SERVER": "127.0.0.1", "SMTP_PORT": "\(port)",
            "MAIL_DEFAULT_SEND_FROM": "Herald <herald@example.com>", "BILLING_ENABLED": "true",
            "CONSOLE_WEB_URL": "https://console.example.com",
        ]
        if let caFile { env["HERALD_SMTP_CA_FILE"] = caFile }
        return env
    }

    func testMailFailureLeavesLogsUnnotified() throws {
        let fx = try fixture()
        let log = try pendingLog(fx)
        let (fd, port) = try SMTPClientTests.listeningSocket()  // accepts nothing useful; closed below
        close(fd)
        let h = try harness(fx, env: mailEnv(port: port), billing: FakeBilling(plans: [:]))
        guard case .finished(.failed(let reason)) = try h.request(.mailCleanDocumentNotify) else {
            return XCTFail("the mail task must fail")
        }
        XCTAssertTrue(reason.contains("mail failed for 1 of 1"), reason)
        XCTAssertEqual(
            try fx.scalar("SELECT notified::text FROM dataset_auto_disable_logs WHERE id = $1", [log]), "false")
    }

    func testMailSentMarksLogsNotified() throws {
        let fx = try fixture()
        let log = try pendingLog(fx)
        let sink = try SMTPSink(user: nil, password: nil, refuse: [], tls: .none)
        addTeardownBlock { sink.stop() }
        let h = try harness(fx, env: mailEnv(port: sink.port, caFile: sink.caFile), billing: FakeBilling(plans: [:]))
        XCTAssertEqual(try h.request(.mailCleanDocumentNotify), .finished(.succeeded))
        XCTAssertEqual(
            try fx.scalar("SELECT notified::text FROM dataset_auto_disable_logs WHERE id = $1", [log]), "true")
        let messages = try sink.messages()
        XCTAssertEqual(messages.count, 1)
        XCTAssertEqual(messages.first?.headers["To"], "owner@example.com")
    }

    func testDryRunChangesNothing() throws {
        let fx = try fixture()
        try fx.addEmbeddings(4, daysAgo: 40)
        let h = try harness(fx)
        XCTAssertEqual(try h.request(.cleanEmbeddingCache, dryRun: true), .finished(.succeeded))
        XCTAssertEqual(try fx.scalar("SELECT count(*) FROM embeddings"), "4")
        XCTAssertEqual(try fx.scalar("SELECT dry_run::text FROM herald.task_runs"), "true")
    }

    func testLockHeldElsewhereSkips() throws {
        let fx = try fixture()
        let h = try harness(fx)
        let (r, _) = try TestServers.require()
        let other = TaskLockClient(endpoint: try RedisEndpoint.parse(r), keyPrefix: fx.keyPrefix)
        let held = try XCTUnwrap(try other.acquire(.standard(for: .cleanEmbeddingCache)))
        defer { _ = try? other.release(held) }
        guard case .finished(.skipped(let reason)) = try h.request(.cleanEmbeddingCache) else {
            return XCTFail("a held lock must skip the run")
        }
        XCTAssertTrue(reason.contains("held elsewhere"), reason)
        XCTAssertEqual(try runs(fx).map(\.1), ["skipped"])
    }

    func testPreviousFire() throws {
        let schedule = try CronSchedule("0 10 * * 1", timeZone: "UTC")
        // Wednesday 2026-01-07 12:00 UTC -> Monday 2026-01-05 10:00 UTC.
        XCTAssertEqual(TaskExecutor.previousFire(schedule, atOrBefore: 1_767_787_200), 1_767_607_200)
        XCTAssertEqual(TaskExecutor.previousFire(schedule, atOrBefore: 1_767_607_200), 1_767_607_200)
    }

    func testMissedTickRunsOnceAtStart() throws {
        let fx = try fixture()
        let tasks = [
            TaskDescriptor(
                name: .cleanEmbeddingCache, schedule: .cron("* * * * *"), queue: "dataset",
                missedRuns: .runOnce)
        ]
        let a = try harness(fx, instance: "exec-a", tasks: tasks)
        try waitUntil("the missed tick ran") {
            try fx.scalar("SELECT count(*) FROM herald.task_runs WHERE status = 'succeeded' AND cause = 'tick'") == "1"
        }
        // The row is written before the loop announces the end.
        try waitUntil("succeeded announced") { a.recorder.statuses(.cleanEmbeddingCache).last == .succeeded }
        XCTAssertEqual(a.recorder.statuses(.cleanEmbeddingCache), [.queued, .running, .succeeded])
        XCTAssertEqual(try fx.scalar("SELECT claimed_by FROM herald.task_ticks"), "exec-a")
        XCTAssertEqual(try fx.scalar("SELECT extract(second FROM tick_at)::int::text FROM herald.task_ticks"), "0")
        // Another instance starting in the same minute finds the tick claimed: nothing runs again.
        // (If a minute boundary passes meanwhile, b may claim and run the new minute's tick: that
        // is a different tick, so b's events must match exactly the ticks b claimed.)
        let b = try harness(fx, instance: "exec-b", tasks: tasks)
        Thread.sleep(forTimeInterval: 0.5)
        let bClaims =
            Int(try fx.scalar("SELECT count(*) FROM herald.task_ticks WHERE claimed_by = 'exec-b'") ?? "") ?? -1
        try waitUntil("b's events match its claimed ticks") { b.recorder.all.count == 3 * bClaims }
        let ticks = try fx.scalar("SELECT count(*) FROM herald.task_ticks")
        let runCount = try fx.scalar("SELECT count(*) FROM herald.task_runs")
        XCTAssertEqual(ticks, runCount, "one run per claimed tick (a minute boundary may add one)")
    }

    func testDisabledTaskIsNotArmedAndRequestRunsIt() throws {
        let fx = try fixture()
        let tasks = [
            TaskDescriptor(
                name: .cleanEmbeddingCache, schedule: .cron("* * * * *"), queue: "dataset",
                enabledBy: [EnableSetting("ENABLE_CLEAN_EMBEDDING_CACHE_TASK", default: false)],
                missedRuns: .runOnce)
        ]
        let h = try harness(fx, tasks: tasks)
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertEqual(try fx.scalar("SELECT count(*) FROM herald.task_ticks"), "0", "a disabled task claims no tick")
        XCTAssertEqual(try h.request(.cleanEmbeddingCache), .finished(.succeeded), "a request runs a disabled task")
    }
}

final class TaskMigrationTests: XCTestCase {
    func testVersionFiveCreatesTheTaskTablesOnce() throws {
        let fx = try DatasetFixture()
        addTeardownBlock { fx.drop() }
        try fx.migrate()
        XCTAssertTrue(try Migrator.appliedVersions(fx.conn).contains(5))
        XCTAssertEqual(try fx.scalar("SELECT to_regclass('herald.task_ticks') IS NOT NULL"), "t")
        XCTAssertEqual(try fx.scalar("SELECT to_regclass('herald.task_runs_task_started_idx') IS NOT NULL"), "t")
        let again = try Migrator.migrate(fx.conn)
        XCTAssertEqual(again.applied, [])
        // A tick is claimed once: the second insert of the same (task, tick_at) changes nothing.
        let claim =
            "INSERT INTO herald.task_ticks (task, tick_at, claimed_by) VALUES ('t', '2026-01-01 00:00', $1) ON CONFLICT DO NOTHING"
        XCTAssertEqual(try fx.conn.query(claim, ["a"]).affected, 1)
        XCTAssertEqual(try fx.conn.query(claim, ["b"]).affected, 0)
    }
}

final class DaemonTasksTests: XCTestCase {
    func testDaemonLoadsTheTopologyOrRunsWithoutTasks() throws {
        let repoTopology = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../topology/default.json").standardizedFileURL.path
        // Dify's defaults: the celery entries that are on push onto this test's own lists.
        let withTasks = try DaemonHarness(
            env: ["HERALD_TOPOLOGY": repoTopology, "REDIS_KEY_PREFIX": "daemon-tasks-\(getpid())"], quietBeat: false)
        defer { withTasks.stop() }
        let d = withTasks.daemon
        let names: [TaskName]? = withTasks.loop.sync {
            d.tasks.map { $0.activeRuns.map(\.task) + Array($0.disabledTasks) }
        }
        // Every beat entry whose Dify flag defaults to false is disabled; nothing runs at start.
        let offByDefault: Set<TaskName> = [
            .queueMonitor, .cleanMessages, .cleanEmbeddingCache, .cleanUnusedDatasets, .mailCleanDocumentNotify,
            .cleanWorkflowRunLogsPrecise, .createTiDBServerless, .updateTiDBServerlessStatus, .cleanWorkflowRuns,
        ]
        XCTAssertEqual(Set(try XCTUnwrap(names)), offByDefault)
        let modes = withTasks.loop.sync { d.topology?.modes }
        XCTAssertEqual(modes?.count, 15, "every Dify beat entry is in the default topology")
        XCTAssertEqual(
            Set(try XCTUnwrap(modes).filter { $0.value == .native }.keys), Set(HeraldTaskCatalog.implemented))

        let missing = try DaemonHarness(env: ["HERALD_TOPOLOGY": "/nonexistent/topology.json"])
        defer { missing.stop() }
        let m = missing.daemon
        XCTAssertTrue(missing.loop.sync { m.tasks == nil })
        // It runs without tasks, and says so: not ready, with the reason.
        try waitUntil("sources up, not ready, the topology named") {
            missing.allUp && !missing.status.healthy
                && missing.status.problems.contains {
                    $0.hasPrefix("topology file not found: /nonexistent/topology.json")
                }
        }
    }
}
