"""Red5 SM 2.0 restreamer provisions (docs/stream-manager.md "Restreamer provisions"), with
redis-server, an origin, an edge and a stream manager, and real sources.

An SRT source (ffmpeg listening, MPEG-TS) is provisioned through the stream manager
(camParams type srt), distributed with Get Server for Publish ?restream=true: the origin
it names pulls it, the stream manager names a node for a subscriber, ffprobe plays it
there, and DELETE stops it. An RTMP pull is distributed with POST .../distribute/{guid}
(blocking: the answer waits for the node). Bad bodies are refused with a clear 400, and
the node's own servlet (POST /live/restream) is driven with curl.
"""

import base64
import json
import shutil
import signal
import time
import subprocess
import urllib.error
import urllib.request

import pytest

from api_helpers import TOKEN, Api, api_config, http_port_of
from clusterlib import cluster_config, redis_server, unique_prefix  # noqa: F401
from conftest import HOST, T, ffmpeg_publish_cmd, ffprobe_streams, free_port, port_open, wait_until
from test_stream_manager import check_shape

pytestmark = [pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed"),
              pytest.mark.skipif(shutil.which("redis-server") is None,
                                 reason="redis-server not installed")]

PASSWORD = "sm-restream-cluster-pw-4f2"
SM_PW = "sm-restream-admin-pw-77"


@pytest.fixture(scope="module")
def smc(module_sluice_factory, module_procs, redis_server):
    prefix = unique_prefix()

    def node(node_id, role, extra=None, group=None):
        cfg = api_config(dict({"restream": {"retry_min": "200ms", "retry_max": "1s",
                                            "open_timeout": "3s", "read_timeout": "3s"},
                               "relay": {"retry_min": "100ms", "retry_max": "500ms",
                                         "open_timeout": "3s", "read_timeout": "3s"}},
                              **(extra or {})))
        cl = {"public_host": HOST, "password": PASSWORD}
        if group:
            cl["group"] = group
        cfg["cluster"] = cluster_config(redis_server, node_id=node_id, role=role, prefix=prefix,
                                        extra=cl)
        srv = module_sluice_factory(name=node_id, config=cfg)
        wait_until(lambda: port_open(http_port_of(srv)), T(10), message=node_id + " http port")
        srv.api = Api(srv)
        return srv

    origin = node("org", "origin")
    edge = node("edge", "edge")
    # The stream manager in a group of its own, so that it is never named itself.
    sm = node("sm", "all", {"stream_manager": {"enabled": True, "admin_password": SM_PW}},
              group="control")
    return {"origin": origin, "edge": edge, "sm": sm, "procs": module_procs, "node": node}


def sm_req(sm, method, path, body=None, token=None, raw=None):
    """One SM 2.0 call under /as/v1: (status, JSON body)."""
    url = "http://%s:%d/as/v1%s" % (HOST, http_port_of(sm), path)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json"} if data is not None else {}
    if token:
        headers["Authorization"] = "Bearer " + token
    r = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(r, timeout=T(20)) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        raw_body = e.read()
        return e.code, (json.loads(raw_body) if raw_body else None)


def jwt(sm):
    cred = base64.b64encode(("admin:" + SM_PW).encode()).decode()
    url = "http://%s:%d/as/v1/auth/login" % (HOST, http_port_of(sm))
    r = urllib.request.Request(url, method="PUT", headers={"Authorization": "Basic " + cred})
    with urllib.request.urlopen(r, timeout=T(10)) as resp:
        return json.loads(resp.read())["token"]


def srt_provision(guid, stream, port, **extra):
    props = {"action": "create", "type": "srt", "ip": HOST, "port": str(port), "frameType": 0,
             "latency": 100, "reorder": 16, "overhead": 100, "keyLength": 0,
             "unlinkClock": False, "audio": True, "video": True}
    props.update(extra)
    return [{"provisionGuid": guid, "streams": [{"streamGuid": stream, "abrLevel": 0,
                                                  "camParams": {"properties": props}}],
             "timestamp": 1731437841013}]


def lookup_ok(sm, path):
    st, js = sm_req(sm, "GET", path)
    return js if st == 200 else None


