"""The HTTP server core seen from the wire: keep-alive, pipelining, the limits
(431/413/414), slow and malformed clients (408/400) that must not disturb anyone
else, Connection: close, HEAD, CORS, chunked request bodies, idle close, static
files, and a clean SIGTERM with connections open.

Only product routes are used: GET /healthz (200 "ok"), the static web root, and the
404 of everything else. WebSocket end-to-end is covered with the event stream's
tests (/api/v1/events); the handshake and framing are unit-tested in
tests/unit/proto/http_test.c.

Clients are plain sockets so that every byte on the wire is the test's choice.
Every wait is a condition with a deadline.
"""

import re
import socket
import time

import pytest

from conftest import HOST, T, free_port, port_open, wait_until

HEADER_TIMEOUT_S = 1.0
IDLE_TIMEOUT_S = 2.0


class Resp:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case name -> value (last wins)
        self.body = body

    def __repr__(self):
        return "<%d %s %r %r>" % (self.status, self.reason, self.headers, self.body[:80])


class Conn:
    """One client connection with a read buffer; reads whole responses."""

    def __init__(self, port, timeout=None):
        self.sock = socket.create_connection((HOST, port), timeout=timeout or T(5))
        self.buf = b""
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        """Reads more bytes; False at EOF. Raises AssertionError past the deadline."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out waiting for the server (have %r)" % self.buf[:200])
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError("timed out waiting for the server (have %r)" % self.buf[:200])
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_response(self, timeout=None, head=False):
        deadline = time.monotonic() + (timeout or T(5))
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                raise AssertionError("connection closed before a response head (have %r)"
                                     % self.buf[:200])
        head_bytes, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head_bytes.decode("latin-1").split("\r\n")
        version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        assert version == "HTTP/1.1", "bad status line %r" % lines[0]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if head else int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            if not self._fill(deadline):
                raise AssertionError("connection closed inside a body")
        body, self.buf = self.buf[:length], self.buf[length:]
        return Resp(int(status), reason, headers, body)

    def wait_closed(self, timeout):
        """True when the server closes the connection within timeout (bytes are kept)."""
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline):
                pass
        except AssertionError:
            return False
        return True

    def close(self):
        self.sock.close()


def req(path="/healthz", method="GET", headers=(), body=b""):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: test"] + list(headers)
    if body:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def check_common(r):
    assert r.headers.get("server", "").startswith("sluice/"), r
    assert r.headers.get("date", "").endswith(" GMT"), r
    assert "content-length" in r.headers or r.headers.get("transfer-encoding") == "chunked", r


@pytest.fixture(scope="module")
def web_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("web")
    (root / "index.html").write_text("<h1>console</h1>\n")
    (root / "live").mkdir()
    (root / "live" / "index.html").write_text("<p>live</p>\n")
    (root / "live" / "app.js").write_text("console.log(1);\n")
    (root / "style.css").write_text("body{}\n")
    (root / "s.m3u8").write_text("#EXTM3U\n")
    (root / "big.bin").write_bytes(b"\0" * (1024 * 1024 + 1))
    (root.parent / "secret.txt").write_text("must not be served\n")
    (root / "sdk").mkdir()
    for page in ("broadcast", "subscribe", "streams"):
        (root / "sdk" / (page + ".html")).write_text("<p>%s page</p>\n" % page)
    (root / "live" / "broadcast.jsp").write_text("a per-app file is not looked at\n")
    return root


@pytest.fixture(scope="module")
def http(module_sluice_factory, web_root):
    """One server for the module: short header and idle timeouts, a web root."""
    port = free_port()
    srv = module_sluice_factory(config={"http": {
        "port": port, "header_timeout": "%gs" % HEADER_TIMEOUT_S,
        "idle_timeout": "%gs" % IDLE_TIMEOUT_S, "web_root": str(web_root),
        "max_header_bytes": "16KB", "max_body_bytes": "1MB", "max_url_bytes": "8KB"}})
    srv.http_port = port
    wait_until(lambda: port_open(port), T(10), message="http port %d" % port)
    return srv


def test_healthz_and_common_headers(http):
    c = Conn(http.http_port)
    c.send(req())
    r = c.read_response()
    assert r.status == 200 and r.body == b"ok\n", r
    check_common(r)
    assert r.headers.get("access-control-allow-origin") == "*", r
    c.close()


def test_keep_alive_two_requests_one_socket(http):
    c = Conn(http.http_port)
    c.send(req())
    r1 = c.read_response()
    c.send(req("/no/such/page"))
    r2 = c.read_response()
    assert (r1.status, r2.status) == (200, 404), (r1, r2)
    assert r2.headers.get("content-type", "").startswith("text/plain"), r2
    assert "connection" not in r1.headers, r1
    assert not c.eof
    c.close()


def test_pipelined_answers_in_order(http):
    c = Conn(http.http_port)
    c.send(req("/healthz") + req("/missing-1") + req("/healthz", method="HEAD"))
    r1 = c.read_response()
    r2 = c.read_response()
    r3 = c.read_response(head=True)
    assert [r1.status, r2.status, r3.status] == [200, 404, 200], (r1, r2, r3)
    assert r1.body == b"ok\n" and r2.body == b"not found\n", (r1, r2)
    assert r3.headers.get("content-length") == "3", r3
    # HEAD has no body: nothing is left over, and the socket still works.
    c.send(req())
    r4 = c.read_response()
    assert r4.status == 200 and r4.body == b"ok\n", r4
    c.close()


def test_chunked_request_body_keeps_framing(http):
    c = Conn(http.http_port)
    chunked = (b"POST /missing HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n")
    c.send(chunked + req())
    r1 = c.read_response()
    r2 = c.read_response()
    assert (r1.status, r2.status, r2.body) == (404, 200, b"ok\n"), (r1, r2)
    c.close()


def test_connection_close_honoured(http):
    c = Conn(http.http_port)
    c.send(req(headers=["Connection: close"]) + req("/never-read"))
    r = c.read_response()
    assert r.status == 200 and r.headers.get("connection") == "close", r
    assert c.wait_closed(T(5)), "server kept the connection after Connection: close"
    assert b"HTTP/1.1" not in c.buf, "answered a request after Connection: close"
    c.close()


def test_http10_closes_unless_keep_alive(http):
    c = Conn(http.http_port)
    c.send(b"GET /healthz HTTP/1.0\r\n\r\n")
    r = c.read_response()
    assert r.status == 200 and r.headers.get("connection") == "close", r
    assert c.wait_closed(T(5))
    c.close()
    c = Conn(http.http_port)
    c.send(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    r = c.read_response()
    assert r.headers.get("connection", "").lower() == "keep-alive", r
    c.send(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert c.read_response().status == 200
    c.close()


def test_oversized_headers_431(http):
    c = Conn(http.http_port)
    c.send(req(headers=["X-Big: " + "b" * (32 * 1024)]))
    r = c.read_response()
    assert r.status == 431, r
    assert r.headers.get("connection") == "close", r
    assert c.wait_closed(T(5))
    c.close()


def test_too_many_headers_431(http):
    c = Conn(http.http_port)
    c.send(req(headers=["X-H%d: v" % i for i in range(150)]))
    assert c.read_response().status == 431
    c.close()


def test_body_too_large_413_before_the_body(http):
    c = Conn(http.http_port)
    # Only the head is sent: the answer must not wait for 2 MB that never come.
    c.send(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n")
    r = c.read_response()
    assert r.status == 413, r
    assert c.wait_closed(T(5))
    c.close()


def test_chunked_body_too_large_413(http):
    c = Conn(http.http_port)
    c.send(b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (256 * 1024, b"z" * (256 * 1024))
    try:
        for _ in range(6):
            c.send(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may stop reading once it has answered
    r = c.read_response()
    assert r.status == 413, r
    c.close()


def test_long_url_414(http):
    c = Conn(http.http_port)
    c.send(req("/" + "u" * (9 * 1024)))
    r = c.read_response()
    assert r.status == 414, r
    c.close()


def test_slowloris_gets_408_and_close(http):
    c = Conn(http.http_port)
    start = time.monotonic()
    c.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
    r = c.read_response(timeout=T(HEADER_TIMEOUT_S + 3))
    elapsed = time.monotonic() - start
    assert r.status == 408, r
    assert c.wait_closed(T(3)), "no close after 408"
    assert elapsed >= HEADER_TIMEOUT_S * 0.9, "408 came early (%.2fs)" % elapsed
    assert elapsed <= HEADER_TIMEOUT_S + T(1.5), "408 came late (%.2fs)" % elapsed
    c.close()


def test_silent_connection_closed_after_header_timeout(http):
    c = Conn(http.http_port)
    start = time.monotonic()
    assert c.wait_closed(T(HEADER_TIMEOUT_S + 3)), "a connection that sends nothing stayed open"
    assert time.monotonic() - start >= HEADER_TIMEOUT_S * 0.9
    assert c.buf == b"", "answered a request never sent: %r" % c.buf
    c.close()


def test_idle_keep_alive_closed(http):
    c = Conn(http.http_port)
    c.send(req())
    assert c.read_response().status == 200
    start = time.monotonic()
    assert c.wait_closed(T(IDLE_TIMEOUT_S + 3)), "idle keep-alive connection never closed"
    assert time.monotonic() - start >= IDLE_TIMEOUT_S * 0.9
    c.close()


def test_malformed_400_does_not_disturb_others(http):
    witness = Conn(http.http_port)
    witness.send(req())
    assert witness.read_response().status == 200
    bad = Conn(http.http_port)
    bad.send(b"THIS IS NOT HTTP\r\n\r\n")
    r = bad.read_response()
    assert r.status == 400, r
    assert bad.wait_closed(T(5)), "no close after 400"
    bad.close()
    for garbage in (b"GET / HTTP/1.1\r\nBad Header Line\r\n\r\n",
                    b"GET /a%00b HTTP/1.1\r\n\r\n",
                    b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"):  # a TLS hello
        bad = Conn(http.http_port)
        bad.send(garbage)
        r = bad.read_response()
        assert r.status == 400, (garbage, r)
        bad.close()
    # The witness's connection is untouched, and newcomers are served.
    witness.send(req())
    assert witness.read_response().status == 200
    witness.close()
    fresh = Conn(http.http_port)
    fresh.send(req())
    assert fresh.read_response().status == 200
    fresh.close()
    assert http.alive()


def test_cors_preflight(http):
    c = Conn(http.http_port)
    c.send(req("/api/v1/anything", method="OPTIONS",
               headers=["Origin: http://example.com", "Access-Control-Request-Method: POST"]))
    r = c.read_response()
    assert r.status == 204, r
    assert r.headers.get("access-control-allow-origin") == "*", r
    assert r.headers.get("access-control-allow-methods") == \
        "GET, POST, PUT, PATCH, DELETE, OPTIONS", r
    assert r.headers.get("access-control-allow-headers") == "Authorization, Content-Type", r
    assert int(r.headers.get("access-control-max-age", "0")) > 0, r
    c.close()


def test_static_files(http):
    c = Conn(http.http_port)
    cases = [
        ("/", 200, "text/html", b"<h1>console</h1>\n"),
        ("/index.html", 200, "text/html", b"<h1>console</h1>\n"),
        ("/live/", 200, "text/html", b"<p>live</p>\n"),
        ("/live/app.js", 200, "text/javascript", b"console.log(1);\n"),
        ("/style.css", 200, "text/css", b"body{}\n"),
        ("/s.m3u8", 200, "application/vnd.apple.mpegurl", b"#EXTM3U\n"),
        ("/nothing-here.html", 404, "text/plain", b"not found\n"),
        ("/%2e%2e/secret.txt", 403, "text/plain", None),
        ("/live/%2E%2E/%2e%2e/secret.txt", 403, "text/plain", None),
        ("/big.bin", 403, "text/plain", None),
    ]
    for path, status, ctype, body in cases:
        c.send(req(path))
        r = c.read_response()
        assert r.status == status, (path, r)
        assert r.headers.get("content-type", "").startswith(ctype), (path, r)
        if body is not None:
            assert r.body == body, (path, r)
        assert b"must not be served" not in r.body
    # Red5's per-app pages: one copy under sdk/ for every app and room.
    for path, body in (("/live/broadcast.jsp", b"<p>broadcast page</p>\n"),
                       ("/live/broadcast.html?streamName=s1", b"<p>broadcast page</p>\n"),
                       ("/any/room1/subscribe.jsp", b"<p>subscribe page</p>\n"),
                       ("/other/streams.html", b"<p>streams page</p>\n")):
        c.send(req(path))
        r = c.read_response()
        assert r.status == 200 and r.body == body, (path, r)
        assert r.headers.get("content-type", "").startswith("text/html"), (path, r)
    for path in ("/broadcast.jsp", "/live/broadcast.jspx", "/live/%2e%2e/broadcast.jsp"):
        c.send(req(path))
        assert c.read_response().status in (403, 404), path
    c.send(req("/live?x=1"))
    r = c.read_response()
    assert r.status == 301 and r.headers.get("location") == "/live/?x=1", r
    c.send(req("/live/app.js", method="HEAD"))
    r = c.read_response(head=True)
    assert r.status == 200 and r.headers.get("content-length") == "16", r
    c.send(req())
    assert c.read_response().body == b"ok\n"  # nothing was left over from HEAD
    c.close()


def test_cors_disabled(sluice_factory):
    port = free_port()
    srv = sluice_factory(config={"http": {"port": port, "cors_origin": '""'}})
    wait_until(lambda: port_open(port), T(10), message="http port")
    c = Conn(port)
    c.send(req())
    r = c.read_response()
    assert r.status == 200 and "access-control-allow-origin" not in r.headers, r
    c.send(req("/healthz", method="OPTIONS"))
    assert c.read_response().status == 404  # no preflight without CORS
    c.close()
    assert srv.alive()


def test_sigterm_with_connections_open(sluice_factory):
    port = free_port()
    srv = sluice_factory(config={"http": {"port": port}})
    wait_until(lambda: port_open(port), T(10), message="http port")
    idle = Conn(port)
    idle.send(req())
    assert idle.read_response().status == 200
    accepted = re.compile(r"\[http \S+ [^\]]*\] accepted from")
    before = len(accepted.findall(srv.log_text()))
    partial = Conn(port)
    partial.send(b"GET /heal")
    silent = Conn(port)
    wait_until(lambda: len(accepted.findall(srv.log_text())) >= before + 2, T(5),
               message="the connections accepted")
    start = time.monotonic()
    rc = srv.stop()
    assert rc == 0, "exit code %s" % rc
    assert time.monotonic() - start < T(5), "shutdown waited for idle HTTP connections"
    for c in (idle, partial, silent):
        assert c.wait_closed(T(2))
        c.close()
