"""The Red5 Pro-compatible Server API (/api/v1, RED5-COMPAT.md §1) against a live
server: ffmpeg publishes live/stream1 and two rtmpdump players watch it, and every
endpoint's fields and values are checked; then the actions (kick a client, kick one
subscriber, unpublish, startrecord), rooms (?scope=), and access control (401, 429,
Bearer, api.hosts, the generated token file).

Read-only checks share one module server; actions that change state use their own
streams on it and run last, so the counts the earlier tests read stay exact.
Access-control tests start their own small servers (no media).
"""

import os
import re
import stat
import time

import pytest

from api_helpers import (TOKEN, Api, assert_error, start_api_server, start_player,
                         start_publisher, subscribers, wait_exit, wait_subscribers)
from conftest import HOST, T, wait_until
import rtmp_client

N_PLAYERS = 2
RED5_SERVER_STATS = ["red5_pro_version", "fms_version", "up_time", "os_name", "os_version",
                     "processors", "architecture", "total_memory", "max_memory", "free_memory",
                     "num_apps", "active_sub_scopes", "total_sub_scopes", "max_sub_scopes",
                     "total_connections", "active_connections", "max_connections", "bytes_in",
                     "bytes_out", "messages_in", "messages_out", "data_unit"]
RED5_SCOPE_STATS = ["name", "path", "creation_time", "depth", "active_connections",
                    "total_connections", "max_connections", "active_subscopes", "total_subscopes",
                    "max_subscopes", "bytes_in", "bytes_out", "messages_in", "messages_out", "type",
                    "data_unit"]
RED5_CLIENT = ["id", "creation_time", "last_ping", "remote_address"]
RED5_CLIENT_STATS = RED5_CLIENT + ["path", "bytes_out", "bytes_in", "messages_written",
                                   "messages_read", "messages_dropped", "messages_pending",
                                   "remote_port", "connection_protocol", "host"]
RED5_STREAM_STATS = ["id", "name", "publish_name", "creation_time", "scope_path", "is_recording",
                     "state"]
RED5_BROADCAST_STATS = RED5_STREAM_STATS + ["bytes_received", "active_subscribers",
                                            "total_subscribers", "max_subscribers"]
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def now_ms():
    return time.time() * 1000


def has_fields(obj, fields):
    missing = [f for f in fields if f not in obj]
    assert not missing, "missing %s in %s" % (missing, obj)


@pytest.fixture(scope="module")
def live(module_sluice_factory, module_procs, media_src):
    """One server; ffmpeg publishes live/stream1; N_PLAYERS rtmpdump players watch it."""
    srv = start_api_server(module_sluice_factory)
    api = Api(srv)
    pub = start_publisher(module_procs, media_src, srv)
    players = [start_player(module_procs, srv, name="player%d" % i) for i in range(N_PLAYERS)]
    wait_subscribers(api, N_PLAYERS)
    srv.api = api
    srv.publisher = pub
    srv.players = players
    return srv


# ----------------------------------------------------------------------------
# server
# ----------------------------------------------------------------------------

def test_server_info(live):
    r = live.api.get("server")
    assert r.status == 200 and r.ctype.startswith("application/json"), r
    j = r.json
    assert j["status"] == "success" and j["code"] == 200, j
    assert abs(j["timestamp"] - now_ms()) < 60000, j
    d = j["data"]
    version = re.search(r"sluice (\S+) starting", live.log_text()).group(1)
    assert d["red5_pro_version"] == version, d
    assert d["fms_version"] == "RED5/1,0,7,0" and d["capabilities"] == 33, d
    assert isinstance(d["uptime"], int) and 0 <= d["uptime"] < 600000, d
    assert d["rtmp_port"] == live.port, d  # sluice addition, read by the console
    assert d["rtmps_port"] is None and d["https_port"] is None, d  # no certificate here
    wait_until(lambda: live.api.data("server")["uptime"] > d["uptime"], T(5), 0.05, "uptime to grow")


def test_server_ping(live):
    before = now_ms()
    d = live.api.data("server/ping")
    assert isinstance(d, int) and before - 5000 <= d <= now_ms() + 5000, d


