"""Recording to FLV (src/modules/recorder): RTMP publish modes record/append, the
Server API's startrecord/stoprecord, the app policy `record: true`, the media
list/delete API and /{app}/mediafiles, unsafe names, and crash safety
(publisher drop, kill -9 then restart).

Publishing in record/append mode needs a client that sends NetStream.publish's
type (ffmpeg always sends "live"), so these tests publish with rtmp_client's
FlvPublisher, paced in real time from the shared media_src file.
"""

import json
import os
import re
import pathlib
import subprocess
import signal
import sqlite3
import time
import urllib.request

import pytest

import rtmp_client
from api_helpers import Api, EventReader, http_port_of, start_api_server
from conftest import HOST, T, ffprobe_json, wait_stream_live, wait_until


def rec_path(srv, name, app="live"):
    return srv.data_dir / app / "streams" / name


def publish_for(srv, stream, seconds, media_tags, kind="live", app="live", speed=1.0):
    """Publishes stream in `kind` mode for about `seconds` of media (sent `speed`
    times faster than real time); returns the media time span sent (ms), after a
    clean unpublish and disconnect."""
    pub, sid = rtmp_client.open_publisher(HOST, srv.port, app, stream, timeout=T(5), kind=kind)
    flv = rtmp_client.FlvPublisher(pub, sid, media_tags, speed=speed).start()
    try:
        wait_until(lambda: first_media_ts(flv) is not None and
                   flv.sent[-1][1] - first_media_ts(flv) >= seconds * 1000,
                   T(seconds + 10), message="%d s of media sent" % seconds)
    finally:
        flv.stop()
        span = flv.sent[-1][1] - first_media_ts(flv)
        pub.close()
    return span


def first_media_ts(flv):
    return next((ts for (t, ts, _n, _c) in list(flv.sent) if t in (8, 9)), None)


def wait_saved(srv, name, count=1):
    """Waits for the count-th "saved" log line of the file `name` (finalised)."""
    rx = re.compile(r"recorder: saved \S*/%s \(" % re.escape(name))
    wait_until(lambda: len(rx.findall(srv.log_text())) >= count, T(15),
               message="recording %s saved" % name)


def probe(path):
    info = ffprobe_json(path, ["-show_format", "-show_streams"])
    codecs = sorted(s["codec_name"] for s in info["streams"])
    return codecs, float(info["format"]["duration"])


def file_meta(path):
    """The onMetaData object of a recording (its first tag)."""
    first = rtmp_client.read_flv(path)[0]
    assert first.type == 18
    vals = rtmp_client.amf0_decode_all(first.data)
    assert vals[0] == "onMetaData"
    return vals[1]


def catalog(srv):
    db = sqlite3.connect(str(srv.data_dir / "sluice.db"))
    try:
        return db.execute("SELECT app, stream, name, state, duration, size, codecs FROM recordings"
                          " ORDER BY id").fetchall()
    finally:
        db.close()


def test_record_mode_writes_a_playable_flv(sluice, media_tags):
    span = publish_for(sluice, "rec1", 4, media_tags, kind="record")
    wait_saved(sluice, "rec1.flv")
    path = rec_path(sluice, "rec1.flv")
    codecs, duration = probe(path)
    assert codecs == ["aac", "h264"]
    assert abs(duration - span / 1000.0) < 1.0, (duration, span)
    rows = catalog(sluice)
    assert rows and rows[-1][:4] == ("live", "rec1", "rec1.flv", "done"), rows
    assert abs(rows[-1][4] - span) < 1000 and rows[-1][5] == path.stat().st_size
    # onMetaData was rewritten at finalise: duration and filesize are filled in.
    meta = file_meta(path)
    assert abs(meta["duration"] - span / 1000.0) < 1.0
    assert int(meta["filesize"]) == path.stat().st_size
    assert meta["videocodecid"] == 7 and meta["audiocodecid"] == 10 and meta["width"] == 640
    # The tags are whole, and the file starts on a keyframe after the configs.
    tags = rtmp_client.read_flv(path)
    media = [t for t in tags if t.type in (8, 9) and not t.seq_header]
    assert media and any(t.keyframe for t in media[:3])


