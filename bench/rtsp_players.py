#!/usr/bin/env python3
"""RTSP fan-out: N interleaved-TCP RTSP players of one live stream, and what sluice pays.

Starts a sluice (SLUICE_BIN, default build/sluice) on free ports, publishes a ~2.5 Mbit/s
H.264 + AAC test stream to it over RTMP with ffmpeg (a real-time loop), then opens N
RTSP players from this process (DESCRIBE, SETUP of each track over TCP, PLAY; then
read and discard, one selector loop), and measures over MEASURE seconds: sluice's CPU
(utime + stime from /proc), its RSS, the bytes each player received, and the spread
between the slowest and fastest player. Prints one line per N.

    python3 bench/rtsp_players.py 50 200        # players per run (default 50 200)
    MEASURE=10 python3 bench/rtsp_players.py 100

The same load against GStreamer's RTSP server in the same run: bench/rtsp_vs_gst.py (a small
GstRtspServer through python3-gi, since Debian ships the library but not test-launch).
"""

import os
import pathlib
import re
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
SLUICE = os.environ.get("SLUICE_BIN", str(REPO / "build" / "sluice"))
MEASURE = float(os.environ.get("MEASURE", "10"))
HOST = "127.0.0.1"


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_seconds(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid):
    m = re.search(r"VmRSS:\s+(\d+)", open("/proc/%d/status" % pid).read())
    return int(m.group(1)) / 1024


def request(s, method, url, cseq, headers=()):
    msg = "%s %s RTSP/1.0\r\nCSeq: %d\r\n%s\r\n" % (method, url, cseq, "".join(h + "\r\n" for h in headers))
    s.sendall(msg.encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    n = int((re.search(rb"Content-Length: (\d+)", head) or [0, b"0"])[1])
    while len(rest) < n:
        rest += s.recv(65536)
    return head.decode(), rest[:n]


def open_player(port, path):
    url = "rtsp://%s:%d/%s" % (HOST, port, path)
    s = socket.create_connection((HOST, port))
    head, sdp = request(s, "DESCRIBE", url, 1)
    assert " 200 " in head.split("\r\n")[0], head
    session = None
    for i, ctl in enumerate(re.findall(rb"a=control:(trackID=\d+)", sdp)):
        hdrs = ["Transport: RTP/AVP/TCP;unicast;interleaved=%d-%d" % (2 * i, 2 * i + 1)]
        if session:
            hdrs.append("Session: " + session)
        head, _ = request(s, "SETUP", url + "/" + ctl.decode(), 2 + i, hdrs)
        session = re.search(r"Session: ([^;\r]+)", head).group(1)
    s.sendall(("PLAY %s RTSP/1.0\r\nCSeq: 9\r\nSession: %s\r\n\r\n" % (url, session)).encode())
    s.setblocking(False)
    return s


def run(n):
    work = pathlib.Path(tempfile.mkdtemp(prefix="rtsp-bench-"))
    rtmp, http, rtsp = free_port(), free_port(), free_port()
    (work / "sluice.yml").write_text(
        "rtmp:\n  port: %d\n  tls_port: 0\nhttp:\n  port: %d\n  tls_port: %d\nwebrtc:\n  port: %d\n"
        "rtsp:\n  port: %d\n  tls_port: 0\nserver:\n  max_connections_per_address: 0\n"
        "log:\n  level: warn\napps:\n  live: {hls: false}\n" % (rtmp, http, free_port(), free_port(), rtsp))
    srv = subprocess.Popen([SLUICE, "--config", str(work / "sluice.yml")], cwd=work,
                           env=dict(os.environ, SLUICE_SERVER_DATA_DIR=str(work / "data")),
                           stdout=open(work / "sluice.log", "w"), stderr=subprocess.STDOUT)
    pub = None
    players = []
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, rtsp), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)  # poll until the server listens
        pub = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
                                "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
                                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
                                "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
                                "-b:v", "2300k", "-g", "60", "-c:a", "aac", "-b:a", "128k",
                                "-f", "flv", "rtmp://%s:%d/live/bench" % (HOST, rtmp)])
        deadline = time.monotonic() + 20
        while True:
            try:
                players.append(open_player(rtsp, "live/bench"))
                break
            except (AssertionError, OSError, AttributeError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)  # the publisher is not live yet
        for _ in range(n - 1):
            players.append(open_player(rtsp, "live/bench"))
        sel = selectors.DefaultSelector()
        got = {}
        for s in players:
            sel.register(s, selectors.EVENT_READ)
            got[s] = 0
        end = time.monotonic() + 2  # warm-up: GOP bursts
        while time.monotonic() < end:
            for k, _ in sel.select(0.1):
                try:
                    k.fileobj.recv(1 << 20)
                except BlockingIOError:
                    pass
        c0, t0 = cpu_seconds(srv.pid), time.monotonic()
        end = t0 + MEASURE
        while time.monotonic() < end:
            for k, _ in sel.select(0.1):
                try:
                    got[k.fileobj] += len(k.fileobj.recv(1 << 20))
                except BlockingIOError:
                    pass
        c1, t1 = cpu_seconds(srv.pid), time.monotonic()
        rates = sorted(8 * b / (t1 - t0) / 1e6 for b in got.values())
        print("players=%d  sluice_cpu=%.1f%%  rss=%.0fMB  per_player=%.2f..%.2f Mbit/s  total=%.0f Mbit/s"
              % (n, 100 * (c1 - c0) / (t1 - t0), rss_mb(srv.pid), rates[0], rates[-1], sum(rates)))
    finally:
        for s in players:
            s.close()
        if pub:
            pub.terminate()
            pub.wait(10)
        srv.terminate()
        srv.wait(20)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["50", "200"]:
        run(int(arg))
