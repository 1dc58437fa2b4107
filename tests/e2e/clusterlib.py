"""Cluster test helpers (issue 19), shared by every cluster suite (core, relay, stream
manager, autoscale, proxy):

- RedisServer: a private redis-server on a free loopback port in a temp dir, with
  `--save "" --appendonly no` (never the system's Redis), that a test can kill,
  restart on the same port, or run in --sentinel mode; a tiny RESP client (`cmd`)
  so that tests need no Redis library.
- cluster_config(redis, ...): the `cluster` section of a node's config.
- start_nodes(factory, redis, n, ...): N sluice nodes with cluster config, each on
  its own free ports (conftest's factory gives every listener a free port), the
  Server API on a known token (api_helpers.TOKEN); returns Node objects with .srv,
  .api, .id.
- wait helpers on the cluster API (GET /api/v1/cluster, /api/v1/cluster/nodes):
  no sleeps, every wait has a deadline.

Fixture: `redis_server` (module scope: one Redis per test file); a suite imports it
with `from clusterlib import redis_server  # noqa: F401` (pytest finds fixtures
imported into the test module) and starts nodes with conftest's
module_sluice_factory: `start_nodes(module_sluice_factory, redis_server, 3)`.
"""

import itertools
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time

import pytest

from api_helpers import TOKEN, Api, api_config, http_port_of
from conftest import HOST, T, free_port, port_open, wait_until

REDIS_BIN = shutil.which("redis-server") or "/usr/bin/redis-server"
_prefix_seq = itertools.count(1)


# ----------------------------------------------------------------------------
# A minimal RESP client
# ----------------------------------------------------------------------------

class RespError(Exception):
    pass


def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class _Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RespError("bad reply %r" % line)


