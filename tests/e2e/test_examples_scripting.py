"""The integration examples in PHP, Node.js and Python (examples/integration/<lang>/,
issue 17) against a live sluice, with real peers:

  - the round-trip validator admits alice's ffmpeg publisher and refuses bob's (play
    only) and a wrong password; admits bob as a player; gets the invalidate when
    alice leaves;
  - the webhook receiver gets real deliveries, verifies X-Sluice-Signature and stores
    them; a delivery sent again by sluice itself (POST .../redeliver) and re-POSTed by
    hand is dropped as a duplicate; a tampered body and a stale timestamp are refused;
  - the Server API client lists streams and clients, starts and stops a recording
    (the file is written), invokes a client method (the RTMP client's answer comes
    back), invokes an app method (answered by the example's RPC handler) and kicks
    a client (its connection closes), all against a live ffmpeg publisher;
  - a token minted by the JWT issuer lets ffmpeg publish; the same token with its
    payload altered is refused; a subscriber token may play but not publish;
  - NetConnection.call from an RTMP client (tests/e2e/rtmp_client.py) reaches the
    example's RPC handler through apps.live.rpc_url and gets its reply.

One sluice and one example server per language (module-scoped, parametrized). The
examples are run exactly as their READMEs say (python3 server.py, node server.js,
php -S ... router.php; the CLIs with API_URL / API_TOKEN / JWT_SECRET).
"""

import base64
import hashlib
import hmac
import json
import os
import pathlib
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

import rtmp_client
from api_helpers import Api, http_port_of
from conftest import HOST, REPO, T, ffmpeg_publish_cmd, free_port, port_open, wait_stream_live, wait_until

pytestmark = pytest.mark.examples

EXAMPLES = REPO / "examples" / "integration"
API_TOKEN = "examples-api-token-5d0c9e1f"
WEBHOOK_SECRET = "examples-webhook-secret-7a3e"
JWT_SECRET = "examples-jwt-secret-0123456789abcdef-4b1d"
ALICE, BOB = ("alice", "alice-pass"), ("bob", "bob-pass")  # the examples' users
# Secrets the servers must never log (checked at teardown), tokens added as minted.
ISSUED = {API_TOKEN, WEBHOOK_SECRET, JWT_SECRET, ALICE[1], BOB[1], "wrong-pass-91c2"}

LANGS = {
    "python": {
        "tool": sys.executable,
        "server": lambda d, port: [sys.executable, d / "server.py"],
        "api": lambda d: [sys.executable, d / "sluice_api.py"],
        "jwt": lambda d: [sys.executable, d / "issue_token.py"],
        "db": "events.sqlite",
    },
    "node": {
        "tool": "node",
        "server": lambda d, port: ["node", d / "server.js"],
        "api": lambda d: ["node", d / "api_client.js"],
        "jwt": lambda d: ["node", d / "issue_token.js"],
        "db": "events.jsonl",
    },
    "php": {
        "tool": "php",
        "server": lambda d, port: ["php", "-S", "%s:%d" % (HOST, port), d / "router.php"],
        "api": lambda d: ["php", d / "api_client.php"],
        "jwt": lambda d: ["php", d / "issue_token.php"],
        "db": "events.sqlite",
    },
}


class Example:
    """One language's business server (running) and its CLIs, beside one sluice."""

    def __init__(self, lang, srv, proc, port, db):
        self.lang, self.srv, self.proc, self.port, self.db = lang, srv, proc, port, db
        self.dir = EXAMPLES / lang
        self.api = Api(srv, token=API_TOKEN)
        self.http_port = http_port_of(srv)

    def url(self, path):
        return "http://%s:%d%s" % (HOST, self.port, path)

    def log(self):
        return pathlib.Path(self.proc.log_path).read_text(errors="replace")

    def cli(self, kind, *args):
        """Runs the example's api or jwt CLI; returns the CompletedProcess."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "API_TOKEN": API_TOKEN,
               "API_URL": "http://%s:%d" % (HOST, self.http_port), "JWT_SECRET": JWT_SECRET}
        cmd = [str(c) for c in LANGS[self.lang][kind](self.dir)] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=T(30))

    def api_ok(self, *args):
        p = self.cli("api", *args)
        assert p.returncode == 0, "%s %s: %s" % (self.lang, args, p.stderr)
        return json.loads(p.stdout)

    def token(self, *args):
        p = self.cli("jwt", *args)
        assert p.returncode == 0, p.stderr
        token = p.stdout.strip()
        ISSUED.add(token)
        return token

    def stored(self):
        """The receiver's store: [{id, event, guid, body}] in insertion order."""
        if not self.db.exists():
            return []
        if self.lang == "node":
            return [json.loads(line) for line in self.db.read_text().splitlines() if line.strip()]
        con = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=5)
        try:
            rows = con.execute("SELECT id, event, guid, body FROM events ORDER BY rowid").fetchall()
        finally:
            con.close()
        return [dict(zip(("id", "event", "guid", "body"), r)) for r in rows]

    def streams(self, app):
        return self.api.data("applications/%s/streams" % app)


