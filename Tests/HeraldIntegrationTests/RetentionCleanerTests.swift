// The two retention cleanups against a real PostgreSQL (and Redis, and the local stand-in
// for the billing API): every row outside the policy survives, compared id by id with a
// snapshot taken before; every row inside goes; no child is ever orphaned; a batch that
// fails is retried, not skipped; a dry run changes nothing and counts what would go.

import Foundation
import HeraldCore
import HeraldIO
import HeraldRuntime
import HeraldTasks
import Synchronization
import XCTest

final class RetentionCleanerTests: XCTestCase {
    /// Small fixed batches (ties of three rows per second cross batch boundaries), no pauses, fast retries.
    static func settings(_ change: (inout RetentionSettings) -> Void = { _ in }) -> RetentionSettings {
        var s = RetentionSettings.defaults
        s.messageBatchSize = 7
        s.workflowLogBatchSize = 4
        s.maxBatchGrowth = 1
        s.messagePauseMaxMs = 0
        s.retryBaseMs = 20
        change(&s)
        return s
    }

    func fixture() throws -> RetentionFixture {
        let f = try RetentionFixture()
        addTeardownBlock { f.drop() }
        try f.migrate()
        return f
    }

    /// `before` minus `gone`, table by table.
    static func minus(_ before: [String: Set<String>], _ gone: [String: Set<String>]) -> [String: Set<String>] {
        var out = before
        for (table, ids) in gone { out[table, default: []].subtract(ids) }
        return out
    }

    /// The ids of every message-child row of the messages `messageSQL` selects (`$1` = nowParam).
    static func childrenOf(_ f: RetentionFixture, messages messageSQL: String) throws -> [String: Set<String>] {
        var out: [String: Set<String>] = ["messages": try f.ids(messageSQL, [f.nowParam])]
        for t in RetentionFixture.messageChildren {
            out[t] = try f.ids("SELECT id::text FROM \(t) WHERE message_id IN (\(messageSQL))", [f.nowParam])
        }
        return out
    }

    func assertNoOrphans(_ f: RetentionFixture, file: StaticString = #filePath, line: UInt = #line) throws {
        let orphans = try f.orphans().filter { $0.value != 0 }
        XCTAssertEqual(orphans, [:], "no child outlives its parent", file: file, line: line)
    }

    // MARK: clean_messages

    func testBillingDisabledDeletesEveryExpiredMessageWithItsChildrenAndNothingElse() throws {
        let f = try fixture()
        for t in 0..<3 {
            let tenant = try f.addTenant(name: "t\(t)")
            let app = try f.addApp(tenant: tenant)
            try f.addMessages(app: app, count: 40 + t, createdDaysAgo: 45, withChildren: true)
            try f.addMessages(app: app, count: 10, createdDaysAgo: 31, withChildren: true)
            try f.addMessages(app: app, count: 12, createdDaysAgo: 29, withChildren: true)
            try f.addMessages(app: app, count: 5, createdDaysAgo: 1, withChildren: false)
        }
        let before = try f.snapshot()
        let expired =
            "SELECT id FROM messages WHERE created_at < \(f.ago(2).replacingOccurrences(of: "$2", with: "30"))"
        let gone = try Self.childrenOf(f, messages: expired)
        XCTAssertEqual(gone["messages"]?.count, 3 * 50 + 3)
        XCTAssertFalse(gone["dataset_retriever_resources"]!.isEmpty)

        let cleaner = MessagesCleaner(settings: Self.settings(), policy: .everyTenant, billing: nil)
        let dry = try cleaner.run(f.conn, now: f.now, dryRun: true)
        XCTAssertEqual(try f.snapshot(), before, "a dry run changes nothing")
        XCTAssertEqual(dry.deleted["messages"], 153)
        XCTAssertTrue(dry.dryRun)
        XCTAssertEqual(dry.candidates, 153, "the progress total: messages created before the cut-off")

        let report = try cleaner.run(f.conn, now: f.now, dryRun: false)
        XCTAssertEqual(
            try f.snapshot(), Self.minus(before, gone), "exactly the expired messages and their children went")
        XCTAssertEqual(report.deleted, dry.deleted, "the dry run counted what the real run deleted")
        for (table, ids) in gone where !ids.isEmpty { XCTAssertEqual(report.deleted[table], ids.count, table) }
        XCTAssertEqual(report.batches, 153 / 7 + 1)
        XCTAssertTrue(report.completed)
        XCTAssertEqual(
            try f.scalar("SELECT count(*) FROM conversations"), String(before["conversations"]!.count),
            "conversations stay, as in Dify")
        try assertNoOrphans(f)

        let again = try cleaner.run(f.conn, now: f.now, dryRun: false)
        XCTAssertEqual(again.totalDeleted, 0, "a second run finds nothing")
        XCTAssertEqual(again.candidates, 0)
    }

