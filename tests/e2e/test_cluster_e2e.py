"""Issue 19's flow across the merged parts (cluster core, relay, stream manager):
redis-server + a stream manager node + an origin + two edges on loopback, the edges
pulling over RTMP as Red5's cluster restreamer with the cluster password.

  - SM 4.0 broadcast lookup -> ffmpeg publishes to the origin it names;
  - SM 4.0 subscribe lookup -> the named edge plays it over RTMP (ffprobe decodes),
    HTTP-FLV and HLS; the edge's pull starts on the first player (none before);
  - the origin's load report does not count the edge's relay connection as a player
    (its subscribers stay 0 while one player plays on the edge; the stream manager's
    currentSubscribers is 1);
  - the edge's pull stops when idle (relay.idle_timeout);
  - kill -9 of the edge a player is on: a new subscribe lookup names the other edge
    (never the dead one past the lease) and the player plays there; the failover time
    (kill -> first frame on the other edge) is printed;
  - a put_setting made while a refresh is in flight is not undone by that refresh's
    reply (a private Redis, CLIENT PAUSE WRITE; see the test).

One cluster for the module (tests run in file order; the kill is last).
"""

import base64
import hashlib
import hmac
import json
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import rtmp_client
from api_helpers import Api, api_config, http_port_of
from clusterlib import RedisServer, cluster_config, redis_server, unique_prefix  # noqa: F401
from conftest import HOST, T, ffmpeg_publish_cmd, ffprobe_streams, port_open, wait_until

LEASE_S = 2.0
IDLE_S = 2
PASSWORD = "cluster-e2e-pw-5d21b7"
PATH = "live/e2e1"

pytestmark = [pytest.mark.cluster,
              pytest.mark.skipif(shutil.which("redis-server") is None,
                                 reason="redis-server not installed")]


# ----------------------------------------------------------------------------
# the cluster
# ----------------------------------------------------------------------------

class SM:
    """SM 4.0 lookups on the stream manager node."""

    def __init__(self, srv):
        self.base = "http://%s:%d/streammanager/api/4.0" % (HOST, http_port_of(srv))

    def get(self, path):
        try:
            with urllib.request.urlopen(self.base + path, timeout=T(10)) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, (json.loads(raw) if raw else None)

    def lookup(self, action, path=PATH, extra=""):
        return self.get("/event/%s?action=%s%s" % (path, action, extra))


@pytest.fixture(scope="module")
def cluster(module_sluice_factory, redis_server):
    prefix = unique_prefix()

    def node(node_id, role, group="default", extra=None):
        # Short relay timers so that idle and retries happen within the test's budget;
        # HLS players count until their session times out: short too.
        cfg = api_config(dict({"relay": {"idle_timeout": "%ds" % IDLE_S, "retry_min": "100ms",
                                         "retry_max": "500ms", "open_timeout": "3s",
                                         "read_timeout": "3s"},
                               "hls": {"session_timeout": "3s"}}, **(extra or {})))
        cfg["cluster"] = cluster_config(redis_server, node_id=node_id, role=role, prefix=prefix,
                                        lease="%dms" % int(LEASE_S * 1000),
                                        extra={"group": group, "public_host": HOST,
                                               "password": PASSWORD})
        srv = module_sluice_factory(name=node_id, config=cfg)
        srv.api = Api(srv)
        return srv

    nodes = {"origin": node("origin", "origin"), "edge1": node("edge1", "edge"),
             "edge2": node("edge2", "edge")}
    # The stream manager: a node of another group, so that it is never named.
    nodes["sm"] = node("sm", "all", group="control", extra={
        "stream_manager": {"enabled": True, "lookups_per_minute": 100000}})
    sm = SM(nodes["sm"])
    wait_until(lambda: set(reported(nodes["sm"])) >= {"origin", "edge1", "edge2"}, T(15), 0.05,
               "every node in the stream manager's snapshot")
    return {"nodes": nodes, "sm": sm, "prefix": prefix, "redis": redis_server}


def reported(srv):
    """{node id: node} of srv's snapshot (GET /api/v1/cluster/nodes)."""
    try:
        r = srv.api.get("cluster/nodes")
    except OSError:
        return {}
    return {n["id"]: n for n in r.data} if r.status == 200 else {}


def client_details(srv, app="live"):
    r = srv.api.get("applications/%s/clients" % app)
    assert r.status == 200, r
    out = []
    for c in r.data:
        d = srv.api.get("applications/%s/clients/%s" % (app, c["id"]))
        if d.status == 200:
            out.append(d.data)
    return out


def restreamers(srv):
    """srv's sessions that are other nodes' relay connections."""
    return [c for c in client_details(srv) if c.get("restreamer") is True]


