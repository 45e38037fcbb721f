// Every SQL statement of the schedule subsystem. PostgreSQL is the truth: a
// (plan, scheduled time) is claimed by inserting it under a primary key in
// the same transaction that locks the plan (FOR UPDATE SKIP LOCKED) and moves
// `next_run_at`, judged against the database clock. The fires of one claim
// transaction share a row in herald.schedule_claims, which is marked enqueued
// once all of them reached the broker. Blocking: run it off the loop.

import HeraldCore
import HeraldIO

/// A plan's arming state as read from the database.
public struct ArmedPlan: Sendable, Equatable {
    public var id: PlanID
    /// `next_run_at` in Unix µs.
    public var nextRunAt: Int64
}

/// A claimed firing, to be enqueued.
public struct ClaimedFire: Sendable, Equatable {
    public enum Kind: String, Sendable { case cron, runNow = "run_now" }
    public var plan: PlanID
    /// The scheduled instant, Unix µs.
    public var scheduledAt: Int64
    public var kind: Kind
    public var taskID: String

    public init(plan: PlanID, scheduledAt: Int64, kind: Kind, taskID: String) {
        self.plan = plan
        self.scheduledAt = scheduledAt
        self.kind = kind
        self.taskID = taskID
    }
}

/// The result of one claim transaction.
public struct ClaimResult: Sendable {
    /// Database time of the claim, Unix µs.
    public var dbNow: Int64
    /// The claim's id in herald.schedule_claims (0 when it claimed no fire).
    public var claim: Int64 = 0
    public var fires: [ClaimedFire]
    /// Plans advanced by this claim (new `next_run_at`).
    public var advanced: [ArmedPlan]
    /// Plans newly put in quarantine, with the reason.
    public var quarantined: [(PlanID, String)]
    /// Rows locked and examined.
    public var examined: Int
}

/// The schedule SQL, on one blocking connection.
public struct PlanStore: Sendable {
    /// Dify's table of schedule plans, which every statement here reads (a changed row is a plan id).
    public static let plansTable = "workflow_schedule_plans"
    /// Dify's table of triggers, whose status enables a plan (a changed row is a trigger id).
    public static let triggersTable = "app_triggers"

    public let instanceID: String

    public init(instanceID: String) { self.instanceID = instanceID }

    /// A plan and its trigger share the tenant; joining on it lets PostgreSQL use Dify's
    /// `app_trigger_tenant_app_idx (tenant_id, app_id)` instead of scanning `app_triggers`.
    static let enabledJoin = """
        JOIN app_triggers t ON t.tenant_id = p.tenant_id AND t.app_id = p.app_id AND t.node_id = p.node_id
         AND t.trigger_type = 'trigger-schedule' AND t.status = 'enabled'
        """
    /// A plan is skipped while its quarantine matches it: the same crontab and zone, and, for a
    /// quarantine of its `next_run_at` (``badNextRunAt``), as long as that value is still unusable;
    /// and while an operator has paused it (`herald plan pause`).
    static let notQuarantined = """
        NOT EXISTS (SELECT 1 FROM herald.schedule_quarantine q
                     WHERE q.plan_id = p.id AND q.cron_expression = p.cron_expression AND q.timezone = p.timezone
                       AND (q.error NOT LIKE 'next_run_at %' OR NOT \(usableNextRunAt)))
        AND NOT EXISTS (SELECT 1 FROM herald.schedule_paused z WHERE z.plan_id = p.id)
        """
    /// `next_run_at` values Herald can compute with: finite, years 1 to 9999 (Python's datetime
    /// range, so whatever Dify writes). `-infinity`, `infinity` and the far ends of PostgreSQL's
    /// range are not, and converting them to µs would fail the whole statement.
    static let usableNextRunAt =
        "(p.next_run_at BETWEEN timestamp '0001-01-01' AND timestamp '9999-12-31 23:59:59.999999')"
    /// The settings of every claim transaction. Nested loops only (see ``claimDue``). The
    /// timeouts bound, on the server side, how long a claim can hold its row locks: an instance
    /// stalled inside one (SIGSTOP, a VM pause, a swap storm) loses its session after 5 s idle in
    /// the transaction, so its plans go to a peer (whose claims skip locked rows) instead of waiting
    /// for it to resume; a claim blocked on a lock (an ALTER TABLE) gives up after 5 s and retries.
    static let claimSettings = """
        SET LOCAL herald.claiming = 'on'; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off;
        SET LOCAL idle_in_transaction_session_timeout = '5s'; SET LOCAL lock_timeout = '5s';
        SET LOCAL statement_timeout = '60s'
        """

