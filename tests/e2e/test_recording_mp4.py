"""Recording to fragmented MP4 (src/modules/recorder/recorder_mp4.c) and RTMP VOD of
.mp4 recordings: the app setting record_format, an explicit .mp4 name (API saveas,
publish name), append refused into a new file, crash safety (kill -9 leaves a
playable file; the catalog row is finalised at restart, a torn fragment cut), disk
full, HTTP Range download, the media listing, and playback by ffmpeg and rtmpdump
(mp4:name, name.mp4, seek, pause, Complete) with getStreamLength.

Helpers and fixtures are test_recording.py's (FLV recording).
"""

import json
import os
import signal
import struct
import subprocess
import time
import urllib.request

import pytest

import rtmp_client
from api_helpers import Api, EventReader, http_port_of, start_api_server
from conftest import HOST, T, wait_stream_live, wait_until
from test_recording import (catalog, curl, probe, publish_for, rec_path,
                            start_live, tiny_disk, wait_saved)  # noqa: F401 (fixture)

MP4_APP = {"apps": {"live": {"record_format": "mp4"}}}


def boxes(path):
    """The top-level boxes of an MP4 file: [(type, offset, size)] while they are whole."""
    out = []
    data = pathlib_bytes(path)
    pos = 0
    while pos + 8 <= len(data):
        size, typ = struct.unpack(">I4s", data[pos:pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
        elif size == 0:
            size = len(data) - pos
        if size < 8 or pos + size > len(data):
            break
        out.append((typ.decode("latin-1"), pos, size))
        pos += size
    return out


def pathlib_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def decodes_cleanly(target):
    """ffmpeg decodes every frame of target without an error message."""
    p = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(target), "-f", "null", "-"],
                       capture_output=True, text=True, timeout=T(60))
    assert p.returncode == 0 and not p.stderr.strip(), p.stderr[-2000:]


def ffmpeg_publish_for(srv, stream, seconds, media_src, app="live"):
    """ffmpeg publishes `seconds` of the media file in real time, then ends."""
    p = subprocess.run(["ffmpeg", "-hide_banner", "-v", "error", "-nostdin", "-re",
                        "-i", str(media_src), "-t", str(seconds), "-c", "copy", "-f", "flv",
                        "rtmp://%s:%d/%s/%s" % (HOST, srv.port, app, stream)],
                       capture_output=True, text=True, timeout=T(seconds + 30))
    assert p.returncode == 0, p.stderr[-2000:]


def assert_fragmented(path, min_fragments=2):
    kinds = [b[0] for b in boxes(path)]
    assert kinds[:2] == ["ftyp", "moov"], kinds[:5]
    assert kinds.count("moof") >= min_fragments and kinds.count("moof") == kinds.count("mdat"), \
        kinds
    assert sum(b[2] for b in boxes(path)) == os.path.getsize(path), "whole boxes only"


# ----------------------------------------------------------------------------
# recording
# ----------------------------------------------------------------------------

def test_app_record_format_mp4_by_policy(sluice_factory, media_src):
    srv = sluice_factory(config={"apps": {"live": {"record": True, "record_format": "mp4"}}})
    ffmpeg_publish_for(srv, "pol4", 4, media_src)
    wait_saved(srv, "pol4.mp4")
    path = rec_path(srv, "pol4.mp4")
    assert not rec_path(srv, "pol4.flv").exists()
    codecs, duration = probe(path)
    assert codecs == ["aac", "h264"]
    assert 2.5 < duration < 4.8, duration
    assert_fragmented(path)
    decodes_cleanly(path)
    row = catalog(srv)[-1]
    assert row[:4] == ("live", "pol4", "pol4.mp4", "done"), row
    assert abs(row[4] / 1000.0 - duration) < 0.3, (row, duration)
    assert row[5] == path.stat().st_size and row[6] == "h264,aac", row
    # Fragments: one per keyframe (every 2 s here), none longer than 2 s.
    info = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
         "stream=width,height", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=T(30)).stdout)
    assert info["streams"][0]["width"] == 640 and info["streams"][0]["height"] == 360