def test_server_statistics(live):
    b0 = live.api.data("server/statistics")
    has_fields(b0, RED5_SERVER_STATS)
    assert b0["data_unit"] == "b" and b0["fms_version"] == "RED5/1,0,7,0", b0
    assert b0["os_name"] == os.uname().sysname and b0["architecture"] == os.uname().machine, b0
    assert b0["processors"] == os.cpu_count(), b0
    assert b0["num_apps"] == 2, b0  # live and other (the test config)
    # publisher + players + this HTTP request's own connection (a session of protocol http)
    assert b0["active_connections"] >= 1 + N_PLAYERS, b0
    assert b0["total_connections"] >= b0["active_connections"], b0
    assert b0["max_connections"] >= b0["active_connections"], b0
    assert b0["active_streams"] == 1, b0
    for k in ("bytes_in", "bytes_out", "total_memory", "max_memory", "free_memory"):
        assert isinstance(b0[k], int) and b0[k] > 0, (k, b0)
    assert b0["messages_in"] > 0 and b0["messages_out"] > 0, b0
    # unit=kb: same counters in kilobytes (1024), as numbers
    kb = live.api.data("server/statistics", {"unit": "kb"})
    b1 = live.api.data("server/statistics")
    assert kb["data_unit"] == "kb", kb
    assert b0["bytes_in"] / 1024 <= kb["bytes_in"] <= b1["bytes_in"] / 1024, (b0, kb, b1)
    assert isinstance(kb["bytes_in"], float) and isinstance(kb["total_memory"], float), kb
    assert abs(kb["max_memory"] - b0["max_memory"] / 1024) < 1, kb
    mb = live.api.data("server/statistics", {"unit": "MB"})
    assert mb["data_unit"] == "mb" and mb["bytes_in"] < kb["bytes_in"], mb
    junk = live.api.data("server/statistics", {"unit": "parsecs"})
    assert junk["data_unit"] == "b" and isinstance(junk["bytes_in"], int), junk


# ----------------------------------------------------------------------------
# applications
# ----------------------------------------------------------------------------

def test_applications(live):
    d = live.api.data("applications")
    assert "live" in d and sorted(d) == ["live", "other"], d


def test_applications_statistics(live):
    d = live.api.data("applications/statistics")
    assert sorted(a["name"] for a in d) == ["live", "other"], d
    for a in d:
        has_fields(a, RED5_SCOPE_STATS)
        assert a["type"] == "application" and a["path"] == "/default/" + a["name"], a
        assert a["data_unit"] == "b" and a["depth"] == 1, a
    live_stats = next(a for a in d if a["name"] == "live")
    other = next(a for a in d if a["name"] == "other")
    assert live_stats["active_connections"] == 1 + N_PLAYERS, live_stats
    assert live_stats["bytes_in"] > 0 and other["active_connections"] == 0, d
    only = live.api.data("applications/statistics", {"app": "live"})
    assert [a["name"] for a in only] == ["live"], only
    both = live.api.data("applications/statistics", [("app", "other"), ("app", "live")])
    assert sorted(a["name"] for a in both) == ["live", "other"], both
    kb = live.api.data("applications/statistics", {"app": "live", "unit": "kb"})
    assert kb[0]["data_unit"] == "kb", kb
    assert live.api.data("applications/statistics", {"app": "nope"}) == []
    # the filter is the app= parameter itself, percent-decoded; other parameters are not
    assert [a["name"] for a in live.api.data("applications/statistics?app=li%76e")] == ["live"]
    assert len(live.api.data("applications/statistics", {"myapp": "x"})) == 2
    assert len(live.api.data("applications/statistics", {"app": ""})) == 2


def test_application_live(live):
    d = live.api.data("applications/live")
    has_fields(d, RED5_SCOPE_STATS)
    assert d["name"] == "live" and d["path"] == "/default/live" and d["type"] == "application", d
    assert d["active_connections"] == 1 + N_PLAYERS, d
    assert d["total_connections"] >= d["active_connections"] >= 0, d
    assert d["max_connections"] >= d["active_connections"], d
    assert d["bytes_in"] > 0 and d["bytes_out"] > 0, d
    assert d["creation_time"] <= now_ms(), d
    assert_error(live.api.get("applications/nope"), 404, "nope")


