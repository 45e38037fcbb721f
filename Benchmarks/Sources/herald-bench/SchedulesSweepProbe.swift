// Test (d): the sweep's claim query at 10,000, 100,000 and 1,000,000 plans with
// 100 due, beside Dify's poller SQL and the bare index claim, on the same data
// and connection. Each query runs in a transaction that is rolled back (nothing
// changes), in rotation, after warm-up runs; the wall time from send to last row
// is what a sweep waits. EXPLAIN ANALYZE gives the server's own time and the plan.
// Herald's real `PlanStore.claimDue(ids: nil, limit: 100)` is timed too (it
// commits; the 100 plans are put back after each call).

import HeraldCore
import HeraldIO
import HeraldTasks

/// Times the sweep queries on one database.
struct SweepQueryProbe {
    enum Query: String, CaseIterable, Sendable {
        case herald, heraldTenantJoin = "herald_tenant_join", floor, dify

        var title: String {
            switch self {
            case .herald: return "herald claim query"
            case .heraldTenantJoin: return "herald query with Dify's join (before the fix)"
            case .floor: return "floor: index claim, no join"
            case .dify: return "dify poller SQL"
            }
        }
    }

    /// The SELECT of `PlanStore.claimDue` with `ids == nil` and no lead (the sweep), as of this
    /// writing, run with the same `enable_hashjoin = off`, `enable_mergejoin = off`. PlanStore keeps its SQL internal, so it is copied here; `claimDueNs` times the real call.
    static func heraldSQL(tenantJoin: Bool) -> String {
        """
        SELECT p.id::text, p.cron_expression, p.timezone, (extract(epoch from p.next_run_at) * 1000000)::bigint,
               coalesce(sp.catch_up, 'once'), coalesce(sp.misfire_grace_seconds, 60), coalesce(sp.max_catch_up, 100),
               (extract(epoch from now()) * 1000000)::bigint, p.ctid::text
          FROM workflow_schedule_plans p
          JOIN app_triggers t ON \(tenantJoin ? "t.tenant_id = p.tenant_id AND " : "")t.app_id = p.app_id AND t.node_id = p.node_id
           AND t.trigger_type = 'trigger-schedule' AND t.status = 'enabled'
          LEFT JOIN herald.schedule_policies sp ON sp.plan_id = p.id
         WHERE p.next_run_at <= (now() AT TIME ZONE 'UTC') + make_interval(secs => 0::float8)
           AND NOT EXISTS (SELECT 1 FROM herald.schedule_quarantine q
                            WHERE q.plan_id = p.id AND q.cron_expression = p.cron_expression AND q.timezone = p.timezone)
         ORDER BY p.next_run_at
         LIMIT $1
           FOR UPDATE OF p SKIP LOCKED
        """
    }

    /// Dify's `poll_workflow_schedules` SELECT (Dify's api/schedule/workflow_schedule_task.py), `now` as naive UTC.
    static let difySQL = """
        SELECT wsp.* FROM workflow_schedule_plans wsp
          JOIN app_triggers at ON at.app_id = wsp.app_id AND at.node_id = wsp.node_id AND at.trigger_type = 'trigger-schedule'
         WHERE wsp.next_run_at <= (now() AT TIME ZONE 'UTC') AND wsp.next_run_at IS NOT NULL AND at.status = 'enabled'
         ORDER BY wsp.next_run_at ASC
         LIMIT $1
           FOR UPDATE SKIP LOCKED
        """

    static let floorSQL = """
        SELECT p.id FROM workflow_schedule_plans p
         WHERE p.next_run_at <= (now() AT TIME ZONE 'UTC')
         ORDER BY p.next_run_at
         LIMIT $1
           FOR UPDATE OF p SKIP LOCKED
        """

    static func sql(_ q: Query) -> String {
        switch q {
        case .herald: return heraldSQL(tenantJoin: true)
        case .heraldTenantJoin: return heraldSQL(tenantJoin: false)
        case .floor: return floorSQL
        case .dify: return difySQL
        }
    }

    /// The figures for one database size.
    struct Result: Sendable {
        var plans: Int
        var wallNs: [Query: [Int64]] = [:]
        var serverNs: [Query: [Int64]] = [:]
        /// Rows each query returned (must be `due`).
        var rows: [Query: Int] = [:]
        /// The scan EXPLAIN chose for app_triggers ("Seq Scan", "Index Scan", …), per query.
        var triggerScan: [Query: String] = [:]
        var claimDueNs: [Int64] = []
        var claimDueFires = 0
        /// Herald's per-event queries on one plan that is not due: `PlanStore.read` and `PlanStore.claimRunNow`.
        var readOneNs: [Int64] = []
        var runNowClaimNs: [Int64] = []
        var error: String?
    }

    let due: Int
    let runs: Int
    let warmup: Int

    func measure(_ c: PostgresConnection, plans: Int) -> Result {
        var r = Result(plans: plans)
        do {
            for round in 0..<(warmup + runs) {
                let order = Query.allCases.indices.map { Query.allCases[($0 + round) % Query.allCases.count] }
                for q in order {
                    let (ns, n) = try timed(c, q)
                    if round >= warmup {
                        r.wallNs[q, default: []].append(ns)
                        r.rows[q] = n
                    }
                }
            }
            for q in Query.allCases {
                for _ in 0..<3 {
                    let (ns, scan) = try explain(c, q)
                    r.serverNs[q, default: []].append(ns)
                    r.triggerScan[q] = scan
                }
            }
            try timeClaimDue(c, into: &r)
            try timeEventQueries(c, plans: plans, into: &r)
        } catch {
            r.error = "\(error)"
        }
        return r
    }

