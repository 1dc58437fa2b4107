#!/usr/bin/python3
"""A simulated IP camera for tests: GStreamer's RTSP server (Debian's
gir1.2-gst-rtsp-server-1.0 + python3-gi) serving `videotestsrc ! x264enc ! rtph264pay`
(and AAC audio unless --no-audio) at rtsp://127.0.0.1:PORT/cam.

Usage: rtsp_camera.py PORT [--no-audio]. Prints "ready" once listening."""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main():
    port = sys.argv[1]
    audio = "--no-audio" not in sys.argv
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    launch = ("( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=25/1 "
              "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bitrate=400 "
              "! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=1")
    if audio:
        launch += (" audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=44100,channels=1 "
                   "! avenc_aac ! rtpmp4gpay name=pay1 pt=97")
    launch += " )"
    factory.set_launch(launch)
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        print("cannot listen", flush=True)
        sys.exit(1)
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
