// Every way a topology file is refused, each with the offending name in the
// message: cycles, unknown tasks, queues and sources, bad crons, duplicates,
// concurrency below 1, unknown kinds, misplaced filters and misspelt fields.

import Foundation
import HeraldCore
import XCTest

final class TopologyValidationTests: XCTestCase {
    /// A small valid topology as a JSON object, for tests to break.
    private func base() -> [String: Any] {
        [
            "version": 1,
            "sources": [
                ["name": "events", "kind": "redis_pubsub", "channel": "task_schedule_events"],
                ["name": "notify", "kind": "postgres_notify"],
                ["name": "expiry", "kind": "redis_expiry"],
            ],
            "queues": [["name": "dataset", "concurrency": 2]],
            "tasks": [
                ["name": "a", "queue": "dataset", "schedule": ["cron": "0 2 */{day} * *"]],
                ["name": "b", "queue": "dataset", "depends_on": ["a"], "schedule": ["every_minutes": 5]],
            ],
            "routes": [["name": "r", "source": "events", "event": "schedule_changed", "task": "b"]],
        ]
    }

    private func load(_ object: [String: Any]) throws -> Topology {
        try Topology.load(json: try JSONSerialization.data(withJSONObject: object))
    }

    /// Asserts that `change` applied to the base topology fails with `expected`, whose message contains `name`.
    private func assertRefused(
        _ expected: TopologyError, naming name: String, file: StaticString = #filePath, line: UInt = #line,
        _ change: (inout [String: Any]) -> Void
    ) {
        var object = base()
        change(&object)
        XCTAssertThrowsError(try load(object), file: file, line: line) { error in
            XCTAssertEqual(error as? TopologyError, expected, file: file, line: line)
            XCTAssertTrue("\(error)".contains(name), "'\(error)' should name \(name)", file: file, line: line)
        }
    }

    private func setTask(_ object: inout [String: Any], _ index: Int, _ key: String, _ value: Any) {
        var tasks = object["tasks"] as! [[String: Any]]
        tasks[index][key] = value
        object["tasks"] = tasks
    }

    private func setRoute(_ object: inout [String: Any], _ key: String, _ value: Any) {
        var routes = object["routes"] as! [[String: Any]]
        routes[0][key] = value
        object["routes"] = routes
    }

    func testBaseIsValid() throws {
        let topology = try load(base())
        XCTAssertEqual(topology.graph.order, ["a", "b"])
        XCTAssertEqual(topology.sources.map(\.channel), ["task_schedule_events", "herald_events", "herald:expiry:"])
        XCTAssertEqual(topology.task("a")?.missedRuns, .skip)
    }

    func testCycleIsRejectedAtLoadWithItsNames() {
        assertRefused(.cycle(["a", "b", "a"]), naming: "a -> b -> a") { setTask(&$0, 0, "depends_on", ["b"]) }
    }

    func testUnknownDependencyTaskAndQueue() {
        assertRefused(.unknownDependency(task: "b", dependency: "ghost"), naming: "ghost") {
            setTask(&$0, 1, "depends_on", ["ghost"])
        }
        assertRefused(.unknownQueue(task: "a", queue: "nowhere"), naming: "nowhere") {
            setTask(&$0, 0, "queue", "nowhere")
        }
        assertRefused(.unknownTask(route: "r", task: "zz"), naming: "zz") { setRoute(&$0, "task", "zz") }
    }

    func testBadCronNamesTheTaskAndField() {
        var object = base()
        setTask(&object, 0, "schedule", ["cron": "0 25 * * *"])
        XCTAssertThrowsError(try load(object)) { error in
            guard case .badSchedule("a", .cron(.invalidField(.hour, "25", _)))? = error as? TopologyError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual("\(error)", "task 'a': bad schedule: invalid hour field '25': 25 is outside 0-23")
        }
        assertRefused(.badSchedule(task: "b", .nonPositiveInterval(0)), naming: "'b'") {
            setTask(&$0, 1, "schedule", ["every_minutes": 0])
        }
        assertRefused(
            .invalidValue(
                path: "tasks[0] (a).schedule", value: "both",
                expected: "exactly one of 'cron' or 'every_minutes'"), naming: "(a)"
        ) {
            setTask(&$0, 0, "schedule", ["cron": "* * * * *", "every_minutes": 1])
        }
    }

    func testDuplicateNames() {
        assertRefused(.duplicateName(kind: .task, name: "a"), naming: "task 'a'") {
            $0["tasks"] = ($0["tasks"] as! [[String: Any]]) + [["name": "a", "queue": "dataset"]]
        }
        assertRefused(.duplicateName(kind: .queue, name: "dataset"), naming: "queue 'dataset'") {
            $0["queues"] = [["name": "dataset", "concurrency": 1], ["name": "dataset", "concurrency": 1]]
        }
        assertRefused(.duplicateName(kind: .route, name: "r"), naming: "route 'r'") {
            $0["routes"] = ($0["routes"] as! [[String: Any]]) + ($0["routes"] as! [[String: Any]])
        }
    }

    func testConcurrencyBelowOne() {
        assertRefused(.badConcurrency(queue: "dataset", value: 0), naming: "dataset") {
            $0["queues"] = [["name": "dataset", "concurrency": 0]]
        }
        assertRefused(.badConcurrency(queue: "dataset", value: 1.5), naming: "dataset") {
            $0["queues"] = [["name": "dataset", "concurrency": 1.5]]
        }
    }

