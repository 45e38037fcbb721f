// Migrations 6 and 7 against a real PostgreSQL: Dify's message and workflow-run tables
// appear with the `(created_at, id)` keyset indexes, and messages(workflow_run_id) gets
// Herald's partial index, valid and used; a second run changes nothing; a Dify table that
// already exists (of another shape) gets no column or index from migration 6, only
// migration 7's index; and an INVALID leftover of a failed concurrent build is rebuilt.
// Also the retention fixture itself: the rows it generates, and that orphans() sees a
// dangling child when there is one.

import Foundation
import HeraldIO
import HeraldTasks
import XCTest

final class RetentionMigrationTests: XCTestCase {
    /// Columns (name, type, default, nullability) and indexes of the public schema.
    private func catalog(_ f: RetentionFixture) throws -> [String] {
        let columns = try f.conn.query(
            """
            SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || coalesce(column_default, '-') || ' ' || is_nullable
              FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1
            """
        ).rows.map { $0[0]! }
        let indexes = try f.conn.query(
            "SELECT indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
        )
        .rows.map { $0[0]! }
        return columns + indexes
    }

    private func indexDefinition(_ f: RetentionFixture, _ name: String) throws -> String? {
        try f.scalar("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND indexname = $1", [name])
    }

    /// (valid, ready, oid) of an index, nil when absent.
    private func indexState(_ f: RetentionFixture, _ name: String) throws -> (valid: Bool, ready: Bool, oid: String)? {
        guard
            let r = try f.conn.query(
                """
                SELECT i.indisvalid::text, i.indisready::text, c.oid::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                 WHERE c.relname = $1
                """, [name]
            ).rows.first
        else { return nil }
        return (r[0] == "true", r[1] == "true", r[2]!)
    }

    private func indexNames(_ f: RetentionFixture, table: String) throws -> Set<String> {
        try f.ids("SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = $1", [table])
    }

    func testCreatesRetentionTablesWithKeysetIndexesAndIsIdempotent() throws {
        let f = try RetentionFixture()
        defer { f.drop() }
        let first = try Migrator.migrate(f.conn)
        XCTAssertTrue(first.applied.contains("6 dify_retention_tables"), "\(first.applied)")
        XCTAssertEqual(first.applied.last, "7 herald_messages_workflow_run_index", "the concurrent build runs last")
        for table in RetentionFixture.tables {
            XCTAssertEqual(try f.scalar("SELECT to_regclass($1) IS NOT NULL", [table]), "t", "missing table \(table)")
        }
        XCTAssertEqual(
            try indexDefinition(f, "message_created_at_id_idx"),
            "CREATE INDEX message_created_at_id_idx ON public.messages USING btree (created_at, id)")
        XCTAssertEqual(
            try indexDefinition(f, "workflow_run_created_at_id_idx"),
            "CREATE INDEX workflow_run_created_at_id_idx ON public.workflow_runs USING btree (created_at, id)")
        XCTAssertEqual(
            try indexDefinition(f, "herald_message_workflow_run_idx"),
            "CREATE INDEX herald_message_workflow_run_idx ON public.messages USING btree (workflow_run_id) "
                + "WHERE (workflow_run_id IS NOT NULL)")
        let state = try XCTUnwrap(try indexState(f, "herald_message_workflow_run_idx"))
        XCTAssertTrue(state.valid && state.ready, "the concurrent build finished")
        for name in [
            "message_pkey", "message_workflow_run_id_idx", "message_feedback_message_idx",
            "saved_message_message_id_idx",
            "workflow__conversation_variables_pkey", "workflow_node_execution_workflow_run_id_idx",
            "workflow_node_execution_offload_node_execution_id_key", "workflow_app_log_workflow_run_id_idx",
            "workflow_pauses_workflow_run_id_key", "workflow_pause_reasons_pause_id_idx",
            "workflow_trigger_log_workflow_run_idx",
        ] {
            XCTAssertNotNil(try indexDefinition(f, name), "missing Dify index \(name)")
        }
        XCTAssertEqual(
            try f.scalar("SELECT string_agg(version::text, ',' ORDER BY version) FROM herald.schema_migrations"),
            Migrations.all.map { String($0.version) }.sorted { Int($0)! < Int($1)! }.joined(separator: ","))

        // The run-log cleanup's lookup by run id can use the index (sequential scans priced out to make it visible).
        try f.conn.query("SET enable_seqscan = off")
        let plan = try f.conn.query(
            "EXPLAIN SELECT id, conversation_id FROM messages WHERE workflow_run_id = ANY($1::uuid[])",
            ["{\(UUID().uuidString.lowercased())}"]
        ).rows.map { $0[0] ?? "" }.joined(separator: "\n")
        try f.conn.query("RESET enable_seqscan")
        XCTAssertTrue(plan.contains("herald_message_workflow_run_idx"), plan)

        let before = try catalog(f)
        let second = try Migrator.migrate(f.conn)
        XCTAssertEqual(second.applied, [])
        XCTAssertEqual(second.alreadyApplied, Migrations.all.count)
        // The statement itself again (as if the version row were lost) changes nothing either.
        try f.conn.execute(script: Migrations.all.first { $0.version == 6 }!.sql)
        try f.conn.execute(script: Migrations.all.first { $0.version == 7 }!.sql)
        XCTAssertEqual(try catalog(f), before)
    }

