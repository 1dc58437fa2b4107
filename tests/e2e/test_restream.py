"""Restreaming (modules/restream, docs/restream.md): pulls from cameras and servers,
pushes out to other servers, with real peers: a camera simulated by GStreamer's RTSP
server (tests/e2e/rtsp_camera.py), a second sluice, nginx-rtmp when installed,
srt-live-transmit / ffmpeg as an SRT listener. Lean: every wait polls a condition."""
import json
import os
import shutil
import subprocess

import pytest

from api_helpers import TOKEN, Api, EventReader, api_config, assert_error, http_port_of
from conftest import HOST, T, free_port, port_open, wait_stream_live, wait_until, ffprobe_streams
import rtmp_client

E2E = os.path.dirname(os.path.abspath(__file__))


def probe_video(url, timeout=None):
    """ffprobe's streams of a live URL (None when it cannot read one yet)."""
    try:
        return ffprobe_streams(url, timeout=timeout or T(15), extra=["-rw_timeout", "5000000"]
                               if url.startswith("rtmp") else [])
    except (AssertionError, subprocess.TimeoutExpired):
        return None


def wait_probe(url, codec="h264", timeout=None):
    got = {}

    def ok():
        s = probe_video(url)
        if s and any(x.get("codec_name") == codec for x in s):
            got["s"] = s
            return True
        return False

    wait_until(ok, timeout or T(30), 0.3, "%s readable with %s" % (url, codec))
    return got["s"]


def rs_config(pull="", push="", extra=None):
    cfg = api_config({"restream": {"pull": json.dumps(pull), "push": json.dumps(push),
                                   "retry_min": "200ms", "retry_max": "1s",
                                   "read_timeout": "2s", "open_timeout": "5s"}})
    for k, v in (extra or {}).items():
        cfg[k] = dict(cfg.get(k, {}), **v)
    return cfg


# ----------------------------------------------------------------------------
# push
# ----------------------------------------------------------------------------

def test_push_to_second_sluice_and_api(sluice_factory, ffmpeg_publish):
    """A configured push forwards live/s1 to another sluice over RTMP; the API lists it
    with its counters, creates a second push (an app-wide rule), and deletes it."""
    dst = sluice_factory(name="dst")
    src = sluice_factory(name="src", config=rs_config(
        push="live/s1 rtmp://%s:%d/live/fromsrc" % (HOST, dst.port)))
    events = EventReader(src, {"type": "push_up,push_down"})
    ffmpeg_publish(src.url("live", "s1"))
    wait_stream_live(dst.port, "live", "fromsrc", T(20))
    streams = wait_probe(dst.url("live", "fromsrc"))
    assert {s["codec_name"] for s in streams} >= {"h264", "aac"}, streams
    api = Api(src)
    pushes = api.data("restream/pushes")
    assert len(pushes) == 1 and pushes[0]["origin"] == "config", pushes
    outs = pushes[0]["outputs"]
    wait_until(lambda: api.data("restream/pushes")[0]["outputs"][0]["bytes"] > 10000, T(10),
               message="push bytes counted")
    assert outs[0]["state"] == "up" and outs[0]["stream"] == "live/s1", outs
    ev = events.wait_for(lambda e: e["event"] == "push_up", what="push_up")
    assert ev["app"] == "live" and ev["stream"] == "s1", ev
    events.close()
    # The stream key (last path segment) is never shown.
    assert "fromsrc" not in pushes[0]["url"], pushes[0]
    # API: an app-wide rule with {stream}
    r = api.request("POST", "restream/pushes",
                    body={"app": "live", "stream": "*",
                          "url": "rtmp://%s:%d/other/{stream}_copy" % (HOST, dst.port)})
    assert r.status == 200, r
    pid = r.data["id"]
    wait_stream_live(dst.port, "other", "s1_copy", T(20))
    assert api.data("restream/pushes/" + pid)["outputs"][0]["stream"] == "live/s1"
    r = api.delete("restream/pushes/" + pid)
    assert r.status == 200, r
    assert api.get("restream/pushes/" + pid).status == 404
    assert len(api.data("restream/pushes")) == 1
    bad = api.request("POST", "restream/pushes", body={"app": "live", "stream": "x",
                                                        "url": "http://example.com/"})
    assert bad.status == 400, bad


# ----------------------------------------------------------------------------
# pull
# ----------------------------------------------------------------------------

