// The tasks section of the daemon's status (`herald status`, /healthz): each task's last run on
// this instance with its outcome, when it ended and how long it took.

import Foundation
import HeraldCore
import HeraldRuntime
import XCTest

final class TaskStatusTests: XCTestCase {
    func testTheTasksSectionShowsTheLastRunWithItsDuration() throws {
        let fixture = try ScheduleFixture()
        defer { fixture.drop() }
        let h = try DaemonHarness(env: fixture.env)
        defer { h.stop() }
        try waitUntil("the task executor runs", timeout: 20) { h.loop.sync { h.daemon.tasks != nil } }
        let d = h.daemon
        h.loop.sync { d.tasks?.request(.cleanEmbeddingCache) }
        var row: TaskStatusRow?
        try waitUntil("the run is in the status", timeout: 30) {
            row = h.status.tasks.first { $0.task == "clean_embedding_cache_task" }
            return row?.lastStatus != nil
        }
        XCTAssertEqual(row?.lastStatus, "succeeded")
        XCTAssertNotNil(row?.lastSeconds, "the run's duration")
        // The trigger refresh and the plugin checks are off here (the tests' quiet beat); their
        // metrics exist all the same, as every documented metric does from start.
        let text = String(decoding: d.metrics.render(), as: UTF8.self)
        for name in [
            "herald_trigger_refresh_total", "herald_trigger_refresh_lateness_seconds",
            "herald_trigger_refresh_errors_total",
            "herald_plugin_check_total", "herald_http_rejected_total",
        ] {
            XCTAssertTrue(text.contains(name), "\(name) is not exported at start")
        }
        let json = h.loop.sync { StatusJSON.render(d.status(), now: d.loop.wallSeconds) }
        XCTAssertTrue(
            json.contains(#""task":"clean_embedding_cache_task","runs":"native""#) && json.contains(#""seconds":"#),
            json)
    }
}
