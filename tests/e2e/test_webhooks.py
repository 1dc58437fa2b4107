"""Webhooks end to end: a real receiver (http.server in this process) gets
sluice's POSTs and checks them the way a business's server would.

  - payloads: Red5's fields and names (connection-connect, stream-published, ...)
    plus sluice's, the X-Sluice-* headers, the HMAC signature (checked with the
    documented scheme, independently of sluice's code);
  - webhooks.events filtering, per-app endpoints, one dead endpoint not holding
    up another;
  - receiver down (503) for a while, then up: every event arrives, in order per
    stream key, never twice under different ids;
  - kill -9 with undelivered events, restart on the same data folder with the
    receiver up: all of them arrive, and new events get new ids;
  - the deliveries API and redeliver.

Publishing: ffmpeg -re from the session's generated FLV for the payload test;
the stdlib RTMP client (rtmp_client.py) where many short sessions are needed.
"""

import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import rtmp_client
from conftest import HOST, REPO, T, free_port, wait_until

TOKEN = "webhooks-e2e-token-0123456789"
SECRET = "whsec_e2e"


# ----------------------------------------------------------------------------
# the receiver
# ----------------------------------------------------------------------------

class Receiver:
    """An HTTP server that records every webhook POST.

    status: what it answers (200, or e.g. 503 to play "down"). Every request is
    kept in `requests`; those answered 2xx also in `accepted`, in arrival order.
    """

    def __init__(self, secret=None, port=None):
        self.secret = secret
        self.port = port or free_port()
        self.status = 200
        self.hold = None  # a threading.Event: answers wait for it (at most 10 s)
        self.lock = threading.Lock()
        self.requests = []
        self.accepted = []
        self.server = None
        self.thread = None

    @property
    def url(self):
        return "http://%s:%d/hooks" % (HOST, self.port)

    def start(self):
        rec = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                item = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body, "json": None, "sig_ok": None}
                try:
                    item["json"] = json.loads(body)
                except ValueError:
                    pass
                if rec.secret is not None:
                    ts = item["headers"].get("x-sluice-timestamp", "")
                    want = "sha256=" + hmac.new(rec.secret.encode(), ts.encode() + b"." + body,
                                                hashlib.sha256).hexdigest()
                    got = item["headers"].get("x-sluice-signature", "")
                    item["sig_ok"] = hmac.compare_digest(want, got)
                with rec.lock:
                    status = rec.status
                    item["status"] = status
                    rec.requests.append(item)
                    if 200 <= status < 300:
                        rec.accepted.append(item)
                    hold = rec.hold
                if hold is not None:
                    hold.wait(10)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer((HOST, self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def bodies(self):
        with self.lock:
            return [r["json"] for r in self.accepted]

    def unique(self):
        """Accepted payloads by id, first arrival kept, in first-arrival order."""
        seen, out = set(), []
        for b in self.bodies():
            if b["id"] not in seen:
                seen.add(b["id"])
                out.append(b)
        return out

    def wait_events(self, pred, count, timeout, what):
        def ok():
            got = [b for b in self.unique() if pred(b)]
            return got if len(got) >= count else None
        return wait_until(ok, timeout, 0.05,
                          lambda: "%s (have %r)" % (what, [(b["event"], b["guid"]) for b in self.unique()]))


@pytest.fixture
def receiver():
    r = Receiver(secret=SECRET).start()
    yield r
    r.stop()


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------

def hook_config(urls, http_port, **webhooks):
    wh = {"url": '"%s"' % ",".join(urls), "secret": SECRET, "retry_max_interval": "1s",
          "timeout": "2s"}
    wh.update(webhooks)
    return {"http": {"port": http_port}, "api": {"access_token": TOKEN}, "webhooks": wh}


def api(port, path, method="GET", token=TOKEN):
    sep = "&" if "?" in path else "?"
    url = "http://%s:%d%s" % (HOST, port, path)
    if token:
        url += "%saccessToken=%s" % (sep, token)
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=T(5)) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def rtmp_session(port, app, stream, connect_app=None):
    """Connects, publishes app/stream, waits for Publish.Start, closes."""
    c, _ = rtmp_client.open_publisher(HOST, port, connect_app or app, stream, timeout=T(5))
    c.close()


def assert_per_key_order(bodies):
    """First arrivals of each guid come in event order (event_seq increasing)."""
    last = {}
    for b in bodies:
        k = (b["guid"], b["id"].rsplit("-", 1)[1])  # per key and endpoint
        assert b["event_seq"] > last.get(k, 0), \
            "out of order for %s: seq %d after %d" % (k, b["event_seq"], last[k])
        last[k] = b["event_seq"]


def openapi_schema(name):
    """A schema of docs/openapi.yaml as JSON Schema (OpenAPI 3.0 `nullable` mapped)."""
    import yaml
    spec = yaml.safe_load((REPO / "docs" / "openapi.yaml").read_text())

    def conv(x):
        if isinstance(x, dict):
            y = {k: conv(v) for k, v in x.items() if k not in ("nullable", "example")}
            if x.get("nullable") and "type" in y:
                y["type"] = [y["type"], "null"]
            return y
        if isinstance(x, list):
            return [conv(v) for v in x]
        return x
    return conv(spec["components"]["schemas"][name])


RED5_FIELDS = {"event", "guid", "username", "userAgent", "clusterNodeType", "timestamp",
               "nodePublicIp"}
SLUICE_FIELDS = {"id", "sluice_event", "event_seq", "time", "node", "app", "stream", "session",
                 "protocol", "remote_address", "remote_port", "reason", "query", "path",
                 "bytes_in", "bytes_out", "duration_ms"}


# ----------------------------------------------------------------------------
# tests
# ----------------------------------------------------------------------------

def test_payloads_headers_signature(sluice_factory, receiver, media_src, procs):
    http_port = free_port()
    cfg = hook_config([receiver.url], http_port)
    cfg["server"] = {"node_name": "edge-7"}
    srv = sluice_factory(config=cfg)
    pub_url = "rtmp://%s:%d/live/wh1?username=alice&token=tok-s3cr3t" % (HOST, srv.port)
    pub = procs.start(["ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostdin", "-re",
                       "-i", str(media_src), "-t", "4", "-c", "copy", "-f", "flv", pub_url],
                      "ffmpeg-publish")
    receiver.wait_events(lambda b: b["event"] == "stream-published", 1, T(15), "stream-published")
    play = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
                           "-i", "rtmp://%s:%d/live/wh1" % (HOST, srv.port), "-t", "0.5",
                           "-f", "null", "-"], capture_output=True, text=True, timeout=T(30))
    assert play.returncode == 0, play.stderr[-2000:]
    assert pub.wait(T(20)) == 0
    got = receiver.wait_events(lambda b: True, 8, T(15), "8 events")

    names = [b["event"] for b in got]
    assert sorted(names) == sorted([
        "connection-connect", "stream-published", "connection-connect", "stream-subscribed",
        "stream-unsubscribed", "connection-disconnect", "stream-unpublished",
        "connection-disconnect"]), names
    by = {}
    for b in got:
        by.setdefault(b["event"], []).append(b)
    pub_sid = by["stream-published"][0]["session"]
    play_sid = by["stream-subscribed"][0]["session"]
    assert pub_sid != play_sid

    for b in got:
        assert set(b) == RED5_FIELDS | SLUICE_FIELDS, sorted(set(b) ^ (RED5_FIELDS | SLUICE_FIELDS))
        assert b["userAgent"] == "" and b["clusterNodeType"] == "TYPE_OFF"
        assert b["nodePublicIp"] == "edge-7" and b["node"] == "edge-7"
        assert b["id"] == "edge-7-%d-0" % b["event_seq"]
        assert isinstance(b["timestamp"], int) and b["timestamp"] == b["time"]
        assert b["app"] == "live" and b["protocol"] == "rtmp"
        assert b["remote_address"] == "127.0.0.1" and isinstance(b["remote_port"], int)
        if b["event"].startswith("connection-"):
            assert b["guid"] == b["session"]
        else:
            assert b["guid"] == "live/wh1" and b["stream"] == "wh1"
    # The publisher's query (on the stream name) names the user; its token is masked
    # (webhooks.raw_query false) in every payload.
    assert by["stream-published"][0]["username"] == "alice"
    assert by["stream-published"][0]["query"] == "username=alice&token=***"
    assert "tok-s3cr3t" not in json.dumps(got)
    assert by["stream-subscribed"][0]["username"] == ""
    assert by["stream-unpublished"][0]["duration_ms"] >= 1000
    assert by["stream-unpublished"][0]["bytes_in"] > 100000
    # Per session, the story is in order.
    for sid in (pub_sid, play_sid):
        story = [b["sluice_event"] for b in got if b["session"] == sid]
        want = (["connect", "publish", "unpublish", "disconnect"] if sid == pub_sid
                else ["connect", "play", "play_stop", "disconnect"])
        assert story == want, story
    # Headers and signature.
    with receiver.lock:
        reqs = list(receiver.accepted)
    for r in reqs:
        h, b = r["headers"], r["json"]
        assert h["content-type"] == "application/json"
        assert h["x-sluice-event"] == b["event"]
        assert h["x-sluice-delivery"] == b["id"]
        assert h["x-sluice-timestamp"].isdigit()
        assert abs(int(h["x-sluice-timestamp"]) - b["timestamp"] / 1000) < 60
        assert r["sig_ok"] is True, "bad signature on %s" % b["id"]
        assert r["path"] == "/hooks"


