"""App and room lifetimes on the event stream (GET /api/v1/events): ffmpeg publishes
to live/room1/s1, a reader that asks for them by name sees app_start (app "live"), then
room_start ("live/room1"), then the publish; after the publisher leaves, room_stop and
then app_stop, every one carrying the publisher's session. A reader that names no type
gets the stream as before this event type existed: no app or room event.
"""

from api_helpers import EventReader, start_api_server, start_publisher
from conftest import T

SCOPE_TYPES = "app_start,app_stop,room_start,room_stop,publish"


def test_app_and_room_start_stop(sluice_factory, procs, media_src):
    srv = start_api_server(sluice_factory)
    scoped = EventReader(srv, {"type": SCOPE_TYPES})
    everything = EventReader(srv)
    try:
        pub = start_publisher(procs, media_src, srv, "live/room1", "s1", wait=False)
        publish = scoped.wait_for(lambda e: e["event"] == "publish", T(15), "publish")
        procs.stop(pub)
        scoped.wait_for(lambda e: e["event"] == "app_stop", T(15), "app_stop")
        everything.wait_for(lambda e: e["event"] == "disconnect"
                            and e["session"] == publish["session"], T(15), "disconnect")

        seq = [(e["event"], e["app"]) for e in scoped.snapshot()]
        assert seq == [("app_start", "live"), ("room_start", "live/room1"),
                       ("publish", "live/room1"), ("room_stop", "live/room1"),
                       ("app_stop", "live")], seq
        for e in scoped.snapshot():
            assert e["session"] == publish["session"] and e["protocol"] == "rtmp", e
        kinds = {e["event"] for e in everything.snapshot()}
        assert "publish" in kinds and not kinds & {"app_start", "app_stop", "room_start",
                                                    "room_stop"}, kinds
    finally:
        scoped.close()
        everything.close()