def test_streams(live):
    assert live.api.data("applications/live/streams") == ["stream1"]
    assert live.api.data("applications/other/streams") == []


def test_stream_statistics(live):
    # rates are averages since the publish started and the keyframe interval needs two
    # keyframes (2 s apart): read them once the stream has had both
    def settled():
        d = live.api.data("applications/live/streams/stream1")
        return d if d["uptime_ms"] >= 2500 and d["keyframe_interval_ms"] else None

    d = wait_until(settled, T(10), 0.1, "the stream's second keyframe")
    has_fields(d, RED5_BROADCAST_STATS)
    assert d["state"] == "PUBLISHING" and d["publish_name"] == "stream1", d
    assert d["scope_path"] == "/default/live" and d["is_recording"] is False, d
    assert UUID_RE.match(d["name"]), d
    assert d["video_codec"] == "h264" and d["audio_codec"] == "aac", d
    assert d["width"] == 640 and d["height"] == 360, d
    assert d["active_subscribers"] == N_PLAYERS, d
    assert d["total_subscribers"] >= N_PLAYERS and d["max_subscribers"] >= N_PLAYERS, d
    assert 15 <= d["fps"] <= 35, d  # the source is 25 fps, sent in real time
    assert 300 <= d["bitrate_in_kbps"] <= 3000, d  # ~870 kb/s
    assert d["bitrate_out_kbps"] > 0, d
    assert d["keyframe_interval_ms"] == 2000, d
    assert d["frames_in"] > 0 and d["frames_dropped"] == 0, d
    assert d["publisher"]["protocol"] == "rtmp" and d["publisher"]["remote_address"] == HOST, d
    assert d["creation_time"] <= now_ms() and d["uptime_ms"] > 0, d
    first = d["bytes_received"]
    wait_until(lambda: live.api.data("applications/live/streams/stream1")["bytes_received"] > first,
               T(5), 0.1, "bytes_received to grow")
    assert_error(live.api.get("applications/live/streams/nope"), 404, "nope")


def test_stream_subscribers(live):
    subs = subscribers(live.api)
    assert len(subs) == N_PLAYERS, subs
    for s in subs:
        has_fields(s, RED5_CLIENT_STATS)
        assert s["role"] == "subscriber" and s["connection_protocol"] == "rtmp", s
        assert s["app"] == "live" and s["stream"] == "stream1", s
        assert s["remote_address"] == HOST and s["path"] == "/default/live", s
    assert len({s["id"] for s in subs}) == N_PLAYERS
    assert_error(live.api.get("applications/live/streams/nope/subscribers"), 404)


def test_clients(live):
    clients = live.api.data("applications/live/clients")
    assert len(clients) == 1 + N_PLAYERS, clients
    for c in clients:
        assert sorted(c) == sorted(RED5_CLIENT), c  # Red5's Client object, exactly
        assert c["last_ping"] == -1 and c["remote_address"] == HOST, c
        assert c["creation_time"] <= now_ms(), c
    sub_ids = {s["id"] for s in subscribers(live.api)}
    pub_id = live.api.data("applications/live/streams/stream1")["publisher"]["id"]
    assert {c["id"] for c in clients} == sub_ids | {pub_id}
    assert live.api.data("applications/other/clients") == []

    pub = live.api.data("applications/live/clients/" + pub_id)
    has_fields(pub, RED5_CLIENT_STATS)
    assert pub["connection_protocol"] == "rtmp" and pub["role"] == "publisher", pub
    assert pub["stream"] == "stream1" and pub["path"] == "/default/live", pub
    assert pub["bytes_in"] > pub["bytes_out"] and pub["messages_read"] > 0, pub
    assert isinstance(pub["remote_port"], int) and 0 < pub["remote_port"] < 65536, pub
    assert pub["host"] and pub["messages_pending"] >= 0 and pub["messages_dropped"] == 0, pub
    player = live.api.data("applications/live/clients/" + sorted(sub_ids)[0])
    assert player["role"] == "subscriber" and player["bytes_out"] > player["bytes_in"], player
    assert player["messages_written"] > 0, player
    assert_error(live.api.get("applications/live/clients/NOSUCHCLIENT"), 404)
    # a client of another app is not found under this one
    assert_error(live.api.get("applications/other/clients/" + pub_id), 404)


