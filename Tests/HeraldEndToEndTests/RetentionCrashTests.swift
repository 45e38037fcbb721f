// A retention run killed with SIGKILL in the middle: every batch is one statement,
// so what was deleted was deleted whole (no child outlives its message), and a new
// `herald run-task clean_messages` finishes the job: every expired message and child
// gone, every fresh one still there, row for row.

import Foundation
import HeraldIO
import XCTest

final class RetentionCrashTests: XCTestCase {
    static let children = [
        "message_feedbacks", "message_annotations", "message_chains", "message_agent_thoughts",
        "message_files", "saved_messages", "app_annotation_hit_histories", "dataset_retriever_resources",
    ]

    func testKilledRunLeavesNoOrphansAndTheNextRunFinishes() throws {
        let (redisURL, _) = try Binary.servers()
        let database = try PrivateDatabase(prefix: "herald_crash")
        defer { database.drop() }
        let info = database.info
        let db = database.name
        // The default topology with a 1 s lock TTL: the killed run's `retention:clean_messages`
        // expires a second after the kill instead of 10 minutes.
        let defaultTopology = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("topology/default.json").path
        let text = try String(contentsOfFile: defaultTopology, encoding: .utf8)
        let shortTTL = text.replacingOccurrences(
            of: "\"retention:clean_messages\", \"ttl_seconds\": 600",
            with: "\"retention:clean_messages\", \"ttl_seconds\": 1")
        XCTAssertNotEqual(shortTTL, text, "the default topology declares the lock")
        let topology = NSTemporaryDirectory() + "herald-crash-topology-\(db).json"
        try Data(shortTTL.utf8).write(to: URL(fileURLWithPath: topology))
        defer { try? FileManager.default.removeItem(atPath: topology) }
        let env = [
            "HERALD_REDIS_URL": redisURL, "HERALD_DATABASE_URL": database.url,
            "HERALD_TOPOLOGY": topology, "HERALD_METRICS_ADDR": "off", "HERALD_INSTANCE_ID": "crash-\(db)",
            // Small batches with pauses: the run lasts long enough to be killed in the middle.
            "SANDBOX_EXPIRED_RECORDS_CLEAN_BATCH_SIZE": "50", "SANDBOX_EXPIRED_RECORDS_CLEAN_BATCH_MAX_INTERVAL": "40",
            "HERALD_RETENTION_MAX_BATCH_GROWTH": "1",
        ]
        XCTAssertEqual(try Binary.run(["migrate", "--create-dify-tables"], env: env).status, 0)
        let conn = try PostgresConnection(connInfo: info)
        // 6,000 expired messages (40 days) and 600 fresh ones (2 days), each with one row in every child table.
        try conn.query(
            """
            INSERT INTO apps (id, tenant_id, name, mode, enable_site, enable_api)
            VALUES (gen_random_uuid(), gen_random_uuid(), 'a', 'chat', true, true)
            """)
        try conn.query(
            """
            INSERT INTO messages (app_id, conversation_id, inputs, query, message, answer, message_unit_price,
                                  answer_unit_price, currency, from_source, created_at)
            SELECT (SELECT id FROM apps), gen_random_uuid(), '{}', 'q', '{}', 'a', 0, 0, 'USD', 'api',
                   now() - make_interval(days => CASE WHEN g % 11 = 0 THEN 2 ELSE 40 END) - g * interval '1 second'
              FROM generate_series(1, 6600) g
            """)
        for table in Self.children {
            let columns: String
            let values: String
            switch table {
            case "message_feedbacks":
                (columns, values) = (
                    "app_id, conversation_id, rating, from_source", "app_id, conversation_id, 'like', 'user'"
                )
            case "message_annotations":
                (columns, values) = (
                    "app_id, conversation_id, question, content, account_id",
                    "app_id, conversation_id, 'q', 'c', gen_random_uuid()"
                )
            case "message_chains": (columns, values) = ("type", "'system'")
            case "message_agent_thoughts":
                (columns, values) = ("position, created_by_role, created_by", "1, 'account', gen_random_uuid()")
            case "message_files":
                (columns, values) = (
                    "type, transfer_method, created_by_role, created_by",
                    "'image', 'remote_url', 'account', gen_random_uuid()"
                )
            case "saved_messages": (columns, values) = ("app_id, created_by", "app_id, gen_random_uuid()")
            case "app_annotation_hit_histories":
                (columns, values) = (
                    "app_id, annotation_id, source, question, account_id, annotation_question, annotation_content",
                    "app_id, gen_random_uuid(), 's', 'q', gen_random_uuid(), 'q', 'a'"
                )
            default:
                (columns, values) = (
                    "position, dataset_id, dataset_name, document_name, content, retriever_from, created_by",
                    "1, gen_random_uuid(), 'd', 'doc', 'c', 'api', gen_random_uuid()"
                )
            }
            try conn.query("INSERT INTO \(table) (message_id, \(columns)) SELECT id, \(values) FROM messages")
        }
        func ids(_ sql: String) throws -> Set<String> { Set(try conn.query(sql).rows.compactMap { $0[0] }) }
        let fresh = try ids("SELECT id::text FROM messages WHERE created_at > now() - interval '30 days'")
        XCTAssertEqual(fresh.count, 600)
        var freshChildren: [String: Set<String>] = [:]
        for t in Self.children {
            freshChildren[t] = try ids(
                "SELECT t.id::text FROM \(t) t JOIN messages m ON m.id = t.message_id WHERE m.created_at > now() - interval '30 days'"
            )
        }
        func count(_ sql: String) throws -> Int {
            Int(try conn.query(sql).rows.first?.first.flatMap { $0 } ?? "") ?? -1
        }
        func orphans() throws -> [String: Int] {
            var out: [String: Int] = [:]
            for t in Self.children {
                let n = try count(
                    "SELECT count(*) FROM \(t) c WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = c.message_id)")
                if n > 0 { out[t] = n }
            }
            return out
        }

        let log = NSTemporaryDirectory() + "herald-crash-\(db).log"
        defer {
            try? FileManager.default.removeItem(atPath: log)
            try? FileManager.default.removeItem(atPath: log + ".out")
        }
        let pid = try Binary.spawn(["run-task", "clean_messages"], env: env, log: log)
        // Kill it once some batches went and many remain.
        try eventually("the first batches deleted", timeout: 30) {
            (try? count("SELECT count(*) FROM messages")).map { $0 <= 6600 - 500 } ?? false
        }
        kill(pid, SIGKILL)
        _ = Binary.wait(pid)
        // The statement in flight at the kill still finishes (and commits, whole) on the server:
        // wait until the dead client's session is gone before counting.
        try eventually("the killed run's session ended", timeout: 30) {
            try count(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
                == 0
        }
        let left = try count("SELECT count(*) FROM messages")
        XCTAssertGreaterThan(left, 600 + 1000, "killed in the middle, not at the end")
        XCTAssertEqual(try orphans(), [:], "every batch went whole: no child outlives its message")
        Thread.sleep(forTimeInterval: 1.5)  // the dead run's lock expires

        let again = try Binary.run(
            ["run-task", "clean_messages"],
            env: env.merging(["SANDBOX_EXPIRED_RECORDS_CLEAN_BATCH_MAX_INTERVAL": "0"]) { $1 })
        XCTAssertEqual(again.status, 0, again.stdout + again.stderr)
        XCTAssertEqual(try ids("SELECT id::text FROM messages"), fresh, "exactly the fresh messages remain")
        for t in Self.children {
            XCTAssertEqual(
                try ids("SELECT id::text FROM \(t)"), freshChildren[t], "\(t): exactly the fresh messages' rows remain")
        }
        XCTAssertEqual(try orphans(), [:])
        let report = try conn.query(
            "SELECT report->'counts'->>'messages' FROM herald.task_runs WHERE task = 'clean_messages' AND status = 'succeeded'"
        )
        XCTAssertEqual(report.rows.count, 1, "the killed run never finished")
        XCTAssertEqual(Int(report.rows.first?.first.flatMap { $0 } ?? ""), left - 600)
    }
}
