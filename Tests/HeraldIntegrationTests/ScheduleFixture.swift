// A private database per test, migrated, with one tenant, app and enabled
// schedule trigger per plan; a private REDIS_KEY_PREFIX so each test has its
// own Celery queue list. Dropped again afterwards.

import Foundation
import HeraldCelery
import HeraldCore
import HeraldIO
import HeraldTasks
import XCTest

final class ScheduleFixture {
    let databaseURL: String
    let database: String
    let keyPrefix: String
    let conn: PostgresConnection
    let tenant = UUID().uuidString.lowercased()
    private let admin: PostgresConnection

    /// - Parameter migrations: the schema to start from (every migration unless a test wants an older one).
    init(migrations: [Migration] = Migrations.all) throws {
        let (_, d) = try TestServers.require()
        var info = try PostgresConnInfo(d)
        info["dbname"] = "postgres"
        admin = try PostgresConnection(connInfo: info)
        database = "herald_t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)
        try TestServers.createDatabase(admin, database)
        info["dbname"] = database
        databaseURL = info.pairs.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
        conn = try PostgresConnection(connInfo: info)
        _ = try Migrator.migrate(conn, migrations: migrations)
        keyPrefix = "t" + UUID().uuidString.lowercased().prefix(8)
        try conn.query("INSERT INTO tenants (id, name) VALUES ($1, 'test')", [tenant])
    }

    func drop() {
        _ = try? admin.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            [database])
        _ = try? admin.query("DROP DATABASE IF EXISTS \(database)")
        if let redis = try? TestServers.redis() {
            if case .array(let keys)? = try? redis.command(["KEYS", keyPrefix + ":*"]) {
                for k in keys { if case .string(let b) = k { _ = try? redis.command([Array("DEL".utf8), b]) } }
            }
        }
    }

    /// Adds a plan with its app and trigger; `dueIn` seconds from the database clock.
    @discardableResult
    func addPlan(
        cron: String = "0 0 1 1 *", zone: String = "UTC", dueIn: Double, triggerStatus: String = "enabled",
        notify: Bool = true
    ) throws -> PlanID {
        let app = UUID().uuidString.lowercased()
        let plan = UUID().uuidString.lowercased()
        try conn.transaction { c in
            if !notify { try c.query("SET LOCAL session_replication_role = replica") }
            try c.query(
                """
                INSERT INTO apps (id, tenant_id, name, mode, enable_site, enable_api)
                VALUES ($1, $2, 'app', 'workflow', true, true)
                """, [app, tenant])
            try c.query(
                """
                INSERT INTO app_triggers (tenant_id, app_id, node_id, trigger_type, title, status, updated_at)
                VALUES ($1, $2, 'node', 'trigger-schedule', 'Schedule', $3, now() AT TIME ZONE 'UTC')
                """, [tenant, app, triggerStatus])
            try c.query(
                """
                INSERT INTO workflow_schedule_plans (id, app_id, node_id, tenant_id, cron_expression, timezone, next_run_at)
                VALUES ($1, $2, 'node', $3, $4, $5, date_trunc('milliseconds', now() AT TIME ZONE 'UTC') + make_interval(secs => $6::float8))
                """, [plan, app, tenant, cron, zone, String(dueIn)])
        }
        return PlanID(plan)!
    }

    /// Adds many plans due at the same instant, in one statement (no NOTIFY per row).
    func addPlans(_ n: Int, cron: String = "0 0 1 1 *", dueIn: Double) throws -> [PlanID] {
        let r = try conn.transaction { c -> PostgresRows in
            try c.query("SET LOCAL session_replication_role = replica")
            return try c.query(
                """
                WITH a AS (
                    INSERT INTO apps (tenant_id, name, mode, enable_site, enable_api)
                    SELECT $1, 'bulk ' || g, 'workflow', true, true FROM generate_series(1, $2::int) g RETURNING id
                ), t AS (
                    INSERT INTO app_triggers (tenant_id, app_id, node_id, trigger_type, title, status, updated_at)
                    SELECT $1, id, 'node', 'trigger-schedule', 'Schedule', 'enabled', now() AT TIME ZONE 'UTC' FROM a
                    RETURNING app_id
                )
                INSERT INTO workflow_schedule_plans (app_id, node_id, tenant_id, cron_expression, timezone, next_run_at)
                SELECT id, 'node', $1, $3, 'UTC', date_trunc('seconds', now() AT TIME ZONE 'UTC') + make_interval(secs => $4::float8)
                  FROM a
                RETURNING id::text
                """, [tenant, String(n), cron, String(dueIn)])
        }
        return r.rows.compactMap { $0[0].flatMap(PlanID.init) }
    }

    func nextRunAt(_ plan: PlanID) throws -> Int64? {
        try conn.query(
            "SELECT (extract(epoch from next_run_at) * 1000000)::bigint FROM workflow_schedule_plans WHERE id = $1",
            [plan.description]
        ).rows.first?[0].flatMap { Int64($0) }
    }

    /// Fire records: (plan, scheduled µs, kind, via, enqueued).
    func fires() throws -> [(plan: String, at: Int64, kind: String, via: String, enqueued: Bool)] {
        try conn.query(
            """
            SELECT plan_id::text, (extract(epoch from scheduled_at) * 1000000)::bigint, kind, via, enqueued_at IS NOT NULL
              FROM herald.schedule_fire_log ORDER BY scheduled_at
            """
        ).rows.map { ($0[0]!, Int64($0[1]!)!, $0[2]!, $0[3]!, $0[4] == "t") }
    }

    /// The messages on this test's schedule_executor list, decoded.
    func queued() throws -> [DecodedCeleryMessage] {
        let redis = try TestServers.redis()
        guard case .array(let items) = try redis.command(["LRANGE", keyPrefix + ":schedule_executor", "0", "-1"]) else {
            return []
        }
        return try items.compactMap { v -> DecodedCeleryMessage? in
            guard case .string(let b) = v else { return nil }
            return try CeleryEnvelopeDecoder.decode(b)
        }
    }

    /// Settings for a daemon on this fixture.
    var env: [String: String] {
        ["HERALD_DATABASE_URL": databaseURL, "REDIS_KEY_PREFIX": keyPrefix]
    }
}

/// A test case with a fresh ScheduleFixture per test and, when `startDaemon` is called, an in-process
/// daemon on it; both are stopped and dropped after each test (ScheduleTests, ScheduleHostileTests).
class ScheduleDaemonTestCase: XCTestCase {
    var fixture: ScheduleFixture!
    var harness: DaemonHarness?

    override func setUpWithError() throws {
        fixture = try ScheduleFixture()
    }

    override func tearDown() {
        harness?.stop()
        harness = nil
        fixture?.drop()
        fixture = nil
    }

    /// Starts the daemon on the fixture (with `extra` settings) and waits for its first window load.
    func startDaemon(_ extra: [String: String] = [:]) throws -> DaemonHarness {
        var env = fixture.env
        env.merge(extra) { _, new in new }
        let h = try DaemonHarness(env: env)
        harness = h
        try waitUntil("all sources up and the first schedule window loaded") {
            h.allUp && (h.status.scheduleWindowLoads ?? 0) >= 1
        }
        return h
    }
}
