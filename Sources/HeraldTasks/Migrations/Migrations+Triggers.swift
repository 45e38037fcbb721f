// Migration 11: trigger credentials and subscriptions are refreshed at their own due
// instants. Dify's `trigger_subscriptions` has no index on its expiry columns, so
// Herald keeps one row per subscription in `herald.trigger_refresh_due`, with the
// due instant computed and indexed; a row trigger on Dify's table keeps it current
// in the same transaction as Dify's write, and the statement triggers of migration 3
// announce the change (NOTIFY). A (subscription, due instant) is claimed once under
// the primary key of `herald.trigger_refresh_fires`. docs/tasks.md, "trigger_provider_refresh_task".

extension Migrations {
    static let triggerRefresh = Migration(
        version: 11, name: "herald_trigger_refresh",
        sql: """
            CREATE TABLE IF NOT EXISTS trigger_subscriptions (
                id uuid NOT NULL DEFAULT gen_random_uuid(),
                name varchar(255) NOT NULL,
                tenant_id uuid NOT NULL,
                user_id uuid NOT NULL,
                provider_id varchar(255) NOT NULL,
                endpoint_id varchar(255) NOT NULL,
                parameters json NOT NULL,
                properties json NOT NULL,
                credentials json NOT NULL,
                credential_type varchar(50) NOT NULL,
                credential_expires_at integer NOT NULL,
                expires_at integer NOT NULL,
                created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
                updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
                visibility varchar(40) NOT NULL DEFAULT 'all_team_members',
                CONSTRAINT trigger_provider_pkey PRIMARY KEY (id),
                CONSTRAINT unique_trigger_provider UNIQUE (tenant_id, provider_id, name)
            );
            CREATE UNIQUE INDEX IF NOT EXISTS idx_trigger_providers_endpoint ON trigger_subscriptions (endpoint_id);
            CREATE INDEX IF NOT EXISTS idx_trigger_providers_tenant_endpoint
                ON trigger_subscriptions (tenant_id, endpoint_id);
            CREATE INDEX IF NOT EXISTS idx_trigger_providers_tenant_provider
                ON trigger_subscriptions (tenant_id, provider_id);

            -- The thresholds in force (Dify's TRIGGER_PROVIDER_*_THRESHOLD_SECONDS), written by the
            -- daemon at start; the due instants are computed with them.
            CREATE TABLE IF NOT EXISTS herald.trigger_refresh_settings (
                id boolean PRIMARY KEY DEFAULT true CHECK (id),
                credential_threshold_s integer NOT NULL DEFAULT 3600,
                subscription_threshold_s integer NOT NULL DEFAULT 3600
            );
            INSERT INTO herald.trigger_refresh_settings DEFAULT VALUES ON CONFLICT DO NOTHING;

            CREATE TABLE IF NOT EXISTS herald.trigger_refresh_due (
                subscription_id uuid PRIMARY KEY,
                tenant_id uuid NOT NULL,
                credential_expires_at integer NOT NULL,
                expires_at integer NOT NULL,
                due_at bigint,                       -- Unix µs; NULL: never (both expiries -1)
                attempt integer NOT NULL DEFAULT 0,  -- fires since the expiries last moved
                last_fire_at bigint,                 -- due instant of the latest fire (µs)
                fired_credential_expires_at integer, -- the expiries that fire saw
                fired_expires_at integer
            );
            CREATE INDEX IF NOT EXISTS trigger_refresh_due_at_idx ON herald.trigger_refresh_due (due_at)
                WHERE due_at IS NOT NULL;

            CREATE TABLE IF NOT EXISTS herald.trigger_refresh_fires (
                subscription_id uuid NOT NULL,
                due_at bigint NOT NULL,
                tenant_id uuid NOT NULL,
                attempt integer NOT NULL,
                claimed_by text NOT NULL,
                claimed_at timestamptz NOT NULL DEFAULT now(),
                enqueued_at timestamptz,
                outcome text,                        -- enqueued | locked
                PRIMARY KEY (subscription_id, due_at)
            );
            CREATE INDEX IF NOT EXISTS trigger_refresh_fires_unsent_idx ON herald.trigger_refresh_fires (claimed_at)
                WHERE enqueued_at IS NULL;

            -- A subscription's next due instant (Unix µs, NULL: never). base: the earlier of each
            -- expiry minus its threshold (-1: never). After a fire at last_fire: if the expiries
            -- moved, not before half the time from that fire to the earliest expiry has passed (at
            -- least 60 s), so a token that lives no longer than the threshold is refreshed twice in
            -- its life, not every minute; if they did not move, again after 1, 2, 4 … 60 minutes,
            -- but no later than the earliest expiry itself while it is still ahead.
            CREATE OR REPLACE FUNCTION herald.trigger_refresh_due_at(
                cred integer, exp integer, cred_t integer, sub_t integer, last_fire bigint, attempt integer,
                moved boolean
            ) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
                SELECT CASE
                    WHEN v.base IS NULL THEN NULL
                    WHEN last_fire IS NULL THEN v.base
                    WHEN moved THEN GREATEST(v.base, last_fire + GREATEST(60000000, (v.earliest - last_fire) / 2))
                    ELSE GREATEST(v.base, CASE WHEN v.earliest > last_fire
                        THEN LEAST(last_fire + v.backoff, v.earliest) ELSE last_fire + v.backoff END)
                END
                FROM (SELECT
                    LEAST(CASE WHEN cred <> -1 THEN (cred::bigint - cred_t) * 1000000 END,
                          CASE WHEN exp <> -1 THEN (exp::bigint - sub_t) * 1000000 END) AS base,
                    LEAST(CASE WHEN cred <> -1 THEN cred::bigint * 1000000 END,
                          CASE WHEN exp <> -1 THEN exp::bigint * 1000000 END) AS earliest,
                    LEAST(60000000::bigint * (1::bigint << LEAST(GREATEST(attempt - 1, 0), 10)), 3600000000)
                        AS backoff) v
            $$;

            CREATE OR REPLACE FUNCTION herald.trigger_subscription_changed() RETURNS trigger
            LANGUAGE plpgsql AS $$
            DECLARE
                s herald.trigger_refresh_settings;
            BEGIN
                IF TG_OP = 'DELETE' THEN
                    DELETE FROM herald.trigger_refresh_due WHERE subscription_id = OLD.id;
                    RETURN NULL;
                END IF;
                IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND NEW.tenant_id = OLD.tenant_id
                   AND NEW.credential_expires_at = OLD.credential_expires_at AND NEW.expires_at = OLD.expires_at THEN
                    RETURN NULL;
                END IF;
                IF TG_OP = 'UPDATE' AND NEW.id <> OLD.id THEN
                    DELETE FROM herald.trigger_refresh_due WHERE subscription_id = OLD.id;
                END IF;
                SELECT * INTO s FROM herald.trigger_refresh_settings;
                INSERT INTO herald.trigger_refresh_due AS d
                       (subscription_id, tenant_id, credential_expires_at, expires_at, due_at)
                VALUES (NEW.id, NEW.tenant_id, NEW.credential_expires_at, NEW.expires_at,
                        herald.trigger_refresh_due_at(NEW.credential_expires_at, NEW.expires_at,
                            s.credential_threshold_s, s.subscription_threshold_s, NULL, 0, true))
                ON CONFLICT (subscription_id) DO UPDATE SET
                    tenant_id = EXCLUDED.tenant_id,
                    credential_expires_at = EXCLUDED.credential_expires_at,
                    expires_at = EXCLUDED.expires_at,
                    attempt = CASE WHEN (EXCLUDED.credential_expires_at, EXCLUDED.expires_at)
                        IS DISTINCT FROM (d.fired_credential_expires_at, d.fired_expires_at) THEN 0 ELSE d.attempt END,
                    due_at = herald.trigger_refresh_due_at(EXCLUDED.credential_expires_at, EXCLUDED.expires_at,
                        s.credential_threshold_s, s.subscription_threshold_s, d.last_fire_at, d.attempt,
                        (EXCLUDED.credential_expires_at, EXCLUDED.expires_at)
                            IS DISTINCT FROM (d.fired_credential_expires_at, d.fired_expires_at));
                RETURN NULL;
            END
            $$;
            DROP TRIGGER IF EXISTS herald_trigger_refresh_due ON trigger_subscriptions;
            CREATE TRIGGER herald_trigger_refresh_due AFTER INSERT OR UPDATE OR DELETE ON trigger_subscriptions
                FOR EACH ROW EXECUTE FUNCTION herald.trigger_subscription_changed();
            DROP TRIGGER IF EXISTS herald_notify_insert ON trigger_subscriptions;
            DROP TRIGGER IF EXISTS herald_notify_update ON trigger_subscriptions;
            DROP TRIGGER IF EXISTS herald_notify_delete ON trigger_subscriptions;
            CREATE TRIGGER herald_notify_insert AFTER INSERT ON trigger_subscriptions
                REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION herald.notify_changes();
            CREATE TRIGGER herald_notify_update AFTER UPDATE ON trigger_subscriptions
                REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION herald.notify_changes();
            CREATE TRIGGER herald_notify_delete AFTER DELETE ON trigger_subscriptions
                REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION herald.notify_changes();

            -- Subscriptions that exist already.
            INSERT INTO herald.trigger_refresh_due (subscription_id, tenant_id, credential_expires_at, expires_at, due_at)
            SELECT t.id, t.tenant_id, t.credential_expires_at, t.expires_at,
                   herald.trigger_refresh_due_at(t.credential_expires_at, t.expires_at,
                       s.credential_threshold_s, s.subscription_threshold_s, NULL, 0, true)
              FROM trigger_subscriptions t, herald.trigger_refresh_settings s
            ON CONFLICT (subscription_id) DO NOTHING;
            """)
}

