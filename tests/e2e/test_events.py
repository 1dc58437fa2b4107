"""The live event stream, GET /api/v1/events (WebSocket): every bus event as one
JSON message, with the filters app=, stream= and type=.

One session of each kind is driven with real clients (ffmpeg publishes, rtmpdump
plays, the player stops, the publisher stops) and the messages are checked for
order (per session and across them) and for their fields.
"""

import pytest

from api_helpers import (EventReader, TOKEN, Api, assert_error, start_api_server, start_player,
                         start_publisher, wait_subscribers)
from conftest import HOST, T, wait_until

PUBLISHER_SEQ = ["connect", "publish", "unpublish", "disconnect"]
PLAYER_SEQ = ["connect", "play", "play_stop", "disconnect"]


@pytest.fixture
def srv(sluice_factory):
    return start_api_server(sluice_factory)


@pytest.fixture
def readers():
    opened = []

    def open_reader(srv, query=None, token=TOKEN):
        r = EventReader(srv, query, token)
        opened.append(r)
        return r

    yield open_reader
    for r in opened:
        r.close()


def by_session(events):
    out = {}
    for e in events:
        out.setdefault(e.get("session"), []).append(e)
    return out


def test_lifecycle_order(srv, readers, procs, media_src):
    ev = readers(srv)
    pub = start_publisher(procs, media_src, srv, wait=False)
    publish = ev.wait_for(lambda e: e["event"] == "publish", what="publish")
    player = start_player(procs, srv)
    play = ev.wait_for(lambda e: e["event"] == "play" and e["session"] != publish["session"]
                       and e.get("stream") == "stream1", what="play")
    procs.stop(player)  # SIGINT: rtmpdump closes its connection
    ev.wait_for(lambda e: e["event"] == "disconnect" and e["session"] == play["session"],
                what="player disconnect")
    procs.stop(pub)
    ev.wait_for(lambda e: e["event"] == "disconnect" and e["session"] == publish["session"],
                what="publisher disconnect")

    events = ev.snapshot()
    sessions = by_session(events)
    pub_events = sessions[publish["session"]]
    play_events = sessions[play["session"]]
    assert [e["event"] for e in pub_events] == PUBLISHER_SEQ, pub_events
    assert [e["event"] for e in play_events] == PLAYER_SEQ, play_events
    # Only the RTMP sessions of this test (and no HTTP connection) produced events.
    # (rtmpdump may probe once more; every extra session must still be complete.)
    assert all(e["protocol"] == "rtmp" for e in events), events

    for e in pub_events + play_events:
        assert e["protocol"] == "rtmp" and e["remote_address"] == HOST, e
        assert e["app"] == "live", e
        assert isinstance(e["id"], int) and isinstance(e["time"], int), e
        assert isinstance(e["remote_port"], int) and e["remote_port"] > 0, e
        if e["event"] != "connect":  # the stream is named after connect
            assert e["stream"] == "stream1", e
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
    times = [e["time"] for e in events]
    assert times == sorted(times), times

    # across sessions: the player came and went while the stream was published
    pos = {(e["session"], e["event"]): i for i, e in enumerate(events)}
    p, q = publish["session"], play["session"]
    assert pos[(p, "publish")] < pos[(q, "connect")]
    assert pos[(q, "disconnect")] < pos[(p, "unpublish")]
    # durations and byte counts are carried on the closing events
    unpub = next(e for e in pub_events if e["event"] == "unpublish")
    assert unpub["bytes_in"] > 0 and unpub["duration_ms"] > 0, unpub
    stop = next(e for e in play_events if e["event"] == "play_stop")
    assert stop["bytes_out"] > 0, stop


