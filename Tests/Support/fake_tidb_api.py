#!/usr/bin/env python3
"""A local stand-in for the TiDB Cloud serverless API (external SaaS, the only kind of server
Herald's tests fake), with real HTTP Digest authentication (RFC 7616, MD5, qop=auth): a request
without valid credentials for --user/--password is answered 401 with a WWW-Authenticate challenge.

  POST /clusters:batchCreate   {"requests":[{"cluster":{displayName, region, labels, spendingLimit,
                               rootPassword}}]} -> {"clusters":[{clusterId, displayName, state}]}
  GET  /clusters:batchGet?clusterIds=a&clusterIds=b&view=BASIC -> {"clusters":[{clusterId, state,
                               userPrefix}]}: a cluster turns ACTIVE at its first batchGet
  GET  /clusters/{id}          -> {clusterId, state, userPrefix, endpoints:{public:{host}}}; clusters
                               created at an odd position of their batch have no host until ACTIVE

Failures: --fail N answers 500 to the first N authenticated calls; POST /_control with
{"fail": N} (the next N calls), {"fail_forever": true}, {"recover": true} or {"empty_create": bool}
changes that at run time. GET /_stats answers the counts: authenticated calls per endpoint, 401s,
and every batchCreate body and batchGet id list. The chosen port is written to --port-file.
"""

import argparse
import hashlib
import json
import os
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

REALM = "tidbcloud"


def md5(text):
    return hashlib.md5(text.encode()).hexdigest()


def parse_digest(header):
    """The key=value pairs of an `Authorization: Digest ...` header."""
    if not header or not header.startswith("Digest "):
        return None
    out, rest = {}, header[len("Digest "):]
    while rest:
        rest = rest.lstrip(" ,")
        if not rest:
            break
        key, _, rest = rest.partition("=")
        if rest.startswith('"'):
            value, _, rest = rest[1:].partition('"')
        else:
            value, _, rest = rest.partition(",")
        out[key.strip()] = value.strip()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port-file", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--fail", type=int, default=0)
    p.add_argument("--lifetime", type=float, default=600.0)
    args = p.parse_args()

    lock = threading.Lock()
    nonces = set()
    state = {"fail": args.fail, "fail_forever": False, "empty_create": False}
    stats = {"calls": {"batch_create": 0, "batch_get": 0, "get_cluster": 0}, "failed": 0, "unauthorized": 0,
             "creates": [], "batch_gets": []}
    clusters = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def reply(self, code, obj=None, headers=()):
            body = json.dumps(obj).encode() if obj is not None else b""
            self.send_response(code)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def authorized(self):
            d = parse_digest(self.headers.get("Authorization"))
            ok = False
            if d and d.get("username") == args.user and d.get("realm") == REALM:
                with lock:
                    known = d.get("nonce") in nonces
                ha1 = md5(f"{args.user}:{REALM}:{args.password}")
                ha2 = md5(f"{self.command}:{d.get('uri', '')}")
                if d.get("qop") == "auth":
                    want = md5(f"{ha1}:{d.get('nonce')}:{d.get('nc')}:{d.get('cnonce')}:auth:{ha2}")
                else:
                    want = md5(f"{ha1}:{d.get('nonce')}:{ha2}")
                ok = known and d.get("uri") == self.path and secrets.compare_digest(want, d.get("response", ""))
            if not ok:
                nonce = secrets.token_hex(16)
                with lock:
                    nonces.add(nonce)
                    stats["unauthorized"] += 1
                self.reply(401, {"error": "unauthorized"}, [
                    ("WWW-Authenticate", f'Digest realm="{REALM}", nonce="{nonce}", qop="auth", algorithm=MD5')])
            return ok

        def failing(self, call):
            """Counts an authenticated call; True (and a 500 sent) while told to fail."""
            with lock:
                stats["calls"][call] += 1
                fail = state["fail_forever"] or state["fail"] > 0
                if state["fail"] > 0:
                    state["fail"] -= 1
                if fail:
                    stats["failed"] += 1
            if fail:
                self.reply(500, {"error": "internal error (told to fail)"})
            return fail

        def do_POST(self):
            raw = self.body()
            url = urlsplit(self.path)
            if url.path == "/_control":
                cmd = json.loads(raw or b"{}")
                with lock:
                    if "fail" in cmd:
                        state["fail"] = int(cmd["fail"])
                    if "fail_forever" in cmd:
                        state["fail_forever"] = bool(cmd["fail_forever"])
                    if cmd.get("recover"):
                        state["fail"], state["fail_forever"] = 0, False
                    if "empty_create" in cmd:
                        state["empty_create"] = bool(cmd["empty_create"])
                self.reply(200, {"ok": True})
                return
            if url.path != "/clusters:batchCreate":
                self.reply(404, {"error": "not found"})
                return
            if not self.authorized() or self.failing("batch_create"):
                return
            requests = json.loads(raw)["requests"]
            out = []
            with lock:
                stats["creates"].append(requests)
                if not state["empty_create"]:
                    for i, r in enumerate(requests):
                        c = r["cluster"]
                        cid = str(10_000_000_000 + len(clusters))
                        clusters[cid] = {"clusterId": cid, "displayName": c["displayName"], "state": "CREATING",
                                         "userPrefix": "", "host_early": i % 2 == 0}
                        out.append({"clusterId": cid, "displayName": c["displayName"], "state": "CREATING"})
            self.reply(200, {"clusters": out})

        def do_GET(self):
            url = urlsplit(self.path)
            if url.path == "/_stats":
                with lock:
                    self.reply(200, stats)
                return
            if url.path == "/clusters:batchGet":
                if not self.authorized() or self.failing("batch_get"):
                    return
                q = parse_qs(url.query)
                ids = [i for v in q.get("clusterIds", []) for i in v.split(",") if i]
                out = []
                with lock:
                    stats["batch_gets"].append({"ids": ids, "view": q.get("view", [""])[0]})
                    for cid in ids:
                        c = clusters.get(cid)
                        if c is None:
                            continue
                        if c["state"] != "ACTIVE":
                            c["state"], c["userPrefix"] = "ACTIVE", "pfx" + cid[-6:]
                        out.append({"clusterId": cid, "state": c["state"], "userPrefix": c["userPrefix"]})
                self.reply(200, {"clusters": out})
                return
            if url.path.startswith("/clusters/"):
                if not self.authorized() or self.failing("get_cluster"):
                    return
                with lock:
                    c = clusters.get(url.path[len("/clusters/"):])
                    if c is None:
                        self.reply(404, {"error": "no such cluster"})
                        return
                    item = {"clusterId": c["clusterId"], "displayName": c["displayName"], "state": c["state"],
                            "userPrefix": c["userPrefix"]}
                    if c["host_early"] or c["state"] == "ACTIVE":
                        item["endpoints"] = {"public": {"host": f"gw-{c['clusterId']}.tidb.test", "port": 4000}}
                self.reply(200, item)
                return
            self.reply(404, {"error": "not found"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(args.port_file + ".tmp", args.port_file)
    threading.Timer(args.lifetime, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
