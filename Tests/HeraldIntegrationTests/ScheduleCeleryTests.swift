// The daemon's schedule fires, consumed by a real Celery 5 worker with Dify's
// task registered: every message must be accepted and run exactly once, with
// the ids and arguments Herald recorded in PostgreSQL.

import Foundation
import HeraldCelery
import HeraldCore
import XCTest

final class ScheduleCeleryTests: XCTestCase {
    func testRealCeleryWorkerRunsEveryFireExactlyOnce() throws {
        let env = ProcessInfo.processInfo.environment
        guard let python = env["HERALD_TEST_PYTHON"] else {
            if env["HERALD_TEST_REQUIRE_SERVERS"] == "1" { XCTFail("HERALD_TEST_PYTHON is not set") }
            throw XCTSkip("no Python venv with celery")
        }
        let (redisURL, _) = try TestServers.require()
        let fixture = try ScheduleFixture()
        defer { fixture.drop() }
        let worker = try CeleryWorkerProcess(
            python: python, broker: redisURL, keyPrefix: fixture.keyPrefix + ":",
            queues: ["schedule_executor"])
        defer { worker.stop() }

        let plans = try fixture.addPlans(25, dueIn: 2)
        let once = try fixture.addPlan(dueIn: 3600)
        var denv = fixture.env
        denv["HERALD_SWEEP_INTERVAL"] = "1"
        let h = try DaemonHarness(env: denv)
        defer { h.stop() }
        try waitUntil("sources up and schedules running") { h.allUp && (h.status.scheduleWindowLoads ?? 0) >= 1 }
        try TestServers.redis().command([
            "PUBLISH", Channels.scheduleEvents, "{\"schedule_id\":\"\(once)\",\"run_now\":true}",
        ])

        func records() -> [[String: Any]] { worker.records() }
        try waitUntil("the worker ran 26 tasks", timeout: 60) { records().count >= 26 || !worker.isRunning }
        let sweeps = h.metric("herald_sweeps_total")
        try waitUntil("two more sweeps") { h.metric("herald_sweeps_total") >= sweeps + 2 }
        let ran = records()
        let logText = worker.logText
        XCTAssertEqual(ran.count, 26, "worker log: \(logText.suffix(1500))")
        XCTAssertTrue(
            ran.allSatisfy { $0["event"] as? String == "ran" }, "\(ran.filter { $0["event"] as? String != "ran" })")
        XCTAssertTrue(ran.allSatisfy { $0["task"] as? String == "tasks.workflow_schedule_tasks.run_schedule_trigger" })
        XCTAssertTrue(ran.allSatisfy { $0["routing_key"] as? String == "schedule_executor" })

        let fires = try fixture.conn.query("SELECT plan_id::text, task_id::text FROM herald.schedule_fires").rows
        let recorded = Dictionary(uniqueKeysWithValues: fires.map { ($0[1]!, $0[0]!) })
        XCTAssertEqual(recorded.count, 26)
        XCTAssertEqual(
            Set(ran.compactMap { $0["id"] as? String }), Set(recorded.keys), "ids the worker saw are the ones claimed")
        for r in ran {
            let id = r["id"] as? String ?? ""
            XCTAssertEqual(r["args"] as? [String], [recorded[id] ?? "?"], "args are [schedule_id]")
        }
        XCTAssertEqual(Set(recorded.values), Set(plans.map(\.description) + [once.description]))
    }
}
