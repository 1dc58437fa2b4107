"""RPC both ways (issue 15; docs/integration/rpc.md), with real peers:

  - client -> server: an RTMP client (tests/e2e/rtmp_client.py, a stdlib stack that
    shares nothing with sluice) calls methods with NetConnection.call: a handler of
    a plugin built in this test (answering at once, later, with an error, never),
    and the app's business server (a small http.server here) for methods no handler
    takes: result, non-2xx, not JSON, timeout, a reply over the cap, unknown method;
    the business server sees {app, session, method, params, username};
  - the same methods through Red5's POST /api/v1/applications/{app}/invoke;
  - calls in flight per client are bounded; a client that leaves with a call
    pending does not disturb the server (ASan builds check the memory);
  - server -> client: POST .../clients/{id}/invoke returns the client's _result or
    _error, 504 when it does not answer, 404 for an unknown client; the broadcast
    POST .../invoke/clients?stream= gathers every client's answer;
  - `rpc` events on the WebSocket event stream, only when asked for by name.
"""

import json
import pathlib
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import rtmp_client
from api_helpers import TOKEN, Api, EventReader, http_port_of
from conftest import HOST, REPO, SLUICE_BIN, T, default_config, free_port, port_open, to_yaml, wait_until

CC = shutil.which("cc") or shutil.which("gcc")

PLUGIN_SRC = r"""
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/plugin.h>

typedef struct {
    const sl_host_api_t *api;
    sl_host_t *h;
} st_t;

typedef struct {
    sl_rpc_reply_fn reply;
    void *ctx;
    char *args;
} later_t;

static st_t *g;

static int echo(void *ud, const char *method, const char *args, sl_rpc_reply_fn reply, void *ctx)
{
    (void)ud, (void)method;
    reply(ctx, 0, args); /* at once, inside the call */
    return 0;
}

static void later_fire(void *arg)
{
    later_t *l = arg;
    char buf[512];
    snprintf(buf, sizeof buf, "{\"later\": %s}", l->args);
    l->reply(l->ctx, 0, buf);
    free(l->args);
    free(l);
}

static int later(void *ud, const char *method, const char *args, sl_rpc_reply_fn reply, void *ctx)
{
    (void)ud, (void)method;
    later_t *l = calloc(1, sizeof *l);
    if (!l || !(l->args = strdup(args))) {
        free(l);
        return SL_ENOMEM;
    }
    l->reply = reply;
    l->ctx = ctx;
    return g->api->timer_start(g->h, 50, 0, later_fire, l, NULL);
}

static int fail(void *ud, const char *method, const char *args, sl_rpc_reply_fn reply, void *ctx)
{
    (void)ud, (void)method, (void)args;
    reply(ctx, SL_EINVAL, "room is full");
    return 0;
}

static int never(void *ud, const char *method, const char *args, sl_rpc_reply_fn reply, void *ctx)
{
    (void)ud, (void)method, (void)args, (void)reply, (void)ctx;
    return 0; /* never answers: the server's timeout must */
}

static int big(void *ud, const char *method, const char *args, sl_rpc_reply_fn reply, void *ctx)
{
    (void)ud, (void)method, (void)args;
    char *s = malloc(20000);
    if (!s)
        return SL_ENOMEM;
    memset(s, 'x', 20000);
    s[0] = '"';
    s[19998] = '"';
    s[19999] = 0;
    reply(ctx, 0, s);
    free(s);
    return 0;
}

/* t.callme(session_id): the plugin calls "ask" on that client (host API 1.3) and
 * answers the call with the client's answer. */
typedef struct {
    sl_rpc_reply_fn reply;
    void *ctx;
} relay_t;

static void relay_answer(void *ctx, int status, const char *json)
{
    relay_t *r = ctx;
    char buf[700];
    snprintf(buf, sizeof buf, "{\"status\": %d, \"answer\": %.600s}", status, json ? json : "null");
    r->reply(r->ctx, 0, buf);
    free(r);
}

static int callme(void *ud, const char *method, const char *args, sl_rpc_reply_fn reply, void *ctx)
{
    (void)ud, (void)method;
    char sid[32] = "";
    const char *q = strchr(args, '"');
    if (q)
        sscanf(q + 1, "%31[^\"]", sid);
    relay_t *r = calloc(1, sizeof *r);
    if (!r)
        return SL_ENOMEM;
    r->reply = reply;
    r->ctx = ctx;
    int rc = g->api->invoke_client(g->h, sid, "ask", "[\"from plugin\"]", 2000, relay_answer, r);
    if (rc) { /* returning SL_ENOTFOUND would mean "no such method": answer instead */
        free(r);
        reply(ctx, rc, rc == SL_ENOTFOUND ? "no such client" : "cannot invoke");
    }
    return 0;
}

static int init(const sl_host_api_t *api, sl_host_t *h, void **state)
{
    st_t *p = calloc(1, sizeof *p);
    if (!p)
        return SL_ENOMEM;
    p->api = api;
    p->h = h;
    g = p;
    *state = p;
    int rc = api->rpc_register(h, "t.echo", echo, p);
    rc = rc ? rc : api->rpc_register(h, "t.later", later, p);
    rc = rc ? rc : api->rpc_register(h, "t.fail", fail, p);
    rc = rc ? rc : api->rpc_register(h, "t.never", never, p);
    rc = rc ? rc : api->rpc_register(h, "t.big", big, p);
    rc = rc ? rc : (SL_HOST_HAS(api, invoke_client) ? api->rpc_register(h, "t.callme", callme, p)
                                                     : SL_EINVAL);
    if (rc)
        free(p);
    return rc;
}

static void destroy(void *state) { free(state); }

/* ABI 1.3: the rpc event's own fields, when the struct has them. */
static void on_event(void *state, const sl_plugin_event_t *ev)
{
    st_t *p = state;
    if (ev->type == SL_PLUGIN_EV_RPC && ev->size >= offsetof(sl_plugin_event_t, status) + sizeof ev->status)
        p->api->log(p->h, SL_PLUGIN_LOG_INFO, "rpc event method=%s direction=%s status=%s",
                    ev->method ? ev->method : "-", ev->direction ? ev->direction : "-",
                    ev->status ? ev->status : "-");
}

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI,
    .name = "rpctest",
    .description = "RPC handlers for test_rpc.py",
    .init = init,
    .destroy = destroy,
    .on_event = on_event,
};

SL_PLUGIN_INIT(plugin)
"""


