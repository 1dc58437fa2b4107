"""Lip sync of a WHIP publisher whose audio is late on the way (issue 14, RFC 3550 §6.4.1).

An aiortc publisher sends a clip made for the purpose: black video with a white flash at
frame 13 of every second (media time k + 0.52 s) and silent audio with a 1 kHz beep from
k + 0.52 s to k + 0.62 s. It publishes over WHIP through a UDP relay that delays only
the audio RTP packets (their payload type is readable: SRTP leaves the header clear)
by 300 ms; STUN, DTLS, RTCP and video pass at once (each track's first packets, sent
late while aiortc opens its encoders, are dropped: see AudioDelayRelay).

What "agree" means for aiortc: both tracks come from one file whose audio and video
both start at media time 0, and the RTP timestamp of each packet is its media time on the
track's clock (90 kHz, 48 kHz) plus a random origin. But each track is paced in real time
from the moment its own first frame was ready, and each sender report maps the RTP
timestamp of the last packet sent to the wall clock it was sent at: aiortc's reports
put its audio 0-200 ms after its video (it varies from run to run). A receiver that
follows the reports (RFC 3550 §6.4.1) reproduces exactly that. So the client measures
what its reports say (webrtc_client.py: sender_av_ms, the median of send time minus
media time, audio minus video), and the test checks that each beep of the RTMP output
comes that long after its flash, plus CODEC_DELAY_MS, within 60 ms.

With arrival anchoring every beep would come ~300 ms later still (measured with the
switch to SRs disabled: 311 ms). The relay's delay is seen by sluice too: the log line of
the switch says how late the audio came, and it must be ~300 ms.

The output is read by ffmpeg: the frame timestamps of the flashes (showinfo's mean
luma) and the onsets of the beeps (silencedetect), on one timeline.
"""
import collections
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import HOST, T, wait_until
from rtmp_client import RtmpClient
from test_webrtc import client, events_of, needs_aiortc, start, wait_live, whip_url

pytestmark = pytest.mark.exclusive  # measures rates and delays: run alone (conftest.py)

DELAY_S = float(os.environ.get("LIPSYNC_DELAY", "0.3"))
OPUS_PT = 96
# What the codecs add to the audio in the RTMP output: Opus pre-skip (312 samples at
# 48 kHz, aiortc's encoder), which FLV does not say, so ffmpeg's beep onsets come that
# much late. The AAC priming (1024 samples) of sluice's transcoder is taken off its
# timestamps (media/transcode.h), so it adds nothing.
CODEC_DELAY_MS = 7