def test_username_from_connect_arguments(sluice_factory, receiver, media_src, procs):
    """Red5's SDKs log in with connect arguments (username, password), not the
    query: the webhook's username names the user all the same, and the password
    reaches neither the payload nor the session's query."""
    http_port = free_port()
    srv = sluice_factory(config=hook_config([receiver.url], http_port))
    pub = procs.start(["ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostdin", "-re",
                       "-i", str(media_src), "-t", "3", "-c", "copy", "-f", "flv",
                       "-rtmp_conn", "S:b\u00f6b&x=1 S:s3cret-pw",
                       "rtmp://%s:%d/live/whargs" % (HOST, srv.port)], "ffmpeg-publish")
    ev = receiver.wait_events(lambda b: b["event"] == "stream-published", 1, T(15),
                              "stream-published")[0]
    assert ev["username"] == "b\u00f6b&x=1", ev
    assert "s3cret" not in json.dumps(ev)
    assert ev["query"] == "username=b%C3%B6b%26x%3D1", ev["query"]
    assert pub.wait(T(20)) == 0


def test_event_filter_app_endpoint_dead_endpoint(sluice_factory):
    r1 = Receiver(secret=SECRET).start()
    r2 = Receiver(secret=SECRET).start()
    dead = "http://%s:%d/nothing-listens-here" % (HOST, free_port())
    try:
        http_port = free_port()
        cfg = hook_config([dead, r1.url], http_port, events="stream-published, unpublish")
        cfg["apps"] = {"live": {}, "other": {"webhook_url": r2.url}}
        srv = sluice_factory(config=cfg)
        rtmp_session(srv.port, "live", "f1")
        rtmp_session(srv.port, "other", "f2")
        # The dead endpoint is first in the list and keeps failing; the others
        # get their events anyway.
        got1 = r1.wait_events(lambda b: True, 4, T(10), "4 events at r1")
        got2 = r2.wait_events(lambda b: True, 2, T(10), "2 events at r2")
        assert sorted(b["event"] for b in got1) == ["stream-published", "stream-published",
                                                    "stream-unpublished", "stream-unpublished"]
        assert sorted(b["guid"] for b in got1) == ["live/f1", "live/f1", "other/f2", "other/f2"]
        assert all(b["id"].endswith("-1") for b in got1)  # endpoint index 1 (after the dead one)
        assert sorted(b["event"] for b in got2) == ["stream-published", "stream-unpublished"]
        assert all(b["guid"] == "other/f2" and b["id"].endswith("-2") for b in got2)
        # The same event went to r1 and r2 under different ids (one per endpoint).
        assert {b["event_seq"] for b in got2} <= {b["event_seq"] for b in got1}
        st, rsp = api(http_port, "/api/v1/webhooks/deliveries?state=retrying")
        assert st == 200
        assert rsp["data"] and all(d["endpoint"] == dead for d in rsp["data"])
        assert all(d["last_status"] == 0 and d["last_error"] for d in rsp["data"])
    finally:
        r1.stop()
        r2.stop()


