"""Cluster relay (src/cluster/relay, docs/cluster-relay.md) with static origins, no Redis:
ffmpeg publishes to an origin; players on an edge (RTMP, HTTP-FLV, HLS, WHEP) make the
edge pull the stream from the origin over RTMP as a Red5 cluster restreamer; the pull
stops when idle; a wrong cluster password is refused on the origin; an edge -> relay ->
origin chain plays. One origin, one edge and one relay are shared by the module (one
ffmpeg publisher); every wait polls a condition."""
import json
import os
import subprocess
import time

import pytest

from api_helpers import Api, api_config, http_port_of
from conftest import HOST, T, ffmpeg_publish_cmd, ffprobe_streams, free_port, port_open, \
    wait_stream_live, wait_until
import rtmp_client
from clusterlib import redis_server, start_nodes, wait_nodes, wait_placed  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
WEBRTC_CLIENT = [os.environ.get("PYTHON3", "/usr/bin/python3"),
                 os.path.join(HERE, "webrtc_client.py")]
PASSWORD = "cluster-pw-e2e-7f3a9c"
IDLE_S = 2

try:
    import aiortc  # noqa: F401
    HAVE_AIORTC = True
except ImportError:
    HAVE_AIORTC = False


def node_config(origins="", password=PASSWORD, extra=None):
    relay = {"enabled": True, "password": password, "idle_timeout": "%ds" % IDLE_S,
             "retry_min": "100ms", "retry_max": "500ms", "give_up": "3s",
             "open_timeout": "3s", "read_timeout": "3s"}
    if origins:
        relay["origins"] = json.dumps(origins)
    # HLS players count as players until their session times out: short here, so that
    # the idle test after the HLS one does not wait 30 s.
    cfg = api_config({"relay": relay, "hls": {"session_timeout": "3s"},
                      "webrtc": {"candidates": "127.0.0.1", "setup_timeout": "10s"}})
    for k, v in (extra or {}).items():
        cfg[k] = dict(cfg.get(k, {}), **v)
    return cfg


def start_node(factory, name, extra=None, **kw):
    srv = factory(name=name, config=node_config(extra=extra, **kw))
    wait_until(lambda: port_open(http_port_of(srv)), T(10), message="http port of " + name)
    srv.api = Api(srv)
    return srv


def clients(srv, app="live"):
    r = srv.api.get("applications/%s/clients" % app)
    assert r.status == 200, r
    return r.data


def client_details(srv, app="live"):
    out = []
    for c in clients(srv, app):
        r = srv.api.get("applications/%s/clients/%s" % (app, c["id"]))
        if r.status == 200:
            out.append(r.data)
    return out


def restreamers(origin):
    """The origin's sessions that are other nodes' relay connections (flagged restreamer)."""
    return [c for c in client_details(origin) if c.get("restreamer") is True]


def pulls(edge):
    """The edge's own pulls: sessions of protocol cluster."""
    return [c for c in client_details(edge) if c.get("connection_protocol") == "cluster"]


USER, USER_PW = "alice", "alice-pw-e2e-31"
CREDS = "?username=%s&password=%s" % (USER, USER_PW)


@pytest.fixture(scope="module")
def cluster(module_sluice_factory, module_procs, media_src, tmp_path_factory):
    # The origin's app is protected by simple auth: its publisher and its own players
    # give credentials, the edges' relay connections only the cluster password.
    users = tmp_path_factory.mktemp("auth") / "users.txt"
    users.write_text("%s %s\n" % (USER, USER_PW))
    origin = start_node(module_sluice_factory, "origin", extra={
        "auth": {"simple_file": str(users)}, "apps": {"live": {"auth_simple": True}}})
    dead = free_port()  # nothing listens here: the edge moves on to the next origin
    edge = start_node(module_sluice_factory, "edge",
                      origins="%s:%d, %s:%d" % (HOST, dead, HOST, origin.port))
    module_procs.start(ffmpeg_publish_cmd(media_src, origin.url("live", "s1") + CREDS), "ffmpeg")
    wait_stream_live(edge.port, "live", "s1", T(20))
    return {"origin": origin, "edge": edge, "factory": module_sluice_factory}