    /// `next_run_at` in Unix µs; NULL when unusable (the conversion cannot fail).
    static let micros = "CASE WHEN \(usableNextRunAt) THEN (extract(epoch from p.next_run_at) * 1000000)::bigint END"
    /// The quarantine reason of a plan whose `next_run_at` is unusable (it starts "next_run_at ").
    static let badNextRunAt = "next_run_at is infinite or outside the years 1 to 9999"

    /// The database clock, Unix µs.
    public func databaseNow(_ c: PostgresConnection) throws -> Int64 {
        let r = try c.query("SELECT (extract(epoch from clock_timestamp()) * 1000000)::bigint")
        return Int64(r.rows[0][0] ?? "0") ?? 0
    }

    /// Database clock minus local clock (µs), from the tightest of three round trips.
    public func clockSkew(_ c: PostgresConnection, localNow: () -> Int64) throws -> Int64 {
        var best: (rtt: Int64, skew: Int64)?
        for _ in 0..<3 {
            let t0 = localNow()
            let db = try databaseNow(c)
            let t1 = localNow()
            if best == nil || t1 - t0 < best!.rtt { best = (t1 - t0, db - (t0 + t1) / 2) }
        }
        return best!.skew
    }

    /// Enabled plans due within `horizonSeconds` of the database clock, earliest first.
    public func loadWindow(_ c: PostgresConnection, horizonSeconds: Int, limit: Int) throws -> [ArmedPlan] {
        let r = try c.query(
            """
            SELECT p.id::text, \(Self.micros)
              FROM workflow_schedule_plans p \(Self.enabledJoin)
             WHERE p.next_run_at IS NOT NULL
               AND p.next_run_at <= (now() AT TIME ZONE 'UTC') + make_interval(secs => $1::int)
               AND \(Self.notQuarantined)
             ORDER BY p.next_run_at
             LIMIT $2
            """, [String(horizonSeconds), String(limit)])
        return r.rows.compactMap(Self.armed)
    }

    /// The current arming of `ids`: plans that are missing, disabled, quarantined or
    /// have no `next_run_at` are absent from the result.
    public func read(_ c: PostgresConnection, ids: [PlanID]) throws -> [ArmedPlan] {
        guard !ids.isEmpty else { return [] }
        let r = try c.queryPrepared(
            "herald_plan_read",
            """
            SELECT p.id::text, \(Self.micros)
              FROM workflow_schedule_plans p \(Self.enabledJoin)
             WHERE p.id = ANY($1::uuid[]) AND p.next_run_at IS NOT NULL AND \(Self.notQuarantined)
            """, [PGArray.uuids(ids)])
        return r.rows.compactMap(Self.armed)
    }

    /// Plans of the given app_triggers rows (by trigger id), whatever their status.
    public func plansOfTriggers(_ c: PostgresConnection, triggerIDs: [String]) throws -> [PlanID] {
        guard !triggerIDs.isEmpty else { return [] }
        let r = try c.query(
            """
            SELECT p.id::text FROM app_triggers t
              JOIN workflow_schedule_plans p ON p.tenant_id = t.tenant_id AND p.app_id = t.app_id AND p.node_id = t.node_id
             WHERE t.id = ANY($1::uuid[])
            """, [PGArray.text(triggerIDs)])
        return r.rows.compactMap { $0[0].flatMap(PlanID.init) }
    }

