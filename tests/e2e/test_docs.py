"""Doc tests: the examples in README.md, docs/*.md and docs/integration/*.md run.

A fenced block is runnable when the line just before its opening fence (blank
lines aside) is an HTML comment, which GitHub does not render:

    <!-- doctest: yaml-config -->      a sluice.yml (or a part of one): `--check-config`
                                       must pass, then a real sluice starts with it and
                                       stops cleanly (exit 0, nothing left allocated)
    <!-- doctest: shell -->            a shell script run with bash -e, a deadline, and
                                       exit status 0 required
    <!-- doctest: python -->           a Python script run with a deadline, exit 0

Options follow the kind: `outputs=A,B` (python: stdout lines 1, 2, ... become the
environment variables A, B of the file's later shell blocks), `publish=app/stream`
(shell: a server and a publisher of that stream are up before the block runs;
with `hls` also, its HLS playlist lists a segment, which makes the harness an HLS
player of that stream), `server` (shell: a server with the default config
is up; one started by an earlier block is kept),
`check-only` (yaml-config: only `--check-config`, for a config that needs a peer
that is not there, e.g. S3), `background` (python: a server the later blocks talk to,
e.g. a validate endpoint; it must open the port the file's setup gives it, and is
stopped at the end), `defer` (run after the file's other blocks, for a command shown
before the server it needs).

The blocks of one file run in order in one scratch folder, which holds `input.mp4`
(12 s of H.264 + AAC), a copy of the shipped `sluice.yml`, and whatever the file's
entry in FILE_SETUP writes (credentials, certificates). Every block is rewritten
the same visible way before it runs:
  - `localhost` / `127.0.0.1` URLs get the test's own ports (rtmp 1935, rtmps 1936,
    http 5080, https 5443, rtsp 8554, rtsps 8322 and the scheme defaults), and every server gets those
    ports through SLUICE_<SECTION>_<PORT KEY> (the environment wins over the file);
  - `accessToken=TOKEN` gets the server's API token (SLUICE_API_ACCESS_TOKEN);
  - FILE_SETUP's substitutions (e.g. /etc/sluice/... paths to the scratch files).
Shell blocks run with small wrappers, defined at the top of the script, that make
live clients finish: `ffmpeg -re ...` (a publisher) runs in the background until the
file's blocks are done (its first input looped); any other `ffmpeg` writes 3 s; `ffplay URL` decodes 2 s with
`ffmpeg -f null` (no display; its exit status counts, ffplay's would not);
`rtmpdump --live -o FILE` runs a few seconds and must have written media;
`./build/sluice` / `sluice` with a server command line starts that server in the
background (stopping the previous one) and waits for its RTMP port.

The run reports, per file, how many blocks ran (see the `docs:` lines in the
output). A file that has examples but no runnable block must be listed in
NOT_RUNNABLE with the reason.
"""

import os
import pathlib
import re
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest

from conftest import (HOST, REPO, SANITIZER_PATTERNS, SLUICE_BIN, Sluice, T, child_env,
                      ffmpeg_publish_cmd, free_port, listener_port_keys, make_cert, port_open,
                      wait_stream_live, wait_until)

# Minutes on a sanitizer build and about the docs, not memory safety: the ASan run
# (-m "not slow") leaves it to the normal one.
pytestmark = pytest.mark.slow

