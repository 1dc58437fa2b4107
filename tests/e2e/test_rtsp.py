"""RTSP (src/proto/rtsp): real clients publish and play.

One server (module scope) serves the media tests: ffmpeg publishes RTSP over
TCP and over UDP, ffprobe plays RTSP over TCP and UDP and the same streams
over RTMP and HLS (cross-protocol); an RTMP publisher is played over RTSP by
ffprobe and by GStreamer's rtspsrc (frames decoded); GStreamer publishes
with rtspclientsink; H.265 + Opus publish and play back. A second server
has Simple Auth plus a Digest file (401 / 403, Basic, Digest, Red5's
`;username=..;password=..;` parameters and the query), and RTSPS. A raw
socket session shows the session timeout ending an abandoned player, and
the request size cap.
"""

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import HOST, T, make_cert, wait_until

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                reason="ffmpeg/ffprobe not installed")

PW = "rtsp-e2e-pw-7f3a"
BOB_PW = "rtsp-e2e-bob-91c2"


def ports(srv):
    text = srv.config_path.read_text()
    m = re.search(r"^rtsp:\s*\n((?:\s+.*\n)+)", text, re.M)
    port = int(re.search(r"^\s+port:\s*(\d+)", m.group(1), re.M).group(1))
    tls = int(re.search(r"^\s+tls_port:\s*(\d+)", m.group(1), re.M).group(1))
    http = int(re.search(r"^http:\s*\n\s+port:\s*(\d+)", text, re.M).group(1))
    return port, tls, http


def rtsp_url(srv, path, scheme="rtsp", tls=False, auth=""):
    p, t, _ = ports(srv)
    return "%s://%s%s:%d/%s" % (scheme, auth, HOST, t if tls else p, path)


def lavfi_publish(procs, url, transport="tcp", vcodec=("-c:v", "libx264", "-preset", "ultrafast",
                                                       "-tune", "zerolatency", "-bf", "0"),
                  acodec=("-c:a", "aac", "-ar", "44100"), extra=(), name="ffmpeg-rtsp"):
    """A real-time ffmpeg RTSP publisher of test video + tone (no B-frames)."""
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostdin", "-re",
           "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
           "-g", "25", "-pix_fmt", "yuv420p"] + list(vcodec) + list(acodec) + list(extra) + \
          ["-f", "rtsp", "-rtsp_transport", transport, url]
    return procs.start(cmd, name)


