#!/usr/bin/env python3
"""A local stand-in for Dify's billing API (external SaaS), for Herald's tests.

Every endpoint below except /_stats needs the header Billing-Api-Secret-Key equal to
--secret (401 otherwise).

GET /subscription/info?tenant_id=T answers {"subscription": {"plan": P}} where P comes
from --plan T=P arguments (default "sandbox"). Tenant "fail" answers 500.

POST /subscription/plan/batch with the JSON body {"tenant_ids": [...]} answers
{"data": {T: {"plan": P, "expiration_date": E}}} for every requested tenant T, with P as
above and E from --expiration T=unix_seconds (default -1: never subscribed). Tenants
given with --unknown T are left out of "data". More than 200 ids (Dify asks in chunks
of 200) or a malformed body answers 400; a tenant id "fail" anywhere in the request
answers 500 for the whole request.

GET /subscription/cleanup/whitelist answers {"data": [{"tenant_id": T}, ...]} for every
--whitelist T.

GET /_stats answers the number of requests received per endpoint (counted on arrival,
whatever the answer): {"plan_batch": n, "plan_batch_tenants": total ids asked,
"whitelist": n, "info": n}. GET /_stats?reset=1 answers the same and then zeroes them.

Writes the chosen port to --port-file once listening; stops on SIGTERM or after
--lifetime seconds (default 300).
"""

import argparse
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

BATCH_LIMIT = 200


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--secret", required=True)
    ap.add_argument("--plan", action="append", default=[])
    ap.add_argument("--expiration", action="append", default=[])
    ap.add_argument("--whitelist", action="append", default=[])
    ap.add_argument("--unknown", action="append", default=[])
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--lifetime", type=float, default=300)
    args = ap.parse_args()
    plans = dict(p.split("=", 1) for p in args.plan)
    expirations = {t: int(e) for t, e in (x.split("=", 1) for x in args.expiration)}
    unknown = set(args.unknown)

    lock = threading.Lock()
    zero = {"plan_batch": 0, "plan_batch_tenants": 0, "whitelist": 0, "info": 0}
    stats = dict(zero)

    def count(key, n=1):
        with lock:
            stats[key] += n

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def authorized(self):
            if self.headers.get("Billing-Api-Secret-Key") != args.secret:
                self.reply(401, {"error": "bad secret"})
                return False
            return True

        def do_GET(self):
            url = urlparse(self.path)
            if url.path == "/_stats":
                with lock:
                    snapshot = dict(stats)
                    if parse_qs(url.query).get("reset", ["0"])[0] == "1":
                        stats.update(zero)
                return self.reply(200, snapshot)
            if url.path == "/subscription/cleanup/whitelist":
                count("whitelist")
                if not self.authorized():
                    return
                return self.reply(200, {"data": [{"tenant_id": t} for t in args.whitelist]})
            if url.path != "/subscription/info":
                return self.reply(404, {"error": "not found"})
            count("info")
            if not self.authorized():
                return
            tenant = parse_qs(url.query).get("tenant_id", [""])[0]
            if tenant == "fail":
                return self.reply(500, {"error": "boom"})
            self.reply(200, {"enabled": True, "subscription": {"plan": plans.get(tenant, "sandbox"), "interval": "month"}})

        def do_POST(self):
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length > 0 else b""
            if url.path != "/subscription/plan/batch":
                return self.reply(404, {"error": "not found"})
            try:
                body = json.loads(raw or b"null")
                ids = body["tenant_ids"]
                if not isinstance(ids, list) or not all(isinstance(t, str) for t in ids):
                    raise ValueError("tenant_ids must be a list of strings")
            except (ValueError, KeyError, TypeError) as e:
                count("plan_batch")
                if not self.authorized():
                    return
                return self.reply(400, {"error": f"bad body: {e}"})
            count("plan_batch")
            count("plan_batch_tenants", len(ids))
            if not self.authorized():
                return
            if len(ids) > BATCH_LIMIT:
                return self.reply(400, {"error": f"at most {BATCH_LIMIT} tenant ids per request, got {len(ids)}"})
            if "fail" in ids:
                return self.reply(500, {"error": "boom"})
            data = {
                t: {"plan": plans.get(t, "sandbox"), "expiration_date": expirations.get(t, -1)}
                for t in ids
                if t not in unknown
            }
            self.reply(200, {"data": data})

        def reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:  # written whole, then renamed: a reader never sees a partial port
        f.write(str(server.server_address[1]))
    os.replace(tmp, args.port_file)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    timer = threading.Timer(args.lifetime, server.shutdown)
    timer.daemon = True  # must not keep the process alive after a SIGTERM
    timer.start()
    server.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
