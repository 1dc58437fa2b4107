"""The process as an operator sees it: --version, --check-config, environment
overrides, refusing a bad config, and graceful shutdown with clients attached."""

import pathlib
import re
import signal
import subprocess

import pytest

import rtmp_client
from conftest import (HOST, SLUICE_BIN, Sluice, T, child_env, free_port, is_sanitizer_build,
                      merge, port_open, to_yaml, default_config, wait_stream_live, wait_until)

BAD_CONFIG = (
    "rtmp:\n"                    # 1
    "  port: 1935\n"             # 2
    "  no_such_key: 1\n"         # 3  unknown key
    "media:\n"                   # 4
    "  queue_max_bytes: lots\n"  # 5  not a size
)


def run_sluice(args, timeout=None, env=None):
    return subprocess.run([SLUICE_BIN] + list(args), capture_output=True, text=True,
                          timeout=timeout or T(15), env=child_env(env), stdin=subprocess.DEVNULL)


def test_version():
    p = run_sluice(["--version"])
    out = p.stdout + p.stderr
    assert p.returncode == 0, "--version exited %d: %s" % (p.returncode, out)
    assert re.search(r"\d+\.\d+", out), "--version printed no version: %r" % out


def test_check_config_accepts_good_file(tmp_path):
    cfg = tmp_path / "good.yml"
    cfg.write_text(to_yaml(default_config(free_port())) + "\n")
    p = run_sluice(["--config", str(cfg), "--check-config"])
    assert p.returncode == 0, "--check-config rejected a good file (%d): %s" % (
        p.returncode, p.stderr)


def test_check_config_names_every_bad_line(tmp_path):
    cfg = tmp_path / "bad.yml"
    cfg.write_text(BAD_CONFIG)
    p = run_sluice(["--config", str(cfg), "--check-config"])
    assert p.returncode != 0, "--check-config accepted a bad file: %s" % p.stderr
    assert re.search(r"bad\.yml:3:", p.stderr), \
        "no 'bad.yml:3: ...' error for the unknown key:\n%s" % p.stderr
    assert re.search(r"bad\.yml:5:", p.stderr), \
        "no 'bad.yml:5: ...' error for the bad value:\n%s" % p.stderr
    assert "no_such_key" in p.stderr, "the unknown key is not named:\n%s" % p.stderr


def test_bad_config_refuses_to_start(tmp_path):
    cfg = tmp_path / "bad.yml"
    port = free_port()
    cfg.write_text(BAD_CONFIG.replace("1935", str(port)))
    try:
        p = run_sluice(["--config", str(cfg)], timeout=T(10),
                       env={"SLUICE_SERVER_DATA_DIR": str(tmp_path / "data")})
    except subprocess.TimeoutExpired:
        raise AssertionError("sluice kept running with an invalid config")
    assert p.returncode != 0
    assert re.search(r"bad\.yml:3:", p.stderr) and re.search(r"bad\.yml:5:", p.stderr), p.stderr
    assert not port_open(port)


def test_env_overrides_port(sluice_factory):
    file_port = free_port()
    env_port = free_port()
    srv = sluice_factory(config={"rtmp": {"port": file_port}}, port=env_port,
                         env={"SLUICE_RTMP_PORT": str(env_port)})
    c = rtmp_client.RtmpClient(HOST, env_port, timeout=T(5), name="env-port")
    try:
        r = c.connect("live")
        assert r.ok and r.code == "NetConnection.Connect.Success", r
    finally:
        c.close()
    assert not port_open(file_port), "the port from the file is open despite SLUICE_RTMP_PORT"
    assert srv.alive()


def test_sigint_exits_zero(sluice):
    rc = sluice.stop(signal.SIGINT, timeout=T(10))
    assert rc == 0, "SIGINT: exit code %s\n%s" % (rc, sluice.log_tail())


