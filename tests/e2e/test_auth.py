"""Admission with real clients: Simple Auth, JWT and Round Trip Authentication.

Simple Auth: ffmpeg with credentials on the app URL (Red5's documented
`rtmp://host/live?username=u&password=p/stream` form) or on the stream name,
rtmpdump with connect arguments (`-C S:user -C S:pass`), the exact refusal
(`NetConnection.Connect.Rejected`, "Invalid credentials.") read with the
Python client, and the credentials file edited while the server runs
(plain, sha256 and sha512-crypt entries; bcrypt and yescrypt are covered by
the unit tests).

JWT: tokens made here with PyJWT (Debian's python3-jwt) against a server
holding an HMAC secret and an RSA public key: valid HS256/RS256, expired,
wrong signature, alg none, HS/RS confusion (the RSA public key used as an
HMAC secret, built by hand because PyJWT refuses to), wrong role,
transport and room.

Round Trip: a Python validate server checks the exact body Red5 sends,
answers yes/no/slowly; a slow answer must not hold up another client; a
server that is down gets the configured default; the invalidate call
arrives on disconnect; lazy mode admits and then kicks.

HTTP is disabled in these servers (not needed, and keeps port 5080 free).
"""

import base64
import hashlib
import hmac
import json
import re
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import rtmp_client
from conftest import HOST, T, free_port, wait_until
from rtmp_client import RtmpClient

SECRET = "sluice-e2e-shared-secret-0123456789abcdef"
# Passwords and tokens clients use here: distinctive strings, so that the log check
# (conftest: no secret in any server log, up to debug) cannot match by chance.
ALICE_PW, BOB_PW, WRONG_PW = "alice-pw-5e1f", "bob-pw-hashed-77", "alice-wrong-9c"
RT_PW1, RT_PW2, RT_PW3, RT_TK = "rt-pw1-4a2b", "rt-pw2-8d3c", "rt-pw3-1f0e", "rt-tk-6e9f"
ISSUED = {ALICE_PW, BOB_PW, WRONG_PW, RT_PW1, RT_PW2, RT_PW3, RT_TK, "new-pass", "d-pass"}


def issued(token):
    """Every token made here is a secret the servers must not log."""
    ISSUED.add(token)
    return token


@pytest.fixture(autouse=True)
def _no_secret_in_logs(secrets):
    secrets.live(ISSUED)
START, BADNAME = "NetStream.Publish.Start", "NetStream.Publish.BadName"
PLAY_START, PLAY_FAILED = "NetStream.Play.Start", "NetStream.Play.Failed"
REJECTED = "NetConnection.Connect.Rejected"


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------

def base_config(apps, auth=None):
    return {"http": {"enabled": False}, "auth": auth or {}, "apps": apps}


def connect(port, app, args=(), name="client"):
    """TCP + handshake + connect with extra connect arguments; returns (client, result)."""
    c = RtmpClient(HOST, port, timeout=T(5), name=name)
    try:
        r = c.connect(app, connect_args=tuple(args))
    except BaseException:
        c.close()
        raise
    return c, r


def description(r):
    return r.info.get("description", "")


def try_publish(port, app, stream, args=(), name="publisher"):
    """Connects (must succeed) and publishes; returns (client, the first Start/BadName status)."""
    c, r = connect(port, app, args, name)
    try:
        assert r.ok, "connect to %s refused: %r" % (app, r)
        sid = c.create_stream()
        c.publish(sid, stream)
        st = c.wait_status_any([START, BADNAME], T(10))
    except BaseException:
        c.close()
        raise
    return c, st


def try_play(port, app, stream, args=(), frames=0, name="player"):
    """Connects (must succeed) and plays; returns (client, the first Start/Failed status)."""
    c, r = connect(port, app, args, name)
    try:
        assert r.ok, "connect to %s refused: %r" % (app, r)
        sid = c.create_stream()
        c.play(sid, stream)
        st = c.wait_status_any([PLAY_START, PLAY_FAILED], T(10))
        if frames and st.code == PLAY_START:
            c.wait_video_frames(frames, T(10))
    except BaseException:
        c.close()
        raise
    return c, st