def start_camera(procs, port, audio=True):
    """The GStreamer RTSP camera (rtsp_camera.py) on port; waits until it listens."""
    try:
        import gi  # noqa: F401
        gi.require_version("GstRtspServer", "1.0")
    except (ImportError, ValueError) as e:
        pytest.skip("GStreamer RTSP server bindings missing (gir1.2-gst-rtsp-server-1.0): %s" % e)
    cmd = ["/usr/bin/python3", os.path.join(E2E, "rtsp_camera.py"), str(port)]
    if not audio:
        cmd.append("--no-audio")
    p = procs.start(cmd, "camera")
    wait_until(lambda: "ready" in procs.log_of(p) or p.poll() is not None, T(15), 0.05,
               "camera to listen")
    assert p.poll() is None, procs.log_of(p)
    return p


def video_ts(c, since=0):
    return [m.ts for m in c.media[since:] if m.is_video and not m.seq_header]


def pull_of(api, app, stream):
    return api.data("restream/pulls/%s/%s" % (app, stream))


def test_pull_rtsp_camera_restart(sluice_factory, procs, tmp_path):
    """A camera pulled over RTSP plays over RTMP and HLS; killed and restarted mid-stream,
    the pull reconnects and the RTMP player that stayed connected keeps getting frames
    with timestamps that never go back."""
    cam_port = free_port()
    start_camera(procs, cam_port)
    srv = sluice_factory(config=rs_config(pull="live/cam rtsp://%s:%d/cam" % (HOST, cam_port)))
    api = Api(srv)
    events = EventReader(srv, {"type": "pull_up,pull_down"})
    wait_stream_live(srv.port, "live", "cam", T(20))
    c, _ = rtmp_client.open_player(HOST, srv.port, "live", "cam", timeout=T(5))
    try:
        c.wait_video_frames(10, T(10))
        # HLS of the pulled stream
        hls = "http://%s:%d/live/cam.m3u8" % (HOST, http_port_of(srv))
        wait_probe(hls, "h264", T(30))
        p = pull_of(api, "live", "cam")
        assert p["state"] == "up" and p["mode"] == "always" and "h264" in p["source_info"], p
        # The camera dies: the pull goes down, the player stays.
        cams = [x for x, _ in procs.items]
        procs.stop(cams[-1])
        wait_until(lambda: pull_of(api, "live", "cam")["state"] == "down", T(15), 0.2,
                   "pull down")
        start_camera(procs, cam_port)
        wait_until(lambda: pull_of(api, "live", "cam")["state"] == "up", T(20), 0.2, "pull up")
        since = len(c.media)
        c.wait_video_frames(25, T(15), since=since)
        ts = video_ts(c)
        assert all(b >= a for a, b in zip(ts, ts[1:])), "timestamps went back: %r" % ts
        p = pull_of(api, "live", "cam")
        assert p["reconnects"] >= 1 and p["downs"] >= 1, p
        # pull_up, pull_down (once for the outage, however many retries), pull_up
        events.wait_for(lambda e: e["event"] == "pull_down", what="pull_down")
        evs = [e["event"] for e in events.snapshot() if e["stream"] == "cam"]
        assert evs[:3] == ["pull_up", "pull_down", "pull_up"], evs
    finally:
        c.close()
        events.close()
    assert "pull down" in srv.log_text() and "pull up" in srv.log_text()


def test_pull_standby_covers_gap_and_switch(sluice_factory, procs, media_src, secrets):
    """With no camera, the standby file feeds the stream; when the camera comes up the
    stream switches to it; the API forces the standby back; the player stays connected
    throughout with monotonic timestamps. The camera's password never reaches the log
    or the API (conftest checks the log for registered secrets)."""
    cam_port = free_port()
    secrets("Cam3raPassw0rd")
    srv = sluice_factory(config=rs_config(
        pull="live/cam rtsp://admin:Cam3raPassw0rd@%s:%d/cam standby=%s"
             % (HOST, cam_port, media_src)))
    api = Api(srv)
    wait_stream_live(srv.port, "live", "cam", T(20))
    c, _ = rtmp_client.open_player(HOST, srv.port, "live", "cam", timeout=T(5))
    try:
        c.wait_video_frames(10, T(10))
        p = pull_of(api, "live", "cam")
        assert p["on_standby"] is True and "Cam3raPassw0rd" not in json.dumps(p), p
        start_camera(procs, cam_port, audio=False)
        wait_until(lambda: not pull_of(api, "live", "cam")["on_standby"], T(30), 0.2,
                   "switch to the live camera")
        since = len(c.media)
        c.wait_video_frames(10, T(10), since=since)
        r = api.request("POST", "restream/pulls/live/cam/source", body={"source": "standby"})
        assert r.status == 200 and r.data["source"] == "standby", r
        wait_until(lambda: pull_of(api, "live", "cam")["on_standby"], T(15), 0.2,
                   "forced standby")
        since = len(c.media)
        c.wait_video_frames(10, T(10), since=since)
        ts = video_ts(c)
        assert all(b >= a for a, b in zip(ts, ts[1:])), "timestamps went back"
        r = api.request("POST", "restream/pulls/live/cam/source", body={"source": "bogus"})
        assert r.status == 400, r
    finally:
        c.close()


