// The workflow-run data set of the `retention` scenario: ended runs older than the
// retention with their whole cascade (node executions and offloads, app and trigger
// logs, pauses and reasons, chat runs' messages, conversations and variables), and the
// runs that must stay: recent ended ones and old ones that have not ended.

extension RetentionBenchData {
    /// `expired` ended runs created 31–120 days ago, `recent` ended runs 1–29 days ago and `unfinished`
    /// runs (running, paused, scheduled) interleaved with the expired ones in time; every run with 5 node
    /// executions, an app log and a trigger log; a quarter with 2 offload rows on one node; a tenth with a
    /// pause and 2 pause reasons; a third are chat runs with a message (a chain, thought and file each;
    /// feedback for half, a retriever resource for a quarter) in a conversation of its own with 2
    /// conversation variables.
    func runStatements(
        expired r: Int, recent rr: Int, unfinished ru: Int, base: String, config: RetentionConfig
    ) -> [String] {
        let total = r + rr + ru
        let b = "'\(base)'::timestamp"
        func ts(_ g: String) -> String {
            """
            CASE WHEN \(g) < \(r) THEN \(b) - interval '120 days' + (\(g)::float8 / \(max(r, 1))) * interval '89 days'
                 WHEN \(g) < \(r + rr) THEN \(b) - interval '29 days' + ((\(g) - \(r))::float8 / \(max(rr, 1))) * interval '28 days'
                 ELSE \(b) - interval '120 days' + ((\(g) - \(r + rr))::float8 + 0.5) / \(max(ru, 1)) * interval '89 days' END
            """
        }
        let isEnded = "g < \(r + rr)"
        let status = """
            CASE WHEN \(isEnded) THEN (ARRAY['succeeded', 'failed', 'partial-succeeded', 'stopped'])[g % 4 + 1]
                 ELSE (ARRAY['running', 'paused', 'scheduled'])[g % 3 + 1] END
            """
        let a = config.apps, t = config.tenants
        let tenant = "md5('ret-tenant-' || ((g % \(a)) % \(t)))::uuid"
        let app = "md5('ret-app-' || (g % \(a)))::uuid"
        let workflow = "md5('ret-workflow-' || (g % \(a)))::uuid"
        let run = "md5('ret-run-' || g)::uuid"
        let user = "md5('ret-user-' || (g % 1000))::uuid"
        let source = { (condition: String?) in
            "(SELECT g, \(ts("g")) AS ts FROM generate_series(0, \(total - 1)) g\(condition.map { " WHERE " + $0 } ?? "")) s"
        }
        let graph =
            #"{"nodes": [{"id": "node-0", "data": {"type": "start", "title": "Start", "variables": [{"variable": "query", "type": "text-input", "required": true}]}}, {"id": "node-1", "data": {"type": "llm", "title": "Answer", "model": {"provider": "openai", "name": "gpt-4o-mini", "mode": "chat", "completion_params": {"temperature": 0.7}}, "prompt_template": [{"role": "system", "text": "You are a helpful weather assistant."}]}}, {"id": "node-2", "data": {"type": "code", "title": "Format", "code_language": "python3", "code": "def main(text):\n    return {\"result\": text.strip()}"}}, {"id": "node-3", "data": {"type": "llm", "title": "Summarise"}}, {"id": "node-4", "data": {"type": "end", "title": "End"}}], "edges": [{"source": "node-0", "target": "node-1"}, {"source": "node-1", "target": "node-2"}, {"source": "node-2", "target": "node-3"}, {"source": "node-3", "target": "node-4"}]}"#
        var out = tenantsAndApps(config: config, mode: "advanced-chat")
        out.append(
            """
            INSERT INTO workflow_runs (id, tenant_id, app_id, workflow_id, type, triggered_from, version, graph, inputs, status,
                                       outputs, elapsed_time, total_tokens, total_steps, created_by_role, created_by, created_at,
                                       finished_at, exceptions_count)
            SELECT \(run), \(tenant), \(app), \(workflow), CASE WHEN g % 3 = 0 THEN 'chat' ELSE 'workflow' END, 'app-run',
                   '2026-01-01 00:00:00.000000', '\(graph)', '{"query": "weather in Berlin #' || g || '"}', \(status),
                   '{"answer": "mostly sunny"}', 2.5, 420, 5, 'end_user', \(user), ts,
                   CASE WHEN \(isEnded) THEN ts + interval '3 seconds' END, 0
              FROM \(source(nil))
            """)
        out.append(
            """
            INSERT INTO workflow_node_executions (id, tenant_id, app_id, workflow_id, triggered_from, workflow_run_id, index,
                                                  predecessor_node_id, node_execution_id, node_id, node_type, title, inputs,
                                                  process_data, outputs, status, elapsed_time, execution_metadata, created_at,
                                                  created_by_role, created_by, finished_at)
            SELECT md5('ret-node-' || g || '-' || k)::uuid, \(tenant), \(app), \(workflow), 'workflow-run', \(run), k + 1,
                   CASE WHEN k > 0 THEN 'node-' || (k - 1) END, 'exec-' || g || '-' || k, 'node-' || k,
                   (ARRAY['start', 'llm', 'code', 'llm', 'end'])[k + 1], 'Step ' || (k + 1),
                   '{"text": "input of step ' || (k + 1) || ' of run ' || g || '"}', '{}',
                   '{"text": "output of step ' || (k + 1) || ' of run ' || g || '"}', 'succeeded', 0.4,
                   '{"total_tokens": 84, "total_price": "0.0000420", "currency": "USD"}',
                   ts + k * interval '500 milliseconds', 'end_user', \(user), ts + (k + 1) * interval '500 milliseconds'
              FROM (SELECT n / 5 AS g, n % 5 AS k, \(ts("(n / 5)")) AS ts
                      FROM generate_series(0, \(total * 5 - 1)) n) s
            """)
        out.append(
            """
            INSERT INTO workflow_node_execution_offload (id, created_at, tenant_id, app_id, node_execution_id, type, file_id)
            SELECT md5('ret-offload-' || g || '-' || kind)::uuid, ts, \(tenant), \(app), md5('ret-node-' || g || '-2')::uuid, kind,
                   md5('ret-offload-file-' || g || '-' || kind)::uuid
              FROM \(source("g % 4 = 0")) CROSS JOIN (VALUES ('inputs'), ('outputs')) v(kind)
            """)
        out.append(
            """
            INSERT INTO workflow_app_logs (id, tenant_id, app_id, workflow_id, workflow_run_id, created_from, created_by_role,
                                           created_by, created_at)
            SELECT md5('ret-applog-' || g)::uuid, \(tenant), \(app), \(workflow), \(run), 'service-api', 'end_user', \(user), ts
              FROM \(source(nil))
            """)
        out.append(
            """
            INSERT INTO workflow_pauses (id, workflow_id, workflow_run_id, resumed_at, state_object_key, created_at, updated_at)
            SELECT md5('ret-pause-' || g)::uuid, \(workflow), \(run), CASE WHEN \(isEnded) THEN ts + interval '1 second' END,
                   'workflow-pauses/' || g || '.json', ts, ts
              FROM \(source("g % 10 = 3"))
            """)
        out.append(
            """
            INSERT INTO workflow_pause_reasons (id, pause_id, type_, form_id, message, node_id, created_at, updated_at)
            SELECT md5('ret-pause-reason-' || g || '-' || i)::uuid, md5('ret-pause-' || g)::uuid, 'human_input',
                   md5('ret-form-' || g || '-' || i), 'waiting for approval', 'node-2', ts, ts
              FROM \(source("g % 10 = 3")) CROSS JOIN generate_series(0, 1) i
            """)
        out.append(
            """
            INSERT INTO workflow_trigger_logs (id, tenant_id, app_id, workflow_id, workflow_run_id, root_node_id, trigger_metadata,
                                               trigger_type, trigger_data, inputs, outputs, status, queue_name, retry_count,
                                               elapsed_time, total_tokens, created_by_role, created_by, created_at, triggered_at,
                                               finished_at)
            SELECT md5('ret-trigger-log-' || g)::uuid, \(tenant), \(app), \(workflow), \(run), 'node-0', '{}', 'trigger-webhook',
                   '{"body": {"city": "Berlin"}}', '{"query": "weather"}', '{"answer": "mostly sunny"}',
                   CASE WHEN \(isEnded) THEN 'succeeded' ELSE 'running' END, 'workflow_professional', 0, 2.5, 420,
                   'end_user', 'user-' || (g % 1000), ts, ts, CASE WHEN \(isEnded) THEN ts + interval '3 seconds' END
              FROM \(source(nil))
            """)
        // Chat runs: a conversation of their own, its variables, the run's message and its children.
        let chat = "g % 3 = 0"
        let conversation = "md5('ret-run-conversation-' || g)::uuid"
        out.append(
            """
            INSERT INTO conversations (id, app_id, mode, name, inputs, status, from_source, from_end_user_id, dialogue_count,
                                       created_at, updated_at)
            SELECT \(conversation), \(app), 'advanced-chat', 'conversation of run ' || g, '{}', 'normal', 'api', \(user), 1, ts, ts
              FROM \(source(chat))
            """)
        out.append(
            """
            INSERT INTO workflow_conversation_variables (id, conversation_id, app_id, data, created_at, updated_at)
            SELECT md5('ret-variable-' || g || '-' || i)::uuid, \(conversation), \(app),
                   '{"name": "topic_' || i || '", "value_type": "string", "value": "weather"}', ts, ts
              FROM \(source(chat)) CROSS JOIN generate_series(0, 1) i
            """)
        let message = "md5('ret-run-message-' || g)::uuid"
        out.append(
            Self.messagesInsert(
                id: message, app: app, conversation: conversation, workflowRun: run, mode: "advanced-chat",
                source: source(chat)))
        out += Self.messageChildInserts(
            message: message, app: app, conversation: conversation, tag: "ret-run",
            source: { f in source(f.map { chat + " AND " + $0 } ?? chat) },
            shares: .init(feedback: "g % 6 = 0", resource: "g % 12 = 0"))
        return out
    }
}
