// The trigger refresh against real PostgreSQL (Dify's trigger_subscriptions, on both
// schemas), real Redis and a real Celery worker that behaves as Dify's executor (it
// goes on only while the publisher's lock is present, then deletes it). Two
// instances run; every due subscription reaches the queue once, not before its due
// instant; `-1` never fires; a changed credential is re-armed by NOTIFY, not a sweep;
// a refresh that did not move the expiry waits a minute before the next try.

import Foundation
import HeraldCore
import HeraldIO
import HeraldRuntime
import HeraldTasks
import XCTest

final class TriggerRefreshTests: XCTestCase {
    /// Inserts `n` subscriptions whose credential is due `dueIn` seconds from now (threshold 3600).
    private func addSubscriptions(
        _ conn: PostgresConnection, tenant: String, _ n: Int, credentialDueIn: Int?, expiresAt: String = "-1"
    ) throws -> [String] {
        let cred = credentialDueIn.map { "(extract(epoch FROM now())::int + 3600 + \($0))" } ?? "-1"
        let r = try conn.query(
            """
            INSERT INTO trigger_subscriptions (name, tenant_id, user_id, provider_id, endpoint_id, parameters,
                properties, credentials, credential_type, credential_expires_at, expires_at, visibility)
            SELECT 'sub-' || g || '-' || gen_random_uuid(), $1::uuid, $1::uuid, 'langgenius/github/github',
                   gen_random_uuid()::text, '{}', '{}', '{}', 'oauth2', \(cred), \(expiresAt), 'all_team_members'
              FROM generate_series(1, $2::int) g
            RETURNING id::text
            """, [tenant, String(n)])
        return r.rows.map { $0[0]! }
    }

