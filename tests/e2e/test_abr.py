"""ABR variants (src/modules/abr, src/media/vtranscode.c) end to end, with real peers.

One node holds a 3-level provision of live/mystream (640x360, 320x180, 160x90). ffmpeg
publishes live/mystream_1 (H.264 640x360 30 fps, keyframe every 30 frames, AAC). Checked:
the transcoder publishes live/mystream_2 and _3, which ffprobe reads over RTMP with the
variant's size, H.264, an AAC track, and a video bitrate near the provisioned one; the HLS
multivariant playlist of the provision (/live/mystream.m3u8) names all three with
BANDWIDTH, RESOLUTION and CODECS, its variant playlists play (ffprobe through the master),
and segments of the variants start on the same timestamps; the source stopping unpublishes
the variants; bad provisions are refused with 400 (and the API lists, adds, removes).
hls.js in Chromium plays the ladder and switches levels in tests/browser/abr.test.mjs.
The cluster case (a provision written into Redis by the cluster service makes a transcoder
node transcode; an edge plays mystream_2 through the relay) is in test_abr_cluster.py.
"""

import http.client
import json
import re
import shutil
import subprocess
import urllib.request

import pytest

from conftest import HOST, T, ffprobe_json, ffprobe_streams, port_open, wait_until

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                reason="ffmpeg/ffprobe not installed")

TOKEN = "e2e-abr-token-51c0"
LADDER = [(640, 360, 800000), (320, 180, 300000), (160, 90, 120000)]


def provision(guid="live/mystream", ladder=LADDER):
    app, name = guid.rsplit("/", 1)
    return {"streamGuid": guid, "streams": [
        {"streamGuid": "%s/%s_%d" % (app, name, i + 1), "abrLevel": i + 1,
         "videoParams": {"videoWidth": w, "videoHeight": h, "videoBitRate": b}}
        for i, (w, h, b) in enumerate(ladder)]}


def http_port(srv):
    m = re.search(r"^http:\s*\n\s+port:\s*(\d+)", srv.config_path.read_text(), re.M)
    return int(m.group(1))


def call(port, method, path, body=None):
    c = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        c.request(method, path + ("&" if "?" in path else "?") + "accessToken=" + TOKEN, body=data,
                  headers={"Content-Type": "application/json"} if data else {})
        r = c.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, raw
    finally:
        c.close()


def get(port, path):
    with urllib.request.urlopen("http://%s:%d%s" % (HOST, port, path), timeout=10) as r:
        return r.read().decode()


@pytest.fixture(scope="session")
def abr_src(tmp_path_factory):
    """8 s of H.264 640x360 30 fps, keyframe every 30 frames, AAC: looped by the publisher."""
    out = tmp_path_factory.mktemp("abr-media") / "src.flv"
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
           "-t", "8", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
           "-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-bf", "0",
           "-b:v", "800k", "-maxrate", "800k", "-bufsize", "800k",
           "-c:a", "aac", "-b:a", "64k", "-ac", "2", str(out)]
    subprocess.run(cmd, check=True, timeout=120)
    return out


def publish_cmd(src, url):
    return ["ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostdin", "-re",
            "-stream_loop", "-1", "-i", str(src), "-c", "copy", "-f", "flv", url]


def live_streams(port):
    st, body = call(port, "GET", "/api/v1/applications/live/streams")
    assert st == 200, body
    return {s["name"] if isinstance(s, dict) else s for s in body["data"]}


@pytest.fixture(scope="module")
def abr_env(module_sluice_factory, module_procs, abr_src):
    cfg = {"api": {"access_token": TOKEN, "auth_fail_limit": 1000},
           "abr": {"enabled": True, "preset": "ultrafast",
                   "provisions": json.dumps(json.dumps([provision()]))},  # a YAML string
           "apps": {"live": {"hls_segment": "1s", "hls_window": 6}}}
    srv = module_sluice_factory(config=cfg)
    srv.http = http_port(srv)
    wait_until(lambda: port_open(srv.http), T(10), message="http port")
    srv.pub = module_procs.start(publish_cmd(abr_src, srv.url("live", "mystream_1")), "publisher")
    srv.procs = module_procs
    wait_until(lambda: {"mystream_1", "mystream_2", "mystream_3"} <= live_streams(srv.http),
               T(20), 0.2, "the source and its variants live")
    return srv


