// Every SQL statement of the trigger refresh. PostgreSQL is the truth: a
// (subscription, due instant) is claimed by inserting it under the primary key of
// herald.trigger_refresh_fires in the transaction that locks the subscription's due
// row (FOR UPDATE SKIP LOCKED) and moves it to its next due instant, judged against
// the database clock. The due rows are kept by a trigger on Dify's table (migration
// 11). Blocking: run it off the loop.

import HeraldCore
import HeraldIO

/// A subscription's due instant as read from the database.
public struct DueSubscription: Sendable, Equatable {
    public var id: PlanID
    /// Unix µs.
    public var dueAt: Int64
}

/// A claimed refresh, to be enqueued.
public struct ClaimedRefresh: Sendable, Equatable {
    public var subscription: PlanID
    public var tenant: String
    /// The due instant, Unix µs.
    public var dueAt: Int64
    /// Fires since the subscription's expiries last moved (1: the first).
    public var attempt: Int

    public init(subscription: PlanID, tenant: String, dueAt: Int64, attempt: Int) {
        self.subscription = subscription
        self.tenant = tenant
        self.dueAt = dueAt
        self.attempt = attempt
    }
}

/// The result of one claim transaction.
public struct RefreshClaim: Sendable {
    public var fires: [ClaimedRefresh] = []
    /// Claimed rows' next due instants (rows that will never be due again are absent).
    public var next: [DueSubscription] = []
    /// Claimed rows with no next due instant.
    public var settled: [PlanID] = []
}

/// The trigger refresh's statements.
public struct TriggerRefreshStore: Sendable {
    public let instanceID: String

    public init(instanceID: String) { self.instanceID = instanceID }

    /// Dify's table.
    public static let subscriptionsTable = "trigger_subscriptions"

    /// The database clock for the statements' bounds: `statement_timestamp()` is stable within a
    /// statement, so the partial index on `due_at` can serve the bound (`clock_timestamp()` is
    /// volatile, and a volatile bound makes PostgreSQL scan the whole table).
    static let now = "(extract(epoch FROM statement_timestamp()) * 1000000)::bigint"

    /// Writes the thresholds in force; when they changed, every due instant is computed again.
    /// Returns the number of rows recomputed.
    @discardableResult
    public func applyThresholds(_ c: PostgresConnection, credentialSeconds: Int, subscriptionSeconds: Int) throws -> Int
    {
        try c.transaction { c in
            let r = try c.query(
                """
                UPDATE herald.trigger_refresh_settings
                   SET credential_threshold_s = $1::int, subscription_threshold_s = $2::int
                 WHERE credential_threshold_s <> $1::int OR subscription_threshold_s <> $2::int
                RETURNING 1
                """, [String(credentialSeconds), String(subscriptionSeconds)])
            guard !r.rows.isEmpty else { return 0 }
            let u = try c.query(
                """
                UPDATE herald.trigger_refresh_due d
                   SET due_at = herald.trigger_refresh_due_at(d.credential_expires_at, d.expires_at, $1::int, $2::int,
                       d.last_fire_at, d.attempt,
                       (d.credential_expires_at, d.expires_at)
                           IS DISTINCT FROM (d.fired_credential_expires_at, d.fired_expires_at))
                RETURNING 1
                """, [String(credentialSeconds), String(subscriptionSeconds)])
            return u.rows.count
        }
    }

    /// Subscriptions due within `horizonSeconds` of the database clock, earliest first.
    public func loadWindow(_ c: PostgresConnection, horizonSeconds: Int, limit: Int) throws -> [DueSubscription] {
        let r = try c.queryPrepared(
            "herald_trigger_window",
            """
            SELECT subscription_id::text, due_at FROM herald.trigger_refresh_due
             WHERE due_at IS NOT NULL AND due_at <= \(Self.now) + $1::bigint * 1000000
             ORDER BY due_at LIMIT $2::int
            """, [String(horizonSeconds), String(limit)])
        return r.rows.compactMap(Self.due)
    }

    /// Subscriptions already due by the database clock (the sweep's fallback), earliest first.
    public func overdue(_ c: PostgresConnection, limit: Int) throws -> [PlanID] {
        let r = try c.queryPrepared(
            "herald_trigger_overdue",
            """
            SELECT subscription_id::text FROM herald.trigger_refresh_due
             WHERE due_at IS NOT NULL AND due_at <= \(Self.now)
             ORDER BY due_at LIMIT $1::int
            """, [String(limit)])
        return r.rows.compactMap { $0[0].flatMap(PlanID.init) }
    }

    /// The due instants of `ids`; subscriptions gone or never due are absent.
    public func read(_ c: PostgresConnection, ids: [PlanID]) throws -> [DueSubscription] {
        let r = try c.queryPrepared(
            "herald_trigger_read",
            """
            SELECT subscription_id::text, due_at FROM herald.trigger_refresh_due
             WHERE subscription_id = ANY($1::uuid[]) AND due_at IS NOT NULL
            """, [Self.uuids(ids)])
        return r.rows.compactMap(Self.due)
    }

