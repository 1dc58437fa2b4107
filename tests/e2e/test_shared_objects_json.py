"""Shared objects as Red5's JSON messages (HTML5 SDK <= 12, RED5-COMPAT.md §6.1):
src/modules/shared_objects/so_json.c on the "webrtc-ws" service.

Checked, each time with an RTMP client (rtmp_client.py + rtmp_so.py, a Python
AMF stack sharing no code with sluice) on the same object:
- a signalling WebSocket (`/live/?id=...`, no WebRTC session) gets GetRemote and
  Connect Success and the data; its writes reach RTMP as `change` with the
  object's version, RTMP's reach it as subtype 4 events, in order, versions rising;
  the writer gets subtype 5 (success); send both ways (MethodUpdate, subtype 6);
  delete (subtype 9); close (Disconnect) and no more events after it;
- limits: a value over so_max_value_bytes answers SharedObject.LimitExceeded;
- admission: simple auth refuses a socket with a wrong password
  (NetConnection.Connect.Rejected, GetRemote Fail, nothing joined) and admits the
  right one;
- the same messages on the `red5pro` data channel of a WHIP session (aiortc),
  answered on the channel.
"""
import json
import os

import pytest
import websocket  # python3-websocket

from api_helpers import http_port_of
from conftest import HOST, T, wait_until
from rtmp_client import RtmpClient
from rtmp_so import SharedObject
from test_webrtc import events_of, needs_aiortc, start, whip_url

HERE = os.path.dirname(os.path.abspath(__file__))
DC_CLIENT = [os.environ.get("PYTHON3", "/usr/bin/python3"), os.path.join(HERE, "so_dc_client.py")]


class JsonSo:
    """One WebSocket speaking Red5's shared-object JSON; every message kept in order."""

    def __init__(self, srv, sid="so-1", query=""):
        url = "ws://%s:%d/live/?id=%s%s" % (HOST, http_port_of(srv), sid, query)
        self.ws = websocket.create_connection(url, timeout=T(10))
        self.msgs = []
        self.ws.settimeout(0.2)

    def post(self, o):
        self.ws.send(json.dumps(o))

    def pump(self):
        try:
            raw = self.ws.recv()
        except websocket.WebSocketTimeoutException:
            return
        if raw:
            self.msgs.append(json.loads(raw))

    def wait(self, pred, what, timeout=None):
        def seen():
            self.pump()
            return any(pred(m) for m in self.msgs)
        wait_until(seen, timeout or T(5), message=what)
        return next(m for m in self.msgs if pred(m))

    def status(self, name, status, message):
        return self.wait(lambda m: (m.get("data") or {}).get("name") == name and
                         m["data"].get("status") == status and m["data"].get("message") == message,
                         "%s %s %s" % (name, status, message))

    def events(self, name):
        """[(version, event)] of the object's sharedobject messages, in order."""
        return [(m["data"]["version"], e) for m in self.msgs
                if (m.get("data") or {}).get("type") == "sharedobject" and m["data"].get("name") == name
                for e in m["data"]["events"]]

    def wait_event(self, name, pred, what):
        def seen():
            self.pump()
            return any(pred(e) for _, e in self.events(name))
        wait_until(seen, T(5), message=what)
        return next((v, e) for v, e in self.events(name) if pred(e))

    def join(self, name):
        self.post({"sharedObjectGetRemote": {"name": name}})
        self.status(name, "SharedObject.Status.GetRemote", "Success")
        self.post({"sharedObjectConnect": {"name": name}})
        return self.status(name, "SharedObject.Status.Connect", "Success")

    def close(self):
        self.ws.close()


def rtmp(srv, name="r"):
    c = RtmpClient(HOST, srv.port, timeout=T(5), name=name)
    c.connect("live")
    return c


def attr(k):
    return lambda e: e.get("subtype") == 4 and e.get("attribute") == k


