"""The Java and C# integration examples (examples/integration/{java,csharp}, issue 17)
against a live sluice, with real peers.

For each language the examples are compiled once (the folder's own Makefile: javac,
or Debian's mono-mcs) into a temporary folder, its business server (round trip
validator, webhook receiver and RPC handler on one port) is started and one sluice is
configured to use it, as docs/integration/examples.md says (apps `live` with the RPC
handler, `rta` with round trip auth, `jwt` with JWT auth):

  - round trip: ffmpeg publishes as alice (admitted: the stream is listed), with a wrong
    password and as bob, who may only play (both refused: ffmpeg fails with Red5's
    "Authentication failed."); bob plays; the validator hears the invalidate when the
    admitted publisher leaves;
  - webhooks: the receiver verifies and stores real deliveries; sluice's own redeliver
    (same id, same body, new timestamp and signature) is answered 2xx and dropped, the
    store keeps one line per id, also across a restart after a torn write; a forged
    signature, a body changed after signing and a stale timestamp are refused;
  - the Server API client, as a command-line tool, against a live ffmpeg publisher: list
    streams and clients, start and stop a recording (the file is a playable FLV), invoke
    a method of an RTMP client (its answer comes back) and of the application (the RPC
    handler's answer comes back), kick the client (it is disconnected); an error exits 1
    with the HTTP status;
  - the JWT issuer: its publisher token lets ffmpeg publish through sluice's JWT check;
    a subscriber token with its payload altered into a publisher's (signature kept) is
    refused with "Invalid token.", the genuine one may not publish ("Role not allowed."),
    and the publisher token does not cover a stream outside its pattern;
  - the RPC handler: NetConnection.call from an RTMP client (tests/e2e/rtmp_client.py)
    reaches it with the caller's app, session and username and gets its result; an
    unknown method fails with the handler's 404;
  - the business server refuses malformed JSON, nesting past the parser's cap and a body
    over the cap (from its Content-Length, unread) with 400/413 (the webhook receiver
    refuses unsigned bodies before parsing them), answers 300 mutated bodies (a small
    seeded fuzz) with 200/400/404 and never an error, and keeps serving.

Skipped (with the reason) only when javac / java / mcs / mono is not installed; CI
installs them (scripts/deps.sh test set: default-jdk-headless, mono-mcs).
"""

import base64
import hashlib
import hmac
import json
import os
import random
import shutil
import socket
import subprocess
import time

import pytest

import rtmp_client
from api_helpers import TOKEN, Api, http_port_of
from conftest import (HOST, REPO, T, Procs, ffmpeg_publish_cmd, ffprobe_streams, free_port,
                      port_open, wait_stream_live, wait_until)

pytestmark = pytest.mark.examples

EXAMPLES = REPO / "examples" / "integration"
WH_SECRET = "examples-webhook-secret-7f3a"
JWT_SECRET = "examples-jwt-secret-0123456789abcdef-42"   # sluice wants at least 32 bytes
JWT_ISS, JWT_AUD = "https://auth.example.com", "sluice"
ALICE_PW, BOB_PW, WRONG_PW = "alice-pass", "bob-pass", "wrong-pw-ex-5e21"  # the examples' users
ISSUED = {ALICE_PW, BOB_PW, WRONG_PW, WH_SECRET, JWT_SECRET}  # never in sluice's log

START, BADNAME = "NetStream.Publish.Start", "NetStream.Publish.BadName"
PLAY_START, PLAY_FAILED = "NetStream.Play.Start", "NetStream.Play.Failed"

# How each language builds and runs: the tools it needs, and the command line of one
# program given the build folder.
LANGS = {
    # Java: the README's command plus two flags that halve the JVM's start on a small machine
    # (the command-line examples run a few times per test; the server does not care).
    "java": {"tools": ("javac", "java"), "dir": EXAMPLES / "java",
             "run": lambda out, prog: ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
                                       "-cp", str(out), prog],
             "api": "SluiceApi"},
    "csharp": {"tools": ("mcs", "mono"), "dir": EXAMPLES / "csharp",
               "run": lambda out, prog: ["mono", str(out / (prog + ".exe"))],
               "api": "SluiceApiClient"},
}