    /// Claims due plans in one transaction. With `ids`, only those plans (timer fires);
    /// without, the most overdue ones through the `next_run_at` index (the sweep).
    /// `leadMicros` > 0 also claims slots that many µs ahead of the database clock (pre-claim);
    /// the caller releases those fires at their time.
    ///
    /// Two statements, both prepared once per connection: the locking SELECT (nested loops only: an
    /// index probe of the plan and of its trigger per row, whatever the planner estimates), then one
    /// statement that moves `next_run_at` (by the locked rows' ctid), inserts the fires and their
    /// claim row.
    public func claimDue(
        _ c: PostgresConnection, ids: [PlanID]?, limit: Int, via: String, leadMicros: Int64 = 0,
        cronCache: inout [String: CronSchedule]
    ) throws -> ClaimResult {
        var cache = cronCache
        defer { cronCache = cache }
        return try c.transaction { c in
            try c.execute(script: Self.claimSettings)
            let filter = ids == nil ? "" : "AND p.id = ANY($3::uuid[])"
            let order = ids == nil ? "ORDER BY p.next_run_at" : ""
            var params = [String(limit), String(Double(leadMicros) / 1e6)]
            if let ids { params.append(PGArray.uuids(ids)) }
            let rows = try c.queryPrepared(
                ids == nil ? "herald_claim_due" : "herald_claim_plans",
                """
                SELECT p.id::text, p.cron_expression, p.timezone, \(Self.micros),
                       coalesce(sp.catch_up, 'once'), coalesce(sp.misfire_grace_seconds, 60), coalesce(sp.max_catch_up, 100),
                       (extract(epoch from now()) * 1000000)::bigint, p.ctid::text
                  FROM workflow_schedule_plans p \(Self.enabledJoin)
                  LEFT JOIN herald.schedule_policies sp ON sp.plan_id = p.id
                 WHERE p.next_run_at <= (now() AT TIME ZONE 'UTC') + make_interval(secs => $2::float8) \(filter)
                   AND \(Self.notQuarantined)
                 \(order)
                 LIMIT $1
                   FOR UPDATE OF p SKIP LOCKED
                """, params
            ).rows
            var dbNow = Int64(0)
            var fires: [(PlanID, Int64, String)] = []
            var advanced: [ArmedPlan] = []
            var tids: [String] = []
            var quarantine: [(PlanID, String, String, String)] = []
            for row in rows {
                guard let id = row[0].flatMap(PlanID.init), let now = row[7].flatMap({ Int64($0) }), let tid = row[8]
                else { continue }
                guard let next = row[3].flatMap({ Int64($0) }) else {
                    // Due although unusable (-infinity sorts first): quarantined, not fired, until it changes.
                    quarantine.append((id, row[1] ?? "", row[2] ?? "", Self.badNextRunAt))
                    continue
                }
                dbNow = now
                let plan = DuePlan(
                    id: id, cronExpression: row[1] ?? "", timezone: row[2] ?? "", nextRunAt: next,
                    policy: CatchUpPolicy(rawValue: row[4] ?? "once") ?? .once,
                    misfireGraceSeconds: Int64(row[5] ?? "60") ?? 60, maxCatchUp: Int(row[6] ?? "100") ?? 100)
                switch FirePlanner.decide(plan, now: now, lead: leadMicros, cache: &cache) {
                case .fire(let at, let nextRunAt):
                    for t in at { fires.append((id, t, TaskIDs.cron(plan: id, scheduledAt: t))) }
                    advanced.append(ArmedPlan(id: id, nextRunAt: nextRunAt))
                    tids.append(tid)
                case .quarantine(let error):
                    quarantine.append((id, plan.cronExpression, plan.timezone, error.description))
                }
            }
            var claim = Int64(0)
            var claimed: [ClaimedFire] = []
            if !advanced.isEmpty {
                let r = try c.queryPrepared(
                    "herald_claim_record",
                    """
                    WITH k AS MATERIALIZED (SELECT nextval('herald.schedule_claim_seq') AS id),
                    moved AS (
                        UPDATE workflow_schedule_plans p SET next_run_at = timestamp 'epoch' + v.next * interval '1 microsecond'
                          FROM unnest($1::tid[], $2::bigint[]) AS v(tid, next)
                         WHERE p.ctid = v.tid),
                    ins AS (
                        INSERT INTO herald.schedule_fires (plan_id, scheduled_at, kind, task_id, via, claimed_by, claim_id)
                        SELECT f.plan_id, timestamp 'epoch' + f.at * interval '1 microsecond', 'cron', f.task_id, $6, $7, k.id
                          FROM unnest($3::uuid[], $4::bigint[], $5::uuid[]) AS f(plan_id, at, task_id), k
                        ON CONFLICT DO NOTHING
                        RETURNING plan_id, scheduled_at, task_id, claim_id),
                    claim AS (
                        INSERT INTO herald.schedule_claims (id, via, claimed_by, release_at, fires)
                        SELECT claim_id, $6, $7, max(scheduled_at), count(*) FROM ins GROUP BY claim_id)
                    SELECT claim_id, plan_id::text, (extract(epoch from scheduled_at) * 1000000)::bigint, task_id::text FROM ins
                    """,
                    [
                        PGArray.text(tids), PGArray.ints(advanced.map(\.nextRunAt)),
                        PGArray.uuids(fires.map(\.0)), PGArray.ints(fires.map(\.1)), PGArray.text(fires.map(\.2)), via,
                        instanceID,
                    ])
                for row in r.rows {
                    guard let k = row[0].flatMap({ Int64($0) }), let id = row[1].flatMap(PlanID.init),
                        let at = row[2].flatMap({ Int64($0) }), let task = row[3]
                    else { continue }
                    claim = k
                    claimed.append(ClaimedFire(plan: id, scheduledAt: at, kind: .cron, taskID: task))
                }
            }
            var newlyQuarantined: [(PlanID, String)] = []
            if !quarantine.isEmpty {
                let r = try c.query(
                    """
                    INSERT INTO herald.schedule_quarantine AS q (plan_id, cron_expression, timezone, error)
                    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[])
                    ON CONFLICT (plan_id) DO UPDATE
                       SET cron_expression = EXCLUDED.cron_expression, timezone = EXCLUDED.timezone, error = EXCLUDED.error,
                           occurrences = CASE WHEN q.cron_expression = EXCLUDED.cron_expression AND q.timezone = EXCLUDED.timezone
                                              THEN q.occurrences + 1 ELSE 1 END,
                           last_seen_at = now()
                    RETURNING plan_id::text, occurrences, error
                    """,
                    [
                        PGArray.uuids(quarantine.map(\.0)), PGArray.text(quarantine.map(\.1)),
                        PGArray.text(quarantine.map(\.2)), PGArray.text(quarantine.map(\.3)),
                    ])
                newlyQuarantined = r.rows.compactMap { row in
                    guard row[1] == "1", let id = row[0].flatMap(PlanID.init) else { return nil }
                    return (id, row[2] ?? "")
                }
            }
            return ClaimResult(
                dbNow: dbNow, claim: claim, fires: claimed, advanced: advanced, quarantined: newlyQuarantined,
                examined: rows.count)
        }
    }

