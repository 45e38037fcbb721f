#!/usr/bin/env python3
"""bench_retention_peer.py: the Python peer of `herald-bench retention`, Dify's two retention cleanups.

Why: the benchmark prints Herald beside the code it replaces, run in the same minute on a copy of the
same data. This script does what Dify 1.14 does (Dify's api/schedule/clean_messages.py with
MessagesCleanService, and api/schedule/clean_workflow_runlogs_precise.py), with
psycopg 3 in place of SQLAlchemy. The statements go out as text with the values inlined
(psycopg.ClientCursor), as Dify's psycopg2 driver sends them, and an `IN` list gets one value per id,
as SQLAlchemy expands it.

--task messages: MessagesCleanService with BILLING_ENABLED=false (every expired message is deleted):
  loop:
    transaction A: SELECT id, app_id, created_at FROM messages WHERE created_at < :end_before
                     [AND (created_at, id) > (:last_created_at, :last_id)] ORDER BY created_at, id LIMIT :batch
                   (nothing: stop; the cursor moves to the last row)
                   SELECT id, tenant_id FROM apps WHERE id IN (:app_ids)
    (no app found: next batch)
    transaction B: DELETE FROM <each of the 8 child tables> WHERE message_id IN (:ids), then
                   DELETE FROM messages WHERE id IN (:ids)
    sleep uniform(0, --max-interval-ms) ms (0 = no pause)

--task runs: clean_workflow_runlogs_precise (batch default 100, ended runs only, no pause):
  loop:
    repository session: SELECT * FROM workflow_runs WHERE created_at < :cutoff AND status IN (ended)
                        [AND (created_at, id) > cursor] ORDER BY created_at, id LIMIT :batch
    main session, BEGIN + SAVEPOINT:
      SELECT id, conversation_id FROM messages WHERE workflow_run_id IN (:run_ids)
      DELETE the 8 child tables by message_id, then messages by workflow_run_id
      DELETE workflow_conversation_variables and conversations of the collected conversations
      repository session (its own transaction, committed here): workflow_node_execution_offload (by a
        sub-select of the runs' node executions), workflow_node_executions, workflow_app_logs,
        workflow_pause_reasons (by the runs' pause ids), workflow_pauses, workflow_trigger_logs, workflow_runs
    RELEASE SAVEPOINT, COMMIT

Without the SQLAlchemy ORM (no identity map, no model objects) this peer, if anything, is faster than Dify.

Output: one JSON line on stdout, {"task", "deleted", "rows", "batches", "seconds", "longest_txn_ms",
"longest_batch_ms", "paused_seconds", "python", "psycopg", "error"}. "deleted" counts messages (or runs),
"rows" every row in every table; "seconds" runs from the first SELECT to the last COMMIT; a batch's
"transaction" is transaction B for messages and the main session's transaction for runs (it encloses the
repository's delete transaction).
"""

import argparse
import json
import platform
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from importlib.metadata import version

import psycopg

# The delete order of MessagesCleanService (transaction B).
MESSAGE_CHILDREN = [
    "message_feedbacks", "message_annotations", "message_chains", "message_agent_thoughts", "message_files",
    "saved_messages", "app_annotation_hit_histories", "dataset_retriever_resources",
]
# The delete order of the run-log cleanup's message step.
RUN_MESSAGE_CHILDREN = [
    "app_annotation_hit_histories", "dataset_retriever_resources", "message_agent_thoughts", "message_chains",
    "message_files", "message_annotations", "message_feedbacks", "saved_messages",
]
ENDED = ("succeeded", "failed", "partial-succeeded", "stopped")


