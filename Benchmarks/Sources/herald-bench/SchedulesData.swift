// The data of the `schedules` scenario: private databases created with
// `herald migrate` and filled with set-based SQL (generate_series), one
// tenant per ten apps and one app, enabled schedule trigger and plan per
// sequence number. Ids encode the sequence number (in the last 12 hex digits,
// time-ordered like Dify's uuidv7), so every message on a queue names its plan
// without a lookup. The cron expression (`0 0 1 1 *`) never fires again during
// a run; `next_run_at` is always set explicitly.

import Foundation
import HeraldCore
import HeraldIO

/// Creates, fills, copies and drops the scenario's databases.
struct ScheduleBenchData: BenchDatabases {
    static let planHead = "5c4ed000-0000-4000-8000-"
    static let appHead = "a9900000-0000-4000-8000-"
    static let tenantHead = "7e4a0000-0000-4000-8000-"
    static let node = "schedule-node"
    static let cron = "0 0 1 1 *"
    /// Every database this scenario creates starts with this.
    static let databasePrefix = "herald_bench_sched"

    let environment: BenchEnvironment
    let admin: PostgresConnection

    init(environment: BenchEnvironment) throws {
        self.environment = environment
        admin = try PostgresConnection(connInfo: environment.database)
    }

    /// How `next_run_at` is spread when the plans are created.
    enum Spread {
        /// 30 days ahead: nothing armed, nothing due, until a test sets a time.
        case parked
        /// `due` plans overdue by 1…`due` s, the rest spread over the next 24 hours (about 1/288 of them
        /// within Herald's 5-minute window), in an order unrelated to the ids.
        case day(due: Int)

        var sql: String {
            switch self {
            case .parked:
                return "(now() AT TIME ZONE 'UTC') + interval '30 days'"
            case .day(let due):
                return """
                    CASE WHEN g < \(due) THEN date_trunc('milliseconds', now() AT TIME ZONE 'UTC') - make_interval(secs => g + 1)
                         ELSE date_trunc('seconds', now() AT TIME ZONE 'UTC')
                              + make_interval(secs => 60 + (g::bigint * 2654435761 % 86340) + (g % 1000) / 1000.0) END
                    """
            }
        }
    }

    /// The plan id of sequence number `seq`.
    static func planID(_ seq: Int) -> String { id(planHead, seq) }

    static func id(_ head: String, _ seq: Int) -> String {
        let hex = String(seq, radix: 16)
        return head + String(repeating: "0", count: max(0, 12 - hex.utf8.count)) + hex
    }

    /// The sequence number of a plan id made by `planID(_:)` (36 bytes), or nil.
    @inline(__always)
    static func seq<C: Collection>(ofPlan bytes: C) -> Int? where C.Element == UInt8 {
        guard bytes.count == 36 else { return nil }
        var i = 0, v = 0
        for b in bytes {
            if i < 24 {
                guard b == planHeadBytes[i] else { return nil }
            } else {
                let d: Int
                switch b {
                case 48...57: d = Int(b) - 48
                case 97...102: d = Int(b) - 87
                default: return nil
                }
                v = v << 4 | d
            }
            i += 1
        }
        return v
    }

    private static let planHeadBytes = Array(planHead.utf8)

    /// SQL for the id of sequence number `expr` under `head`.
    private static func idSQL(_ head: String, _ expr: String) -> String {
        "('\(head)' || lpad(to_hex(\(expr)), 12, '0'))::uuid"
    }

    // MARK: Databases

    func info(_ name: String) -> PostgresConnInfo { environment.database(named: name) }
    func url(_ name: String) -> String { environment.databaseURL(named: name) }