    /// Claims those of `ids` due within `leadMicros` by the database clock and not locked by another
    /// instance: each is recorded as fired at its due instant and moved to its next one.
    public func claimDue(_ c: PostgresConnection, ids: [PlanID], leadMicros: Int64) throws -> RefreshClaim {
        try c.transaction { c in
            try c.execute(script: Self.claimSettings)
            let r = try c.queryPrepared(
                "herald_trigger_claim",
                """
                WITH due AS (
                    SELECT d.subscription_id, d.tenant_id, d.due_at, d.credential_expires_at AS c, d.expires_at AS e,
                           CASE WHEN d.last_fire_at IS NOT NULL
                                 AND (d.credential_expires_at, d.expires_at)
                                     IS NOT DISTINCT FROM (d.fired_credential_expires_at, d.fired_expires_at)
                                THEN d.attempt + 1 ELSE 1 END AS attempt
                      FROM herald.trigger_refresh_due d
                     WHERE d.subscription_id = ANY($1::uuid[]) AND d.due_at <= \(Self.now) + $2::bigint
                     FOR UPDATE SKIP LOCKED
                ), fired AS (
                    INSERT INTO herald.trigger_refresh_fires (subscription_id, due_at, tenant_id, attempt, claimed_by)
                    SELECT subscription_id, due_at, tenant_id, attempt, $3 FROM due
                    ON CONFLICT DO NOTHING
                    RETURNING subscription_id, due_at, tenant_id, attempt
                ), advanced AS (
                    UPDATE herald.trigger_refresh_due d
                       SET last_fire_at = u.due_at, attempt = u.attempt,
                           fired_credential_expires_at = u.c, fired_expires_at = u.e,
                           due_at = herald.trigger_refresh_due_at(u.c, u.e, s.credential_threshold_s,
                               s.subscription_threshold_s, u.due_at, u.attempt, false)
                      FROM due u, herald.trigger_refresh_settings s
                     WHERE d.subscription_id = u.subscription_id
                    RETURNING d.subscription_id, d.due_at
                )
                SELECT 'fire', subscription_id::text, due_at, tenant_id::text, attempt FROM fired
                UNION ALL
                SELECT 'next', subscription_id::text, due_at, NULL, NULL FROM advanced
                """, [Self.uuids(ids), String(leadMicros), instanceID])
            var out = RefreshClaim()
            for row in r.rows {
                guard let id = row[1].flatMap(PlanID.init) else { continue }
                if row[0] == "fire" {
                    guard let due = row[2].flatMap({ Int64($0) }), let tenant = row[3] else { continue }
                    out.fires.append(
                        ClaimedRefresh(subscription: id, tenant: tenant, dueAt: due, attempt: Int(row[4] ?? "1") ?? 1))
                } else if let due = row[2].flatMap({ Int64($0) }) {
                    out.next.append(DueSubscription(id: id, dueAt: due))
                } else {
                    out.settled.append(id)
                }
            }
            return out
        }
    }

    /// Records how claimed refreshes ended (`enqueued` or `locked`).
    public func markSent(_ c: PostgresConnection, _ fires: [ClaimedRefresh], outcome: String) throws {
        guard !fires.isEmpty else { return }
        _ = try c.query(
            """
            UPDATE herald.trigger_refresh_fires f SET enqueued_at = now(), outcome = $3
              FROM unnest($1::uuid[], $2::bigint[]) AS x(subscription_id, due_at)
             WHERE f.subscription_id = x.subscription_id AND f.due_at = x.due_at AND f.enqueued_at IS NULL
            """,
            [
                Self.uuids(fires.map(\.subscription)),
                "{" + fires.map { String($0.dueAt) }.joined(separator: ",") + "}",
                outcome,
            ])
    }

    /// Claimed refreshes not recorded as sent `olderThanSeconds` after their claim (their
    /// instance died between claim and push): the sweep sends them again.
    public func unsent(_ c: PostgresConnection, olderThanSeconds: Int, limit: Int) throws -> [ClaimedRefresh] {
        let r = try c.queryPrepared(
            "herald_trigger_unsent",
            """
            SELECT subscription_id::text, tenant_id::text, due_at, attempt FROM herald.trigger_refresh_fires
             WHERE enqueued_at IS NULL AND claimed_at < now() - make_interval(secs => $1::int)
             ORDER BY claimed_at LIMIT $2::int
            """, [String(olderThanSeconds), String(limit)])
        return r.rows.compactMap { row in
            guard let id = row[0].flatMap(PlanID.init), let tenant = row[1], let due = row[2].flatMap({ Int64($0) })
            else { return nil }
            return ClaimedRefresh(subscription: id, tenant: tenant, dueAt: due, attempt: Int(row[3] ?? "1") ?? 1)
        }
    }

    /// Deletes fire records older than `days`.
    public func pruneFires(_ c: PostgresConnection, olderThanDays days: Int) throws -> Int {
        let r = try c.query(
            """
            DELETE FROM herald.trigger_refresh_fires
             WHERE enqueued_at IS NOT NULL AND claimed_at < now() - make_interval(days => $1::int) RETURNING 1
            """, [String(days)])
        return r.rows.count
    }

    static let claimSettings = """
        SET LOCAL idle_in_transaction_session_timeout = '5s'; SET LOCAL lock_timeout = '5s';
        SET LOCAL statement_timeout = '60s'
        """

    static func due(_ row: [String?]) -> DueSubscription? {
        guard let id = row[0].flatMap(PlanID.init), let due = row[1].flatMap({ Int64($0) }) else { return nil }
        return DueSubscription(id: id, dueAt: due)
    }

    static func uuids(_ ids: [PlanID]) -> String { "{" + ids.map(\.description).joined(separator: ",") + "}" }
}