@pytest.fixture(scope="module", params=sorted(LANGS))
def ex(request, module_sluice_factory, module_procs, tmp_path_factory):
    lang = request.param
    if shutil.which(LANGS[lang]["tool"]) is None:
        pytest.skip("%s not installed (scripts/deps.sh test)" % LANGS[lang]["tool"])
    work = tmp_path_factory.mktemp("ex-" + lang)
    port = free_port()
    db = work / LANGS[lang]["db"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": str(port), "BIND": HOST,
           "WEBHOOK_SECRET": WEBHOOK_SECRET, "DB": str(db), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = module_procs.start(LANGS[lang]["server"](EXAMPLES / lang, port), "example-" + lang, env=env)
    wait_until(lambda: port_open(port) or proc.poll() is not None, T(10), message="example server")
    assert proc.poll() is None, module_procs.log_of(proc)
    base = "http://%s:%d" % (HOST, port)
    srv = module_sluice_factory(name="sluice-" + lang, config={
        "api": {"access_token": API_TOKEN, "auth_fail_limit": 1000},
        "auth": {"roundtrip_validate_url": base + "/validateCredentials",
                 "roundtrip_invalidate_url": base + "/invalidateCredentials",
                 "roundtrip_timeout": "5s", "jwt_secret": '"%s"' % JWT_SECRET},
        "webhooks": {"url": '"%s/webhook"' % base, "secret": '"%s"' % WEBHOOK_SECRET,
                     "retry_max_interval": "1s", "timeout": "5s"},
        "apps": {"live": {"rpc_url": base + "/rpc", "rpc_timeout": "5s"},
                 "rta": {"auth_roundtrip": True}, "jwt": {"auth_jwt": True}},
    })
    wait_until(lambda: port_open(http_port_of(srv)), T(10), message="sluice http port")
    yield Example(lang, srv, proc, port, db)
    srv.check_clean_exit(ISSUED)
    module_procs.stop(proc, timeout=T(5))


def publish(procs, media_src, ex, app, stream_and_query, name="ffmpeg"):
    url = "rtmp://%s:%d/%s/%s" % (HOST, ex.srv.port, app, stream_and_query)
    return procs.start(ffmpeg_publish_cmd(media_src, url), name)


def wait_listed(ex, app, stream, proc=None):
    def listed():
        if proc is not None and proc.poll() is not None:
            raise AssertionError("ffmpeg exited (%s)" % proc.returncode)
        return stream in ex.streams(app)
    wait_until(listed, T(15), 0.1, "%s/%s in the stream list" % (app, stream))


def refused(procs, p, reason):
    """ffmpeg gives up (non-zero exit) with the server's reason in its log."""
    assert p.wait(T(20)) != 0, procs.log_of(p)
    assert reason in procs.log_of(p), procs.log_of(p)


# ---------------------------------------------------------------------------
# (a) round-trip auth validator
# ---------------------------------------------------------------------------

def test_validator_admits_and_refuses_ffmpeg(ex, procs, media_src):
    good = publish(procs, media_src, ex, "rta", "cam1?username=%s&password=%s" % ALICE, "ffmpeg-alice")
    wait_listed(ex, "rta", "cam1", good)
    assert "validate: alice publisher cam1 -> yes" in ex.log()
    # bob may only play; a wrong password is refused.
    refused(procs, publish(procs, media_src, ex, "rta", "cam2?username=%s&password=%s" % BOB, "ffmpeg-bob"),
            "Authentication failed.")
    refused(procs, publish(procs, media_src, ex, "rta", "cam3?username=alice&password=wrong-pass-91c2",
                           "ffmpeg-wrong"), "Authentication failed.")
    assert "validate: bob publisher cam2 -> no" in ex.log()
    # bob plays alice's stream.
    c, _ = rtmp_client.open_player(HOST, ex.srv.port, "rta", "cam1?username=%s&password=%s" % BOB,
                                   timeout=T(10), name="bob")
    try:
        c.wait_video_frames(1, T(10))
    finally:
        c.close()
    # Alice leaves: sluice tells the validator.
    procs.stop(good)
    wait_until(lambda: "invalidate: alice publisher cam1" in ex.log(), T(10), 0.1, "the invalidate")
    assert ALICE[1] not in ex.log() and BOB[1] not in ex.log()


# ---------------------------------------------------------------------------
# (b) webhook receiver
# ---------------------------------------------------------------------------

def sign(body, ts):
    return "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), ts.encode() + b"." + body,
                                hashlib.sha256).hexdigest()


