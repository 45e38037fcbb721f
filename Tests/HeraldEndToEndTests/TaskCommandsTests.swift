// The task commands as an operator uses them: `herald tasks` lists the topology,
// `herald run-task` runs a task (and its dependencies) in-process, `--dry-run`
// changes nothing, and `herald topology check` names the first error.

import Foundation
import HeraldCore
import HeraldIO
import XCTest

final class TaskCommandsTests: XCTestCase {
    func testTasksRunTaskAndTopologyCheck() throws {
        let (redisURL, _) = try Binary.servers()
        let database = try PrivateDatabase(prefix: "herald_cli")
        defer { database.drop() }
        let info = database.info
        let topology = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("topology/default.json").path
        let env = [
            "HERALD_REDIS_URL": redisURL, "HERALD_DATABASE_URL": database.url,
            "HERALD_TOPOLOGY": topology, "HERALD_METRICS_ADDR": "off",
        ]
        XCTAssertEqual(try Binary.run(["migrate", "--create-dify-tables"], env: env).status, 0)

        let tasks = try Binary.run(["tasks"], env: env)
        XCTAssertEqual(tasks.status, 0, tasks.stderr)
        for name in ["clean_embedding_cache_task", "clean_unused_datasets_task", "mail_clean_document_notify_task"] {
            XCTAssertTrue(tasks.stdout.contains(name), tasks.stdout)
        }
        XCTAssertTrue(
            tasks.stdout.contains("ENABLE_CLEAN_EMBEDDING_CACHE_TASK"), "disabled by Dify's default: \(tasks.stdout)")

        // Three expired cache rows and one fresh one.
        let conn = try PostgresConnection(connInfo: info)
        try conn.query(
            """
            INSERT INTO embeddings (id, model_name, hash, embedding, provider_name, created_at)
            SELECT gen_random_uuid(), 'm', md5(g::text), decode('00', 'hex'), 'p', now() - interval '400 days' FROM generate_series(1, 3) g
            """)
        try conn.query(
            """
            INSERT INTO embeddings (id, model_name, hash, embedding, provider_name, created_at)
            VALUES (gen_random_uuid(), 'm', 'fresh', decode('00', 'hex'), 'p', now())
            """)
        let dry = try Binary.run(["run-task", "clean_embedding_cache_task", "--dry-run"], env: env)
        XCTAssertEqual(dry.status, 0, dry.stderr + dry.stdout)
        XCTAssertEqual(try conn.query("SELECT count(*) FROM embeddings").rows[0][0], "4", "a dry run changes nothing")
        let real = try Binary.run(["run-task", "clean_embedding_cache_task"], env: env)
        XCTAssertEqual(real.status, 0, real.stderr + real.stdout)
        XCTAssertTrue(real.stdout.contains("succeeded"), real.stdout)
        XCTAssertEqual(
            try conn.query("SELECT count(*) FROM embeddings").rows.first?.first ?? nil, "1", "only the fresh row stays")
        XCTAssertEqual(try Binary.run(["run-task", "no_such_task"], env: env).status, 2)

        // A `celery` entry: run-task enqueues Dify's own task now, on Dify's queue.
        let prefix = "cli" + UUID().uuidString.lowercased().prefix(8)
        let redis = try RedisClient(endpoint: RedisEndpoint.parse(redisURL))
        defer { _ = try? redis.command(["DEL", prefix + ":retention"]) }
        var celeryEnv = env
        celeryEnv["REDIS_KEY_PREFIX"] = prefix
        let enqueue = try Binary.run(["run-task", "clean_oauth_access_tokens_task"], env: celeryEnv)
        XCTAssertEqual(enqueue.status, 0, enqueue.stderr + enqueue.stdout)
        guard case .array(let items) = try redis.command(["LRANGE", prefix + ":retention", "0", "-1"]),
            items.count == 1,
            case .string(let bytes) = items[0],
            let envelope = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
            let headers = envelope["headers"] as? [String: Any]
        else { return XCTFail("one message expected on \(prefix):retention") }
        XCTAssertEqual(
            headers["task"] as? String, "schedule.clean_oauth_access_tokens_task.clean_oauth_access_tokens_task")
        // Herald's own run of workflow schedules is continuous: there is nothing to run once.
        let service = try Binary.run(["run-task", "workflow_schedule_task"], env: env)
        XCTAssertEqual(service.status, 2)
        XCTAssertTrue(service.stderr.contains("runs continuously inside `herald run`"), service.stderr)
        XCTAssertTrue(tasks.stdout.contains("human_input_form_timeout"), tasks.stdout)
        XCTAssertTrue(tasks.stdout.contains("native (service)"), tasks.stdout)

        let broken = NSTemporaryDirectory() + "herald-broken-\(UUID()).json"
        try Data("{\"tasks\": [{\"name\": \"clean_embedding_cache_task\", \"queue\": \"nowhere\"}]}".utf8).write(
            to: URL(fileURLWithPath: broken))
        defer { try? FileManager.default.removeItem(atPath: broken) }
        let check = try Binary.run(["topology", "check", broken])
        XCTAssertEqual(check.status, 2)
        XCTAssertFalse(check.stderr.isEmpty)
        let ok = try Binary.run(["topology", "check", topology])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.hasPrefix("ok: 15 tasks"), ok.stdout)
        XCTAssertTrue(ok.stdout.contains("schedule-events"), "the routing table: \(ok.stdout)")
    }

    /// A migrated private database with one tenant, settings for `herald` on it (a private key prefix,
    /// a sweep every second), and the daemon once `startDaemon` is called; `stop` undoes it all.
    private final class PlanCommandSetup {
        let db: PrivateDatabase
        let env: [String: String]
        let conn: PostgresConnection
        let tenant = UUID().uuidString.lowercased()
        private let redisURL: String
        private let prefix: String
        private var pid: pid_t?

        init(name: String) throws {
            let (redisURL, _) = try Binary.servers()
            self.redisURL = redisURL
            db = try PrivateDatabase(prefix: "herald_\(name)")
            prefix = String(name.prefix(3)) + UUID().uuidString.lowercased().prefix(8)
            env = [
                "HERALD_REDIS_URL": redisURL, "HERALD_DATABASE_URL": db.url, "REDIS_KEY_PREFIX": prefix,
                "HERALD_SWEEP_INTERVAL": "1", "HERALD_METRICS_ADDR": "127.0.0.1:\(Binary.freePort())",
            ]
            XCTAssertEqual(try Binary.run(["migrate", "--create-dify-tables"], env: env).status, 0)
            conn = try PostgresConnection(connInfo: db.info)
            try conn.query("INSERT INTO tenants (id, name) VALUES ($1, 't')", [tenant])
        }

        func startDaemon() throws {
            pid = try Binary.spawn(["run"], env: env, log: NSTemporaryDirectory() + "herald-\(prefix)-\(UUID()).log")
        }

        func stop() {
            if let pid {
                kill(pid, SIGKILL)
                _ = Binary.wait(pid)
            }
            if let redis = try? RedisClient(endpoint: RedisEndpoint.parse(redisURL)) {
                Binary.deleteKeys(redis, prefix: prefix + ":")
            }
            db.drop()
        }
    }

    /// A plan with its app and enabled trigger, due `dueIn` seconds from now, once a year after that.
    private func addPlan(_ conn: PostgresConnection, tenant: String, zone: String, dueIn: Int) throws -> String {
        let app = UUID().uuidString.lowercased()
        let plan = UUID().uuidString.lowercased()
        try conn.query(
            "INSERT INTO apps (id, tenant_id, name, mode, enable_site, enable_api) VALUES ($1, $2, 'a', 'workflow', true, true)",
            [app, tenant])
        try conn.query(
            """
            INSERT INTO app_triggers (tenant_id, app_id, node_id, trigger_type, title, status, updated_at)
            VALUES ($1, $2, 'n', 'trigger-schedule', 's', 'enabled', now() AT TIME ZONE 'UTC')
            """, [tenant, app])
        try conn.query(
            """
            INSERT INTO workflow_schedule_plans (id, app_id, node_id, tenant_id, cron_expression, timezone, next_run_at)
            VALUES ($1, $2, 'n', $3, '0 0 1 1 *', $4,
                    date_trunc('second', now() AT TIME ZONE 'UTC') + make_interval(secs => $5::int))
            """, [plan, app, tenant, zone, String(dueIn)])
        return plan
    }

    /// `herald plan pause ID` stops a plan firing whatever its time, `resume` lets it fire again
    /// (an overdue plan once, at once); both reach a running daemon at once through NOTIFY.
    func testPlanPauseAndResume() throws {
        let setup = try PlanCommandSetup(name: "pause")
        defer { setup.stop() }
        let (env, conn) = (setup.env, setup.conn)
        let plan = try addPlan(conn, tenant: setup.tenant, zone: "UTC", dueIn: 4)
        try setup.startDaemon()
        try eventually("the daemon is up", timeout: 20) { try Binary.run(["status"], env: env).status == 0 }
        let paused = try Binary.run(["plan", "pause", plan, "--note", "maintenance"], env: env)
        XCTAssertEqual(paused.status, 0, paused.stderr)
        XCTAssertTrue(paused.stdout.contains("paused \(plan)"), paused.stdout)
        XCTAssertEqual(try Binary.run(["plan", "pause", plan], env: env).status, 1, "already paused")
        XCTAssertEqual(try Binary.run(["plan", "pause", UUID().uuidString], env: env).status, 1, "no such plan")
        let show = try Binary.run(["plan", "show", plan], env: env)
        XCTAssertTrue(show.stdout.contains("maintenance"), show.stdout)
        // Its time comes and goes, with sweeps every second: nothing fires.
        Thread.sleep(forTimeInterval: 7)
        let none = try conn.query("SELECT count(*) FROM herald.schedule_fire_log WHERE plan_id = $1::uuid", [plan])
        XCTAssertEqual(none.rows[0][0], "0", "a paused plan fired")

        let resumed = try Binary.run(["plan", "resume", plan], env: env)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(try Binary.run(["plan", "resume", plan], env: env).status, 1, "not paused")
        try eventually("the overdue plan fires once resumed", timeout: 15) {
            try conn.query("SELECT count(*) FROM herald.schedule_fire_log WHERE plan_id = $1::uuid", [plan])
                .rows[0][0] == "1"
        }
    }

    /// What an operator looks at without SQL: `herald runs`, `herald fires`, `herald plan show`,
    /// `herald quarantine list|release`.
    func testRunsFiresPlanAndQuarantineCommands() throws {
        let setup = try PlanCommandSetup(name: "inspect")
        defer { setup.stop() }
        let env = setup.env
        let good = try addPlan(setup.conn, tenant: setup.tenant, zone: "UTC", dueIn: 2)
        let bad = try addPlan(setup.conn, tenant: setup.tenant, zone: "Mars/Olympus_Mons", dueIn: 2)
        try setup.startDaemon()
        try eventually("the good plan fired and the bad one is quarantined", timeout: 20) {
            let fires = try Binary.run(["fires", good], env: env)
            let quarantine = try Binary.run(["quarantine", "list"], env: env)
            return fires.stdout.contains(good) && !fires.stdout.contains("(none)")
                && quarantine.stdout.contains(bad) && quarantine.stdout.contains("Mars/Olympus_Mons")
        }
        let show = try Binary.run(["plan", "show", good], env: env)
        XCTAssertEqual(show.status, 0, show.stderr)
        XCTAssertTrue(show.stdout.contains("enabled") && show.stdout.contains("latest fires"), show.stdout)

        let released = try Binary.run(["quarantine", "release", bad], env: env)
        XCTAssertEqual(released.status, 0, released.stderr)
        XCTAssertTrue(released.stdout.contains("released \(bad)"), released.stdout)
        let unknown = UUID().uuidString.lowercased()
        XCTAssertEqual(
            try Binary.run(["quarantine", "release", unknown], env: env).status, 1, "a plan not in quarantine")
        // Still unusable, so a daemon re-reads it at once (the release announces it) and quarantines it again.
        try eventually("re-quarantined", timeout: 15) {
            try Binary.run(["quarantine", "list"], env: env).stdout.contains(bad)
        }

        let task = try Binary.run(["run-task", "clean_embedding_cache_task"], env: env)
        XCTAssertEqual(task.status, 0, task.stderr)
        let runs = try Binary.run(["runs", "clean_embedding_cache_task"], env: env)
        XCTAssertEqual(runs.status, 0, runs.stderr)
        XCTAssertTrue(
            runs.stdout.contains("clean_embedding_cache_task") && runs.stdout.contains("succeeded"), runs.stdout)
        XCTAssertEqual(try Binary.run(["fires", "not-a-uuid"], env: env).status, 2)
    }

    /// An interval too long for the scheduler's arithmetic is refused by `topology check`, by `herald
    /// run` (which then runs without tasks instead of dying) and, from a setting, by `herald tasks`:
    /// exit 2 with the value named, never a trap (SIGILL, exit 132).
    func testIntervalsBeyondAYearAreRefusedNotTrappedOn() throws {
        let (redisURL, dbURL) = try Binary.servers()
        let topology = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("topology/default.json").path
        let text = try String(contentsOfFile: topology, encoding: .utf8)
        let hostile = text.replacingOccurrences(
            of: #""schedule": {"every_minutes": 30, "setting": "QUEUE_MONITOR_INTERVAL"}"#,
            with: #""schedule": {"every_minutes": 1e9, "setting": "QUEUE_MONITOR_INTERVAL"}"#)
        XCTAssertNotEqual(hostile, text, "the queue monitor's schedule is in topology/default.json")
        let file = NSTemporaryDirectory() + "herald-hostile-\(UUID()).json"
        try hostile.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }

        let check = try Binary.run(["topology", "check", file])
        XCTAssertEqual(check.status, 2, check.stdout + check.stderr)
        XCTAssertTrue(check.stderr.contains("at most a year"), check.stderr)

        let env = ["HERALD_TOPOLOGY": topology, "HERALD_REDIS_URL": redisURL, "HERALD_DATABASE_URL": dbURL]
        for value in ["153722868", "1e9", "1e308"] {
            var e = env
            e["QUEUE_MONITOR_INTERVAL"] = value
            let tasks = try Binary.run(["tasks"], env: e)
            XCTAssertEqual(tasks.status, 2, "QUEUE_MONITOR_INTERVAL=\(value): \(tasks.stderr)")
            XCTAssertTrue(tasks.stderr.contains("QUEUE_MONITOR_INTERVAL"), tasks.stderr)
        }
    }
}