def refused(c):
    """Waits for the refusal of c's play (Play.Failed) and closes it."""
    try:
        wait_until(lambda: "NetStream.Play.Failed" in c.status_codes(), T(10), 0.05,
                   "refusal")
        assert "NetStream.Play.Start" not in c.status_codes(), c.status_codes()
    finally:
        c.close()


def wait_no_pull(c, timeout=None):
    wait_until(lambda: not restreamers(c["origin"]), timeout or T(IDLE_S + 8), 0.1,
               "no relay connection on the origin")


def test_edge_plays_every_protocol(cluster):
    """RTMP (ffprobe), HTTP-FLV and HLS from the edge all decode the origin's stream;
    the edge's pull is a session of protocol cluster, the origin's side a restreamer
    session whose query shows restreamer=*** and never the password."""
    origin, edge = cluster["origin"], cluster["edge"]
    streams = ffprobe_streams(edge.url("live", "s1"), timeout=T(20))
    assert {s["codec_name"] for s in streams} >= {"h264", "aac"}, streams
    flv = "http://%s:%d/live/s1.flv" % (HOST, http_port_of(edge))
    streams = ffprobe_streams(flv, timeout=T(20))
    assert {s["codec_name"] for s in streams} >= {"h264", "aac"}, streams
    # a player keeps the pull alive while HLS segments are made
    c, _ = rtmp_client.open_player(HOST, edge.port, "live", "s1", timeout=T(10))
    try:
        c.wait_video_frames(5, T(10))
        hls = "http://%s:%d/live/s1.m3u8" % (HOST, http_port_of(edge))
        got = {}

        def hls_ok():
            try:
                got["s"] = ffprobe_streams(hls, timeout=T(15))
            except (AssertionError, subprocess.TimeoutExpired):
                return False
            return any(s.get("codec_name") == "h264" for s in got["s"])
        wait_until(hls_ok, T(30), 0.5, "HLS from the edge")
        rs = restreamers(origin)
        assert len(rs) == 1 and rs[0]["role"] == "subscriber", rs
        assert PASSWORD not in json.dumps(client_details(origin))
        assert PASSWORD not in json.dumps(client_details(edge))
        ps = pulls(edge)
        assert len(ps) == 1 and ps[0]["role"] == "publisher", client_details(edge)
        assert ps[0]["remote_address"] == "%s:%d" % (HOST, origin.port), ps
    finally:
        c.close()
    assert "relay pull: playing from %s:%d" % (HOST, origin.port) in edge.log_text()


@pytest.mark.skipif(not HAVE_AIORTC, reason="python3-aiortc not installed")
def test_edge_plays_whep(cluster):
    edge = cluster["edge"]
    url = "http://%s:%d/live/whep/endpoint/s1" % (HOST, http_port_of(edge))
    p = subprocess.run(WEBRTC_CLIENT + ["whep", url, "--seconds", str(T(25)), "--frames", "25"],
                       capture_output=True, text=True, timeout=T(60))
    evs = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    done = [e for e in evs if e["event"] == "done"]
    assert p.returncode == 0 and done, (p.returncode, evs, p.stderr[-3000:], edge.log_tail(60))
    assert done[0]["width"] == 640 and done[0]["height"] == 360


def test_pull_starts_on_demand_and_stops_when_idle(cluster):
    """No relay connection without players; the first player starts one; it is gone
    from the origin's API within idle_timeout + margin after the last player left."""
    origin, edge = cluster["origin"], cluster["edge"]
    wait_no_pull(cluster)
    c, _ = rtmp_client.open_player(HOST, edge.port, "live", "s1", timeout=T(10))
    try:
        c.wait_video_frames(10, T(10))
        assert len(restreamers(origin)) == 1
    finally:
        c.close()
    left = time.monotonic()
    wait_no_pull(cluster)
    took = time.monotonic() - left
    assert took < IDLE_S + T(3), took
    assert took > IDLE_S - 0.5, took  # not before idle_timeout
    assert "relay pull stopped: idle" in edge.log_text()