@pytest.fixture(autouse=True)
def _no_secret_in_logs(secrets):
    secrets.live(ISSUED)


class Stack:
    """One language's examples and the sluice that uses them."""

    def __init__(self, lang, out, procs, workdir):
        self.lang, self.out, self.procs, self.workdir = lang, out, procs, workdir
        self.spec = LANGS[lang]
        self.srv = None
        self.biz = None       # the business server's Popen
        self.port = free_port()
        self.store = workdir / "events.jsonl"

    def cmd(self, prog, *args):
        return self.spec["run"](self.out, prog) + [str(a) for a in args]

    def start_business_server(self):
        """Starts BusinessServer as the README says (settings in the environment)."""
        env = dict(os.environ, PORT=str(self.port), BIND=HOST, WEBHOOK_SECRET=WH_SECRET,
                   DB=str(self.store))
        p = self.procs.start(self.cmd("BusinessServer"), "%s-BusinessServer" % self.lang, env=env)
        # The whole line: the JVM's printf can reach the pipe in pieces, and a check that
        # matched "listening on" read the output before its "(N events stored)" (CI).
        wait_until(lambda: "events stored)" in Procs.log_of(p) or p.poll() is not None, T(30), 0.05,
                   "%s BusinessServer to listen on %d" % (self.lang, self.port))
        assert p.poll() is None and port_open(self.port), Procs.log_of(p)
        self.biz = p

    def url(self, path):
        return "http://%s:%d%s" % (HOST, self.port, path)

    def output(self):
        return Procs.log_of(self.biz)

    def wait_output(self, text, timeout):
        return wait_until(lambda: text in self.output(), timeout, 0.05,
                          lambda: "%r in BusinessServer's output:\n%s" % (text, self.output()[-2000:]))

    def run(self, prog, *args, env=None, check=True):
        """Runs a command-line example; returns the CompletedProcess."""
        p = subprocess.run(self.cmd(prog, *args), capture_output=True, text=True, timeout=T(90),
                           env=dict(os.environ, **(env or {})))
        if check:
            assert p.returncode == 0, "%s %s failed (%d): %s%s" % (prog, args, p.returncode, p.stdout,
                                                                   p.stderr)
        return p

    def api_run(self, *args, check=True):
        env = {"API_URL": "http://%s:%d" % (HOST, http_port_of(self.srv)), "API_TOKEN": TOKEN}
        return self.run(self.spec["api"], *args, env=env, check=check)

    def api(self, *args):
        """The Server API example: one command, its printed data parsed."""
        return json.loads(self.api_run(*args).stdout)

    def jwt(self, *args):
        env = {"JWT_SECRET": JWT_SECRET, "JWT_ISSUER": JWT_ISS, "JWT_AUDIENCE": JWT_AUD}
        return self.run("JwtIssuer", *args, env=env).stdout.strip()


@pytest.fixture(scope="module", params=sorted(LANGS))
def stack(request, tmp_path_factory, module_sluice_factory, media_src):
    lang = request.param
    spec = LANGS[lang]
    missing = [t for t in spec["tools"] if shutil.which(t) is None]
    if missing:
        pytest.skip("%s not installed (Debian: %s)" % (
            ", ".join(missing), "default-jdk-headless" if lang == "java" else "mono-mcs"))
    work = tmp_path_factory.mktemp("examples-" + lang)
    out = work / "build"
    # The README's build command, into a temporary folder (the source tree stays clean).
    p = subprocess.run(["make", "-s", "-C", str(spec["dir"]), "OUT=" + str(out)],
                       capture_output=True, text=True, timeout=T(240))
    assert p.returncode == 0, "build of the %s examples failed:\n%s%s" % (lang, p.stdout, p.stderr)

    procs = Procs(work, request.node)
    st = Stack(lang, out, procs, work)
    try:
        st.start_business_server()
        st.srv = module_sluice_factory(name="sluice-" + lang, config={
            "api": {"access_token": TOKEN, "auth_fail_limit": 1000},
            "auth": {"roundtrip_validate_url": st.url("/validateCredentials"),
                     "roundtrip_invalidate_url": st.url("/invalidateCredentials"),
                     "roundtrip_timeout": "10s",
                     "jwt_secret": JWT_SECRET, "jwt_issuer": JWT_ISS, "jwt_audience": JWT_AUD},
            "webhooks": {"url": '"%s"' % st.url("/webhook"), "secret": WH_SECRET,
                         "retry_max_interval": "1s", "timeout": "10s"},
            "apps": {"live": {"rpc_url": st.url("/rpc"), "rpc_timeout": "5s"},
                     "rta": {"auth_roundtrip": True}, "jwt": {"auth_jwt": True}},
        })
        wait_until(lambda: port_open(http_port_of(st.srv)), T(10), message="sluice's HTTP port")
        st.media_src = media_src
        yield st
        st.srv.check_clean_exit(ISSUED)  # this language's sluice goes before the next one starts
    finally:
        procs.stop_all()