def test_api_startrecord_saveas_mp4_and_listing(sluice_factory, media_tags):
    srv = start_api_server(sluice_factory)
    api = Api(srv)
    base = "applications/live/streams/api4/action/"
    pub, flv = start_live(srv, "api4", media_tags)
    try:
        r = api.get(base + "startrecord", {"saveas": "api4_%Y.mp4"})
        assert r.status == 200, r
        name = "api4_%s.mp4" % time.strftime("%Y", time.gmtime())
        assert r.data["record_name"] == name, r
        path = rec_path(srv, name)
        # Fragments reach the file while recording (one per keyframe, 2 s apart).
        wait_until(lambda: path.exists() and
                   [b[0] for b in boxes(path)].count("moof") >= 2, T(15),
                   message="two fragments written")
        r = api.get(base + "stoprecord")
        assert r.status == 200, r
        wait_saved(srv, name)
        codecs, duration = probe(path)
        assert codecs == ["aac", "h264"] and duration > 3.0
        decodes_cleanly(path)
        # append=true on an MP4 goes to a new file beside it, and says so.
        r = api.get(base + "startrecord", {"saveas": "api4_%Y.mp4", "append": "true"})
        assert r.status == 200, r
        name2 = "api4_%s_1.mp4" % time.strftime("%Y", time.gmtime())
        assert r.data["record_name"] == name2, r
        assert "append is not supported for MP4" in srv.log_text()
        wait_until(lambda: rec_path(srv, name2).exists() and
                   rec_path(srv, name2).stat().st_size > 100000, T(10), message="second file")
        assert api.get(base + "stoprecord").status == 200
        wait_saved(srv, name2)
        assert path.stat().st_size == catalog(srv)[0][5], "the first file was left alone"
    finally:
        flv.stop()
        pub.close()
    media = api.data("applications/live/media", {"extension": "mp4"})
    assert sorted(m["name"] for m in media) == sorted([name, name2])
    with urllib.request.urlopen("http://%s:%d/live/mediafiles" % (HOST, http_port_of(srv)),
                                timeout=T(5)) as r:
        listed = [m["name"] for m in json.loads(r.read())["mediafiles"]]
    assert sorted(listed) == sorted([name, name2])
    r = api.delete("applications/live/media", {"filename": name2[:-4], "extension": "mp4"})
    assert r.status == 200 and r.data["name"] == name2, r
    assert not rec_path(srv, name2).exists()


def test_publish_name_mp4_in_record_mode(sluice, media_tags):
    span = publish_for(sluice, "pubrec.mp4", 3, media_tags, kind="record")
    wait_saved(sluice, "pubrec.mp4")
    codecs, duration = probe(rec_path(sluice, "pubrec.mp4"))
    assert codecs == ["aac", "h264"]
    assert abs(duration - span / 1000.0) < 1.0, (duration, span)
    row = catalog(sluice)[-1]
    assert row[3] == "done" and abs(row[4] - span) < 1000, row


def test_record_events_for_mp4(sluice_factory, media_tags):
    srv = start_api_server(sluice_factory, config=MP4_APP)
    events = EventReader(srv, {"type": "record_start,record_done"})
    try:
        span = publish_for(srv, "ev4", 2, media_tags, kind="record")
        path = str(rec_path(srv, "ev4.mp4"))
        start = events.wait_for(lambda e: e["event"] == "record_start", what="record_start")
        assert start["path"] == path
        done = events.wait_for(lambda e: e["event"] == "record_done", what="record_done")
        assert done["path"] == path and "reason" not in done, done
        assert abs(done["duration_ms"] - span) < 1000
        assert done["bytes_in"] == os.path.getsize(path)
    finally:
        events.close()


