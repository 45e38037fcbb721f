#!/usr/bin/env python3
"""smtp_sink.py: the SMTP server Herald's mail tests talk to (aiosmtpd).

It listens on 127.0.0.1 on a free port, writes {"port": N} to --ready once it accepts
connections, and appends one JSON line per received message to --out: the envelope
(mail_from, rcpt_tos), the session (tls, authenticated, login, helo), the raw data, and
what Python's email package decodes from it (headers, RFC 2047 subject, MIME parts).
Options: --user/--password require AUTH (LOGIN or PLAIN); --refuse ADDR answers RCPT TO
with 550; --tls starttls|implicit with a self-signed certificate for localhost and
127.0.0.1 that it generates with openssl in --tls-dir (cert.pem is the CA to trust).
It stops on SIGTERM, on EOF of stdin (the test died), or after --lifetime seconds.
"""

import argparse
import base64
import asyncio
import email
import email.policy
import json
import os
import signal
import ssl
import subprocess
import sys
import threading

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, out, refuse):
        self.out = out
        self.refuse = {a.lower() for a in refuse}
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        parts = []
        for part in msg.walk():
            if part.is_multipart():
                continue
            parts.append({
                "content_type": part.get_content_type(),
                "charset": part.get_content_charset() or "",
                "transfer_encoding": part.get("Content-Transfer-Encoding", ""),
                "body": part.get_content(),
                "defects": [type(d).__name__ for d in part.defects],
            })
        login = ""
        if isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode("utf-8", "replace")
        self.count += 1
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "authenticated": bool(session.authenticated),
            "login": login,
            "helo": session.host_name or "",
            "headers": {k: str(v) for k, v in msg.items()},
            "content_type": msg.get_content_type(),
            "parts": parts,
            "defects": [type(d).__name__ for d in msg.defects],
            "raw": raw.decode("utf-8", "replace"),
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        return f"250 2.0.0 OK queued as sink-{self.count}"


def make_authenticator(user, password, echo_auth=False):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login.decode("utf-8", "replace") == user
              and auth_data.password.decode("utf-8", "replace") == password)
        if not ok and echo_auth and isinstance(auth_data, LoginPassword):
            # A hostile or careless server that quotes the client's AUTH PLAIN line in its refusal.
            line = base64.b64encode(b"\0" + auth_data.login + b"\0" + auth_data.password).decode()
            return AuthResult(success=False, handled=False,
                              message=f"535 5.7.8 rejected credentials: AUTH PLAIN {line}")
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
    return authenticate


def tls_context(directory):
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    if not os.path.exists(cert):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "1", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", key, "-out", cert],
            check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


async def main(args):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    def watch_stdin():
        try:
            sys.stdin.buffer.read()
        finally:
            loop.call_soon_threadsafe(stop.set)
    threading.Thread(target=watch_stdin, daemon=True).start()

    ctx = tls_context(args.tls_dir) if args.tls != "none" else None
    sink = Sink(args.out, args.refuse)
    kwargs = dict(hostname="herald-sink", decode_data=False)
    if args.tls == "starttls":
        kwargs.update(tls_context=ctx, require_starttls=False)
    if args.user:
        kwargs.update(authenticator=make_authenticator(args.user, args.password, args.echo_auth), auth_required=True,
                      # STARTTLS: AUTH only after TLS, which proves the client upgraded. aiosmtpd does not
                      # count implicit TLS as TLS for this check, so plain and implicit allow AUTH as is.
                      auth_require_tls=(args.tls == "starttls"))
    server = await loop.create_server(lambda: SMTP(sink, **kwargs), host="127.0.0.1", port=0,
                                      ssl=ctx if args.tls == "implicit" else None)
    port = server.sockets[0].getsockname()[1]
    tmp = args.ready + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"port": port, "pid": os.getpid()}, f)
    os.replace(tmp, args.ready)
    try:
        await asyncio.wait_for(stop.wait(), timeout=args.lifetime)
    except asyncio.TimeoutError:
        pass
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="JSON lines file, one line per message")
    p.add_argument("--ready", required=True, help="written with the port once listening")
    p.add_argument("--user", default="")
    p.add_argument("--password", default="")
    p.add_argument("--refuse", action="append", default=[], help="recipient to refuse with 550")
    p.add_argument("--echo-auth", action="store_true", help="quote the AUTH PLAIN line in a 535 refusal")
    p.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    p.add_argument("--tls-dir", default=".", help="where cert.pem and key.pem are (created if missing)")
    p.add_argument("--lifetime", type=float, default=300.0, help="exit after this many seconds")
    asyncio.run(main(p.parse_args()))