def ffmpeg(st, url, name):
    return st.procs.start(ffmpeg_publish_cmd(st.media_src, url), name)


def streams(st, app):
    return Api(st.srv).data("applications/%s/streams" % app)


# ----------------------------------------------------------------------------
# (a) round trip authentication
# ----------------------------------------------------------------------------

def test_roundtrip_validator_admits_and_refuses_ffmpeg(stack):
    st = stack
    base = "rtmp://%s:%d/rta" % (HOST, st.srv.port)
    ok = ffmpeg(st, "%s/rt1?username=alice&password=%s" % (base, ALICE_PW), "ffmpeg-rt-ok")
    wrong = ffmpeg(st, "%s/rt2?username=alice&password=%s" % (base, WRONG_PW), "ffmpeg-rt-wrong")
    viewer = ffmpeg(st, "%s/rt3?username=bob&password=%s" % (base, BOB_PW), "ffmpeg-rt-bob")
    wait_until(lambda: "rt1" in streams(st, "rta"), T(15), 0.1, "rt1 to be published")
    for p in (wrong, viewer):  # refused: ffmpeg gives up with Red5's reason
        assert p.wait(T(20)) != 0
        assert "Authentication failed" in Procs.log_of(p), Procs.log_of(p)[-1500:]
    assert streams(st, "rta") == ["rt1"]
    out = st.output()
    assert "validate: alice publisher rt1 -> yes" in out
    assert "validate: alice publisher rt2 -> no" in out
    assert "validate: bob publisher rt3 -> no" in out
    # bob may play.
    c = rtmp_client.RtmpClient(HOST, st.srv.port, timeout=T(5), name="rt-player")
    try:
        assert c.connect("rta").ok
        c.play(c.create_stream(), "rt1?username=bob&password=" + BOB_PW)
        status = c.wait_status_any([PLAY_START, PLAY_FAILED], T(10))
        assert status.code == PLAY_START, status
        st.wait_output("validate: bob subscriber rt1 -> yes", T(5))
    finally:
        c.close()
    # The admitted publisher leaves: sluice invalidates it; the refused ones never.
    st.procs.stop(ok)
    st.wait_output("invalidate: alice publisher rt1", T(10))
    st.wait_output("invalidate: bob subscriber rt1", T(10))
    assert "invalidate: alice publisher rt2" not in st.output()


# ----------------------------------------------------------------------------
# (b) webhook receiver
# ----------------------------------------------------------------------------

def stored_lines(st):
    if not st.store.exists():
        return []
    return [json.loads(x) for x in st.store.read_text().splitlines() if x.strip()]