def ffmpeg_push(procs, media_src, url, name="ffmpeg"):
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostdin", "-re", "-stream_loop", "-1",
           "-i", str(media_src), "-c", "copy", "-f", "flv", url]
    return procs.start(cmd, name)


def wait_playable(port, app, stream, args, timeout):
    """Plays app/stream with credentials until video arrives (the publisher is live)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        c = None
        try:
            c, st = try_play(port, app, stream, args, frames=1, name="probe")
            if st.code == PLAY_START:
                return
            last = st
        except (AssertionError, OSError, rtmp_client.RtmpError) as e:
            last = e
        finally:
            if c is not None:
                c.close()
        time.sleep(0.2)  # poll interval before the next attempt
    raise AssertionError("%s/%s not playable within %.1fs: %s" % (app, stream, timeout, last))


def write_atomic(path, text):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


# ----------------------------------------------------------------------------
# Simple Auth
# ----------------------------------------------------------------------------

def sha256_entry(salt, password):
    return "sha256:%s:%s" % (salt, hashlib.sha256((salt + password).encode()).hexdigest())


@pytest.fixture(scope="module")
def simple_srv(module_sluice_factory, tmp_path_factory):
    creds = tmp_path_factory.mktemp("creds") / "simple-auth.credentials"
    creds.write_text("# Red5 format\nalice %s\nbob %s\n" % (ALICE_PW, sha256_entry("NaCl", BOB_PW)))
    srv = module_sluice_factory(config=base_config(
        {"live": {"auth_simple": True}, "open": {}},
        {"simple_file": str(creds)}))
    srv.creds = creds
    return srv


def test_simple_ffmpeg_app_query_and_stream_query(simple_srv, procs, media_src):
    port = simple_srv.port
    # Red5's form: the query on the app (ffmpeg sends it in connect's app and tcUrl).
    ffmpeg_push(procs, media_src, "rtmp://%s:%d/live?username=alice&password=%s/s1" % (HOST, port, ALICE_PW))
    # The query on the stream name instead.
    ffmpeg_push(procs, media_src, "rtmp://%s:%d/live/s2?username=bob&password=%s" % (HOST, port, BOB_PW))
    wait_playable(port, "live", "s1", ("alice", ALICE_PW), T(15))
    wait_playable(port, "live", "s2", ("bob", BOB_PW), T(15))
    # A player without credentials connects but cannot play.
    c, st = try_play(port, "live", "s1")
    c.close()
    assert st.code == PLAY_FAILED and st.info.get("description") == "Missing credentials.", st


def test_simple_wrong_credentials_refused(simple_srv, procs, media_src):
    port = simple_srv.port
    c, r = connect(port, "live", ("alice", "wrong"))
    c.close()
    assert not r.ok and r.code == REJECTED, r
    assert description(r) == "Invalid credentials."
    c, r = connect(port, "live", ("mallory", ALICE_PW))
    c.close()
    assert r.code == REJECTED and description(r) == "Invalid credentials."
    # ffmpeg gives up with an error.
    p = ffmpeg_push(procs, media_src, "rtmp://%s:%d/live?username=alice&password=%s/s9" % (HOST, port, WRONG_PW))
    assert p.wait(T(20)) != 0
    assert "Invalid credentials" in procs.log_of(p)
    # Wrong credentials on the stream name: BadName for that stream.
    c, st = try_publish(port, "live", "s9?username=alice&password=" + WRONG_PW)
    c.close()
    assert st.code == BADNAME and st.info.get("description") == "Invalid credentials.", st
    # Apps without auth_simple are untouched.
    c, st = try_publish(port, "open", "free")
    c.close()
    assert st.code == START


def test_simple_rtmpdump_connect_args(simple_srv, procs, media_src, tmp_path):
    port = simple_srv.port
    ffmpeg_push(procs, media_src, "rtmp://%s:%d/live?username=alice&password=%s/dump" % (HOST, port, ALICE_PW))
    wait_playable(port, "live", "dump", ("alice", ALICE_PW), T(15))
    out = tmp_path / "dump.flv"
    p = procs.start(["rtmpdump", "-r", "rtmp://%s:%d/live/dump" % (HOST, port), "--live",
                     "-C", "S:alice", "-C", "S:" + ALICE_PW, "-o", str(out)], "rtmpdump")
    try:
        wait_until(lambda: (out.exists() and out.stat().st_size > 50000) or p.poll() is not None,
                   T(15), 0.1, "rtmpdump to receive media")
    finally:
        procs.stop(p)
    assert out.stat().st_size > 50000, procs.log_of(p)[-2000:]
    bad = procs.start(["rtmpdump", "-r", "rtmp://%s:%d/live/dump" % (HOST, port), "--live",
                       "-C", "S:alice", "-C", "S:bad", "-o", str(tmp_path / "bad.flv")], "rtmpdump-bad")
    assert bad.wait(T(20)) != 0
    assert "server sent error" in procs.log_of(bad)  # rtmpdump does not print the description
    simple_srv.wait_log(r"simple auth: user alice refused at connect \(wrong password\)", T(5))


def test_simple_file_reloaded_without_restart(sluice_factory, tmp_path):
    creds = tmp_path / "creds.txt"
    creds.write_text("alice %s\n" % ALICE_PW)
    srv = sluice_factory(config=base_config({"live": {"auth_simple": True}},
                                            {"simple_file": str(creds)}))
    c, r = connect(srv.port, "live", ("carol", "new-pass"))
    c.close()
    assert r.code == REJECTED
    sha512_crypt = subprocess.run(["openssl", "passwd", "-6", "-salt", "e2esalt", "d-pass"],
                                  capture_output=True, text=True, check=True).stdout.strip()
    assert sha512_crypt.startswith("$6$")
    write_atomic(creds, "alice changed\ncarol new-pass\ndave %s\n" % sha512_crypt)

    def carol_in():
        cl, res = connect(srv.port, "live", ("carol", "new-pass"))
        cl.close()
        return res.ok

    wait_until(carol_in, T(10), 0.2, "the new user to be accepted")
    srv.wait_log(r"simple auth: .* reloaded \(3 users\)", T(5))
    c, r = connect(srv.port, "live", ("alice", ALICE_PW))
    c.close()
    assert r.code == REJECTED, "the old password still works after the reload"
    c, r = connect(srv.port, "live", ("dave", "d-pass"))  # crypt(3), verified off the loop
    c.close()
    assert r.ok, r
    c, r = connect(srv.port, "live", ("dave", "d-pasS"))
    c.close()
    assert r.code == REJECTED


# ----------------------------------------------------------------------------
# JWT
# ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rsa_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, pem


@pytest.fixture(scope="module")
def jwt_srv(module_sluice_factory, tmp_path_factory, rsa_key):
    pem_path = tmp_path_factory.mktemp("jwt") / "public.pem"
    pem_path.write_bytes(rsa_key[1])
    return module_sluice_factory(config=base_config(
        {"live": {"auth_jwt": True}},
        {"jwt_secret": SECRET, "jwt_public_key_file": str(pem_path), "jwt_leeway": "5s"}))


def claims(**extra):
    c = {"exp": int(time.time()) + 600}
    c.update(extra)
    return c


def hs(payload, key=SECRET, alg="HS256"):
    return issued(jwt.encode(payload, key, algorithm=alg))


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header, payload, key):
    """A JWS signed with HMAC-SHA256 over whatever bytes `key` is (PyJWT refuses PEM keys)."""
    signing_input = "%s.%s" % (b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()))
    sig = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return issued("%s.%s" % (signing_input, b64(sig)))


def jwt_args(token):
    return ("jwt", "jwt", token)  # Red5's client convention: username/password "jwt", then the token


def test_jwt_valid_tokens(jwt_srv, rsa_key, procs, media_src):
    port = jwt_srv.port
    pub = hs(claims(sub="cam-owner", roles="red5-publisher"))
    c, st = try_publish(port, "live", "p1", jwt_args(pub))
    c.close()
    assert st.code == START, st
    rs = issued(jwt.encode({"exp": int(time.time()) + 600, "roles": "red5-publisher"},
                           rsa_key[0], algorithm="RS256"))
    c, st = try_publish(port, "live", "p2", jwt_args(rs))
    c.close()
    assert st.code == START, st
    # ffmpeg with the token in the stream name's query, a subscriber playing it.
    ffmpeg_push(procs, media_src, "rtmp://%s:%d/live/cam1?token=%s" % (HOST, port, pub))
    wait_playable(port, "live", "cam1", jwt_args(hs(claims(roles="red5-subscriber"))), T(15))


@pytest.mark.parametrize("case", ["expired", "bad_signature", "alg_none", "hs_rs_confusion",
                                  "wrong_transport", "wrong_app"])
def test_jwt_refused_at_connect(jwt_srv, rsa_key, case):
    now = int(time.time())
    token, reason = {
        "expired": (hs({"exp": now - 120}), "Token expired."),
        "bad_signature": (hs(claims(), key="another-secret-another-secret-xx"), "Invalid token."),
        "alg_none": (issued(jwt.encode(claims(), None, algorithm="none")), "Invalid token."),
        "hs_rs_confusion": (hand_made({"alg": "HS256", "typ": "JWT"}, claims(), rsa_key[1]),
                            "Invalid token."),
        "wrong_transport": (hs(claims(**{"red5-transport": "RTSP,WHEP"})), "Transport not allowed."),
        "wrong_app": (hs(claims(app="other")), "Application not allowed."),
    }[case]
    c, r = connect(jwt_srv.port, "live", jwt_args(token))
    c.close()
    assert not r.ok and r.code == REJECTED, r
    assert description(r) == reason


def long_rs256(rsa_key, length, **extra):
    """An RS256 token of about `length` characters (a padding claim), as tokens with
    many claims, certificates in x5c, or long room lists get."""
    c = claims(**extra)
    base = len(jwt.encode(c, rsa_key[0], algorithm="RS256"))
    c["pad"] = "x" * max(0, (length - base - 12) * 3 // 4)
    return jwt.encode(c, rsa_key[0], algorithm="RS256")


def publish_with_token(port, form, stream, token):
    """Connect + publish with the token passed one of the four RTMP ways; returns the
    refusal description at connect, or the publish status's code/description."""
    c = RtmpClient(HOST, port, timeout=T(5), name="publisher-" + form)
    try:
        if form == "connect_args":
            r = c.connect("live", connect_args=jwt_args(token))
        elif form == "app_query":  # rtmp://host/live?token=T/stream: the app is "live?token=T"
            r = c.connect("live?token=" + token)
        elif form == "tcurl_query":  # rtmp://host/live?token=T with app "live"
            r = c.connect("live", tc_url="rtmp://%s:%d/live?token=%s" % (HOST, port, token))
        else:
            r = c.connect("live")
        if not r.ok:
            return r.code, description(r)
        sid = c.create_stream()
        c.publish(sid, stream + ("?token=" + token if form == "stream_query" else ""))
        st = c.wait_status_any([START, BADNAME], T(10))
        return st.code, st.info.get("description")
    finally:
        c.close()


