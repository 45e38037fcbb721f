// The migrations, in order. 1: the Dify tables schedules touch, created only
// when absent, with Dify's names, types and indexes. 2: Herald's own tables.
// 3: the NOTIFY triggers (docs/events.md) on Dify's workflow_schedule_plans and
// app_triggers. The later ones are in Migrations+*.swift. Herald never changes the
// columns or constraints of an existing Dify table (the indexes of 1 carry
// Dify's own names, so on a Dify database they exist already); what it adds to
// Dify's tables is those triggers and one index on messages (migration 7).

/// Every migration Herald knows.
public enum Migrations {
    public static let all: [Migration] = [
        difyTables, heraldTables, notifyTriggers, datasetTables, taskTables, retentionTables, messagesWorkflowRunIndex,
        retentionFunctions, scheduleClaims, taskTickDelivery, triggerRefresh, pluginChecks, schedulePauses, tidbTables,
    ]

    /// The version a database must be at for Herald to run its schedules.
    public static var latestVersion: Int { all.map(\.version).max() ?? 0 }

    static let difyTables = Migration(
        version: 1, name: "dify_schedule_tables",
        sql: """
            CREATE TABLE IF NOT EXISTS tenants (
                id uuid NOT NULL DEFAULT gen_random_uuid(),
                name varchar(255) NOT NULL,
                encrypt_public_key text,
                plan varchar(255) NOT NULL DEFAULT 'basic',
                status varchar(255) NOT NULL DEFAULT 'normal',
                custom_config text,
                created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                CONSTRAINT tenant_pkey PRIMARY KEY (id)
            );
            CREATE TABLE IF NOT EXISTS accounts (
                id uuid NOT NULL DEFAULT gen_random_uuid(),
                name varchar(255) NOT NULL,
                email varchar(255) NOT NULL,
                password varchar(255),
                password_salt varchar(255),
                avatar varchar(255),
                interface_language varchar(255),
                interface_theme varchar(255),
                timezone varchar(255),
                last_login_at timestamp,
                last_login_ip varchar(255),
                last_active_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                status varchar(16) NOT NULL DEFAULT 'active',
                initialized_at timestamp,
                created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                CONSTRAINT account_pkey PRIMARY KEY (id)
            );
            CREATE INDEX IF NOT EXISTS account_email_idx ON accounts (email);
            CREATE TABLE IF NOT EXISTS tenant_account_joins (
                id uuid NOT NULL DEFAULT gen_random_uuid(),
                tenant_id uuid NOT NULL,
                account_id uuid NOT NULL,
                current boolean NOT NULL DEFAULT false,
                role varchar(16) NOT NULL DEFAULT 'normal',
                invited_by uuid,
                created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                CONSTRAINT tenant_account_join_pkey PRIMARY KEY (id),
                CONSTRAINT unique_tenant_account_join UNIQUE (tenant_id, account_id)
            );
            CREATE INDEX IF NOT EXISTS tenant_account_join_account_id_idx ON tenant_account_joins (account_id);
            CREATE INDEX IF NOT EXISTS tenant_account_join_tenant_id_idx ON tenant_account_joins (tenant_id);
            CREATE TABLE IF NOT EXISTS apps (
                id uuid NOT NULL DEFAULT gen_random_uuid(),
                tenant_id uuid NOT NULL,
                name varchar(255) NOT NULL,
                description text NOT NULL DEFAULT '',
                mode varchar(255) NOT NULL,
                icon_type varchar(255),
                icon varchar(255),
                icon_background varchar(255),
                app_model_config_id uuid,
                workflow_id uuid,
                status varchar(255) NOT NULL DEFAULT 'normal',
                enable_site boolean NOT NULL,
                enable_api boolean NOT NULL,
                api_rpm integer NOT NULL DEFAULT 0,
                api_rph integer NOT NULL DEFAULT 0,
                is_demo boolean NOT NULL DEFAULT false,
                is_public boolean NOT NULL DEFAULT false,
                is_universal boolean NOT NULL DEFAULT false,
                tracing text,
                max_active_requests integer,
                use_icon_as_answer_icon boolean NOT NULL DEFAULT false,
                created_by uuid,
                created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                updated_by uuid,
                updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                CONSTRAINT app_pkey PRIMARY KEY (id)
            );
            CREATE INDEX IF NOT EXISTS app_tenant_id_idx ON apps (tenant_id);
            CREATE TABLE IF NOT EXISTS app_triggers (
                id uuid NOT NULL DEFAULT gen_random_uuid(),
                tenant_id uuid NOT NULL,
                app_id uuid NOT NULL,
                node_id varchar(64) NOT NULL,
                trigger_type varchar(50) NOT NULL,
                title varchar(255) NOT NULL,
                provider_name varchar(255) DEFAULT '',
                status varchar(50) NOT NULL,
                created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
                updated_at timestamp NOT NULL,
                CONSTRAINT app_trigger_pkey PRIMARY KEY (id)
            );
            CREATE INDEX IF NOT EXISTS app_trigger_tenant_app_idx ON app_triggers (tenant_id, app_id);
            CREATE TABLE IF NOT EXISTS workflow_schedule_plans (
                id uuid NOT NULL DEFAULT gen_random_uuid(),
                app_id uuid NOT NULL,
                node_id varchar(64) NOT NULL,
                tenant_id uuid NOT NULL,
                cron_expression varchar(255) NOT NULL,
                timezone varchar(64) NOT NULL,
                next_run_at timestamp,
                created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
                updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
                CONSTRAINT workflow_schedule_plan_pkey PRIMARY KEY (id),
                CONSTRAINT uniq_app_node UNIQUE (app_id, node_id)
            );
            CREATE INDEX IF NOT EXISTS workflow_schedule_plan_next_idx ON workflow_schedule_plans (next_run_at);
            CREATE TABLE IF NOT EXISTS workflow_trigger_logs (
                id uuid NOT NULL DEFAULT gen_random_uuid(),
                tenant_id uuid NOT NULL,
                app_id uuid NOT NULL,
                workflow_id uuid NOT NULL,
                workflow_run_id uuid,
                root_node_id varchar(255),
                trigger_metadata text NOT NULL,
                trigger_type varchar(50) NOT NULL,
                trigger_data text NOT NULL,
                inputs text NOT NULL,
                outputs text,
                status varchar(50) NOT NULL,
                error text,
                queue_name varchar(100) NOT NULL,
                celery_task_id varchar(255),
                retry_count integer NOT NULL,
                elapsed_time double precision,
                total_tokens integer,
                created_by_role varchar(255) NOT NULL,
                created_by varchar(255) NOT NULL,
                created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
                triggered_at timestamp,
                finished_at timestamp,
                CONSTRAINT workflow_trigger_log_pkey PRIMARY KEY (id)
            );
            CREATE INDEX IF NOT EXISTS workflow_trigger_log_tenant_app_idx ON workflow_trigger_logs (tenant_id, app_id);
            CREATE INDEX IF NOT EXISTS workflow_trigger_log_status_idx ON workflow_trigger_logs (status);
            CREATE INDEX IF NOT EXISTS workflow_trigger_log_created_at_idx ON workflow_trigger_logs (created_at);
            CREATE INDEX IF NOT EXISTS workflow_trigger_log_workflow_run_idx ON workflow_trigger_logs (workflow_run_id);
            CREATE INDEX IF NOT EXISTS workflow_trigger_log_workflow_id_idx ON workflow_trigger_logs (workflow_id);
            """)