def test_srt_provision_restream_subscribe_delete(smc):
    """Red5's SRT restreamer example end to end: provision, distribute with restream=true,
    subscribe, play, delete."""
    sm, origin = smc["sm"], smc["origin"]
    tok = jwt(sm)
    srt_port = free_port()
    smc["procs"].start(["ffmpeg", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
                        "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i",
                        "sine=frequency=500:sample_rate=44100", "-c:v", "libx264",
                        "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac",
                        "-f", "mpegts", "srt://%s:%d?mode=listener" % (HOST, srt_port)],
                       "srt-source")
    # The ingest, and (Red5's social push example) a push of the same stream back into the
    # origin under another name, in one body: one restream=true lookup distributes both.
    push = {"provisionGuid": "social1", "streams": [{"streamGuid": "live/cam1", "abrLevel": 0,
            "camParams": {"properties": {"action": "create", "type": "rtmp-push",
                                         "rtmpUri": "rtmp://%s:%d/live/social1" % (HOST, origin.port),
                                         "immediate": "true", "persist": "false"}}}]}
    st, js = sm_req(sm, "POST", "/streams/provision/default",
                    srt_provision("srt1", "live/cam1", srt_port) + [push], token=tok)
    assert st == 200, js
    assert js[0]["provisionGuid"] == "srt1" and "timestamp" not in js[0], js
    check_shape("/as/v1/streams/provision/{nodeGroup}", "post", st, js)
    st, js = sm_req(sm, "GET", "/streams/provision/default", token=tok)
    assert st == 200 and "srt1" in [p.get("provisionGuid") for p in js], js
    st, js = sm_req(sm, "GET", "/streams/provision/default/srt1?status=true", token=tok)
    assert st == 200 and js["status"]["state"] == "NEW", js
    check_shape("/as/v1/streams/provision/{nodeGroup}/{provisionGuid}", "get", st, js)
    # restream=true distributes it: the origin is named (and keeps being named)
    loc = wait_until(lambda: lookup_ok(sm, "/streams/stream/default/publish/live/cam1"
                                           "?restream=true"), T(10), 0.1, "distributed")
    assert loc[0]["nodeId"] == "org" and loc[0]["streamGuid"] == "live/cam1", loc
    assert lookup_ok(sm, "/streams/stream/default/publish/live/cam1?restream=true")[0][
        "nodeId"] == "org"
    wait_until(lambda: sm_req(sm, "GET", "/streams/provision/default/srt1?status=true",
                              token=tok)[1]["status"].get("state") == "running", T(10), 0.1,
               "the origin says it runs the provision")
    # the push went where the ingest is, and forwards it
    wait_until(lambda: origin.api.get("applications/live/streams/social1").status == 200, T(20),
               0.2, "the push of live/cam1 publishing live/social1")
    st, js = sm_req(sm, "GET", "/streams/provision/default/social1?status=true", token=tok)
    assert js["distribution"]["nodeId"] == "org" and js["status"]["state"] == "running", js
    # a subscriber is placed and plays it
    sub = wait_until(lambda: lookup_ok(sm, "/streams/stream/default/subscribe/live/cam1"),
                     T(20), 0.2, "a subscribe lookup names a node")
    node = {"org": origin, "edge": smc["edge"]}[sub[0]["nodeId"]]
    streams = {s["codec_type"]: s for s in ffprobe_streams(node.url("live", "cam1"),
                                                           timeout=T(40))}
    assert streams["video"]["codec_name"] == "h264" and streams["video"]["width"] == 320
    # the origin lists it as its servlet shows provisions
    listed = Api(origin).request("POST", "/live/restream", body={"parameters": {"action": "list"}})
    assert sorted(x["guid"] for x in listed.data) == ["social1", "srt1"], listed.data
    # DELETE stops the push, then the ingest: the streams disappear
    assert sm_req(sm, "DELETE", "/streams/provision/default/social1", token=tok)[0] == 200
    wait_until(lambda: origin.api.get("applications/live/streams/social1").status == 404, T(10),
               0.1, "the push stopped")
    st, js = sm_req(sm, "DELETE", "/streams/provision/default/srt1", token=tok)
    assert st == 200, js
    t0 = time.monotonic()
    wait_until(lambda: origin.api.get("applications/live/streams/cam1").status == 404, T(10),
               0.05, "the stream gone from the origin")
    print("DELETE to the ingest stopped on the origin: %.2f s" % (time.monotonic() - t0))
    wait_until(lambda: sm_req(sm, "GET", "/streams/stream/default/subscribe/live/cam1")[0] == 404,
               T(10), 0.1, "the stream gone from the stream manager")
    print("DELETE to the stream gone from subscribe lookups: %.2f s" % (time.monotonic() - t0))
    assert sm_req(sm, "GET", "/streams/provision/default/srt1", token=tok)[0] == 404
    # restream=true without a provision is a 404
    st, js = sm_req(sm, "GET", "/streams/stream/default/publish/live/cam1?restream=true")
    assert st == 404 and "provision" in js["errorMessage"], js