    func testBillingEnabledKeepsPaidGraceWhitelistedAndUnknownTenants() throws {
        let f = try fixture()
        func tenantWithMessages(_ name: String) throws -> (tenant: String, old: Set<String>, fresh: Set<String>) {
            let tenant = try f.addTenant(name: name)
            let app = try f.addApp(tenant: tenant)
            let old = try f.messageIDs(
                tag: try f.addMessages(app: app, count: 9, createdDaysAgo: 40, withChildren: true))
            let fresh = try f.messageIDs(
                tag: try f.addMessages(app: app, count: 3, createdDaysAgo: 2, withChildren: true))
            return (tenant, old, fresh)
        }
        let never = try tenantWithMessages("sandbox, never paid")
        let lapsed = try tenantWithMessages("sandbox, lapsed 30 days ago")
        let grace = try tenantWithMessages("sandbox, lapsed 5 days ago")
        let team = try tenantWithMessages("team")
        let white = try tenantWithMessages("sandbox, whitelisted")
        let unknown = try tenantWithMessages("unknown to billing")
        let cached = try tenantWithMessages("cached as sandbox, billing says team")
        try f.redis.command([
            "SET", "tenant_plan:\(cached.tenant)", "{\"plan\": \"sandbox\", \"expiration_date\": -1}", "EX", "600",
        ])
        // An unreadable cache value is counted and asked of billing instead (team: kept).
        try f.redis.command(["SET", "tenant_plan:\(team.tenant)", "{not json", "EX", "600"])
        // Many small tenants in one batch: the misses go to billing in chunks of 200.
        var many: [String] = []
        for i in 0..<205 {
            let t = try f.addTenant(name: "small \(i)")
            try f.addMessages(app: try f.addApp(tenant: t), count: 1, createdDaysAgo: 50, withChildren: false)
            many.append(t)
        }
        let billing = try f.startBilling(
            plans: [team.tenant: "team", cached.tenant: "team"],
            expirations: [lapsed.tenant: f.unixDaysAgo(30), grace.tenant: f.unixDaysAgo(5)],
            whitelist: [white.tenant], unknown: [unknown.tenant])
        let source = BillingHTTPSource(baseURL: billing.url, secret: billing.secret)
        let lookup = TenantBillingLookup(source: source, redis: f.redis)
        let rule = RetentionPolicy.SandboxRule(
            whitelist: try lookup.whitelist(), graceDays: 21,
            now: Int64(f.now.timeIntervalSince1970))
        let smallIDs = try f.ids(
            "SELECT m.id::text FROM messages m JOIN apps a ON a.id = m.app_id WHERE a.tenant_id = ANY($1::uuid[])",
            ["{" + many.joined(separator: ",") + "}"])
        let before = try f.snapshot()
        let cleaner = MessagesCleaner(
            settings: Self.settings {
                $0.billingEnabled = true; $0.messageBatchSize = 1000
            },
            policy: .sandbox(rule), billing: lookup)
        let report = try cleaner.run(f.conn, now: f.now, dryRun: false)

        let deletedTenants = [never, lapsed, cached]
        let goneIDs = deletedTenants.reduce(Set<String>()) { $0.union($1.old) }.union(smallIDs)
        XCTAssertEqual(goneIDs.count, 3 * 9 + 205)
        let after = try f.snapshot()
        XCTAssertEqual(
            after["messages"], before["messages"]!.subtracting(goneIDs),
            "paid, in-grace, whitelisted, unknown and fresh stay")
        for kept in [grace, team, white, unknown] {
            XCTAssertTrue(kept.old.isSubset(of: after["messages"]!))
        }
        XCTAssertEqual(report.deleted["messages"], goneIDs.count)
        XCTAssertEqual(report.kept, 4 * 9 + 0, "the kept expired messages of the four protected tenants")
        XCTAssertEqual(
            after["message_chains"]!.count, before["message_chains"]!.count - 3 * 9,
            "one chain per deleted message with children")
        try assertNoOrphans(f)

        XCTAssertEqual(lookup.badCacheValues, 1)
        let stats = try billing.stats()
        XCTAssertEqual(stats.whitelist, 1, "the whitelist is read once per run")
        XCTAssertEqual(stats.planBatchTenants, 205 + 5, "every tenant once, except the whitelisted and the cached")
        XCTAssertEqual(stats.planBatch, 2, "210 tenants in one batch: chunks of 200 and 10")
        XCTAssertEqual(
            try f.cachedPlan(team.tenant), "{\"plan\": \"team\", \"expiration_date\": -1}", "answers are cached as Dify"
        )
        XCTAssertNil(try f.cachedPlan(unknown.tenant), "an unknown tenant is not cached")
        let ttl = try f.redis.command(["TTL", "tenant_plan:\(never.tenant)"]).integer ?? -2
        XCTAssertTrue((1...600).contains(ttl), "600 s, as Dify: \(ttl)")
    }

