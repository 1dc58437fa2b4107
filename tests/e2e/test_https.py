"""HTTPS: the HTTP server's second listener (http.tls_port) with a certificate.

A self-signed certificate (CN localhost, SAN localhost + 127.0.0.1) is made with
the openssl CLI once per module; every client verifies it (curl --cacert, Python's
ssl with it as the only CA, websocket-client, ffprobe -tls_verify 1). One server
for the module has the API token, LL-HLS on app `ll`, a web root with a 1 MB file
and a short header timeout; one ffmpeg publishes ll/s over RTMP.

Covered: curl to /api/v1 (token) and /metrics, ALPN http/1.1; keep-alive and
pipelined requests answered in order with large bodies; Connection: close ending
with close_notify; a wss:// event stream receiving an event; HTTP-FLV (chunked
streaming) and LL-HLS (blocking reload) over HTTPS, read by ffprobe and by hand;
TLS 1.2 accepted; plain HTTP, garbage and a stalled handshake on the TLS port
closed without disturbing an established client; a TLS HTTP-FLV player that
stops reading cut without stalling one that reads (slow); no TLS listener without a
certificate; a missing or invalid certificate failing the start (and
--check-config) with a clear message.
"""

import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import time
import urllib.parse

import pytest
import yaml

from conftest import HOST, T, ffmpeg_publish_cmd, ffprobe_json, make_cert, port_open, wait_until

TOKEN = "e2e-https-token-5443"
HEADER_TIMEOUT_S = 2.0


# ----------------------------------------------------------------------------
# certificates, server, clients
# ----------------------------------------------------------------------------

def ports_of(srv):
    cfg = yaml.safe_load(srv.config_path.read_text())
    return int(cfg["http"]["port"]), int(cfg["http"]["tls_port"])


def client_ctx(cafile, **kw):
    ctx = ssl.create_default_context(cafile=str(cafile))
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


class TlsConn:
    """One verified TLS client connection that reads whole responses (Content-Length)."""

    def __init__(self, port, cafile, host="localhost", ctx=None, timeout=None):
        self.ctx = ctx or client_ctx(cafile)
        raw = socket.create_connection((HOST, port), timeout=timeout or T(10))
        self.sock = self.ctx.wrap_socket(raw, server_hostname=host)
        self.buf = b""
        self.eof = None  # "close_notify" or the exception that ended the stream

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out waiting for the server (have %r)" % self.buf[:200])
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError("timed out waiting for the server (have %r)" % self.buf[:200])
        except (ssl.SSLError, OSError) as e:  # EOF without close_notify, reset
            self.eof = e
            return False
        if not data:
            self.eof = "close_notify"  # Python's ssl returns b"" only after close_notify
            return False
        self.buf += data
        return True

    def read_response(self, timeout=None):
        deadline = time.monotonic() + (timeout or T(10))
        while b"\r\n\r\n" not in self.buf:
            assert self._fill(deadline), "closed before a response head (%r)" % self.buf[:200]
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            assert self._fill(deadline), "closed inside a body"
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def wait_closed(self, timeout):
        deadline = time.monotonic() + timeout
        while self._fill(deadline):
            pass
        return self.eof

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def req(path, extra=()):
    return ("\r\n".join(["GET %s HTTP/1.1" % path, "Host: localhost"] + list(extra))
            + "\r\n\r\n").encode()


def curl(url, cafile, *args):
    p = subprocess.run(["curl", "-sS", "--max-time", str(int(T(20))), "--cacert", str(cafile),
                        "-w", "\n%{http_code} %{http_version} %{ssl_verify_result}"] + list(args)
                       + [url], capture_output=True, timeout=T(30))
    assert p.returncode == 0, "curl %s failed (%d): %s" % (url, p.returncode, p.stderr[-500:])
    body, _, tail = p.stdout.rpartition(b"\n")
    code, version, verify = tail.decode().split()
    return int(code), version, int(verify), body