def test_receiver_down_then_up(sluice_factory, receiver):
    receiver.status = 503
    http_port = free_port()
    srv = sluice_factory(config=hook_config([receiver.url], http_port))
    streams = ["d1", "d2", "d3"]
    for _ in range(3):
        for s in streams:
            rtmp_session(srv.port, "live", s)
    n_events = 3 * 3 * 4
    # Down for a while: every delivery has been tried and refused at least once.
    wait_until(lambda: len({r["json"]["id"] for r in receiver.requests}) >= 6, T(10), 0.05,
               "failed attempts while the receiver is down")
    st, rsp = api(http_port, "/api/v1/webhooks/deliveries?state=retrying&limit=1000")
    assert st == 200 and rsp["data"]
    assert all(d["last_status"] == 503 and d["attempts"] >= 1 for d in rsp["data"])
    receiver.status = 200
    got = receiver.wait_events(lambda b: True, n_events, T(20), "every event after recovery")
    assert len(got) == n_events
    # Never the same event under two ids; duplicates share id and body.
    ident = {}
    for b in got:
        key = (b["sluice_event"], b["session"], b["time"])
        assert key not in ident, "event %r delivered as %s and %s" % (key, ident[key], b["id"])
        ident[key] = b["id"]
    bodies = {}
    with receiver.lock:
        for r in receiver.accepted:
            bodies.setdefault(r["json"]["id"], set()).add(r["body"])
    assert all(len(v) == 1 for v in bodies.values())
    # In order per stream key (and per session for connection events).
    assert_per_key_order(got)
    for s in streams:
        story = [b["sluice_event"] for b in got if b["guid"] == "live/" + s]
        assert story == ["publish", "unpublish"] * 3, (s, story)
    st, rsp = api(http_port, "/api/v1/webhooks/deliveries?state=delivered&limit=1000")
    assert st == 200 and len(rsp["data"]) == n_events
    assert any(d["attempts"] >= 2 for d in rsp["data"])