def count_frames(url, seconds=2, transport=None, extra=(), timeout=None):
    """{codec_name: frames decoded} over `seconds` of url, read by ffprobe."""
    cmd = ["ffprobe", "-v", "error"] + (["-rtsp_transport", transport] if transport else []) + \
          list(extra) + ["-count_frames", "-read_intervals", "%%+%d" % seconds,
                         "-show_entries", "stream=codec_name,nb_read_frames", "-of", "compact", url]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout or T(30))
    out = {}
    for line in p.stdout.splitlines():
        m = re.search(r"codec_name=(\w+)\|nb_read_frames=(\d+)", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out, p


def wait_frames(url, want, transport=None, extra=(), timeout=None):
    """Polls until ffprobe decodes at least `want` {codec: n} frames from url."""
    last = {}

    def ok():
        nonlocal last
        last, _ = count_frames(url, 1, transport, extra)
        return all(last.get(k, 0) >= n for k, n in want.items())

    wait_until(ok, timeout or T(30), 0.3, "frames %s from %s (last %s)" % (want, url, last))
    return last


LEFTOVER = {}  # socket fileno -> bytes read past the last reply (interleaved packets)


def rtsp_request(sock, method, url, cseq, headers=(), body=b""):
    head = "%s %s RTSP/1.0\r\nCSeq: %d\r\n" % (method, url, cseq)
    for h in headers:
        head += h + "\r\n"
    if body:
        head += "Content-Length: %d\r\n" % len(body)
    sock.sendall(head.encode() + b"\r\n" + body)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    code = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs.setdefault(k.strip().lower(), []).append(v.strip())
    n = int(hdrs.get("content-length", ["0"])[0])
    while len(rest) < n:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    LEFTOVER[sock.fileno()] = rest[n:]
    return code, hdrs, rest[:n]


# ----------------------------------------------------------------------------
# media: one server, several publishers
# ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def srv(module_sluice_factory):
    return module_sluice_factory(config={"rtsp": {"session_timeout": "3s"},
                                         "apps": {"live": {"hls_segment": "1s"}, "other": {}}})


@pytest.fixture(scope="module")
def tcp_pub(srv, module_procs):
    lavfi_publish(module_procs, rtsp_url(srv, "live/tcp"), "tcp")
    return "live/tcp"


def test_publish_tcp_plays_over_rtsp_rtmp_and_hls(srv, tcp_pub):
    got = wait_frames(rtsp_url(srv, tcp_pub), {"h264": 12, "aac": 20}, transport="tcp")
    assert set(got) == {"h264", "aac"}, got
    # Cross-protocol: the RTSP publisher is an ordinary hub stream.
    wait_frames("rtmp://%s:%d/%s" % (HOST, srv.port, tcp_pub), {"h264": 12, "aac": 20})
    _, _, http = ports(srv)
    m3u8 = "http://%s:%d/%s.m3u8" % (HOST, http, tcp_pub)

    def playlist():
        try:
            with urllib.request.urlopen(m3u8, timeout=5) as r:
                return r.status == 200
        except OSError:
            return False

    wait_until(playlist, T(30), 0.3, "HLS playlist of the RTSP publisher")
    wait_frames(m3u8, {"h264": 12})
    # The API lists the publisher as an RTSP client.
    token = (srv.data_dir / "api_token").read_text().strip()
    api = "http://%s:%d/api/v1/applications/live/clients" % (HOST, http)
    with urllib.request.urlopen(api + "?accessToken=" + token, timeout=10) as r:
        clients = json.loads(r.read())["data"]
    protos = set()
    for c in clients:
        with urllib.request.urlopen("%s/%s?accessToken=%s" % (api, c["id"], token), timeout=10) as r:
            protos.add(json.loads(r.read())["data"].get("connection_protocol"))
    assert "rtsp" in protos, protos
    with urllib.request.urlopen("http://%s:%d/api/v1/server?accessToken=%s" % (HOST, http, token),
                                timeout=10) as r:
        info = json.loads(r.read())["data"]
    assert info["rtsp_port"] == ports(srv)[0] and info["rtsps_port"] is None, info


def test_publish_udp_plays_over_udp(srv, procs):
    lavfi_publish(procs, rtsp_url(srv, "live/udp"), "udp")
    got = wait_frames(rtsp_url(srv, "live/udp"), {"h264": 12, "aac": 20}, transport="udp")
    assert set(got) == {"h264", "aac"}, got


def test_rtmp_publish_plays_over_rtsp_ffprobe_and_gstreamer(srv, ffmpeg_publish, procs):
    ffmpeg_publish(srv.url("live", "fromrtmp"))
    url = rtsp_url(srv, "live/fromrtmp")
    wait_frames(url, {"h264": 12, "aac": 20}, transport="tcp")
    if shutil.which("gst-launch-1.0") is None:
        pytest.skip("gst-launch-1.0 not installed")
    # GStreamer decodes 30 frames then ends (identity eos-after), interleaved and over UDP.
    for proto in ("tcp", "udp"):
        cmd = ["gst-launch-1.0", "-q", "rtspsrc", "location=" + url, "protocols=" + proto, "latency=200",
               "!", "rtph264depay", "!", "h264parse", "!", "avdec_h264", "!", "identity", "eos-after=30",
               "!", "fakesink"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=T(40))
        assert p.returncode == 0, (proto, p.stdout[-1500:], p.stderr[-1500:])


def test_gstreamer_publishes_with_rtspclientsink(srv, procs):
    if shutil.which("gst-launch-1.0") is None or subprocess.run(
            ["gst-inspect-1.0", "--exists", "rtspclientsink"]).returncode != 0:
        pytest.skip("GStreamer rtspclientsink not installed")
    url = rtsp_url(srv, "live/gst")
    procs.start(["gst-launch-1.0", "-e", "videotestsrc", "is-live=true", "!",
                 "video/x-raw,width=320,height=240,framerate=25/1", "!", "x264enc", "tune=zerolatency",
                 "speed-preset=ultrafast", "key-int-max=25", "!", "rtspclientsink", "location=" + url,
                 "protocols=tcp"], "gst-rtspclientsink")
    wait_frames("rtmp://%s:%d/live/gst" % (HOST, srv.port), {"h264": 12})
    wait_frames(url, {"h264": 12}, transport="tcp")


def test_h265_and_opus_publish_and_play_back(srv, procs):
    encoders = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    if "libx265" not in encoders or "libopus" not in encoders:
        pytest.skip("ffmpeg without libx265 or libopus")
    lavfi_publish(procs, rtsp_url(srv, "live/hevc"), "tcp",
                  vcodec=("-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "bframes=0:log-level=error"),
                  acodec=("-c:a", "libopus", "-b:a", "64k"), name="ffmpeg-hevc")
    got = wait_frames(rtsp_url(srv, "live/hevc"), {"hevc": 12, "opus": 20}, transport="tcp")
    assert set(got) == {"hevc", "opus"}, got


def test_bframes_get_decode_times(srv, procs):
    """x264 with B-frames over RTSP: the RTMP output has monotonic dts and pts >= dts."""
    lavfi_publish(procs, rtsp_url(srv, "live/bf"), "tcp",
                  vcodec=("-c:v", "libx264", "-preset", "veryfast", "-bf", "2"), name="ffmpeg-bf")
    rtmp = "rtmp://%s:%d/live/bf" % (HOST, srv.port)
    wait_frames(rtmp, {"h264": 12})
    p = subprocess.run(["ffprobe", "-v", "error", "-read_intervals", "%+2", "-select_streams", "v",
                        "-show_entries", "packet=pts,dts", "-of", "csv", rtmp],
                       capture_output=True, text=True, timeout=T(30))
    pkts = [tuple(int(x) for x in line.split(",")[1:3]) for line in p.stdout.split()
            if line.count(",") >= 2 and "N/A" not in line]
    assert len(pkts) > 20, p.stdout[-500:]
    assert any(pts > dts for pts, dts in pkts), pkts  # composition offsets: B-frames kept
    assert all(pts >= dts for pts, dts in pkts), pkts
    assert all(b[1] >= a[1] for a, b in zip(pkts, pkts[1:])), pkts


def test_g711_publish_plays_back(srv, procs):
    lavfi_publish(procs, rtsp_url(srv, "live/pcma"), "tcp", acodec=("-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1"),
                  name="ffmpeg-pcma")
    got = wait_frames(rtsp_url(srv, "live/pcma"), {"h264": 12, "pcm_alaw": 10}, transport="tcp")
    assert "pcm_alaw" in got, got


def test_interleaved_rtp_and_sender_reports(srv, tcp_pub):
    """A raw interleaved player: RTP on channel 0 (PT 96, consecutive sequence numbers from
    RTP-Info's seq), and an RTCP sender report (PT 200) on channel 1 within the SR interval."""
    p, _, _ = ports(srv)
    url = rtsp_url(srv, tcp_pub)
    wait_frames(url, {"h264": 5}, transport="tcp")
    s = socket.create_connection((HOST, p), timeout=T(10))
    try:
        code, h, sdp = rtsp_request(s, "DESCRIBE", url, 1)
        assert code == 200
        base = h["content-base"][0]
        code, h, _ = rtsp_request(s, "SETUP", base + "trackID=0", 2,
                                  ["Transport: RTP/AVP/TCP;unicast;interleaved=0-1"])
        assert code == 200 and "interleaved=0-1" in h["transport"][0], h
        session = h["session"][0].split(";")[0]
        code, h, _ = rtsp_request(s, "PLAY", url, 3, ["Session: " + session])
        assert code == 200
        first_seq = int(re.search(r"seq=(\d+)", h["rtp-info"][0]).group(1))
        buf, seqs, sr = LEFTOVER.pop(s.fileno(), b""), [], False
        deadline = time.monotonic() + T(10)
        while not sr and time.monotonic() < deadline:
            buf += s.recv(65536)
            while len(buf) >= 4 and buf[0:1] == b"$" and len(buf) >= 4 + int.from_bytes(buf[2:4], "big"):
                n = int.from_bytes(buf[2:4], "big")
                pkt, buf = buf[4:4 + n], buf[4 + n:]
                if len(pkt) >= 12 and pkt[1] & 0x7F == 96:
                    seqs.append(int.from_bytes(pkt[2:4], "big"))
                elif len(pkt) >= 8 and pkt[1] == 200:
                    sr = True
        assert seqs and seqs[0] == first_seq, (seqs[:5], first_seq)
        assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:])), seqs[:20]
        assert sr, "no RTCP sender report within %.0fs" % T(10)
    finally:
        s.close()