def raw_closed_by_server(port, payload, timeout):
    """Sends payload on a plain TCP connection to port; True when the server closes it."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    try:
        if payload:
            s.sendall(payload)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data = s.recv(4096)
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
            if not data:
                return True
            # a TLS alert may come first: keep reading until the close
        return False
    finally:
        s.close()


# ----------------------------------------------------------------------------
# the module's server
# ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def web_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("web")
    (root / "index.html").write_text("<h1>console</h1>\n")
    (root / "big.bin").write_bytes(os.urandom(1000 * 1000))
    return root


@pytest.fixture(scope="module")
def tls_env(module_sluice_factory, module_procs, media_src, certs, web_root):
    cert, key = certs
    srv = module_sluice_factory(config={
        "api": {"access_token": TOKEN, "auth_fail_limit": 1000},
        "http": {"tls_cert": str(cert), "tls_key": str(key), "web_root": str(web_root),
                 "header_timeout": "%gs" % HEADER_TIMEOUT_S},
        "apps": {"live": {}, "ll": {"hls_low_latency": True, "hls_segment": "2s",
                                    "hls_part": "333ms"}},
    })
    srv.http, srv.https = ports_of(srv)
    srv.cafile = cert
    wait_until(lambda: port_open(srv.https), T(10), message="https port %d" % srv.https)
    srv.wait_log(r"https listening on [0-9.]+:%d" % srv.https, T(5))
    module_procs.start(ffmpeg_publish_cmd(media_src, srv.url("ll", "s")), "publisher")
    return srv


def https_get(srv, path, timeout=None, conn=None):
    c = conn or http.client.HTTPSConnection("localhost", srv.https, timeout=timeout or T(20),
                                            context=client_ctx(srv.cafile))
    t0 = time.monotonic()
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body, time.monotonic() - t0
    finally:
        if conn is None:
            c.close()


def wait_live(srv, app, stream):
    def live():
        st, _, body, _ = https_get(srv, "/api/v1/applications/%s/streams?accessToken=%s"
                                   % (app, TOKEN))
        return st == 200 and stream in json.dumps(json.loads(body)["data"])

    wait_until(live, T(20), 0.2, "%s/%s live" % (app, stream))


# ----------------------------------------------------------------------------
# tests
# ----------------------------------------------------------------------------

def test_curl_api_and_metrics(tls_env):
    for host in ("127.0.0.1", "localhost"):
        code, version, verify, body = curl("https://%s:%d/api/v1/server?accessToken=%s"
                                           % (host, tls_env.https, TOKEN), tls_env.cafile)
        assert (code, version, verify) == (200, "1.1", 0), body[:300]
        j = json.loads(body)
        assert j["status"] == "success" and j["code"] == 200, j
        assert j["data"]["https_port"] == tls_env.https, j  # where a console finds HTTPS
    code, _, _, body = curl("https://127.0.0.1:%d/api/v1/server" % tls_env.https, tls_env.cafile)
    assert code == 401, body[:300]  # the same API rules as on plain HTTP
    code, _, _, body = curl("https://127.0.0.1:%d/metrics" % tls_env.https, tls_env.cafile)
    assert code == 200 and b"# TYPE" in body, body[:300]
    # plain HTTP still served on its own port
    code, _, _, body = curl("http://127.0.0.1:%d/healthz" % tls_env.http, tls_env.cafile)
    assert (code, body.strip()) == (200, b"ok"), body
    tls_env.wait_log(r"tls: TLSv1\.3 ", T(5))


def test_keepalive_and_pipelining_in_order(tls_env, web_root):
    big = (web_root / "big.bin").read_bytes()
    c = TlsConn(tls_env.https, tls_env.cafile)
    try:
        assert c.sock.selected_alpn_protocol() is None  # none offered, none forced
        # keep-alive: one request at a time
        for _ in range(3):
            c.send(req("/healthz"))
            assert c.read_response()[::2] == (200, b"ok\n")
        # pipelined in one write: answered in order, large bodies between small ones
        paths = ["/big.bin", "/healthz", "/api/v1/server?accessToken=" + TOKEN, "/nosuch",
                 "/big.bin", "/big.bin", "/healthz"]
        c.send(b"".join(req(p) for p in paths))
        got = [c.read_response(T(20)) for _ in paths]
        assert [g[0] for g in got] == [200, 200, 200, 404, 200, 200, 200]
        assert got[0][2] == big and got[4][2] == big and got[5][2] == big
        assert got[1][2] == b"ok\n" and got[6][2] == b"ok\n"
        assert json.loads(got[2][2])["status"] == "success"
        # Connection: close: the answer, then close_notify (a clean TLS end)
        c.send(req("/healthz", ["Connection: close"]))
        status, headers, body = c.read_response()
        assert (status, body, headers.get("connection")) == (200, b"ok\n", "close")
        assert c.wait_closed(T(5)) == "close_notify"
    finally:
        c.close()


def test_alpn_and_tls12(tls_env):
    ctx = client_ctx(tls_env.cafile)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    c = TlsConn(tls_env.https, tls_env.cafile, ctx=ctx)
    try:
        assert c.sock.selected_alpn_protocol() == "http/1.1"
        c.send(req("/healthz"))
        assert c.read_response()[::2] == (200, b"ok\n")
    finally:
        c.close()
    ctx = client_ctx(tls_env.cafile, maximum_version=ssl.TLSVersion.TLSv1_2)
    c = TlsConn(tls_env.https, tls_env.cafile, host="127.0.0.1", ctx=ctx)
    try:
        assert c.sock.version() == "TLSv1.2"
        c.send(req("/healthz"))
        assert c.read_response()[::2] == (200, b"ok\n")
    finally:
        c.close()


def test_wss_event_stream(tls_env, procs, media_src):
    import websocket  # python3-websocket

    url = "wss://localhost:%d/api/v1/events?%s" % (tls_env.https,
                                                    urllib.parse.urlencode({"accessToken": TOKEN}))
    ws = websocket.create_connection(url, timeout=T(10),
                                     sslopt={"ca_certs": str(tls_env.cafile)})
    try:
        pub = procs.start(ffmpeg_publish_cmd(media_src, tls_env.url("live", "wss1")), "pub-wss")
        deadline = time.monotonic() + T(20)
        seen = []
        while True:
            assert time.monotonic() < deadline, "no publish event over wss (have %s)" % seen
            ws.settimeout(max(0.1, deadline - time.monotonic()))
            msg = ws.recv()
            assert msg, "the event stream closed"
            e = json.loads(msg)
            seen.append((e.get("event"), e.get("stream")))
            if e.get("event") == "publish" and e.get("stream") == "wss1":
                break
        procs.stop(pub)
        ws.settimeout(T(10))
        while True:  # the unpublish arrives too, on the same connection
            e = json.loads(ws.recv())
            if e.get("event") == "unpublish" and e.get("stream") == "wss1":
                break
    finally:
        ws.close()


def test_httpflv_over_https(tls_env, tmp_path):
    wait_live(tls_env, "ll", "s")
    url = "https://localhost:%d/ll/s.flv" % tls_env.https
    data = ffprobe_json(url, ["-tls_verify", "1", "-ca_file", str(tls_env.cafile),
                              "-show_streams"], timeout=T(60))
    streams = {s["codec_type"]: s for s in data["streams"]}
    assert streams["video"]["codec_name"] == "h264"
    assert (streams["video"]["width"], streams["video"]["height"]) == (640, 360)
    assert streams["audio"]["codec_name"] == "aac"
    # by hand: a chunked streaming response that keeps coming
    c = TlsConn(tls_env.https, tls_env.cafile)
    try:
        c.send(req("/ll/s.flv"))
        deadline = time.monotonic() + T(10)
        while b"\r\n\r\n" not in c.buf:
            assert c._fill(deadline)
        head = c.buf.split(b"\r\n\r\n", 1)[0].decode().lower()
        assert head.startswith("http/1.1 200") and "chunked" in head and "video/x-flv" in head
        while len(c.buf) < 300 * 1024:  # a few seconds of media
            assert c._fill(deadline), "the stream ended early"
        assert b"FLV\x01" in c.buf[:200]
    finally:
        c.close()


def test_ll_hls_over_https(tls_env):
    conn = http.client.HTTPSConnection("localhost", tls_env.https, timeout=T(30),
                                       context=client_ctx(tls_env.cafile))
    try:
        holder = {}

        def ready():
            st, _, body, _ = https_get(tls_env, "/ll/s.m3u8", conn=conn)
            if st != 200:
                return False
            uri = [l for l in body.decode().splitlines() if l and not l.startswith("#")][0]
            holder["media"] = urllib.parse.urljoin("/ll/s.m3u8", uri)
            st, _, body, _ = https_get(tls_env, holder["media"], conn=conn)
            return st == 200 and "#EXT-X-PART:" in body.decode() and body.decode().count(
                "#EXTINF:") >= 1 and body.decode()

        text = wait_until(ready, T(40), 0.25, "LL-HLS playlist with a segment over https")
        media = holder["media"]
        seq = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))
        msn = seq + text.count("#EXTINF:")
        # a blocking reload for the next segment, on the same keep-alive connection
        st, _, body, took = https_get(tls_env, media + "&_HLS_msn=%d" % msn, conn=conn)
        assert st == 200, body[:200]
        assert took < T(10)
        assert int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", body.decode()).group(1)) \
            + body.decode().count("#EXTINF:") > msn
    finally:
        conn.close()
    # ffprobe follows the playlist, parts and segments over https
    url = "https://localhost:%d/ll/s.m3u8" % tls_env.https
    data = ffprobe_json(url, ["-tls_verify", "1", "-ca_file", str(tls_env.cafile),
                              "-show_streams"], timeout=T(60))
    kinds = {s["codec_type"]: s["codec_name"] for s in data["streams"]}
    assert kinds.get("video") == "h264" and kinds.get("audio") == "aac", kinds


def test_plaintext_and_garbage_do_not_harm_others(tls_env):
    good = TlsConn(tls_env.https, tls_env.cafile)
    try:
        good.send(req("/healthz"))
        assert good.read_response()[::2] == (200, b"ok\n")
        # plain HTTP on the TLS port: one 400 in clear saying so, then the close
        code, _, _, body = curl("http://127.0.0.1:%d/healthz" % tls_env.https, tls_env.cafile)
        assert code == 400 and b"use https://" in body, (code, body[:300])
        assert raw_closed_by_server(tls_env.https, req("/healthz"), T(5))
        # random bytes
        assert raw_closed_by_server(tls_env.https, os.urandom(2000), T(5))
        # a TLS record header promising a ClientHello, then nonsense
        assert raw_closed_by_server(tls_env.https, b"\x16\x03\x01\x00\x10" + b"\xff" * 16, T(5))
        tls_env.wait_log(r"closing: tls handshake failed: http request \(answered 400", T(5))
        # the established client is untouched
        good.send(req("/healthz"))
        assert good.read_response()[::2] == (200, b"ok\n")
        # and new ones are served
        code, _, _, body = curl("https://127.0.0.1:%d/healthz" % tls_env.https, tls_env.cafile)
        assert (code, body.strip()) == (200, b"ok")
    finally:
        good.close()


def test_stalled_handshake_is_closed(tls_env):
    # nothing at all, and half a ClientHello: both closed after the header timeout
    t0 = time.monotonic()
    assert raw_closed_by_server(tls_env.https, b"", T(HEADER_TIMEOUT_S + 5))
    assert raw_closed_by_server(tls_env.https, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                                T(HEADER_TIMEOUT_S + 5))
    assert time.monotonic() - t0 >= HEADER_TIMEOUT_S * 2 * 0.9
    tls_env.wait_log(r"closing: tls handshake not complete in time", T(5))


def test_no_tls_listener_without_certificate(sluice_factory):
    srv = sluice_factory(config={"api": {"access_token": TOKEN}})
    http_port, tls_port = ports_of(srv)
    wait_until(lambda: port_open(http_port), T(10), message="http port")
    assert not port_open(tls_port)
    assert "https listening" not in srv.log_text()


def run_sluice(srv, args=()):
    p = subprocess.run(srv.cmdline() + list(args), env=srv.env, cwd=str(srv.workdir),
                       capture_output=True, text=True, timeout=T(30))
    return p.returncode, p.stdout + p.stderr


def test_bad_certificate_fails_startup(sluice_factory, certs, tmp_path):
    cert, key = certs
    other_cert, other_key = make_cert(tmp_path, "other")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cases = [
        ({"tls_cert": str(tmp_path / "missing.crt"), "tls_key": str(key)},
         r"cannot read the certificate file .*missing\.crt: No such file"),
        ({"tls_cert": str(cert), "tls_key": str(tmp_path / "missing.key")},
         r"cannot read the private key file .*missing\.key"),
        ({"tls_cert": str(garbage), "tls_key": str(key)},
         r"cannot load the certificate \(chain\) from .*garbage\.pem"),
        ({"tls_cert": str(cert), "tls_key": str(other_key)},
         r"the private key in .*other\.key does not match the certificate"),
        ({"tls_cert": str(cert)}, r"both a certificate file and a key file are needed"),
    ]
    for i, (http_cfg, pattern) in enumerate(cases):
        srv = sluice_factory(name="bad%d" % i, start=False, config={"http": http_cfg})
        rc, out = run_sluice(srv, ["--check-config"])
        assert rc == 1 and re.search(pattern, out), (http_cfg, rc, out)
        rc, out = run_sluice(srv)
        assert rc == 1 and re.search(pattern, out), (http_cfg, rc, out)
        assert "listening" not in out, out
    # and a good one passes --check-config
    srv = sluice_factory(name="good", start=False,
                         config={"http": {"tls_cert": str(other_cert), "tls_key": str(other_key)}})
    rc, out = run_sluice(srv, ["--check-config"])
    assert rc == 0 and "configuration OK" in out, out


@pytest.mark.slow  # ~30 s: the socket buffers fill at the stream's bitrate first
@pytest.mark.exclusive
def test_slow_tls_reader_is_cut_and_does_not_stall_others(sluice_factory, procs, media_src,
                                                          certs):
    import threading

    cert, key = certs
    srv = sluice_factory(config={
        "api": {"access_token": TOKEN},
        "media": {"queue_max_ms": "1s", "slow_disconnect": "2s"},
        "http": {"tls_cert": str(cert), "tls_key": str(key), "stream_max_pending_bytes": "64KB"}})
    srv.http, srv.https = ports_of(srv)
    srv.cafile = cert
    wait_until(lambda: port_open(srv.https), T(10), message="https port")
    procs.start(ffmpeg_publish_cmd(media_src, srv.url("live", "s")), "publisher")
    wait_live(srv, "live", "s")
    # a player that asks and never reads, with a tiny receive buffer
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(T(10))
    raw.connect((HOST, srv.https))
    slow = client_ctx(cert).wrap_socket(raw, server_hostname="localhost")
    slow.sendall(req("/live/s.flv"))
    # and one that reads all the time
    fast = TlsConn(srv.https, cert)
    fast.send(req("/live/s.flv"))
    received = [0]
    stop = threading.Event()

    def pump():
        while not stop.is_set():
            try:
                fast.sock.settimeout(0.2)
                data = fast.sock.recv(65536)
            except socket.timeout:
                continue
            except (ssl.SSLError, OSError):
                return
            if not data:
                return
            received[0] += len(data)

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    try:
        srv.wait_log(r"\[http-flv \w+ live/s\] subscriber too slow", T(40))
        n = received[0]
        wait_until(lambda: received[0] > n + 100 * 1024, T(10), 0.05, "more media for the reader")
        assert t.is_alive()
    finally:
        stop.set()
        t.join(5)
        fast.close()
        slow.close()
