"""Cluster mode on a sharded Redis Cluster (issue 19: "Redis Sentinel/Cluster addresses
accepted in the config"; docs/cluster.md, "Redis Cluster").

Six redis-server processes with cluster support on free loopback ports (three masters,
one replica each, cluster-node-timeout 1 s, requirepass, made by `redis-cli --cluster
create`), and
two sluice nodes given all six as seeds (`cluster.redis_cluster: true`): an origin and an
edge that also runs the stream manager.

  1. the nodes join through the seeds; every key sluice writes is in the one slot of
     its hash tag ("{prefix}"); the stream manager names the origin for a publish,
     ffmpeg publishes there, and the edge plays it (the relay pulls from the origin);
  2. the slot is migrated by hand to another master while the nodes run
     (SETSLOT IMPORTING/MIGRATING, MIGRATE, then a pause in which the source answers
     ASK, then SETSLOT NODE): the nodes follow ASK, then MOVED; the link stays up, the
     records and the placement keep their leases, and a new publish is placed;
  3. kill -9 of the master that owns the slot: once its replica has taken over, both
     nodes are back on Redis and a new publish is placed within a deadline (the time
     from the kill is printed, `-s`).

A fake cluster node that answers every command with a redirection loop, a malformed
redirection or CLUSTERDOWN shows that each is a link error paced by the backoff, not a spin.

Tests run in file order on one Redis Cluster and one pair of nodes (the kill is last).
Skipped when redis-server lacks cluster support or redis-cli is missing.
"""

import pathlib
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

import rtmp_client
from api_helpers import Api, api_config, http_port_of
from clusterlib import RedisServer, RespError, cluster_config, start_nodes, unique_prefix
from conftest import HOST, SLUICE_BIN, T, child_env, ffmpeg_publish_cmd, free_port, wait_until

LEASE_S = 3.0
PASSWORD = "rcluster-pw-8c1e"
REDIS_PASSWORD = "rcluster-redis-pw-41d9"

pytestmark = [pytest.mark.cluster,
              pytest.mark.skipif(shutil.which("redis-server") is None,
                                 reason="redis-server not installed")]


# ----------------------------------------------------------------------------
# the Redis Cluster
# ----------------------------------------------------------------------------

class ClusterRedis(RedisServer):
    """One redis-server with cluster support (its own nodes.conf in its work dir)."""

    def cmdline(self):
        # The cluster bus on a free port of its own (the default, port + 10000, may be taken).
        return super().cmdline() + [
            "--cluster-enabled", "yes", "--cluster-port", str(free_port()),
            "--cluster-config-file", str(self.workdir / ("nodes-%d.conf" % self.port)),
            "--cluster-node-timeout", "1000",
            # Replicas in sync at once (no 5 s wait to batch diskless syncs), and a replica
            # may take over however long its link was down.
            "--repl-diskless-sync-delay", "0", "--cluster-replica-validity-factor", "0",
            "--masterauth", REDIS_PASSWORD]

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def info(self):
        return dict(line.split(":", 1) for line in self.cmd("CLUSTER", "INFO").split("\r\n")
                    if ":" in line)


def slot_owner(servers, slot):
    """(host, port, node id) of the master serving slot, as a live server sees it."""
    for s in servers:
        if not s.alive():
            continue
        try:
            for entry in s.cmd("CLUSTER", "SLOTS"):
                if int(entry[0]) <= slot <= int(entry[1]):
                    return entry[2][0], int(entry[2][1]), entry[2][2]
        except (OSError, RespError):
            continue
    return None


def by_port(servers, port):
    return next(s for s in servers if s.port == port)


def replicas_in_sync(servers):
    """Every replica's link to its master is up (a failover needs a synced replica)."""
    for s in servers:
        info = s.cmd("INFO", "replication")
        if "role:slave" in info and "master_link_status:up" not in info:
            return False
    return True


