// A private, migrated database per retention test (built on DatasetFixture: same private
// database, Redis key prefix and reference instant), with set-based builders (one
// generate_series per table, whatever the count) for Dify's messages and workflow runs and
// every row that hangs off them, a snapshot of every id of every table the retention
// cleanups touch, an orphan census, and the fake billing API started with chosen plans.
//
// Shapes (per generated row; the numbers are what snapshot() counts):
//   addMessages, per batch:  one conversation per 5 messages (the last may hold fewer);
//     per message when withChildren: message_feedbacks 1, message_annotations 1,
//     message_chains 1, message_agent_thoughts 2, message_files 2, saved_messages 1,
//     app_annotation_hit_histories 1, dataset_retriever_resources 1.
//   addWorkflowRuns, per run: workflow_node_executions 3, workflow_app_logs 1,
//     workflow_trigger_logs 1; runs with g % 2 == 0 (g = 0-based position in the batch):
//     2 workflow_node_execution_offload rows (on node execution index 2);
//     runs with g % 3 == 0: 1 workflow_pauses row with 2 workflow_pause_reasons.
//     withMessages: per run 1 conversation, 1 message (workflow_run_id set) with the
//     children above, 2 workflow_conversation_variables.
//   addApp: one manual message_annotations row (message_id and conversation_id NULL).
// Ages: row g of a batch is created at date_trunc('second', now - createdDaysAgo days)
// minus g / 3 whole seconds (integer division): three rows share each created_at, so keyset
// cursors meet ties, and a batch of n rows spans n / 3 seconds going back in time.

import Foundation
import HeraldIO
import HeraldTasks
import XCTest

struct RetentionFixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// What the fake billing API has been asked so far.
struct FakeBillingStats: Decodable, Equatable {
    var planBatch: Int
    var planBatchTenants: Int
    var whitelist: Int
    var info: Int

    enum CodingKeys: String, CodingKey {
        case planBatch = "plan_batch", planBatchTenants = "plan_batch_tenants", whitelist, info
    }
}

/// Tests/Support/fake_billing.py, running as a child process; stopped by `stop()` (idempotent).
final class FakeBillingServer {
    let url: String
    let secret: String
    private let pid: pid_t
    private var stopped = false

    /// The venv Python (`HERALD_TEST_PYTHON`), or a skip; a failure when the harness promised it.
    static func python() throws -> String {
        let env = ProcessInfo.processInfo.environment
        guard let py = env["HERALD_TEST_PYTHON"], FileManager.default.isExecutableFile(atPath: py) else {
            if env["HERALD_TEST_REQUIRE_SERVERS"] == "1" {
                XCTFail("HERALD_TEST_PYTHON is missing although HERALD_TEST_REQUIRE_SERVERS=1")
            }
            throw XCTSkip("HERALD_TEST_PYTHON not set (run through make test)")
        }
        return py
    }

    init(
        plans: [String: String], expirations: [String: Int], whitelist: [String], unknown: [String], secret: String
    ) throws {
        let python = try Self.python()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/fake_billing.py").path
        let portFile = NSTemporaryDirectory() + "herald-billing-\(UUID()).port"
        defer { try? FileManager.default.removeItem(atPath: portFile) }
        var argv = [python, script, "--secret", secret, "--port-file", portFile, "--lifetime", "1800"]
        for (t, p) in plans.sorted(by: { $0.key < $1.key }) { argv += ["--plan", "\(t)=\(p)"] }
        for (t, e) in expirations.sorted(by: { $0.key < $1.key }) { argv += ["--expiration", "\(t)=\(e)"] }
        for t in whitelist { argv += ["--whitelist", t] }
        for t in unknown { argv += ["--unknown", t] }
        var pid: pid_t = 0
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        let rc = posix_spawn(&pid, python, nil, nil, cArgs, environ)
        guard rc == 0 else { throw RetentionFixtureError("posix_spawn \(python) failed: \(rc)") }
        self.pid = pid
        self.secret = secret
        let deadline = Date().addingTimeInterval(15)
        var port = ""
        while port.isEmpty && Date() < deadline {
            port =
                (try? String(contentsOfFile: portFile, encoding: .utf8))?.trimmingCharacters(
                    in: .whitespacesAndNewlines) ?? ""
            if port.isEmpty { usleep(10_000) }
        }
        url = "http://127.0.0.1:\(port)"
        if port.isEmpty {
            stop()
            throw RetentionFixtureError("the fake billing server did not write its port within 15 s")
        }
    }