def pulls(srv):
    """srv's own pulls (sessions of protocol cluster)."""
    return [c for c in client_details(srv) if c.get("connection_protocol") == "cluster"]


@pytest.fixture(scope="module")
def live(cluster, module_procs, media_src):
    """SM broadcast lookup, then ffmpeg publishes to the node it names."""
    sm = cluster["sm"]
    st, js = sm.lookup("broadcast")
    assert st == 200, js
    assert js["nodeId"] == "origin" and js["nodeRole"] == "origin", js
    url = "rtmp://%s:%d/%s" % (js["serverAddress"], js["rtmpPort"], PATH)
    module_procs.start(ffmpeg_publish_cmd(media_src, url), "ffmpeg-publish")
    wait_until(lambda: sm.lookup("subscribe")[0] == 200, T(15), 0.05,
               "%s placed in the cluster" % PATH)
    return {"state": {}}


def named_edge(cluster, exclude=()):
    """Subscribe lookup: the node the stream manager names (an edge, never the origin)."""
    st, js = cluster["sm"].lookup("subscribe")
    assert st == 200, js
    assert js["nodeRole"] == "edge" and js["nodeId"] in ("edge1", "edge2"), js
    return js


# ----------------------------------------------------------------------------
# tests
# ----------------------------------------------------------------------------

def test_publish_where_named(cluster, live):
    """The origin has the stream live (its publisher) and holds its placement."""
    origin = cluster["nodes"]["origin"]
    wait_until(lambda: any(c.get("role") == "publisher" for c in client_details(origin)),
               T(10), 0.05, "publisher on the origin")
    st, js = cluster["sm"].get("/event/list")
    assert st == 200, js
    assert any(e.get("name") == "e2e1" for e in js), js


def test_edge_plays_every_protocol_pull_on_demand(cluster, live):
    """No relay connection before a player; the named edge then plays RTMP (ffprobe),
    HTTP-FLV and HLS from one pull of the origin."""
    origin = cluster["nodes"]["origin"]
    assert not restreamers(origin), "a pull before any player"
    js = named_edge(cluster)
    edge = cluster["nodes"][js["nodeId"]]
    assert js["rtmpPort"] == edge.port and js["httpPort"] == http_port_of(edge)
    assert not pulls(edge)
    rtmp = "rtmp://%s:%d/%s" % (js["serverAddress"], js["rtmpPort"], PATH)
    streams = ffprobe_streams(rtmp, timeout=T(20))
    assert {s["codec_name"] for s in streams} >= {"h264", "aac"}, streams
    flv = "http://%s:%d/%s.flv" % (js["serverAddress"], js["httpPort"], PATH)
    streams = ffprobe_streams(flv, timeout=T(20))
    assert {s["codec_name"] for s in streams} >= {"h264", "aac"}, streams
    c, _ = rtmp_client.open_player(HOST, edge.port, "live", "e2e1", timeout=T(10))
    try:
        c.wait_video_frames(5, T(10))
        hls = "http://%s:%d/%s.m3u8" % (js["serverAddress"], js["httpPort"], PATH)
        got = {}

        def hls_ok():
            try:
                got["s"] = ffprobe_streams(hls, timeout=T(15))
            except (AssertionError, subprocess.TimeoutExpired):
                return False
            return any(s.get("codec_name") == "h264" for s in got["s"])
        wait_until(hls_ok, T(30), 0.5, "HLS from the edge")
        # one link for every player of every protocol
        assert len(restreamers(origin)) == 1, client_details(origin)
        assert len(pulls(edge)) == 1, client_details(edge)
        assert PASSWORD not in json.dumps(client_details(origin))
    finally:
        c.close()
    assert "relay pull: playing from %s:%d" % (HOST, origin.port) in edge.log_text()
    for srv in cluster["nodes"].values():
        assert PASSWORD not in srv.log_text(), srv.name


def wait_no_pull(origin):
    wait_until(lambda: not restreamers(origin), T(IDLE_S + 8), 0.1,
               "no relay connection on the origin")


def presence(node, path=PATH):
    return next((p for p in node.get("streams", []) if p["path"] == path), None)


