"""Plugins end to end (issue 13, parts 2 and 5): the public ABI, the loader and
the examples, in a live sluice with real clients.

  - install: `cmake --install` to a temporary prefix puts the binary, the
    public headers and sluice-plugin.pc there; every example of
    examples/plugins builds with only `-I$prefix/include` (and with
    pkg-config) and `cc -shared`, nothing of the source tree;
  - hello logs events (ffmpeg publishes; the log has the plugin's lines);
  - notifier POSTs a JSON document to a local receiver from a worker;
  - allowlist lets a listed stream publish and refuses another (RTMP
    NetStream.Publish.BadName with its reason), asynchronously;
  - approute answers JSON on GET /{app}/hello (curl) and echoes on the
    WebSocket /{app}/echo;
  - the rest of the host API from a plugin built in the test: timers (repeating,
    stopped in its own callback; one-shot), statistics JSON, unpublish, kick,
    service lookup, record start/stop through the recorder service;
  - ABI: a plugin built as ABI 1.0 (an older minor) loads; a newer minor,
    another major, a missing entry symbol and a missing mandatory callback
    are refused, by --check-config and at start, with a message naming the
    file, the plugin's ABI and the host's;
  - live reload (SIGHUP): a plugin with a reload callback reads its new
    settings; serving other apps is answered as needing a restart.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import rtmp_client
from conftest import HOST, REPO, SLUICE_BIN, T, default_config, free_port, to_yaml, wait_until

EXAMPLES = pathlib.Path(REPO) / "examples" / "plugins"
CC = shutil.which("cc") or shutil.which("gcc")


def host_abi():
    text = (pathlib.Path(REPO) / "include" / "sluice" / "version.h").read_text()
    major = int(re.search(r"define SL_ABI_MAJOR (\d+)", text).group(1))
    minor = int(re.search(r"define SL_ABI_MINOR (\d+)", text).group(1))
    return major, minor


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    """sluice installed to a fresh prefix (from the build tree of SLUICE_BIN)."""
    if CC is None:
        pytest.skip("no C compiler")
    build = pathlib.Path(SLUICE_BIN).resolve().parent
    if not (build / "CMakeCache.txt").exists():
        pytest.skip("SLUICE_BIN is not in a CMake build tree")
    pfx = tmp_path_factory.mktemp("prefix")
    p = subprocess.run(["cmake", "--install", str(build), "--prefix", str(pfx)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    for f in ("bin/sluice", "include/sluice/plugin.h", "include/sluice/host.h",
              "include/sluice/errors.h", "include/sluice/version.h",
              "lib/pkgconfig/sluice-plugin.pc"):
        assert (pfx / f).exists(), f
    return pfx


def cc_plugin(src, out, prefix, extra=(), libs=()):
    """Builds one plugin the way docs/plugins.md says: installed headers only."""
    cmd = [CC, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
           "-fvisibility=hidden", "-I%s" % (prefix / "include")] + list(extra) + \
          ["-o", str(out), str(src)] + list(libs)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, "%s\n%s" % (" ".join(cmd), p.stderr)
    return out


@pytest.fixture(scope="module")
def examples(prefix, tmp_path_factory):
    """Every example built out of tree against the prefix: {name: path of the .so}."""
    out = tmp_path_factory.mktemp("plugins")
    built = {}
    for name in ("hello", "notifier", "allowlist", "approute"):
        src = out / ("%s.c" % name)
        shutil.copy(EXAMPLES / src.name, src)  # out of the source tree: no ../../include
        built[name] = cc_plugin(src, out / ("%s.so" % name), prefix,
                                libs=["-lcurl"] if name == "notifier" else [])
    return built


def test_examples_build_with_pkg_config(prefix, tmp_path):
    """The examples' Makefile builds all four with pkg-config and nothing else."""
    if shutil.which("pkg-config") is None or shutil.which("make") is None:
        pytest.skip("pkg-config or make missing")
    for f in EXAMPLES.iterdir():
        shutil.copy(f, tmp_path / f.name)
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    p = subprocess.run(["pkg-config", "--cflags", "sluice-plugin"], env=env,
                       capture_output=True, text=True)
    assert p.returncode == 0 and str(prefix / "include") in p.stdout, p.stderr
    p = subprocess.run(["make", "-C", str(tmp_path)], env=env, capture_output=True, text=True,
                       timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
    for name in ("hello", "notifier", "allowlist", "approute"):
        so = tmp_path / ("%s.so" % name)
        assert so.exists()
        syms = subprocess.run(["nm", "-D", "--defined-only", str(so)], capture_output=True,
                              text=True).stdout
        exported = [l.split()[-1] for l in syms.splitlines() if l.split()[-1:] and
                    not l.split()[-1].startswith("_")]
        assert exported == ["sl_plugin_entry"], exported  # -fvisibility=hidden + SL_EXTERN


def plugin_config(port, plugins, apps=None):
    """A test config (free ports for every listener) with a `plugins:` list."""
    cfg = default_config(port)
    if apps:
        cfg["apps"] = apps
    lines = [to_yaml(cfg), "plugins:"]
    for p in plugins:
        lines.append("  - name: %s" % p["name"])
        lines.append("    path: %s" % json.dumps(str(p["path"])))
        if p.get("apps"):
            lines.append("    apps: [%s]" % ", ".join(p["apps"]))
        if p.get("settings"):
            lines.append("    settings:")
            for k, v in p["settings"].items():
                lines.append("      %s: %s" % (k, json.dumps(str(v))))
    return "\n".join(lines) + "\n", cfg


def start_with(sluice_factory, plugins, apps=None, start=True):
    port = free_port()
    text, cfg = plugin_config(port, plugins, apps)
    srv = sluice_factory(config_text=text, port=port, start=start)
    srv.http_port = cfg["http"]["port"]
    return srv


# ---------------------------------------------------------------------------
# the examples in a live server
# ---------------------------------------------------------------------------

def test_hello_logs_events(sluice_factory, examples, ffmpeg_publish):
    srv = start_with(sluice_factory, [{"name": "hello", "path": examples["hello"],
                                       "settings": {"greeting": "hi there"}}])
    srv.wait_log(r"plugin hello loaded: hello 1\.0 \(ABI 1\.\d+, host ABI", T(5))
    srv.wait_log(r"\[plugin:hello[^\]]*\] hi there", T(5))
    ffmpeg_publish(srv.url("live", "hello1"))
    srv.wait_log(r"\[plugin:hello[^\]]*\] event connect .*proto=rtmp app=live", T(15))
    srv.wait_log(r"\[plugin:hello[^\]]*\] event publish .*app=live stream=hello1", T(15))
    srv.stop()
    assert re.search(r"plugin:hello[^\]]*\] goodbye after \d+ events", srv.log_text())



def test_hello_logs_app_and_room_lifetimes(sluice_factory, examples, ffmpeg_publish, procs):
    """Plugins get every event, the app/room lifetimes of ABI 1.2 included (hello logs them)."""
    srv = start_with(sluice_factory, [{"name": "hello", "path": examples["hello"]}])
    pub = ffmpeg_publish(srv.url("live/room1", "s1"))
    srv.wait_log(r"\[plugin:hello[^\]]*\] event app_start .*app=live stream=-", T(15))
    srv.wait_log(r"\[plugin:hello[^\]]*\] event room_start .*app=live/room1 stream=-", T(15))
    srv.wait_log(r"\[plugin:hello[^\]]*\] event publish .*app=live/room1 stream=s1", T(15))
    procs.stop(pub)
    srv.wait_log(r"\[plugin:hello[^\]]*\] event room_stop .*app=live/room1", T(15))
    srv.wait_log(r"\[plugin:hello[^\]]*\] event app_stop .*app=live stream=-", T(15))
    log = srv.log_text()
    order = [log.index("event %s " % n) for n in ("app_start", "room_start", "room_stop",
                                                   "app_stop")]
    assert order == sorted(order), order


class Receiver:
    """A local HTTP server that records POST bodies."""

    def __init__(self):
        self.bodies = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                outer.bodies.append((self.headers.get("Content-Type"), self.rfile.read(n)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer((HOST, 0), H)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_notifier_posts_on_publish(sluice_factory, examples, ffmpeg_publish):
    rx = Receiver()
    try:
        srv = start_with(sluice_factory, [{
            "name": "notifier", "path": examples["notifier"],
            "settings": {"url": "http://%s:%d/hook" % (HOST, rx.port), "timeout_ms": 3000}}])
        ffmpeg_publish(srv.url("live", "notified"))
        wait_until(lambda: rx.bodies, T(15), message="the notifier's POST")
        ctype, body = rx.bodies[0]
        assert ctype == "application/json"
        doc = json.loads(body)
        assert doc["event"] == "publish" and doc["app"] == "live"
        assert doc["stream"] == "notified" and doc["session"]
        srv.wait_log(r"plugin:notifier[^\]]*\] notified http://.*\(HTTP 200\)", T(5))
    finally:
        rx.close()


def test_notifier_needs_its_url(sluice_factory, examples):
    srv = start_with(sluice_factory, [{"name": "notifier", "path": examples["notifier"]}],
                     start=False)
    p = subprocess.run(srv.cmdline(), capture_output=True, text=True, timeout=T(20),
                       env=srv.env, cwd=str(srv.workdir))
    assert p.returncode == 1, p.stderr
    assert "the setting 'url' is required" in p.stderr
    assert re.search(r"plugin notifier \(.*notifier\.so\): init failed", p.stderr), p.stderr
    # The failed start still unloads cleanly: the exit report shows no leak.
    assert "memory still allocated" not in p.stderr, p.stderr


def test_allowlist_admission(sluice_factory, examples, tmp_path):
    allow = tmp_path / "allowed.txt"
    allow.write_text("# streams that may publish\nyes1\n  yes2  \n")
    srv = start_with(sluice_factory, [{"name": "allowlist", "path": examples["allowlist"],
                                       "apps": ["live"], "settings": {"file": allow}}])
    c, _ = rtmp_client.open_publisher(HOST, srv.port, "live", "yes1", timeout=T(5))
    c.close()
    c, _ = rtmp_client.open_publisher(HOST, srv.port, "live", "yes2", timeout=T(5))
    c.close()
    c, sid = rtmp_client.open_publisher(HOST, srv.port, "live", "nope", timeout=T(5),
                                        expect_start=False)
    try:
        st = c.wait_status_any(["NetStream.Publish.BadName", "NetStream.Publish.Start"], T(5))
        assert st.code == "NetStream.Publish.BadName", st
        assert "allow-list" in json.dumps(st.info, default=str)
    finally:
        c.close()
    srv.wait_log(r"plugin:allowlist[^\]]*\] stream nope refused: not on the allow-list", T(5))
    # Only its apps: `other` is not checked by the plugin.
    c, _ = rtmp_client.open_publisher(HOST, srv.port, "other", "nope", timeout=T(5))
    c.close()
    # Edits apply at once (the file is read on a worker for every request).
    allow.write_text("nope\n")
    c, _ = rtmp_client.open_publisher(HOST, srv.port, "live", "nope", timeout=T(5))
    c.close()


def test_approute_json_and_websocket(sluice_factory, examples):
    websocket = pytest.importorskip("websocket")
    srv = start_with(sluice_factory, [{"name": "approute", "path": examples["approute"],
                                       "settings": {"greeting": "bonjour"}}])
    url = "http://%s:%d/live/hello" % (HOST, srv.http_port)
    p = subprocess.run(["curl", "-s", "-i", url], capture_output=True, timeout=30)
    head, _, body = p.stdout.decode().partition("\r\n\r\n")
    assert " 200 " in head.splitlines()[0], p.stdout
    assert re.search(r"(?im)^content-type: application/json", head)
    doc = json.loads(body)
    assert doc["plugin"] == "approute" and doc["app"] == "live" and doc["greeting"] == "bonjour"
    assert doc["server"]["version"] and doc["server"]["sessions"] >= 1
    # Under every app it serves (all here), and nothing else under the prefix.
    p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                        "http://%s:%d/other/hello" % (HOST, srv.http_port)],
                       capture_output=True, text=True, timeout=30)
    assert p.stdout == "200"
    p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                        "http://%s:%d/live/helloworld" % (HOST, srv.http_port)],
                       capture_output=True, text=True, timeout=30)
    assert p.stdout == "404"
    ws = websocket.create_connection("ws://%s:%d/live/echo" % (HOST, srv.http_port),
                                     timeout=T(5))
    try:
        for msg in ("hello", "ünïcode", "x" * 5000):
            ws.send(msg)
            assert ws.recv() == msg
    finally:
        ws.close()
    srv.wait_log(r"plugin:approute[^\]]*\] echo socket opened on /live/echo", T(5))