def test_origin_business_auth_still_applies(cluster):
    """The origin's simple auth refuses a plain player without credentials; with them
    it plays: the relay's bypass is for the cluster password only."""
    origin = cluster["origin"]
    refused(rtmp_client.open_player(HOST, origin.port, "live", "s1", timeout=T(10),
                                    expect_start=False)[0])
    c, _ = rtmp_client.open_player(HOST, origin.port, "live", "s1" + CREDS, timeout=T(10))
    try:
        c.wait_video_frames(3, T(10))
    finally:
        c.close()


def test_wrong_cluster_password_refused(cluster):
    """A relay connection with a wrong password is refused with a clear reason; an edge
    configured with it cannot pull; the origin's log never shows either password."""
    origin = cluster["origin"]
    refused(rtmp_client.open_player(HOST, origin.port, "live",
                                    "s1?restreamer=wrong-pw-123&cluster-restreamer-name=s1",
                                    timeout=T(10), expect_start=False)[0])
    assert "wrong cluster password" in origin.log_text()
    assert "wrong-pw-123" not in origin.log_text()
    bad = start_node(cluster["factory"], "badedge", origins="%s:%d" % (HOST, origin.port),
                     password="not-the-cluster-pw")
    c, _ = rtmp_client.open_player(HOST, bad.port, "live", "s1", timeout=T(10),
                                   expect_start=False)
    try:
        wait_until(lambda: "Invalid cluster password." in bad.log_text()
                   and "no upstream has the stream" in bad.log_text(), T(10), 0.1,
                   "bad edge gives up")
        assert not c.media, "the bad edge served media"
    finally:
        c.close()
    assert "not-the-cluster-pw" not in origin.log_text()
    bad.stop()


def test_chain_edge_relay_origin(cluster):
    """edge2 -> relay -> origin: a player on edge2 decodes; edge2's link is hop 1, the
    relay's hop 2 (counted from the edge, against relay.max_hops)."""
    origin = cluster["origin"]
    relay = start_node(cluster["factory"], "relay", origins="%s:%d" % (HOST, origin.port))
    edge2 = start_node(cluster["factory"], "edge2", origins="%s:%d" % (HOST, relay.port))
    streams = ffprobe_streams(edge2.url("live", "s1"), timeout=T(25))
    assert {s["codec_name"] for s in streams} >= {"h264", "aac"}, streams
    assert "playing from %s:%d (hop 1)" % (HOST, relay.port) in edge2.log_text()
    assert "playing from %s:%d (hop 2)" % (HOST, origin.port) in relay.log_text()
    c, _ = rtmp_client.open_player(HOST, edge2.port, "live", "s1", timeout=T(10))
    try:
        c.wait_video_frames(5, T(10))
        assert len(restreamers(relay)) == 1, client_details(relay)
        assert len(restreamers(origin)) >= 1, client_details(origin)
    finally:
        c.close()
    edge2.stop()
    relay.stop()


def test_origin_unpublish_reaches_edge_players(cluster, module_procs, media_src):
    """The origin's publisher leaves: the edge's player gets the normal unpublish and the
    edge's pull ends (runs last: it stops the module's publisher)."""
    origin, edge = cluster["origin"], cluster["edge"]
    c, _ = rtmp_client.open_player(HOST, edge.port, "live", "s1", timeout=T(10))
    try:
        c.wait_video_frames(5, T(10))
        for p, _ in list(module_procs.items):
            if p.name == "ffmpeg":
                module_procs.stop(p)
        c.wait_status("NetStream.Play.UnpublishNotify", T(10))
    finally:
        c.close()
    wait_until(lambda: "relay pull stopped: unpublished upstream" in edge.log_text(), T(10),
               0.1, "edge pull ended")
    wait_no_pull(cluster)


