"""Live reload of sluice.yml (issue 13 part 3): SIGHUP and POST /api/v1/server/reload.

- an app added to the file and reloaded by SIGHUP accepts an ffmpeg publisher, and
  was refused before;
- simple auth switched on for an app by a reload refuses a newcomer without
  credentials, while a player admitted before keeps receiving media across it;
- a broken file (a YAML syntax error; a value out of range) is refused with its
  file:line in the API answer (400, Red5's error envelope) and in the log, and
  nothing changes (the app the broken file removes still works);
- a changed listener port is answered as needing a restart and the port does not move;
- an app removed by a reload refuses newcomers like an unknown app; its publisher stays;
- webhook URLs and the event selection follow a reload;
- the endpoint needs the API token.
"""

import signal

import yaml

from api_helpers import TOKEN, Api, api_config, assert_error, http_port_of
from conftest import HOST, T, free_port, port_open, to_yaml, wait_stream_live, wait_until
import rtmp_client
from rtmp_client import RtmpClient

PW = "reload-pw-3b7d"


def read_config(srv):
    return yaml.safe_load(srv.config_path.read_text())


def write_config(srv, cfg):
    srv.config_path.write_text(to_yaml(cfg) + "\n")


def rtmp_connect(port, app, args=()):
    """Connects to app; returns the connect result (the client is closed)."""
    c = RtmpClient(HOST, port, timeout=T(5), name="connect-" + app)
    try:
        return c.connect(app, connect_args=tuple(args))
    finally:
        c.close()


PLAY_START, PLAY_FAILED = "NetStream.Play.Start", "NetStream.Play.Failed"


def try_play(port, args):
    """Connects to live (must succeed), plays s1; returns the first Start/Failed status."""
    c = RtmpClient(HOST, port, timeout=T(5), name="newcomer")
    try:
        assert c.connect("live", connect_args=tuple(args)).ok
        sid = c.create_stream()
        c.play(sid, "s1")
        return c.wait_status_any([PLAY_START, PLAY_FAILED], T(10))
    finally:
        c.close()


def start_server(factory, config):
    srv = factory(config=api_config(config))
    wait_until(lambda: port_open(http_port_of(srv)), T(10), message="http port")
    return srv


def reload_api(srv):
    return Api(srv).request("POST", "server/reload")


def test_app_added_by_sighup_accepts_publisher(sluice_factory, ffmpeg_publish):
    srv = start_server(sluice_factory, {})
    r = rtmp_connect(srv.port, "studio")
    assert not r.ok and r.code == "NetConnection.Connect.InvalidApp", r

    cfg = read_config(srv)
    cfg["apps"]["studio"] = {"publish": True}
    write_config(srv, cfg)
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r"config reloaded \(1 change\)", T(10))

    ffmpeg_publish(srv.url("studio", "s1"))
    wait_stream_live(srv.port, "studio", "s1", T(15))
    assert "studio" in Api(srv).data("applications")


def test_auth_switched_on_keeps_admitted_player(sluice_factory, ffmpeg_publish, tmp_path,
                                                secrets):
    secrets(PW)
    creds = tmp_path / "creds.txt"
    creds.write_text("alice %s\n" % PW)
    srv = start_server(sluice_factory, {"auth": {"simple_file": str(creds)}})
    ffmpeg_publish(srv.url("live", "s1"))
    wait_stream_live(srv.port, "live", "s1", T(15))

    player = RtmpClient(HOST, srv.port, timeout=T(5), name="admitted-player")
    try:
        assert player.connect("live").ok
        sid = player.create_stream()
        player.play(sid, "s1")
        player.wait_video_frames(5, T(10))

        cfg = read_config(srv)
        cfg["apps"]["live"] = {"auth_simple": True}
        write_config(srv, cfg)
        r = reload_api(srv)
        assert r.status == 200, r
        assert r.data["apps_changed"] == ["live"], r.data
        assert "apps.live.auth_simple" in r.data["keys_changed"], r.data
        assert r.data["restart_required"] == [], r.data

        # A newcomer without credentials connects but may not play (as in test_auth);
        # with them, it plays.
        assert try_play(srv.port, ()).info.get("description") == "Missing credentials."
        assert try_play(srv.port, ("alice", PW)).code == PLAY_START

        # The player admitted before the reload keeps receiving media.
        since = len(player.media)
        player.wait_video_frames(50, T(15), since=since)  # two seconds of video at 25 fps
    finally:
        player.close()