# ---------------------------------------------------------------------------
# ABI checks
# ---------------------------------------------------------------------------

ABI_SRC = r"""
#include <sluice/plugin.h>

static int init(const sl_host_api_t *api, sl_host_t *h, void **state)
{
    api->log(h, SL_PLUGIN_LOG_INFO, "abi test plugin up (host %d.%d)", api->abi_major,
             api->abi_minor);
    *state = 0;
    return 0;
}
static __attribute__((unused)) void destroy(void *state) { (void)state; }

#ifndef TEST_MAJOR
#define TEST_MAJOR SL_ABI_MAJOR
#endif
#ifndef TEST_MINOR
#define TEST_MINOR SL_ABI_MINOR
#endif
#ifndef TEST_SIZE
#define TEST_SIZE sizeof(sl_plugin_t)
#endif

static const sl_plugin_t plugin = {
    .abi_major = TEST_MAJOR,
    .abi_minor = TEST_MINOR,
    .size = TEST_SIZE,
    .name = "abitest",
    .init = init,
#ifndef TEST_NO_DESTROY
    .destroy = destroy,
#endif
};

#ifndef TEST_NO_ENTRY
SL_PLUGIN_INIT(plugin)
#else
SL_EXTERN const sl_plugin_t *some_other_name(void);
SL_EXTERN const sl_plugin_t *some_other_name(void) { return &plugin; }
#endif
"""


