#!/usr/bin/env python3
"""bench_dify_poller.py: the Python peer of `herald-bench schedules`, Dify's schedule poller.

Why: the benchmark prints Herald beside the poller it replaces, run in the same minute on the same
data. This is Dify's `schedule.workflow_schedule_task.poll_workflow_schedules` (1.14, Dify's
api/schedule/workflow_schedule_task.py), written for the benchmark with the same libraries Dify uses (croniter, pytz,
Celery/kombu) and psycopg in place of SQLAlchemy:

  loop:
    BEGIN
    SELECT wsp.* FROM workflow_schedule_plans wsp JOIN app_triggers at ON ... AND at.trigger_type =
      'trigger-schedule' WHERE wsp.next_run_at <= :now AND wsp.next_run_at IS NOT NULL AND at.status =
      'enabled' ORDER BY wsp.next_run_at ASC LIMIT :batch FOR UPDATE SKIP LOCKED
    (nothing: stop)
    for each plan: next_run_at = croniter(cron, now in the plan's pytz zone).get_next(), back to naive UTC
    one Celery group of run_schedule_trigger.s(id) sent with one producer (dispatch before commit)
    UPDATE ... SET next_run_at, updated_at per plan (what the ORM flush emits), COMMIT
    stop when WORKFLOW_SCHEDULE_MAX_DISPATCH_PER_TICK (0 = unlimited) is reached

Without the SQLAlchemy ORM (identity map, unit of work) this peer, if anything, is faster than Dify.

Protocol with herald-bench (stdout is JSON lines, stderr is free text):
  1. connect to PostgreSQL and the broker, warm both up, print {"ready": true, ...versions}
  2. for each stdin line `tick START_NS MAX_SECONDS`: sleep until CLOCK_REALTIME START_NS, run one poller
     tick (stopping early, between batches, after MAX_SECONDS; 0 = no cap; the cap exists only to keep
     the benchmark short), print {"dispatched", "batches", "start_ns", "end_ns", "phases_ns", "error"}
  3. on `quit` (or EOF): print {"rss_kib", "hwm_kib"} from /proc/self/status and exit
"""

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from importlib.metadata import version

import celery
import kombu
import psycopg
import pytz
from celery import Celery, group
from croniter import croniter

TASK = "tasks.workflow_schedule_tasks.run_schedule_trigger"
QUEUE = "schedule_executor"

SELECT_DUE = """
SELECT wsp.id, wsp.app_id, wsp.node_id, wsp.tenant_id, wsp.cron_expression, wsp.timezone,
       wsp.next_run_at, wsp.created_at, wsp.updated_at
  FROM workflow_schedule_plans wsp
  JOIN app_triggers at ON at.app_id = wsp.app_id AND at.node_id = wsp.node_id
   AND at.trigger_type = 'trigger-schedule'
 WHERE wsp.next_run_at <= %s AND wsp.next_run_at IS NOT NULL AND at.status = 'enabled'
 ORDER BY wsp.next_run_at ASC
 LIMIT %s
   FOR UPDATE SKIP LOCKED
"""

UPDATE_PLAN = "UPDATE workflow_schedule_plans SET next_run_at = %s, updated_at = CURRENT_TIMESTAMP WHERE id = %s"


