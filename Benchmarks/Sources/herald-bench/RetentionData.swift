// The data of the `retention` scenario: template databases migrated with
// HeraldTasks' Migrator and filled with set-based SQL (generate_series), copied
// for each column with `CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY` (a file
// copy), so every column starts from the same bytes. The messages data set is
// here, the workflow runs' in RetentionData+Runs.swift, the checks in
// RetentionCensus.swift.
//
// Ids are md5 of a tag and the sequence number cast to uuid: random-looking like
// Dify's uuid4 keys (so child-table lookups are as scattered as in production),
// yet reproducible, so a child row names its parent without a lookup. Rows are
// inserted in creation-time order, as an application appends them. The indexes
// are dropped for the load and rebuilt from their own definitions afterwards,
// then every table is vacuumed and analysed.

import Foundation
import HeraldCore
import HeraldIO
import HeraldTasks

/// Creates, fills, copies, checks and drops the scenario's databases.
struct RetentionBenchData: BenchDatabases {
    /// Every database this scenario creates starts with this.
    static let databasePrefix = "herald_bench_ret"
    static let ended = "('succeeded', 'failed', 'partial-succeeded', 'stopped')"
    static let messageChildren = [
        "message_feedbacks", "message_annotations", "message_chains", "message_agent_thoughts", "message_files",
        "saved_messages", "app_annotation_hit_histories", "dataset_retriever_resources",
    ]
    static let messageTables = ["conversations", "messages"] + messageChildren
    static let runTables =
        messageTables + [
            "workflow_conversation_variables", "workflow_runs", "workflow_node_executions",
            "workflow_node_execution_offload",
            "workflow_app_logs", "workflow_pauses", "workflow_pause_reasons", "workflow_trigger_logs",
        ]

    let environment: BenchEnvironment
    let admin: PostgresConnection

    init(environment: BenchEnvironment) throws {
        self.environment = environment
        admin = try PostgresConnection(connInfo: environment.database)
    }

    // MARK: Databases

    func info(_ name: String) -> PostgresConnInfo { environment.database(named: name) }
    func url(_ name: String) -> String { environment.databaseURL(named: name) }

    /// Drops `name` if it exists, creates it and applies every Herald migration (Dify's tables included).
    func create(_ name: String) throws {
        drop(name)
        try admin.query("CREATE DATABASE \(name)")
        let c = try PostgresConnection(connInfo: info(name))
        _ = try Migrator.migrate(c)
    }

    /// `CREATE DATABASE to TEMPLATE from STRATEGY FILE_COPY`: a file-level copy after a checkpoint.
    func copy(_ from: String, to: String) throws {
        drop(to)
        endSessions(from)
        do {
            try admin.query("CREATE DATABASE \(to) TEMPLATE \(from) STRATEGY FILE_COPY")
        } catch {
            // before PostgreSQL 15 (no STRATEGY): the same copy without it
            guard case .postgresQuery(sqlState: "42601", message: _) = error else { throw error }
            try admin.query("CREATE DATABASE \(to) TEMPLATE \(from)")
        }
    }

    /// Writes every dirty buffer now, so that no column pays for the previous one's checkpoint.
    func checkpoint() { _ = try? admin.query("CHECKPOINT") }

    /// On-disk size of a database.
    func size(_ name: String) -> Int? {
        ((try? admin.query("SELECT pg_database_size($1)", [name]))?.rows.first?.first ?? nil).flatMap { Int($0) }
    }

    /// `now() AT TIME ZONE 'UTC'` on the server, as a timestamp literal (Dify stores naive UTC).
    func serverNowUTC() throws -> String {
        guard let v = try admin.query("SELECT (now() AT TIME ZONE 'UTC')::text").rows.first?.first ?? nil else {
            throw BenchFailure("cannot read the server's clock")
        }
        return v
    }

    // MARK: Loading

    /// Runs `statements` on `name` with the indexes of `tables` dropped, rebuilds them from their own
    /// definitions, then VACUUM (ANALYZE) on every table.
    func load(_ name: String, tables: [String], statements: [String]) throws {
        let c = try PostgresConnection(connInfo: info(name))
        try c.query("SET maintenance_work_mem = '256MB'")
        let defs = try c.query(
            """
            SELECT t.relname, ic.relname, pg_get_indexdef(i.indexrelid), con.conname, pg_get_constraintdef(con.oid)
              FROM pg_index i
              JOIN pg_class t ON t.oid = i.indrelid
              JOIN pg_class ic ON ic.oid = i.indexrelid
              LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = t.oid
             WHERE t.relnamespace = 'public'::regnamespace AND t.relname = ANY($1::text[])
            """, ["{" + tables.joined(separator: ",") + "}"]
        ).rows
        for d in defs {
            guard let table = d[0], let index = d[1] else { continue }
            if let constraint = d[3] {
                try c.query("ALTER TABLE \(table) DROP CONSTRAINT \(constraint)")
            } else {
                try c.query("DROP INDEX \(index)")
            }
        }
        for s in statements { try c.query(s) }
        for d in defs {
            guard let table = d[0], let indexDef = d[2] else { continue }
            if let constraint = d[3], let conDef = d[4] {
                try c.query("ALTER TABLE \(table) ADD CONSTRAINT \(constraint) \(conDef)")
            } else {
                try c.query(indexDef)
            }
        }
        for t in tables + ["tenants", "apps"] { try c.execute(script: "VACUUM (ANALYZE) \(t)") }
    }