def _send_tags(pub, sid, tags, speed=4.0):
    """Sends tags as they are (no headers first), paced at `speed` x real time."""
    base, first = time.monotonic(), tags[0].ts
    for t in tags:
        due = base + (t.ts - first) / 1000.0 / speed
        time.sleep(max(0.0, due - time.monotonic()))  # pacing a sender, not a wait for a result
        if t.type == 9:
            pub.send_video(sid, t.ts, t.data)
        elif t.type == 8:
            pub.send_audio(sid, t.ts, t.data)


def test_audio_before_the_first_keyframe_keeps_the_video(sluice_factory, media_tags):
    """A WebRTC publisher's first audio can come a second or more before its
    first keyframe (and video config): the file must still have video (it
    was started as audio-only on the first audio frame, with an audio-only
    FLV header and, in MP4, no video track)."""
    media = [t for t in media_tags if t.type in (8, 9)]
    t0 = media[0].ts
    vcfg = next(t for t in media if t.type == 9 and t.seq_header)
    acfg = next(t for t in media if t.type == 8 and t.seq_header)
    key = next(t for t in media if t.keyframe and t.ts - t0 >= 1200)
    early_audio = [t for t in media if t.type == 8 and not t.seq_header and t.ts < key.ts]
    rest = [t for t in media if not t.seq_header and t.ts >= key.ts]
    assert early_audio and rest
    sluice = start_api_server(sluice_factory)
    for name in ("early1.flv", "early2.mp4"):
        stream = name.split(".")[0]
        mp4 = name.endswith(".mp4")  # mode record makes .flv; the API records MP4
        pub, sid = rtmp_client.open_publisher(HOST, sluice.port, "live", stream, timeout=T(5),
                                              kind="live" if mp4 else "record")
        pub.send_audio(sid, acfg.ts, acfg.data)
        if mp4:
            r = Api(sluice).get("applications/live/streams/%s/action/startrecord" % stream,
                                {"saveas": name})
            assert r.status == 200 and r.data["record_name"] == name, r
        _send_tags(pub, sid, early_audio + [vcfg] + rest[:100])
        pub.close()
        wait_saved(sluice, name)
        codecs, _duration = probe(rec_path(sluice, name))
        assert codecs == ["aac", "h264"], (name, codecs)
    head = rec_path(sluice, "early1.flv").read_bytes()[:5]
    assert head[:3] == b"FLV" and head[4] == 0x05, head


def test_audio_only_publish_is_recorded_from_its_first_frame(sluice, media_tags):
    """Audio with no video at all is recorded whole, also when the publish is
    shorter than the wait for video."""
    audio = [t for t in media_tags if t.type == 8]
    acfg = next(t for t in audio if t.seq_header)
    frames = [t for t in audio if not t.seq_header]
    t0 = frames[0].ts
    for stream, secs in (("aonly1", 4.5), ("aonly2", 1.0)):
        pub, sid = rtmp_client.open_publisher(HOST, sluice.port, "live", stream, timeout=T(5),
                                              kind="record")
        pub.send_audio(sid, acfg.ts, acfg.data)
        sent = [t for t in frames if t.ts - t0 < secs * 1000]
        _send_tags(pub, sid, sent, speed=8.0)
        pub.close()
        wait_saved(sluice, stream + ".flv")
        path = rec_path(sluice, stream + ".flv")
        codecs, duration = probe(path)
        assert codecs == ["aac"]
        assert path.read_bytes()[4] == 0x04
        assert abs(duration - (sent[-1].ts - t0) / 1000.0) < 0.2, (stream, duration)


def test_live_mode_does_not_record(sluice, media_tags):
    publish_for(sluice, "norec", 1, media_tags, kind="live")
    assert not rec_path(sluice, "norec.flv").exists()