    func testUnknownSourceAndRouteKinds() {
        assertRefused(.unknownSourceKind(source: "events", kind: "kafka"), naming: "kafka") {
            $0["sources"] = [["name": "events", "kind": "kafka"]]
        }
        assertRefused(.unknownEventKind(route: "r", event: "tick"), naming: "tick") { setRoute(&$0, "event", "tick") }
        assertRefused(.unknownSource(route: "r", source: "void"), naming: "void") { setRoute(&$0, "source", "void") }
        assertRefused(
            .eventNotFromSource(route: "r", event: .tableChanged, sourceKind: .redisPubSub),
            naming: "table_changed"
        ) { setRoute(&$0, "event", "table_changed") }
        assertRefused(
            .unsupportedChannel(source: "events", found: "other", expected: "task_schedule_events"),
            naming: "other"
        ) {
            $0["sources"] = [["name": "events", "kind": "redis_pubsub", "channel": "other"]]
        }
    }

    func testRouteFilters() {
        assertRefused(.filterNotApplicable(route: "r", field: "tables", event: .scheduleChanged), naming: "tables") {
            setRoute(&$0, "tables", ["apps"])
        }
        assertRefused(.unknownTable(route: "r", table: "apps"), naming: "apps") {
            $0["routes"] = [
                ["name": "r", "source": "notify", "event": "table_changed", "tables": ["apps"], "task": "a"]
            ]
        }
        assertRefused(
            .filterNotApplicable(route: "r", field: "key_prefix", event: .scheduleChanged), naming: "key_prefix"
        ) {
            setRoute(&$0, "key_prefix", "x:")
        }
    }

    func testShapeErrorsNameThePath() {
        assertRefused(.unknownField(path: "tasks[0] (a)", field: "depends"), naming: "depends") {
            setTask(&$0, 0, "depends", ["b"])
        }
        assertRefused(.unknownField(path: "top level", field: "extra"), naming: "extra") { $0["extra"] = 1 }
        assertRefused(.missingField(path: "tasks[1] (b)", field: "queue"), naming: "queue") {
            var tasks = $0["tasks"] as! [[String: Any]]
            tasks[1]["queue"] = nil
            $0["tasks"] = tasks
        }
        assertRefused(.wrongType(path: "tasks[1] (b).depends_on", expected: "an array"), naming: "depends_on") {
            setTask(&$0, 1, "depends_on", "a")
        }
        assertRefused(.missingField(path: "top level", field: "routes"), naming: "routes") { $0["routes"] = nil }
        assertRefused(.unsupportedVersion(found: 2, supported: 1), naming: "2") { $0["version"] = 2 }
        assertRefused(.invalidName(path: "tasks[0].name", name: "Bad Name"), naming: "Bad Name") {
            setTask(&$0, 0, "name", "Bad Name")
            setTask(&$0, 1, "depends_on", [])
            $0["routes"] = []
        }
        assertRefused(
            .invalidValue(path: "tasks[0] (a).missed_runs", value: "all", expected: "skip or run_once"),
            naming: "missed_runs"
        ) { setTask(&$0, 0, "missed_runs", "all") }
        assertRefused(
            .invalidValue(path: "tasks[0] (a).lock.when_held", value: "wait", expected: "skip or fail"),
            naming: "when_held"
        ) {
            setTask(&$0, 0, "lock", ["key": "k", "ttl_seconds": 60, "when_held": "wait"])
        }
        XCTAssertThrowsError(try Topology.load(json: Array("{\"version\": 1,".utf8))) {
            XCTAssertEqual($0 as? TopologyError, .json(.unexpectedEnd))
            XCTAssertEqual("\($0)", "not valid JSON: the file ends in the middle of a value")
        }
    }

    func testLocksEnableSettingsAndCommentsParse() throws {
        var object = base()
        setTask(&object, 0, "lock", ["key": "retention:x", "ttl_seconds": 90000, "when_held": "fail"])
        setTask(&object, 0, "enabled_by", [["setting": "ENABLE_X", "default": true]])
        setTask(&object, 0, "comment", "free text")
        setTask(&object, 1, "lock", "none")
        setTask(&object, 1, "missed_runs", "run_once")
        let topology = try load(object)
        XCTAssertEqual(
            topology.task("a")?.lock, .exclusive(TaskLock(key: "retention:x", ttlSeconds: 90000, whenHeld: .fail)))
        XCTAssertEqual(topology.task("a")?.enabledBy, [EnableSetting("ENABLE_X", default: true)])
        XCTAssertEqual(topology.task("b")?.lock, LockPolicy.none)
        XCTAssertEqual(topology.task("b")?.missedRuns, .runOnce)
        setTask(&object, 0, "enabled_by", [["setting": "enable_x", "default": true]])
        XCTAssertThrowsError(try load(object)) {
            guard case .invalidValue(let path, "enable_x", _)? = $0 as? TopologyError else { return XCTFail("\($0)") }
            XCTAssertEqual(path, "tasks[0] (a).enabled_by[0].setting")
        }
    }

    func testTopologiesBuiltInCodeFollowTheSameRules() {
        XCTAssertThrowsError(
            try Topology.make(
                queues: [TopologyQueue(name: "q", concurrency: 1)],
                tasks: [
                    TaskDescriptor(name: "x", dependencies: ["y"], queue: "q"),
                    TaskDescriptor(name: "y", dependencies: ["x"], queue: "q"),
                ])
        ) {
            XCTAssertEqual($0 as? TopologyError, .cycle(["x", "y", "x"]))
        }
        XCTAssertThrowsError(
            try Topology.make(
                sources: [TopologySource(name: "t", kind: .timer, channel: "")],
                queues: [TopologyQueue(name: "q", concurrency: 1)], tasks: [])
        ) {
            XCTAssertEqual($0 as? TopologyError, .unknownSourceKind(source: "t", kind: "timer"))
        }
    }
}
