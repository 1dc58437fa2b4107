"""The stream manager (src/cluster/streammanager, docs/stream-manager.md) for real:
redis-server + a stream manager node + an origin + two edges on loopback.

  - broadcast lookups name the origin, in SM 4.0's and SM 2.0's shapes (checked
    against docs/streammanager-openapi.yaml, no undocumented field);
  - ffmpeg publishes to the node named; subscribe lookups name the edges, both of
    them across lookups; publish of a live stream is refused (SM 2.0 409, SM 4.0
    400); lists and stats show the stream;
  - a node group at its maxPublishers / maxSubscribers answers 503;
  - SM 2.0 login (good, wrong password, no credentials), SM 4.0 admin without or
    with a wrong token (401/403), with the right one (node, stats);
  - kill -9 of an edge: within the lease it is never named again;
  - sunset of the other edge: never named again, and with no edge left in
    service the origin serves its players itself; DELETE ?force=true: HARD_SUNSET;
  - Redis killed: broadcast lookups 503, subscribe lookups still answered from the
    last picture past the lease; placements again once Redis is back.

One cluster for the module (tests run in file order; the destructive ones last).
"""

import base64
import json
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

import jsonschema
import pytest
import yaml

from api_helpers import api_config, http_port_of
from clusterlib import cluster_config, redis_server, unique_prefix  # noqa: F401 (fixture)
from conftest import HOST, REPO, T, ffmpeg_publish_cmd, wait_until
from test_openapi import documented_fields, to_jsonschema

SPEC = yaml.safe_load((REPO / "docs" / "streammanager-openapi.yaml").read_text())
LEASE_S = 2.0
ADMIN_PW = "sm-admin-pw-0123456789"
TOKEN = "sm-admin-token-0123456789abcdef"  # stream_manager.admin_token (not the API's)

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server not installed")


# ----------------------------------------------------------------------------
# the cluster
# ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(module_sluice_factory, redis_server):
    prefix = unique_prefix()

    def node(node_id, role, group="default", extra=None):
        cfg = api_config(extra)
        cfg["cluster"] = cluster_config(redis_server, node_id=node_id, role=role, prefix=prefix,
                                        lease="%dms" % int(LEASE_S * 1000),
                                        extra={"group": group, "public_host": HOST})
        return module_sluice_factory(name=node_id, config=cfg)

    nodes = {"origin": node("origin", "origin"), "edge1": node("edge1", "edge"),
             "edge2": node("edge2", "edge"), "tc": node("tc", "transcoder")}
    # The stream manager is a node of another group (so it is never named).
    nodes["sm"] = node("sm", "all", group="control", extra={"stream_manager": {
        "enabled": True, "admin_password": ADMIN_PW, "admin_token": TOKEN,
        "lookups_per_minute": 100000}})
    sm = SM(nodes["sm"])
    # Every node registered and reporting.
    wait_until(lambda: all(sm.get4("/admin/node/%s" % n, token=TOKEN)[0] == 200
                           for n in ("origin", "edge1", "edge2", "tc")),
               T(15), message="every node in the stream manager's view")
    return {"redis": redis_server, "prefix": prefix, "nodes": nodes, "sm": sm}