def test_distribute_endpoint_blocking(smc, media_src):
    """POST .../distribute/{guid}?capabilities=PUBLISH&endpoints=1&blocking=true answers
    once the node carries the provision out (an RTMP pull of a stream the origin holds);
    capability and GUID errors are clear."""
    sm, origin = smc["sm"], smc["origin"]
    tok = jwt(sm)
    pub = smc["procs"].start(ffmpeg_publish_cmd(media_src, origin.url("live", "src")),
                             "publisher")
    prov = [{"provisionGuid": "pull-1", "streams": [{"streamGuid": "live/pulled", "camParams": {
        "properties": {"type": "rtmp", "host": HOST, "port": origin.port, "application": "live",
                       "streamName": "src"}}}]}]
    st, js = sm_req(sm, "POST", "/streams/provision/default", prov, token=tok)
    assert st == 200, js
    assert js[0]["streams"][0]["camParams"]["properties"]["action"] == "create", js
    assert sm_req(sm, "POST", "/streams/provision/default", prov, token=tok)[0] == 409
    for q, want in (("?capabilities=MIX", 400), ("?capabilities=PUBLISH,NOPE", 400),
                    ("?endpoints=0", 400)):
        st, js = sm_req(sm, "POST", "/streams/provision/default/distribute/pull-1" + q, token=tok)
        assert st == want and js["errorMessage"], (q, st, js)
    st, js = sm_req(sm, "POST", "/streams/provision/default/distribute/nope-1", token=tok)
    assert st == 404, js
    assert sm_req(sm, "POST", "/streams/provision/default/distribute/pull-1")[0] == 401
    t0 = time.monotonic()
    st, js = sm_req(sm, "POST", "/streams/provision/default/distribute/pull-1"
                    "?capabilities=PUBLISH,TRANSCODE&endpoints=1&blocking=true", token=tok)
    print("blocking distribute answered in %.2f s" % (time.monotonic() - t0))
    assert st == 200, js
    assert [(x["nodeId"], x["streamGuid"]) for x in js] == [("org", "live/pulled")], js
    check_shape("/as/v1/streams/provision/{nodeGroup}/distribute/{provisionGuid}", "post", st, js)
    # blocking: the node has it already when the answer comes
    st, js = sm_req(sm, "GET", "/streams/provision/default/pull-1?status=true", token=tok)
    assert js["status"]["state"] == "running" and js["status"]["nodeId"] == "org", js
    assert js["distribution"]["nodeId"] == "org", js
    check_shape("/as/v1/streams/provision/{nodeGroup}/{provisionGuid}", "get", st, js)
    pulls = [p for p in origin.api.data("restream/pulls") if p.get("guid") == "pull-1"] or \
        [p for p in origin.api.data("restream/pulls") if p["stream"] == "pulled"]
    assert pulls, origin.api.data("restream/pulls")
    # distribute=false on Get Server for Publish names the node without distributing again
    st, js = sm_req(sm, "GET", "/streams/stream/default/publish/live/pulled?restream=true"
                    "&distribute=false")
    assert st == 200 and js[0]["nodeId"] == "org", js
    st, js = sm_req(sm, "DELETE", "/streams/provision/default/pull-1", token=tok)
    assert st == 200, js
    wait_until(lambda: not [p for p in origin.api.data("restream/pulls")
                            if p["stream"] == "pulled"], T(10), 0.1, "the pull stopped")
    smc["procs"].stop(pub)