def test_ws_and_rtmp_on_one_object(sluice_factory):
    srv = start(sluice_factory, apps={"live": {"so_max_value_bytes": "1k"}})
    r = rtmp(srv)
    try:
        so = SharedObject(r, "board")
        so.connect()
        so.wait_event("initial", timeout=T(5))
        so.set("fromRtmp", 1)
        so.wait_event("success", "fromRtmp", timeout=T(5))

        j = JsonSo(srv)
        ok = j.join("board")
        assert ok["data"]["persistent"] is False
        # The data comes after Connect.Success, as changes.
        v0, e = j.wait_event("board", attr("fromRtmp"), "initial data")
        assert e["value"] == 1

        # JSON -> RTMP, in order, with rising versions; the writer gets success (5).
        for i in range(5):
            j.post({"sharedObjectSetProperty": {"name": "board", "key": "k", "value": i}})
        so.wait(lambda evs: [v for _, ev, k, v in evs if ev == "change" and k == "k"] == list(range(5)),
                T(5), "five changes in order")
        vers = [ver for ver, ev, k, _ in so.events() if ev == "change" and k == "k"]
        assert vers == sorted(vers) and len(set(vers)) == 5 and vers[0] > v0, vers
        wait_until(lambda: (j.pump(), len([1 for _, e in j.events("board")
                                            if e["subtype"] == 5 and e["attribute"] == "k"]) == 5)[1],
                   T(5), message="five successes")
        mine = [v for v, e in j.events("board") if e["subtype"] == 5]
        assert mine == vers, (mine, vers)

        # RTMP -> JSON, with the version the RTMP side saw.
        so.set("color", "red")
        v, e = j.wait_event("board", attr("color"), "color from rtmp")
        assert e["value"] == "red"
        assert v == so.wait_event("success", "color", timeout=T(5))[0]

        # Send both ways (Red5's MethodUpdate: subtype 6, value = the arguments).
        j.post({"sharedObjectSend": {"name": "board", "method": "chat", "message": {"text": "hi"}}})
        ev = so.wait_event("send", "chat", timeout=T(5))
        assert ev[3] == [{"text": "hi"}], ev
        so.send("fromRtmpMsg", "yo", 2)
        _, e = j.wait_event("board", lambda e: e.get("subtype") == 6 and e["method"] == "fromRtmpMsg",
                            "send from rtmp")
        assert e["value"] == ["yo", 2]
        # A sender hears its own message too, as in Red5.
        assert any(e.get("subtype") == 6 and e["method"] == "chat" for _, e in j.events("board"))

        # Delete: a setProperty without a value removes the key (subtype 9 elsewhere).
        j.post({"sharedObjectSetProperty": {"name": "board", "key": "color"}})
        so.wait_event("delete", "color", timeout=T(5))
        so.delete("fromRtmp")
        j.wait_event("board", lambda e: e.get("subtype") == 9 and e["attribute"] == "fromRtmp", "delete")

        # Limits: a value over 1k.
        j.post({"sharedObjectSetProperty": {"name": "board", "key": "big", "value": "x" * 3000}})
        m = j.wait(lambda m: (m.get("data") or {}).get("type") == "error", "limit error")
        assert m["data"]["code"] == "SharedObject.LimitExceeded" and m["data"]["name"] == "board"
        assert "big" not in so.data()

        # Close: Disconnect, then nothing more reaches the socket; writes are refused.
        j.post({"sharedObjectClose": {"name": "board"}})
        j.status("board", "SharedObject.Status.Disconnect", "Closed")
        n = len(j.events("board"))
        so.set("after", 1)
        so.wait_event("success", "after", timeout=T(5))
        j.post({"sharedObjectSetProperty": {"name": "board", "key": "z", "value": 1}})
        m = j.wait(lambda m: (m.get("data") or {}).get("code") == "SharedObject.NotConnected", "not connected")
        assert len(j.events("board")) == n
        assert "z" not in so.data()
        j.close()
    finally:
        r.close()