    /// Herald's claim transaction allows nested loops only (PlanStore.claimDue); its query is timed so.
    private func heraldSettings(_ c: PostgresConnection, _ q: Query) throws {
        if q == .herald { try c.execute(script: "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off") }
    }

    /// One run of `q` in a transaction that is rolled back: wall ns and rows.
    private func timed(_ c: PostgresConnection, _ q: Query) throws -> (Int64, Int) {
        try c.query("BEGIN")
        defer { _ = try? c.query("ROLLBACK") }
        try c.query("SET LOCAL herald.claiming = 'on'")
        try heraldSettings(c, q)
        let t0 = BenchClock.monotonicNs()
        let rows = try c.query(Self.sql(q), [String(due)]).rows.count
        return (BenchClock.monotonicNs() - t0, rows)
    }

    /// EXPLAIN ANALYZE of `q` (rolled back): the server's execution time and the scan on app_triggers.
    private func explain(_ c: PostgresConnection, _ q: Query) throws -> (Int64, String) {
        try c.query("BEGIN")
        defer { _ = try? c.query("ROLLBACK") }
        try heraldSettings(c, q)
        let lines = try c.query("EXPLAIN ANALYZE " + Self.sql(q), [String(due)]).rows.compactMap { $0.first ?? nil }
        var ns: Int64 = 0
        var scan = "none"
        for l in lines {
            if let r = l.range(of: "Execution Time: ") {
                let ms = Double(l[r.upperBound...].split(separator: " ").first ?? "") ?? 0
                ns = Int64(ms * 1e6)
            }
            if l.contains(" on app_triggers") {
                let trimmed = l.drop { $0 == " " || $0 == "-" || $0 == ">" }
                if let on = trimmed.range(of: " on app_triggers") {
                    scan = String(trimmed[..<on.lowerBound])
                    if let using = trimmed.range(of: " using "),
                        let end = trimmed[using.upperBound...].firstIndex(of: " ")
                    {
                        scan += " (\(trimmed[using.upperBound..<end]))"
                    }
                }
            }
        }
        return (ns, scan)
    }

    /// The queries one `task_schedule_events` message costs (test (c)): the re-read of the plan and, with
    /// `run_now`, the insert of the extra fire; on a plan in the middle of the table, not due.
    private func timeEventQueries(_ c: PostgresConnection, plans: Int, into r: inout Result) throws {
        let store = PlanStore(instanceID: "herald-bench-events")
        guard let plan = PlanID(ScheduleBenchData.planID(plans / 2)) else { return }
        for i in 0..<(warmup + runs) {
            let t0 = BenchClock.monotonicNs()
            let rows = try store.read(c, ids: [plan])
            let t1 = BenchClock.monotonicNs()
            let fire = try store.claimRunNow(c, plan: plan, via: "run_now")
            let t2 = BenchClock.monotonicNs()
            if rows.count != 1 || fire == nil {
                throw BenchFailure("plan \(plan) not found by PlanStore.read/claimRunNow")
            }
            if i >= warmup {
                r.readOneNs.append(t1 - t0)
                r.runNowClaimNs.append(t2 - t1)
            }
        }
        try c.execute(script: "DELETE FROM herald.schedule_fires; DELETE FROM herald.schedule_claims")
    }

    /// The real `PlanStore.claimDue(ids: nil, limit: due)`, committed; the plans and fire rows are put back.
    private func timeClaimDue(_ c: PostgresConnection, into r: inout Result) throws {
        let original = try c.query(
            """
            SELECT id::text, next_run_at::text FROM workflow_schedule_plans
             WHERE next_run_at <= (now() AT TIME ZONE 'UTC') ORDER BY next_run_at LIMIT $1
            """, [String(due)]
        ).rows
        let ids = "{" + original.compactMap { $0[0] }.joined(separator: ",") + "}"
        let times = "{" + original.compactMap { $0[1].map { "\"\($0)\"" } }.joined(separator: ",") + "}"
        let store = PlanStore(instanceID: "herald-bench-sweep")
        for i in 0..<(warmup + runs) {
            var cache: [String: CronSchedule] = [:]
            let t0 = BenchClock.monotonicNs()
            let claimed = try store.claimDue(c, ids: nil, limit: due, via: "sweep", cronCache: &cache)
            let ns = BenchClock.monotonicNs() - t0
            if i >= warmup {
                r.claimDueNs.append(ns)
                r.claimDueFires = claimed.fires.count
            }
            try c.transaction { c in
                try c.query("SET LOCAL session_replication_role = replica")
                try c.query(
                    """
                    UPDATE workflow_schedule_plans p SET next_run_at = v.t
                      FROM unnest($1::uuid[], $2::timestamp[]) AS v(id, t) WHERE p.id = v.id
                    """, [ids, times])
                try c.execute(script: "DELETE FROM herald.schedule_fires; DELETE FROM herald.schedule_claims")
            }
        }
    }
}
