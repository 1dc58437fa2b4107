"""ABR in a cluster (issue 19's transcoder role), with redis-server and two sluice nodes.

A provision is written into Redis as the cluster service writes it (the settings hash,
key provision/live/mystream: what the stream manager's provision endpoints store).
ffmpeg publishes live/mystream_1 to the node of role transcoder: it reads the provision
from the cluster, transcodes, publishes live/mystream_2 and _3 and claims their placement
(it is their origin, and the source's); an edge plays mystream_2 over RTMP through the
cluster relay. A provision POSTed to a node's API lands in the cluster settings; deleting
the setting stops the transcoder and unpublishes the variants. An edge, whose role does
not transcode, lists the provision and runs no transcoder.
"""

import json
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest

from api_helpers import Api, api_config
from clusterlib import Node, cluster_config, redis_server, unique_prefix, wait_placed  # noqa: F401
from conftest import HOST, T, ffprobe_streams, port_open, wait_until
from api_helpers import http_port_of
from test_abr import LADDER, provision, publish_cmd, abr_src  # noqa: F401

pytestmark = [pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed"),
              pytest.mark.skipif(shutil.which("redis-server") is None,
                                 reason="redis-server not installed")]

PASSWORD = "abr-cluster-pw-e2e-9d1"
SM_TOKEN = "abr-sm-admin-token-0123456789"


@pytest.fixture(scope="module")
def abr_cluster(module_sluice_factory, module_procs, redis_server):
    prefix = unique_prefix()

    def node(node_id, role, abr):
        cfg = api_config({"relay": {"idle_timeout": "3s", "retry_min": "100ms",
                                    "retry_max": "500ms", "open_timeout": "3s",
                                    "read_timeout": "3s"},
                          "abr": {"enabled": abr, "preset": "ultrafast",
                                  "settings_interval": "200ms"}})
        cfg["cluster"] = cluster_config(redis_server, node_id=node_id, role=role, prefix=prefix,
                                        extra={"public_host": HOST, "password": PASSWORD})
        srv = module_sluice_factory(name=node_id, config=cfg)
        wait_until(lambda: port_open(http_port_of(srv)), T(10), message="http port")
        srv.api = Api(srv)
        return srv

    tc = node("tc", "transcoder", True)
    edge = node("edge", "edge", True)
    edge.node = Node(edge, "edge")  # for clusterlib's placement waits
    # A stream manager, in a group of its own so that it is never named itself.
    smcfg = api_config({"stream_manager": {"enabled": True, "admin_password": "abr-sm-pw-0123",
                                           "admin_token": SM_TOKEN}})
    smcfg["cluster"] = cluster_config(redis_server, node_id="sm", role="all", prefix=prefix,
                                      extra={"public_host": HOST, "password": PASSWORD,
                                             "group": "control"})
    sm = module_sluice_factory(name="sm", config=smcfg)
    wait_until(lambda: port_open(http_port_of(sm)), T(10), message="sm http port")
    return {"tc": tc, "edge": edge, "sm": sm, "prefix": prefix, "redis": redis_server,
            "procs": module_procs}


def transcoders(srv):
    return srv.api.data("abr/transcoders")


def test_provision_from_redis_transcodes_and_edge_plays(abr_cluster, abr_src):
    tc, edge, redis = abr_cluster["tc"], abr_cluster["edge"], abr_cluster["redis"]
    # written as the cluster service writes a setting (HSET <prefix>settings key json)
    redis.cmd("HSET", abr_cluster["prefix"] + "settings", "provision/live/mystream",
              json.dumps(provision()))
    wait_until(lambda: any(p["source"] == "cluster" for p in tc.api.data("abr/provisions")),
               T(10), 0.1, "the transcoder node reads the provision")
    pub = abr_cluster["procs"].start(publish_cmd(abr_src, tc.url("live", "mystream_1")),
                                     "publisher")
    wait_until(lambda: [t for t in transcoders(tc) if all(v["live"] for v in t["variants"])],
               T(20), 0.2, "the transcoder running with its variants live")
    # the transcoder node is the origin of the variants and of the source
    for path in ("live/mystream_1", "live/mystream_2", "live/mystream_3"):
        wait_placed(edge.node, path, "tc", T(10))
    # an edge plays a variant through the relay
    streams = {s["codec_type"]: s for s in ffprobe_streams(edge.url("live", "mystream_2"),
                                                           timeout=T(40))}
    assert (streams["video"]["width"], streams["video"]["height"]) == LADDER[1][:2]
    assert streams["audio"]["codec_name"] == "aac"
    # the edge's role does not transcode: it lists the provision, runs nothing itself
    assert transcoders(edge) == []
    assert [p["streamGuid"] for p in edge.api.data("abr/provisions")] == ["live/mystream"]
    # the setting removed: the transcoder stops, the variants go, their placements too
    redis.cmd("HDEL", abr_cluster["prefix"] + "settings", "provision/live/mystream")
    wait_until(lambda: transcoders(tc) == [], T(10), 0.1, "the transcoder stopped")
    wait_placed(edge.node, "live/mystream_2", None, T(10))
    abr_cluster["procs"].stop(pub)


