// The shipped topologies load, and they say what Dify's beat says (the
// `beat_schedule` of Dify's api/extensions/ext_celery.py):
// task names, default crontabs in LOG_TZ, enable flags with their defaults, and
// queues. Also the dataset chain, the routes, and which tasks the defaults enable.

import Foundation
import HeraldCore
import XCTest

enum TopologyFiles {
    /// The repository root, found from this file's path.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func load(_ relative: String) throws -> Topology {
        try Topology.load(json: try Data(contentsOf: root.appendingPathComponent(relative)))
    }
}

final class TopologyTests: XCTestCase {
    /// Dify's beat table for the tasks Herald replaces: schedule, enable settings, queue.
    private let dify: [(TaskName, String, [EnableSetting], String)] = [
        (
            .cleanEmbeddingCache, "0 2 */{day} * *",
            [EnableSetting("ENABLE_CLEAN_EMBEDDING_CACHE_TASK", default: false)],
            "dataset"
        ),
        (
            .cleanUnusedDatasets, "0 3 */{day} * *",
            [EnableSetting("ENABLE_CLEAN_UNUSED_DATASETS_TASK", default: false)],
            "dataset"
        ),
        (
            .createTiDBServerless, "0 * * * *", [EnableSetting("ENABLE_CREATE_TIDB_SERVERLESS_TASK", default: false)],
            "dataset"
        ),
        (
            .updateTiDBServerlessStatus, "every 10m",
            [EnableSetting("ENABLE_UPDATE_TIDB_SERVERLESS_STATUS_TASK", default: false)], "dataset"
        ),
        (.cleanMessages, "0 4 */{day} * *", [EnableSetting("ENABLE_CLEAN_MESSAGES", default: false)], "retention"),
        (
            .mailCleanDocumentNotify, "0 10 * * 1",
            [EnableSetting("ENABLE_MAIL_CLEAN_DOCUMENT_NOTIFY_TASK", default: false)], "dataset"
        ),
        (
            .queueMonitor, "every 30m (QUEUE_MONITOR_INTERVAL)",
            [EnableSetting("ENABLE_DATASETS_QUEUE_MONITOR", default: false)], "monitor"
        ),
        (
            .checkUpgradablePlugin, "*/15 * * * *",
            [
                EnableSetting("ENABLE_CHECK_UPGRADABLE_PLUGIN_TASK", default: true),
                EnableSetting("MARKETPLACE_ENABLED", default: true),
            ], "plugin"
        ),
        (
            .cleanWorkflowRunLogsPrecise, "0 2 * * *", [EnableSetting("WORKFLOW_LOG_CLEANUP_ENABLED", default: false)],
            "retention"
        ),
        (
            .workflowSchedule, "every 1m (WORKFLOW_SCHEDULE_POLLER_INTERVAL)",
            [EnableSetting("ENABLE_WORKFLOW_SCHEDULE_POLLER_TASK", default: true)], "schedule_poller"
        ),
        (
            .triggerProviderRefresh, "every 1m (TRIGGER_PROVIDER_REFRESH_INTERVAL)",
            [EnableSetting("ENABLE_TRIGGER_PROVIDER_REFRESH_TASK", default: true)], "trigger_refresh_publisher"
        ),
        (
            .cleanWorkflowRuns, "0 0 * * *", [EnableSetting("ENABLE_WORKFLOW_RUN_CLEANUP_TASK", default: false)],
            "retention"
        ),
        (
            .cleanOAuthAccessTokens, "0 5 */{day} * *",
            [EnableSetting("ENABLE_CLEAN_OAUTH_ACCESS_TOKENS_TASK", default: true)], "retention"
        ),
        (
            .updateAPITokenLastUsed, "every 30m (API_TOKEN_LAST_USED_UPDATE_INTERVAL)",
            [EnableSetting("ENABLE_API_TOKEN_LAST_USED_UPDATE_TASK", default: true)], "api_token"
        ),
        (
            .humanInputFormTimeout, "every 1m (HUMAN_INPUT_TIMEOUT_TASK_INTERVAL)",
            [EnableSetting("ENABLE_HUMAN_INPUT_TIMEOUT_TASK", default: true)], "schedule_executor"
        ),
    ]

    /// Dify's default-on entries.
    private let onByDefault: Set<TaskName> = [
        .workflowSchedule, .triggerProviderRefresh, .checkUpgradablePlugin, .cleanOAuthAccessTokens,
        .updateAPITokenLastUsed, .humanInputFormTimeout,
    ]

