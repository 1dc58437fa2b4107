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

import re
import signal
import subprocess
import time

import pytest

from api_helpers import EventReader, assert_error, start_player
from clusterlib import RedisServer, redis_cmd, start_nodes, unique_prefix, wait_nodes, wait_placed
from conftest import (SLUICE_BIN, T, child_env, ffmpeg_publish_cmd, is_sanitizer_build,
                      wait_stream_live, wait_until)

pytestmark = pytest.mark.cluster

REDIS_PASSWORD = "e2e-redis-pw-5f1c2a"
CLUSTER_PASSWORD = "e2e-cluster-pw-8d3b07"
LEASE_S = 3.0
REDIS_DB = 2


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    r = RedisServer(tmp_path_factory.mktemp("redis"), password=REDIS_PASSWORD).start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def nodes(module_sluice_factory, redis):
    ns = start_nodes(module_sluice_factory, redis, 3,
                     cluster={"password": CLUSTER_PASSWORD, "redis_db": REDIS_DB})
    for n in ns:
        n.srv.secrets |= {REDIS_PASSWORD, CLUSTER_PASSWORD}
    return ns


def publish(module_procs, media_src, node, stream, name=None):
    return module_procs.start(ffmpeg_publish_cmd(media_src, node.url("live", stream)),
                              name or "ffmpeg-" + stream)


def exited(p, timeout):
    wait_until(lambda: p.poll() is not None, timeout, 0.05, "%s to exit" % p.name)
    return p.returncode


@pytest.mark.parametrize("env,problem", [
    ({"SLUICE_CLUSTER_REDIS": "nohost"}, "cluster.redis: expected host:port"),
    ({"SLUICE_CLUSTER_REDIS": "a:1,b:99999"}, "cluster.redis: expected host:port"),
    ({"SLUICE_CLUSTER_SENTINEL": "s1:26379,"}, None),
    ({"SLUICE_CLUSTER_SENTINEL": "s1"}, "cluster.sentinel: expected host:port"),
    ({"SLUICE_CLUSTER_REDIS": "[::1]:6379,10.0.0.1:6380"}, None),
    ({"SLUICE_CLUSTER_NODE_ID": "a b"}, "cluster.node_id: a node id is 1-63 characters"),
    ({"SLUICE_CLUSTER_REPORT_INTERVAL": "5s"}, "cluster.report_interval: must be shorter"),
    ({"SLUICE_CLUSTER_PREFIX": "a b:"}, "cluster.prefix: no spaces"),
])
def test_config_check(env, problem):
    """--check-config reports each cluster problem at its key (nothing is contacted)."""
    p = subprocess.run([SLUICE_BIN, "--check-config"], capture_output=True, text=True,
                       timeout=T(30), env=child_env(dict(env, SLUICE_CLUSTER_ENABLED="true")))
    out = p.stdout + p.stderr
    if problem is None:
        assert p.returncode == 0, out
    else:
        assert p.returncode != 0 and problem in out, out


def test_nodes_see_each_other(nodes):
    ids = [n.id for n in nodes]
    for n in nodes:
        seen = wait_nodes(n, ids, T(5))
        me = seen[n.id]
        assert me["self"] is True and me["state"] == "INSERVICE" and me["role"] == "all"
        assert me["ports"]["http"] == n.http_port and me["ports"]["rtmp"] == n.srv.port
        assert me["host"] == "127.0.0.1" and me["load"]["max_connections"] > 0
    c = nodes[1].cluster()
    assert c["enabled"] is True and c["node"]["id"] == nodes[1].id and c["redis"]["up"] is True
    text = str(c)
    assert REDIS_PASSWORD not in text and CLUSTER_PASSWORD not in text
    # The layout of docs/cluster.md, in the configured database.
    prefix = c["redis"]["prefix"]
    members = redis_cmd(int(c["redis"]["address"].split(":")[1]), "SMEMBERS", prefix + "nodes",
                        password=REDIS_PASSWORD, db=REDIS_DB)
    assert sorted(members) == sorted(ids)
    assert redis_cmd(int(c["redis"]["address"].split(":")[1]), "DBSIZE",
                     password=REDIS_PASSWORD) == 0  # nothing in db 0
    metrics = nodes[1].api.get("/metrics").body.decode()
    assert "sluice_cluster_redis_up 1\n" in metrics
    assert "sluice_cluster_nodes 3\n" in metrics
    assert "sluice_cluster_placements " in metrics


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