    /// Claims one immediate extra fire of an enabled plan (`run_now`), with a claim of its own, in
    /// one statement; nil when the plan is missing or its trigger is not enabled.
    public func claimRunNow(
        _ c: PostgresConnection, plan: PlanID, via: String
    ) throws -> (claim: Int64, fire: ClaimedFire)? {
        let task = TaskIDs.runNow(plan: plan)
        let r = try c.queryPrepared(
            "herald_claim_run_now",
            """
            WITH k AS MATERIALIZED (SELECT nextval('herald.schedule_claim_seq') AS id),
            ins AS (
                INSERT INTO herald.schedule_fires (plan_id, scheduled_at, kind, task_id, via, claimed_by, claim_id)
                SELECT p.id, clock_timestamp() AT TIME ZONE 'UTC', 'run_now', $2::uuid, $3, $4, k.id
                  FROM workflow_schedule_plans p \(Self.enabledJoin), k
                 WHERE p.id = $1::uuid
                ON CONFLICT DO NOTHING
                RETURNING scheduled_at, claim_id),
            claim AS (
                INSERT INTO herald.schedule_claims (id, via, claimed_by, release_at, fires)
                SELECT claim_id, $3, $4, scheduled_at, 1 FROM ins)
            SELECT claim_id, (extract(epoch from scheduled_at) * 1000000)::bigint FROM ins
            """, [plan.description, task, via, instanceID])
        guard let row = r.rows.first, let k = row[0].flatMap({ Int64($0) }), let at = row[1].flatMap({ Int64($0) })
        else { return nil }
        return (k, ClaimedFire(plan: plan, scheduledAt: at, kind: .runNow, taskID: task))
    }