def test_sigterm_during_startup_exits_zero(sluice_factory):
    """A supervisor may signal sluice while it still starts (its ports open before its
    modules start): the signal is handled once the loop runs, gracefully, exit 0."""
    srv = sluice_factory(start=False)
    srv._log = open(srv.log_path, "ab")
    srv.proc = subprocess.Popen(srv.cmdline(), stdout=srv._log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=srv.env, cwd=str(srv.workdir))
    # "starting" is logged once the signal handlers are set; poll fast so the signal
    # lands while the listeners and modules are still being set up.
    wait_until(lambda: b" starting (config" in srv.log_path.read_bytes(), T(10), 0.001,
               "the starting line")
    srv.proc.send_signal(signal.SIGTERM)
    rc = srv.proc.wait(T(20))
    assert rc == 0, "SIGTERM during startup: exit code %s\n%s" % (rc, srv.log_tail())
    assert "shutting down" in srv.log_text()


def test_sigterm_with_publisher_and_player(sluice, ffmpeg_publish):
    pub = ffmpeg_publish(sluice.url("live", "stream1"))
    wait_stream_live(sluice.port, "live", "stream1", T(15))
    player, _ = rtmp_client.open_player(HOST, sluice.port, "live", "stream1", timeout=T(5))
    try:
        player.wait_video_frames(10, T(5))
        rc = sluice.stop(signal.SIGTERM, timeout=T(10))
        assert rc is not None, "sluice did not exit within %.0f s of SIGTERM" % T(10)
        assert rc == 0, "SIGTERM: exit code %s" % rc
        # The player learns that the stream ended: UnpublishNotify, then the close.
        player.wait_closed(T(5))
        codes = player.status_codes()
        assert player.error is None or isinstance(player.error, OSError), player.close_reason
        assert "NetStream.Play.UnpublishNotify" in codes or player.close_reason == "EOF", \
            "player saw neither UnpublishNotify nor a clean close: %s %s" % (
                codes, player.close_reason)
        wait_until(lambda: pub.poll() is not None, T(15), 0.1,
                   "the ffmpeg publisher to notice the shutdown")
    finally:
        player.close()
    reports = sluice.sanitizer_reports()
    assert not reports, "sanitizer reports after shutdown: %s\n%s" % (reports, sluice.log_tail())


# Configs that parse but cannot start (issue 12): --check-config must refuse each with
# the file and line that set the bad key, and a start must refuse it before any
# listener opens. Each entry: (id, settings merged over the default test config,
# the YAML text of the line at fault, words the message must hold).
def _broken_configs(tmp):
    return [
        ("simple-file-missing",
         {"auth": {"simple_file": str(tmp / "no-such-users.txt")},
          "apps": {"live": {"auth_simple": True}}},
         "simple_file:", "cannot load"),
        ("simple-file-unset",
         {"apps": {"live": {"auth_simple": True}}},
         "auth_simple:", "auth.simple_file is not set"),
        ("jwt-key-missing",
         {"auth": {"jwt_public_key_file": str(tmp / "jwt-public.pem")},
          "apps": {"live": {"auth_jwt": True}}},
         "jwt_public_key_file:", "cannot read"),
        ("webhook-event-unknown",
         {"webhooks": {"url": "http://127.0.0.1:9/hook", "events": "publish, stream-publishd"}},
         "events:", "unknown event 'stream-publishd'"),
        ("webhook-url-ftp",
         {"webhooks": {"url": "ftp://127.0.0.1/hook"}},
         "url:", "not an http:// or https:// URL"),
        ("roundtrip-url-unset",
         {"apps": {"live": {"auth_roundtrip": True}}},
         "auth_roundtrip:", "roundtrip_validate_url is not set"),
        ("https-cert-missing",
         {"http": {"tls_cert": str(tmp / "cert.pem"), "tls_key": str(tmp / "key.pem")}},
         "tls_cert:", "cannot read the certificate"),
    ]


BROKEN_IDS = [c[0] for c in _broken_configs(pathlib.Path("/x"))]


def _write_broken(tmp_path, case_id):
    case = {c[0]: c for c in _broken_configs(tmp_path)}[case_id]
    _, over, needle, words = case
    port = free_port()
    cfg = merge(default_config(port), over)
    text = to_yaml(cfg) + "\n"
    path = tmp_path / "broken.yml"
    path.write_text(text)
    lines = [i + 1 for i, l in enumerate(text.splitlines()) if l.strip().startswith(needle)]
    assert len(lines) == 1, "test bug: %r is on lines %s" % (needle, lines)
    ports = [port] + [v for s in cfg.values() if isinstance(s, dict)
                      for k, v in s.items() if k.endswith("port") and isinstance(v, int)]
    return path, lines[0], words, sorted(set(ports))