def all_ok(servers):
    """Every live server says cluster_state:ok and agrees on who serves every slot."""
    views = set()
    for s in servers:
        if not s.alive():
            continue
        try:
            if s.info().get("cluster_state") != "ok":
                return False
            views.add(tuple(sorted((int(e[0]), int(e[1]), int(e[2][1]))
                                   for e in s.cmd("CLUSTER", "SLOTS"))))
        except (OSError, RespError):
            return False
    return len(views) == 1


@pytest.fixture(scope="module")
def rcluster(tmp_path_factory):
    cli = shutil.which("redis-cli")
    if cli is None:
        pytest.skip("redis-cli not installed (Debian's redis-tools)")
    base = pathlib.Path(tmp_path_factory.mktemp("rcluster"))
    servers = []
    try:
        first = ClusterRedis(base / "r0", password=REDIS_PASSWORD)
        try:
            first.start()
            first.info()
        except (AssertionError, RespError) as e:
            pytest.skip("redis-server without cluster support: %s" % str(e)[:200])
        servers.append(first)
        for i in range(1, 6):
            servers.append(ClusterRedis(base / ("r%d" % i), password=REDIS_PASSWORD).start())
        out = subprocess.run([cli, "--no-auth-warning", "-a", REDIS_PASSWORD, "--cluster", "create"] + [s.address for s in servers] +
                             ["--cluster-replicas", "1", "--cluster-yes"],
                             capture_output=True, text=True, timeout=T(60), stdin=subprocess.DEVNULL)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        wait_until(lambda: all_ok(servers), T(20), 0.1, "cluster_state:ok on all six")
        wait_until(lambda: replicas_in_sync(servers), T(20), 0.1, "replicas in sync")
        yield servers
    finally:
        for s in servers:
            s.stop()


# ----------------------------------------------------------------------------
# the sluice nodes
# ----------------------------------------------------------------------------

class SM:
    """SM 4.0 lookups on the node that runs the stream manager."""

    def __init__(self, srv):
        self.base = "http://%s:%d/streammanager/api/4.0" % (HOST, http_port_of(srv))

    def lookup(self, action, path):
        import json
        import urllib.error
        import urllib.request
        try:
            with urllib.request.urlopen("%s/event/%s?action=%s" % (self.base, path, action),
                                        timeout=T(10)) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, e.read()


@pytest.fixture(scope="module")
def nodes(module_sluice_factory, rcluster):
    prefix = unique_prefix()
    seeds = ",".join(s.address for s in rcluster)

    def node(node_id, role, extra=None):
        cfg = api_config(dict({"relay": {"retry_min": "100ms", "retry_max": "500ms",
                                         "open_timeout": "3s", "read_timeout": "3s"}},
                              **(extra or {})))
        cfg["cluster"] = cluster_config(seeds, node_id=node_id, role=role, prefix=prefix,
                                        lease="%dms" % int(LEASE_S * 1000),
                                        extra={"redis_cluster": True, "public_host": HOST,
                                               "password": PASSWORD,
                                               "redis_password": REDIS_PASSWORD})
        srv = module_sluice_factory(name=node_id, config=cfg)
        srv.secrets |= {PASSWORD, REDIS_PASSWORD}  # never in a log line nor the API
        srv.api = Api(srv)
        return srv

    origin = node("rc-origin", "origin")
    edge = node("rc-edge", "edge", extra={
        "stream_manager": {"enabled": True, "lookups_per_minute": 100000}})
    tag = prefix.rstrip(":")
    slot = int(rcluster[0].cmd("CLUSTER", "KEYSLOT", "{%s}" % tag))
    wait_until(lambda: {"rc-origin", "rc-edge"} <= set(reported(edge)) and
               {"rc-origin", "rc-edge"} <= set(reported(origin)), T(15), 0.05,
               "both nodes in both snapshots")
    return {"origin": origin, "edge": edge, "sm": SM(edge), "prefix": prefix, "tag": tag,
            "slot": slot}


def reported(srv):
    """{node id: node} of srv's snapshot."""
    try:
        r = srv.api.get("cluster/nodes")
    except OSError:
        return {}
    return {n["id"]: n for n in r.data} if r.status == 200 else {}