class SM:
    def __init__(self, srv):
        self.srv = srv
        self.base = "http://%s:%d" % (HOST, http_port_of(srv))

    def req(self, method, path, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(self.base + path, data=data, method=method,
                                   headers=headers or {})
        if data is not None:
            r.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(r, timeout=T(10)) as resp:
                return resp.status, json.loads(resp.read() or b"null"), resp.headers
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, (json.loads(raw) if raw else None), e.headers

    def get4(self, path, token=None, method="GET", body=None):
        if token is not None:
            path += ("&" if "?" in path else "?") + "accessToken=" + token
        st, js, _ = self.req(method, "/streammanager/api/4.0" + path, body)
        return st, js

    def get2(self, path, method="GET", headers=None, body=None):
        st, js, _ = self.req(method, "/as/v1" + path, body=body, headers=headers)
        return st, js

    def token(self, user="admin", pw=ADMIN_PW):
        cred = base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()
        st, js, _ = self.req("PUT", "/as/v1/auth/login", headers={"Authorization": "Basic " + cred})
        assert st == 200, js
        return js["token"]


# ----------------------------------------------------------------------------
# the spec
# ----------------------------------------------------------------------------

def check_shape(spec_path, method, status, body):
    """body against the spec's schema of (path, method, status); no undocumented field."""
    op = SPEC["paths"][spec_path][method]
    assert str(status) in op["responses"], "%s %s: %d not documented" % (method, spec_path, status)
    resp = op["responses"][str(status)]
    if "$ref" in resp:
        resp = SPEC["components"]["responses"][resp["$ref"].split("/")[-1]]
    schema = to_jsonschema(SPEC, resp["content"]["application/json"]["schema"])
    jsonschema.validate(body, schema)
    check_fields(schema, body)


def check_fields(schema, body):
    if isinstance(body, list):
        subs = [schema.get("items")] if isinstance(schema.get("items"), dict) else []
        for k in ("oneOf", "anyOf"):
            subs += [s["items"] for s in schema.get(k, []) if isinstance(s.get("items"), dict)]
        for item in body:
            for s in subs:
                check_fields(s, item)
    elif isinstance(body, dict):
        names, open_ = documented_fields(schema)
        if schema.get("oneOf"):
            for s in schema["oneOf"]:
                n, o = documented_fields(s)
                names |= n
                open_ = open_ or o
        assert open_ or set(body) <= names, "undocumented fields %s" % (set(body) - names)


# ----------------------------------------------------------------------------
# tests
# ----------------------------------------------------------------------------

def test_broadcast_lookup_names_the_origin(cluster):
    sm = cluster["sm"]
    st, js = sm.get4("/event/live/sm1?action=broadcast")
    assert st == 200, js
    check_shape("/streammanager/api/4.0/event/{app}/{stream}", "get", st, js)
    assert js["name"] == "sm1" and js["scope"] == "/live"
    assert js["serverAddress"] == HOST and js["nodeId"] == "origin"
    assert js["rtmpPort"] == cluster["nodes"]["origin"].port
    st, js = sm.get2("/streams/stream/default/publish/live/sm1")
    assert st == 200, js
    check_shape("/as/v1/streams/stream/{nodeGroup}/publish/{app}/{stream}", "get", st, js)
    assert [n["nodeId"] for n in js] == ["origin"] and js[0]["streamGuid"] == "live/sm1"
    assert js[0]["nodeRole"] == "origin"
    # Not live yet: subscribe is a 404 on both APIs.
    st, js = sm.get4("/event/live/sm1?action=subscribe")
    assert st == 404 and "errorMessage" in js
    check_shape("/streammanager/api/4.0/event/{app}/{stream}", "get", st, js)
    assert sm.get2("/streams/stream/default/subscribe/live/sm1")[0] == 404
    # Bad requests.
    assert sm.get4("/event/live/sm1")[0] == 400
    assert sm.get4("/event/live/sm1?action=play")[0] == 400
    assert sm.get4("/event/live/sm1?action=broadcast&endpoints=0")[0] == 400
    assert sm.get4("/event/live/..?action=broadcast")[0] in (400, 404)


@pytest.fixture(scope="module")
def live(cluster, module_procs, tmp_path_factory):
    """ffmpeg publishing live/sm1 to the node the stream manager names."""
    sm = cluster["sm"]
    st, js = sm.get4("/event/live/sm1?action=broadcast")
    assert st == 200, js
    src = tmp_path_factory.mktemp("media") / "src.flv"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=320x180:rate=25", "-t", "4", "-c:v", "libx264", "-preset",
                    "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", "-f", "flv", str(src)],
                   check=True)
    url = "rtmp://%s:%d/live/sm1" % (js["serverAddress"], js["rtmpPort"])
    module_procs.start(ffmpeg_publish_cmd(src, url), "ffmpeg-publish")
    wait_until(lambda: sm.get4("/event/live/sm1?action=subscribe")[0] == 200, T(15),
               message="live/sm1 placed in the cluster")
    return {"src": src}