    /// Requests received so far, per endpoint (`reset`: then zero them).
    func stats(reset: Bool = false) throws -> FakeBillingStats {
        let r = try HTTPClient.get(url + "/_stats" + (reset ? "?reset=1" : ""))
        guard r.status == 200 else { throw RetentionFixtureError("GET /_stats answered \(r.status)") }
        return try JSONDecoder().decode(FakeBillingStats.self, from: Data(r.body))
    }

    func stop() {
        guard !stopped else { return }
        stopped = true
        kill(pid, SIGTERM)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }

    deinit { stop() }
}

final class RetentionFixture {
    /// Every table the two retention cleanups read or delete, in snapshot() order.
    static let tables = [
        "messages", "message_feedbacks", "message_annotations", "message_chains", "message_agent_thoughts",
        "message_files",
        "saved_messages", "app_annotation_hit_histories", "dataset_retriever_resources", "conversations",
        "workflow_conversation_variables", "workflow_runs", "workflow_node_executions",
        "workflow_node_execution_offload",
        "workflow_app_logs", "workflow_pauses", "workflow_pause_reasons", "workflow_trigger_logs",
    ]

    /// The eight tables keyed by message_id that both cleanups delete before messages.
    static let messageChildren = [
        "message_feedbacks", "message_annotations", "message_chains", "message_agent_thoughts", "message_files",
        "saved_messages", "app_annotation_hit_histories", "dataset_retriever_resources",
    ]

    /// Run statuses Dify's run cleanups select ("ended").
    static let endedStatuses: Set<String> = ["succeeded", "failed", "partial-succeeded", "stopped"]

    /// The private database, Redis prefix and reference instant.
    let base: DatasetFixture
    var conn: PostgresConnection { base.conn }
    var redis: RedisClient { base.redis }
    var keyPrefix: String { base.keyPrefix }
    var database: String { base.database }
    /// The reference instant every age is measured from (pass it to the cleaners as their `now`).
    var now: Date { base.now }
    var nowParam: String { base.nowParam }

    private var batches = 0
    private var billing: [FakeBillingServer] = []

    init() throws {
        base = try DatasetFixture()
    }

    /// Migrates with Herald's migrations (call after creating any pre-existing table a test needs).
    func migrate() throws { try base.migrate() }

    /// A second connection to the same database.
    func connect() throws -> PostgresConnection { try base.connect() }

    /// Stops every fake billing server, drops the database and this fixture's Redis keys.
    func drop() {
        billing.forEach { $0.stop() }
        base.drop()
    }

    /// SQL for "the reference instant minus `$n` days", naive UTC; `$1` must be `nowParam`.
    func ago(_ n: Int) -> String { base.ago(n) }

    /// The reference instant minus `days`, as unix seconds (for `expirations`).
    func unixDaysAgo(_ days: Double) -> Int { Int((now.timeIntervalSince1970 - days * 86_400).rounded(.down)) }

    // MARK: - Owners

    @discardableResult
    func addTenant(name: String = "tenant") throws -> String { try base.addTenant(name: name) }