def test_abandoned_session_times_out_and_caps_hold(srv, tcp_pub):
    p, _, _ = ports(srv)
    wait_frames(rtsp_url(srv, tcp_pub), {"h264": 5}, transport="tcp")
    url = rtsp_url(srv, tcp_pub)
    s = socket.create_connection((HOST, p), timeout=T(10))
    try:
        code, h, sdp = rtsp_request(s, "DESCRIBE", url, 1, ["Accept: application/sdp"])
        assert code == 200 and b"m=video" in sdp, (code, sdp)
        base = h["content-base"][0]
        control = re.search(rb"a=control:(trackID=\d+)", sdp).group(1).decode()
        # UDP transport to ports nobody reads: the server hears nothing back.
        code, h, _ = rtsp_request(s, "SETUP", base + control, 2,
                                  ["Transport: RTP/AVP;unicast;client_port=40000-40001"])
        assert code == 200, (code, h)
        assert "server_port=" in h["transport"][0]
        session = h["session"][0].split(";")[0]
        assert "timeout=3" in h["session"][0]
        code, _, _ = rtsp_request(s, "PLAY", url, 3, ["Session: " + session])
        assert code == 200
        # A keep-alive is answered and restarts the timer.
        code, _, _ = rtsp_request(s, "GET_PARAMETER", url, 4, ["Session: " + session])
        assert code == 200
        start = time.monotonic()
        s.settimeout(T(15))
        while s.recv(65536):
            pass
        waited = time.monotonic() - start
        assert 2.5 < waited < T(12), waited
    finally:
        s.close()
    # A request head over rtsp.max_request_size (8 KB): 413 and the connection closes.
    s = socket.create_connection((HOST, p), timeout=T(10))
    try:
        code, _, _ = rtsp_request(s, "OPTIONS", url, 1, ["X-Pad: " + "a" * 9000])
        assert code == 413
        s.settimeout(T(5))
        assert s.recv(100) == b""
    finally:
        s.close()