def test_kill9_mid_mp4_recording_then_restart_finalises(sluice_factory, media_tags, tmp_path):
    srv = sluice_factory(config=MP4_APP)
    pub, sid = rtmp_client.open_publisher(HOST, srv.port, "live", "crash4", timeout=T(5),
                                          kind="record")
    flv = rtmp_client.FlvPublisher(pub, sid, media_tags).start()
    path = rec_path(srv, "crash4.mp4")
    try:
        # Two fragments are on disk (a keyframe every 2 s): then kill.
        wait_until(lambda: path.exists() and [b[0] for b in boxes(path)].count("moof") >= 2,
                   T(15), message="two fragments on disk")
        srv.stop(sig=signal.SIGKILL)
    finally:
        flv.stop()
        pub.close()
    # The file plays as it is, before any repair, and decodes without an error.
    codecs, raw_duration = probe(path)
    assert codecs == ["aac", "h264"] and raw_duration > 1.5, raw_duration
    decodes_cleanly(path)
    assert catalog(srv)[-1][3] == "recording"
    # A torn fragment (what a power cut could leave): a moof header and half its body.
    whole = path.stat().st_size
    with open(path, "ab") as f:
        f.write(struct.pack(">I4s", 5000, b"moof") + b"\0" * 100)
    srv.start()
    srv.wait_log(r"finalised unfinished recording .*crash4\.mp4", T(15))
    row = catalog(srv)[-1]
    assert row[3] == "done" and row[4] > 1500 and row[5] == whole, row
    assert path.stat().st_size == whole, "torn tail cut"
    codecs, duration = probe(path)
    assert codecs == ["aac", "h264"] and abs(duration - row[4] / 1000.0) < 0.3, (duration, row)
    decodes_cleanly(path)
    # The repaired file (no fragment index at its end) plays over RTMP, and seeks.
    out = tmp_path / "crash.flv"
    p = subprocess.run(["rtmpdump", "-q", "-r", "rtmp://%s:%d/live/crash4.mp4" % (HOST, srv.port),
                        "--start", "2", "-o", str(out)], capture_output=True, timeout=T(60))
    assert p.returncode in (0, 2), p.stderr[-2000:]
    ts = [t.ts for t in rtmp_client.read_flv(out) if t.type == 9 and not t.seq_header]
    assert ts and (ts[-1] - ts[0]) / 1000.0 > duration - 2 - 0.5, (ts[:3], ts[-3:], duration)


def test_new_codec_configuration_ends_the_mp4(sluice_factory, media_tags):
    srv = start_api_server(sluice_factory, config=MP4_APP)
    events = EventReader(srv, {"type": "record_done"})
    pub, sid = rtmp_client.open_publisher(HOST, srv.port, "live", "cfg4", timeout=T(5),
                                          kind="record")
    flv = rtmp_client.FlvPublisher(pub, sid, media_tags, loop=False).start()
    path = rec_path(srv, "cfg4.mp4")
    try:
        wait_until(lambda: path.exists() and [b[0] for b in boxes(path)].count("moof") >= 2,
                   T(15), message="two fragments written")
        flv.stop()
        vcfg = next(t for t in media_tags if t.type == 9 and t.seq_header)
        last = flv.sent[-1][1]
        pub.send_video(sid, last + 40, vcfg.data)  # the same configuration: ignored
        changed = bytearray(vcfg.data)
        changed[-1] ^= 0x01  # another configuration (a PPS byte)
        pub.send_video(sid, last + 80, bytes(changed))
        done = events.wait_for(lambda e: e["event"] == "record_done", T(15), "record_done")
        assert "reason" not in done, done
        assert "codec configuration changed" in srv.log_text()
        assert not pub.closed, "the publisher stays"
    finally:
        events.close()
        flv.stop()
        pub.close()
    wait_saved(srv, "cfg4.mp4")
    assert catalog(srv)[-1][3] == "done"
    assert_fragmented(path)
    decodes_cleanly(path)


