// How a task runs: the topology's `run` and `celery` fields, the resolution of
// `auto`, interval ticks that every instance computes alike, and the HERALD_
// overrides of Dify's settings that let one .env serve both during a migration.

import HeraldCore
import XCTest

final class RunModeTests: XCTestCase {
    private func topology(_ task: String) throws(TopologyError) -> Topology {
        let json = """
            {"version": 1, "sources": [], "queues": [{"name": "q", "concurrency": 1}], "routes": [],
             "tasks": [\(task)]}
            """
        return try Topology.load(json: Array(json.utf8))
    }

    func testCeleryCallAndRunModeAreRead() throws {
        let t = try topology(
            """
            {"name": "clean_oauth_access_tokens_task", "queue": "q", "run": "celery",
             "schedule": {"cron": "0 5 */{day} * *"},
             "celery": {"task": "schedule.clean_oauth_access_tokens_task.clean_oauth_access_tokens_task",
                        "queue": "retention", "args": [1, "a"], "kwargs": {"z": true, "limit": 100}}}
            """)
        let task = try XCTUnwrap(t.task(.cleanOAuthAccessTokens))
        XCTAssertEqual(task.run, .celery)
        let call = try XCTUnwrap(task.celery)
        XCTAssertEqual(call.task, "schedule.clean_oauth_access_tokens_task.clean_oauth_access_tokens_task")
        XCTAssertEqual(call.queue, "retention")
        XCTAssertEqual(call.args, [.number(1), .string("a")])
        XCTAssertEqual(call.kwargs.map(\.key), ["limit", "z"], "keyword arguments in name order")
        XCTAssertEqual(try topology(#"{"name": "a", "queue": "q"}"#).task("a")?.run, .auto, "auto by default")
    }

    func testBadRunModesAndCeleryCallsAreRefusedWithTheirPath() {
        let cases: [(String, String)] = [
            (
                #"{"name": "a", "queue": "q", "run": "sometimes"}"#,
                "tasks[0] (a).run: 'sometimes' is not auto, native, celery or off"
            ),
            (
                #"{"name": "a", "queue": "q", "run": "celery"}"#,
                "tasks[0] (a).run: 'celery' is not possible without a 'celery' object naming Dify's task and queue"
            ),
            (#"{"name": "a", "queue": "q", "celery": {"queue": "x"}}"#, "tasks[0] (a).celery: missing field 'task'"),
            (
                #"{"name": "a", "queue": "q", "celery": {"task": "t.u", "queue": "x", "kwarg": {}}}"#,
                "tasks[0] (a).celery: unknown field 'kwarg'"
            ),
            (
                #"{"name": "a", "queue": "q", "celery": {"task": "t u", "queue": "x"}}"#,
                "tasks[0] (a).celery.task: 't u' is not a dotted Celery task name (letters, digits, '_' and '.')"
            ),
            (
                #"{"name": "a", "queue": "q", "celery": {"task": "t", "queue": "X Y"}}"#,
                "tasks[0] (a).celery.queue: 'X Y' is not a queue name (a-z, 0-9, '_', '-', '.', starting with a letter)"
            ),
            (
                #"{"name": "a", "queue": "q", "celery": {"task": "t", "queue": "x", "kwargs": [1]}}"#,
                "tasks[0] (a).celery.kwargs: expected an object"
            ),
        ]
        for (task, message) in cases {
            XCTAssertThrowsError(try topology(task), task) { error in
                XCTAssertEqual("\(error)", message)
            }
        }
    }

    func testAutoRunsNativelyWhenImplementedElseCelery() {
        XCTAssertEqual(ResolvedRunMode.resolve(.auto, implemented: true, hasCelery: true), .native)
        XCTAssertEqual(ResolvedRunMode.resolve(.auto, implemented: false, hasCelery: true), .celery)
        XCTAssertNil(ResolvedRunMode.resolve(.auto, implemented: false, hasCelery: false))
        XCTAssertEqual(ResolvedRunMode.resolve(.celery, implemented: true, hasCelery: true), .celery)
        XCTAssertNil(ResolvedRunMode.resolve(.native, implemented: false, hasCelery: true))
        XCTAssertEqual(ResolvedRunMode.resolve(.off, implemented: false, hasCelery: false), .off)
    }

    func testIntervalTicksAreMultiplesOfTheIntervalSinceTheEpoch() throws {
        let every10m = ResolvedTaskSchedule.every(.seconds(600))
        XCTAssertEqual(try every10m.nextTick(afterUnixSeconds: 1_700_000_000.5), 1_700_000_400)
        XCTAssertEqual(try every10m.nextTick(afterUnixSeconds: 1_700_000_400), 1_700_001_000, "strictly after")
        // Two instances started at different moments agree on every tick.
        let a = try every10m.nextTick(afterUnixSeconds: 1_700_000_123)
        let b = try every10m.nextTick(afterUnixSeconds: 1_700_000_399.9)
        XCTAssertEqual(a, b)
        let fraction = ResolvedTaskSchedule.every(.milliseconds(2_400))
        XCTAssertEqual(ResolvedTaskSchedule.intervalSeconds(.milliseconds(2_400)), 2)
        XCTAssertEqual(try fraction.nextTick(afterUnixSeconds: 11), 12)
        XCTAssertEqual(ResolvedTaskSchedule.intervalSeconds(.milliseconds(10)), 1, "at least a second")
        let cron = try TaskSchedule.cron("0 2 */{day} * *").resolve(TaskSettings([:]))
        XCTAssertEqual(try cron.nextTick(afterUnixSeconds: 1_700_000_000), 1_700_013_600)  // 2023-11-15 02:00 UTC
    }

    func testHeraldPrefixOverridesDifysSettingForHeraldAlone() throws {
        let env = [
            "ENABLE_WORKFLOW_SCHEDULE_POLLER_TASK": "false", "HERALD_ENABLE_WORKFLOW_SCHEDULE_POLLER_TASK": "true",
            "ENABLE_CLEAN_MESSAGES": "true", "HERALD_ENABLE_CLEAN_MESSAGES": " ",  // blank: no override
            "HERALD_QUEUE_MONITOR_INTERVAL": "5", "HERALD_REDIS_URL": "redis://x", "HERALD_HERALD_X": "y",
        ]
        let settings = TaskSettings(env)
        XCTAssertTrue(try settings.bool("ENABLE_WORKFLOW_SCHEDULE_POLLER_TASK", default: false))
        XCTAssertTrue(try settings.bool("ENABLE_CLEAN_MESSAGES", default: false))
        XCTAssertEqual(try settings.positiveNumber("QUEUE_MONITOR_INTERVAL", default: 30), 5)
        XCTAssertNil(settings.values["HERALD_X"], "a doubled prefix is not an override")
        XCTAssertEqual(TaskSettings.applyingHeraldOverrides(settings.values), settings.values, "idempotent")
        XCTAssertEqual(
            TaskSettings.heraldOverrides(
                in: env, among: ["ENABLE_WORKFLOW_SCHEDULE_POLLER_TASK", "ENABLE_CLEAN_MESSAGES"]),
            ["ENABLE_WORKFLOW_SCHEDULE_POLLER_TASK"])
        // A task disabled for Dify is enabled for Herald by the prefixed name.
        let task = TaskDescriptor(
            name: .workflowSchedule, queue: "q",
            enabledBy: [EnableSetting("ENABLE_WORKFLOW_SCHEDULE_POLLER_TASK", default: true)])
        XCTAssertTrue(try task.isEnabled(settings))
        XCTAssertFalse(try task.isEnabled(TaskSettings(["ENABLE_WORKFLOW_SCHEDULE_POLLER_TASK": "false"])))
        // A bad value is reported under the name that set it.
        XCTAssertThrowsError(
            try TaskSettings(["HERALD_ENABLE_CLEAN_MESSAGES": "maybe"]).bool("ENABLE_CLEAN_MESSAGES", default: false)
        ) {
            XCTAssertEqual("\($0)", "HERALD_ENABLE_CLEAN_MESSAGES: expected true or false, got \"maybe\"")
        }
        XCTAssertThrowsError(
            try TaskSettings(["ENABLE_CLEAN_MESSAGES": "maybe"]).bool("ENABLE_CLEAN_MESSAGES", default: false)
        ) {
            XCTAssertEqual("\($0)", "ENABLE_CLEAN_MESSAGES: expected true or false, got \"maybe\"")
        }
    }
}