def signed(body, ts=None):
    ts = ts or str(int(time.time()))
    sig = "sha256=" + hmac.new(WH_SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return (("X-Sluice-Timestamp", ts), ("X-Sluice-Signature", sig))


def test_webhook_receiver_verifies_and_drops_duplicates(stack):
    st = stack
    # A real delivery: an RTMP client connects.
    c = rtmp_client.RtmpClient(HOST, st.srv.port, timeout=T(5), name="hook-client")
    try:
        assert c.connect("live").ok
    finally:
        c.close()

    def connect_event():
        return [x for x in stored_lines(st) if x["event"]["event"] == "connection-connect"
                and x["event"]["app"] == "live"]
    first = wait_until(connect_event, T(15), 0.05, "a stored connection-connect")[0]
    did = first["id"]
    assert first["event"]["id"] == did and first["event"]["sluice_event"] == "connect"
    st.wait_output("webhook: %s connection-connect %s" % (did, first["event"]["guid"]), T(5))
    api = Api(st.srv)
    wait_until(lambda: api.data("webhooks/deliveries/" + did)["state"] == "delivered", T(10), 0.05,
               "sluice to see the delivery acknowledged")

    # sluice sends the same delivery again (same id and body, a new timestamp and signature):
    # the receiver verifies it, acknowledges it and stores nothing.
    r = api.request("POST", "webhooks/deliveries/%s/redeliver" % did)
    assert r.status == 200, r
    st.wait_output("webhook: %s connection-connect %s (duplicate, dropped)" % (did, first["event"]["guid"]),
                   T(15))
    wait_until(lambda: api.data("webhooks/deliveries/" + did)["attempts"] >= 2
               and api.data("webhooks/deliveries/" + did)["state"] == "delivered", T(10), 0.05,
               "the redelivery to be acknowledged")
    assert [x["id"] for x in stored_lines(st)].count(did) == 1
    assert "refused" not in st.output()  # every real delivery verified

    # Forged, altered and replayed requests are refused and not stored.
    body = json.dumps({"id": "forged-1", "event": "stream-published", "guid": "live/x"}).encode()
    assert raw_post(st.port, "/webhook", body, headers=signed(body)[:1] + (
        ("X-Sluice-Signature", "sha256=" + "0" * 64),)) == 401
    assert raw_post(st.port, "/webhook", body.replace(b"live/x", b"live/y"), headers=signed(body)) == 401
    assert raw_post(st.port, "/webhook", body, headers=signed(body, str(int(time.time()) - 3600))) == 401
    # The same body signed now is accepted (so the refusals were for the reasons tested),
    # and a hand re-POST of it is dropped too.
    assert raw_post(st.port, "/webhook", body, headers=signed(body)) == 200
    assert raw_post(st.port, "/webhook", body, headers=signed(body)) == 200
    assert [x["id"] for x in stored_lines(st)].count("forged-1") == 1

    # The store survives a restart, even one after a crash in the middle of a write: the
    # torn line is cut off, the ids come back, and a redelivery is still dropped.
    st.procs.stop(st.biz)
    n_ids = len({x["id"] for x in stored_lines(st)})
    with open(st.store, "ab") as f:
        f.write(b'{"id":"torn-by-a-cra')
    st.start_business_server()
    st.wait_output("(%d events stored)" % n_ids, T(10))
    assert "dropping a torn last line (20 bytes)" in st.output()
    assert api.request("POST", "webhooks/deliveries/%s/redeliver" % did).status == 200
    st.wait_output("webhook: %s connection-connect %s (duplicate, dropped)" % (did, first["event"]["guid"]),
                   T(15))
    assert [x["id"] for x in stored_lines(st)].count(did) == 1


# ----------------------------------------------------------------------------
# (c) Server API client
# ----------------------------------------------------------------------------

def test_api_client_against_live_publisher(stack):
    st = stack
    pub = ffmpeg(st, st.srv.url("live", "apicam"), "ffmpeg-apicam")
    wait_stream_live(st.srv.port, "live", "apicam", T(15))
    assert "apicam" in st.api("streams", "live")

    rec = st.api("record-start", "live", "apicam", "take1")
    assert rec["record_name"] == "take1.flv", rec
    flv = st.srv.data_dir / "live" / "streams" / "take1.flv"
    wait_until(lambda: flv.exists() and flv.stat().st_size > 100000, T(15), 0.1, "the recording to grow")
    st.api("record-stop", "live", "apicam")
    assert Api(st.srv).data("applications/live/streams/apicam")["is_recording"] is False
    assert any(s["codec_type"] == "video" for s in ffprobe_streams(flv))
    # An error: exit 1 with the HTTP status and sluice's message.
    p = st.api_run("record-stop", "live", "no-such-stream", check=False)
    assert p.returncode == 1 and "error: HTTP 404" in p.stderr, (p.returncode, p.stdout, p.stderr)

    # A client with a method the server can call, then kicked. (Polls go through the
    # test's own client: each run of an example starts a JVM or mono.)
    api = Api(st.srv)
    before = {x["id"] for x in api.data("applications/live/clients")}
    c = rtmp_client.RtmpClient(HOST, st.srv.port, timeout=T(5), name="api-client")
    c.invoke_handlers["showMessage"] = lambda text: "shown: " + text
    try:
        assert c.connect("live").ok
        cid, = wait_until(lambda: {x["id"] for x in api.data("applications/live/clients")} - before,
                          T(5), 0.05, "the new client in the list")
        assert cid in {x["id"] for x in st.api("clients", "live")}
        ans = st.api("invoke-client", "live", cid, "showMessage", '["hello"]')
        assert ans == {"client": cid, "status": "result", "value": "shown: hello"}, ans
        # An application method: no handler takes sum, so the app's RPC handler does.
        assert st.api("invoke", "live", "sum", "[1, 2, 3.5]") == {"sum": 6.5}
        kicked = st.api("kick", "live", cid)
        assert kicked["id"] == cid, kicked
        wait_until(lambda: c.closed, T(10), 0.05, "the kicked client to be disconnected")
        assert cid not in {x["id"] for x in api.data("applications/live/clients")}
    finally:
        c.close()
        st.procs.stop(pub)


# ----------------------------------------------------------------------------
# (d) JWT issuer
# ----------------------------------------------------------------------------

def b64url_json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def try_publish(st, app, name):
    """Connects and publishes with the test's RTMP client; returns the status."""
    c = rtmp_client.RtmpClient(HOST, st.srv.port, timeout=T(5), name="jwt-probe")
    try:
        assert c.connect(app).ok
        c.publish(c.create_stream(), name)
        return c.wait_status_any([START, BADNAME], T(10))
    finally:
        c.close()


def test_jwt_issuer_token_accepted_tampered_refused(stack):
    st = stack
    pub = st.jwt("publisher", "--stream", "cam*", "--app", "jwt", "--sub", "studio-7", "--ttl", "600")
    ISSUED.add(pub)
    header, payload, sig = pub.split(".")
    assert b64url_json(header) == {"alg": "HS256", "typ": "JWT"}
    claims = b64url_json(payload)
    assert claims["roles"] == "red5-publisher" and claims["aud"] == JWT_AUD and claims["iss"] == JWT_ISS
    assert claims["stream"] == "cam*" and claims["app"] == "jwt" and claims["sub"] == "studio-7"
    assert 590 <= claims["exp"] - time.time() <= 610

    p = ffmpeg(st, "rtmp://%s:%d/jwt/cam1?token=%s" % (HOST, st.srv.port, pub), "ffmpeg-jwt")
    wait_until(lambda: "cam1" in streams(st, "jwt") or p.poll() is not None, T(15), 0.1,
               "the JWT publisher to be live")
    assert p.poll() is None, Procs.log_of(p)[-1500:]

    # A subscriber's token with its payload turned into a publisher's, signature kept.
    sub = st.jwt("subscriber", "--sub", "viewer-1")
    ISSUED.add(sub)
    h, pl, s = sub.split(".")
    forged_claims = dict(b64url_json(pl), roles="red5-publisher")
    forged_pl = base64.urlsafe_b64encode(json.dumps(forged_claims, separators=(",", ":")).encode()).rstrip(b"=")
    forged = "%s.%s.%s" % (h, forged_pl.decode(), s)
    ISSUED.add(forged)
    bad = ffmpeg(st, "rtmp://%s:%d/jwt/cam2?token=%s" % (HOST, st.srv.port, forged), "ffmpeg-jwt-forged")
    assert bad.wait(T(20)) != 0
    assert "Invalid token" in Procs.log_of(bad), Procs.log_of(bad)[-1500:]
    # The genuine subscriber token is valid but may not publish; the publisher token only
    # covers its pattern.
    status = try_publish(st, "jwt", "cam3?token=" + sub)
    assert status.code == BADNAME and status.info.get("description") == "Role not allowed.", status
    status = try_publish(st, "jwt", "dog1?token=" + pub)
    assert status.code == BADNAME and status.info.get("description") == "Stream not allowed.", status
    assert streams(st, "jwt") == ["cam1"]
    st.procs.stop(p)


# ----------------------------------------------------------------------------
# (e) RPC handler
# ----------------------------------------------------------------------------

def test_rpc_handler_answers_rtmp_calls(stack):
    st = stack
    c = rtmp_client.RtmpClient(HOST, st.srv.port, timeout=T(5), name="rpc-client")
    try:
        assert c.connect("live?username=carol").ok
        r = c.call("sum", None, 1.0, 2.0, 3.5, timeout=T(10))
        assert r.name == "_result" and r.args[1] == {"sum": 6.5}, r
        r = c.call("whoami", None, timeout=T(10))
        assert r.name == "_result", r
        me = r.args[1]
        assert me["app"] == "live" and me["username"] == "carol", me
        assert me["session"] in {x["id"] for x in Api(st.srv).data("applications/live/clients")}, me
        r = c.call("no.such.method", None, timeout=T(10))
        assert r.name == "_error", r
        assert r.info["code"] == "NetConnection.Call.Failed", r.info
        assert r.info["description"] == "The business server answered HTTP 404.", r.info
        r = c.call("sum", None, "x", timeout=T(10))
        assert r.name == "_error" and r.info["description"] == "The business server answered HTTP 400.", r
    finally:
        c.close()
    st.wait_output('rpc: sum from %s -> {"sum":6.5}' % me["session"], T(5))


# ----------------------------------------------------------------------------
# the business server: bounded input
# ----------------------------------------------------------------------------

def raw_post(port, path, body=b"", content_length=None, headers=()):
    """A POST over a plain socket (so a Content-Length can promise more than is sent);
    returns the status code."""
    n = len(body) if content_length is None else content_length
    head = "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" \
           "Content-Length: %d\r\nConnection: close\r\n%s\r\n" % (
               path, n, "".join("%s: %s\r\n" % h for h in headers))
    with socket.create_connection((HOST, port), timeout=T(20)) as s:
        s.sendall(head.encode() + body)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1])


