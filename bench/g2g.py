#!/usr/bin/python3
"""bench/g2g.py: glass-to-glass latency of WebRTC viewers, read from the decoded pixels.

The sources draw the wall-clock time (ms since the epoch) into every video frame as 64
black/white 16x16 blocks (4 rows of 16 at x = y = 16): an 8-bit start marker, the 48-bit
time, a CRC-8 of it. Blocks on the macroblock grid at full contrast survive H.264 at 1 Mbit/s;
the reader averages the inner 8x8 pixels of each block and accepts a frame only when the
marker and the CRC match. The viewer decodes with aiortc (libavcodec) and records, per
frame, now - stamp on the same machine clock: the whole path from the moment the frame was
made (handed to the encoder) to the moment the decoded picture reaches the application
(no rendering: there is no display).

  g2g.py whip URL [--seconds N] [--log F]     aiortc WHIP publisher, stamped frames
  g2g.py ffmpeg URL [--seconds N] [--log F]   stamped raw frames into ffmpeg (libx264
                                              zerolatency): rtmp://... as FLV, rtp://... as RTP
  g2g.py whep URL [--seconds N] [--pub-log F] [--log F]       decoding WHEP viewer (aiortc)
  g2g.py janus URL --mountpoint ID [...same...]               the same viewer through Janus's
                                                              HTTP API (streaming plugin)
  g2g.py rtpsink rtp://H:P [--seconds N]                      the `ffmpeg rtp://H:P` source's
                                                              frames received and decoded without
                                                              a server (its encoder + packetizer)
  g2g.py report RESULTS.jsonl                                 the summary table of bench/whep-g2g

A viewer prints one JSON object on stdout: decoded frames, frames whose stamp was read,
latency p50/p95/max (ms) over frames stamped after it started playing (+ --settle s), and
where the time went (medians per stage, below). Exit status 0 when at least one stamp was
read, 2 when signalling failed, 1 otherwise.

Stages (viewer hooks in aiortc 1.4: its jitter buffer and its H.264 decoder; with --pub-log,
the aiortc publisher's own per-frame times joined on the stamp):
  encode     stamp -> the encoded frame came out of aiortc's encoder (aiortc publisher)
  send       -> its last RTP packet was handed to the socket (aiortc publisher)
  network    -> the last RTP packet of the frame arrived at the viewer, after SRTP: the
             server's path and loopback
  (an ffmpeg source instead: pipe = stamp -> the raw frame written into ffmpeg's stdin;
  ffmpeg_server_network = -> the last RTP packet arrived: ffmpeg's decode of the raw
  input, libx264, muxing, the hop into the server, the server, loopback; without a
  --pub-log: to_last_packet = all of it from the stamp)
  first_to_last_packet  the spread of the frame's packets at the viewer (inside "network")
  jitterbuf  -> aiortc's jitter buffer released the frame: it does so only when a packet
             of the next frame arrives, so this is about one frame interval (33 ms at 30 fps)
  decode     -> decoded (queue to the decoder thread + libavcodec)
  deliver    -> the application got the picture from track.recv()

aiortc leaves loopback addresses out of its ICE candidates and this machine drops packets
from its own address to 127.0.0.1; sluice is bound to 127.0.0.1 in the benchmarks, so for
whip/whep the client offers 127.0.0.1 (as tests/e2e/webrtc_client.py does). Janus offers the
machine's own address, so the Janus viewer keeps aioice's default addresses.
"""
import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np

# ---------------------------------------------------------------------------------------
# The stamp
# ---------------------------------------------------------------------------------------

WIDTH, HEIGHT, FPS = 640, 360, 30
BLOCK = 16                      # px, one macroblock
COLS, ROWS = 16, 4              # 64 bits
X0, Y0 = 16, 16                 # top-left corner of the stamp
MARKER = 0xB4                   # 10110100: both colours, not a run
BLACK, WHITE = 16, 235          # video-range luma


def crc8(data):
    """CRC-8, polynomial 0x07 (ATM), initial 0."""
    c = 0
    for b in data:
        c ^= b
        for _ in range(8):
            c = ((c << 1) ^ 0x07) & 0xFF if c & 0x80 else (c << 1) & 0xFF
    return c


def _bits(byts):
    return [(b >> (7 - i)) & 1 for b in byts for i in range(8)]


_ONES = np.ones((BLOCK, BLOCK), np.uint8)


