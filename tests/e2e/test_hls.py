"""HLS and Low-Latency HLS end to end: ffmpeg publishes over RTMP, ffprobe/ffmpeg
and a playlist checker of our own read http://host/{app}/{stream}.m3u8.

One module-scoped server serves every read-only test:
  live/s     MPEG-TS, 6 s segments (the defaults)
  fm/s       fMP4
  ll/s       LL-HLS: 2 s segments, 333 ms parts
  live/audio audio-only, live/video video-only (MPEG-TS)
Tests that change a stream's life (republish, unpublish, sessions timing out)
start servers of their own.

The checker follows RFC 8216 (and rfc8216bis for LL-HLS): #EXTM3U first, every
EXTINF rounded at most EXT-X-TARGETDURATION, EXT-X-MEDIA-SEQUENCE never going
back across reloads, every listed URI fetchable; for LL-HLS EXT-X-PART-INF,
parts no longer than PART-TARGET, EXT-X-PRELOAD-HINT present, and a blocking
reload (_HLS_msn/_HLS_part) answered once the part exists (its latency is
printed, not asserted).
"""

import http.client
import json
import pathlib
import re
import socket
import subprocess
import time
import urllib.parse

import pytest

from conftest import HOST, T, ffmpeg_publish_cmd, ffprobe_json, port_open, wait_until

TOKEN = "e2e-hls-token-51c0ffee"
USERS = "viewer s3cret\n"


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------

def http_port(srv):
    m = re.search(r"^http:\s*\n\s+port:\s*(\d+)", srv.config_path.read_text(), re.M)
    return int(m.group(1))


def get(port, path, timeout=10.0, headers=None):
    """GET path -> (status, headers dict, body bytes, seconds taken)."""
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    t0 = time.monotonic()
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body, time.monotonic() - t0
    finally:
        c.close()


def api(port, path):
    st, _, body, _ = get(port, path + ("&" if "?" in path else "?") + "accessToken=" + TOKEN)
    assert st == 200, (st, body[:300])
    return json.loads(body)["data"]


def server_config(extra_apps=None, hls=None, media=None, auth_file=None):
    apps = {
        "live": {},
        "fm": {"hls_format": "fmp4"},
        "ll": {"hls_low_latency": True, "hls_segment": "2s", "hls_part": "333ms"},
        "noplay": {"play": False},
        "nohls": {"hls": False},
    }
    apps.update(extra_apps or {})
    cfg = {"api": {"access_token": TOKEN, "auth_fail_limit": 1000}, "apps": apps}
    if hls:
        cfg["hls"] = hls
    if media:
        cfg["media"] = media
    if auth_file:
        cfg["auth"] = {"simple_file": str(auth_file)}
    return cfg


def start_server(factory, tmp, **kw):
    srv = factory(config=server_config(**kw))
    port = http_port(srv)
    wait_until(lambda: port_open(port), T(10), message="http port")
    srv.http = port
    return srv


def publish(procs, src, srv, app, stream, extra=(), name="publisher"):
    return procs.start(ffmpeg_publish_cmd(src, srv.url(app, stream), extra), name)


def master_to_media(port, path, query=""):
    """Fetches the multivariant playlist and returns the media playlist path it names."""
    st, hdr, body, _ = get(port, path + query)
    assert st == 200, (st, body[:200])
    assert hdr["content-type"] == "application/vnd.apple.mpegurl"
    text = body.decode()
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U"
    assert "#EXT-X-STREAM-INF:" in text and "BANDWIDTH=" in text
    uri = [l for l in lines if l and not l.startswith("#")][0]
    assert "sid=" in uri
    return urllib.parse.urljoin(path, uri)


