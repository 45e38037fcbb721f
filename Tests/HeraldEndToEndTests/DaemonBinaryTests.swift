// End to end: the built binary, started and driven from outside. Events go in
// through Redis and PostgreSQL, and what comes out is read from /metrics,
// /healthz, `herald status` and the exit codes.

import Foundation
import HeraldCore
import HeraldIO
import XCTest

final class DaemonBinaryTests: XCTestCase {
    /// A daemon's settings on a private, migrated database (dropped after the test): a database
    /// Herald has not migrated keeps it not ready, as it should.
    func daemonEnv(metricsPort: Int, extra: [String: String] = [:], migrate: Bool = true) throws -> [String: String] {
        let (r, _) = try Binary.servers()
        let db = try PrivateDatabase(prefix: "herald_bin")
        addTeardownBlock { db.drop() }
        var env = [
            "HERALD_REDIS_URL": r, "HERALD_DATABASE_URL": db.url, "HERALD_METRICS_ADDR": "127.0.0.1:\(metricsPort)",
            "HERALD_SWEEP_INTERVAL": "30", "HERALD_LOG_FORMAT": "logfmt", "HERALD_INSTANCE_ID": "e2e",
        ]
        env.merge(extra) { _, new in new }
        if migrate {
            let result = try Binary.run(["migrate", "--create-dify-tables"], env: env)
            XCTAssertEqual(result.status, 0, result.stderr)
        }
        return env
    }

    /// Health tells the truth: not ready (503, `herald status` exit 1) with the reason when the
    /// schema is behind this build or the topology is missing; a schema ahead of it is refused at
    /// start (exit 1, nothing run).
    func testHealthNamesAnUnmigratedSchemaAndAMissingTopologyAndASchemaAheadIsRefused() throws {
        let (r, _) = try Binary.servers()
        let db = try PrivateDatabase(prefix: "herald_health")
        defer { db.drop() }
        let port = Binary.freePort()
        var env = [
            "HERALD_REDIS_URL": r, "HERALD_DATABASE_URL": db.url, "HERALD_METRICS_ADDR": "127.0.0.1:\(port)",
            "HERALD_TOPOLOGY": "/nonexistent/topology.json",
        ]
        let log = NSTemporaryDirectory() + "herald-e2e-health-\(UUID().uuidString).log"
        let pid = try Binary.spawn(["run"], env: env, log: log)
        defer {
            kill(pid, SIGKILL)
            _ = Binary.wait(pid)
            try? FileManager.default.removeItem(atPath: log)
        }
        var body = ""
        try eventually("healthz names both problems") {
            let h = try HTTPClient.get("http://127.0.0.1:\(port)/healthz")
            body = String(decoding: h.body, as: UTF8.self)
            return h.status == 503 && body.contains("database schema is at version 0")
                && body.contains("topology file not found")
        }
        let status = try Binary.run(["status"], env: env)
        XCTAssertEqual(status.status, 1, status.stdout)
        XCTAssertTrue(status.stdout.contains("NOT READY  database schema is at version 0"), status.stdout)
        kill(pid, SIGKILL)
        _ = Binary.wait(pid)

        // Migrated, then marked by a newer Herald: this build refuses it.
        env["HERALD_TOPOLOGY"] = nil
        XCTAssertEqual(try Binary.run(["migrate", "--create-dify-tables"], env: env).status, 0)
        try PostgresConnection(connInfo: db.info).query(
            "INSERT INTO herald.schema_migrations (version, name) VALUES (999, 'from_the_future')")
        let ahead = try Binary.run(["run"], env: env)
        XCTAssertEqual(ahead.status, 1, ahead.stderr)
        XCTAssertTrue(ahead.stderr.contains("newer than this build"), ahead.stderr)
    }

