"""SRT and MPEG-TS over UDP end to end, with real peers: ffmpeg and
srt-live-transmit publish and read over SRT (libsrt on both sides), and so
does GStreamer (srtsink / srtsrc from gstreamer1.0-plugins-bad).

Checked: an SRT publish (H.264 + AAC in MPEG-TS) plays over RTMP, HLS and SRT;
an RTMP publish plays over SRT; srt-live-transmit publishes and reads;
GStreamer publishes (plays over RTMP) and plays (decodes 30 frames); H.265
over SRT (when ffmpeg has libx265); a passphrase (right one works, wrong or
none refused by libsrt's handshake); simple auth through the `#!::` and `?`
streamid forms (refused and allowed); handshake rejections (unknown app, bad
streamid) counted on /metrics; the `srt` statistics object in the API's client
detail; MPEG-TS over plain UDP ingest. One server for the module.
"""

import http.client
import json
import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema
import pytest

from conftest import HOST, T, free_port, port_open, wait_stream_live, wait_until
from test_openapi import load_spec, to_jsonschema, undocumented

TOKEN = "e2e-srt-token-51a0c3"
ALICE_PW = "alice-srt-pw-93"
PASSPHRASE = "srt-e2e-passphrase-77"

pytestmark = pytest.mark.skipif(shutil.which("srt-live-transmit") is None or shutil.which("ffmpeg") is None,
                                reason="srt-tools or ffmpeg missing")


def section_port(srv, section):
    m = re.search(r"^%s:\s*\n(?:\s+.*\n)*?\s+port:\s*(\d+)" % section, srv.config_path.read_text(), re.M)
    return int(m.group(1))


