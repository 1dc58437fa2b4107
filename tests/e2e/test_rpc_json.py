"""Calls for browsers (issue 15): Red5 HTML5 SDK's callServer() JSON message
({"callAdapter":{method,arguments},"id","async":true}) over a WebRTC session's
`red5pro` data channel (WHIP, aiortc) and over Red5's signalling WebSocket, routed
through the rpc module to the business server, answered on the same carrier as
{"id","async":true,"data"|"error"}; and server -> client calls to those sessions
through POST /api/v1/applications/{app}/clients/{id}/invoke, which sends the SDK's
`send` message and answers 200 with status "sent" (the SDK has no reply for it).

Each test checks: a result from the business server, which received the session's
id, app and the arguments; an unknown method answered with an error under the
caller's id; two invokes from the API arrive in order with their data; the API
says "sent".
"""
import json
import os

from api_helpers import Api
from conftest import T, wait_until
from test_rpc import Business
from test_webrtc import events_of, needs_aiortc, start, whip_url
from test_webrtc_ws import ws_url

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = [os.environ.get("PYTHON3", "/usr/bin/python3"), os.path.join(HERE, "rpc_json_client.py")]
CALLS = [["sum", [1, 2, 3]], ["nosuch.method", []]]


def client_ids(srv):
    return [x["id"] for x in Api(srv).data("applications/live/clients")]


def replies(p):
    msgs = [e["msg"] for e in events_of(p) if e.get("event") == "msg"]
    return {m["id"]: m for m in msgs if m.get("async") and "id" in m}


def run(sluice_factory, procs, args, proto):
    business = Business()
    try:
        srv = start(sluice_factory, apps={"live": {"rpc_url": business.url, "rpc_timeout": "2s"}})
        p = procs.start(CLIENT + args(srv) + [json.dumps(CALLS), "--seconds", str(T(40))],
                        "rpc-json", env=dict(os.environ, PYTHONUNBUFFERED="1"))
        # The calls come first: the session exists once both replies are back.
        wait_until(lambda: len(replies(p)) == 2 or p.poll() is not None, T(30),
                   message="replies to callServer")
        got = replies(p)
        rtts = [e.get("rtt_ms") for e in events_of(p) if e.get("event") == "msg" and e.get("rtt_ms") is not None]
        print("%s callServer round trips (ms, via the business server): %s" % (proto, rtts))
        assert got["c0"] == {"id": "c0", "async": True, "data": {"sum": 6}}, got
        assert "data" not in got["c1"] and "HTTP 404" in got["c1"]["error"], got
        with business.lock:
            bodies = [b for b in business.bodies if b["method"] == "sum"]
        assert len(bodies) == 1 and bodies[0]["params"] == [1, 2, 3] and bodies[0]["app"] == "live", bodies
        ids = client_ids(srv)
        assert len(ids) == 1 and bodies[0]["session"] == ids[0], (ids, bodies)
        cid = ids[0]
        api = Api(srv)
        r = api.request("POST", "applications/live/clients/%s/invoke" % cid,
                        body={"method": "hello", "params": [{"text": "hi", "n": 1}]})
        assert r.status == 200 and r.data == {"client": cid, "status": "sent"}, r
        r = api.request("POST", "applications/live/clients/%s/invoke" % cid, body={"method": "bye"})
        assert r.status == 200 and r.data["status"] == "sent", r
        p.wait(T(20))
        evs = events_of(p)
        assert p.returncode == 0, evs
        sends = [e["msg"] for e in evs if e.get("event") == "msg" and "send" in e["msg"]]
        assert [m["send"]["method"] for m in sends] == ["hello", "bye"], sends
        assert sends[0]["send"]["data"] == {"text": "hi", "n": 1}, sends
        assert sends[1]["send"]["data"] == {}, sends
        if proto == "ws":  # the SDK's socket reads `send` only beside a top-level data
            assert sends[0]["data"] == {"text": "hi", "n": 1}, sends
        # The rpc events of both directions went by (the event list in the API).
        return srv
    finally:
        business.close()


@needs_aiortc
def test_call_server_over_data_channel(sluice_factory, procs, media_src):
    run(sluice_factory, procs, lambda srv: ["dc", whip_url(srv, "rpcdc"), str(media_src)], "dc")


@needs_aiortc
def test_call_server_over_websocket(sluice_factory, procs, media_src):
    run(sluice_factory, procs, lambda srv: ["ws", ws_url(srv, "rpcws"), "rpcws", str(media_src)], "ws")
