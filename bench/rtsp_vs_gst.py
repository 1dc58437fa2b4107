#!/usr/bin/python3
"""RTSP fan-out, sluice against GStreamer's RTSP server in the same run.

One source for both: ffmpeg encodes a 1280x720 30 fps H.264 (x264 ultrafast, 2300 kbit/s,
2 s GOP) + AAC 128k test stream in real time and publishes it to sluice over RTMP. Then, for
each N (default 50 and 200) and each run (RUNS, default 3):

  sluice  N interleaved-TCP RTSP players (DESCRIBE, SETUP of both tracks, PLAY; read and
          discard in one selector loop) on sluice's rtsp://.../live/bench.
  gst     a GstRtspServer (this file, --gst-server, a child process) with ONE shared media
          factory: `rtspsrc` pulls rtsp://.../live/bench from sluice once over TCP, and the
          video and audio are depayloaded and payloaded again once (rtph264depay !
          rtph264pay, rtpmp4gdepay ! rtpmp4gpay). Every client shares that media, so per
          client GStreamer only does what sluice does: send the same RTP packets on the
          client's TCP connection. The same N players connect to it.

For each side it measures, over MEASURE seconds after a 2 s warm-up, the server process's CPU
(utime + stime from /proc; all its threads), and before that over BASE seconds (default 4) its
CPU with one player, its RSS with the N players connected and with one
player (the baseline: the media flowing; GstRtspServer builds its shared pipeline only at the
first DESCRIBE), and what the players received. The gst side's
CPU includes its one upstream rtspsrc + depay/pay (a constant, paid once, not per player);
the sluice side's includes the RTMP ingest; "CPU above one player" takes both out and
compares the fan-out alone. Prints one line per side and run, then the median per N and the
ratios sluice / gst.

    /usr/bin/python3 bench/rtsp_vs_gst.py             # N = 50 200, 3 runs, MEASURE=8
    RUNS=1 MEASURE=10 /usr/bin/python3 bench/rtsp_vs_gst.py 100

Needs python3-gi, gir1.2-gst-rtsp-server-1.0 and gstreamer1.0-plugins-{good,bad} (Debian).
Run with Debian's /usr/bin/python3 (the gi bindings are installed there).
"""

import os
import pathlib
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
SLUICE = os.environ.get("SLUICE_BIN", str(REPO / "build" / "sluice"))
MEASURE = float(os.environ.get("MEASURE", "8"))
RUNS = int(os.environ.get("RUNS", "3"))
BASE = float(os.environ.get("BASE", "4"))
HOST = "127.0.0.1"


def gst_server(port, upstream):
    """The reference server: GstRtspServer, one shared factory relaying `upstream`."""
    import gi
    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtsp", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtsp, GstRtspServer
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(HOST)
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        "( rtspsrc location=%s protocols=tcp latency=200 name=src "
        "src. ! rtph264depay ! rtph264pay name=pay0 pt=96 config-interval=-1 "
        "src. ! rtpmp4gdepay ! rtpmp4gpay name=pay1 pt=97 )" % upstream)
    factory.set_shared(True)
    factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
    server.get_mount_points().add_factory("/live/bench", factory)
    server.attach(None)
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print("ready", flush=True)
    loop.run()


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
        chunk = s.recv(65536)
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    n = int((re.search(rb"Content-Length: *(\d+)", head, re.I) or [0, b"0"])[1])
    while len(rest) < n:
        rest += s.recv(65536)
    return head.decode(), rest[:n]


def open_player(port, path):
    """An interleaved-TCP RTSP player of every track; returns the socket, non-blocking."""
    url = "rtsp://%s:%d/%s" % (HOST, port, path)
    s = socket.create_connection((HOST, port))
    head, sdp = request(s, "DESCRIBE", url, 1, ["Accept: application/sdp"])
    assert " 200 " in head.split("\r\n")[0], head
    base = (re.search(r"Content-Base: *(\S+)", head, re.I) or [None, url + "/"])[1]
    medias = sdp.decode().split("\nm=")[1:]
    session = None
    for i, m in enumerate(medias):
        ctl = re.search(r"a=control:(\S+)", m).group(1)
        track = ctl if ctl.startswith("rtsp://") else base.rstrip("/") + "/" + ctl
        hdrs = ["Transport: RTP/AVP/TCP;unicast;interleaved=%d-%d" % (2 * i, 2 * i + 1)]
        if session:
            hdrs.append("Session: " + session)
        head, _ = request(s, "SETUP", track, 2 + i, hdrs)
        assert " 200 " in head.split("\r\n")[0], head
        session = re.search(r"Session: *([^;\r]+)", head, re.I).group(1)
    s.sendall(("PLAY %s RTSP/1.0\r\nCSeq: 9\r\nSession: %s\r\nRange: npt=0-\r\n\r\n" % (base, session)).encode())
    s.setblocking(False)
    return s


