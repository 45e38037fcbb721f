// The census of the `retention` scenario: per table, its rows and the rows that must
// stay (found by joins to the kept parents), taken on the template before and on a
// column's copy after its run; and the check of one column's result against it.

import HeraldIO

extension RetentionBenchData {
    /// One table's row count and how many of its rows must stay.
    struct Count: Sendable, Equatable {
        var total: Int
        var kept: Int
    }

    /// Counts for every table of the messages part: `kept` = rows of messages created at or after `cutoff`.
    static func messageCensusSQL(cutoff: String) -> [(String, String)] {
        let c = "'\(cutoff)'::timestamp"
        var out = [("messages", "SELECT count(*), count(*) FILTER (WHERE created_at >= \(c)) FROM messages")]
        for t in messageChildren {
            out.append(
                (
                    t,
                    """
                    SELECT (SELECT count(*) FROM \(t)),
                           (SELECT count(*) FROM \(t) x JOIN messages m ON m.id = x.message_id WHERE m.created_at >= \(c))
                    """
                ))
        }
        return out
    }

    /// Counts for every table of the workflow-runs part: `kept` = rows of runs that are not ended or not
    /// older than `cutoff`.
    static func runCensusSQL(cutoff: String) -> [(String, String)] {
        let c = "'\(cutoff)'::timestamp"
        let keptRun = "NOT (r.created_at < \(c) AND r.status IN \(ended))"
        func byRun(_ t: String, _ column: String = "workflow_run_id") -> (String, String) {
            (
                t,
                """
                SELECT (SELECT count(*) FROM \(t)),
                       (SELECT count(*) FROM \(t) x JOIN workflow_runs r ON r.id = x.\(column) WHERE \(keptRun))
                """
            )
        }
        let keptConversation = """
            EXISTS (SELECT 1 FROM messages m JOIN workflow_runs r ON r.id = m.workflow_run_id
                     WHERE m.conversation_id = cv.id AND \(keptRun))
            """
        var out = [
            ("workflow_runs", "SELECT count(*), count(*) FILTER (WHERE \(keptRun)) FROM workflow_runs r"),
            byRun("workflow_node_executions"), byRun("workflow_app_logs"), byRun("workflow_pauses"),
            byRun("workflow_trigger_logs"),
            (
                "workflow_node_execution_offload",
                """
                SELECT (SELECT count(*) FROM workflow_node_execution_offload),
                       (SELECT count(*) FROM workflow_node_execution_offload o JOIN workflow_node_executions n ON n.id = o.node_execution_id
                          JOIN workflow_runs r ON r.id = n.workflow_run_id WHERE \(keptRun))
                """
            ),
            (
                "workflow_pause_reasons",
                """
                SELECT (SELECT count(*) FROM workflow_pause_reasons),
                       (SELECT count(*) FROM workflow_pause_reasons pr JOIN workflow_pauses p ON p.id = pr.pause_id
                          JOIN workflow_runs r ON r.id = p.workflow_run_id WHERE \(keptRun))
                """
            ),
            byRun("messages"),
        ]
        for t in messageChildren {
            out.append(
                (
                    t,
                    """
                    SELECT (SELECT count(*) FROM \(t)),
                           (SELECT count(*) FROM \(t) x JOIN messages m ON m.id = x.message_id
                              JOIN workflow_runs r ON r.id = m.workflow_run_id WHERE \(keptRun))
                    """
                ))
        }
        out.append(
            (
                "conversations",
                """
                SELECT (SELECT count(*) FROM conversations), (SELECT count(*) FROM conversations cv WHERE \(keptConversation))
                """
            ))
        out.append(
            (
                "workflow_conversation_variables",
                """
                SELECT (SELECT count(*) FROM workflow_conversation_variables),
                       (SELECT count(*) FROM workflow_conversation_variables v JOIN conversations cv ON cv.id = v.conversation_id
                         WHERE \(keptConversation))
                """
            ))
        return out
    }

    /// Runs a census on database `name`.
    func census(_ name: String, _ sql: [(String, String)]) throws -> [String: Count] {
        let c = try PostgresConnection(connInfo: info(name))
        var out: [String: Count] = [:]
        for (table, q) in sql {
            let row = try c.query(q).rows.first ?? []
            out[table] = Count(
                total: row.first.flatMap { $0.flatMap { Int($0) } } ?? -1,
                kept: row.count > 1 ? row[1].flatMap { Int($0) } ?? -1 : -1)
        }
        return out
    }
}

/// A column's result checked against the data: nothing that must stay is gone, nothing expired is left.
struct RetentionVerification: Sendable {
    /// Table → (before, after).
    var tables: [(String, before: RetentionBenchData.Count, after: RetentionBenchData.Count)] = []
    /// The parent table whose deleted rows are the headline count (messages or workflow_runs).
    var parent: String

    init(parent: String, before: [String: RetentionBenchData.Count], after: [String: RetentionBenchData.Count]) {
        self.parent = parent
        for name in before.keys.sorted() {
            if let b = before[name], let a = after[name] { tables.append((name, b, a)) }
        }
    }

    /// Rows that had to go and were deleted, by table.
    var deletedRows: Int { tables.reduce(0) { $0 + ($1.before.total - $1.after.total) } }
    var deletedParents: Int { tables.first(where: { $0.0 == parent }).map { $0.before.total - $0.after.total } ?? 0 }
    var expectedRows: Int { tables.reduce(0) { $0 + ($1.before.total - $1.before.kept) } }
    var expectedParents: Int { tables.first(where: { $0.0 == parent }).map { $0.before.total - $0.before.kept } ?? 0 }

    /// Every table: exactly the rows to keep are there.
    var issues: [String] {
        var out: [String] = []
        for (name, before, after) in tables {
            if after.kept < before.kept {
                out.append(
                    "\(name): \(Fmt.grouped(before.kept - after.kept)) of \(Fmt.grouped(before.kept)) rows that must stay are gone"
                )
            }
            if after.total > after.kept {
                out.append("\(name): \(Fmt.grouped(after.total - after.kept)) expired rows left")
            }
        }
        return out
    }

    var ok: Bool { issues.isEmpty }

    var json: BenchJSON {
        .object([
            ("ok", .bool(ok)), ("issues", .array(issues.map(BenchJSON.string))),
            ("deleted_rows", .int(deletedRows)), ("deleted_\(parent)", .int(deletedParents)),
            (
                "tables",
                .object(
                    tables.map { name, b, a in
                        (
                            name,
                            .object([
                                ("before", .int(b.total)), ("to_keep", .int(b.kept)), ("after", .int(a.total)),
                                ("kept", .int(a.kept)),
                            ])
                        )
                    })
            ),
        ])
    }
}
