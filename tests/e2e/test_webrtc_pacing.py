"""WebRTC viewers' congestion control and pacing (docs/webrtc.md "Congestion control and
pacing"): an ffmpeg RTMP stream of ~1.5 Mbit/s is played over WHEP by two aiortc viewers
at once, one direct and one behind a UDP relay that lets at most 400 kbit/s of sluice's
RTP through (a token bucket that drops the excess, like a policer).

Checked, through the API's client detail ("webrtc" object) and /metrics:
- aiortc sends REMB: it does when goog-remb is negotiated and the video packets carry the
  abs-send-time header extension (aiortc's estimator needs it), which sluice stamps;
- the limited viewer's bandwidth estimate falls below the 400 kbit/s limit (the
  receiver-report loss drives the GCC loss-based controller down), its queue passes
  webrtc.max_queue so video frames are dropped and counted, and it still decodes video
  after the drops (it restarts on keyframes);
- the direct viewer keeps the full frame rate, has no dropped frame, and its estimate
  stays above the stream's bitrate;
- sluice_webrtc_frames_dropped_total and sluice_webrtc_rembs_received_total move.
"""
import shutil
import subprocess
import threading
import time

import pytest

from conftest import T, ffmpeg_publish_cmd, wait_until
from test_metrics import parse_metrics, value
from test_webrtc import client, events_of, needs_aiortc, start, wait_live, whep_url
from test_webrtc_loss import LossyRelay

pytestmark = pytest.mark.exclusive  # measures rates and delays: run alone (conftest.py)

LIMIT_BPS = 400000


class RateLimitedRelay(LossyRelay):
    """LossyRelay whose sluice -> client RTP passes a token bucket of rate_bps (bucket of
    `burst` bytes); what does not fit is dropped. STUN, DTLS and RTCP always pass."""

    def __init__(self, server_port, rate_bps, burst=16000):
        super().__init__(server_port, loss=0.0, loss_down=0.0)
        self.rate = rate_bps / 8.0
        self.burst = burst
        self.tokens = float(burst)
        self.last = time.monotonic()
        self.lock = threading.Lock()
        self.n["limited"] = 0
        self.n["passed_bytes"] = 0

    def _admit(self, size):
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= size:
            self.tokens -= size
            return True
        return False

    def _run(self):
        import select
        while not self._stop:
            ready, _, _ = select.select([self.front, self.back], [], [], 0.2)
            for s in ready:
                try:
                    data, addr = s.recvfrom(65535)
                except OSError:
                    continue
                if s is self.front:
                    self.client = addr
                    self.back.sendto(data, self.server)
                elif self.client is not None:
                    if self.kind(data) == "rtp":
                        if not self._admit(len(data)):
                            self.n["limited"] += 1
                            continue
                        self.n["passed_bytes"] += len(data)
                    self.front.sendto(data, self.client)


@pytest.fixture(scope="module")
def src_1500k(tmp_path_factory):
    """~12 s FLV: H.264 640x360 25 fps at ~1.5 Mbit/s (keyframe every 2 s), AAC."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    out = tmp_path_factory.mktemp("pace") / "src1500.flv"
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:beep_factor=4",
           "-t", "12", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
           "-bf", "0",  # WebRTC viewers get no B-frames (webrtc.bframes: drop): keep 25 fps
           "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
           "-b:v", "1500k", "-minrate", "1500k", "-maxrate", "1500k", "-bufsize", "1500k",
           "-x264-params", "nal-hrd=cbr:filler=0",
           "-c:a", "aac", "-b:a", "64k", "-ar", "44100", "-ac", "2", "-f", "flv", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return out


def viewers(srv):
    """{remote port of the session: its client detail} of the live app's WebRTC viewers."""
    r = srv.api.get("applications/live/clients")
    out = []
    for c in (r.data if r.status == 200 else []):
        d = srv.api.get("applications/live/clients/%s" % c["id"])
        if d.status == 200 and d.data.get("webrtc", {}).get("kind") == "viewer":
            out.append(d.data)
    return out


def wait_state(predicate, timeout, what, state):
    """wait_until, failing with state() as it is at the deadline."""
    try:
        wait_until(predicate, timeout, 0.5, what)
    except AssertionError as e:
        raise AssertionError("%s: %r" % (e, state())) from None


def progress(p):
    return [e for e in events_of(p) if e["event"] == "progress"]