def test_pull_on_demand_from_sluice(sluice_factory, ffmpeg_publish):
    """An on_demand pull (RTMP from another sluice) is idle until the first player,
    which gets the stream at once (HTTP-FLV and RTMP), and stops once no player is left;
    the API creates and deletes a pull."""
    origin = sluice_factory(name="origin")
    ffmpeg_publish(origin.url("live", "s"))
    wait_stream_live(origin.port, "live", "s", T(20))
    edge = sluice_factory(name="edge", config=rs_config(
        pull="live/od rtmp://%s:%d/live/s mode=on_demand idle_timeout=2s" % (HOST, origin.port),
        extra={"restream": {"max_pulls": 2}}))
    api = Api(edge)
    assert pull_of(api, "live", "od")["state"] == "idle"
    flv = "http://%s:%d/live/od.flv" % (HOST, http_port_of(edge))
    streams = ffprobe_streams(flv, timeout=T(20))
    assert {s["codec_name"] for s in streams} >= {"h264", "aac"}, streams
    wait_until(lambda: pull_of(api, "live", "od")["state"] == "idle", T(15), 0.2,
               "idle stop")
    assert "pull stopped: idle" in edge.log_text()
    # API-created pull (always): plays over RTMP, then deleted.
    r = api.request("POST", "restream/pulls", body={
        "app": "live", "stream": "api1", "url": "rtmp://%s:%d/live/s" % (HOST, origin.port)})
    assert r.status == 200 and r.data["origin"] == "api", r
    wait_stream_live(edge.port, "live", "api1", T(20))
    assert api.request("POST", "restream/pulls", body={
        "app": "live", "stream": "api1", "url": "rtmp://x/y"}).status == 409
    # restream.max_pulls (2: od and api1) refuses a third
    assert api.request("POST", "restream/pulls", body={
        "app": "live", "stream": "api2", "url": "rtmp://x/y"}).status == 429
    assert api.delete("restream/pulls/live/api1").status == 200
    assert api.get("restream/pulls/live/api1").status == 404
    assert api.request("POST", "restream/pulls", body={
        "app": "live", "stream": "x", "url": "file:///etc/passwd"}).status == 400


def test_push_srt_to_listener(sluice_factory, procs, ffmpeg_publish, tmp_path):
    """A push over SRT (MPEG-TS) reaches an srt-live-transmit listener; the file it
    writes holds H.264 and AAC."""
    if not shutil.which("srt-live-transmit"):
        pytest.skip("srt-live-transmit not installed (srt-tools)")
    srt_port = free_port()
    out = tmp_path / "out.ts"
    procs.start(["srt-live-transmit", "-q", "srt://:%d?mode=listener" % srt_port,
                 "file://con"], "srt-listener", stdin=subprocess.DEVNULL)
    # srt-live-transmit writes the TS to stdout: the helper's log file is the capture.
    lst = [p for p, _ in procs.items][-1]
    src = sluice_factory(config=rs_config(push="live/s1 srt://%s:%d" % (HOST, srt_port)))
    ffmpeg_publish(src.url("live", "s1"))
    api = Api(src)
    wait_until(lambda: (api.data("restream/pushes")[0]["outputs"] or [{}])[0].get("bytes", 0)
               > 200000, T(30), 0.2, "SRT push bytes")
    shutil.copy(lst.log_path, out)
    streams = ffprobe_streams(out, timeout=T(20))
    assert {s["codec_name"] for s in streams} >= {"h264", "aac"}, streams
    assert api.data("restream/pushes")[0]["type"] == "srt-push"


