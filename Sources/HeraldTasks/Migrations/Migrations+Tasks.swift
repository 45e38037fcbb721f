// Migration 5: the task executor's own tables. `herald.task_ticks` makes a
// scheduled tick run once across all instances (each inserts the tick with
// ON CONFLICT DO NOTHING; only the inserter runs it) and tells a starting
// instance whether a tick was missed; `herald.task_runs` records every run.

extension Migrations {
    /// `herald.task_ticks` (one row per claimed scheduled tick) and `herald.task_runs` (run history).
    static let taskTables = Migration(
        version: 5, name: "herald_task_tables",
        sql: """
            CREATE TABLE IF NOT EXISTS herald.task_ticks (
                task text NOT NULL,
                tick_at timestamp NOT NULL,
                claimed_by text NOT NULL,
                claimed_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (task, tick_at)
            );
            CREATE TABLE IF NOT EXISTS herald.task_runs (
                run_id text PRIMARY KEY,
                task text NOT NULL,
                cause text NOT NULL,
                dry_run boolean NOT NULL DEFAULT false,
                status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'skipped')),
                started_at timestamptz NOT NULL DEFAULT now(),
                finished_at timestamptz,
                report jsonb,
                error text
            );
            CREATE INDEX IF NOT EXISTS task_runs_task_started_idx ON herald.task_runs (task, started_at DESC);
            """)
}

extension Migrations {
    /// Migration 10: `celery` ticks are sent once. A tick row records how the tick runs
    /// (`native` or `celery`) and, for `celery`, when its message reached the broker; a
    /// `celery` tick claimed but never recorded as enqueued (its instance died) is re-sent
    /// by any instance's sweep, and the tick's marker on the broker drops a second copy.
    static let taskTickDelivery = Migration(
        version: 10, name: "herald_task_tick_delivery",
        sql: """
            ALTER TABLE herald.task_ticks ADD COLUMN IF NOT EXISTS run_mode text;
            ALTER TABLE herald.task_ticks ADD COLUMN IF NOT EXISTS enqueued_at timestamptz;
            CREATE INDEX IF NOT EXISTS task_ticks_unsent_idx ON herald.task_ticks (claimed_at)
                WHERE run_mode = 'celery' AND enqueued_at IS NULL;
            """)
}

extension Migrations {
    /// Migration 13: plans an operator paused (`herald plan pause ID`): skipped by window loads,
    /// claims and sweeps until `herald plan resume ID`, whatever Dify changes meanwhile.
    static let schedulePauses = Migration(
        version: 13, name: "herald_schedule_pauses",
        sql: """
            CREATE TABLE IF NOT EXISTS herald.schedule_paused (
                plan_id uuid PRIMARY KEY,
                paused_at timestamptz NOT NULL DEFAULT now(),
                paused_by text NOT NULL,
                note text NOT NULL DEFAULT ''
            );
            """)
}
