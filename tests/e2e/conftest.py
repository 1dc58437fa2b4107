"""Fixtures for sluice's end-to-end suite: a real sluice, real clients.

What this gives a test:
  - `sluice`: a running server with the default test config (function scope).
  - `sluice_factory(config=..., env=..., config_text=...)`: more servers, custom config.
  - `module_sluice_factory`: the same with module scope, for a module that shares one
    server and one publisher across several read-only tests.
  - `media_src`: a ~12 s H.264 (640x360, 25 fps, 2 s GOP) + AAC FLV, made once per session.
  - `procs`: starts helper processes (ffmpeg, rtmpdump, gst-launch) with their output
    in a log file, and stops whatever is still running at teardown.
  - `ffmpeg_publish(url)`: an `ffmpeg -re -stream_loop -1 ... -c copy -f flv` publisher.
  - helpers: wait_until, T (deadline scaling), free_port, port_open, ffprobe_json /
    ffprobe_streams / ffprobe_packets / ffprobe_count_frames, wait_stream_live,
    tcp_socket (a socket's state and send queue from /proc/net/tcp).

Rules kept here: every wait is a poll of a condition with a deadline (no bare
sleeps); every server is stopped with SIGTERM at teardown and must exit 0 in
time, with no sanitizer report in its log and a clean exit report of its own
(its last line "stopped", with no "memory still allocated: N bytes" warning and no
libuv handle left open); on any failure the tail
of every server log (and helper process log) of the test is attached to the
report. Each server gets a free port for RTMP and for every other listener
section `--print-config yaml` shows (http, ...), and for every `<name>_port` key
of those sections (http.tls_port, ...), so servers never collide.

Secrets never reach the log (issue 11, item 6): at teardown every server's log is
searched for every secret it was given or that its test registered, and the test
fails if one is found. A server's own secrets are found in its config and
environment (keys named like access_token, secret, password, jwt_secret,
secret_key) and in data_dir/api_token; a test registers what its clients use
(passwords, tokens, JWTs) with the `secrets` fixture: `secrets("pw", token)`.

Environment: SLUICE_BIN (default <repo>/build/sluice); E2E_TIMEOUT_SCALE
multiplies deadlines (it defaults to 3 when the binary is an ASan build);
E2E_WORKERS=N starts every server with server.workers N (the suite with several
event loops). E2E_LOG_LEVEL sets the servers' log level (default debug, the highest level
at which the secrets check holds; at trace it is skipped, since trace may
print raw protocol data, credentials included).
"""

import faulthandler
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

E2E_DIR = pathlib.Path(__file__).resolve().parent
REPO = E2E_DIR.parent.parent
if str(E2E_DIR) not in sys.path:
    sys.path.insert(0, str(E2E_DIR))

import rtmp_client  # noqa: E402

SLUICE_BIN = os.environ.get("SLUICE_BIN") or str(REPO / "build" / "sluice")
HOST = "127.0.0.1"
SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                      "ERROR: ThreadSanitizer", "WARNING: ThreadSanitizer")


# ----------------------------------------------------------------------------
# pytest configuration
# ----------------------------------------------------------------------------

def pytest_configure(config):
    # Registered here rather than in an ini file: `python3 -m pytest tests/e2e` from
    # the repo root then keeps the repo as rootdir (node ids tests/e2e/...).
    config.addinivalue_line("markers", "slow: takes more than ~20 s; skipped in the ASan run")
    config.addinivalue_line("markers", "exclusive: measures timing or rates that a second test "
                            "running beside it would disturb; `make test` runs these alone, after "
                            "the rest has run two at a time (pytest-xdist)")
    config.addinivalue_line("markers", "examples: runs the integrator's example code (other "
                            "languages) against sluice; skipped in the ASan run, where the server "
                            "paths it uses are covered by their own tests")
    config.addinivalue_line("markers", "browser: needs Chromium (tests/browser style)")
    config.addinivalue_line("markers", "cluster: needs redis-server and several nodes")
    config.addinivalue_line("markers", "deb: builds the Debian package (a full build, minutes); "
                            "opt-in: runs only when -m names it (make test-deb)")
    if not os.environ.get("PYTEST_XDIST_WORKER") and not os.environ.get("E2E_REFUSED_LOG"):
        # api_helpers' record of refused connects to a listening port (the xdist workers
        # inherit this environment); printed by pytest_terminal_summary.
        os.environ["E2E_REFUSED_LOG"] = "/tmp/sluice-e2e-refused.%d.log" % os.getpid()