    /// An app of `tenant` (`mode` as in Dify: chat, advanced-chat, workflow, agent-chat, completion) with its own
    /// `apps.workflow_id` (the default workflow of addWorkflowRuns), and one manual annotation (message_id NULL).
    @discardableResult
    func addApp(tenant: String, mode: String = "chat", name: String = "app") throws -> String {
        let id = DatasetFixture.uuid()
        try conn.query(
            """
            INSERT INTO apps (id, tenant_id, name, mode, workflow_id, enable_site, enable_api)
            VALUES ($1, $2, $3, $4, gen_random_uuid(), true, true)
            """, [id, tenant, name, mode])
        try conn.query(
            """
            INSERT INTO message_annotations (app_id, question, content, account_id, created_at, updated_at)
            VALUES ($1, 'manual question', 'manual answer', gen_random_uuid(), now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC')
            """, [id])
        return id
    }

    /// The app's tenant, mode and workflow id.
    private func appInfo(_ app: String) throws -> (tenant: String, mode: String, workflow: String) {
        guard
            let r = try conn.query("SELECT tenant_id::text, mode, workflow_id::text FROM apps WHERE id = $1", [app])
                .rows.first
        else { throw RetentionFixtureError("no app \(app)") }
        return (r[0]!, r[1]!, r[2] ?? DatasetFixture.uuid())
    }

    private func nextTag(_ kind: String) -> String {
        batches += 1
        return "\(kind)\(batches)"
    }

    // MARK: - Messages

    /// `count` messages of `app`, created `createdDaysAgo` days before `now` (see the header for the exact
    /// spread), in conversations of 5, with one row in every child table (two agent thoughts, two files) when
    /// `withChildren`. `workflow_run_id` is NULL. Returns the batch tag, stored in `messages.query` and
    /// `conversations.name` (see `messageIDs(tag:)`).
    @discardableResult
    func addMessages(app: String, count: Int, createdDaysAgo: Double, withChildren: Bool) throws -> String {
        precondition(count >= 0)
        let tag = nextTag("m")
        let info = try appInfo(app)
        try conn.transaction { c in
            try c.query(
                """
                CREATE TEMP TABLE _hc ON COMMIT DROP AS
                SELECT gen_random_uuid() AS id, k, gen_random_uuid() AS end_user_id, NULL::uuid AS workflow_run_id,
                       date_trunc('second', \(ago(2))) - make_interval(secs => (least(5 * k + 4, $3::int - 1) / 3)) AS created_at
                  FROM generate_series(0, ($3::int + 4) / 5 - 1) k
                """, [nowParam, String(createdDaysAgo), String(count)])
            try c.query(
                """
                CREATE TEMP TABLE _hm ON COMMIT DROP AS
                SELECT gen_random_uuid() AS id, g, c.id AS conversation_id, c.end_user_id, NULL::uuid AS workflow_run_id,
                       date_trunc('second', \(ago(2))) - make_interval(secs => g / 3) AS created_at
                  FROM generate_series(0, $3::int - 1) g JOIN _hc c ON c.k = g / 5
                """, [nowParam, String(createdDaysAgo), String(count)])
            try insertConversationsAndMessages(c, app: app, mode: info.mode, tag: tag, withChildren: withChildren)
        }
        return tag
    }

