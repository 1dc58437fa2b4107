"""Cluster core (src/cluster/core, docs/cluster.md): three sluice nodes and a private
redis-server (password-protected, so that the AUTH path is on and conftest checks the
password never reaches a log). Nodes see each other through the API; a publish on A is
placed on A cluster-wide and a second publish of the stream on B is refused; kick and
unpublish sent from B reach clients on A; a Redis killed and restarted mid-stream
leaves the publisher and the player on A running and the placement comes back;
SOFT_SUNSET refuses new players and keeps the old; kill -9 of a node removes it within
the lease. A Sentinel test finds the master through redis-server --sentinel.

One Redis and three nodes for the module; tests that change shared state (the Redis
restart, the kill -9) restore it or come last.
"""

import os
import signal
import subprocess
import time

import pytest

from api_helpers import assert_error, start_player
from clusterlib import RedisServer, start_nodes, unique_prefix, wait_nodes, wait_placed
from conftest import T, ffmpeg_publish_cmd, wait_stream_live, wait_until

pytestmark = pytest.mark.cluster

REDIS_PASSWORD = "e2e-redis-pw-5f1c2a"
CLUSTER_PASSWORD = "e2e-cluster-pw-8d3b07"
LEASE_S = 3.0


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    r = RedisServer(tmp_path_factory.mktemp("redis"), password=REDIS_PASSWORD).start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def nodes(module_sluice_factory, redis):
    ns = start_nodes(module_sluice_factory, redis, 3, cluster={"password": CLUSTER_PASSWORD})
    for n in ns:
        n.srv.secrets |= {REDIS_PASSWORD, CLUSTER_PASSWORD}
    return ns


def publish(module_procs, media_src, node, stream, name=None):
    return module_procs.start(ffmpeg_publish_cmd(media_src, node.url("live", stream)),
                              name or "ffmpeg-" + stream)


def exited(p, timeout):
    wait_until(lambda: p.poll() is not None, timeout, 0.05, "%s to exit" % p.name)
    return p.returncode


def test_nodes_see_each_other(nodes):
    ids = [n.id for n in nodes]
    for n in nodes:
        seen = wait_nodes(n, ids, T(5))
        me = seen[n.id]
        assert me["self"] is True and me["state"] == "INSERVICE" and me["role"] == "all"
        assert me["ports"]["http"] == n.http_port and me["ports"]["rtmp"] == n.srv.port
        assert me["host"] == "127.0.0.1" and me["load"]["max_connections"] > 0
    c = nodes[1].cluster()
    assert c["node"]["id"] == nodes[1].id and c["redis"]["up"] is True
    text = str(c)
    assert REDIS_PASSWORD not in text and CLUSTER_PASSWORD not in text


def test_api_needs_the_token(nodes):
    assert_error(nodes[0].api.get("cluster", token=None), 401)
    assert_error(nodes[0].api.get("cluster/nodes", token="wrong-token-xyz"), 401)
    assert_error(nodes[0].api.get("cluster/nodes/nope"), 404)


def test_publish_is_placed_and_a_second_origin_refused(nodes, module_procs, media_src):
    a, b, _ = nodes
    pub = publish(module_procs, media_src, a, "placed")
    wait_stream_live(a.srv.port, "live", "placed", T(15))
    wait_placed(b, "live/placed", a.id, T(5))
    # The record of A lists the stream as its origin's.
    wait_until(lambda: any(s["path"] == "live/placed" and s["origin"]
                           for s in b.nodes().get(a.id, {}).get("streams", [])), T(5), 0.05,
               "A's record to list live/placed")
    second = publish(module_procs, media_src, b, "placed", name="ffmpeg-second")
    assert exited(second, T(15)) != 0
    b.srv.wait_log(r"publish of placed refused: stream is live on node %s" % a.id, T(5))
    assert pub.poll() is None
    module_procs.stop(pub)
    wait_placed(b, "live/placed", None, T(5))


def test_kick_and_unpublish_from_another_node(nodes, module_procs, media_src):
    a, b, _ = nodes
    pub = publish(module_procs, media_src, a, "kicked")
    wait_stream_live(a.srv.port, "live", "kicked", T(15))
    player = start_player(module_procs, a.srv, stream="kicked", name="rtmpdump-kicked")
    wait_until(lambda: a.api.get("applications/live/streams/kicked/subscribers").status == 200
               and len(a.api.get("applications/live/streams/kicked/subscribers").data) == 1,
               T(10), 0.1, "the player on A")
    r = b.api.request("POST", "cluster/kick", body={"node": a.id, "app": "live",
                                                   "stream": "kicked", "role": "subscriber"})
    assert r.status == 200, r
    exited(player, T(10))
    a.srv.wait_log(r"cluster: kicked by the cluster", T(5))
    assert pub.poll() is None  # the publisher was not a subscriber
    # unpublish without a node: B sends it to the stream's origin, which it knows.
    wait_placed(b, "live/kicked", a.id, T(5))
    r = b.api.request("POST", "cluster/unpublish", body={"app": "live", "stream": "kicked"})
    assert r.status == 200 and r.data["node"] == a.id, r
    exited(pub, T(10))
    wait_placed(b, "live/kicked", None, T(5))
    assert_error(b.api.request("POST", "cluster/unpublish", body={"app": "live"}), 400)


