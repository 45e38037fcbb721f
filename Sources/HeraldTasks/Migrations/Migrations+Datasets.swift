// Migration 4: the Dify tables the dataset tasks read and write (datasets, documents,
// dataset_queries, dataset_auto_disable_logs, embeddings), each created with Dify's
// columns, defaults and indexes only when the table is absent: on a Dify database
// nothing of Dify's is touched. Plus Herald's own outbox of index cleanups still to send.

extension Migrations {
    /// Dify's dataset tables (created only when absent, indexes included) and `herald.dataset_index_cleanups`.
    ///
    /// Each Dify table is created inside `IF to_regclass(...) IS NULL`, so an existing table
    /// (maybe of another Dify version, with other columns) never gets an index or column from Herald.
    static let datasetTables = Migration(
        version: 4, name: "dify_dataset_tables",
        sql: """
            DO $$
            BEGIN
                IF to_regclass('datasets') IS NULL THEN
                    CREATE TABLE datasets (
                        id uuid NOT NULL DEFAULT gen_random_uuid(),
                        tenant_id uuid NOT NULL,
                        name varchar(255) NOT NULL,
                        description text,
                        provider varchar(255) NOT NULL DEFAULT 'vendor',
                        permission varchar(255) NOT NULL DEFAULT 'only_me',
                        data_source_type varchar(255),
                        indexing_technique varchar(255),
                        index_struct text,
                        created_by uuid NOT NULL,
                        created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                        updated_by uuid,
                        updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                        embedding_model varchar(255) DEFAULT 'text-embedding-ada-002',
                        embedding_model_provider varchar(255) DEFAULT 'openai',
                        keyword_number integer DEFAULT 10,
                        collection_binding_id uuid,
                        retrieval_model jsonb,
                        summary_index_setting jsonb,
                        built_in_field_enabled boolean NOT NULL DEFAULT false,
                        icon_info jsonb,
                        runtime_mode varchar(255) DEFAULT 'general',
                        pipeline_id uuid,
                        chunk_structure varchar(255),
                        enable_api boolean NOT NULL DEFAULT true,
                        is_multimodal boolean NOT NULL DEFAULT false,
                        CONSTRAINT dataset_pkey PRIMARY KEY (id)
                    );
                    CREATE INDEX dataset_tenant_idx ON datasets (tenant_id);
                    CREATE INDEX retrieval_model_idx ON datasets USING gin (retrieval_model);
                END IF;

                IF to_regclass('documents') IS NULL THEN
                    CREATE TABLE documents (
                        id uuid NOT NULL DEFAULT gen_random_uuid(),
                        tenant_id uuid NOT NULL,
                        dataset_id uuid NOT NULL,
                        position integer NOT NULL,
                        data_source_type varchar(255) NOT NULL,
                        data_source_info text,
                        dataset_process_rule_id uuid,
                        batch varchar(255) NOT NULL,
                        name varchar(255) NOT NULL,
                        created_from varchar(255) NOT NULL,
                        created_by uuid NOT NULL,
                        created_api_request_id uuid,
                        created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                        processing_started_at timestamp,
                        file_id text,
                        word_count integer,
                        parsing_completed_at timestamp,
                        cleaning_completed_at timestamp,
                        splitting_completed_at timestamp,
                        tokens integer,
                        indexing_latency double precision,
                        completed_at timestamp,
                        is_paused boolean DEFAULT false,
                        paused_by uuid,
                        paused_at timestamp,
                        error text,
                        stopped_at timestamp,
                        indexing_status varchar(255) NOT NULL DEFAULT 'waiting',
                        enabled boolean NOT NULL DEFAULT true,
                        disabled_at timestamp,
                        disabled_by uuid,
                        archived boolean NOT NULL DEFAULT false,
                        archived_reason varchar(255),
                        archived_by uuid,
                        archived_at timestamp,
                        updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                        doc_type varchar(40),
                        doc_metadata jsonb,
                        doc_form varchar(255) NOT NULL DEFAULT 'text_model',
                        doc_language varchar(255),
                        need_summary boolean NOT NULL DEFAULT false,
                        CONSTRAINT document_pkey PRIMARY KEY (id)
                    );
                    CREATE INDEX document_dataset_id_idx ON documents (dataset_id);
                    CREATE INDEX document_is_paused_idx ON documents (is_paused);
                    CREATE INDEX document_tenant_idx ON documents (tenant_id);
                    CREATE INDEX document_metadata_idx ON documents USING gin (doc_metadata);
                END IF;

                IF to_regclass('dataset_queries') IS NULL THEN
                    CREATE TABLE dataset_queries (
                        id uuid NOT NULL DEFAULT gen_random_uuid(),
                        dataset_id uuid NOT NULL,
                        content text NOT NULL,
                        source varchar(255) NOT NULL,
                        source_app_id uuid,
                        created_by_role varchar NOT NULL,
                        created_by uuid NOT NULL,
                        created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
                        CONSTRAINT dataset_query_pkey PRIMARY KEY (id)
                    );
                    CREATE INDEX dataset_query_dataset_id_idx ON dataset_queries (dataset_id);
                END IF;

                IF to_regclass('dataset_auto_disable_logs') IS NULL THEN
                    CREATE TABLE dataset_auto_disable_logs (
                        id uuid NOT NULL DEFAULT gen_random_uuid(),
                        tenant_id uuid NOT NULL,
                        dataset_id uuid NOT NULL,
                        document_id uuid NOT NULL,
                        notified boolean NOT NULL DEFAULT false,
                        created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                        CONSTRAINT dataset_auto_disable_log_pkey PRIMARY KEY (id)
                    );
                    CREATE INDEX dataset_auto_disable_log_created_atx ON dataset_auto_disable_logs (created_at);
                    CREATE INDEX dataset_auto_disable_log_dataset_idx ON dataset_auto_disable_logs (dataset_id);
                    CREATE INDEX dataset_auto_disable_log_tenant_idx ON dataset_auto_disable_logs (tenant_id);
                END IF;

                IF to_regclass('embeddings') IS NULL THEN
                    CREATE TABLE embeddings (
                        id uuid NOT NULL DEFAULT gen_random_uuid(),
                        model_name varchar(255) NOT NULL DEFAULT 'text-embedding-ada-002',
                        hash varchar(64) NOT NULL,
                        embedding bytea NOT NULL,
                        created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                        provider_name varchar(255) NOT NULL DEFAULT '',
                        CONSTRAINT embedding_pkey PRIMARY KEY (id),
                        CONSTRAINT embedding_hash_idx UNIQUE (model_name, hash, provider_name)
                    );
                    CREATE INDEX created_at_idx ON embeddings (created_at);
                END IF;
            END
            $$;
            CREATE TABLE IF NOT EXISTS herald.dataset_index_cleanups (
                document_id uuid PRIMARY KEY,
                dataset_id uuid NOT NULL,
                tenant_id uuid NOT NULL,
                queued_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX IF NOT EXISTS dataset_index_cleanups_queued_idx
                ON herald.dataset_index_cleanups (queued_at, document_id);
            """)
}
