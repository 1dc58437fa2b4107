"""RTMPS: RTMP over TLS on the RTMP server's second listener (rtmp.tls_port).

A self-signed certificate (CN localhost, SAN localhost + 127.0.0.1) is made with
the openssl CLI once per module. One server for the module has RTMPS on with its
own rtmp.tls_cert/tls_key, a known API token and a 2 s handshake timeout; one
ffmpeg publishes live/s1 to it over rtmps:// (Debian's ffmpeg: gnutls, no
verification by default). Python players wrap their socket in TLS (verifying the
certificate) and otherwise speak the RTMP of rtmp_client.

Covered: ffmpeg publishing over RTMPS; ffprobe reading the stream over rtmps://
and rtmp:// alike; a plain RTMP player and an RTMPS player receiving the same
frames byte for byte; rtmpdump over RTMPS writing a valid FLV (see the note on
TLS 1.3 below); the API listing RTMPS sessions with connection_protocol "rtmps" (and /metrics
counting them under protocol="rtmps");
a kicked RTMPS player ending with close_notify (a clean TLS EOF); a plaintext
RTMP handshake, garbage, a silent client and a client that completes TLS but
never starts RTMP on the TLS port all closed without disturbing an established
RTMPS player; a stuck RTMPS player detected and dropped while another keeps its
frame rate; RTMPS off without a certificate and with rtmp.tls_port 0, on with
HTTPS's certificate alone; a bad certificate failing the start and
--check-config with a clear message.
"""

import os
import re
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest
import yaml

import rtmp_client
from api_helpers import Api, api_config
from conftest import (HOST, T, ffmpeg_publish_cmd, ffprobe_streams, make_cert, port_open,
                      tcp_socket, tcp_state, wait_stream_live, wait_until)

HANDSHAKE_TIMEOUT_S = 2.0


# ----------------------------------------------------------------------------
# certificates, ports, TLS players
# ----------------------------------------------------------------------------

def tls_port_of(srv):
    """rtmp.tls_port as the conftest factory picked it (read from the config file)."""
    cfg = yaml.safe_load(srv.config_path.read_text())
    return int(cfg["rtmp"]["tls_port"])


def rtmps_url(srv, app="live", stream="s1"):
    return "rtmps://%s:%d/%s/%s" % (HOST, tls_port_of(srv), app, stream)


class _SerialTls:
    """One SSLSocket shared by rtmp_client's reader thread and its writers. OpenSSL's SSL
    object must not be used by two threads at once (CPython does not lock it), and TLS 1.3
    makes reads write too (session tickets, key updates): a read racing a write once ended
    a connection as EOF in CI. Every SSL call holds one lock; a read waits for data with
    select() outside it, so a blocked reader never holds up a writer."""

    def __init__(self, s):
        self._s = s
        self._lock = threading.Lock()
        self._timeout = s.gettimeout()

    def settimeout(self, t):
        self._timeout = t

    def gettimeout(self):
        return self._timeout

    def recv(self, n):
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while True:
            with self._lock:
                if self._s.pending():
                    return self._s.recv(n)
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                ready = select.select([self._s], [], [], left)[0]
            except ValueError as e:  # closed by another thread: as a plain socket would say
                raise OSError("socket closed") from e
            if not ready:
                raise socket.timeout("timed out")
            with self._lock:
                self._s.settimeout(0.0)
                try:
                    return self._s.recv(n)
                except ssl.SSLWantReadError:
                    continue  # part of a record: wait for the rest
                finally:
                    self._s.settimeout(self._timeout)

    def sendall(self, data):
        with self._lock:
            self._s.settimeout(self._timeout)
            return self._s.sendall(data)

    def __getattr__(self, name):
        return getattr(self._s, name)


class TlsRtmpClient(rtmp_client.RtmpClient):
    """rtmp_client's RTMP over a verified TLS connection: the TCP socket is wrapped
    right after connecting, everything above is unchanged. A close_notify from the
    server reads as a clean EOF (close_reason "EOF", error None); a TCP close
    without it raises SSLEOFError in the reader (error set)."""

    def __init__(self, host, port, cafile, **kw):
        super().__init__(host, port, **kw)
        self.cafile = cafile
        self.tls_version = None

    def open(self):
        super().open()
        ctx = ssl.create_default_context(cafile=str(self.cafile))
        self.sock = _SerialTls(ctx.wrap_socket(self.sock, server_hostname="localhost"))
        self.tls_version = self.sock.version()
        return self


