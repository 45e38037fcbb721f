// Column "SQL floor" of the `retention` scenario: the same batched deletes as
// plain SQL run inside the database, with no client round trip per statement.
// A PL/pgSQL procedure (CALL, COMMIT after every batch) walks the expired rows
// by the (created_at, id) keyset, deletes a batch's children by id and then the
// batch, and keeps its counts and its longest batch (clock_timestamp, from the
// keyset SELECT to after the COMMIT) in INOUT parameters that CALL returns.

import HeraldIO

/// The floor procedures and their runs.
enum RetentionFloor {
    /// What one CALL returned, and its wall time seen from the client.
    struct Outcome: Sendable {
        var deleted = 0
        var rows = 0
        var batches = 0
        var longestBatchUs: Int64 = 0
        var wallNs: Int64 = 0
    }

    static let messagesProcedure = """
        CREATE OR REPLACE PROCEDURE herald_bench_floor_messages(
            days integer, batch integer,
            INOUT deleted bigint DEFAULT 0, INOUT rows_deleted bigint DEFAULT 0,
            INOUT batches integer DEFAULT 0, INOUT longest_us bigint DEFAULT 0)
        LANGUAGE plpgsql AS $$
        DECLARE
            cutoff timestamp := (now() AT TIME ZONE 'UTC') - make_interval(days => days);
            last_at timestamp := '-infinity';
            last_id uuid := '00000000-0000-0000-0000-000000000000';
            ids uuid[];
            t0 timestamptz;
            n bigint;
        BEGIN
            deleted := 0; rows_deleted := 0; batches := 0; longest_us := 0;
            LOOP
                t0 := clock_timestamp();
                SELECT array_agg(b.id ORDER BY b.created_at, b.id), max(b.created_at) INTO ids, last_at
                  FROM (SELECT m.id, m.created_at FROM messages m
                         WHERE m.created_at < cutoff AND (m.created_at, m.id) > (last_at, last_id)
                         ORDER BY m.created_at, m.id LIMIT batch) b;
                EXIT WHEN ids IS NULL;
                last_id := ids[array_length(ids, 1)];
                DELETE FROM message_feedbacks WHERE message_id = ANY (ids); GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                DELETE FROM message_annotations WHERE message_id = ANY (ids); GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                DELETE FROM message_chains WHERE message_id = ANY (ids); GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                DELETE FROM message_agent_thoughts WHERE message_id = ANY (ids); GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                DELETE FROM message_files WHERE message_id = ANY (ids); GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                DELETE FROM saved_messages WHERE message_id = ANY (ids); GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                DELETE FROM app_annotation_hit_histories WHERE message_id = ANY (ids); GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                DELETE FROM dataset_retriever_resources WHERE message_id = ANY (ids); GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                DELETE FROM messages WHERE id = ANY (ids); GET DIAGNOSTICS n = ROW_COUNT;
                deleted := deleted + n; rows_deleted := rows_deleted + n;
                COMMIT;
                batches := batches + 1;
                longest_us := greatest(longest_us, (extract(epoch FROM clock_timestamp() - t0) * 1e6)::bigint);
            END LOOP;
        END
        $$
        """