def test_kill9_then_restart_delivers_everything(sluice_factory):
    rec = Receiver(secret=SECRET)  # not listening yet: connection refused
    try:
        http_port = free_port()
        cfg = hook_config([rec.url], http_port)
        first = sluice_factory(name="first", config=cfg)
        for s in ("k1", "k2"):
            rtmp_session(first.port, "live", s)

        # 8 rows; the first of each ordering key (2 sessions, 2 streams) has
        # been tried and refused, the others wait behind it.
        def listed():
            st, rsp = api(http_port, "/api/v1/webhooks/deliveries?limit=1000")
            rows = rsp.get("data") or []
            tried = [r for r in rows if r["attempts"] >= 1]
            return rows if st == 200 and len(rows) == 8 and len(tried) == 4 else None
        rows = wait_until(listed, T(10), 0.1, "8 undelivered rows, 4 of them tried")
        assert sorted(r["state"] for r in rows) == ["pending"] * 4 + ["retrying"] * 4
        assert all(r["last_status"] == 0 for r in rows if r["state"] == "retrying")
        old_ids = {r["id"] for r in rows}
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(T(10))
        first._close_log()
        first.proc = None  # killed on purpose: no clean-exit check

        rec.start()
        http_port2 = free_port()
        second = sluice_factory(name="second", config=hook_config([rec.url], http_port2),
                                env={"SLUICE_SERVER_DATA_DIR": str(first.data_dir)})
        got = rec.wait_events(lambda b: True, 8, T(15), "the 8 events from before the kill")
        assert {b["id"] for b in got} == old_ids
        assert_per_key_order(got)
        second.wait_log(r"8 undelivered deliveries in the outbox are due again", T(5))
        # New events after the restart get ids that were never used before.
        rtmp_session(second.port, "live", "k3")
        got = rec.wait_events(lambda b: True, 12, T(10), "4 more events from the new process")
        new = [b for b in got if b["id"] not in old_ids]
        assert len(new) == 4 and all(b["guid"] in ("live/k3", b["session"]) for b in new)
        assert min(b["event_seq"] for b in new) > max(int(i.split("-")[1]) for i in old_ids)
    finally:
        rec.stop()