def wait_media(port, path, min_segments=1, timeout=None, query=""):
    """Waits until the stream's media playlist lists min_segments; returns its path."""
    holder = {}

    def ready():
        st, _, _, _ = get(port, path + query)
        if st != 200:
            return False
        if "media" not in holder:
            holder["media"] = master_to_media(port, path, query)
        st, _, body, _ = get(port, holder["media"])
        return st == 200 and body.decode().count("#EXTINF:") >= min_segments

    wait_until(ready, timeout or T(40), 0.25, "%d segment(s) in %s" % (min_segments, path))
    return holder["media"]


class Playlist:
    """A parsed media playlist, checked against the RFC rules as it is parsed."""

    def __init__(self, text):
        self.text = text
        lines = text.splitlines()
        assert lines and lines[0] == "#EXTM3U", "EXTM3U must be the first line: %r" % text[:80]
        self.target = int(self.tag("#EXT-X-TARGETDURATION:"))
        self.seq = int(self.tag("#EXT-X-MEDIA-SEQUENCE:"))
        self.part_target = float(self.attr("#EXT-X-PART-INF:", "PART-TARGET") or 0)
        self.segments = []   # (msn, duration, uri)
        self.parts = []      # (duration, uri, independent)
        self.hint = None
        self.ended = "#EXT-X-ENDLIST" in text
        self.discontinuities = text.count("#EXT-X-DISCONTINUITY\n")
        dur = None
        for line in lines[1:]:
            if line.startswith("#EXTINF:"):
                dur = float(line[8:].split(",")[0])
            elif line.startswith("#EXT-X-PART:"):
                self.parts.append((float(self._a(line, "DURATION")), self._a(line, "URI"),
                                   "INDEPENDENT=YES" in line))
            elif line.startswith("#EXT-X-PRELOAD-HINT:"):
                self.hint = self._a(line, "URI")
            elif line and not line.startswith("#"):
                assert dur is not None, "URI without EXTINF: %s" % line
                self.segments.append((self.seq + len(self.segments), dur, line))
                dur = None
        for _, d, uri in self.segments:
            # RFC 8216 4.3.3.1: EXTINF rounded to the nearest integer <= target.
            assert int(d + 0.5) <= self.target, "EXTINF %.3f > target %d" % (d, self.target)
        if self.part_target:
            for d, uri, _ in self.parts:
                assert d <= self.part_target + 1e-6, "part %.3f > PART-TARGET %.3f" % (d, self.part_target)

    def tag(self, name):
        m = re.search("^" + re.escape(name) + r"(.*)$", self.text, re.M)
        assert m, "%s missing" % name
        return m.group(1)

    def attr(self, tag, name):
        m = re.search("^" + re.escape(tag) + r"(.*)$", self.text, re.M)
        return self._a(m.group(1), name) if m else None

    @staticmethod
    def _a(line, name):
        m = re.search(r'(?:^|[:,])' + name + r'=("([^"]*)"|[^,]*)', line)
        if not m:
            return None
        return m.group(2) if m.group(2) is not None else m.group(1)


def fetch_playlist(port, media_path, query=""):
    st, hdr, body, took = get(port, media_path + query, timeout=30)
    assert st == 200, (st, body[:200])
    assert hdr["content-type"] == "application/vnd.apple.mpegurl"
    return Playlist(body.decode()), took


def check_reloads(port, media_path, seconds, fetch_segments=True):
    """Reloads the playlist for a while: media sequence monotonic, each msn keeps
    its URI, every segment URI fetchable. Returns the last playlist."""
    base = media_path.rsplit("/", 1)[0] + "/"
    seen = {}
    last_seq = -1
    deadline = time.monotonic() + seconds
    pl = None
    while True:
        pl, _ = fetch_playlist(port, media_path)
        assert pl.seq >= last_seq, "media sequence went back: %d -> %d" % (last_seq, pl.seq)
        last_seq = pl.seq
        for msn, d, uri in pl.segments:
            assert seen.setdefault(msn, uri) == uri, "msn %d changed URI" % msn
        if fetch_segments:
            for msn, d, uri in pl.segments[-2:]:
                st, hdr, body, _ = get(port, base + uri)
                assert st == 200, (uri, st)
                assert len(body) > 1000
                if uri.split("?")[0].endswith(".ts"):
                    assert body[0] == 0x47 and len(body) % 188 == 0
        if time.monotonic() >= deadline:
            return pl
        time.sleep(1.0)  # a player's reload interval, not a wait for a condition