def test_origin_does_not_count_relay_connections(cluster, live):
    """While the edge pulls and one player plays there, the origin's load report (and its
    presence of the stream) counts 0 subscribers: the relay connection is not a player;
    the stream manager's currentSubscribers counts the one real player."""
    nodes, sm = cluster["nodes"], cluster["sm"]
    origin = nodes["origin"]
    js = named_edge(cluster)
    edge_id = js["nodeId"]
    c, _ = rtmp_client.open_player(HOST, nodes[edge_id].port, "live", "e2e1", timeout=T(10))
    try:
        c.wait_video_frames(5, T(10))
        # >= 1: the previous test's pull on the other edge may still be idling out
        wait_until(lambda: len(restreamers(origin)) >= 1, T(10), 0.05, "the edge's pull")
        since = time.time() * 1000
        seen = {}

        def reports_after_pull():
            # a report of the origin written after its restreamer session existed, and the
            # edge's report of exactly this one player (an HLS session may linger)
            seen.clear()
            seen.update(reported(nodes["sm"]))
            o, e = seen.get("origin"), seen.get(edge_id)
            return (o and e and o["reported"] > since + 100 and presence(o) is not None
                    and presence(e) is not None and presence(e)["subscribers"] == 1)
        wait_until(reports_after_pull, T(10), 0.05, lambda: "reports (%s)" % seen)
        o = seen["origin"]
        assert o["load"]["subscribers"] == 0, o
        assert presence(o)["subscribers"] == 0 and presence(o)["origin"] is True, o
        # The streams view and the SM's stats are built from the snapshot, which may be one
        # refresh behind the reports read above (a slow build): wait for them, with a deadline.
        view = {}

        def streams_count_one():
            view.clear()
            view.update({s["path"]: s for s in nodes["sm"].api.get("cluster/streams").data})
            return PATH in view and view[PATH]["subscribers"] == 1
        wait_until(streams_count_one, T(10), 0.05, lambda: "streams view (%s)" % view)
        last = {}

        def sm_counts_one():
            st, stats = sm.get("/event/list/stats")
            last["r"] = (st, stats)
            return st == 200 and [e["currentSubscribers"] for e in stats
                                  if e["name"] == "e2e1"] == [1]
        wait_until(sm_counts_one, T(10), 0.05, lambda: "SM stats (%s)" % (last,))
    finally:
        c.close()


def test_pull_stops_when_idle(cluster, live):
    """The last player leaves: the edge's pull ends within idle_timeout + margin."""
    origin = cluster["nodes"]["origin"]
    js = named_edge(cluster)
    edge = cluster["nodes"][js["nodeId"]]
    c, _ = rtmp_client.open_player(HOST, edge.port, "live", "e2e1", timeout=T(10))
    try:
        c.wait_video_frames(5, T(10))
        assert len(restreamers(origin)) >= 1
    finally:
        c.close()
    left = time.monotonic()
    wait_no_pull(origin)
    took = time.monotonic() - left
    assert took < IDLE_S + T(4), took
    wait_until(lambda: not pulls(edge), T(5), 0.1, "the edge's pull gone")
    assert "relay pull stopped: idle" in edge.log_text()


def open_named_player(cluster, deadline):
    """As a client does after losing its edge: lookup, connect to the node named, and
    again (lookup included) when that node refuses; returns (client, edge id)."""
    last = None
    while time.monotonic() < deadline:
        js = named_edge(cluster)
        try:
            c, _ = rtmp_client.open_player(js["serverAddress"], js["rtmpPort"], "live", "e2e1",
                                           timeout=T(10))
            return c, js["nodeId"]
        except (OSError, rtmp_client.RtmpError) as e:
            last = e
            time.sleep(0.05)  # a reconnect's pace, not a wait for a condition
    raise AssertionError("no edge played within the deadline (last error %r)" % (last,))


@pytest.mark.exclusive
def test_edge_killed_players_fail_over(cluster, live):
    """kill -9 of the edge a player is on: lookups stop naming it within the lease, the
    player's reconnect (lookup + play) plays on the other edge. Failover time printed."""
    sm, nodes = cluster["sm"], cluster["nodes"]
    js = named_edge(cluster)
    dead_id = js["nodeId"]
    other_id = "edge2" if dead_id == "edge1" else "edge1"
    dead = nodes[dead_id]
    c, _ = rtmp_client.open_player(HOST, dead.port, "live", "e2e1", timeout=T(10))
    try:
        c.wait_video_frames(5, T(10))
        dead.proc.send_signal(signal.SIGKILL)
        dead.proc.wait(10)
        killed = time.monotonic()
        dead.proc = None  # killed on purpose: no clean exit to check at teardown
    finally:
        c.close()
    p, got = open_named_player(cluster, killed + T(LEASE_S + 10))
    try:
        p.wait_video_frames(1, T(10))
        first = next(m for m in p.media if m.is_frame)
        failover = first.arrival - killed
        assert got == other_id and failover > 0, (got, failover)
    finally:
        p.close()

    def dead_not_named():
        st, js = sm.lookup("subscribe", extra="&endpoints=3")
        return st == 200 and [n["nodeId"] for n in js] == [other_id]
    wait_until(dead_not_named, T(LEASE_S + 5), 0.05, "%s no longer named" % dead_id)
    gone = time.monotonic() - killed
    print("failover: kill -9 of %s -> first frame on %s %.3f s; %s no longer named after "
          "%.2f s (lease %.1f s)" % (dead_id, other_id, failover, dead_id, gone, LEASE_S))
    assert gone <= T(LEASE_S + 1.5), gone
    assert failover <= T(LEASE_S + 6), failover
    for _ in range(5):
        assert named_edge(cluster)["nodeId"] == other_id


