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
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/celery_worker.py").path
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("herald-sched-celery-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let output = dir.appendingPathComponent("ran.jsonl")
        let log = dir.appendingPathComponent("worker.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let logHandle = try FileHandle(forWritingTo: log)
        let worker = Process()
        worker.executableURL = URL(fileURLWithPath: python)
        worker.arguments = [script, "--broker", redisURL, "--key-prefix", fixture.keyPrefix + ":", "--output", output.path,
                            "--queues", "schedule_executor"]
        worker.standardOutput = logHandle
        worker.standardError = logHandle
        worker.standardInput = FileHandle.nullDevice
        try worker.run()
        defer {
            worker.terminate()
            let deadline = Date().addingTimeInterval(15)
            while worker.isRunning && Date() < deadline { usleep(20_000) }
            if worker.isRunning { kill(worker.processIdentifier, SIGKILL) }
            try? logHandle.close()
        }

        let plans = try fixture.addPlans(25, dueIn: 2)
        let once = try fixture.addPlan(dueIn: 3600)
        var denv = fixture.env
        denv["HERALD_SWEEP_INTERVAL"] = "1"
        let h = try DaemonHarness(env: denv)
        defer { h.stop() }
        try waitUntil("sources up and schedules running") { h.allUp && (h.status.scheduleWindowLoads ?? 0) >= 1 }
        try TestServers.redis().command(["PUBLISH", Channels.scheduleEvents, "{\"schedule_id\":\"\(once)\",\"run_now\":true}"])

        func records() -> [[String: Any]] {
            guard let data = try? Data(contentsOf: output) else { return [] }
            return data.split(separator: 0x0A).compactMap { try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any] }
        }
        try waitUntil("the worker ran 26 tasks", timeout: 60) { records().count >= 26 || !worker.isRunning }
        let sweeps = h.metric("herald_sweeps_total")
        try waitUntil("two more sweeps") { h.metric("herald_sweeps_total") >= sweeps + 2 }
        let ran = records()
        let logText = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        XCTAssertEqual(ran.count, 26, "worker log: \(logText.suffix(1500))")
        XCTAssertTrue(ran.allSatisfy { $0["event"] as? String == "ran" }, "\(ran.filter { $0["event"] as? String != "ran" })")
        XCTAssertTrue(ran.allSatisfy { $0["task"] as? String == "tasks.workflow_schedule_tasks.run_schedule_trigger" })
        XCTAssertTrue(ran.allSatisfy { $0["routing_key"] as? String == "schedule_executor" })

        let fires = try fixture.conn.query("SELECT plan_id::text, task_id::text FROM herald.schedule_fires").rows
        let recorded = Dictionary(uniqueKeysWithValues: fires.map { ($0[1]!, $0[0]!) })
        XCTAssertEqual(recorded.count, 26)
        XCTAssertEqual(Set(ran.compactMap { $0["id"] as? String }), Set(recorded.keys), "ids the worker saw are the ones claimed")
        for r in ran {
            let id = r["id"] as? String ?? ""
            XCTAssertEqual(r["args"] as? [String], [recorded[id] ?? "?"], "args are [schedule_id]")
        }
        XCTAssertEqual(Set(recorded.values), Set(plans.map(\.description) + [once.description]))
    }
}
