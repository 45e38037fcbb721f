// A stalled instance cannot hold plans hostage. Instance A claims 200 due plans, and is stopped
// (SIGSTOP) while its claim transaction is open: a test trigger keeps the claim's last statement
// busy for a moment, A is stopped meanwhile, and its session is left `idle in transaction` with
// the plans' row locks. Herald's claim transactions bound that on the server side, so PostgreSQL
// ends A's session within seconds and instance B (whose claims skip locked rows) claims and fires
// the plans. When A resumes, its commit fails: nothing fires twice.

import Foundation
import HeraldCore
import HeraldIO
import XCTest

final class StalledPeerTests: XCTestCase {
    func testAPeerClaimsThePlansOfAnInstanceStoppedInsideItsClaim() throws {
        let (redisURL, _) = try Binary.servers()
        let db = try PrivateDatabase(prefix: "herald_stall")
        let prefix = "st" + UUID().uuidString.lowercased().prefix(8)
        let redis = try RedisClient(endpoint: RedisEndpoint.parse(redisURL))
        var pids: [pid_t] = []
        defer {
            for p in pids {
                kill(p, SIGCONT)
                kill(p, SIGKILL)
                _ = Binary.wait(p, timeout: 5)
            }
            db.drop()
            Binary.deleteKeys(redis, prefix: prefix + ":")
        }
        var env = [
            "HERALD_REDIS_URL": redisURL, "HERALD_DATABASE_URL": db.url, "REDIS_KEY_PREFIX": prefix,
            "HERALD_SWEEP_INTERVAL": "1", "HERALD_LOG_LEVEL": "warning",
        ]
        XCTAssertEqual(try Binary.run(["migrate", "--create-dify-tables"], env: env).status, 0)
        let conn = try PostgresConnection(connInfo: db.info)
        // The first claim recorded sleeps 3 s inside its transaction (once only): time to stop A there.
        try conn.execute(
            script: """
                CREATE TABLE stall_once (used boolean NOT NULL);
                INSERT INTO stall_once VALUES (false);
                CREATE FUNCTION stall_first_claim() RETURNS trigger LANGUAGE plpgsql AS $$
                DECLARE n int;
                BEGIN
                    UPDATE stall_once SET used = true WHERE NOT used;
                    GET DIAGNOSTICS n = ROW_COUNT;
                    IF n > 0 THEN
                        PERFORM pg_sleep(3);
                    END IF;
                    RETURN NEW;
                END $$;
                CREATE TRIGGER stall_first_claim BEFORE INSERT ON herald.schedule_claims
                    FOR EACH ROW EXECUTE FUNCTION stall_first_claim();
                """)
        let n = 200
        try conn.transaction { c in
            let tenant = UUID().uuidString.lowercased()
            try c.query("INSERT INTO tenants (id, name) VALUES ($1, 't')", [tenant])
            try c.query(
                """
                INSERT INTO apps (tenant_id, name, mode, enable_site, enable_api)
                SELECT $1, 'a' || g, 'workflow', true, true FROM generate_series(1, $2::int) g
                """, [tenant, String(n)])
            try c.query(
                """
                INSERT INTO app_triggers (tenant_id, app_id, node_id, trigger_type, title, status, updated_at)
                SELECT $1, id, 'n', 'trigger-schedule', 's', 'enabled', now() AT TIME ZONE 'UTC' FROM apps
                """, [tenant])
            try c.query(
                """
                INSERT INTO workflow_schedule_plans (app_id, node_id, tenant_id, cron_expression, timezone, next_run_at)
                SELECT id, 'n', $1, '0 0 1 1 *', 'UTC', date_trunc('seconds', now() AT TIME ZONE 'UTC') + interval '5 seconds'
                  FROM apps
                """, [tenant])
        }

        env["HERALD_INSTANCE_ID"] = "stall-a"
        env["HERALD_METRICS_ADDR"] = "127.0.0.1:\(Binary.freePort())"
        let a = try Binary.spawn(["run"], env: env, log: NSTemporaryDirectory() + "herald-stall-a-\(UUID()).log")
        pids.append(a)
        // A's claim is inside the trigger's sleep: stop A there.
        try eventually("instance A's claim is in progress", timeout: 20) {
            try conn.query(
                "SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND wait_event = 'PgSleep'", [db.name]
            ).rows.count == 1
        }
        kill(a, SIGSTOP)
        let stoppedAt = Date()
        env["HERALD_INSTANCE_ID"] = "stall-b"
        env["HERALD_METRICS_ADDR"] = "127.0.0.1:\(Binary.freePort())"
        pids.append(try Binary.spawn(["run"], env: env, log: NSTemporaryDirectory() + "herald-stall-b-\(UUID()).log"))

        try eventually("instance B fired every plan while A is stopped", timeout: 40) {
            try conn.query("SELECT count(*) FROM herald.schedule_fire_log WHERE enqueued_at IS NOT NULL").rows[0][0]
                == String(n)
        }
        let tookOver = Date().timeIntervalSince(stoppedAt)
        XCTAssertEqual(
            try conn.query("SELECT DISTINCT claimed_by FROM herald.schedule_fires").rows.map { $0[0] ?? "" },
            ["stall-b"])
        // A resumes: its session is gone, its claim rolled back; nothing is sent twice.
        kill(a, SIGCONT)
        let sweeps = try conn.query("SELECT count(*) FROM herald.schedule_claims").rows[0][0] ?? ""
        Thread.sleep(forTimeInterval: 3)
        XCTAssertEqual(try conn.query("SELECT count(*) FROM herald.schedule_claims").rows[0][0], sweeps)
        guard case .array(let items) = try redis.command(["LRANGE", prefix + ":schedule_executor", "0", "-1"]) else {
            return XCTFail("no queue")
        }
        XCTAssertEqual(items.count, n, "one message per plan")
        print("stalled peer: B fired all \(n) plans \(String(format: "%.1f", tookOver)) s after A was stopped")
    }
}