# ----------------------------------------------------------------------------
# the settings snapshot right after a write (a refresh in flight)
# ----------------------------------------------------------------------------

AS_SECRET = "cluster-e2e-autoscale-jwt-0123456789"  # stream_manager.auth_secret


def as_jwt():
    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    now = int(time.time())
    body = b64(json.dumps({"sub": "admin", "role": "admin", "iat": now - 1,
                           "exp": now + 600}).encode())
    sig = hmac.new(AS_SECRET.encode(), ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (head, body, b64(sig))


def test_put_setting_survives_a_refresh_in_flight(sluice_factory, tmp_path):
    """A write (put_setting, here the autoscaler's node group pause) made while a refresh's
    HGETALL is already on its way to Redis: the refresh's reply, which Redis computed
    before the write, must not put the old value back into the snapshot. Made
    deterministic with CLIENT PAUSE WRITE on a private Redis: the node's periodic batch
    (SET record ... HGETALL settings ...) waits behind its SET; the write's HSET queues
    behind it; unpaused, Redis answers HGETALL with the old value, then does the HSET.
    The report interval is long, so no later refresh hides an old value in between."""
    redis = RedisServer(tmp_path / "redis").start()
    try:
        # SM 2.0 tokens are the stream manager's (its check_token)
        cfg = api_config({"autoscale": {"enabled": True, "driver": "none", "interval": "1s"},
                          "stream_manager": {"enabled": True, "auth_secret": AS_SECRET,
                                             "admin_password": "cluster-e2e-admin-pw-01"}})
        cfg["cluster"] = cluster_config(redis, node_id="solo", role="all",
                                        prefix=unique_prefix(), report_interval="4s",
                                        lease="12s")
        srv = sluice_factory(name="solo", config=cfg)
        api = Api(srv)
        wait_until(lambda: port_open(api.port) and api.get("cluster").status == 200
                   and api.data("cluster")["redis"]["up"], T(10), 0.05, "the node on Redis")

        def admin(method, path, body=None):
            return api.request(method, "/as/v1/admin/nodegroup" + path, token=as_jwt(),
                               bearer=True, body=body)
        group = {"name": "ng1", "cloudPlatform": "DOCKER",
                 "roles": {"edge": {"name": "edge", "capabilities": ["SUBSCRIBE"]}},
                 "groups": {"default": {"subGroupName": "default", "rulesByRole": {
                     "edge": {"nodeRoleName": "edge", "min": 0, "max": 0}}}}}
        r = admin("POST", "", group)
        assert r.status == 201, r

        def paused_in_snapshot():
            s = api.data("cluster/settings?prefix=nodegroup/")
            return json.loads(s["nodegroup/ng1"]) if isinstance(s.get("nodegroup/ng1"), str) \
                else s.get("nodegroup/ng1", {})
        wait_until(lambda: "nodegroup/ng1" in api.data("cluster/settings?prefix=nodegroup/"),
                   T(10), 0.05, "the group in the snapshot")
        assert not paused_in_snapshot().get("scalingPaused")

        def node_client_postponed():
            # the node's command connection blocked on its record's SET, its batch
            # (HGETALL settings included) queued behind it
            for line in redis.cmd("CLIENT", "LIST").splitlines():
                f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
                if "b" in f.get("flags", "") and f.get("cmd") == "set" and int(f["qbuf"]) > 0:
                    return True
            return False
        redis.cmd("CLIENT", "PAUSE", str(int(T(20) * 1000)), "WRITE")
        try:
            wait_until(node_client_postponed, T(10), 0.02, "the node's refresh queued in Redis")
            fresh = api.data("cluster")["redis"]["fresh"]
            r = admin("PUT", "/ng1/pause")
            assert r.status == 200, r
            assert paused_in_snapshot().get("scalingPaused") is True  # local at once
        finally:
            redis.cmd("CLIENT", "UNPAUSE")
        key = api.data("cluster")["redis"]["prefix"] + "settings"
        # the HSET done, and the refresh that was queued before it answered (its node
        # chain completes after its HGETALL's reply)
        wait_until(lambda: '"scalingPaused":true' in (redis.cmd("HGET", key, "nodegroup/ng1")
                                                       or ""), T(5), 0.02, "the write in Redis")
        wait_until(lambda: api.data("cluster")["redis"]["fresh"] > fresh, T(10), 0.02,
                   "the refresh that was in flight")
        assert paused_in_snapshot().get("scalingPaused") is True, \
            "the refresh in flight put the old value back"
    finally:
        redis.stop()
