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
    return {"tc": tc, "edge": edge, "prefix": prefix, "redis": redis_server,
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