TOKEN_FORMS = ["connect_args", "stream_query", "app_query", "tcurl_query"]


@pytest.mark.parametrize("form", TOKEN_FORMS)
def test_jwt_long_rs256_token_every_form(jwt_srv, rsa_key, form):
    """A 2,400-character RS256 token works the same in all four forms (it used to be
    refused on the app's query, whose 512-character name limit covered the query)."""
    token = long_rs256(rsa_key, 2400, roles="red5-publisher")
    assert 2300 < len(token) < 2500
    code, desc = publish_with_token(jwt_srv.port, form, "long-" + form, token)
    assert code == START, (code, desc)


@pytest.mark.parametrize("form", TOKEN_FORMS)
def test_jwt_token_too_long_every_form(jwt_srv, rsa_key, form):
    """Over the verifier's 8,192 characters the answer is "Token too long." in every
    form (it was "Invalid token.", "Invalid stream name." or "Missing token.", and the
    log said the token was malformed)."""
    token = long_rs256(rsa_key, 8600, roles="red5-publisher")
    assert len(token) > 8192
    code, desc = publish_with_token(jwt_srv.port, form, "huge-" + form, token)
    assert code in (REJECTED, BADNAME) and desc == "Token too long.", (code, desc)
    jwt_srv.wait_log(r"jwt: token refused at \w+: token too long \(over 8192 characters\)", T(5))


