"""Remote Shared Objects over RTMP (types 19/16), with two clients built on
tests/e2e/rtmp_client.py + rtmp_so.py (a Python RTMP/AMF stack that shares no
code with sluice), the Server API and the event stream, on one object:

- a change by one client reaches the other in order, with versions; the writer
  gets Red5's `success`, the other `change`; a late joiner gets the data;
- send message reaches everyone; delete; clear from the API;
- a persistent object survives a restart and a kill -9 (acknowledged writes);
- limits (value size, keys, update rate, persistence mismatch) answer with an SO
  status event and the connection stays up;
- the API lists objects, gives Red5's SoStatistics, reads, writes, deletes and
  sends, reaching RTMP clients; RTMP changes are visible in the API;
- so_update events on the WebSocket event stream.
"""

import signal

import pytest

from api_helpers import TOKEN, Api, EventReader, start_api_server
from conftest import HOST, T, wait_until
from rtmp_client import RtmpClient
from rtmp_so import SharedObject

LIMITS = {"so_max_value_bytes": "1k", "so_max_keys": 8, "so_max_updates_per_sec": 40}


@pytest.fixture
def srv(sluice_factory):
    return start_api_server(sluice_factory, {"apps": {"live": dict(LIMITS)}})


@pytest.fixture
def clients():
    opened = []

    def make(srv, name):
        c = RtmpClient(HOST, srv.port, timeout=T(5), name=name)
        c.connect("live")
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.close()


def join(client, name, persistent=False):
    so = SharedObject(client, name, persistent)
    so.connect()
    so.wait_event("initial", timeout=T(5))
    return so


def api_so(api, path="", method="GET", body=None):
    return api.request(method, "/api/v1/applications/live/sharedobjects" + path, body=body)


def test_change_reaches_other_in_order(srv, clients):
    a = join(clients(srv, "a"), "board")
    b = join(clients(srv, "b"), "board")
    for i in range(20):
        a.set("n", i)
    b.wait(lambda evs: ("change", "n", 19.0) in [(e, k, v) for _, e, k, v in evs], T(5),
           "the last change")
    changes = [(ver, v) for ver, e, k, v in b.events() if e == "change" and k == "n"]
    assert [v for _, v in changes] == [float(i) for i in range(20)]
    assert [ver for ver, _ in changes] == list(range(1, 21))  # one version per update
    a.wait(lambda evs: len([1 for _, e, _, _ in evs if e == "success"]) == 20, T(5), "successes")
    mine = [(ver, e, k) for ver, e, k, _ in a.events() if e in ("success", "change")]
    assert mine == [(i, "success", "n") for i in range(1, 21)]  # the writer: success only

    # A late joiner gets the data at the current version; several keys in one message.
    b.set_many([("x", "hello"), ("o", {"p": 1, "q": [1, "two"]})])
    c = join(clients(srv, "c"), "board")
    c.wait(lambda evs: any(k == "o" for _, _, k, _ in evs), T(5), "initial data")
    assert c.data() == {"n": 19.0, "x": "hello", "o": {"p": 1.0, "q": [1.0, "two"]}}
    assert c.events()[0][0] == 21  # the version after b's one update

    # Send reaches everyone, the sender too; delete reaches everyone.
    c.send("onChat", "hi", 3)
    for so in (a, b, c):
        assert so.wait_event("send", "onChat", T(5))[3] == ["hi", 3.0]
    a.delete("x")
    for so in (a, b, c):
        so.wait_event("delete", "x", T(5))
    assert "x" not in b.data()


def test_limits_answer_with_status_and_keep_the_connection(srv, clients):
    ca = clients(srv, "a")
    a = join(ca, "lim")
    a.set("big", "x" * 2000)
    assert a.wait_event("status", timeout=T(5))[2] == "SharedObject.LimitExceeded"
    for i in range(9):
        a.set("k%d" % i, i)
    evs = a.wait(lambda evs: len([1 for _, e, _, _ in evs if e == "status"]) >= 2, T(5),
                 "keys limit")
    assert [k for _, e, k, _ in evs if e == "success"] == ["k%d" % i for i in range(8)]
    # Rate: 40 updates per second per client; a burst is cut with a clear code.
    for i in range(60):
        a.set("k0", i)
    a.wait(lambda evs: any(k == "SharedObject.UpdateRateExceeded" for _, _, k, _ in evs), T(5),
           "rate limit")
    # The same name with the other persistence: Red5's BadPersistence.
    cb = clients(srv, "b")
    bad = SharedObject(cb, "lim", persistent=True)
    bad.connect()
    assert bad.wait_event("status", timeout=T(5))[2] == "SharedObject.BadPersistence"
    # Both connections are still up and working.
    b = join(cb, "other")
    b.set("ok", True)
    b.wait_event("success", "ok", T(5))
    assert not ca.closed and not cb.closed


def test_persistent_object_survives_restart_and_kill9(srv, clients):
    a = join(clients(srv, "a"), "saved", persistent=True)
    a.set("score", 7)
    a.set("name", "w")
    a.wait_event("success", "name", T(5))  # acknowledged = committed
    srv.stop()
    srv.start()
    b = join(clients(srv, "b"), "saved", persistent=True)
    b.wait(lambda evs: any(k == "name" for _, _, k, _ in evs), T(5), "restored data")
    assert b.data() == {"score": 7.0, "name": "w"}
    assert b.events()[0][0] == 2
    # kill -9 right after the acknowledgement: the write is there.
    b.set("after", "kill")
    b.wait_event("success", "after", T(5))
    srv.stop(sig=signal.SIGKILL)
    srv.start()
    c = join(clients(srv, "c"), "saved", persistent=True)
    c.wait(lambda evs: any(k == "after" for _, _, k, _ in evs), T(5), "data after kill -9")
    assert c.data() == {"score": 7.0, "name": "w", "after": "kill"}
    # A non-persistent object is gone with its last subscriber.
    api = Api(srv)
    d = join(clients(srv, "d"), "temp")
    d.set("k", 1)
    d.wait_event("success", "k", T(5))
    assert "temp" in api.data("/api/v1/applications/live/sharedobjects")
    d.disconnect()
    wait_until(lambda: "temp" not in api.data("/api/v1/applications/live/sharedobjects"), T(5),
               message="temp freed")