def test_variants_over_rtmp(abr_env, tmp_path):
    for i, (w, h, bitrate) in enumerate(LADDER[1:], start=2):
        url = abr_env.url("live", "mystream_%d" % i)
        streams = {s["codec_type"]: s for s in ffprobe_streams(url, timeout=T(30))}
        assert streams["video"]["codec_name"] == "h264", streams
        assert (streams["video"]["width"], streams["video"]["height"]) == (w, h)
        assert streams["audio"]["codec_name"] == "aac"
        # ~4 s of the variant, copied: its video bitrate is near the provisioned one
        out = tmp_path / ("v%d.flv" % i)
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", url,
                        "-t", "4", "-c", "copy", str(out)], check=True, timeout=T(60))
        pk = ffprobe_json(out, ["-select_streams", "v", "-show_packets", "-show_entries",
                                "packet=pts_time,size"])["packets"]
        span = float(pk[-1]["pts_time"]) - float(pk[0]["pts_time"])
        assert span > 2.5, span
        kbps = sum(int(p["size"]) for p in pk) * 8 / span / 1000
        assert bitrate / 1000 * 0.3 < kbps < bitrate / 1000 * 1.8, (i, kbps)


def test_api_lists_the_transcoder(abr_env):
    st, body = call(abr_env.http, "GET", "/api/v1/abr/transcoders")
    assert st == 200
    (t,) = body["data"]
    assert t["source"] == "live/mystream_1"
    assert [v["streamGuid"] for v in t["variants"]] == ["live/mystream_2", "live/mystream_3"]
    assert all(v["live"] for v in t["variants"])
    assert (t["source_width"], t["source_height"]) == (640, 360)
    assert t["decoded"] > 0 and t["frames_out"] > 0
    # the variants' own metadata: the Server API reports their size, not the source's
    st, body = call(abr_env.http, "GET", "/api/v1/applications/live/streams/mystream_3")
    assert st == 200, body
    assert (body["data"]["width"], body["data"]["height"]) == (160, 90), body
    # each variant is published by a session of protocol abr (the publisher identity)
    st, body = call(abr_env.http, "GET", "/api/v1/applications/live/clients")
    ids = [c["id"] for c in body["data"]]
    protos = [call(abr_env.http, "GET", "/api/v1/applications/live/clients/" + i)[1]["data"]
              for i in ids]
    assert sum(1 for c in protos if c.get("connection_protocol") == "abr") == 2, protos
    st, body = call(abr_env.http, "GET", "/api/v1/abr/provisions")
    assert st == 200
    (p,) = body["data"]
    assert p["streamGuid"] == "live/mystream" and p["source"] == "config" and p["transcoding"]
    st, body = call(abr_env.http, "GET", "/api/v1/abr/provisions/live/mystream")
    assert st == 200 and len(body["data"]["streams"]) == 3


def test_hls_multivariant(abr_env, tmp_path):
    # each variant is listed with its CODECS once its stream has its configurations
    master = wait_until(lambda: (lambda m: m if m.count("CODECS=") == 3 else None)(
        get(abr_env.http, "/live/mystream.m3u8")), T(20), 0.2, "three variants with CODECS")
    assert master.startswith("#EXTM3U"), master
    infs = re.findall(r"#EXT-X-STREAM-INF:([^\n]*)\n([^\n]+)", master)
    assert len(infs) == 3, master
    for (attrs, uri), (w, h, b), i in zip(infs, LADDER, range(1, 4)):
        assert "RESOLUTION=%dx%d" % (w, h) in attrs, attrs
        bw = int(re.search(r"BANDWIDTH=(\d+)", attrs).group(1))
        assert b <= bw <= b * 1.2 + 300000, attrs
        assert re.search(r'CODECS="avc1\.[0-9A-Fa-f]{6},mp4a\.40\.2"', attrs), attrs
        assert uri.startswith("mystream_%d.m3u8?" % i) and "sid=" in uri, uri
    # every variant playlist of the same sid plays (hls.js switches between them)
    sid = re.search(r"sid=([A-Za-z0-9]+)", infs[0][1]).group(1)
    firsts = {}
    for i, (attrs, uri) in enumerate(infs, start=1):
        def enough():
            pl = get(abr_env.http, "/live/" + uri)
            return pl if len(re.findall(r"#EXTINF", pl)) >= 3 else None
        pl = wait_until(enough, T(30), 0.3, "three segments of variant %d" % i)
        assert "sid=" + sid in pl
        segs = re.findall(r"^(mystream_%d_\d+\.ts\?[^\n]*)$" % i, pl, re.M)
        assert segs, pl
        firsts[i] = [(s.split("?")[0], s) for s in segs[:3]]
    # segments of the variants start on the same timestamps (aligned keyframes)
    starts = {}
    for i, segs in firsts.items():
        starts[i] = []
        for name, seg in segs:
            f = tmp_path / name
            f.write_bytes(urllib.request.urlopen("http://%s:%d/live/%s" % (HOST, abr_env.http, seg),
                                                 timeout=10).read())
            pk = ffprobe_json(f, ["-select_streams", "v", "-show_packets", "-show_entries",
                                  "packet=pts_time,flags"])["packets"]
            assert pk and "K" in pk[0]["flags"], (name, pk[:2])
            starts[i].append(round(float(pk[0]["pts_time"]), 3))
    # the media sequence numbers may differ by when each variant began: compare the sets
    common = set(starts[1]) & set(starts[2]) & set(starts[3])
    assert len(common) >= 2, starts
    # and a player reads a variant through the master
    data = ffprobe_json("http://%s:%d/live/%s" % (HOST, abr_env.http, infs[2][1]),
                        ["-show_streams"], timeout=T(30))
    v = [s for s in data["streams"] if s["codec_type"] == "video"]
    assert v and (v[0]["width"], v[0]["height"]) == (160, 90)