def post_hook(ex, body, ts, sig):
    req = urllib.request.Request(ex.url("/webhook"), data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Sluice-Timestamp": ts, "X-Sluice-Signature": sig})
    try:
        with urllib.request.urlopen(req, timeout=T(5)) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None


def test_webhook_receiver_verifies_and_drops_duplicates(ex):
    c, _ = rtmp_client.open_publisher(HOST, ex.srv.port, "live", "hook1", timeout=T(5))
    c.close()

    def published():
        return [r for r in ex.stored() if r["event"] == "stream-published" and r["guid"] == "live/hook1"]
    row, = wait_until(published, T(10), 0.1, "stream-published live/hook1 in the store")
    event = json.loads(row["body"])
    assert event["id"] == row["id"] and event["stream"] == "hook1" and event["sluice_event"] == "publish"
    assert "webhook: %s stream-published live/hook1" % row["id"] in ex.log()

    # sluice sends the same delivery again (at least once): stored once. Asked for once
    # sluice has recorded the first 2xx (a re-queue while that attempt is still in flight
    # is overwritten by its outcome).
    wait_until(lambda: ex.api.data("webhooks/deliveries/%s" % row["id"])["state"] == "delivered",
               T(10), 0.05, "the first delivery recorded")
    r = ex.api.request("POST", "webhooks/deliveries/%s/redeliver" % row["id"])
    assert r.status == 200, r

    def sent_twice():
        d = ex.api.data("webhooks/deliveries/%s" % row["id"])
        return d["state"] == "delivered" and d["attempts"] == 2
    wait_until(sent_twice, T(10), 0.1, "the redelivery acknowledged")
    assert "webhook: %s stream-published live/hook1 (duplicate, dropped)" % row["id"] in ex.log()
    # Re-POSTed by hand, correctly signed: acknowledged, not stored again.
    body = row["body"].encode()
    ts = str(int(time.time()))
    assert post_hook(ex, body, ts, sign(body, ts)) == (200, {"stored": False})
    assert [r["id"] for r in ex.stored()].count(row["id"]) == 1
    # Forged: a body changed after signing, a wrong secret, a stale timestamp.
    forged = body.replace(b"hook1", b"hook2")
    assert post_hook(ex, forged, ts, sign(body, ts))[0] == 401
    assert post_hook(ex, body, ts, "sha256=" + "0" * 64)[0] == 401
    old = str(int(time.time()) - 3600)
    assert post_hook(ex, body, old, sign(body, old))[0] == 401
    assert not any("hook2" in r["body"] for r in ex.stored())
    ids = [r["id"] for r in ex.stored()]
    assert len(ids) == len(set(ids))


# ---------------------------------------------------------------------------
# (c) Server API client
# ---------------------------------------------------------------------------

def test_api_client_against_live_publisher(ex, procs, media_src):
    pub = publish(procs, media_src, ex, "live", "api1", "ffmpeg-api")
    wait_stream_live(ex.srv.port, "live", "api1", T(15))
    assert "api1" in ex.api_ok("streams", "live")

    c = rtmp_client.RtmpClient(HOST, ex.srv.port, timeout=T(5), name="callee")
    c.invoke_handlers["showMessage"] = lambda text: "shown: " + text
    try:
        assert c.connect("live").ok
        me = c.call("whoami", None, timeout=T(5)).args[1]["session"]  # our id, from the RPC example
        assert me in [x["id"] for x in ex.api_ok("clients", "live")]
        got = ex.api_ok("invoke-client", "live", me, "showMessage", '["hello"]')
        assert got == {"client": me, "status": "result", "value": "shown: hello"}, got
        assert ex.api_ok("invoke", "live", "sum", "[2, 3]") == {"sum": 5}

        rec = ex.api_ok("record-start", "live", "api1", "api1-%s" % ex.lang)
        assert rec["record_name"] == "api1-%s.flv" % ex.lang, rec
        f = ex.srv.data_dir / "live" / "streams" / rec["record_name"]
        wait_until(lambda: f.exists() and f.stat().st_size > 20000, T(10), 0.1, "recorded bytes")
        ex.api_ok("record-stop", "live", "api1")
        again = ex.cli("api", "record-stop", "live", "api1")  # not recording any more
        assert again.returncode == 1 and "HTTP 409" in again.stderr, again

        ex.api_ok("kick", "live", me)
        wait_until(lambda: c.closed, T(5), 0.05, "the kicked client's connection to close")
        assert me not in [x["id"] for x in ex.api_ok("clients", "live")]
    finally:
        c.close()
    missing = ex.cli("api", "kick", "live", me)
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr, missing
    assert pub.poll() is None  # the publisher was never disturbed


# ---------------------------------------------------------------------------
# (d) JWT issuer
# ---------------------------------------------------------------------------

def tamper(token):
    """The same signature over a payload that says something else."""
    h, p, s = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    claims["stream"] = "*"
    p2 = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = "%s.%s.%s" % (h, p2, s)
    ISSUED.add(forged)
    return forged


def test_jwt_issuer_tokens_accepted_tampered_refused(ex, procs, media_src):
    pub = ex.token("publisher", "--stream=cam*", "--app=jwt", "--sub=studio-%s" % ex.lang)
    good = publish(procs, media_src, ex, "jwt", "cam5?token=" + pub, "ffmpeg-jwt")
    wait_listed(ex, "jwt", "cam5", good)
    ex.srv.wait_log(r"studio-%s" % ex.lang, T(5))  # sub is logged with the admission
    # A viewer token plays; it cannot publish.
    view = ex.token("subscriber", "--stream=cam5", "--ttl=120")
    c, _ = rtmp_client.open_player(HOST, ex.srv.port, "jwt", "cam5?token=" + view, timeout=T(10),
                                   name="viewer")
    try:
        c.wait_video_frames(1, T(10))
    finally:
        c.close()
    c, _ = rtmp_client.open_publisher(HOST, ex.srv.port, "jwt", "cam6?token=" + view, timeout=T(5),
                                      expect_start=False)
    try:
        st = c.wait_status_any(["NetStream.Publish.Start", "NetStream.Publish.BadName"], T(10))
    finally:
        c.close()
    assert st.code == "NetStream.Publish.BadName" and st.info["description"] == "Role not allowed.", st
    # Outside the token's stream pattern, and a tampered token: refused.
    refused(procs, publish(procs, media_src, ex, "jwt", "other?token=" + pub, "ffmpeg-other"),
            "Stream not allowed.")
    refused(procs, publish(procs, media_src, ex, "jwt", "other?token=" + tamper(pub), "ffmpeg-tampered"),
            "Invalid token.")
    assert good.poll() is None


# ---------------------------------------------------------------------------
# (e) RPC handler
# ---------------------------------------------------------------------------

def test_rpc_call_reaches_example_handler(ex):
    c = rtmp_client.RtmpClient(HOST, ex.srv.port, timeout=T(5), name="caller")
    try:
        assert c.connect("live?username=alice").ok
        r = c.call("sum", None, 1.0, 2.0, 3.5, timeout=T(5))
        assert r.name == "_result" and r.args[1] == {"sum": 6.5}, r
        r = c.call("whoami", None, timeout=T(5))
        assert r.name == "_result", r
        who = r.args[1]
        assert who["app"] == "live" and who["username"] == "alice" and who["session"], who
        assert who["session"] in [x["id"] for x in ex.api.data("applications/live/clients")]
        r = c.call("nosuch", None, timeout=T(5))
        assert r.name == "_error" and "HTTP 404" in r.info["description"], r
        r = c.call("sum", None, "x", timeout=T(5))
        assert r.name == "_error" and "HTTP 400" in r.info["description"], r
    finally:
        c.close()
    assert "rpc: sum from %s" % who["session"] in ex.log()