def emit(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def naive_utc_now():
    return datetime.now(timezone.utc).replace(tzinfo=None)


def in_list(values):
    """`%s, %s, ...`: one placeholder per value, as SQLAlchemy expands `IN (:ids)`."""
    return ", ".join(["%s"] * len(values))


class Stats:
    def __init__(self):
        self.deleted = 0
        self.rows = 0
        self.batches = 0
        self.longest_txn = 0.0
        self.longest_batch = 0.0
        self.paused = 0.0


def clean_messages(conn, days, batch, max_interval_ms, stats):
    end_before = naive_utc_now() - timedelta(days=days)
    last = None
    while True:
        batch_start = time.monotonic()
        # Transaction A: the next keyset batch and its apps.
        with conn.cursor() as cur:
            if last is None:
                cur.execute(
                    "SELECT id, app_id, created_at FROM messages WHERE created_at < %s"
                    " ORDER BY created_at, id LIMIT %s", (end_before, batch))
            else:
                cur.execute(
                    "SELECT id, app_id, created_at FROM messages WHERE created_at < %s"
                    " AND (created_at, id) > (%s, %s) ORDER BY created_at, id LIMIT %s",
                    (end_before, last[0], last[1], batch))
            messages = cur.fetchall()
            if not messages:
                conn.commit()
                break
            last = (messages[-1][2], messages[-1][0])
            app_ids = list(dict.fromkeys(m[1] for m in messages))
            cur.execute("SELECT id, tenant_id FROM apps WHERE id IN (%s)" % in_list(app_ids), app_ids)
            apps = cur.fetchall()
        conn.commit()
        stats.batches += 1
        if not apps:
            continue
        # BillingDisabledPolicy: every message of the batch goes.
        ids = [m[0] for m in messages]
        ph = in_list(ids)
        txn_start = time.monotonic()
        with conn.cursor() as cur:
            for table in MESSAGE_CHILDREN:
                cur.execute("DELETE FROM %s WHERE message_id IN (%s)" % (table, ph), ids)
                stats.rows += cur.rowcount
            cur.execute("DELETE FROM messages WHERE id IN (%s)" % ph, ids)
            stats.rows += cur.rowcount
            stats.deleted += cur.rowcount
        conn.commit()
        end = time.monotonic()
        stats.longest_txn = max(stats.longest_txn, end - txn_start)
        stats.longest_batch = max(stats.longest_batch, end - batch_start)
        if max_interval_ms > 0:
            pause = random.uniform(0, max_interval_ms) / 1000.0
            time.sleep(pause)
            stats.paused += pause


def clean_runs(main, repo, days, batch, stats):
    cutoff = naive_utc_now() - timedelta(days=days)
    last = None
    status_ph = in_list(ENDED)
    while True:
        batch_start = time.monotonic()
        # The repository's keyset read (whole rows, as the ORM loads them).
        with repo.cursor() as cur:
            if last is None:
                cur.execute(
                    "SELECT * FROM workflow_runs WHERE created_at < %%s AND status IN (%s)"
                    " ORDER BY created_at, id LIMIT %%s" % status_ph, (cutoff, *ENDED, batch))
            else:
                cur.execute(
                    "SELECT * FROM workflow_runs WHERE created_at < %%s AND status IN (%s)"
                    " AND (created_at, id) > (%%s, %%s) ORDER BY created_at, id LIMIT %%s" % status_ph,
                    (cutoff, *ENDED, last[0], last[1], batch))
            names = [d.name for d in cur.description]
            runs = cur.fetchall()
        repo.commit()
        if not runs:
            break
        i_id, i_created = names.index("id"), names.index("created_at")
        last = (runs[-1][i_created], runs[-1][i_id])
        run_ids = [r[i_id] for r in runs]
        run_ph = in_list(run_ids)
        stats.batches += 1

        txn_start = time.monotonic()
        with main.cursor() as cur:
            cur.execute("SAVEPOINT run_batch")
            cur.execute("SELECT id, conversation_id FROM messages WHERE workflow_run_id IN (%s)" % run_ph, run_ids)
            found = cur.fetchall()
            message_ids = [m[0] for m in found]
            conversation_ids = list(dict.fromkeys(m[1] for m in found if m[1] is not None))
            if message_ids:
                mph = in_list(message_ids)
                for table in RUN_MESSAGE_CHILDREN:
                    cur.execute("DELETE FROM %s WHERE message_id IN (%s)" % (table, mph), message_ids)
                    stats.rows += cur.rowcount
                cur.execute("DELETE FROM messages WHERE workflow_run_id IN (%s)" % run_ph, run_ids)
                stats.rows += cur.rowcount
            if conversation_ids:
                cph = in_list(conversation_ids)
                cur.execute("DELETE FROM workflow_conversation_variables WHERE conversation_id IN (%s)" % cph,
                            conversation_ids)
                stats.rows += cur.rowcount
                cur.execute("DELETE FROM conversations WHERE id IN (%s)" % cph, conversation_ids)
                stats.rows += cur.rowcount
            # delete_runs_with_related: the repository's own session, committed on its own.
            with repo.cursor() as rc:
                rc.execute(
                    "DELETE FROM workflow_node_execution_offload WHERE node_execution_id IN"
                    " (SELECT id FROM workflow_node_executions WHERE workflow_run_id IN (%s))" % run_ph, run_ids)
                stats.rows += rc.rowcount
                rc.execute("DELETE FROM workflow_node_executions WHERE workflow_run_id IN (%s)" % run_ph, run_ids)
                stats.rows += rc.rowcount
                rc.execute("DELETE FROM workflow_app_logs WHERE workflow_run_id IN (%s)" % run_ph, run_ids)
                stats.rows += rc.rowcount
                rc.execute("SELECT id FROM workflow_pauses WHERE workflow_run_id IN (%s)" % run_ph, run_ids)
                pause_ids = [p[0] for p in rc.fetchall()]
                if pause_ids:
                    rc.execute("DELETE FROM workflow_pause_reasons WHERE pause_id IN (%s)" % in_list(pause_ids),
                               pause_ids)
                    stats.rows += rc.rowcount
                rc.execute("DELETE FROM workflow_pauses WHERE workflow_run_id IN (%s)" % run_ph, run_ids)
                stats.rows += rc.rowcount
                rc.execute("DELETE FROM workflow_trigger_logs WHERE workflow_run_id IN (%s)" % run_ph, run_ids)
                stats.rows += rc.rowcount
                rc.execute("DELETE FROM workflow_runs WHERE id IN (%s)" % run_ph, run_ids)
                stats.rows += rc.rowcount
                stats.deleted += rc.rowcount
            repo.commit()
            cur.execute("RELEASE SAVEPOINT run_batch")
        main.commit()
        end = time.monotonic()
        stats.longest_txn = max(stats.longest_txn, end - txn_start)
        stats.longest_batch = max(stats.longest_batch, end - batch_start)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--postgres", required=True, help="libpq connection string of the database to clean")
    ap.add_argument("--task", choices=["messages", "runs"], required=True)
    ap.add_argument("--days", type=int, default=30, help="retention days (SANDBOX_EXPIRED_RECORDS_RETENTION_DAYS / WORKFLOW_LOG_RETENTION_DAYS)")
    ap.add_argument("--batch", type=int, default=0, help="batch size (default: Dify's, 1000 messages or 100 runs)")
    ap.add_argument("--max-interval-ms", type=int, default=0,
                    help="messages: pause uniform(0, N) ms after each deleting batch (Dify's default 200; 0 = none)")
    args = ap.parse_args()
    batch = args.batch or (1000 if args.task == "messages" else 100)
    stats = Stats()
    out = {"task": args.task, "python": platform.python_version(), "psycopg": version("psycopg"), "error": None}
    started = time.monotonic()
    try:
        conn = psycopg.connect(args.postgres, cursor_factory=psycopg.ClientCursor)
        if args.task == "messages":
            started = time.monotonic()
            clean_messages(conn, args.days, batch, args.max_interval_ms, stats)
        else:
            repo = psycopg.connect(args.postgres, cursor_factory=psycopg.ClientCursor)
            started = time.monotonic()
            clean_runs(conn, repo, args.days, batch, stats)
            repo.close()
        conn.close()
    except Exception as e:  # reported, not raised: the benchmark prints it beside the figures
        out["error"] = "%s: %s" % (type(e).__name__, e)
    out.update({
        "deleted": stats.deleted, "rows": stats.rows, "batches": stats.batches,
        "seconds": time.monotonic() - started, "longest_txn_ms": stats.longest_txn * 1000,
        "longest_batch_ms": stats.longest_batch * 1000, "paused_seconds": stats.paused,
    })
    emit(out)
    return 1 if out["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
