#!/usr/bin/env python3
"""A local stand-in for Dify's plugin marketplace (external SaaS, the only kind of server
Herald's tests fake): GET /api/v1/dist/plugins/manifest.json answers the manifest Dify's
`fetch_global_plugin_manifest` reads, {"plugins": [{org, name, latest_version,
latest_package_identifier, latest_package_url}, ...]}. Every request is appended as one JSON line
to --out: {"path", "dify_version", "at"}. With --fail N the first N requests answer 503. The chosen
port is written to --port-file.
"""

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PLUGINS = [
    {"org": "langgenius", "name": "openai", "latest_version": "0.2.7",
     "latest_package_identifier": "langgenius/openai:0.2.7@abc", "latest_package_url": "https://example.invalid/openai"},
    {"org": "langgenius", "name": "gmail", "latest_version": "1.0.1",
     "latest_package_identifier": "langgenius/gmail:1.0.1@def", "latest_package_url": "https://example.invalid/gmail"},
    {"org": "acme", "name": "quo\"te", "latest_version": "2.0.0",
     "latest_package_identifier": "acme/quote:2.0.0@123", "latest_package_url": "https://example.invalid/q"},
    {"org": "broken", "name": 7, "latest_version": "1"},
]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--fail", type=int, default=0)
    p.add_argument("--lifetime", type=float, default=600.0)
    args = p.parse_args()
    lock = threading.Lock()
    seen = [0]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            with lock:
                seen[0] += 1
                n = seen[0]
                with open(args.out, "a") as f:
                    f.write(json.dumps({"path": self.path, "dify_version": self.headers.get("X-Dify-Version"),
                                        "at": time.time()}) + "\n")
            if self.path != "/api/v1/dist/plugins/manifest.json":
                self.send_response(404)
                self.end_headers()
                return
            if n <= args.fail:
                self.send_response(503)
                self.end_headers()
                return
            body = json.dumps({"plugins": PLUGINS}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.replace(args.port_file + ".tmp", args.port_file)
    threading.Timer(args.lifetime, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
