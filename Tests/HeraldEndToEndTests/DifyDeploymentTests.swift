// Herald configured as a Dify docker deployment configures itself: Redis with `requirepass`,
// the broker on db 1 (`CELERY_BROKER_URL=redis://:<pw>@…/1`), PostgreSQL reached through
// `DB_*` as a role that must give its password, nothing of Herald's own connection settings.
// `herald migrate --demo` passes, a plan written with Dify's columns fires to a real Celery
// worker, `clean_messages` runs; then the same kind of fire goes through a real
// `redis-server --sentinel` (Dify's `REDIS_USE_SENTINEL` and Celery's `sentinel://` broker),
// and after `SENTINEL FAILOVER` Herald finds the new master. No password appears in any output.
// In the test pass on Dify's real schema the database is a copy of it.

import Foundation
import HeraldCore
import HeraldIO
import XCTest

/// A redis-server of the test's own, in the foreground as a child (a master, a replica, a sentinel).
private final class RedisServerProcess {
    let port: Int
    private let pid: pid_t
    let log: String

    init(_ args: [String], port: Int, dir: String, name: String) throws {
        self.port = port
        log = dir + "/\(name).log"
        let argv = (["/usr/bin/redis-server"] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var p: pid_t = 0
        guard posix_spawn(&p, "/usr/bin/redis-server", &actions, nil, argv, environ) == 0 else {
            throw XCTSkip("redis-server could not be started")
        }
        pid = p
    }

    func stop() {
        kill(pid, SIGKILL)
        _ = Binary.wait(pid, timeout: 5)
    }
}

final class DifyDeploymentTests: XCTestCase {
    private let redisPassword = "redis-pw-" + UUID().uuidString.prefix(8)
    private let sentinelPassword = "sentinel-pw-" + UUID().uuidString.prefix(8)
    private let dbPassword = "db-pw-" + UUID().uuidString.prefix(8)

    /// A client that waits for a just-started server to answer.
    private func client(port: Int, password: String, db: Int = 0) throws -> RedisClient {
        var last: Error?
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            do {
                return try RedisClient(
                    endpoint: RedisEndpoint(
                        address: .tcp(host: "127.0.0.1", port: port), password: password, database: db))
            } catch {
                last = error
                usleep(50_000)
            }
        }
        throw last ?? IOError.notConnected("redis on \(port)")
    }

    /// Inserts a tenant's app, schedule trigger and plan as Dify's ORM writes them; due in `dueIn` s.
    private func addPlan(_ c: PostgresConnection, dueIn: Int) throws -> String {
        let tenant = UUID().uuidString.lowercased()
        let app = UUID().uuidString.lowercased()
        let plan = UUID().uuidString.lowercased()
        try c.transaction { c in
            try c.query("INSERT INTO tenants (id, name) VALUES ($1, 'tenant')", [tenant])
            try c.query(
                """
                INSERT INTO apps (id, tenant_id, name, mode, enable_site, enable_api, status, description)
                VALUES ($1, $2, 'scheduled app', 'workflow', true, true, 'normal', '')
                """, [app, tenant])
            try c.query(
                """
                INSERT INTO app_triggers (tenant_id, app_id, node_id, trigger_type, title, provider_name, status,
                                          created_at, updated_at)
                VALUES ($1, $2, 'schedule-node', 'trigger-schedule', 'Schedule', '', 'enabled',
                        now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC')
                """, [tenant, app])
            try c.query(
                """
                INSERT INTO workflow_schedule_plans (id, app_id, node_id, tenant_id, cron_expression, timezone, next_run_at,
                                                     created_at, updated_at)
                VALUES ($1, $2, 'schedule-node', $3, '0 0 1 1 *', 'UTC',
                        date_trunc('second', now() AT TIME ZONE 'UTC') + make_interval(secs => $4::int),
                        now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC')
                """, [plan, app, tenant, String(dueIn)])
        }
        return plan
    }