def ffprobe_streams(url):
    data = ffprobe_json(url, ["-show_streams", "-show_format"], timeout=60)
    return {s["codec_type"]: s for s in data.get("streams", [])}, data.get("format", {})


def ffmpeg_read(url, out, seconds=4):
    """Copies `seconds` of a live URL into a file with ffmpeg; returns ffprobe's view of it."""
    p = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", url, "-t",
                        str(seconds), "-c", "copy", str(out)], capture_output=True, text=True,
                       timeout=90)
    assert p.returncode == 0, p.stderr[-2000:]
    return ffprobe_streams(str(out))


# ----------------------------------------------------------------------------
# the shared server
# ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hls_env(module_sluice_factory, module_procs, media_src, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hls")
    srv = start_server(module_sluice_factory, tmp)
    publish(module_procs, media_src, srv, "live", "s")
    publish(module_procs, media_src, srv, "fm", "s")
    publish(module_procs, media_src, srv, "ll", "s")
    publish(module_procs, media_src, srv, "live", "audio", ["-vn"], "pub-audio")
    publish(module_procs, media_src, srv, "live", "video", ["-an"], "pub-video")
    return srv


# ----------------------------------------------------------------------------
# tests
# ----------------------------------------------------------------------------

def test_ts_read_by_ffprobe_and_ffmpeg(hls_env, tmp_path):
    port = hls_env.http
    wait_media(port, "/live/s.m3u8", 2)
    url = "http://%s:%d/live/s.m3u8" % (HOST, port)
    streams, _ = ffprobe_streams(url)
    assert streams["video"]["codec_name"] == "h264"
    assert (streams["video"]["width"], streams["video"]["height"]) == (640, 360)
    assert streams["audio"]["codec_name"] == "aac"
    streams, fmt = ffmpeg_read(url, tmp_path / "out.ts", 4)
    assert set(streams) == {"video", "audio"}
    assert 3.0 <= float(fmt["duration"]) <= 5.5


def test_fmp4_read_by_ffprobe_and_ffmpeg(hls_env, tmp_path):
    port = hls_env.http
    media = wait_media(port, "/fm/s.m3u8", 2)
    pl, _ = fetch_playlist(port, media)
    assert "#EXT-X-MAP:URI=" in pl.text and pl.segments[0][2].split("?")[0].endswith(".m4s")
    url = "http://%s:%d/fm/s.m3u8" % (HOST, port)
    streams, _ = ffprobe_streams(url)
    assert streams["video"]["codec_name"] == "h264" and streams["video"]["width"] == 640
    assert streams["audio"]["codec_name"] == "aac"
    streams, fmt = ffmpeg_read(url, tmp_path / "out.mp4", 4)
    assert set(streams) == {"video", "audio"}
    assert 3.0 <= float(fmt["duration"]) <= 5.5


def test_ll_hls_read_by_ffmpeg(hls_env, tmp_path):
    port = hls_env.http
    wait_media(port, "/ll/s.m3u8", 2)
    url = "http://%s:%d/ll/s.m3u8" % (HOST, port)
    streams, fmt = ffmpeg_read(url, tmp_path / "out.mp4", 3)
    assert streams["video"]["codec_name"] == "h264" and streams["video"]["height"] == 360
    assert streams["audio"]["codec_name"] == "aac"


def test_playlist_rules_ts(hls_env):
    port = hls_env.http
    media = wait_media(port, "/live/s.m3u8", 2)
    pl = check_reloads(port, media, T(8))
    assert pl.target >= 6
    assert 2 <= len(pl.segments) <= 5  # hls_window
    assert not pl.parts and pl.hint is None
    assert "#EXT-X-VERSION:3" in pl.text
    # every URI carries the player's session id
    assert all("sid=" in uri for _, _, uri in pl.segments)