def test_stale_placement_under_own_id_is_dropped(nodes, redis, module_procs, media_src):
    """A placement under A's id that no publisher on A backs (left by a former process
    with the same id, or restored from an old dump) is deleted by A."""
    a, b, _ = nodes
    prefix = a.cluster()["redis"]["prefix"]
    redis.cmd("SET", prefix + "stream:live/ghost", a.id, "PX", "60000", db=REDIS_DB)
    redis.cmd("SADD", prefix + "streams", "live/ghost", db=REDIS_DB)
    wait_until(lambda: redis.cmd("GET", prefix + "stream:live/ghost", db=REDIS_DB) is None,
               T(5), 0.05, "A to drop its stale placement")
    wait_placed(b, "live/ghost", None, T(5))
    # Someone else's placement is left alone, and refuses a publisher on A.
    redis.cmd("SET", prefix + "stream:live/other", "elsewhere", "PX", "60000", db=REDIS_DB)
    redis.cmd("SADD", prefix + "streams", "live/other", db=REDIS_DB)
    wait_placed(a, "live/other", "elsewhere", T(5))
    refused = publish(module_procs, media_src, a, "other", name="ffmpeg-other")
    assert exited(refused, T(15)) != 0
    a.srv.wait_log(r"publish of other refused: stream is live on node elsewhere", T(5))
    assert redis.cmd("GET", prefix + "stream:live/other", db=REDIS_DB) == "elsewhere"
    redis.cmd("DEL", prefix + "stream:live/other", db=REDIS_DB)


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


def test_node_events_on_the_event_stream(nodes, module_sluice_factory, redis):
    """node_up when a node joins, node_down (reason left) when it stops, on every
    node's event stream; events name the cluster node they come from."""
    a = nodes[0]
    reader = EventReader(a.srv, {"type": "node_up,node_down"})
    try:
        prefix = a.cluster()["redis"]["prefix"]
        (d,) = start_nodes(module_sluice_factory, redis, 1, prefix=prefix, ids=["d-joiner"],
                           cluster={"password": CLUSTER_PASSWORD, "redis_db": REDIS_DB})
        d.srv.secrets |= {REDIS_PASSWORD, CLUSTER_PASSWORD}

        def seen(kind):
            return [e for e in reader.events if e.get("event") == kind
                    and e.get("session") == "d-joiner"]

        wait_until(lambda: seen("node_up"), T(5), 0.05, "node_up of d-joiner")
        up = seen("node_up")[0]
        assert up["node"] == a.id and up["protocol"] == "cluster" and up["reason"] == "joined"
        assert up["remote_port"] == d.http_port
        assert d.srv.stop() == 0
        wait_until(lambda: seen("node_down"), T(5), 0.05, "node_down of d-joiner")
        assert seen("node_down")[0]["reason"] == "left"
    finally:
        reader.close()