def open_tls_player(port, cafile, app="live", stream="s1", timeout=None, name="tls-player",
                    **kw):
    """Connects over TLS and plays; returns the client (Play.Start seen)."""
    timeout = timeout or T(5)
    c = TlsRtmpClient(HOST, port, cafile, timeout=timeout, name=name, **kw)
    try:
        r = c.connect(app, tc_url="rtmps://%s:%d/%s" % (HOST, port, app))
        assert r.ok, "connect over RTMPS failed: %r" % (r,)
        sid = c.create_stream()
        c.play(sid, stream)
        c.wait_status("NetStream.Play.Start", timeout)
    except BaseException:
        c.close()
        raise
    return c


def frames_in_window(c, t0, t1):
    with c._cv:
        return sum(1 for m in c.media if m.is_frame and t0 <= m.arrival < t1)


def run_sluice(srv, args=()):
    p = subprocess.run(srv.cmdline() + list(args), env=srv.env, cwd=str(srv.workdir),
                       capture_output=True, text=True, timeout=T(30))
    return p.returncode, p.stdout + p.stderr


# ----------------------------------------------------------------------------
# the module's server
# ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("certs"))


class Env:
    def __init__(self, srv, cert, publisher):
        self.srv = srv
        self.cert = cert
        self.tls_port = tls_port_of(srv)
        self.api = Api(srv)
        self.publisher = publisher


@pytest.fixture(scope="module")
def live(module_sluice_factory, module_procs, media_src, certs):
    cert, key = certs
    srv = module_sluice_factory(config=api_config({
        "rtmp": {"tls_cert": str(cert), "tls_key": str(key),
                 "handshake_timeout": "%gs" % HANDSHAKE_TIMEOUT_S}}))
    tls_port = tls_port_of(srv)
    wait_until(lambda: port_open(tls_port), T(10), message="the RTMPS port %d" % tls_port)
    assert re.search(r"rtmps listening on 0\.0\.0\.0:%d" % tls_port, srv.log_text())
    publisher = module_procs.start(ffmpeg_publish_cmd(media_src, rtmps_url(srv)), "ffmpeg-rtmps")
    # Played back over plain RTMP: what went in over TLS is a live stream for everyone.
    wait_stream_live(srv.port, "live", "s1", T(20))
    return Env(srv, cert, publisher)


# ----------------------------------------------------------------------------
# publish and play
# ----------------------------------------------------------------------------

def subscribers(live):
    r = live.api.get("applications/live/streams/s1/subscribers")
    return r.data if r.status == 200 else []


def my_subscriber(live, c):
    """The API's ClientStatistics of player c (matched by its local port)."""
    port = c.sock.getsockname()[1]
    found = wait_until(lambda: [s for s in subscribers(live) if s["remote_port"] == port],
                       T(5), message="player %s in the API" % c.name)
    return found[0]


def test_api_lists_rtmps_publisher_and_player(live):
    info = live.api.data("server")
    assert info["rtmps_port"] == live.tls_port and info["rtmp_port"] == live.srv.port, info
    pub = live.api.data("applications/live/streams/s1")["publisher"]
    assert pub["protocol"] == "rtmps", pub
    stats = live.api.data("applications/live/clients/" + pub["id"])
    assert stats["connection_protocol"] == "rtmps" and stats["role"] == "publisher", stats
    assert stats["bytes_in"] > stats["bytes_out"] and stats["messages_read"] > 0, stats
    c = open_tls_player(live.tls_port, live.cert, name="api-player")
    try:
        assert c.tls_version in ("TLSv1.2", "TLSv1.3"), c.tls_version
        c.wait_video_frames(5, T(10))
        sub = my_subscriber(live, c)
        assert sub["connection_protocol"] == "rtmps" and sub["role"] == "subscriber", sub
        assert sub["stream"] == "s1" and sub["messages_written"] > 0, sub
        metrics = live.api.get("/metrics").body.decode()
        m = re.search(r'^sluice_connections\{protocol="rtmps"\} (\d+)$', metrics, re.M)
        assert m and int(m.group(1)) >= 2, metrics  # the publisher and this player
    finally:
        c.close()


def test_ffprobe_reads_rtmps_and_rtmp(live):
    for url in (rtmps_url(live.srv), live.srv.url("live", "s1")):
        streams = ffprobe_streams(url, timeout=T(30))
        codecs = sorted(s["codec_name"] for s in streams)
        assert codecs == ["aac", "h264"], (url, streams)
        video = [s for s in streams if s["codec_type"] == "video"][0]
        assert (video["width"], video["height"]) == (640, 360), (url, video)