@pytest.fixture(scope="module")
def validator():
    """Red5's round-trip validate endpoint: allows every user but "no"; records the bodies."""
    bodies = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            bodies.append((self.path, body))
            data = json.dumps({"result": body.get("username") != "no"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer((HOST, 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    httpd.bodies = bodies
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def srv(module_sluice_factory, tmp_path_factory, validator):
    creds = tmp_path_factory.mktemp("creds") / "simple-auth.credentials"
    creds.write_text("alice %s\n" % ALICE_PW)
    udp_port = free_port()
    s = module_sluice_factory(config={
        "api": {"access_token": TOKEN, "auth_fail_limit": 1000},
        "auth": {"simple_file": str(creds),
                 "roundtrip_validate_url": "http://%s:%d/validate" % (HOST, validator.server_address[1])},
        "mpegts": {"udp": "%d=live/udp1" % udp_port},
        "apps": {"live": {"hls_segment": "2s"}, "sec": {"auth_simple": True},
                 "enc": {"srt_passphrase": PASSPHRASE}, "rt": {"auth_roundtrip": True}},
    })
    s.http = section_port(s, "http")
    s.srt = section_port(s, "srt")
    s.udp = udp_port
    wait_until(lambda: port_open(s.http), T(10), message="http port")
    return s


@pytest.fixture(scope="module")
def ts_src(media_src, tmp_path_factory):
    """The session's FLV as MPEG-TS (H.264 + AAC), for TS publishers."""
    out = tmp_path_factory.mktemp("ts") / "src.ts"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(media_src), "-c", "copy",
                    "-f", "mpegts", str(out)], check=True, timeout=60)
    return out


def srt_url(srv, streamid, extra=""):
    return "srt://%s:%d?streamid=%s&latency=200000%s" % (HOST, srv.srt, streamid, extra)


def srt_publish(procs, src, url, name="srt-publish", extra=()):
    return procs.start(["ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostdin", "-re", "-stream_loop", "-1",
                        "-i", str(src), "-c", "copy"] + list(extra) + ["-f", "mpegts", url], name)


def probe(url, timeout=20):
    p = subprocess.run(["ffprobe", "-hide_banner", "-v", "error", "-analyzeduration", "1500000",
                        "-show_entries", "stream=codec_name,width,height", "-of", "json", url],
                       capture_output=True, text=True, timeout=T(timeout))
    assert p.returncode == 0, p.stderr[-1000:]
    return {s["codec_name"]: s for s in json.loads(p.stdout).get("streams", [])}


def api(srv, path):
    c = http.client.HTTPConnection(HOST, srv.http, timeout=10)
    try:
        c.request("GET", path + ("&" if "?" in path else "?") + "accessToken=" + TOKEN)
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, (r.status, body[:300])
        return json.loads(body)["data"]
    finally:
        c.close()


def metrics(srv):
    c = http.client.HTTPConnection(HOST, srv.http, timeout=10)
    try:
        c.request("GET", "/metrics?accessToken=" + TOKEN)
        return c.getresponse().read().decode()
    finally:
        c.close()


def metric_value(text, name):
    m = re.search(r"^%s (\d+)" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


def srt_client(srv, app, stream, mode):
    """The API's client detail of the SRT session publishing/reading app/stream, or None."""
    for c in api(srv, "/api/v1/applications/%s/clients" % app.split("/")[0]):
        d = api(srv, "/api/v1/applications/%s/clients/%s" % (app.split("/")[0], c["id"]))
        if d.get("connection_protocol") == "srt" and d.get("stream") == stream and \
                d.get("srt", {}).get("mode") == mode:
            return d
    return None


def test_srt_publish_plays_over_rtmp_hls_srt_with_stats(srv, procs, ts_src):
    pub = srt_publish(procs, ts_src, srt_url(srv, "publish:live/s1"))
    wait_stream_live(srv.port, "live", "s1", T(15))
    got = probe("rtmp://%s:%d/live/s1" % (HOST, srv.port))
    assert got["h264"]["width"] == 640 and "aac" in got
    got = probe(srt_url(srv, "read:live/s1"))
    assert got["h264"]["height"] == 360 and "aac" in got
    wait_until(lambda: port_open(srv.http) and probe_ok("http://%s:%d/live/s1.m3u8" % (HOST, srv.http)),
               T(20), message="HLS playlist of the SRT stream")
    # The publisher's statistics, from libsrt, in the client detail.
    d = None

    def have_stats():
        nonlocal d
        d = srt_client(srv, "live", "s1", "publish")
        return d is not None and d["srt"]["packets_received"] > 0
    wait_until(have_stats, T(10), message="srt stats")
    s = d["srt"]
    assert s["state"] == "live" and s["streamid_form"] == "plain" and not s["encrypted"]
    assert s["video_codec"] == "H264" and s["audio_codec"] == "AAC"
    assert s["bytes_received"] > 10000 and s["rtt_ms"] >= 0 and s["latency_ms"] >= 120
    assert d["role"] == "publisher" and d["bytes_in"] > 0
    # ... exactly as docs/openapi.yaml describes it.
    schema = to_jsonschema(load_spec(), {"$ref": "#/components/schemas/SRTSessionStatistics"})
    assert not list(jsonschema.Draft7Validator(schema).iter_errors(s))
    assert not undocumented(schema, s)
    m = metrics(srv)
    assert 'sluice_srt_sessions{mode="publish"} ' in m and metric_value(m, "sluice_srt_connections_total") >= 2
    # Kicked through the API: the SRT connection closes and ffmpeg gives up.
    c = http.client.HTTPConnection(HOST, srv.http, timeout=10)
    c.request("DELETE", "/api/v1/applications/live/clients/%s?accessToken=%s" % (d["id"], TOKEN))
    assert c.getresponse().status == 200
    c.close()
    srv.wait_log(r"srt publisher closed: ", T(5))
    wait_until(lambda: pub.poll() is not None, T(15), message="ffmpeg gives up after the kick")


def probe_ok(url):
    try:
        probe(url, timeout=10)
        return True
    except (AssertionError, subprocess.TimeoutExpired):
        return False


def test_rtmp_publish_plays_over_srt(srv, ffmpeg_publish):
    ffmpeg_publish("rtmp://%s:%d/live/r1" % (HOST, srv.port))
    wait_stream_live(srv.port, "live", "r1", T(15))
    got = probe(srt_url(srv, "read:live/r1"))
    assert got["h264"]["width"] == 640 and "aac" in got


def test_srt_live_transmit_publishes_and_reads(srv, procs, ts_src, tmp_path):
    # srt-live-transmit as the publisher, fed by a real-time ffmpeg on its stdin.
    feed = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1",
                             "-i", str(ts_src), "-c", "copy", "-f", "mpegts", "-"], stdout=subprocess.PIPE)
    try:
        procs.start(["srt-live-transmit", "-q", "file://con", srt_url(srv, "publish:live/slt")], "slt-pub",
                    stdin=feed.stdout)
        wait_stream_live(srv.port, "live", "slt", T(15))
        # ... and as a reader writing what it gets to a file, which ffprobe reads.
        out = tmp_path / "read.ts"
        with open(out, "wb") as f:
            rd = subprocess.Popen(["srt-live-transmit", "-q", srt_url(srv, "read:live/slt"), "file://con"], stdout=f)
            try:
                wait_until(lambda: out.stat().st_size > 100000, T(15), message="srt-live-transmit read data")
            finally:
                rd.terminate()
                rd.wait(10)
        streams = {s["codec_name"] for s in json.loads(subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "json", str(out)],
            capture_output=True, text=True, timeout=30).stdout)["streams"]}
        assert streams == {"h264", "aac"}
    finally:
        feed.kill()
        feed.wait(10)


