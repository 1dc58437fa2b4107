#!/usr/bin/env python3
"""Review recording: a publisher records a session; when sluice has saved the
file, its `video-saved` webhook reaches the business's server, which pulls the
file over HTTP from sluice, keeps it in its own storage and deletes it from
sluice (a move). Walkthrough: docs/usecases/review-recording.md.

Python 3 standard library + python3-jwt (PyJWT); ffmpeg publishes, ffprobe
checks the result.

    review_recording.py receive [options]   the business's webhook receiver only
    review_recording.py demo [options]      the whole story against a running sluice:
                                            receiver + an ffmpeg publisher + checks;
                                            prints one JSON line, exits 0 when the
                                            recording arrived and plays

The defaults match docs/usecases/review-recording/sluice.yml.
"""

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import pathlib
import secrets
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt  # PyJWT (Debian: python3-jwt)

APP = "review"
MAX_BODY = 64 * 1024           # a webhook payload is a few hundred bytes
MAX_RECORDING = 4 << 30        # refuse to pull more than this from one event


def log(*args):
    print("review:", *args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# The business's side: tokens, webhook verification, the move
# ---------------------------------------------------------------------------

def mint(secret, stream, action, ttl_s=600):
    """A short-lived JWT for one stream and one action (publish or play)."""
    claims = {"sub": "review-backend", "exp": int(time.time()) + ttl_s, "app": APP,
              "stream": stream, "action": action,
              "roles": "red5-publisher" if action == "publish" else "red5-subscriber"}
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_signature(headers, body, secret, tolerance_s=300):
    """docs/integration/webhooks.md: HMAC-SHA256 over "<timestamp>.<raw body>"."""
    ts = headers.get("X-Sluice-Timestamp", "")
    sig = headers.get("X-Sluice-Signature", "")
    if not ts.isdigit() or abs(time.time() - int(ts)) > tolerance_s:
        return False
    want = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body,
                                hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, sig)


class Storage:
    """The business's storage: a folder of files and an SQLite table of what it holds
    and of the webhook deliveries already handled (the idempotency keys)."""

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.db_path = self.folder / "storage.db"
        self.lock = threading.Lock()
        with self._db() as db:
            db.execute("CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY)")
            db.execute("CREATE TABLE IF NOT EXISTS recordings (stream TEXT PRIMARY KEY,"
                       " file TEXT, bytes INTEGER, sluice_path TEXT, stored_at INTEGER)")

    @contextlib.contextmanager
    def _db(self):
        db = sqlite3.connect(str(self.db_path), timeout=10, isolation_level=None)
        try:
            yield db
        finally:
            db.close()

    def seen(self, delivery_id):
        with self._db() as db:
            return db.execute("SELECT 1 FROM deliveries WHERE id = ?",
                              (delivery_id,)).fetchone() is not None

    def done(self, delivery_id):
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO deliveries (id) VALUES (?)", (delivery_id,))

    def add(self, stream, file, size, sluice_path):
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO recordings VALUES (?, ?, ?, ?, ?)",
                       (stream, str(file), size, sluice_path, int(time.time() * 1000)))

    def recordings(self):
        with self._db() as db:
            rows = db.execute("SELECT stream, file, bytes, sluice_path FROM recordings").fetchall()
        return [{"stream": r[0], "file": r[1], "bytes": r[2], "sluice_path": r[3]} for r in rows]


def move_recording(cfg, storage, event):
    """Pulls the saved file from sluice's HTTP server, checks its size, stores it,
    then deletes it from sluice through the Server API. Raises on any failure, so the
    webhook is answered 5xx and sluice delivers it again later."""
    name = os.path.basename(event["path"] or "")            # "session-42.flv"
    stream, ext = os.path.splitext(name)
    if event.get("app") != APP or ext not in (".flv", ".mp4") or not stream:
        log("ignoring", event.get("app"), name)
        return
    # Downloading a recording runs the app's play admission: a token for this file only.
    token = mint(cfg.jwt_secret, stream, "play", ttl_s=60)
    url = "%s/%s/streams/%s?%s" % (cfg.http, APP, urllib.parse.quote(name),
                                   urllib.parse.urlencode({"token": token}))
    target = storage.folder / APP / name
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_suffix(target.suffix + ".part")
    with urllib.request.urlopen(url, timeout=30) as r:
        expected = int(r.headers.get("Content-Length", "-1"))
        if not 0 < expected <= MAX_RECORDING:
            raise RuntimeError("unexpected Content-Length %d" % expected)
        got = 0
        with open(part, "wb") as f:
            while True:
                chunk = r.read(1 << 16)
                if not chunk:
                    break
                got += len(chunk)
                if got > expected:
                    raise RuntimeError("more bytes than announced")
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
    if got != expected:
        raise RuntimeError("got %d of %d bytes" % (got, expected))
    os.replace(part, target)
    storage.add(stream, target, got, event["path"])
    log("stored %s (%d bytes)" % (target, got))
    # Only now that our copy is safe: delete sluice's (the "move").
    q = urllib.parse.urlencode({"filename": stream, "extension": ext[1:],
                                "accessToken": cfg.api_token})
    req = urllib.request.Request("%s/api/v1/applications/%s/media?%s" % (cfg.http, APP, q),
                                 method="DELETE")
    try:
        urllib.request.urlopen(req, timeout=10).close()
    except urllib.error.HTTPError as e:
        if e.code != 404:       # 404: already deleted by an earlier delivery of this event
            raise
    log("deleted %s from sluice" % name)


