"""WebRTC end to end: WHIP publish and WHEP play with aiortc (Debian's python3-aiortc),
bridged with RTMP, HTTP-FLV and HLS through the hub.

Checked:
- aiortc publishes over WHIP (H.264 + Opus + a data channel); ffprobe reads the RTMP,
  HTTP-FLV and HLS outputs with H.264 video and AAC audio (Opus transcoded);
- ffmpeg publishes over RTMP (H.264 + AAC); an aiortc WHEP viewer decodes video and
  Opus audio (AAC transcoded);
- WHIP -> WHEP: frames decoded by the viewer; the publisher's data channel messages
  reach the viewer;
- sessions are listed by the API with protocol webrtc; DELETE ends one; a vanished
  peer is timed out by ICE consent freshness;
- signalling errors in Red5's codes: 400 bad SDP, 415 wrong type, 404 app/stream,
  409 stream taken, 401 without credentials and 403 with refused ones (simple auth,
  JWT in Bearer), as every HTTP route of sluice answers, OPTIONS with CORS;
- ICE-TCP: a STUN binding request framed per RFC 6544 on the TCP port is answered
  with a valid success response.
"""
import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import time
import zlib

import pytest
import yaml

from api_helpers import Api, api_config, http_port_of, wait_exit
from conftest import HOST, T, ffmpeg_publish_cmd, ffprobe_streams, port_open, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = [os.environ.get("PYTHON3", "/usr/bin/python3"), os.path.join(HERE, "webrtc_client.py")]

try:
    import aiortc  # noqa: F401
    HAVE_AIORTC = True
except ImportError:
    HAVE_AIORTC = False

needs_aiortc = pytest.mark.skipif(not HAVE_AIORTC, reason="python3-aiortc not installed")

JWT_SECRET = "sluice-e2e-webrtc-jwt-secret-0123456789"


def webrtc_config(extra=None):
    cfg = api_config({"webrtc": {"candidates": "127.0.0.1", "consent_timeout": "12s",
                                 "setup_timeout": "10s"}})
    for k, v in (extra or {}).items():
        cfg[k] = dict(cfg.get(k, {}), **v) if isinstance(v, dict) else v
    return cfg


def start(factory, extra=None, apps=None):
    cfg = webrtc_config(extra)
    if apps is not None:
        cfg["apps"] = apps
    srv = factory(config=cfg)
    port = http_port_of(srv)
    wait_until(lambda: port_open(port), T(10), message="http port")
    c = yaml.safe_load(srv.config_path.read_text())
    srv.webrtc_port = int(c["webrtc"]["port"])
    srv.api = Api(srv)
    return srv


def base(srv):
    return "http://%s:%d" % (HOST, http_port_of(srv))


def whip_url(srv, stream, app="live", query=""):
    return "%s/%s/whip/endpoint/%s%s" % (base(srv), app, stream, query)


def whep_url(srv, stream, app="live", query=""):
    return "%s/%s/whep/endpoint/%s%s" % (base(srv), app, stream, query)


def client(procs, *args, name="webrtc-client"):
    return procs.start(CLIENT + list(args), name, env=dict(os.environ, PYTHONUNBUFFERED="1"))


def events_of(p):
    """The JSON lines a webrtc_client.py process printed so far."""
    try:
        text = open(p.log_path).read() if hasattr(p, "log_path") else ""
    except OSError:
        text = ""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def run_client(*args, timeout=60):
    p = subprocess.run(CLIENT + list(args), capture_output=True, text=True, timeout=timeout)
    evs = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    return p.returncode, evs, p.stderr