class Business:
    """The business's server: answers POSTs by method name; records the bodies."""

    def __init__(self):
        self.bodies = []
        self.lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n))
                with outer.lock:
                    outer.bodies.append(body)
                m = body.get("method")
                if m == "sum":
                    self.reply(200, json.dumps({"sum": sum(body["params"])}))
                elif m == "broken":
                    self.reply(500, "oops")
                elif m == "notjson":
                    self.reply(200, "this is not json")
                elif m == "huge":
                    self.reply(200, json.dumps("y" * 200000))
                elif m == "slow":
                    time.sleep(3)
                    self.reply(200, "1")
                else:
                    self.reply(404, "{}")

            def reply(self, code, text):
                data = text.encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the server gave up on us (the timeout test)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer((HOST, 0), H)
        self.url = "http://%s:%d/rpc" % (HOST, self.httpd.server_address[1])
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def plugin_so(tmp_path_factory):
    if CC is None:
        pytest.skip("no C compiler")
    d = tmp_path_factory.mktemp("rpcplugin")
    src = d / "rpctest.c"
    src.write_text(PLUGIN_SRC)
    out = d / "rpctest.so"
    cmd = [CC, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
           "-fvisibility=hidden", "-I%s" % (REPO / "include"), "-o", str(out), str(src)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return out


@pytest.fixture
def business():
    b = Business()
    yield b
    b.close()


@pytest.fixture
def srv(sluice_factory, plugin_so, business):
    port = free_port()
    cfg = default_config(port)
    cfg["api"] = {"access_token": TOKEN, "auth_fail_limit": 1000}
    cfg["apps"] = {
        "live": {"rpc_url": business.url, "rpc_timeout": "1s", "rpc_max_reply_bytes": "16k",
                 "rpc_max_calls_per_client": 2},
        "other": {},
    }
    text = to_yaml(cfg) + "\nplugins:\n  - name: rpctest\n    path: %s\n" % json.dumps(str(plugin_so))
    s = sluice_factory(config_text=text, port=port)
    s.http_port = cfg["http"]["port"]
    wait_until(lambda: port_open(s.http_port), T(10), message="http port")
    return s


def connect(srv, app="live", query=""):
    c = rtmp_client.RtmpClient(HOST, srv.port)
    r = c.connect(app + query)
    assert r.ok, r
    return c


def post(srv, path, body):
    return Api(srv).request("POST", path, body=body)


def err_desc(res):
    assert res.name == "_error", res
    info = res.info
    assert info["level"] == "error" and info["code"] == "NetConnection.Call.Failed", info
    return info["description"]


# ---------------------------------------------------------------------------
# client -> server
# ---------------------------------------------------------------------------

def test_call_plugin_handlers(srv):
    c = connect(srv)
    try:
        r = c.call("t.echo", None, "hi", 2.5, {"a": [1, True, None]}, timeout=T(5))
        assert r.name == "_result", r
        assert r.args[1] == ["hi", 2.5, {"a": [1, True, None]}], r.args
        r = c.call("t.later", None, 7.0, timeout=T(5))
        assert r.name == "_result" and r.args[1] == {"later": [7.0]}, r
        assert "room is full" in err_desc(c.call("t.fail", None, timeout=T(5)))
        t0 = time.monotonic()
        assert "No answer within" in err_desc(c.call("t.never", None, timeout=T(5)))
        assert time.monotonic() - t0 >= 0.9  # rpc_timeout 1s
        srv.wait_log(r"rpc event method=t\.echo direction=in status=ok", T(5))
        srv.wait_log(r"rpc event method=t\.never direction=in status=timeout", T(5))
        assert "too large" in err_desc(c.call("t.big", None, timeout=T(5)))
        # the connection still works after all of that
        assert c.call("t.echo", None, 1.0, timeout=T(5)).args[1] == [1.0]
    finally:
        c.close()


def test_call_as_amf3_command(srv):
    """A call in an AMF3 command message (type 17: a 0x00 byte, then AMF0 values)."""
    c = connect(srv)
    try:
        body = b"\x00" + rtmp_client.amf0_encode_all("t.echo", 5.0, None, "amf3", 1.0)
        c.send_message(rtmp_client.CSID_COMMAND, rtmp_client.MSG_COMMAND_AMF3, 0, 0, body)
        r = c.wait_result(5.0, T(5))
        assert r.name == "_result" and r.args[1] == ["amf3", 1.0], r
    finally:
        c.close()


def test_call_business_server(srv, business):
    c = connect(srv, query="?username=alice&password=pw")
    try:
        r = c.call("sum", None, 1.0, 2.0, 3.5, timeout=T(5))
        assert r.name == "_result" and r.args[1] == {"sum": 6.5}, r
        body = business.bodies[-1]
        assert body == {"app": "live", "session": body["session"], "method": "sum",
                        "params": [1, 2, 3.5], "username": "alice"}, body
        clients = Api(srv).data("applications/live/clients")
        assert body["session"] in [x["id"] for x in clients]
        # Red5 style: credentials as connect arguments
        c2 = rtmp_client.RtmpClient(HOST, srv.port)
        assert c2.connect("live", connect_args=("bob", "pw2")).ok
        try:
            assert c2.call("sum", None, 1.0, timeout=T(5)).name == "_result"
            assert business.bodies[-1]["username"] == "bob"
        finally:
            c2.close()
        assert "HTTP 500" in err_desc(c.call("broken", None, timeout=T(5)))
        assert "not JSON" in err_desc(c.call("notjson", None, timeout=T(5)))
        assert "too large" in err_desc(c.call("huge", None, timeout=T(5)))
        t0 = time.monotonic()
        d = err_desc(c.call("slow", None, timeout=T(5)))
        assert "No answer within" in d or "in time" in d, d
        assert time.monotonic() - t0 < 2.5
        # never retried: the slow method was POSTed once
        assert [b["method"] for b in business.bodies].count("slow") == 1
    finally:
        c.close()


def test_unknown_method_without_business_server(srv):
    c = connect(srv, app="other")
    try:
        assert "Method not found (nope)" in err_desc(c.call("nope", None, timeout=T(5)))
        # handlers serve every app
        assert c.call("t.echo", None, "x", timeout=T(5)).args[1] == ["x"]
    finally:
        c.close()


def test_calls_in_flight_per_client_and_disconnect(srv):
    c = connect(srv)
    txns = [c.send_command("t.never", None) for _ in range(3)]
    third = c.wait_result(txns[2], T(5))
    assert "Too many calls" in err_desc(third)
    c.close()  # leaves with two calls pending
    # the server answers nobody and carries on
    c2 = connect(srv)
    try:
        assert c2.call("t.echo", None, 1.0, timeout=T(5)).name == "_result"
    finally:
        c2.close()
    srv.wait_log(r"rpc: t\.never failed: No answer within", T(5))


# ---------------------------------------------------------------------------
# Red5's /invoke
# ---------------------------------------------------------------------------

def test_red5_invoke(srv, business):
    r = post(srv, "applications/live/invoke", {"method": "t.echo", "parameters": ["Tony"]})
    assert r.status == 200 and r.data == ["Tony"], r
    r = post(srv, "applications/live/invoke", {"method": "sum", "parameters": [2, 3]})
    assert r.status == 200 and r.data == {"sum": 5}, r
    assert business.bodies[-1]["session"] is None and business.bodies[-1]["username"] is None
    r = post(srv, "applications/other/invoke", {"method": "nope", "parameters": []})
    assert r.status == 404, r
    r = post(srv, "applications/live/invoke", {"method": "broken"})
    assert r.status == 502, r
    r = post(srv, "applications/live/invoke", {"method": "t.never"})
    assert r.status == 504, r
    r = post(srv, "applications/live/invoke", {"parameters": []})
    assert r.status == 400, r


# ---------------------------------------------------------------------------
# server -> client
# ---------------------------------------------------------------------------

def client_id(srv, app="live"):
    ids = [x["id"] for x in Api(srv).data("applications/%s/clients" % app)]
    assert len(ids) == 1, ids
    return ids[0]


def test_invoke_one_client(srv):
    c = connect(srv)
    seen = []

    def hello(name, n):
        seen.append((name, n))
        return {"hello": name, "n": n + 1}

    def refuse(*a):
        raise rtmp_client.InvokeError({"code": "nope", "why": "busy"})

    c.invoke_handlers.update({"hello": hello, "refuse": refuse,
                              "mute": lambda *a: rtmp_client.NO_ANSWER})
    try:
        cid = client_id(srv)
        r = post(srv, "applications/live/clients/%s/invoke" % cid,
                 {"method": "hello", "params": ["bob", 41], "timeout_ms": 5000})
        assert r.status == 200, r
        assert r.data == {"client": cid, "status": "result", "value": {"hello": "bob", "n": 42}}
        assert seen == [("bob", 41)]
        r = post(srv, "applications/live/clients/%s/invoke" % cid, {"method": "refuse"})
        assert r.status == 200 and r.data["status"] == "error", r
        assert r.data["value"] == {"code": "nope", "why": "busy"}
        t0 = time.monotonic()
        r = post(srv, "applications/live/clients/%s/invoke" % cid,
                 {"method": "mute", "timeout_ms": 300})
        assert r.status == 504, r
        assert time.monotonic() - t0 >= 0.25
        r = post(srv, "applications/live/clients/NOSUCHCLIENT/invoke", {"method": "hello"})
        assert r.status == 404, r
        r = post(srv, "applications/live/clients/%s/invoke" % cid, {"method": "x", "timeout_ms": 0})
        assert r.status == 400, r
        # still connected and answering
        assert c.call("t.echo", None, 3.0, timeout=T(5)).args[1] == [3.0]
    finally:
        c.close()


def test_plugin_invokes_a_client(srv):
    """Host API 1.3: a plugin's handler calls the caller back and relays its answer."""
    c = connect(srv)
    c.invoke_handlers["ask"] = lambda who: "yes, " + who
    try:
        cid = client_id(srv)
        r = c.call("t.callme", None, cid, timeout=T(5))
        assert r.name == "_result" and r.args[1] == {"status": 0, "answer": "yes, from plugin"}, r
        r = c.call("t.callme", None, "NOSUCHCLIENT", timeout=T(5))
        assert err_desc(r) == "no such client"
    finally:
        c.close()


def test_invoke_client_that_leaves(srv):
    c = connect(srv)
    c.invoke_handlers["mute"] = lambda *a: rtmp_client.NO_ANSWER
    cid = client_id(srv)
    out = {}

    def call():
        out["r"] = post(srv, "applications/live/clients/%s/invoke" % cid,
                        {"method": "mute", "timeout_ms": 10000})

    t = threading.Thread(target=call)
    t.start()
    wait_until(lambda: any(n == "mute" for _, n, _ in c.commands), T(5), message="invoke arrives")
    c.close()
    t.join(T(10))
    assert out["r"].status == 410, out["r"]


def test_invoke_every_client_of_a_stream(srv):
    pub = connect(srv)
    sid = pub.create_stream()
    pub.publish(sid, "cam1")
    pub.wait_status("NetStream.Publish.Start", T(5))
    other = connect(srv)
    pub.invoke_handlers["who"] = lambda: "publisher"
    other.invoke_handlers["who"] = lambda: "other"
    try:
        r = post(srv, "applications/live/invoke/clients?stream=cam1",
                 {"method": "who", "timeout_ms": 3000})
        assert r.status == 200, r
        assert [(x["status"], x["value"]) for x in r.data] == [("result", "publisher")], r.data
        r = post(srv, "applications/live/invoke/clients", {"method": "who", "timeout_ms": 3000})
        assert r.status == 200, r
        assert sorted(x["value"] for x in r.data) == ["other", "publisher"], r.data
        r = post(srv, "applications/live/invoke/clients?stream=none", {"method": "who"})
        assert r.status == 200 and r.data == [], r
    finally:
        pub.close()
        other.close()


# ---------------------------------------------------------------------------
# events
# ---------------------------------------------------------------------------

def test_rpc_events_only_by_name(srv):
    plain = EventReader(srv)
    named = EventReader(srv, query={"type": "rpc,connect"})
    try:
        c = connect(srv)
        c.invoke_handlers["ping"] = lambda: "pong"
        try:
            assert c.call("t.echo", None, 1.0, timeout=T(5)).name == "_result"
            err_desc(c.call("t.fail", None, timeout=T(5)))
            cid = client_id(srv)
            assert post(srv, "applications/live/clients/%s/invoke" % cid,
                        {"method": "ping"}).status == 200
            ev = named.wait_for(lambda e: e.get("event") == "rpc" and e.get("direction") == "out",
                                T(5), "rpc out")
            assert ev["method"] == "ping" and ev["status"] == "ok" and ev["session"] == cid, ev
            evs = [e for e in named.snapshot() if e.get("event") == "rpc"]
            ins = [e for e in evs if e["direction"] == "in"]
            assert [(e["method"], e["status"]) for e in ins] == [("t.echo", "ok"), ("t.fail", "error")]
            assert ins[1]["reason"] == "room is full" and ins[0]["session"] == cid
            assert all("duration_ms" in e for e in evs)
            o = connect(srv, app="other")  # no handler, no business server
            try:
                err_desc(o.call("nope", None, timeout=T(5)))
            finally:
                o.close()
            ev = named.wait_for(lambda e: e.get("event") == "rpc" and e.get("method") == "nope",
                                T(5), "rpc not_found")
            assert ev["status"] == "not_found" and ev["app"] == "other", ev
        finally:
            c.close()
        plain.wait_for(lambda e: e.get("event") == "disconnect", T(5), "disconnect")
        assert not [e for e in plain.snapshot() if e.get("event") == "rpc"]
    finally:
        plain.close()
        named.close()


# ---------------------------------------------------------------------------
# shutdown with everything pending
# ---------------------------------------------------------------------------

def test_shutdown_with_calls_and_invokes_pending(srv, business):
    """SIGTERM while a client's call waits on a handler that never answers, another on the
    slow business server, and an API invoke waits on a client that never answers: exit 0,
    nothing leaked, no sanitizer report (the fixture checks), every waiter answered."""
    c = connect(srv)
    c.invoke_handlers["mute"] = lambda *a: rtmp_client.NO_ANSWER
    cid = client_id(srv)
    c.send_command("t.never", None)
    c.send_command("slow", None)
    out = {}

    def call():
        try:
            out["r"] = post(srv, "applications/live/clients/%s/invoke" % cid,
                            {"method": "mute", "timeout_ms": 60000})
        except OSError as e:  # the server may close the connection instead of answering
            out["r"] = e

    t = threading.Thread(target=call)
    t.start()
    wait_until(lambda: any(n == "mute" for _, n, _ in c.commands), T(5), message="invoke arrives")
    wait_until(lambda: any(b["method"] == "slow" for b in business.bodies), T(5),
               message="slow call reaches the business server")
    assert srv.stop() == 0
    t.join(T(10))
    assert "r" in out
    assert srv.self_check_problems(exited_zero=True) == []
    assert not srv.sanitizer_reports()
    c.close()