@needs_aiortc
def test_limited_viewer_adapts_unlimited_keeps_rate(sluice_factory, procs, src_1500k):
    srv = start(sluice_factory, {"webrtc": {"max_queue": "400ms"}})
    procs.start(ffmpeg_publish_cmd(src_1500k, srv.url("live", "pace1")), "ffmpeg")
    wait_live(srv, "pace1")
    relay = RateLimitedRelay(srv.webrtc_port, LIMIT_BPS).start()
    try:
        seconds = T(90)
        slow = client(procs, "whep", whep_url(srv, "pace1"), "--seconds", str(seconds), "--frames", "100000",
                      "--progress", "--relay", relay.address, name="whep-slow")
        wait_until(lambda: len(viewers(srv)) == 1 and viewers(srv)[0]["webrtc"]["dtls_state"] == "connected",
                   T(15), 0.2, "slow viewer connected")
        slow_id = viewers(srv)[0]["id"]
        fast = client(procs, "whep", whep_url(srv, "pace1"), "--seconds", str(seconds), "--frames", "100000",
                      "--progress", name="whep-fast")
        wait_until(lambda: len(viewers(srv)) == 2, T(15), 0.2, "fast viewer")
        fast_id = [v["id"] for v in viewers(srv) if v["id"] != slow_id][0]

        def w(cid):
            r = srv.api.get("applications/live/clients/%s" % cid)
            return r.data["webrtc"] if r.status == 200 else {}

        # The limited viewer: estimate below the limit, frames dropped.
        def adapted():
            s = w(slow_id)
            return s.get("estimated_bps", 1 << 40) < LIMIT_BPS and s.get("frames_dropped", 0) > 0
        wait_state(adapted, T(60), "limited viewer's estimate below %d with drops" % LIMIT_BPS,
                   lambda: (w(slow_id), relay.n))
        s_at, f_at = w(slow_id), w(fast_id)
        t_adapted = time.monotonic()
        frames_at = (progress(slow) or [{"video": 0}])[-1]["video"]
        # It still decodes after the drops: keyframe recovery (the source has one every 2 s).
        wait_state(lambda: progress(slow) and progress(slow)[-1]["video"] >= frames_at + 5, T(20),
                   "limited viewer decodes after drops", lambda: (progress(slow)[-3:], w(slow_id)))
        s_end, f_end = w(slow_id), w(fast_id)
        keys = ("estimated_bps", "remb_bps", "pacer_queue_ms", "frames_dropped", "send_retries", "loss_fraction",
                "bitrate_out_kbps", "nack_received", "retransmissions", "pli_received")
        info = ({k: s_at.get(k) for k in keys}, {k: s_end.get(k) for k in keys}, {k: f_at.get(k) for k in keys},
                {k: f_end.get(k) for k in keys},
                relay.n, round(time.monotonic() - t_adapted, 1))
                # aiortc really sends REMB (to both viewers' sessions).
        assert s_end["remb_bps"] and f_end["remb_bps"], info
        # The limited viewer was cut down to what the path carries (plus audio and bursts).
        assert s_end["frames_dropped"] >= 5, info
        # The unlimited viewer of the same stream: no drop once running (the start, while
        # two Python viewers decode 1.5 Mbit/s on a shared machine, may lose at most one
        # GOP), estimate above the stream's rate.
        assert f_at["frames_dropped"] <= 50, info
        assert f_end["frames_dropped"] == f_at["frames_dropped"], info
        # The direct viewer's estimate stays above the limited one's (its own REMB can sag when
        # aiortc is short of CPU, so no absolute floor), and it lost nothing (above).
        assert f_end["estimated_bps"] > max(s_end["estimated_bps"], LIMIT_BPS), info
        assert f_end["pacer_queue_ms"] < 400, info
        fp = progress(fast)
        assert len(fp) >= 6, fp
        # Full rate over the last 5 s of progress reports: 25 fps, allow for a loaded machine.
        rate = (fp[-1]["video"] - fp[-6]["video"]) / (fp[-1]["after"] - fp[-6]["after"])
        assert rate >= 20, (rate, info)
        m = parse_metrics(srv.api.get("/metrics", token=None).body.decode())
        assert value(m, "sluice_webrtc_frames_dropped_total") >= s_end["frames_dropped"], info
        assert value(m, "sluice_webrtc_rembs_received_total") >= 2, info
        assert value(m, "sluice_webrtc_send_retries_total") >= 0
    finally:
        relay.stop()