@pytest.mark.parametrize("case_id", BROKEN_IDS)
def test_check_config_refuses_what_start_refuses(tmp_path, case_id):
    path, line, words, _ = _write_broken(tmp_path, case_id)
    p = run_sluice(["--config", str(path), "--check-config"],
                   env={"SLUICE_SERVER_DATA_DIR": str(tmp_path / "data")})
    assert p.returncode != 0, "--check-config accepted %s:\n%s%s" % (case_id, p.stdout, p.stderr)
    assert "configuration OK" not in p.stdout
    assert re.search(r"broken\.yml:%d: .*%s" % (line, re.escape(words)), p.stderr), \
        "expected 'broken.yml:%d: ... %s' in:\n%s" % (line, words, p.stderr)


@pytest.mark.parametrize("case_id", BROKEN_IDS)
def test_start_refused_before_any_listener(tmp_path, case_id):
    path, line, words, ports = _write_broken(tmp_path, case_id)
    proc = subprocess.Popen([SLUICE_BIN, "--config", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                            env=child_env({"SLUICE_SERVER_DATA_DIR": str(tmp_path / "data")}))
    accepted = []
    try:
        # Probe every port the config names until the process has exited: none may
        # accept a connection, even for a moment.
        def exited():
            accepted.extend(p for p in ports if p not in accepted and port_open(p))
            return proc.poll() is not None
        wait_until(exited, T(15), 0.005, "sluice to refuse the config and exit")
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert proc.returncode != 0, "sluice started with %s:\n%s" % (case_id, out)
    assert not accepted, "ports %s accepted a connection before the refusal:\n%s" % (accepted, out)
    assert not re.search(r"listening|publish: rtmp://", out), \
        "a refused start announced its listeners first:\n%s" % out
    assert re.search(r"broken\.yml:%d: .*%s" % (line, re.escape(words)), out), out


def test_check_config_reports_every_problem_at_once(tmp_path):
    over = {}
    for _, o, _, _ in _broken_configs(tmp_path)[::2]:  # four unrelated problems
        over = merge(over, o)
    cfg = tmp_path / "many.yml"
    cfg.write_text(to_yaml(merge(default_config(free_port()), over)) + "\n")
    p = run_sluice(["--config", str(cfg), "--check-config"])
    assert p.returncode != 0
    found = re.findall(r"many\.yml:\d+: ", p.stderr)
    assert len(found) == 4, "expected 4 problems, each with file:line:\n%s" % p.stderr
    assert "4 configuration errors" in p.stderr, p.stderr


def test_exit_report_quiet_when_nothing_is_left(sluice):
    """'memory still allocated: 0 bytes' was noise: a clean stop ends on 'stopped'."""
    assert sluice.stop() == 0
    text = sluice.log_text()
    assert "memory still allocated" not in text, sluice.log_tail(5)
    assert re.search(r" INFO  stopped\s*\Z", text), sluice.log_tail(5)


def test_exit_report_check_still_catches_a_leak(tmp_path):
    """The conftest check that every e2e server passes at teardown still fails when
    memory IS left: a test build leaks on request (SL_TEST_LEAK_BYTES)."""
    if not is_sanitizer_build():
        pytest.skip("needs the fault-injection build (SLUICE_BIN=build-asan/sluice)")
    srv = Sluice(tmp_path / "leaky", env={"SL_TEST_LEAK_BYTES": "1234",
                                          "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0"})
    srv.start()
    assert srv.stop() == 0
    problems = srv.self_check_problems(exited_zero=True)
    assert any("leaked 1234 bytes in 1 blocks" in p for p in problems), (problems,
                                                                         srv.log_tail(5))
    assert re.search(r" WARN  stopped \(memory still allocated: 1234 bytes in 1 blocks\)",
                     srv.log_text())
    # and a server that never wrote its exit report is not taken for a clean one
    srv.log_path.write_text(srv.log_text().rsplit("\n", 2)[0] + "\n")
    assert any("no exit report" in p for p in srv.self_check_problems(exited_zero=True))