def test_filters(srv, readers, procs, media_src):
    api = Api(srv)
    everything = readers(srv)
    only_publish = readers(srv, {"type": "publish"})
    publish_or_stop = readers(srv, {"type": "publish,unpublish"})
    stream_other = readers(srv, {"stream": "other"})
    app_other = readers(srv, {"app": "other"})
    app_live_room = readers(srv, {"app": "live/room1"})
    wait_until(lambda: "sluice_event_watchers 6" in api.get("/metrics").body.decode(), T(5), 0.05,
               "six event watchers")

    p1 = start_publisher(procs, media_src, srv, "live", "stream1", wait=False)
    p2 = start_publisher(procs, media_src, srv, "live", "other", wait=False)
    p3 = start_publisher(procs, media_src, srv, "other", "stream9", wait=False)
    p4 = start_publisher(procs, media_src, srv, "live/room1", "s", wait=False)
    for stream in ("stream1", "other", "stream9", "s"):
        everything.wait_for(lambda e: e["event"] == "publish" and e["stream"] == stream,
                            what="publish " + stream)
    player = start_player(procs, srv, "live", "other")
    wait_subscribers(api, 1, "other")
    for p in (player, p1, p2, p3, p4):
        procs.stop(p)
    n_sessions = 5  # four publishers and the player; nothing else spoke RTMP
    wait_until(lambda: sum(e["event"] == "disconnect" for e in everything.snapshot()) >= n_sessions,
               T(15), 0.05, "every disconnect")
    all_events = everything.snapshot()

    def expected(pred):
        return [(e["event"], e["session"]) for e in all_events if pred(e)]

    def got(reader):
        return [(e["event"], e["session"]) for e in reader.snapshot()]

    def check(reader, pred):
        # the filtered reader gets exactly the matching events, in the same order
        want = expected(pred)
        assert want, "the scenario produced no event for %s" % reader.url
        wait_until(lambda: got(reader) == want, T(5), 0.05,
                   lambda: "%s: %s, expected %s" % (reader.url, got(reader), want))
        return [e for e, _ in want]

    assert check(only_publish, lambda e: e["event"] == "publish") == ["publish"] * 4
    assert {e["stream"] for e in only_publish.snapshot()} == {"stream1", "other", "stream9", "s"}
    assert check(publish_or_stop, lambda e: e["event"] in ("publish", "unpublish")).count(
        "unpublish") == 4
    # stream=other: its publisher's and its player's events once the name is known
    # (connect carries no stream yet)
    assert sorted(check(stream_other, lambda e: e.get("stream") == "other")) == sorted(
        ["publish", "unpublish", "disconnect", "play", "play_stop", "disconnect"])
    assert check(app_other, lambda e: e.get("app") == "other") == PUBLISHER_SEQ
    # app= is a scope prefix: live/room1 matches the room's sessions, not live's
    assert check(app_live_room, lambda e: e.get("app") == "live/room1") == PUBLISHER_SEQ


def test_app_prefix_covers_rooms(srv, readers, procs, media_src):
    live = readers(srv, {"app": "live", "type": "publish"})
    everything = readers(srv)
    start_publisher(procs, media_src, srv, "live/room1", "s", wait=False)
    start_publisher(procs, media_src, srv, "other", "x", wait=False)
    start_publisher(procs, media_src, srv, "liveX", "y", wait=False)  # unknown app: refused
    e = live.wait_for(lambda e: e["event"] == "publish")
    assert e["app"] == "live/room1" and e["stream"] == "s", e
    everything.wait_for(lambda e: e["event"] == "publish" and e["app"] == "other")
    assert [(x["event"], x["app"]) for x in live.snapshot()] == [("publish", "live/room1")]


def test_bad_requests(srv, readers):
    import websocket

    api = Api(srv)
    with pytest.raises(websocket.WebSocketBadStatusException) as ei:
        readers(srv, {"type": "publish,nonsense"})
    assert ei.value.status_code == 400
    with pytest.raises(websocket.WebSocketBadStatusException) as ei:
        readers(srv, token="wrong")
    assert ei.value.status_code == 401
    # a plain GET is answered with the API's error envelope
    assert_error(api.get("events"), 400, "websocket")
    assert_error(api.get("events", {"type": "bogus"},
                         headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                  "Sec-WebSocket-Version": "13",
                                  "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}), 400, "bogus")


def test_watchers_closed_on_shutdown(srv, readers):
    r = readers(srv)
    wait_until(lambda: "sluice_event_watchers 1" in Api(srv).get("/metrics").body.decode(), T(5),
               0.05, "one watcher")
    assert srv.stop() == 0
    wait_until(lambda: r.closed is not None, T(5), 0.05, "the event stream to close")