@pytest.fixture(scope="module")
def abi_plugins(prefix, tmp_path_factory):
    out = tmp_path_factory.mktemp("abi")
    src = out / "abitest.c"
    src.write_text(ABI_SRC)
    major, minor = host_abi()
    variants = {
        "current": [],
        "older": ["-DTEST_MINOR=0", "-DTEST_SIZE=SL_PLUGIN_SIZE_1_0"],
        "newer": ["-DTEST_MINOR=%d" % (minor + 1)],
        "major": ["-DTEST_MAJOR=%d" % (major + 1)],
        "oldmajor": ["-DTEST_MAJOR=%d" % (major - 1)],
        "badsize": ["-DTEST_MINOR=%d" % minor, "-DTEST_SIZE=8"],
        "noentry": ["-DTEST_NO_ENTRY"],
        "nodestroy": ["-DTEST_NO_DESTROY"],
    }
    return {k: cc_plugin(src, out / ("abi_%s.so" % k), prefix, v) for k, v in variants.items()}


def test_abi_current_and_older_minor_load(sluice_factory, abi_plugins):
    assert host_abi()[1] >= 1, "the older-minor test needs a host minor above 0"
    srv = start_with(sluice_factory, [{"name": "cur", "path": abi_plugins["current"]},
                                      {"name": "old", "path": abi_plugins["older"]}])
    major, minor = host_abi()
    srv.wait_log(r"plugin cur loaded: abitest .*\(ABI %d\.%d, host ABI %d\.%d\)"
                 % (major, minor, major, minor), T(5))
    srv.wait_log(r"plugin old loaded: abitest .*\(ABI %d\.0, host ABI %d\.%d\)"
                 % (major, major, minor), T(5))
    srv.wait_log(r"\[plugin:old[^\]]*\] abi test plugin up", T(5))