def test_not_found_and_record(live):
    assert_error(live.api.get("nothing/here"), 404)
    assert_error(live.api.get("applications/live/streams/stream1/action/dance"), 404)
    # Nothing to stop: Red5's 409 "invalid operation for the current state", in the
    # error envelope. startrecord/stoprecord themselves: tests/e2e/test_recording.py.
    assert_error(live.api.get("applications/live/streams/stream1/action/stoprecord"), 409)
    assert_error(live.api.get("applications/live/streams/nope/action/startrecord"), 404)
    assert live.api.data("applications/live/streams/stream1")["is_recording"] is False


# ----------------------------------------------------------------------------
# actions (own streams on the module server; run after the read-only checks)
# ----------------------------------------------------------------------------

def test_kick_client(live, procs, media_src):
    start_publisher(procs, media_src, live, stream="kick1")
    player = start_player(procs, live, stream="kick1")
    (sub,) = wait_subscribers(live.api, 1, "kick1")
    r = live.api.delete("applications/live/clients/" + sub["id"])
    assert r.status == 200, r
    assert sorted(r.data) == sorted(RED5_CLIENT) and r.data["id"] == sub["id"], r
    wait_subscribers(live.api, 0, "kick1", timeout=T(5))
    wait_exit(player, T(10))
    assert_error(live.api.get("applications/live/clients/" + sub["id"]), 404)
    assert_error(live.api.delete("applications/live/clients/" + sub["id"]), 404)
    # the stream's other players are untouched
    assert len(subscribers(live.api)) == N_PLAYERS


def test_kick_one_subscriber(live, procs, media_src):
    start_publisher(procs, media_src, live, stream="kick2")
    players = [start_player(procs, live, stream="kick2", name="kp%d" % i) for i in range(2)]
    subs = wait_subscribers(live.api, 2, "kick2")
    pub_id = live.api.data("applications/live/streams/kick2")["publisher"]["id"]
    # the publisher is not a subscriber; another stream's subscriber is not this one's
    assert_error(live.api.delete("applications/live/streams/kick2/subscribers/" + pub_id), 404)
    other = subscribers(live.api)[0]["id"]
    assert_error(live.api.delete("applications/live/streams/kick2/subscribers/" + other), 404)
    victim = subs[0]["id"]
    r = live.api.delete("applications/live/streams/kick2/subscribers/" + victim)
    assert r.status == 200 and r.data["id"] == victim and r.data["role"] == "subscriber", r
    left = wait_subscribers(live.api, 1, "kick2", timeout=T(5))
    assert left[0]["id"] == subs[1]["id"], left
    # exactly one rtmpdump ends: the kicked one
    wait_until(lambda: sum(p.poll() is not None for p in players) == 1, T(10), 0.1,
               "one kicked player to exit")
    assert live.api.data("applications/live/streams/kick2")["active_subscribers"] == 1


def test_unpublish(live, procs, media_src):
    pub = start_publisher(procs, media_src, live, stream="unpub1")
    player, _ = rtmp_client.open_player(HOST, live.port, "live", "unpub1", timeout=T(5))
    try:
        player.wait_video_frames(1, T(10))
        r = live.api.get("applications/live/streams/unpub1/action/unpublish")
        assert r.status == 200, r
        d = r.data
        assert d["state"] == "CLOSED" and d["publish_name"] == "unpub1", d
        assert sorted(d) == sorted(RED5_STREAM_STATS), d  # StreamStatistics, not Broadcast
        player.wait_status("NetStream.Play.UnpublishNotify", T(5))
    finally:
        player.close()
    wait_until(lambda: "unpub1" not in live.api.data("applications/live/streams"), T(5), 0.1,
               "unpub1 to leave the stream list")
    assert_error(live.api.get("applications/live/streams/unpub1"), 404)
    wait_exit(pub, T(10))  # the publisher's connection was closed
    assert "stream1" in live.api.data("applications/live/streams")


