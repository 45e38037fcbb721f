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
        let json = h.loop.sync { StatusJSON.render(d.status(), now: d.loop.wallSeconds) }
        XCTAssertTrue(
            json.contains(#""task":"clean_embedding_cache_task","runs":"native""#) && json.contains(#""seconds":"#),
            json)
    }
}
