#!/usr/bin/env python3
"""A real Celery 5 worker with Dify's task names, for Herald's integration tests.

Each task records its execution as one JSON line (flushed at once) in the output
file: {"event": "ran", "id", "task", "args", "kwargs", "routing_key"}. Failures,
unknown task names and rejected messages are recorded too ("event": "failed" |
"unknown" | "rejected"), so a test can fail fast with the reason instead of timing out.

Modes:
  celery_worker.py [--broker URL] [--key-prefix P] [--output FILE] [--queues Q1,Q2]
      runs the worker (pool solo, no heartbeat/gossip/mingle/remote control) until
      SIGTERM or SIGINT, which Celery handles as a warm shutdown.
  celery_worker.py --push KEY [--broker URL]
      LPUSHes every stdin line verbatim (one envelope per line) onto KEY; prints the count.
  celery_worker.py --cleanup PREFIX [--broker URL]
      deletes every key that starts with PREFIX (SCAN + DEL); prints the count.

Defaults come from the environment: HERALD_TEST_REDIS_URL, HERALD_TEST_KEY_PREFIX,
HERALD_TEST_CELERY_OUTPUT, HERALD_TEST_CELERY_QUEUES.
"""

import argparse
import json
import os
import sys

DEFAULT_QUEUES = "schedule_executor,trigger_refresh_executor"


DIFY_BEAT_TASKS = [
    ("schedule.clean_embedding_cache_task.clean_embedding_cache_task", "dataset"),
    ("schedule.clean_unused_datasets_task.clean_unused_datasets_task", "dataset"),
    ("schedule.create_tidb_serverless_task.create_tidb_serverless_task", "dataset"),
    ("schedule.update_tidb_serverless_status_task.update_tidb_serverless_status_task", "dataset"),
    ("schedule.clean_messages.clean_messages", "retention"),
    ("schedule.mail_clean_document_notify_task.mail_clean_document_notify_task", "dataset"),
    ("schedule.queue_monitor_task.queue_monitor_task", "monitor"),
    ("human_input_form_timeout.check_and_resume", "schedule_executor"),
    ("schedule.check_upgradable_plugin_task.check_upgradable_plugin_task", "plugin"),
    ("schedule.clean_workflow_runlogs_precise.clean_workflow_runlogs_precise", "retention"),
    ("schedule.clean_workflow_runs_task.clean_workflow_runs_task", "retention"),
    ("schedule.clean_oauth_access_tokens_task.clean_oauth_access_tokens_task", "retention"),
    ("schedule.workflow_schedule_task.poll_workflow_schedules", "schedule_poller"),
    ("schedule.trigger_provider_refresh_task.trigger_provider_refresh", "trigger_refresh_publisher"),
    ("schedule.update_api_token_last_used_task.batch_update_api_token_last_used", "api_token"),
]


def register_beat_task(app, ran, name, queue):
    if name == "human_input_form_timeout.check_and_resume":
        def beat_task(self, limit=100):
            ran(self, (), {})
    else:
        def beat_task(self):
            ran(self, (), {})
    app.task(bind=True, name=name, queue=queue)(beat_task)


def record(path, entry):
    line = json.dumps(entry, sort_keys=True)
    with open(path, "a", encoding="utf-8") as out:
        out.write(line + "\n")
        out.flush()


