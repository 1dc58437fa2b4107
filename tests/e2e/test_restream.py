"""Restreaming (modules/restream, docs/restream.md): pulls from cameras and servers,
pushes out to other servers, with real peers: a camera simulated by GStreamer's RTSP
server (tests/e2e/rtsp_camera.py), a second sluice, nginx-rtmp when installed,
srt-live-transmit / ffmpeg as an SRT listener. Lean: every wait polls a condition."""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from api_helpers import Api, api_config, http_port_of
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