REFUSALS = {
    "newer": r"refused: plugin ABI {M}\.{m1} is newer than the host's ABI {M}\.{m}",
    "major": r"refused: plugin ABI {M1}\.{m} has another major than the host's ABI {M}\.{m}",
    "oldmajor": r"refused: plugin ABI {M0}\.{m} has another major than the host's ABI {M}\.{m}",
    "badsize": r"refused: plugin ABI {M}\.{m} declares a descriptor of 8 bytes",
    "noentry": r"refused: it does not export the symbol sl_plugin_entry .*host ABI {M}\.{m}",
    "nodestroy": r"refused: plugin ABI {M}\.{m}: the mandatory field 'destroy' is not set",
}


def refusal_pattern(kind):
    major, minor = host_abi()
    return REFUSALS[kind].format(M=major, m=minor, m1=minor + 1, M1=major + 1, M0=major - 1)


@pytest.mark.parametrize("kind", sorted(REFUSALS))
def test_abi_refused_by_check_config(kind, abi_plugins, tmp_path):
    text, _ = plugin_config(free_port(), [{"name": "bad", "path": abi_plugins[kind]}])
    cfg = tmp_path / "sluice.yml"
    cfg.write_text(text)
    p = subprocess.run([SLUICE_BIN, "--config", str(cfg), "--check-config"],
                       capture_output=True, text=True, timeout=30,
                       env={k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")})
    assert p.returncode == 1, p.stdout + p.stderr
    line = [l for l in p.stderr.splitlines() if "plugin " in l]
    assert line, p.stderr
    # file:line of the entry, the .so's path, the plugin's ABI and the host's.
    assert re.search(r"sluice\.yml:\d+: plugins\.bad: plugin %s: " % re.escape(
        str(abi_plugins[kind])), line[0]), line[0]
    assert re.search(refusal_pattern(kind), line[0]), line[0]


def test_abi_refused_at_start(sluice_factory, abi_plugins):
    """A refused plugin stops the start before any listener opens, loudly."""
    srv = start_with(sluice_factory, [{"name": "bad", "path": abi_plugins["newer"]}],
                     start=False)
    p = subprocess.run(srv.cmdline(), capture_output=True, text=True, timeout=T(20),
                       env=srv.env, cwd=str(srv.workdir))
    assert p.returncode == 1
    assert re.search(refusal_pattern("newer"), p.stderr), p.stderr
    assert "listening" not in p.stderr


def test_missing_file_refused(sluice_factory, tmp_path):
    text, _ = plugin_config(free_port(), [{"name": "ghost", "path": tmp_path / "nope.so",
                                           "apps": ["live", "nosuch"]}])
    cfg = tmp_path / "sluice.yml"
    cfg.write_text(text)
    p = subprocess.run([SLUICE_BIN, "--config", str(cfg), "--check-config"],
                       capture_output=True, text=True, timeout=30,
                       env={k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")})
    assert p.returncode == 1
    assert re.search(r"plugins\.ghost: plugin .*nope\.so: cannot load", p.stderr), p.stderr
    assert re.search(r"plugins\.ghost: plugin ghost names the app 'nosuch', which does not exist",
                     p.stderr), p.stderr
    assert "2 configuration errors" in p.stderr, p.stderr


def test_config_errors(tmp_path):
    """`plugins:` entries are checked like every other key: file:line for each problem."""
    cfg = tmp_path / "sluice.yml"
    cfg.write_text("plugins:\n"
                   "  - name: a\n"
                   "    path: /x.so\n"
                   "    colour: blue\n"
                   "  - name: a\n"
                   "    path: /y.so\n"
                   "  - path: /z.so\n"
                   "  - name: b\n")
    p = subprocess.run([SLUICE_BIN, "--config", str(cfg), "--check-config"],
                       capture_output=True, text=True, timeout=30,
                       env={k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")})
    assert p.returncode == 1
    err = p.stderr
    assert re.search(r"sluice\.yml:4: unknown key 'colour' in a plugin entry", err), err
    assert re.search(r"sluice\.yml:5: duplicate plugin name 'a' \(first at line 2\)", err), err
    assert re.search(r"sluice\.yml:7: a plugin needs a name", err), err
    assert re.search(r"sluice\.yml:8: plugin 'b' needs a path", err), err


# ---------------------------------------------------------------------------
# the rest of the host API: timers, statistics, unpublish, kick, services
# ---------------------------------------------------------------------------

OPS_SRC = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/plugin.h>

typedef struct {
    const sl_host_api_t *api;
    sl_host_t *h;
    sl_timer_t *tick;
    int ticks;
} ops_t;

typedef struct {
    ops_t *o;
    char app[128], stream[128], session[64];
} later_t;

static void on_tick(void *arg)
{
    ops_t *o = arg;
    if (++o->ticks == 3) {
        o->api->log(o->h, SL_PLUGIN_LOG_INFO, "ticked 3 times");
        o->api->timer_stop(o->tick); /* inside its own callback */
        o->tick = NULL;
    }
}

static void stop_rec(void *arg)
{
    later_t *l = arg;
    ops_t *o = l->o;
    int first = o->api->record_stop(o->h, l->app, l->stream);
    int again = o->api->record_stop(o->h, l->app, l->stream);
    o->api->log(o->h, SL_PLUGIN_LOG_INFO, "record_stop -> %d again -> %d", first, again);
    free(l);
}

static void act(void *arg) /* a one-shot timer: act after the publish settled */
{
    later_t *l = arg;
    ops_t *o = l->o;
    char *streams = o->api->stats_json(o->h, "streams");
    char *sessions = o->api->stats_json(o->h, "sessions");
    char *server = o->api->stats_json(o->h, "server");
    o->api->log(o->h, SL_PLUGIN_LOG_INFO, "streams=%s", streams ? streams : "NULL");
    o->api->log(o->h, SL_PLUGIN_LOG_INFO, "sessions=%s", sessions ? sessions : "NULL");
    o->api->log(o->h, SL_PLUGIN_LOG_INFO, "server=%s", server ? server : "NULL");
    o->api->free(streams);
    o->api->free(sessions);
    o->api->free(server);
    if (strcmp(l->stream, "unpublishme") == 0)
        o->api->log(o->h, SL_PLUGIN_LOG_INFO, "unpublish -> %d",
                    o->api->unpublish(o->h, l->app, l->stream));
    else if (strcmp(l->stream, "kickme") == 0)
        o->api->log(o->h, SL_PLUGIN_LOG_INFO, "kick -> %d",
                    o->api->kick(o->h, l->session, "bye from ops"));
    int k = o->api->kick(o->h, "NOSUCHSESSION", NULL);
    int u = o->api->unpublish(o->h, l->app, "nosuchstream");
    o->api->log(o->h, SL_PLUGIN_LOG_INFO, "absent -> %d %d", k, u);
    if (strcmp(l->stream, "recordme") == 0) {
        int first = o->api->record_start(o->h, l->app, l->stream, NULL, 0);
        int again = o->api->record_start(o->h, l->app, l->stream, NULL, 0);
        o->api->log(o->h, SL_PLUGIN_LOG_INFO, "record_start -> %d again -> %d", first, again);
        if (o->api->timer_start(o->h, 1500, 0, stop_rec, l, NULL) == 0)
            return;
    }
    free(l);
}

static void on_event(void *state, const sl_plugin_event_t *ev)
{
    ops_t *o = state;
    if (ev->type != SL_PLUGIN_EV_PUBLISH)
        return;
    later_t *l = calloc(1, sizeof *l);
    if (!l)
        return;
    l->o = o;
    snprintf(l->app, sizeof l->app, "%s", ev->app);
    snprintf(l->stream, sizeof l->stream, "%s", ev->stream);
    snprintf(l->session, sizeof l->session, "%s", ev->session_id);
    if (o->api->timer_start(o->h, 300, 0, act, l, NULL))
        free(l);
}

static int init(const sl_host_api_t *api, sl_host_t *h, void **state)
{
    static ops_t o;
    o.api = api;
    o.h = h;
    api->log(h, SL_PLUGIN_LOG_INFO, "has rpc_register: %d; rpc service: %s; no such: %s",
             (int)SL_HOST_HAS(api, rpc_register),
             api->service_get(h, "rpc", 1, 0, NULL) ? "yes" : "no",
             api->service_get(h, "nosuch", 1, 0, NULL) ? "yes" : "no");
    api->timer_start(h, 50, 50, on_tick, &o, &o.tick);
    *state = &o;
    return 0;
}
static void destroy(void *state) { (void)state; }

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI, .name = "ops", .init = init, .destroy = destroy, .on_event = on_event,
};
SL_PLUGIN_INIT(plugin)
"""


def test_timers_stats_unpublish_kick(sluice_factory, prefix, tmp_path):
    src = tmp_path / "ops.c"
    src.write_text(OPS_SRC)
    so = cc_plugin(src, tmp_path / "ops.so", prefix)
    srv = start_with(sluice_factory, [{"name": "ops", "path": so}])
    srv.wait_log(r"\[plugin:ops[^\]]*\] has rpc_register: 1; rpc service: yes; no such: no",
                 T(5))
    srv.wait_log(r"\[plugin:ops[^\]]*\] ticked 3 times", T(5))
    # unpublish: the publisher is disconnected by the plugin's one-shot timer.
    c, _ = rtmp_client.open_publisher(HOST, srv.port, "live", "unpublishme", timeout=T(5))
    try:
        srv.wait_log(r"plugin:ops[^\]]*\] unpublish -> 0", T(5))
        c.wait_closed(T(5))
    finally:
        c.close()
    text = srv.log_text()
    streams = json.loads(re.search(r"plugin:ops[^\]]*\] streams=(.*)", text).group(1))
    assert {"name": "live/unpublishme", "publishing": True, "subscribers": 0} in streams
    sessions = json.loads(re.search(r"plugin:ops[^\]]*\] sessions=(.*)", text).group(1))
    pub = [x for x in sessions if x.get("stream") == "unpublishme"]
    assert pub and pub[0]["role"] == "publisher" and pub[0]["proto"] == "rtmp", sessions
    server = json.loads(re.search(r"plugin:ops[^\]]*\] server=(.*)", text).group(1))
    assert server["streams"] >= 1 and server["sessions"] >= 1 and server["version"]
    # kick by session id
    c, _ = rtmp_client.open_publisher(HOST, srv.port, "live", "kickme", timeout=T(5))
    try:
        srv.wait_log(r"plugin:ops[^\]]*\] kick -> 0", T(5))
        c.wait_closed(T(5))
    finally:
        c.close()
    assert "absent -> %d %d" % (-30008, -30008) in srv.log_text()  # SL_ENOTFOUND twice


def test_record_start_stop(sluice_factory, prefix, tmp_path, ffmpeg_publish):
    """record_start/record_stop reach the recorder through its service."""
    src = tmp_path / "ops.c"
    src.write_text(OPS_SRC)
    so = cc_plugin(src, tmp_path / "ops.so", prefix)
    srv = start_with(sluice_factory, [{"name": "ops", "path": so}])
    ffmpeg_publish(srv.url("live", "recordme"))
    # started, then busy (SL_EBUSY) the second time
    srv.wait_log(r"plugin:ops[^\]]*\] record_start -> 0 again -> -30009", T(20))
    srv.wait_log(r"plugin:ops[^\]]*\] records live/recordme as recordme\.flv", T(5))
    srv.wait_log(r"plugin:ops[^\]]*\] record_stop -> 0 again -> -30008", T(10))
    rec = srv.data_dir / "live" / "streams" / "recordme.flv"
    wait_until(lambda: rec.exists() and rec.stat().st_size > 1000, T(10),
               message="the recording on disk")


# ---------------------------------------------------------------------------
# live reload (SIGHUP): a plugin with a reload callback (ABI 1.1) reads its new
# settings; a change the plugins module cannot follow is reported as needing a
# restart and the plugin keeps running as it was

RELOAD_SRC = r"""
#include <sluice/plugin.h>

typedef struct {
    const sl_host_api_t *api;
    sl_host_t *h;
} st_t;

static st_t g;

static int init(const sl_host_api_t *api, sl_host_t *h, void **state)
{
    g.api = api;
    g.h = h;
    const char *v = api->setting(h, "greeting");
    api->log(h, SL_PLUGIN_LOG_INFO, "greeting at start: %s", v ? v : "(none)");
    *state = &g;
    return 0;
}
static int reload(void *state)
{
    st_t *s = state;
    const char *v = s->api->setting(s->h, "greeting");
    s->api->log(s->h, SL_PLUGIN_LOG_INFO, "greeting after reload: %s", v ? v : "(none)");
    return 0;
}
static void destroy(void *state) { (void)state; }

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI, .name = "greeter", .init = init, .destroy = destroy, .reload = reload,
};
SL_PLUGIN_INIT(plugin)
"""


def test_reload_new_settings_and_restart_only_change(sluice_factory, prefix, tmp_path):
    import signal

    src = tmp_path / "greeter.c"
    src.write_text(RELOAD_SRC)
    so = cc_plugin(src, tmp_path / "greeter.so", prefix)
    srv = start_with(sluice_factory, [{"name": "greeter", "path": so,
                                       "settings": {"greeting": "first"}}])
    srv.wait_log(r"\[plugin:greeter[^\]]*\] greeting at start: first", T(5))
    text = srv.config_path.read_text()
    assert '"first"' in text
    srv.config_path.write_text(text.replace('"first"', '"second"'))
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r"\[plugin:greeter[^\]]*\] greeting after reload: second", T(10))
    srv.wait_log(r"config reloaded \(1 change\)", T(10))
    assert "module plugins: its new settings need a restart" not in srv.log_text()
    # Serving other apps is a change the module cannot follow: restart needed,
    # and the plugin's reload does not run.
    srv.config_path.write_text(srv.config_path.read_text().replace(
        "    path:", "    apps: [live]\n    path:", 1))
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r"config reload: module plugins: its new settings need a restart", T(10))
    srv.wait_log(r"config reloaded \(1 change\)", T(10))
    assert srv.log_text().count("greeting after reload") == 1