def test_playlist_rules_ll(hls_env):
    port = hls_env.http
    media = wait_media(port, "/ll/s.m3u8", 2)
    pl = check_reloads(port, media, T(4))
    assert pl.part_target == pytest.approx(0.333)
    assert "CAN-BLOCK-RELOAD=YES" in pl.tag("#EXT-X-SERVER-CONTROL:")
    assert float(pl.attr("#EXT-X-SERVER-CONTROL:", "PART-HOLD-BACK")) >= 2 * pl.part_target
    assert pl.hint and pl.hint.split("?")[0].endswith(".m4s")
    assert pl.parts, "no EXT-X-PART listed"
    base = media.rsplit("/", 1)[0] + "/"
    # listed parts are fetchable fMP4 chunks
    for d, uri, _ in pl.parts[-3:]:
        st, _, body, _ = get(port, base + uri)
        assert st == 200 and body[4:8] == b"moof", (uri, st, body[:16])
    # parts of a complete segment add up to its duration
    text = pl.text
    blocks = re.findall(r"((?:#EXT-X-PART:[^\n]*\n)+)(?:#EXT-X-PROGRAM-DATE-TIME[^\n]*\n)?#EXTINF:([0-9.]+)", text)
    for parts_text, extinf in blocks:
        total = sum(float(x) for x in re.findall(r"DURATION=([0-9.]+)", parts_text))
        assert total == pytest.approx(float(extinf), abs=0.002)


def test_ll_blocking_reload_latency(hls_env):
    port = hls_env.http
    media = wait_media(port, "/ll/s.m3u8", 1)
    pl, _ = fetch_playlist(port, media)
    # The next part: the open segment's part count, or part 0 of the next segment.
    open_parts = 0
    for line in reversed(pl.text.splitlines()):
        if line.startswith("#EXTINF:"):
            break
        if line.startswith("#EXT-X-PART:"):
            open_parts += 1
    msn = pl.seq + len(pl.segments)
    latencies = []
    for _ in range(6):
        q = "&_HLS_msn=%d&_HLS_part=%d" % (msn, open_parts)
        nxt, took = fetch_playlist(port, media, q)
        latencies.append(took)
        # the answer holds the part asked for
        want = pl.hint.split("?")[0] if pl.hint else None
        if want:
            assert want in nxt.text, "hinted part %s not in the blocking answer" % want
        assert took < T(3 * nxt.target + 1)
        pl = nxt
        open_parts = 0
        for line in reversed(pl.text.splitlines()):
            if line.startswith("#EXTINF:"):
                break
            if line.startswith("#EXT-X-PART:"):
                open_parts += 1
        msn = pl.seq + len(pl.segments)
    print("\nLL-HLS blocking reload: waited %s ms for the next part (part target %.0f ms)"
          % (", ".join("%.0f" % (x * 1000) for x in latencies), pl.part_target * 1000))
    # a preload hint is held until its part exists, then served
    st, _, body, took = get(port, media.rsplit("/", 1)[0] + "/" + pl.hint, timeout=30)
    assert st == 200 and body[4:8] == b"moof"
    print("LL-HLS preload hint answered after %.0f ms" % (took * 1000))
    # far ahead is a bad request
    st, _, _, _ = get(port, media + "&_HLS_msn=%d" % (msn + 10))
    assert st == 400


def test_ll_delta_update(hls_env):
    port = hls_env.http
    media = wait_media(port, "/ll/s.m3u8", 1)
    pl, _ = fetch_playlist(port, media, "&_HLS_skip=YES")
    assert "CAN-SKIP-UNTIL=" in pl.text
    # with a 5-segment window of 2 s and a 12 s skip boundary nothing is old enough
    assert "#EXT-X-SKIP" not in pl.text


