"""WebRTC under packet loss: a WHIP publisher (aiortc) sends through a UDP relay that
drops about 5% of its RTP packets on the way to sluice; sluice's NACKs make the
publisher retransmit, and the RTMP output of the stream stays decodable. The other
way too: an RTMP stream played over WHEP through a relay dropping 5% of sluice's RTP;
the viewer's NACKs are answered from sluice's retransmission history.

The relay is a thread with two UDP sockets: one faces the client (whose answer has
its UDP candidates rewritten to the relay by webrtc_client.py --relay), one faces
sluice's WebRTC port. Packets are classified by their first byte (RFC 7983): STUN
(0-3) and DTLS (20-63) always pass, as does RTCP (RTP range 128-191 with a second
byte of 192-223, RFC 5761); only RTP is dropped, with a fixed seed so
that a failure can be replayed.
"""
import random
import select
import signal
import socket
import subprocess
import threading

import pytest

from conftest import HOST, T, ffmpeg_publish_cmd, wait_until
from test_webrtc import client, events_of, needs_aiortc, run_client, start, wait_live, whep_url, whip_url

pytestmark = pytest.mark.exclusive  # measures rates and delays: run alone (conftest.py)


class LossyRelay:
    """Forwards UDP between one client and sluice's WebRTC port, dropping a share
    of the client's RTP packets (loss) and of sluice's (loss_down); never STUN,
    DTLS or RTCP."""

    # The first packets of each direction always pass: a receiver NACKs only the gaps
    # after a packet it has seen, so losing the very first ones (the keyframe with
    # SPS/PPS a viewer starts on) is repaired by a keyframe request, not by NACK, and
    # would make the test measure luck instead of retransmission.
    GRACE = 50

    def __init__(self, server_port, loss=0.05, seed=14, loss_down=0.0):
        self.server = (HOST, server_port)
        self.loss = loss
        self.loss_down = loss_down
        self.rng = random.Random(seed)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind((HOST, 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind((HOST, 0))
        self.client = None
        self.n = {"rtp": 0, "dropped": 0, "rtcp": 0, "stun": 0, "dtls": 0, "down": 0, "dropped_down": 0}
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def address(self):
        return "%s:%d" % self.front.getsockname()

    def start(self):
        self._thread.start()
        return self

    @staticmethod
    def kind(data):
        if not data:
            return "other"
        b = data[0]
        if b <= 3:
            return "stun"
        if 20 <= b <= 63:
            return "dtls"
        if 128 <= b <= 191:
            return "rtcp" if len(data) > 1 and 192 <= data[1] <= 223 else "rtp"
        return "other"

    def _run(self):
        while not self._stop:
            ready, _, _ = select.select([self.front, self.back], [], [], 0.2)
            for s in ready:
                try:
                    data, addr = s.recvfrom(65535)
                except OSError:
                    continue
                if s is self.front:
                    self.client = addr
                    k = self.kind(data)
                    self.n[k] = self.n.get(k, 0) + 1
                    if k == "rtp" and self.n["rtp"] > self.GRACE and self.rng.random() < self.loss:
                        self.n["dropped"] += 1
                        continue
                    self.back.sendto(data, self.server)
                elif self.client is not None:
                    k = self.kind(data)
                    self.n["down"] += 1
                    self.n["down_" + k] = self.n.get("down_" + k, 0) + 1
                    if k == "rtp" and self.n["down_rtp"] > self.GRACE and self.rng.random() < self.loss_down:
                        self.n["dropped_down"] += 1
                        continue
                    self.front.sendto(data, self.client)

    def stop(self):
        self._stop = True
        self._thread.join(2)
        self.front.close()
        self.back.close()


@pytest.fixture
def relay_factory():
    made = []

    def make(port, **kw):
        r = LossyRelay(port, **kw).start()
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


def decode_rtmp(url, seconds=5):
    """ffmpeg decodes `seconds` of url's video: (decoded frames, error lines)."""
    p = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", url, "-t", str(seconds),
                        "-map", "0:v:0", "-f", "framecrc", "-"],
                       capture_output=True, text=True, timeout=T(30))
    frames = [l for l in p.stdout.splitlines() if l and not l.startswith("#")]
    errors = [l for l in p.stderr.splitlines() if l.strip()]
    return p.returncode, len(frames), errors


