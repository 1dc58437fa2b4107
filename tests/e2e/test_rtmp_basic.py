"""RTMP live basics with real clients: ffmpeg publishes, ffprobe/ffmpeg/rtmpdump and
rtmp_client play, in the address forms users type (full URL, OBS server+key,
rooms).

One sluice and one looping ffmpeg publisher on live/stream1 are shared by the
module (they are only read from); tests that publish elsewhere start their own
publisher on the same server.
"""

import subprocess
import time

import pytest

import rtmp_client
from conftest import (HOST, MEDIA_FPS, T, ffmpeg_publish_cmd, ffprobe_count_frames,
                      ffprobe_packets, ffprobe_streams, wait_stream_live, wait_until)


@pytest.fixture(scope="module")
def live(module_sluice_factory, module_procs, media_src):
    srv = module_sluice_factory()
    srv.publish_t0 = time.monotonic()
    module_procs.start(ffmpeg_publish_cmd(media_src, srv.url("live", "stream1")), "ffmpeg-publish")
    wait_stream_live(srv.port, "live", "stream1", T(15))
    return srv


def assert_h264_aac(streams, where):
    kinds = {s["codec_type"]: s for s in streams}
    assert "video" in kinds, "%s: no video stream in %r" % (where, streams)
    assert "audio" in kinds, "%s: no audio stream in %r" % (where, streams)
    v, a = kinds["video"], kinds["audio"]
    assert v["codec_name"] == "h264", "%s: video codec %s" % (where, v["codec_name"])
    assert (v.get("width"), v.get("height")) == (640, 360), \
        "%s: video size %sx%s" % (where, v.get("width"), v.get("height"))
    assert a["codec_name"] == "aac", "%s: audio codec %s" % (where, a["codec_name"])


def test_ffprobe_reads_live_stream(live):
    streams = ffprobe_streams(live.url("live", "stream1"), timeout=T(20))
    assert_h264_aac(streams, "ffprobe of the live URL")


@pytest.fixture(scope="module")
def played(live, tmp_path_factory):
    """ffmpeg plays 5 s of live/stream1 into an FLV (keeping initial non-keyframes,
    so that the file shows what the server sent first). Returns (path, wall seconds)."""
    out = tmp_path_factory.mktemp("played") / "out.flv"
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostdin", "-y",
           "-i", live.url("live", "stream1"), "-t", "5", "-c", "copy", "-copyinkf",
           "-f", "flv", str(out)]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=T(30))
    wall = time.monotonic() - t0
    assert p.returncode == 0, "ffmpeg play failed (%d): %s" % (p.returncode, p.stderr[-2000:])
    return out, wall


def test_ffmpeg_play_frame_count(played):
    path, wall = played
    n, stream = ffprobe_count_frames(path)
    assert stream["codec_name"] == "h264"
    expected = 5 * MEDIA_FPS
    assert expected - 12 <= n <= expected + 12, \
        "5 s at %d fps should give ~%d frames, got %d" % (MEDIA_FPS, expected, n)
    # The GOP cache lets the first seconds arrive as a burst, so 5 s of media
    # must not take much longer than 5 s of wall time.
    assert wall < T(9), "playing 5 s took %.1f s of wall time" % wall


def test_ffmpeg_play_starts_on_keyframe(played):
    path, _ = played
    pkts = ffprobe_packets(path, "v")
    assert pkts, "no video packets in the played file"
    assert "K" in pkts[0]["flags"], \
        "first video packet of the played file is not a keyframe: %r" % pkts[:3]


def test_ffmpeg_play_audio_video_in_sync(played):
    path, _ = played
    v = ffprobe_packets(path, "v")
    a = ffprobe_packets(path, "a")
    assert v and a, "played file lacks video (%d) or audio (%d) packets" % (len(v), len(a))
    tv = float(v[0]["dts_time"])
    ta = float(a[0]["dts_time"])
    assert abs(tv - ta) <= 0.5, \
        "first audio at %.3f s and first video at %.3f s differ by more than 500 ms" % (ta, tv)


def test_gop_cache_serves_the_current_gop_at_once(live):
    """A newcomer gets the GOP in progress at once: its first frame is the keyframe a
    long-running reference player received last, not the next one. Joins happen
    ~0.5 s after a keyframe (so the next is ~1.5 s away) on a stream published for
    more than 7 s, three times over."""
    wait_until(lambda: time.monotonic() - live.publish_t0 > 7, T(10), 0.1,
               "the stream to be published for 7 s")
    ref, _ = rtmp_client.open_player(HOST, live.port, "live", "stream1", timeout=T(5),
                                     name="reference")
    try:
        ref.wait_video_frames(1, T(5))
        for attempt in range(3):
            n_keys = sum(1 for m in ref.video_frames() if m.keyframe)
            ref.wait_for(lambda: sum(1 for m in ref.media if m.keyframe) > n_keys, T(5),
                         "the next keyframe")
            frames = ref.video_frames()
            k = max(i for i, m in enumerate(frames) if m.keyframe)
            key = frames[k]
            ref.wait_for(lambda: sum(1 for m in ref.media if m.is_frame) >= k + 13, T(5),
                         "0.5 s of frames after the keyframe")
            p, _ = rtmp_client.open_player(HOST, live.port, "live", "stream1", timeout=T(5),
                                           name="joiner%d" % attempt)
            try:
                p.wait_video_frames(1, T(5))
                first = p.video_frames()[0]
                latency = first.arrival - p.t_connect
                assert (first.size, first.crc) == (key.size, key.crc), (
                    "join %d: the first frame (%r, %.2f s after connecting) is not the keyframe "
                    "that starts the current GOP (%r): the GOP cache was not served"
                    % (attempt, first, latency, key))
                assert latency < T(0.5), "join %d: first frame after %.2f s" % (attempt, latency)
                p.wait_video_frames(12, T(1.0))  # the cached frames arrive as one burst
            finally:
                p.close()
    finally:
        ref.close()