def test_jwt_query_too_long_refused_clearly(jwt_srv):
    """A query over 16 KB (on the app, tcUrl or the stream name) is refused as such."""
    q = "x=" + "y" * 17000
    c = RtmpClient(HOST, jwt_srv.port, timeout=T(5), name="longquery")
    try:
        r = c.connect("live?" + q)
    finally:
        c.close()
    assert r.code == REJECTED and description(r) == "Query string too long.", r
    c, r = connect(jwt_srv.port, "live")
    try:
        sid = c.create_stream()
        c.publish(sid, "s?" + q)
        st = c.wait_status_any([START, BADNAME], T(10))
    finally:
        c.close()
    assert st.code == BADNAME and st.info.get("description") == "Query string too long.", st


def test_jwt_long_token_with_ffmpeg_and_rtmpdump(jwt_srv, rsa_key, procs, media_src, tmp_path):
    """Real clients with a 2,400-character RS256 token: ffmpeg publishes with the token
    on the stream name given by -rtmp_playpath (its URL field is cut near 1 KB),
    rtmpdump plays with it as a connect argument (Red5's jwt/jwt/token convention)."""
    port = jwt_srv.port
    pub = long_rs256(rsa_key, 2400, roles="red5-publisher")
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostdin", "-re", "-stream_loop",
           "-1", "-i", str(media_src), "-c", "copy", "-f", "flv",
           "-rtmp_playpath", "longcam?token=" + pub, "rtmp://%s:%d/live/longcam" % (HOST, port)]
    procs.start(cmd, "ffmpeg-long-token")
    viewer = long_rs256(rsa_key, 2400, roles="red5-subscriber")
    wait_playable(port, "live", "longcam", jwt_args(viewer), T(15))
    out = tmp_path / "long.flv"
    p = procs.start(["rtmpdump", "-q", "-r", "rtmp://%s:%d/live/longcam" % (HOST, port), "--live",
                     "-C", "S:jwt", "-C", "S:jwt", "-C", "S:" + viewer, "-o", str(out)],
                    "rtmpdump-long-token")
    wait_until(lambda: out.exists() and out.stat().st_size > 50000, T(15),
               message="rtmpdump to record 50 KB with a long token")
    procs.stop(p)


