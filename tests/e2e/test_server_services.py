"""GET /api/v1/server/services: the seams in use (docs/internals/SEAMS.md).

A server with the API, the recorder (hence VOD) and Simple Auth on one app
lists the services api (1.1), recorder and vod (1.0), the event listeners in
delivery order (phases never go back: state before stream before notify)
with the recorder and the API's event stream in their phases, and the
admission checks with Simple Auth in phase "credentials". The list is
behind the API token like every /api/v1 path. GET /api/v1/server/plugins lists the
extensions the host runs: here the built-in modules, each a plugin descriptor.
"""

from api_helpers import Api, start_api_server

EVENT_PHASES = ["state", "queue", "stream", "notify", "plugin"]
CHECK_PHASES = ["credentials", "token", "remote", "plugin", "source"]


def _services(srv):
    r = Api(srv).get("server/services")
    assert r.status == 200, r
    return r.data


def test_services_listeners_and_checks(sluice_factory, tmp_path):
    creds = tmp_path / "simple-auth.credentials"
    creds.write_text("alice secret-pw\n")
    srv = start_api_server(sluice_factory, {
        "auth": {"simple_file": str(creds)},
        "apps": {"live": {}, "locked": {"auth_simple": True}},
    })
    d = _services(srv)
    assert set(d) == {"services", "event_listeners", "admission_checks"}, d
    by_name = {s["name"]: s for s in d["services"]}
    for name, minor in (("api", 1), ("recorder", 0), ("vod", 0)):
        assert name in by_name, d["services"]
        s = by_name[name]
        assert (s["version"], s["major"], s["minor"]) == ("1.%d" % minor, 1, minor), s
    # Registration order: the API starts before the modules, the recorder before VOD.
    names = [s["name"] for s in d["services"]]
    assert names.index("api") < names.index("recorder") < names.index("vod"), names

    listeners = {(l["name"], l["phase"]) for l in d["event_listeners"]}
    assert ("recorder", "state") in listeners, d["event_listeners"]
    assert ("api.events", "stream") in listeners, d["event_listeners"]
    order = [EVENT_PHASES.index(l["phase"]) for l in d["event_listeners"]]
    assert order == sorted(order), d["event_listeners"]

    checks = [(c["name"], c["phase"]) for c in d["admission_checks"]]
    assert ("auth_simple", "credentials") in checks, checks
    order = [CHECK_PHASES.index(c["phase"]) for c in d["admission_checks"]]
    assert order == sorted(order), checks


def test_services_needs_the_token(sluice_factory):
    srv = start_api_server(sluice_factory)
    r = Api(srv).get("server/services", token=None)
    assert r.status == 401, r


def test_plugins_lists_builtins_on_the_plugin_abi(sluice_factory):
    """GET /api/v1/server/plugins: the built-in modules, in table order, are plugin
    descriptors of the host's ABI run by the same host as plugins (none loaded here)."""
    srv = start_api_server(sluice_factory)
    r = Api(srv).get("server/plugins")
    assert r.status == 200, r
    names = [x["name"] for x in r.data]
    assert names[:3] == ["auth_simple", "auth_jwt", "auth_roundtrip"], names
    assert names.index("recorder") < names.index("vod") < names.index("hls"), names
    for x in r.data:
        assert x["kind"] == "builtin" and x["path"] is None, x
        assert x["abi"].startswith("1.") and x["description"], x
    assert Api(srv).get("server/plugins", token=None).status == 401