    func testLeavesAnExistingMessagesTableAloneButIndexesItsRunColumn() throws {
        let f = try RetentionFixture()
        defer { f.drop() }
        // Another Dify version's messages: fewer columns, no keyset index, one index of its own (in place
        // of Dify 1.14.2's own table in the test pass on Dify's real schema).
        try f.conn.execute(
            script: """
                DROP TABLE IF EXISTS messages;
                CREATE TABLE messages (id uuid PRIMARY KEY, app_id uuid NOT NULL, conversation_id uuid NOT NULL,
                                       query text NOT NULL, workflow_run_id uuid, created_at timestamp NOT NULL DEFAULT now());
                CREATE INDEX message_app_id_idx ON messages (app_id, created_at);
                INSERT INTO messages (id, app_id, conversation_id, query, workflow_run_id)
                SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'q', CASE WHEN g % 2 = 0 THEN gen_random_uuid() END
                  FROM generate_series(1, 50) g;
                """)
        let columnsSQL =
            "SELECT column_name || ' ' || data_type FROM information_schema.columns WHERE table_name = 'messages'"
        let columnsBefore = try f.ids(columnsSQL)
        let rowsBefore = try f.ids("SELECT row_to_json(m)::text FROM messages m")
        XCTAssertEqual(try indexNames(f, table: "messages"), ["messages_pkey", "message_app_id_idx"])

        let report = try Migrator.migrate(f.conn)
        XCTAssertTrue(report.applied.contains("6 dify_retention_tables"))
        XCTAssertTrue(report.applied.contains("7 herald_messages_workflow_run_index"))
        XCTAssertEqual(try f.ids(columnsSQL), columnsBefore, "no column added")
        XCTAssertEqual(try f.ids("SELECT row_to_json(m)::text FROM messages m"), rowsBefore, "no row changed")
        XCTAssertEqual(
            try indexNames(f, table: "messages"),
            ["messages_pkey", "message_app_id_idx", "herald_message_workflow_run_idx"],
            "migration 6 adds nothing to an existing table; migration 7 adds its one index")
        XCTAssertEqual(try indexState(f, "herald_message_workflow_run_idx")?.valid, true)
        XCTAssertEqual(
            try f.scalar("SELECT to_regclass('message_feedbacks') IS NOT NULL"), "t", "absent tables are still created")
        XCTAssertNotNil(try indexDefinition(f, "workflow_run_created_at_id_idx"))
    }

    func testRebuildsAnInvalidLeftoverIndex() throws {
        let f = try RetentionFixture()
        defer { f.drop() }
        try f.migrate()
        let tenant = try f.addTenant()
        let app = try f.addApp(tenant: tenant, mode: "advanced-chat")
        try f.addWorkflowRuns(app: app, count: 30, createdDaysAgo: 3, withMessages: true)
        let original = try XCTUnwrap(try indexState(f, "herald_message_workflow_run_idx"))
        // What a CREATE INDEX CONCURRENTLY that failed half-way leaves behind: an INVALID index, version 7 not recorded.
        try f.conn.query(
            """
            UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'herald_message_workflow_run_idx'::regclass
            """)
        try f.conn.query("DELETE FROM herald.schema_migrations WHERE version = 7")
        XCTAssertEqual(try indexState(f, "herald_message_workflow_run_idx")?.valid, false, "the leftover is invalid")

        let report = try Migrator.migrate(f.conn)
        XCTAssertEqual(report.applied, ["7 herald_messages_workflow_run_index"])
        let rebuilt = try XCTUnwrap(try indexState(f, "herald_message_workflow_run_idx"))
        XCTAssertTrue(rebuilt.valid && rebuilt.ready, "rebuilt valid")
        XCTAssertNotEqual(rebuilt.oid, original.oid, "dropped and built again, not kept")
        XCTAssertEqual(
            try f.scalar("SELECT count(*) FROM pg_class WHERE relname = 'herald_message_workflow_run_idx'"), "1")
        XCTAssertEqual(try f.scalar("SELECT count(*) FROM herald.schema_migrations WHERE version = 7"), "1")
        XCTAssertEqual(try Migrator.migrate(f.conn).applied, [])
    }