def pytest_terminal_summary(terminalreporter):
    path = os.environ.get("E2E_REFUSED_LOG")
    if os.environ.get("PYTEST_XDIST_WORKER") or not path or not os.path.exists(path):
        return
    lines = pathlib.Path(path).read_text().splitlines()
    terminalreporter.section("connects refused by a listening server, then retried")
    for line in lines:
        terminalreporter.write_line(line)
    os.unlink(path)


def pytest_collection_modifyitems(config, items):
    _longest_files_first(config, items)
    # `deb` tests run only when asked for by marker expression (make test-deb).
    if re.search(r"(?<!not )\bdeb\b", config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="builds the .deb: opt-in, run with -m deb (make test-deb)")
    for item in items:
        if "deb" in item.keywords:
            item.add_marker(skip)


# ----------------------------------------------------------------------------
# Scheduling: the longest test files first
# ----------------------------------------------------------------------------
#
# `make test` runs the suite two files at a time (pytest-xdist --dist loadfile), and
# xdist hands out files in collection order: a long file that comes last keeps one
# core busy while the other has nothing left to do. Under xdist the files are
# therefore ordered by their wall time in durations.txt (seconds and file, measured
# by a release run: see that file's header), longest first; the tests inside a file
# keep their order, and a single-process run keeps the plain order. A file missing
# from the table counts as NEW_FILE_SECONDS (scheduled early rather than last).
# E2E_DURATIONS_OUT=<path> writes such a table for the run (each file's setup, call
# and teardown times summed), to refresh durations.txt.

DURATIONS_TABLE = E2E_DIR / "durations.txt"
NEW_FILE_SECONDS = 60.0


def _file_durations():
    table = {}
    try:
        lines = DURATIONS_TABLE.read_text().splitlines()
    except OSError:
        return table
    for line in lines:
        parts = line.split("#", 1)[0].split()
        if len(parts) == 2:
            try:
                table[parts[1]] = float(parts[0])
            except ValueError:
                pass
    return table


def _longest_files_first(config, items):
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    table = _file_durations()

    def key(item):
        name = pathlib.Path(str(item.fspath)).name
        return -table.get(name, NEW_FILE_SECONDS), name
    items.sort(key=key)  # stable: a file's tests keep their order


_measured = {}


def pytest_runtest_logreport(report):
    if os.environ.get("E2E_DURATIONS_OUT") and not os.environ.get("PYTEST_XDIST_WORKER"):
        name = report.nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
        _measured[name] = _measured.get(name, 0.0) + report.duration


def pytest_sessionfinish(session, exitstatus):
    out = os.environ.get("E2E_DURATIONS_OUT")
    if out and _measured and not os.environ.get("PYTEST_XDIST_WORKER"):
        rows = sorted(_measured.items(), key=lambda kv: (-kv[1], kv[0]))
        head = ("# Wall seconds per e2e test file (its tests' setup, call and teardown summed),\n"
                "# by which conftest.py hands files to the xdist workers longest first.\n"
                "# Written by E2E_DURATIONS_OUT (tests/e2e/README.md); SLUICE_BIN %s,\n"
                "# E2E_WORKERS %s, -m \"%s\", load average at the end %s.\n"
                % (pathlib.Path(SLUICE_BIN).parent.name + "/" + pathlib.Path(SLUICE_BIN).name,
                   WORKERS or "default", session.config.getoption("-m") or "",
                   " ".join(open("/proc/loadavg").read().split()[:3])))
        pathlib.Path(out).write_text(head + "".join("%8.1f %s\n" % (v, k) for k, v in rows))


HANG_SECONDS = 300


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    # A watchdog, not a timeout: if one test runs this long, every thread's
    # stack is dumped to stderr so a hang can be located. Waits in tests all
    # have their own, much shorter deadlines.
    faulthandler.dump_traceback_later(HANG_SECONDS * timeout_scale(), exit=False)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        servers, node = [], item
        while node is not None:  # the test's own servers, then module-scoped ones
            servers += getattr(node, "_sluice_servers", [])
            node = node.parent
        for srv in servers:
            rep.sections.append(("sluice log %s (port %s, tail)" % (srv.name, srv.port),
                                 srv.log_tail()))
        logs, node = [], item
        while node is not None:
            logs += getattr(node, "_helper_logs", [])
            node = node.parent
        for path in logs:
            try:
                text = pathlib.Path(path).read_text(errors="replace")
            except OSError:
                continue
            rep.sections.append(("helper log %s (tail)" % pathlib.Path(path).name,
                                 _tail(text, 60)))


