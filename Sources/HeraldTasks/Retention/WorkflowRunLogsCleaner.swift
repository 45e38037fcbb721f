// Dify's `clean_workflow_runlogs_precise`: ended workflow runs (succeeded, failed,
// partial-succeeded, stopped) created before now − WORKFLOW_LOG_RETENTION_DAYS,
// optionally only WORKFLOW_LOG_CLEANUP_SPECIFIC_WORKFLOW_IDS, in keyset batches on
// (created_at, id), cascading to everything that hangs off a run: the runs' messages
// with their eight child tables, the conversations those messages leave empty with their
// variables, node executions and their offload rows, app logs, pauses and pause reasons,
// trigger logs, and finally the runs. Not plan-aware, as in Dify.
//
// Differences from Dify, on purpose: the whole cascade of a batch is one call of
// `herald.clean_workflow_runs_batch` (migration 8), one transaction (Dify commits the run
// tables separately from the messages); a failed
// batch is retried from the same cursor (Dify moves past it and never comes back); and a
// conversation is deleted only when none of its messages remain (Dify deletes every
// conversation a run's message belongs to, orphaning the conversation's other messages).

import Foundation
import HeraldCore
import HeraldIO

/// Deletes expired, ended workflow runs with everything attached to them.
public struct WorkflowRunLogsCleaner {
    /// Each table the task deletes from, the CTE of parents it is keyed on, and the key column,
    /// in delete order (children before parents).
    static let cascade: [(table: String, parents: String, key: String)] = [
        ("app_annotation_hit_histories", "msgs", "message_id"),
        ("dataset_retriever_resources", "msgs", "message_id"),
        ("message_agent_thoughts", "msgs", "message_id"),
        ("message_chains", "msgs", "message_id"),
        ("message_files", "msgs", "message_id"),
        ("message_annotations", "msgs", "message_id"),
        ("message_feedbacks", "msgs", "message_id"),
        ("saved_messages", "msgs", "message_id"),
        ("messages", "msgs", "id"),
        ("workflow_conversation_variables", "convs", "conversation_id"),
        ("conversations", "convs", "id"),
        ("workflow_node_execution_offload", "nodes", "node_execution_id"),
        ("workflow_node_executions", "nodes", "id"),
        ("workflow_app_logs", "runs", "workflow_run_id"),
        ("workflow_pause_reasons", "pauses", "pause_id"),
        ("workflow_pauses", "pauses", "id"),
        ("workflow_trigger_logs", "runs", "workflow_run_id"),
        ("workflow_runs", "runs", "id"),
    ]
    /// Every table the task deletes from, for metrics.
    public static var tables: [String] { cascade.map(\.table) }
    /// Dify's "ended" statuses; running, paused and scheduled runs stay.
    public static let endedStatuses = ["succeeded", "failed", "partial-succeeded", "stopped"]

    let settings: RetentionSettings

    public init(settings: RetentionSettings) {
        self.settings = settings
    }

    /// The real batch: `herald.clean_workflow_runs_batch` (migration 8) deletes the cascade with one
    /// statement per table inside one call (one transaction) and returns the batch's size, last key
    /// and one count per table in `cascade` order. $1 cut-off, $2/$3 cursor, $4 limit, $5 workflow
    /// ids (NULL = all).
    static var deleteStatement: String {
        let counts = (1...cascade.count).map { "counts[\($0)]" }.joined(separator: ", ")
        return """
            SELECT scanned, last_at, last_id, \(counts)
              FROM herald.clean_workflow_runs_batch($1::timestamp, $2::timestamp, $3::uuid, $4::int, $5::uuid[])
            """
    }