def test_disk_full_stops_the_mp4_recording_not_the_stream(tiny_disk, sluice_factory, media_tags):
    srv = start_api_server(sluice_factory, config=MP4_APP,
                           env={"SLUICE_SERVER_DATA_DIR": str(tiny_disk)})
    srv.data_dir = tiny_disk
    events = EventReader(srv, {"type": "record_done"})
    pub, sid = rtmp_client.open_publisher(HOST, srv.port, "live", "full4", timeout=T(5),
                                          kind="record")
    flv = rtmp_client.FlvPublisher(pub, sid, media_tags).start()
    try:
        done = events.wait_for(lambda e: e["event"] == "record_done", T(30), "record_done")
        assert done["reason"] == "failed" and done["stream"] == "full4", done
        assert "disk full" in srv.log_text()
        assert not pub.closed, pub.close_reason
        wait_stream_live(srv.port, "live", "full4", T(10), frames=10)
        # What was written ends at a whole fragment and plays.
        path = rec_path(srv, "full4.mp4")
        assert sum(b[2] for b in boxes(path)) == os.path.getsize(path)
        codecs, duration = probe(path)
        assert codecs == ["aac", "h264"] and duration > 1.0
    finally:
        events.close()
        flv.stop()
        pub.close()


# ----------------------------------------------------------------------------
# VOD and download
# ----------------------------------------------------------------------------

@pytest.fixture
def vod4(sluice_factory, media_tags):
    """A server (with the API) holding live/vod4.mp4: about 8 s, sent at 4x."""
    srv = start_api_server(sluice_factory, config=MP4_APP)
    srv.vod_span = publish_for(srv, "vod4", 8, media_tags, kind="record", speed=4.0)
    wait_saved(srv, "vod4.mp4")
    srv.vod_path = rec_path(srv, "vod4.mp4")
    srv.vod_duration = probe(srv.vod_path)[1]
    return srv


def test_ffmpeg_plays_mp4_prefix_over_rtmp(vod4, tmp_path):
    out = tmp_path / "ff.flv"
    t0 = time.monotonic()
    p = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i",
                        "rtmp://%s:%d/live/mp4:vod4.mp4" % (HOST, vod4.port),
                        "-c", "copy", str(out)], capture_output=True, text=True, timeout=T(60))
    assert p.returncode == 0, p.stderr[-2000:]
    assert time.monotonic() - t0 > vod4.vod_duration - 1.5, "paced at real time"
    codecs, duration = probe(out)
    assert codecs == ["aac", "h264"] and abs(duration - vod4.vod_duration) < 0.6, duration
    decodes_cleanly(out)
    assert "recording played to the end" in vod4.log_text()


def test_rtmpdump_plays_name_mp4_and_mp4_prefix_without_extension(vod4, tmp_path):
    for i, name in enumerate(("vod4.mp4", "mp4:vod4")):
        out = tmp_path / ("out%d.flv" % i)
        p = subprocess.run(["rtmpdump", "-q", "-r",
                            "rtmp://%s:%d/live/%s" % (HOST, vod4.port, name), "-o", str(out)],
                           capture_output=True, timeout=T(60))
        assert p.returncode == 0, (name, p.stderr[-2000:])
        codecs, duration = probe(out)
        assert codecs == ["aac", "h264"], name
        assert abs(duration - vod4.vod_duration) < 0.6, (name, duration)
        tags = rtmp_client.read_flv(out)
        assert tags[0].type == 18 or any(t.type == 18 for t in tags[:3]), "onMetaData first"
        video = [t for t in tags if t.type == 9 and not t.seq_header]
        assert video and video[0].keyframe
        # Audio and video interleaved by decode time (a fragment stores them in runs).
        ts = [t.ts for t in tags if t.type in (8, 9)]
        assert all(b >= a for a, b in zip(ts, ts[1:])), "timestamps go back"


