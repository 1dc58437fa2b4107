"""The audio bridge (src/media/audio_bridge.c) end to end, with real peers.

Publishers whose audio is not AAC reach every protocol: ffmpeg publishes
RTSP with H.264 + Opus, H.264 + PCMA and H.264 + PCMU, and SRT (MPEG-TS)
with H.264 + Opus. Checked: HLS has an AAC track with packets whose span
matches the video's (ffprobe over the playlist), RTMP players get AAC
(ffprobe via rtmp://); RTSP players of the same publishers still get the
original Opus / G.711, and a WHEP viewer (aiortc) of the Opus RTSP
publisher gets its Opus through the bridge's side path, with no AAC->Opus
transcoder running (the `to_opus` gauge stays 0); restream pulls (created
through the API) of the PCMA camera play AAC over RTMP and G.711 over RTSP,
and a pull of an H.265 RTSP source (Annex B) carries HEVC (its hvcC built
by the pull) to HLS and RTSP. One server and one set of publishers for the
module.
"""

import re
import shutil
import subprocess
import urllib.parse
import urllib.request

import pytest
import yaml

from conftest import HOST, T, port_open, wait_until
from test_metrics import parse_metrics, value
from test_webrtc import CLIENT, HAVE_AIORTC, Api, events_of, http_port_of, webrtc_config

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                reason="ffmpeg/ffprobe not installed")

ENCODERS = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True).stdout \
    if shutil.which("ffmpeg") else ""
needs_opus = pytest.mark.skipif("libopus" not in ENCODERS, reason="ffmpeg without libopus")

# name -> ffmpeg audio options, the codec ffprobe names for the original
RTSP_PUBS = {
    "opus": (("-c:a", "libopus", "-b:a", "64k", "-ar", "48000"), "opus"),
    "pcma": (("-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1"), "pcm_alaw"),
    "pcmu": (("-c:a", "pcm_mulaw", "-ar", "8000", "-ac", "1"), "pcm_mulaw"),
}


def section_port(srv, section):
    m = re.search(r"^%s:\s*\n(?:\s+.*\n)*?\s+port:\s*(\d+)" % section, srv.config_path.read_text(), re.M)
    return int(m.group(1))


def lavfi_cmd(audio, out):
    """A real-time ffmpeg publisher of test video + a tone (no B-frames, 1 s GOP)."""
    return ["ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostdin", "-re",
            "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-g", "25", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast",
            "-tune", "zerolatency", "-bf", "0"] + list(audio) + out


@pytest.fixture(scope="module")
def srv(module_sluice_factory, module_procs):
    cfg = webrtc_config({"apps": {"live": {"hls_segment": "1s"}}})
    s = module_sluice_factory(config=cfg)
    s.http = http_port_of(s)
    s.rtsp = section_port(s, "rtsp")
    s.srt = section_port(s, "srt")
    s.webrtc_port = int(yaml.safe_load(s.config_path.read_text())["webrtc"]["port"])
    s.api = Api(s)
    wait_until(lambda: port_open(s.http), T(10), message="http port")
    for name, (audio, _) in RTSP_PUBS.items():
        if name == "opus" and "libopus" not in ENCODERS:
            continue
        module_procs.start(lavfi_cmd(audio, ["-f", "rtsp", "-rtsp_transport", "tcp",
                                             "rtsp://%s:%d/live/%s" % (HOST, s.rtsp, name)]), "ffmpeg-" + name)
    if "libopus" in ENCODERS:
        module_procs.start(lavfi_cmd(("-c:a", "libopus", "-b:a", "64k", "-ar", "48000"),
                                     ["-f", "mpegts", "srt://%s:%d?streamid=publish:live/srtopus&latency=200000"
                                      % (HOST, s.srt)]), "ffmpeg-srt-opus")
    return s


