"""Red5 Pro's WebSocket signalling for WebRTC (HTML5 SDK <= 12: RTCPublisher /
RTCSubscriber) at ws://host:port/{app}/?id={stream}: src/proto/webrtc/webrtc_ws.c.

Checked:
- an aiortc publisher and an aiortc subscriber over this signalling, in the SDK's
  message order (webrtc_ws_client.py); the subscriber gets the server's offer and
  decodes video and audio frames;
- RTMP (ffmpeg) -> WebSocket subscriber; the offer carries a data channel when asked;
- admission: refused (simple auth, wrong password) -> NetConnection.Connect.Rejected
  and the socket closes; allowed with the right credentials in the URL's query;
- an unknown app -> NetConnection.Connect.Failed and close; a plain GET of the same
  path keeps its answer (not taken by the signalling);
- garbage, binary, unknown and out-of-order messages answer an error status and keep
  the socket; the server stays up;
- budgets: messages per second, message size, sockets per address, idle sockets.
"""
import json
import os
import socket
import subprocess
import time

import pytest
import websocket  # python3-websocket

from api_helpers import http_port_of
from conftest import HOST, T, ffmpeg_publish_cmd, wait_until
from test_webrtc import make_offer, needs_aiortc, start, wait_live

HERE = os.path.dirname(os.path.abspath(__file__))
WS_CLIENT = [os.environ.get("PYTHON3", "/usr/bin/python3"), os.path.join(HERE, "webrtc_ws_client.py")]


def ws_url(srv, stream_or_id, app="live", query=""):
    return "ws://%s:%d/%s/?id=%s%s" % (HOST, http_port_of(srv), app, stream_or_id, query)


def ws_client(procs, *args, name="ws-client"):
    return procs.start(WS_CLIENT + list(args), name, env=dict(os.environ, PYTHONUNBUFFERED="1"))


def run_ws_client(*args, timeout=60):
    p = subprocess.run(WS_CLIENT + list(args), capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, PYTHONUNBUFFERED="1"))
    evs = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    return p.returncode, evs, p.stderr


def connect(srv, stream_or_id="s", app="live", query=""):
    ws = websocket.create_connection(ws_url(srv, stream_or_id, app, query), timeout=T(10))
    return ws


def recv_json(ws):
    raw = ws.recv()
    assert raw, "socket closed"
    return json.loads(raw)


def code_of(m):
    return (m.get("data") or {}).get("code")


def closed(ws, timeout=None):
    """True once the server closed the socket (close frame or EOF) within timeout."""
    deadline = time.time() + (timeout or T(10))
    ws.settimeout(0.2)
    while time.time() < deadline:
        try:
            if not ws.recv():  # a close frame, answered by the library: drop the TCP connection
                ws.shutdown()  # too, as a browser does
                return True
        except websocket.WebSocketTimeoutException:
            continue
        except (websocket.WebSocketException, OSError):
            return True
    return False


def until_code(ws, code, limit=10):
    seen = []
    for _ in range(limit):
        m = recv_json(ws)
        seen.append(m)
        if code_of(m) == code:
            return m
    raise AssertionError("no %s in %s" % (code, seen))


# ---------------------------------------------------------------------------
# media
# ---------------------------------------------------------------------------

@needs_aiortc
def test_ws_publish_and_subscribe_aiortc(sluice_factory, procs, media_src):
    srv = start(sluice_factory)
    pub = ws_client(procs, "pub", ws_url(srv, "r1"), "r1", "--src", str(media_src),
                    "--seconds", "60", name="ws-pub")
    wait_live(srv, "r1")
    rc, evs, err = run_ws_client("sub", ws_url(srv, "subscriber-1"), "r1", "--seconds", str(T(25)),
                                 "--frames", "30", "--audio-frames", "20", timeout=T(60))
    done = [e for e in evs if e["event"] == "done"]
    assert rc == 0 and done, (rc, evs, err[-3000:], procs.log_of(pub)[-2000:], srv.log_tail(60))
    assert done[0]["video"] >= 30 and done[0]["audio"] >= 20 and done[0]["width"] > 0
    # The publisher is a WebRTC session to the API, like a WHIP one.
    pubinfo = srv.api.data("applications/live/streams/r1")["publisher"]
    assert "webrtc" in json.dumps(pubinfo).lower(), pubinfo


