// A small demo for a newcomer (`herald migrate --demo`, used by `make run`): one
// tenant with its owner, one workflow app with an enabled schedule trigger, and
// two plans, every minute in UTC and every five minutes in Asia/Shanghai.
// Fixed ids and ON CONFLICT DO NOTHING make it idempotent.

import Foundation
import HeraldCore
import HeraldIO

public enum DemoData {
    public static let tenantID = "00000000-0000-4000-8000-00000000d1f1"
    public static let accountID = "00000000-0000-4000-8000-00000000ac01"
    public static let plans: [(id: String, appID: String, node: String, cron: String, zone: String)] = [
        (
            "00000000-0000-4000-8000-0000000000a1", "00000000-0000-4000-8000-0000000000b1", "schedule-every-minute",
            "* * * * *", "UTC"
        ),
        (
            "00000000-0000-4000-8000-0000000000a2", "00000000-0000-4000-8000-0000000000b2", "schedule-every-5-minutes",
            "*/5 * * * *", "Asia/Shanghai"
        ),
    ]

    /// Inserts the demo rows that are missing; returns how many plans were created.
    @discardableResult
    public static func load(_ c: PostgresConnection) throws -> Int {
        try c.transaction { c in
            try c.query("INSERT INTO tenants (id, name) VALUES ($1, 'Demo tenant') ON CONFLICT DO NOTHING", [tenantID])
            try c.query(
                "INSERT INTO accounts (id, name, email) VALUES ($1, 'Demo owner', 'owner@example.com') ON CONFLICT DO NOTHING",
                [accountID])
            try c.query(
                """
                INSERT INTO tenant_account_joins (tenant_id, account_id, current, role) VALUES ($1, $2, true, 'owner')
                ON CONFLICT (tenant_id, account_id) DO NOTHING
                """, [tenantID, accountID])
            var created = 0
            for p in plans {
                try c.query(
                    """
                    INSERT INTO apps (id, tenant_id, name, mode, enable_site, enable_api)
                    VALUES ($1, $2, $3, 'workflow', true, true) ON CONFLICT DO NOTHING
                    """,
                    [p.appID, tenantID, "Demo app (\(p.cron), \(p.zone))"])
                try c.query(
                    """
                    INSERT INTO app_triggers (tenant_id, app_id, node_id, trigger_type, title, status, updated_at)
                    SELECT $1::uuid, $2::uuid, $3::varchar, 'trigger-schedule', 'Schedule', 'enabled',
                           now() AT TIME ZONE 'UTC'
                     WHERE NOT EXISTS (SELECT 1 FROM app_triggers WHERE app_id = $2::uuid AND node_id = $3::varchar)
                    """, [tenantID, p.appID, p.node])
                let next = try CronSchedule(p.cron, timeZone: p.zone).next(
                    afterUnixSeconds: Date().timeIntervalSince1970)
                let r = try c.query(
                    """
                    INSERT INTO workflow_schedule_plans (id, app_id, node_id, tenant_id, cron_expression, timezone, next_run_at)
                    VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7::bigint) AT TIME ZONE 'UTC')
                    ON CONFLICT DO NOTHING
                    """, [p.id, p.appID, p.node, tenantID, p.cron, p.zone, String(next)])
                created += r.affected
            }
            return created
        }
    }
}