def test_record_replaces_and_append_continues(sluice, media_tags):
    span1 = publish_for(sluice, "app1", 3, media_tags, kind="record")
    wait_saved(sluice, "app1.flv")
    span2 = publish_for(sluice, "app1", 3, media_tags, kind="append")
    wait_saved(sluice, "app1.flv", 2)
    path = rec_path(sluice, "app1.flv")
    _codecs, duration = probe(path)
    assert abs(duration - (span1 + span2) / 1000.0) < 1.5, (duration, span1, span2)
    tags = rtmp_client.read_flv(path)
    ts = [t.ts for t in tags if t.type == 9]
    assert ts == sorted(ts), "timestamps must keep increasing across the append"
    assert "appending to" in sluice.log_text()
    # record again: a new file replaces the old one.
    span3 = publish_for(sluice, "app1", 2, media_tags, kind="record")
    wait_saved(sluice, "app1.flv", 3)
    _codecs, duration = probe(path)
    assert abs(duration - span3 / 1000.0) < 1.0


def test_publisher_drop_leaves_a_playable_file(sluice, media_tags):
    pub, sid = rtmp_client.open_publisher(HOST, sluice.port, "live", "drop1", timeout=T(5),
                                          kind="record")
    flv = rtmp_client.FlvPublisher(pub, sid, media_tags).start()
    wait_until(lambda: flv.sent and flv.sent[-1][1] >= 2500, T(10), message="media sent")
    flv.stop()
    pub.sock.close()  # abrupt: no deleteStream, no FCUnpublish
    pub.close()
    wait_saved(sluice, "drop1.flv")
    codecs, duration = probe(rec_path(sluice, "drop1.flv"))
    assert codecs == ["aac", "h264"] and duration > 1.5


def test_app_policy_records_every_stream(sluice_factory, media_tags):
    srv = sluice_factory(config={"apps": {"live": {"record": True}}},
                         env={"SLUICE_APP_LIVE_RECORD_PATTERN": "{name}_%Y"})
    span = publish_for(srv, "pol1", 2, media_tags, kind="live")
    name = "pol1_%s.flv" % time.strftime("%Y", time.gmtime())
    wait_saved(srv, name)
    _codecs, duration = probe(rec_path(srv, name))
    assert abs(duration - span / 1000.0) < 1.0


def start_live(srv, stream, media_tags):
    pub, sid = rtmp_client.open_publisher(HOST, srv.port, "live", stream, timeout=T(5))
    flv = rtmp_client.FlvPublisher(pub, sid, media_tags).start()
    wait_stream_live(srv.port, "live", stream, T(10))
    return pub, flv


def test_api_startrecord_stoprecord(sluice_factory, media_tags):
    srv = start_api_server(sluice_factory)
    api = Api(srv)
    base = "applications/live/streams/api1/action/"
    assert api.get(base + "startrecord").status == 404  # not live
    pub, flv = start_live(srv, "api1", media_tags)
    try:
        r = api.get(base + "startrecord", {"saveas": "saved_%Y%m%d"})
        assert r.status == 200, r
        name = "saved_%s.flv" % time.strftime("%Y%m%d", time.gmtime())
        assert r.data["record_name"] == name and r.data["append"] is False
        assert api.get(base + "startrecord").status == 409  # already recording
        st = api.data("applications/live/streams/api1")
        assert st["is_recording"] is True
        assert st["active_subscribers"] == 0, st  # the recorder is not a subscriber
        wait_until(lambda: rec_path(srv, name).exists() and rec_path(srv, name).stat().st_size
                   > 300000, T(10), message="recording grows")
        r = api.get(base + "stoprecord")
        assert r.status == 200, r
        wait_saved(srv, name)
        assert api.get(base + "stoprecord").status == 409  # nothing to stop
        codecs, duration = probe(rec_path(srv, name))
        assert codecs == ["aac", "h264"] and duration > 1.0
        # Unsafe names are refused with a clear error.
        for bad in ("../escape", "/etc/passwd", "a/../../b", "x\x01y", "a\\b", "..", "./"):
            r = api.get(base + "startrecord", {"saveas": bad})
            assert r.status == 400, (bad, r)
            if "\x01" in bad:
                continue  # control bytes in any query: refused by the HTTP server (400) itself
            assert "streams folder" in r.json["message"]
        # A subfolder inside the app's folder is fine.
        r = api.get(base + "startrecord", {"saveas": "sub/inner", "append": "true"})
        assert r.status == 200 and r.data["record_name"] == "sub/inner.flv", r
        assert r.data["append"] is True
    finally:
        flv.stop()
        pub.close()
    wait_saved(srv, "sub/inner.flv")
    assert rec_path(srv, "sub/inner.flv").exists()
    assert not (srv.data_dir / "escape.flv").exists()