def test_jwt_public_key_only_refuses_hmac(sluice_factory, tmp_path, rsa_key):
    """The textbook confusion: only an RSA key is configured and an HS256 token is
    "signed" with that public key's PEM as the HMAC secret."""
    pem_path = tmp_path / "public.pem"
    pem_path.write_bytes(rsa_key[1])
    srv = sluice_factory(config=base_config({"live": {"auth_jwt": True}},
                                            {"jwt_public_key_file": str(pem_path)}))
    forged = hand_made({"alg": "HS256", "typ": "JWT"}, claims(roles="red5-publisher"), rsa_key[1])
    c, r = connect(srv.port, "live", jwt_args(forged))
    c.close()
    assert r.code == REJECTED and description(r) == "Invalid token.", r
    srv.wait_log(r"HS256 token but no shared secret configured \(algorithm confusion refused\)", T(5))
    rs = issued(jwt.encode({"exp": int(time.time()) + 600}, rsa_key[0], algorithm="RS256"))
    c, st = try_publish(srv.port, "live", "rs", jwt_args(rs))
    c.close()
    assert st.code == START, st


def test_jwt_role_room_stream_rules(jwt_srv):
    port = jwt_srv.port
    sub = hs(claims(roles="red5-subscriber"))
    c, st = try_publish(port, "live", "x1", jwt_args(sub))
    c.close()
    assert st.code == BADNAME and st.info.get("description") == "Role not allowed.", st
    room = hs(claims(**{"red5-room": "room1"}))
    c, st = try_publish(port, "live", "room1/r1", jwt_args(room))
    c.close()
    assert st.code == START, st
    c, st = try_publish(port, "live/room1", "r2", jwt_args(room))
    c.close()
    assert st.code == START, st
    c, st = try_publish(port, "live", "room2/r3", jwt_args(room))
    c.close()
    assert st.code == BADNAME and st.info.get("description") == "Room not allowed.", st
    c, st = try_publish(port, "live", "r4", jwt_args(room))  # app level: not in the room
    c.close()
    assert st.code == BADNAME, st
    cams = hs(claims(stream="cam*", action="publish"))
    c, st = try_publish(port, "live", "cam7", jwt_args(cams))
    c.close()
    assert st.code == START, st
    c, st = try_publish(port, "live", "desk", jwt_args(cams))
    c.close()
    assert st.code == BADNAME and st.info.get("description") == "Stream not allowed.", st
    # A connection without a token is let in but can do nothing.
    c, st = try_play(port, "live", "cam7")
    c.close()
    assert st.code == PLAY_FAILED and st.info.get("description") == "Missing token.", st