def _tail(text, n):
    lines = text.splitlines()
    if len(lines) > n:
        return "[... %d lines above ...]\n" % (len(lines) - n) + "\n".join(lines[-n:])
    return text


# ----------------------------------------------------------------------------
# Generic helpers
# ----------------------------------------------------------------------------

_asan_cache = {}


def is_sanitizer_build(path=SLUICE_BIN):
    """True when the binary links a sanitizer runtime (it carries its symbols)."""
    if path not in _asan_cache:
        try:
            with open(path, "rb") as f:
                data = f.read()
            _asan_cache[path] = (b"__asan_init" in data or b"__ubsan_handle" in data
                                 or b"__tsan_init" in data)
        except OSError:
            _asan_cache[path] = False
    return _asan_cache[path]


def timeout_scale():
    env = os.environ.get("E2E_TIMEOUT_SCALE")
    if env:
        return float(env)
    return 3.0 if is_sanitizer_build() else 1.0


def T(seconds):
    """A deadline scaled for slow (sanitizer) builds."""
    return seconds * timeout_scale()


def wait_until(predicate, timeout, interval=0.05, message="condition"):
    """Polls predicate() until it returns a truthy value; returns that value.

    Raises AssertionError naming `message` (a string, or a callable giving one
    at failure time) when the deadline passes.
    """
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            msg = message() if callable(message) else message
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, msg))
        time.sleep(interval)  # the poll interval of a deadline-bounded wait


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_PORTS_GIVEN = set()
# The top of each xdist worker's slice is kept for blocks of consecutive ports
# (reserve_port_block): free_port scatters single ports at random over the rest, and
# after a few hundred of them no 100 consecutive ports are left in a shared range.
_BLOCK_REGION = 2000
_block_next = None


def _port_slice():
    """This xdist worker's part of the ports below the ephemeral range, (low, high)."""
    low, high = 10000, max(_ephemeral_low() - 1, 11000)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if worker.startswith("gw") and worker[2:].isdigit() and workers > 1:
        span = (high - low + 1) // workers
        low += int(worker[2:]) * span
        high = low + span - 1
    return low, high


def reserve_port_block(n):
    """n consecutive ports nobody else in this run is given (e.g. for servers a process
    driver starts on base + i), from the block region of this worker's slice, in order."""
    global _block_next
    low, high = _port_slice()
    start = max(low, high - _BLOCK_REGION + 1)
    if _block_next is None or _block_next < start:
        _block_next = start
    if _block_next + n - 1 > high:
        raise AssertionError("no %d consecutive ports left in the block region" % n)
    base = _block_next
    _block_next += n
    _PORTS_GIVEN.update(range(base, base + n))
    return base


def free_port():
    """A TCP port that was free a moment ago, taken below the kernel's ephemeral range
    (ip_local_port_range) and never handed out twice in one run. Binding to port 0 would
    return an ephemeral port, which any outbound connection on the machine (a client of
    another test, a benchmark) may take as its source port before sluice listens on it."""
    import random
    # Under pytest-xdist each worker takes its own slice of the range, so two servers
    # started at once by two workers never pick the same port; the top of the slice is
    # for reserve_port_block.
    low, high = _port_slice()
    high = max(low + 100, high - _BLOCK_REGION)
    for _ in range(1000):
        port = random.randint(low, high)
        if port in _PORTS_GIVEN:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
        _PORTS_GIVEN.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # range exhausted: any
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_open(port, host=HOST):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
              6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
              11: "CLOSING"}