def test_deliveries_api_and_redeliver(sluice_factory, receiver):
    http_port = free_port()
    srv = sluice_factory(config=hook_config([receiver.url], http_port))
    rtmp_session(srv.port, "live", "a1")
    got = receiver.wait_events(lambda b: True, 4, T(10), "4 events")

    st, rsp = api(http_port, "/api/v1/webhooks/deliveries", token=None)
    assert st == 401 and rsp["status"] == "error"
    st, rsp = api(http_port, "/api/v1/webhooks/deliveries?state=bogus")
    assert st == 400
    st, rsp = api(http_port, "/api/v1/webhooks/deliveries?limit=0")
    assert st == 400

    def all_delivered():
        s, r = api(http_port, "/api/v1/webhooks/deliveries?state=delivered")
        return r if s == 200 and len(r["data"]) == 4 else None
    rsp = wait_until(all_delivered, T(5), 0.05, "4 delivered rows")
    assert rsp["status"] == "success" and rsp["code"] == 200 and "timestamp" in rsp
    rows = rsp["data"]
    import jsonschema
    schema = openapi_schema("WebhookDelivery")
    for r in rows:
        jsonschema.validate(r, schema)
    assert [r["id"] for r in rows] == [b["id"] for b in sorted(got, key=lambda b: -b["event_seq"])]
    for r in rows:
        assert set(r) == {"id", "event", "endpoint", "state", "attempts", "last_status",
                          "last_error", "created", "next_attempt", "delivered_at"}
        assert r["state"] == "delivered" and r["attempts"] == 1 and r["last_status"] == 200
        assert r["endpoint"] == receiver.url and r["last_error"] is None
        assert r["next_attempt"] is None and r["delivered_at"] >= r["created"]
    st, rsp = api(http_port, "/api/v1/webhooks/deliveries?limit=2")
    assert st == 200 and [r["id"] for r in rsp["data"]] == [r["id"] for r in rows[:2]]
    st, rsp = api(http_port, "/api/v1/webhooks/deliveries?state=pending")
    assert st == 200 and rsp["data"] == []

    target = rows[-1]["id"]  # the oldest: connection-connect
    st, rsp = api(http_port, "/api/v1/webhooks/deliveries/%s" % target)
    assert st == 200 and rsp["data"]["id"] == target
    st, rsp = api(http_port, "/api/v1/webhooks/deliveries/%s/redeliver" % target, method="POST")
    assert st == 200 and rsp["data"]["id"] == target
    wait_until(lambda: sum(1 for b in receiver.bodies() if b["id"] == target) == 2, T(5), 0.05,
               "the redelivered event")
    with receiver.lock:
        again = [r for r in receiver.accepted if r["json"]["id"] == target]
    assert again[0]["body"] == again[1]["body"]
    assert again[1]["headers"]["x-sluice-attempt"] == "2"

    def redelivered():
        s, r = api(http_port, "/api/v1/webhooks/deliveries/%s" % target)
        return r["data"] if s == 200 and r["data"]["state"] == "delivered" and \
            r["data"]["attempts"] == 2 else None
    wait_until(redelivered, T(5), 0.05, "the row delivered again")
    st, rsp = api(http_port, "/api/v1/webhooks/deliveries/nope-1-0/redeliver", method="POST")
    assert st == 404
    st, rsp = api(http_port, "/api/v1/webhooks/deliveries/nope-1-0")
    assert st == 404
    st, rsp = api(http_port, "/api/v1/webhooks/nothing")
    assert st == 404


def test_redeliver_while_in_flight_is_not_lost(sluice_factory, receiver):
    """A redeliver asked for while the first attempt is still on the wire
    sends the event again: the attempt that began before it must not mark
    the row delivered over it."""
    http_port = free_port()
    receiver.hold = threading.Event()
    srv = sluice_factory(config=hook_config([receiver.url], http_port, timeout="15s"))
    rtmp_session(srv.port, "live", "h1")
    first = wait_until(lambda: receiver.bodies()[:1], T(10), 0.05, "the first delivery on the wire")[0]
    st, rsp = api(http_port, "/api/v1/webhooks/deliveries/%s/redeliver" % first["id"], method="POST")
    assert st == 200 and rsp["data"]["state"] == "pending"
    receiver.hold.set()
    wait_until(lambda: sum(1 for b in receiver.bodies() if b["id"] == first["id"]) == 2, T(10), 0.05,
               "the event sent again after the in-flight attempt")

    def settled():
        s, r = api(http_port, "/api/v1/webhooks/deliveries/%s" % first["id"])
        return r["data"] if s == 200 and r["data"]["state"] == "delivered" else None
    row = wait_until(settled, T(5), 0.05, "the row delivered")
    assert row["attempts"] == 2