def draw_stamp(y, ms):
    """Draws ms (48 bits) into the luma plane y (uint8 HxW, written in place)."""
    data = (ms & ((1 << 48) - 1)).to_bytes(6, "big")
    bits = np.array(_bits(bytes([MARKER]) + data + bytes([crc8(data)])), np.uint8)
    img = np.kron(bits.reshape(ROWS, COLS), _ONES) * (WHITE - BLACK) + BLACK
    y[Y0:Y0 + ROWS * BLOCK, X0:X0 + COLS * BLOCK] = img


def read_stamp(y):
    """The ms drawn by draw_stamp into luma plane y, or None (no marker, bad CRC, too small)."""
    h, w = y.shape
    if h < Y0 + ROWS * BLOCK or w < X0 + COLS * BLOCK:
        return None
    region = y[Y0:Y0 + ROWS * BLOCK, X0:X0 + COLS * BLOCK].reshape(ROWS, BLOCK, COLS, BLOCK)
    inner = region[:, BLOCK // 4:3 * BLOCK // 4, :, BLOCK // 4:3 * BLOCK // 4]
    bits = (inner.mean(axis=(1, 3)) > (BLACK + WHITE) / 2).astype(np.uint8).reshape(-1)
    byts = np.packbits(bits).tobytes()
    if byts[0] != MARKER or crc8(byts[1:7]) != byts[7]:
        return None
    return int.from_bytes(byts[1:7], "big")


class Canvas:
    """Moving frames (a scrolling luma gradient with stripes: P-frames are not empty), stamped."""

    def __init__(self, width=WIDTH, height=HEIGHT):
        self.w, self.h = width, height
        x = np.arange(width * 2)
        row = ((x * 3) % 200 + 28).astype(np.uint8)
        row[(x // 40) % 2 == 0] //= 2
        self.base = np.tile(row, (height, 1))
        self.uv = np.full((height // 2, width), 128, np.uint8)  # U and V planes, packed rows
        self.n = 0

    def next_yuv(self, ms):
        """yuv420p as one (h * 3 / 2, w) array, stamped with ms."""
        off = (self.n * 4) % self.w
        self.n += 1
        y = self.base[:, off:off + self.w].copy()
        draw_stamp(y, ms)
        return np.concatenate([y, self.uv])


def now_ms():
    return time.time() * 1000.0


def luma(frame):
    """The Y plane of a decoded av.VideoFrame as an HxW uint8 array (no copy when possible)."""
    if frame.format.name not in ("yuv420p", "yuvj420p"):
        frame = frame.reformat(format="yuv420p")
    p = frame.planes[0]
    return np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:frame.height, :frame.width]


# ---------------------------------------------------------------------------------------
# Signalling helpers
# ---------------------------------------------------------------------------------------

def http(url, body=None, method="POST", ctype="application/sdp", timeout=10):
    req = urllib.request.Request(url, data=body.encode() if body is not None else None,
                                 headers={"Content-Type": ctype}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace"), dict(e.headers)


def resource_url(url, location):
    base = url.split("/", 3)
    return "%s//%s%s" % (base[0], base[2], location)


def loopback_ice():
    import aioice.ice
    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]


def prefer_h264(pc):
    from aiortc.rtcrtpsender import RTCRtpSender
    caps = RTCRtpSender.getCapabilities("video").codecs
    h264 = [c for c in caps if c.mimeType.lower() in ("video/h264", "video/rtx")]
    for t in pc.getTransceivers():
        if t.kind == "video":
            t.setCodecPreferences(h264)


def out(**kw):
    print(json.dumps(kw), flush=True)


# ---------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------

async def run_whip(args):
    """aiortc publisher: a VideoStreamTrack that stamps each frame when it makes it."""
    loopback_ice()
    import av
    from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
    from aiortc.codecs import h264
    from aiortc.rtcrtpsender import RTCRtpSender

    # aiortc 1.4's H.264 encoder ignores force_keyframe (a PLI); a new encoder context makes
    # the next frame an IDR, as a browser answers a PLI (tests/e2e/webrtc_client.py does the
    # same). Without it the only keyframe is the first frame.
    orig_encode = h264.H264Encoder._encode_frame

    def encode_frame(self, frame, force_keyframe):
        if force_keyframe and self.codec is not None:
            self.codec = None
            self.buffer_data = b""
            self.buffer_pts = None
        return orig_encode(self, frame, force_keyframe)

    h264.H264Encoder._encode_frame = encode_frame

    canvas = Canvas()
    stamps = {}          # pts -> stamp ms (only until the frame is encoded)
    log = open(args.log, "w", buffering=1) if args.log else None
    pending = [None]     # the record of the frame whose packets are being sent

    class Stamped(VideoStreamTrack):
        async def recv(self):
            pts, time_base = await self.next_timestamp()
            ms = int(round(now_ms()))
            frame = av.VideoFrame.from_ndarray(canvas.next_yuv(ms), format="yuv420p")
            frame.pts, frame.time_base = pts, time_base
            stamps[pts] = ms
            return frame

    # _next_encoded_frame(): recv() + encode; the sender then sends every packet of the
    # frame and calls it again, so its entry is the moment the previous frame was sent.
    orig_next = RTCRtpSender._next_encoded_frame

    async def next_encoded_frame(self, codec):
        t = now_ms()
        if pending[0] is not None:
            pending[0]["sent"] = round(t, 2)
            if log:
                log.write(json.dumps(pending[0]) + "\n")
            pending[0] = None
        enc = await orig_next(self, codec)
        ms = stamps.pop(enc.timestamp, None)
        if ms is not None:
            pending[0] = {"stamp": ms, "enc": round(now_ms(), 2)}
        return enc

    RTCRtpSender._next_encoded_frame = next_encoded_frame

    pc = RTCPeerConnection()
    pc.addTrack(Stamped())
    prefer_h264(pc)
    await pc.setLocalDescription(await pc.createOffer())
    status, body, headers = http(args.url, pc.localDescription.sdp)
    out(event="answer", status=status, body=body[:300] if status != 201 else "")
    if status != 201:
        await pc.close()
        return 2
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), args.seconds)
    except asyncio.TimeoutError:
        pass
    if headers.get("Location"):
        http(resource_url(args.url, headers["Location"]), None, method="DELETE")
    await pc.close()
    out(event="done", state=pc.connectionState, frames=canvas.n)
    return 0


def run_ffmpeg(args):
    """Stamped raw frames into ffmpeg in real time; the stamp is the time of the write."""
    canvas = Canvas()
    enc = ["-c:v", "libx264", "-tune", "zerolatency", "-profile:v", "baseline", "-level", "31",
           "-b:v", "1M", "-maxrate", "1M", "-bufsize", "1M", "-g", str(FPS), "-pix_fmt", "yuv420p"]
    if args.url.startswith("rtp://"):
        dst = ["-payload_type", "102", "-ssrc", "1111", "-f", "rtp", args.url]
    else:
        dst = ["-f", "flv", "-flush_packets", "1", args.url]
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-fflags", "nobuffer",
           "-probesize", "32", "-f", "rawvideo", "-pix_fmt", "yuv420p",
           "-s", "%dx%d" % (WIDTH, HEIGHT), "-framerate", str(FPS), "-i", "-", "-an"] + enc + dst
    ff = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    log = open(args.log, "w", buffering=1) if args.log else None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    t0 = time.monotonic()
    i = late = 0
    try:
        while not stop.is_set() and time.monotonic() - t0 < args.seconds and ff.poll() is None:
            wait = t0 + i / FPS - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # real-time pacing of the source, not a test wait
            elif wait < -1.0 / FPS:
                # ffmpeg did not read for more than a frame (its start, a busy machine):
                # a camera would have dropped those frames, not sent them in a burst.
                t0 = time.monotonic() - i / FPS
                late += 1
            ms = int(round(now_ms()))
            ff.stdin.write(canvas.next_yuv(ms).tobytes())
            ff.stdin.flush()
            if log:
                log.write(json.dumps({"stamp": ms, "written": round(now_ms(), 2)}) + "\n")
            i += 1
    except BrokenPipeError:
        pass
    try:
        ff.stdin.close()
    except BrokenPipeError:
        pass
    try:
        ff.wait(5)
    except subprocess.TimeoutExpired:
        ff.kill()
        ff.wait()
    out(event="done", frames=i, late=late, ffmpeg_rc=ff.returncode)
    return 0


# ---------------------------------------------------------------------------------------
# The decoding viewer
# ---------------------------------------------------------------------------------------

def hook_receiver():
    """Per-frame times inside aiortc's receiver: packets arrived, jitter buffer out, decoded.

    Returns {pts: (first_rx, last_rx, jb_out, dec_start, dec_end)} filled as frames decode.
    """
    from aiortc import jitterbuffer
    from aiortc.codecs import h264

    info = {}
    arrivals = {}   # RTP timestamp -> [first, last] arrival (ms), video only

    orig_add = jitterbuffer.JitterBuffer.add

    def add(self, packet):
        if not self._is_video:
            return orig_add(self, packet)
        t = now_ms()
        a = arrivals.setdefault(packet.timestamp, [t, t])
        a[1] = t
        pli, frame = orig_add(self, packet)
        if frame is not None:
            a = arrivals.pop(frame.timestamp, [t, t])
            frame.g2g = (a[0], a[1], now_ms())
            if len(arrivals) > 256:  # frames never completed
                for k in list(arrivals)[:128]:
                    del arrivals[k]
        return pli, frame

    jitterbuffer.JitterBuffer.add = add

    orig_decode = h264.H264Decoder.decode

    def decode(self, encoded_frame):
        t0 = now_ms()
        frames = orig_decode(self, encoded_frame)
        t1 = now_ms()
        g = getattr(encoded_frame, "g2g", None)
        if g is not None:
            for f in frames:
                info[f.pts] = g + (t0, t1)
        return frames

    h264.H264Decoder.decode = decode
    return info


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(p / 100.0 * len(v)))], 1)


