// Migrations 6 and 7: the Dify tables the retention cleanups read and delete
// (messages and their eight child tables, conversations and their variables,
// workflow runs with node executions, offloads, app logs, pauses and pause
// reasons), each created with Dify's columns, defaults and indexes, including the
// `(created_at, id)` indexes the keyset scans need, and only when the table is
// absent: on a Dify database nothing of Dify's is touched by migration 6.
//
// Migration 7 is the one index Herald adds to a Dify table: messages(workflow_run_id)
// (partial, non-null only). Dify's own `message_workflow_run_id_idx` leads with
// conversation_id, so `WHERE workflow_run_id IN (…)` scans the whole table; the run-log
// cleanup needs that lookup once per batch. It is built with CREATE INDEX CONCURRENTLY
// outside any transaction, so live writes to messages go on while it builds.

extension Migrations {
    /// Dify's message and workflow-run tables (created only when absent, indexes included).
    static let retentionTables = Migration(
        version: 6, name: "dify_retention_tables",
        sql: """
            DO $$
            BEGIN
                IF to_regclass('conversations') IS NULL THEN
                    CREATE TABLE conversations (
                        id uuid NOT NULL DEFAULT gen_random_uuid(),
                        app_id uuid NOT NULL,
                        app_model_config_id uuid,
                        model_provider varchar(255),
                        override_model_configs text,
                        model_id varchar(255),
                        mode varchar(255) NOT NULL,
                        name varchar(255) NOT NULL,
                        summary text,
                        inputs json NOT NULL,
                        introduction text,
                        system_instruction text,
                        system_instruction_tokens integer NOT NULL DEFAULT 0,
                        status varchar(255) NOT NULL,
                        invoke_from varchar(255),
                        from_source varchar(255) NOT NULL,
                        from_end_user_id uuid,
                        from_account_id uuid,
                        read_at timestamp,
                        read_account_id uuid,
                        dialogue_count integer NOT NULL DEFAULT 0,
                        created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                        updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                        is_deleted boolean NOT NULL DEFAULT false,
                        CONSTRAINT conversation_pkey PRIMARY KEY (id)
                    );
                    CREATE INDEX conversation_app_from_user_idx ON conversations (app_id, from_source, from_end_user_id);
                    CREATE INDEX conversation_app_created_at_idx ON conversations (app_id, created_at DESC) WHERE is_deleted IS false;
                    CREATE INDEX conversation_app_updated_at_idx ON conversations (app_id, updated_at DESC) WHERE is_deleted IS false;
                END IF;

                IF to_regclass('messages') IS NULL THEN
                    CREATE TABLE messages (
                        id uuid NOT NULL DEFAULT gen_random_uuid(),
                        app_id uuid NOT NULL,
                        model_provider varchar(255),
                        model_id varchar(255),
                        override_model_configs text,
                        conversation_id uuid NOT NULL,
                        inputs json NOT NULL,
                        query text NOT NULL,
                        message json NOT NULL,
                        message_tokens integer NOT NULL DEFAULT 0,
                        message_unit_price numeric(10, 4) NOT NULL,
                        message_price_unit numeric(10, 7) NOT NULL DEFAULT 0.001,
                        answer text NOT NULL,
                        answer_tokens integer NOT NULL DEFAULT 0,
                        answer_unit_price numeric(10, 4) NOT NULL,
                        answer_price_unit numeric(10, 7) NOT NULL DEFAULT 0.001,
                        parent_message_id uuid,
                        provider_response_latency double precision NOT NULL DEFAULT 0,
                        total_price numeric(10, 7),
                        currency varchar(255) NOT NULL,
                        status varchar(255) NOT NULL DEFAULT 'normal',
                        error text,
                        message_metadata text,
                        invoke_from varchar(255),
                        from_source varchar(255) NOT NULL,
                        from_end_user_id uuid,
                        from_account_id uuid,
                        created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                        updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                        agent_based boolean NOT NULL DEFAULT false,
                        workflow_run_id uuid,
                        app_mode varchar(255),
                        CONSTRAINT message_pkey PRIMARY KEY (id)
                    );
                    CREATE INDEX message_app_id_idx ON messages (app_id, created_at);
                    CREATE INDEX message_conversation_id_idx ON messages (conversation_id);
                    CREATE INDEX message_end_user_idx ON messages (app_id, from_source, from_end_user_id);
                    CREATE INDEX message_account_idx ON messages (app_id, from_source, from_account_id);
                    CREATE INDEX message_workflow_run_id_idx ON messages (conversation_id, workflow_run_id);
                    CREATE INDEX message_app_mode_idx ON messages (app_mode);
                    CREATE INDEX message_created_at_id_idx ON messages (created_at, id);
                END IF;

                IF to_regclass('message_feedbacks') IS NULL THEN
                    CREATE TABLE message_feedbacks (
                        id uuid NOT NULL DEFAULT gen_random_uuid(),
                        app_id uuid NOT NULL,
                        conversation_id uuid NOT NULL,
                        message_id uuid NOT NULL,
                        rating varchar(255) NOT NULL,
                        content text,
                        from_source varchar(255) NOT NULL,
                        from_end_user_id uuid,
                        from_account_id uuid,
                        created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                        updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                        CONSTRAINT message_feedback_pkey PRIMARY KEY (id)
                    );
                    CREATE INDEX message_feedback_app_idx ON message_feedbacks (app_id);
                    CREATE INDEX message_feedback_message_idx ON message_feedbacks (message_id, from_source);
                    CREATE INDEX message_feedback_conversation_idx ON message_feedbacks (conversation_id, from_source, rating);
                END IF;

                IF to_regclass('message_annotations') IS NULL THEN
                    CREATE TABLE message_annotations (
                        id uuid NOT NULL DEFAULT gen_random_uuid(),
                        app_id uuid NOT NULL,
                        conversation_id uuid,
                        message_id uuid,
                        question text NOT NULL,
                        content text NOT NULL,
                        hit_count integer NOT NULL DEFAULT 0,
                        account_id uuid NOT NULL,
                        created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                        updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                        CONSTRAINT message_annotation_pkey PRIMARY KEY (id)
                    );
                    CREATE INDEX message_annotation_app_idx ON message_annotations (app_id);
                    CREATE INDEX message_annotation_conversation_idx ON message_annotations (conversation_id);
                    CREATE INDEX message_annotation_message_idx ON message_annotations (message_id);
                END IF;

                IF to_regclass('message_chains') IS NULL THEN
                    CREATE TABLE message_chains (
                        id uuid NOT NULL DEFAULT gen_random_uuid(),
                        message_id uuid NOT NULL,
                        type varchar(255) NOT NULL,
                        input text,
                        output text,
                        created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
                        CONSTRAINT message_chain_pkey PRIMARY KEY (id)
                    );
                    CREATE INDEX message_chain_message_id_idx ON message_chains (message_id);
                END IF;

                IF to_regclass('message_agent_thoughts') IS NULL THEN
                    CREATE TABLE message_agent_thoughts (
                        id uuid NOT NULL DEFAULT gen_random_uuid(),
                        message_id uuid NOT NULL,
                        message_chain_id uuid,
                        position integer NOT NULL,
                        thought text,
                        tool text,
                        tool_labels_str text NOT NULL DEFAULT '{}',
                        tool_meta_str text NOT NULL DEFAULT '{}',
                        tool_input text,
                        observation text,
                        tool_process_data text,
                        message text,
                        message_token integer,
                        message_unit_price numeric,
                        message_price_unit numeric(10, 7) NOT NULL DEFAULT 0.001,
                        message_files text,
                        answer text,
                        answer_token integer,
                        answer_unit_price numeric,
                        answer_price_unit numeric(10, 7) NOT NULL DEFAULT 0.001,
                        tokens integer,
                        total_price numeric,
                        currency varchar,
                        latency double precision,
                        created_by_role varchar NOT NULL,
                        created_by uuid NOT NULL,
                        created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
                        CONSTRAINT message_agent_thought_pkey PRIMARY KEY (id)
                    );
                    CREATE INDEX message_agent_thought_message_id_idx ON message_agent_thoughts (message_id);
                    CREATE INDEX message_agent_thought_message_chain_id_idx ON message_agent_thoughts (message_chain_id);
                END IF;

                IF to_regclass('message_files') IS NULL THEN
                    CREATE TABLE message_files (
                        id uuid NOT NULL DEFAULT gen_random_uuid(),
                        message_id uuid NOT NULL,
                        type varchar(255) NOT NULL,
                        transfer_method varchar(255) NOT NULL,
                        url text,
                        belongs_to varchar(255),
                        upload_file_id uuid,
                        created_by_role varchar(255) NOT NULL,
                        created_by uuid NOT NULL,
                        created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                        CONSTRAINT message_file_pkey PRIMARY KEY (id)
                    );
                    CREATE INDEX message_file_message_idx ON message_files (message_id);
                    CREATE INDEX message_file_created_by_idx ON message_files (created_by);
                END IF;

                IF to_regclass('saved_messages') IS NULL THEN
                    CREATE TABLE saved_messages (
                        id uuid NOT NULL DEFAULT gen_random_uuid(),
                        app_id uuid NOT NULL,
                        message_id uuid NOT NULL,
                        created_by_role varchar(255) NOT NULL DEFAULT 'end_user',
                        created_by uuid NOT NULL,
                        created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                        CONSTRAINT saved_message_pkey PRIMARY KEY (id)
                    );
                    CREATE INDEX saved_message_message_idx ON saved_messages (app_id, message_id, created_by_role, created_by);
                    CREATE INDEX saved_message_message_id_idx ON saved_messages (message_id);
                END IF;

                IF to_regclass('app_annotation_hit_histories') IS NULL THEN
                    CREATE TABLE app_annotation_hit_histories (
                        id uuid NOT NULL DEFAULT gen_random_uuid(),
                        app_id uuid NOT NULL,
                        annotation_id uuid NOT NULL,
                        source text NOT NULL,
                        question text NOT NULL,
                        account_id uuid NOT NULL,
                        created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                        score double precision NOT NULL DEFAULT 0,
                        message_id uuid NOT NULL,
                        annotation_question text NOT NULL,
                        annotation_content text NOT NULL,
                        CONSTRAINT app_annotation_hit_histories_pkey PRIMARY KEY (id)
                    );
                    CREATE INDEX app_annotation_hit_histories_account_idx ON app_annotation_hit_histories (account_id);
                    CREATE INDEX app_annotation_hit_histories_annotation_idx ON app_annotation_hit_histories (annotation_id);
                    CREATE INDEX app_annotation_hit_histories_app_idx ON app_annotation_hit_histories (app_id);
                    CREATE INDEX app_annotation_hit_histories_message_idx ON app_annotation_hit_histories (message_id);
                END IF;

                IF to_regclass('dataset_retriever_resources') IS NULL THEN
                    CREATE TABLE dataset_retriever_resources (
                        id uuid NOT NULL DEFAULT gen_random_uuid(),
                        message_id uuid NOT NULL,
                        position integer NOT NULL,
                        dataset_id uuid NOT NULL,
                        dataset_name text NOT NULL,
                        document_id uuid,
                        document_name text NOT NULL,
                        data_source_type text,
                        segment_id uuid,
                        score double precision,
                        content text NOT NULL,
                        hit_count integer,
                        word_count integer,
                        segment_position integer,
                        index_node_hash text,
                        retriever_from text NOT NULL,
                        created_by uuid NOT NULL,
                        created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
                        CONSTRAINT dataset_retriever_resource_pkey PRIMARY KEY (id)
                    );
                    CREATE INDEX dataset_retriever_resource_message_id_idx ON dataset_retriever_resources (message_id);
                END IF;

                IF to_regclass('workflow_conversation_variables') IS NULL THEN
                    CREATE TABLE workflow_conversation_variables (
                        id uuid NOT NULL,
                        conversation_id uuid NOT NULL,
                        app_id uuid NOT NULL,
                        data text NOT NULL,
                        created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                        updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
                        CONSTRAINT workflow__conversation_variables_pkey PRIMARY KEY (id, conversation_id)
                    );
                    CREATE INDEX workflow_conversation_variables_app_id_idx ON workflow_conversation_variables (app_id);
                    CREATE INDEX workflow_conversation_variables_conversation_id_idx ON workflow_conversation_variables (conversation_id);
                    CREATE INDEX workflow_conversation_variables_created_at_idx ON workflow_conversation_variables (created_at);
                END IF;

                IF to_regclass('workflow_runs') IS NULL THEN
                    CREATE TABLE workflow_runs (
                        id uuid NOT NULL DEFAULT gen_random_uuid(),
                        tenant_id uuid NOT NULL,
                        app_id uuid NOT NULL,
                        workflow_id uuid NOT NULL,
                        type varchar(255) NOT NULL,
                        triggered_from varchar(255) NOT NULL,
                        version varchar(255) NOT NULL,
                        graph text,
                        inputs text,
                        status varchar(255) NOT NULL,
                        outputs text,
                        error text,
                        elapsed_time double precision NOT NULL DEFAULT 0,
                        total_tokens bigint NOT NULL DEFAULT 0,
                        total_steps integer DEFAULT 0,
                        created_by_role varchar(255) NOT NULL,
                        created_by uuid NOT NULL,
                        created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                        finished_at timestamp,
                        exceptions_count integer DEFAULT 0,
                        CONSTRAINT workflow_run_pkey PRIMARY KEY (id)
                    );
                    CREATE INDEX workflow_run_triggerd_from_idx ON workflow_runs (tenant_id, app_id, triggered_from);
                    CREATE INDEX workflow_run_created_at_id_idx ON workflow_runs (created_at, id);
                END IF;

                IF to_regclass('workflow_node_executions') IS NULL THEN
                    CREATE TABLE workflow_node_executions (
                        id uuid NOT NULL DEFAULT gen_random_uuid(),
                        tenant_id uuid NOT NULL,
                        app_id uuid NOT NULL,
                        workflow_id uuid NOT NULL,
                        triggered_from varchar(255) NOT NULL,
                        workflow_run_id uuid,
                        index integer NOT NULL,
                        predecessor_node_id varchar(255),
                        node_execution_id varchar(255),
                        node_id varchar(255) NOT NULL,
                        node_type varchar(255) NOT NULL,
                        title varchar(255) NOT NULL,
                        inputs text,
                        process_data text,
                        outputs text,
                        status varchar(255) NOT NULL,
                        error text,
                        elapsed_time double precision NOT NULL DEFAULT 0,
                        execution_metadata text,
                        created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                        created_by_role varchar(255) NOT NULL,
                        created_by uuid NOT NULL,
                        finished_at timestamp,
                        CONSTRAINT workflow_node_execution_pkey PRIMARY KEY (id)
                    );
                    CREATE INDEX workflow_node_execution_node_run_idx
                        ON workflow_node_executions (tenant_id, app_id, workflow_id, triggered_from, node_id);
                    CREATE INDEX workflow_node_execution_id_idx
                        ON workflow_node_executions (tenant_id, app_id, workflow_id, triggered_from, node_execution_id);
                    CREATE INDEX workflow_node_execution_workflow_run_id_idx ON workflow_node_executions (workflow_run_id);
                    CREATE INDEX workflow_node_executions_tenant_id_idx
                        ON workflow_node_executions (tenant_id, workflow_id, node_id, created_at DESC);
                END IF;

                IF to_regclass('workflow_node_execution_offload') IS NULL THEN
                    CREATE TABLE workflow_node_execution_offload (
                        id uuid NOT NULL DEFAULT gen_random_uuid(),
                        created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
                        tenant_id uuid NOT NULL,
                        app_id uuid NOT NULL,
                        node_execution_id uuid,
                        type varchar(20) NOT NULL,
                        file_id uuid NOT NULL,
                        CONSTRAINT workflow_node_execution_offload_pkey PRIMARY KEY (id),
                        CONSTRAINT workflow_node_execution_offload_node_execution_id_key UNIQUE (node_execution_id, type)
                    );
                END IF;

                IF to_regclass('workflow_app_logs') IS NULL THEN
                    CREATE TABLE workflow_app_logs (
                        id uuid NOT NULL DEFAULT gen_random_uuid(),
                        tenant_id uuid NOT NULL,
                        app_id uuid NOT NULL,
                        workflow_id uuid NOT NULL,
                        workflow_run_id uuid NOT NULL,
                        created_from varchar(255) NOT NULL,
                        created_by_role varchar(255) NOT NULL,
                        created_by uuid NOT NULL,
                        created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                        CONSTRAINT workflow_app_log_pkey PRIMARY KEY (id)
                    );
                    CREATE INDEX workflow_app_log_app_idx ON workflow_app_logs (tenant_id, app_id);
                    CREATE INDEX workflow_app_log_workflow_run_id_idx ON workflow_app_logs (workflow_run_id);
                END IF;

                IF to_regclass('workflow_pauses') IS NULL THEN
                    CREATE TABLE workflow_pauses (
                        id uuid NOT NULL DEFAULT gen_random_uuid(),
                        workflow_id uuid NOT NULL,
                        workflow_run_id uuid NOT NULL,
                        resumed_at timestamp,
                        state_object_key varchar(255) NOT NULL,
                        created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
                        updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
                        CONSTRAINT workflow_pauses_pkey PRIMARY KEY (id),
                        CONSTRAINT workflow_pauses_workflow_run_id_key UNIQUE (workflow_run_id)
                    );
                END IF;

                IF to_regclass('workflow_pause_reasons') IS NULL THEN
                    CREATE TABLE workflow_pause_reasons (
                        id uuid NOT NULL,
                        pause_id uuid NOT NULL,
                        type_ varchar(20) NOT NULL,
                        form_id varchar(36) NOT NULL,
                        message varchar(255) NOT NULL,
                        node_id varchar(255) NOT NULL,
                        created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
                        updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
                        CONSTRAINT workflow_pause_reasons_pkey PRIMARY KEY (id)
                    );
                    CREATE INDEX workflow_pause_reasons_pause_id_idx ON workflow_pause_reasons (pause_id);
                END IF;
            END
            $$;
            """)

    /// `messages(workflow_run_id)`, built concurrently (outside a transaction) so that writers go on.
    static let messagesWorkflowRunIndex = Migration(
        version: 7, name: "herald_messages_workflow_run_index", transactional: false,
        sql: """
            CREATE INDEX CONCURRENTLY IF NOT EXISTS herald_message_workflow_run_idx
                ON messages (workflow_run_id) WHERE workflow_run_id IS NOT NULL
            """,
        repairInvalidIndex: "herald_message_workflow_run_idx")
}