class AudioDelayRelay:
    """Forwards UDP between one client and sluice's WebRTC port; the client's RTP packets
    of payload type `pt` wait `delay` seconds (in order); STUN, DTLS and RTCP pass at once.

    Each track's RTP is dropped until it runs on its schedule. aiortc opens its encoders
    on the first frame (from a few ms to over a second on a loaded machine) and sends the
    first packets that much late, then catches up. Arrival anchoring is then wrong by
    (audio delay + audio lateness - video lateness), anything from 0 to 500 ms: a test
    that could not be sure to fail. So a track passes only once STABLE frames in a row
    arrived within STABLE_MS of their schedule (arrival minus RTP time roughly constant):
    its first packet at sluice was sent on time, and arrival anchoring is wrong by the
    300 ms alone. sluice asks for a keyframe (PLI) and the video starts at it, as after
    loss; the dropped audio is simply not there."""

    STABLE = 10
    STABLE_MS = 30

    def __init__(self, server_port, pt=OPUS_PT, delay=DELAY_S):
        self.server = (HOST, server_port)
        self.pt = pt
        self.delay = delay
        self.tracks = {}  # pt -> {"ts0", "last_ts", "late": [..], "passing"}
        self.dropped = collections.Counter()
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind((HOST, 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind((HOST, 0))
        self.client = None
        self.held = collections.deque()
        self.pts = collections.Counter()
        self.delayed = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def address(self):
        return "%s:%d" % self.front.getsockname()

    def start(self):
        self._thread.start()
        return self

    @staticmethod
    def is_rtp(data):
        return len(data) > 12 and 128 <= data[0] <= 191 and not 192 <= data[1] <= 223

    def on_schedule(self, pt, ts):
        """True once track pt has run on its schedule for STABLE frames (then for good)."""
        t = self.tracks.setdefault(pt, {"ts0": ts, "last_ts": None, "late": [], "passing": False})
        if t["passing"]:
            return True
        if ts != t["last_ts"]:  # a new frame: how late it is against the track's start
            t["last_ts"] = ts
            clock = 48000 if pt == self.pt else 90000
            t["late"] = (t["late"] + [time.monotonic() - ((ts - t["ts0"]) & 0xFFFFFFFF) / clock])[-self.STABLE:]
            late = t["late"]
            if len(late) == self.STABLE and max(late) - min(late) <= self.STABLE_MS / 1000:
                t["passing"] = True
                return True
        return False

    def _run(self):
        while not self._stop:
            now = time.monotonic()
            while self.held and self.held[0][0] <= now:
                self.back.sendto(self.held.popleft()[1], self.server)
            wait = min(0.2, self.held[0][0] - now) if self.held else 0.2
            ready, _, _ = select.select([self.front, self.back], [], [], max(wait, 0))
            for s in ready:
                try:
                    data, addr = s.recvfrom(65535)
                except OSError:
                    continue
                if s is self.front:
                    self.client = addr
                    if self.is_rtp(data):
                        pt = data[1] & 0x7F
                        self.pts[pt] += 1
                        if not self.on_schedule(pt, int.from_bytes(data[4:8], "big")):
                            self.dropped[pt] += 1
                            continue
                        if pt == self.pt:
                            self.delayed += 1
                            self.held.append((time.monotonic() + self.delay, data))
                            continue
                    self.back.sendto(data, self.server)
                elif self.client is not None:
                    self.front.sendto(data, self.client)

    def stop(self):
        self._stop = True
        self._thread.join(2)
        self.front.close()
        self.back.close()


@pytest.fixture
def sync_clip(tmp_path_factory):
    """30 s (aiortc's MediaPlayer restarts video timestamps when it loops: no loop here)."""
    out = tmp_path_factory.mktemp("lipsync") / "flash_beep.mkv"
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", "color=c=black:s=320x240:r=25:d=30,"
           "drawbox=c=white:t=fill:enable='between(mod(n\\,25)\\,13\\,14)'",
           "-f", "lavfi", "-i", "aevalsrc='if(between(mod(t\\,1)\\,0.52\\,0.62)\\,0.8*sin(2*PI*1000*t)\\,0)'"
           ":s=48000:d=30",
           "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
           "-c:a", "pcm_s16le", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return out


def flashes_and_beeps(url, seconds):
    """Reads `seconds` of url with ffmpeg: (flash onset times, beep onset times), seconds
    on the input's timeline (the same for both streams)."""
    p = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-i", url, "-t", str(seconds),
                        "-vf", "showinfo", "-af", "silencedetect=n=-30dB:d=0.2", "-f", "null", "-"],
                       capture_output=True, text=True, timeout=T(60))
    flashes, beeps, bright, first, last = [], [], False, None, 0.0
    for line in p.stderr.splitlines():
        m = re.search(r"pts_time:\s*([-\d.]+).*?mean:\[(\d+)", line)
        if m:
            t, luma = float(m.group(1)), int(m.group(2))
            first = t if first is None else first
            last = t
            if luma > 128 and not bright:
                flashes.append(t)
            bright = luma > 128
            continue
        m = re.search(r"silence_end:\s*([-\d.]+)", line)
        if m:
            beeps.append(float(m.group(1)))
    # Only whole beeps well inside the video read: silencedetect also ends a silence at
    # the end of the input, and the first audio (the transcoder's start) is no beep.
    beeps = [b for b in beeps if first is not None and first + 0.3 < b < last - 0.5]
    return flashes, beeps, p.stderr[-3000:]