    // MARK: Messages

    /// Expired messages (`expired`, created 31–120 days ago) and recent ones (`recent`, 1–29 days ago),
    /// each with a chain, an agent thought and a file; a share with feedback (1/5), annotation and hit
    /// history (1/10), saved (1/10), retriever resource (1/4). Ten messages to a conversation.
    func messageStatements(expired n: Int, recent k: Int, base: String, config: RetentionConfig) -> [String] {
        let m = n + k
        let b = "'\(base)'::timestamp"
        func ts(_ g: String) -> String {
            """
            CASE WHEN \(g) < \(n) THEN \(b) - interval '120 days' + (\(g)::float8 / \(max(n, 1))) * interval '89 days'
                 ELSE \(b) - interval '29 days' + ((\(g) - \(n))::float8 / \(max(k, 1))) * interval '28 days' END
            """
        }
        let a = config.apps
        let source = { (condition: String?) in
            "(SELECT g, \(ts("g")) AS ts FROM generate_series(0, \(m - 1)) g\(condition.map { " WHERE " + $0 } ?? "")) s"
        }
        var out = tenantsAndApps(config: config, mode: "chat")
        out.append(
            """
            INSERT INTO conversations (id, app_id, mode, name, inputs, status, from_source, from_end_user_id, dialogue_count,
                                       created_at, updated_at)
            SELECT md5('ret-conv-' || c)::uuid, md5('ret-app-' || (c % \(a)))::uuid, 'chat', 'conversation ' || c, '{}', 'normal', 'api',
                   md5('ret-user-' || (c % 1000))::uuid, 10, ts, ts
              FROM (SELECT c, \(ts("c * 10")) AS ts FROM generate_series(0, \((m - 1) / 10)) c) s
            """)
        out.append(
            Self.messagesInsert(
                id: "md5('ret-msg-' || g)::uuid", app: "md5('ret-app-' || ((g / 10) % \(a)))::uuid",
                conversation: "md5('ret-conv-' || (g / 10))::uuid", workflowRun: "NULL", mode: "chat",
                source: source(nil)))
        out += Self.messageChildInserts(
            message: "md5('ret-msg-' || g)::uuid", app: "md5('ret-app-' || ((g / 10) % \(a)))::uuid",
            conversation: "md5('ret-conv-' || (g / 10))::uuid", tag: "ret", source: source,
            shares: .init(
                feedback: "g % 5 = 0", annotation: "g % 10 = 1", saved: "g % 10 = 2",
                resource: "g % 4 = 0"))
        return out
    }

    func tenantsAndApps(config: RetentionConfig, mode: String) -> [String] {
        [
            """
            INSERT INTO tenants (id, name)
            SELECT md5('ret-tenant-' || t)::uuid, 'retention bench tenant ' || t FROM generate_series(0, \(config.tenants - 1)) t
            """,
            """
            INSERT INTO apps (id, tenant_id, name, mode, enable_site, enable_api)
            SELECT md5('ret-app-' || a)::uuid, md5('ret-tenant-' || (a % \(config.tenants)))::uuid, 'retention bench app ' || a, '\(mode)',
                   true, true
              FROM generate_series(0, \(config.apps - 1)) a
            """,
        ]
    }

    static func messagesInsert(
        id: String, app: String, conversation: String, workflowRun: String, mode: String,
        source: String
    ) -> String {
        """
        INSERT INTO messages (id, app_id, conversation_id, inputs, query, message, message_tokens, message_unit_price, answer,
                              answer_tokens, answer_unit_price, provider_response_latency, total_price, currency, from_source,
                              from_end_user_id, invoke_from, created_at, updated_at, workflow_run_id, app_mode, model_provider,
                              model_id)
        SELECT \(id), \(app), \(conversation), '{"city": "Berlin"}',
               'What will the weather be like tomorrow? #' || g,
               ('[{"role": "user", "text": "What will the weather be like tomorrow? #' || g || '"}]')::json, 24, 0.0015,
               'Tomorrow will be mostly sunny with a light breeze from the west; bring a jacket for the evening. #' || g, 38,
               0.006,
               1.25, 0.0000620, 'USD', 'api', md5('ret-user-' || (g % 1000))::uuid, 'service-api', ts, ts, \(workflowRun),
               '\(mode)', 'openai', 'gpt-4o-mini'
          FROM \(source)
        """
    }