def test_broken_file_refused_and_nothing_changes(sluice_factory):
    srv = start_server(sluice_factory, {"apps": {"old": {}}})
    good = read_config(srv)

    # A YAML syntax error: the answer and the log name the file and line.
    text = to_yaml(dict(good, apps={"live": {}, "newapp": {}})) + "\n"
    lines = text.splitlines()
    line = lines.index("  newapp: {}") + 1
    lines[line - 1] = "  newapp: publish: true"  # "mapping values are not allowed here"
    srv.config_path.write_text("\n".join(lines) + "\n")
    r = reload_api(srv)
    assert_error(r, 400)
    problems = r.json["problems"]
    where = "%s:%d:" % (srv.config_path, line)
    assert any(p.startswith(where) and "syntax" in p.lower() for p in problems), problems
    srv.wait_log(r"config reload: .*sluice\.yml:%d: .*syntax" % line, T(5))
    srv.wait_log(r"config reload refused", T(5))

    # A value out of range: the same, at the line of that key.
    bad = dict(good, apps={"live": {}, "newapp": {"hls_window": 0}})
    srv.config_path.write_text(to_yaml(bad) + "\n")
    line = next(i + 1 for i, ln in enumerate(srv.config_path.read_text().splitlines())
                if "hls_window" in ln)
    r = reload_api(srv)
    assert_error(r, 400)
    assert any(p.startswith("%s:%d:" % (srv.config_path, line)) and "hls_window" in p
               for p in r.json["problems"]), r.json

    # Nothing changed: the app the broken files dropped still works, the new one does not exist.
    assert rtmp_connect(srv.port, "old").ok
    r = rtmp_connect(srv.port, "newapp")
    assert r.code == "NetConnection.Connect.InvalidApp", r
    assert sorted(Api(srv).data("applications")) == ["live", "old", "other"]
    assert "config reloaded" not in srv.log_text()

    # SIGHUP with a broken file: logged, nothing changes either.
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r"SIGHUP: reloading", T(5))
    wait_until(lambda: srv.log_text().count("config reload refused") >= 3, T(5),
               message="the SIGHUP reload to be refused")
    assert rtmp_connect(srv.port, "old").ok


def test_restart_key_reported_and_port_kept(sluice_factory):
    srv = start_server(sluice_factory, {})
    cfg = read_config(srv)
    new_port = free_port()
    cfg["rtmp"]["port"] = new_port
    cfg["apps"]["extra"] = {}
    write_config(srv, cfg)
    r = reload_api(srv)
    assert r.status == 200, r
    d = r.data
    assert d["restart_required"] == ["rtmp.port"], d
    assert "rtmp.port" not in d["keys_changed"], d
    assert d["apps_added"] == ["extra"] and d["changes"] == 2, d
    srv.wait_log(r"rtmp\.port changed: needs a restart", T(5))
    srv.wait_log(r"config reloaded \(2 changes\)", T(5))
    # The listener stays where it was; the API still reports the running port.
    assert port_open(srv.port) and not port_open(new_port)
    assert Api(srv).data("server")["rtmp_port"] == srv.port
    assert rtmp_connect(srv.port, "extra").ok


def test_app_removed_refuses_newcomers_keeps_its_sessions(sluice_factory):
    srv = start_server(sluice_factory, {})
    pub, _ = rtmp_client.open_publisher(HOST, srv.port, "other", "s1", timeout=T(5))
    try:
        cfg = read_config(srv)
        del cfg["apps"]["other"]
        write_config(srv, cfg)
        r = reload_api(srv)
        assert r.status == 200 and r.data["apps_removed"] == ["other"], r
        r = rtmp_connect(srv.port, "other")
        assert not r.ok and r.code == "NetConnection.Connect.InvalidApp", r
        # The publisher admitted before stays connected and served (a round trip).
        pub.sync(T(5))
        assert "other" not in Api(srv).data("applications")
    finally:
        pub.close()


def test_reload_needs_the_token(sluice_factory):
    srv = start_server(sluice_factory, {})
    api = Api(srv)
    assert_error(api.request("POST", "server/reload", token=None), 401)
    assert_error(api.request("POST", "server/reload", token=TOKEN + "x"), 401)
    assert "config reloaded" not in srv.log_text()
    r = api.request("POST", "server/reload", bearer=True)
    assert r.status == 200 and r.data["changes"] == 0, r


def test_webhook_urls_and_events_follow_a_reload(sluice_factory):
    from test_webhooks import SECRET, Receiver, rtmp_session
    r1 = Receiver(secret=SECRET).start()
    r2 = Receiver(secret=SECRET).start()
    try:
        srv = start_server(sluice_factory, {"webhooks": {
            "url": r1.url, "secret": SECRET, "events": "stream-published",
            "retry_max_interval": "1s", "timeout": "2s"}})
        rtmp_session(srv.port, "live", "before")
        r1.wait_events(lambda b: b["guid"] == "live/before", 1, T(10), "live/before at r1")

        cfg = read_config(srv)
        cfg["webhooks"]["url"] = r2.url
        cfg["webhooks"]["events"] = '"stream-published, stream-unpublished"'
        write_config(srv, cfg)
        r = reload_api(srv)
        assert r.status == 200, r
        assert sorted(r.data["keys_changed"]) == ["webhooks.events", "webhooks.url"], r.data

        rtmp_session(srv.port, "live", "after")
        got = r2.wait_events(lambda b: b["guid"] == "live/after", 2, T(10), "live/after at r2")
        assert sorted(b["event"] for b in got) == ["stream-published", "stream-unpublished"]
        assert all(b["sig_ok"] for b in r2.accepted)
        assert not [b for b in r1.unique() if b["guid"] == "live/after"]
    finally:
        r1.stop()
        r2.stop()