    func testDueSubscriptionsAreEnqueuedOnceBehindDifysLockAndNeverLoop() throws {
        let env = ProcessInfo.processInfo.environment
        guard let python = env["HERALD_TEST_PYTHON"] else {
            if env["HERALD_TEST_REQUIRE_SERVERS"] == "1" { XCTFail("HERALD_TEST_PYTHON is not set") }
            throw XCTSkip("no Python venv with celery")
        }
        let (redisURL, _) = try TestServers.require()
        let fixture = try ScheduleFixture()
        defer { fixture.drop() }
        let worker = try CeleryWorkerProcess(
            python: python, broker: redisURL, keyPrefix: fixture.keyPrefix + ":", queues: ["trigger_refresh_executor"])
        defer { worker.stop() }

        // 200 due within 4 to 8 s, 10 that never expire, 1 due in an hour (changed below).
        let conn = fixture.conn
        var due: [String] = []
        for second in 4...8 { due += try addSubscriptions(conn, tenant: fixture.tenant, 40, credentialDueIn: second) }
        let never = try addSubscriptions(conn, tenant: fixture.tenant, 10, credentialDueIn: nil)
        let later = try addSubscriptions(conn, tenant: fixture.tenant, 1, credentialDueIn: 3600)[0]

        var denv = fixture.env
        denv["ENABLE_TRIGGER_PROVIDER_REFRESH_TASK"] = "true"
        denv["HERALD_SWEEP_INTERVAL"] = "3600"  // the start-up sweep only: timers and events must do it
        var harnesses: [DaemonHarness] = []
        defer { for h in harnesses { h.stop() } }
        for i in 0..<2 {
            denv["HERALD_INSTANCE_ID"] = "trigger-\(i)"
            let h = try DaemonHarness(env: denv)
            harnesses.append(h)
            try waitUntil("instance \(i) up with subscriptions armed", timeout: 20) {
                h.allUp && h.metric("herald_trigger_refresh_errors_total") == 0
                    && (h.daemon.triggerRefresh.map { s in h.loop.sync { s.armedCount } } ?? 0) > 0
            }
        }

        // A changed credential is re-armed through NOTIFY: now due in 3 s instead of an hour.
        try conn.query(
            "UPDATE trigger_subscriptions SET credential_expires_at = extract(epoch FROM now())::int + 3603 WHERE id = $1",
            [later])
        due.append(later)

        try waitUntil("the worker ran \(due.count) refreshes", timeout: 60) {
            worker.records().count >= due.count || !worker.isRunning
        }
        Thread.sleep(forTimeInterval: 2)  // room for a duplicate to show
        let ran = worker.records()
        XCTAssertEqual(ran.count, due.count, "worker log: \(worker.logText.suffix(1500))")
        let ranSubscriptions = ran.compactMap { ($0["kwargs"] as? [String: String])?["subscription_id"] }
        XCTAssertEqual(ranSubscriptions.count, Set(ranSubscriptions).count, "no subscription refreshed twice")
        XCTAssertEqual(Set(ranSubscriptions), Set(due), "every due subscription, and only those")
        XCTAssertTrue(Set(ranSubscriptions).isDisjoint(with: never), "-1 never fires")
        XCTAssertTrue(ran.allSatisfy { $0["lock_present"] as? Bool == true }, "Dify's executor found its lock")
        XCTAssertTrue(ran.allSatisfy { ($0["kwargs"] as? [String: String])?["tenant_id"] == fixture.tenant })
        XCTAssertTrue(ran.allSatisfy { $0["routing_key"] as? String == "trigger_refresh_executor" })

        // Never before the due instant (the worker's clock and the database's are this host's).
        let dueAt = Dictionary(
            uniqueKeysWithValues: try conn.query(
                "SELECT subscription_id::text, due_at, claimed_by FROM herald.trigger_refresh_fires"
            ).rows.map { ($0[0]!, (Double($0[1]!)! / 1e6, $0[2]!)) })
        XCTAssertEqual(Set(dueAt.keys), Set(due))
        var lateness: [Double] = []
        for r in ran {
            guard let s = (r["kwargs"] as? [String: String])?["subscription_id"], let at = r["at"] as? Double,
                let d = dueAt[s]
            else { continue }
            XCTAssertGreaterThanOrEqual(at, d.0, "ran before its due instant")
            lateness.append(at - d.0)
        }
        XCTAssertEqual(Set(dueAt.values.map(\.1)).count, 2, "both instances claimed some")
        lateness.sort()
        print(
            "trigger refresh: \(due.count) due, 2 instances: due -> worker ran p50 \(lateness[lateness.count / 2]) s, "
                + "max \(lateness.last ?? 0) s")

        // The executor did not move the expiries: each waits a minute (then 2, 4 …) for its next try.
        let next = try conn.query(
            """
            SELECT count(*) FILTER (WHERE due_at - last_fire_at = 60000000 AND attempt = 1), count(*)
              FROM herald.trigger_refresh_due WHERE subscription_id = ANY($1::uuid[])
            """, ["{" + due.joined(separator: ",") + "}"]
        ).rows[0]
        XCTAssertEqual(next[0], String(due.count), "next try a minute after an unmoved refresh")
        let outcomes = harnesses.reduce(0.0) { $0 + $1.metric("herald_trigger_refresh_total", ["outcome": "enqueued"]) }
        XCTAssertEqual(Int(outcomes), due.count)

        // A refresh that moved the expiry: re-armed at half the new credential's life, not at once.
        let one = due[0]
        try conn.query(
            "UPDATE trigger_subscriptions SET credential_expires_at = extract(epoch FROM now())::int + 3600 WHERE id = $1",
            [one])
        let moved = try conn.query(
            """
            SELECT (due_at - last_fire_at) / 1000000, attempt FROM herald.trigger_refresh_due WHERE subscription_id = $1
            """, [one]
        ).rows[0]
        XCTAssertEqual(moved[1], "0")
        XCTAssertGreaterThanOrEqual(Int(moved[0]!)!, 1790, "half of a one-hour credential's life")
    }
}