@pytest.mark.parametrize("mutate, needle", [
    (lambda p: p["streams"][1]["videoParams"].update(videoWidth=321), "videoWidth"),
    (lambda p: p["streams"][1]["videoParams"].update(videoBitRate=1000), "videoBitRate"),
    (lambda p: p["streams"][1].update(abrLevel=1), "abrLevel"),
    (lambda p: p["streams"][2].update(streamGuid="other/x_3"), "streamGuid"),
    (lambda p: p.update(streams=[]), "streams"),
    (lambda p: p["streams"].pop(0), "abrLevel 1"),
    (lambda p: p["streams"][1]["videoParams"].update(videoHeight=8192), "videoHeight"),
])
def test_bad_provision_is_refused(abr_env, mutate, needle):
    p = provision("live/bad")
    mutate(p)
    st, body = call(abr_env.http, "POST", "/api/v1/abr/provisions", p)
    assert st == 400, body
    assert needle in body["data"]["message"] if isinstance(body.get("data"), dict) \
        and "message" in body["data"] else needle in json.dumps(body), body
    st, _ = call(abr_env.http, "POST", "/api/v1/abr/provisions", b"{not json")
    assert st == 400
    st, _ = call(abr_env.http, "POST", "/api/v1/abr/provisions", b"{" + b" " * 9000 + b"}")
    assert st == 413


def test_api_add_and_remove(abr_env):
    p = provision("live/other", LADDER[1:])
    st, body = call(abr_env.http, "POST", "/api/v1/abr/provisions", p)
    assert st == 200, body
    assert body["data"]["source"] == "api" and not body["data"]["transcoding"]
    st, body = call(abr_env.http, "GET", "/api/v1/abr/provisions")
    assert {q["streamGuid"] for q in body["data"]} == {"live/mystream", "live/other"}
    st, _ = call(abr_env.http, "DELETE", "/api/v1/abr/provisions/live/other")
    assert st == 200
    st, _ = call(abr_env.http, "DELETE", "/api/v1/abr/provisions/live/other")
    assert st == 404
    st, _ = call(abr_env.http, "DELETE", "/api/v1/abr/provisions/live/mystream")
    assert st == 409  # from the configuration


def test_reload_replaces_configured_provisions(abr_env):
    text = abr_env.config_path.read_text()
    old = json.dumps(json.dumps([provision()]))
    new = json.dumps(json.dumps([provision(), provision("live/second", LADDER[1:])]))
    assert old in text
    up0 = call(abr_env.http, "GET", "/api/v1/abr/transcoders")[1]["data"][0]["uptime_ms"]
    abr_env.config_path.write_text(text.replace(old, new))
    st, body = call(abr_env.http, "POST", "/api/v1/server/reload")
    assert st == 200, body
    st, body = call(abr_env.http, "GET", "/api/v1/abr/provisions")
    assert {p["streamGuid"] for p in body["data"]} == {"live/mystream", "live/second"}
    # the running transcoder's provision did not change: it keeps running
    st, body = call(abr_env.http, "GET", "/api/v1/abr/transcoders")
    assert len(body["data"]) == 1 and body["data"][0]["uptime_ms"] >= up0
    abr_env.config_path.write_text(text)
    st, body = call(abr_env.http, "POST", "/api/v1/server/reload")
    assert st == 200, body


def test_source_stop_unpublishes_variants(abr_env, abr_src):
    """Last: stops the module's publisher."""
    abr_env.procs.stop(abr_env.pub)
    wait_until(lambda: not ({"mystream_1", "mystream_2", "mystream_3"} & live_streams(abr_env.http)),
               T(15), 0.2, "the variants unpublished")
    st, body = call(abr_env.http, "GET", "/api/v1/abr/transcoders")
    assert st == 200 and body["data"] == []
    assert re.search(r"variant live/mystream_2 unpublished: the source stopped", abr_env.log_text())
    # and a new publish starts them again
    abr_env.pub = abr_env.procs.start(publish_cmd(abr_src, abr_env.url("live", "mystream_1")),
                                      "publisher2")
    wait_until(lambda: {"mystream_2", "mystream_3"} <= live_streams(abr_env.http), T(20), 0.2,
               "the variants again")
    abr_env.procs.stop(abr_env.pub)