    /// The dry run's batch: the same selection, every table counted, nothing deleted or locked.
    static var countStatement: String {
        let statuses = endedStatuses.map { "'\($0)'" }.joined(separator: ", ")
        var ctes = [
            """
            runs AS MATERIALIZED (
                SELECT id, created_at FROM workflow_runs
                 WHERE created_at < $1::timestamp AND status IN (\(statuses))
                   AND ($5::uuid[] IS NULL OR workflow_id = ANY($5::uuid[]))
                   AND (created_at, id) > ($2::timestamp, $3::uuid)
                 ORDER BY created_at, id LIMIT $4
            )
            """,
            "last AS (SELECT created_at, id FROM runs ORDER BY created_at DESC, id DESC LIMIT 1)",
            """
            msgs AS MATERIALIZED (
                SELECT m.id, m.conversation_id FROM messages m WHERE m.workflow_run_id = ANY(ARRAY(SELECT id FROM runs))
            )
            """,
            // Conversations none of whose messages would survive this batch.
            """
            convs AS MATERIALIZED (
                SELECT DISTINCT c.conversation_id AS id FROM msgs c
                 WHERE NOT EXISTS (SELECT 1 FROM messages o
                                    WHERE o.conversation_id = c.conversation_id
                                      AND NOT EXISTS (SELECT 1 FROM msgs x WHERE x.id = o.id))
            )
            """,
            "nodes AS MATERIALIZED (SELECT n.id FROM workflow_node_executions n WHERE n.workflow_run_id = ANY(ARRAY(SELECT id FROM runs)))",
            "pauses AS MATERIALIZED (SELECT p.id FROM workflow_pauses p WHERE p.workflow_run_id = ANY(ARRAY(SELECT id FROM runs)))",
        ]
        var selects = [
            "(SELECT count(*) FROM runs)", "(SELECT created_at::text FROM last)", "(SELECT id::text FROM last)",
        ]
        for (i, step) in cascade.enumerated() {
            ctes.append(
                "d\(i) AS (SELECT 1 FROM \(step.table) t WHERE t.\(step.key) = ANY(ARRAY(SELECT id FROM \(step.parents))))"
            )
            selects.append("(SELECT count(*) FROM d\(i))")
        }
        return "WITH " + ctes.joined(separator: ",\n") + "\nSELECT " + selects.joined(separator: ", ")
    }

    /// Deletes (or, dry, counts) every expired ended run and what hangs off it.
    public func run(
        _ conn: PostgresConnection, now: Date, dryRun: Bool, shouldContinue: () -> Bool = { true },
        onBatch: (RetentionBatch, RetentionReport) -> Void = { _, _ in }
    ) throws(RetentionError) -> RetentionReport {
        var runner = try RetentionBatchRunner(
            conn, now: now, days: settings.workflowLogRetentionDays, batchSize: settings.workflowLogBatchSize,
            pauseMaxMs: settings.workflowLogPauseMaxMs, dryRun: dryRun, settings: settings)
        let cutoff = runner.cutoff
        let sql = dryRun ? Self.countStatement : Self.deleteStatement
        let workflows: String? =
            settings.workflowIDs.isEmpty ? nil : "{" + settings.workflowIDs.joined(separator: ",") + "}"
        let statuses = Self.endedStatuses.map { "'\($0)'" }.joined(separator: ", ")
        runner.candidates = RetentionBatchRunner.count(
            conn,
            """
            SELECT count(*) FROM workflow_runs WHERE created_at < $1::timestamp AND status IN (\(statuses))
               AND ($2::uuid[] IS NULL OR workflow_id = ANY($2::uuid[]))
            """, [cutoff, workflows])
        let tables = Self.tables
        return try runner.run(conn, shouldContinue: shouldContinue, onBatch: onBatch) { c, cursor, limit in
            let r = try c.queryPrepared(
                dryRun ? "herald_count_workflow_runs_batch" : "herald_clean_workflow_runs_batch", sql,
                [cutoff, cursor.createdAt, cursor.id, String(limit), workflows])
            return try RetentionBatch.parse(r, tables: tables, operation: "delete expired workflow runs")
        }
    }
}