def tcp_socket(local_port, remote_port):
    """The IPv4 TCP socket local_port -> remote_port on this host, from /proc/net/tcp:
    {"state", "tx_queue", "rx_queue"} or None when there is none. Lets a test see
    that the server closed its end of a connection whose client is not reading."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            lport = int(fields[1].split(":")[1], 16)
            rport = int(fields[2].split(":")[1], 16)
            if lport == local_port and rport == remote_port:
                tx, rx = (int(x, 16) for x in fields[4].split(":"))
                return {"state": TCP_STATES.get(int(fields[3], 16), fields[3]),
                        "tx_queue": tx, "rx_queue": rx}
    return None


def tcp_state(local_port, remote_port):
    sock = tcp_socket(local_port, remote_port)
    return sock["state"] if sock else None


def ffprobe_json(target, args=(), timeout=30):
    """Runs ffprobe with JSON output on a file or URL; returns the parsed dict."""
    cmd = ["ffprobe", "-v", "error", "-print_format", "json"] + list(args) + [str(target)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError("ffprobe %s failed (%d): %s" % (target, p.returncode, p.stderr[-2000:]))
    return json.loads(p.stdout or "{}")


def ffprobe_streams(target, timeout=30, extra=()):
    return ffprobe_json(target, ["-show_streams"] + list(extra), timeout).get("streams", [])


def ffprobe_packets(path, stream="v", timeout=60):
    """Packets of one stream of a file: list of dicts with pts_time/dts_time/flags."""
    data = ffprobe_json(path, ["-select_streams", stream, "-show_packets",
                               "-show_entries", "packet=pts_time,dts_time,flags,size"], timeout)
    return data.get("packets", [])


def ffprobe_count_frames(path, timeout=60):
    """Decoded video frame count of a file (ffprobe -count_frames)."""
    data = ffprobe_json(path, ["-count_frames", "-select_streams", "v:0", "-show_entries",
                               "stream=nb_read_frames,codec_name,width,height"], timeout)
    s = data["streams"][0]
    return int(s["nb_read_frames"]), s


def make_cert(folder, name="server"):
    """A self-signed P-256 certificate and key for localhost / 127.0.0.1; (cert, key)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed")
    cert, key = folder / (name + ".crt"), folder / (name + ".key")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(cert)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return cert, key


def wait_stream_live(port, app, stream, timeout, frames=1):
    """Plays app/stream with rtmp_client until `frames` video frames arrive; closes."""
    deadline = time.monotonic() + timeout
    last_err = None
    while time.monotonic() < deadline:
        c = None
        try:
            c, _ = rtmp_client.open_player(HOST, port, app, stream, timeout=T(5),
                                           expect_start=False, name="probe")
            left = max(0.5, deadline - time.monotonic())
            c.wait_video_frames(frames, left)
            return
        except (AssertionError, OSError, rtmp_client.RtmpError) as e:
            last_err = e
        finally:
            if c is not None:
                c.close()
        time.sleep(0.2)  # poll interval before the next attempt
    raise AssertionError("stream %s/%s not live within %.1fs: %s" % (app, stream, timeout, last_err))


# ----------------------------------------------------------------------------
# The server
# ----------------------------------------------------------------------------

def to_yaml(d, indent=0):
    """A tiny YAML emitter for nested dicts of scalars (enough for test configs)."""
    out = []
    pad = "  " * indent
    for k, v in d.items():
        if isinstance(v, dict):
            if not v:
                out.append("%s%s: {}" % (pad, k))
            else:
                out.append("%s%s:" % (pad, k))
                out.append(to_yaml(v, indent + 1))
        elif isinstance(v, bool):
            out.append("%s%s: %s" % (pad, k, "true" if v else "false"))
        elif isinstance(v, (list, tuple)):
            out.append("%s%s: [%s]" % (pad, k, ", ".join(str(x) for x in v)))
        else:
            out.append("%s%s: %s" % (pad, k, v))
    return "\n".join(out)


_listeners_cache = []


def other_listener_sections():
    """Config sections other than rtmp that have a `port` (http today; rtsp, srt, ...
    later), read once from `sluice --print-config yaml`. Each test server gets a free
    port for every one, so that servers never collide on a default port."""
    return sorted(s for s in listener_port_keys() if s != "rtmp")


def listener_port_keys():
    """{section: [port keys]} for every section with a `port`: `port` and any
    `<name>_port` (http.tls_port, rtmp.tls_port), from `sluice --print-config yaml`."""
    if not _listeners_cache:
        sections = {}
        try:
            p = subprocess.run([SLUICE_BIN, "--print-config", "yaml"], capture_output=True,
                               text=True, timeout=30, env=child_env())
            section = None
            for line in p.stdout.splitlines() if p.returncode == 0 else []:
                m = re.match(r"^([a-z_]+):\s*(#.*)?$", line)
                if m:
                    section = m.group(1)
                elif section:
                    k = re.match(r"^\s+((?:[a-z]+_)?port):", line)
                    if k and k.group(1) not in sections.setdefault(section, []):
                        sections[section].append(k.group(1))
        except (OSError, subprocess.SubprocessError):
            pass
        _listeners_cache.append({s: keys for s, keys in sections.items() if "port" in keys})
    return _listeners_cache[0]