def have_gst(*elements):
    if shutil.which("gst-launch-1.0") is None:
        return False
    return all(subprocess.run(["gst-inspect-1.0", "--exists", e], timeout=30).returncode == 0 for e in elements)


@pytest.mark.skipif(not have_gst("srtsink", "mpegtsmux", "x264enc", "avenc_aac"),
                    reason="GStreamer srtsink, mpegtsmux, x264enc or avenc_aac missing")
def test_gstreamer_publishes_over_srt(srv, procs):
    # mpegtsmux alignment=7: one SRT message per 7 TS packets (1316 bytes). GStreamer 1.22's
    # srtsink does not split a larger buffer, and libsrt refuses one above the live payload
    # size, so without it every keyframe is lost. config-interval=-1: SPS/PPS before each IDR.
    pipeline = ("videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=25/1 ! "
                "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! h264parse config-interval=-1 ! "
                "mux. audiotestsrc is-live=true ! audioconvert ! avenc_aac ! aacparse ! mux. "
                "mpegtsmux name=mux alignment=7 ! srtsink uri=srt://%s:%d latency=200 streamid=publish:live/g1"
                % (HOST, srv.srt))
    procs.start(["gst-launch-1.0", "-e"] + pipeline.split(), "gst-srtsink")
    wait_stream_live(srv.port, "live", "g1", T(20))
    got = probe("rtmp://%s:%d/live/g1" % (HOST, srv.port))
    assert got["h264"]["width"] == 320 and got["h264"]["height"] == 240 and "aac" in got, got
    d = srt_client(srv, "live", "g1", "publish")
    assert d and d["srt"]["video_codec"] == "H264" and d["srt"]["audio_codec"] == "AAC"


@pytest.mark.skipif(not have_gst("srtsrc", "tsdemux", "h264parse", "avdec_h264"),
                    reason="GStreamer srtsrc, tsdemux or avdec_h264 missing")
def test_gstreamer_plays_over_srt(srv, ffmpeg_publish):
    ffmpeg_publish("rtmp://%s:%d/live/gplay" % (HOST, srv.port))
    wait_stream_live(srv.port, "live", "gplay", T(15))
    # 30 decoded frames, then identity sends EOS and gst-launch exits 0; nothing decoded: it
    # runs into the timeout (the test fails).
    cmd = ["gst-launch-1.0", "-q", "srtsrc", "uri=srt://%s:%d" % (HOST, srv.srt), "latency=200",
           "streamid=read:live/gplay", "!", "tsdemux", "!", "h264parse", "!", "avdec_h264", "!",
           "identity", "eos-after=30", "!", "fakesink"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=T(30))
    assert p.returncode == 0, (p.stdout[-1500:], p.stderr[-1500:])
    srv.wait_log(r"live/gplay\] srt read started", T(5))


def has_x265():
    p = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True)
    return "libx265" in p.stdout


@pytest.mark.skipif(not has_x265(), reason="ffmpeg without libx265")
def test_hevc_over_srt(srv, procs):
    procs.start(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-f", "lavfi",
                 "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=300",
                 "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=25:log-level=error",
                 "-c:a", "aac", "-f", "mpegts", srt_url(srv, "publish:live/hevc")], "hevc-pub")
    got = None

    def live():
        nonlocal got
        try:
            got = probe(srt_url(srv, "read:live/hevc"), timeout=10)
            return "hevc" in got
        except (AssertionError, subprocess.TimeoutExpired):
            return False
    wait_until(live, T(30), interval=0.5, message="HEVC over SRT")
    assert got["hevc"]["width"] == 320 and "aac" in got
    d = srt_client(srv, "live", "hevc", "publish")
    assert d and d["srt"]["video_codec"] == "H265"


