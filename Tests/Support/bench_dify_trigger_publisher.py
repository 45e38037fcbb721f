#!/usr/bin/env python3
"""bench_dify_trigger_publisher.py: the Python peer of `herald-bench triggers`, Dify's refresh publisher.

Why: the benchmark prints Herald's trigger refresh beside the publisher it replaces, on the same data in
the same run. This is Dify's `schedule.trigger_provider_refresh_task.trigger_provider_refresh` (1.14,
Dify's api/schedule/trigger_provider_refresh_task.py), written for the benchmark with the libraries Dify
uses (redis-py, Celery/kombu) and psycopg in place of SQLAlchemy:

  now = int(time.time())
  due = (credential_expires_at != -1 AND credential_expires_at <= now + CRED_T)
        OR (expires_at != -1 AND expires_at <= now + SUB_T)
  SELECT count(*) WHERE due; nothing: stop
  for page in range(ceil(total / batch)):
      SELECT tenant_id, id WHERE due ORDER BY updated_at ASC OFFSET page*batch LIMIT batch
      one non-transactional pipeline of SET trigger_provider_refresh_lock:{tenant}_{id} 1 EX max(300, SUB_T) NX
        (Dify's raw pipeline: the key carries no REDIS_KEY_PREFIX)
      group(trigger_subscription_refresh.s(tenant_id=..., subscription_id=...)).apply_async() for the acquired

Protocol with herald-bench (stdout is JSON lines, stderr is free text):
  1. connect, print {"ready": true}
  2. for each stdin line `tick START_NS`: sleep until CLOCK_REALTIME START_NS, run one publisher tick,
     print {"dispatched", "locked_out", "pages", "start_ns", "end_ns"}
  3. on `quit` (or EOF): exit
"""

import argparse
import json
import math
import sys
import time

import psycopg
import redis
from celery import Celery, group

TASK = "tasks.trigger_subscription_refresh_tasks.trigger_subscription_refresh"
QUEUE = "trigger_refresh_executor"

DUE = """
(credential_expires_at != -1 AND credential_expires_at <= %(now)s + %(cred_t)s)
OR (expires_at != -1 AND expires_at <= %(now)s + %(sub_t)s)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", required=True)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--key-prefix", default="", help="Dify's REDIS_KEY_PREFIX (without the colon)")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--cred-threshold", type=int, default=3600)
    parser.add_argument("--sub-threshold", type=int, default=3600)
    opts = parser.parse_args()

    conn = psycopg.connect(opts.postgres, autocommit=True)
    client = redis.Redis.from_url(opts.broker)
    app = Celery("dify_bench_publisher", broker=opts.broker)
    options = {"global_keyprefix": opts.key_prefix + ":"} if opts.key_prefix else {}
    app.conf.update(broker_transport_options=options, task_ignore_result=True)
    refresh = app.signature(TASK, queue=QUEUE)
    with app.producer_or_acquire() as producer:
        producer.connection.ensure_connection()
    print(json.dumps({"ready": True}), flush=True)

    for line in sys.stdin:
        parts = line.split()
        if not parts or parts[0] == "quit":
            break
        start_ns = int(parts[1])
        delay = (start_ns - time.time_ns()) / 1e9
        if delay > 0:
            time.sleep(delay)
        began = time.time_ns()
        now = int(time.time())
        args = {"now": now, "cred_t": opts.cred_threshold, "sub_t": opts.sub_threshold}
        total = conn.execute("SELECT count(*) FROM trigger_subscriptions WHERE " + DUE, args).fetchone()[0]
        dispatched = locked_out = pages = 0
        ttl = max(300, opts.sub_threshold)
        for page in range(math.ceil(total / opts.batch)):
            pages += 1
            rows = conn.execute(
                "SELECT tenant_id::text, id::text FROM trigger_subscriptions WHERE " + DUE
                + " ORDER BY updated_at ASC OFFSET %(offset)s LIMIT %(limit)s",
                dict(args, offset=page * opts.batch, limit=opts.batch),
            ).fetchall()
            pipe = client.pipeline(transaction=False)
            for tenant, sub in rows:
                pipe.set("trigger_provider_refresh_lock:%s_%s" % (tenant, sub), "1", ex=ttl, nx=True)
            acquired = pipe.execute()
            sigs = [refresh.clone(kwargs={"tenant_id": t, "subscription_id": s})
                    for (t, s), ok in zip(rows, acquired) if ok]
            locked_out += len(rows) - len(sigs)
            if sigs:
                group(sigs).apply_async()
                dispatched += len(sigs)
        print(json.dumps({"dispatched": dispatched, "locked_out": locked_out, "pages": pages,
                          "start_ns": began, "end_ns": time.time_ns()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