def test_api_post_lands_in_the_cluster(abr_cluster):
    tc, edge, redis = abr_cluster["tc"], abr_cluster["edge"], abr_cluster["redis"]
    r = edge.api.request("POST", "abr/provisions", body=provision("live/other", LADDER[1:]))
    assert r.status == 200, r
    assert r.data["source"] == "cluster"
    # put_setting's write reaches Redis asynchronously
    raw = wait_until(lambda: redis.cmd("HGET", abr_cluster["prefix"] + "settings",
                                       "provision/live/other"), T(10), 0.05, "the setting in Redis")
    assert json.loads(raw)["streamGuid"] == "live/other"
    wait_until(lambda: "live/other" in [p["streamGuid"] for p in tc.api.data("abr/provisions")],
               T(10), 0.1, "the other node reads it")
    r = tc.api.delete("abr/provisions/live/other")
    assert r.status == 200, r
    wait_until(lambda: redis.cmd("HGET", abr_cluster["prefix"] + "settings",
                                 "provision/live/other") is None, T(10), 0.05, "the setting gone")


def sm4(sm, method, path, body=None):
    """One SM 4.0 call; (status, JSON body)."""
    url = "http://%s:%d/streammanager/api/4.0%s" % (HOST, http_port_of(sm), path)
    data = json.dumps(body).encode() if body is not None else None
    r = urllib.request.Request(url, data=data, method=method,
                               headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(r, timeout=T(10)) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, (json.loads(raw) if raw else None)


def test_red5_transcoder_flow_through_the_stream_manager(abr_cluster, abr_src):
    """Red5's ABR flow end to end: the provision is POSTed to the stream manager (SM 4.0),
    the broadcaster asks it for the transcoder (transcode=true) and publishes level 1 there,
    the transcoder makes the other levels, and a subscriber asks the stream manager for a
    variant and plays it from the edge it names."""
    tc, edge, sm = abr_cluster["tc"], abr_cluster["edge"], abr_cluster["sm"]
    meta = {"meta": {"stream": [
        {"name": "full_%d" % (i + 1), "level": i + 1,
         "properties": {"videoWidth": w, "videoHeight": h, "videoBR": b}}
        for i, (w, h, b) in enumerate(LADDER)]}}
    st, js = sm4(sm, "POST", "/admin/event/meta/live/full?accessToken=" + SM_TOKEN, meta)
    assert st == 200, js
    st, js = wait_until(lambda: (lambda r: r if r[0] == 200 else None)(
        sm4(sm, "GET", "/event/live/full?action=broadcast&transcode=true")), T(15), 0.1,
        "the stream manager names a transcoder")
    assert js["nodeId"] == "tc" and js["serverAddress"] == HOST, js
    pub = abr_cluster["procs"].start(publish_cmd(abr_src, tc.url("live", "full_1")), "publisher")
    wait_until(lambda: tc.api.data("abr/provisions") and
               [t for t in transcoders(tc) if all(v["live"] for v in t["variants"])],
               T(20), 0.2, "the transcoder running with its variants live")
    st, js = wait_until(lambda: (lambda r: r if r[0] == 200 else None)(
        sm4(sm, "GET", "/event/live/full_3?action=subscribe")), T(15), 0.1,
        "the stream manager names an edge for a variant")
    assert js["nodeId"] == "edge", js
    streams = {s["codec_type"]: s for s in ffprobe_streams(edge.url("live", "full_3"),
                                                           timeout=T(40))}
    assert (streams["video"]["width"], streams["video"]["height"]) == LADDER[2][:2]
    assert streams["audio"]["codec_name"] == "aac"
    # Level 1 is live: a second broadcaster asking for the transcoder is refused.
    assert sm4(sm, "GET", "/event/live/full?action=broadcast&transcode=true")[0] == 400
    st, js = sm4(sm, "DELETE", "/admin/event/meta/live/full?accessToken=" + SM_TOKEN)
    assert st == 200, js
    wait_until(lambda: transcoders(tc) == [], T(10), 0.1, "the transcoder stopped")
    abr_cluster["procs"].stop(pub)