# ----------------------------------------------------------------------------
# auth and RTSPS: a second server
# ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def auth_srv(module_sluice_factory, tmp_path_factory):
    d = tmp_path_factory.mktemp("rtsp-auth")
    creds = d / "users"
    creds.write_text("alice %s\nbob %s\n" % (PW, BOB_PW))
    cert, key = make_cert(d)
    srv = module_sluice_factory(config={
        "auth": {"simple_file": str(creds)},
        "rtsp": {"digest_file": str(creds), "tls_cert": str(cert), "tls_key": str(key)},
        "apps": {"live": {"auth_simple": True}, "open": {}}})
    return srv


def test_auth_refused_and_allowed(auth_srv, procs, secrets):
    secrets(PW, BOB_PW)
    p, _, _ = ports(auth_srv)
    # The publisher uses Basic or Digest as ffmpeg chooses (it prefers Digest when offered).
    lavfi_publish(procs, rtsp_url(auth_srv, "live/a", auth="alice:%s@" % PW), "tcp")
    url = rtsp_url(auth_srv, "live/a")
    wait_frames(rtsp_url(auth_srv, "live/a", auth="bob:%s@" % BOB_PW), {"h264": 10}, transport="tcp")
    s = socket.create_connection((HOST, p), timeout=T(10))
    try:
        # No credentials: 401 with both challenges.
        code, h, _ = rtsp_request(s, "DESCRIBE", url, 1)
        assert code == 401, code
        challenges = " ".join(h.get("www-authenticate", []))
        assert "Digest realm=" in challenges and "nonce=" in challenges and "Basic realm=" in challenges
        # Wrong Basic credentials: 403.
        import base64
        bad = base64.b64encode(b"alice:wrong").decode()
        code, _, _ = rtsp_request(s, "DESCRIBE", url, 2, ["Authorization: Basic " + bad])
        assert code == 403, code
        good = base64.b64encode(("alice:" + PW).encode()).decode()
        code, _, sdp = rtsp_request(s, "DESCRIBE", url, 3, ["Authorization: Basic " + good])
        assert code == 200 and b"m=video" in sdp, code
        # A Digest answer computed with a wrong password: 401 again.
        import hashlib
        nonce = re.search(r'nonce="([0-9A-Fa-f]+)"', challenges).group(1)
        md5 = lambda x: hashlib.md5(x.encode()).hexdigest()  # noqa: E731
        resp = md5("%s:%s:%s" % (md5("alice:sluice:nope"), nonce, md5("DESCRIBE:" + url)))
        code, _, _ = rtsp_request(s, "DESCRIBE", url, 4, [
            'Authorization: Digest username="alice", realm="sluice", nonce="%s", uri="%s", response="%s"'
            % (nonce, url, resp)])
        assert code == 401, code
        resp = md5("%s:%s:%s" % (md5("alice:sluice:" + PW), nonce, md5("DESCRIBE:" + url)))
        code, _, _ = rtsp_request(s, "DESCRIBE", url, 5, [
            'Authorization: Digest username="alice", realm="sluice", nonce="%s", uri="%s", response="%s"'
            % (nonce, url, resp)])
        assert code == 200, code
    finally:
        s.close()
    # Red5's parameters on the path, and the query.
    wait_frames(rtsp_url(auth_srv, "live/a;username=bob;password=%s;" % BOB_PW), {"h264": 10}, transport="tcp")
    wait_frames(rtsp_url(auth_srv, "live/a?username=alice&password=%s" % PW), {"h264": 10}, transport="tcp")
    # ffprobe without credentials fails.
    _, p2 = count_frames(url, 1, "tcp", timeout=T(20))
    assert p2.returncode != 0 and "401" in p2.stderr, p2.stderr[-500:]