    static let heraldTables = Migration(
        version: 2, name: "herald_schedule_tables",
        sql: """
            CREATE TABLE IF NOT EXISTS herald.schedule_fires (
                plan_id uuid NOT NULL,
                scheduled_at timestamp NOT NULL,
                kind text NOT NULL CHECK (kind IN ('cron', 'run_now')),
                task_id uuid NOT NULL,
                via text NOT NULL,
                claimed_by text NOT NULL,
                claimed_at timestamptz NOT NULL DEFAULT now(),
                enqueued_at timestamptz,
                PRIMARY KEY (plan_id, scheduled_at, kind)
            );
            CREATE INDEX IF NOT EXISTS schedule_fires_unenqueued_idx ON herald.schedule_fires (claimed_at) WHERE enqueued_at IS NULL;
            CREATE INDEX IF NOT EXISTS schedule_fires_claimed_at_idx ON herald.schedule_fires (claimed_at);
            CREATE UNIQUE INDEX IF NOT EXISTS schedule_fires_task_id_idx ON herald.schedule_fires (task_id);
            CREATE TABLE IF NOT EXISTS herald.schedule_policies (
                plan_id uuid PRIMARY KEY,
                catch_up text NOT NULL DEFAULT 'once' CHECK (catch_up IN ('once', 'skip', 'all')),
                misfire_grace_seconds integer NOT NULL DEFAULT 60 CHECK (misfire_grace_seconds >= 0),
                max_catch_up integer NOT NULL DEFAULT 100 CHECK (max_catch_up BETWEEN 1 AND 10000),
                updated_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE TABLE IF NOT EXISTS herald.schedule_quarantine (
                plan_id uuid PRIMARY KEY,
                cron_expression text NOT NULL,
                timezone text NOT NULL,
                error text NOT NULL,
                occurrences integer NOT NULL DEFAULT 1,
                first_seen_at timestamptz NOT NULL DEFAULT now(),
                last_seen_at timestamptz NOT NULL DEFAULT now()
            );
            """)

