// Migration 14: Dify's `tidb_auth_bindings`, the pool the two TiDB tasks keep, created only when
// absent, with Dify's columns, defaults and index names (so on a Dify database it changes nothing).

extension Migrations {
    /// Migration 14: `tidb_auth_bindings` where Dify has not created it (docs/tasks.md,
    /// "create_tidb_serverless_task").
    static let tidbTables = Migration(
        version: 14, name: "dify_tidb_auth_bindings",
        sql: """
            CREATE TABLE IF NOT EXISTS tidb_auth_bindings (
                id uuid NOT NULL DEFAULT gen_random_uuid(),
                tenant_id uuid,
                cluster_id varchar(255) NOT NULL,
                cluster_name varchar(255) NOT NULL,
                active boolean NOT NULL DEFAULT false,
                status varchar(255) NOT NULL DEFAULT 'CREATING',
                account varchar(255) NOT NULL,
                password varchar(255) NOT NULL,
                created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP(0),
                qdrant_endpoint varchar(512),
                CONSTRAINT tidb_auth_bindings_pkey PRIMARY KEY (id)
            );
            CREATE INDEX IF NOT EXISTS tidb_auth_bindings_tenant_idx ON tidb_auth_bindings (tenant_id);
            CREATE INDEX IF NOT EXISTS tidb_auth_bindings_active_idx ON tidb_auth_bindings (active);
            CREATE INDEX IF NOT EXISTS tidb_auth_bindings_created_at_idx ON tidb_auth_bindings (created_at);
            CREATE INDEX IF NOT EXISTS tidb_auth_bindings_status_idx ON tidb_auth_bindings (status);
            """)
}
