// Column "SQL-claim floor" of tests (a) and (b): what claiming the same due
// plans costs PostgreSQL alone. herald-bench itself, on a copy of the same
// data, waits for the plans' time and claims them with one set-based statement
// per batch (a few thousand rows, FOR UPDATE SKIP LOCKED, the same join to the
// enabled schedule trigger, `next_run_at` moved on), through HeraldIO's libpq
// connection, with no cron computation, no fire records and no enqueue. A
// plan's "arrival" is the moment its batch's statement returned.

import HeraldIO

/// The plain SQL claim of due plans.
struct SQLClaimFloor {
    /// Rows per statement.
    let batch: Int
    /// Which join to the enabled schedule trigger the statement uses.
    var variant = Variant.indexed

    enum Variant: Sendable {
        /// `t.tenant_id = p.tenant_id` in the join, so that Dify's index app_trigger_tenant_app_idx
        /// (tenant_id, app_id) serves it: each statement costs O(batch), however many plans are due.
        case indexed
        /// Dify's own join (app_id, node_id): PostgreSQL reads all of app_triggers and sorts every due plan
        /// for each statement.
        case difyJoin
    }

    /// What one run claimed.
    struct Run: Sendable {
        /// CLOCK_REALTIME when each batch's statement returned, with the rows it claimed.
        var batches: [(ns: Int64, rows: Int)] = []
        var startNs: Int64 = 0
        var error: String?

        var claimed: Int { batches.reduce(0) { $0 + $1.rows } }
        var lastNs: Int64? { batches.last?.ns }

        /// One stamp per claimed plan.
        var stamps: [Int64] { batches.flatMap { b in [Int64](repeating: b.ns, count: b.rows) } }
    }

    static let indexedSQL = """
        UPDATE workflow_schedule_plans SET next_run_at = (now() AT TIME ZONE 'UTC') + interval '30 days'
         WHERE id = ANY(ARRAY(
            SELECT p.id FROM workflow_schedule_plans p
             WHERE p.next_run_at <= (now() AT TIME ZONE 'UTC')
               AND EXISTS (SELECT 1 FROM app_triggers t
                            WHERE t.tenant_id = p.tenant_id AND t.app_id = p.app_id AND t.node_id = p.node_id
                              AND t.trigger_type = 'trigger-schedule' AND t.status = 'enabled')
             ORDER BY p.next_run_at
             LIMIT $1
               FOR UPDATE OF p SKIP LOCKED))
        """

    static let difyJoinSQL = """
        WITH due AS (
            SELECT p.id FROM workflow_schedule_plans p
              JOIN app_triggers t ON t.app_id = p.app_id AND t.node_id = p.node_id
               AND t.trigger_type = 'trigger-schedule' AND t.status = 'enabled'
             WHERE p.next_run_at <= (now() AT TIME ZONE 'UTC')
             ORDER BY p.next_run_at
             LIMIT $1
               FOR UPDATE OF p SKIP LOCKED)
        UPDATE workflow_schedule_plans p SET next_run_at = (now() AT TIME ZONE 'UTC') + interval '30 days'
          FROM due WHERE p.id = due.id
        """

    var sql: String { variant == .indexed ? Self.indexedSQL : Self.difyJoinSQL }

    /// Sleeps until `dueNs` (CLOCK_REALTIME), then claims until `expected` plans are claimed, a
    /// statement after the first claims finds nothing, or `limit` passes.
    func run(_ c: PostgresConnection, expected: Int, dueNs: Int64, limit: Duration) -> Run {
        var run = Run()
        do {
            // Like Herald's own claims: the NOTIFY trigger returns at once.
            try c.query("SET herald.claiming = 'on'")
        } catch {
            run.error = "\(error)"
            return run
        }
        ScheduleClock.sleep(untilRealtimeNs: dueNs)
        run.startNs = BenchClock.realtimeNs()
        let deadline = BenchClock.monotonicNs() + limit.nanoseconds
        while run.claimed < expected, BenchClock.monotonicNs() < deadline {
            do {
                let n = try c.query(sql, [String(batch)]).affected
                let t = BenchClock.realtimeNs()
                if n > 0 {
                    run.batches.append((t, n))
                } else if run.claimed > 0 {
                    break
                } else {
                    BenchClock.sleep(.microseconds(200))  // woke a hair before the database clock
                }
            } catch {
                run.error = "\(error)"
                break
            }
        }
        _ = try? c.query("RESET herald.claiming")
        return run
    }
}

/// Waiting for a CLOCK_REALTIME instant with CLOCK_MONOTONIC's absolute sleep.
enum ScheduleClock {
    static func sleep(untilRealtimeNs t: Int64) {
        let wait = t - BenchClock.realtimeNs()
        if wait > 0 { BenchClock.sleep(untilMonotonicNs: BenchClock.monotonicNs() + wait) }
    }

    /// The next whole second at least `ahead` from now (CLOCK_REALTIME ns).
    static func wholeSecond(after ahead: Duration) -> Int64 {
        let t = BenchClock.realtimeNs() + ahead.nanoseconds
        return (t / 1_000_000_000 + 1) * 1_000_000_000
    }
}
