"""HTTP-FLV end to end: ffmpeg publishes over RTMP; ffprobe, ffmpeg and a raw
socket reader play http://host/{app}/{stream}.flv.

Checked: codecs, size and duration as ffmpeg sees them; audio-only and
video-only streams; the response starts with the FLV header, metadata and
codec configurations, then a video keyframe (the GOP cache replay); each
player is a session (proto http-flv) listed as a subscriber while it plays;
admission (an app with play: false, simple auth); a player that stops reading
is cut without slowing another player down; the response ends when the
publisher leaves.
"""

import http.client
import json
import re
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import HOST, T, ffmpeg_publish_cmd, ffprobe_json, port_open, wait_until

TOKEN = "e2e-flv-token-7e1f00d"


def http_port(srv):
    m = re.search(r"^http:\s*\n\s+port:\s*(\d+)", srv.config_path.read_text(), re.M)
    return int(m.group(1))


def api(port, path):
    c = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        c.request("GET", path + ("&" if "?" in path else "?") + "accessToken=" + TOKEN)
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, (r.status, body[:300])
        return json.loads(body)["data"]
    finally:
        c.close()


def status_of(port, path):
    c = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def start_server(factory, apps=None, extra=None):
    cfg = {"api": {"access_token": TOKEN, "auth_fail_limit": 1000},
           "apps": dict({"live": {}, "noplay": {"play": False}, "noflv": {"httpflv": False}},
                        **(apps or {}))}
    cfg.update(extra or {})
    srv = factory(config=cfg)
    srv.http = http_port(srv)
    wait_until(lambda: port_open(srv.http), T(10), message="http port")
    return srv