def test_webhooks_name_the_cluster_node(redis, module_sluice_factory):
    """Webhook payloads in cluster mode: Red5's clusterNodeType by role, nodePublicIp the
    node's public host, cluster_node its id."""
    import http.server
    import json
    import threading

    got = []

    class Sink(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    try:
        url = "http://127.0.0.1:%d/hook" % sink.server_address[1]
        (e,) = start_nodes(module_sluice_factory, redis, 1, roles=["edge"], ids=["edge-hooks"],
                           config={"webhooks": {"url": url}},
                           cluster={"redis_db": REDIS_DB, "public_host": "198.51.100.4"})
        wait_until(e.redis_up, T(10), 0.05, "the edge to reach Redis")
        with pytest.raises(AssertionError):  # a player of a stream nobody publishes: connect
            wait_stream_live(e.srv.port, "live", "nothing", 0.5)
        wait_until(lambda: got, T(10), 0.05, "a webhook")
        b = got[0]
        assert b["clusterNodeType"] == "TYPE_EDGE" and b["cluster_node"] == "edge-hooks"
        assert b["nodePublicIp"] == "198.51.100.4"
    finally:
        sink.shutdown()
        sink.server_close()


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


def test_api_answers_match_the_spec(nodes):
    """The cluster routes in cluster mode against docs/openapi.yaml (test_openapi walks
    them on a single node, where they answer enabled: false)."""
    from test_openapi import check_response, load_spec, operations

    a, b, _ = nodes
    spec = load_spec()
    problems = []
    for method, path, op, _ in operations(spec):
        if not path.startswith("/api/v1/cluster") or method != "get":
            continue
        r = b.api.get(path.replace("{nodeId}", a.id))
        assert r.status == 200, (path, r)
        problems += check_response(spec, method, path, op, r, "cluster mode")
    put = [o for o in operations(spec) if o[1] == "/api/v1/cluster/nodes/{nodeId}/state"][0]
    r = b.api.request("PUT", "cluster/nodes/%s/state" % b.id, body={"state": "INSERVICE"})
    problems += check_response(spec, "put", put[1], put[2], r, "cluster mode")
    kick = [o for o in operations(spec) if o[1] == "/api/v1/cluster/kick"][0]
    r = b.api.request("POST", "cluster/kick", body={"node": a.id, "session": "NOSUCHSESSION"})
    problems += check_response(spec, "post", kick[1], kick[2], r, "cluster mode")
    assert not problems, "\n".join(problems)


@pytest.mark.exclusive  # measures how fast a node disappears
def test_kill9_node_disappears_within_the_lease(nodes):
    a, b, c = nodes
    wait_nodes(a, [n.id for n in nodes], T(5))
    c.srv.proc.send_signal(signal.SIGKILL)
    c.srv.proc.wait(10)
    t0 = time.monotonic()
    wait_nodes(a, [a.id, b.id], T(LEASE_S + 3))
    gone_after = time.monotonic() - t0
    print("kill -9: gone from the snapshot after %.2f s (lease %.1f s)" % (gone_after, LEASE_S))
    assert gone_after < LEASE_S + 1.5, gone_after
    c.srv.proc = None  # killed on purpose: no clean-exit check
    a.srv.wait_log(r"node %s .* left \(lease expired\)" % c.id, T(5))


@pytest.mark.exclusive  # measures how fast a node disappears
def test_graceful_stop_leaves_at_once(nodes):
    """SIGTERM: the node says bye, deletes its record and placements, exits 0; the
    others drop it before its lease would have ended."""
    a, b, _ = nodes
    wait_nodes(a, [a.id, b.id], T(5))
    t0 = time.monotonic()
    assert b.srv.stop() == 0
    wait_nodes(a, [a.id], T(LEASE_S + 3))
    assert time.monotonic() - t0 < LEASE_S - 1, time.monotonic() - t0
    a.srv.wait_log(r"node %s \(all, 127\.0\.0\.1\) left$" % b.id, T(5), flags=re.M)


class FakeRedis:
    """A hostile "Redis": answers the connection setup (AUTH, SELECT, PING, SUBSCRIBE)
    like Redis, then misbehaves on every other command: `mode` "huge" starts a bulk
    string of 200 MB and streams it, "array" announces an array of 10 million elements,
    "silent" never answers."""

    def __init__(self, mode):
        import socket as socketlib
        import threading

        self.mode = mode
        self.sock = socketlib.socket()
        self.sock.setsockopt(socketlib.SOL_SOCKET, socketlib.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.misbehaved = threading.Event()
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading

        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buf = b""
        try:
            while not self.stopping:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while buf.startswith(b"*") and b"\r\n" in buf:
                    args, buf = self._parse(buf)
                    if args is None:
                        break
                    name = args[0].upper()
                    if name in (b"AUTH", b"SELECT"):
                        conn.sendall(b"+OK\r\n")
                    elif name == b"PING":
                        conn.sendall(b"+PONG\r\n")
                    elif name == b"SUBSCRIBE":
                        ch = args[1]
                        conn.sendall(b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(ch), ch))
                    else:
                        self.misbehaved.set()
                        if self.mode == "huge":
                            conn.sendall(b"$200000000\r\n")
                            chunk, sent = b"x" * 65536, 0
                            while not self.stopping and sent < 200000000:
                                conn.sendall(chunk)
                                sent += len(chunk)
                        elif self.mode == "array":
                            conn.sendall(b"*10000000\r\n")
                        # silent: nothing
        except OSError:
            return
        finally:
            conn.close()

    @staticmethod
    def _parse(buf):
        """One RESP array of bulk strings from buf: (args, rest), or (None, buf) if partial."""
        try:
            head, rest = buf.split(b"\r\n", 1)
            args = []
            for _ in range(int(head[1:])):
                ln, rest = rest.split(b"\r\n", 1)
                n = int(ln[1:])
                if len(rest) < n + 2:
                    return None, buf
                args.append(rest[:n])
                rest = rest[n + 2:]
            return args, rest
        except ValueError:
            return None, buf

    def close(self):
        self.stopping = True
        self.sock.close()


@pytest.mark.parametrize("mode,why", [("huge", "reply too large"),
                                      ("array", "connection lost"),
                                      ("silent", "command timed out")])
def test_hostile_redis_replies_are_bounded(sluice_factory, mode, why):
    """Reply caps and command timeouts: the link drops (and is retried), the node lives,
    its memory stays far below what the peer offered."""
    fake = FakeRedis(mode)
    try:
        # A long command timeout for "huge", so that the size cap (not the timeout) ends
        # the reply even on a slow (sanitizer) build.
        (n,) = start_nodes(sluice_factory, "127.0.0.1:%d" % fake.port, 1,
                           cluster={"command_timeout": "30s"} if mode == "huge" else None)
        wait_until(fake.misbehaved.is_set, T(10), 0.05, "a command to the fake Redis")
        n.srv.wait_log(r"cluster: Redis 127\.0\.0\.1:%d lost: %s" % (fake.port, why), T(10))
        assert n.srv.alive()
        if not is_sanitizer_build():  # ASan's quarantine keeps freed buffers resident
            rss_kb = int([line for line in open("/proc/%d/status" % n.srv.proc.pid)
                          if line.startswith("VmRSS")][0].split()[1])
            assert rss_kb < 150 * 1024, rss_kb  # offered: 200 MB (huge), 80 MB of pointers
        assert n.cluster()["redis"]["failures"] >= 1  # (it reconnects: the setup works)
    finally:
        fake.close()
