// Several `herald run` processes on one database and Redis: every (plan,
// scheduled time) reaches the Celery queue exactly once, even when one of them
// is killed with SIGKILL in the middle of a burst.

import Foundation
import HeraldCore
import HeraldIO
import XCTest

final class MultiInstanceTests: XCTestCase {
    func testThreeInstancesEnqueueEachFireExactlyOnceDespiteSIGKILL() throws {
        let (redisURL, _) = try Binary.servers()
        let db = try PrivateDatabase(prefix: "herald_multi")
        let info = db.info
        let url = db.url
        let prefix = "mi" + UUID().uuidString.lowercased().prefix(8)
        let redis = try RedisClient(endpoint: RedisEndpoint.parse(redisURL))
        defer {
            db.drop()
            Binary.deleteKeys(redis, prefix: prefix + ":")
        }
        var env = [
            "HERALD_REDIS_URL": redisURL, "HERALD_DATABASE_URL": url, "REDIS_KEY_PREFIX": prefix,
            "HERALD_SWEEP_INTERVAL": "1", "HERALD_SCHEDULE_RESEND_AFTER": "2", "HERALD_LOG_LEVEL": "warning",
        ]
        let migrate = try Binary.run(["migrate", "--create-dify-tables"], env: env)
        XCTAssertEqual(migrate.status, 0, migrate.stderr)

        let n = 10_000
        let conn = try PostgresConnection(connInfo: info)
        try conn.transaction { c in
            let tenant = UUID().uuidString.lowercased()
            try c.query("INSERT INTO tenants (id, name) VALUES ($1, 't')", [tenant])
            try c.query(
                """
                INSERT INTO apps (tenant_id, name, mode, enable_site, enable_api)
                SELECT $1, 'a' || g, 'workflow', true, true FROM generate_series(1, $2::int) g
                """,
                [tenant, String(n)])
            try c.query(
                """
                INSERT INTO app_triggers (tenant_id, app_id, node_id, trigger_type, title, status, updated_at)
                SELECT $1, id, 'n', 'trigger-schedule', 's', 'enabled', now() AT TIME ZONE 'UTC' FROM apps
                """, [tenant])
            try c.query(
                """
                INSERT INTO workflow_schedule_plans (app_id, node_id, tenant_id, cron_expression, timezone, next_run_at)
                SELECT id, 'n', $1, '0 0 1 1 *', 'UTC', date_trunc('seconds', now() AT TIME ZONE 'UTC') + interval '4 seconds' FROM apps
                """, [tenant])
        }

        var pids: [pid_t] = []
        defer { for p in pids { kill(p, SIGKILL); _ = Binary.wait(p, timeout: 5) } }
        for i in 0..<3 {
            env["HERALD_INSTANCE_ID"] = "multi-\(i)"
            env["HERALD_METRICS_ADDR"] = "127.0.0.1:\(Binary.freePort())"
            pids.append(
                try Binary.spawn(["run"], env: env, log: NSTemporaryDirectory() + "herald-multi-\(i)-\(UUID()).log"))
        }
        let queue = prefix + ":schedule_executor"
        // Kill the instance that claims first, as soon as the burst has started.
        var first: String?
        try eventually("the burst starts", timeout: 20) {
            first = try conn.query("SELECT claimed_by FROM herald.schedule_fires LIMIT 1").rows.first?[0] ?? nil
            return first != nil
        }
        let victim = Int(first?.split(separator: "-").last ?? "0") ?? 0
        kill(pids[victim], SIGKILL)
        _ = Binary.wait(pids[victim])
        let claimedAtKill = try conn.query("SELECT count(*) FROM herald.schedule_fires").rows[0][0] ?? "?"
        try eventually("every fire claimed and enqueued", timeout: 60) {
            let r = try conn.query("SELECT count(*), count(enqueued_at) FROM herald.schedule_fire_log")
            return r.rows[0][0] == String(n) && r.rows[0][1] == String(n)
        }
        let fired = try conn.query("SELECT task_id::text, claimed_by FROM herald.schedule_fires").rows
        XCTAssertEqual(fired.count, n)
        guard case .array(let items) = try redis.command(["LRANGE", queue, "0", "-1"]) else {
            return XCTFail("no queue")
        }
        let ids: [String] = items.compactMap { v in
            guard case .string(let b) = v, let obj = try? JSONSerialization.jsonObject(with: Data(b)) as? [String: Any],
                let headers = obj["headers"] as? [String: Any]
            else { return nil }
            return headers["id"] as? String
        }
        XCTAssertEqual(ids.count, n, "exactly one message per fire")
        XCTAssertEqual(Set(ids).count, n, "no duplicate task ids")
        XCTAssertEqual(Set(ids), Set(fired.compactMap { $0[0] }))
        let claimers = Dictionary(grouping: fired.compactMap { $0[1] }, by: { $0 }).mapValues(\.count)
        print(
            "multi-instance: \(n) fires; killed multi-\(victim) when \(claimedAtKill) were claimed; claims per instance \(claimers)"
        )
        let plansLeft = try conn.query(
            "SELECT count(*) FROM workflow_schedule_plans WHERE next_run_at < now() AT TIME ZONE 'UTC'")
        XCTAssertEqual(plansLeft.rows[0][0], "0")
    }
}