def count_frames(url, seconds=2, transport=None):
    """{codec_name: frames decoded} over `seconds` of url, read by ffprobe."""
    cmd = ["ffprobe", "-v", "error"] + (["-rtsp_transport", transport] if transport else []) + \
          ["-count_frames", "-read_intervals", "%%+%d" % seconds,
           "-show_entries", "stream=codec_name,nb_read_frames", "-of", "compact", url]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=T(30))
    out = {}
    for line in p.stdout.splitlines():
        m = re.search(r"codec_name=(\w+)\|nb_read_frames=(\d+)", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def wait_frames(url, want, transport=None, timeout=None):
    last = {}

    def ok():
        nonlocal last
        last = count_frames(url, 1, transport)
        return all(last.get(k, 0) >= n for k, n in want.items())

    wait_until(ok, timeout or T(30), 0.3, lambda: "frames %s from %s (last %s)" % (want, url, last))
    return last


def hls_url(s, stream):
    return "http://%s:%d/live/%s.m3u8" % (HOST, s.http, stream)


def wait_playlist(url):
    """Waits until the media playlist behind the multivariant one at url lists 3 segments."""
    def ok():
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                text = r.read().decode()
            variant = [line for line in text.splitlines() if line and not line.startswith("#")]
            if not variant:
                return False
            with urllib.request.urlopen(urllib.parse.urljoin(url, variant[0]), timeout=5) as r:
                return r.status == 200 and r.read().count(b"#EXTINF") >= 3
        except OSError:
            return False
    wait_until(ok, T(30), 0.3, "HLS playlist %s with 3 segments" % url)


def check_hls_audio(s, stream):
    """The HLS output has AAC with packets, spanning what the video spans."""
    url = hls_url(s, stream)
    wait_playlist(url)
    got = wait_frames(url, {"h264": 20, "aac": 30})
    assert "aac" in got, got
    p = subprocess.run(["ffprobe", "-v", "error", "-read_intervals", "%+3", "-show_entries",
                        "packet=codec_type,pts_time", "-of", "csv=p=0", url],
                       capture_output=True, text=True, timeout=T(30))
    ts = {"audio": [], "video": []}
    for line in p.stdout.split():
        f = line.split(",")
        if len(f) >= 2 and f[0] in ts and f[1] not in ("", "N/A"):
            ts[f[0]].append(float(f[1]))
    assert len(ts["audio"]) > 40 and len(ts["video"]) > 25, (len(ts["audio"]), len(ts["video"]), p.stderr[-300:])
    a0, a1, v0, v1 = min(ts["audio"]), max(ts["audio"]), min(ts["video"]), max(ts["video"])
    # Audio covers the video's time: same start (a segment starts at a
    # keyframe, audio within a frame or two of it) and the same length.
    print("%s: HLS audio %.3f..%.3f, video %.3f..%.3f" % (stream, a0, a1, v0, v1))
    assert abs(a0 - v0) < 0.3, (a0, v0)
    assert abs((a1 - a0) - (v1 - v0)) < 0.4, (a0, a1, v0, v1)


@pytest.mark.parametrize("name", ["opus", "pcma", "pcmu"])
def test_rtsp_publisher_plays_aac_over_hls_and_rtmp(srv, name):
    if name == "opus" and "libopus" not in ENCODERS:
        pytest.skip("ffmpeg without libopus")
    check_hls_audio(srv, name)
    got = wait_frames("rtmp://%s:%d/live/%s" % (HOST, srv.port, name), {"h264": 12, "aac": 20})
    assert set(got) == {"h264", "aac"}, got


@pytest.mark.parametrize("name", ["opus", "pcma", "pcmu"])
def test_rtsp_player_still_gets_the_original(srv, name):
    if name == "opus" and "libopus" not in ENCODERS:
        pytest.skip("ffmpeg without libopus")
    original = RTSP_PUBS[name][1]
    got = wait_frames("rtsp://%s:%d/live/%s" % (HOST, srv.rtsp, name), {"h264": 12, original: 10},
                      transport="tcp")
    assert set(got) == {"h264", original}, got


@needs_opus
def test_srt_opus_publisher_plays_aac_over_hls(srv):
    check_hls_audio(srv, "srtopus")
    # ... and RTSP players get its Opus as is.
    wait_frames("rtsp://%s:%d/live/srtopus" % (HOST, srv.rtsp), {"opus": 10}, transport="tcp")


def to_opus_gauge(s):
    r = s.api.get("/metrics", token=None)
    assert r.status == 200, r
    return value(parse_metrics(r.body.decode()), "sluice_webrtc_transcoders", '{direction="to_opus"}')


@needs_opus
@pytest.mark.skipif(not HAVE_AIORTC, reason="python3-aiortc not installed")
def test_whep_viewer_of_rtsp_opus_gets_opus_untouched(srv, procs):
    url = "http://%s:%d/live/whep/endpoint/opus" % (HOST, srv.http)
    p = procs.start(CLIENT + ["whep", url, "--seconds", str(T(20)), "--frames", "25", "--audio-frames", "50",
                              "--progress"], "whep-opus")

    def audio_flows():
        return any(e.get("audio", 0) >= 10 for e in events_of(p) if e.get("event") in ("progress", "done"))

    wait_until(audio_flows, T(20), 0.2, lambda: "WHEP audio (events %s)" % events_of(p)[-3:])
    # The Opus came from the bridge's side path: no AAC->Opus transcoder.
    assert to_opus_gauge(srv) == 0
    assert p.wait(timeout=T(30)) == 0, events_of(p)[-3:]
    done = [e for e in events_of(p) if e.get("event") == "done"][-1]
    assert done["audio"] >= 50 and done["sample_rate"] == 48000, done


def test_restream_pull_of_g711_plays_aac_and_g711(srv):
    """A pull (created through the API) of the PCMA camera: libavformat gives G.711; RTMP
    players of the pulled stream get AAC, RTSP players the G.711 itself."""
    r = srv.api.request("POST", "restream/pulls", body={
        "app": "live", "stream": "pulled", "url": "rtsp://%s:%d/live/pcma" % (HOST, srv.rtsp)})
    assert r.status == 200, r
    try:
        got = wait_frames("rtmp://%s:%d/live/pulled" % (HOST, srv.port), {"h264": 12, "aac": 20})
        assert set(got) == {"h264", "aac"}, got
        wait_frames("rtsp://%s:%d/live/pulled" % (HOST, srv.rtsp), {"pcm_alaw": 10}, transport="tcp")
    finally:
        assert srv.api.delete("restream/pulls/live/pulled").status == 200


@pytest.mark.skipif("libx265" not in ENCODERS, reason="ffmpeg without libx265")
def test_restream_pull_of_h265_annexb(srv, procs):
    """An RTSP source gives H.265 in Annex B (no hvcC): the pull builds the hvcC from the
    VPS/SPS/PPS it meets, so the pulled stream has HEVC: over HLS (with the G.711 as AAC)
    and RTSP. (Debian's ffmpeg 5.1 cannot read Enhanced RTMP HEVC, so not over RTMP.)"""
    procs.start(["ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostdin", "-re",
                 "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
                 "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-g", "25", "-pix_fmt", "yuv420p",
                 "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "bframes=0:log-level=error",
                 "-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1",
                 "-f", "rtsp", "-rtsp_transport", "tcp", "rtsp://%s:%d/live/h265src" % (HOST, srv.rtsp)],
                "ffmpeg-h265")
    # The source's DESCRIBE lists the tracks the stream has: wait for its video first.
    wait_frames("rtsp://%s:%d/live/h265src" % (HOST, srv.rtsp), {"hevc": 5}, transport="tcp")
    r = srv.api.request("POST", "restream/pulls", body={
        "app": "live", "stream": "h265pull", "url": "rtsp://%s:%d/live/h265src" % (HOST, srv.rtsp)})
    assert r.status == 200, r
    try:
        got = wait_frames("rtsp://%s:%d/live/h265pull" % (HOST, srv.rtsp), {"hevc": 12}, transport="tcp")
        assert "hevc" in got, got
        wait_playlist(hls_url(srv, "h265pull"))
        got = wait_frames(hls_url(srv, "h265pull"), {"hevc": 12, "aac": 20})
        assert set(got) == {"hevc", "aac"}, got
    finally:
        assert srv.api.delete("restream/pulls/live/h265pull").status == 200
