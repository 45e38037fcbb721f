// What a newcomer sees: `herald migrate --demo` loads the demo (idempotently),
// and once a demo plan fires, the log and `herald status` show the fire and the
// queue it went to.

import Foundation
import HeraldCore
import HeraldIO
import XCTest

final class DemoStatusTests: XCTestCase {
    func testDemoFiresShowInLogAndStatus() throws {
        let (redisURL, _) = try Binary.servers()
        let db = try PrivateDatabase(prefix: "herald_demo")
        let info = db.info
        let prefix = "demo" + UUID().uuidString.lowercased().prefix(6)
        defer {
            db.drop()
        }
        let port = Binary.freePort()
        let env = [
            "HERALD_REDIS_URL": redisURL,
            "HERALD_DATABASE_URL": db.url,
            "REDIS_KEY_PREFIX": prefix, "HERALD_METRICS_ADDR": "127.0.0.1:\(port)",
        ]
        let first = try Binary.run(["migrate", "--demo"], env: env)
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertTrue(first.stdout.contains("applied 1 dify_schedule_tables"), first.stdout)
        XCTAssertTrue(first.stdout.contains("demo loaded: 2 schedule plans"), first.stdout)
        let second = try Binary.run(["migrate", "--demo"], env: env)
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertTrue(second.stdout.contains("schema up to date"), second.stdout)
        XCTAssertTrue(second.stdout.contains("demo already present"), second.stdout)

        let conn = try PostgresConnection(connInfo: info)
        let zones = try conn.query("SELECT cron_expression, timezone FROM workflow_schedule_plans ORDER BY id").rows
        XCTAssertEqual(zones.map { $0[1] ?? "" }, ["UTC", "Asia/Shanghai"])
        try conn.query(
            """
            UPDATE workflow_schedule_plans SET next_run_at = date_trunc('seconds', now() AT TIME ZONE 'UTC') + interval '2 seconds'
             WHERE id = '00000000-0000-4000-8000-0000000000a1'
            """)
        let log = NSTemporaryDirectory() + "herald-demo-\(UUID()).log"
        let pid = try Binary.spawn(["run"], env: env, log: log)
        defer { kill(pid, SIGTERM); _ = Binary.wait(pid) }
        // The other demo plan (every five minutes) may fire first; wait for the one moved to now.
        try eventually("the demo plan fired", timeout: 20) {
            (try? String(contentsOfFile: log, encoding: .utf8))?.contains("plan=00000000-0000-4000-8000-0000000000a1")
                == true
        }
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertTrue(text.contains("plan=00000000-0000-4000-8000-0000000000a1"), text)
        XCTAssertTrue(text.contains("queue=schedule_executor"), text)
        let status = try Binary.run(["status"], env: env)
        XCTAssertEqual(status.status, 0, status.stderr)
        XCTAssertTrue(status.stdout.contains("fired 00000000-0000-4000-8000-0000000000a1"), status.stdout)
        // Every beat entry, how it runs here and whether it fires.
        XCTAssertTrue(status.stdout.contains("workflow_schedule_task"), status.stdout)
        let json = try Binary.run(["status", "--json"], env: env)
        XCTAssertTrue(
            json.stdout.contains(#"{"task":"human_input_form_timeout","runs":"celery","enabled":false"#), json.stdout)
        XCTAssertTrue(
            json.stdout.contains(#"{"task":"workflow_schedule_task","runs":"native (service)","enabled":true"#),
            json.stdout)
        XCTAssertTrue(status.stdout.contains("-> schedule_executor"), status.stdout)
        XCTAssertTrue(status.stdout.contains("plans armed"), status.stdout)
    }
}