def test_stoprecord_refuses_publish_mode_recordings(sluice_factory, media_tags):
    srv = start_api_server(sluice_factory)
    api = Api(srv)
    pub, sid = rtmp_client.open_publisher(HOST, srv.port, "live", "pm1", timeout=T(5),
                                          kind="record")
    flv = rtmp_client.FlvPublisher(pub, sid, media_tags).start()
    try:
        wait_stream_live(srv.port, "live", "pm1", T(10))
        r = api.get("applications/live/streams/pm1/action/stoprecord")
        assert r.status == 409 and "API" in r.json["message"], r
    finally:
        flv.stop()
        pub.close()
    wait_saved(srv, "pm1.flv")


def test_media_list_delete_and_mediafiles(sluice_factory, media_tags):
    srv = start_api_server(sluice_factory)
    api = Api(srv)
    publish_for(srv, "m1", 1, media_tags, kind="record")
    wait_saved(srv, "m1.flv")
    size = rec_path(srv, "m1.flv").stat().st_size
    media = api.data("applications/live/media")
    assert [m["name"] for m in media] == ["m1.flv"]
    assert media[0]["file_size"] == size and media[0]["last_modified"] > 0
    assert api.data("applications/live/media", {"extension": "mp4"}) == []
    assert [m["name"] for m in api.data("applications/live/media", {"extension": "flv"})] == \
        ["m1.flv"]
    with urllib.request.urlopen("http://%s:%d/live/mediafiles" % (HOST, http_port_of(srv)),
                                timeout=T(5)) as r:
        body = json.loads(r.read())
    assert body["mediafiles"][0]["name"] == "m1.flv"
    assert body["mediafiles"][0]["length"] == size and body["mediafiles"][0]["url"] == "m1.flv"
    r = api.delete("applications/live/media", {"filename": "../sluice.db", "extension": "flv"})
    assert r.status == 400, r
    r = api.delete("applications/live/media", {"filename": "nothere", "extension": "flv"})
    assert r.status == 404, r
    r = api.delete("applications/live/media", {"filename": "m1", "extension": "flv"})
    assert r.status == 200 and r.data["name"] == "m1.flv" and r.data["file_size"] == size, r
    assert not rec_path(srv, "m1.flv").exists()
    assert api.data("applications/live/media") == []


def test_kill9_mid_recording_then_restart_finalises(sluice_factory, media_tags):
    srv = sluice_factory()
    pub, sid = rtmp_client.open_publisher(HOST, srv.port, "live", "crash1", timeout=T(5),
                                          kind="record")
    flv = rtmp_client.FlvPublisher(pub, sid, media_tags).start()
    path = rec_path(srv, "crash1.flv")
    try:
        wait_until(lambda: flv.sent and flv.sent[-1][1] >= 3000 and path.exists(), T(10),
                   message="3 s recorded")
        time.sleep(0.3)  # let the writer catch up with what was sent (no condition to poll)
        srv.stop(sig=signal.SIGKILL)
    finally:
        flv.stop()
        pub.close()
    # The file plays as it is, before any repair.
    _codecs, raw_duration = probe(path)
    assert raw_duration > 1.0
    # A torn last tag (what a power cut could leave): half a tag header.
    with open(path, "ab") as f:
        f.write(b"\x09\x00\x10\x00\x00")
    assert catalog(srv)[-1][3] == "recording"
    srv.start()
    srv.wait_log(r"finalised unfinished recording .*crash1\.flv", T(10))
    row = catalog(srv)[-1]
    assert row[3] == "done" and row[4] > 1000, row
    tags = rtmp_client.read_flv(path)
    end = 13 + sum(11 + len(t.data) + 4 for t in tags)
    assert end == path.stat().st_size, "torn tail cut"
    codecs, duration = probe(path)
    assert codecs == ["aac", "h264"]
    meta = file_meta(path)
    assert abs(meta["duration"] - row[4] / 1000.0) < 0.01
    assert int(meta["filesize"]) == path.stat().st_size