def test_subscribe_names_the_edges(cluster, live):
    sm = cluster["sm"]
    seen = []
    for _ in range(8):
        st, js = sm.get4("/event/live/sm1?action=subscribe")
        assert st == 200, js
        check_shape("/streammanager/api/4.0/event/{app}/{stream}", "get", st, js)
        seen.append(js["nodeId"])
    assert set(seen) == {"edge1", "edge2"}, seen  # both used, never the origin
    st, js = sm.get2("/streams/stream/default/subscribe/live/sm1?endpoints=3")
    assert st == 200, js
    check_shape("/as/v1/streams/stream/{nodeGroup}/subscribe/{app}/{stream}", "get", st, js)
    assert sorted(n["nodeId"] for n in js) == ["edge1", "edge2"]
    st, js = sm.get4("/event/live/sm1?action=subscribe&endpoints=2")
    assert st == 200 and isinstance(js, list) and len(js) == 2
    # Publishing a live stream again is refused.
    st, js = sm.get2("/streams/stream/default/publish/live/sm1")
    assert st == 409, js
    check_shape("/as/v1/streams/stream/{nodeGroup}/publish/{app}/{stream}", "get", st, js)
    assert sm.get4("/event/live/sm1?action=broadcast")[0] == 400


def test_lists_and_stats(cluster, live):
    sm = cluster["sm"]
    st, js = sm.get4("/event/list")
    assert st == 200
    check_shape("/streammanager/api/4.0/event/list", "get", st, js)
    assert any(e["name"] == "sm1" and e["type"] == "origin" and e["nodeId"] == "origin" for e in js)
    st, js = sm.get4("/event/list/stats")
    assert st == 200
    check_shape("/streammanager/api/4.0/event/list/stats", "get", st, js)
    assert any(e["name"] == "sm1" and "currentSubscribers" in e for e in js)
    st, js = sm.get4("/event/live/sm1/stats")
    assert st == 200, js
    check_shape("/streammanager/api/4.0/event/{app}/{stream}/stats", "get", st, js)
    assert sm.get4("/event/live/nosuch/stats")[0] == 404
    st, js = sm.get2("/streams/stream/default")
    assert st == 200
    check_shape("/as/v1/streams/stream/{nodeGroup}", "get", st, js)
    assert [e["streamGuid"] for e in js] == ["live/sm1"]
    st, js = sm.get2("/streams/stream/default/stream/live/sm1")
    assert st == 200, js
    check_shape("/as/v1/streams/stream/{nodeGroup}/stream/{app}/{stream}", "get", st, js)
    # The other group has no stream.
    assert sm.get2("/streams/stream/control")[1] == []


def test_group_limits_answer_503(cluster, live, module_procs):
    sm, redis = cluster["sm"], cluster["redis"]
    key = cluster["prefix"] + "settings"
    redis.cmd("HSET", key, "nodegroup/default", json.dumps({"name": "default", "maxPublishers": 1}))
    try:
        # The cluster's snapshot takes the setting on its next refresh.
        wait_until(lambda: sm.get4("/event/live/other?action=broadcast")[0] == 503, T(10),
                   message="maxPublishers reached")
        st, js = sm.get2("/streams/stream/default/publish/live/other")
        assert st == 503 and "maxPublishers" in js["errorMessage"]
        check_shape("/as/v1/streams/stream/{nodeGroup}/publish/{app}/{stream}", "get", st, js)
        # maxSubscribers 1 with one real player on the origin.
        redis.cmd("HSET", key, "nodegroup/default",
                  json.dumps({"name": "default", "maxSubscribers": 1}))
        assert wait_until(lambda: sm.get4("/event/live/other?action=broadcast")[0] == 200, T(10))
        origin = cluster["nodes"]["origin"]
        player = module_procs.start(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
                                     "-i", "rtmp://%s:%d/live/sm1" % (HOST, origin.port),
                                     "-f", "null", "-"], "ffmpeg-play")
        wait_until(lambda: sm.get2("/streams/stream/default/subscribe/live/sm1")[0] == 503,
                   T(15), message="maxSubscribers reached")
        st, js = sm.get4("/event/live/sm1?action=subscribe")
        assert st == 404 or st == 503
        player.kill()
        player.wait(10)
    finally:
        redis.cmd("HDEL", key, "nodegroup/default")
    wait_until(lambda: sm.get2("/streams/stream/default/subscribe/live/sm1")[0] == 200, T(15),
               message="limits lifted")


