"""The use cases of docs/usecases/ run against a live sluice, with the config their
walkthrough shows (docs/usecases/<name>/sluice.yml; only ports, file paths and the
webhook receiver's port are changed), and their outcome is checked here again,
independently of the script:

  - review recording: ffmpeg publishes to an app that records; the business's
    receiver gets video-saved, pulls the file over HTTP with a token, deletes it
    from sluice; the stored file plays (ffprobe) and is gone from sluice's disk;
  - whiteboard: a persistent shared object drawn on by one RTMP client (sluice-so)
    while another watches; sluice restarts; a new client gets the same strokes,
    and the Server API shows the same data before and after;
  - 1:1 calls: each party plays the other's stream with its token; a third party
    with valid tokens of another call, a party's play token used to publish, and
    no token are refused (statuses, and sluice's log says why);
  - usage logging: two viewers play for known times (their own wall clock); the
    receiver's SQLite report gives each one's seconds within a tolerance, and a
    redelivered webhook does not count twice.

Clients: ffmpeg, sluice-so, sluice-play and sluice-publish (built beside sluice).
"""

import json
import pathlib
import subprocess
import sys
import time

import pytest
import yaml

from api_helpers import Api, http_port_of
from conftest import (HOST, REPO, SLUICE_BIN, T, default_config, ffprobe_json, free_port, merge,
                      port_open, timeout_scale, wait_until)

USECASES = REPO / "docs" / "usecases"
TOOLS_DIR = pathlib.Path(SLUICE_BIN).resolve().parent


def doc_config(name, hook_port=None, **paths):
    """docs/usecases/<name>/sluice.yml as a config for sluice_factory: its listener
    ports dropped (the factory gives free ones), the webhook URL pointed at hook_port,
    and auth file paths replaced by `paths` (e.g. simple_file=...)."""
    cfg = yaml.safe_load((USECASES / name / "sluice.yml").read_text())
    for section in ("rtmp", "http"):
        cfg.get(section, {}).pop("port", None)
        if not cfg.get(section):
            cfg.pop(section, None)
    if hook_port is not None:
        url = cfg["webhooks"]["url"]
        cfg["webhooks"]["url"] = "http://%s:%d/%s" % (HOST, hook_port, url.split("/", 3)[3])
    for key, value in paths.items():
        cfg["auth"][key] = str(value)
    return cfg


def tools():
    for name in ("sluice-so", "sluice-play", "sluice-publish"):
        if not (TOOLS_DIR / name).exists():
            pytest.fail("%s not built in %s (set SLUICE_BIN to the build's sluice)"
                        % (name, TOOLS_DIR))
    return str(TOOLS_DIR)


def script(name, *args, timeout=60):
    """Runs docs/usecases/<dir>/<name>.py with args; returns (process, last JSON line)."""
    path = next(USECASES.glob("*/%s.py" % name))
    p = subprocess.run([sys.executable, str(path)] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=T(timeout))
    lines = [x for x in p.stdout.splitlines() if x.startswith("{")]
    assert p.returncode == 0, "%s %s: exit %d\n%s\n%s" % (name, args[:1], p.returncode,
                                                          p.stdout[-3000:], p.stderr[-3000:])
    return p, json.loads(lines[-1]) if lines else None


def server(sluice_factory, cfg):
    """A sluice with the test's ports and cfg over them, written with a real YAML emitter
    (the walkthroughs' values, such as auth_protocols "*", need quoting)."""
    port = free_port()
    text = yaml.safe_dump(merge(default_config(port), cfg), sort_keys=False)
    srv = sluice_factory(config_text=text, port=port)
    wait_until(lambda: port_open(http_port_of(srv)), T(10), message="sluice's HTTP port")
    return srv


def rtmp_base(srv):
    return "rtmp://%s:%d" % (HOST, srv.port)


def http_base(srv):
    return "http://%s:%d" % (HOST, http_port_of(srv))