def curl(url, *args):
    """Runs curl; returns (status, headers dict, body bytes)."""
    p = subprocess.run(["curl", "-s", "-D", "-", "--max-time", str(T(20)), url] + list(args),
                       capture_output=True, timeout=T(30))
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers, body


def test_http_download_with_range(sluice_factory, media_tags):
    srv = start_api_server(sluice_factory)
    span = publish_for(srv, "dl1", 14, media_tags, kind="record", speed=4.0)
    wait_saved(srv, "dl1.flv")
    path = rec_path(srv, "dl1.flv")
    data = path.read_bytes()
    assert len(data) > 1 << 20, "the test file must be over the static handler's 1 MB limit"
    url = "http://%s:%d/live/streams/dl1.flv" % (HOST, http_port_of(srv))
    status, headers, body = curl(url)
    assert status == 200 and body == data and headers["content-type"] == "video/x-flv"
    assert headers.get("accept-ranges") == "bytes"
    # Sized answers, not chunked: what curl, players and download managers expect.
    assert headers.get("content-length") == str(len(data)), headers
    assert "transfer-encoding" not in headers, headers
    status, headers, body = curl(url, "-H", "Range: bytes=100-199")
    assert status == 206 and body == data[100:200], (status, headers)
    assert headers["content-range"] == "bytes 100-199/%d" % len(data)
    assert headers.get("content-length") == "100" and "transfer-encoding" not in headers, headers
    status, headers, _ = curl(url, "-I", "-H", "Range: bytes=0-9")
    assert status == 206 and headers.get("content-length") == "10", headers
    # The connection carries the next request after a sized answer (keep-alive).
    p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-o", "/dev/null", "-w",
                        "%{http_code} %{num_connects}\n", "-H", "Range: bytes=0-99", url, url],
                       capture_output=True, text=True, timeout=T(30), check=True)
    assert p.stdout.split("\n")[:2] == ["206 1", "206 0"], p.stdout
    status, headers, body = curl(url, "-H", "Range: bytes=%d-" % (len(data) - 1000))
    assert status == 206 and body == data[-1000:]
    status, headers, body = curl(url, "-H", "Range: bytes=-50")
    assert status == 206 and body == data[-50:]
    status, headers, _ = curl(url, "-H", "Range: bytes=%d-" % len(data))
    assert status == 416 and headers["content-range"] == "bytes */%d" % len(data)
    # Resume a partial download with curl -C.
    part = path.parent / "partial.bin"
    part.write_bytes(data[:300000])
    subprocess.run(["curl", "-s", "-C", "-", "-o", str(part), url], check=True, timeout=T(30))
    assert part.read_bytes() == data
    part.unlink()
    # ffprobe reads (and seeks in) it over HTTP.
    _codecs, duration = probe(url)
    assert abs(duration - span / 1000.0) < 1.0
    for bad in ("/live/streams/..%2fsluice.db", "/live/streams/%2e%2e/x.flv",
                "/live/streams/nothere.flv"):
        status, _, _ = curl("http://%s:%d%s" % (HOST, http_port_of(srv), bad))
        assert status in (400, 403, 404), bad  # refused before or by the recorder


def test_record_events(sluice_factory, media_tags):
    srv = start_api_server(sluice_factory)
    events = EventReader(srv, {"type": "record_start,record_done"})
    try:
        span = publish_for(srv, "ev1", 2, media_tags, kind="record")
        path = str(rec_path(srv, "ev1.flv"))
        start = events.wait_for(lambda e: e["event"] == "record_start", what="record_start")
        assert start["app"] == "live" and start["stream"] == "ev1" and start["path"] == path
        done = events.wait_for(lambda e: e["event"] == "record_done", what="record_done")
        assert done["path"] == path and "reason" not in done, done
        assert abs(done["duration_ms"] - span) < 1000
        assert done["bytes_in"] == rec_path(srv, "ev1.flv").stat().st_size
    finally:
        events.close()


