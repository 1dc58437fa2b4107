"""Exec hooks end to end: commands sluice runs on events.

  - on_publish runs ffmpeg to grab a thumbnail from the live stream (the
    documented example, with {rtmp_port}/{app}/{stream}/{data_dir}/{name}) and
    the JPEG appears within a deadline;
  - the environment (SLUICE_* variables, SLUICE_EVENT_JSON), substitutions and
    line-by-line output capture into the log with the session's context;
  - exec.timeout: SIGTERM, and SIGKILL for a hook that ignores SIGTERM;
  - exec.max_concurrent 1: hooks run one at a time, first come first served;
  - a command that cannot be started is logged and harms nothing.
"""

import json
import re

import pytest

import rtmp_client
from conftest import HOST, T, wait_until


def connect(port, app="live"):
    c = rtmp_client.RtmpClient(HOST, port, timeout=T(5))
    r = c.connect(app)
    assert r.ok, r
    return c


def test_thumbnail_on_publish(sluice_factory, ffmpeg_publish):
    cmd = ("ffmpeg -hide_banner -loglevel error -nostdin -y "
           "-i rtmp://127.0.0.1:{rtmp_port}/{app}/{stream} -frames:v 1 {data_dir}/{name}.jpg")
    srv = sluice_factory(config={"exec": {"on_publish": '"%s"' % cmd, "timeout": "30s"}})
    ffmpeg_publish(srv.url("live", "thumb1"))
    jpg = srv.data_dir / "live_thumb1.jpg"

    def made():
        try:
            data = jpg.read_bytes()
        except OSError:
            return None
        return data if len(data) > 1000 and srv.log_text().count("on_publish [pid") else None
    srv.wait_log(r"exec on_publish \[pid \d+\] exited with status 0", T(30))
    data = wait_until(made, T(5), 0.1, "the thumbnail %s" % jpg)
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    # The hook's own connection is a player of the stream.
    assert re.search(r"exec on_publish \[pid \d+\] started for event \d+: ffmpeg", srv.log_text())


def test_environment_substitution_and_output(sluice_factory):
    # Not a shell: sh is the program, its script one quoted argument; {data_dir}
    # and {name} are substituted by sluice, $SLUICE_* expanded by sh.
    script = ("echo HOOK $SLUICE_EVENT $SLUICE_APP $SLUICE_STREAM; echo oops >&2; "
              "env | grep ^SLUICE_ | sort > {data_dir}/env_{name}.txt; "
              "printf %s \\\"$SLUICE_EVENT_JSON\\\" > {data_dir}/ev_{name}.json")
    cmd = 'sh -c "%s"' % script
    srv = sluice_factory(config={"exec": {"on_publish": "'%s'" % cmd}})
    c, _ = rtmp_client.open_publisher(HOST, srv.port, "live", "env1", timeout=T(5))
    try:
        m = srv.wait_log(r"\[rtmp (\w+) live/env1\] exec on_publish \[pid \d+\] stdout: "
                         r"HOOK publish live env1", T(10))
        sid = m.group(1)
        srv.wait_log(r"\[rtmp %s live/env1\] exec on_publish \[pid \d+\] stderr: oops" % sid, T(5))
        srv.wait_log(r"exec on_publish \[pid \d+\] exited with status 0", T(5))
    finally:
        c.close()
    env = dict(line.split("=", 1) for line in
               (srv.data_dir / "env_live_env1.txt").read_text().splitlines() if "=" in line)
    assert env["SLUICE_EVENT"] == "publish"
    assert env["SLUICE_HOOK"] == "on_publish"
    assert env["SLUICE_APP"] == "live" and env["SLUICE_STREAM"] == "env1"
    assert env["SLUICE_NAME"] == "live_env1" and env["SLUICE_STREAM_PATH"] == "live/env1"
    assert env["SLUICE_SESSION"] == sid and env["SLUICE_PROTOCOL"] == "rtmp"
    assert env["SLUICE_REMOTE_ADDRESS"] == "127.0.0.1" and env["SLUICE_REMOTE_PORT"].isdigit()
    assert env["SLUICE_EVENT_ID"].isdigit() and env["SLUICE_EVENT_TIME"].isdigit()
    assert env["SLUICE_RTMP_PORT"] == str(srv.port)
    assert env["SLUICE_DATA_DIR"] == str(srv.data_dir)
    assert env["SLUICE_EVENT_PATH"] == "" and env["SLUICE_QUERY"] == ""
    ev = json.loads((srv.data_dir / "ev_live_env1.json").read_text())
    assert ev["event"] == "publish" and ev["session"] == sid and ev["stream"] == "env1"
    assert ev["id"] == int(env["SLUICE_EVENT_ID"])