# ----------------------------------------------------------------------------
# Round Trip Authentication
# ----------------------------------------------------------------------------

class ValidateServer:
    """The business's validate/invalidate endpoints, answering by username."""

    def __init__(self, slow_s=3.0):
        self.slow_s = slow_s
        self.requests = []  # (path, headers, body)
        self.cv = threading.Condition()
        self.httpd = None

    def start(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as sluice's client reuses connections

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n)
                body = json.loads(raw)
                with outer.cv:
                    outer.requests.append((self.path, dict(self.headers), body))
                    outer.cv.notify_all()
                user = body.get("username")
                if self.path.startswith("/invalidate"):
                    answer = {"result": True}
                elif user == "slow":
                    time.sleep(outer.slow_s)  # a slow business server (own thread)
                    answer = {"result": True}
                elif user == "no":
                    answer = {"result": False}
                elif user == "str":
                    answer = {"result": "true"}
                else:
                    answer = {"result": True, "url": "https://cdn.example/%s?sig=1" % body.get("streamID")}
                data = json.dumps(answer).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # sluice gave up waiting (timeout tests)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer((HOST, 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def url(self, path):
        return "http://%s:%d%s" % (HOST, self.httpd.server_address[1], path)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def bodies(self, path):
        with self.cv:
            return [b for p, _, b in self.requests if p == path]

    def wait(self, path, count, timeout):
        deadline = time.monotonic() + timeout
        with self.cv:
            while len([1 for p, _, _ in self.requests if p == path]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting for %d %s calls: %r" % (count, path, self.requests))
                self.cv.wait(left)
            return [b for p, _, b in self.requests if p == path]


@pytest.fixture
def validator():
    v = ValidateServer().start()
    yield v
    v.stop()


def rt_config(validator, **auth):
    a = {"roundtrip_validate_url": validator.url("/validate") if validator else
         "http://%s:%d/validate" % (HOST, free_port()),
         "roundtrip_invalidate_url": validator.url("/invalidate") if validator else "",
         "roundtrip_timeout": "10s"}
    a.update(auth)
    return base_config({"live": {"auth_roundtrip": True}, "open": {}}, a)


def test_roundtrip_body_answers_and_invalidate(sluice_factory, validator):
    srv = sluice_factory(config=rt_config(validator))
    pub, st = try_publish(srv.port, "live", "stream1", ("yes", RT_PW1))
    assert st.code == START, st
    (path, headers, body), = [r for r in validator.requests if r[0] == "/validate"]
    assert body == {"username": "yes", "password": RT_PW1, "token": "", "type": "publisher",
                    "streamID": "stream1"}
    assert list(body) == ["username", "password", "token", "type", "streamID"]
    assert headers.get("Content-Type") == "application/json"
    assert headers.get("Accept") == "application/json"
    # A subscriber, with a token on the stream name, and "true" as a string.
    ply, st = try_play(srv.port, "live", "stream1?token=" + RT_TK, ("str", RT_PW2))
    assert st.code == PLAY_START, st
    assert validator.bodies("/validate")[-1] == {"username": "str", "password": RT_PW2, "token": RT_TK,
                                                 "type": "subscriber", "streamID": "stream1"}
    # No: refused with Red5's reason.
    c, st = try_publish(srv.port, "live", "stream2", ("no", RT_PW3))
    c.close()
    assert st.code == BADNAME and st.info.get("description") == "Authentication failed.", st
    # Apps without round trip are not asked.
    n = len(validator.requests)
    c, st = try_publish(srv.port, "open", "free", ("no", "x"))
    c.close()
    assert st.code == START and len(validator.requests) == n
    # Invalidate: the same body when the validated client leaves; none for the refused one.
    pub.close()
    inv = validator.wait("/invalidate", 1, T(10))
    assert inv == [{"username": "yes", "password": RT_PW1, "token": "", "type": "publisher",
                    "streamID": "stream1"}]
    ply.close()
    inv = validator.wait("/invalidate", 2, T(10))
    assert inv[1]["username"] == "str" and inv[1]["type"] == "subscriber"
    assert all(b["username"] != "no" for b in validator.bodies("/invalidate"))


def test_roundtrip_invalidate_at_shutdown(sluice_factory, validator):
    """Clients still connected when the server stops leave with it: invalidated too."""
    srv = sluice_factory(config=rt_config(validator))
    c, st = try_publish(srv.port, "live", "stay", ("yes", "pw"))
    try:
        assert st.code == START
        srv.check_clean_exit()  # SIGTERM, exit 0 in time, no sanitizer report
    finally:
        c.close()
    inv = validator.wait("/invalidate", 1, T(5))
    assert inv[0]["streamID"] == "stay" and inv[0]["type"] == "publisher"


def test_roundtrip_slow_server_does_not_stall_others(sluice_factory, validator):
    srv = sluice_factory(config=rt_config(validator))
    slow = RtmpClient(HOST, srv.port, timeout=T(10), name="slow-publisher")
    try:
        assert slow.connect("live", connect_args=("slow", "pw")).ok
        sid = slow.create_stream()
        t0 = time.monotonic()
        slow.publish(sid, "waiting")
        validator.wait("/validate", 1, T(5))  # its validate is in flight (3 s answer)
        # Meanwhile another client publishes on an app without round trip.
        fast, st = try_publish(srv.port, "open", "quick")
        t_fast = time.monotonic() - t0
        fast.close()
        assert st.code == START
        assert not {START, BADNAME} & set(slow.status_codes()), \
            "the slow client was answered before its server did"
        assert t_fast < 2.0, "a publish elsewhere took %.1fs while a validate was pending" % t_fast
        st = slow.wait_status_any([START, BADNAME], T(10))
        assert st.code == START and time.monotonic() - t0 >= 2.5
    finally:
        slow.close()


@pytest.mark.parametrize("default,expect", [("deny", BADNAME), ("allow", START)])
def test_roundtrip_server_down_gets_default(sluice_factory, default, expect):
    srv = sluice_factory(config=rt_config(None, roundtrip_default=default))
    c, st = try_publish(srv.port, "live", "s", ("yes", "pw"))
    c.close()
    assert st.code == expect, st
    if expect == BADNAME:
        assert st.info.get("description") == "Authentication service unavailable."
    srv.wait_log(r"round trip: validate failed \(connection refused\); default: %s" % default, T(5))


def test_roundtrip_timeout_gets_default(sluice_factory, validator):
    srv = sluice_factory(config=rt_config(validator, roundtrip_timeout="1s"))
    t0 = time.monotonic()
    c, st = try_publish(srv.port, "live", "s", ("slow", "pw"))
    c.close()
    assert st.code == BADNAME and st.info.get("description") == "Authentication service unavailable."
    assert 0.8 <= time.monotonic() - t0 < T(3)


def test_roundtrip_lazy_kicks(sluice_factory, validator):
    srv = sluice_factory(config=rt_config(validator, roundtrip_lazy=True))
    c, st = try_publish(srv.port, "live", "lazy1", ("no", "pw"))
    try:
        assert st.code == START, st  # admitted before the answer
        c.wait_closed(T(10))        # then disconnected when it comes
    finally:
        c.close()
    srv.wait_log(r"round trip \(lazy\): disconnecting the client", T(5))
    ok, st = try_publish(srv.port, "live", "lazy2", ("yes", "pw"))
    try:
        assert st.code == START
        validator.wait("/validate", 2, T(5))
        ok.create_stream(T(5))  # still connected after its yes
        assert not ok.is_closed()
    finally:
        ok.close()
    validator.wait("/invalidate", 1, T(10))


# ----------------------------------------------------------------------------
# what the log says about refusals (issue 12)
# ----------------------------------------------------------------------------

def _refusal_warns(srv):
    return [l for l in srv.log_text().splitlines() if " WARN " in l and "refused" in l]


@pytest.mark.parametrize("kind", ["jwt", "simple"])
def test_refusal_logged_once_at_warn_with_reason(sluice_factory, tmp_path, kind):
    if kind == "jwt":
        srv = sluice_factory(config=base_config({"live": {"auth_jwt": True}},
                                                {"jwt_secret": SECRET}))
        args, reason, why = jwt_args(hs({"exp": int(time.time()) - 120})), "Token expired.", \
            "jwt: token refused at connect: "
    else:
        users = tmp_path / "users.txt"
        users.write_text("alice secret-1\n")
        srv = sluice_factory(config=base_config({"live": {"auth_simple": True}},
                                                {"simple_file": str(users)}))
        args, reason, why = ("alice", "wrong"), "Invalid credentials.", \
            "simple auth: user alice refused at connect (wrong password)"
    c, r = connect(srv.port, "live", args)
    c.close()
    assert r.code == REJECTED and description(r) == reason, r
    srv.wait_log(r" WARN .*" + re.escape(why), T(5))
    warns = _refusal_warns(srv)
    assert len(warns) == 1, "expected one WARN line for one refused client:\n%s" % "\n".join(warns)
    assert "wrong" not in warns[0].split("refused")[0] or kind == "jwt"  # no password in the log


def _flv_get(port, query, timeout=None):
    """GET /live/flvlong.flv?query; returns (status, body)."""
    import urllib.error
    import urllib.request
    url = "http://%s:%d/live/flvlong.flv?%s" % (HOST, port, query)
    try:
        with urllib.request.urlopen(url, timeout=timeout or T(5)) as rsp:
            return rsp.status, rsp.read(200).decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def test_jwt_long_tokens_over_http(sluice_factory):
    """A token longer than 2 KB in an HTTP-FLV URL was cut and treated as missing
    ("Missing token."); one over the 8192-character limit is refused as too long."""
    http_port = free_port()
    cfg = base_config({"live": {"auth_jwt": True}}, {"jwt_secret": SECRET})
    cfg["http"] = {"enabled": True, "port": http_port, "max_url_bytes": "64KB"}
    srv = sluice_factory(config=cfg)
    pub, st = try_publish(srv.port, "live", "flvlong",
                          jwt_args(hs(claims(roles="red5-publisher"))))
    assert st.code == START, st
    long_bad = hs(claims(roles="red5-subscriber", pad="x" * 1800),
                  key="another-secret-another-secret-xx")
    assert 2400 < len(long_bad) < 8192
    st, body = _flv_get(http_port, "token=" + long_bad)
    assert st == 403 and body.strip() == "Invalid token.", (st, body)
    srv.wait_log(r" WARN .*jwt: token refused at play: .*signature", T(5))
    huge = hs(claims(roles="red5-subscriber", pad="x" * 9000))
    st, body = _flv_get(http_port, "token=" + huge)
    assert st == 403 and body.strip() == "Token too long.", (st, body)
    srv.wait_log(r" WARN .*jwt: token refused at play: token too long \(over 8192", T(5))
    pub.close()
