"""HLS sessions are not connections, and have budgets of their own (issue 11, item 2),
and an auth app answers the same for a live and an absent stream (no key probing).

The attack as filed: 10,050 playlist GETs without `sid` on one keep-alive connection
used to create 10,050 sessions that counted against server.max_connections (10,000
by default) for hls.session_timeout: every new connection (RTMP players, /healthz,
/metrics) was refused for 30 s, and every round emitted 10k play/play_stop events.
Now a playlist GET without a sid creates no session (the session begins when the
player comes back with the sid it was handed), sessions do not count as connections,
and sessions from one address are capped by hls.max_sessions_per_address (429).
"""

import http.client
import re
import socket
import subprocess
import threading
import time
import urllib.parse

from api_helpers import EventReader, TOKEN, http_port_of
from conftest import HOST, T, ffmpeg_publish_cmd, port_open, wait_stream_live, wait_until

USERS = "viewer s3cret\n"


def start(factory, apps, hls=None, auth_file=None, server=None):
    cfg = {"api": {"access_token": TOKEN, "auth_fail_limit": 100000}, "apps": apps}
    if server:
        cfg["server"] = server
    if hls:
        cfg["hls"] = hls
    if auth_file:
        cfg["auth"] = {"simple_file": str(auth_file)}
    srv = factory(config=cfg)
    port = http_port_of(srv)
    wait_until(lambda: port_open(port), T(10), message="http port")
    srv.http = port
    return srv


def get(port, path, headers=None):
    c = http.client.HTTPConnection(HOST, port, timeout=T(10))
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def wait_playlist(port, path):
    """Waits until the multivariant playlist answers 200; returns its media URI."""
    got = {}

    def ok():
        st, _, body = get(port, path)
        if st != 200:
            return False
        got["uri"] = [l for l in body.decode().splitlines() if l and not l.startswith("#")][0]
        return True

    wait_until(ok, T(40), 0.25, "HLS playlist of " + path)
    return got["uri"]


def metric(port, name):
    st, _, body = get(port, "/metrics")
    assert st == 200
    m = re.search(r"^%s (\d+)" % re.escape(name), body.decode(), re.M)
    return int(m.group(1)) if m else None


def keepalive_gets(port, paths, out):
    """GETs every path on one keep-alive connection (HTTP/1.1, pipelined in batches);
    counts the statuses into out."""
    s = socket.create_connection((HOST, port), timeout=T(30))
    f = s.makefile("rb")
    try:
        batch = 50
        for i in range(0, len(paths), batch):
            chunk = paths[i:i + batch]
            s.sendall(b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % p.encode() for p in chunk))
            for _ in chunk:
                line = f.readline()
                status = int(line.split()[1])
                length = 0
                while True:
                    h = f.readline()
                    if h in (b"\r\n", b""):
                        break
                    k, _, v = h.decode().partition(":")
                    if k.lower() == "content-length":
                        length = int(v)
                f.read(length)
                out[status] = out.get(status, 0) + 1
    finally:
        f.close()
        s.close()


def rtmp_read(srv, app, stream, want=1000):
    """rtmpdump plays the stream until it delivered `want` bytes or T(15) passed;
    returns how many bytes came."""
    p = subprocess.Popen(["rtmpdump", "-q", "-r", srv.url(app, stream), "--live", "-o", "-"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    got = [0]

    def reader():
        while got[0] < want:
            b = p.stdout.read1(65536)
            if not b:
                return
            got[0] += len(b)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(T(15))
    p.kill()
    p.wait()
    t.join(5)
    p.stdout.close()
    return got[0]


def rtmp_play_ok(srv, app, stream):
    return rtmp_read(srv, app, stream) >= 1000


def test_playlist_flood_leaves_connections_alone(sluice_factory, procs, media_src):
    # Defaults as filed (server.max_connections 10000), plus a visible per-address budget.
    srv = start(sluice_factory, {"live": {"hls_segment": "1s"}},
                hls={"max_sessions_per_address": 40})
    port = srv.http
    procs.start(ffmpeg_publish_cmd(media_src, srv.url("live", "s")), "publisher")
    wait_stream_live(srv.port, "live", "s", T(15))
    wait_playlist(port, "/live/s.m3u8")
    ev = EventReader(srv)
    try:
        # 10,050 playlist GETs without sid on one keep-alive connection, in a thread;
        # meanwhile the server keeps serving everyone else.
        statuses = {}
        t = threading.Thread(target=keepalive_gets,
                             args=(port, ["/live/s.m3u8"] * 10050, statuses), daemon=True)
        t.start()
        during, rtmp_during = 0, None
        while t.is_alive() and during < 20:
            assert get(port, "/healthz")[0] == 200
            if rtmp_during is None:
                rtmp_during = rtmp_play_ok(srv, "live", "s")
                assert rtmp_during
            during += 1
        t.join(T(120))
        assert not t.is_alive(), "the flood did not finish"
        assert sum(statuses.values()) == 10050, statuses
        assert statuses.get(200) == 10050, statuses  # a real player behind it would play
        # right after: a new connection of every kind is served
        assert get(port, "/healthz")[0] == 200
        curl = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                               "http://%s:%d/healthz" % (HOST, port)], capture_output=True,
                              timeout=T(10))
        assert curl.stdout == b"200", curl
        assert metric(port, "sluice_hls_sessions") == 0  # nothing was left behind
        assert rtmp_play_ok(srv, "live", "s")
        procs.start(ffmpeg_publish_cmd(media_src, srv.url("live", "s2")), "publisher2")
        wait_stream_live(srv.port, "live", "s2", T(15))
        # no play/play_stop storm: playlists without sid start no session
        hls_plays = [e for e in ev.snapshot() if e.get("protocol") == "hls"]
        assert hls_plays == [], hls_plays[:5]

        # Following up with sids: sessions exist, but one address holds at most its budget
        # (40 here); the rest get 429 and are counted; events are bounded by the budget.
        statuses.clear()
        media = []
        for _ in range(60):
            st, _, body = get(port, "/live/s.m3u8")
            assert st == 200
            media.append("/live/" + [l for l in body.decode().splitlines()
                                     if l and not l.startswith("#")][0])
        keepalive_gets(port, media, statuses)
        assert statuses == {200: 40, 429: 20}, statuses
        assert metric(port, "sluice_hls_sessions") == 40
        assert metric(port, 'sluice_budget_exceeded_total{budget="hls_sessions"}') == 20
        wait_until(lambda: len([e for e in ev.snapshot() if e.get("event") == "play"
                                and e.get("protocol") == "hls"]) >= 40, T(10), 0.1, "40 plays")
        time.sleep(0.5)  # settle: the count must not grow past the budget (no more may come)
        plays = [e for e in ev.snapshot() if e.get("event") == "play" and e.get("protocol") == "hls"]
        assert len(plays) == 40
        # another address is not affected by this one's budget
        c = http.client.HTTPConnection(HOST, port, timeout=T(10), source_address=("127.0.0.2", 0))
        c.request("GET", media[-1])
        assert c.getresponse().status == 200
        c.close()
        # HLS sessions are listed like clients (Red5 lists HTTP clients) but are not connections
        assert get(port, "/healthz")[0] == 200
        assert rtmp_play_ok(srv, "live", "s")
        srv.wait_log(r"hls: new session from 127\.0\.0\.1 refused: hls\.max_sessions_per_address",
                     T(5))
        assert len(re.findall(r"new session from .* refused", srv.log_text())) <= 3
    finally:
        ev.close()