    func testBillingOutageKeepsEveryoneAndFailsNothingElse() throws {
        let f = try fixture()
        let tenant = try f.addTenant()
        try f.addMessages(app: try f.addApp(tenant: tenant), count: 20, createdDaysAgo: 40, withChildren: true)
        let before = try f.snapshot()
        // Nothing listens there: every plan/batch call fails, so every tenant's plan is unknown and kept.
        let dead = BillingHTTPSource(baseURL: "http://127.0.0.1:9", secret: "x", attempts: 1)
        let lookup = TenantBillingLookup(source: dead, redis: nil)
        let cleaner = MessagesCleaner(
            settings: Self.settings { $0.billingEnabled = true },
            policy: .sandbox(.init(whitelist: [], graceDays: 21, now: Int64(f.now.timeIntervalSince1970))),
            billing: lookup)
        let report = try cleaner.run(f.conn, now: f.now, dryRun: false)
        XCTAssertEqual(try f.snapshot(), before)
        XCTAssertEqual(report.kept, 20)
        XCTAssertGreaterThan(lookup.failedChunks, 0)
        XCTAssertThrowsError(try lookup.whitelist(), "the whitelist is required: the task fails without it")
    }

    // MARK: failures

    /// Runs `body` on a thread; returns a function that waits for its result.
    static func background<T: Sendable>(_ body: @escaping @Sendable () throws -> T) -> () -> Result<T, any Error> {
        let box = Mutex<Result<T, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let r = Result { try body() }
            box.withLock { $0 = r }
            done.signal()
        }
        return {
            done.wait()
            return box.withLock { $0! }
        }
    }

    func testABatchBlockedByALiveTransactionIsRetriedNotSkipped() throws {
        let f = try fixture()
        let app = try f.addApp(tenant: try f.addTenant())
        try f.addMessages(app: app, count: 30, createdDaysAgo: 40, withChildren: true)
        // A live transaction holds a child row of the very first batch (the oldest message).
        let live = try f.connect()
        try live.query("BEGIN")
        try live.query(
            """
            SELECT id FROM message_chains WHERE message_id = (SELECT id FROM messages ORDER BY created_at, id LIMIT 1) FOR UPDATE
            """)
        let settings = Self.settings {
            $0.lockTimeoutMs = 50; $0.batchAttempts = 1000
        }
        let conn = try f.connect()
        let now = f.now
        let wait = Self.background {
            try MessagesCleaner(settings: settings, policy: .everyTenant, billing: nil).run(
                conn, now: now, dryRun: false)
        }
        // The cleaner waits on the lock, times out, retries, …; release once it has failed at least twice.
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let waiting = try f.scalar(
                """
                SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
                """)
            if waiting == "1" { break }
            usleep(5_000)
        }
        usleep(300_000)
        try live.query("ROLLBACK")
        let report = try wait().get()
        XCTAssertGreaterThanOrEqual(report.retries, 1, "the blocked batch failed and was retried")
        XCTAssertEqual(report.deleted["messages"], 30, "nothing skipped")
        XCTAssertEqual(try f.scalar("SELECT count(*) FROM messages"), "0")
        try assertNoOrphans(f)
    }

    func testABatchThatKeepsFailingFailsTheRunAndTheNextRunDeletesIt() throws {
        let f = try fixture()
        let app = try f.addApp(tenant: try f.addTenant())
        try f.addMessages(app: app, count: 30, createdDaysAgo: 40, withChildren: true)
        let live = try f.connect()
        try live.query("BEGIN")
        try live.query(
            """
            SELECT id FROM message_files WHERE message_id = (SELECT id FROM messages ORDER BY created_at, id OFFSET 10 LIMIT 1) FOR UPDATE
            """)
        let cleaner = MessagesCleaner(
            settings: Self.settings {
                $0.lockTimeoutMs = 20; $0.batchAttempts = 3
            }, policy: .everyTenant, billing: nil)
        XCTAssertThrowsError(try cleaner.run(f.conn, now: f.now, dryRun: false)) { e in
            guard case .batchFailed(let attempts, _)? = e as? RetentionError else { return XCTFail("\(e)") }
            XCTAssertEqual(attempts, 3)
        }
        XCTAssertEqual(
            try f.scalar("SELECT count(*) FROM messages"), "23",
            "the first batch went; the blocked second stopped the run")
        try assertNoOrphans(f)
        try live.query("ROLLBACK")
        let report = try cleaner.run(f.conn, now: f.now, dryRun: false)
        XCTAssertEqual(report.deleted["messages"], 23)
        XCTAssertEqual(try f.scalar("SELECT count(*) FROM messages"), "0")
    }

    func testABatchOverTheStatementTimeoutIsCancelledAndRetriedSmaller() throws {
        let f = try fixture()
        try f.addMessages(
            app: try f.addApp(tenant: try f.addTenant()), count: 120, createdDaysAgo: 40, withChildren: true)
        // The first two deletes of message_chains stall for 2 s (a sequence: its value survives the rollback).
        try f.conn.execute(
            script: """
                CREATE SEQUENCE stall_seq;
                CREATE FUNCTION stall() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF nextval('stall_seq') <= 2 THEN PERFORM pg_sleep(2); END IF;
                    RETURN NULL;
                END $$;
                CREATE TRIGGER stall BEFORE DELETE ON message_chains FOR EACH STATEMENT EXECUTE FUNCTION stall();
                """)
        let settings = Self.settings {
            $0.messageBatchSize = 50; $0.statementTimeoutMs = 100; $0.lockTimeoutMs = 50
        }
        let report = try MessagesCleaner(settings: settings, policy: .everyTenant, billing: nil).run(
            f.conn, now: f.now, dryRun: false)
        XCTAssertEqual(report.timeouts, 2, "both stalled statements were cancelled by statement_timeout")
        XCTAssertEqual(report.retries, 2)
        XCTAssertEqual(report.deleted["messages"], 120, "and retried until everything went")
        XCTAssertEqual(try f.scalar("SELECT count(*) FROM messages"), "0")
        XCTAssertGreaterThan(report.batches, 120 / 50 + 1, "the retried batches were smaller")
        try assertNoOrphans(f)
    }

    func testStopBetweenBatches() throws {
        let f = try fixture()
        try f.addMessages(
            app: try f.addApp(tenant: try f.addTenant()), count: 50, createdDaysAgo: 40, withChildren: true)
        var asked = 0
        let report = try MessagesCleaner(settings: Self.settings(), policy: .everyTenant, billing: nil)
            .run(
                f.conn, now: f.now, dryRun: false,
                shouldContinue: {
                    asked += 1
                    return asked <= 3
                })
        XCTAssertFalse(report.completed)
        XCTAssertEqual(report.batches, 3)
        XCTAssertEqual(try f.scalar("SELECT count(*) FROM messages"), "29")
        try assertNoOrphans(f)
    }

    // MARK: clean_workflow_runlogs_precise

    func testEndedExpiredRunsGoWithEverythingAttached() throws {
        let f = try fixture()
        let tenant = try f.addTenant()
        let app = try f.addApp(tenant: tenant, mode: "advanced-chat")
        var expired: Set<String> = []
        for status in RetentionFixture.endedStatuses.sorted() {
            expired.formUnion(
                try f.runIDs(
                    tag: try f.addWorkflowRuns(
                        app: app, count: 7, createdDaysAgo: 40, status: status,
                        withMessages: true)))
        }
        let running = try f.runIDs(
            tag: try f.addWorkflowRuns(app: app, count: 5, createdDaysAgo: 40, status: "running", withMessages: true))
        let paused = try f.runIDs(tag: try f.addWorkflowRuns(app: app, count: 5, createdDaysAgo: 40, status: "paused"))
        let fresh = try f.runIDs(tag: try f.addWorkflowRuns(app: app, count: 6, createdDaysAgo: 10, withMessages: true))
        try f.addMessages(app: app, count: 10, createdDaysAgo: 40, withChildren: true)  // not a run's: stays
        // One expired run's conversation also holds a message of no run: the conversation must stay.
        let shared = try XCTUnwrap(
            f.scalar(
                """
                SELECT m.conversation_id::text FROM messages m WHERE m.workflow_run_id = ANY($1::uuid[]) ORDER BY m.id LIMIT 1
                """, ["{" + expired.joined(separator: ",") + "}"]))
        try f.conn.query(
            """
            INSERT INTO messages (app_id, conversation_id, inputs, query, message, answer, message_unit_price,
                                  answer_unit_price, currency, from_source, created_at)
            VALUES ($1, $2, '{}', 'q', '{}', 'a', 0, 0, 'USD', 'api', now() AT TIME ZONE 'UTC')
            """,
            [app, shared])
        let before = try f.snapshot()

        let runList = "'{\(expired.joined(separator: ","))}'::uuid[]"
        let runMessages = "SELECT id FROM messages WHERE workflow_run_id = ANY(\(runList)) AND $1::text IS NOT NULL"
        var gone = try Self.childrenOf(f, messages: runMessages)
        gone["workflow_runs"] = expired
        gone["workflow_node_executions"] = try f.ids(
            "SELECT id::text FROM workflow_node_executions WHERE workflow_run_id = ANY(\(runList))")
        gone["workflow_node_execution_offload"] = try f.ids(
            """
            SELECT o.id::text FROM workflow_node_execution_offload o JOIN workflow_node_executions n ON n.id = o.node_execution_id
             WHERE n.workflow_run_id = ANY(\(runList))
            """)
        gone["workflow_app_logs"] = try f.ids(
            "SELECT id::text FROM workflow_app_logs WHERE workflow_run_id = ANY(\(runList))")
        gone["workflow_trigger_logs"] = try f.ids(
            "SELECT id::text FROM workflow_trigger_logs WHERE workflow_run_id = ANY(\(runList))")
        gone["workflow_pauses"] = try f.ids(
            "SELECT id::text FROM workflow_pauses WHERE workflow_run_id = ANY(\(runList))")
        gone["workflow_pause_reasons"] = try f.ids(
            """
            SELECT r.id::text FROM workflow_pause_reasons r JOIN workflow_pauses p ON p.id = r.pause_id WHERE p.workflow_run_id = ANY(\(runList))
            """)
        let convs = try f.ids(
            "SELECT DISTINCT conversation_id::text FROM messages WHERE workflow_run_id = ANY(\(runList))"
        )
        .subtracting([shared])
        gone["conversations"] = convs
        gone["workflow_conversation_variables"] = try f.ids(
            """
            SELECT id::text || '/' || conversation_id::text FROM workflow_conversation_variables WHERE conversation_id = ANY($1::uuid[])
            """, ["{" + convs.joined(separator: ",") + "}"])
        XCTAssertFalse(gone["workflow_pause_reasons"]!.isEmpty)
        XCTAssertFalse(gone["workflow_node_execution_offload"]!.isEmpty)
        XCTAssertEqual(gone["workflow_runs"]!.count, 28)

        let cleaner = WorkflowRunLogsCleaner(settings: Self.settings())
        let dry = try cleaner.run(f.conn, now: f.now, dryRun: true)
        XCTAssertEqual(try f.snapshot(), before, "a dry run changes nothing")
        let report = try cleaner.run(f.conn, now: f.now, dryRun: false)
        XCTAssertEqual(
            try f.snapshot(), Self.minus(before, gone), "exactly the expired ended runs and what hangs off them went")
        XCTAssertEqual(report.deleted, dry.deleted)
        for (table, ids) in gone where !ids.isEmpty { XCTAssertEqual(report.deleted[table], ids.count, table) }
        let after = try f.snapshot()["workflow_runs"]!
        XCTAssertTrue(running.union(paused).union(fresh).isSubset(of: after), "running, paused and fresh runs stay")
        XCTAssertTrue(
            try f.snapshot()["conversations"]!.contains(shared), "a conversation with a surviving message stays")
        try assertNoOrphans(f)
        let again = try cleaner.run(f.conn, now: f.now, dryRun: false)
        XCTAssertEqual(again.totalDeleted, 0, "a second run finds nothing")
        XCTAssertEqual(again.batches, 1)
    }

    func testSpecificWorkflowIDsRestrictTheCleanup() throws {
        let f = try fixture()
        let app = try f.addApp(tenant: try f.addTenant(), mode: "workflow")
        let chosen = DatasetFixture.uuid()
        let other = DatasetFixture.uuid()
        let mine = try f.runIDs(tag: try f.addWorkflowRuns(app: app, count: 9, createdDaysAgo: 40, workflowID: chosen))
        let theirs = try f.runIDs(tag: try f.addWorkflowRuns(app: app, count: 9, createdDaysAgo: 40, workflowID: other))
        let report = try WorkflowRunLogsCleaner(settings: Self.settings { $0.workflowIDs = [chosen] }).run(
            f.conn, now: f.now, dryRun: false)
        XCTAssertEqual(report.deleted["workflow_runs"], 9)
        XCTAssertEqual(report.candidates, 9, "the progress total counts the chosen workflow's ended runs only")
        let left = try f.snapshot()["workflow_runs"]!
        XCTAssertTrue(mine.isDisjoint(with: left))
        XCTAssertEqual(theirs, left)
        try assertNoOrphans(f)
    }

    func testFastBatchesGrowBeyondTheConfiguredSize() throws {
        let f = try fixture()
        try f.addMessages(
            app: try f.addApp(tenant: try f.addTenant()), count: 400, createdDaysAgo: 40, withChildren: true)
        let report = try MessagesCleaner(
            settings: Self.settings {
                $0.maxBatchGrowth = 10; $0.batchTargetMs = 60_000
            },
            policy: .everyTenant, billing: nil
        ).run(f.conn, now: f.now, dryRun: false)
        XCTAssertEqual(report.deleted["messages"], 400)
        XCTAssertGreaterThan(report.finalBatchSize, 7, "batches far under the target grew")
        XCTAssertLessThanOrEqual(report.finalBatchSize, 70, "never beyond 10x the configured size")
        XCTAssertLessThan(report.batches, 400 / 7, "fewer, larger batches")
        try assertNoOrphans(f)
    }

    func testRowsDeletedMetric() throws {
        let metrics = HeraldMetrics()
        let counter = RowsDeletedCounter(factory: metrics.factory)
        counter.add(task: .cleanMessages, table: "messages", rows: 5)
        counter.add(task: .cleanMessages, table: "messages", rows: 2)
        counter.add(task: .cleanWorkflowRunLogsPrecise, table: "workflow_runs", rows: 0)
        let text = String(decoding: metrics.render(), as: UTF8.self)
        XCTAssertTrue(text.contains("herald_rows_deleted_total{task=\"clean_messages\",table=\"messages\"} 7"), text)
        XCTAssertFalse(text.contains("workflow_runs"), "nothing deleted, nothing counted")
        let errors = LabeledCounter(name: BillingLookupErrors.name, labels: ["kind"], factory: metrics.factory)
        errors.add(["plan_batch"], 2)
        let again = String(decoding: metrics.render(), as: UTF8.self)
        XCTAssertTrue(again.contains("herald_billing_lookup_errors_total{kind=\"plan_batch\"} 2"), again)
    }
}