def test_rtmpdump_start_seeks_in_mp4(vod4, tmp_path):
    out = tmp_path / "out.flv"
    p = subprocess.run(["rtmpdump", "-q", "-r", "rtmp://%s:%d/live/mp4:vod4.mp4" % (HOST, vod4.port),
                        "--start", "4", "-o", str(out)], capture_output=True, timeout=T(60))
    assert p.returncode in (0, 2), p.stderr[-2000:]
    total = vod4.vod_duration
    ts = [t.ts for t in rtmp_client.read_flv(out) if t.type == 9 and not t.seq_header]
    duration = (ts[-1] - ts[0]) / 1000.0
    # From the keyframe at or before 4 s (keyframes every 2 s) to the end.
    assert total - 4 - 0.2 < duration < total - 2 + 0.5, (duration, total)
    decodes_cleanly(out)


def test_mp4_vod_statuses_pause_seek_complete_and_length(vod4):
    c = rtmp_client.RtmpClient(HOST, vod4.port, timeout=T(5), name="vod-player")
    try:
        assert c.connect("live").ok
        r = c.call("getStreamLength", None, "mp4:vod4.mp4")
        assert abs(r.args[1] - vod4.vod_duration) < 0.3, r
        r = c.call("getStreamLength", None, "vod4")  # no extension: found as .mp4
        assert abs(r.args[1] - vod4.vod_duration) < 0.3, r
        sid = c.create_stream()
        c.play(sid, "mp4:vod4.mp4", start=0)
        c.wait_status("NetStream.Play.Start", T(5))
        c.wait_video_frames(10, T(5))
        c.send_command("pause", None, True, 0.0, msid=sid, csid=rtmp_client.CSID_STREAM_COMMAND,
                       txn=0)
        c.wait_status("NetStream.Pause.Notify", T(5))
        c.sync()
        n = len(c.video_frames())
        time.sleep(1.0)  # nothing may arrive while paused: a wait with no condition to poll
        assert len(c.video_frames()) <= n + 15, "frames queued before the pause at most"
        c.send_command("pause", None, False, 0.0, msid=sid, csid=rtmp_client.CSID_STREAM_COMMAND,
                       txn=0)
        c.wait_status("NetStream.Unpause.Notify", T(5))
        c.send_command("seek", None, 6000.0, msid=sid, csid=rtmp_client.CSID_STREAM_COMMAND, txn=0)
        c.wait_status("NetStream.Seek.Notify", T(5))
        c.wait_for(lambda: any(m.ts >= 5900 for m in c.video_frames()), T(5), "frames after 6 s")
        c.wait_for(lambda: any(v and v[0] == "onPlayStatus" and
                               v[1].get("code") == "NetStream.Play.Complete"
                               for _t, v in c.data_messages), T(15), "Play.Complete")
        assert "NetStream.Play.Stop" in c.status_codes()
    finally:
        c.close()


def test_http_download_of_mp4_with_range(vod4):
    data = vod4.vod_path.read_bytes()
    url = "http://%s:%d/live/streams/vod4.mp4" % (HOST, http_port_of(vod4))
    status, headers, body = curl(url)
    assert status == 200 and body == data and headers["content-type"] == "video/mp4"
    status, headers, body = curl(url, "-H", "Range: bytes=100-199")
    assert status == 206 and body == data[100:200], (status, headers)
    assert headers["content-range"] == "bytes 100-199/%d" % len(data)
    status, _, body = curl(url, "-H", "Range: bytes=-50")
    assert status == 206 and body == data[-50:]
    # ffprobe reads (and seeks in) it over HTTP.
    codecs, duration = probe(url)
    assert codecs == ["aac", "h264"] and abs(duration - vod4.vod_duration) < 0.1