def test_plain_and_tls_players_get_the_same_frames(live):
    plain = tls = None
    try:
        plain, _ = rtmp_client.open_player(HOST, live.srv.port, "live", "s1", timeout=T(5),
                                           keep_payload=True, name="plain")
        tls = open_tls_player(live.tls_port, live.cert, keep_payload=True, name="tls")
        for c in (plain, tls):
            c.wait_video_frames(100, T(15))
            assert c.video_frames()[0].keyframe, "%s did not start on a keyframe" % c.name
        a = [m.data for m in plain.video_frames()]
        b = [m.data for m in tls.video_frames()]
        # They may have joined at different GOPs: align on the first frame they share,
        # then every following frame must be the same bytes.
        start = next((i for i, d in enumerate(b) if d in a), None)
        assert start is not None, "no frame in common between the RTMP and RTMPS players"
        j = a.index(b[start])
        pairs = list(zip(a[j:], b[start:]))
        assert len(pairs) >= 50, "only %d frames in common" % len(pairs)
        bad = [k for k, (x, y) in enumerate(pairs) if x != y]
        assert not bad, "frames differ between RTMP and RTMPS at %s" % bad[:5]
        assert tls.audio_frames(), "the RTMPS player got no audio"
        assert not tls.closed and not plain.closed, (tls.summary(), plain.summary())
    finally:
        for c in (plain, tls):
            if c is not None:
                c.close()


# Debian's rtmpdump (librtmp with gnutls) takes the value of gnutls_record_recv() as
# a byte count, and that is a negative "try again" code when a record holds only a
# TLS 1.3 NewSessionTicket. The RTMPS listener therefore sends no tickets
# (sl_tls_ctx_no_tickets); rtmpdump is run both with its defaults (TLS 1.3) and with a
# GnuTLS override file that disables TLS 1.3 (TLS 1.2 coverage).
GNUTLS_NO_TLS13 = "[overrides]\ndisabled-version = tls1.3\n"


def rtmpdump(procs, url, out, env=None, min_bytes=300000, timeout=None):
    """rtmpdump --live into out until it holds min_bytes (about 3 s of the test media),
    then SIGINT (rtmpdump closes the file properly). Returns rtmpdump's log text."""
    if shutil.which("rtmpdump") is None:
        pytest.skip("rtmpdump not installed")
    p = procs.start(["rtmpdump", "-r", url, "--live", "-o", str(out)], "rtmpdump",
                    env=dict(os.environ, **(env or {})))
    try:
        wait_until(lambda: (out.exists() and out.stat().st_size >= min_bytes) or
                   p.poll() is not None, timeout or T(20), 0.1, "rtmpdump to write %d bytes"
                   % min_bytes)
    finally:
        procs.stop(p)
    return procs.log_of(p)


def test_rtmpdump_receives_flv_over_rtmps(live, procs, tmp_path):
    prio = tmp_path / "gnutls-no-tls13.cfg"
    prio.write_text(GNUTLS_NO_TLS13)
    out = tmp_path / "dump.flv"
    log = rtmpdump(procs, rtmps_url(live.srv), out,
                   env={"GNUTLS_SYSTEM_PRIORITY_FILE": str(prio)})
    assert out.exists() and out.stat().st_size >= 300000, log[-2000:]
    streams = ffprobe_streams(out)
    assert sorted(s["codec_name"] for s in streams) == ["aac", "h264"], streams


def test_rtmpdump_with_tls13_defaults(live, procs, tmp_path):
    out = tmp_path / "dump13.flv"
    log = rtmpdump(procs, rtmps_url(live.srv), out, timeout=T(5))
    assert out.exists() and out.stat().st_size >= 300000, log[-2000:]


def test_kicked_rtmps_player_gets_close_notify(live):
    c = open_tls_player(live.tls_port, live.cert, name="kicked")
    try:
        c.wait_video_frames(5, T(10))
        mine = my_subscriber(live, c)
        r = live.api.delete("applications/live/clients/" + mine["id"])
        assert r.status == 200, r
        c.wait_closed(T(10))
        # close_notify, then FIN: Python's ssl reads a clean EOF. A FIN alone would
        # raise SSLEOFError ("EOF occurred in violation of protocol") in the reader.
        assert c.close_reason == "EOF" and c.error is None, (c.close_reason, c.error)
    finally:
        c.close()


