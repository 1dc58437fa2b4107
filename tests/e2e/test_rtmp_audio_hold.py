"""media.audio_hold: with writes flushed at once, an RTMP player's audio waits for the next
video frame so both go out in one write (audio is most of a stream's frames and a few percent
of its bytes; the kernel's cost is per write). What must hold whatever the batching:
 - nothing is lost or reordered: the player gets every frame byte for byte, in publish order;
 - the wait is bounded: audio of a stream whose video stops still arrives (the hold timer);
 - an audio-only stream is never held: each frame arrives before the next is sent, well
   inside one hold period (if frames were held, every one would wait for a timer tick).
The publisher is the wire-level client so the frame pattern is exact."""

import os
import time

import rtmp_client
from conftest import HOST, T

AVC_SEQ = b"\x17\x00\x00\x00\x00" + b"\x01\x64\x00\x1f\xff\xe1\x00\x04\x67\x64\x00\x1f\x01\x00\x04\x68\xee\x3c\x80"
AAC_SEQ = b"\xaf\x00\x12\x10"


def vframe(key, n):
    return (b"\x17\x01" if key else b"\x27\x01") + b"\x00\x00\x00" + os.urandom(n)


def aframe(n):
    return b"\xaf\x01" + os.urandom(n)


def media_of(player):
    with player._cv:
        return [m for m in player.media if m.is_video or m.is_audio]


def test_audio_rides_with_video_in_order_and_nothing_lost(sluice_factory):
    srv = sluice_factory(env={"SLUICE_MEDIA_AUDIO_HOLD": "200ms", "SLUICE_APP_LIVE_HLS": "false"})
    player, _ = rtmp_client.open_player(HOST, srv.port, "live", "ah1", timeout=T(5), keep_payload=True)
    pub, sid = rtmp_client.open_publisher(HOST, srv.port, "live", "ah1", timeout=T(5))
    try:
        pub.send_video(sid, 0, AVC_SEQ)
        pub.send_audio(sid, 0, AAC_SEQ)
        sent = []
        for i in range(40):
            ts = 33 * i
            body = vframe(i % 15 == 0, 2000 + 10 * i)
            pub.send_video(sid, ts, body)
            sent.append(body)
            for k in range(2):  # more audio frames than video, as in a real stream
                a = aframe(200 + i + k)
                pub.send_audio(sid, ts + 10 + 10 * k, a)
                sent.append(a)
        # The video stops; audio goes on: the hold timer must still deliver it.
        for i in range(10):
            a = aframe(300 + i)
            pub.send_audio(sid, 33 * 40 + 20 * i, a)
            sent.append(a)
        pub.sync(T(5))
        player.wait_for(lambda: len(media_of(player)) >= 2 + len(sent), T(10),
                        "every frame at the player, including audio after the video stopped")
        got = [m.data for m in media_of(player)]
        assert AVC_SEQ in got[:2] and AAC_SEQ in got[:2], "sequence headers not first"
        assert got[2:] == sent, "frames lost, altered or reordered by the audio hold"
    finally:
        pub.close()
        player.close()


def test_audio_only_stream_is_not_held(sluice_factory):
    hold_ms = 1000
    srv = sluice_factory(env={"SLUICE_MEDIA_AUDIO_HOLD": "%dms" % hold_ms, "SLUICE_APP_LIVE_HLS": "false"})
    player, _ = rtmp_client.open_player(HOST, srv.port, "live", "ah2", timeout=T(5), keep_payload=True)
    pub, sid = rtmp_client.open_publisher(HOST, srv.port, "live", "ah2", timeout=T(5))
    try:
        pub.send_audio(sid, 0, AAC_SEQ)
        frames = 10
        t0 = time.monotonic()
        for i in range(frames):
            pub.send_audio(sid, 23 * i, aframe(100 + i))
            player.wait_for(lambda: len(media_of(player)) >= 2 + i, T(10), "audio frame %d" % i)
        elapsed = time.monotonic() - t0
        # Held frames would each wait for a tick of the 1 s hold timer: >= 9 s for 10 frames.
        assert elapsed < frames * hold_ms / 1000.0 / 2, \
            "audio of a stream without video was held (%.1f s for %d frames)" % (elapsed, frames)
    finally:
        pub.close()
        player.close()
