"""The stream manager's proxy (src/cluster/smproxy, docs/stream-manager-proxy.md) with real
peers: redis-server, a stream manager node (stream_manager + sm_proxy, role relay so it is
never named itself) and an origin node. aiortc publishes through
/as/v1/proxy/whip/live/s1 and another aiortc plays through /as/v1/proxy/whep/live/s1,
decoding frames; a Red5 WebSocket-signalled subscriber plays through /as/v1/proxy/ws/...;
DELETE through the proxied resource ends the session on the node; the Server API forward
reaches a node's /api/v1/ and refuses anything else.

One cluster per file (module fixtures); the tests run in file order on it, the publisher's
DELETE last.
"""
import http.client
import json
import os
import signal
import subprocess
import urllib.parse

import pytest

from api_helpers import TOKEN, http_port_of
from conftest import HOST, T, wait_until

clusterlib = pytest.importorskip("clusterlib", reason="tests/e2e/clusterlib.py comes with wt/cluster")
from clusterlib import redis_server, start_nodes, wait_nodes  # noqa: E402,F401

from test_webrtc import HAVE_AIORTC, client, events_of, run_client  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WS_CLIENT = [os.environ.get("PYTHON3", "/usr/bin/python3"), os.path.join(HERE, "webrtc_ws_client.py")]

pytestmark = [pytest.mark.cluster,
              pytest.mark.skipif(not HAVE_AIORTC, reason="python3-aiortc not installed")]


