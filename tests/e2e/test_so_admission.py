"""Admission per shared object (issue 15; Red5's onSharedObjectAuthenticate): joining
an object runs the admission chain with kind so-connect, the object's name as the
stream. With Round Trip Authentication the business's validate endpoint gets Red5's
body with type "publisher" and streamID = the object's name; here it refuses the
object "secret" and allows "open".

Checked over RTMP (rtmp_client.py + rtmp_so.py, a Python AMF stack) and over the
signalling WebSocket (Red5's JSON messages): the allowed object is joined (initial
data / Connect Success, and a write reaches the other carrier); the refused one is
answered SharedObject.NoReadAccess (RTMP status event) or Connect Fail with
code SharedObject.NoReadAccess (JSON), nothing joined; a set sent right behind the
refused connect is not applied.
"""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import websocket  # python3-websocket

from api_helpers import http_port_of
from conftest import HOST, T, port_open, wait_until
from rtmp_client import RtmpClient
from rtmp_so import SharedObject

PW = "so-admission-pw-1"


class Validator:
    """Round trip validate: {"result": false} for streamID "secret", true otherwise."""

    def __init__(self):
        self.bodies = []
        self.lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n))
                with outer.lock:
                    outer.bodies.append((self.path, body))
                ok = self.path.startswith("/invalidate") or body.get("streamID") != "secret"
                data = json.dumps({"result": ok}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer((HOST, 0), H)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = "http://%s:%d" % (HOST, self.httpd.server_address[1])

    def validated(self):
        with self.lock:
            return [b for p, b in self.bodies if p == "/validate"]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def validator():
    v = Validator()
    yield v
    v.close()


@pytest.fixture
def srv(sluice_factory, validator):
    cfg = {"auth": {"roundtrip_validate_url": validator.url + "/validate", "roundtrip_timeout": "5s"},
           "apps": {"live": {"auth_roundtrip": True}}}
    s = sluice_factory(config=cfg)
    wait_until(lambda: port_open(http_port_of(s)), T(10), message="http port")
    return s


def rtmp(srv):
    c = RtmpClient(HOST, srv.port, timeout=T(5))
    r = c.connect("live", connect_args=("alice", PW))
    assert r.ok, r
    return c


def test_rtmp_so_connect_admission(srv, validator):
    c = rtmp(srv)
    try:
        # The refused object, with a write right behind its connect.
        secret = SharedObject(c, "secret")
        secret.connect()
        secret.set("k", "must not land")
        ev = secret.wait_event("status", timeout=T(5))
        assert ev[2] == "SharedObject.NoReadAccess" and ev[3] == "error", secret.events()
        ok = SharedObject(c, "open")
        ok.connect()
        ok.set("a", 1)  # held behind the admission, applied once admitted
        ok.wait_event("initial", timeout=T(5))
        ok.wait_event("success", "a", timeout=T(5))
        bodies = validator.validated()
        assert {"username": "alice", "password": PW, "token": "", "type": "publisher",
                "streamID": "secret"} in bodies, bodies
        assert any(b["streamID"] == "open" and b["type"] == "publisher" for b in bodies), bodies
        # Nothing of the refused object was joined or written.
        assert not any(e[1] in ("initial", "success", "change") for e in secret.events()), secret.events()
        c2 = rtmp(srv)
        try:
            probe = SharedObject(c2, "secret")
            probe.connect()
            probe.wait_event("status", timeout=T(5))
            ok2 = SharedObject(c2, "open")
            ok2.connect()
            ok2.wait_event("initial", timeout=T(5))
            wait_until(lambda: ok2.data().get("a") == 1, T(5), message="open.a seen by a second client")
        finally:
            c2.close()
    finally:
        c.close()


def test_websocket_so_connect_admission(srv, validator):
    from test_shared_objects_json import JsonSo
    r = rtmp(srv)
    j = JsonSo(srv, sid="so-adm", query="&username=bob&password=%s" % PW)
    try:
        watch = SharedObject(r, "open")
        watch.connect()
        watch.wait_event("initial", timeout=T(5))
        # Refused: GetRemote answers (it joins nothing), Connect fails with Red5's code.
        j.post({"sharedObjectGetRemote": {"name": "secret"}})
        j.status("secret", "SharedObject.Status.GetRemote", "Success")
        j.post({"sharedObjectConnect": {"name": "secret"}})
        j.post({"sharedObjectSetProperty": {"name": "secret", "key": "k", "value": "must not land"}})
        fail = j.status("secret", "SharedObject.Status.Connect", "Fail")
        assert fail["data"]["code"] == "SharedObject.NoReadAccess", fail
        err = j.wait(lambda m: (m.get("data") or {}).get("type") == "error" and
                     m["data"].get("name") == "secret", "the held set refused")
        assert err["data"]["code"] == "SharedObject.NotConnected", err
        assert {"username": "bob", "password": PW, "token": "", "type": "publisher",
                "streamID": "secret"} in validator.validated(), validator.validated()
        # Allowed: joined, and a write reaches the RTMP client.
        j.join("open")
        j.post({"sharedObjectSetProperty": {"name": "open", "key": "fromWs", "value": 7}})
        ev = watch.wait_event("change", "fromWs", timeout=T(5))
        assert ev[3] == 7
        assert not any(e.get("attribute") == "k" for _, e in j.events("secret"))
    finally:
        j.close()
        r.close()