    func testShippedDefaultMatchesDifysBeatTable() throws {
        let topology = try TopologyFiles.load("topology/default.json")
        XCTAssertEqual(Set(topology.tasks.map(\.name)), Set(dify.map(\.0)))
        for (name, schedule, enable, queue) in dify {
            let task = try XCTUnwrap(topology.task(name), "\(name)")
            XCTAssertEqual(task.schedule?.description, schedule, "\(name)")
            XCTAssertEqual(task.enabledBy, enable, "\(name)")
            XCTAssertEqual(task.queue, queue, "\(name)")
            XCTAssertNotNil(DifyBeatEntry.entry(for: name), "\(name) is a Dify beat task")
        }
        XCTAssertEqual(topology.sources.map(\.kind), [.redisPubSub, .redisExpiry, .postgresNotify])
        for queue in ["dataset", "retention", "plugin", "monitor", "schedule_executor", "trigger_refresh_executor"] {
            XCTAssertGreaterThanOrEqual(try XCTUnwrap(topology.queue(queue), queue).concurrency, 1)
        }
        XCTAssertEqual(
            topology.task(.cleanMessages)?.lock,
            .exclusive(TaskLock(key: "retention:clean_messages", ttlSeconds: 600, whenHeld: .fail)))
        XCTAssertEqual(topology.task(.workflowSchedule)?.lock, LockPolicy.none)
    }

    func testShippedDefaultDeclaresTheDatasetChain() throws {
        let topology = try TopologyFiles.load("topology/default.json")
        XCTAssertEqual(
            topology.graph.chain(for: .mailCleanDocumentNotify),
            [.cleanEmbeddingCache, .cleanUnusedDatasets, .mailCleanDocumentNotify])
        var mediator = Mediator(graph: topology.graph)
        XCTAssertEqual(
            mediator.handle(.request(.mailCleanDocumentNotify, dryRun: true)).runs.map(\.task),
            [.cleanEmbeddingCache])
    }

    func testShippedDefaultRoutesEvents() throws {
        let topology = try TopologyFiles.load("topology/default.json")
        XCTAssertEqual(
            topology.tasks(triggeredBy: .scheduleChanged(scheduleID: "s", runNow: false)), [.workflowSchedule])
        XCTAssertEqual(
            topology.tasks(
                triggeredBy: .tableChanged(
                    TableChange(
                        table: "workflow_schedule_plans", operation: .update, id: "x"))), [.workflowSchedule])
        XCTAssertEqual(
            topology.tasks(
                triggeredBy: .tableChanged(
                    TableChange(
                        table: "trigger_subscriptions", operation: .update, id: "x"))), [.triggerProviderRefresh])
        XCTAssertEqual(
            topology.tasks(triggeredBy: .keyExpired(name: "trigger_subscription:1")), [.triggerProviderRefresh])
        XCTAssertEqual(topology.tasks(triggeredBy: .keyExpired(name: "other:1")), [])
        XCTAssertEqual(topology.tasks(triggeredBy: .sweep(reason: .interval)), [])
        XCTAssertEqual(topology.routes(to: .triggerProviderRefresh).map(\.enabled), [true, true])
    }

    func testDifyDefaultsEnableOnlyTheDefaultOnTasks() throws {
        let topology = try TopologyFiles.load("topology/default.json")
        let all = Set(topology.tasks.map(\.name))
        let enabled = all.subtracting(try topology.disabledTasks(TaskSettings([:])))
        XCTAssertEqual(enabled, onByDefault)
        let more = all.subtracting(
            try topology.disabledTasks(
                TaskSettings([
                    "ENABLE_CLEAN_MESSAGES": "true", "MARKETPLACE_ENABLED": "false",
                ])))
        XCTAssertEqual(more, onByDefault.subtracting([.checkUpgradablePlugin]).union([.cleanMessages]))
    }

    func testEveryShippedScheduleResolvesInLogTZ() throws {
        let topology = try TopologyFiles.load("topology/default.json")
        let settings = TaskSettings(["LOG_TZ": "America/New_York", "CELERY_BEAT_SCHEDULER_TIME": "7"])
        for task in topology.tasks {
            let resolved = try XCTUnwrap(task.schedule, "\(task.name)").resolve(settings)
            if case .cron(let cron) = resolved {
                XCTAssertEqual(cron.zone.identifier, "America/New_York")
                XCTAssertFalse(cron.expression.source.contains("{"), "\(task.name)")
            }
        }
    }

    func testShippedSingleHostLoadsWithTheSameTasks() throws {
        let single = try TopologyFiles.load("topology/single-host.json")
        let standard = try TopologyFiles.load("topology/default.json")
        XCTAssertEqual(single.graph.order, standard.graph.order)
        XCTAssertTrue(single.queues.allSatisfy { $0.concurrency == 1 })
    }
}