def test_timeout_sigterm_then_sigkill(sluice_factory):
    # The hook ignores SIGTERM (inherited by sleep), so it takes SIGKILL.
    srv = sluice_factory(config={"exec": {"shell": True, "timeout": "300ms",
                                          "on_connect": '"trap \'\' TERM; echo armed; sleep 30"',
                                          "on_disconnect": '"sleep 30"'}})
    c = connect(srv.port)
    srv.wait_log(r"exec on_connect \[pid \d+\] stdout: armed", T(5))
    srv.wait_log(r"exec on_connect \[pid \d+\] still running after 300 ms: SIGTERM", T(5))
    srv.wait_log(r"exec on_connect \[pid \d+\] ignored SIGTERM: SIGKILL", T(10))
    srv.wait_log(r"exec on_connect \[pid \d+\] killed by signal 9", T(5))
    c.close()
    # A plain hook dies of the SIGTERM.
    srv.wait_log(r"exec on_disconnect \[pid \d+\] killed by signal 15", T(10))


def test_max_concurrent_fifo(sluice_factory):
    srv = sluice_factory(config={"exec": {
        "max_concurrent": 1,
        "on_connect": "'sh -c \"echo start $SLUICE_SESSION; sleep 0.2; echo end $SLUICE_SESSION\"'"}})
    clients = [connect(srv.port) for _ in range(3)]
    try:
        wait_until(lambda: srv.log_text().count("exited with status 0") >= 3, T(15), 0.1,
                   "three hooks to finish")
        marks = re.findall(r"\[rtmp (\w+) live\] exec on_connect \[pid \d+\] stdout: (start|end) (\w+)",
                           srv.log_text())
        assert len(marks) == 6, marks
        for sid, _, echoed in marks:
            assert sid == echoed  # the line is logged with its own session's context
        order = [(kind, sid) for sid, kind, _ in marks]
        # One at a time: start A, end A, start B, end B, ...
        for i in range(0, 6, 2):
            assert order[i][0] == "start" and order[i + 1] == ("end", order[i][1]), order
        # First come, first served: in the order the sessions connected.
        connected = re.findall(r"\[rtmp (\w+) live\] connected from", srv.log_text())
        assert [order[i][1] for i in range(0, 6, 2)] == connected[:3]
    finally:
        for c in clients:
            c.close()


def test_missing_program_is_logged(sluice_factory):
    srv = sluice_factory(config={"exec": {"on_connect": "/nonexistent/hook --flag {app}"}})
    c = connect(srv.port)
    try:
        srv.wait_log(r"exec on_connect: cannot run '/nonexistent/hook': no such file", T(5))
        assert c.create_stream() > 0  # the client is unaffected
    finally:
        c.close()


@pytest.mark.parametrize("shell", [False, True])
def test_stream_name_never_an_option(sluice_factory, shell):
    """Issue 11: a stream named like an option (`--version`, `-rf`) must not reach a
    hook's program as an option. `ls {stream}` would print ls's version for a stream
    named --version; instead the hook is not run for that event and one line says
    why. A normal name still runs the hook. With exec.shell the quoting ('--version')
    does not help either, so the same rule holds there."""
    srv = sluice_factory(config={"exec": {"shell": shell, "on_publish": '"ls {stream}"'}})
    c, _ = rtmp_client.open_publisher(HOST, srv.port, "live", "--version", timeout=T(5))
    refused = re.compile(r"exec on_publish: not run for event \d+: \{stream\} starts with '-'")
    try:
        wait_until(lambda: refused.search(srv.log_text()) or
                   re.search(r"exec on_publish \[pid \d+\] exited", srv.log_text()),
                   T(10), 0.05, "the hook refused (or run)")
        assert "coreutils" not in srv.log_text(), "the stream name reached ls as an option"
        assert refused.search(srv.log_text())
    finally:
        c.close()
    c, _ = rtmp_client.open_publisher(HOST, srv.port, "live", "okname", timeout=T(5))
    try:
        srv.wait_log(r"exec on_publish \[pid \d+\] exited with status", T(10))
    finally:
        c.close()
    log = srv.log_text()
    assert "coreutils" not in log and "Written by" not in log
    assert len(re.findall(r"exec on_publish \[pid \d+\] started", log)) == 1