def test_player_start_sequence(live):
    """Play.Reset then Play.Start; AVC/AAC configs before any frame; the first frame a
    keyframe; timestamps monotonic without gaps through the GOP burst."""
    c, _ = rtmp_client.open_player(HOST, live.port, "live", "stream1", timeout=T(5))
    try:
        c.wait_video_frames(5, T(5))
        codes = c.status_codes()
        assert "NetStream.Play.Reset" in codes and "NetStream.Play.Start" in codes, codes
        assert codes.index("NetStream.Play.Reset") < codes.index("NetStream.Play.Start"), codes
        frames = c.video_frames()
        first = frames[0]
        assert first.keyframe, "first video frame is not a keyframe: %r" % frames[:3]
        with c._cv:
            videos = [m for m in c.media if m.is_video]
            audios = [m for m in c.media if m.is_audio]
        assert videos[0].seq_header, \
            "the AVC sequence header must precede the first frame; got %r" % videos[:2]
        if audios:
            assert audios[0].seq_header, \
                "the AAC sequence header must precede audio frames; got %r" % audios[:2]
        # The burst is the GOP as published: timestamps never go backwards.
        ts = [m.ts for m in frames]
        assert all(b >= a for a, b in zip(ts, ts[1:])), "timestamps go backwards: %r" % ts[:20]
        dts_steps = [b - a for a, b in zip(ts, ts[1:])]
        assert max(dts_steps) <= 200, "gap in the first frames' timestamps: %r" % ts[:20]
    finally:
        c.close()


def test_player_receives_metadata(live):
    c, _ = rtmp_client.open_player(HOST, live.port, "live", "stream1", timeout=T(5))
    try:
        c.wait_for(lambda: any(v and v[0] == "onMetaData" for _, v in c.data_messages),
                   T(5), "onMetaData")
        meta = next(v for _, v in c.data_messages if v and v[0] == "onMetaData")
        props = meta[1] if len(meta) > 1 and isinstance(meta[1], dict) else {}
        assert props.get("width") == 640 and props.get("height") == 360, meta
    finally:
        c.close()


def rtmpdump_until(procs, cmd, out, min_bytes, timeout):
    """Runs rtmpdump until out holds min_bytes, then stops it with SIGINT."""
    p = procs.start(cmd, "rtmpdump")
    try:
        wait_until(lambda: (out.exists() and out.stat().st_size >= min_bytes) or p.poll() is not None,
                   timeout, 0.1, "rtmpdump to write %d bytes" % min_bytes)
    finally:
        procs.stop(p)
    size = out.stat().st_size if out.exists() else 0
    assert size >= min_bytes, "rtmpdump wrote %d bytes (exit %s): %s" % (
        size, p.returncode, procs.log_of(p)[-2000:])


def test_rtmpdump_plays(live, procs, tmp_path):
    out = tmp_path / "dump.flv"
    rtmpdump_until(procs, ["rtmpdump", "-r", live.url("live", "stream1"), "--live",
                           "-o", out], out, 200_000, T(15))
    assert_h264_aac(ffprobe_streams(out), "rtmpdump output")
    n, _ = ffprobe_count_frames(out)
    assert n >= 25, "rtmpdump output holds only %d frames" % n


def test_rtmpdump_obs_split_form(live, procs, tmp_path):
    out = tmp_path / "dump.flv"
    base = "rtmp://%s:%d/live" % (HOST, live.port)
    rtmpdump_until(procs, ["rtmpdump", "-r", base, "-a", "live", "-y", "stream1", "-t", base,
                           "--live", "-o", out], out, 200_000, T(15))
    assert_h264_aac(ffprobe_streams(out), "rtmpdump (app/playpath form) output")


def test_ffmpeg_publish_obs_split_form(live, procs, media_src):
    """OBS: server rtmp://host/live, key obs1 -> connect(app=live), publish(obs1)."""
    base = "rtmp://%s:%d/live" % (HOST, live.port)
    procs.start(ffmpeg_publish_cmd(media_src, base, ["-rtmp_app", "live",
                                                     "-rtmp_playpath", "obs1"]), "ffmpeg-obs")
    wait_stream_live(live.port, "live", "obs1", T(15), frames=10)


def test_room_nesting(live, procs, media_src):
    port = live.port
    # A player on the room stream waits: the room is not an alias of live/stream1.
    c, _ = rtmp_client.open_player(HOST, port, "live/room1", "stream1", timeout=T(5),
                                   expect_start=False)
    try:
        with pytest.raises(AssertionError):
            c.wait_video_frames(1, 1.0)
        procs.start(ffmpeg_publish_cmd(media_src, live.url("live/room1", "stream1")),
                    "ffmpeg-room")
        c.wait_video_frames(10, T(15))
        assert c.video_frames()[0].keyframe
    finally:
        c.close()
    streams = ffprobe_streams(live.url("live/room1", "stream1"), timeout=T(20))
    assert_h264_aac(streams, "ffprobe of live/room1/stream1")