def test_audio_only(hls_env, tmp_path):
    port = hls_env.http
    wait_media(port, "/live/audio.m3u8", 1)
    streams, _ = ffprobe_streams("http://%s:%d/live/audio.m3u8" % (HOST, port))
    assert set(streams) == {"audio"} and streams["audio"]["codec_name"] == "aac"
    media = wait_media(port, "/live/audio.m3u8", 1)
    pl, _ = fetch_playlist(port, media)
    assert all(d <= 6.0 for _, d, _ in pl.segments)  # cut before the length is passed


def test_video_only(hls_env):
    port = hls_env.http
    wait_media(port, "/live/video.m3u8", 1)
    streams, _ = ffprobe_streams("http://%s:%d/live/video.m3u8" % (HOST, port))
    assert set(streams) == {"video"} and streams["video"]["codec_name"] == "h264"


def test_players_are_sessions(hls_env):
    port = hls_env.http
    media = wait_media(port, "/live/s.m3u8", 1)
    sid = urllib.parse.parse_qs(urllib.parse.urlparse(media).query)["sid"][0]
    subs = api(port, "/api/v1/applications/live/streams/s/subscribers")
    mine = [s for s in subs if s["id"] == sid]
    assert mine, subs
    assert mine[0]["connection_protocol"] == "hls"
    assert mine[0]["role"] == "subscriber" and mine[0]["stream"] == "s"
    # bytes sent to it are counted
    fetch_playlist(port, media)
    subs = api(port, "/api/v1/applications/live/streams/s/subscribers")
    assert [s for s in subs if s["id"] == sid][0]["bytes_out"] > 0


def test_refusals_and_other_routes(hls_env):
    port = hls_env.http
    assert get(port, "/live/nosuch.m3u8")[0] == 404
    assert get(port, "/nosuchapp/s.m3u8")[0] == 404
    assert get(port, "/noplay/s.m3u8")[0] == 403  # app with play: false
    assert get(port, "/nohls/s.m3u8")[0] == 404   # hls: false
    assert get(port, "/live/s_99999.ts")[0] == 404
    assert get(port, "/live/s_0.m4s")[0] == 404   # wrong container for this app
    # other routes keep working
    assert get(port, "/healthz")[0] == 200
    st, _, _, _ = get(port, "/api/v1/server?accessToken=" + TOKEN)
    assert st == 200


# ----------------------------------------------------------------------------
# servers of their own
# ----------------------------------------------------------------------------

def test_auth_simple(sluice_factory, procs, media_src, tmp_path):
    users = tmp_path / "users.txt"
    users.write_text(USERS)
    srv = start_server(sluice_factory, tmp_path, auth_file=users,
                       extra_apps={"secure": {"auth_simple": True, "hls_segment": "2s"}})
    # publishing needs credentials too in this app
    procs.start(ffmpeg_publish_cmd(media_src, srv.url("secure", "s?username=viewer&password=s3cret")),
                "publisher")
    port = srv.http
    good = "?username=viewer&password=s3cret"
    media = wait_media(port, "/secure/s.m3u8", 1, query=good)
    assert "username=viewer" in media and "password=s3cret" in media
    assert get(port, "/secure/s.m3u8")[0] == 401
    assert get(port, "/secure/s.m3u8?username=viewer&password=wrong")[0] == 403
    pl, _ = fetch_playlist(port, media)
    uri = pl.segments[-1][2]
    st, _, body, _ = get(port, "/secure/" + uri)
    assert st == 200 and body[0] == 0x47
    # a segment without the credentials (and no session) is refused
    assert get(port, "/secure/" + uri.split("?")[0])[0] == 401