def test_login(cluster, secrets):
    sm = cluster["sm"]
    secrets(ADMIN_PW, TOKEN)
    good = base64.b64encode(("admin:" + ADMIN_PW).encode()).decode()
    st, js, _ = sm.req("PUT", "/as/v1/auth/login", headers={"Authorization": "Basic " + good})
    assert st == 200, js
    check_shape("/as/v1/auth/login", "put", st, js)
    secrets(js["token"])
    head, payload, sig = js["token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["role"] == "admin" and claims["sub"] == "admin"
    assert claims["exp"] - claims["iat"] == 400 * 60
    bad = base64.b64encode(b"admin:wrong").decode()
    st, js, h = sm.req("PUT", "/as/v1/auth/login", headers={"Authorization": "Basic " + bad})
    assert st == 401 and h.get("WWW-Authenticate", "").startswith("Basic")
    check_shape("/as/v1/auth/login", "put", st, js)
    assert sm.req("PUT", "/as/v1/auth/login")[0] == 401
    # The proxy user's generated password is in data_dir, never in the log.
    proxy_pw = (cluster["nodes"]["sm"].data_dir / "sm_proxy_password").read_text().strip()
    secrets(proxy_pw)
    p = base64.b64encode(("proxy:" + proxy_pw).encode()).decode()
    st, js, _ = sm.req("PUT", "/as/v1/auth/login", headers={"Authorization": "Basic " + p})
    assert st == 200
    secrets(js["token"])


def test_admin_node(cluster, secrets):
    sm = cluster["sm"]
    secrets(TOKEN)
    st, js = sm.get4("/admin/node/edge1")
    assert st == 401
    check_shape("/streammanager/api/4.0/admin/node/{ip}", "get", st, js)
    st, js = sm.get4("/admin/node/edge1", token="not-the-token")
    assert st == 403
    check_shape("/streammanager/api/4.0/admin/node/{ip}", "get", st, js)
    assert sm.get4("/admin/node/sunset", token="nope", method="POST", body=["edge1"])[0] == 403
    st, js = sm.get4("/admin/node/edge1", token=TOKEN)
    assert st == 200, js
    check_shape("/streammanager/api/4.0/admin/node/{ip}", "get", st, js)
    assert js["identifier"] == "edge1" and js["role"] == "edge" and js["state"] == "INSERVICE"
    st, js = sm.get4("/admin/node/origin/stats", token=TOKEN)
    assert st == 200, js
    check_shape("/streammanager/api/4.0/admin/node/{ip}/stats", "get", st, js)
    assert js["lastPing"] > 0
    assert sm.get4("/admin/node/nosuch", token=TOKEN)[0] == 404


# ----------------------------------------------------------------------------
# provisions (ABR)
# ----------------------------------------------------------------------------

def variant4(name, level, w, h, br):
    return {"name": name, "level": level,
            "properties": {"videoWidth": w, "videoHeight": h, "videoBR": br}}


def variant2(guid, level, w, h, br):
    return {"streamGuid": guid, "abrLevel": level,
            "videoParams": {"videoWidth": w, "videoHeight": h, "videoBitRate": br}}


SM4_META = {"meta": {"stream": [variant4("abr4_2", 2, 640, 360, 1000000),
                                variant4("abr4_1", "1", 1280, 720, 2000000)],
                     "georules": {"regions": ["US"], "restricted": False}, "qos": 3}}
CANON4 = {"streamGuid": "live/abr4", "streams": [variant2("live/abr4_1", 1, 1280, 720, 2000000),
                                                 variant2("live/abr4_2", 2, 640, 360, 1000000)]}


def test_provision_sm4(cluster, secrets):
    sm, redis = cluster["sm"], cluster["redis"]
    secrets(TOKEN)
    path = "/admin/event/meta/live/abr4"
    assert sm.get4(path, method="POST", body=SM4_META)[0] == 401
    assert sm.get4(path, token="nope", method="POST", body=SM4_META)[0] == 403
    st, js = sm.get4(path, token=TOKEN)
    assert st == 404
    check_shape("/streammanager/api/4.0/admin/event/meta/{app}/{stream}", "get", st, js)
    st, js = sm.get4(path, token=TOKEN, method="POST", body=SM4_META)
    assert st == 200, js
    check_shape("/streammanager/api/4.0/admin/event/meta/{app}/{stream}", "post", st, js)
    assert js["name"] == "abr4" and js["scope"] == "live"
    assert [(v["name"], v["level"], v["properties"]["videoBR"])
            for v in js["data"]["meta"]["stream"]] == [("abr4_1", 1, 2000000),
                                                       ("abr4_2", 2, 1000000)]
    # Stored in the cluster settings in the canonical (SM 2.0) form of the contract. The
    # stream manager answers once the write is sent on its Redis link, not once Redis
    # acknowledged it: another connection sees it a moment later.
    def stored():
        return redis.cmd("HGET", cluster["prefix"] + "settings", "provision/live/abr4")
    wait_until(lambda: stored() is not None, T(5), message="the provision in Redis")
    assert json.loads(stored()) == CANON4
    st, js = sm.get4(path, token=TOKEN)
    assert st == 200 and js["data"]["meta"]["stream"][0]["name"] == "abr4_1"
    check_shape("/streammanager/api/4.0/admin/event/meta/{app}/{stream}", "get", st, js)
    # POST again: it exists (400, SM 4.0 has no 409); PUT replaces.
    assert sm.get4(path, token=TOKEN, method="POST", body=SM4_META)[0] == 400
    one = {"meta": {"stream": [variant4("abr4_1", 1, 640, 360, 800000)]}}
    st, js = sm.get4(path, token=TOKEN, method="PUT", body=one)
    assert st == 200 and len(js["data"]["meta"]["stream"]) == 1
    # Refusals: the contract's limits, with Red5's error shape.
    bad = [
        {"meta": {"stream": [variant4("x_%d" % i, i, 320, 180, 500000) for i in range(1, 10)]}},
        {"meta": {"stream": [variant4("x_1", 1, 321, 180, 500000)]}},
        {"meta": {"stream": [variant4("x_1", 1, 320, 180, 500000),
                             variant4("x_2", 1, 320, 180, 500000)]}},
        {"meta": {"stream": [variant4("other/x_1", 1, 320, 180, 500000)]}},
        {"meta": {"stream": [variant4("x_1", 0, 320, 180, 500000)]}},
        {"meta": {"stream": [variant4("x_1", 1, 320, 180, 1000)]}},
        {"meta": {"stream": []}},
        {"stream": []},
    ]
    for b in bad:
        st, js = sm.get4("/admin/event/meta/live/bad", token=TOKEN, method="POST", body=b)
        assert st == 400, (b, js)
        check_shape("/streammanager/api/4.0/admin/event/meta/{app}/{stream}", "post", st, js)
    big = {"meta": {"stream": [variant4("x_1", 1, 320, 180, 500000)], "pad": "x" * 70000}}
    assert sm.get4("/admin/event/meta/live/bad", token=TOKEN, method="POST", body=big)[0] == 400
    deep = {"meta": {"stream": [variant4("x_1", 1, 320, 180, 500000)]}}
    for _ in range(20):
        deep = {"meta": deep}
    assert sm.get4("/admin/event/meta/live/bad", token=TOKEN, method="POST", body=deep)[0] == 400
    assert sm.get4("/admin/event/meta/live/bad", token=TOKEN)[0] == 404
    st, js = sm.get4(path, token=TOKEN, method="DELETE")
    assert st == 200 and js["name"] == "abr4"
    check_shape("/streammanager/api/4.0/admin/event/meta/{app}/{stream}", "delete", st, js)
    wait_until(lambda: stored() is None, T(5), message="the provision gone from Redis")
    assert sm.get4(path, token=TOKEN, method="DELETE")[0] == 404


ABR = [{"streamGuid": "live/abr1",
        "streams": [variant2("live/abr1_3", 3, 320, 180, 500000),
                    variant2("live/abr1_2", 2, 640, 360, 1000000),
                    variant2("live/abr1_1", 1, 1280, 720, 2000000)]}]


def test_provision_sm2(cluster, secrets):
    sm = cluster["sm"]
    tok = sm.token()
    secrets(tok)
    auth = {"Authorization": "Bearer " + tok}
    base = "/streams/provision/default"
    assert sm.get2(base, method="POST", body=ABR)[0] == 401
    proxy_pw = (cluster["nodes"]["sm"].data_dir / "sm_proxy_password").read_text().strip()
    secrets(proxy_pw)
    ptok = sm.token("proxy", proxy_pw)
    secrets(ptok)
    assert sm.get2(base, method="POST", body=ABR,
                   headers={"Authorization": "Bearer " + ptok})[0] == 403
    st, js = sm.get2(base, method="POST", body=ABR, headers=auth)
    assert st == 200, js
    check_shape("/as/v1/streams/provision/{nodeGroup}", "post", st, js)
    assert [v["abrLevel"] for v in js[0]["streams"]] == [1, 2, 3]
    st, js = sm.get2(base, method="POST", body=ABR, headers=auth)
    assert st == 409, js
    check_shape("/as/v1/streams/provision/{nodeGroup}", "post", st, js)
    st, js = sm.get2(base, headers=auth)
    assert st == 200 and [p["streamGuid"] for p in js] == ["live/abr1"]
    check_shape("/as/v1/streams/provision/{nodeGroup}", "get", st, js)
    st, js = sm.get2(base + "/live/abr1", headers=auth)
    assert st == 200 and js["streamGuid"] == "live/abr1"
    check_shape("/as/v1/streams/provision/{nodeGroup}/{app}/{stream}", "get", st, js)
    # PUT replaces (and creates); a bad one in the array writes none of them.
    st, js = sm.get2(base, method="PUT", body=ABR + [{"streamGuid": "live/abr9", "streams": [
        variant2("live/abr9_1", 1, 100, 100, 100000)]}], headers=auth)
    assert st == 200 and len(js) == 2
    check_shape("/as/v1/streams/provision/{nodeGroup}", "put", st, js)
    bad = ABR + [{"streamGuid": "live/abr8", "streams": [variant2("live/abr8_1", 1, 99, 100,
                                                                   100000)]}]
    st, js = sm.get2(base, method="PUT", body=bad, headers=auth)
    assert st == 400 and "videoWidth" in js["errorMessage"], js
    assert sm.get2(base + "/live/abr8", headers=auth)[0] == 404
    st, js = sm.get2(base + "/live/abr9", method="DELETE", headers=auth)
    assert st == 200, js
    check_shape("/as/v1/streams/provision/{nodeGroup}/{app}/{stream}", "delete", st, js)
    assert sm.get2(base + "/live/abr9", headers=auth)[0] == 404


def test_transcode_lookup(cluster, module_procs, live):
    """transcode=true names the transcoder for a provisioned GUID; variants play like any stream."""
    sm = cluster["sm"]
    st, js = sm.get4("/event/live/abr1?action=broadcast&transcode=true")
    assert st == 200, js
    check_shape("/streammanager/api/4.0/event/{app}/{stream}", "get", st, js)
    assert js["nodeId"] == "tc" and js["nodeRole"] == "transcoder"
    st, js = sm.get2("/streams/stream/default/publish/live/abr1?transcode=true")
    assert st == 200 and [n["nodeId"] for n in js] == ["tc"], js
    # No provision: 404 on both; no transcoder where asked: 503.
    st, js = sm.get4("/event/live/noprov?action=broadcast&transcode=true")
    assert st == 404 and "provision" in js["errorMessage"], js
    assert sm.get2("/streams/stream/default/publish/live/noprov?transcode=true")[0] == 404
    st, js = sm.get4("/event/live/abr1?action=broadcast&transcode=true&region=nowhere&strict=true")
    assert st == 503, js
    # Without transcode=true a broadcast goes to the origin as ever.
    assert sm.get4("/event/live/abr1?action=broadcast")[1]["nodeId"] == "origin"
    # The broadcaster publishes level 1 to the transcoder; the transcoder makes level 2 (here an
    # ffmpeg stands in for the abr module, which wt/abr tests): both are placed on tc, the
    # subscribe lookups name edges, and transcode=true now says the stream is live.
    tc = cluster["nodes"]["tc"]
    for lvl in (1, 2):
        module_procs.start(ffmpeg_publish_cmd(live["src"], "rtmp://%s:%d/live/abr1_%d"
                                              % (HOST, tc.port, lvl)), "ffmpeg-abr%d" % lvl)
    wait_until(lambda: sm.get4("/event/live/abr1_2?action=subscribe")[0] == 200, T(15),
               message="variant live/abr1_2 placed")
    st, js = sm.get4("/event/live/abr1_2?action=subscribe")
    assert js["nodeId"] in ("edge1", "edge2"), js
    st, js = sm.get4("/event/live/abr1_2/stats")
    assert st == 200 and js["nodeId"] == "tc", js
    wait_until(lambda: sm.get4("/event/live/abr1?action=broadcast&transcode=true")[0] == 400,
               T(15), message="level 1 live: transcode=true refused")
    assert sm.get2("/streams/stream/default/publish/live/abr1?transcode=true")[0] == 409


def test_conference_join_and_vod_listing(cluster, module_procs, live):
    sm = cluster["sm"]
    # A room with nobody in it: an origin is chosen, as for a broadcast.
    st, js = sm.get4("/event/live/confroom/join")
    assert st == 200, js
    check_shape("/streammanager/api/4.0/event/{app}/{room}/join", "get", st, js)
    assert js["nodeId"] == "origin" and js["name"] == "confroom" and js["scope"] == "/live"
    # A room with a stream live on the transcoder node: everyone meets there.
    tc = cluster["nodes"]["tc"]
    module_procs.start(ffmpeg_publish_cmd(live["src"], "rtmp://%s:%d/live/room9/x"
                                          % (HOST, tc.port)), "ffmpeg-room")
    wait_until(lambda: sm.get4("/event/live/room9/x/stats")[0] == 200, T(15),
               message="live/room9/x placed")
    st, js = sm.get4("/event/live/room9/join")
    assert st == 200 and js["nodeId"] == "tc", js
    # VOD listings: a 307 to an origin's own /{scope}/mediafiles (followed here).
    r = urllib.request.Request(sm.base + "/streammanager/api/4.0/media/live/mediafiles")
    with urllib.request.urlopen(r, timeout=T(10)) as resp:
        assert resp.status == 200 and "mediafiles" in json.loads(resp.read())
        assert resp.url.endswith("/live/mediafiles") and str(http_port_of(cluster["nodes"]["origin"])) \
            in resp.url, resp.url
    assert sm.get4("/media/live/nothing")[0] == 404


def test_killed_edge_is_not_named(cluster, live):
    sm = cluster["sm"]
    edge = cluster["nodes"]["edge1"]
    edge.proc.send_signal(signal.SIGKILL)
    edge.proc.wait(10)
    killed = time.monotonic()
    edge.proc = None  # killed on purpose: no clean exit to check at teardown

    def edge1_gone():
        # endpoints=3 lists every edge that may be named, not just the best one.
        st, js = sm.get2("/streams/stream/default/subscribe/live/sm1?endpoints=3")
        return st == 200 and [n["nodeId"] for n in js] == ["edge2"]

    wait_until(edge1_gone, T(LEASE_S + 5), message="edge1 no longer named")
    took = time.monotonic() - killed
    print("edge1 no longer named %.2f s after kill -9 (lease %.1f s)" % (took, LEASE_S))
    # Within the lease (plus a report interval of slack and the polling).
    assert took <= T(LEASE_S + 1.5), took
    for _ in range(10):
        st, js = sm.get4("/event/live/sm1?action=subscribe")
        assert st == 200 and js["nodeId"] == "edge2", js


def test_sunset_edge_is_not_named(cluster, live):
    sm = cluster["sm"]
    st, js = sm.get4("/admin/node/sunset", token=TOKEN, method="POST", body=["edge2"])
    assert st == 200, js
    check_shape("/streammanager/api/4.0/admin/node/sunset", "post", st, js)
    assert js == [{"identifier": "edge2", "state": "SOFT_SUNSET"}]
    # No edge left in service: the origin serves its players.
    wait_until(lambda: sm.get4("/event/live/sm1?action=subscribe")[1].get("nodeId") == "origin",
               T(10), message="the origin named once edge2 drains")
    for _ in range(5):
        st, js = sm.get4("/event/live/sm1?action=subscribe")
        assert st == 200 and js["nodeId"] == "origin", js
    st, js = sm.get4("/admin/node/edge2", token=TOKEN)
    assert st == 200 and js["state"] == "SOFT_SUNSET"
    # DELETE with force: HARD_SUNSET (the node leaves; a driver or the platform stops it).
    st, js = sm.get4("/admin/node/edge2?force=true", token=TOKEN, method="DELETE")
    assert st == 200 and js["state"] == "HARD_SUNSET", js
    check_shape("/streammanager/api/4.0/admin/node/{ip}", "delete", st, js)
    wait_until(lambda: sm.get4("/admin/node/edge2", token=TOKEN)[1].get("state") == "HARD_SUNSET",
               T(10), message="edge2 HARD_SUNSET in the snapshot")


def test_redis_down(cluster, live):
    """Redis gone: no new placement (503), players still named from the last picture."""
    sm, redis = cluster["sm"], cluster["redis"]
    redis.kill()
    try:
        wait_until(lambda: sm.get4("/event/live/new?action=broadcast")[0] == 503, T(10),
                   message="broadcast refused while Redis is down")
        st, js = sm.get2("/streams/stream/default/publish/live/new")
        assert st == 503 and "Redis" in js["errorMessage"], js
        # Past the lease, the last picture still names the origin for live/sm1.
        deadline = time.monotonic() + LEASE_S + 0.5
        while time.monotonic() < deadline:
            st, js = sm.get4("/event/live/sm1?action=subscribe")
            assert st == 200 and js["nodeId"] == "origin", js
    finally:
        redis.restart()
    wait_until(lambda: sm.get4("/event/live/new?action=broadcast")[0] == 200, T(15),
               message="placements again once Redis is back")


def test_without_cluster(sluice_factory, secrets):
    """A node with stream_manager on and no cluster: lookups say so (503), login works."""
    pw = "solo-admin-pw-0123456789"
    secrets(pw)
    srv = sluice_factory(config={"stream_manager": {"enabled": True, "admin_password": pw}})
    sm = SM(srv)
    st, js = sm.get4("/event/live/x?action=broadcast")
    assert st == 503 and "cluster" in js["errorMessage"]
    check_shape("/streammanager/api/4.0/event/{app}/{stream}", "get", st, js)
    good = base64.b64encode(("admin:" + pw).encode()).decode()
    st, js, _ = sm.req("PUT", "/as/v1/auth/login", headers={"Authorization": "Basic " + good})
    assert st == 200
    secrets(js["token"])
    # Generated secrets are files of their own, owner-only.
    for name in ("sm_admin_token", "sm_auth_secret", "sm_proxy_password"):
        f = srv.data_dir / name
        assert f.exists() and (f.stat().st_mode & 0o077) == 0
        secrets(f.read_text().strip())
    assert not (srv.data_dir / "sm_admin_password").exists()


def test_lookup_budget(sluice_factory):
    """Past stream_manager.lookups_per_minute from one address: 429."""
    srv = sluice_factory(config={"stream_manager": {"enabled": True, "lookups_per_minute": 5}})
    sm = SM(srv)
    codes = [sm.get4("/event/live/x?action=broadcast")[0] for _ in range(7)]
    assert codes == [503] * 5 + [429] * 2, codes


def test_redis_acl_user(sluice_factory, redis_server, secrets):  # noqa: F811
    """cluster.redis_username: AUTH <user> <password> against redis-server's ACL."""
    from api_helpers import Api
    pw = "acl-pw-0123456789abcdef"
    secrets(pw)
    redis_server.cmd("ACL", "SETUSER", "sluice-acl", "on", ">" + pw, "~*", "&*", "+@all")
    try:
        cfg = api_config(None)
        cfg["cluster"] = cluster_config(redis_server, node_id="acl", prefix=unique_prefix(),
                                        extra={"redis_username": "sluice-acl",
                                               "redis_password": pw})
        srv = sluice_factory(name="acl", config=cfg)
        api = Api(srv)
        wait_until(lambda: api.data("cluster")["redis"]["up"], T(10),
                   message="the node logged in to Redis as sluice-acl")
        assert "user=sluice-acl" in str(redis_server.cmd("CLIENT", "LIST"))
        # The right password of another user is refused.
        cfg["cluster"] = cluster_config(redis_server, node_id="acl2", prefix=unique_prefix(),
                                        extra={"redis_username": "nobody", "redis_password": pw})
        bad = sluice_factory(name="acl2", config=cfg)
        wait_until(lambda: "refused the connection setup" in bad.log_text(), T(10),
                   message="AUTH of an unknown user refused")
        assert not Api(bad).data("cluster")["redis"]["up"]
    finally:
        redis_server.cmd("ACL", "DELUSER", "sluice-acl")