def build_app(broker, key_prefix, output):
    from celery import Celery, signals

    app = Celery("herald_test_worker", broker=broker)
    transport_options = {"global_keyprefix": key_prefix} if key_prefix else {}
    app.conf.update(
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        worker_enable_remote_control=False,
        worker_hijack_root_logger=False,
        worker_prefetch_multiplier=1,
        accept_content=["json"],
    )

    def ran(task, args, kwargs, extra=None):
        request = task.request
        entry = {
            "event": "ran",
            "id": request.id,
            "task": task.name,
            "args": list(args),
            "kwargs": kwargs,
            "routing_key": (request.delivery_info or {}).get("routing_key"),
        }
        entry.update(extra or {})
        record(output, entry)

    # Dify's signatures, so a wrong argument shape fails here as it would in Dify.
    @app.task(bind=True, name="tasks.workflow_schedule_tasks.run_schedule_trigger", queue="schedule_executor")
    def run_schedule_trigger(self, schedule_id):
        ran(self, (schedule_id,), {})

    @app.task(bind=True, name="tasks.trigger_subscription_refresh_tasks.trigger_subscription_refresh",
              queue="trigger_refresh_executor")
    def trigger_subscription_refresh(self, tenant_id, subscription_id):
        # As Dify's executor: it goes on only while the publisher's lock is present (read with
        # REDIS_KEY_PREFIX), and deletes the lock when done.
        import time
        import redis
        client = redis.Redis.from_url(broker)
        lock = (key_prefix or "") + "trigger_provider_refresh_lock:%s_%s" % (tenant_id, subscription_id)
        present = client.get(lock) is not None
        ran(self, (), {"tenant_id": tenant_id, "subscription_id": subscription_id},
            extra={"lock_present": present, "at": time.time()})
        client.delete(lock)

    @app.task(bind=True,
              name="tasks.process_tenant_plugin_autoupgrade_check_task.process_tenant_plugin_autoupgrade_check_task",
              queue="plugin")
    def process_tenant_plugin_autoupgrade_check_task(self, tenant_id, strategy_setting, upgrade_time_of_day,
                                                     upgrade_mode, exclude_plugins, include_plugins):
        # As Dify's task, it reads the manifest from the snapshot cache only.
        import time
        import redis
        key = (key_prefix or "") + "plugin_autoupgrade_check_task:cached_plugin_snapshot:langgenius/openai"
        cached = redis.Redis.from_url(broker).get(key)
        ran(self, (tenant_id, strategy_setting, upgrade_time_of_day, upgrade_mode, exclude_plugins,
                   include_plugins), {}, extra={"at": time.time(), "snapshot": cached.decode() if cached else None})

    @app.task(bind=True, name="tasks.remove_document_from_index_task.remove_document_from_index_task", queue="dataset")
    def remove_document_from_index_task(self, document_id):
        ran(self, (document_id,), {})

    # Dify 1.14.2's beat entries, as their modules declare them: no arguments (the beat
    # entries send none), on the task's own queue. Herald enqueues these in `celery` mode.
    for name, queue in DIFY_BEAT_TASKS:
        register_beat_task(app, ran, name, queue)

    # weak=False: these handlers are closures that nothing else keeps alive.
    @signals.task_failure.connect(weak=False)
    def _failed(sender=None, task_id=None, exception=None, **_):
        record(output, {"event": "failed", "id": task_id, "task": getattr(sender, "name", None),
                        "error": repr(exception)})

    @signals.task_unknown.connect(weak=False)
    def _unknown(name=None, id=None, exc=None, **_):
        record(output, {"event": "unknown", "id": id, "task": name, "error": repr(exc)})

    @signals.task_rejected.connect(weak=False)
    def _rejected(message=None, exc=None, **_):
        record(output, {"event": "rejected", "error": repr(exc)})

    return app


def push(broker, key):
    import redis

    client = redis.Redis.from_url(broker)
    pipe = client.pipeline(transaction=False)
    count = 0
    for line in sys.stdin.buffer:
        line = line.rstrip(b"\n")
        if not line:
            continue
        pipe.lpush(key, line)
        count += 1
    pipe.execute()
    print(count)
    return 0


def cleanup(broker, prefix):
    import redis

    client = redis.Redis.from_url(broker)
    keys = list(client.scan_iter(match=prefix.replace("*", r"\*") + "*", count=500))
    if keys:
        client.delete(*keys)
    print(len(keys))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default=os.environ.get("HERALD_TEST_REDIS_URL"))
    parser.add_argument("--key-prefix", default=os.environ.get("HERALD_TEST_KEY_PREFIX", ""))
    parser.add_argument("--output", default=os.environ.get("HERALD_TEST_CELERY_OUTPUT"))
    parser.add_argument("--queues", default=os.environ.get("HERALD_TEST_CELERY_QUEUES", DEFAULT_QUEUES))
    parser.add_argument("--loglevel", default="WARNING")
    parser.add_argument("--push", metavar="KEY")
    parser.add_argument("--cleanup", metavar="PREFIX")
    opts = parser.parse_args()
    if not opts.broker:
        parser.error("--broker or HERALD_TEST_REDIS_URL is required")
    if opts.push:
        return push(opts.broker, opts.push)
    if opts.cleanup:
        return cleanup(opts.broker, opts.cleanup)
    if not opts.output:
        parser.error("--output or HERALD_TEST_CELERY_OUTPUT is required")

    app = build_app(opts.broker, opts.key_prefix, opts.output)
    app.worker_main([
        "worker",
        "--pool", "solo",
        "--queues", opts.queues,
        "--without-heartbeat", "--without-gossip", "--without-mingle",
        "--loglevel", opts.loglevel,
        "--hostname", "herald-test-%d@%%h" % os.getpid(),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