async def janus_signal(pc, url, mountpoint):
    """Janus's HTTP API: create, attach the streaming plugin, watch, answer the offer, start."""
    from aiortc import RTCSessionDescription
    loop = asyncio.get_running_loop()

    def call(path, msg):
        msg = dict(msg, transaction="g2g%d" % time.monotonic_ns())
        st, body, _ = http(url + path, json.dumps(msg), ctype="application/json")
        j = json.loads(body) if st == 200 else {}
        if j.get("janus") not in ("success", "ack"):
            raise RuntimeError("janus %s: %s %s" % (msg.get("janus"), st, body[:200]))
        return j

    sid = call("", {"janus": "create"})["data"]["id"]
    hid = call("/%d" % sid, {"janus": "attach", "plugin": "janus.plugin.streaming"})["data"]["id"]
    call("/%d/%d" % (sid, hid), {"janus": "message", "body": {"request": "watch", "id": mountpoint}})
    offer = None
    deadline = time.monotonic() + 10
    while offer is None and time.monotonic() < deadline:
        st, body, _ = await loop.run_in_executor(
            None, lambda: http("%s/%d?maxev=1" % (url, sid), None, method="GET", timeout=15))
        for ev in (lambda j: j if isinstance(j, list) else [j])(json.loads(body)):
            if ev.get("jsep", {}).get("type") == "offer":
                offer = ev["jsep"]["sdp"]
    if offer is None:
        raise RuntimeError("janus: no offer")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    call("/%d/%d" % (sid, hid), {"janus": "message", "body": {"request": "start"},
                                 "jsep": {"type": "answer", "sdp": pc.localDescription.sdp}})
    return "%s/%d" % (url, sid)