def test_redis_cluster_edge_relay_origin(sluice_factory, redis_server, procs, media_src):
    """Cluster mode (Redis): publish on origin A; a player on edge C gets the stream
    through relay B, found through the cluster service (the stream's placement, the
    group's relay), authenticated with cluster.password; the relay module is on by
    itself in cluster mode (no relay section)."""
    origin, relay, edge = start_nodes(sluice_factory, redis_server, 3,
                                      roles=["origin", "relay", "edge"],
                                      cluster={"password": PASSWORD})
    wait_nodes(edge, [origin.id, relay.id, edge.id])
    procs.start(ffmpeg_publish_cmd(media_src, origin.url("live", "r1")), "ffmpeg")
    wait_placed(edge, "live/r1", origin.id, T(20))
    streams = ffprobe_streams(edge.url("live", "r1"), timeout=T(25))
    assert {s["codec_name"] for s in streams} >= {"h264", "aac"}, streams
    assert "playing from 127.0.0.1:%d (hop 1)" % relay.srv.port in edge.srv.log_text()
    assert "playing from 127.0.0.1:%d (hop 2)" % origin.srv.port in relay.srv.log_text()
    # the origin's side: one relay connection (the relay's), flagged as a restreamer
    origin.srv.api, relay.srv.api = origin.api, relay.api
    c, _ = rtmp_client.open_player(HOST, edge.srv.port, "live", "r1", timeout=T(10))
    try:
        c.wait_video_frames(5, T(10))
        assert len(restreamers(origin.srv)) == 1, client_details(origin.srv)
        assert len(restreamers(relay.srv)) == 1, client_details(relay.srv)
    finally:
        c.close()


def test_origin_dies_edge_retries_then_gives_up(sluice_factory, procs, media_src):
    """The origin is killed (-9) under an edge's player: the edge keeps the stream and
    retries; an origin back on the same address with the stream resumes the player on the
    same connection (its timestamps continue); killed again for good, the edge gives up
    after relay.give_up and its player gets the normal unpublish."""
    give_up = int(T(5))  # room for a new origin and publisher to come up (ASan: 3x)
    origin = start_node(sluice_factory, "origin")
    edge = start_node(sluice_factory, "edge", origins="%s:%d" % (HOST, origin.port),
                      extra={"relay": {"give_up": "%ds" % give_up}})
    procs.start(ffmpeg_publish_cmd(media_src, origin.url("live", "f1")), "ffmpeg")
    wait_stream_live(origin.port, "live", "f1", T(20))
    c, _ = rtmp_client.open_player(HOST, edge.port, "live", "f1", timeout=T(10))
    try:
        c.wait_video_frames(5, T(10))
        origin.proc.kill()
        origin.proc.wait(10)
        origin.proc = None  # killed on purpose: no clean-exit check
        wait_until(lambda: "upstream %s:%d lost" % (HOST, origin.port) in edge.log_text(),
                   T(10), 0.05, "edge sees the loss")
        # back on the same port, with the stream
        again = sluice_factory(name="origin-again", port=origin.port,
                               config=node_config())
        procs.start(ffmpeg_publish_cmd(media_src, again.url("live", "f1")), "ffmpeg2")
        n = len([m for m in c.media if m.is_video])
        c.wait_video_frames(n + 10, T(15))
        assert edge.log_text().count("playing from %s:%d" % (HOST, origin.port)) >= 2
        assert "NetStream.Play.UnpublishNotify" not in c.status_codes()
        vts = [m.ts for m in c.media if m.is_video]
        assert all(b >= a for a, b in zip(vts, vts[1:])), "timestamps went back"
        # gone for good: give_up later the player gets the unpublish
        again.proc.kill()
        again.proc.wait(10)
        again.proc = None
        lost = time.monotonic()
        c.wait_status("NetStream.Play.UnpublishNotify", give_up + T(5))
        assert time.monotonic() - lost >= give_up - 0.5
        assert "relay pull stopped: upstream lost" in edge.log_text()
    finally:
        c.close()
