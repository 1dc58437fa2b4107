"""The Java and C# integration examples (examples/integration/{java,csharp}, issue 17)
against a live sluice, with real peers.

For each language the examples are compiled once (the folder's own Makefile: javac,
or Debian's mono-mcs) into a temporary folder, its three servers are started (round
trip validator, webhook receiver, RPC handler) and one sluice is configured to use
them, exactly as each README says:

  - round trip: ffmpeg publishes with a publisher's password (admitted: the stream is
    listed), a wrong password and a subscriber-only user (both refused: ffmpeg fails
    with Red5's "Authentication failed."); the validator hears the invalidate when the
    admitted publisher leaves;
  - webhooks: the receiver verifies and stores real deliveries; sluice's own redeliver
    (same id, same body, new timestamp and signature) is answered 2xx and dropped, the
    store keeps one line per id; a forged signature and a stale timestamp are refused;
  - the Server API client, as a command-line tool, against a live ffmpeg publisher: list
    streams, start and stop a recording (the file is a playable FLV), invoke a method
    of an RTMP client (its answer comes back) and of the application (the RPC handler's
    answer comes back), kick the client (it is disconnected);
  - the JWT issuer: its publisher token lets ffmpeg publish through sluice's JWT check;
    the same token with its payload altered (a subscriber token turned into a publisher
    one) is refused with "Invalid token.", and a genuine subscriber token may not publish;
  - the RPC handler: NetConnection.call from an RTMP client (tests/e2e/rtmp_client.py)
    reaches it with the caller's session and username and gets its result; an unknown
    method fails with the handler's 404;
  - every server: malformed JSON, nesting past the parser's cap, a body over the cap
    (refused from its Content-Length, unread) are refused with 400/413 (the webhook
    receiver refuses unsigned bodies before parsing them), and the servers keep serving.

Skipped (with the reason) only when javac / mcs / mono is not installed; CI installs
them (scripts/deps.sh test set: default-jdk-headless, mono-mcs).
"""

import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import rtmp_client
from api_helpers import TOKEN, Api, http_port_of
from conftest import (HOST, REPO, T, Procs, ffmpeg_publish_cmd, ffprobe_streams, free_port,
                      port_open, wait_stream_live, wait_until)

EXAMPLES = REPO / "examples" / "integration"
WH_SECRET = "examples-webhook-secret-7f3a"
JWT_SECRET = "examples-jwt-secret-0123456789abcdef-42"   # sluice wants at least 32 bytes
JWT_ISS, JWT_AUD = "https://auth.example.com", "sluice"
ALICE_PW, BOB_PW, WRONG_PW = "alice-pw-ex-3c9d", "bob-pw-ex-81aa", "wrong-pw-ex-5e21"
ISSUED = {ALICE_PW, BOB_PW, WRONG_PW, WH_SECRET, JWT_SECRET}  # never in sluice's log

START, BADNAME = "NetStream.Publish.Start", "NetStream.Publish.BadName"