    /// Inserts _hc as conversations and _hm as messages (plus children); both temp tables must exist.
    private func insertConversationsAndMessages(
        _ c: PostgresConnection, app: String, mode: String, tag: String,
        withChildren: Bool
    ) throws {
        try c.query(
            """
            INSERT INTO conversations (id, app_id, mode, name, inputs, status, invoke_from, from_source, from_end_user_id,
                                       dialogue_count, created_at, updated_at)
            SELECT h.id, $1, $2, $3, '{}', 'normal', 'service-api', 'api', h.end_user_id, coalesce(n.n, 0),
                   h.created_at, h.created_at
              FROM _hc h LEFT JOIN (SELECT conversation_id, count(*) AS n FROM _hm GROUP BY conversation_id) n
                ON n.conversation_id = h.id
            """, [app, mode, tag])
        try c.query(
            """
            INSERT INTO messages (id, app_id, model_provider, model_id, conversation_id, inputs, query, message, message_tokens,
                                  message_unit_price, answer, answer_tokens, answer_unit_price, provider_response_latency,
                                  total_price, currency, status, invoke_from, from_source, from_end_user_id, created_at,
                                  updated_at, agent_based, workflow_run_id, app_mode)
            SELECT m.id, $1, 'openai', 'gpt-4o-mini', m.conversation_id, '{}', $3,
                   json_build_array(json_build_object('role', 'user', 'text', 'question ' || m.g)), 12, 0.0001,
                   'answer ' || m.g, 34, 0.0002, 0.42, 0.0001, 'USD', 'normal', 'service-api', 'api', m.end_user_id,
                   m.created_at, m.created_at, false, m.workflow_run_id, $2
              FROM _hm m
            """, [app, mode, tag])
        guard withChildren else { return }
        try c.query(
            """
            INSERT INTO message_feedbacks (app_id, conversation_id, message_id, rating, content, from_source, from_end_user_id,
                                           created_at, updated_at)
            SELECT $1, m.conversation_id, m.id, CASE WHEN m.g % 2 = 0 THEN 'like' ELSE 'dislike' END, 'feedback', 'user',
                   m.end_user_id, m.created_at, m.created_at
              FROM _hm m
            """, [app])
        try c.query(
            """
            WITH a AS (
                INSERT INTO message_annotations (app_id, conversation_id, message_id, question, content, hit_count, account_id,
                                                 created_at, updated_at)
                SELECT $1, m.conversation_id, m.id, 'question ' || m.g, 'annotated answer', 1, m.end_user_id, m.created_at, m.created_at
                  FROM _hm m
                RETURNING id, message_id, question, content, account_id, created_at
            )
            INSERT INTO app_annotation_hit_histories (app_id, annotation_id, source, question, account_id, created_at, score,
                                                      message_id, annotation_question, annotation_content)
            SELECT $1, a.id, 'api', a.question, a.account_id, a.created_at, 0.93, a.message_id, a.question, a.content FROM a
            """, [app])
        try c.query(
            """
            WITH ch AS (
                INSERT INTO message_chains (message_id, type, input, output, created_at)
                SELECT m.id, 'system', '{"input": 1}', '{"output": 1}', m.created_at FROM _hm m
                RETURNING id, message_id, created_at
            )
            INSERT INTO message_agent_thoughts (message_id, message_chain_id, position, thought, tool, tool_input, observation,
                                                tokens, created_by_role, created_by, created_at)
            SELECT ch.message_id, ch.id, p, 'thought ' || p, 'search', '{"q": "x"}', 'observed', 10, 'end_user', m.end_user_id,
                   ch.created_at
              FROM ch JOIN _hm m ON m.id = ch.message_id CROSS JOIN generate_series(1, 2) p
            """)
        try c.query(
            """
            INSERT INTO message_files (message_id, type, transfer_method, url, belongs_to, upload_file_id, created_by_role,
                                       created_by, created_at)
            SELECT m.id, 'image', 'local_file', NULL, b, gen_random_uuid(), 'end_user', m.end_user_id, m.created_at
              FROM _hm m CROSS JOIN (VALUES ('user'), ('assistant')) AS f(b)
            """)
        try c.query(
            """
            INSERT INTO saved_messages (app_id, message_id, created_by_role, created_by, created_at)
            SELECT $1, m.id, 'end_user', m.end_user_id, m.created_at FROM _hm m
            """, [app])
        try c.query(
            """
            INSERT INTO dataset_retriever_resources (message_id, position, dataset_id, dataset_name, document_id, document_name,
                                                     data_source_type, segment_id, score, content, hit_count, word_count,
                                                     segment_position, retriever_from, created_by, created_at)
            SELECT m.id, 1, gen_random_uuid(), 'kb', gen_random_uuid(), 'doc.txt', 'upload_file', gen_random_uuid(), 0.81,
                   'retrieved text', 1, 2, 1, 'api', m.end_user_id, m.created_at
              FROM _hm m
            """)
    }