def test_server_budget_is_not_the_connection_limit(sluice_factory, procs, media_src):
    # max_connections 5: sessions do not count, so 20 HLS players leave room for RTMP
    # (the pending share, a quarter of 5 by default, is widened: publisher, probe and
    # player connect at once).
    srv = start(sluice_factory, {"live": {"hls_segment": "1s"}},
                hls={"max_sessions": 20}, server={"max_connections": 5, "max_pending_connections": 5})
    port = srv.http
    procs.start(ffmpeg_publish_cmd(media_src, srv.url("live", "s")), "publisher")
    wait_stream_live(srv.port, "live", "s", T(15))
    uri = wait_playlist(port, "/live/s.m3u8")
    sids = []
    for i in range(25):
        st, _, body = get(port, "/live/s.m3u8")
        m = [l for l in body.decode().splitlines() if l and not l.startswith("#")][0]
        sids.append(m)
    got = [get(port, "/live/" + m)[0] for m in sids]
    assert got.count(200) == 20 and got.count(429) == 5, got
    assert uri
    # 20 sessions and the 5-connection limit: connections are still accepted
    assert get(port, "/healthz")[0] == 200
    assert rtmp_play_ok(srv, "live", "s")
    st, _, body = get(port, "/api/v1/applications/live/streams/s/subscribers?accessToken=" + TOKEN)
    assert st == 200 and body.count(b'"hls"') >= 20  # listed like clients, as Red5 lists them


def test_auth_absent_and_live_answer_alike(sluice_factory, procs, media_src, tmp_path):
    users = tmp_path / "users.txt"
    users.write_text(USERS)
    srv = start(sluice_factory, {"secure": {"auth_simple": True, "hls_segment": "1s", "record": True}},
                auth_file=users)
    port = srv.http
    good = "username=viewer&password=s3cret"
    procs.start(ffmpeg_publish_cmd(media_src, srv.url("secure", "cam1?" + good)), "publisher")
    wait_playlist(port, "/secure/cam1.m3u8?" + good)
    for live, absent in [("/secure/cam1.m3u8", "/secure/nosuch.m3u8"),
                         ("/secure/cam1_0.ts", "/secure/nosuch_0.ts"),
                         ("/secure/cam1.flv", "/secure/nosuch.flv"),
                         ("/secure/streams/cam1.flv", "/secure/streams/nosuch.flv")]:
        a, b = get(port, live), get(port, absent)
        assert a[0] == b[0] == 401, (live, a[0], absent, b[0])
        assert a[2] == b[2], (a[2], b[2])
        # wrong credentials: the same 403 for both
        a = get(port, live + "?username=viewer&password=wrong")
        b = get(port, absent + "?username=viewer&password=wrong")
        assert a[0] == b[0] == 403, (live, a[0], absent, b[0])
        # with credentials the absent one is 404
        assert get(port, absent + "?" + good)[0] == 404
    # RTMP: playing an absent stream without credentials is refused like a live one
    for name in ("cam1", "nosuch"):
        assert rtmp_read(srv, "secure", name) < 100, name
    logs = srv.log_text()
    assert "nosuch" in logs