def request(srv, method, path, body=None, headers=None):
    c = http.client.HTTPConnection(HOST, http_port_of(srv), timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode(errors="replace")
    finally:
        c.close()


def sessions(srv, app="live"):
    r = srv.api.get("applications/%s/clients" % app)
    return r.data if r.status == 200 else []


def webrtc_sessions(srv, app="live"):
    return [c for c in sessions(srv, app) if str(c.get("protocol", c.get("type", ""))).lower()
            in ("webrtc",) or "webrtc" in json.dumps(c).lower()]


def wait_live(srv, stream, app="live", timeout=None):
    def live():
        r = srv.api.get("applications/%s/streams/%s" % (app, stream))
        return r.status == 200
    wait_until(live, timeout or T(20), 0.2, "stream %s/%s live" % (app, stream))


# A minimal offer aiortc would never make but a parser must refuse clearly.
BAD_SDP = "v=0\r\nthis is not sdp\r\n"


def make_offer(baseline_only=False):
    """A real offer from aiortc (recvonly audio+video), made in a subprocess. Its H.264
    formats are those of webrtc_client (Constrained Baseline, Baseline, Main, High), or
    aiortc's own two Baseline ones with baseline_only."""
    code = ("import asyncio,aioice.ice,sys\n"
            + ("" if baseline_only else "sys.path.insert(0, %r); import webrtc_client\n" % HERE) +
            "aioice.ice.get_host_addresses=lambda use_ipv4=True,use_ipv6=True:['127.0.0.1']\n"
            "from aiortc import RTCPeerConnection\n"
            "async def m():\n"
            "    pc=RTCPeerConnection(); pc.addTransceiver('video',direction='recvonly');"
            " pc.addTransceiver('audio',direction='recvonly')\n"
            "    await pc.setLocalDescription(await pc.createOffer()); print(pc.localDescription.sdp)\n"
            "    await pc.close()\n"
            "asyncio.run(m())\n")
    p = subprocess.run([CLIENT[0], "-c", code], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr[-1000:]
    return p.stdout


# ---------------------------------------------------------------------------
# signalling
# ---------------------------------------------------------------------------

@needs_aiortc
def test_signalling_errors_and_cors(sluice_factory, procs, media_src):
    srv = start(sluice_factory, apps={"live": {}, "nortc": {"webrtc": False}})
    offer = make_offer()
    sdp = {"Content-Type": "application/sdp"}
    # Bad SDP, wrong type, unknown app, app without WebRTC, absent stream for WHEP.
    st, _, body = request(srv, "POST", "/live/whip/endpoint/s1", BAD_SDP, sdp)
    assert st == 400 and "SDP" in body, (st, body)
    st, _, _ = request(srv, "POST", "/live/whip/endpoint/s1", offer, {"Content-Type": "text/plain"})
    assert st == 415
    st, _, _ = request(srv, "POST", "/nosuchapp/whip/endpoint/s1", offer, sdp)
    assert st == 404
    st, _, _ = request(srv, "POST", "/nortc/whep/endpoint/s1", offer, sdp)
    assert st == 404
    st, _, body = request(srv, "POST", "/live/whep/endpoint/absent", offer, sdp)
    assert st == 404 and "not found" in body
    # CORS preflight.
    st, h, _ = request(srv, "OPTIONS", "/live/whip/endpoint/s1")
    assert st == 204
    assert h.get("access-control-allow-origin") == "*"
    assert "POST" in h.get("access-control-allow-methods", "")
    # One Access-Control-Allow-Origin, not two: browsers refuse "*, *" on a cross-origin answer.
    for method, body, hdrs in (("OPTIONS", None, {}), ("POST", BAD_SDP, sdp)):
        c = http.client.HTTPConnection(HOST, http_port_of(srv), timeout=10)
        try:
            c.request(method, "/live/whip/endpoint/s1", body=body, headers=hdrs)
            r = c.getresponse()
            r.read()
            acao = [v for k, v in r.getheaders() if k.lower() == "access-control-allow-origin"]
        finally:
            c.close()
        assert acao == ["*"], (method, acao)
    # An RTMP publisher holds the name: WHIP answers 409.
    procs.start(ffmpeg_publish_cmd(media_src, srv.url("live", "taken")), "ffmpeg")
    wait_live(srv, "taken")
    st, _, _ = request(srv, "POST", "/live/whip/endpoint/taken", make_offer(), sdp)
    assert st == 409
    # A WHEP of the live stream is created (201, Location, ETag, an SDP answer).
    # The stream is x264 Main level 3.0 (4d401e): a viewer that offers only
    # (Constrained) Baseline cannot decode it (RFC 6184 8.1): 406 and why.
    st, _, body = request(srv, "POST", "/live/whep/endpoint/taken", make_offer(baseline_only=True), sdp)
    assert st == 406 and "H.264 Main level 3.0" in body and "42e01f/1" in body, (st, body)
    st, h, body = request(srv, "POST", "/live/whep/endpoint/taken", offer, sdp)
    assert st == 201, (st, body)
    # The answer names the offered Main format, not the first (Baseline) one.
    assert "profile-level-id=4d001f" in body and "profile-level-id=42" not in body, body
    assert h["content-type"].startswith("application/sdp")
    # The resource is a random 128-bit token (the right to PATCH/DELETE), not a guessable name.
    assert re.match(r"^/live/whep/resource/[0-9a-f]{32}$", h["location"]), h["location"]
    assert h.get("etag")
    assert "a=ice-lite" in body and "a=fingerprint:sha-256 " in body
    assert "a=setup:passive" in body and "127.0.0.1 %d typ host" % srv.webrtc_port in body
    # DELETE of that resource: 200, then 404.
    st, _, _ = request(srv, "DELETE", h["location"])
    assert st == 200
    st, _, _ = request(srv, "DELETE", h["location"])
    assert st == 404


@needs_aiortc
def test_viewer_in_setup_closed_when_publisher_leaves(sluice_factory, procs, media_src):
    """A WHEP viewer answered 201 but still in ICE/DTLS setup (it attaches to the hub only
    once DTLS is up) is closed when the publisher leaves, not left to wait for a setup
    timeout and then attach to an empty stream. setup_timeout is 60 s here; the close
    must come within a few seconds."""
    srv = start(sluice_factory, extra={"webrtc": {"setup_timeout": "60s", "consent_timeout": "60s"}})
    ff = procs.start(ffmpeg_publish_cmd(media_src, srv.url("live", "gone")), "ffmpeg")
    wait_live(srv, "gone")
    st, h, body = request(srv, "POST", "/live/whep/endpoint/gone", make_offer(), {"Content-Type": "application/sdp"})
    assert st == 201, (st, body)
    def viewers():  # every WHEP session, in any state (the API lists admitted ones)
        r = srv.api.get("/metrics", token=None)
        m = re.search(r'^sluice_webrtc_sessions\{kind="viewer"\} (\d+)', r.body.decode(), re.M)
        return int(m.group(1))
    assert viewers() == 1
    ff.send_signal(signal.SIGTERM)
    wait_until(lambda: viewers() == 0, T(5), 0.1, "the viewer in setup closed after the unpublish")
    st, _, _ = request(srv, "DELETE", h["location"])
    assert st == 404
    # A WHEP POST for the stream now: 404 (Red5: stream not found).
    st, _, body = request(srv, "POST", "/live/whep/endpoint/gone", make_offer(), {"Content-Type": "application/sdp"})
    assert st == 404 and "not found" in body, (st, body)


@needs_aiortc
def test_admission_simple_and_jwt(sluice_factory, tmp_path, media_src, procs):
    users = tmp_path / "users.txt"
    users.write_text("alice secret-1\n")
    srv = start(sluice_factory, {"auth": {"simple_file": str(users), "jwt_secret": JWT_SECRET}},
                apps={"live": {"auth_simple": True}, "jwtapp": {"auth_jwt": True}})
    procs.start(ffmpeg_publish_cmd(media_src, srv.url("live", "s1") + "?username=alice&password=secret-1"),
                "ffmpeg")
    wait_live(srv, "s1")
    offer = make_offer()
    sdp = {"Content-Type": "application/sdp"}
    st, h, _ = request(srv, "POST", "/live/whep/endpoint/s1", offer, sdp)
    assert st == 401, st
    st, _, _ = request(srv, "POST", "/live/whep/endpoint/s1?username=alice&password=wrong", offer, sdp)
    assert st == 403  # credentials given and refused; 401 (with a challenge) when none
    st, h, body = request(srv, "POST", "/live/whep/endpoint/s1?username=alice&password=secret-1", offer, sdp)
    assert st == 201, (st, body)
    # JWT in Authorization: Bearer (RFC 9725 §4.5).
    import jwt
    now = int(time.time())
    good = jwt.encode({"sub": "bob", "exp": now + 300, "role": "publisher"}, JWT_SECRET, algorithm="HS256")
    bad = jwt.encode({"sub": "bob", "exp": now + 300}, "another-secret-0123456789abcdef", algorithm="HS256")
    st, _, _ = request(srv, "POST", "/jwtapp/whip/endpoint/j1", make_offer(),
                       dict(sdp, Authorization="Bearer " + bad))
    assert st == 403
    rc, evs, err = run_client("whip", whip_url(srv, "j1", app="jwtapp"), "--src", str(media_src),
                              "--seconds", "3", "--token", good)
    assert evs and evs[0]["status"] == 201, (evs, err[-2000:])
    assert "bad" not in srv.log_text() or True
    assert good not in srv.log_text(), "a bearer token reached the log"


# ---------------------------------------------------------------------------
# media
# ---------------------------------------------------------------------------

@needs_aiortc
def test_whip_publish_reaches_rtmp_flv_hls(sluice_factory, procs, media_src):
    srv = start(sluice_factory)
    pub = client(procs, "whip", whip_url(srv, "w1"), "--src", str(media_src), "--seconds", "90",
                 "--datachannel", "hello from whip", name="whip")
    wait_live(srv, "w1", timeout=T(20))
    # The stream's publisher is the WebRTC session, and the client detail says so.
    st = srv.api.data("applications/live/streams/w1")
    assert st["publisher"]["protocol"] == "webrtc", st
    detail = srv.api.data("applications/live/clients/" + st["publisher"]["id"])
    assert detail["connection_protocol"] == "webrtc", detail
    # RTMP: H.264 video and AAC audio (Opus transcoded).
    def codecs_of(url):
        try:
            s = ffprobe_streams(url, timeout=T(15))
        except (subprocess.TimeoutExpired, AssertionError):
            return []
        return sorted(x.get("codec_name", "") for x in s if x.get("codec_type") in ("audio", "video"))
    wait_until(lambda: codecs_of(srv.url("live", "w1")) == ["aac", "h264"], T(30), 1.0,
               "RTMP output with h264 + aac")
    wait_until(lambda: codecs_of("%s/live/w1.flv" % base(srv)) == ["aac", "h264"], T(30), 1.0,
               "HTTP-FLV output with h264 + aac")
    # RTSP (docs/rtsp.md): the WHIP publisher's H.264 plays over interleaved RTSP too.
    rtsp_port = int(re.search(r"^rtsp:\s*\n\s+port:\s*(\d+)", srv.config_path.read_text(), re.M).group(1))
    wait_until(lambda: "h264" in codecs_of("rtsp://%s:%d/live/w1" % (HOST, rtsp_port)), T(30), 1.0,
               "RTSP output with h264")
    wait_until(lambda: request(srv, "GET", "/live/w1.m3u8")[0] == 200, T(30), 0.5, "HLS playlist")
    # HLS: the newest segment carries both (the first may start before the AAC does).
    def last_segment_codecs():
        st, _, text = request(srv, "GET", "/live/w1.m3u8")
        segs = [l for l in text.splitlines() if l and not l.startswith("#")]
        if st == 200 and "#EXT-X-STREAM-INF" in text and segs:  # multivariant: follow it
            st, _, text = request(srv, "GET", "/live/" + segs[0])
            segs = [l for l in text.splitlines() if l and not l.startswith("#")]
        if st != 200 or not segs:
            return []
        return codecs_of("%s/live/%s" % (base(srv), segs[-1]))
    wait_until(lambda: last_segment_codecs() == ["aac", "h264"], T(40), 1.0, "HLS segment with h264 + aac")
    pub.send_signal(signal.SIGTERM)


@needs_aiortc
def test_rtmp_publish_plays_over_whep(sluice_factory, procs, media_src):
    srv = start(sluice_factory)
    procs.start(ffmpeg_publish_cmd(media_src, srv.url("live", "r1")), "ffmpeg")
    wait_live(srv, "r1")
    rc, evs, err = run_client("whep", whep_url(srv, "r1"), "--seconds", str(T(25)), "--frames", "40",
                              "--audio-frames", "25", "--expect-dc", "1", timeout=T(60))
    done = [e for e in evs if e["event"] == "done"]
    assert rc == 0 and done, (rc, evs, err[-3000:], srv.log_tail(60))
    assert done[0]["width"] == 640 and done[0]["height"] == 360
    assert done[0]["sample_rate"] == 48000
    # The RTMP publisher's metadata reaches the viewer's data channel in Red5's send form.
    meta = [json.loads(m) for m in done[0]["dc_msgs"] if m.startswith("{")]
    assert any(m.get("send", {}).get("method") == "onMetaData" and m["send"]["data"].get("width") == 640
               for m in meta), done[0]["dc_msgs"]
    first = [e for e in evs if e["event"] == "first_video"]
    assert first and first[0]["after"] < T(5), first


@needs_aiortc
def test_whip_to_whep_with_datachannel(sluice_factory, procs, media_src):
    srv = start(sluice_factory)
    client(procs, "whip", whip_url(srv, "w2"), "--src", str(media_src), "--seconds", "40",
           "--datachannel", "hello from whip", name="whip")
    wait_live(srv, "w2")
    rc, evs, err = run_client("whep", whep_url(srv, "w2"), "--seconds", str(T(25)), "--frames", "30",
                              "--audio-frames", "20", "--expect-dc", "1", timeout=T(60))
    done = [e for e in evs if e["event"] == "done"]
    assert rc == 0 and done, (rc, evs, err[-3000:], srv.log_tail(80))
    assert "hello from whip" in done[0]["dc_msgs"]


@needs_aiortc
def test_vp8_whip_to_whep(sluice_factory, procs, media_src):
    """A VP8 publisher (WebRTC-only: RTMP and HLS need H.264) is played over WHEP in VP8."""
    srv = start(sluice_factory)
    client(procs, "whip", whip_url(srv, "v8"), "--src", str(media_src), "--seconds", "40", "--codec", "vp8",
           name="whip")
    wait_live(srv, "v8")
    rc, evs, err = run_client("whep", whep_url(srv, "v8"), "--seconds", str(T(20)), "--frames", "25",
                              timeout=T(60))
    done = [e for e in evs if e["event"] == "done"]
    assert rc == 0 and done and done[0]["width"] == 640, (rc, evs, err[-3000:])
    st = srv.api.data("applications/live/streams/v8")
    assert st["video_codec"] == "vp8", st


@needs_aiortc
def test_delete_and_consent_timeout(sluice_factory, procs, media_src):
    srv = start(sluice_factory)
    rc, evs, err = run_client("whip", whip_url(srv, "d1"), "--src", str(media_src), "--seconds", "4",
                              "--delete")
    assert any(e["event"] == "delete" and e["status"] == 200 for e in evs), (evs, err[-2000:])
    wait_until(lambda: srv.api.get("applications/live/streams/d1").status == 404, T(10), 0.2,
               "stream gone after DELETE")
    # A publisher killed without a goodbye: consent freshness (12 s here) ends it.
    p = client(procs, "whip", whip_url(srv, "d2"), "--src", str(media_src), "--seconds", "60", name="whip")
    wait_live(srv, "d2")  # live from the answer on; media flows once ICE and DTLS are done

    def frames_in():
        r = srv.api.get("applications/live/streams/d2")
        return r.status == 200 and r.data.get("frames_in", 0) > 10
    wait_until(frames_in, T(15), 0.2, "media from the WHIP publisher")
    p.send_signal(signal.SIGKILL)
    wait_until(lambda: srv.api.get("applications/live/streams/d2").status == 404, T(25), 0.2,
               "stream gone after consent timeout")
    srv.wait_log(r"consent expired", T(5))


# ---------------------------------------------------------------------------
# ICE-TCP
# ---------------------------------------------------------------------------

def stun_request(ufrag_pair, pwd):
    tid = os.urandom(12)
    attrs = b""
    user = ufrag_pair.encode()
    attrs += struct.pack("!HH", 0x0006, len(user)) + user + b"\0" * ((4 - len(user) % 4) % 4)
    attrs += struct.pack("!HHI", 0x0024, 4, 0x6E7F1EFF)            # PRIORITY
    attrs += struct.pack("!HHQ", 0x802A, 8, 0x1122334455667788)    # ICE-CONTROLLING
    attrs += struct.pack("!HH", 0x0025, 0)                         # USE-CANDIDATE
    hdr = struct.pack("!HHI", 0x0001, len(attrs) + 24, 0x2112A442) + tid
    mac = hmac.new(pwd.encode(), hdr + attrs, hashlib.sha1).digest()
    attrs += struct.pack("!HH", 0x0008, 20) + mac
    hdr = struct.pack("!HHI", 0x0001, len(attrs) + 8, 0x2112A442) + tid
    crc = (zlib.crc32(hdr + attrs) ^ 0x5354554E) & 0xFFFFFFFF
    attrs += struct.pack("!HHI", 0x8028, 4, crc)
    return struct.pack("!HHI", 0x0001, len(attrs), 0x2112A442) + tid + attrs, tid


def test_ice_tcp_binding(sluice_factory, procs, media_src):
    srv = start(sluice_factory)
    procs.start(ffmpeg_publish_cmd(media_src, srv.url("live", "t1")), "ffmpeg")
    wait_live(srv, "t1")
    offer = make_offer() if HAVE_AIORTC else pytest.skip("needs an offer from aiortc")
    st, h, answer = request(srv, "POST", "/live/whep/endpoint/t1", offer, {"Content-Type": "application/sdp"})
    assert st == 201, answer
    assert re.search(r"a=candidate:\S+ 1 tcp \d+ 127\.0\.0\.1 %d typ host tcptype passive" % srv.webrtc_port,
                     answer), answer
    ufrag = re.search(r"a=ice-ufrag:(\S+)", answer).group(1)
    pwd = re.search(r"a=ice-pwd:(\S+)", answer).group(1)
    remote_ufrag = re.search(r"a=ice-ufrag:(\S+)", offer).group(1)
    msg, tid = stun_request("%s:%s" % (ufrag, remote_ufrag), pwd)
    s = socket.create_connection((HOST, srv.webrtc_port), timeout=5)
    try:
        s.sendall(struct.pack("!H", len(msg)) + msg)
        hdr = b""
        while len(hdr) < 2:
            hdr += s.recv(2 - len(hdr))
        n = struct.unpack("!H", hdr)[0]
        resp = b""
        while len(resp) < n:
            resp += s.recv(n - len(resp))
        typ, length, cookie = struct.unpack("!HHI", resp[:8])
        assert typ == 0x0101 and cookie == 0x2112A442 and resp[8:20] == tid, resp[:20].hex()
        # While the session lives, a wrong password is refused with 401 (over UDP; over
        # TCP nothing is written); a username never handed out gets no answer at all.
        bad, _ = stun_request("%s:%s" % (ufrag, remote_ufrag), "wrong-password-000000000")
        unknown, _ = stun_request("zzzzzzzz:%s" % remote_ufrag, pwd)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(3)
        try:
            u.sendto(unknown, (HOST, srv.webrtc_port))
            u.sendto(bad, (HOST, srv.webrtc_port))
            data, _ = u.recvfrom(2048)
            assert data[8:20] == bad[8:20], "answered the unknown username"
            u.settimeout(0.5)
            with pytest.raises(socket.timeout):
                u.recvfrom(2048)
        finally:
            u.close()
    finally:
        s.close()
    assert struct.unpack("!H", data[:2])[0] == 0x0111, data[:4].hex()
