#!/usr/bin/env python3
"""bench_redis_subscriber.py: the Python peer of `herald-bench sources`.

Why: the benchmark prints Herald beside what a Python consumer does with the same messages. This is
that consumer: a redis-py subscriber (or, with --postgres, a psycopg LISTEN session) that applies the
same decode rules as HeraldCore's EventDecoder to every payload and records when each one arrived.

Protocol with herald-bench (stdout is JSON lines, stderr is free text):
  1. connect, subscribe/listen, print {"ready": true}
  2. with --pause: read one line from stdin before reading any message (the drain test)
  3. consume until --expect accepted payloads, or --idle seconds without a message
  4. print one JSON object: accepted, rejected, first_ns, last_ns, disconnects, parser, and in
     --mode latency the arrays seq and recv_ns (CLOCK_REALTIME, time.time_ns()).
The sequence number is the last 12 hex digits of the payload's UUID, as herald-bench encodes it.
"""

import argparse
import json
import sys
import time

MAX_PAYLOAD = 8192
HEX = frozenset(b"0123456789abcdefABCDEF")
DASHES = (8, 13, 18, 23)
OPS = frozenset(("INSERT", "UPDATE", "DELETE"))
NOTIFYING_TABLES = frozenset(("workflow_schedule_plans", "app_triggers", "trigger_subscriptions"))


def uuid_valid(s):
    """UUIDText.isValid: 8-4-4-4-12 hex digits, either case."""
    if len(s) != 36:
        return False
    b = s.encode()
    if len(b) != 36:
        return False
    for i, c in enumerate(b):
        if i in DASHES:
            if c != 0x2D:
                return False
        elif c not in HEX:
            return False
    return True


def schedule_event(data):
    """EventDecoder.scheduleEvent: the normalized schedule id, or None when rejected."""
    if len(data) > MAX_PAYLOAD:
        return None
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    sid = obj.get("schedule_id")
    if not isinstance(sid, str) or not uuid_valid(sid):
        return None
    run_now = obj.get("run_now")
    if run_now is not None and not isinstance(run_now, bool):
        return None
    return sid.lower()


def table_event(data):
    """EventDecoder.tableEvent: the normalized row id, or None when rejected or ignored."""
    if len(data) > MAX_PAYLOAD:
        return None
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    table, op, rid = obj.get("table"), obj.get("op"), obj.get("id")
    if not isinstance(table, str) or not isinstance(op, str) or op not in OPS:
        return None
    if not isinstance(rid, str) or not uuid_valid(rid):
        return None
    if table not in NOTIFYING_TABLES:
        return None
    return rid.lower()


class Tally:
    def __init__(self, latency):
        self.latency = latency
        self.accepted = 0
        self.rejected = 0
        self.first_ns = 0
        self.last_ns = 0
        self.seq = []
        self.recv_ns = []

    def add(self, decoded):
        now = time.time_ns()
        if decoded is None:
            self.rejected += 1
            return
        if self.accepted == 0:
            self.first_ns = now
        self.last_ns = now
        self.accepted += 1
        if self.latency:
            self.seq.append(int(decoded[24:], 16))
            self.recv_ns.append(now)


def emit(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def wait_for_go(pause):
    if pause:
        sys.stdin.readline()


def consume_redis(args, tally):
    import redis
    from redis.utils import HIREDIS_AVAILABLE

    client = redis.Redis.from_url(args.url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(args.channel)
    # Wait for the subscribe confirmation so the publisher never races us.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pubsub.get_message(timeout=0.1)
        if pubsub.subscribed and client.pubsub_numsub(args.channel)[0][1] >= 1:
            break
    emit({"ready": True})
    wait_for_go(args.pause)
    disconnects = 0
    idle_since = time.monotonic()
    get = pubsub.get_message
    while tally.accepted < args.expect:
        try:
            msg = get(timeout=0.2)
        except (redis.ConnectionError, redis.TimeoutError):
            # Redis closes a subscriber whose output buffer passed client-output-buffer-limit.
            disconnects += 1
            try:
                pubsub.reset()
                pubsub.subscribe(args.channel)
            except redis.RedisError:
                time.sleep(0.1)
            continue
        if msg is None:
            if time.monotonic() - idle_since > args.idle:
                break
            continue
        idle_since = time.monotonic()
        if msg["type"] == "message":
            tally.add(schedule_event(msg["data"]))
    pubsub.close()
    return {"disconnects": disconnects, "parser": "hiredis" if HIREDIS_AVAILABLE else "pure-Python RESP",
            "client": "redis-py " + redis.__version__}


def consume_postgres(args, tally):
    import psycopg

    conn = psycopg.connect(args.postgres, autocommit=True)
    conn.execute("LISTEN " + '"' + args.channel.replace('"', '""') + '"')
    emit({"ready": True})
    wait_for_go(args.pause)
    while tally.accepted < args.expect:
        got = 0
        for n in conn.notifies(timeout=args.idle, stop_after=args.expect - tally.accepted):
            got += 1
            tally.add(table_event(n.payload.encode()))
        if got == 0:
            break
    conn.close()
    return {"disconnects": 0, "parser": "libpq", "client": "psycopg " + psycopg.__version__}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="Redis URL (redis mode)")
    ap.add_argument("--postgres", help="PostgreSQL conninfo or URL (NOTIFY mode)")
    ap.add_argument("--channel", required=True)
    ap.add_argument("--expect", type=int, required=True, help="stop after this many accepted payloads")
    ap.add_argument("--mode", choices=("latency", "rate"), default="latency")
    ap.add_argument("--idle", type=float, default=5.0, help="stop after this many idle seconds")
    ap.add_argument("--pause", action="store_true", help="read a line from stdin before consuming")
    args = ap.parse_args()
    if bool(args.url) == bool(args.postgres):
        ap.error("give exactly one of --url and --postgres")
    tally = Tally(args.mode == "latency")
    try:
        info = consume_redis(args, tally) if args.url else consume_postgres(args, tally)
        error = None
    except Exception as e:  # reported to herald-bench, which prints it beside the figures
        info, error = {"disconnects": 0, "parser": "?", "client": "?"}, "%s: %s" % (type(e).__name__, e)
    out = {"accepted": tally.accepted, "rejected": tally.rejected,
           "first_ns": tally.first_ns, "last_ns": tally.last_ns, "error": error}
    out.update(info)
    if tally.latency:
        out["seq"] = tally.seq
        out["recv_ns"] = tally.recv_ns
    emit(out)


if __name__ == "__main__":
    main()