DOC_FILES = sorted(["README.md"] + [str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md")]
                   + [str(p.relative_to(REPO)) for p in (REPO / "docs" / "integration").glob("*.md")])
MARKER = re.compile(r"^<!--\s*doctest:\s*(?P<kind>[a-z-]+)(?P<opts>[^>]*?)\s*-->\s*$")
KINDS = ("yaml-config", "shell", "python")
API_TOKEN = "doctest-api-token-0123456789"

# Files whose fenced blocks are all illustrative (layouts, outputs, wire formats),
# with the reason; any other file with fences must have a runnable block.
NOT_RUNNABLE = {
    "docs/config.md": "generated from the settings tables in src/; its values are tested by config_test",
    "docs/recording.md": "the block is a file layout",
    "docs/performance.md": "bench/ commands of minutes each (run by hand, results in the page)",
    "docs/client-c.md": "sluice-bench/sluice-publish runs are covered by test_client_tools.py",
    "docs/plugins.md": "the examples are built from an installed prefix and run by test_plugins.py",
    "docs/install.md": "make install, the .deb, docker, kubectl: run by test_packaging.py (make install "
                       "into a DESTDIR, pkg-config builds; the .deb with -m deb), docker/kubectl "
                       "are checked structurally (no daemon or cluster in CI)",
    "docs/sdk.md": "browser JavaScript: the SDK's calls are run in Chromium by tests/browser/sdk.test.mjs "
                   "and its unit tests (make test-sdk)",
}


# ----------------------------------------------------------------------------
# reading the docs
# ----------------------------------------------------------------------------

class Block:
    def __init__(self, path, line, info, text, kind=None, opts=None):
        self.path, self.line, self.info, self.text = path, line, info, text
        self.kind, self.opts = kind, opts or {}

    def __repr__(self):
        return "%s:%d (%s)" % (self.path, self.line, self.kind or "illustrative")


def parse_opts(s):
    out = {}
    for word in s.split():
        k, _, v = word.partition("=")
        out[k] = v if v else True
    return out


def read_blocks(rel):
    """Every fenced block of a doc, runnable or not, and the markers that precede
    no fence (errors)."""
    lines = (REPO / rel).read_text().split("\n")
    blocks, errors, pending = [], [], None
    i = 0
    while i < len(lines):
        line = lines[i]
        m = MARKER.match(line.strip())
        if m:
            if pending:
                errors.append("%s:%d: doctest marker not followed by a fence" % (rel, pending[0]))
            pending = (i + 1, m.group("kind"), parse_opts(m.group("opts")))
            if m.group("kind") not in KINDS:
                errors.append("%s:%d: unknown doctest kind %r (known: %s)"
                              % (rel, i + 1, m.group("kind"), ", ".join(KINDS)))
        elif line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            b = Block(rel, i + 1, line[3:].strip(), "\n".join(lines[i + 1:j]) + "\n")
            if pending:
                b.kind, b.opts = pending[1], pending[2]
                pending = None
            blocks.append(b)
            i = j
        elif line.strip() and pending:
            errors.append("%s:%d: doctest marker not followed by a fence" % (rel, pending[0]))
            pending = None
        i += 1
    if pending:
        errors.append("%s:%d: doctest marker not followed by a fence" % (rel, pending[0]))
    return blocks, errors


# ----------------------------------------------------------------------------
# per-file setup: files the examples refer to, and where they are here
# ----------------------------------------------------------------------------

def setup_tls(work):
    cert, key = make_cert(work, "tls")
    return {"/etc/sluice/tls/fullchain.pem": str(cert), "/etc/sluice/tls/privkey.pem": str(key)}


def setup_simple(work):
    (work / "simple-auth.credentials").write_text("alice secret\nbob pass\n")
    return {"/etc/sluice/simple-auth.credentials": str(work / "simple-auth.credentials")}


def setup_roundtrip(work, ports):
    return {"auth.internal:3000": "127.0.0.1:%d" % ports["aux"],
            "localhost:3000": "127.0.0.1:%d" % ports["aux"],
            '("0.0.0.0", 3000)': '("127.0.0.1", %d)' % ports["aux"],
            "listen(3000)": "listen(%d)" % ports["aux"]}


def setup_readme(work, ports):
    return {"SLUICE_RTMP_PORT=19350": "SLUICE_RTMP_PORT=%d" % ports["rtmp"]}


def setup_exec(work):
    return {"/usr/local/bin/archive-recording": "/bin/true",
            "/opt/hooks/stream-ended.sh": "/bin/true"}


def setup_jwt(work):
    # the doc's shell block writes jwt-public.pem here; the config names its place
    return {"/etc/sluice/jwt-public.pem": str(work / "jwt-public.pem")}


FILE_SETUP = {
    "docs/integration/auth-jwt.md": lambda work, ports: setup_jwt(work),
    "README.md": lambda work, ports: setup_readme(work, ports),
    "docs/integration/https.md": lambda work, ports: setup_tls(work),
    "docs/integration/rtmps.md": lambda work, ports: setup_tls(work),
    "docs/integration/auth-simple.md": lambda work, ports: setup_simple(work),
    "docs/integration/auth-roundtrip.md": setup_roundtrip,
    "docs/integration/exec-hooks.md": lambda work, ports: setup_exec(work),
}

# Environment a doc tells its reader to set beside the file (secrets kept out of it).
FILE_ENV = {
    "docs/integration/s3.md": {"SLUICE_S3_SECRET_KEY": "doc-s3-secret-not-in-the-file"},
}

SCHEME_PORT = {("rtmp", None): "rtmp", ("rtmp", "1935"): "rtmp", ("rtmps", None): "rtmps",
               ("rtmps", "1936"): "rtmps", ("http", "5080"): "http", ("https", "5443"): "https",
               ("ws", "5080"): "http", ("wss", "5443"): "https", ("http", "3000"): "aux",
               ("rtsp", None): "rtsp", ("rtsp", "8554"): "rtsp", ("rtsps", "8322"): "rtsps"}
URL = re.compile(r"\b(rtmps?|rtsps?|https?|wss?)://(?:localhost|127\.0\.0\.1)(?::(\d+|\{rtmp_port\}))?")


def rewrite(text, ports, subst):
    for old, new in subst.items():
        text = text.replace(old, new)

    def url(m):
        key = SCHEME_PORT.get((m.group(1), m.group(2)))
        if key is None:
            return m.group(0)
        return "%s://%s:%d" % (m.group(1), HOST, ports[key])

    text = URL.sub(url, text)
    return text.replace("accessToken=TOKEN", "accessToken=" + API_TOKEN)


# ----------------------------------------------------------------------------
# running
# ----------------------------------------------------------------------------

SHELL_PRELUDE = r'''
set -e
cd "$DOC_WORK"
__deadline=$DOC_CMD_TIMEOUT
__wait_port() {
  local i
  for i in $(seq 1 $((__deadline * 10))); do
    (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0
    sleep 0.1  # poll interval of a deadline-bounded wait
  done
  echo "doctest: port $1 did not open" >&2; return 1
}
__stop_server() {
  local p i
  p=$(cat "$DOC_WORK/server.pid" 2>/dev/null || true)
  [ -n "$p" ] || return 0
  kill -TERM "$p" 2>/dev/null || true
  for i in $(seq 1 $((__deadline * 10))); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  : > "$DOC_WORK/server.pid"
}
__sluice() {
  case " $* " in
    *" --check-config "*|*" --print-config "*|*" --version "*|*" --help "*) "$SLUICE_BIN" "$@"; return ;;
  esac
  __stop_server
  "$SLUICE_BIN" "$@" >> "$DOC_WORK/doc-sluice.log" 2>&1 &
  echo $! > "$DOC_WORK/server.pid"
  echo $! >> "$DOC_WORK/doc-servers.pids"
  __wait_port "$SLUICE_RTMP_PORT"
}
function ./build/sluice { __sluice "$@"; }
function build/sluice { __sluice "$@"; }
function sluice { __sluice "$@"; }
ffmpeg() {
  case " $* " in
    *" -re "*)
      # looped, so that a publisher outlives the 12 s of input.mp4 on a slow (sanitizer) build
      command ffmpeg -hide_banner -loglevel error -nostdin -stream_loop -1 "$@" >> "$DOC_WORK/publishers.log" 2>&1 &
      echo $! >> "$DOC_WORK/bg.pids"
      return 0 ;;
  esac
  local n=$#
  timeout "$__deadline" ffmpeg -hide_banner -loglevel error -nostdin -y "${@:1:$((n-1))}" -t 3 "${!n}"
}
ffprobe() { timeout "$__deadline" ffprobe "$@"; }
curl() { command curl --max-time "$__deadline" --fail "$@"; }
ffplay() {
  local n=$#
  timeout "$__deadline" ffmpeg -hide_banner -loglevel error -nostdin "${@:1:$((n-1))}" -i "${!n}" -t 2 -f null -
}
rtmpdump() {
  local out="" prev="" a rc=0
  for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done
  timeout -s INT "$DOC_LIVE_SECONDS" rtmpdump -q "$@" || rc=$?
  [ "$out" = "-" ] && return 0  # a pipe: its reader's status counts
  if [ -n "$out" ] && [ "$(stat -c %s "$out" 2>/dev/null || echo 0)" -gt 10000 ]; then return 0; fi
  echo "doctest: rtmpdump (status $rc) wrote no media to '$out'" >&2
  return 1
}
'''


class DocRun:
    """The state of one file's run: ports, scratch folder, server, env, helpers."""

    def __init__(self, rel, work, media_src, sluice_factory):
        self.rel, self.work = rel, work
        self.factory = sluice_factory
        self.ports = {"rtmp": free_port(), "rtmps": free_port(), "http": free_port(),
                      "https": free_port(), "aux": free_port(), "rtsp": free_port(), "rtsps": free_port()}
        self.env = {"SLUICE_RTMP_PORT": str(self.ports["rtmp"]),
                    "SLUICE_HTTP_PORT": str(self.ports["http"]),
                    "SLUICE_API_ACCESS_TOKEN": API_TOKEN,
                    "SLUICE_SERVER_DATA_DIR": str(work / "data")}
        for section, keys in listener_port_keys().items():
            for k in keys:
                name = "SLUICE_%s_%s" % (section.upper(), k.upper())
                if name not in self.env:
                    self.env[name] = str({("rtmp", "tls_port"): self.ports["rtmps"],
                                          ("http", "tls_port"): self.ports["https"],
                                          ("rtsp", "port"): self.ports["rtsp"],
                                          ("rtsp", "tls_port"): self.ports["rtsps"]}
                                         .get((section, k), free_port()))
        (work / "data").mkdir(exist_ok=True)
        mp4 = work / "input.mp4"
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(media_src),
                        "-c", "copy", str(mp4)], check=True, timeout=60)
        shutil.copy(REPO / "sluice.yml", work / "sluice.yml")
        self.env.update(FILE_ENV.get(rel, {}))
        setup = FILE_SETUP.get(rel)
        self.subst = setup(work, self.ports) if setup else {}
        self.media_src = media_src
        self.server = None
        self.outputs = {}
        self.bg = []
        self.n_run = {}

    def stop_server(self):
        if self.server is not None and self.server.alive():
            self.server.stop()
        pid_file = self.work / "server.pid"
        pid = pid_file.read_text().strip() if pid_file.exists() else ""
        if pid:
            try:
                os.kill(int(pid), signal.SIGTERM)
                wait_until(lambda: not pid_alive(int(pid)), T(10), 0.1, "doc server %s to stop" % pid)
            except ProcessLookupError:
                pass
            pid_file.write_text("")

    def shell_env(self):
        env = child_env(self.env)
        env.update(self.outputs)
        env.update({"DOC_WORK": str(self.work), "SLUICE_BIN": SLUICE_BIN,
                    "DOC_CMD_TIMEOUT": str(int(T(30))), "DOC_LIVE_SECONDS": str(int(T(5))),
                    "SDL_AUDIODRIVER": "dummy"})
        return env

    def run(self, b):
        text = rewrite(b.text, self.ports, self.subst)
        getattr(self, "run_" + b.kind.replace("-", "_"))(b, text)
        self.n_run[b.kind] = self.n_run.get(b.kind, 0) + 1

    def run_yaml_config(self, b, text):
        cfg = self.work / ("block-%d.yml" % b.line)
        cfg.write_text(text)
        p = subprocess.run([SLUICE_BIN, "--check-config", "--config", str(cfg)], capture_output=True,
                           text=True, timeout=T(30), env=child_env(self.env), cwd=str(self.work))
        assert p.returncode == 0, "%r: --check-config failed:\n%s%s" % (b, p.stdout, p.stderr)
        if b.opts.get("check-only"):
            return
        self.stop_server()
        self.server = self.factory(name="doc-%d" % b.line, config_text=text, env=self.env,
                                   port=self.ports["rtmp"], start=False)
        self.server.config_path.write_text(text)
        self.server.start()
        (self.work / "server.pid").write_text(str(self.server.proc.pid))

    def ensure_server(self):
        if not port_open(self.ports["rtmp"]):
            self.server = self.factory(name="doc-default", env=self.env, port=self.ports["rtmp"],
                                       config_text="apps:\n  live: {}\n")
            (self.work / "server.pid").write_text(str(self.server.proc.pid))

    def hls_ready(self, path):
        """The stream's HLS media playlist lists a segment (players given the URL
        at once then find something to play)."""
        base = "http://%s:%d/%s" % (HOST, self.ports["http"], path.rsplit("/", 1)[0])
        try:
            with urllib.request.urlopen("http://%s:%d/%s.m3u8" % (HOST, self.ports["http"], path),
                                        timeout=T(5)) as r:
                uri = [ln for ln in r.read().decode().splitlines() if ln and not ln.startswith("#")][0]
            with urllib.request.urlopen(base + "/" + uri, timeout=T(5)) as r:
                return "#EXTINF" in r.read().decode()
        except (OSError, IndexError):
            return False

    def ensure_publisher(self, path, hls=False):
        self.ensure_server()
        app, _, stream = path.partition("/")
        url = "rtmp://%s:%d/%s" % (HOST, self.ports["rtmp"], path)
        log = open(self.work / "publish.log", "ab")
        self.bg.append(subprocess.Popen(ffmpeg_publish_cmd(self.media_src, url), stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        log.close()
        wait_stream_live(self.ports["rtmp"], app, stream, T(15))
        if hls:
            wait_until(lambda: self.hls_ready(path), T(20), 0.2, "HLS of %s to have a segment" % path)

    def run_shell(self, b, text):
        if b.opts.get("server"):
            self.ensure_server()
        if b.opts.get("publish"):
            self.ensure_publisher(b.opts["publish"], hls=bool(b.opts.get("hls")))
        script = self.work / ("block-%d.sh" % b.line)
        script.write_text(SHELL_PRELUDE + "\n# ---- %s\n" % b + text)
        try:
            p = subprocess.run(["bash", str(script)], capture_output=True, text=True,
                               timeout=T(90), env=self.shell_env(), cwd=str(self.work))
        except subprocess.TimeoutExpired as e:
            pytest.fail("%r: did not finish in %.0fs\n%s" % (b, T(90), e.stderr), pytrace=False)
        assert p.returncode == 0, "%r exited %d\n--- script\n%s\n--- stdout\n%s\n--- stderr\n%s" % (
            b, p.returncode, text, p.stdout[-3000:], p.stderr[-3000:])

    def run_python(self, b, text):
        if b.opts.get("background"):
            log = open(self.work / ("python-%d.log" % b.line), "ab")
            self.bg.append(subprocess.Popen(["/usr/bin/python3", "-c", text], stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=child_env(), cwd=str(self.work)))
            log.close()
            wait_until(lambda: port_open(self.ports["aux"]), T(10), 0.05,
                       "%r to listen on its port %d" % (b, self.ports["aux"]))
            return
        p = subprocess.run(["/usr/bin/python3", "-c", text], capture_output=True, text=True,
                           timeout=T(60), env=child_env(), cwd=str(self.work))
        assert p.returncode == 0, "%r exited %d\n%s" % (b, p.returncode, p.stderr[-3000:])
        names = [n for n in str(b.opts.get("outputs", "")).split(",") if n]
        lines = p.stdout.splitlines()
        assert len(lines) >= len(names), "%r printed %d lines, expected %s" % (b, len(lines), names)
        self.outputs.update(zip(names, lines))

    def finish(self):
        """Stops what the blocks left running; servers started by a shell block
        must have stopped cleanly (the log's own exit report)."""
        for pids in (self.work / "bg.pids",):
            if pids.exists():
                for pid in pids.read_text().split():
                    try:
                        os.kill(int(pid), signal.SIGINT)
                    except (ProcessLookupError, ValueError):
                        pass
        for p in self.bg:
            p.send_signal(signal.SIGINT)
            try:
                p.wait(T(10))
            except subprocess.TimeoutExpired:
                p.kill()
        self.stop_server()
        log = self.work / "doc-sluice.log"
        if log.exists():
            text = log.read_text(errors="replace")
            bad = [s for s in SANITIZER_PATTERNS if s in text]
            left = re.findall(r"memory still allocated: (\d+) bytes", text)
            assert not bad, "sanitizer report from a doc-started server:\n%s" % text[-3000:]
            assert all(n == "0" for n in left), "doc-started server leaked:\n%s" % text[-3000:]


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of ours counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


# ----------------------------------------------------------------------------
# tests
# ----------------------------------------------------------------------------

def test_doc_markers_are_well_formed():
    """Every marker names a known kind and sits right before a fence; a file with
    examples has a runnable one or says why not (NOT_RUNNABLE)."""
    problems = []
    for rel in DOC_FILES:
        blocks, errors = read_blocks(rel)
        problems += errors
        if blocks and not any(b.kind for b in blocks) and rel not in NOT_RUNNABLE:
            problems.append("%s: %d fenced blocks, none runnable (mark them, or list the file "
                            "in NOT_RUNNABLE with the reason)" % (rel, len(blocks)))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("rel", [r for r in DOC_FILES if any(b.kind for b in read_blocks(r)[0])])
def test_doc_examples_run(rel, tmp_path, media_src, sluice_factory, capsys):
    run = DocRun(rel, tmp_path, media_src, sluice_factory)
    blocks = [b for b in read_blocks(rel)[0] if b.kind]
    blocks = [b for b in blocks if not b.opts.get("defer")] + [b for b in blocks if b.opts.get("defer")]
    try:
        for b in blocks:
            run.run(b)
    finally:
        run.finish()
    summary = "docs: %s: ran %d block%s (%s)" % (
        rel, len(blocks), "" if len(blocks) == 1 else "s",
        ", ".join("%s %d" % kv for kv in sorted(run.n_run.items())))
    with capsys.disabled():  # shown in every run, -q included
        print("\n" + summary)
    assert sum(run.n_run.values()) == len(blocks)


def test_config_md_names_every_section():
    """docs/config.md's introduction lists every top-level section (it named 5 of 14)."""
    p = subprocess.run([SLUICE_BIN, "--print-config", "yaml"], capture_output=True, text=True,
                       timeout=30, env=child_env())
    sections = re.findall(r"^([a-z_]+):", p.stdout, re.M)
    intro = (REPO / "docs" / "config.md").read_text().split("## Environment variables")[0]
    missing = [s for s in sections + ["apps"] if "`%s`" % s not in intro]
    assert len(sections) > 5 and not missing, missing
