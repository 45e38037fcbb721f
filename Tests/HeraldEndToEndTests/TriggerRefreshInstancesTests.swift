// The trigger refresh across three `herald run` processes, one killed with SIGKILL
// while refreshes fall due, and a real Celery worker acting as Dify's executor (it
// goes on only while the publisher's lock is present). 300 subscriptions fall due
// within half a minute: each reaches the worker once, never before its due instant;
// the subscriptions that never expire never do. The lateness is printed, not asserted.

import Foundation
import HeraldCore
import HeraldIO
import XCTest

final class TriggerRefreshInstancesTests: XCTestCase {
    func testThreeInstancesRefreshEachDueSubscriptionOnceDespiteSIGKILL() throws {
        let (redisURL, _) = try Binary.servers()
        let python = try Binary.python()
        let database = try PrivateDatabase(prefix: "herald_refresh")
        let prefix = "refresh" + UUID().uuidString.lowercased().prefix(8)
        let redis = try RedisClient(endpoint: RedisEndpoint.parse(redisURL))
        defer {
            database.drop()
            Binary.deleteKeys(redis, prefix: prefix + ":")
        }
        var env = [
            "HERALD_REDIS_URL": redisURL, "HERALD_DATABASE_URL": database.url, "REDIS_KEY_PREFIX": prefix,
            "HERALD_SWEEP_INTERVAL": "1", "HERALD_SCHEDULE_RESEND_AFTER": "1", "HERALD_LOG_LEVEL": "warning",
            "ENABLE_TRIGGER_PROVIDER_REFRESH_TASK": "true",
        ]
        let migrate = try Binary.run(["migrate", "--create-dify-tables"], env: env)
        XCTAssertEqual(migrate.status, 0, migrate.stderr)
        let conn = try PostgresConnection(connInfo: database.info)
        let tenant = UUID().uuidString.lowercased()
        // 300 credentials due 12 to 41 s from now, ten at each second; 20 that never expire.
        let inserted = try conn.query(
            """
            INSERT INTO trigger_subscriptions (name, tenant_id, user_id, provider_id, endpoint_id, parameters,
                properties, credentials, credential_type, credential_expires_at, expires_at, visibility)
            SELECT 'sub-' || g, $1::uuid, $1::uuid, 'langgenius/gmail/gmail', gen_random_uuid()::text, '{}', '{}',
                   '{}', 'oauth2',
                   CASE WHEN g <= 300 THEN extract(epoch FROM now())::int + 3600 + 12 + (g % 30) ELSE -1 END,
                   -1, 'all_team_members'
              FROM generate_series(1, 320) g
            RETURNING id::text, credential_expires_at
            """, [tenant])
        let due = Set(inserted.rows.filter { $0[1] != "-1" }.map { $0[0]! })
        let never = Set(inserted.rows.filter { $0[1] == "-1" }.map { $0[0]! })
        XCTAssertEqual(due.count, 300)

        let worker = try CeleryWorkerProcess(
            python: python, broker: redisURL, keyPrefix: prefix + ":", queues: ["trigger_refresh_executor"])
        defer { worker.stop() }
        var pids: [pid_t] = []
        defer { for p in pids { kill(p, SIGKILL); _ = Binary.wait(p, timeout: 5) } }
        for i in 0..<3 {
            env["HERALD_INSTANCE_ID"] = "refresh-\(i)"
            env["HERALD_METRICS_ADDR"] = "127.0.0.1:\(Binary.freePort())"
            pids.append(
                try Binary.spawn(
                    ["run"], env: env, log: NSTemporaryDirectory() + "herald-refresh-\(i)-\(UUID()).log"))
        }
        // Kill an instance that has claimed refreshes, while more fall due.
        var victim = 0
        try eventually("40 refreshes claimed", timeout: 60) {
            let rows = try conn.query(
                "SELECT claimed_by, count(*) FROM herald.trigger_refresh_fires GROUP BY 1 ORDER BY 2 DESC"
            ).rows
            let total = rows.reduce(0) { $0 + (Int($1[1] ?? "0") ?? 0) }
            if total >= 40, let top = rows.first?[0] { victim = Int(top.split(separator: "-").last ?? "0") ?? 0 }
            return total >= 40
        }
        kill(pids[victim], SIGKILL)
        _ = Binary.wait(pids[victim])

        try eventually("the worker ran 300 refreshes", timeout: 90) { worker.records().count >= 300 }
        Thread.sleep(forTimeInterval: 3)  // room for a duplicate to show
        let ran = worker.records()
        let subscriptions = ran.compactMap { ($0["kwargs"] as? [String: String])?["subscription_id"] }
        XCTAssertEqual(subscriptions.count, 300, "worker log: \(worker.logText.suffix(1500))")
        XCTAssertEqual(Set(subscriptions), due, "each due subscription once")
        XCTAssertTrue(Set(subscriptions).isDisjoint(with: never), "-1 never fires")
        XCTAssertTrue(ran.allSatisfy { $0["lock_present"] as? Bool == true }, "Dify's executor found its lock")

        let fires = try conn.query("SELECT subscription_id::text, due_at, claimed_by FROM herald.trigger_refresh_fires")
            .rows
        let dueAt = Dictionary(uniqueKeysWithValues: fires.map { ($0[0]!, Double($0[1]!)! / 1e6) })
        let byVictim = fires.filter { $0[2] == "refresh-\(victim)" }.count
        var lateness: [Double] = []
        for r in ran {
            guard let s = (r["kwargs"] as? [String: String])?["subscription_id"], let at = r["at"] as? Double,
                let d = dueAt[s]
            else { continue }
            XCTAssertGreaterThanOrEqual(at, d, "ran before its due instant")
            lateness.append(at - d)
        }
        lateness.sort()
        let within = lateness.filter { $0 <= 1 }.count
        print(
            "trigger refresh, 3 instances, one SIGKILLed (it had claimed \(byVictim)): 300 due, due -> worker ran "
                + "p50 \(lateness[lateness.count / 2]) s, p99 \(lateness[lateness.count * 99 / 100]) s, "
                + "max \(lateness.last ?? 0) s; \(within) within 1 s")
    }
}