def test_ws_session_kicked_closes_socket(sluice_factory):
    """A session ended by the server (API kick) tells its socket and closes it."""
    srv = start(sluice_factory)
    ws = connect(srv, "k1")
    assert code_of(recv_json(ws)) == "NetConnection.Connect.Success"
    ws.send(json.dumps({"handleOffer": "k1", "transport": "udp",
                        "data": {"sdp": {"type": "offer", "sdp": make_offer()}}}))
    m = recv_json(ws)
    assert (m.get("data") or {}).get("sdp", {}).get("type") == "answer", m
    assert "a=ice-lite" in m["data"]["sdp"]["sdp"]
    assert code_of(recv_json(ws)) == "NetConnection.ICE.TrickleCompleted"
    ws.send(json.dumps({"publish": "k1", "mode": "live"}))
    assert recv_json(ws)["data"]["message"] == "k1 starting"
    # One session per socket.
    ws.send(json.dumps({"requestOffer": "k1", "requestId": "x"}))
    assert recv_json(ws)["data"]["type"] == "error"
    pid = srv.api.data("applications/live/streams/k1")["publisher"]["id"]
    assert srv.api.delete("applications/live/clients/" + pid).status == 200
    until_code(ws, "NetConnection.Connect.Closed")
    assert closed(ws)
    wait_until(lambda: srv.api.get("applications/live/streams/k1").status == 404, T(5), 0.1, "unpublished")


@needs_aiortc
def test_rtmp_to_ws_subscriber_with_datachannel_offer(sluice_factory, procs, media_src):
    srv = start(sluice_factory)
    procs.start(ffmpeg_publish_cmd(media_src, srv.url("live", "r2")), "ffmpeg")
    wait_live(srv, "r2")
    rc, evs, err = run_ws_client("sub", ws_url(srv, "subscriber-2"), "r2", "--seconds", str(T(25)),
                                 "--frames", "20", "--audio-frames", "10", "--datachannel",
                                 timeout=T(60))
    offer = [e for e in evs if e["event"] == "offer"]
    assert offer and offer[0]["has_app"], evs
    assert rc == 0, (rc, evs, err[-3000:], srv.log_tail(60))


# ---------------------------------------------------------------------------
# admission and routing
# ---------------------------------------------------------------------------

@needs_aiortc
def test_ws_auth_refused_and_allowed(sluice_factory, tmp_path, procs, media_src):
    users = tmp_path / "users.txt"
    users.write_text("alice secret-1\n")
    srv = start(sluice_factory, {"auth": {"simple_file": str(users)}},
                apps={"live": {"auth_simple": True}})
    # Refused: the session is asked for, admission says no, the socket closes.
    ws = connect(srv, "a1", query="&username=alice&password=pw-wrong-7731")
    assert code_of(recv_json(ws)) == "NetConnection.Connect.Success"
    ws.send(json.dumps({"handleOffer": "a1", "transport": "udp",
                        "data": {"sdp": {"type": "offer", "sdp": "v=0\r\n"}}}))
    m = until_code(ws, "NetConnection.Connect.Rejected")
    assert m["data"]["type"] == "error"
    assert closed(ws)
    assert "pw-wrong-7731" not in srv.log_text()
    # Allowed: the same credentials a publisher passes as Red5 connectionParams.
    rc, evs, err = run_ws_client("pub", ws_url(srv, "a1", query="&username=alice&password=secret-1"),
                                 "a1", "--src", str(media_src), "--seconds", "4", timeout=T(60))
    assert rc == 0, (rc, evs, err[-3000:], srv.log_tail(60))
    assert any(e["event"] == "connected" for e in evs)


def test_ws_unknown_app_and_plain_get(sluice_factory):
    srv = start(sluice_factory)
    ws = connect(srv, "x", app="nosuchapp")
    m = recv_json(ws)
    assert code_of(m) == "NetConnection.Connect.Failed" and m["data"]["type"] == "error", m
    assert closed(ws)
    # A plain GET of the signalling path is not taken by it.
    import http.client
    c = http.client.HTTPConnection(HOST, http_port_of(srv), timeout=10)
    c.request("GET", "/live/?id=s1")
    r = c.getresponse()
    r.read()
    assert r.status != 101 and r.getheader("Upgrade") is None


# ---------------------------------------------------------------------------
# bad clients and budgets
# ---------------------------------------------------------------------------