def test_api_reads_writes_and_reaches_rtmp(srv, clients):
    api = Api(srv)
    ev = EventReader(srv, {"type": "so_update"}, TOKEN)
    everything = EventReader(srv, None, TOKEN)  # no type=: the default selection
    try:
        a = join(clients(srv, "a"), "room")
        a.set("color", "red")
        a.wait_event("success", "color", T(5))
        assert api.data("/api/v1/applications/live/sharedobjects") == ["room"]
        st = api.data("/api/v1/applications/live/sharedobjects/room")
        assert st["name"] == "room" and st["persistent"] is False and st["version"] == 1
        assert st["active_listeners"] == 1 and st["total_changes"] == 1
        assert api_so(api, "/room/data").data["color"] == "red"

        # Write, send, delete and clear from the API reach the RTMP client.
        r = api_so(api, "/room/data", "PUT", {"size": 3, "tags": ["a"]})
        assert r.status == 200, r
        a.wait_event("change", "tags", T(5))
        assert a.data() == {"size": 3.0, "tags": ["a"]}  # "color" is a's own (success only)
        r = api_so(api, "/room/send", "POST", {"method": "onNote", "args": ["from api"]})
        assert r.status == 200, r
        assert a.wait_event("send", "onNote", T(5))[3] == ["from api"]
        r = api_so(api, "/room/data/size", "DELETE")
        assert r.status == 200, r
        a.wait_event("delete", "size", T(5))
        r = api_so(api, "/room/data", "DELETE")
        assert r.status == 200, r
        a.wait_event("clear", timeout=T(5))
        assert api_so(api, "/room/data").data == {}
        assert api_so(api, "/nope").status == 404
        assert api_so(api, "/room/data", "PUT", {"k": "x" * 5000}).status == 413

        # so_update events carry app, object, action, key and version.
        ev.wait_for(lambda e: e.get("reason") == "clear", T(5), "clear event")
        evs = ev.snapshot()
        sets = [e for e in evs if e["event"] == "so_update" and e.get("reason") == "set"]
        assert sets[0]["app"] == "live" and sets[0]["stream"] == "room"
        assert sets[0]["path"] == "color" and sets[0]["bytes_in"] == 1
        assert sets[0]["protocol"] == "rtmp"
        # so_update is opt-in: a stream without type= does not get it (checked once a
        # later default event, the second client's connect, reached that stream).
        late = clients(srv, "late")
        wait_until(lambda: len([e for e in everything.snapshot() if e.get("event") == "connect"])
                   >= 2, T(5), message="the late client's connect")
        assert late and not [e for e in everything.snapshot() if e["event"] == "so_update"]
    finally:
        ev.close()
        everything.close()


def test_amf3_client_uses_type_16(srv):
    """A client connected with objectEncoding 3 speaks the flex form (type 16, one
    leading encoding byte 0) both ways, on the same object as an AMF0 client."""
    c3 = RtmpClient(HOST, srv.port, timeout=T(5), name="amf3")
    c0 = RtmpClient(HOST, srv.port, timeout=T(5), name="amf0")
    try:
        assert c3.connect("live", extra={"objectEncoding": 3.0}).ok
        assert c0.connect("live").ok
        flex = SharedObject(c3, "mixed")
        flex.flex = True
        flex.connect()
        flex.wait_event("initial", timeout=T(5))
        plain = join(c0, "mixed")
        flex.set("from3", [1, "a"])
        assert plain.wait_event("change", "from3", T(5))[3] == [1.0, "a"]
        plain.set("from0", "b")
        assert flex.wait_event("change", "from0", T(5))[3] == "b"
        with c3._cv:
            assert {t for _, t, _ in c3.so_messages} == {16}
        with c0._cv:
            assert {t for _, t, _ in c0.so_messages} == {19}
    finally:
        c3.close()
        c0.close()


def test_rooms_are_separate_scopes(srv):
    """An object lives in its client's scope: live/room1's "board" is not live's, and the
    API reaches it with scope=room1."""
    api = Api(srv)
    r1 = RtmpClient(HOST, srv.port, timeout=T(5), name="room1")
    top = RtmpClient(HOST, srv.port, timeout=T(5), name="top")
    try:
        assert r1.connect("live/room1").ok
        assert top.connect("live").ok
        in_room = join(r1, "board")
        at_top = join(top, "board")
        in_room.set("where", "room1")
        in_room.wait_event("success", "where", T(5))
        assert api.data("/api/v1/applications/live/sharedobjects", {"scope": "room1"}) == ["board"]
        assert api.data("/api/v1/applications/live/sharedobjects/board/data",
                        {"scope": "room1"}) == {"where": "room1"}
        assert api.data("/api/v1/applications/live/sharedobjects/board/data") == {}
        assert not [e for e in at_top.events() if e[1] == "change"]
    finally:
        r1.close()
        top.close()
