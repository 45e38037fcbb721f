// The TiDB pool task in the built daemon, end to end: a copy of the default topology fires
// create_tidb_serverless_task every 3 s against a stand-in TiDB Cloud API that always fails
// (Tests/Support/fake_tidb_api.py, real Digest authentication). The tick's run gives up after 5
// calls, the tidb_api breaker opens (in /metrics), the next runs defer without a call, and the
// daemon's own log, at debug level, never shows the private key.

import Foundation
import HeraldCore
import HeraldIO
import XCTest

final class TiDBDaemonTests: XCTestCase {
    func testFailingAPIOpensTheBreakerAndThePrivateKeyStaysOutOfTheLog() throws {
        let (redisURL, _) = try Binary.servers()
        let database = try PrivateDatabase(prefix: "herald_tidb")
        let prefix = "tidb" + UUID().uuidString.lowercased().prefix(8)
        let redis = try RedisClient(endpoint: RedisEndpoint.parse(redisURL))
        defer {
            database.drop()
            Binary.deleteKeys(redis, prefix: prefix + ":")
        }
        let publicKey = "pub-e2e"
        let privateKey = "PRIVATE-" + UUID().uuidString.replacingOccurrences(of: "-", with: "")

        // The stand-in API, failing every call.
        let dir = NSTemporaryDirectory() + "herald-tidb-e2e-\(UUID())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var python = "/usr/bin/python3"
        if let py = Binary.env["HERALD_TEST_PYTHON"], FileManager.default.isExecutableFile(atPath: py) { python = py }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/fake_tidb_api.py").path
        let argv = [
            python, script, "--port-file", dir + "/port", "--user", publicKey, "--password", privateKey, "--fail",
            "1000000",
        ]
        var apiPID: pid_t = 0
        let cArgs = argv.map { strdup($0) } + [nil]
        XCTAssertEqual(posix_spawn(&apiPID, python, nil, nil, cArgs, environ), 0)
        cArgs.forEach { free($0) }
        defer {
            kill(apiPID, SIGTERM)
            _ = Binary.wait(apiPID)
        }
        var apiPort = ""
        try eventually("the stand-in TiDB API listens") {
            apiPort = (try? String(contentsOfFile: dir + "/port", encoding: .utf8)) ?? ""
            return !apiPort.isEmpty
        }
        func batchCreateCalls() throws -> Int {
            let r = try HTTPClient.get("http://127.0.0.1:\(apiPort)/_stats")
            let stats = try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any]
            return (stats?["calls"] as? [String: Int])?["batch_create"] ?? -1
        }

        // The default topology, with the create task every 3 s.
        let topologyPath = dir + "/topology.json"
        var topology = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "topology/default.json")))
                as? [String: Any])
        topology["tasks"] = (topology["tasks"] as? [[String: Any]] ?? []).map { task in
            var t = task
            if t["name"] as? String == "create_tidb_serverless_task" { t["schedule"] = ["every_minutes": 0.05] }
            return t
        }
        try JSONSerialization.data(withJSONObject: topology).write(to: URL(fileURLWithPath: topologyPath))

        let port = Binary.freePort()
        let env = [
            "HERALD_REDIS_URL": redisURL, "HERALD_DATABASE_URL": database.url, "REDIS_KEY_PREFIX": prefix,
            "HERALD_TOPOLOGY": topologyPath, "HERALD_LOG_LEVEL": "debug", "HERALD_METRICS_ADDR": "127.0.0.1:\(port)",
            "ENABLE_CREATE_TIDB_SERVERLESS_TASK": "true", "CREATE_TIDB_SERVICE_JOB_ENABLED": "true",
            "TIDB_API_URL": "http://127.0.0.1:\(apiPort)", "TIDB_PUBLIC_KEY": publicKey, "TIDB_PRIVATE_KEY": privateKey,
        ]
        let migrate = try Binary.run(["migrate", "--create-dify-tables"], env: env)
        XCTAssertEqual(migrate.status, 0, migrate.stderr)

        let log = dir + "/herald.log"
        let pid = try Binary.spawn(["run"], env: env, log: log)
        var metrics = ""
        defer {
            kill(pid, SIGKILL)
            _ = Binary.wait(pid)
        }
        let task = "create_tidb_serverless_task"
        try eventually("a run deferred by the open breaker", timeout: 90) {
            metrics = String(decoding: try HTTPClient.get("http://127.0.0.1:\(port)/metrics").body, as: UTF8.self)
            return sample(metrics, "herald_task_runs_total", ["task": task, "status": "skipped"]) >= 1
        }
        XCTAssertEqual(sample(metrics, "herald_circuit_state", ["dependency": "tidb_api"]), 2)
        XCTAssertGreaterThanOrEqual(sample(metrics, "herald_task_runs_total", ["task": task, "status": "failed"]), 1)
        // The failed tick: 3 tries in the run and 2 in the executor's retry; the deferred run: none.
        XCTAssertEqual(sample(metrics, "herald_tidb_api_errors_total", ["call": "batch_create"]), 5)
        XCTAssertEqual(try batchCreateCalls(), 5)
        XCTAssertEqual(
            Int(
                try PostgresConnection(connInfo: database.info).query("SELECT count(*) FROM tidb_auth_bindings").rows[
                    0][0] ?? ""),
            0)

        kill(pid, SIGTERM)
        XCTAssertEqual(Binary.wait(pid, timeout: 30), 0)
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertTrue(text.contains("circuit opened"), "the daemon's log was read")
        XCTAssertTrue(text.contains("TIDB") || text.contains("tidb"), "the TiDB run is in the log")
        XCTAssertFalse(text.contains(privateKey), "the private key reached the daemon's log")
        XCTAssertFalse(
            ((try? String(contentsOfFile: log + ".out", encoding: .utf8)) ?? "").contains(privateKey))
    }
}