def test_sqlite_outbox_is_durable_file(sluice_factory, receiver):
    """The outbox lives in {data_dir}/sluice.db, in WAL mode."""
    http_port = free_port()
    srv = sluice_factory(config=hook_config([receiver.url], http_port))
    rtmp_session(srv.port, "live", "db1")
    receiver.wait_events(lambda b: True, 4, T(10), "4 events")
    db = srv.data_dir / "sluice.db"
    assert db.exists()
    import sqlite3
    con = sqlite3.connect(str(db), timeout=5)
    try:
        mode = con.execute("PRAGMA journal_mode").fetchone()[0]
        n = con.execute("SELECT COUNT(*) FROM webhook_deliveries").fetchone()[0]
    finally:
        con.close()
    assert mode == "wal" and n == 4
    assert os.path.getsize(str(db)) > 0


def test_graceful_stop_keeps_shutdown_events(sluice_factory):
    """SIGTERM with a publisher on and the receiver down: the shutdown's own
    unpublish and disconnect still reach the outbox, and go out after a restart."""
    rec = Receiver(secret=SECRET)
    rec.status = 503
    rec.start()
    try:
        http_port = free_port()
        first = sluice_factory(name="first", config=hook_config([rec.url], http_port))
        c, _ = rtmp_client.open_publisher(HOST, first.port, "live", "g1", timeout=T(5))
        wait_until(lambda: len(rec.requests) >= 2, T(10), 0.05, "connect and publish tried")
        assert first.stop() == 0  # graceful: the sender finishes its attempt, threads joined
        c.close()
        rec.status = 200
        second = sluice_factory(name="second", config=hook_config([rec.url], free_port()),
                                env={"SLUICE_SERVER_DATA_DIR": str(first.data_dir)})
        got = rec.wait_events(lambda b: True, 4, T(15), "the session's 4 events")
        assert [b["sluice_event"] for b in got if b["guid"] == "live/g1"] == ["publish", "unpublish"]
        assert sorted(b["sluice_event"] for b in got) == ["connect", "disconnect", "publish",
                                                          "unpublish"]
        assert second.alive()
    finally:
        rec.stop()


def test_failed_delivery_warns_once(sluice_factory):
    """A failing endpoint: the first failure of a delivery is a WARN with the reason,
    its retries are INFO (one WARN per delivery, not one per attempt)."""
    dead = "http://%s:%d/nothing-listens-here" % (HOST, free_port())
    http_port = free_port()
    srv = sluice_factory(config=hook_config([dead], http_port, events="stream-published"))
    rtmp_session(srv.port, "live", "w1")
    srv.wait_log(r"INFO .*webhooks: stream-published \S+ to %s failed \(attempt 2: "
                 % re.escape(dead), T(15))
    lines = [l for l in srv.log_text().splitlines() if "webhooks: stream-published" in l
             and "failed (attempt" in l]
    warns = [l for l in lines if " WARN " in l]
    assert len(warns) == 1 and "failed (attempt 1: " in warns[0], "\n".join(lines)


def test_deliveries_api_when_webhooks_are_off(sluice_factory):
    """No webhook URL configured: the outbox is empty, not an unknown endpoint."""
    http_port = free_port()
    sluice_factory(config={"http": {"port": http_port}, "api": {"access_token": TOKEN}})
    st, rsp = api(http_port, "/api/v1/webhooks/deliveries")
    assert st == 200 and rsp["data"] == [], (st, rsp)
    st, rsp = api(http_port, "/api/v1/webhooks/deliveries?state=retrying&limit=5")
    assert st == 200 and rsp["data"] == [], (st, rsp)
    st, rsp = api(http_port, "/api/v1/webhooks/deliveries?state=nonsense")
    assert st == 400, (st, rsp)
    st, rsp = api(http_port, "/api/v1/webhooks/deliveries/sluice-1-0")
    assert st == 404, (st, rsp)
    st, rsp = api(http_port, "/api/v1/webhooks/deliveries", token="wrong-token")
    assert st == 401, (st, rsp)