def test_rtsps_publish_and_play(auth_srv, procs, secrets):
    secrets(PW)
    url = rtsp_url(auth_srv, "open/tls", scheme="rtsps", tls=True)
    lavfi_publish(procs, url, "tcp", extra=("-tls_verify", "0"), name="ffmpeg-rtsps")
    got = wait_frames(url, {"h264": 12, "aac": 20}, transport="tcp", extra=("-tls_verify", "0"))
    assert set(got) == {"h264", "aac"}, got
    # The same stream over plain RTSP.
    wait_frames(rtsp_url(auth_srv, "open/tls"), {"h264": 12}, transport="tcp")


def test_shutdown_with_a_publisher_and_its_player(sluice_factory, procs):
    """SIGTERM while an RTSP publisher and an RTSP player of its stream are connected: closing
    the publisher closes the player too, inside the server's loop over its connections (that
    loop once stepped onto the player's unlinked node and spun forever). sluice must exit 0."""
    s = sluice_factory(config={"rtsp": {"session_timeout": "10s"}})
    lavfi_publish(procs, rtsp_url(s, "live/bye"), "tcp", name="ffmpeg-bye")
    wait_frames(rtsp_url(s, "live/bye"), {"h264": 5}, transport="tcp")
    procs.start(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-rtsp_transport", "tcp",
                 "-i", rtsp_url(s, "live/bye"), "-f", "null", "-"], "ffmpeg-player")
    # The second play of the stream (the first was wait_frames' ffprobe, gone now).
    wait_until(lambda: len(re.findall(r"live/bye\] rtsp play started", s.log_text())) >= 2, T(20), 0.2,
               "the player")
    assert s.stop() == 0, s.log_tail(20)