async def run_viewer(args):
    if args.mode == "whep":
        loopback_ice()
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamError

    info = hook_receiver()
    rows = []
    counts = {"decoded": 0, "read": 0, "measured": 0}
    started = [None]      # wall-clock ms of the first decoded frame
    t_start = time.monotonic()
    tasks = []

    async def consume(track):
        while True:
            try:
                f = await track.recv()
            except MediaStreamError:
                return
            if track.kind != "video":
                continue
            t = now_ms()
            counts["decoded"] += 1
            if started[0] is None:
                started[0] = t
                out(event="first_frame", after=round(time.monotonic() - t_start, 3))
            ms = read_stamp(luma(f))
            if ms is None:
                continue
            counts["read"] += 1
            g = info.pop(f.pts, None)
            r = {"stamp": ms, "recv": round(t, 2)}
            if g is not None:
                r.update(first=round(g[0], 2), last=round(g[1], 2), jb=round(g[2], 2),
                         dec0=round(g[3], 2), dec1=round(g[4], 2))
            rows.append(r)
            if ms >= started[0] + args.settle * 1000:
                counts["measured"] += 1
            if len(info) > 256:
                info.clear()

    pc = RTCPeerConnection()

    @pc.on("track")
    def on_track(track):
        tasks.append(asyncio.ensure_future(consume(track)))

    delete_url = None
    if args.mode == "whep":
        pc.addTransceiver("video", direction="recvonly")
        prefer_h264(pc)
        await pc.setLocalDescription(await pc.createOffer())
        status, body, headers = http(args.url, pc.localDescription.sdp)
        if status != 201:
            out(event="answer", status=status, body=body[:300])
            await pc.close()
            return 2
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
        if headers.get("Location"):
            delete_url = resource_url(args.url, headers["Location"])
    else:
        try:
            janus_session = await janus_signal(pc, args.url, args.mountpoint)
        except (RuntimeError, OSError, ValueError) as e:
            out(event="signalling", error=str(e))
            await pc.close()
            return 2
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        if args.frames and counts["measured"] >= args.frames:
            break
        if pc.connectionState in ("failed", "closed"):
            break
        await asyncio.sleep(0.1)  # the poll interval of a deadline-bounded wait
    for t in tasks:
        t.cancel()
    if delete_url:
        http(delete_url, None, method="DELETE")
    elif args.mode == "janus":
        http(janus_session, json.dumps({"janus": "destroy", "transaction": "bye"}),
             ctype="application/json")
    await pc.close()

    pub = {}
    if args.pub_log and os.path.exists(args.pub_log):
        with open(args.pub_log) as f:
            for line in f:
                try:
                    p = json.loads(line)
                except ValueError:
                    continue
                pub[p["stamp"]] = p
    if args.log:
        with open(args.log, "w") as f:
            for r in rows:
                f.write(json.dumps(dict(r, **{"pub_" + k: v for k, v in pub.get(r["stamp"], {}).items()
                                               if k != "stamp"})) + "\n")
    cut = (started[0] or 0) + args.settle * 1000
    meas = [r for r in rows if r["stamp"] >= cut]
    lat = [r["recv"] - r["stamp"] for r in meas]
    res = {"event": "done", "state": pc.connectionState, "decoded": counts["decoded"],
           "read": counts["read"],
           "read_pct": round(100.0 * counts["read"] / counts["decoded"], 1) if counts["decoded"] else 0,
           "measured": len(lat), "p50_ms": pct(lat, 50), "p95_ms": pct(lat, 95),
           "p99_ms": pct(lat, 99), "max_ms": round(max(lat), 1) if lat else None,
           "min_ms": round(min(lat), 1) if lat else None}
    # aiortc's jitter buffer holds a complete frame until a packet of the next one arrives
    # (about a frame interval); a browser's releases it when it is complete. The latency
    # without that hold is the nearer estimate of a browser viewer on this path.
    nojb = [r["recv"] - r["stamp"] - (r["jb"] - r["last"]) for r in meas if "jb" in r]
    res.update(nojb_p50_ms=pct(nojb, 50), nojb_p95_ms=pct(nojb, 95))
    # Where the time went: the median of each stage over the measured frames.
    stages = {}

    def stage(name, a, b, src):
        v = [r2[b] - r1[a] for r1, r2 in src if a in r1 and b in r2]
        if v:
            stages[name] = pct(v, 50)

    full = [(r, r) for r in meas]
    withpub = [(dict(r, **{"p_" + k: v for k, v in pub.get(r["stamp"], {}).items()}), None)
               for r in meas]
    withpub = [(r, r) for r, _ in withpub if "p_enc" in r or "p_written" in r]
    if withpub and "p_enc" in withpub[0][0]:
        stage("encode", "stamp", "p_enc", withpub)
        stage("send", "p_enc", "p_sent", withpub)
        stage("network", "p_sent", "last", withpub)
    elif withpub:
        stage("pipe", "stamp", "p_written", withpub)
        stage("ffmpeg_server_network", "p_written", "last", withpub)
    else:
        stage("to_last_packet", "stamp", "last", full)
    stage("first_to_last_packet", "first", "last", full)
    stage("jitterbuf", "last", "jb", full)
    stage("decode", "jb", "dec1", full)
    stage("deliver", "dec1", "recv", full)
    res["stages_p50_ms"] = stages
    out(**res)
    return 0 if counts["read"] else 1