class FlvReader:
    """Reads an HTTP-FLV response on a raw socket (chunked), parsing tags."""

    def __init__(self, port, path, rcvbuf=None, read=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(T(10))
        self.sock.connect((HOST, port))
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
        self.raw = b""
        self.head = None
        self.body = b""
        self.eof = False
        self.ended = False
        self.tags = []
        self.lock = threading.Lock()
        self._stop = False
        if read:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()

    def _run(self):
        try:
            while not self._stop:
                data = self.sock.recv(65536)
                if not data:
                    break
                with self.lock:
                    self.raw += data
                    self._parse()
        except OSError:
            pass
        self.eof = True

    def _parse(self):
        if self.head is None:
            i = self.raw.find(b"\r\n\r\n")
            if i < 0:
                return
            self.head = self.raw[:i].decode()
            self.raw = self.raw[i + 4:]
        while True:  # de-chunk
            i = self.raw.find(b"\r\n")
            if i < 0:
                return
            n = int(self.raw[:i].split(b";")[0], 16)
            if n == 0:  # the terminating chunk: the response is complete
                self.raw = self.raw[i + 2:]
                self.ended = True
                return
            if len(self.raw) < i + 2 + n + 2:
                return
            self.body += self.raw[i + 2:i + 2 + n]
            self.raw = self.raw[i + 2 + n + 2:]
            self._tags()

    def _tags(self):
        pos = sum(11 + len(t[2]) + 4 for t in self.tags) + 13
        while len(self.body) >= pos + 11:
            typ = self.body[pos]
            size = int.from_bytes(self.body[pos + 1:pos + 4], "big")
            ts = int.from_bytes(self.body[pos + 4:pos + 7], "big") | (self.body[pos + 7] << 24)
            if len(self.body) < pos + 11 + size + 4:
                return
            data = self.body[pos + 11:pos + 11 + size]
            prev = struct.unpack(">I", self.body[pos + 11 + size:pos + 15 + size])[0]
            assert prev == 11 + size, "PreviousTagSize %d != %d" % (prev, 11 + size)
            self.tags.append((typ, ts, data))
            pos += 11 + size + 4

    def media(self):
        with self.lock:
            return list(self.tags)

    def close(self):
        self._stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader thread; the server sees EOF now
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


@pytest.fixture(scope="module")
def flv_env(module_sluice_factory, module_procs, media_src):
    srv = start_server(module_sluice_factory)
    module_procs.start(ffmpeg_publish_cmd(media_src, srv.url("live", "s")), "publisher")
    module_procs.start(ffmpeg_publish_cmd(media_src, srv.url("live", "audio"), ["-vn"]), "pub-audio")
    module_procs.start(ffmpeg_publish_cmd(media_src, srv.url("live", "video"), ["-an"]), "pub-video")
    wait_until(lambda: len(api(srv.http, "/api/v1/applications/live/streams")) >= 3, T(20), 0.2,
               "three live streams")
    return srv


def test_ffprobe_and_ffmpeg_read(flv_env, tmp_path):
    url = "http://%s:%d/live/s.flv" % (HOST, flv_env.http)
    data = ffprobe_json(url, ["-show_streams"], timeout=60)
    streams = {s["codec_type"]: s for s in data["streams"]}
    assert streams["video"]["codec_name"] == "h264"
    assert (streams["video"]["width"], streams["video"]["height"]) == (640, 360)
    assert streams["audio"]["codec_name"] == "aac"
    out = tmp_path / "out.flv"
    p = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", url, "-t", "4",
                        "-c", "copy", str(out)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    fmt = ffprobe_json(out, ["-show_format"])["format"]
    assert 3.0 <= float(fmt["duration"]) <= 5.5


@pytest.mark.parametrize("name,kinds", [("audio", {"audio"}), ("video", {"video"})])
def test_audio_only_and_video_only(flv_env, name, kinds):
    url = "http://%s:%d/live/%s.flv" % (HOST, flv_env.http, name)
    data = ffprobe_json(url, ["-show_streams"], timeout=60)
    assert {s["codec_type"] for s in data["streams"]} == kinds


def test_starts_on_a_keyframe(flv_env):
    r = FlvReader(flv_env.http, "/live/s.flv")
    try:
        wait_until(lambda: sum(1 for t in r.media() if t[0] == 9) >= 30, T(10), 0.05, "30 video tags")
        assert r.head.startswith("HTTP/1.1 200")
        assert "video/x-flv" in r.head.lower() and "chunked" in r.head.lower()
        assert r.body[:3] == b"FLV" and r.body[4] == 5  # audio + video
        tags = r.media()
        assert tags[0][0] == 18  # onMetaData first
        video = [t for t in tags if t[0] == 9]
        audio = [t for t in tags if t[0] == 8]
        assert video[0][2][1] == 0, "AVC sequence header first"
        assert audio[0][2][1] == 0, "AAC sequence header first"
        assert video[1][2][0] >> 4 == 1, "the first picture is a keyframe"
        # media timestamps never go back
        ts = [t[1] for t in video[1:]]
        assert ts == sorted(ts)
    finally:
        r.close()


def test_player_is_a_session(flv_env):
    port = flv_env.http
    r = FlvReader(port, "/live/s.flv")
    try:
        wait_until(lambda: len(r.media()) > 10, T(10), 0.05, "tags")
        subs = api(port, "/api/v1/applications/live/streams/s/subscribers")
        local_port = r.sock.getsockname()[1]
        mine = [s for s in subs if s["connection_protocol"] == "http-flv" and s["remote_port"] == local_port]
        assert len(mine) == 1 and mine[0]["role"] == "subscriber" and mine[0]["stream"] == "s", subs
        sid = mine[0]["id"]
        wait_until(lambda: [s for s in api(port, "/api/v1/applications/live/streams/s/subscribers")
                            if s["id"] == sid][0]["bytes_out"] > 10000, T(10), 0.2, "bytes counted")
    finally:
        r.close()
    wait_until(lambda: not [s for s in api(port, "/api/v1/applications/live/streams/s/subscribers")
                            if s["id"] == sid], T(10), 0.1, "the session to end with the response")
    flv_env.wait_log(r"\[http-flv %s live/s\] http-flv player stopped" % sid, T(5))


def test_refusals(flv_env):
    port = flv_env.http
    assert status_of(port, "/noplay/s.flv") == 403   # play: false
    assert status_of(port, "/live/nosuch.flv") == 404
    assert status_of(port, "/noflv/s.flv") == 404    # httpflv: false
    assert status_of(port, "/nosuchapp/s.flv") == 404
    assert status_of(port, "/healthz") == 200        # other routes still work


def test_auth_simple(sluice_factory, procs, media_src, tmp_path):
    users = tmp_path / "users.txt"
    users.write_text("viewer s3cret\n")
    srv = start_server(sluice_factory, apps={"secure": {"auth_simple": True}},
                       extra={"auth": {"simple_file": str(users)}})
    procs.start(ffmpeg_publish_cmd(media_src, srv.url("secure", "s?username=viewer&password=s3cret")),
                "publisher")
    wait_until(lambda: api(srv.http, "/api/v1/applications/secure/streams"), T(20), 0.2, "live")
    assert status_of(srv.http, "/secure/s.flv") == 401
    assert status_of(srv.http, "/secure/s.flv?username=viewer&password=nope") == 403
    r = FlvReader(srv.http, "/secure/s.flv?username=viewer&password=s3cret")
    try:
        wait_until(lambda: len(r.media()) > 5, T(10), 0.05, "tags with good credentials")
    finally:
        r.close()


@pytest.mark.exclusive
def test_slow_reader_is_cut_and_does_not_stall_others(sluice_factory, procs, media_src):
    srv = start_server(sluice_factory, extra={
        "media": {"queue_max_ms": "1s", "slow_disconnect": "2s"},
        "http": {"stream_max_pending_bytes": "64KB"}})
    procs.start(ffmpeg_publish_cmd(media_src, srv.url("live", "s")), "publisher")
    wait_until(lambda: api(srv.http, "/api/v1/applications/live/streams"), T(20), 0.2, "live")
    slow = FlvReader(srv.http, "/live/s.flv", rcvbuf=4096, read=False)
    fast = FlvReader(srv.http, "/live/s.flv")
    try:
        srv.wait_log(r"\[http-flv \w+ live/s\] subscriber too slow", T(40))
        # the reading player got real-time media throughout
        tags = fast.media()
        video = [t for t in tags if t[0] == 9]
        assert len(video) > 100, len(video)
        span = (video[-1][1] - video[1][1]) / 1000.0
        assert span > 4.0
        # and keeps getting it
        n = len(fast.media())
        wait_until(lambda: len(fast.media()) > n + 50, T(5), 0.05, "more tags for the fast player")
        assert not fast.eof
        # the slow one's response was ended
        subs = api(srv.http, "/api/v1/applications/live/streams/s/subscribers")
        assert len([s for s in subs if s["connection_protocol"] == "http-flv"]) == 1
    finally:
        slow.close()
        fast.close()


def test_unpublish_ends_the_response(sluice_factory, procs, media_src):
    srv = start_server(sluice_factory)
    pub = procs.start(ffmpeg_publish_cmd(media_src, srv.url("live", "s")), "publisher")
    wait_until(lambda: api(srv.http, "/api/v1/applications/live/streams"), T(20), 0.2, "live")
    r = FlvReader(srv.http, "/live/s.flv")
    try:
        wait_until(lambda: len(r.media()) > 10, T(10), 0.05, "tags")
        procs.stop(pub)
        # a clean end: the terminating chunk (the connection may stay open for more requests)
        wait_until(lambda: r.ended, T(10), 0.05, "the end of the response")
        assert r.raw in (b"", b"\r\n")
    finally:
        r.close()
