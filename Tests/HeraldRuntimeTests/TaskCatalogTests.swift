// Every beat entry of Dify runs under Herald: the default topology declares all 15
// with Dify's Celery task names, each resolves to native or celery, and a task or
// route without a handler is refused with the file and the route named.

import Foundation
import HeraldCore
import HeraldRuntime
import XCTest

final class TaskCatalogTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    private func load(_ relative: String) throws -> ResolvedTopology {
        let topology = try Topology.load(json: try Data(contentsOf: Self.root.appendingPathComponent(relative)))
        return try HeraldTaskCatalog.resolve(topology, path: relative)
    }

    func testDefaultTopologyRunsEveryDifyBeatEntry() throws {
        for file in ["topology/default.json", "topology/single-host.json"] {
            let resolved = try load(file)
            XCTAssertEqual(resolved.topology.tasks.count, DifyBeatEntry.all.count, file)
            for entry in DifyBeatEntry.all {
                let task = try XCTUnwrap(resolved.topology.task(entry.task), "\(file): \(entry.task) missing")
                XCTAssertEqual(task.celery?.task, entry.celeryName, "\(file): \(entry.task)")
                XCTAssertNotEqual(resolved.mode(entry.task), .off, "\(file): \(entry.task) would not run")
                let native = HeraldTaskCatalog.implemented.contains(entry.task)
                XCTAssertEqual(resolved.mode(entry.task), native ? .native : .celery, "\(file): \(entry.task)")
            }
            XCTAssertTrue(resolved.isService(.workflowSchedule))
            XCTAssertEqual(resolved.topology.task(.humanInputFormTimeout)?.celery?.queue, "schedule_executor")
            XCTAssertEqual(resolved.topology.task(.updateAPITokenLastUsed)?.celery?.queue, "api_token")
        }
    }

    private func topology(tasks: String, routes: String = "[]") throws -> Topology {
        try Topology.load(
            json: Array(
                """
                {"version": 1, "queues": [{"name": "q", "concurrency": 1}],
                 "sources": [{"name": "expiry", "kind": "redis_expiry"}], "routes": \(routes), "tasks": [\(tasks)]}
                """.utf8))
    }

    func testATaskOrRouteWithoutHandlerIsRefusedNamingTheFile() throws {
        let unimplemented = #"{"name": "human_input_form_timeout", "queue": "q"}"#
        XCTAssertThrowsError(try HeraldTaskCatalog.resolve(try topology(tasks: unimplemented), path: "f.json")) {
            XCTAssertEqual(
                "\($0)",
                "f.json: task 'human_input_form_timeout': this build has no implementation of it and no"
                    + " 'celery' object names Dify's task (add one, or set run to 'off')")
        }
        let native =
            #"{"name": "human_input_form_timeout", "queue": "q", "run": "native", "celery": {"task": "a.b", "queue": "q"}}"#
        XCTAssertThrowsError(try HeraldTaskCatalog.resolve(try topology(tasks: native), path: "f.json")) {
            XCTAssertEqual(
                "\($0)",
                "f.json: task 'human_input_form_timeout': run is 'native' but this build has no"
                    + " implementation of it (use 'celery' or 'off')")
        }
        let route = #"[{"name": "r", "source": "expiry", "event": "key_expired", "task": "human_input_form_timeout"}]"#
        XCTAssertThrowsError(
            try HeraldTaskCatalog.resolve(try topology(tasks: unimplemented, routes: route), path: "f.json")
        ) {
            XCTAssertTrue(
                "\($0)".hasPrefix("f.json: route 'r': task 'human_input_form_timeout' has no handler: "), "\($0)")
        }
        // Off needs no handler; a disabled route to an unrunnable task is not an error either.
        let off = #"{"name": "human_input_form_timeout", "queue": "q", "run": "off"}"#
        XCTAssertEqual(
            try HeraldTaskCatalog.resolve(try topology(tasks: off, routes: route), path: "f").mode(
                .humanInputFormTimeout), .off)
    }

    func testRoutingTableNamesSourceMatchTaskAndHandler() throws {
        let resolved = try load("topology/default.json")
        let table = resolved.routingTable
        XCTAssertEqual(
            table.first,
            [
                "schedule-events", "schedule_events (redis_pubsub task_schedule_events)", "schedule_changed",
                "workflow_schedule_task", "native (schedule service)",
            ])
        XCTAssertTrue(
            table.contains { $0[0] == "credential-expiry" && $0[4] == "native (trigger refresh service)" }, "\(table)")
        XCTAssertEqual(
            resolved.handling(.humanInputFormTimeout),
            "celery (human_input_form_timeout.check_and_resume on schedule_executor)")
    }

    func testTheTiDBTasksRunNativelyOnAutoAndAsCeleryOnRequest() throws {
        let resolved = try load("topology/default.json")
        XCTAssertEqual(resolved.mode(.createTiDBServerless), .native)
        XCTAssertEqual(resolved.mode(.updateTiDBServerlessStatus), .native)
        XCTAssertEqual(resolved.handling(.createTiDBServerless), "native (executor)")
        let celery = try topology(
            tasks: #"{"name": "create_tidb_serverless_task", "queue": "q", "run": "celery", "#
                + #""celery": {"task": "schedule.create_tidb_serverless_task.create_tidb_serverless_task", "queue": "dataset"}}"#
        )
        XCTAssertEqual(try HeraldTaskCatalog.resolve(celery, path: "f").mode(.createTiDBServerless), .celery)
    }
}