def publish_outcome(srv, procs, ts_src, streamid, app, stream, extra=""):
    """Publishes with ffmpeg; returns True when app/stream goes live, False when ffmpeg gives up."""
    p = srt_publish(procs, ts_src, srt_url(srv, streamid, extra), name="try-" + stream)
    live = [None]

    def decided():
        d = srt_client(srv, app, stream, "publish")
        if d and d["srt"]["state"] == "live" and d["srt"]["packets_received"] > 0:
            live[0] = True
        elif p.poll() is not None:
            live[0] = False
        return live[0] is not None
    wait_until(decided, T(20), interval=0.3, message="publish outcome of %s" % streamid)
    procs.stop(p)
    return live[0]


def test_passphrase(srv, procs, ts_src, secrets):
    secrets(PASSPHRASE)
    assert publish_outcome(srv, procs, ts_src, "publish:enc/e1", "enc", "e1", "&passphrase=" + PASSPHRASE)
    assert not publish_outcome(srv, procs, ts_src, "publish:enc/e2", "enc", "e2", "&passphrase=wrong-passphrase-1")
    assert not publish_outcome(srv, procs, ts_src, "publish:enc/e3", "enc", "e3")


def test_simple_auth_access_control_form(srv, procs, ts_src, secrets):
    secrets(ALICE_PW)
    assert not publish_outcome(srv, procs, ts_src, "#!::r=sec/a1,m=publish,u=alice,s=nope", "sec", "a1")
    srv.wait_log(r"srt publish refused", T(5))
    assert publish_outcome(srv, procs, ts_src, "#!::r=sec/a2,m=publish,u=alice,s=" + ALICE_PW, "sec", "a2")
    # The query form, URL-encoded inside the SRT URL.
    assert publish_outcome(srv, procs, ts_src,
                           "publish:sec/a3%3Fusername%3Dalice%26password%3D" + ALICE_PW, "sec", "a3")

    def refused_reader():
        p = subprocess.run(["ffprobe", "-v", "error", "-analyzeduration", "500000", srt_url(srv, "read:sec/a3")],
                           capture_output=True, timeout=T(15))
        return p.returncode != 0
    assert refused_reader()


def test_roundtrip_admission_is_asynchronous(srv, procs, ts_src, validator):
    # The round trip answers later (SL_EPENDING): the session waits in "admitting".
    assert publish_outcome(srv, procs, ts_src, "#!::r=rt/r1,m=publish,u=bob,s=pw1,t=tok1", "rt", "r1")
    got = [b for p, b in validator.bodies if p == "/validate" and b.get("streamID") == "r1"]
    assert got and got[0]["username"] == "bob" and got[0]["password"] == "pw1" and got[0]["token"] == "tok1"
    assert got[0]["type"] == "publisher"
    assert not publish_outcome(srv, procs, ts_src, "#!::r=rt/r2,m=publish,u=no,s=x", "rt", "r2")


def test_handshake_rejections_counted(srv):
    before = metric_value(metrics(srv), "sluice_srt_rejected_total")
    for sid in ("publish:nosuchapp/x", "publish:live", "#!::m=publish"):
        p = subprocess.run(["ffprobe", "-v", "error", srt_url(srv, sid)], capture_output=True, text=True,
                           timeout=T(15))
        assert p.returncode != 0
    wait_until(lambda: metric_value(metrics(srv), "sluice_srt_rejected_total") >= before + 3, T(5),
               message="rejections counted")


def test_mpegts_udp_ingest(srv, procs, ts_src):
    procs.start(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1",
                 "-i", str(ts_src), "-c", "copy", "-f", "mpegts", "udp://%s:%d?pkt_size=1316" % (HOST, srv.udp)],
                "udp-pub")
    wait_stream_live(srv.port, "live", "udp1", T(15))
    got = probe("rtmp://%s:%d/live/udp1" % (HOST, srv.port))
    assert got["h264"]["width"] == 640 and "aac" in got
    clients = [api(srv, "/api/v1/applications/live/clients/" + c["id"])
               for c in api(srv, "/api/v1/applications/live/clients")]
    assert any(c.get("connection_protocol") == "mpegts" and c.get("stream") == "udp1" for c in clients)
    assert metric_value(metrics(srv), "sluice_mpegts_udp_publishing") == 1