    func testDaemonConsumesEventsAndReportsThem() throws {
        let port = Binary.freePort()
        let env = try daemonEnv(metricsPort: port)
        let log = NSTemporaryDirectory() + "herald-e2e-run-\(UUID().uuidString).log"
        let pid = try Binary.spawn(["run"], env: env, log: log)
        var stopped = false
        defer {
            if !stopped { kill(pid, SIGKILL); _ = Binary.wait(pid) }
        }
        let base = "http://127.0.0.1:\(port)"
        try eventually("healthz 200") { try HTTPClient.get(base + "/healthz").status == 200 }

        // Drive it from outside: the CLI publishes, SQL NOTIFYs, a key expires, and a bad payload arrives.
        let id = UUID().uuidString.lowercased()
        let pub = try Binary.run(["publish", "schedule", id, "--run-now"], env: env)
        XCTAssertEqual(pub.status, 0, pub.stderr)
        XCTAssertTrue(pub.stdout.contains("1 subscriber"), pub.stdout)
        let pg = try PostgresConnection(connInfo: PostgresConnInfo(env["HERALD_DATABASE_URL"]!))
        try pg.query(
            "SELECT pg_notify('herald_events', $1)", ["{\"table\":\"app_triggers\",\"op\":\"INSERT\",\"id\":\"\(id)\"}"]
        )
        let redis = try RedisClient(endpoint: RedisEndpoint.parse(env["HERALD_REDIS_URL"]!))
        try redis.command(["SET", "herald:expiry:e2e:\(id)", "1", "PX", "20"])
        try redis.command(["PUBLISH", "task_schedule_events", "{\"schedule_id\": 7}"])

        try eventually("metrics count every event") {
            let m = String(decoding: try HTTPClient.get(base + "/metrics").body, as: UTF8.self)
            return sample(m, "herald_events_total", ["source": "redis_pubsub", "outcome": "accepted"]) == 1
                && sample(m, "herald_events_total", ["source": "redis_pubsub", "outcome": "rejected"]) == 1
                && sample(m, "herald_events_total", ["source": "postgres_notify", "outcome": "accepted"]) == 1
                && sample(m, "herald_events_total", ["source": "redis_expiry", "outcome": "accepted"]) == 1
        }
        let metrics = String(decoding: try HTTPClient.get(base + "/metrics").body, as: UTF8.self)
        for source in ["redis_subscriber", "redis_command", "postgres_listener"] {
            XCTAssertEqual(sample(metrics, "herald_source_up", ["source": source]), 1, source)
        }
        XCTAssertGreaterThanOrEqual(sample(metrics, "herald_sweeps_total", ["reason": "startup"]), 1)
        // Every documented series exists from the start, before its first event: the task series of
        // every topology task, the schedule error counters.
        let lines = metrics.split(separator: "\n")
        for status in ["succeeded", "failed", "skipped"] {
            XCTAssertTrue(
                lines.contains {
                    $0.hasPrefix("herald_task_runs_total{") && $0.contains("task=\"clean_messages\"")
                        && $0.contains("status=\"\(status)\"")
                }, "herald_task_runs_total for clean_messages/\(status) at start")
        }
        XCTAssertTrue(lines.contains { $0.hasPrefix("herald_task_duration_seconds_count{task=\"clean_messages\"}") })
        XCTAssertTrue(lines.contains { $0.hasPrefix("herald_schedule_errors_total{operation=\"claim\"}") })
        XCTAssertEqual(sample(metrics, "herald_circuit_state", ["dependency": "billing_api"]), 0)
        XCTAssertTrue(lines.contains { $0.hasPrefix("herald_circuit_state{dependency=\"mail\"}") })

        let health = try HTTPClient.get(base + "/healthz")
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(health.body)) as? [String: Any])
        XCTAssertEqual(json["status"] as? String, "ok")
        XCTAssertEqual(json["instance"] as? String, "e2e")
        let circuits = try XCTUnwrap(json["circuits"] as? [String: Any])
        XCTAssertEqual((circuits["billing_api"] as? [String: Any])?["state"] as? String, "closed")
        let version = try Binary.run(["--version"])
        XCTAssertEqual(version.status, 0)
        let v = version.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(v.split(separator: ".").count == 3, v)
        XCTAssertEqual(json["version"] as? String, v)
        XCTAssertEqual(sample(metrics, "herald_build_info", ["version": v]), 1)

        let status = try Binary.run(["status"], env: env)
        XCTAssertEqual(status.status, 0, status.stderr)
        XCTAssertTrue(status.stdout.contains("redis_subscriber"), status.stdout)
        XCTAssertTrue(status.stdout.contains("ready"), status.stdout)
        XCTAssertTrue(status.stdout.contains("sweep"), status.stdout)

        // SIGHUP reloads; SIGTERM stops gracefully with exit code 0.
        kill(pid, SIGHUP)
        try eventually("reload counted") {
            sample(String(decoding: try HTTPClient.get(base + "/metrics").body, as: UTF8.self), "herald_reloads_total")
                == 1
        }
        kill(pid, SIGTERM)
        let code = Binary.wait(pid)
        stopped = true
        XCTAssertEqual(code, 0)
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertTrue(output.contains("msg=\"herald stopped\""), output)
        XCTAssertTrue(output.contains("msg=\"event rejected\""), output)
        XCTAssertFalse(output.contains("password"), "no secret-bearing field is logged")
    }

    func testSIGHUPReloadsAValidTopologyAndKeepsTheCurrentOneWhenInvalid() throws {
        let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("topology/default.json")
        let file = NSTemporaryDirectory() + "herald-topology-\(UUID()).json"
        try FileManager.default.copyItem(atPath: shipped.path, toPath: file)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let port = Binary.freePort()
        let env = try daemonEnv(metricsPort: port, extra: ["HERALD_TOPOLOGY": file])
        let log = NSTemporaryDirectory() + "herald-e2e-hup-\(UUID().uuidString).log"
        let pid = try Binary.spawn(["run"], env: env, log: log)
        defer { kill(pid, SIGKILL); _ = Binary.wait(pid) }
        try eventually("healthz answers") { try HTTPClient.get("http://127.0.0.1:\(port)/healthz").status == 200 }
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

        try Data("{\"tasks\": [".utf8).write(to: URL(fileURLWithPath: file))
        kill(pid, SIGHUP)
        try eventually("invalid topology refused") {
            logText().contains("topology not reloaded; keeping the current one")
        }

        try FileManager.default.removeItem(atPath: file)
        try FileManager.default.copyItem(atPath: shipped.path, toPath: file)
        kill(pid, SIGHUP)
        try eventually("valid topology reloaded") { logText().contains("msg=\"SIGHUP: topology reloaded\"") }
        XCTAssertEqual(try HTTPClient.get("http://127.0.0.1:\(port)/healthz").status, 200, "the daemon keeps running")
    }

    func testHealthIs503WhileASourceIsDown() throws {
        let port = Binary.freePort()
        let deadPort = Binary.freePort()
        let env = try daemonEnv(
            metricsPort: port,
            extra: ["HERALD_DATABASE_URL": "postgresql://postgres:topsecret@127.0.0.1:\(deadPort)/x"],
            migrate: false)
        let log = NSTemporaryDirectory() + "herald-e2e-down-\(UUID().uuidString).log"
        let pid = try Binary.spawn(["run"], env: env, log: log)
        defer { kill(pid, SIGKILL); _ = Binary.wait(pid) }
        let base = "http://127.0.0.1:\(port)"
        try eventually("healthz answers 503") { try HTTPClient.get(base + "/healthz").status == 503 }
        let json = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(try HTTPClient.get(base + "/healthz").body)) as? [String: Any])
        XCTAssertEqual(json["status"] as? String, "degraded")
        let sources = try XCTUnwrap(json["sources"] as? [String: String])
        XCTAssertNotEqual(sources["postgres_listener"], "ready")
        // The reason names the source and its address, never the password.
        try eventually("the problem names the listener's address") {
            let text = String(decoding: try HTTPClient.get(base + "/healthz").body, as: UTF8.self)
            return text.contains("postgres_listener") && text.contains("port=\(deadPort)")
                && !text.contains("topsecret")
        }
        try eventually("redis sources up regardless") {
            sources["redis_subscriber"] == "ready"
                || (try? HTTPClient.get(base + "/healthz")).map {
                    String(decoding: $0.body, as: UTF8.self).contains("\"redis_subscriber\":\"ready\"")
                } == true
        }
        // While a source is down the sweep runs every second.
        try eventually("degraded sweeps", timeout: 10) {
            sample(
                String(decoding: try HTTPClient.get(base + "/metrics").body, as: UTF8.self), "herald_sweeps_total",
                ["reason": "interval"]) >= 2
        }
        let m = String(decoding: try HTTPClient.get(base + "/metrics").body, as: UTF8.self)
        XCTAssertEqual(sample(m, "herald_source_up", ["source": "postgres_listener"]), 0)
        let status = try Binary.run(["status"], env: env)
        XCTAssertEqual(status.status, 1, "status exits 1 while degraded")
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertFalse(output.contains("topsecret"), "the password never reaches the log")
    }

    func testBadSettingsAndArgumentsExitTwo() throws {
        let bad = try Binary.run(["run"], env: ["HERALD_SWEEP_INTERVAL": "soon", "HERALD_METRICS_ADDR": "off"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("HERALD_SWEEP_INTERVAL"), bad.stderr)
        let secret = try Binary.run(["run"], env: ["HERALD_REDIS_URL": "rediss://:hunter2@h:1/0"])
        XCTAssertEqual(secret.status, 2)
        XCTAssertTrue(secret.stderr.contains("HERALD_REDIS_URL"), secret.stderr)
        XCTAssertFalse(secret.stderr.contains("hunter2"))
        // Task settings are checked at start too, not when the task first runs (the process exits
        // before it connects anywhere).
        let topology = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("topology/default.json").path
        for (key, value) in [
            ("ENABLE_CLEAN_MESSAGES", "maybe"), ("CELERY_BEAT_SCHEDULER_TIME", "abc"), ("MAIL_TYPE", "x"),
            ("SMTP_PORT", "99999999"), ("SANDBOX_EXPIRED_RECORDS_CLEAN_BATCH_SIZE", "abc"),
            ("PLAN_SANDBOX_CLEAN_DAY_SETTING", "-3"), ("HERALD_ENABLE_CLEAN_MESSAGES", "perhaps"),
        ] {
            var env = ["HERALD_TOPOLOGY": topology, "HERALD_METRICS_ADDR": "off", key: value]
            if key == "SMTP_PORT" { env.merge(["MAIL_TYPE": "smtp", "SMTP_SERVER": "mail"]) { $1 } }
            let r = try Binary.run(["run"], env: env)
            XCTAssertEqual(r.status, 2, "\(key)=\(value): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("invalid setting") && r.stderr.contains(key), "\(key): \(r.stderr)")
        }
        let badID = try Binary.run(["publish", "schedule", "not-a-uuid"])
        XCTAssertEqual(badID.status, 2, "usage error")
        XCTAssertEqual(try Binary.run(["publish", "schedule"]).status, 2, "missing argument")
        XCTAssertEqual(try Binary.run(["no-such-command"]).status, 2, "unknown subcommand")
        XCTAssertTrue(badID.stderr.contains("UUID"), badID.stderr)
        for cmd in [
            ["--help"], ["run", "--help"], ["publish", "schedule", "--help"], ["status", "--help"],
            ["cron", "next", "--help"],
        ] {
            let r = try Binary.run(cmd)
            XCTAssertEqual(r.status, 0, cmd.joined(separator: " "))
            XCTAssertTrue(r.stdout.contains("USAGE"), cmd.joined(separator: " "))
        }
    }

    /// The probe's smaller gaps: a control character in the instance id does not reach the terminal
    /// through `herald status`; an unusable metrics address says so (not "Success"); a topology path
    /// naming a device is called what it is.
    func testStatusEscapesControlCharactersAndOddPathsAreNamed() throws {
        let port = Binary.freePort()
        let env = try daemonEnv(
            metricsPort: port, extra: ["HERALD_INSTANCE_ID": "box\u{1b}[2Jclear", "HERALD_TOPOLOGY": "/dev/zero"])
        let log = NSTemporaryDirectory() + "herald-e2e-gaps-\(UUID().uuidString).log"
        let pid = try Binary.spawn(["run"], env: env, log: log)
        defer {
            kill(pid, SIGKILL)
            _ = Binary.wait(pid)
            try? FileManager.default.removeItem(atPath: log)
        }
        try eventually("healthz answers") { try HTTPClient.get("http://127.0.0.1:\(port)/healthz").status > 0 }
        let status = try Binary.run(["status"], env: env)
        XCTAssertFalse(status.stdout.contains("\u{1b}"), "an escape character reached the terminal")
        XCTAssertTrue(status.stdout.contains("box\\u{1b}[2Jclear"), status.stdout)
        try eventually("the topology problem is logged") {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("topology is not a regular file")
        }

        var bad = env
        bad["HERALD_METRICS_ADDR"] = "999.1.1.1:9473"
        bad["HERALD_TOPOLOGY"] = "topology/default.json"
        let bind = try Binary.run(["run"], env: bad)
        XCTAssertNotEqual(bind.status, 0)
        XCTAssertTrue(bind.stderr.contains("cannot resolve or use this address"), bind.stderr)
        XCTAssertFalse(bind.stderr.contains("Success"), bind.stderr)
    }

    /// `herald migrate` names its target (never the password), lists pending steps with --status,
    /// and refuses a database without Dify's tables unless asked to create look-alikes of them.
    func testMigrateNamesItsTargetAndRefusesADatabaseWithoutDifysTables() throws {
        let (r, _) = try Binary.servers()
        let db = try PrivateDatabase(prefix: "herald_mig")
        defer { db.drop() }
        var info = db.info
        info["password"] = "migrate-secret"
        let env = [
            "HERALD_REDIS_URL": r, "HERALD_DATABASE_URL": info.pairs.map { "\($0.0)=\($0.1)" }.joined(separator: " "),
        ]
        let status = try Binary.run(["migrate", "--status"], env: env)
        XCTAssertEqual(status.status, 0, status.stderr)
        XCTAssertTrue(status.stdout.contains("target: ") && status.stdout.contains("dbname=\(db.name)"), status.stdout)
        XCTAssertTrue(status.stdout.contains("pending 1 dify_schedule_tables"), status.stdout)
        XCTAssertFalse(status.stdout.contains("migrate-secret"))

        if Binary.env["HERALD_TEST_SCHEMA"] != "dify" {
            let refused = try Binary.run(["migrate"], env: env)
            XCTAssertEqual(refused.status, 1, refused.stdout)
            for table in ["tenants", "apps", "app_triggers", "workflow_schedule_plans"] {
                XCTAssertTrue(refused.stderr.contains(table), refused.stderr)
            }
            XCTAssertTrue(refused.stderr.contains("--create-dify-tables"), refused.stderr)
            XCTAssertEqual(
                try PostgresConnection(connInfo: db.info).query("SELECT to_regnamespace('herald') IS NULL").rows.first?[
                    0],
                "t", "nothing was created")
        }
        let created = try Binary.run(["migrate", "--create-dify-tables"], env: env)
        XCTAssertEqual(created.status, 0, created.stderr)
        XCTAssertFalse((created.stdout + created.stderr).contains("migrate-secret"))
        let after = try Binary.run(["migrate", "--status"], env: env)
        XCTAssertFalse(after.stdout.contains("pending"), after.stdout)
        // On a Dify database (the tables exist) plain `migrate` is enough.
        XCTAssertEqual(try Binary.run(["migrate"], env: env).status, 0)
    }

    func testCronNextPrintsInstantsWithOffsets() throws {
        let r = try Binary.run([
            "cron", "next", "30 2 * * *", "--tz", "America/New_York", "--from", "2026-03-07T12:00:00Z", "--count", "3",
        ])
        XCTAssertEqual(r.status, 0, r.stderr)
        // 2026-03-08 is the spring-forward day: 02:30 does not exist and fires at 03:00 EDT.
        XCTAssertEqual(
            r.stdout.split(separator: "\n"),
            ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"])
        let bad = try Binary.run(["cron", "next", "61 * * * *"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("minute"), bad.stderr)
    }
}