    func testFixtureGeneratesConsistentData() throws {
        let f = try RetentionFixture()
        defer { f.drop() }
        try f.migrate()
        let tenant = try f.addTenant()
        let chat = try f.addApp(tenant: tenant, mode: "chat")
        let flow = try f.addApp(tenant: tenant, mode: "advanced-chat")
        let otherWorkflow = DatasetFixture.uuid()
        let m1 = try f.addMessages(app: chat, count: 23, createdDaysAgo: 40, withChildren: true)
        let m2 = try f.addMessages(app: chat, count: 7, createdDaysAgo: 2, withChildren: false)
        let r1 = try f.addWorkflowRuns(
            app: flow, count: 10, createdDaysAgo: 35, status: "succeeded", withMessages: true)
        let r2 = try f.addWorkflowRuns(
            app: flow, count: 4, createdDaysAgo: 1, status: "running", workflowID: otherWorkflow,
            withMessages: false)

        let snapshot = try f.snapshot()
        XCTAssertEqual(
            RetentionFixture.counts(snapshot),
            [
                "messages": 23 + 7 + 10, "message_feedbacks": 33, "message_annotations": 33 + 2, "message_chains": 33,
                "message_agent_thoughts": 66, "message_files": 66, "saved_messages": 33,
                "app_annotation_hit_histories": 33,
                "dataset_retriever_resources": 33, "conversations": 5 + 2 + 10, "workflow_conversation_variables": 20,
                "workflow_runs": 14, "workflow_node_executions": 42, "workflow_node_execution_offload": 5 * 2 + 2 * 2,
                "workflow_app_logs": 14, "workflow_pauses": 4 + 2, "workflow_pause_reasons": 12,
                "workflow_trigger_logs": 14,
            ])
        XCTAssertEqual(try f.orphans().filter { $0.value != 0 }, [:])
        XCTAssertEqual(try f.orphans().count, RetentionFixture.references.count)

        // Ages: within the first hour before "now - days", three rows per created_at second.
        let window = "created_at <= \(f.ago(2)) AND created_at > \(f.ago(2)) - interval '1 hour'"
        let m1IDs = try f.messageIDs(tag: m1)
        XCTAssertEqual(m1IDs.count, 23)
        XCTAssertEqual(
            try f.ids("SELECT id FROM messages WHERE query = $3 AND \(window)", [f.nowParam, "40", m1]), m1IDs)
        XCTAssertEqual(try f.scalar("SELECT count(DISTINCT created_at) FROM messages WHERE query = $1", [m1]), "8")
        XCTAssertEqual(
            try f.ids("SELECT id FROM messages WHERE query = $3 AND \(window)", [f.nowParam, "2", m2]).count, 7)
        XCTAssertEqual(
            try f.scalar(
                "SELECT count(*) FROM messages WHERE query = ANY($1::text[]) AND workflow_run_id IS NOT NULL",
                ["{\(m1),\(m2)}"]), "0")
        let r1IDs = try f.runIDs(tag: r1)
        XCTAssertEqual(
            try f.ids("SELECT id FROM workflow_runs WHERE version = $3 AND \(window)", [f.nowParam, "35", r1]), r1IDs)
        XCTAssertEqual(
            try f.ids("SELECT workflow_run_id FROM messages WHERE query = $1", [r1]), r1IDs, "one message per run")
        XCTAssertEqual(
            try f.scalar("SELECT count(*) FROM workflow_runs WHERE version = $1 AND finished_at IS NOT NULL", [r1]),
            "10")
        let r2IDs = try f.runIDs(tag: r2)
        XCTAssertEqual(
            try f.ids(
                "SELECT DISTINCT status || ' ' || workflow_id || ' ' || (finished_at IS NULL) FROM workflow_runs WHERE version = $1",
                [r2]), ["running \(otherWorkflow) true"])
        XCTAssertEqual(
            try f.ids(
                "SELECT workflow_run_id FROM workflow_node_executions WHERE workflow_run_id = ANY($1::uuid[])",
                ["{\(r2IDs.joined(separator: ","))}"]), r2IDs)
        XCTAssertEqual(try f.ids("SELECT DISTINCT tenant_id FROM workflow_runs"), [tenant])

        // orphans() sees dangling children: one message and one run (with a pause and offloads) removed alone.
        let message = try XCTUnwrap(m1IDs.first)
        let run = try XCTUnwrap(
            try f.scalar(
                """
                SELECT r.id FROM workflow_runs r JOIN workflow_pauses p ON p.workflow_run_id = r.id
                 WHERE r.version = $1 AND EXISTS (SELECT 1 FROM workflow_node_executions n
                                                   JOIN workflow_node_execution_offload o ON o.node_execution_id = n.id
                                                  WHERE n.workflow_run_id = r.id)
                 LIMIT 1
                """, [r1]))
        try f.conn.query("DELETE FROM messages WHERE id = $1", [message])
        try f.conn.query("DELETE FROM workflow_runs WHERE id = $1", [run])
        var expected = Dictionary(uniqueKeysWithValues: RetentionFixture.references.map { ($0.key, 0) })
        for child in RetentionFixture.messageChildren { expected["\(child).message_id"] = 1 }
        expected["message_agent_thoughts.message_id"] = 2
        expected["message_files.message_id"] = 2
        expected["messages.workflow_run_id"] = 1
        expected["workflow_node_executions.workflow_run_id"] = 3
        expected["workflow_app_logs.workflow_run_id"] = 1
        expected["workflow_pauses.workflow_run_id"] = 1
        expected["workflow_trigger_logs.workflow_run_id"] = 1
        XCTAssertEqual(try f.orphans(), expected)
        var after = snapshot
        after["messages"]!.remove(message)
        after["workflow_runs"]!.remove(run)
        XCTAssertEqual(try f.snapshot(), after, "exactly the two deleted rows are gone")
    }