@needs_aiortc
def test_nack_recovers_5_percent_loss(sluice_factory, procs, media_src, relay_factory):
    # No periodic keyframe requests: a PLI then only means a frame NACK could not save.
    srv = start(sluice_factory, {"webrtc": {"keyframe_interval": "0s"}})
    relay = relay_factory(srv.webrtc_port, loss=0.05, seed=14)
    pub = client(procs, "whip", whip_url(srv, "loss1"), "--src", str(media_src), "--seconds", "60",
                 "--relay", relay.address, name="whip")
    wait_live(srv, "loss1")
    wait_until(lambda: srv.api.get("applications/live/streams/loss1").data.get("frames_in", 0) > 25,
               T(15), 0.2, "media through the relay")
    rc, frames, errors = decode_rtmp(srv.url("live", "loss1"), 5)
    procs.stop(pub, signal.SIGTERM, T(15))
    done = [e for e in events_of(pub) if e["event"] == "done"]
    assert done and done[0]["connected"], (events_of(pub), procs.log_of(pub)[-2000:])
    done = done[0]
    info = (relay.n, done, errors[:10])
    # The relay really dropped RTP (and only RTP) and the session stayed up through it.
    assert relay.n["dropped"] >= 10 and relay.n["stun"] > 0 and relay.n["dtls"] > 0, info
    # sluice asked for the lost packets and aiortc found them in its history and resent them.
    assert done["retransmits"] >= relay.n["dropped"] // 2, info
    # The RTMP output decodes: 5 s of 25 fps video from a stream whose every lost packet
    # had to come back is ~125 frames; without NACK about one frame in five misses a
    # packet and the depacketizer drops it and everything up to the next keyframe.
    assert rc == 0 and frames >= 100, info + (frames,)
    # A retransmission can itself be dropped (5%) and arrive after the NACK buffer, so a
    # frame may be lost now and then: the decoder then reports it (a few lines per
    # missing reference). More than 10 lines in 5 s means NACK is not doing its job.
    assert len(errors) <= 10, info
    # Keyframe requests: one at the start and one for the RTMP player are seen without
    # any loss, 1-2 with it, up to 5 on a loaded machine (a retransmission dropped in
    # turn, or late past webrtc.nack_buffer); without retransmission it is ~17.
    assert done["keyframes_asked"] <= 8, info


@pytest.fixture(scope="module")
def media_no_bframes(tmp_path_factory):
    """conftest's media_src without B-frames: WHEP viewers are sent no B-frames
    (webrtc.bframes: drop), so the shared source (x264's default 3 B-frames) would reach
    the viewer at a third of its frame rate, and lost references of B-frames make
    decoder errors this test is not about."""
    out = tmp_path_factory.mktemp("media-nob") / "src.flv"
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:beep_factor=4", "-t", "12",
           "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main", "-bf", "0", "-pix_fmt", "yuv420p",
           "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
           "-b:v", "800k", "-maxrate", "800k", "-bufsize", "800k",
           "-c:a", "aac", "-b:a", "64k", "-ar", "44100", "-ac", "2", "-f", "flv", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return out


@needs_aiortc
def test_whep_viewer_recovers_5_percent_loss(sluice_factory, procs, media_no_bframes, relay_factory):
    srv = start(sluice_factory)
    procs.start(ffmpeg_publish_cmd(media_no_bframes, srv.url("live", "loss2")), "ffmpeg")
    wait_live(srv, "loss2")
    relay = relay_factory(srv.webrtc_port, loss=0.0, loss_down=0.05, seed=15)
    rc, evs, err = run_client("whep", whep_url(srv, "loss2"), "--seconds", str(T(20)), "--frames", "100",
                              "--relay", relay.address, timeout=T(60))
    done = [e for e in evs if e["event"] == "done"]
    first = [e for e in evs if e["event"] == "first_video"]
    info = (relay.n, done, err[-1500:])
    decode_errors = [l for l in err.splitlines() if "[h264 @" in l]
    assert rc == 0 and done and first, info
    done = done[0]
    assert relay.n["dropped_down"] >= 10, info
    # The viewer NACKed what the relay dropped and sluice resent it: 100 frames of 25 fps
    # video take 4 s (less at the start, where the GOP cache comes in a burst). A lost
    # packet that is not resent stalls aiortc's jitter buffer until it overflows (128
    # packets) and then waits for a keyframe (PLI; the RTMP source has one every 2 s).
    assert done["nacked"] >= relay.n["dropped_down"] // 2, info
    assert done["after"] - first[0]["after"] <= T(6), info
    # Without NACKs answered the decoder reports broken frames and the viewer asks for
    # ~30 keyframes here; with them, only the first PLI (made before the first
    # keyframe arrives) is seen, and one more for a retransmission dropped in turn.
    assert len(decode_errors) <= 2 and done["plis"] <= 2, info