def offsets(flashes, beeps):
    """For each beep, its distance (ms) from the nearest flash (positive: beep later)."""
    return [round((b - min(flashes, key=lambda f: abs(f - b))) * 1000) for b in beeps] if flashes else []


def publisher_stats(srv, stream):
    st = srv.api.get("applications/live/streams/%s" % stream)
    if st.status != 200 or not st.data.get("publisher"):
        return None
    d = srv.api.get("applications/live/clients/%s" % st.data["publisher"]["id"])
    return d.data.get("webrtc") if d.status == 200 else None


@needs_aiortc
def test_lip_sync_from_sender_reports(sluice_factory, procs, sync_clip):
    srv = start(sluice_factory, {"webrtc": {"keyframe_interval": "1s"}})
    relay = AudioDelayRelay(srv.webrtc_port).start()
    players = []
    try:
        pub = client(procs, "whip", whip_url(srv, "sync1"), "--src", str(sync_clip), "--seconds", "28",
               "--relay", relay.address, name="whip")
        wait_live(srv, "sync1")
        # An RTMP player from the start sees the switch: nothing goes back in either track.
        player = RtmpClient(HOST, srv.port, timeout=T(5), name="player")
        players.append(player)
        player.connect("live")
        player.play(player.create_stream(), "sync1")
        player.wait_status("NetStream.Play.Start", T(5))
        # The step across the switch is only visible to a player that got a video frame
        # stamped before it: wait for one, then see whether the switch is still ahead.
        def first_video():
            with player._cv:
                return any(m.is_video and not m.seq_header for m in player.media)
        wait_until(first_video, T(10), 0.05, "a first video frame at the player")
        before_switch = (publisher_stats(srv, "sync1") or {}).get("timestamps") == "arrival"
        # Both tracks flow, then both have a sender report: the timeline switches.
        wait_until(lambda: (publisher_stats(srv, "sync1") or {}).get("timestamps") == "sender_report",
                   T(15), 0.2, "timestamps from the sender's reports")
        # The relay delayed the audio and only the audio: the tracks were ~300 ms apart on
        # arrival, which is what arrival anchoring would have put between a flash and its beep.
        skew = int(srv.wait_log(r"audio arrived (-?\d+) ms after", T(5)).group(1))
        assert 240 <= skew <= 600, (skew, relay.pts)
        flashes, beeps, err = flashes_and_beeps(srv.url("live", "sync1"), 8)
        off = offsets(flashes, beeps)
        procs.stop(pub, signal.SIGTERM, T(15))
        done = [e for e in events_of(pub) if e["event"] == "done"]
        assert done and done[0]["sender_av_ms"] is not None, (done, procs.log_of(pub)[-2000:])
        sender_av = done[0]["sender_av_ms"]
        info = (off, sender_av, flashes, beeps, skew, relay.pts, err)
        assert len(flashes) >= 5 and len(beeps) >= 5, info
        assert relay.delayed > 100 and sum(relay.pts.values()) > relay.delayed, info
        # Every flash and its beep are where the sender's reports put them, within 60 ms
        # (with arrival anchoring they would be `skew`, ~300 ms, further apart).
        assert all(abs(o - sender_av - CODEC_DELAY_MS) <= 60 for o in off), info
        # Across the switch each track's timestamps only go forward; the video, 300 ms
        # early on arrival, stepped forward once by about that much to meet its audio.
        with player._cv:
            media = list(player.media)
        video = [m.ts for m in media if m.is_video and not m.seq_header]
        audio = [m.ts for m in media if m.is_audio and not m.seq_header]
        assert len(video) > 50 and len(audio) > 100, (len(video), len(audio))
        assert all(b >= a for a, b in zip(video, video[1:])), video
        assert all(b >= a for a, b in zip(audio, audio[1:])), audio
        if before_switch:
            steps = [b - a for a, b in zip(video, video[1:])]
            assert max(steps) >= skew - 60, (max(steps), skew)
    finally:
        for p in players:
            p.close()
        relay.stop()
