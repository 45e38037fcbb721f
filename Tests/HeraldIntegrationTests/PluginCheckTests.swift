// Plugin upgrade checks against real PostgreSQL (Dify's strategies table, on both
// schemas), real Redis, a real Celery worker with Dify's task signature (it reads the
// manifest from the snapshot cache, as Dify's task does) and a local stand-in of the
// marketplace. Two instances run: each enabled strategy is released once, not before
// its time of day, disabled ones never; the manifest is fetched at most once per
// 15-minute window and cached as Dify caches it; a failing marketplace is retried and
// the tenants waiting for it are released once it answers.

import Foundation
import HeraldCore
import HeraldIO
import HeraldRuntime
import HeraldTasks
import XCTest

final class PluginCheckTests: XCTestCase {
    private struct Marketplace {
        let pid: pid_t
        let dir: String
        let port: String
        var requests: [[String: Any]] {
            let text = (try? String(contentsOfFile: dir + "/requests.jsonl", encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }
        func stop() {
            kill(pid, SIGTERM)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    private func marketplace(failing: Int) throws -> Marketplace {
        let python = try FakeBillingServer.python()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/fake_marketplace.py").path
        let dir = NSTemporaryDirectory() + "herald-marketplace-\(UUID())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var pid: pid_t = 0
        let argv = [
            python, script, "--out", dir + "/requests.jsonl", "--port-file", dir + "/port", "--fail", String(failing),
        ]
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        XCTAssertEqual(posix_spawn(&pid, python, nil, nil, cArgs, environ), 0)
        var port = ""
        try waitUntil("the stand-in marketplace listens") {
            port = (try? String(contentsOfFile: dir + "/port", encoding: .utf8)) ?? ""
            return !port.isEmpty
        }
        return Marketplace(pid: pid, dir: dir, port: port)
    }

    /// Inserts a strategy due `inSeconds` from now (its UTC time of day); returns (tenant, time of day).
    private func addStrategy(
        _ conn: PostgresConnection, inSeconds: Int, setting: String = "fix_only", mode: String = "exclude",
        exclude: String = "[]", include: String = "[]", timeOfDay: Int? = nil
    ) throws -> (tenant: String, timeOfDay: Int) {
        let tenant = UUID().uuidString.lowercased()
        let r = try conn.query(
            """
            INSERT INTO tenant_plugin_auto_upgrade_strategies
                (tenant_id, strategy_setting, upgrade_time_of_day, upgrade_mode, exclude_plugins, include_plugins)
            VALUES ($1, $2, coalesce($3::int, ((extract(epoch FROM now())::bigint + $4::int) % 86400)::int), $5,
                    $6::json, $7::json)
            RETURNING upgrade_time_of_day
            """, [tenant, setting, timeOfDay.map(String.init), String(inSeconds), mode, exclude, include])
        return (tenant, Int(r.rows[0][0]!)!)
    }

    private func run(
        failing: Int
    ) throws -> (
        worker: [[String: Any]], enabled: [(tenant: String, timeOfDay: Int)], disabled: String,
        marketplace: [[String: Any]], fixture: ScheduleFixture, metric: Double
    ) {
        let env = ProcessInfo.processInfo.environment
        guard let python = env["HERALD_TEST_PYTHON"] else {
            if env["HERALD_TEST_REQUIRE_SERVERS"] == "1" { XCTFail("HERALD_TEST_PYTHON is not set") }
            throw XCTSkip("no Python venv with celery")
        }
        let (redisURL, _) = try TestServers.require()
        Circuits.shared.reset()
        let fixture = try ScheduleFixture()
        let market = try marketplace(failing: failing)
        defer { market.stop() }
        let worker = try CeleryWorkerProcess(
            python: python, broker: redisURL, keyPrefix: fixture.keyPrefix + ":", queues: ["plugin"])
        defer { worker.stop() }
        let conn = fixture.conn
        var enabled: [(tenant: String, timeOfDay: Int)] = []
        for (i, s) in [4, 5, 5, 7, 9].enumerated() {
            enabled.append(
                try addStrategy(
                    conn, inSeconds: s, setting: i % 2 == 0 ? "fix_only" : "latest",
                    mode: i == 1 ? "partial" : "exclude",
                    exclude: i == 0 ? #"["langgenius/openai"]"# : "[]", include: i == 1 ? #"["a/b", "c/d"]"# : "[]"))
        }
        let disabled = try addStrategy(conn, inSeconds: 6, setting: "disabled").tenant
        _ = try addStrategy(conn, inSeconds: 0, timeOfDay: 90_000)  // never a time of day: skipped

        var denv = fixture.env
        denv["ENABLE_CHECK_UPGRADABLE_PLUGIN_TASK"] = "true"
        denv["MARKETPLACE_API_URL"] = "http://127.0.0.1:\(market.port)/"
        denv["HERALD_SWEEP_INTERVAL"] = "3600"
        var harnesses: [DaemonHarness] = []
        defer { for h in harnesses { h.stop() } }
        for i in 0..<2 {
            denv["HERALD_INSTANCE_ID"] = "plugins-\(i)"
            let h = try DaemonHarness(env: denv)
            harnesses.append(h)
            try waitUntil("instance \(i) armed", timeout: 20) {
                (h.daemon.pluginChecks.map { s in h.loop.sync { s.armedCount } } ?? 0) == enabled.count
            }
        }
        // One more, changed after the start: armed through NOTIFY.
        enabled.append(try addStrategy(conn, inSeconds: 8))
        try waitUntil("the worker ran \(enabled.count) checks", timeout: 60) {
            worker.records().count >= enabled.count || !worker.isRunning
        }
        Thread.sleep(forTimeInterval: 2)  // room for a duplicate to show
        let metric = harnesses.reduce(0.0) {
            $0 + $1.metric("herald_plugin_check_total", ["outcome": "manifest_failed"])
        }
        return (worker.records(), enabled, disabled, market.requests, fixture, metric)
    }

    func testEachEnabledStrategyIsReleasedOnceAtItsTimeAfterTheManifestIsCached() throws {
        let r = try run(failing: 0)
        defer { r.fixture.drop() }
        let tenants = r.worker.compactMap { ($0["args"] as? [Any])?.first as? String }
        XCTAssertEqual(tenants.count, r.enabled.count, "\(r.worker)")
        XCTAssertEqual(Set(tenants), Set(r.enabled.map(\.tenant)), "each enabled strategy once")
        XCTAssertFalse(tenants.contains(r.disabled), "a disabled strategy never")
        XCTAssertTrue(r.worker.allSatisfy { $0["routing_key"] as? String == "plugin" })
        var lateness: [Double] = []
        for record in r.worker {
            let args = record["args"] as? [Any] ?? []
            guard let tenant = args.first as? String, let s = r.enabled.first(where: { $0.tenant == tenant }),
                let at = record["at"] as? Double
            else { continue }
            XCTAssertEqual(args.count, 6, "Dify's positional args")
            XCTAssertEqual(args[2] as? Int, s.timeOfDay)
            let due = (at - at.truncatingRemainder(dividingBy: 86_400)) + Double(s.timeOfDay)
            let dueAt = due > at + 43_200 ? due - 86_400 : due
            XCTAssertGreaterThanOrEqual(at, dueAt, "released before its time")
            lateness.append(at - dueAt)
            XCTAssertTrue(
                (record["snapshot"] as? String)?.contains(#""plugin_id":"langgenius/openai""#) == true,
                "Dify's task found the manifest cached")
        }
        let first = try XCTUnwrap(r.worker.first { ($0["args"] as? [Any])?.first as? String == r.enabled[0].tenant })
        XCTAssertEqual((first["args"] as? [Any])?[4] as? [String], ["langgenius/openai"])
        let second = try XCTUnwrap(r.worker.first { ($0["args"] as? [Any])?.first as? String == r.enabled[1].tenant })
        XCTAssertEqual((second["args"] as? [Any])?[1] as? String, "latest")
        XCTAssertEqual((second["args"] as? [Any])?[3] as? String, "partial")
        XCTAssertEqual((second["args"] as? [Any])?[5] as? [String], ["a/b", "c/d"])

        let windows = Set(r.enabled.map { $0.timeOfDay / 900 })
        XCTAssertGreaterThanOrEqual(r.marketplace.count, 1)
        XCTAssertLessThanOrEqual(r.marketplace.count, windows.count, "at most one fetch per window: \(r.marketplace)")
        XCTAssertTrue(r.marketplace.allSatisfy { $0["dify_version"] as? String == "1.14.2" })
        let redis = try TestServers.redis()
        let key = r.fixture.keyPrefix + ":plugin_autoupgrade_check_task:cached_plugin_snapshot:langgenius/openai"
        guard case .string(let cached) = try redis.command(["GET", key]) else { return XCTFail("no snapshot cached") }
        XCTAssertEqual(
            String(decoding: cached, as: UTF8.self),
            #"{"org":"langgenius","name":"openai","latest_version":"0.2.7","latest_package_identifier":"langgenius/openai:0.2.7@abc","latest_package_url":"https://example.invalid/openai","plugin_id":"langgenius/openai"}"#
        )
        guard case .integer(let ttl) = try redis.command(["TTL", key]) else { return XCTFail("no TTL") }
        XCTAssertTrue((3_500...3_600).contains(ttl), "one hour: \(ttl)")
        let quoted = r.fixture.keyPrefix + #":plugin_autoupgrade_check_task:cached_plugin_snapshot:acme/quo"te"#
        guard case .string(let q) = try redis.command(["GET", quoted]) else { return XCTFail("no acme snapshot") }
        XCTAssertTrue(String(decoding: q, as: UTF8.self).contains(#""name":"quo\"te""#))
        guard
            case .integer(let broken) = try redis.command([
                "EXISTS", r.fixture.keyPrefix + ":plugin_autoupgrade_check_task:cached_plugin_snapshot:broken/7",
            ])
        else { return XCTFail() }
        XCTAssertEqual(broken, 0, "an entry without string fields is skipped")
        lateness.sort()
        print(
            "plugin checks: \(r.enabled.count) tenants, 2 instances: time of day -> worker ran p50 \(lateness[lateness.count / 2]) s, max \(lateness.last ?? 0) s; manifest fetched \(r.marketplace.count) time(s)"
        )
    }

    func testAFailingMarketplaceIsRetriedAndTheWaitingTenantsReleasedOnce() throws {
        let r = try run(failing: 2)
        defer { r.fixture.drop() }
        let tenants = r.worker.compactMap { ($0["args"] as? [Any])?.first as? String }
        XCTAssertEqual(tenants.count, r.enabled.count, "\(r.worker)")
        XCTAssertEqual(Set(tenants), Set(r.enabled.map(\.tenant)), "each once, after the marketplace answered")
        XCTAssertGreaterThanOrEqual(r.marketplace.count, 3, "two failures, then the fetch that worked")
        XCTAssertGreaterThanOrEqual(r.metric, 1, "the failed fetches are counted")
        XCTAssertTrue(r.worker.allSatisfy { ($0["snapshot"] as? String) != nil }, "released only once cached")
        let breaker = Circuits.shared.states.first { $0.dependency == Circuits.marketplaceAPI }
        XCTAssertEqual(breaker?.state, .closed, "the marketplace's breaker saw the failures and closed again")
    }
}
