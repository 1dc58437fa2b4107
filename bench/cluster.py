#!/usr/bin/env python3
"""The Redis-backed cluster on this machine (docs/performance.md, "Cluster: origin + edges"):

  1. players: the same N RTMP players of one stream held by 1 node, then by 1 origin + 2
     edges (players split over the edges, each edge one pull of the origin); for each layout
     the sluice processes' CPU (user + system, % of one core, summed over the nodes) over the
     window and the players' received video frame rate (25 = keeping up);
  2. hop latency: one player on the origin and one on an edge (found with the stream
     manager's subscribe lookup); each video frame matched by its bytes, its latency is its
     arrival on the edge minus its arrival on the origin (bench/relay_hop.py's method);
  3. failover, --rounds times: a player on the edge the stream manager names, kill -9 of that
     edge, then as a client does: lookup, play on the node named (again when refused);
     failover = kill -> first video frame on the other edge; also when the stream manager
     stopped naming the dead edge (lease 2 s). The killed edge is started again between
     rounds.

redis-server, ffmpeg publishing the 640x360 25 fps H.264 + AAC clip (800 kbit/s) in real time.
The stream manager is the origin node (stream_manager.enabled; it names edges for subscribe).

    SLUICE_BIN=$PWD/build/sluice /usr/bin/python3 bench/cluster.py [--players 40] [--seconds 8]

Prints one JSON object. The players are Python threads (tests/e2e/rtmp_client.py) on the same
two cores as the servers: N stays small, and this measures the cost per player and per hop,
not the most players a node holds.
"""
import argparse
import json
import pathlib
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))
sys.path.insert(0, str(HERE))

import conftest  # noqa: E402
import rtmp_client  # noqa: E402
from api_helpers import http_port_of  # noqa: E402
from clusterlib import RedisServer, cluster_config, unique_prefix  # noqa: E402
from relay_hop import arrivals, cpu_s, make_media, pct  # noqa: E402

LEASE = "2s"
STREAM = "bench1"


def node(tmp, name, redis, prefix, role, extra=None):
    cfg = {"cluster": cluster_config(redis, node_id=name, role=role, prefix=prefix, lease=LEASE,
                                     extra={"public_host": "127.0.0.1",
                                            "password": "bench-cluster-pw"}),
           # every player comes from 127.0.0.1
           "server": {"max_connections_per_address": 0}}
    cfg.update(extra or {})
    return conftest.Sluice(tmp / name, name, config=cfg).start()


def lookup(sm, action):
    url = "http://127.0.0.1:%d/streammanager/api/4.0/event/live/%s?action=%s" % (
        http_port_of(sm), STREAM, action)
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read())
    except OSError:
        return None


def wait(pred, timeout, what):
    conftest.wait_until(pred, timeout, 0.05, what)


def video_fps(players, since, until):
    rates = []
    for c in players:
        with c._cv:
            n = sum(1 for m in c.media if m.is_video and since <= m.arrival < until)
        rates.append(n / (until - since))
    return rates