    /// The ids of the messages of one addMessages / addWorkflowRuns(withMessages:) batch.
    func messageIDs(tag: String) throws -> Set<String> {
        try ids("SELECT id FROM messages WHERE query = $1", [tag])
    }

    // MARK: - Workflow runs

    /// `count` runs of `app` with `status`, created `createdDaysAgo` days before `now` (same spread as messages),
    /// `finished_at` 5 s after `created_at` for ended statuses (NULL otherwise), `triggered_from` as given,
    /// of `workflowID` (default: the app's `apps.workflow_id`), each with the rows described in the header.
    /// Returns the batch tag, stored in `workflow_runs.version` (and `messages.query` when `withMessages`).
    @discardableResult
    func addWorkflowRuns(
        app: String, count: Int, createdDaysAgo: Double, status: String = "succeeded",
        workflowID: String? = nil, withMessages: Bool = false,
        triggeredFrom: String = "app-run"
    ) throws -> String {
        precondition(count >= 0)
        let tag = nextTag("r")
        let info = try appInfo(app)
        let workflow = workflowID ?? info.workflow
        let ended = Self.endedStatuses.contains(status)
        try conn.transaction { c in
            try c.query(
                """
                CREATE TEMP TABLE _hr ON COMMIT DROP AS
                SELECT gen_random_uuid() AS id, g, gen_random_uuid() AS conversation_id, gen_random_uuid() AS end_user_id,
                       date_trunc('second', \(ago(2))) - make_interval(secs => g / 3) AS created_at
                  FROM generate_series(0, $3::int - 1) g
                """, [nowParam, String(createdDaysAgo), String(count)])
            try c.query(
                """
                INSERT INTO workflow_runs (id, tenant_id, app_id, workflow_id, type, triggered_from, version, graph, inputs, status,
                                           outputs, error, elapsed_time, total_tokens, total_steps, created_by_role, created_by,
                                           created_at, finished_at, exceptions_count)
                SELECT r.id, $1, $2, $3, $4, $5, $6, '{"nodes": [], "edges": []}', '{}', $7::text, '{}',
                       CASE WHEN $7::text = 'failed' THEN 'boom' END, 5.0, 42, 3, 'end_user', r.end_user_id, r.created_at,
                       CASE WHEN $8::boolean THEN r.created_at + interval '5 seconds' END, 0
                  FROM _hr r
                """,
                [
                    info.tenant, app, workflow, withMessages ? "chat" : "workflow", triggeredFrom, tag, status,
                    ended ? "true" : "false",
                ])
            try c.query(
                """
                CREATE TEMP TABLE _hn ON COMMIT DROP AS
                SELECT gen_random_uuid() AS id, r.id AS run_id, r.g, r.end_user_id, n.idx, n.node_type,
                       r.created_at + make_interval(secs => n.idx) AS created_at
                  FROM _hr r CROSS JOIN (VALUES (1, 'start'), (2, 'llm'), (3, 'end')) AS n(idx, node_type)
                """)
            try c.query(
                """
                INSERT INTO workflow_node_executions (id, tenant_id, app_id, workflow_id, triggered_from, workflow_run_id, index,
                                                      predecessor_node_id, node_execution_id, node_id, node_type, title, inputs,
                                                      process_data, outputs, status, elapsed_time, execution_metadata,
                                                      created_at, created_by_role, created_by, finished_at)
                SELECT n.id, $1, $2, $3, 'workflow-run', n.run_id, n.idx,
                       CASE WHEN n.idx > 1 THEN 'node-' || (n.idx - 1) END, n.id::text, 'node-' || n.idx, n.node_type,
                       initcap(n.node_type), '{}', '{}', '{}',
                       CASE WHEN $4::boolean OR n.idx < 3 THEN 'succeeded' ELSE 'running' END, 1.0, '{}',
                       n.created_at, 'end_user', n.end_user_id,
                       CASE WHEN $4::boolean OR n.idx < 3 THEN n.created_at + interval '1 second' END
                  FROM _hn n
                """, [info.tenant, app, workflow, ended ? "true" : "false"])
            try c.query(
                """
                INSERT INTO workflow_node_execution_offload (created_at, tenant_id, app_id, node_execution_id, type, file_id)
                SELECT n.created_at, $1, $2, n.id, t, gen_random_uuid()
                  FROM _hn n CROSS JOIN (VALUES ('inputs'), ('outputs')) AS o(t)
                 WHERE n.g % 2 = 0 AND n.idx = 2
                """, [info.tenant, app])
            try c.query(
                """
                INSERT INTO workflow_app_logs (tenant_id, app_id, workflow_id, workflow_run_id, created_from, created_by_role,
                                               created_by, created_at)
                SELECT $1, $2, $3, r.id, 'service-api', 'end_user', r.end_user_id, r.created_at FROM _hr r
                """, [info.tenant, app, workflow])
            try c.query(
                """
                WITH p AS (
                    INSERT INTO workflow_pauses (workflow_id, workflow_run_id, resumed_at, state_object_key, created_at, updated_at)
                    SELECT $1, r.id, CASE WHEN $2::text <> 'paused' THEN r.created_at + interval '2 seconds' END,
                           'workflow-state/' || r.id || '.json', r.created_at + interval '1 second',
                           r.created_at + interval '1 second'
                      FROM _hr r WHERE r.g % 3 = 0
                    RETURNING id, created_at
                )
                INSERT INTO workflow_pause_reasons (id, pause_id, type_, form_id, message, node_id, created_at, updated_at)
                SELECT gen_random_uuid(), p.id, t, gen_random_uuid()::text, 'waiting', 'node-2', p.created_at, p.created_at
                  FROM p CROSS JOIN (VALUES ('human_input_required'), ('scheduling_pause')) AS x(t)
                """, [workflow, status])
            try c.query(
                """
                INSERT INTO workflow_trigger_logs (tenant_id, app_id, workflow_id, workflow_run_id, root_node_id, trigger_metadata,
                                                   trigger_type, trigger_data, inputs, outputs, status, queue_name, celery_task_id,
                                                   retry_count, created_by_role, created_by, created_at, triggered_at,
                                                   finished_at)
                SELECT $1, $2, $3, r.id, 'node-1', '{}', 'trigger-schedule', '{}', '{}', '{}',
                       CASE WHEN $4::boolean THEN 'succeeded' ELSE 'running' END, 'schedule_executor', gen_random_uuid()::text, 0,
                       'end_user', r.end_user_id::text, r.created_at, r.created_at,
                       CASE WHEN $4::boolean THEN r.created_at + interval '5 seconds' END
                  FROM _hr r
                """, [info.tenant, app, workflow, ended ? "true" : "false"])
            guard withMessages else { return }
            try c.query(
                """
                CREATE TEMP TABLE _hc ON COMMIT DROP AS
                SELECT r.conversation_id AS id, r.g AS k, r.end_user_id, r.id AS workflow_run_id, r.created_at FROM _hr r
                """)
            try c.query(
                """
                CREATE TEMP TABLE _hm ON COMMIT DROP AS
                SELECT gen_random_uuid() AS id, r.g, r.conversation_id, r.end_user_id, r.id AS workflow_run_id, r.created_at
                  FROM _hr r
                """)
            try insertConversationsAndMessages(c, app: app, mode: "advanced-chat", tag: tag, withChildren: true)
            try c.query(
                """
                INSERT INTO workflow_conversation_variables (id, conversation_id, app_id, data, created_at, updated_at)
                SELECT gen_random_uuid(), h.id, $1, json_build_object('name', 'var' || v, 'value', v)::text, h.created_at, h.created_at
                  FROM _hc h CROSS JOIN generate_series(1, 2) v
                """, [app])
        }
        return tag
    }

