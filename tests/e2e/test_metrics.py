"""GET /metrics: the Prometheus text exposition format (0.0.4), parsed line by line,
and its values against a live server (ffmpeg publishing, rtmpdump players).
"""

import math
import re

import pytest

from api_helpers import (Api, assert_error, start_api_server, start_player, start_publisher,
                         wait_subscribers)
from conftest import T, wait_until

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*"'
SAMPLE_RE = re.compile(r"^(%s)(\{(?:%s)(?:,(?:%s))*,?\})? (\S+)( -?\d+)?$" % (NAME, LABEL, LABEL))
HELP_RE = re.compile(r"^# HELP (%s) (.*)$" % NAME)
TYPE_RE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % NAME)
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


def parse_metrics(text):
    """Parses the exposition text strictly. Returns {name: {"type", "help", "samples":
    [(labels_text, value)]}}; fails on any line it cannot read, on a sample whose family
    has no HELP and TYPE before it, and on a family declared twice."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    families = {}
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if not line:
            continue
        m = HELP_RE.match(line)
        if m:
            fam = families.setdefault(m.group(1), {"samples": []})
            assert "help" not in fam, "line %d: second HELP for %s" % (n, m.group(1))
            assert m.group(2).strip(), "line %d: empty HELP" % n
            fam["help"] = m.group(2)
            continue
        m = TYPE_RE.match(line)
        if m:
            fam = families.setdefault(m.group(1), {"samples": []})
            assert "type" not in fam, "line %d: second TYPE for %s" % (n, m.group(1))
            assert not fam["samples"], "line %d: TYPE after samples of %s" % (n, m.group(1))
            fam["type"] = m.group(2)
            continue
        assert not line.startswith("#") or line.startswith("# ") and not re.match(
            r"# (HELP|TYPE)", line), "line %d: malformed comment %r" % (n, line)
        if line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        assert m, "line %d: not a sample line: %r" % (n, line)
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        fam_name = name
        if name not in families:
            for base, fam in families.items():
                if any(name == base + s for s in SUFFIXES.get(fam.get("type"), ())):
                    fam_name = base
        assert fam_name in families, "line %d: sample %s before its HELP/TYPE" % (n, name)
        fam = families[fam_name]
        assert "help" in fam and "type" in fam, "line %d: %s lacks HELP or TYPE" % (n, name)
        v = float(value)  # also accepts NaN, +Inf, -Inf
        assert not math.isnan(v), "line %d: NaN" % n
        if fam["type"] == "counter":
            assert name.endswith("_total") and v >= 0, "line %d: counter %s = %s" % (n, name, v)
        fam["samples"].append((labels, v))
    for name, fam in families.items():
        assert "help" in fam and "type" in fam, "%s lacks HELP or TYPE" % name
        assert fam["samples"], "%s has no sample" % name
    return families


def value(families, name, labels=""):
    for lab, v in families[name]["samples"]:
        if lab == labels:
            return v
    raise AssertionError("no sample %s%s in %s" % (name, labels, families[name]["samples"]))


def scrape(api, **kw):
    r = api.get("/metrics", token=None, **kw)
    assert r.status == 200, r
    assert r.ctype.startswith("text/plain") and "version=0.0.4" in r.ctype, r
    return parse_metrics(r.body.decode())


@pytest.fixture
def srv(sluice_factory):
    return start_api_server(sluice_factory)


def test_idle_server(srv):
    m = scrape(Api(srv))
    for name in ("sluice_build_info", "sluice_uptime_seconds", "sluice_connections",
                 "sluice_connections_total", "sluice_streams", "sluice_publishers",
                 "sluice_players", "sluice_received_bytes_total", "sluice_sent_bytes_total",
                 "sluice_dropped_frames_total", "sluice_event_loop_lag_seconds",
                 "sluice_memory_allocated_bytes", "sluice_event_watchers",
                 "process_cpu_seconds_total", "process_resident_memory_bytes",
                 "process_open_fds", "process_start_time_seconds"):
        assert name in m, name
    assert m["sluice_connections_total"]["type"] == "counter"
    assert m["sluice_players"]["type"] == "gauge"
    assert value(m, "sluice_players") == 0 and value(m, "sluice_streams") == 0
    assert value(m, "sluice_publishers") == 0
    version = Api(srv).data("server")["red5_pro_version"]
    assert value(m, "sluice_build_info", '{version="%s"}' % version) == 1
    assert value(m, "process_resident_memory_bytes") > 0


def test_live_values(srv, procs, media_src):
    api = Api(srv)
    start_publisher(procs, media_src, srv)
    players = [start_player(procs, srv, name="p%d" % i) for i in range(3)]
    wait_subscribers(api, 3)
    m = scrape(api)
    assert value(m, "sluice_players") == 3
    assert value(m, "sluice_publishers") == 1 and value(m, "sluice_streams") == 1
    # RTMP sessions: the publisher and the players (HTTP connections count under "http")
    assert value(m, "sluice_connections", '{protocol="rtmp"}') == 4
    assert value(m, "sluice_connections_total") >= 4
    assert value(m, "sluice_received_bytes_total") > 0
    sent = value(m, "sluice_sent_bytes_total")
    wait_until(lambda: value(scrape(api), "sluice_sent_bytes_total") > sent, T(5), 0.1,
               "sluice_sent_bytes_total to grow")
    # the same numbers as the API
    server = api.data("server/statistics")
    m = scrape(api)
    assert value(m, "sluice_sent_bytes_total") >= server["bytes_out"]
    assert value(m, "sluice_players") == api.data("applications/live/streams/stream1")[
        "active_subscribers"]
    # a player leaves: the gauge follows, the counters do not go down
    procs.stop(players[0])
    wait_until(lambda: value(scrape(api), "sluice_players") == 2, T(10), 0.1, "2 players")
    assert value(scrape(api), "sluice_sent_bytes_total") >= value(m, "sluice_sent_bytes_total")


def test_metrics_private(sluice_factory):
    srv = start_api_server(sluice_factory, config={"api": {"metrics_public": False}})
    api = Api(srv)
    assert_error(api.get("/metrics", token=None), 401)
    r = api.get("/metrics")
    assert r.status == 200 and r.ctype.startswith("text/plain"), r
    parse_metrics(r.body.decode())
    assert api.get("/metrics", bearer=True).status == 200


def test_parser_rejects_bad_exposition():
    """The parser above is the test's instrument: prove it fails on what it must."""
    good = "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n"
    parse_metrics(good)
    for bad in ("a_total 1\n",                                    # no HELP/TYPE
                "# HELP a A.\na 1\n",                              # no TYPE
                "# HELP a A.\n# TYPE a gauge\na one\n",            # not a number
                "# HELP a A.\n# TYPE a gauge\na{x=1} 1\n",         # unquoted label
                "# HELP a A.\n# TYPE a counter\na 1\n",            # counter without _total
                "# HELP a A.\n# TYPE a gauge\na 1",                # no final newline
                "# HELP a A.\n# TYPE a gauge\n# TYPE a gauge\na 1\n"):
        with pytest.raises((AssertionError, ValueError)):
            parse_metrics(bad)