def _outbox_sql(srv, sql):
    """Runs sql on the server's outbox (WAL: alongside sluice's own connections)."""
    import sqlite3
    con = sqlite3.connect(str(srv.data_dir / "sluice.db"), timeout=T(5))
    try:
        con.executescript(sql)
        con.commit()
    finally:
        con.close()


FAIL_UPDATES = ("CREATE TRIGGER e2e_disk_full BEFORE UPDATE ON webhook_deliveries"
                " BEGIN SELECT RAISE(FAIL, 'e2e: database or disk is full'); END;")
FAIL_INSERTS = ("CREATE TRIGGER e2e_disk_full_ins BEFORE INSERT ON webhook_deliveries"
                " BEGIN SELECT RAISE(FAIL, 'e2e: database or disk is full'); END;")


def test_outbox_unwritable_backs_off(sluice_factory):
    """Issue 11 item 4: the endpoint answers 500 and the outbox cannot record the
    attempt (a trigger plays the full disk: every UPDATE fails). The row stays due
    in the database, yet the sender must not re-send it in a hot loop: the attempt
    rate stays bounded by the in-memory backoff and the store failure is logged
    once, not per attempt. When the outbox works again, everything is delivered."""
    rec = Receiver(secret=SECRET)
    rec.status = 500
    rec.start()
    try:
        http_port = free_port()
        srv = sluice_factory(config=hook_config([rec.url], http_port, retry_max_interval="2s"))
        srv.wait_log(r"webhooks: 1 endpoint, outbox", T(5))
        _outbox_sql(srv, FAIL_UPDATES)
        rtmp_session(srv.port, "live", "full1")
        wait_until(lambda: len(rec.requests) >= 1, T(10), 0.05, "a first attempt")
        # A window of 4 s: with backoff from 1 s (waits of 0.5-1 s, then 1-2 s,
        # capped at 2 s) the endpoint sees a handful of attempts; the hot loop
        # this replaces made hundreds per second.
        start = len(rec.requests)
        t0 = time.monotonic()
        wait_until(lambda: time.monotonic() - t0 >= 4, 5, 0.1, "the 4 s window")
        during = len(rec.requests) - start
        assert during <= 10, "%d attempts in 4 s while the outbox cannot be written" % during
        log = srv.log_text()
        assert len(re.findall(r"back off in memory", log)) == 1, "store failure logged per attempt"
        attempts_logged = len(re.findall(r"failed \(attempt", log))
        assert attempts_logged <= len(rec.requests) + 1
        # The disk has room again and the receiver is back: all 4 events arrive.
        _outbox_sql(srv, "DROP TRIGGER e2e_disk_full;")
        rec.status = 200
        rec.wait_events(lambda b: True, 4, T(15), "the session's 4 events after recovery")
        srv.wait_log(r"writable again", T(5))
        assert srv.alive()
    finally:
        rec.stop()


def test_outbox_insert_failure_backs_off(sluice_factory, receiver):
    """The writer cannot commit (every INSERT fails): it retries the batch with a
    growing wait and logs the failure once per streak, not once a second; the
    events are kept in memory and written once the outbox works again."""
    http_port = free_port()
    srv = sluice_factory(config=hook_config([receiver.url], http_port, retry_max_interval="2s"))
    srv.wait_log(r"webhooks: 1 endpoint, outbox", T(5))
    _outbox_sql(srv, FAIL_INSERTS)
    rtmp_session(srv.port, "live", "full2")
    srv.wait_log(r"cannot write \d+ events to the outbox", T(5))
    # New events during the backoff must not cut it short (each one signals the
    # writer): 15 more sessions, 60 events, in the window.
    t0 = time.monotonic()
    for i in range(15):
        rtmp_session(srv.port, "live", "busy%d" % i)
    wait_until(lambda: time.monotonic() - t0 >= 4, 5, 0.1, "the 4 s window")
    log = srv.log_text()
    assert len(re.findall(r"cannot write \d+ events to the outbox", log)) == 1
    tries = len(re.findall(r"outbox still not writable", log))
    assert tries <= 6, "%d commit attempts in ~4 s while the outbox cannot be written" % tries
    assert not receiver.requests
    _outbox_sql(srv, "DROP TRIGGER e2e_disk_full_ins;")
    receiver.wait_events(lambda b: True, 64, T(20), "every event after recovery")
    srv.wait_log(r"writable again after \d+ failed commits", T(5))
