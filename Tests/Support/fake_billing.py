#!/usr/bin/env python3
"""A local stand-in for Dify's billing API (external SaaS), for Herald's tests.

GET /subscription/info?tenant_id=T answers {"subscription": {"plan": P}} where P comes
from --plan T=P arguments (default "sandbox"), but only with the header
Billing-Api-Secret-Key equal to --secret (401 otherwise). Tenant "fail" answers 500.
Writes the chosen port to --port-file once listening; stops on SIGTERM or after 300 s.
"""

import argparse
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--secret", required=True)
    ap.add_argument("--plan", action="append", default=[])
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()
    plans = dict(p.split("=", 1) for p in args.plan)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            url = urlparse(self.path)
            if url.path != "/subscription/info":
                return self.reply(404, {"error": "not found"})
            if self.headers.get("Billing-Api-Secret-Key") != args.secret:
                return self.reply(401, {"error": "bad secret"})
            tenant = parse_qs(url.query).get("tenant_id", [""])[0]
            if tenant == "fail":
                return self.reply(500, {"error": "boom"})
            self.reply(200, {"enabled": True, "subscription": {"plan": plans.get(tenant, "sandbox"), "interval": "month"}})

        def reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file, "w") as f:
        f.write(str(server.server_address[1]))
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    timer = threading.Timer(300, server.shutdown)
    timer.daemon = True  # must not keep the process alive after a SIGTERM
    timer.start()
    server.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