    /// Statement-level triggers with transition tables: one trigger call per
    /// statement whatever its row count. Up to 100 distinct ids are announced
    /// one NOTIFY each; a larger statement sends one bulk notice instead, so a
    /// million-row update costs one notification, not a million. Herald's own
    /// claim transactions set `herald.claiming` and are not announced.
    static let notifyTriggers = Migration(
        version: 3, name: "herald_notify_triggers",
        sql: """
            CREATE OR REPLACE FUNCTION herald.notify_changes() RETURNS trigger
            LANGUAGE plpgsql AS $$
            DECLARE
                n bigint;
            BEGIN
                IF coalesce(current_setting('herald.claiming', true), '') = 'on' THEN
                    RETURN NULL;
                END IF;
                IF TG_OP = 'DELETE' THEN
                    SELECT count(*) INTO n FROM old_rows;
                    IF n > 100 THEN
                        PERFORM pg_notify('herald_events', json_build_object('table', TG_TABLE_NAME, 'op', TG_OP, 'bulk', true, 'rows', n)::text);
                    ELSE
                        PERFORM pg_notify('herald_events', json_build_object('table', TG_TABLE_NAME, 'op', TG_OP, 'id', id)::text)
                        FROM (SELECT DISTINCT id FROM old_rows) d;
                    END IF;
                ELSE
                    SELECT count(*) INTO n FROM new_rows;
                    IF n > 100 THEN
                        PERFORM pg_notify('herald_events', json_build_object('table', TG_TABLE_NAME, 'op', TG_OP, 'bulk', true, 'rows', n)::text);
                    ELSE
                        PERFORM pg_notify('herald_events', json_build_object('table', TG_TABLE_NAME, 'op', TG_OP, 'id', id)::text)
                        FROM (SELECT DISTINCT id FROM new_rows) d;
                    END IF;
                END IF;
                RETURN NULL;
            END
            $$;
            DO $$
            DECLARE
                t text;
            BEGIN
                FOREACH t IN ARRAY ARRAY['workflow_schedule_plans', 'app_triggers'] LOOP
                    EXECUTE format('DROP TRIGGER IF EXISTS herald_notify_insert ON %I', t);
                    EXECUTE format('DROP TRIGGER IF EXISTS herald_notify_update ON %I', t);
                    EXECUTE format('DROP TRIGGER IF EXISTS herald_notify_delete ON %I', t);
                    EXECUTE format('CREATE TRIGGER herald_notify_insert AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION herald.notify_changes()', t);
                    EXECUTE format('CREATE TRIGGER herald_notify_update AFTER UPDATE ON %I REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION herald.notify_changes()', t);
                    EXECUTE format('CREATE TRIGGER herald_notify_delete AFTER DELETE ON %I REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION herald.notify_changes()', t);
                END LOOP;
            END
            $$;
            """)
}
