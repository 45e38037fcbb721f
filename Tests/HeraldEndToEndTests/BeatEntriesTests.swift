// Dify's beat entries that Herald runs as `celery` tasks, end to end: three
// `herald run` processes on the default topology (with the trigger refresh and the
// queue monitor as `celery`, Dify's tasks, instead of native), one killed with SIGKILL, and a
// real Celery worker that registers Dify's task names. Every tick that falls due
// reaches the worker once, with Dify's task name and queue, and no tick is missed.

import Foundation
import HeraldCore
import HeraldIO
import XCTest

final class BeatEntriesTests: XCTestCase {
    /// The entries the test makes fire every few seconds: (task, Celery name, queue, interval seconds).
    static let entries: [(task: String, celery: String, queue: String, seconds: Int)] = [
        ("human_input_form_timeout", "human_input_form_timeout.check_and_resume", "schedule_executor", 3),
        (
            "trigger_provider_refresh_task", "schedule.trigger_provider_refresh_task.trigger_provider_refresh",
            "trigger_refresh_publisher", 3
        ),
        ("queue_monitor_task", "schedule.queue_monitor_task.queue_monitor_task", "monitor", 3),
        (
            "update_api_token_last_used_task",
            "schedule.update_api_token_last_used_task.batch_update_api_token_last_used", "api_token", 6
        ),
    ]