    /// Drops `name` if it exists, creates it and applies Herald's schema with `herald migrate`.
    func create(_ name: String) throws {
        drop(name)
        try admin.query("CREATE DATABASE \(name)")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: environment.heraldBinary)
        p.arguments = ["migrate", "--create-dify-tables"]
        var env = ProcessInfo.processInfo.environment
        env["HERALD_REDIS_URL"] = environment.redisURL
        env["HERALD_DATABASE_URL"] = url(name)
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationReason == .exit, p.terminationStatus == 0 else {
            throw BenchFailure("`herald migrate` failed on \(name) (status \(p.terminationStatus))")
        }
    }

    /// `CREATE DATABASE to TEMPLATE from`: a file-level copy (nobody may be connected to `from`).
    func copy(_ from: String, to: String) throws {
        drop(to)
        try admin.query("CREATE DATABASE \(to) TEMPLATE \(from)")
    }

    // MARK: Rows

    /// Inserts `n` tenants/10, apps, enabled schedule triggers and plans (no NOTIFY), then VACUUM ANALYZE.
    /// Returns the time it took.
    @discardableResult
    func populate(_ name: String, plans n: Int, spread: Spread) throws -> Int64 {
        let t0 = BenchClock.monotonicNs()
        let c = try PostgresConnection(connInfo: info(name))
        try c.transaction { c in
            try c.query("SET LOCAL session_replication_role = replica")
            try c.query(
                """
                INSERT INTO tenants (id, name)
                SELECT \(Self.idSQL(Self.tenantHead, "g")), 'bench tenant ' || g FROM generate_series(0, ($1::int - 1) / 10) g
                """, [String(n)])
            try c.query(
                """
                INSERT INTO apps (id, tenant_id, name, mode, enable_site, enable_api)
                SELECT \(Self.idSQL(Self.appHead, "g")), \(Self.idSQL(Self.tenantHead, "g / 10")), 'bench app', 'workflow',
                       true, true
                  FROM generate_series(0, $1::int - 1) g
                """, [String(n)])
            try c.query(
                """
                INSERT INTO app_triggers (tenant_id, app_id, node_id, trigger_type, title, status, updated_at)
                SELECT \(Self.idSQL(Self.tenantHead, "g / 10")), \(Self.idSQL(Self.appHead, "g")), $2, 'trigger-schedule', 'Schedule',
                       'enabled', now() AT TIME ZONE 'UTC'
                  FROM generate_series(0, $1::int - 1) g
                """, [String(n), Self.node])
            try c.query(
                """
                INSERT INTO workflow_schedule_plans (id, app_id, node_id, tenant_id, cron_expression, timezone, next_run_at)
                SELECT \(Self.idSQL(Self.planHead, "g")), \(Self.idSQL(Self.appHead, "g")), $2, \(Self.idSQL(Self.tenantHead, "g / 10")),
                       $3, 'UTC', \(spread.sql)
                  FROM generate_series(0, $1::int - 1) g
                """, [String(n), Self.node, Self.cron])
        }
        for t in ["tenants", "apps", "app_triggers", "workflow_schedule_plans"] {
            try c.execute(script: "VACUUM (ANALYZE) \(t)")
        }
        return BenchClock.monotonicNs() - t0
    }

    /// Sets `next_run_at` of the plans in `range` to `atNs` (CLOCK_REALTIME ns, whole seconds in practice),
    /// then refreshes the planner's statistics of the table, as autovacuum keeps them in a steady state (a
    /// plan due now was set by its previous fire, long before). With `notify`, announces the change with the
    /// bulk notice the NOTIFY trigger sends for a statement of more than 100 rows: a running Herald reloads
    /// its window. (The UPDATE itself runs unannounced so that Herald cannot read the stale statistics.)
    static func setDue(_ c: PostgresConnection, _ range: Range<Int>, atNs: Int64, notify: Bool) throws {
        try c.transaction { c in
            try c.query("SET LOCAL session_replication_role = replica")
            try c.query(
                """
                UPDATE workflow_schedule_plans SET next_run_at = to_timestamp($3::float8 / 1e6) AT TIME ZONE 'UTC'
                 WHERE id BETWEEN \(idSQL(planHead, "$1::bigint")) AND \(idSQL(planHead, "$2::bigint"))
                """, [String(range.lowerBound), String(range.upperBound - 1), String(atNs / 1000)])
        }
        try c.query("ANALYZE workflow_schedule_plans")
        if notify {
            try c.query(
                """
                SELECT pg_notify('herald_events', json_build_object('table', 'workflow_schedule_plans', 'op', 'UPDATE',
                                                                   'bulk', true, 'rows', $1::bigint)::text)
                """, [String(range.count)])
        }
    }

    /// Moves the plans in `range` 30 days ahead, unannounced (out of every window).
    static func park(_ c: PostgresConnection, _ range: Range<Int>) throws {
        try c.transaction { c in
            try c.query("SET LOCAL session_replication_role = replica")
            try c.query(
                """
                UPDATE workflow_schedule_plans SET next_run_at = (now() AT TIME ZONE 'UTC') + interval '30 days'
                 WHERE id BETWEEN \(idSQL(planHead, "$1::bigint")) AND \(idSQL(planHead, "$2::bigint"))
                """, [String(range.lowerBound), String(range.upperBound - 1)])
        }
    }

    // MARK: Redis

    /// Deletes every key under `prefix` (SCAN + UNLINK); returns how many.
    @discardableResult
    static func deleteKeys(_ redis: RedisClient, prefix: String) -> Int {
        var cursor = "0"
        var deleted = 0
        repeat {
            guard
                case .array(let parts)? = try? redis.command(["SCAN", cursor, "MATCH", prefix + "*", "COUNT", "10000"]),
                parts.count == 2, let next = parts[0].text, case .array(let keys) = parts[1]
            else { break }
            cursor = next
            let names = keys.compactMap { v -> [UInt8]? in if case .string(let b) = v { return b } else { return nil } }
            if !names.isEmpty {
                _ = try? redis.command([Array("UNLINK".utf8)] + names)
                deleted += names.count
            }
        } while cursor != "0"
        return deleted
    }
}