    /// Which messages get the optional children (SQL conditions on g; nil = none).
    struct ChildShares {
        var feedback: String?
        var annotation: String?
        var saved: String?
        var resource: String?
    }

    /// The eight child tables of the messages `source` yields (columns g, ts): every message a chain, an
    /// agent thought and a file; the shares as `shares` says (hit histories go with annotations).
    static func messageChildInserts(
        message: String, app: String, conversation: String, tag: String,
        source: (String?) -> String, shares: ChildShares
    ) -> [String] {
        let user = "md5('ret-user-' || (g % 1000))::uuid"
        let account = "md5('ret-account-' || (g % 50))::uuid"
        var out = [
            """
            INSERT INTO message_chains (id, message_id, type, input, output, created_at)
            SELECT md5('\(tag)-chain-' || g)::uuid, \(message), 'system', '{"query": "weather #' || g || '"}',
                   '{"answer": "mostly sunny"}', ts
              FROM \(source(nil))
            """,
            """
            INSERT INTO message_agent_thoughts (id, message_id, message_chain_id, position, thought, tool, tool_input, observation,
                                                tokens, total_price, currency, latency, created_by_role, created_by, created_at)
            SELECT md5('\(tag)-thought-' || g)::uuid, \(message), md5('\(tag)-chain-' || g)::uuid, 1,
                   'I should look up the forecast for the city the user named.', 'weather', '{"city": "Berlin"}',
                   '{"forecast": "sunny", "wind": "W 12 km/h"}', 40, 0.00002, 'USD', 0.4, 'end_user', \(user), ts
              FROM \(source(nil))
            """,
            """
            INSERT INTO message_files (id, message_id, type, transfer_method, url, belongs_to, upload_file_id, created_by_role,
                                       created_by, created_at)
            SELECT md5('\(tag)-file-' || g)::uuid, \(message), 'image', 'local_file', NULL, 'user',
                   md5('\(tag)-upload-' || g)::uuid, 'end_user', \(user), ts
              FROM \(source(nil))
            """,
        ]
        if let f = shares.feedback {
            out.append(
                """
                INSERT INTO message_feedbacks (id, app_id, conversation_id, message_id, rating, content, from_source,
                                               from_end_user_id, created_at, updated_at)
                SELECT md5('\(tag)-feedback-' || g)::uuid, \(app), \(conversation), \(message),
                       CASE WHEN g % 2 = 0 THEN 'like' ELSE 'dislike' END, 'helpful', 'user', \(user), ts, ts
                  FROM \(source(f))
                """)
        }
        if let f = shares.annotation {
            out.append(
                """
                INSERT INTO message_annotations (id, app_id, conversation_id, message_id, question, content, hit_count, account_id,
                                                 created_at, updated_at)
                SELECT md5('\(tag)-annotation-' || g)::uuid, \(app), \(conversation), \(message),
                       'What will the weather be like tomorrow?', 'Check the forecast page.', 1, \(account), ts, ts
                  FROM \(source(f))
                """)
            out.append(
                """
                INSERT INTO app_annotation_hit_histories (id, app_id, annotation_id, source, question, account_id, created_at,
                                                          score, message_id, annotation_question, annotation_content)
                SELECT md5('\(tag)-hit-' || g)::uuid, \(app), md5('\(tag)-annotation-' || g)::uuid, 'api',
                       'What will the weather be like tomorrow?', \(account), ts, 0.92, \(message),
                       'What will the weather be like tomorrow?', 'Check the forecast page.'
                  FROM \(source(f))
                """)
        }
        if let f = shares.saved {
            out.append(
                """
                INSERT INTO saved_messages (id, app_id, message_id, created_by_role, created_by, created_at)
                SELECT md5('\(tag)-saved-' || g)::uuid, \(app), \(message), 'end_user', \(user), ts
                  FROM \(source(f))
                """)
        }
        if let f = shares.resource {
            out.append(
                """
                INSERT INTO dataset_retriever_resources (id, message_id, position, dataset_id, dataset_name, document_id,
                                                         document_name, data_source_type, segment_id, score, content, hit_count,
                                                         word_count, segment_position, retriever_from, created_by, created_at)
                SELECT md5('\(tag)-resource-' || g)::uuid, \(message), 1, md5('ret-dataset-' || (g % 20))::uuid, 'Weather notes',
                       md5('ret-document-' || (g % 500))::uuid, 'forecast.md', 'upload_file',
                       md5('ret-segment-' || (g % 5000))::uuid, 0.81,
                       'Forecasts are refreshed every six hours from the national weather service feed.', 1, 120, 3, 'api',
                       \(user), ts
                  FROM \(source(f))
                """)
        }
        return out
    }
}