    /// The ids of the runs of one addWorkflowRuns batch.
    func runIDs(tag: String) throws -> Set<String> {
        try ids("SELECT id FROM workflow_runs WHERE version = $1", [tag])
    }

    // MARK: - Inspection

    /// Every id of every table in `tables` (workflow_conversation_variables as "id/conversation_id").
    func snapshot() throws -> [String: Set<String>] {
        var out: [String: Set<String>] = [:]
        for t in Self.tables {
            out[t] =
                t == "workflow_conversation_variables"
                ? try ids("SELECT id::text || '/' || conversation_id::text FROM workflow_conversation_variables")
                : try ids("SELECT id FROM \(t)")
        }
        return out
    }

    /// Row counts per table of a snapshot.
    static func counts(_ snapshot: [String: Set<String>]) -> [String: Int] { snapshot.mapValues(\.count) }

    /// The first column of every row of `sql`, as text.
    func ids(_ sql: String, _ params: [String?] = []) throws -> Set<String> {
        Set(try conn.query(sql, params).rows.compactMap { $0.first ?? nil })
    }

    func scalar(_ sql: String, _ params: [String?] = []) throws -> String? { try base.scalar(sql, params) }

    /// Child → parent references checked by `orphans()`: (key, child table, column, parent table).
    static let references: [(key: String, child: String, column: String, parent: String)] =
        messageChildren.map { ("\($0).message_id", $0, "message_id", "messages") } + [
            ("messages.conversation_id", "messages", "conversation_id", "conversations"),
            ("messages.workflow_run_id", "messages", "workflow_run_id", "workflow_runs"),
            (
                "workflow_conversation_variables.conversation_id", "workflow_conversation_variables", "conversation_id",
                "conversations"
            ),
            (
                "workflow_node_executions.workflow_run_id", "workflow_node_executions", "workflow_run_id",
                "workflow_runs"
            ),
            (
                "workflow_node_execution_offload.node_execution_id", "workflow_node_execution_offload",
                "node_execution_id",
                "workflow_node_executions"
            ),
            ("workflow_app_logs.workflow_run_id", "workflow_app_logs", "workflow_run_id", "workflow_runs"),
            ("workflow_pauses.workflow_run_id", "workflow_pauses", "workflow_run_id", "workflow_runs"),
            ("workflow_pause_reasons.pause_id", "workflow_pause_reasons", "pause_id", "workflow_pauses"),
            ("workflow_trigger_logs.workflow_run_id", "workflow_trigger_logs", "workflow_run_id", "workflow_runs"),
        ]

