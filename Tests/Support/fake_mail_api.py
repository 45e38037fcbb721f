#!/usr/bin/env python3
"""A local stand-in for the Resend and SendGrid HTTP APIs (external SaaS, the only kind of
server Herald's tests fake).

POST /emails (Resend) answers 200 {"id": ...}; POST /v3/mail/send (SendGrid) answers 202.
A request without "Authorization: Bearer <--key>" answers 401. Every request is appended as one
JSON line to --out: {"path", "authorization", "body"}. The chosen port is written to --port-file.
"""

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--key", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--lifetime", type=float, default=600.0)
    args = p.parse_args()
    lock = threading.Lock()
    count = [0]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            auth = self.headers.get("Authorization", "")
            with lock:
                with open(args.out, "a") as f:
                    f.write(json.dumps({"path": self.path, "authorization": auth, "body": body}) + "\n")
                count[0] += 1
                n = count[0]
            if auth != "Bearer " + args.key:
                return self.reply(401, {"message": "API key is invalid"})
            if body is None:
                return self.reply(400, {"message": "invalid JSON"})
            if self.path == "/emails":
                return self.reply(200, {"id": "resend-%d" % n})
            if self.path == "/v3/mail/send":
                return self.reply(202, None)
            return self.reply(404, {"message": "not found"})

        def reply(self, code, obj):
            data = b"" if obj is None else json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.replace(args.port_file + ".tmp", args.port_file)
    threading.Timer(args.lifetime, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