def test_business_server_refuses_bad_input_and_keeps_serving(stack):
    st = stack
    deep = b"[" * 2000 + b"]" * 2000   # nesting far past the parsers' cap (32 levels)
    for path in ("/validateCredentials", "/rpc"):
        assert raw_post(st.port, path, b"{not json") == 400, path
        assert raw_post(st.port, path, deep) == 400, path
        assert raw_post(st.port, path, content_length=50 << 20) == 413, path  # refused unread
    assert raw_post(st.port, "/webhook", b"{}") == 401                    # unsigned: not even parsed
    assert raw_post(st.port, "/webhook", content_length=50 << 20) == 413
    for body in (b"{not json", b"[" * 1000 + b"]" * 1000):
        assert raw_post(st.port, "/webhook", body, headers=signed(body)) == 400
    # A small fuzz through the real server: mutated bodies (bytes flipped, inserted, cut;
    # seeded, so a failure reproduces) get an answer, never an error or a dropped connection.
    rng = random.Random(17)
    seeds = [(path, json.dumps(doc).encode()) for path, doc in (
        ("/rpc", {"app": "live", "session": "S1", "method": "sum", "params": [1, 2.5, -3e2],
                  "username": "u\u00e9\ud83d\ude00"}),
        ("/validateCredentials", {"username": "alice", "password": "x", "token": "",
                                  "type": "publisher", "streamID": "s"}),
        ("/webhook", {"id": "fuzz-1", "event": "connection-connect", "guid": "G", "app": "live"}))]
    for i in range(300):
        path, body = seeds[i % len(seeds)]
        b = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            op, at = rng.random(), rng.randrange(len(b) + 1)
            if op < 0.4 and at < len(b):
                b[at] = rng.choice(b'{}[]",:\\0123456789eE.-+tfnu \x00\xff')
            elif op < 0.7:
                b[at:at] = bytes([rng.randrange(256)])
            else:
                del b[at:]
        b = bytes(b)
        status = raw_post(st.port, path, b, headers=signed(b) if path == "/webhook" else ())
        assert status in (200, 400, 404), (path, b, status)
    # Still serving: a real validation and a real call.
    body = json.dumps({"username": "bob", "password": BOB_PW, "token": "", "type": "subscriber",
                       "streamID": "s"}).encode()
    assert raw_post(st.port, "/validateCredentials", body) == 200
    body = json.dumps({"app": "live", "session": None, "method": "whoami", "params": [],
                       "username": None}).encode()
    assert raw_post(st.port, "/rpc", body) == 200
    assert st.biz.poll() is None