def placements(srv):
    try:
        r = srv.api.get("cluster")
    except OSError:
        return {}
    return {s["path"]: s["origin"] for s in r.data["streams"]} if r.status == 200 else {}


def redis_up(srv):
    try:
        r = srv.api.get("cluster")
    except OSError:
        return False
    return r.status == 200 and r.data["redis"]["up"]


def publish_where_named(nodes, module_procs, media_src, stream):
    """SM broadcast lookup -> ffmpeg publishes to the node it names; returns the process.
    (After a Redis failover the origin's record may have expired with its lease: the
    lookup answers 404 until the origin has written it again and the edge has read it.)"""
    got = {}

    def named():
        got["r"] = nodes["sm"].lookup("broadcast", "live/" + stream)
        return got["r"][0] == 200
    wait_until(named, T(10), 0.05, lambda: "a broadcast lookup answer (last %r)" % (got,))
    st, js = got["r"]
    assert js["nodeId"] == "rc-origin", js
    url = "rtmp://%s:%d/live/%s" % (js["serverAddress"], js["rtmpPort"], stream)
    return module_procs.start(ffmpeg_publish_cmd(media_src, url), "ffmpeg-" + stream)


def wait_placed(srv, path, timeout):
    wait_until(lambda: placements(srv).get(path) == "rc-origin", timeout, 0.05,
               lambda: "%s placed on rc-origin (sees %s)" % (path, placements(srv)))


def play_on_edge(nodes, stream):
    """SM subscribe lookup names the edge; 5 video frames arrive there over RTMP."""
    st, js = nodes["sm"].lookup("subscribe", "live/" + stream)
    assert st == 200, js
    assert js["nodeId"] == "rc-edge", js
    c, _ = rtmp_client.open_player(js["serverAddress"], js["rtmpPort"], "live", stream,
                                   timeout=T(10))
    try:
        c.wait_video_frames(5, T(15))
    finally:
        c.close()


def slot_keys(servers, slot):
    """Keys of slot on its master."""
    host, port, _ = slot_owner(servers, slot)
    return by_port(servers, port).cmd("CLUSTER", "GETKEYSINSLOT", slot, 1000)


# ----------------------------------------------------------------------------
# tests
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("env,problem", [
    ({}, None),
    ({"SLUICE_CLUSTER_REDIS_DB": "1"}, "cluster.redis_db: must be 0 with cluster.redis_cluster"),
    ({"SLUICE_CLUSTER_SENTINEL": "s1:26379"}, "cluster.redis_cluster: Redis Cluster and Sentinel"),
    ({"SLUICE_CLUSTER_PREFIX": ""}, "cluster.prefix: with cluster.redis_cluster"),
    ({"SLUICE_CLUSTER_PREFIX": "}x:"}, "cluster.prefix: with cluster.redis_cluster"),
    ({"SLUICE_CLUSTER_PREFIX": "app:{prod}:"}, None),
])
def test_config_check(env, problem):
    """--check-config refuses what Redis Cluster cannot do (nothing is contacted)."""
    p = subprocess.run([SLUICE_BIN, "--check-config"], capture_output=True, text=True,
                       timeout=T(30), env=child_env(dict(env, SLUICE_CLUSTER_ENABLED="true",
                                                         SLUICE_CLUSTER_REDIS_CLUSTER="true",
                                                         SLUICE_CLUSTER_REDIS="10.0.0.1:7000")))
    out = p.stdout + p.stderr
    if problem is None:
        assert p.returncode == 0, out
    else:
        assert p.returncode != 0 and problem in out, out