# ---------------------------------------------------------------------------------------
# The encoder alone
# ---------------------------------------------------------------------------------------

def depacketize_h264(payload):
    """Annex B bytes of one RTP H.264 payload (RFC 6184: single NAL, STAP-A, FU-A)."""
    if not payload:
        return b""
    t = payload[0] & 0x1F
    if 1 <= t <= 23:
        return b"\0\0\0\1" + payload
    if t == 24:  # STAP-A: 16-bit sizes
        outb, i = b"", 1
        while i + 2 <= len(payload):
            n = int.from_bytes(payload[i:i + 2], "big")
            i += 2
            if n == 0 or i + n > len(payload):
                break
            outb += b"\0\0\0\1" + payload[i:i + n]
            i += n
        return outb
    if t == 28 and len(payload) >= 2:  # FU-A
        if payload[1] & 0x80:
            return b"\0\0\0\1" + bytes([(payload[0] & 0xE0) | (payload[1] & 0x1F)]) + payload[2:]
        return payload[2:]
    return b""


def run_rtpsink(args):
    """Receives ffmpeg's RTP (the `ffmpeg rtp://` source) directly, no server, and decodes it:
    per frame, the arrival of its last packet - the stamp read from the decoded picture =
    ffmpeg's encode + RTP packetizing + loopback (decoding is not counted).
    """
    import socket
    import av
    host, port = args.url.replace("rtp://", "").rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
    sock.bind((host, int(port)))
    sock.settimeout(0.5)
    dec = av.CodecContext.create("h264", "r")
    cur_ts, au, last_rx = None, b"", 0.0
    lat, decoded, read, first = [], 0, 0, None
    deadline = time.monotonic() + args.seconds

    def flush():
        nonlocal decoded, read, first
        if not au:
            return
        try:
            frames = dec.decode(av.Packet(au))
        except av.AVError:
            return
        for f in frames:
            decoded += 1
            ms = read_stamp(luma(f))
            if ms is None:
                continue
            read += 1
            if first is None:
                first = last_rx
            if ms >= first + args.settle * 1000:
                lat.append(last_rx - ms)

    while time.monotonic() < deadline:
        try:
            pkt = sock.recv(2048)
        except socket.timeout:
            continue
        t = now_ms()
        if len(pkt) < 12 or pkt[0] >> 6 != 2:
            continue
        ts = int.from_bytes(pkt[4:8], "big")
        hdr = 12 + 4 * (pkt[0] & 0x0F)
        if ts != cur_ts:
            flush()
            cur_ts, au = ts, b""
        au += depacketize_h264(pkt[hdr:])
        last_rx = t
        if pkt[1] & 0x80:  # marker: the frame is complete
            flush()
            cur_ts, au = None, b""
    sock.close()
    out(event="done", decoded=decoded, read=read,
        read_pct=round(100.0 * read / decoded, 1) if decoded else 0, measured=len(lat),
        p50_ms=pct(lat, 50), p95_ms=pct(lat, 95), p99_ms=pct(lat, 99),
        max_ms=round(max(lat), 1) if lat else None, min_ms=round(min(lat), 1) if lat else None)
    return 0 if lat else 1


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------