    /// Records that every fire of these claims reached the queue.
    public func markEnqueued(_ c: PostgresConnection, claims: [Int64]) throws {
        guard !claims.isEmpty else { return }
        try c.query(
            "UPDATE herald.schedule_claims SET enqueued_at = now() WHERE id = ANY($1::bigint[]) AND enqueued_at IS NULL",
            [PGArray.ints(claims)])
    }

    /// Claims made more than `olderThanSeconds` ago, whose fires were all due that long ago, and not
    /// marked enqueued (a crash or a broker outage between claim and enqueue; a pre-claimed fire is
    /// never re-sent before its time), oldest first, with their fires.
    public func openClaims(
        _ c: PostgresConnection, olderThanSeconds: Int, limit: Int
    ) throws -> [(claim: Int64, fires: [ClaimedFire])] {
        let r = try c.query(
            """
            WITH open AS (
                SELECT id FROM herald.schedule_claims
                 WHERE enqueued_at IS NULL AND claimed_at < now() - make_interval(secs => $1::int)
                   AND release_at < (now() AT TIME ZONE 'UTC') - make_interval(secs => $1::int)
                 ORDER BY claimed_at
                 LIMIT $2)
            SELECT open.id, f.plan_id::text, (extract(epoch from f.scheduled_at) * 1000000)::bigint, f.kind, f.task_id::text
              FROM open LEFT JOIN herald.schedule_fires f ON f.claim_id = open.id
             ORDER BY open.id
            """, [String(olderThanSeconds), String(limit)])
        var out: [(claim: Int64, fires: [ClaimedFire])] = []
        for row in r.rows {
            guard let k = row[0].flatMap({ Int64($0) }) else { continue }
            if out.last?.claim != k { out.append((k, [])) }
            guard let id = row[1].flatMap(PlanID.init), let at = row[2].flatMap({ Int64($0) }),
                let kind = row[3].flatMap(ClaimedFire.Kind.init(rawValue:)), let task = row[4]
            else { continue }
            out[out.count - 1].fires.append(ClaimedFire(plan: id, scheduledAt: at, kind: kind, taskID: task))
        }
        return out
    }

    /// Deletes claims enqueued more than `days` ago and their fire records (bounded table size);
    /// returns the number of fire records deleted.
    public func pruneFires(_ c: PostgresConnection, olderThanDays days: Int) throws -> Int {
        try c.query(
            """
            WITH old AS (
                DELETE FROM herald.schedule_claims
                 WHERE enqueued_at IS NOT NULL AND claimed_at < now() - make_interval(days => $1::int)
                RETURNING id)
            DELETE FROM herald.schedule_fires f USING old WHERE f.claim_id = old.id
            """, [String(days)]
        ).affected
    }

    static func armed(_ row: [String?]) -> ArmedPlan? {
        guard let id = row[0].flatMap(PlanID.init), let t = row[1].flatMap({ Int64($0) }) else { return nil }
        return ArmedPlan(id: id, nextRunAt: t)
    }
}

/// PostgreSQL array literals for parameters (text format).
enum PGArray {
    static func uuids(_ ids: [PlanID]) -> String { "{" + ids.map(\.description).joined(separator: ",") + "}" }
    static func ints(_ v: [Int64]) -> String { "{" + v.map(String.init).joined(separator: ",") + "}" }
    static func text(_ v: [String]) -> String {
        "{"
            + v.map { s in
                var out = "\""
                for ch in s.unicodeScalars {
                    if ch == "\"" || ch == "\\" { out.append("\\") }
                    out.unicodeScalars.append(ch)
                }
                return out + "\""
            }.joined(separator: ",") + "}"
    }
}
