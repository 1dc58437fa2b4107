"""Helpers shared by the Server API suites (test_api, test_openapi, test_events,
test_metrics): a server config with a known token, a small HTTP client that
returns status, headers and the parsed Red5 envelope, rtmpdump players, and
an event-stream WebSocket reader.

Kept out of conftest.py on purpose: only these four suites use it.
"""

import http.client
import json
import os
import pathlib
import subprocess
import threading
import time
import urllib.parse

import yaml

from conftest import HOST, T, ffmpeg_publish_cmd, port_open, wait_stream_live, wait_until

TOKEN = "e2e-api-token-0123456789"


def api_config(extra=None):
    """Config overrides for an API test server: a known token, a lenient failure limit."""
    cfg = {"api": {"access_token": TOKEN, "auth_fail_limit": 1000}}
    for k, v in (extra or {}).items():
        cfg[k] = dict(cfg.get(k, {}), **v) if isinstance(v, dict) else v
    return cfg


def http_port_of(srv):
    """The HTTP port the conftest factory picked for srv (read from its config file)."""
    if not getattr(srv, "http_port", None):
        cfg = yaml.safe_load(pathlib.Path(srv.config_path).read_text())
        srv.http_port = int(cfg["http"]["port"])
    return srv.http_port


def start_api_server(factory, config=None, **kw):
    """factory(...) with api_config(config); waits for the HTTP port too."""
    srv = factory(config=api_config(config), **kw)
    port = http_port_of(srv)
    wait_until(lambda: port_open(port), T(10), message="http port %d" % port)
    return srv


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> value
        self.body = body

    @property
    def ctype(self):
        return self.headers.get("content-type", "")

    @property
    def json(self):
        return json.loads(self.body.decode())

    @property
    def data(self):
        j = self.json
        assert j.get("status") == "success" and j.get("code") == 200, j
        return j["data"]

    def __repr__(self):
        return "<%d %s %r>" % (self.status, self.ctype, self.body[:300])


# A connect to a port the server listens on, refused: seen once in CI and once in ~125
# local runs of test_restream.py::test_push_srt_to_listener under ASan (the server alive, its listener
# open, the process exiting 0 after), never explained. When the kernel still lists a
# listener on the port (ss), the request is retried a few times and the event is written to
# the run's refused-connects file (E2E_REFUSED_LOG, printed in the session summary), so it
# stays visible without failing an unrelated test. A port nobody listens on fails at once.
REFUSED_RETRIES = 3