def redis_cmd(port, *args, password=None, db=0, timeout=5.0):
    """One command to the Redis on 127.0.0.1:port (database db); returns the decoded
    reply (RespError for an error reply)."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        r = _Reader(s)
        if password:
            s.sendall(_encode(["AUTH", password]))
            r.reply()
        if db:
            s.sendall(_encode(["SELECT", db]))
            r.reply()
        s.sendall(_encode(list(args)))
        return r.reply()


# ----------------------------------------------------------------------------
# redis-server
# ----------------------------------------------------------------------------

class RedisServer:
    """A private redis-server (or, with sentinel_of, a Sentinel watching one)."""

    def __init__(self, workdir, port=None, password=None, sentinel_of=None,
                 master_name="mymaster"):
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.password = password
        self.sentinel_of = sentinel_of
        self.master_name = master_name
        self.proc = None
        self.log_path = self.workdir / ("redis-%d.log" % self.port)
        self._log = None

    @property
    def address(self):
        return "%s:%d" % (HOST, self.port)

    def cmdline(self):
        if self.sentinel_of is not None:
            conf = self.workdir / ("sentinel-%d.conf" % self.port)
            m = self.sentinel_of
            lines = ["port %d" % self.port, "bind 127.0.0.1", "dir %s" % self.workdir,
                     "sentinel monitor %s 127.0.0.1 %d 1" % (self.master_name, m.port),
                     "sentinel down-after-milliseconds %s 2000" % self.master_name]
            if m.password:
                lines.append("sentinel auth-pass %s %s" % (self.master_name, m.password))
            conf.write_text("\n".join(lines) + "\n")
            return [REDIS_BIN, str(conf), "--sentinel"]
        cmd = [REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(self.workdir), "--protected-mode", "no"]
        if self.password:
            cmd += ["--requirepass", self.password]
        return cmd

    def start(self, timeout=None):
        if not os.access(REDIS_BIN, os.X_OK):
            pytest.skip("redis-server not installed")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmdline(), stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=str(self.workdir))
        wait_until(self.ping, timeout or T(10), 0.05, "redis on port %d" % self.port)
        return self

    def ping(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError("redis-server exited (%s): %s" % (
                self.proc.returncode, self.log_path.read_text(errors="replace")[-2000:]))
        try:
            return self.cmd("PING") == "PONG"
        except (OSError, RespError):
            return False

    def cmd(self, *args, db=0):
        return redis_cmd(self.port, *args, password=self.password, db=db)

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(T(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._log:
            self._log.close()
            self._log = None

    def kill(self):
        """SIGKILL: Redis vanishes without a word (its data too: no persistence)."""
        self.stop(signal.SIGKILL)

    def restart(self):
        """Starts again on the same port (empty: nothing was saved)."""
        self.stop()
        wait_until(lambda: not port_open(self.port), T(5), 0.05, "port %d free" % self.port)
        return self.start()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    """A private redis-server for the test module."""
    r = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield r
    r.stop()


# ----------------------------------------------------------------------------
# sluice nodes
# ----------------------------------------------------------------------------

def unique_prefix():
    """A key prefix no other cluster of this run uses (several suites may share a Redis)."""
    return "t%d-%d:" % (os.getpid(), next(_prefix_seq))


def cluster_config(redis, node_id=None, role="all", prefix="sluice:", lease="3s",
                   report_interval="300ms", extra=None, sentinel=None):
    """The `cluster` section for one node. redis: a RedisServer (or "host:port")."""
    c = {"enabled": True,
         "redis": redis.address if hasattr(redis, "address") else str(redis),
         "prefix": '"%s"' % prefix, "role": role, "lease": lease, "report_interval": report_interval,
         "command_timeout": "1s", "reconnect_max": "500ms"}
    if getattr(redis, "password", None):
        c["redis_password"] = redis.password
    if node_id:
        c["node_id"] = node_id
    if sentinel is not None:
        c["sentinel"] = ",".join(s.address for s in sentinel)
        c["sentinel_master"] = sentinel[0].master_name
    c.update(extra or {})
    return c


class Node:
    """One sluice node of a test cluster."""

    def __init__(self, srv, node_id):
        self.srv = srv
        self.id = node_id
        self.api = Api(srv)

    @property
    def http_port(self):
        return http_port_of(self.srv)

    def url(self, app="live", stream="stream1"):
        return self.srv.url(app, stream)

    def cluster(self):
        """GET /api/v1/cluster (data)."""
        return self.api.data("cluster")

    def nodes(self):
        """GET /api/v1/cluster/nodes: {id: node} (empty when the API is not answering)."""
        try:
            r = self.api.get("cluster/nodes")
        except OSError:
            return {}
        return {n["id"]: n for n in r.data} if r.status == 200 else {}

    def streams(self):
        """{path: origin id} of the placements this node sees."""
        try:
            r = self.api.get("cluster")
        except OSError:
            return {}
        return {s["path"]: s["origin"] for s in r.data["streams"]} if r.status == 200 else {}

    def redis_up(self):
        try:
            r = self.api.get("cluster")
        except OSError:
            return False
        return r.status == 200 and r.data["redis"]["up"]


def start_nodes(factory, redis, n=2, roles=None, prefix=None, config=None, ids=None,
                cluster=None, sentinel=None):
    """Starts n nodes (all of one cluster: one prefix) and waits until their APIs
    answer. roles: a list of roles (default "all"); config: extra config merged into
    each node's; cluster: extra keys of the `cluster` section. Returns [Node]."""
    prefix = prefix or unique_prefix()
    roles = roles or ["all"] * n
    nodes = []
    for i in range(n):
        node_id = (ids[i] if ids else "n%d-%s" % (i, prefix.rstrip(":").replace(":", "-")))
        cfg = api_config(config)
        cfg["cluster"] = cluster_config(redis, node_id=node_id, role=roles[i], prefix=prefix,
                                        extra=cluster, sentinel=sentinel)
        srv = factory(name="node%d-%s" % (i, node_id), config=cfg)
        port = http_port_of(srv)
        wait_until(lambda: port_open(port), T(10), message="http port %d" % port)
        nodes.append(Node(srv, node_id))
    return nodes


def wait_nodes(node, ids, timeout=None):
    """Waits until node's snapshot holds exactly the node ids in ids; returns {id: node}."""
    want = set(ids)
    seen = {}

    def ok():
        seen.clear()
        seen.update(node.nodes())
        return set(seen) == want

    wait_until(ok, timeout or T(10), 0.05,
               lambda: "%s to see nodes %s (sees %s)" % (node.id, sorted(want), sorted(seen)))
    return dict(seen)


def wait_placed(node, path, origin, timeout=None):
    """Waits until node's snapshot places path on origin (None: not placed)."""
    seen = {}

    def ok():
        seen.clear()
        seen.update(node.streams())
        return seen.get(path) == origin

    wait_until(ok, timeout or T(10), 0.05,
               lambda: "%s to see %s on %s (sees %s)" % (node.id, path, origin, seen))


__all__ = ["RedisServer", "redis_server", "redis_cmd", "cluster_config", "start_nodes",
           "wait_nodes", "wait_placed", "unique_prefix", "Node", "TOKEN", "time"]
