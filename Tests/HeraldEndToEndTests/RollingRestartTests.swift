// A rolling restart of three `herald run` processes while plans fall due every
// second: each instance stopped with SIGTERM drains (it claims nothing more and
// pushes what it had claimed, up to the lead ahead, at its instant), so no fire
// waits for a peer's sweep: every fire reaches the queue within a second of its time.

import Foundation
import HeraldCore
import HeraldIO
import XCTest

final class RollingRestartTests: XCTestCase {
    func testRollingRestartOfThreeInstancesDelaysNoFireByMoreThanASecond() throws {
        let (redisURL, _) = try Binary.servers()
        let database = try PrivateDatabase(prefix: "herald_roll")
        let (info, url) = (database.info, database.url)
        let prefix = "roll" + UUID().uuidString.lowercased().prefix(8)
        let redis = try RedisClient(endpoint: RedisEndpoint.parse(redisURL))
        defer {
            database.drop()
            Binary.deleteKeys(redis, prefix: prefix + ":")
        }
        // A long resend delay: a fire left to a peer's sweep would be at least 30 s late.
        var env = [
            "HERALD_REDIS_URL": redisURL, "HERALD_DATABASE_URL": url, "REDIS_KEY_PREFIX": prefix,
            "HERALD_SWEEP_INTERVAL": "5", "HERALD_SCHEDULE_RESEND_AFTER": "30", "HERALD_LOG_LEVEL": "info",
        ]
        let migrate = try Binary.run(["migrate", "--create-dify-tables"], env: env)
        XCTAssertEqual(migrate.status, 0, migrate.stderr)

        // 20 plans due every second, from 6 s to 35 s from now; each fires once.
        let seconds = 30, perSecond = 20
        let conn = try PostgresConnection(connInfo: info)
        try conn.transaction { c in
            let tenant = UUID().uuidString.lowercased()
            try c.query("INSERT INTO tenants (id, name) VALUES ($1, 't')", [tenant])
            try c.query(
                """
                INSERT INTO apps (tenant_id, name, mode, enable_site, enable_api)
                SELECT $1, 'a' || g, 'workflow', true, true FROM generate_series(1, $2::int) g
                """,
                [tenant, String(seconds * perSecond)])
            try c.query(
                """
                INSERT INTO app_triggers (tenant_id, app_id, node_id, trigger_type, title, status, updated_at)
                SELECT $1, id, 'n', 'trigger-schedule', 's', 'enabled', now() AT TIME ZONE 'UTC' FROM apps
                """, [tenant])
            try c.query(
                """
                INSERT INTO workflow_schedule_plans (app_id, node_id, tenant_id, cron_expression, timezone, next_run_at)
                SELECT id, 'n', $1, '0 0 1 1 *', 'UTC',
                       date_trunc('seconds', now() AT TIME ZONE 'UTC') + make_interval(secs => 6 + (row_number() OVER (ORDER BY id) - 1) / $2)
                  FROM apps
                """, [tenant, String(perSecond)])
        }

        var pids: [pid_t?] = [nil, nil, nil]
        defer { for case let p? in pids { kill(p, SIGKILL); _ = Binary.wait(p, timeout: 5) } }
        var logs: [String] = []
        func start(_ i: Int, generation: Int) throws {
            env["HERALD_INSTANCE_ID"] = "roll-\(i)-\(generation)"
            env["HERALD_METRICS_ADDR"] = "127.0.0.1:\(Binary.freePort())"
            let log = NSTemporaryDirectory() + "herald-roll-\(i)-\(generation)-\(UUID()).log"
            logs.append(log)
            pids[i] = try Binary.spawn(["run"], env: env, log: log)
        }
        for i in 0..<3 { try start(i, generation: 0) }
        try eventually("the first fires", timeout: 20) {
            try conn.query("SELECT count(*) FROM herald.schedule_fires").rows[0][0] != "0"
        }
        // Restart each instance in turn, one every few seconds, while plans keep falling due.
        for i in 0..<3 {
            let pid = try XCTUnwrap(pids[i])
            kill(pid, SIGTERM)
            XCTAssertNotNil(Binary.wait(pid, timeout: 15), "instance \(i) stops on SIGTERM")
            pids[i] = nil
            try start(i, generation: 1)
            Thread.sleep(forTimeInterval: 4)
        }
        let total = seconds * perSecond
        try eventually("every fire enqueued", timeout: 40) {
            let r = try conn.query("SELECT count(*), count(enqueued_at) FROM herald.schedule_fire_log")
            return r.rows[0][0] == String(total) && r.rows[0][1] == String(total)
        }
        let lateness = try conn.query(
            """
            SELECT max(extract(epoch FROM enqueued_at) - extract(epoch FROM scheduled_at)),
                   count(*) FILTER (WHERE extract(epoch FROM enqueued_at) - extract(epoch FROM scheduled_at) > 1)
              FROM herald.schedule_fire_log
            """
        ).rows[0]
        let worst = Double(lateness[0] ?? "") ?? .infinity
        let drained = logs.compactMap { try? String(contentsOfFile: $0, encoding: .utf8) }
            .filter { $0.contains("schedules drained") }.count
        print("rolling restart: \(total) fires; worst lateness \(worst) s; \(drained) instances drained")
        XCTAssertEqual(lateness[1], "0", "fires more than a second late (worst \(worst) s)")
        XCTAssertEqual(drained, 3, "each stopped instance drained its schedules")
        guard case .integer(let queued) = try redis.command(["LLEN", prefix + ":schedule_executor"]) else {
            return XCTFail("no queue")
        }
        XCTAssertEqual(queued, Int64(total), "one message per fire")
    }
}