def _listening(port):
    try:
        out = subprocess.run(["ss", "-Hltn", "sport = :%d" % port], capture_output=True,
                             text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(out.strip())


def _note_refused(port, attempt):
    test = os.environ.get("PYTEST_CURRENT_TEST", "?")
    with open(os.environ.get("E2E_REFUSED_LOG") or "/tmp/sluice-e2e-refused.log", "a") as f:
        f.write("%.3f %s: connect to listening port %d refused (attempt %d)\n"
                % (time.time(), test, port, attempt + 1))


class Api:
    """Calls /api/v1 on one server. token=None sends none; source picks the client
    address (any 127.x.y.z works on Linux loopback)."""

    def __init__(self, srv, token=TOKEN, source=None):
        self.port = http_port_of(srv)
        self.token = token
        self.source = source

    def request(self, method, path, params=None, token="default", headers=None, body=None,
                bearer=False):
        token = self.token if token == "default" else token
        q = list((params or {}).items()) if isinstance(params, dict) else list(params or [])
        hdrs = dict(headers or {})
        if token is not None:
            if bearer:
                hdrs["Authorization"] = "Bearer " + token
            else:
                q.append(("accessToken", token))
        url = path if path.startswith("/") else "/api/v1/" + path
        if q:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(q)
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        for attempt in range(REFUSED_RETRIES + 1):
            conn = http.client.HTTPConnection(
                HOST, self.port, timeout=T(10),
                source_address=(self.source, 0) if self.source else None)
            try:
                conn.request(method, url, body=data, headers=hdrs)
                r = conn.getresponse()
                return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
            except ConnectionRefusedError:
                if attempt == REFUSED_RETRIES or not _listening(self.port):
                    raise
                _note_refused(self.port, attempt)
                time.sleep(0.05)
            finally:
                conn.close()

    def get(self, path, params=None, **kw):
        return self.request("GET", path, params, **kw)

    def delete(self, path, params=None, **kw):
        return self.request("DELETE", path, params, **kw)

    def data(self, path, params=None, **kw):
        """GET expecting 200 and the success envelope; returns data."""
        r = self.get(path, params, **kw)
        assert r.status == 200, r
        return r.data


def assert_error(resp, code, message_part=None):
    """A Red5 error envelope with this HTTP status."""
    assert resp.status == code, resp
    assert resp.ctype.startswith("application/json"), resp
    j = resp.json
    assert j["status"] == "error" and j["code"] == code, j
    assert isinstance(j["message"], str) and j["message"], j
    assert abs(j["timestamp"] - time.time() * 1000) < 60000, j
    if message_part:
        assert message_part.lower() in j["message"].lower(), j


# ----------------------------------------------------------------------------
# Media peers
# ----------------------------------------------------------------------------

def start_publisher(procs, media_src, srv, app="live", stream="stream1", wait=True):
    """ffmpeg publishing media_src in a loop at real time; waits until playable."""
    p = procs.start(ffmpeg_publish_cmd(media_src, srv.url(app, stream)), "ffmpeg-" + stream)
    if wait:
        wait_stream_live(srv.port, app, stream, T(15))
    return p


def start_player(procs, srv, app="live", stream="stream1", name="rtmpdump"):
    """An rtmpdump live player writing to /dev/null."""
    return procs.start(["rtmpdump", "-q", "-r", srv.url(app, stream), "--live", "-o", "/dev/null"],
                       name)


def subscribers(api, stream="stream1", app="live", params=None):
    r = api.get("applications/%s/streams/%s/subscribers" % (app, stream), params)
    return r.data if r.status == 200 else []


def wait_subscribers(api, n, stream="stream1", app="live", timeout=None, params=None):
    """Waits until the stream has exactly n subscribers; returns their ClientStatistics."""
    got = []

    def ok():
        got[:] = subscribers(api, stream, app, params)
        return len(got) == n

    wait_until(ok, timeout or T(15), 0.1,
               lambda: "%d subscribers of %s/%s (have %d)" % (n, app, stream, len(got)))
    return list(got)


def wait_exit(p, timeout):
    """Waits for a helper process to end; returns its exit code."""
    wait_until(lambda: p.poll() is not None, timeout, 0.1, "%s to exit" % getattr(p, "name", p))
    return p.returncode


# ----------------------------------------------------------------------------
# Event stream
# ----------------------------------------------------------------------------

class EventReader:
    """A WebSocket on /api/v1/events whose messages a thread collects into .events."""

    def __init__(self, srv, query=None, token=TOKEN):
        import websocket  # python3-websocket

        q = dict(query or {})
        if token is not None:
            q["accessToken"] = token
        self.url = "ws://%s:%d/api/v1/events?%s" % (HOST, http_port_of(srv),
                                                     urllib.parse.urlencode(q))
        self.ws = websocket.create_connection(self.url, timeout=T(10))
        self.ws.settimeout(0.2)
        self.events = []
        self.closed = None
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        import websocket

        while not self._stop:
            try:
                msg = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketException, OSError) as e:
                self.closed = e
                return
            if not msg:  # a close frame (already answered by the library): drop the TCP
                self.closed = "closed"  # connection too, as a browser does
                self.ws.shutdown()
                return
            with self._lock:
                self.events.append(json.loads(msg))

    def snapshot(self):
        with self._lock:
            return list(self.events)

    def wait_for(self, pred, timeout=None, what="event"):
        """Waits until an event matching pred arrived; returns it."""
        def found():
            for e in self.snapshot():
                if pred(e):
                    return e
            return None

        return wait_until(found, timeout or T(15), 0.05,
                          lambda: "%s on %s (have %s)" % (what, self.url, [
                              (e.get("event"), e.get("app"), e.get("stream")) for e in self.snapshot()]))

    def close(self):
        self._stop = True
        self._thread.join(2)
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001 - best effort at teardown
            pass