def test_push_to_nginx_rtmp(sluice_factory, procs, ffmpeg_publish, tmp_path):
    """A push to nginx-rtmp (nginx-light + libnginx-mod-rtmp, bench deps) arrives there."""
    mod = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
    if not shutil.which("nginx") or not os.path.exists(mod):
        pytest.skip("nginx with the RTMP module is not installed (nginx-light, "
                    "libnginx-mod-rtmp)")
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text("""load_module %s;
daemon off; master_process off; pid %s/nginx.pid; error_log %s/error.log info;
events { worker_connections 64; }
rtmp { server { listen 127.0.0.1:%d; application live { live on; } } }
""" % (mod, tmp_path, tmp_path, port))
    procs.start(["nginx", "-p", str(tmp_path), "-c", str(conf)], "nginx")
    wait_until(lambda: port_open(port), T(10), 0.05, "nginx listening")
    src = sluice_factory(config=rs_config(push="live/* rtmp://%s:%d/live" % (HOST, port)))
    ffmpeg_publish(src.url("live", "tonginx"))
    streams = wait_probe("rtmp://%s:%d/live/tonginx" % (HOST, port), "h264", T(30))
    assert {s["codec_name"] for s in streams} >= {"h264", "aac"}, streams


def test_pull_srt_and_hls(sluice_factory, procs, media_src, ffmpeg_publish):
    """Pulls from an SRT listener (ffmpeg, MPEG-TS: Annex B H.264 and ADTS AAC turned into
    AVCC/raw AAC) and from an HLS playlist (another sluice's) play over RTMP."""
    srt_port = free_port()
    procs.start(["ffmpeg", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(media_src),
                 "-c", "copy", "-f", "mpegts", "srt://%s:%d?mode=listener" % (HOST, srt_port)],
                "srt-source")
    origin = sluice_factory(name="origin")
    ffmpeg_publish(origin.url("live", "h"))
    hls = "http://%s:%d/live/h.m3u8" % (HOST, http_port_of(origin))
    wait_probe(hls, "h264", T(30))
    srv = sluice_factory(config=rs_config(pull="live/fromsrt srt://%s:%d\nlive/fromhls %s"
                                          % (HOST, srt_port, hls)))
    for name in ("fromsrt", "fromhls"):
        streams = wait_probe(srv.url("live", name), "h264", T(30))
        assert {s["codec_name"] for s in streams} >= {"h264", "aac"}, (name, streams)
    # The pull is the stream's publisher, a client of protocol "restream"; kicked
    # through the API, an always pull starts again (the HLS one: ffmpeg's SRT listener
    # ends with its first caller).
    api = Api(srv)
    pub = api.data("applications/live/streams/fromhls")["publisher"]
    assert pub["protocol"] == "restream", pub
    assert api.delete("applications/live/clients/" + pub["id"]).status == 200

    def restarted():
        r = api.get("applications/live/streams/fromhls")
        return r.status == 200 and (r.data.get("publisher") or {}).get("id") not in (None, pub["id"])

    wait_until(restarted, T(15), 0.2, "kicked pull restarted")
    wait_stream_live(srv.port, "live", "fromhls", T(20))


def test_push_to_stalled_destination_never_blocks(sluice_factory, ffmpeg_publish):
    """A destination that accepts the TCP connection and then never answers: the push's
    bounded queue drops to keyframes (counted) while players of the stream keep getting
    frames; the connect times out and is retried (errors counted)."""
    import socket
    stalled = socket.socket()
    stalled.bind((HOST, 0))
    stalled.listen(16)
    port = stalled.getsockname()[1]
    try:
        src = sluice_factory(config=rs_config(
            push="live/s1 rtmp://%s:%d/live/x" % (HOST, port),
            extra={"restream": {"push_queue_bytes": "64k", "open_timeout": "2s"}}))
        ffmpeg_publish(src.url("live", "s1"))
        api = Api(src)

        def out():
            return (api.data("restream/pushes")[0]["outputs"] or [{}])[0]

        wait_until(lambda: out().get("dropped", 0) > 0, T(20), 0.2, "frames dropped")
        c, _ = rtmp_client.open_player(HOST, src.port, "live", "s1", timeout=T(5))
        try:
            c.wait_video_frames(25, T(10))
        finally:
            c.close()
        wait_until(lambda: out().get("errors", 0) >= 1, T(20), 0.2, "connect timed out")
        o = out()
        assert o["state"] != "up" and o["bytes"] == 0, o
    finally:
        stalled.close()


