"""Transcoding only while it is needed, and what counts as a failed WebRTC session (issue 14).

- A WHIP publisher's Opus is transcoded to AAC only while the stream has a consumer
  other than its own WebRTC viewers: with HLS off and no recording, a publish alone
  transcodes nothing (the API's `transcoding` is false, the to_aac gauge 0); an RTMP
  player that attaches starts it at once and receives the AAC sequence header, then
  AAC frames; when the player leaves, transcoding stops after the 5 s grace period
  (not before 4 s: a player that reconnects does not restart it), within a deadline.
  A WHEP viewer of the same stream needs no AAC and does not start it.
- sluice_webrtc_sessions_failed_total counts every answered session that ended before
  media flowed: a setup timeout (no ICE at all), a DELETE before ICE; a session that
  carried media does not count.
"""
import signal
import time

from conftest import HOST, T, wait_until
from rtmp_client import RtmpClient
from test_metrics import parse_metrics, value
from test_webrtc import (client, events_of, make_offer, needs_aiortc, request, run_client, start,
                         wait_live, whep_url, whip_url)

GRACE_S = 5.0  # WRTC_TRANSCODE_GRACE_MS


def publisher_webrtc(srv, stream):
    st = srv.api.get("applications/live/streams/%s" % stream)
    if st.status != 200 or not st.data.get("publisher"):
        return None
    d = srv.api.get("applications/live/clients/%s" % st.data["publisher"]["id"])
    return d.data.get("webrtc") if d.status == 200 else None


def gauge(srv, direction):
    r = srv.api.get("/metrics", token=None)
    assert r.status == 200, r
    return value(parse_metrics(r.body.decode()), "sluice_webrtc_transcoders", '{direction="%s"}' % direction)


def counter(srv, name):
    r = srv.api.get("/metrics", token=None)
    assert r.status == 200, r
    return value(parse_metrics(r.body.decode()), name)


@needs_aiortc
def test_opus_to_aac_only_while_a_player_needs_it(sluice_factory, procs, media_src):
    srv = start(sluice_factory, apps={"live": {"hls": False}})
    pub = client(procs, "whip", whip_url(srv, "tc1"), "--src", str(media_src), "--seconds", "90",
                 name="whip")
    wait_live(srv, "tc1")
    wait_until(lambda: srv.api.get("applications/live/streams/tc1").data.get("frames_in", 0) > 50,
               T(15), 0.2, "media from the WHIP publisher")
    # Alone, with HLS off and no recording: nothing needs AAC.
    w = publisher_webrtc(srv, "tc1")
    assert w["transcoding"] is False and w["audio_codec"] == "opus", w
    assert gauge(srv, "to_aac") == 0
    # A WHEP viewer of the stream gets the publisher's Opus as is: still nothing to transcode.
    rc, evs, err = run_client("whep", whep_url(srv, "tc1"), "--seconds", str(T(20)), "--frames", "20",
                              "--audio-frames", "20", timeout=T(60))
    assert rc == 0, (evs, err[-2000:])
    assert publisher_webrtc(srv, "tc1")["transcoding"] is False
    # An RTMP player attaches: transcoding starts and the player gets AAC, config first.
    player = RtmpClient(HOST, srv.port, timeout=T(5), name="player")
    try:
        player.connect("live")
        sid = player.create_stream()
        player.play(sid, "tc1")
        player.wait_status("NetStream.Play.Start", T(5))
        wait_until(lambda: publisher_webrtc(srv, "tc1")["transcoding"] is True, T(2), 0.05,
                   "transcoding on with a player")
        assert gauge(srv, "to_aac") == 1

        def aac():
            return [m for m in player.media if m.is_audio and (m.head[0] >> 4) == 10]
        player.wait_for(lambda: len(aac()) >= 20, T(10), "20 AAC messages")
        audio = aac()
        assert audio[0].seq_header, audio[:3]  # the AudioSpecificConfig before any frame
        assert all(not m.seq_header for m in audio[1:]), audio[:5]
        # frames follow the stream's clock: 1024 samples at 48 kHz each
        steps = [b.ts - a.ts for a, b in zip(audio[1:], audio[2:])]
        assert all(0 <= s <= 100 for s in steps), steps
        assert sum(steps) / len(steps) < 30, steps
    finally:
        player.close()
    left = time.monotonic()
    # The player left: transcoding goes on for the grace period, then stops.
    wait_until(lambda: publisher_webrtc(srv, "tc1")["transcoding"] is False, GRACE_S + T(5), 0.1,
               "transcoding off after the grace period")
    stopped_after = time.monotonic() - left
    assert stopped_after >= GRACE_S - 1.0, stopped_after
    assert gauge(srv, "to_aac") == 0
    srv.wait_log(r"Opus->AAC transcoding stopped \(no consumer needs AAC\)", T(2))
    pub.send_signal(signal.SIGTERM)


@needs_aiortc
def test_sessions_failed_counts_sessions_without_media(sluice_factory, procs, media_src):
    srv = start(sluice_factory, {"webrtc": {"setup_timeout": "3s"}})
    sdp = {"Content-Type": "application/sdp"}
    pub = client(procs, "whip", whip_url(srv, "f1"), "--src", str(media_src), "--seconds", "60",
                 name="whip")
    wait_live(srv, "f1")
    wait_until(lambda: srv.api.get("applications/live/streams/f1").data.get("frames_in", 0) > 25,
               T(15), 0.2, "media from the WHIP publisher")
    assert counter(srv, "sluice_webrtc_sessions_failed_total") == 0
    offer = make_offer()
    # Answered, then nothing: the setup timeout ends it, and it failed.
    st, _, body = request(srv, "POST", "/live/whep/endpoint/f1", offer, sdp)
    assert st == 201, body
    wait_until(lambda: counter(srv, "sluice_webrtc_sessions_failed_total") == 1, T(8), 0.1,
               "a setup timeout counted")
    # Answered, then deleted before ICE: failed too (it was counted only on a timeout before).
    st, h, body = request(srv, "POST", "/live/whep/endpoint/f1", offer, sdp)
    assert st == 201, body
    assert request(srv, "DELETE", h["location"])[0] == 200
    wait_until(lambda: counter(srv, "sluice_webrtc_sessions_failed_total") == 2, T(5), 0.1,
               "a session deleted before media counted")
    # A viewer that got media and left is no failure.
    rc, evs, err = run_client("whep", whep_url(srv, "f1"), "--seconds", str(T(20)), "--frames", "10",
                              "--delete", timeout=T(60))
    assert rc == 0, (evs, err[-2000:])
    wait_until(lambda: counter(srv, "sluice_webrtc_sessions_created_total") == 4, T(5), 0.1, "created")
    wait_until(lambda: srv.log_text().count("webrtc session closed") >= 3, T(10), 0.1, "viewer closed")
    assert counter(srv, "sluice_webrtc_sessions_failed_total") == 2
    procs.stop(pub, signal.SIGTERM, T(15))
    done = [e for e in events_of(pub) if e["event"] == "done"]
    assert done and done[0]["connected"], done