    /// For every reference in `references` ("child.column"): rows whose non-NULL parent id no longer exists.
    func orphans() throws -> [String: Int] {
        var out: [String: Int] = [:]
        for r in Self.references {
            out[r.key] =
                Int(
                    try scalar(
                        """
                        SELECT count(*) FROM \(r.child) c
                         WHERE c.\(r.column) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM \(r.parent) p WHERE p.id = c.\(r.column))
                        """) ?? "0") ?? -1
        }
        return out
    }

    /// The value cached under `tenant_plan:{tenant}` (never prefixed, as Dify's billing cache; nil when absent).
    func cachedPlan(_ tenant: String) throws -> String? {
        try redis.command(["GET", "tenant_plan:\(tenant)"]).text
    }

    // MARK: - Billing

    /// Starts Tests/Support/fake_billing.py: `plans` (default sandbox), `expirations` in unix seconds (default -1),
    /// whitelisted tenants, and tenants the batch endpoint leaves out of `data`. Stopped by `drop()`.
    func startBilling(
        plans: [String: String] = [:], expirations: [String: Int] = [:], whitelist: [String] = [],
        unknown: [String] = [], secret: String = "retention-test-secret"
    ) throws -> FakeBillingServer {
        let server = try FakeBillingServer(
            plans: plans, expirations: expirations, whitelist: whitelist, unknown: unknown,
            secret: secret)
        billing.append(server)
        return server
    }
}