# How each language builds and runs: the tools it needs, and the command line of one
# program given the build folder.
LANGS = {
    # Java: the README's command plus two flags that halve the JVM's start on a small machine
    # (the command-line examples run a few times per test; the servers do not care).
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
        self.servers = {}  # name -> (Popen, port)

    def cmd(self, prog, *args):
        return self.spec["run"](self.out, prog) + [str(a) for a in args]

    def start_server(self, prog, env=None, *args, port=None):
        port = port or free_port()
        p = self.procs.start(self.cmd(prog, "--port", port, *args), "%s-%s" % (self.lang, prog),
                             env=dict(os.environ, **(env or {})))
        wait_until(lambda: port_open(port) or p.poll() is not None, T(20), 0.05,
                   "%s %s to listen on %d" % (self.lang, prog, port))
        assert p.poll() is None, Procs.log_of(p)
        self.servers[prog] = (p, port)
        return port

    def output(self, prog):
        return Procs.log_of(self.servers[prog][0])

    def wait_output(self, prog, text, timeout):
        return wait_until(lambda: text in self.output(prog), timeout, 0.05,
                          lambda: "%r in %s's output:\n%s" % (text, prog, self.output(prog)[-2000:]))

    def run(self, prog, *args, env=None, check=True):
        """Runs a command-line example; returns its stdout (stripped)."""
        p = subprocess.run(self.cmd(prog, *args), capture_output=True, text=True, timeout=T(90),
                           env=dict(os.environ, **(env or {})))
        if check:
            assert p.returncode == 0, "%s %s failed (%d): %s%s" % (prog, args, p.returncode, p.stdout,
                                                                   p.stderr)
        return p.stdout.strip()

    def api(self, *args):
        """The Server API example: one command, its printed data parsed."""
        env = {"API_URL": "http://%s:%d" % (HOST, http_port_of(self.srv)), "API_TOKEN": TOKEN}
        return json.loads(self.run(self.spec["api"], *args, env=env))

    def jwt(self, *args):
        return self.run("JwtIssuer", *args, env={"JWT_SECRET": JWT_SECRET})


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
    users = work / "users.txt"
    users.write_text("# name password role\nalice %s publisher\nbob %s subscriber\n" % (ALICE_PW, BOB_PW))
    st.store = work / "events.jsonl"
    try:
        rta = st.start_server("RoundTripAuth", None, "--users", users)
        hooks = st.start_server("WebhookReceiver", {"WEBHOOK_SECRET": WH_SECRET}, "--store", st.store)
        rpc = st.start_server("RpcHandler")
        st.srv = module_sluice_factory(name="sluice-" + lang, config={
            "api": {"access_token": TOKEN, "auth_fail_limit": 1000},
            "auth": {"roundtrip_validate_url": "http://%s:%d/validateCredentials" % (HOST, rta),
                     "roundtrip_invalidate_url": "http://%s:%d/invalidateCredentials" % (HOST, rta),
                     "roundtrip_timeout": "10s",
                     "jwt_secret": JWT_SECRET, "jwt_issuer": JWT_ISS, "jwt_audience": JWT_AUD},
            "webhooks": {"url": '"http://%s:%d/hooks"' % (HOST, hooks), "secret": WH_SECRET,
                         "retry_max_interval": "1s", "timeout": "10s"},
            "apps": {"live": {"auth_roundtrip": True}, "jwt": {"auth_jwt": True},
                     "open": {"rpc_url": "http://%s:%d/rpc" % (HOST, rpc), "rpc_timeout": "5s"}},
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
    base = "rtmp://%s:%d/live" % (HOST, st.srv.port)
    ok = ffmpeg(st, "%s/rt1?username=alice&password=%s" % (base, ALICE_PW), "ffmpeg-rt-ok")
    wrong = ffmpeg(st, "%s/rt2?username=alice&password=%s" % (base, WRONG_PW), "ffmpeg-rt-wrong")
    viewer = ffmpeg(st, "%s/rt3?username=bob&password=%s" % (base, BOB_PW), "ffmpeg-rt-bob")
    wait_until(lambda: "rt1" in streams(st, "live"), T(15), 0.1, "rt1 to be published")
    for p in (wrong, viewer):  # refused: ffmpeg gives up with Red5's reason
        assert p.wait(T(20)) != 0
        assert "Authentication failed" in Procs.log_of(p), Procs.log_of(p)[-1500:]
    assert streams(st, "live") == ["rt1"]
    out = st.output("RoundTripAuth")
    assert "validate alice publisher rt1 -> yes" in out
    assert "validate alice publisher rt2 -> no" in out
    assert "validate bob publisher rt3 -> no" in out
    # The admitted publisher leaves: sluice invalidates it, once.
    st.procs.stop(ok)
    st.wait_output("RoundTripAuth", "invalidate alice publisher rt1", T(10))
    assert "invalidate alice publisher rt2" not in st.output("RoundTripAuth")


# ----------------------------------------------------------------------------
# (b) webhook receiver
# ----------------------------------------------------------------------------

def stored_lines(st):
    if not st.store.exists():
        return []
    return [json.loads(x) for x in st.store.read_text().splitlines() if x.strip()]


def post_hook(st, body, ts, sig):
    port = st.servers["WebhookReceiver"][1]
    req = urllib.request.Request("http://%s:%d/hooks" % (HOST, port), data=body, method="POST",
                                 headers={"Content-Type": "application/json", "X-Sluice-Timestamp": ts,
                                          "X-Sluice-Signature": sig})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never an http_proxy
    try:
        with opener.open(req, timeout=T(10)) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_webhook_receiver_verifies_and_drops_duplicates(stack):
    st = stack
    # A real delivery: an RTMP client connects to the open app.
    c = rtmp_client.RtmpClient(HOST, st.srv.port, timeout=T(5), name="hook-client")
    try:
        assert c.connect("open").ok
    finally:
        c.close()

    def connect_event():
        return [x for x in stored_lines(st) if x["event"]["event"] == "connection-connect"
                and x["event"]["app"] == "open"]
    first, = wait_until(connect_event, T(15), 0.05, "a stored connection-connect")
    did = first["id"]
    assert first["event"]["id"] == did and first["event"]["sluice_event"] == "connect"
    st.wait_output("WebhookReceiver", "stored %s connection-connect" % did, T(5))
    api = Api(st.srv)
    wait_until(lambda: api.data("webhooks/deliveries/" + did)["state"] == "delivered", T(10), 0.05,
               "sluice to see the delivery acknowledged")

    # sluice sends the same delivery again (same id and body, a new timestamp and signature):
    # the receiver verifies it, acknowledges it and stores nothing.
    r = api.request("POST", "webhooks/deliveries/%s/redeliver" % did)
    assert r.status == 200, r
    st.wait_output("WebhookReceiver", "duplicate %s dropped" % did, T(15))
    wait_until(lambda: api.data("webhooks/deliveries/" + did)["attempts"] >= 2
               and api.data("webhooks/deliveries/" + did)["state"] == "delivered", T(10), 0.05,
               "the redelivery to be acknowledged")
    assert [x["id"] for x in stored_lines(st)].count(did) == 1
    assert "refused" not in st.output("WebhookReceiver")  # every real delivery verified

    # The store survives a restart, even one after a crash in the middle of a write: the
    # torn line is cut off, the ids come back, and a redelivery is still dropped.
    p, port = st.servers["WebhookReceiver"]
    st.procs.stop(p)
    n_ids = len({x["id"] for x in stored_lines(st)})
    with open(st.store, "ab") as f:
        f.write(b'{"id":"torn-by-a-cra')
    st.start_server("WebhookReceiver", {"WEBHOOK_SECRET": WH_SECRET}, "--store", st.store, port=port)
    st.wait_output("WebhookReceiver", "(%d events stored)" % n_ids, T(5))
    assert "dropping a torn last line (20 bytes)" in st.output("WebhookReceiver")
    assert api.request("POST", "webhooks/deliveries/%s/redeliver" % did).status == 200
    st.wait_output("WebhookReceiver", "duplicate %s dropped" % did, T(15))
    assert [x["id"] for x in stored_lines(st)].count(did) == 1

    # Forged and replayed requests are refused and not stored.
    body = json.dumps({"id": "forged-1", "event": "stream-published", "guid": "open/x"}).encode()
    now = str(int(time.time()))
    assert post_hook(st, body, now, "sha256=" + "0" * 64) == 401
    old = str(int(time.time()) - 3600)
    sig = "sha256=" + hmac.new(WH_SECRET.encode(), old.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert post_hook(st, body, old, sig) == 401
    # The same body signed now is accepted (so the two refusals were for the reasons tested).
    sig = "sha256=" + hmac.new(WH_SECRET.encode(), now.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert post_hook(st, body, now, sig) == 200
    assert post_hook(st, body, now, sig) == 200  # a re-POST by hand: dropped too
    assert [x["id"] for x in stored_lines(st)].count("forged-1") == 1


# ----------------------------------------------------------------------------
# (c) Server API client
# ----------------------------------------------------------------------------

def test_api_client_against_live_publisher(stack):
    st = stack
    ffmpeg(st, st.srv.url("open", "apicam"), "ffmpeg-apicam")
    wait_stream_live(st.srv.port, "open", "apicam", T(15))
    assert "apicam" in st.api("streams", "open")

    rec = st.api("startrecord", "open", "apicam", "take1")
    assert rec["record_name"] == "take1.flv", rec
    flv = st.srv.data_dir / "open" / "streams" / "take1.flv"
    wait_until(lambda: flv.exists() and flv.stat().st_size > 100000, T(15), 0.1, "the recording to grow")
    st.api("stoprecord", "open", "apicam")
    assert Api(st.srv).data("applications/open/streams/apicam")["is_recording"] is False
    assert any(s["codec_type"] == "video" for s in ffprobe_streams(flv))

    # A client with a method the server can call, then kicked. (Polls go through the
    # test's own client: each run of an example starts a JVM or mono.)
    api = Api(st.srv)
    before = {x["id"] for x in api.data("applications/open/clients")}
    c = rtmp_client.RtmpClient(HOST, st.srv.port, timeout=T(5), name="api-client")
    c.invoke_handlers["showMessage"] = lambda text: "shown: " + text
    try:
        assert c.connect("open").ok
        cid, = wait_until(lambda: {x["id"] for x in api.data("applications/open/clients")} - before,
                          T(5), 0.05, "the new client in the list")
        assert cid in {x["id"] for x in st.api("clients", "open")}
        ans = st.api("invoke-client", "open", cid, "showMessage", '["hello"]')
        assert ans == {"client": cid, "status": "result", "value": "shown: hello"}, ans
        # An application method: no handler takes math.sum, so the app's RPC handler does.
        assert st.api("invoke", "open", "math.sum", "[1, 2, 3.5]") == {"sum": 6.5}
        kicked = st.api("kick", "open", cid)
        assert kicked["id"] == cid, kicked
        wait_until(lambda: c.closed, T(10), 0.05, "the kicked client to be disconnected")
        assert cid not in {x["id"] for x in api.data("applications/open/clients")}
    finally:
        c.close()


# ----------------------------------------------------------------------------
# (d) JWT issuer
# ----------------------------------------------------------------------------

def b64url_json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_jwt_issuer_token_accepted_tampered_refused(stack):
    st = stack
    pub = st.jwt("--role", "publisher", "--stream", "cam*", "--app", "jwt", "--sub", "studio-7",
                 "--iss", JWT_ISS, "--aud", JWT_AUD, "--ttl", "600")
    ISSUED.add(pub)
    header, payload, sig = pub.split(".")
    assert b64url_json(header) == {"alg": "HS256", "typ": "JWT"}
    claims = b64url_json(payload)
    assert claims["roles"] == "red5-publisher" and claims["aud"] == JWT_AUD
    assert 590 <= claims["exp"] - time.time() <= 610

    p = ffmpeg(st, "rtmp://%s:%d/jwt/cam1?token=%s" % (HOST, st.srv.port, pub), "ffmpeg-jwt")
    wait_until(lambda: "cam1" in streams(st, "jwt") or p.poll() is not None, T(15), 0.1,
               "the JWT publisher to be live")
    assert p.poll() is None, Procs.log_of(p)[-1500:]

    # A subscriber's token with its payload turned into a publisher's, signature kept.
    sub = st.jwt("--role", "subscriber", "--sub", "viewer-1", "--iss", JWT_ISS, "--aud", JWT_AUD)
    ISSUED.add(sub)
    h, pl, s = sub.split(".")
    forged_claims = dict(b64url_json(pl), roles="red5-publisher")
    forged_pl = base64.urlsafe_b64encode(json.dumps(forged_claims, separators=(",", ":")).encode()).rstrip(b"=")
    forged = "%s.%s.%s" % (h, forged_pl.decode(), s)
    ISSUED.add(forged)
    bad = ffmpeg(st, "rtmp://%s:%d/jwt/cam2?token=%s" % (HOST, st.srv.port, forged), "ffmpeg-jwt-forged")
    assert bad.wait(T(20)) != 0
    assert "Invalid token" in Procs.log_of(bad), Procs.log_of(bad)[-1500:]
    # The genuine subscriber token is valid but may not publish.
    c = rtmp_client.RtmpClient(HOST, st.srv.port, timeout=T(5), name="jwt-sub")
    try:
        assert c.connect("jwt").ok
        sid = c.create_stream()
        c.publish(sid, "cam3?token=" + sub)
        status = c.wait_status_any([START, BADNAME], T(10))
        assert status.code == BADNAME and status.info.get("description") == "Role not allowed.", status
    finally:
        c.close()
    assert streams(st, "jwt") == ["cam1"]


# ----------------------------------------------------------------------------
# (e) RPC handler
# ----------------------------------------------------------------------------

def test_rpc_handler_answers_rtmp_calls(stack):
    st = stack
    c = rtmp_client.RtmpClient(HOST, st.srv.port, timeout=T(5), name="rpc-client")
    try:
        assert c.connect("open?username=carol").ok
        r = c.call("room.join", None, "lobby", timeout=T(10))
        assert r.name == "_result", r
        assert r.args[1] == {"room": "lobby", "user": "carol", "members": 1.0}, r.args
        r = c.call("math.sum", None, 1.0, 2.0, 3.5, timeout=T(10))
        assert r.name == "_result" and r.args[1] == {"sum": 6.5}, r
        r = c.call("no.such.method", None, timeout=T(10))
        assert r.name == "_error", r
        assert r.info["code"] == "NetConnection.Call.Failed", r.info
        assert r.info["description"] == "The business server answered HTTP 404.", r.info
    finally:
        c.close()
    out = st.output("RpcHandler")
    assert "call room.join from " in out and "(carol) in open" in out, out


# ----------------------------------------------------------------------------
# every server: bounded input
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


def test_servers_refuse_bad_input_and_keep_serving(stack):
    st = stack
    deep = b"[" * 2000 + b"]" * 2000   # nesting far past the parsers' cap (32 levels)
    for prog, path in (("RoundTripAuth", "/validateCredentials"), ("RpcHandler", "/rpc")):
        port = st.servers[prog][1]
        assert raw_post(port, path, b"{not json") == 400, prog
        assert raw_post(port, path, deep) == 400, prog
        assert raw_post(port, path, content_length=50 << 20) == 413, prog  # refused unread
    port = st.servers["WebhookReceiver"][1]
    assert raw_post(port, "/hooks", b"{}") == 401                    # unsigned: not even parsed
    assert raw_post(port, "/hooks", content_length=50 << 20) == 413
    ts = str(int(time.time()))
    for body in (b"{not json", b"[" * 1000 + b"]" * 1000):
        sig = "sha256=" + hmac.new(WH_SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        assert raw_post(port, "/hooks", body, headers=(("X-Sluice-Timestamp", ts),
                                                       ("X-Sluice-Signature", sig))) == 400
    # Still serving: a real validation and a real call.
    body = json.dumps({"username": "bob", "password": BOB_PW, "token": "", "type": "subscriber",
                       "streamID": "s"}).encode()
    assert raw_post(st.servers["RoundTripAuth"][1], "/validateCredentials", body) == 200
    body = json.dumps({"app": "open", "session": None, "method": "server.time", "params": [],
                       "username": None}).encode()
    assert raw_post(st.servers["RpcHandler"][1], "/rpc", body) == 200
    for prog in st.servers:
        assert st.servers[prog][0].poll() is None, prog
