// The two TiDB pool tasks against real PostgreSQL (Dify's tidb_auth_bindings on both schemas),
// real Redis, and a local stand-in of the TiDB Cloud API with real HTTP Digest authentication
// (Tests/Support/fake_tidb_api.py), run by the task executor as the daemon runs them (the retry
// middleware included). A failing API is given up on after a bounded number of calls and opens the
// tidb_api breaker, during which runs defer; once it answers, the pool fills in batches of 20 with
// the passwords stashed in Redis, and the status task activates the clusters. The private key
// never reaches the log.

import Foundation
import HeraldCore
import HeraldIO
import HeraldRuntime
import HeraldTasks
import Logging
import Synchronization
import XCTest

/// The stand-in TiDB Cloud API, as a child process.
struct FakeTiDBAPI {
    let pid: pid_t
    let dir: String
    let port: String
    var url: String { "http://127.0.0.1:\(port)" }

    static func start(user: String, password: String, fail: Int = 0) throws -> FakeTiDBAPI {
        let env = ProcessInfo.processInfo.environment
        var python = "/usr/bin/python3"
        if let py = env["HERALD_TEST_PYTHON"], FileManager.default.isExecutableFile(atPath: py) { python = py }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/fake_tidb_api.py").path
        let dir = NSTemporaryDirectory() + "herald-tidb-\(UUID())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let argv = [
            python, script, "--port-file", dir + "/port", "--user", user, "--password", password, "--fail",
            String(fail),
        ]
        var pid: pid_t = 0
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        XCTAssertEqual(posix_spawn(&pid, python, nil, nil, cArgs, environ), 0)
        var port = ""
        try waitUntil("the stand-in TiDB API listens") {
            port = (try? String(contentsOfFile: dir + "/port", encoding: .utf8)) ?? ""
            return !port.isEmpty
        }
        return FakeTiDBAPI(pid: pid, dir: dir, port: port)
    }

    /// `/_stats`: calls per endpoint, 401s, the batchCreate bodies and batchGet id lists.
    func stats() throws -> [String: Any] {
        let r = try HTTPClient.get(url + "/_stats")
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])
    }

    func calls(_ call: String) throws -> Int { ((try stats()["calls"] as? [String: Int]) ?? [:])[call] ?? -1 }

    func control(_ json: String) throws {
        XCTAssertEqual(try HTTPClient.post(url + "/_control", body: Array(json.utf8)).status, 200)
    }

    func stop() {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// An executor over the two TiDB tasks, `run: auto`, with the daemon's middleware (retries
/// without their waits), metrics and breaker log, logging at debug level into a file.
final class TiDBHarness: @unchecked Sendable {
    let loop: EventLoop
    let executor: TaskExecutor
    let metrics = HeraldMetrics()
    let logPath: String
    private let logFD: Int32

    init(_ fx: DatasetFixture, env: [String: String], run: String = "auto") throws {
        let (r, d) = try TestServers.require()
        var info = try PostgresConnInfo(d)
        info["dbname"] = fx.database
        let pool = PostgresPool(connInfo: info, size: 3)
        let redis = try RedisEndpoint.parse(r)
        let topology = try Topology.load(
            json: Array(
                """
                {"version": 1, "queues": [{"name": "dataset", "concurrency": 1}], "sources": [], "routes": [], "tasks": [
                 {"name": "create_tidb_serverless_task", "queue": "dataset", "run": "\(run)",
                  "celery": {"task": "schedule.create_tidb_serverless_task.create_tidb_serverless_task", "queue": "dataset"}},
                 {"name": "update_tidb_serverless_status_task", "queue": "dataset", "run": "\(run)",
                  "celery": {"task": "schedule.update_tidb_serverless_status_task.update_tidb_serverless_status_task",
                             "queue": "dataset"}}]}
                """.utf8))
        let resolved = try HeraldTaskCatalog.resolve(topology, path: "test")
        var resources = DatasetTaskResources(
            pool: pool, redis: redis, broker: redis, redisKeyPrefix: fx.keyPrefix, origin: "herald@test")
        resources.tidbMetrics = TiDBMetrics(factory: metrics.factory)
        resources.tidbSleep = { _ in }
        let registry = try HeraldTaskCatalog.make(resolved, resources: resources)
        logPath = NSTemporaryDirectory() + "herald-tidb-log-\(UUID())"
        logFD = open(logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let fd = logFD
        var logger = Logger(label: "herald") { label in
            HeraldLogHandler(label: label, format: .logfmt, level: .debug, fd: fd)
        }
        logger.logLevel = .debug
        Circuits.shared.export(to: metrics, logger: logger)
        loop = try EventLoop()
        executor = try TaskExecutor(
            loop: loop, pool: pool, topology: resolved.topology, registry: registry, settings: TaskSettings(env),
            locks: TaskLockClient(endpoint: redis, keyPrefix: fx.keyPrefix), instanceID: "tidb-test",
            modes: resolved.modes, observers: [TaskLogObserver(logger: logger)],
            middleware: TaskMiddlewareChain([
                TaskLoggingMiddleware(logger: logger), TaskRetryMiddleware(sleep: { _ in }),
            ]),
            logger: logger)
        let progressLogger = logger
        executor.progressSink = { p in
            progressLogger.info("progress", metadata: ["task": "\(p.task)", "message": "\(p.message)"])
        }
        loop.start(name: "test-tidb")
        loop.execute { [executor] in executor.start(armingSchedules: false) }
    }

    func request(_ task: TaskName, dryRun: Bool = false) throws -> TaskRequestResult {
        let result = Mutex<TaskRequestResult?>(nil)
        loop.execute { [executor] in executor.request(task, dryRun: dryRun) { r in result.withLock { $0 = r } } }
        try waitUntil("request \(task)", timeout: 60) { result.withLock { $0 } != nil }
        return try XCTUnwrap(result.withLock { $0 })
    }

    func metric(_ name: String, _ labels: [String: String] = [:]) -> Double {
        PrometheusText.value(String(decoding: metrics.render(), as: UTF8.self), name, labels)
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func stop() {
        loop.execute { [executor] in executor.stop() }
        loop.stop()
        loop.waitUntilStopped()
        close(logFD)
        try? FileManager.default.removeItem(atPath: logPath)
    }
}

final class TiDBPoolTests: XCTestCase {
    let publicKey = "pub-" + UUID().uuidString.lowercased().prefix(8)
    let privateKey = "PRIVATE-" + UUID().uuidString.replacingOccurrences(of: "-", with: "")

    private func setUp(fail: Int = 0, number: Int = 45) throws -> (DatasetFixture, FakeTiDBAPI, TiDBHarness) {
        let fx = try DatasetFixture()
        addTeardownBlock { fx.drop() }
        try fx.migrate()
        let api = try FakeTiDBAPI.start(user: publicKey, password: privateKey, fail: fail)
        addTeardownBlock { api.stop() }
        let env = [
            "CREATE_TIDB_SERVICE_JOB_ENABLED": "true", "TIDB_SERVERLESS_NUMBER": String(number),
            "TIDB_API_URL": api.url, "TIDB_PUBLIC_KEY": publicKey, "TIDB_PRIVATE_KEY": privateKey,
            "TIDB_PROJECT_ID": "proj-42",
        ]
        let h = try TiDBHarness(fx, env: env)
        addTeardownBlock {
            h.stop()
            Circuits.shared.reset()
        }
        return (fx, api, h)
    }

    private func breaker() -> CircuitState? {
        Circuits.shared.states.first { $0.dependency == Circuits.tidbAPI }?.state
    }

    private func lastReport(_ fx: DatasetFixture, _ task: TaskName) throws -> String {
        try fx.conn.query(
            "SELECT coalesce(report::text, error) FROM herald.task_runs WHERE task = $1 ORDER BY started_at DESC LIMIT 1",
            [task.rawValue]
        ).rows.first?[0] ?? ""
    }

    func testFailingAPIOpensTheBreakerThenThePoolFillsAndActivates() throws {
        let (fx, api, h) = try setUp()
        try api.control(#"{"fail_forever": true}"#)

        // (a) A persistent failure: three tries in the run, two more in the executor's retry, then
        // the breaker (5 failures in a row) refuses; the run fails with the API's error. No rows.
        guard case .finished(.failed(let reason)) = try h.request(.createTiDBServerless) else {
            return XCTFail("a run against a failing API must fail")
        }
        XCTAssertTrue(reason.contains("batch_create answered HTTP 500"), reason)
        XCTAssertEqual(try api.calls("batch_create"), 5)
        XCTAssertEqual(breaker(), .open)
        XCTAssertEqual(h.metric("herald_tidb_api_errors_total", ["call": "batch_create"]), 5)
        XCTAssertEqual(h.metric("herald_circuit_state", ["dependency": "tidb_api"]), 2)
        XCTAssertEqual(try TiDBPool.idleCount(fx.conn), 0)
        // While it is open a run defers at once (skipped, not retried): no call.
        guard case .finished(.skipped(let why)) = try h.request(.createTiDBServerless) else {
            return XCTFail("a run while the breaker is open must defer")
        }
        XCTAssertTrue(why.hasPrefix("deferred: tidb_api circuit open"), why)
        XCTAssertEqual(try api.calls("batch_create"), 5)
        XCTAssertTrue(try lastReport(fx, .createTiDBServerless).hasPrefix("deferred"))
        XCTAssertTrue(h.log.contains("circuit opened"), "the breaker's opening is logged")

        // (b) The API recovers (and the breaker's open period is over): 45 wanted → 3 batches of 20.
        try api.control(#"{"recover": true}"#)
        Circuits.shared.reset()
        XCTAssertEqual(try h.request(.createTiDBServerless), .finished(.succeeded))
        let stats = try api.stats()
        XCTAssertEqual((stats["calls"] as? [String: Int])?["batch_create"], 8)
        XCTAssertEqual((stats["calls"] as? [String: Int])?["get_cluster"], 60)
        let creates = try XCTUnwrap(stats["creates"] as? [[[String: [String: Any]]]])
        XCTAssertEqual(creates.count, 3)
        var passwords: [String: String] = [:]
        for batch in creates {
            XCTAssertEqual(batch.count, 20)
            for request in batch {
                let c = try XCTUnwrap(request["cluster"])
                let name = try XCTUnwrap(c["displayName"] as? String)
                let pw = try XCTUnwrap(c["rootPassword"] as? String)
                XCTAssertEqual(name.count, 32)
                XCTAssertEqual(pw.count, 16)
                XCTAssertTrue((name + pw).allSatisfy { $0.isHexDigit && !$0.isUppercase })
                XCTAssertEqual((c["region"] as? [String: String])?["name"], "regions/aws-us-east-1")
                XCTAssertEqual((c["labels"] as? [String: String])?["tidb.cloud/project"], "proj-42")
                XCTAssertEqual((c["spendingLimit"] as? [String: Int])?["monthly"], 100)
                passwords[name] = pw
            }
        }
        let rows = try fx.conn.query(
            """
            SELECT cluster_id, cluster_name, account, password, coalesce(qdrant_endpoint, ''), active, status,
                   tenant_id IS NULL
              FROM tidb_auth_bindings ORDER BY cluster_id
            """
        ).rows
        XCTAssertEqual(rows.count, 60)
        XCTAssertEqual(Set(rows.map { $0[1]! }), Set(passwords.keys))
        for r in rows {
            XCTAssertEqual(r[2], "root")
            XCTAssertEqual(r[3], passwords[r[1]!])
            XCTAssertEqual(r[5], "f")
            XCTAssertEqual(r[6], "CREATING")
            XCTAssertEqual(r[7], "t")
            // The stand-in knows the host of every other cluster at once, the rest once ACTIVE.
            XCTAssertTrue(r[4] == "" || r[4] == "https://qdrant-gw-\(r[0]!).tidb.test", r[4]!)
            let key = fx.keyPrefix + ":tidb_serverless_cluster_password:" + r[1]!
            XCTAssertEqual(try fx.redis.command(["GET", key]), .string(Array(passwords[r[1]!]!.utf8)))
            guard case .integer(let ttl) = try fx.redis.command(["TTL", key]) else { return XCTFail("no TTL") }
            XCTAssertTrue((1...3600).contains(ttl), "TTL \(ttl)")
        }
        XCTAssertEqual(rows.filter { $0[4] == "" }.count, 30)
        XCTAssertEqual(h.metric("herald_tidb_clusters_created_total"), 60)
        // The pool is full: another run asks for nothing.
        XCTAssertEqual(try h.request(.createTiDBServerless), .finished(.succeeded))
        XCTAssertEqual(try api.calls("batch_create"), 8)

        // (c) The status task: 3 batchGets of 20 (view BASIC), every cluster ACTIVE with its
        // account and endpoint (the missing ones fetched from /clusters/{id}).
        XCTAssertEqual(try h.request(.updateTiDBServerlessStatus), .finished(.succeeded))
        let gets = try XCTUnwrap(try api.stats()["batch_gets"] as? [[String: Any]])
        XCTAssertEqual(gets.map { ($0["ids"] as? [String])?.count ?? 0 }, [20, 20, 20])
        XCTAssertEqual(Set(gets.map { $0["view"] as? String }), ["BASIC"])
        XCTAssertEqual(try api.calls("get_cluster"), 90)
        for r in try fx.conn.query(
            "SELECT cluster_id, account, qdrant_endpoint, status, active FROM tidb_auth_bindings"
        ).rows {
            XCTAssertEqual(r[1], "pfx\(r[0]!.suffix(6)).root")
            XCTAssertEqual(r[2], "https://qdrant-gw-\(r[0]!).tidb.test")
            XCTAssertEqual(r[3], "ACTIVE")
            XCTAssertEqual(r[4], "f", "activation does not hand a cluster to a tenant")
        }
        XCTAssertEqual(h.metric("herald_tidb_clusters_activated_total"), 60)

        // (d) The private key is in no log line; the public key (the Digest user) may be.
        let log = h.log
        XCTAssertTrue(log.contains("create_tidb_serverless_task"), "the log was captured")
        XCTAssertFalse(log.contains(privateKey), "the private key reached the log")
        XCTAssertGreaterThan((try api.stats()["unauthorized"] as? Int) ?? 0, 0, "Digest challenges were answered")
    }

    func testDryRunsCountAndCallNothing() throws {
        let (fx, api, h) = try setUp(number: 45)
        XCTAssertEqual(try h.request(.createTiDBServerless, dryRun: true), .finished(.succeeded))
        XCTAssertEqual(try lastReport(fx, .createTiDBServerless).contains("60 clusters would be asked for"), true)
        XCTAssertEqual(try h.request(.updateTiDBServerlessStatus, dryRun: true), .finished(.succeeded))
        XCTAssertEqual(try api.calls("batch_create") + api.calls("batch_get") + api.calls("get_cluster"), 0)
        XCTAssertEqual(try TiDBPool.idleCount(fx.conn), 0)
    }

    func testABatchWithoutClustersEndsTheRun() throws {
        let (fx, api, h) = try setUp()
        try api.control(#"{"empty_create": true}"#)
        XCTAssertEqual(try h.request(.createTiDBServerless), .finished(.succeeded))
        XCTAssertEqual(try api.calls("batch_create"), 1, "no loop on an empty batch")
        XCTAssertTrue(try lastReport(fx, .createTiDBServerless).contains("no usable cluster"))
        XCTAssertEqual(try TiDBPool.idleCount(fx.conn), 0)
        XCTAssertEqual(breaker(), .closed)
    }

    func testJobSwitchOffAndWrongKeys() throws {
        let fx = try DatasetFixture()
        addTeardownBlock { fx.drop() }
        try fx.migrate()
        let api = try FakeTiDBAPI.start(user: publicKey, password: privateKey)
        addTeardownBlock { api.stop() }
        let base = ["TIDB_API_URL": api.url, "TIDB_PUBLIC_KEY": publicKey, "TIDB_PRIVATE_KEY": "wrong-" + privateKey]
        let off = try TiDBHarness(fx, env: base)
        XCTAssertEqual(try off.request(.createTiDBServerless), .finished(.succeeded))
        off.stop()
        XCTAssertEqual(try api.calls("batch_create"), 0, "CREATE_TIDB_SERVICE_JOB_ENABLED is false by default")

        var on = base
        on["CREATE_TIDB_SERVICE_JOB_ENABLED"] = "true"
        let h = try TiDBHarness(fx, env: on)
        defer {
            h.stop()
            Circuits.shared.reset()
        }
        // Wrong keys: every request is refused with 401 before it counts as a call of the API; the
        // run fails with that status (its third attempt finds the breaker open and defers).
        guard case .finished(.failed(let reason)) = try h.request(.createTiDBServerless) else {
            return XCTFail("a run with refused keys must fail")
        }
        XCTAssertTrue(reason.contains("HTTP 401"), reason)
        XCTAssertEqual(try api.calls("batch_create"), 0)
        XCTAssertFalse(h.log.contains(privateKey))
    }

    func testRunCeleryStillEnqueuesDifysTask() throws {
        let fx = try DatasetFixture()
        addTeardownBlock { fx.drop() }
        try fx.migrate()
        let h = try TiDBHarness(fx, env: ["CREATE_TIDB_SERVICE_JOB_ENABLED": "true"], run: "celery")
        defer { h.stop() }
        XCTAssertEqual(try h.request(.updateTiDBServerlessStatus), .finished(.succeeded))
        let queue = fx.keyPrefix + ":dataset"
        guard case .integer(let n) = try fx.redis.command(["LLEN", queue]) else { return XCTFail("no list") }
        XCTAssertEqual(n, 1, "Dify's Celery task was pushed onto \(queue)")
    }
}