def make_receiver(cfg, storage):
    """The webhook endpoint: verify, drop duplicates, move the file, then answer 204.
    Any failure answers 500, and sluice's durable outbox retries with backoff."""

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            if n > MAX_BODY:
                self.send_response(413)
                self.end_headers()
                return
            body = self.rfile.read(n)
            if not verify_signature(self.headers, body, cfg.webhook_secret):
                self.send_response(401)
                self.end_headers()
                return
            event = json.loads(body)
            status = 204
            with storage.lock:      # one event at a time: duplicates cannot interleave
                try:
                    if storage.seen(event["id"]):
                        log("duplicate delivery", event["id"], "dropped")
                    elif event["event"] == "video-saved" and event.get("reason") != "failed":
                        move_recording(cfg, storage, event)
                        storage.done(event["id"])
                    else:
                        storage.done(event["id"])
                except Exception as e:  # noqa: BLE001 - any failure: let sluice retry
                    log("failed, sluice will retry:", e)
                    status = 500
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer((cfg.listen, cfg.hook_port), Hook)
    srv.daemon_threads = True
    return srv


# ---------------------------------------------------------------------------
# The demo: a publisher, then checks
# ---------------------------------------------------------------------------

def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise SystemExit("review: timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(0.1)  # poll interval of a deadline-bounded wait


def media_listing(cfg):
    q = urllib.parse.urlencode({"accessToken": cfg.api_token})
    with urllib.request.urlopen("%s/api/v1/applications/%s/media?%s" % (cfg.http, APP, q),
                                timeout=10) as r:
        return [m["name"] for m in json.loads(r.read())["data"]]


def demo(cfg):
    storage = Storage(cfg.storage)
    srv = make_receiver(cfg, storage)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    stream = "session-" + secrets.token_hex(4)
    try:
        token = mint(cfg.jwt_secret, stream, "publish")
        url = "%s/%s/%s?token=%s" % (cfg.rtmp, APP, stream, token)
        log("publishing %s/%s for %d s" % (APP, stream, cfg.seconds))
        # A test picture and tone, encoded live: any RTMP encoder (OBS, a camera) does.
        pub = subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
             "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
             "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
             "-t", str(cfg.seconds), "-c:v", "libx264", "-preset", "ultrafast",
             "-pix_fmt", "yuv420p", "-g", "25", "-c:a", "aac", "-b:a", "64k",
             "-f", "flv", url], capture_output=True, text=True, timeout=cfg.seconds + 60)
        if pub.returncode != 0:
            raise SystemExit("review: the publisher failed: %s" % pub.stderr[-2000:])
        # The publisher is gone; sluice finalises the file, posts video-saved, we move it.
        rec = wait_until(lambda: next((r for r in storage.recordings()
                                       if r["stream"] == stream), None),
                         cfg.timeout, "the recording in the business's storage")
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                                "-of", "json", rec["file"]], capture_output=True, text=True,
                               timeout=30)
        duration = float(json.loads(probe.stdout or "{}").get("format", {}).get("duration", 0))
        name = os.path.basename(rec["file"])
        gone = wait_until(lambda: name not in media_listing(cfg), cfg.timeout,
                          "the recording to leave sluice's media list")
        result = {"stream": stream, "file": rec["file"], "bytes": rec["bytes"],
                  "sluice_path": rec["sluice_path"], "duration_s": duration,
                  "deleted_on_sluice": bool(gone)}
        print(json.dumps(result), flush=True)
        if duration <= 0:
            raise SystemExit("review: the stored file does not play (duration %r)" % duration)
        log("ok: %s stored, %.2f s of media, deleted on sluice" % (rec["file"], duration))
    finally:
        srv.shutdown()
        srv.server_close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("receive", "demo"))
    ap.add_argument("--rtmp", default="rtmp://127.0.0.1:1935", help="sluice's RTMP base URL")
    ap.add_argument("--http", default="http://127.0.0.1:5080", help="sluice's HTTP base URL")
    ap.add_argument("--listen", default="127.0.0.1", help="the receiver's address")
    ap.add_argument("--hook-port", type=int, default=8090, help="the receiver's port")
    ap.add_argument("--storage", default="./review-storage", help="the business's storage")
    ap.add_argument("--seconds", type=int, default=3, help="demo: how long to publish")
    ap.add_argument("--timeout", type=float, default=30, help="demo: seconds to wait for a step")
    ap.add_argument("--api-token", default=os.environ.get(
        "SLUICE_API_TOKEN", "review-demo-api-token-0123456789"))
    ap.add_argument("--jwt-secret", default=os.environ.get(
        "REVIEW_JWT_SECRET", "review-demo-jwt-secret-0123456789abcdef"))
    ap.add_argument("--webhook-secret", default=os.environ.get(
        "REVIEW_WEBHOOK_SECRET", "review-demo-webhook-secret-0123456789"))
    cfg = ap.parse_args(argv)
    cfg.rtmp, cfg.http = cfg.rtmp.rstrip("/"), cfg.http.rstrip("/")
    if cfg.mode == "demo":
        demo(cfg)
    else:
        srv = make_receiver(cfg, Storage(cfg.storage))
        log("receiving on http://%s:%d/" % (cfg.listen, cfg.hook_port))
        try:
            srv.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