def test_rooms(live, procs, media_src):
    start_publisher(procs, media_src, live, app="live/room1", stream="s")
    assert live.api.data("applications/live/streams", {"scope": "room1"}) == ["s"]
    assert "room1/s" in live.api.data("applications/live/streams")  # whole app: relative names
    for scope in ("room1", "live/room1", "/default/live/room1"):
        d = live.api.data("applications/live/streams/s", {"scope": scope})
        assert d["state"] == "PUBLISHING" and d["scope_path"] == "/default/live/room1", d
        assert d["publish_name"] == "s", d
    assert_error(live.api.get("applications/live/streams/s"), 404)  # not in the app's root
    room = live.api.data("applications/live", {"scope": "room1"})
    assert room["type"] == "room" and room["name"] == "room1", room
    assert room["path"] == "/default/live/room1" and room["depth"] == 2, room
    assert room["active_connections"] == 1, room
    clients = live.api.data("applications/live/clients", {"scope": "room1"})
    assert len(clients) == 1, clients
    c = live.api.data("applications/live/clients/" + clients[0]["id"], {"scope": "room1"})
    assert c["path"] == "/default/live/room1" and c["app"] == "live/room1", c
    app = live.api.data("applications/live")
    assert app["active_subscopes"] >= 1 and app["total_subscopes"] >= 1, app
    assert live.api.data("server/statistics")["active_sub_scopes"] >= 1
    assert live.api.data("applications/live/streams", {"scope": "room2"}) == []
    assert_error(live.api.get("applications/live/streams", {"scope": "room1/../../x"}), 400)


# ----------------------------------------------------------------------------
# access control (own servers, no media)
# ----------------------------------------------------------------------------

def test_token_required(sluice_factory):
    srv = start_api_server(sluice_factory)
    api = Api(srv)
    assert_error(api.get("server", token=None), 401, "missing")
    assert_error(api.get("server", token="wrong"), 401, "invalid")
    assert_error(api.get("applications/live/streams", token=""), 401)
    assert_error(api.get("server", token=TOKEN + "x"), 401)
    assert_error(api.get("server", token=TOKEN[:-1]), 401)
    assert api.get("server").status == 200
    # Authorization: Bearer instead of ?accessToken=
    assert api.get("server", bearer=True).status == 200
    assert_error(api.get("server", token="wrong", bearer=True), 401)
    assert_error(api.get("server", token=None, headers={"Authorization": "Basic " + TOKEN}), 401)
    # the event stream is behind the same check
    assert_error(api.get("events", token=None), 401)
    assert srv.log_text().count("api: wrong token") >= 4


def test_auth_fail_limit(sluice_factory):
    srv = start_api_server(sluice_factory, config={"api": {"auth_fail_limit": 3}})
    api = Api(srv)
    assert api.get("server").status == 200  # successes do not count
    for _ in range(3):
        assert_error(api.get("server", token="guess"), 401)
    # wrong tokens from the address are now refused without being checked...
    assert_error(api.get("server", token="guess"), 429)
    assert_error(api.get("server", token=None), 429)
    # ...but the right token still passes (issue 11: failures from a shared
    # address, NAT or proxy, must not lock the real admin out)
    assert api.get("server").status == 200
    assert api.get("server", bearer=True).status == 200
    assert_error(api.get("server", token="guess"), 429)
    # per address: another loopback address is not affected
    assert_error(Api(srv, source="127.0.0.2").get("server", token="guess"), 401)
    # /metrics is public by default and not rate limited
    assert api.get("/metrics", token=None).status == 200