@pytest.fixture
def tiny_disk(tmp_path):
    """A 600 KB tmpfs (needs root; skipped otherwise), unmounted after the server stops
    (requested before sluice_factory, so torn down after it)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mnt)],
                       capture_output=True)
    if p.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % p.stderr.decode().strip())
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_stops_the_recording_not_the_stream(tiny_disk, sluice_factory, media_tags):
    srv = start_api_server(sluice_factory, env={"SLUICE_SERVER_DATA_DIR": str(tiny_disk)})
    srv.data_dir = tiny_disk
    events = EventReader(srv, {"type": "record_done"})
    pub, sid = rtmp_client.open_publisher(HOST, srv.port, "live", "full1", timeout=T(5),
                                          kind="record")
    flv = rtmp_client.FlvPublisher(pub, sid, media_tags).start()
    try:
        done = events.wait_for(lambda e: e["event"] == "record_done", T(30), "record_done")
        assert done["reason"] == "failed" and done["stream"] == "full1", done
        assert "disk full" in srv.log_text()
        # The live stream goes on: the publisher is still connected and a player gets video.
        assert not pub.closed, pub.close_reason
        wait_stream_live(srv.port, "live", "full1", T(10), frames=10)
        # What was written is still a playable file (the partial tag was cut).
        codecs, duration = probe(rec_path(srv, "full1.flv"))
        assert codecs == ["aac", "h264"] and duration > 1.0
        tags = rtmp_client.read_flv(rec_path(srv, "full1.flv"))
        assert 13 + sum(11 + len(t.data) + 4 for t in tags) == \
            os.path.getsize(rec_path(srv, "full1.flv"))
    finally:
        events.close()
        flv.stop()
        pub.close()


# ----------------------------------------------------------------------------
# RTMP playback of recordings (VOD)
# ----------------------------------------------------------------------------

@pytest.fixture
def vod_srv(sluice_factory, media_tags):
    """A server with live/vod1.flv recorded (about 8 s of media, sent at 4x)."""
    srv = sluice_factory()
    srv.vod_span = publish_for(srv, "vod1", 8, media_tags, kind="record", speed=4.0)
    wait_saved(srv, "vod1.flv")
    srv.vod_meta = file_meta(rec_path(srv, "vod1.flv"))
    return srv


def test_rtmpdump_plays_a_recording_in_real_time(vod_srv, tmp_path):
    out = tmp_path / "out.flv"
    t0 = time.monotonic()
    p = subprocess.run(["rtmpdump", "-q", "-r", "rtmp://%s:%d/live/vod1.flv" % (HOST, vod_srv.port),
                        "-o", str(out)], capture_output=True, timeout=T(60))
    elapsed = time.monotonic() - t0
    assert p.returncode == 0, p.stderr[-2000:]
    codecs, duration = probe(out)
    assert codecs == ["aac", "h264"]
    assert abs(duration - vod_srv.vod_meta["duration"]) < 0.5, duration
    # Paced at real time (sent up to half a second ahead), not dumped at once.
    assert elapsed > vod_srv.vod_meta["duration"] - 1.5, elapsed
    assert "recording played to the end" in vod_srv.log_text()


def test_rtmpdump_start_seeks(vod_srv, tmp_path):
    out = tmp_path / "out.flv"
    p = subprocess.run(["rtmpdump", "-q", "-r", "rtmp://%s:%d/live/vod1" % (HOST, vod_srv.port),
                        "--start", "4", "-o", str(out)], capture_output=True, timeout=T(60))
    assert p.returncode in (0, 2), p.stderr[-2000:]
    total = vod_srv.vod_meta["duration"]
    # The media span received (the metadata's duration is the whole file's).
    ts = [t.ts for t in rtmp_client.read_flv(out) if t.type == 9 and not t.seq_header]
    duration = (ts[-1] - ts[0]) / 1000.0
    # From the keyframe at or before 4 s (keyframes every 2 s), to the end.
    assert total - 4 - 0.1 < duration < total - 2 + 0.5, (duration, total)
    assert "from 4000 ms" in vod_srv.log_text()


def test_ffmpeg_reads_a_recording_over_rtmp(vod_srv, tmp_path):
    out = tmp_path / "ff.flv"
    p = subprocess.run(["ffmpeg", "-v", "error", "-y", "-i",
                        "rtmp://%s:%d/live/flv:vod1" % (HOST, vod_srv.port),
                        "-c", "copy", str(out)], capture_output=True, timeout=T(60))
    assert p.returncode == 0, p.stderr[-2000:]
    codecs, duration = probe(out)
    assert codecs == ["aac", "h264"] and abs(duration - vod_srv.vod_meta["duration"]) < 0.6


def test_vod_statuses_pause_seek_complete(vod_srv):
    c = rtmp_client.RtmpClient(HOST, vod_srv.port, timeout=T(5), name="vod-player")
    try:
        assert c.connect("live").ok
        sid = c.create_stream()
        c.play(sid, "vod1.flv", start=0)
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
        # After the seek, frames carry the file's timeline from the keyframe at/before 6 s.
        c.wait_for(lambda: any(m.ts >= 5900 for m in c.video_frames()), T(5), "frames after 6 s")
        c.wait_for(lambda: any(v and v[0] == "onPlayStatus" and
                               v[1].get("code") == "NetStream.Play.Complete"
                               for _t, v in c.data_messages), T(15), "Play.Complete")
        assert "NetStream.Play.Stop" in c.status_codes()
    finally:
        c.close()


def test_live_only_play_does_not_get_the_recording(vod_srv):
    c, _sid = rtmp_client.open_player(HOST, vod_srv.port, "live", "vod1", timeout=T(5))
    try:
        time.sleep(1.0)  # a live-only play (start -2 here) waits for a publisher: no frames
        assert not c.video_frames()
    finally:
        c.close()


# ----------------------------------------------------------------------------
# the cleaner (src/modules/cleaner)
# ----------------------------------------------------------------------------

def make_old(path, size, age_s):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00" + b"\x00" * (size - 13))
    t = time.time() - age_s
    os.utime(path, (t, t))


def test_cleaner_by_age_spares_busy_and_pending_upload(sluice_factory, media_tags):
    srv = start_api_server(sluice_factory, env={"SLUICE_APP_LIVE_RECORD_MAX_AGE": "1h",
                                                "SLUICE_CLEANER_INTERVAL": "1s"})
    streams = srv.data_dir / "live" / "streams"
    # The upload row is committed before its file exists: a sweep (every second, on
    # the thread pool) that finds the file must also find the row.
    db = sqlite3.connect(str(srv.data_dir / "sluice.db"), timeout=T(5))
    db.execute("CREATE TABLE IF NOT EXISTS upload_queue (file TEXT, state TEXT)")
    db.execute("INSERT INTO upload_queue (file, state) VALUES (?, 'pending')",
               (str(streams / "pending.flv"),))
    db.commit()
    db.close()
    make_old(streams / "pending.flv", 1000, 7200)
    make_old(streams / "young.flv", 1000, 60)
    make_old(streams / "hls" / "seg.flv", 1000, 7200)  # the HLS writer's folder: not ours
    make_old(streams / "old1.flv", 1000, 7200)
    make_old(streams / "room1" / "old2.flv", 1000, 7200)
    events = EventReader(srv, {"type": "record_deleted"})
    pub, sid = rtmp_client.open_publisher(HOST, srv.port, "live", "busy1", timeout=T(5),
                                          kind="record")
    flv = rtmp_client.FlvPublisher(pub, sid, media_tags).start()
    try:
        busy = streams / "busy1.flv"
        wait_until(busy.exists, T(10), message="busy1.flv")
        os.utime(busy, (time.time() - 7200,) * 2)  # old, but being written
        got = [events.wait_for(lambda e, n=n: e["path"].endswith(n), T(10), n)
               for n in ("old1.flv", "old2.flv")]
        assert all(e["reason"] == "age" and e["app"] == "live" and e["bytes_in"] == 1000
                   for e in got), got
        time.sleep(2.5)  # two more sweeps: nothing else may go (no condition to poll)
        assert busy.exists() and (streams / "young.flv").exists()
        assert (streams / "pending.flv").exists() and (streams / "hls" / "seg.flv").exists()
        assert len(events.snapshot()) == 2, events.snapshot()
    finally:
        events.close()
        flv.stop()
        pub.close()


def test_cleaner_keeps_files_when_the_upload_queue_cannot_be_read(sluice_factory):
    """An upload queue the server cannot read (here: a table without its state
    column) says nothing about what waits for upload: the cleaner keeps every
    file it would have asked about, and deletes nothing on a guess."""
    srv = start_api_server(sluice_factory, env={"SLUICE_APP_LIVE_RECORD_MAX_AGE": "1h",
                                                "SLUICE_CLEANER_INTERVAL": "1s"})
    streams = srv.data_dir / "live" / "streams"
    db = sqlite3.connect(str(srv.data_dir / "sluice.db"), timeout=T(5))
    db.execute("CREATE TABLE upload_queue (file TEXT)")
    db.commit()
    db.close()
    make_old(streams / "unknown.flv", 1000, 7200)
    events = EventReader(srv, {"type": "record_deleted"})
    try:
        time.sleep(2.5)  # two sweeps at least: nothing may go (no condition to poll)
        assert (streams / "unknown.flv").exists()
        assert events.snapshot() == [], events.snapshot()
    finally:
        events.close()


def test_cleaner_by_quota_oldest_first(sluice_factory):
    srv = start_api_server(sluice_factory, env={"SLUICE_APP_LIVE_RECORD_MAX_BYTES": "1MB",
                                                "SLUICE_CLEANER_INTERVAL": "1s"})
    streams = srv.data_dir / "live" / "streams"
    for i, name in enumerate(("a.flv", "b.flv", "c.flv")):
        make_old(streams / name, 600 * 1024, 300 - i * 100)  # a oldest
    events = EventReader(srv, {"type": "record_deleted"})
    try:
        events.wait_for(lambda e: e["path"].endswith("b.flv"), T(10), "b deleted")
        names = [pathlib.Path(e["path"]).name for e in events.snapshot()]
        assert names == ["a.flv", "b.flv"] and all(
            e["reason"] == "quota" for e in events.snapshot())
        assert (streams / "c.flv").exists() and not (streams / "a.flv").exists()
        assert "cleaner: deleted" in srv.log_text()
    finally:
        events.close()


def test_slow_disk_drops_to_keyframes_not_the_stream(sluice_factory, media_tags):
    """A disk slower than the stream (test builds: a sleep per tag write) with a small
    recorder.queue_max: frames are dropped up to the next keyframe, with log lines; the
    file stays playable and the live stream is untouched."""
    srv = sluice_factory(env={"SL_TEST_RECORDER_WRITE_DELAY_MS": "30",
                              "SLUICE_RECORDER_QUEUE_MAX": "64KB"})
    # The recorder logs the delay when it starts, which is after the port opens.
    try:
        srv.wait_log(r"test write delay", T(3))
    except AssertionError:
        pytest.skip("needs a build with -DSL_FAULT_INJECTION=ON")
    pub, sid = rtmp_client.open_publisher(HOST, srv.port, "live", "slow1", timeout=T(5),
                                          kind="record")
    flv = rtmp_client.FlvPublisher(pub, sid, media_tags).start()
    try:
        srv.wait_log(r"disk too slow for slow1\.flv", T(15))
        srv.wait_log(r"slow1\.flv resumes at a keyframe", T(15))
        wait_stream_live(srv.port, "live", "slow1", T(10), frames=25)  # players unaffected
        assert not pub.closed
    finally:
        flv.stop()
        pub.close()
    wait_saved(srv, "slow1.flv")
    codecs, duration = probe(rec_path(srv, "slow1.flv"))
    assert codecs == ["aac", "h264"] and duration > 1.0
    # After each gap the video resumes on a keyframe.
    tags = [t for t in rtmp_client.read_flv(rec_path(srv, "slow1.flv"))
            if t.type == 9 and not t.seq_header]
    assert tags[0].keyframe
    gaps = [b for a, b in zip(tags, tags[1:]) if b.ts - a.ts > 200]
    assert gaps and all(b.keyframe for b in gaps), [(b.ts, b.keyframe) for b in gaps]