def request(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection(HOST, port, timeout=T(15))
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode(errors="replace")
    finally:
        c.close()


@pytest.fixture(scope="module")
def nodes(module_sluice_factory, redis_server):  # noqa: F811
    """[stream manager, origin] of one cluster (one key prefix)."""
    webrtc = {"webrtc": {"candidates": "127.0.0.1", "consent_timeout": "12s", "setup_timeout": "10s"}}
    prefix = clusterlib.unique_prefix()
    sm_cfg = dict(webrtc, stream_manager={"enabled": True}, sm_proxy={"enabled": True, "timeout": "5s", "max_body": "16k"})
    sm, = start_nodes(module_sluice_factory, redis_server, 1, roles=["relay"], config=sm_cfg,
                      ids=["smp-sm"], prefix=prefix)
    origin, = start_nodes(module_sluice_factory, redis_server, 1, roles=["origin"], config=webrtc,
                          ids=["smp-origin"], prefix=prefix)
    wait_nodes(sm, ["smp-sm", "smp-origin"])
    return sm, origin


def proxy_url(sm, kind, stream, app="live", query=""):
    return "http://%s:%d/as/v1/proxy/%s/%s/%s%s" % (HOST, http_port_of(sm.srv), kind, app, stream, query)


def live_on(node, stream, app="live"):
    return node.api.get("applications/%s/streams/%s" % (app, stream)).status == 200


@pytest.fixture(scope="module")
def publisher(nodes, module_procs, media_src):
    """An aiortc WHIP publisher of live/s1 through the proxy."""
    sm, origin = nodes
    pub = client(module_procs, "whip", proxy_url(sm, "whip", "s1"), "--src", str(media_src),
                 "--seconds", str(T(120)), name="whip-proxy")
    wait_until(lambda: live_on(origin, "s1"), T(20), 0.1,
               lambda: "live/s1 live on the origin; publisher said %s" % events_of(pub))
    return pub


def test_options_names_the_node(nodes):
    sm, origin = nodes
    st, h, _ = request(http_port_of(sm.srv), "OPTIONS", "/as/v1/proxy/whip/live/opt1")
    assert st == 204, (st, h)
    # Red5's SDK reads Session-Host (WebRTC.Endpoint.Changed) and sends it back as host=
    assert h.get("session-host") == "%s:%d" % (HOST, origin.http_port)
    assert "Session-Host" in h.get("access-control-expose-headers", "")
    st, h, _ = request(http_port_of(sm.srv), "OPTIONS",
                       "/as/v1/proxy/whip/live/opt1?host=" + h["session-host"])
    assert st == 204 and h.get("session-host") == "%s:%d" % (HOST, origin.http_port)
    # host= names only nodes of the cluster
    st, _, body = request(http_port_of(sm.srv), "OPTIONS", "/as/v1/proxy/whip/live/opt1?host=169.254.169.254:80")
    assert st == 404, body


def test_whip_and_whep_through_the_proxy(nodes, publisher):
    sm, origin = nodes
    ans = [e for e in events_of(publisher) if e["event"] == "answer"]
    assert ans and ans[0]["status"] == 201, events_of(publisher)
    # the resource goes through the proxy again, and names its node
    assert ans[0]["location"].startswith("/as/v1/proxy/whip/resource/smp-origin/live/"), ans
    rc, evs, err = run_client("whep", proxy_url(sm, "whep", "s1"), "--frames", "15",
                              "--seconds", str(T(25)), timeout=T(60))
    assert rc == 0, (evs, err[-2000:])
    a = [e for e in evs if e["event"] == "answer"][0]
    assert a["location"].startswith("/as/v1/proxy/whep/resource/smp-origin/live/"), a
    done = [e for e in evs if e["event"] == "done"][0]
    assert done["video"] >= 15 and done["width"] == 640, done


def test_whep_of_a_stream_not_live_is_404(nodes):
    sm, _ = nodes
    st, _, body = request(http_port_of(sm.srv), "POST", "/as/v1/proxy/whep/live/nope",
                          body="v=0\r\n", headers={"Content-Type": "application/sdp"})
    assert st == 404, body


def test_websocket_signalling_through_the_proxy(nodes, publisher):
    sm, _ = nodes
    url = "ws://%s:%d/as/v1/proxy/ws/subscribe/live/s1?id=ws-sub-1" % (HOST, http_port_of(sm.srv))
    p = subprocess.run(WS_CLIENT + ["sub", url, "s1", "--frames", "10", "--seconds", str(T(25))],
                       capture_output=True, text=True, timeout=T(60))
    evs = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert p.returncode == 0, (evs, p.stderr[-2000:])
    assert any(e.get("code") == "NetConnection.Connect.Success" for e in evs), evs


def test_forward_to_a_node_api(nodes):
    sm, origin = nodes
    port = http_port_of(sm.srv)
    target = "http://%s:%d/api/v1/applications/live/streams?accessToken=%s" % (HOST, origin.http_port, TOKEN)
    path = "/as/v1/proxy/forward/?target=" + urllib.parse.quote(target, safe="")
    st, _, body = request(port, "GET", path)
    assert st == 401, body  # the stream manager's own token is required
    st, h, body = request(port, "GET", path + "&accessToken=" + TOKEN)
    assert st == 200, body
    data = json.loads(body)
    assert data["status"] == "success" and "s1" in json.dumps(data["data"]), data


def test_forward_refuses_what_is_not_a_node_api(nodes, redis_server):  # noqa: F811
    sm, origin = nodes
    port = http_port_of(sm.srv)
    for target in ["http://%s:%d/api/v1/x" % (HOST, redis_server.port),      # not a node
                   "http://169.254.169.254/api/latest/meta-data",             # cloud metadata
                   "http://%s:%d/live/s1.m3u8" % (HOST, origin.http_port),     # not the Server API
                   "http://%s:%d/api/../live/s1.flv" % (HOST, origin.http_port),
                   "file:///etc/passwd"]:
        st, _, body = request(port, "GET", "/as/v1/proxy/forward/?accessToken=%s&target=%s"
                              % (TOKEN, urllib.parse.quote(target, safe="")))
        assert st == 403, (target, st, body)


def test_body_cap(nodes):
    sm, _ = nodes
    st, _, body = request(http_port_of(sm.srv), "POST", "/as/v1/proxy/whip/live/big",
                          body="a" * 20000, headers={"Content-Type": "application/sdp"})
    assert st == 413 and "too large" in body, (st, body)


def test_websocket_refusal_by_the_node_reaches_the_client(nodes):
    """The node's in-band refusal of an unknown app (Red5's NetConnection.Connect.Rejected,
    then a close) comes back through the relay as the node sent it."""
    import websocket
    sm, _ = nodes
    ws = websocket.create_connection("ws://%s:%d/as/v1/proxy/ws/publish/nosuchapp/s1?id=x"
                                     % (HOST, http_port_of(sm.srv)), timeout=T(10))
    msgs = []
    try:
        while True:
            m = ws.recv()
            if not m:
                break
            msgs.append(m)
    except websocket.WebSocketConnectionClosedException:
        pass
    finally:
        ws.close()
    assert any("NetConnection.Connect.Rejected" in m or "NetConnection.Connect.Failed" in m for m in msgs), msgs


def test_admin_lists_and_closes_websocket_sessions(nodes, publisher):
    """SM 4.0 GET|DELETE /admin/proxy/clients[/{id}]: the relay's sessions, listed and closable."""
    import websocket
    sm, _ = nodes
    port = http_port_of(sm.srv)
    token = (sm.srv.data_dir / "sm_admin_token").read_text().strip()
    base = "/streammanager/api/4.0/admin/proxy/clients"
    assert request(port, "GET", base)[0] == 401
    assert request(port, "GET", base + "?accessToken=wrong")[0] == 403
    ws = websocket.create_connection("ws://%s:%d/as/v1/proxy/ws/subscribe/live/s1?id=adm"
                                     % (HOST, port), timeout=T(10),
                                     header=["User-Agent: admin-test-ua"])
    try:
        def listed():
            st, _, body = request(port, "GET", base + "?filter=healthy&accessToken=" + token)
            assert st == 200, body
            return [c for c in json.loads(body) if c["clientUserAgent"] == "admin-test-ua"]
        mine = wait_until(listed, T(10), 0.05, "the session listed as healthy")
        c = mine[0]
        assert c["targetHost"] == "smp-origin" and c["targetApp"] == "live"
        assert c["clientConnected"] and c["proxyConnected"] and c["creationTime"] > 0
        st, _, body = request(port, "GET", base + "?count=true&accessToken=" + token)
        assert st == 200 and json.loads(body)["count"] >= 1, body
        st, _, body = request(port, "GET", "%s/%d?accessToken=%s" % (base, c["id"], token))
        assert st == 200 and json.loads(body)["id"] == c["id"], body
        st, _, body = request(port, "DELETE", "%s/%d?accessToken=%s" % (base, c["id"], token))
        assert st == 200, body
        # the client's WebSocket is closed by the proxy
        ws.settimeout(T(10))
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
            while True:
                if not ws.recv():
                    raise websocket.WebSocketConnectionClosedException("closed")
        assert request(port, "GET", "%s/%d?accessToken=%s" % (base, c["id"], token))[0] == 404
        assert listed() == []
    finally:
        ws.close()


def test_unknown_resource_node_is_404(nodes):
    sm, _ = nodes
    st, _, body = request(http_port_of(sm.srv), "DELETE", "/as/v1/proxy/whip/resource/no-such-node/live/abc")
    assert st == 404, body


def test_delete_through_the_proxy_ends_the_session(nodes, publisher, module_procs):
    sm, origin = nodes
    assert live_on(origin, "s1") and publisher.poll() is None
    loc = [e for e in events_of(publisher) if e["event"] == "answer"][0]["location"]
    st, _, body = request(http_port_of(sm.srv), "DELETE", loc)
    assert st == 200, body
    # the publisher still runs: only the DELETE can have ended its session on the node
    wait_until(lambda: not live_on(origin, "s1"), T(10), 0.1, "live/s1 ended on the origin")
    st, _, body = request(http_port_of(sm.srv), "DELETE", loc)
    assert st == 404, body
    module_procs.stop(publisher, sig=signal.SIGTERM, timeout=T(20))