def test_auth_fail_table_full_still_counts(sluice_factory):
    """Issue 11: once the failure table was full (4,096 addresses failing within a
    minute) a new address was not tracked at all and could guess without limit.
    Now the oldest record is forgotten and every new address is counted. The
    table is made small here (api.auth_fail_max_addresses) to fill it quickly."""
    srv = start_api_server(sluice_factory, config={
        "api": {"auth_fail_limit": 3, "auth_fail_max_addresses": 16}})
    for i in range(16):  # fill the table: one failure from each of 16 addresses
        assert_error(Api(srv, source="127.0.1.%d" % (i + 1)).get("server", token="guess"), 401)
    late = Api(srv, source="127.0.2.1")
    for _ in range(3):
        assert_error(late.get("server", token="guess"), 401)
    assert_error(late.get("server", token="guess"), 429)
    assert late.get("server").status == 200
    m = late.get("/metrics", token=None).body.decode()
    assert "sluice_api_auth_fail_addresses 16\n" in m
    assert "sluice_api_auth_fail_evicted_total 1\n" in m
    assert "sluice_api_auth_failures_total 19\n" in m
    assert "sluice_api_auth_limited_total 1\n" in m


def test_hosts_allow_list(sluice_factory):
    srv = start_api_server(sluice_factory, config={"api": {"hosts": "10.9.9.9, 127.0.0.2"}})
    assert_error(Api(srv).get("server"), 403, "host")
    assert_error(Api(srv).get("server", bearer=True), 403)
    assert_error(Api(srv).get("events"), 403)
    assert Api(srv, source="127.0.0.2").get("server").status == 200
    assert_error(Api(srv, source="127.0.0.2").get("server", token="wrong"), 401)


def test_hosts_localhost(sluice_factory):
    srv = start_api_server(sluice_factory, config={"api": {"hosts": "localhost"}})
    assert Api(srv).get("server").status == 200
    assert_error(Api(srv, source="127.0.0.2").get("server"), 403)


def test_generated_token(sluice_factory):
    """No api.access_token: a random one in data_dir/api_token (0600), kept across
    restarts. The log names the file at every start and never shows the token
    (issue 11, item 6: it used to be printed at every start)."""
    srv = sluice_factory()  # the default test config sets no token
    # (the factory waits for RTMP; the API starts right after it)
    m = srv.wait_log(r"api: generated an access token into (\S+)/api_token", T(5))
    path = srv.data_dir / "api_token"
    assert path.exists(), srv.log_tail()
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o600, oct(mode)
    token = path.read_text().strip()
    assert re.fullmatch(r"[0-9a-f]{32}", token), token
    assert m.group(1) == str(srv.data_dir)
    api = Api(srv, token=token)
    wait_until(lambda: api.get("server").status == 200, T(5), 0.1, "the API")
    assert_error(api.get("server", token=TOKEN), 401)
    assert srv.stop() == 0
    srv.start()
    srv.wait_log(r"api: access token from %s/api_token" % re.escape(str(srv.data_dir)), T(5))
    wait_until(lambda: api.get("server").status == 200, T(5), 0.1, "the API after a restart")
    assert path.read_text().strip() == token
    assert token not in srv.log_text()


def test_unusable_token_file_replaced(sluice_factory):
    """A token file too short to be a token is replaced, and made owner-only even
    though it existed with a wider mode."""
    srv = sluice_factory(start=False)
    path = srv.data_dir / "api_token"
    path.write_text("short\n")
    path.chmod(0o644)
    srv.start()
    srv.wait_log(r"api: generated an access token into", T(5))
    assert len(path.read_text().strip()) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_configured_token_writes_no_file(sluice_factory):
    srv = start_api_server(sluice_factory)
    srv.wait_log(r"api: access token from the configuration", T(5))
    assert not (srv.data_dir / "api_token").exists()
    assert TOKEN not in srv.log_text()  # a configured secret is not logged


def test_request_body_duplicate_keys_refused(sluice_factory):
    """JSON from outside is parsed with duplicate keys refused (issue 11): which copy
    wins is parser-specific, so an ambiguous body is a 400, not a guess."""
    srv = start_api_server(sluice_factory)
    api = Api(srv)
    r = api.request("POST", "applications/live/invoke", body={"method": "ping"})
    assert r.status == 404  # a well-formed body: no such handler
    assert_error(api.request("POST", "applications/live/invoke",
                             body=b'{"method":"ping","method":"other"}'), 400)