# ----------------------------------------------------------------------------
# what is not TLS on the TLS port
# ----------------------------------------------------------------------------

def raw_conn(port):
    s = socket.create_connection((HOST, port), timeout=T(5))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def wait_eof(sock, timeout):
    """Reads and drops until EOF or reset; True if that came within timeout."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(min(left, 0.5))
        try:
            b = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return True
        if not b:
            return True


def test_plain_rtmp_and_garbage_on_tls_port_are_closed(live):
    witness = open_tls_player(live.tls_port, live.cert, name="witness")
    try:
        witness.wait_video_frames(10, T(10))
        c1 = b"\x03" + bytes(8) + rtmp_client.random_bytes(1528, 7)
        garbage = rtmp_client.random_bytes(4096, 8)
        http = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
        for name, data in (("plain RTMP C0C1", c1), ("garbage", garbage), ("HTTP", http)):
            s = raw_conn(live.tls_port)
            try:
                s.sendall(data)
                t0 = time.monotonic()
                assert wait_eof(s, T(3)), "the server kept a connection that sent %s" % name
                assert time.monotonic() - t0 < HANDSHAKE_TIMEOUT_S, \
                    "%s was only closed by the handshake timeout" % name
            finally:
                s.close()
        # And rtmp_client's own plaintext handshake fails rather than hangs.
        plain = rtmp_client.RtmpClient(HOST, live.tls_port, timeout=T(3), name="plain-on-tls")
        try:
            with pytest.raises((rtmp_client.RtmpError, OSError)):
                plain.open().handshake()
        finally:
            plain.close()
        live.srv.wait_log(r"\[rtmps \w+ -\] closing: tls handshake failed", T(5))
        n = len(witness.video_frames())
        witness.wait_video_frames(n + 25, T(10))
        assert not witness.closed, witness.summary()
    finally:
        witness.close()
    assert live.publisher.poll() is None, "the RTMPS publisher died"


def test_stalled_tls_and_rtmp_handshakes_time_out(live):
    """handshake_timeout (2 s here) runs from accept: it covers a client that sends
    nothing and one that completes TLS but never starts the RTMP handshake."""
    silent = raw_conn(live.tls_port)
    ctx = ssl.create_default_context(cafile=str(live.cert))
    tls_only = ctx.wrap_socket(raw_conn(live.tls_port), server_hostname="localhost")
    t0 = time.monotonic()
    try:
        for s in (silent, tls_only):
            assert wait_eof(s, HANDSHAKE_TIMEOUT_S + T(3)), "a stalled handshake was not closed"
            elapsed = time.monotonic() - t0
            assert elapsed >= HANDSHAKE_TIMEOUT_S - 0.5, "closed after %.2f s" % elapsed
    finally:
        silent.close()
        tls_only.close()
    live.srv.wait_log(r"closing: tls handshake timeout", T(3))


# ----------------------------------------------------------------------------
# a stuck RTMPS player
# ----------------------------------------------------------------------------

QUEUE_MAX_S = 3
SLOW_DISCONNECT_S = 3


@pytest.mark.exclusive
def test_stuck_rtmps_player_is_dropped_without_slowing_others(sluice_factory, procs, media_src,
                                                              certs):
    """An RTMPS player stops reading. Another RTMPS player and a plain one keep 25 fps,
    and the server gives up on the stuck one within the configured bounds: the stall
    check (bytes handed to the socket minus bytes still queued) must see through TLS."""
    cert, key = certs
    srv = sluice_factory(config={
        "rtmp": {"tls_cert": str(cert), "tls_key": str(key)},
        "media": {"queue_max_bytes": "2MB", "queue_max_ms": "%ds" % QUEUE_MAX_S,
                  "slow_disconnect": "%ds" % SLOW_DISCONNECT_S}})
    tls_port = tls_port_of(srv)
    publisher = procs.start(ffmpeg_publish_cmd(media_src, srv.url("live", "s1")), "ffmpeg")
    wait_stream_live(srv.port, "live", "s1", T(15))
    stuck = None
    healthy = []
    try:
        stuck = open_tls_player(tls_port, cert, rcvbuf=4096, name="stuck")
        stuck.pause_reading()
        t_pause = time.monotonic()
        stuck_port = stuck.sock.getsockname()[1]
        healthy.append(open_tls_player(tls_port, cert, name="healthy-tls"))
        c, _ = rtmp_client.open_player(HOST, srv.port, "live", "s1", timeout=T(5),
                                       name="healthy-plain")
        healthy.append(c)
        for c in healthy:
            c.wait_video_frames(60, T(10))
        window = 6.0
        t0 = time.monotonic()
        t1 = t0 + window
        for c in healthy:
            c.wait_for(lambda c=c: any(m.arrival >= t1 for m in c.media if m.is_frame),
                       window + T(5), "frames after the window")
        for c in healthy:
            n = frames_in_window(c, t0, t1)
            assert n >= 0.85 * window * 25, "%s got %d frames in %.0f s while a player was " \
                "stuck" % (c.name, n, window)
            assert not c.closed, "%s was disconnected: %s" % (c.name, c.close_reason)
        assert publisher.poll() is None, "the publisher died while a player was stuck"

        bound = QUEUE_MAX_S + SLOW_DISCONNECT_S + 6  # timer-driven: not scaled for ASan
        left = max(0.5, t_pause + bound - time.monotonic())
        try:
            wait_until(lambda: tcp_state(tls_port, stuck_port) != "ESTABLISHED", left, 0.2,
                       "the server to close the stuck RTMPS player")
        except AssertionError:
            raise AssertionError(
                "the server kept an RTMPS player that stopped reading for %.0f s; its socket: "
                "%s" % (time.monotonic() - t_pause, tcp_socket(tls_port, stuck_port))) from None
        assert re.search(r"\[rtmps \w+ live/s1\] closing: (player stopped reading|.*slow)",
                         srv.log_text()), "no log line for the stuck player"
    finally:
        if stuck is not None:
            stuck.close()
        for c in healthy:
            c.close()


# ----------------------------------------------------------------------------
# configuration
# ----------------------------------------------------------------------------

def test_no_rtmps_without_certificate_or_with_port_0(sluice_factory, certs):
    cert, key = certs
    srv = sluice_factory(name="nocert")
    assert not port_open(tls_port_of(srv))
    assert "rtmps listening" not in srv.log_text()
    srv = sluice_factory(name="port0", config={"rtmp": {"tls_port": 0, "tls_cert": str(cert),
                                                        "tls_key": str(key)}})
    assert "rtmps listening" not in srv.log_text()


def test_rtmps_uses_the_https_certificate(sluice_factory, certs, tmp_path):
    cert, key = certs
    srv = sluice_factory(config={"http": {"tls_cert": str(cert), "tls_key": str(key)}})
    port = tls_port_of(srv)
    wait_until(lambda: port_open(port), T(10), message="the RTMPS port %d" % port)
    # A TLS player gets through connect with HTTPS's certificate.
    c = TlsRtmpClient(HOST, port, cert, timeout=T(5), name="inherit")
    try:
        r = c.connect("live", tc_url="rtmps://%s:%d/live" % (HOST, port))
        assert r.ok, r
    finally:
        c.close()


def test_bad_certificate_fails_startup(sluice_factory, certs, tmp_path):
    cert, key = certs
    other_cert, other_key = make_cert(tmp_path, "other")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cases = [
        ({"tls_cert": str(tmp_path / "missing.crt"), "tls_key": str(key)},
         r"cannot read the certificate file .*missing\.crt: No such file"),
        ({"tls_cert": str(garbage), "tls_key": str(key)},
         r"cannot load the certificate \(chain\) from .*garbage\.pem"),
        ({"tls_cert": str(cert), "tls_key": str(other_key)},
         r"the private key in .*other\.key does not match the certificate"),
        ({"tls_cert": str(cert)},
         r"rtmp\.tls_cert and rtmp\.tls_key must be set together \(the key is missing\)"),
    ]
    for i, (rtmp_cfg, pattern) in enumerate(cases):
        srv = sluice_factory(name="bad%d" % i, start=False, config={"rtmp": rtmp_cfg})
        rc, out = run_sluice(srv, ["--check-config"])
        assert rc == 1 and re.search(pattern, out) and "rtmp.tls_cert" in out, (rtmp_cfg, rc, out)
        rc, out = run_sluice(srv)
        assert rc == 1 and re.search(pattern, out), (rtmp_cfg, rc, out)
        assert "listening" not in out, out
    srv = sluice_factory(name="good", start=False,
                         config={"rtmp": {"tls_cert": str(other_cert), "tls_key": str(other_key)}})
    rc, out = run_sluice(srv, ["--check-config"])
    assert rc == 0 and "configuration OK" in out, out