def report(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    print("\nglass-to-glass (stamp drawn -> picture decoded by aiortc), ms:")
    fmt = "%-8s %6s %6s %6s %6s %6s %11s %7s %6s %5s  %s"
    print(fmt % ("path", "p50", "p95", "p99", "max", "min", "-jb p50/95", "frames", "read%",
                 "load", "stage medians"))
    for r in rows:
        st = " ".join("%s %s" % (k, v) for k, v in r.get("stages_p50_ms", {}).items())
        nojb = "%s/%s" % (r["nojb_p50_ms"], r["nojb_p95_ms"]) if r.get("nojb_p50_ms") else "-"
        print(fmt % (r.get("path"), r.get("p50_ms"), r.get("p95_ms"), r.get("p99_ms"),
                     r.get("max_ms"), r.get("min_ms"), nojb, r.get("measured"),
                     r.get("read_pct", "-"), r.get("load1", "-"), st))
    print("(-jb: without aiortc's one-frame jitter-buffer hold; encoder: ffmpeg alone into a "
          "socket, no server, no decoding)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["whip", "ffmpeg", "whep", "janus", "rtpsink", "report"])
    ap.add_argument("url")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--frames", type=int, default=0,
                    help="viewer: stop after N measured frames (stamps read, after --settle)")
    ap.add_argument("--settle", type=float, default=1.0,
                    help="viewer: measure frames stamped this long after the first decoded one")
    ap.add_argument("--mountpoint", type=int, default=1)
    ap.add_argument("--log", help="per-frame JSON lines")
    ap.add_argument("--pub-log", help="viewer: the aiortc publisher's --log, joined on the stamp")
    args = ap.parse_args()
    if args.mode == "report":
        report(args.url)
        return 0
    if args.mode == "ffmpeg":
        return run_ffmpeg(args)
    if args.mode == "rtpsink":
        return run_rtpsink(args)
    if args.mode == "whip":
        return asyncio.run(run_whip(args))
    return asyncio.run(run_viewer(args))


if __name__ == "__main__":
    sys.exit(main())