def test_flv_get_stream_length(sluice, media_tags):
    span = publish_for(sluice, "len1", 2, media_tags, kind="record", speed=4.0)
    wait_saved(sluice, "len1.flv")
    c = rtmp_client.RtmpClient(HOST, sluice.port, timeout=T(5), name="len-player")
    try:
        assert c.connect("live").ok
        r = c.call("getStreamLength", None, "len1")
        assert abs(r.args[1] - span / 1000.0) < 1.0, r
        r = c.call("getStreamLength", None, "nothere")
        assert r.args[1] == 0, r
    finally:
        c.close()
    # After a restart the durations come from the catalog.
    assert sluice.stop() == 0
    sluice.start()
    c = rtmp_client.RtmpClient(HOST, sluice.port, timeout=T(5), name="len-player2")
    try:
        assert c.connect("live").ok
        # (read by the writer thread at start: poll until the loop has them)
        wait_until(lambda: c.call("getStreamLength", None, "flv:len1?x=1").args[1] > 0, T(10),
                   message="length known after restart")
        r = c.call("getStreamLength", None, "flv:len1?x=1")
        assert abs(r.args[1] - span / 1000.0) < 1.0, r
    finally:
        c.close()


# ----------------------------------------------------------------------------
# Enhanced RTMP codecs: HEVC + Opus, AV1 + AAC through the MP4 reader and writer
# ----------------------------------------------------------------------------

ERTMP_SOURCES = {
    "hevc": ["-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1",
             "-x265-params", "keyint=25:min-keyint=25:log-level=error"],
    "av1": ["-c:v", "libaom-av1", "-cpu-used", "8", "-g", "25", "-b:v", "200k"],
    "opus": ["-c:a", "libopus", "-b:a", "48k"],
    "aac": ["-c:a", "aac", "-b:a", "48k"],
}


@pytest.mark.parametrize("vcodec,acodec,fourcc", [("hevc", "opus", b"hvc1"),
                                                  ("av1", "aac", b"av01")])
def test_ertmp_codecs_through_mp4_vod_and_recording(sluice_factory, tmp_path, vcodec, acodec,
                                                    fourcc):
    srv = sluice_factory()
    src = rec_path(srv, "src_%s.mp4" % vcodec)
    src.parent.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y",
                        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
                        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "4"]
                       + ERTMP_SOURCES[vcodec] + ERTMP_SOURCES[acodec] + ["-f", "mp4", str(src)],
                       capture_output=True, text=True, timeout=T(120))
    if p.returncode != 0:
        pytest.skip("cannot make the %s source: %s" % (vcodec, p.stderr[-300:]))
    # VOD: the MP4 reader turns the samples into Enhanced RTMP tags.
    dump = tmp_path / "dump.flv"
    p = subprocess.run(["rtmpdump", "-q", "-r", "rtmp://%s:%d/live/mp4:src_%s" % (
        HOST, srv.port, vcodec), "-o", str(dump)], capture_output=True, timeout=T(60))
    # 2: librtmp's "incomplete" when the last frame ends short of onMetaData's duration
    # (the Opus track runs a few ms past the video).
    assert p.returncode in (0, 2), p.stderr[-2000:]
    tags = rtmp_client.read_flv(dump)
    vcfg = [t for t in tags if t.type == 9 and t.data[0] & 0x80 and t.data[0] & 0x0F == 0]
    assert vcfg and vcfg[0].data[1:5] == fourcc, tags[:4]
    if acodec == "opus":
        assert any(t.type == 8 and t.data[:5] == b"\x90Opus" and t.data[5:13] == b"OpusHead"
                   for t in tags)
    # Recording: the same tags published again, in mode record, to an MP4.
    publish_for(srv, "again_%s.mp4" % vcodec, 2, tags, kind="record")
    wait_saved(srv, "again_%s.mp4" % vcodec)
    path = rec_path(srv, "again_%s.mp4" % vcodec)
    codecs, duration = probe(path)
    assert codecs == sorted([vcodec, acodec]) and duration > 1.5, (codecs, duration)
    decodes_cleanly(path)
    assert catalog(srv)[-1][6] == "%s,%s" % (vcodec, acodec)