def test_review_recording_moves_to_business_storage(sluice_factory, tmp_path):
    hook_port = free_port()
    cfg = doc_config("review-recording", hook_port)
    srv = server(sluice_factory, cfg)
    storage = tmp_path / "storage"
    p, res = script("review_recording", "demo", "--rtmp", rtmp_base(srv), "--http",
                    http_base(srv), "--hook-port", hook_port, "--storage", storage,
                    "--timeout", T(20))
    stored = pathlib.Path(res["file"])
    assert stored.parent.parent == storage and stored.name == res["stream"] + ".flv", res
    info = ffprobe_json(stored, ["-show_format", "-show_streams"])
    assert float(info["format"]["duration"]) > 2.0, info["format"]
    assert sorted(s["codec_name"] for s in info["streams"]) == ["aac", "h264"]
    assert stored.stat().st_size == res["bytes"]
    # A move: sluice's copy is deleted (through the API), and the log says so.
    assert res["sluice_path"].startswith(str(srv.data_dir)), res
    assert not pathlib.Path(res["sluice_path"]).exists()
    assert "recorder: deleted %s" % res["sluice_path"] in srv.log_text()


def test_whiteboard_survives_a_restart(sluice_factory):
    cfg = doc_config("whiteboard")
    srv = server(sluice_factory, cfg)
    api = Api(srv, token=cfg["api"]["access_token"])
    args = ["--rtmp", rtmp_base(srv), "--tools", tools(), "--board", "lesson-42",
            "--timeout", T(15)]
    _, drawn = script("whiteboard", "draw", "--strokes", 4, "--seed", 7, *args)
    assert len(drawn["drawn"]) == 3 and drawn["undone"] not in drawn["drawn"], drawn
    assert drawn["strokes"] == drawn["drawn"]        # the watching participant's view
    # The business sees the same board through the Server API.
    path = "applications/whiteboard/sharedobjects/lesson-42"
    assert api.data(path + "/data") == drawn["drawn"]
    assert api.data(path)["persistent"] is True

    assert srv.stop() == 0
    srv.start()
    wait_until(lambda: port_open(http_port_of(srv)), T(10), message="sluice's HTTP port")
    _, shown = script("whiteboard", "show", *args)
    assert shown["strokes"] == drawn["drawn"], (shown, drawn)
    assert shown["version"] == 5  # four strokes and one undo: the version survived too
    assert api.data(path + "/data") == drawn["drawn"]


def test_calls_only_the_two_parties(sluice_factory, secrets):
    cfg = doc_config("calls")
    srv = server(sluice_factory, cfg)
    _, res = script("calls", "demo", "--rtmp", rtmp_base(srv), "--tools", tools(),
                    "--timeout", T(20), timeout=120)
    secrets(*res["tokens"])          # none of the eight tokens may reach sluice's log
    checks = {k: v["ok"] for k, v in res["checks"].items()}
    assert checks == {"alice plays bob": True, "bob plays alice": True,
                      "mallory plays alice": False, "mallory publishes as bob": False,
                      "alice publishes as bob": False, "no token plays alice": False}, res

    def why(name):
        return [s for s in res["checks"][name]["statuses"] if "Failed" in s or "BadName" in s]

    assert why("mallory plays alice") == ["NetStream.Play.Failed: Stream not allowed."]
    assert why("mallory publishes as bob") == ["NetStream.Publish.BadName: Stream not allowed."]
    assert why("alice publishes as bob") == ["NetStream.Publish.BadName: Role not allowed."]
    assert why("no token plays alice") == ["NetStream.Play.Failed: Missing token."]
    log = srv.log_text()
    assert "jwt: play refused for sub mallory" in log
    assert "jwt: publish refused for sub mallory" in log