def default_config(port):
    cfg = {
        "rtmp": {"port": port, "chunk_size": 4096, "max_message_size": "8MB",
                 "handshake_timeout": "5s", "idle_timeout": "60s"},
        "media": {"queue_max_bytes": "8MB", "queue_max_ms": "5s", "slow_disconnect": "30s",
                  "gop_cache_max_bytes": "16MB"},
        "apps": {"live": {}, "other": {"enabled": True}},
    }
    for section, keys in listener_port_keys().items():
        if section == "rtmp":  # its `port` is the server's own (Sluice.port)
            cfg["rtmp"].update({k: free_port() for k in keys if k != "port"})
        else:
            cfg[section] = {k: free_port() for k in keys}
    return cfg


def merge(base, over):
    out = dict(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def child_env(extra=None):
    """The environment for sluice: ours minus every SLUICE_* (sluice reports unknown
    SLUICE_ variables, and SLUICE_BIN is ours, not its), plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    env.update(extra or {})
    return env


LOG_LEVEL = os.environ.get("E2E_LOG_LEVEL") or "debug"
# E2E_WORKERS=N runs every server with server.workers N (issue 20: the suite must
# pass with several event loops); unset leaves the server's default. Not SLUICE_*:
# tests that hand their environment to sluice unfiltered (test_packaging) would
# have it refuse an unknown SLUICE_ variable.
WORKERS = os.environ.get("E2E_WORKERS") or ""
SECRET_NAME = re.compile(r"(access_token|secret|password|jwt_secret|secret_key|token)$", re.I)
MIN_SECRET_LEN = 4  # shorter strings occur in any log by chance


def _config_secrets(d):
    """Values of config keys / SLUICE_* variables that are secrets."""
    out = []
    for k, v in (d or {}).items():
        if isinstance(v, dict):
            out += _config_secrets(v)
        elif isinstance(v, str) and SECRET_NAME.search(k.split("_", 2)[-1] if k.startswith(
                "SLUICE_") else k):
            out.append(v.strip('"'))
    return out


def log_secret_leaks(srv, extra=()):
    """The registered secrets that appear in srv's log (trace level: not checked)."""
    if LOG_LEVEL.lower() == "trace":
        return []
    found = set(srv.secrets) | set(extra)
    token_file = srv.data_dir / "api_token"
    if token_file.exists():
        found.add(token_file.read_text().strip())
    text = srv.log_text()
    return sorted(x for x in found if x and len(x) >= MIN_SECRET_LEN and x in text)


class Sluice:
    """One sluice process. Logs (stderr and stdout) go to <workdir>/sluice.log."""

    def __init__(self, workdir, name="sluice", config=None, config_text=None, env=None,
                 port=None, use_config=True, args=()):
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.port = port or free_port()
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.log_path = self.workdir / "sluice.log"
        self.config_path = self.workdir / "sluice.yml"
        if config_text is not None:
            self.config_path.write_text(config_text)
        else:
            self.config_path.write_text(to_yaml(merge(default_config(self.port), config)) + "\n")
        self.use_config = use_config
        base_env = {"SLUICE_SERVER_DATA_DIR": str(self.data_dir), "SLUICE_LOG_LEVEL": LOG_LEVEL}
        # A test's own server.workers (its env, its config, or a config text that names
        # workers) still wins: such a test is about that many loops.
        own_workers = ("workers" in ((config or {}).get("server") or {})
                       or (config_text is not None and re.search(r"(?m)^\s+workers\s*:", config_text)))
        if WORKERS and not own_workers:
            base_env["SLUICE_SERVER_WORKERS"] = WORKERS
        self.env = child_env(merge(base_env, env))
        self.secrets = set(_config_secrets(config)) | set(_config_secrets(env))
        if config_text:
            self.secrets |= set(re.findall(
                r"(?im)^\s*[\w.]*(?:token|secret|password|secret_key)\s*:\s*\"?([^\s\"#]+)",
                config_text))
        self.args = list(args)
        self.proc = None
        self._log = None
        self.returncode = None

    def cmdline(self):
        cmd = [SLUICE_BIN]
        if self.use_config:
            cmd += ["--config", str(self.config_path)]
        return cmd + self.args

    def start(self, timeout=None):
        if not os.access(SLUICE_BIN, os.X_OK):
            pytest.fail("sluice binary not found at %s (set SLUICE_BIN)" % SLUICE_BIN)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmdline(), stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.env, cwd=str(self.workdir))
        self.wait_ready(T(10) if timeout is None else timeout)
        return self

    def wait_ready(self, timeout):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("sluice exited with %s before listening on %d; log:\n%s"
                                     % (self.proc.returncode, self.port, self.log_tail()))
            return port_open(self.port)

        wait_until(ready, timeout, 0.05, "sluice to listen on port %d" % self.port)

    def url(self, app="live", stream="stream1"):
        return "rtmp://%s:%d/%s/%s" % (HOST, self.port, app, stream)

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=200):
        return _tail(self.log_text(), n)

    def wait_log(self, pattern, timeout, flags=re.I):
        """Waits until the log matches a regex; returns the match."""
        rx = re.compile(pattern, flags)
        return wait_until(lambda: rx.search(self.log_text()), timeout, 0.1,
                          "log line /%s/" % pattern)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Signals the server and waits for it; returns the exit code (None if it hung,
        in which case it has been killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(T(10) if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                self.returncode = None
                self._close_log()
                return None
        self.returncode = self.proc.returncode
        self._close_log()
        return self.returncode

    def _close_log(self):
        if self._log is not None:
            self._log.close()
            self._log = None

    def sanitizer_reports(self):
        text = self.log_text()
        return [p for p in SANITIZER_PATTERNS if p in text]

    def self_check_problems(self, exited_zero=False):
        """sluice's own exit report: its allocator's count of bytes still allocated
        (logged only when not 0) and libuv handles left open (lines it logs when it
        stops). After an exit 0 the report must be there: a "stopped" line last, so
        that a missing leak line means "nothing left", not "never got that far"."""
        text = self.log_text()
        out = []
        left = re.findall(r"memory still allocated: (\d+) bytes in (\d+) blocks", text)
        if left and (int(left[-1][0]) != 0 or int(left[-1][1]) != 0):
            out.append("leaked %s bytes in %s blocks (its allocator's count at exit)" % left[-1])
        if "handles still open" in text:
            out.append("loop closed with handles still open")
        if exited_zero and not re.search(r"\bstopped(?: \(memory still allocated: .*\))?\s*\Z",
                                         text):
            out.append("no exit report (the last line is not sluice's 'stopped')")
        return out

    def check_clean_exit(self, secrets=()):
        """Teardown contract: SIGTERM -> exit 0 in time, no sanitizer report, no
        secret (its own or the test's) in the log."""
        was_running = self.alive()
        rc = self.stop()
        problems = []
        if was_running and rc is None:
            problems.append("did not exit within %.0fs of SIGTERM (killed)" % T(10))
        elif rc is not None and rc != 0:
            problems.append("exited with %s (expected 0)" % rc)
        reports = self.sanitizer_reports()
        if reports:
            problems.append("sanitizer reports in the log: %s" % reports)
        problems += self.self_check_problems(exited_zero=(rc == 0))
        leaks = log_secret_leaks(self, secrets)
        if leaks:
            problems.append("secrets in the log (level %s): %s" % (LOG_LEVEL, leaks))
        if problems:
            pytest.fail("sluice %s: %s\n--- log tail ---\n%s"
                        % (self.name, "; ".join(problems), self.log_tail(300)), pytrace=False)


def _server_factory(request, base_dir):
    servers = []
    item = request.node

    def make(name=None, start=True, **kw):
        n = len(servers)
        name = name or ("sluice%d" % n if n else "sluice")
        srv = Sluice(pathlib.Path(base_dir) / name, name=name, **kw)
        servers.append(srv)
        if not hasattr(item, "_sluice_servers"):
            item._sluice_servers = []
        item._sluice_servers.append(srv)
        if start:
            srv.start()
        return srv

    return make, servers


def _registered_secrets(node):
    out = set()
    while node is not None:
        out |= getattr(node, "_e2e_secrets", set())
        for container in getattr(node, "_e2e_live", []):
            out |= set(container)
        node = node.parent
    return out


@pytest.fixture
def secrets(request):
    """secrets(*values): strings that must never appear in the log of any server
    of this test (or of its module's shared servers)."""
    nodes = [n for n in (request.node, request.node.getparent(pytest.Module)) if n is not None]

    def add(*values):
        for node in nodes:
            if not hasattr(node, "_e2e_secrets"):
                node._e2e_secrets = set()
            node._e2e_secrets.update(str(v) for v in values if v)
        return values[0] if len(values) == 1 else values

    def live(container):
        """Registers a container (e.g. a module's set of issued tokens) read at teardown."""
        for node in nodes:
            if not hasattr(node, "_e2e_live"):
                node._e2e_live = []
            if not any(c is container for c in node._e2e_live):
                node._e2e_live.append(container)

    add.live = live
    return add


@pytest.fixture
def sluice_factory(request, tmp_path):
    """Starts servers on demand: sluice_factory(config={...}, env={...}) -> Sluice."""
    make, servers = _server_factory(request, tmp_path)
    yield make
    for srv in servers:
        if srv.proc is not None:
            srv.check_clean_exit(_registered_secrets(request.node))


@pytest.fixture
def sluice(sluice_factory):
    """A running sluice with the default test config."""
    return sluice_factory()


@pytest.fixture(scope="module")
def module_sluice_factory(request, tmp_path_factory):
    make, servers = _server_factory(request, tmp_path_factory.mktemp("srv"))
    yield make
    for srv in servers:
        if srv.proc is not None:
            srv.check_clean_exit(_registered_secrets(request.node))


# ----------------------------------------------------------------------------
# Helper processes and media
# ----------------------------------------------------------------------------

class Procs:
    """Starts helper processes with output to a log file; stops them at teardown."""

    def __init__(self, base_dir, item=None):
        self.base_dir = pathlib.Path(base_dir)
        self.items = []
        self.item = item

    def start(self, cmd, name, stdin=subprocess.DEVNULL, env=None):
        log_path = self.base_dir / ("%s.%d.log" % (name, len(self.items)))
        log = open(log_path, "wb")
        p = subprocess.Popen([str(c) for c in cmd], stdout=log, stderr=subprocess.STDOUT,
                             stdin=stdin, env=env)
        p.log_path = log_path
        p.name = name
        self.items.append((p, log))
        if self.item is not None:
            if not hasattr(self.item, "_helper_logs"):
                self.item._helper_logs = []
            self.item._helper_logs.append(log_path)
        return p

    @staticmethod
    def log_of(p):
        try:
            return pathlib.Path(p.log_path).read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, p, sig=signal.SIGINT, timeout=10):
        """Signals one process and waits; kills it after timeout. Returns the exit code."""
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        return p.returncode

    def stop_all(self):
        for p, _ in self.items:
            if p.poll() is None:
                p.terminate()
        for p, log in self.items:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
            log.close()


@pytest.fixture
def procs(request, tmp_path):
    ps = Procs(tmp_path, request.node)
    yield ps
    ps.stop_all()


@pytest.fixture(scope="module")
def module_procs(request, tmp_path_factory):
    ps = Procs(tmp_path_factory.mktemp("procs"), request.node)
    yield ps
    ps.stop_all()


MEDIA_SECONDS = 12
MEDIA_FPS = 25


@pytest.fixture(scope="session")
def media_src(tmp_path_factory):
    """A ~12 s FLV: H.264 640x360 25 fps, keyframe every 50 frames (2 s), AAC 44.1 kHz."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    out = tmp_path_factory.mktemp("media") / "src.flv"
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=%d" % MEDIA_FPS,
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:beep_factor=4",
           "-t", str(MEDIA_SECONDS),
           "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main", "-pix_fmt", "yuv420p",
           "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
           "-b:v", "800k", "-maxrate", "800k", "-bufsize", "800k",
           "-c:a", "aac", "-b:a", "64k", "-ar", "44100", "-ac", "2",
           "-f", "flv", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, "media generation failed: %s" % p.stderr[-2000:]
    return out


@pytest.fixture(scope="session")
def media_tags(media_src):
    return rtmp_client.read_flv(media_src)


def ffmpeg_publish_cmd(src, url, extra=()):
    return ["ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostdin", "-re",
            "-stream_loop", "-1", "-i", str(src), "-c", "copy"] + list(extra) + ["-f", "flv", url]


@pytest.fixture
def ffmpeg_publish(procs, media_src):
    """ffmpeg_publish(url, extra=[]) -> Popen of a looping real-time publisher."""

    def start(url, extra=(), name="ffmpeg-publish"):
        return procs.start(ffmpeg_publish_cmd(media_src, url, extra), name)

    return start