def open_first_player(port, path, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return open_player(port, path)
        except (AssertionError, OSError, AttributeError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)  # the stream is not live yet: poll


def wait_port(port, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # poll until the server listens


def measure(pid, port, n):
    """N players on port; returns (cpu %, rss MB, rss MB with one player, Mbit/s slowest, fastest,
    total, cpu % with one player)."""
    players = [open_first_player(port, "live/bench")]
    try:
        # The baseline: one player, media flowing (GstRtspServer builds its shared media at
        # the first DESCRIBE, so "no player" would leave its pipeline out): 1 s to settle,
        # then BASE seconds of CPU.
        for phase in ("settle", "base"):
            end = time.monotonic() + (1 if phase == "settle" else BASE)
            if phase == "base":
                b0, bt0 = cpu_seconds(pid), time.monotonic()
            while time.monotonic() < end:
                try:
                    players[0].recv(1 << 20)
                except BlockingIOError:
                    time.sleep(0.005)  # nothing to read yet: poll
        base_cpu = 100 * (cpu_seconds(pid) - b0) / (time.monotonic() - bt0)
        base_rss = rss_mb(pid)
        for _ in range(n - 1):
            players.append(open_player(port, "live/bench"))
        sel = selectors.DefaultSelector()
        got = {}
        for s in players:
            sel.register(s, selectors.EVENT_READ)
            got[s] = 0
        for phase in ("warm", "measure"):
            end = time.monotonic() + (2 if phase == "warm" else MEASURE)
            if phase == "measure":
                c0, t0 = cpu_seconds(pid), time.monotonic()
            while time.monotonic() < end:
                for k, _ in sel.select(0.1):
                    try:
                        b = len(k.fileobj.recv(1 << 20))
                        if phase == "measure":
                            got[k.fileobj] += b
                    except BlockingIOError:
                        pass
        c1, t1 = cpu_seconds(pid), time.monotonic()
        rates = sorted(8 * b / (t1 - t0) / 1e6 for b in got.values())
        return (100 * (c1 - c0) / (t1 - t0), rss_mb(pid), base_rss, rates[0], rates[-1], sum(rates),
                base_cpu)
    finally:
        for s in players:
            s.close()


def stop(p):
    if p and p.poll() is None:
        p.terminate()
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


def run(ns):
    work = pathlib.Path(tempfile.mkdtemp(prefix="rtsp-vs-gst-"))
    rtmp, http, rtsp = free_port(), free_port(), free_port()
    (work / "sluice.yml").write_text(
        "rtmp:\n  port: %d\n  tls_port: %d\nhttp:\n  port: %d\n  tls_port: %d\nwebrtc:\n  port: %d\n"
        "rtsp:\n  port: %d\n  tls_port: %d\nsrt:\n  port: %d\nserver:\n  max_connections_per_address: 0\n"
        "log:\n  level: warn\napps:\n  live: {hls: false}\n"
        % (rtmp, free_port(), http, free_port(), free_port(), rtsp, free_port(), free_port()))
    srv = subprocess.Popen([SLUICE, "--config", str(work / "sluice.yml")], cwd=work,
                           env=dict(os.environ, SLUICE_SERVER_DATA_DIR=str(work / "data")),
                           stdout=open(work / "sluice.log", "w"), stderr=subprocess.STDOUT)
    pub = gst = None
    results = {}
    try:
        wait_port(rtsp)
        pub = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
                                "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
                                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
                                "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
                                "-b:v", "2300k", "-g", "60", "-c:a", "aac", "-b:a", "128k",
                                "-f", "flv", "rtmp://%s:%d/live/bench" % (HOST, rtmp)])
        gport = free_port()
        gst = subprocess.Popen([sys.executable, __file__, "--gst-server", str(gport),
                                "rtsp://%s:%d/live/bench" % (HOST, rtsp)],
                               stdout=subprocess.PIPE, stderr=open(work / "gst.log", "w"), text=True)
        assert gst.stdout.readline().strip() == "ready", (work / "gst.log").read_text()
        wait_port(gport)
        for r in range(RUNS):
            for n in ns:
                for side, pid, port in (("sluice", srv.pid, rtsp), ("gst", gst.pid, gport)):
                    m = measure(pid, port, n)
                    results.setdefault((n, side), []).append(m)
                    print("run=%d players=%d %-6s cpu=%5.1f%%  rss=%4.0fMB (1 player %3.0fMB)  "
                          "per_player=%.2f..%.2f Mbit/s  total=%.0f Mbit/s  (1 player cpu=%.1f%%)"
                          % ((r + 1, n, side) + m), flush=True)
        print()
        print("median of %d runs, MEASURE=%gs" % (RUNS, MEASURE))
        for n in ns:
            s = [statistics.median(x) for x in zip(*results[(n, "sluice")])]
            g = [statistics.median(x) for x in zip(*results[(n, "gst")])]
            print("players=%d  sluice cpu=%.1f%% rss=%.0fMB total=%.0f Mbit/s | gst cpu=%.1f%% rss=%.0fMB "
                  "total=%.0f Mbit/s | ratio sluice/gst: cpu %.2f, rss %.2f, cpu per Mbit/s %.2f"
                  % (n, s[0], s[1], s[5], g[0], g[1], g[5], s[0] / g[0], s[1] / g[1],
                     (s[0] / s[5]) / (g[0] / g[5])))
            print("players=%d  CPU above one player, per 100 players: sluice %.1f%%, gst %.1f%% (ratio %.2f)"
                  % (n, 100 * (s[0] - s[6]) / (n - 1), 100 * (g[0] - g[6]) / (n - 1),
                     (s[0] - s[6]) / max(g[0] - g[6], 0.01)))
            r1s, r1g = results[(n, "sluice")][0], results[(n, "gst")][0]
            print("players=%d  run 1, RSS above one player: sluice %.0f KB/player, gst %.0f KB/player "
                  "(later runs reuse memory the first one allocated)"
                  % (n, 1024 * (r1s[1] - r1s[2]) / (n - 1), 1024 * (r1g[1] - r1g[2]) / (n - 1)))
    finally:
        stop(gst)
        stop(pub)
        stop(srv)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--gst-server":
        gst_server(int(sys.argv[2]), sys.argv[3])
    else:
        run([int(a) for a in sys.argv[1:]] or [50, 200])