    static let runsProcedure = """
        CREATE OR REPLACE PROCEDURE herald_bench_floor_runs(
            days integer, batch integer,
            INOUT deleted bigint DEFAULT 0, INOUT rows_deleted bigint DEFAULT 0,
            INOUT batches integer DEFAULT 0, INOUT longest_us bigint DEFAULT 0)
        LANGUAGE plpgsql AS $$
        DECLARE
            cutoff timestamp := (now() AT TIME ZONE 'UTC') - make_interval(days => days);
            last_at timestamp := '-infinity';
            last_id uuid := '00000000-0000-0000-0000-000000000000';
            ids uuid[];
            message_ids uuid[];
            conversation_ids uuid[];
            t0 timestamptz;
            n bigint;
        BEGIN
            deleted := 0; rows_deleted := 0; batches := 0; longest_us := 0;
            LOOP
                t0 := clock_timestamp();
                SELECT array_agg(b.id ORDER BY b.created_at, b.id), max(b.created_at) INTO ids, last_at
                  FROM (SELECT r.id, r.created_at FROM workflow_runs r
                         WHERE r.created_at < cutoff AND r.status IN ('succeeded', 'failed', 'partial-succeeded', 'stopped')
                           AND (r.created_at, r.id) > (last_at, last_id)
                         ORDER BY r.created_at, r.id LIMIT batch) b;
                EXIT WHEN ids IS NULL;
                last_id := ids[array_length(ids, 1)];
                SELECT array_agg(m.id), array_agg(DISTINCT m.conversation_id) INTO message_ids, conversation_ids
                  FROM messages m WHERE m.workflow_run_id = ANY (ids);
                IF message_ids IS NOT NULL THEN
                    DELETE FROM message_feedbacks WHERE message_id = ANY (message_ids); GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                    DELETE FROM message_annotations WHERE message_id = ANY (message_ids); GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                    DELETE FROM message_chains WHERE message_id = ANY (message_ids); GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                    DELETE FROM message_agent_thoughts WHERE message_id = ANY (message_ids); GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                    DELETE FROM message_files WHERE message_id = ANY (message_ids); GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                    DELETE FROM saved_messages WHERE message_id = ANY (message_ids); GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                    DELETE FROM app_annotation_hit_histories WHERE message_id = ANY (message_ids); GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                    DELETE FROM dataset_retriever_resources WHERE message_id = ANY (message_ids); GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                    DELETE FROM messages WHERE id = ANY (message_ids); GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                    DELETE FROM workflow_conversation_variables WHERE conversation_id = ANY (conversation_ids); GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                    DELETE FROM conversations WHERE id = ANY (conversation_ids); GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                END IF;
                DELETE FROM workflow_node_execution_offload WHERE node_execution_id IN
                    (SELECT e.id FROM workflow_node_executions e WHERE e.workflow_run_id = ANY (ids));
                GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                DELETE FROM workflow_node_executions WHERE workflow_run_id = ANY (ids); GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                DELETE FROM workflow_app_logs WHERE workflow_run_id = ANY (ids); GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                DELETE FROM workflow_pause_reasons WHERE pause_id IN
                    (SELECT p.id FROM workflow_pauses p WHERE p.workflow_run_id = ANY (ids));
                GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                DELETE FROM workflow_pauses WHERE workflow_run_id = ANY (ids); GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                DELETE FROM workflow_trigger_logs WHERE workflow_run_id = ANY (ids); GET DIAGNOSTICS n = ROW_COUNT; rows_deleted := rows_deleted + n;
                DELETE FROM workflow_runs WHERE id = ANY (ids); GET DIAGNOSTICS n = ROW_COUNT;
                deleted := deleted + n; rows_deleted := rows_deleted + n;
                COMMIT;
                batches := batches + 1;
                longest_us := greatest(longest_us, (extract(epoch FROM clock_timestamp() - t0) * 1e6)::bigint);
            END LOOP;
        END
        $$
        """

    /// Creates the procedure in `conn`'s database (before the checkpoint that precedes the run).
    static func install(_ conn: PostgresConnection, runs: Bool) throws {
        try conn.execute(script: runs ? runsProcedure : messagesProcedure)
    }

    /// CALLs the procedure (autocommit, so that it may COMMIT) and times it from the client.
    static func run(_ conn: PostgresConnection, runs: Bool, days: Int, batch: Int) throws -> Outcome {
        let name = runs ? "herald_bench_floor_runs" : "herald_bench_floor_messages"
        let t0 = BenchClock.monotonicNs()
        let r = try conn.query("CALL \(name)(\(days), \(batch))")
        var out = Outcome()
        out.wallNs = BenchClock.monotonicNs() - t0
        func int(_ column: String) -> Int { r.value(0, column).flatMap { Int($0) } ?? 0 }
        out.deleted = int("deleted")
        out.rows = int("rows_deleted")
        out.batches = int("batches")
        out.longestBatchUs = Int64(int("longest_us"))
        return out
    }
}