def test_ws_garbage_and_unknown_messages(sluice_factory):
    srv = start(sluice_factory)
    ws = connect(srv, "g1")
    assert code_of(recv_json(ws)) == "NetConnection.Connect.Success"
    for bad in ["not json", "[1,2,3]", "{\"what\": 1}", "{\"sharedObjectConnect\": {}}",
                "{\"handleAnswer\": \"g1\", \"data\": {}}", "{\"subscribe\": \"g1\"}",
                "{\"publish\": \"g1\"}", "{\"handleOffer\": \"g1\"}", "{\"requestOffer\": 5}",
                "{\"a\":" * 100 + "1" + "}" * 100]:
        ws.send(bad)
        m = recv_json(ws)
        assert m["data"]["type"] == "error", (bad, m)
    ws.send_binary(b"\x00\x01")
    assert recv_json(ws)["data"]["type"] == "error"
    # isAvailable: a free name for a publisher, an absent stream for a subscriber.
    ws.send(json.dumps({"isAvailable": "g1", "bundle": True}))
    assert recv_json(ws)["isAvailable"] is True
    ws.send(json.dumps({"isAvailable": "g1"}))
    assert recv_json(ws)["isAvailable"] is False
    # A subscriber of a stream that is not there.
    ws.send(json.dumps({"requestOffer": "nothere", "requestId": "r", "transport": "udp",
                        "datachannel": False}))
    assert code_of(recv_json(ws)) == "NetStream.Play.StreamNotFound"
    ws.close()
    r = srv.api.get("server")
    assert r.status == 200  # still up


def test_ws_budgets(sluice_factory):
    srv = start(sluice_factory, {"webrtc": {"ws_messages_per_second": 5, "ws_max_message_bytes": "2KB",
                                            "ws_max_sockets_per_address": 3,
                                            "ws_idle_timeout": "1s"}})
    # Sockets per address (first: the server has no other socket of ours yet).
    held = [connect(srv, "b%d" % i) for i in range(3)]
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        connect(srv, "b9")
    assert e.value.status_code == 429
    # Idle: no valid message for 1 s closes them.
    t0 = time.time()
    for h in held:
        assert closed(h, T(5))
    assert time.time() - t0 < T(5)
    wait_until(lambda: _can_connect(srv), T(5), message="socket slots released")
    # Messages per second.
    ws = connect(srv, "b1")
    recv_json(ws)
    for _ in range(6):
        try:
            ws.send(json.dumps({"log": "INFO", "message": "x"}))
        except (websocket.WebSocketException, OSError):
            break
    assert closed(ws)
    # Message size.
    ws = connect(srv, "b2")
    recv_json(ws)
    ws.send(json.dumps({"log": "INFO", "message": "x" * 4000}))
    assert closed(ws)


def _can_connect(srv):
    try:
        connect(srv, "again").close()
        return True
    except websocket.WebSocketBadStatusException:
        return False


def _publish_raw(srv, name, query=""):
    """A publisher session over a raw socket (an aiortc offer; no media): the socket."""
    ws = connect(srv, name, query=query)
    assert code_of(recv_json(ws)) == "NetConnection.Connect.Success"
    ws.send(json.dumps({"handleOffer": name, "transport": "udp",
                        "data": {"sdp": {"type": "offer", "sdp": make_offer()}}}))
    m = recv_json(ws)
    assert (m.get("data") or {}).get("sdp", {}).get("type") == "answer", m
    assert code_of(recv_json(ws)) == "NetConnection.ICE.TrickleCompleted"
    return ws


def test_ws_socket_close_ends_session_and_mode_rules(sluice_factory):
    srv = start(sluice_factory)
    ws = _publish_raw(srv, "c1")
    wait_live(srv, "c1")
    # A publish mode other than the admitted one (connection params) is refused...
    ws.send(json.dumps({"publish": "c1", "mode": "record"}))
    m = recv_json(ws)
    assert code_of(m) == "NetStream.Publish.Failed" and "mode=record" in m["data"]["message"], m
    # ...and the session lives on; closing the socket (no data channel) ends it.
    ws.close()
    wait_until(lambda: srv.api.get("applications/live/streams/c1").status == 404, T(10), 0.1,
               "stream unpublished with its socket")
    # unpublish ends the session but keeps the socket (one session per socket, though).
    ws = _publish_raw(srv, "c2")
    wait_live(srv, "c2")
    ws.send(json.dumps({"unpublish": "c2"}))
    assert recv_json(ws)["data"]["message"] == "c2 stopping"
    wait_until(lambda: srv.api.get("applications/live/streams/c2").status == 404, T(10), 0.1,
               "stream unpublished")
    # The name is free again for another socket.
    ws2 = connect(srv, "c2")
    recv_json(ws2)
    ws2.send(json.dumps({"isAvailable": "c2", "bundle": True}))
    assert recv_json(ws2)["isAvailable"] is True
    # Left open on purpose: the server's shutdown (teardown: exit 0, nothing leaked) closes
    # sockets with and without sessions.
    _publish_raw(srv, "c3")
