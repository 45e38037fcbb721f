// Migration 9: schedule fires are recorded per claim. A claim is one claim
// transaction's set of fires (up to a few thousand); it is marked enqueued once,
// when all of its fires reached the broker, instead of one UPDATE per fire.
// The fire rows keep only their primary key (the exactly-once guard, now led by
// the scheduled time) and an index on the claim id, which grows at its right
// edge: the per-fire cost of a claim drops from four index insertions plus a
// non-HOT update to two insertions into pages that are already in cache.

extension Migrations {
    static let scheduleClaims = Migration(
        version: 9, name: "herald_schedule_claims",
        sql: """
            CREATE SEQUENCE IF NOT EXISTS herald.schedule_claim_seq;
            CREATE TABLE IF NOT EXISTS herald.schedule_claims (
                id bigint PRIMARY KEY,
                via text NOT NULL,
                claimed_by text NOT NULL,
                claimed_at timestamptz NOT NULL DEFAULT now(),
                release_at timestamp NOT NULL,
                fires integer NOT NULL,
                enqueued_at timestamptz
            );
            ALTER SEQUENCE herald.schedule_claim_seq OWNED BY herald.schedule_claims.id;
            CREATE INDEX IF NOT EXISTS schedule_claims_open_idx ON herald.schedule_claims (claimed_at) WHERE enqueued_at IS NULL;
            CREATE INDEX IF NOT EXISTS schedule_claims_claimed_at_idx ON herald.schedule_claims (claimed_at);
            ALTER TABLE herald.schedule_fires ADD COLUMN IF NOT EXISTS claim_id bigint;
            DO $$
            DECLARE
                k bigint;
            BEGIN
                IF EXISTS (SELECT 1 FROM information_schema.columns
                            WHERE table_schema = 'herald' AND table_name = 'schedule_fires' AND column_name = 'enqueued_at') THEN
                    -- Fires recorded before this migration: one claim for those already enqueued, one
                    -- (open, so that the sweep re-sends them) for those that were not.
                    IF EXISTS (SELECT 1 FROM herald.schedule_fires WHERE claim_id IS NULL AND enqueued_at IS NOT NULL) THEN
                        k := nextval('herald.schedule_claim_seq');
                        INSERT INTO herald.schedule_claims (id, via, claimed_by, claimed_at, release_at, fires, enqueued_at)
                        SELECT k, 'migration', 'migration 9', min(claimed_at), max(scheduled_at), count(*), max(enqueued_at)
                          FROM herald.schedule_fires WHERE claim_id IS NULL AND enqueued_at IS NOT NULL;
                        UPDATE herald.schedule_fires SET claim_id = k WHERE claim_id IS NULL AND enqueued_at IS NOT NULL;
                    END IF;
                    IF EXISTS (SELECT 1 FROM herald.schedule_fires WHERE claim_id IS NULL) THEN
                        k := nextval('herald.schedule_claim_seq');
                        INSERT INTO herald.schedule_claims (id, via, claimed_by, claimed_at, release_at, fires)
                        SELECT k, 'migration', 'migration 9', min(claimed_at), max(scheduled_at), count(*)
                          FROM herald.schedule_fires WHERE claim_id IS NULL;
                        UPDATE herald.schedule_fires SET claim_id = k WHERE claim_id IS NULL;
                    END IF;
                    ALTER TABLE herald.schedule_fires DROP COLUMN enqueued_at;
                END IF;
            END
            $$;
            DROP INDEX IF EXISTS herald.schedule_fires_unenqueued_idx;
            DROP INDEX IF EXISTS herald.schedule_fires_claimed_at_idx;
            DROP INDEX IF EXISTS herald.schedule_fires_task_id_idx;
            CREATE INDEX IF NOT EXISTS schedule_fires_claim_idx ON herald.schedule_fires (claim_id);
            -- The same key with the scheduled time first: a burst's rows (one time, many plans) go into a
            -- few neighbouring leaf pages instead of one random page each.
            ALTER TABLE herald.schedule_fires DROP CONSTRAINT IF EXISTS schedule_fires_pkey;
            ALTER TABLE herald.schedule_fires ADD CONSTRAINT schedule_fires_pkey PRIMARY KEY (scheduled_at, plan_id, kind);
            CREATE OR REPLACE VIEW herald.schedule_fire_log AS
                SELECT f.plan_id, f.scheduled_at, f.kind, f.task_id, f.via, f.claimed_by, f.claimed_at, f.claim_id, c.enqueued_at
                  FROM herald.schedule_fires f LEFT JOIN herald.schedule_claims c ON c.id = f.claim_id;
            """)
}
