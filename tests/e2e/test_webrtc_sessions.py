"""WebRTC sessions seen by the rest of sluice as RTMP sessions are: recording
(`?record=true` on a WHIP publish, and startrecord/stoprecord through the API),
round-trip authentication on WHIP and WHEP (the business's server is a small HTTP
server in the test and is told publisher/subscriber as Red5 does), the event
stream (connect, publish, unpublish, disconnect; play, play_stop; protocol
"webrtc") and the API's kick.

The peers are aiortc (webrtc_client.py) or, where only signalling matters, a POST
of an aiortc offer.
"""
import re
import signal
import subprocess
import time

import pytest

from api_helpers import EventReader
from conftest import HOST, T, ffprobe_json, wait_until
from test_auth import ValidateServer
from test_webrtc import (CLIENT, client, events_of, make_offer as make_recv_offer, needs_aiortc, request,
                         run_client, start, wait_live, whep_url, whip_url)

SDP = {"Content-Type": "application/sdp"}


def make_offer(direction="recvonly"):
    """An aiortc offer with audio and video in direction (recvonly: for WHEP)."""
    if direction == "recvonly":
        return make_recv_offer()
    code = ("import asyncio,aioice.ice\n"
            "aioice.ice.get_host_addresses=lambda use_ipv4=True,use_ipv6=True:['127.0.0.1']\n"
            "from aiortc import RTCPeerConnection\n"
            "from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack\n"
            "async def m():\n"
            "    pc=RTCPeerConnection(); pc.addTrack(VideoStreamTrack()); pc.addTrack(AudioStreamTrack())\n"
            "    await pc.setLocalDescription(await pc.createOffer()); print(pc.localDescription.sdp)\n"
            "    await pc.close()\n"
            "asyncio.run(m())\n")
    p = subprocess.run([CLIENT[0], "-c", code], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and ("a=sendrecv" in p.stdout or "a=sendonly" in p.stdout), p.stderr[-1000:]
    return p.stdout


def rec_path(srv, name, app="live"):
    return srv.data_dir / app / "streams" / name


def wait_saved(srv, name):
    rx = re.compile(r"recorder: saved \S*/%s \(" % re.escape(name))
    wait_until(lambda: rx.search(srv.log_text()), T(15), 0.2, "recording %s saved" % name)


def probe(path):
    info = ffprobe_json(path, ["-show_format", "-show_streams"])
    return sorted(s["codec_name"] for s in info["streams"]), float(info["format"]["duration"])


def frames_in(srv, stream, n):
    r = srv.api.get("applications/live/streams/" + stream)
    return r.status == 200 and r.data.get("frames_in", 0) > n


# ---------------------------------------------------------------------------
# recording
# ---------------------------------------------------------------------------

@needs_aiortc
def test_whip_record_query_writes_a_playable_file(sluice_factory, procs, media_src):
    srv = start(sluice_factory)
    pub = client(procs, "whip", whip_url(srv, "rec1", query="?record=true"), "--src", str(media_src),
                 "--seconds", "60", "--delete", name="whip")
    wait_live(srv, "rec1")
    assert srv.api.data("applications/live/streams/rec1")["is_recording"] is True

    def uptime_ms():
        r = srv.api.get("applications/live/streams/rec1")
        return r.data.get("uptime_ms", 0) if r.status == 200 else 0
    wait_until(lambda: frames_in(srv, "rec1", 10) and uptime_ms() >= 5000, T(20), 0.1,
               "5 s of publishing")
    t0 = time.monotonic()
    published_s = uptime_ms() / 1000.0
    procs.stop(pub, signal.SIGTERM, T(15))  # a clean end: DELETE
    published_s += time.monotonic() - t0  # stopping takes a moment: the upper bound
    wait_saved(srv, "rec1.flv")
    codecs, duration = probe(rec_path(srv, "rec1.flv"))
    assert codecs == ["aac", "h264"], codecs
    # The stream is live from the answer; the file starts on the first keyframe, after
    # ICE, DTLS and the first PLI (well under 2 s on loopback), and ends with the
    # publish: it cannot be longer than the publish (+ one frame of rounding).
    assert published_s - 2.0 <= duration <= published_s + 0.1, (duration, published_s)


@needs_aiortc
def test_whip_publish_mode_from_the_query(sluice_factory, procs, media_src):
    """Red5's WHIP takes mode=live|record|append; record=true is sluice's short form,
    and record=false must not record."""
    srv = start(sluice_factory)
    offer = make_offer("sendonly")  # signalling is enough: the stream is live from the answer
    cases = [("?mode=record", True), ("?mode=append", True), ("?mode=live", False),
             ("?record=false", False), ("?record=1", True), ("?record=true&mode=live", False)]
    for i, (query, recording) in enumerate(cases):
        st, h, body = request(srv, "POST", "/live/whip/endpoint/pm%d%s" % (i, query), offer, SDP)
        assert st == 201, (query, st, body)
        st = srv.api.data("applications/live/streams/pm%d" % i)
        assert st["is_recording"] is recording, (query, st)
        assert request(srv, "DELETE", h["location"])[0] == 200
    st, _, body = request(srv, "POST", "/live/whip/endpoint/bad?mode=rec0rd", offer, SDP)
    assert st == 400 and "mode" in body, (st, body)


@needs_aiortc
def test_api_startrecord_stoprecord_on_a_whip_stream(sluice_factory, procs, media_src):
    srv = start(sluice_factory)
    pub = client(procs, "whip", whip_url(srv, "rec2"), "--src", str(media_src), "--seconds", "60",
                 name="whip")
    wait_live(srv, "rec2")
    wait_until(lambda: frames_in(srv, "rec2", 10), T(15), 0.2, "media from the WHIP publisher")
    base = "applications/live/streams/rec2/action/"
    r = srv.api.get(base + "startrecord", {"saveas": "take2"})
    assert r.status == 200 and r.data["record_name"] == "take2.flv", r
    wait_until(lambda: rec_path(srv, "take2.flv").exists() and
               rec_path(srv, "take2.flv").stat().st_size > 100000, T(15), 0.2, "recording grows")
    r = srv.api.get(base + "stoprecord")
    assert r.status == 200, r
    wait_saved(srv, "take2.flv")
    codecs, duration = probe(rec_path(srv, "take2.flv"))
    assert codecs == ["aac", "h264"] and duration > 0.5, (codecs, duration)
    procs.stop(pub, signal.SIGTERM, T(15))


# ---------------------------------------------------------------------------
# round-trip authentication
# ---------------------------------------------------------------------------

@pytest.fixture
def validator():
    v = ValidateServer().start()
    yield v
    v.stop()


@needs_aiortc
def test_roundtrip_auth_on_whip_and_whep(sluice_factory, procs, media_src, validator):
    srv = start(sluice_factory, {"auth": {"roundtrip_validate_url": validator.url("/validate"),
                                          "roundtrip_invalidate_url": validator.url("/invalidate"),
                                          "roundtrip_timeout": "10s"}},
                apps={"live": {"auth_roundtrip": True}})
    # WHIP refused: the business answers no.
    rc, evs, err = run_client("whip", whip_url(srv, "rt1", query="?username=no&password=pw-no"),
                              "--src", str(media_src), "--seconds", "2")
    assert rc == 2 and evs[0]["status"] == 403, (evs, err[-2000:])  # refused credentials
    assert validator.bodies("/validate")[-1] == {"username": "no", "password": "pw-no", "token": "",
                                                 "type": "publisher", "streamID": "rt1"}
    # WHIP allowed.
    pub = client(procs, "whip", whip_url(srv, "rt1", query="?username=yes&password=pw-yes"),
                 "--src", str(media_src), "--seconds", "60", name="whip")
    wait_live(srv, "rt1")
    assert validator.bodies("/validate")[-1] == {"username": "yes", "password": "pw-yes", "token": "",
                                                 "type": "publisher", "streamID": "rt1"}
    # WHEP refused, then allowed with a token; both asked as a subscriber.
    offer = make_offer()
    st, _, _ = request(srv, "POST", "/live/whep/endpoint/rt1?username=no&password=pw-no2", offer, SDP)
    assert st == 403
    assert validator.bodies("/validate")[-1]["type"] == "subscriber"
    st, h, body = request(srv, "POST", "/live/whep/endpoint/rt1?username=viewer&password=pw-v&token=tk-1",
                          offer, SDP)
    assert st == 201, (st, body)
    assert validator.bodies("/validate")[-1] == {"username": "viewer", "password": "pw-v", "token": "tk-1",
                                                 "type": "subscriber", "streamID": "rt1"}
    # A Bearer token (RFC 9725) reaches the business's server as the token.
    st, hb, _ = request(srv, "POST", "/live/whep/endpoint/rt1", offer, dict(SDP, Authorization="Bearer tk-bearer"))
    assert st == 201
    assert validator.bodies("/validate")[-1] == {"username": "", "password": "", "token": "tk-bearer",
                                                 "type": "subscriber", "streamID": "rt1"}
    # Invalidate when each validated session ends (none for the refused ones).
    for loc in (h["location"], hb["location"]):
        assert request(srv, "DELETE", loc)[0] == 200
    inv = validator.wait("/invalidate", 2, T(10))
    assert sorted((b["username"], b["token"], b["type"]) for b in inv) == [("", "tk-bearer", "subscriber"),
                                                                          ("viewer", "tk-1", "subscriber")], inv
    procs.stop(pub, signal.SIGTERM, T(15))
    inv = validator.wait("/invalidate", 3, T(10))
    assert inv[2]["username"] == "yes" and inv[2]["type"] == "publisher", inv
    assert all(b["username"] != "no" for b in validator.bodies("/invalidate"))
    for secret in ("pw-yes", "pw-v", "tk-1", "tk-bearer"):
        assert secret not in srv.log_text(), "a credential reached the log"


# ---------------------------------------------------------------------------
# event stream
# ---------------------------------------------------------------------------

@pytest.fixture
def events():
    opened = []

    def open_reader(srv, query=None):
        r = EventReader(srv, query)
        opened.append(r)
        return r

    yield open_reader
    for r in opened:
        r.close()


@needs_aiortc
def test_event_stream_sees_webrtc_sessions(sluice_factory, procs, media_src, events):
    srv = start(sluice_factory)
    ev = events(srv)
    pub = client(procs, "whip", whip_url(srv, "ev1"), "--src", str(media_src), "--seconds", "60",
                 "--delete", name="whip")
    publish = ev.wait_for(lambda e: e["event"] == "publish" and e.get("stream") == "ev1", T(20), "publish")
    rc, evs, err = run_client("whep", whep_url(srv, "ev1"), "--seconds", str(T(20)), "--frames", "10",
                              "--delete", timeout=T(60))
    assert rc == 0, (evs, err[-2000:])
    play = ev.wait_for(lambda e: e["event"] == "play" and e["session"] != publish["session"], T(10), "play")
    ev.wait_for(lambda e: e["event"] == "disconnect" and e["session"] == play["session"], T(10),
                "viewer disconnect")
    procs.stop(pub, signal.SIGTERM, T(15))
    ev.wait_for(lambda e: e["event"] == "disconnect" and e["session"] == publish["session"], T(15),
                "publisher disconnect")
    evs = ev.snapshot()
    mine = lambda s: [e for e in evs if e.get("session") == s]  # noqa: E731
    assert [e["event"] for e in mine(publish["session"])] == ["connect", "publish", "unpublish", "disconnect"], \
        mine(publish["session"])
    assert [e["event"] for e in mine(play["session"])] == ["connect", "play", "play_stop", "disconnect"], \
        mine(play["session"])
    for e in mine(publish["session"]) + mine(play["session"]):
        assert e["protocol"] == "webrtc" and e["app"] == "live", e
        assert e["remote_address"] == HOST, e
        if e["event"] != "connect":
            assert e["stream"] == "ev1", e
    unpub = next(e for e in mine(publish["session"]) if e["event"] == "unpublish")
    assert unpub["bytes_in"] > 0 and unpub["duration_ms"] > 0, unpub
    stop = next(e for e in mine(play["session"]) if e["event"] == "play_stop")
    assert stop["bytes_out"] > 0, stop


# ---------------------------------------------------------------------------
# kick
# ---------------------------------------------------------------------------

@needs_aiortc
def test_api_kick_ends_webrtc_sessions(sluice_factory, procs, media_src):
    srv = start(sluice_factory)
    pub = client(procs, "whip", whip_url(srv, "k1"), "--src", str(media_src), "--seconds", "60", name="whip")
    wait_live(srv, "k1")
    wait_until(lambda: frames_in(srv, "k1", 10), T(15), 0.2, "media from the WHIP publisher")
    # A WHEP viewer (signalling only is enough to be a session).
    st, h, body = request(srv, "POST", "/live/whep/endpoint/k1", make_offer(), SDP)
    assert st == 201, (st, body)
    pid = srv.api.data("applications/live/streams/k1")["publisher"]["id"]
    viewer = [c for c in srv.api.data("applications/live/clients") if c["id"] != pid]
    assert len(viewer) == 1, viewer
    r = srv.api.delete("applications/live/clients/" + viewer[0]["id"])
    assert r.status == 200 and r.data["id"] == viewer[0]["id"], r
    wait_until(lambda: srv.api.get("applications/live/clients/" + viewer[0]["id"]).status == 404, T(5), 0.1,
               "viewer gone")
    st, _, _ = request(srv, "DELETE", h["location"])
    assert st == 404  # its WHEP resource went with it
    # The publisher: kicked, the stream is unpublished.
    r = srv.api.delete("applications/live/clients/" + pid)
    assert r.status == 200, r
    wait_until(lambda: srv.api.get("applications/live/streams/k1").status == 404, T(5), 0.1,
               "stream unpublished after the kick")
    assert srv.api.get("applications/live/clients/" + pid).status == 404
    # The peer is told (DTLS close_notify) and ends at once, not after a consent timeout.
    assert pub.wait(T(10)) == 0
    assert {"event": "state", "state": "dtls-closed"} in events_of(pub), events_of(pub)
