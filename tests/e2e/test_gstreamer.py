"""GStreamer as publisher: both RTMP sinks (librtmp-based rtmpsink and the native
rtmp2sink) publish H.264 + AAC through flvmux; ffprobe and rtmp_client play it."""

import shlex
import shutil
import subprocess

import pytest

import rtmp_client
from conftest import HOST, T, ffprobe_streams, wait_stream_live


def have_element(name):
    if shutil.which("gst-inspect-1.0") is None:
        return False
    return subprocess.run(["gst-inspect-1.0", "--exists", name], timeout=30).returncode == 0


def aac_encoder():
    for enc in ("voaacenc", "avenc_aac"):
        if have_element(enc):
            return enc
    return None


@pytest.mark.parametrize("sink", ["rtmpsink", "rtmp2sink"])
def test_gstreamer_publishes(sluice, procs, sink):
    if shutil.which("gst-launch-1.0") is None or not have_element(sink) \
            or not have_element("x264enc"):
        pytest.skip("gst-launch-1.0 with %s and x264enc not available" % sink)
    stream = "gst_" + sink
    url = sluice.url("live", stream)
    location = url + " live=1" if sink == "rtmpsink" else url
    pipeline = ("videotestsrc is-live=true pattern=ball "
                "! video/x-raw,width=640,height=360,framerate=25/1 ! videoconvert "
                "! x264enc tune=zerolatency key-int-max=50 speed-preset=ultrafast bitrate=800 "
                "! h264parse ! queue ! flvmux streamable=true name=m "
                "! %s location=\"%s\"" % (sink, location))
    enc = aac_encoder()
    if enc:
        pipeline += (" audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample "
                     "! audio/x-raw,rate=44100,channels=2 ! %s bitrate=64000 ! aacparse "
                     "! queue ! m." % enc)
    # -e: on SIGINT at teardown, send EOS so the sink closes cleanly.
    procs.start(["gst-launch-1.0", "-e"] + shlex.split(pipeline), "gst-launch")
    wait_stream_live(sluice.port, "live", stream, T(20), frames=10)

    streams = ffprobe_streams(url, timeout=T(20))
    kinds = {s["codec_type"]: s for s in streams}
    assert kinds.get("video", {}).get("codec_name") == "h264", streams
    assert (kinds["video"].get("width"), kinds["video"].get("height")) == (640, 360), streams
    if enc:
        assert kinds.get("audio", {}).get("codec_name") == "aac", streams

    c, _ = rtmp_client.open_player(HOST, sluice.port, "live", stream, timeout=T(5))
    try:
        c.wait_video_frames(10, T(10))
        assert c.video_frames()[0].keyframe, "player of a GStreamer stream did not start on a keyframe"
    finally:
        c.close()