def test_session_timeout_and_kick(sluice_factory, procs, media_src, tmp_path):
    srv = start_server(sluice_factory, tmp_path, hls={"session_timeout": "2s"},
                       extra_apps={"short": {"hls_segment": "2s"}})
    publish(procs, media_src, srv, "short", "s")
    port = srv.http
    media = wait_media(port, "/short/s.m3u8", 1)
    sid = urllib.parse.parse_qs(urllib.parse.urlparse(media).query)["sid"][0]
    assert any(s["id"] == sid for s in api(port, "/api/v1/applications/short/streams/s/subscribers"))
    srv.wait_log(r"\[hls %s short/s\] hls player started" % sid, T(5))
    # no request for 2 s: the session ends (play_stop)
    wait_until(lambda: not any(s["id"] == sid for s in
                               api(port, "/api/v1/applications/short/streams/s/subscribers")),
               T(10), 0.2, "the idle session to end")
    srv.wait_log(r"\[hls %s short/s\] hls player left: idle timeout" % sid, T(5))
    # a request with the old sid is admitted again under the same id
    pl, _ = fetch_playlist(port, media)
    assert any(s["id"] == sid for s in api(port, "/api/v1/applications/short/streams/s/subscribers"))
    # kicked through the API: the sid is refused from then on
    c = http.client.HTTPConnection(HOST, port, timeout=10)
    c.request("DELETE", "/api/v1/applications/short/streams/s/subscribers/%s?accessToken=%s" % (sid, TOKEN))
    r = c.getresponse()
    r.read()
    c.close()
    assert r.status == 200
    assert get(port, media)[0] == 403


@pytest.mark.slow
def test_republish_discontinuity_and_end(sluice_factory, procs, media_src, tmp_path):
    srv = start_server(sluice_factory, tmp_path, extra_apps={"short": {"hls_segment": "2s"}})
    pub = publish(procs, media_src, srv, "short", "s")
    port = srv.http
    media = wait_media(port, "/short/s.m3u8", 2)
    procs.stop(pub)
    # a quick republish continues the playlist after a discontinuity
    publish(procs, media_src, srv, "short", "s", name="republisher")

    def has_disc():
        pl, _ = fetch_playlist(port, media)
        return pl.discontinuities >= 1 and pl.segments and not pl.ended and pl

    pl = wait_until(has_disc, T(30), 0.5, "EXT-X-DISCONTINUITY after the republish")
    idx = pl.text.index("#EXT-X-DISCONTINUITY")
    assert "#EXTINF" in pl.text[idx:]
    # media sequence still grows and segments stay fetchable across it
    check_reloads(port, media, T(3))
    procs.stop_all()
    # no republish: EXT-X-ENDLIST after the grace period
    wait_until(lambda: fetch_playlist(port, media)[0].ended, T(20), 0.5, "EXT-X-ENDLIST")


def test_disk_writes(sluice_factory, procs, media_src, tmp_path):
    srv = start_server(sluice_factory, tmp_path,
                       extra_apps={"disk": {"hls_disk": True, "hls_segment": "2s", "hls_window": 3}})
    publish(procs, media_src, srv, "disk", "room1/s")
    folder = pathlib.Path(srv.data_dir) / "disk" / "streams" / "hls" / "room1"
    playlist = folder / "s.m3u8"
    wait_until(lambda: playlist.exists() and playlist.read_text().count("#EXTINF") >= 3, T(40), 0.5,
               "the playlist on disk")
    pl = Playlist(playlist.read_text())
    for _, _, uri in pl.segments:
        assert "?" not in uri and (folder / uri).stat().st_size > 1000
    # old segments are removed as the window slides (3 listed + 3 kept + 1)
    wait_until(lambda: len(list(folder.glob("s_*.ts"))) <= 7 and Playlist(playlist.read_text()).seq >= 5,
               T(30), 0.5, "old segments to be removed")
    # and the same stream is served over HTTP, rooms nested
    media = wait_media(srv.http, "/disk/room1/s.m3u8", 1)
    assert media.startswith("/disk/room1/s.m3u8?sid=")
