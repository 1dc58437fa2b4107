#!/usr/bin/env python3
"""The latency one edge hop adds (docs/performance.md, "Cluster relay"), for the cluster
relay (src/cluster/relay: libsluice-client on the server's loop) and, as the baseline,
restream's on-demand pull (src/modules/restream: libavformat on a worker thread).

One origin, two edges (relay: `relay.origins`; restream: an on_demand pull of the same
stream), ffmpeg publishing the suite's 640x360 25 fps H.264 + AAC test clip to the origin
in real time. Three RTMP players (tests/e2e/rtmp_client.py) in this one process play the
stream from the origin, from the relay edge and from the restream edge at once; each video
frame is recognised on every path by the hash of its body (bodies are relayed unchanged),
and its hop latency is its arrival time on the edge minus its arrival time on the origin,
on the same clock. The players read with one thread each, so a frame's arrival time is
taken when its last chunk is parsed.

    SLUICE_BIN=build/sluice /usr/bin/python3 bench/relay_hop.py [--seconds 9]

Prints one JSON object: p50/p95/max in ms for each path, the frames matched, and each
edge process's CPU (% of one core) over the window (one pull, one RTMP player).
"""
import argparse
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))

import conftest  # noqa: E402  (Sluice, free ports, config helpers)
import rtmp_client  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def make_media(folder):
    out = folder / "src.flv"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
                    "-t", "12", "-c:v", "libx264", "-preset", "veryfast", "-g", "50",
                    "-b:v", "800k", "-c:a", "aac", "-b:a", "64k", "-f", "flv", str(out)],
                   check=True, timeout=120)
    return out


def cpu_s(pid):
    """utime + stime of a process, in seconds."""
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def arrivals(c, since):
    """{body hash: arrival} of the video frames c received after since."""
    out = {}
    with c._cv:
        media = list(c.media)
    for m in media:
        if m.is_video and m.arrival >= since and not m.seq_header:
            out.setdefault(hashlib.sha1(m.data).hexdigest(), m.arrival)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=9)  # < the 12 s clip: bodies stay unique
    args = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="relay-hop-"))
    media = make_media(tmp)
    origin = conftest.Sluice(tmp / "origin", "origin",
                             config={"relay": {"enabled": True, "password": "bench-pw"}}).start()
    relay_edge = conftest.Sluice(tmp / "relay-edge", "relay-edge", config={"relay": {
        "enabled": True, "password": "bench-pw",
        "origins": "127.0.0.1:%d" % origin.port}}).start()
    rs_edge = conftest.Sluice(tmp / "restream-edge", "restream-edge", config={"restream": {
        "pull": json.dumps("live/s rtmp://127.0.0.1:%d/live/s mode=on_demand" % origin.port)}}
    ).start()
    ff = subprocess.Popen(conftest.ffmpeg_publish_cmd(media, origin.url("live", "s")),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    players = []
    try:
        conftest.wait_stream_live(origin.port, "live", "s", 20)
        for name, srv in (("origin", origin), ("relay", relay_edge), ("restream", rs_edge)):
            c, _ = rtmp_client.open_player("127.0.0.1", srv.port, "live", "s", timeout=20,
                                           name=name, keep_payload=True)
            players.append((name, c))
        for _, c in players:
            c.wait_video_frames(30, 20)
        since = time.monotonic() + 2  # past the GOP caches' burst
        time.sleep(2)
        cpu0 = {n: cpu_s(s.proc.pid) for n, s in (("relay", relay_edge), ("restream", rs_edge))}
        time.sleep(args.seconds)  # the measurement window (a bench, not a test)
        cpu1 = {n: cpu_s(s.proc.pid) for n, s in (("relay", relay_edge), ("restream", rs_edge))}
        got = {name: arrivals(c, since) for name, c in players}
        res = {"seconds": args.seconds}
        for name in ("relay", "restream"):
            d = [(got[name][h] - t) * 1000 for h, t in got["origin"].items() if h in got[name]]
            res[name] = {"frames": len(d), "p50_ms": round(pct(d, 50), 2) if d else None,
                         "p95_ms": round(pct(d, 95), 2) if d else None,
                         "max_ms": round(max(d), 2) if d else None,
                         "edge_cpu_pct": round(100 * (cpu1[name] - cpu0[name]) / args.seconds, 2)}
        print(json.dumps(res))
    finally:
        for _, c in players:
            c.close()
        ff.terminate()
        ff.wait(10)
        for s in (rs_edge, relay_edge, origin):
            s.stop()


if __name__ == "__main__":
    main()