BAD = [
    ({"provisionGuid": "ab", "streams": [{"streamGuid": "live/x", "camParams": {
        "properties": {"type": "srt", "ip": HOST, "port": 9}}}]}, "provisionGuid"),
    ({"provisionGuid": "bad/guid", "streams": [{"streamGuid": "live/x", "camParams": {
        "properties": {"type": "srt", "ip": HOST, "port": 9}}}]}, "provisionGuid"),
    ({"provisionGuid": "p-1", "streams": [{"streamGuid": "live/x", "camParams": {
        "properties": {"ip": HOST, "port": 9}}}]}, "type is required"),
    ({"provisionGuid": "p-1", "streams": [{"streamGuid": "live/x", "camParams": {
        "properties": {"type": "zixi", "zixiUri": "zixi://a"}}}]}, "not served"),
    ({"provisionGuid": "p-1", "streams": [{"streamGuid": "live/x", "camParams": {
        "properties": {"type": "srt", "ip": HOST}}}]}, "port"),
    ({"provisionGuid": "p-1", "streams": [{"streamGuid": "live/x", "camParams": {
        "properties": {"type": "srt", "ip": "0.0.0.0", "port": 9000}}}]}, "listen"),
    ({"provisionGuid": "p-1", "streams": [{"streamGuid": "live/x", "camParams": {
        "properties": {"type": "srt", "ip": HOST, "port": 70000}}}]}, "port"),
    ({"provisionGuid": "p-1", "streams": [{"streamGuid": "live/x", "camParams": {
        "properties": {"type": "rtsp", "action": "kill"}}}]}, "action"),
    ({"provisionGuid": "p-1", "streams": [{"streamGuid": "live/x", "camParams": {
        "properties": {"type": "rtsp"}}}]}, "url"),
    ({"provisionGuid": "p-1", "streams": [{"streamGuid": "live/x", "camParams": {
        "properties": {"type": "rtsp", "url": "rtsp://h/x", "n": {"deep": 1}}}}]}, "must be"),
    ({"provisionGuid": "p-1", "streams": [{"streamGuid": "x", "camParams": {
        "properties": {"type": "rtsp", "url": "rtsp://h/x"}}}]}, "app/name"),
    ({"provisionGuid": "p-1", "streams": [
        {"streamGuid": "live/x", "camParams": {"properties": {"type": "hls", "url": "http://a"}}},
        {"streamGuid": "live/y", "camParams": {"properties": {"type": "hls", "url": "http://a"}}}]},
     "exactly one"),
]


def test_bad_restreamer_provisions(smc):
    sm = smc["sm"]
    tok = jwt(sm)
    for body, word in BAD:
        st, js = sm_req(sm, "POST", "/streams/provision/default", [body], token=tok)
        assert st == 400 and word in js["errorMessage"], (body, st, js)
    st, js = sm_req(sm, "POST", "/streams/provision/default", raw=b'[{"provisionGuid":')
    assert st in (400, 401), js
    st, js = sm_req(sm, "POST", "/streams/provision/default", token=tok, raw=b'[{"provisionGuid":')
    assert st == 400 and "JSON" in js["errorMessage"], js
    assert sm_req(sm, "POST", "/streams/provision/default", BAD[0][0])[0] == 401
    # nothing of it was stored
    st, js = sm_req(sm, "GET", "/streams/provision/default", token=tok)
    assert not [p for p in js if p.get("provisionGuid") == "p-1"], js


