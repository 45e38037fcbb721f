#!/usr/bin/env python3
"""What real Celery puts on Redis, to pin Herald's encoder against.

Sends one task the way Dify's producers do (a registered task under Dify's name,
``apply_async`` on an app with ``task_ignore_result=True``), then reads the raw
element kombu LPUSHed and prints one JSON line: {"key", "element", "celery", "kombu"}.
The element is removed again, so the queue is left as it was found.

Usage:
  celery_reference.py --broker redis://127.0.0.1:6379/0 --task NAME --queue Q
      [--args JSON-array] [--kwargs JSON-object] [--key-prefix GLOBAL_KEYPREFIX]
      [--task-id ID] [--origin ORIGIN] [--reply-to R] [--delivery-tag T] [--send-task]

--origin and --delivery-tag replace values Celery would otherwise make up per process
or per message, so the caller can compare the element byte for byte.
--send-task uses ``app.send_task`` (no registered task: ``ignore_result`` is null).
The broker may also come from HERALD_TEST_REDIS_URL.
"""

import argparse
import json
import os
import sys

import celery
import kombu
import redis
from celery import Celery


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default=os.environ.get("HERALD_TEST_REDIS_URL"))
    parser.add_argument("--key-prefix", default="", help="kombu global_keyprefix")
    parser.add_argument("--task", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--args", default="[]")
    parser.add_argument("--kwargs", default="{}")
    parser.add_argument("--task-id")
    parser.add_argument("--origin")
    parser.add_argument("--reply-to")
    parser.add_argument("--delivery-tag")
    parser.add_argument("--send-task", action="store_true")
    opts = parser.parse_args()
    if not opts.broker:
        parser.error("--broker or HERALD_TEST_REDIS_URL is required")

    args = tuple(json.loads(opts.args))
    kwargs = json.loads(opts.kwargs)

    if opts.origin is not None:
        import celery.app.amqp as amqp

        amqp.anon_nodename = lambda *a, **k: opts.origin
    if opts.delivery_tag is not None:
        from kombu.transport.virtual import base

        base.Channel._next_delivery_tag = lambda self: opts.delivery_tag

    app = Celery("herald_reference", broker=opts.broker)
    transport_options = {"global_keyprefix": opts.key_prefix} if opts.key_prefix else {}
    # Dify's ext_celery: JSON serializer (Celery's default) and task_ignore_result=True.
    app.conf.update(task_ignore_result=True, broker_transport_options=transport_options)

    @app.task(name=opts.task, queue=opts.queue)
    def _task(*a, **k):  # never runs here: only its name and options matter
        return None

    options = {"queue": opts.queue}
    if opts.task_id:
        options["task_id"] = opts.task_id
    if opts.reply_to is not None:
        options["reply_to"] = opts.reply_to
    if opts.send_task:
        app.send_task(opts.task, args=args, kwargs=kwargs, **options)
    else:
        _task.apply_async(args=args, kwargs=kwargs, **options)

    key = opts.key_prefix + opts.queue
    client = redis.Redis.from_url(opts.broker)
    element = client.lpop(key)
    if element is None:
        print(f"celery_reference: nothing arrived on {key!r}", file=sys.stderr)
        return 1
    # kombu's producer also declares the queue binding; drop it so nothing is left behind.
    client.delete(opts.key_prefix + "_kombu.binding." + opts.queue)
    client.delete(opts.key_prefix + "_kombu.binding_permanent." + opts.queue)
    print(json.dumps({
        "key": key,
        "element": element.decode("utf-8"),
        "celery": celery.__version__,
        "kombu": kombu.__version__,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