def test_join_publish_and_play(nodes, rcluster, module_procs, media_src):
    origin, edge = nodes["origin"], nodes["edge"]
    r = origin.api.get("cluster")
    assert r.status == 200 and r.data["redis"]["up"], r.data
    assert r.data["redis"]["prefix"] == "{%s}:" % nodes["tag"], r.data["redis"]
    publish_where_named(nodes, module_procs, media_src, "rc1")
    wait_placed(edge, "live/rc1", T(15))
    play_on_edge(nodes, "rc1")
    # Every key sluice wrote is in the slot of its hash tag (no CROSSSLOT possible).
    keys = slot_keys(rcluster, nodes["slot"])
    tag = "{%s}:" % nodes["tag"]
    for k in ("node:rc-origin", "node:rc-edge", "nodes", "stream:live/rc1", "streams"):
        assert tag + k in keys, keys
    on_masters = sum(int(s.cmd("DBSIZE")) for s in rcluster if s.cmd("ROLE")[0] == "master")
    assert on_masters == len(keys), (on_masters, keys)  # nothing outside that slot


def test_slot_migration_followed(nodes, rcluster, module_procs, media_src):
    origin, edge = nodes["origin"], nodes["edge"]
    slot = nodes["slot"]
    _, src_port, src_id = slot_owner(rcluster, slot)
    src = by_port(rcluster, src_port)
    dst_port, dst_id = next((int(e[2][1]), e[2][2]) for e in src.cmd("CLUSTER", "SLOTS")
                            if int(e[2][1]) != src_port)
    dst = by_port(rcluster, dst_port)
    t0 = time.monotonic()
    dst.cmd("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
    src.cmd("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
    while True:
        keys = src.cmd("CLUSTER", "GETKEYSINSLOT", slot, 100)
        if not keys:
            break
        src.cmd("MIGRATE", HOST, dst_port, "", 0, 5000, "AUTH", REDIS_PASSWORD, "KEYS", *keys)
    # The source answers ASK now: the nodes' record writes go to the importing master.
    for s in (origin, edge):
        s.wait_log(r"slot %d is migrating to 127\.0\.0\.1:%d: ASK followed" % (slot, dst_port),
                   T(10))
    for s in [dst, src] + [x for x in rcluster if x not in (dst, src)]:
        try:
            s.cmd("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        except RespError:
            pass  # a replica refuses SETSLOT: it learns from its master
    for s in (origin, edge):
        s.wait_log(r"slot %d is served by 127\.0\.0\.1:%d" % (slot, dst_port), T(10))
    print("\nslot %d moved %d -> %d in %.2f s" % (slot, src_port, dst_port,
                                                   time.monotonic() - t0))
    # The records and the placement are refreshed on the new master (their leases grow
    # again there: only a write through dst can do that now).
    # (A key's PTTL only falls between writes: a rise is a write.)
    for key in ("node:rc-origin", "node:rc-edge", "stream:live/rc1"):
        key = "{%s}:%s" % (nodes["tag"], key)
        last = [int(dst.cmd("PTTL", key))]
        assert last[0] > 0, (key, last)

        def rose():
            now = int(dst.cmd("PTTL", key))
            up, last[0] = now > last[0], now
            return up
        wait_until(rose, T(5), 0.02, "%s refreshed on the new master" % key)
    assert placements(edge).get("live/rc1") == "rc-origin"
    assert {"rc-origin", "rc-edge"} <= set(reported(edge))
    assert redis_up(origin) and redis_up(edge)
    publish_where_named(nodes, module_procs, media_src, "rc2")
    wait_placed(edge, "live/rc2", T(10))
    play_on_edge(nodes, "rc2")


def test_master_killed_replica_takes_over(nodes, rcluster, module_procs, media_src):
    origin, edge = nodes["origin"], nodes["edge"]
    slot = nodes["slot"]
    _, port, _ = slot_owner(rcluster, slot)
    master = by_port(rcluster, port)
    t0 = time.monotonic()
    master.kill()
    wait_until(lambda: (slot_owner(rcluster, slot) or (0, port))[1] != port and
               all_ok(rcluster), T(20), 0.1, "a replica to take over the slot")
    t_promoted = time.monotonic() - t0
    wait_until(lambda: redis_up(origin) and redis_up(edge), T(10), 0.05, "both nodes on Redis")
    publish_where_named(nodes, module_procs, media_src, "rc3")
    wait_placed(edge, "live/rc3", T(10))
    t_placed = time.monotonic() - t0
    print("\nmaster %d killed: replica promoted after %.2f s, new publish placed after %.2f s"
          % (port, t_promoted, t_placed))
    print("".join(line + "\n" for line in origin.log_text().splitlines()
                  if "cluster: Redis" in line))
    # The placements made before the kill are there again (reconciled on reconnect).
    wait_placed(edge, "live/rc1", T(10))
    play_on_edge(nodes, "rc3")


# ----------------------------------------------------------------------------
# hostile cluster nodes
# ----------------------------------------------------------------------------

class FakeClusterNode:
    """Answers the connection setup like Redis (AUTH, PING, SUBSCRIBE, ASKING), then
    every other command with `reply` (a RESP error line; "{port}" is its own port)."""

    def __init__(self, reply):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.reply = reply.replace("{port}", str(self.port)).encode() + b"\r\n"
        self.connections = 0
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buf = b""
        try:
            while not self.stopping:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while True:
                    args, buf = _parse(buf)
                    if args is None:
                        break
                    name = args[0].upper()
                    if name in (b"AUTH", b"ASKING"):
                        conn.sendall(b"+OK\r\n")
                    elif name == b"PING":
                        conn.sendall(b"+PONG\r\n")
                    elif name == b"SUBSCRIBE":
                        ch = args[1]
                        conn.sendall(b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(ch), ch))
                    else:
                        conn.sendall(self.reply)
        except OSError:
            return
        finally:
            conn.close()

    def close(self):
        self.stopping = True
        self.sock.close()


def _parse(buf):
    """One RESP array of bulk strings: (args, rest), or (None, buf) when incomplete."""
    if not buf.startswith(b"*") or b"\r\n" not in buf:
        return None, buf
    head, rest = buf.split(b"\r\n", 1)
    args = []
    for _ in range(int(head[1:])):
        if b"\r\n" not in rest:
            return None, buf
        ln, rest = rest.split(b"\r\n", 1)
        n = int(ln[1:])
        if len(rest) < n + 2:
            return None, buf
        args.append(rest[:n])
        rest = rest[n + 2:]
    return args, rest


@pytest.mark.parametrize("reply,why", [
    ("-MOVED 42 127.0.0.1:{port}", "redirection loop|slot moved twice at once"),
    ("-ASK 42 127.0.0.1:{port}", "redirection loop"),
    ("-MOVED 42 " + "h" * 300 + ":6379", "malformed MOVED/ASK"),
    ("-MOVED 42 127.0.0.1:70000", "malformed MOVED/ASK"),
    ("-CLUSTERDOWN The cluster is down", "the Redis Cluster is failing over"),
])
def test_hostile_redirections_are_link_errors(sluice_factory, reply, why):
    """Each is a link failure (logged), retried after the jittered backoff: five failures
    take at least the backoff's lower bounds (50+100+200+250 ms), never a spin; every
    attempt opens a bounded number of connections (2, plus one per MOVED followed)."""
    fake = FakeClusterNode(reply)
    try:
        (n,) = start_nodes(sluice_factory, "%s:%d" % (HOST, fake.port), 1,
                           cluster={"redis_cluster": True})

        def failures():
            try:
                return n.cluster()["redis"]["failures"]
            except (OSError, KeyError, TypeError):
                return 0
        wait_until(lambda: failures() >= 1, T(10), 0.01, "a first link failure")
        t1 = time.monotonic()
        wait_until(lambda: failures() >= 5, T(15), 0.05, "five link failures")
        assert time.monotonic() - t1 >= 0.5
        n.srv.wait_log(r"cluster: Redis 127\.0\.0\.1:%d lost: (%s)" % (fake.port, why), T(5))
        assert fake.connections <= 5 * (failures() + 1), (fake.connections, failures())
        assert n.srv.alive()
        assert not re.search(r"AddressSanitizer", n.srv.log_text())
    finally:
        fake.close()