def test_soft_sunset_refuses_new_players_keeps_old(nodes, module_procs, media_src):
    _, b, c = nodes
    pub = publish(module_procs, media_src, c, "drain")
    wait_stream_live(c.srv.port, "live", "drain", T(15))
    old = start_player(module_procs, c.srv, stream="drain", name="rtmpdump-old")
    subs = "applications/live/streams/drain/subscribers"
    wait_until(lambda: len(c.api.data(subs)) == 1, T(10), 0.1, "the old player")
    r = b.api.request("PUT", "cluster/nodes/%s/state" % c.id, body={"state": "SOFT_SUNSET"})
    assert r.status == 200, r
    wait_until(lambda: b.nodes().get(c.id, {}).get("state") == "SOFT_SUNSET", T(5), 0.05,
               "C's record in SOFT_SUNSET")
    new = start_player(module_procs, c.srv, stream="drain", name="rtmpdump-new")
    exited(new, T(10))
    c.srv.wait_log(r"draining \(SOFT_SUNSET\)", T(5))
    assert old.poll() is None and pub.poll() is None
    assert len(c.api.data(subs)) == 1
    assert_error(b.api.request("PUT", "cluster/nodes/%s/state" % c.id,
                               body={"state": "ASLEEP"}), 400)
    assert_error(b.api.request("PUT", "cluster/nodes/nope/state",
                               body={"state": "INSERVICE"}), 404)
    r = b.api.request("PUT", "cluster/nodes/%s/state" % c.id, body={"state": "INSERVICE"})
    assert r.status == 200, r
    wait_until(lambda: b.nodes().get(c.id, {}).get("state") == "INSERVICE", T(5), 0.05,
               "C back in service")
    module_procs.stop(old)
    module_procs.stop(pub)


def test_redis_restart_mid_stream(nodes, redis, module_procs, media_src, tmp_path):
    a, b, _ = nodes
    pub = publish(module_procs, media_src, a, "steady")
    wait_stream_live(a.srv.port, "live", "steady", T(15))
    out = tmp_path / "steady.flv"
    player = module_procs.start(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
                                 "-i", a.url("live", "steady"), "-c", "copy", "-f", "flv",
                                 str(out)], "ffmpeg-player")
    wait_until(lambda: out.exists() and out.stat().st_size > 20000, T(10), 0.1, "player output")
    wait_placed(b, "live/steady", a.id, T(5))
    redis.kill()
    wait_until(lambda: not a.redis_up(), T(5), 0.05, "A to see Redis down")
    size = out.stat().st_size
    # Still served while Redis is away: the output grows, nobody exits.
    wait_until(lambda: out.stat().st_size > size + 50000, T(10), 0.1, "player output to grow")
    assert pub.poll() is None and player.poll() is None
    # New placements fail clearly? No: a local publisher is served; placed when Redis returns.
    redis.start()
    wait_until(a.redis_up, T(10), 0.05, "A to reconnect")
    wait_placed(b, "live/steady", a.id, T(10))
    wait_nodes(b, [n.id for n in nodes], T(5))
    assert pub.poll() is None and player.poll() is None
    a.srv.wait_log(r"cluster: Redis .* up again", T(5))
    module_procs.stop(player)
    module_procs.stop(pub)


def test_sentinel_finds_the_master(redis, module_sluice_factory, tmp_path_factory):
    sentinel = RedisServer(tmp_path_factory.mktemp("sentinel"), sentinel_of=redis).start()
    try:
        assert sentinel.cmd("SENTINEL", "get-master-addr-by-name", "mymaster")[1] == \
            str(redis.port)
        (n,) = start_nodes(module_sluice_factory, "127.0.0.1:1", 1, prefix=unique_prefix(),
                           sentinel=[sentinel],
                           cluster={"redis_password": REDIS_PASSWORD})
        n.srv.secrets |= {REDIS_PASSWORD}
        wait_until(n.redis_up, T(10), 0.05, "the node to reach the master")
        assert n.cluster()["redis"]["address"] == "127.0.0.1:%d" % redis.port
        wait_nodes(n, [n.id], T(5))
    finally:
        sentinel.stop()


def test_kill9_node_disappears_within_the_lease(nodes):
    a, b, c = nodes
    wait_nodes(a, [n.id for n in nodes], T(5))
    c.srv.proc.send_signal(signal.SIGKILL)
    c.srv.proc.wait(10)
    t0 = time.monotonic()
    wait_nodes(a, [a.id, b.id], T(LEASE_S + 3))
    gone_after = time.monotonic() - t0
    assert gone_after < LEASE_S + 1.5, gone_after
    c.srv.proc = None  # killed on purpose: no clean-exit check
    a.srv.wait_log(r"node %s .* left \(lease expired\)" % c.id, T(5))