def curl(*args):
    p = subprocess.run(["curl", "-s", "-w", "\n%{http_code}"] + list(args), capture_output=True,
                       text=True, timeout=T(20))
    body, _, code = p.stdout.rpartition("\n")
    return int(code), (json.loads(body) if body else None)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_node_servlet_with_curl(smc):
    """Red5's node servlet driven as its docs do it, with curl: create an ipcam-style
    pull, list it, kill it."""
    origin = smc["origin"]
    url = "http://%s:%d/live/restream?accessToken=%s" % (HOST, http_port_of(origin), TOKEN)
    body = {"guid": "curl-cam", "context": "live", "name": "curlcam", "level": 0,
            "parameters": {"action": "create", "type": "rtmp", "host": HOST,
                           "port": origin.port, "application": "live", "streamName": "nosuch",
                           "mode": "on_demand"}}
    code, js = curl("-X", "POST", url, "-H", "Content-Type: application/json", "-d",
                    json.dumps(body))
    assert code == 200 and js["data"]["guid"] == "curl-cam", js
    code, js = curl("-X", "POST", url, "-d", json.dumps({"parameters": {"action": "list"}}))
    assert code == 200 and "curl-cam" in [x["guid"] for x in js["data"]], js
    # list is the default action (Red5's IP camera list example gives only the type)
    code, js = curl("-X", "POST", url, "-d", json.dumps(
        {"guid": "live/camera1", "context": "live", "name": "camera1", "level": 0,
         "parameters": {"type": "ipcam"}}))
    assert code == 200 and "curl-cam" in [x["guid"] for x in js["data"]], js
    code, js = curl("-X", "POST", url.split("?")[0], "-d", json.dumps(body))
    assert code == 401, js
    code, js = curl("-X", "POST", url, "-d",
                    json.dumps({"guid": "curl-cam", "parameters": {"action": "kill"}}))
    assert code == 200 and js["data"]["killed"] == ["curl-cam"], js
    # Red5's standalone rtmp-push shape (its migration guide): rtmpUri and string options
    red5 = {"guid": "restream1", "context": "live", "name": "stream1", "level": 0,
            "parameters": {"action": "create", "type": "rtmp-push",
                           "rtmpUri": "rtmp://%s:%d/live/social9" % (HOST, origin.port),
                           "immediate": "false", "attempts": "3", "delayS": "10",
                           "persist": "true"}}
    code, js = curl("-X", "POST", url, "-d", json.dumps(red5))
    assert code == 200 and js["data"]["type"] == "rtmp-push", js
    code, js = curl("-X", "POST", url, "-d", json.dumps(red5))
    assert code == 409 and "guid" in js["message"], js
    code, js = curl("-X", "POST", url, "-d", json.dumps(
        {"context": "live", "name": "stream1", "parameters": {"action": "kill"}}))
    assert code == 200 and js["data"]["killed"] == ["restream1"], js


def test_persist_provision_moves_when_its_node_dies(smc, media_src):
    """Red5's persist: the stream manager distributes the provision again when its node
    goes (kill -9), to another node of the group it was distributed in."""
    sm, origin = smc["sm"], smc["origin"]
    tok = jwt(sm)
    pub = smc["procs"].start(ffmpeg_publish_cmd(media_src, origin.url("live", "feed")),
                             "feed-publisher")
    nodes = {n: smc["node"](n, "origin", group="pgroup") for n in ("p1", "p2")}
    prov = [{"provisionGuid": "keep-1", "streams": [{"streamGuid": "live/kept", "camParams": {
        "properties": {"type": "rtmp", "url": "rtmp://%s:%d/live/feed" % (HOST, origin.port),
                       "persist": "true"}}}]}]
    assert sm_req(sm, "POST", "/streams/provision/pgroup", prov, token=tok)[0] == 200
    js = wait_until(lambda: (lambda r: r[1] if r[0] == 200 else None)(sm_req(
        sm, "POST", "/streams/provision/pgroup/distribute/keep-1?blocking=true", token=tok)),
        T(15), 0.2, "distributed in pgroup (both nodes in service)")
    first = js[0]["nodeId"]
    assert first in nodes, js
    other = ({"p1", "p2"} - {first}).pop()
    wait_until(lambda: nodes[first].api.get("applications/live/streams/kept").status == 200,
               T(20), 0.2, "the pull live on " + first)
    nodes[first].proc.send_signal(signal.SIGKILL)
    nodes[first].proc.wait(10)
    t0 = time.monotonic()
    nodes[first].proc = None  # killed on purpose: no clean exit to check at teardown

    def moved():
        st, js = sm_req(sm, "GET", "/streams/provision/pgroup/keep-1?status=true", token=tok)
        return st == 200 and js["distribution"]["nodeId"] == other and \
            js["status"].get("state") == "running"

    wait_until(moved, T(20), 0.2, "the provision moved to " + other)
    wait_until(lambda: nodes[other].api.get("applications/live/streams/kept").status == 200,
               T(20), 0.1, "the pull live on " + other)
    print("persist: live again on the other node %.2f s after kill -9 (lease 3 s)"
          % (time.monotonic() - t0))
    assert sm_req(sm, "DELETE", "/streams/provision/pgroup/keep-1", token=tok)[0] == 200
    wait_until(lambda: nodes[other].api.get("applications/live/streams/kept").status == 404,
               T(10), 0.1, "the pull stopped")
    smc["procs"].stop(pub)