# ----------------------------------------------------------------------------
# Red5's restreamer servlet (POST /{app}/restream)
# ----------------------------------------------------------------------------

def servlet(srv, body, token=TOKEN, app="live"):
    """POSTs a servlet body (a dict, or raw bytes) to /{app}/restream."""
    return Api(srv, token=token).request("POST", "/%s/restream" % app, body=body)


def test_restreamer_servlet(sluice_factory, ffmpeg_publish):
    """Red5's servlet shape: create an rtmp-push (URL from host/port/application/streamName)
    to a second sluice, which plays it; a pull (type rtmp) from that sluice back; list
    shows both with their guids; kill stops them (the destination's stream goes away);
    token, body and action errors answer JSON with their status."""
    dst = sluice_factory(name="dst", config=api_config())
    src = sluice_factory(name="src", config=rs_config())
    ffmpeg_publish(src.url("live", "s1"))
    push = {"guid": "", "context": "live", "name": "s1", "level": 0,
            "parameters": {"action": "create", "type": "rtmp-push", "host": HOST,
                           "port": dst.port, "application": "live", "streamName": "viasv"}}
    # Access is the Server API's: no token, a wrong one.
    assert_error(servlet(src, push, token=None), 401, "accessToken")
    assert_error(servlet(src, push, token="wrong-token-000000"), 401)
    assert_error(servlet(src, b"{not json"), 400, "JSON")
    assert_error(servlet(src, {"parameters": {"action": "create", "type": "udp-magic"},
                               "name": "s1"}), 400, "type")
    assert_error(servlet(src, {"name": "s1", "parameters": {
        "action": "create", "type": "rtsp", "url": "rtmp://%s/live/x" % HOST}}), 400, "scheme")
    assert_error(servlet(src, {"parameters": {"action": "update"}}), 400, "update")
    assert_error(servlet(src, b"x" * 20000), 413)
    assert_error(Api(src).get("/live/restream"), 405)

    r = servlet(src, push)
    assert r.status == 200, r
    guid = r.data["guid"]
    assert len(guid) == 36 and r.data["type"] == "rtmp-push", r.data
    wait_stream_live(dst.port, "live", "viasv", T(20))
    assert {s["codec_name"] for s in wait_probe(dst.url("live", "viasv"))} >= {"h264", "aac"}

    # A pull (ingest) through the servlet: type rtmp from the second sluice.
    pull = {"guid": "cam-1", "context": "/live/", "name": "back",
            "parameters": {"action": "create", "type": "rtmp",
                           "url": "rtmp://%s:%d/live/viasv" % (HOST, dst.port)}}
    r = servlet(src, pull)
    assert r.status == 200 and r.data["guid"] == "cam-1" and r.data["kind"] == "pull", r
    assert_error(servlet(src, pull), 409, "guid")
    wait_stream_live(src.port, "live", "back", T(20))

    # list: context defaults to the URL's app; another app lists nothing.
    def listed():
        return {x["guid"]: x for x in servlet(src, {"parameters": {"action": "list"}}).data}
    wait_until(lambda: listed()[guid]["state"] == "up", T(10), 0.2, "push listed up")
    items = listed()
    assert items[guid]["kind"] == "push" and items[guid]["name"] == "s1", items
    assert "viasv" not in items[guid]["url"], items  # the stream key stays hidden
    assert items["cam-1"]["type"] == "rtmp" and items["cam-1"]["state"] == "up", items
    assert servlet(src, {"context": "other", "parameters": {"action": "list"}}).data == []

    # kill by guid: the push stops, so the destination's stream goes away.
    assert Api(dst).get("applications/live/streams/viasv").status == 200
    r = servlet(src, {"guid": guid, "parameters": {"action": "kill"}})
    assert r.status == 200 and r.data["killed"] == [guid], r
    wait_until(lambda: Api(dst).get("applications/live/streams/viasv").status == 404, T(10),
               0.2, "the pushed stream gone from the destination")
    # kill by context and name
    r = servlet(src, {"context": "live", "name": "back", "parameters": {"action": "kill"}})
    assert r.status == 200 and r.data["killed"] == ["cam-1"], r
    assert listed() == {}
    assert_error(servlet(src, {"guid": guid, "parameters": {"action": "kill"}}), 404)