def test_ws_admission_refused_and_allowed(sluice_factory, tmp_path):
    users = tmp_path / "users.txt"
    users.write_text("alice secret-1\n")
    srv = start(sluice_factory, {"auth": {"simple_file": str(users)}}, apps={"live": {"auth_simple": True}})
    bad = JsonSo(srv, "so-bad", "&username=alice&password=pw-wrong-4412")
    bad.post({"sharedObjectGetRemote": {"name": "room"}})
    bad.post({"sharedObjectConnect": {"name": "room"}})
    m = bad.wait(lambda m: (m.get("data") or {}).get("code") == "NetConnection.Connect.Rejected" and
                 m["data"].get("type") == "error", "rejected")
    bad.status("room", "SharedObject.Status.GetRemote", "Fail")
    bad.status("room", "SharedObject.Status.Connect", "Fail")
    assert "pw-wrong-4412" not in srv.log_text()
    good = JsonSo(srv, "so-good", "&username=alice&password=secret-1")
    good.join("room")
    good.post({"sharedObjectSetProperty": {"name": "room", "key": "a", "value": True}})
    good.wait_event("room", lambda e: e.get("subtype") == 5 and e["attribute"] == "a", "own write")
    # The refused socket joined nothing; the log says why without the password.
    srv.wait_log(r"connect admission refused", T(5))
    assert srv.log_text().count("joined shared object live/room") == 1
    bad.close()
    good.close()


@needs_aiortc
def test_datachannel_and_rtmp_on_one_object(sluice_factory, procs, media_src):
    srv = start(sluice_factory)
    r = rtmp(srv)
    try:
        so = SharedObject(r, "wb")
        so.connect()
        so.wait_event("initial", timeout=T(5))
        so.set("fromRtmp", "x")
        so.wait_event("success", "fromRtmp", timeout=T(5))
        p = procs.start(DC_CLIENT + [whip_url(srv, "dcpub"), str(media_src), "wb", "--seconds", "40"],
                        "so-dc", env=dict(os.environ, PYTHONUNBUFFERED="1"))
        ev = so.wait_event("change", "dc", timeout=T(30))
        assert ev[3] == "hello from dc"
        ev = so.wait_event("send", "fromDc", timeout=T(5))
        assert ev[3] == [42]
        so.set("bye", 1)
        p.wait(T(20))
        evs = events_of(p)
        assert p.returncode == 0, (evs, procs.log_of(p)[-2000:])
        msgs = [e["msg"] for e in evs if e.get("event") == "dc"]
        datas = [m["data"] for m in msgs if (m.get("data") or {}).get("name") == "wb"]
        got = [e for d in datas if d.get("type") == "sharedobject" for e in d["events"]]
        assert any(e.get("subtype") == 4 and e.get("attribute") == "fromRtmp" and e["value"] == "x"
                   for e in got), datas
        assert any(e.get("subtype") == 5 and e.get("attribute") == "dc" for e in got), datas
        assert any(e.get("subtype") == 4 and e.get("attribute") == "bye" for e in got), datas
    finally:
        r.close()


def test_ws_subscriber_that_only_listens_is_kept(sluice_factory):
    """A socket admitted for shared objects sends nothing after joining: it is not closed by
    webrtc.ws_idle_timeout (which is for sockets that never start anything). A second socket
    that never sends a message is the control: it is closed for idle, so the timer did run
    past the timeout while the subscriber sat quiet."""
    srv = start(sluice_factory, {"webrtc": {"ws_idle_timeout": "1s"}})
    r = rtmp(srv)
    try:
        so = SharedObject(r, "quiet")
        so.connect()
        so.wait_event("initial", timeout=T(5))
        j = JsonSo(srv, "so-quiet")
        j.join("quiet")
        idle = JsonSo(srv, "so-idle")
        srv.wait_log(r"webrtc ws .*: idle for \d+ ms: closed", T(10))
        so.set("later", 7)
        _, e = j.wait_event("quiet", attr("later"), "a change after the idle timeout")
        assert e["value"] == 7
        assert srv.log_text().count("idle for") == 1, "only the control socket is closed for idle"
        idle.close()
        j.close()
    finally:
        r.close()