def hold_players(nodes, n, seconds, cpu_nodes=None):
    """n RTMP players spread over nodes; returns the CPU (% of one core) summed over
    cpu_nodes (default: nodes) and each one's, and the players' video fps (min, median)."""
    cpu_nodes = cpu_nodes or nodes
    players = []
    try:
        for i in range(n):
            srv = nodes[i % len(nodes)]
            c, _ = rtmp_client.open_player("127.0.0.1", srv.port, "live", STREAM, timeout=20,
                                           name="p%d" % i)
            players.append(c)
        for c in players:
            c.wait_video_frames(25, 30)
        time.sleep(2)  # past the GOP burst (a bench's window, not a test's wait)
        t0 = time.monotonic()
        cpu0 = {s.name: cpu_s(s.proc.pid) for s in cpu_nodes}
        time.sleep(seconds)
        t1 = time.monotonic()
        cpu1 = {s.name: cpu_s(s.proc.pid) for s in cpu_nodes}
        fps = sorted(video_fps(players, t0, t1))
        each = {k: round(100 * (cpu1[k] - cpu0[k]) / (t1 - t0), 1) for k in cpu0}
        return {"players": n, "cpu_pct": round(sum(each.values()), 1), "cpu_pct_each": each,
                "fps_min": round(fps[0], 1), "fps_p50": round(pct(fps, 50), 1)}
    finally:
        for c in players:
            c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--players", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    media = make_media(tmp)
    redis = RedisServer(tmp / "redis").start()
    prefix = unique_prefix()
    procs, servers = [], []
    res = {}
    try:
        # 1. one node (role all, no relay involved)
        single = node(tmp, "single", redis, unique_prefix(), "all")
        servers.append(single)
        ff = subprocess.Popen(conftest.ffmpeg_publish_cmd(media, single.url("live", STREAM)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(ff)
        conftest.wait_stream_live(single.port, "live", STREAM, 20)
        res["one_node"] = hold_players([single], args.players, args.seconds)
        ff.terminate()
        ff.wait(10)
        single.stop()
        servers.remove(single)

        # the cluster: origin (+ stream manager) and two edges
        origin = node(tmp, "origin", redis, prefix, "origin",
                      {"stream_manager": {"enabled": True, "lookups_per_minute": 100000}})
        edges = {n: node(tmp, n, redis, prefix, "edge") for n in ("edge1", "edge2")}
        servers += [origin] + list(edges.values())
        js = lookup(origin, "broadcast")
        assert js and js["nodeId"] == "origin", js
        ff = subprocess.Popen(conftest.ffmpeg_publish_cmd(
            media, "rtmp://%s:%d/live/%s" % (js["serverAddress"], js["rtmpPort"], STREAM)),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(ff)
        wait(lambda: lookup(origin, "subscribe") is not None, 20, "the stream placed")
        res["origin_2_edges"] = hold_players(list(edges.values()), args.players, args.seconds,
                                             [origin] + list(edges.values()))

        # 2. hop latency: origin player vs edge player
        js = lookup(origin, "subscribe")
        po, _ = rtmp_client.open_player("127.0.0.1", origin.port, "live", STREAM, timeout=20,
                                        name="origin", keep_payload=True)
        pe, _ = rtmp_client.open_player(js["serverAddress"], js["rtmpPort"], "live", STREAM,
                                        timeout=20, name="edge", keep_payload=True)
        try:
            po.wait_video_frames(30, 20)
            pe.wait_video_frames(30, 20)
            since = time.monotonic() + 2
            time.sleep(2 + min(args.seconds, 9))  # < the 12 s clip: bodies stay unique
            a, b = arrivals(po, since), arrivals(pe, since)
            d = [(b[h] - t) * 1000 for h, t in a.items() if h in b]
            res["hop"] = {"frames": len(d), "p50_ms": round(pct(d, 50), 2),
                          "p95_ms": round(pct(d, 95), 2), "max_ms": round(max(d), 2)}
        finally:
            po.close()
            pe.close()

        # 3. failover
        rounds = []
        for _ in range(args.rounds):
            js = lookup(origin, "subscribe")
            dead_id = js["nodeId"]
            dead = edges[dead_id]
            c, _ = rtmp_client.open_player("127.0.0.1", dead.port, "live", STREAM, timeout=20)
            c.wait_video_frames(5, 20)
            dead.proc.send_signal(signal.SIGKILL)
            dead.proc.wait(10)
            killed = time.monotonic()
            dead.proc = None
            c.close()
            p = None
            while p is None and time.monotonic() < killed + 30:
                js = lookup(origin, "subscribe")
                if not js:
                    continue
                try:
                    p, _ = rtmp_client.open_player(js["serverAddress"], js["rtmpPort"], "live",
                                                   STREAM, timeout=10)
                except (OSError, rtmp_client.RtmpError):
                    time.sleep(0.05)
            assert p is not None, "no edge played"
            p.wait_video_frames(1, 20)
            first = next(m for m in p.media if m.is_frame).arrival - killed
            p.close()

            def dead_gone():
                named = [n["nodeId"] for n in (lookup_all(origin) or [])]
                return named and dead_id not in named
            wait(dead_gone, 10, "dead edge not named")
            rounds.append({"killed": dead_id, "first_frame_s": round(first, 3),
                           "not_named_s": round(time.monotonic() - killed, 2)})
            # back for the next round (same id: a new process)
            servers.remove(dead)
            edges[dead_id] = node(tmp, dead_id + "-r%d" % len(rounds), redis, prefix, "edge")
            # the new process has a new id; keep the dict keyed by the old name
            servers.append(edges[dead_id])
            new_id = dead_id + "-r%d" % len(rounds)
            edges[new_id] = edges.pop(dead_id)
            wait(lambda: new_id in [n["nodeId"] for n in (lookup_all(origin) or [])], 20,
                 "the new edge named")
        res["failover"] = rounds
        res["lease_s"] = float(LEASE.rstrip("s"))
        print(json.dumps(res))
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(10)
        for s in servers:
            if s.proc is not None:
                s.stop()
        redis.stop()


def lookup_all(sm):
    url = "http://127.0.0.1:%d/streammanager/api/4.0/event/live/%s?action=subscribe" \
          "&endpoints=3" % (http_port_of(sm), STREAM)
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read())
    except OSError:
        return None


if __name__ == "__main__":
    main()