    func testThreeInstancesEnqueueEachBeatTickOnceDespiteSIGKILL() throws {
        let (redisURL, _) = try Binary.servers()
        let python = try Binary.python()
        let database = try PrivateDatabase(prefix: "herald_beat")
        let (info, url) = (database.info, database.url)
        let prefix = "beat" + UUID().uuidString.lowercased().prefix(8)
        let redis = try RedisClient(endpoint: RedisEndpoint.parse(redisURL))
        defer {
            database.drop()
            Binary.deleteKeys(redis, prefix: prefix + ":")
        }
        var env = [
            "HERALD_REDIS_URL": redisURL, "HERALD_DATABASE_URL": url, "REDIS_KEY_PREFIX": prefix,
            "HERALD_SWEEP_INTERVAL": "1", "HERALD_SCHEDULE_RESEND_AFTER": "1", "HERALD_LOG_LEVEL": "warning",
            // Dify's own flag stays off (as a Dify that still runs its beat would have it); the
            // HERALD_ name turns the entry on for Herald alone.
            "ENABLE_HUMAN_INPUT_TIMEOUT_TASK": "false", "HERALD_ENABLE_HUMAN_INPUT_TIMEOUT_TASK": "true",
            "HERALD_HUMAN_INPUT_TIMEOUT_TASK_INTERVAL": "0.05",
            "HERALD_ENABLE_TRIGGER_PROVIDER_REFRESH_TASK": "true", "TRIGGER_PROVIDER_REFRESH_INTERVAL": "0.05",
            "ENABLE_DATASETS_QUEUE_MONITOR": "true", "QUEUE_MONITOR_INTERVAL": "0.05",
            "HERALD_ENABLE_API_TOKEN_LAST_USED_UPDATE_TASK": "true", "API_TOKEN_LAST_USED_UPDATE_INTERVAL": "0.1",
        ]
        // trigger_provider_refresh_task and queue_monitor_task run natively by default; here as an
        // operator keeping Dify's tasks would run them: `run: celery` in a copy of the default topology.
        let topologyPath = NSTemporaryDirectory() + "herald-beat-topology-\(UUID()).json"
        var topology = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "topology/default.json")))
                as? [String: Any])
        topology["tasks"] = (topology["tasks"] as? [[String: Any]] ?? []).map { task in
            var t = task
            if ["trigger_provider_refresh_task", "queue_monitor_task"].contains(t["name"] as? String ?? "") {
                t["run"] = "celery"
            }
            return t
        }
        try JSONSerialization.data(withJSONObject: topology).write(to: URL(fileURLWithPath: topologyPath))
        defer { try? FileManager.default.removeItem(atPath: topologyPath) }
        env["HERALD_TOPOLOGY"] = topologyPath
        let migrate = try Binary.run(["migrate", "--create-dify-tables"], env: env)
        XCTAssertEqual(migrate.status, 0, migrate.stderr)

        let worker = try CeleryWorkerProcess(
            python: python, broker: redisURL, keyPrefix: prefix + ":",
            queues: Set(Self.entries.map(\.queue)).sorted())
        defer { worker.stop() }

        var pids: [pid_t] = []
        var ports: [Int] = []
        defer { for p in pids { kill(p, SIGKILL); _ = Binary.wait(p, timeout: 5) } }
        for i in 0..<3 {
            env["HERALD_INSTANCE_ID"] = "beat-\(i)"
            let port = Binary.freePort()
            ports.append(port)
            env["HERALD_METRICS_ADDR"] = "127.0.0.1:\(port)"
            pids.append(
                try Binary.spawn(["run"], env: env, log: NSTemporaryDirectory() + "herald-beat-\(i)-\(UUID()).log"))
        }
        let conn = try PostgresConnection(connInfo: info)
        // Kill the instance that claimed the second tick of the first entry, once it has.
        var claimer: String?
        try eventually("two ticks claimed", timeout: 30) {
            let rows = try conn.query(
                """
                SELECT claimed_by FROM herald.task_ticks WHERE task = 'human_input_form_timeout' ORDER BY tick_at
                """
            ).rows
            claimer = rows.count >= 2 ? rows[1][0] ?? nil : nil
            return claimer != nil
        }
        let victim = Int(claimer?.split(separator: "-").last ?? "0") ?? 0
        kill(pids[victim], SIGKILL)
        _ = Binary.wait(pids[victim])
        let killedAt = Date()
        // Let every entry fire several more times with two instances left.
        try eventually("ticks after the kill", timeout: 40) {
            let n = try conn.query(
                """
                SELECT count(*) FROM herald.task_ticks WHERE task = 'update_api_token_last_used_task'
                   AND tick_at > to_timestamp($1::double precision) AT TIME ZONE 'UTC'
                """, [String(killedAt.timeIntervalSince1970 + 1)]
            ).rows[0][0]
            return Int(n ?? "0") ?? 0 >= 2
        }
        // Every tick claimed so far reaches the broker while the survivors run: a tick the victim
        // claimed but never pushed is sent again by a survivor's sweep.
        try eventually("every tick claimed before the last seconds enqueued", timeout: 30) {
            let r = try conn.query(
                """
                SELECT count(*) FROM herald.task_ticks
                 WHERE run_mode = 'celery' AND enqueued_at IS NULL AND claimed_at < now() - interval '3 seconds'
                """)
            return r.rows[0][0] == "0"
        }
        var metrics = ""
        for (i, port) in ports.enumerated() where i != victim {
            metrics += String(decoding: try HTTPClient.get("http://127.0.0.1:\(port)/metrics").body, as: UTF8.self)
        }
        for (i, p) in pids.enumerated() where i != victim {
            kill(p, SIGTERM)
            XCTAssertNotNil(Binary.wait(p, timeout: 20), "instance \(i) stops on SIGTERM")
        }
        pids.removeAll()
        // A tick claimed while the survivors were stopping is left to the next instance that
        // starts: one with hourly intervals (so that it claims no new tick here) sends it.
        var sweeperEnv = env
        sweeperEnv["HERALD_INSTANCE_ID"] = "beat-sweeper"
        sweeperEnv["HERALD_METRICS_ADDR"] = "127.0.0.1:\(Binary.freePort())"
        for key in [
            "HERALD_HUMAN_INPUT_TIMEOUT_TASK_INTERVAL", "TRIGGER_PROVIDER_REFRESH_INTERVAL", "QUEUE_MONITOR_INTERVAL",
            "API_TOKEN_LAST_USED_UPDATE_INTERVAL",
        ] {
            sweeperEnv[key] = "60"
        }
        pids.append(
            try Binary.spawn(
                ["run"], env: sweeperEnv, log: NSTemporaryDirectory() + "herald-beat-sweeper-\(UUID()).log"))
        try eventually("every claimed tick enqueued", timeout: 30) {
            let r = try conn.query(
                "SELECT count(*) FROM herald.task_ticks WHERE run_mode = 'celery' AND enqueued_at IS NULL")
            return r.rows[0][0] == "0"
        }
        kill(pids[0], SIGTERM)
        XCTAssertNotNil(Binary.wait(pids[0], timeout: 20), "the sweeper stops on SIGTERM")
        pids.removeAll()

        let ticks = try conn.query(
            """
            SELECT task, extract(epoch FROM tick_at)::bigint FROM herald.task_ticks WHERE run_mode = 'celery' ORDER BY 1, 2
            """
        ).rows
        let claimed = Dictionary(
            grouping: ticks.compactMap { r in r[0].flatMap { t in r[1].flatMap { Int64($0) }.map { (t, $0) } } },
            by: \.0
        ).mapValues { $0.map(\.1) }
        let expected = claimed.values.reduce(0) { $0 + $1.count }
        try eventually("the worker ran every tick", timeout: 30) {
            worker.records().filter { $0["event"] as? String == "ran" }.count >= expected
        }
        let records = worker.records()
        XCTAssertEqual(records.filter { $0["event"] as? String != "ran" }.count, 0, "\(records)\n\(worker.logText)")
        for entry in Self.entries {
            let ticksOfEntry = try XCTUnwrap(claimed[entry.task], "\(entry.task) never ticked")
            XCTAssertGreaterThanOrEqual(ticksOfEntry.count, 3, entry.task)
            // Once per tick and none missed: consecutive multiples of the interval.
            for (a, b) in zip(ticksOfEntry, ticksOfEntry.dropFirst()) {
                XCTAssertEqual(b - a, Int64(entry.seconds), "\(entry.task): ticks \(a) and \(b)")
            }
            let ran = records.filter { $0["task"] as? String == entry.celery }
            XCTAssertEqual(ran.count, ticksOfEntry.count, "\(entry.task): one message per tick")
            XCTAssertEqual(
                Set(ran.compactMap { $0["id"] as? String }).count, ran.count, "\(entry.task): no duplicate id")
            XCTAssertEqual(Set(ran.compactMap { $0["routing_key"] as? String }), [entry.queue], entry.task)
            XCTAssertTrue(
                metrics.contains("herald_task_runs_total{task=\"\(entry.task)\",status=\"succeeded\"}")
                    || metrics.contains("herald_task_runs_total{status=\"succeeded\",task=\"\(entry.task)\"}"),
                "\(entry.task) counted in herald_task_runs_total")
        }
        print("beat entries: killed beat-\(victim); ticks per entry \(claimed.mapValues(\.count))")
    }
}