def emit(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def naive_utc_now():
    return datetime.now(timezone.utc).replace(tzinfo=None)


def calculate_next_run_at(cron_expression, tz_name):
    """Dify's libs/schedule_utils.calculate_next_run_at: strictly after now, in the plan's zone."""
    parts = cron_expression.strip().split()
    if len(parts) != 5 and not cron_expression.strip().startswith("@"):
        raise ValueError("invalid cron expression: %r" % cron_expression)
    tz = pytz.timezone(tz_name)
    base = datetime.now(timezone.utc).astimezone(tz)
    nxt = croniter(cron_expression, base).get_next(datetime)
    return nxt.astimezone(pytz.UTC).replace(tzinfo=None)


def make_app(broker, key_prefix):
    app = Celery("dify_poller_peer", broker=broker)
    options = {"global_keyprefix": key_prefix} if key_prefix else {}
    # Dify's ext_celery: JSON serializer (Celery's default), task_ignore_result=True.
    app.conf.update(task_ignore_result=True, broker_transport_options=options, broker_connection_retry_on_startup=True)

    @app.task(name=TASK, queue=QUEUE)
    def run_schedule_trigger(schedule_id):  # runs in Dify's workers, never here
        return None

    return app, run_schedule_trigger


class Poller:
    def __init__(self, args):
        self.batch = args.batch
        self.max_per_tick = args.max_dispatch_per_tick
        self.conn = psycopg.connect(args.postgres, autocommit=True)
        self.app, self.task = make_app(args.broker, args.key_prefix)
        # Warm up: the broker connection and the producer pool, as in a running worker.
        with self.app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=3)
        self.conn.execute("SELECT 1")

    def tick(self, max_seconds):
        """One poll_workflow_schedules run; returns (dispatched, batches, phases)."""
        phases = {"select": 0, "cron": 0, "dispatch": 0, "update_commit": 0}
        total = 0
        batches = 0
        started = time.monotonic()
        cur = self.conn.cursor()
        while True:
            t0 = time.perf_counter_ns()
            with self.conn.transaction():
                rows = cur.execute(SELECT_DUE, (naive_utc_now(), self.batch)).fetchall()
                t1 = time.perf_counter_ns()
                phases["select"] += t1 - t0
                if not rows:
                    break
                updates = []
                for r in rows:
                    updates.append((calculate_next_run_at(r[4], r[5]), r[0]))
                t2 = time.perf_counter_ns()
                phases["cron"] += t2 - t1
                with self.app.producer_or_acquire() as producer:
                    job = group(self.task.s(str(r[0])) for r in rows)
                    job.apply_async(producer=producer)
                t3 = time.perf_counter_ns()
                phases["dispatch"] += t3 - t2
                cur.executemany(UPDATE_PLAN, updates)
            phases["update_commit"] += time.perf_counter_ns() - t3
            total += len(rows)
            batches += 1
            if 0 < self.max_per_tick <= total:
                break
            if max_seconds > 0 and time.monotonic() - started >= max_seconds:
                break
        return total, batches, phases


def status_kib(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--postgres", required=True, help="PostgreSQL conninfo or URL")
    ap.add_argument("--broker", required=True, help="Redis URL of the Celery broker")
    ap.add_argument("--key-prefix", default="", help="Celery global_keyprefix (REDIS_KEY_PREFIX + ':')")
    ap.add_argument("--batch", type=int, default=100, help="WORKFLOW_SCHEDULE_POLLER_BATCH_SIZE")
    ap.add_argument("--max-dispatch-per-tick", type=int, default=0, help="WORKFLOW_SCHEDULE_MAX_DISPATCH_PER_TICK")
    args = ap.parse_args()
    try:
        poller = Poller(args)
    except Exception as e:
        emit({"ready": False, "error": "%s: %s" % (type(e).__name__, e)})
        return 1
    emit({"ready": True, "celery": celery.__version__, "kombu": kombu.__version__, "psycopg": psycopg.__version__,
          "croniter": version("croniter"), "python": sys.version.split()[0]})
    for line in sys.stdin:
        parts = line.split()
        if not parts or parts[0] == "quit":
            break
        if parts[0] != "tick" or len(parts) != 3:
            emit({"error": "unknown command %r" % line.strip()})
            continue
        start_ns, max_seconds = int(parts[1]), float(parts[2])
        delay = (start_ns - time.time_ns()) / 1e9
        if delay > 0:
            time.sleep(delay)
        begun = time.time_ns()
        error = None
        try:
            dispatched, batches, phases = poller.tick(max_seconds)
        except Exception as e:  # reported beside the figures
            dispatched, batches, phases = 0, 0, {}
            error = "%s: %s" % (type(e).__name__, e)
        emit({"dispatched": dispatched, "batches": batches, "start_ns": begun, "end_ns": time.time_ns(),
              "phases_ns": phases, "error": error})
    emit({"rss_kib": status_kib("VmRSS"), "hwm_kib": status_kib("VmHWM")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
