#!/usr/bin/env python3
"""Usage logging: who watched what, and for how long. sluice posts a webhook when
a viewer starts playing a stream (`stream-subscribed`) and when it stops
(`stream-unsubscribed`); a small receiver stores them in SQLite, and a report
pairs them into viewing sessions and sums the seconds per stream and user.
Walkthrough: docs/usecases/usage-log.md.

Python 3 standard library only.

    usage_log.py serve  [--db usage.db] [--port 8091]   the webhook receiver
    usage_log.py report [--db usage.db] [--json]        the report

The defaults match docs/usecases/usage-log/sluice.yml.
"""

import argparse
import hashlib
import hmac
import json
import os
import sqlite3
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 64 * 1024   # a webhook payload is a few hundred bytes
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id        TEXT PRIMARY KEY,   -- sluice's delivery id: the idempotency key
    event     TEXT NOT NULL,      -- stream-subscribed | stream-unsubscribed
    seq       INTEGER NOT NULL,   -- sluice's event_seq: the order of events on the node
    node      TEXT,
    app       TEXT, stream TEXT,
    session   TEXT,               -- the viewer's connection
    username  TEXT,               -- who (verified when the app checks credentials)
    time_ms   INTEGER NOT NULL,   -- when it happened (sluice's clock, Unix ms)
    duration_ms INTEGER           -- unsubscribed: how long sluice says it played
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def log(*args):
    print("usage:", *args, file=sys.stderr, flush=True)


def open_db(path):
    db = sqlite3.connect(path, timeout=10, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA)
    return db


def verify_signature(headers, body, secret, tolerance_s=300):
    """docs/integration/webhooks.md: HMAC-SHA256 over "<timestamp>.<raw body>"."""
    ts = headers.get("X-Sluice-Timestamp", "")
    sig = headers.get("X-Sluice-Signature", "")
    if not ts.isdigit() or abs(time.time() - int(ts)) > tolerance_s:
        return False
    want = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body,
                                hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, sig)


def store(db, e):
    """Stores one event once: a second delivery of the same id (sluice delivers at
    least once) is counted and dropped. The query string is not stored: it may hold
    the viewer's password."""
    if e.get("event") not in ("stream-subscribed", "stream-unsubscribed"):
        return
    cur = db.execute("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (e["id"], e["event"], e["event_seq"], e.get("node"), e.get("app"),
                      e.get("stream"), e.get("session"), e.get("username") or None,
                      e["timestamp"], e.get("duration_ms")))
    if cur.rowcount == 0:
        db.execute("INSERT INTO counters VALUES ('duplicates', 1) ON CONFLICT(name)"
                   " DO UPDATE SET value = value + 1")


def serve(cfg):
    db_path = cfg.db

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            if n > MAX_BODY:
                self.send_response(413)
                self.end_headers()
                return
            body = self.rfile.read(n)
            if not verify_signature(self.headers, body, cfg.secret):
                self.send_response(401)
                self.end_headers()
                return
            db = open_db(db_path)
            try:
                store(db, json.loads(body))
            finally:
                db.close()
            self.send_response(204)   # only after the row is committed: else sluice retries
            self.end_headers()

        def log_message(self, *args):
            pass

    open_db(db_path).close()
    srv = ThreadingHTTPServer((cfg.listen, cfg.port), Hook)
    log("receiving on http://%s:%d/, storing in %s" % (cfg.listen, cfg.port, db_path))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


def viewings(db, now_ms=None):
    """Pairs each subscribed event with the next unsubscribed of the same connection and
    stream (a connection may play a stream several times). A viewing still open is
    counted up to now; an unsubscribed whose subscribed never arrived is counted from
    sluice's own duration_ms."""
    now_ms = now_ms or int(time.time() * 1000)
    rows = db.execute("SELECT event, node, app, stream, session, username, time_ms, duration_ms"
                      " FROM events ORDER BY node, seq").fetchall()
    open_, out = {}, []
    for event, node, app, stream, session, user, t, dur in rows:
        key = (node, session, app, stream)
        if event == "stream-subscribed":
            open_[key] = (t, user)
            continue
        start = open_.pop(key, None)
        start_ms, start_user = start if start else (t - (dur or 0), None)
        out.append({"stream": "%s/%s" % (app, stream), "user": user or start_user or "",
                    "session": session, "start_ms": start_ms, "end_ms": t,
                    "sluice_ms": dur, "open": False})
    for (node, session, app, stream), (t, user) in open_.items():
        out.append({"stream": "%s/%s" % (app, stream), "user": user or "", "session": session,
                    "start_ms": t, "end_ms": now_ms, "sluice_ms": None, "open": True})
    return out


def report(cfg):
    db = open_db(cfg.db)
    try:
        views = viewings(db)
        dup = db.execute("SELECT value FROM counters WHERE name = 'duplicates'").fetchone()
    finally:
        db.close()
    totals = {}
    for v in views:
        t = totals.setdefault((v["stream"], v["user"]),
                              {"stream": v["stream"], "user": v["user"], "sessions": 0,
                               "seconds": 0.0, "watching_now": 0})
        t["sessions"] += 1
        t["seconds"] += (v["end_ms"] - v["start_ms"]) / 1000.0
        t["watching_now"] += 1 if v["open"] else 0
    rows = sorted(totals.values(), key=lambda r: (r["stream"], r["user"]))
    for r in rows:
        r["seconds"] = round(r["seconds"], 3)
    if cfg.json:
        print(json.dumps({"rows": rows, "viewings": views,
                          "duplicates_dropped": dup[0] if dup else 0}))
        return
    print("%-24s %-16s %8s %10s" % ("stream", "user", "sessions", "seconds"))
    for r in rows:
        print("%-24s %-16s %8d %10.1f%s" % (r["stream"], r["user"] or "(anonymous)", r["sessions"],
                                            r["seconds"], "  (watching now)" if r["watching_now"]
                                            else ""))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("serve", "report"))
    ap.add_argument("--db", default="usage.db", help="the SQLite file")
    ap.add_argument("--listen", default="127.0.0.1", help="serve: the address")
    ap.add_argument("--port", type=int, default=8091, help="serve: the port")
    ap.add_argument("--secret", default=os.environ.get(
        "USAGE_WEBHOOK_SECRET", "usage-demo-webhook-secret-0123456789"),
        help="serve: webhooks.secret")
    ap.add_argument("--json", action="store_true", help="report: JSON instead of a table")
    cfg = ap.parse_args(argv)
    (serve if cfg.mode == "serve" else report)(cfg)


if __name__ == "__main__":
    main()