    func testDifyDockerSettingsWithPasswordsThenSentinelAndFailover() throws {
        let (_, dbURL) = try Binary.servers()
        guard let python = Binary.env["HERALD_TEST_PYTHON"] else { throw XCTSkip("HERALD_TEST_PYTHON not set") }
        let dir = NSTemporaryDirectory() + "herald-dify-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var servers: [RedisServerProcess] = []
        var outputs: [String] = []
        defer {
            for s in servers { s.stop() }
            try? FileManager.default.removeItem(atPath: dir)
        }

        // Dify's docker Redis: a password, the app on db 0 and the broker on db 1.
        let masterPort = Binary.freePort()
        servers.append(
            try RedisServerProcess(
                [
                    "--port", "\(masterPort)", "--bind", "127.0.0.1", "--requirepass", redisPassword,
                    "--masterauth", redisPassword, "--save", "", "--appendonly", "no", "--dir", dir,
                ], port: masterPort, dir: dir, name: "master"))
        _ = try client(port: masterPort, password: redisPassword)

        // PostgreSQL through DB_*, as a role that must authenticate with its password.
        let db = try PrivateDatabase(prefix: "herald_dify")
        let role = "herald_dify_" + UUID().uuidString.lowercased().prefix(8)
        var adminInfo = try PostgresConnInfo(dbURL)
        adminInfo["dbname"] = "postgres"
        let admin = try PostgresConnection(connInfo: adminInfo)
        defer {
            db.drop()
            _ = try? admin.query("DROP ROLE IF EXISTS \(role)")
        }
        try admin.query("CREATE ROLE \(role) LOGIN PASSWORD '\(dbPassword)' IN ROLE herald_password_login")
        try admin.query("ALTER DATABASE \(db.name) OWNER TO \(role)")
        try PostgresConnection(connInfo: db.info).execute(
            script: """
                ALTER SCHEMA public OWNER TO \(role);
                DO $$
                DECLARE r record;
                BEGIN
                    FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
                        EXECUTE format('ALTER TABLE public.%I OWNER TO %I', r.tablename, '\(role)');
                    END LOOP;
                END
                $$;
                """)
        var roleInfo = db.info
        roleInfo["user"] = role
        roleInfo["password"] = "not-the-password"
        XCTAssertThrowsError(try PostgresConnection(connInfo: roleInfo), "the role's password must be checked")
        roleInfo["password"] = dbPassword
        let pgPort = try XCTUnwrap(db.info["port"])

        let metricsPort = Binary.freePort()
        var env = [
            "HERALD_REDIS_URL": "", "HERALD_DATABASE_URL": "",
            "DB_HOST": "127.0.0.1", "DB_PORT": pgPort, "DB_USERNAME": role, "DB_PASSWORD": dbPassword,
            "DB_DATABASE": db.name,
            "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "\(masterPort)", "REDIS_PASSWORD": redisPassword, "REDIS_DB": "0",
            "CELERY_BROKER_URL": "redis://:\(redisPassword)@127.0.0.1:\(masterPort)/1",
            "HERALD_METRICS_ADDR": "127.0.0.1:\(metricsPort)", "HERALD_SWEEP_INTERVAL": "1", "HERALD_LOG_LEVEL": "info",
        ]

        let migrate = try Binary.run(["migrate", "--demo"], env: env)
        outputs += [migrate.stdout, migrate.stderr]
        XCTAssertEqual(migrate.status, 0, migrate.stderr)
        XCTAssertTrue(migrate.stdout.contains("demo loaded: 2 schedule plans"), migrate.stdout)

        let worker = try CeleryWorkerProcess(
            python: python, broker: "redis://:\(redisPassword)@127.0.0.1:\(masterPort)/1", keyPrefix: "",
            queues: ["schedule_executor"])
        var workerStopped = false
        defer { if !workerStopped { worker.stop() } }
        func ran(_ plan: String) -> Bool {
            worker.records().contains {
                $0["event"] as? String == "ran" && ($0["args"] as? [Any])?.first as? String == plan
            }
        }

        // 1. Standalone Redis with its password: a plan written with Dify's columns fires to the worker.
        let conn = try PostgresConnection(connInfo: roleInfo)
        let planA = try addPlan(conn, dueIn: 3)
        let logA = dir + "/run-a.log"
        var pid = try Binary.spawn(["run"], env: env, log: logA)
        try eventually("plan A reached the Celery worker", timeout: 30) { ran(planA) }
        let status = try Binary.run(["status"], env: env)
        outputs += [status.stdout, status.stderr]
        XCTAssertEqual(status.status, 0, status.stdout + status.stderr)
        kill(pid, SIGTERM)
        XCTAssertEqual(Binary.wait(pid, timeout: 20), 0)
        outputs.append((try? String(contentsOfFile: logA, encoding: .utf8)) ?? "")

        // 2. clean_messages on Dify's rows: the expired message goes, the fresh one stays.
        try conn.transaction { c in
            let app = try XCTUnwrap(c.query("SELECT id::text FROM apps LIMIT 1").rows.first?[0] ?? nil)
            let conversation = UUID().uuidString.lowercased()
            try c.query(
                """
                INSERT INTO conversations (id, app_id, mode, name, inputs, status, from_source, created_at, updated_at)
                VALUES ($1, $2, 'chat', 'c', '{}', 'normal', 'api', now() - interval '40 days', now() - interval '40 days')
                """, [conversation, app])
            try c.query(
                """
                INSERT INTO messages (app_id, conversation_id, inputs, query, message, answer, message_unit_price,
                                      answer_unit_price, currency, from_source, status, created_at, updated_at)
                SELECT $1, $2, '{}', 'q ' || d, '{}', 'a', 0.001, 0.002, 'USD', 'api', 'normal',
                       now() - make_interval(days => d), now() - make_interval(days => d)
                  FROM (VALUES (40), (2)) v(d)
                """, [app, conversation])
        }
        let clean = try Binary.run(["run-task", "clean_messages"], env: env)
        outputs += [clean.stdout, clean.stderr]
        XCTAssertEqual(clean.status, 0, clean.stdout + clean.stderr)
        XCTAssertEqual(
            try conn.query("SELECT string_agg(query, ',' ORDER BY query) FROM messages").rows.first?[0], "q 2")

        // 3. The same through Sentinel: Dify's REDIS_USE_SENTINEL for the app Redis, Celery's
        // sentinel:// for the broker. REDIS_HOST/PORT point nowhere, to show they are not used.
        let replicaPort = Binary.freePort()
        servers.append(
            try RedisServerProcess(
                [
                    "--port", "\(replicaPort)", "--bind", "127.0.0.1", "--requirepass", redisPassword,
                    "--masterauth", redisPassword, "--replicaof", "127.0.0.1", "\(masterPort)", "--save", "",
                    "--appendonly", "no", "--dir", dir,
                ], port: replicaPort, dir: dir, name: "replica"))
        let sentinelPort = Binary.freePort()
        let config = dir + "/sentinel.conf"
        try """
        port \(sentinelPort)
        bind 127.0.0.1
        dir \(dir)
        sentinel monitor herald-master 127.0.0.1 \(masterPort) 1
        sentinel auth-pass herald-master \(redisPassword)
        sentinel down-after-milliseconds herald-master 5000
        sentinel failover-timeout herald-master 10000
        requirepass \(sentinelPassword)

        """.write(toFile: config, atomically: true, encoding: .utf8)
        servers.append(
            try RedisServerProcess([config, "--sentinel"], port: sentinelPort, dir: dir, name: "sentinel"))
        let sentinel = try client(port: sentinelPort, password: sentinelPassword)
        try eventually("the sentinel sees the replica", timeout: 30) {
            guard case .array(let replicas)? = try? sentinel.command(["SENTINEL", "replicas", "herald-master"]) else {
                return false
            }
            return !replicas.isEmpty
        }

        env["REDIS_HOST"] = "127.0.0.1"
        env["REDIS_PORT"] = "1"
        env["REDIS_USE_SENTINEL"] = "true"
        env["REDIS_SENTINELS"] = "127.0.0.1:\(sentinelPort)"
        env["REDIS_SENTINEL_SERVICE_NAME"] = "herald-master"
        env["REDIS_SENTINEL_PASSWORD"] = sentinelPassword
        env["CELERY_BROKER_URL"] = "sentinel://:\(redisPassword)@127.0.0.1:\(sentinelPort)/1"
        env["CELERY_USE_SENTINEL"] = "true"
        env["CELERY_SENTINEL_MASTER_NAME"] = "herald-master"
        env["CELERY_SENTINEL_PASSWORD"] = sentinelPassword
        let planB = try addPlan(conn, dueIn: 3)
        let logB = dir + "/run-b.log"
        pid = try Binary.spawn(["run"], env: env, log: logB)
        defer {
            kill(pid, SIGKILL)
            _ = Binary.wait(pid, timeout: 5)
        }
        try eventually("plan B reached the Celery worker through Sentinel", timeout: 30) { ran(planB) }
        worker.stop()
        workerStopped = true

        // 4. Failover: the replica becomes the master; Herald reconnects, asks the sentinel again,
        // and the next fire lands on the new master's broker database.
        XCTAssertEqual(try sentinel.command(["SENTINEL", "FAILOVER", "herald-master"]), .status("OK"))
        try eventually("the sentinel names the replica as master", timeout: 30) {
            guard
                case .array(let a)? = try? sentinel.command(["SENTINEL", "get-master-addr-by-name", "herald-master"]),
                a.count == 2, case .string(let p) = a[1]
            else { return false }
            return String(decoding: p, as: UTF8.self) == "\(replicaPort)"
        }
        // Until Sentinel has demoted the old master, a write to it can still be lost with it (Redis
        // replication is asynchronous): the fire after the failover is the one that counts.
        try eventually("the old master is demoted", timeout: 30) {
            // A new connection each time: the demotion closes the old master's clients.
            let oldMaster = try client(port: masterPort, password: redisPassword)
            guard case .array(let role)? = try? oldMaster.command(["ROLE"]), case .string(let r)? = role.first else {
                return false
            }
            return r == Array("slave".utf8)
        }
        let planC = try addPlan(conn, dueIn: 3)
        let promoted = try client(port: replicaPort, password: redisPassword, db: 1)
        func landed() -> Bool {
            guard case .array(let items)? = try? promoted.command(["LRANGE", "schedule_executor", "0", "-1"]) else {
                return false
            }
            return items.contains {
                guard case .string(let b) = $0 else { return false }
                return String(decoding: b, as: UTF8.self).contains(planC)
            }
        }
        try eventually("plan C reached the new master's schedule_executor list", timeout: 40) { landed() }
        if !landed() {
            let tail = ((try? String(contentsOfFile: logB, encoding: .utf8)) ?? "").split(separator: "\n").suffix(40)
            print("herald log after the failover:\n" + tail.joined(separator: "\n"))
        }
        kill(pid, SIGTERM)
        XCTAssertEqual(Binary.wait(pid, timeout: 20), 0)
        outputs.append((try? String(contentsOfFile: logB, encoding: .utf8)) ?? "")

        // No password in anything Herald printed.
        let all = outputs.joined(separator: "\n")
        XCTAssertFalse(all.isEmpty)
        for secret in [redisPassword, sentinelPassword, dbPassword] {
            XCTAssertFalse(all.contains(secret), "a password appeared in Herald's output")
        }
    }
}