@pytest.mark.exclusive  # compares seconds watched with the players' own wall clock
def test_usage_log_reports_seconds_watched(sluice_factory, procs, media_src, tmp_path, secrets):
    creds = tmp_path / "viewers.credentials"
    creds.write_text("studio pw-studio-1\nbob pw-bob-1\ncarol pw-carol-1\n")
    secrets("pw-studio-1", "pw-bob-1", "pw-carol-1")
    hook_port = free_port()
    cfg = doc_config("usage-log", hook_port, simple_file=creds)
    srv = server(sluice_factory, cfg)
    db = tmp_path / "usage.db"
    path = next(USECASES.glob("*/usage_log.py"))
    procs.start([sys.executable, path, "serve", "--db", db, "--port", hook_port], "usage-serve")
    wait_until(lambda: port_open(hook_port), T(10), message="the usage receiver")

    def report():
        p = subprocess.run([sys.executable, str(path), "report", "--db", str(db), "--json"],
                           capture_output=True, text=True, timeout=T(30))
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    url = srv.url("tv", "channel1")
    procs.start(["ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostdin", "-re",
                 "-stream_loop", "-1", "-i", media_src, "-c", "copy", "-f", "flv",
                 url + "?username=studio&password=pw-studio-1"], "publisher")
    srv.wait_log(r"publish started", T(15))
    # Two viewers, each stopping by itself after some seconds of media; what they
    # watched is measured by their own wall clock, from start to exit.
    viewers = {}
    for user, pw, media_s in (("bob", "pw-bob-1", 3), ("carol", "pw-carol-1", 6)):
        t0 = time.monotonic()
        p = procs.start([pathlib.Path(tools()) / "sluice-play", "-q", "-t", media_s, "-o",
                         "/dev/null", "%s?username=%s&password=%s" % (url, user, pw)],
                        "play-" + user)
        viewers[user] = (p, t0)
    walls = {}
    for user, (p, t0) in viewers.items():
        assert p.wait(T(30)) == 0, procs.log_of(p)
        walls[user] = time.monotonic() - t0
    rep = wait_until(lambda: (lambda r: r if len([v for v in r["viewings"] if not v["open"]]) == 2
                              else None)(report()), T(10), 0.2, "both viewings in the report")
    rows = {r["user"]: r for r in rep["rows"]}
    assert set(rows) == {"bob", "carol"}, rep       # the publisher is no viewer
    tol = 0.5 * timeout_scale()
    for user, wall in walls.items():
        r = rows[user]
        assert r["stream"] == "tv/channel1" and r["sessions"] == 1 and not r["watching_now"], r
        # sluice's play starts after the player's process, connection and login, and
        # ends before its exit: a little less than the wall time, never more.
        assert wall - tol <= r["seconds"] <= wall + 0.05, (user, wall, r)
        v = next(v for v in rep["viewings"] if v["user"] == user)
        assert abs(v["sluice_ms"] - (v["end_ms"] - v["start_ms"])) <= 50, v
    assert rows["carol"]["seconds"] > rows["bob"]["seconds"] + 1.0, rows

    # At least once: a delivery sent again (here on purpose, through the API) is
    # dropped by its id, and the report does not change.
    api = Api(srv, token=cfg["api"]["access_token"])
    deliveries = api.data("webhooks/deliveries", {"limit": 20})
    target = next(d["id"] for d in deliveries if d["event"] == "stream-unsubscribed")
    r = api.request("POST", "webhooks/deliveries/%s/redeliver" % target)
    assert r.status == 200, r
    again = wait_until(lambda: (lambda r: r if r["duplicates_dropped"] == 1 else None)(report()),
                       T(10), 0.2, "the redelivered event to be dropped")
    assert again["rows"] == rep["rows"]


@pytest.mark.parametrize("name", ["review-recording", "whiteboard", "calls", "usage-log"])
def test_walkthrough_shows_the_config_it_runs(name):
    """The page's config block is the sluice.yml the test runs (its header comment aside)."""
    page = (USECASES / (name + ".md")).read_text()
    block = page.split("```yaml\n", 1)[1].split("```", 1)[0]
    lines = (USECASES / name / "sluice.yml").read_text().splitlines(keepends=True)
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    assert block == "".join(lines)
