// Migration 8: the batch of `clean_workflow_runlogs_precise` as a function in Herald's
// schema. One call (one statement, so one transaction) deletes a keyset batch of ended runs
// with everything attached, in the cascade order of `WorkflowRunLogsCleaner.cascade`, and
// returns the batch's size, its last key and one count per table. As separate statements
// inside PL/pgSQL (plans cached for the session, each DELETE probing an index with the
// batch's run or message ids, node executions and pauses found through their run id rather
// than through an array of their own ids) the cascade costs about two thirds of the same work
// as one statement of data-modifying CTEs. Conversations are deleted only when no message is
// left in them.

extension Migrations {
    /// `herald.clean_workflow_runs_batch(cutoff, after_at, after_id, lim, workflows)`.
    static let retentionFunctions = Migration(
        version: 8, name: "herald_retention_functions",
        sql: """
            CREATE OR REPLACE FUNCTION herald.clean_workflow_runs_batch(
                cutoff timestamp, after_at timestamp, after_id uuid, lim integer, workflows uuid[],
                OUT scanned integer, OUT last_at text, OUT last_id text, OUT counts bigint[])
            LANGUAGE plpgsql AS $fn$
            DECLARE
                run_ids uuid[];
                msg_ids uuid[];
                conv_ids uuid[];
                n bigint;
                c bigint[] := '{}';
            BEGIN
                SELECT coalesce(array_agg(b.id ORDER BY b.created_at, b.id), '{}'), count(*)::integer,
                       (array_agg(b.created_at::text ORDER BY b.created_at DESC, b.id DESC))[1],
                       (array_agg(b.id::text ORDER BY b.created_at DESC, b.id DESC))[1]
                  INTO run_ids, scanned, last_at, last_id
                  FROM (SELECT r.id, r.created_at FROM workflow_runs r
                         WHERE r.created_at < cutoff AND r.status IN ('succeeded', 'failed', 'partial-succeeded', 'stopped')
                           AND (workflows IS NULL OR r.workflow_id = ANY (workflows))
                           AND (r.created_at, r.id) > (after_at, after_id)
                         ORDER BY r.created_at, r.id LIMIT lim
                           ) b;
                IF scanned = 0 THEN
                    counts := array_fill(0::bigint, ARRAY[18]);
                    RETURN;
                END IF;
                SELECT coalesce(array_agg(m.id), '{}'), coalesce(array_agg(DISTINCT m.conversation_id), '{}')
                  INTO msg_ids, conv_ids FROM messages m WHERE m.workflow_run_id = ANY (run_ids);
                DELETE FROM app_annotation_hit_histories WHERE message_id = ANY (msg_ids); GET DIAGNOSTICS n = ROW_COUNT; c := c || n;
                DELETE FROM dataset_retriever_resources WHERE message_id = ANY (msg_ids); GET DIAGNOSTICS n = ROW_COUNT; c := c || n;
                DELETE FROM message_agent_thoughts WHERE message_id = ANY (msg_ids); GET DIAGNOSTICS n = ROW_COUNT; c := c || n;
                DELETE FROM message_chains WHERE message_id = ANY (msg_ids); GET DIAGNOSTICS n = ROW_COUNT; c := c || n;
                DELETE FROM message_files WHERE message_id = ANY (msg_ids); GET DIAGNOSTICS n = ROW_COUNT; c := c || n;
                DELETE FROM message_annotations WHERE message_id = ANY (msg_ids); GET DIAGNOSTICS n = ROW_COUNT; c := c || n;
                DELETE FROM message_feedbacks WHERE message_id = ANY (msg_ids); GET DIAGNOSTICS n = ROW_COUNT; c := c || n;
                DELETE FROM saved_messages WHERE message_id = ANY (msg_ids); GET DIAGNOSTICS n = ROW_COUNT; c := c || n;
                DELETE FROM messages WHERE id = ANY (msg_ids); GET DIAGNOSTICS n = ROW_COUNT; c := c || n;
                -- Only the conversations no message is left in.
                SELECT coalesce(array_agg(x), '{}') INTO conv_ids FROM unnest(conv_ids) AS x
                 WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = x);
                DELETE FROM workflow_conversation_variables WHERE conversation_id = ANY (conv_ids); GET DIAGNOSTICS n = ROW_COUNT; c := c || n;
                DELETE FROM conversations WHERE id = ANY (conv_ids); GET DIAGNOSTICS n = ROW_COUNT; c := c || n;
                DELETE FROM workflow_node_execution_offload
                 WHERE node_execution_id IN (SELECT e.id FROM workflow_node_executions e WHERE e.workflow_run_id = ANY (run_ids));
                GET DIAGNOSTICS n = ROW_COUNT; c := c || n;
                DELETE FROM workflow_node_executions WHERE workflow_run_id = ANY (run_ids); GET DIAGNOSTICS n = ROW_COUNT; c := c || n;
                DELETE FROM workflow_app_logs WHERE workflow_run_id = ANY (run_ids); GET DIAGNOSTICS n = ROW_COUNT; c := c || n;
                DELETE FROM workflow_pause_reasons
                 WHERE pause_id IN (SELECT p.id FROM workflow_pauses p WHERE p.workflow_run_id = ANY (run_ids));
                GET DIAGNOSTICS n = ROW_COUNT; c := c || n;
                DELETE FROM workflow_pauses WHERE workflow_run_id = ANY (run_ids); GET DIAGNOSTICS n = ROW_COUNT; c := c || n;
                DELETE FROM workflow_trigger_logs WHERE workflow_run_id = ANY (run_ids); GET DIAGNOSTICS n = ROW_COUNT; c := c || n;
                DELETE FROM workflow_runs WHERE id = ANY (run_ids); GET DIAGNOSTICS n = ROW_COUNT; c := c || n;
                counts := c;
            END
            $fn$;
            """)
}