extension Migrations {
    /// Migration 12: plugin upgrade checks at each tenant's `upgrade_time_of_day`. Dify's
    /// strategies table is announced by NOTIFY (migration 3's statement triggers); a (tenant,
    /// due instant) is claimed once under the primary key of `herald.plugin_check_fires`.
    /// docs/tasks.md, "check_upgradable_plugin_task".
    static let pluginChecks = Migration(
        version: 12, name: "herald_plugin_checks",
        sql: """
            CREATE TABLE IF NOT EXISTS tenant_plugin_auto_upgrade_strategies (
                id uuid NOT NULL DEFAULT gen_random_uuid(),
                tenant_id uuid NOT NULL,
                strategy_setting varchar(16) NOT NULL DEFAULT 'fix_only',
                upgrade_time_of_day integer NOT NULL,
                upgrade_mode varchar(16) NOT NULL DEFAULT 'exclude',
                exclude_plugins json NOT NULL,
                include_plugins json NOT NULL,
                created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
                updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
                CONSTRAINT tenant_plugin_auto_upgrade_strategy_pkey PRIMARY KEY (id),
                CONSTRAINT unique_tenant_plugin_auto_upgrade_strategy UNIQUE (tenant_id)
            );
            CREATE TABLE IF NOT EXISTS herald.plugin_check_fires (
                tenant_id uuid NOT NULL,
                due_at bigint NOT NULL,              -- Unix µs: the UTC day's start + upgrade_time_of_day
                claimed_by text NOT NULL,
                claimed_at timestamptz NOT NULL DEFAULT now(),
                enqueued_at timestamptz,
                outcome text,                        -- enqueued | expired
                PRIMARY KEY (tenant_id, due_at)
            );
            CREATE INDEX IF NOT EXISTS plugin_check_fires_unsent_idx ON herald.plugin_check_fires (claimed_at)
                WHERE enqueued_at IS NULL;
            DROP TRIGGER IF EXISTS herald_notify_insert ON tenant_plugin_auto_upgrade_strategies;
            DROP TRIGGER IF EXISTS herald_notify_update ON tenant_plugin_auto_upgrade_strategies;
            DROP TRIGGER IF EXISTS herald_notify_delete ON tenant_plugin_auto_upgrade_strategies;
            CREATE TRIGGER herald_notify_insert AFTER INSERT ON tenant_plugin_auto_upgrade_strategies
                REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION herald.notify_changes();
            CREATE TRIGGER herald_notify_update AFTER UPDATE ON tenant_plugin_auto_upgrade_strategies
                REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION herald.notify_changes();
            CREATE TRIGGER herald_notify_delete AFTER DELETE ON tenant_plugin_auto_upgrade_strategies
                REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION herald.notify_changes();
            """)
}