    func testFakeBillingBulkEndpoints() throws {
        let f = try RetentionFixture()
        defer { f.drop() }
        let expired = f.unixDaysAgo(30)
        let billing = try f.startBilling(
            plans: ["t-team": "team", "t-old": "sandbox"], expirations: ["t-old": expired],
            whitelist: ["t-white", "t-white2"], unknown: ["t-gone"], secret: "bulk-secret")
        func post(_ ids: [String], secret: String = "bulk-secret") throws -> (status: Int, body: String) {
            let body = try JSONSerialization.data(withJSONObject: ["tenant_ids": ids])
            let r = try HTTPClient.post(
                billing.url + "/subscription/plan/batch", body: Array(body),
                headers: ["Billing-Api-Secret-Key: \(secret)", "Content-Type: application/json"])
            return (r.status, String(decoding: r.body, as: UTF8.self))
        }
        let answer = try post(["t-team", "t-old", "t-new", "t-gone"])
        XCTAssertEqual(answer.status, 200)
        let json = try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]
        let data = try XCTUnwrap(json?["data"] as? [String: [String: Any]], answer.body)
        XCTAssertEqual(Set(data.keys), ["t-team", "t-old", "t-new"], "unknown tenants are left out")
        XCTAssertEqual(data["t-team"]?["plan"] as? String, "team")
        XCTAssertEqual(data["t-team"]?["expiration_date"] as? Int, -1)
        XCTAssertEqual(data["t-old"]?["plan"] as? String, "sandbox")
        XCTAssertEqual(data["t-old"]?["expiration_date"] as? Int, expired)
        XCTAssertEqual(data["t-new"]?["plan"] as? String, "sandbox", "sandbox by default")
        XCTAssertEqual(data["t-new"]?["expiration_date"] as? Int, -1, "never subscribed by default")
        XCTAssertEqual(try post((0..<200).map { "t\($0)" }).status, 200, "Dify's chunk of 200 is accepted")
        XCTAssertEqual(try post((0..<201).map { "t\($0)" }).status, 400, "more than a chunk is refused")
        XCTAssertEqual(try post(["t-team", "fail"]).status, 500, "a failing tenant fails its whole chunk")
        XCTAssertEqual(try post(["t-team"], secret: "wrong").status, 401)

        let whitelist = try HTTPClient.get(
            billing.url + "/subscription/cleanup/whitelist",
            headers: ["Billing-Api-Secret-Key: bulk-secret"])
        XCTAssertEqual(whitelist.status, 200)
        XCTAssertEqual(
            String(decoding: whitelist.body, as: UTF8.self),
            #"{"data": [{"tenant_id": "t-white"}, {"tenant_id": "t-white2"}]}"#)
        XCTAssertEqual(try HTTPClient.get(billing.url + "/subscription/cleanup/whitelist").status, 401)
        XCTAssertEqual(
            try HTTPClient.get(
                billing.url + "/subscription/info?tenant_id=t-team",
                headers: ["Billing-Api-Secret-Key: bulk-secret"]
            ).status, 200)

        XCTAssertEqual(
            try billing.stats(reset: true),
            FakeBillingStats(planBatch: 5, planBatchTenants: 4 + 200 + 201 + 2 + 1, whitelist: 2, info: 1))
        XCTAssertEqual(try billing.stats(), FakeBillingStats(planBatch: 0, planBatchTenants: 0, whitelist: 0, info: 0))
    }
}
