"""The autoscaler (issue 19, docs/autoscaling.md) against a real Redis and real sluice
processes: a stream manager node with autoscale.enabled and the process driver brings
a node group's edge role to its min, scales out when real players push the expression
over its threshold (a second sluice process starts and registers), and scales in by
draining the least loaded edge: a player on it keeps receiving until it leaves, then
the process is stopped (SIGTERM, clean exit). The webhook driver's decisions reach a
local HTTP server, signed, and are retried. The admin API (SM 2.0 with a Bearer JWT,
SM 4.0 with ?accessToken=) and the Kubernetes HPA example are checked too.
"""

import base64
import hashlib
import hmac
import http.server
import json
import os
import pathlib
import re
import signal
import subprocess
import threading
import time

import pytest
import yaml

import conftest

from api_helpers import TOKEN, Api, api_config
from clusterlib import cluster_config, redis_server, unique_prefix  # noqa: F401
from conftest import REPO, HOST, T, ffmpeg_publish_cmd, port_open, wait_until

pytestmark = pytest.mark.cluster

JWT_SECRET = "autoscale-e2e-jwt-secret-0123456789abcdef"  # stream_manager.auth_secret
SM_ADMIN_PW = "autoscale-e2e-admin-pw-0123"
HOOK_SECRET = "autoscale-e2e-hook-secret-4567"


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(secret=JWT_SECRET, exp=None, role="admin"):
    """An SM 2.0 token as PUT /as/v1/auth/login makes them (checked by the stream manager)."""
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    now = int(time.time())
    body = b64url(json.dumps({"sub": role, "role": role, "iat": now - 1,
                              "exp": exp or now + 600}).encode())
    sig = hmac.new(secret.encode(), ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (head, body, b64url(sig))


def node_template(redis, prefix):
    """The process driver's config template: each node on its own ports, in the group."""
    return "\n".join([
        "server:", "  data_dir: {dir}",
        "log:", "  level: debug",
        "rtmp:", "  port: {rtmp_port}",
        "http:", "  port: {http_port}",
        "rtsp:", "  port: {rtsp_port}",
        "srt:", "  port: {srt_port}",
        "webrtc:", "  port: {webrtc_port}",
        "api:", "  access_token: %s" % TOKEN,
        "apps:", "  live: {}",
        "cluster:", "  enabled: true", "  redis: %s" % redis.address, "  prefix: '%s'" % prefix,
        "  node_id: {node_id}", "  role: {role}", "  group: {group}", "  region: {subgroup}",
        "  lease: 3s", "  report_interval: 300ms", ""])


def reserve_ports(n):
    """n consecutive ports for the process driver's nodes (conftest's block region: free_port
    never hands them out). A random window among the single ports free_port scatters failed
    once the suite ran this file late (longest files first): after a few hundred ports there
    was no gap of 100 left."""
    return conftest.reserve_port_block(n)


def sm_node(factory, redis, tmp, driver="process", extra=None, prefix=None, name=None):
    prefix = prefix or unique_prefix().replace(":", "-")  # conftest's YAML does not quote ':'
    tmpl = pathlib.Path(tmp) / "node-template.yml"
    tmpl.write_text(node_template(redis, prefix))
    base = reserve_ports(100)
    auto = {"enabled": True, "interval": "300ms", "driver": driver,
            # deprecated and ignored (a warning): tokens are the stream manager's
            "jwt_secret": "ignored-autoscale-jwt-secret",
            "launch_timeout": "30s", "drain_timeout": "5m", "lease": "3s",
            "process_config": str(tmpl), "process_dir": str(pathlib.Path(tmp) / "nodes"),
            "process_port_min": base, "process_port_max": base + 99}
    auto.update(extra or {})
    cfg = api_config({"autoscale": auto, "stream_manager": {
        "enabled": True, "auth_secret": JWT_SECRET, "admin_password": SM_ADMIN_PW}})
    name = name or "sm-" + driver
    cfg["cluster"] = cluster_config(redis, node_id=name + "-" + prefix.rstrip("-"), role="all",
                                    prefix=prefix, report_interval="300ms",
                                    extra={"group": "control"})
    srv = factory(name=name, config=cfg)
    api = Api(srv)
    wait_until(lambda: port_open(api.port), T(10), 0.05, "the stream manager's HTTP port")
    wait_until(lambda: api.get("cluster").status == 200 and api.data("cluster")["redis"]["up"],
               T(10), 0.05, "the stream manager node connected to Redis")
    return srv, api


def admin(api, method, path, body=None, token=None, params=None):
    return api.request(method, "/as/v1/admin/nodegroup" + path, params, token=token or jwt(),
                       bearer=True, body=body)


def nodes(api):
    try:
        r = api.get("cluster/nodes")
    except OSError:
        return {}
    return {n["id"]: n for n in r.data} if r.status == 200 else {}


def group_nodes(api, group):
    return {k: v for k, v in nodes(api).items() if v["group"] == group}


def group_config(name, rule):
    return {"name": name, "cloudPlatform": "DOCKER",
            "roles": {"edge": {"name": "edge", "capabilities": ["SUBSCRIBE"]}},
            "groups": {"default": {"subGroupName": "default",
                                   "rulesByRole": {"edge": dict({"nodeRoleName": "edge"},
                                                                **rule)}}}}


@pytest.fixture(scope="module")
def sm(module_sluice_factory, redis_server, tmp_path_factory):  # noqa: F811
    return sm_node(module_sluice_factory, redis_server, tmp_path_factory.mktemp("as"))


def test_admin_api_shapes_and_auth(sm):
    srv, api = sm
    cfg = group_config("adm", {"min": 0, "max": 0})
    # SM 2.0: Bearer JWT signed with the stream manager's secret
    assert admin(api, "POST", "", cfg, token="x.y.z").status == 401
    assert admin(api, "POST", "", cfg, token=jwt("wrong-secret")).status == 401
    assert admin(api, "POST", "", cfg, token=jwt(exp=int(time.time()) - 5)).status == 401
    # the deprecated key's secret verifies nothing; a proxy's token may not administer
    assert admin(api, "POST", "", cfg, token=jwt("ignored-autoscale-jwt-secret")).status == 401
    assert admin(api, "POST", "", cfg, token=jwt(role="proxy")).status == 403
    assert "autoscale.jwt_secret is deprecated and ignored" in srv.log_text()
    # a token from the stream manager's own login works as well
    cred = base64.b64encode(("admin:" + SM_ADMIN_PW).encode()).decode()
    r = api.request("PUT", "/as/v1/auth/login", token=None,
                    headers={"Authorization": "Basic " + cred})
    assert r.status == 200, r
    assert admin(api, "GET", "", token=r.json["token"]).status == 200
    assert api.request("GET", "/as/v1/admin/nodegroup", token=None).status == 401
    r = admin(api, "POST", "", cfg)
    assert r.status == 201, r
    assert r.json["name"] == "adm"
    assert admin(api, "POST", "", cfg).status == 409
    assert admin(api, "PUT", "", cfg).status == 200
    assert "adm" in admin(api, "GET", "").json
    assert admin(api, "GET", "/adm").json["roles"]["edge"]["capabilities"] == ["SUBSCRIBE"]
    bad = group_config("bad", {"min": 1, "max": 2, "outExpression": "avg(nope) > 1"})
    r = admin(api, "POST", "", bad)
    assert r.status == 400 and "metric" in r.json["errorMessage"], r
    assert admin(api, "POST", "", dict(cfg, name="x" * 17)).status == 400
    r = admin(api, "PUT", "/adm/pause")
    assert r.status == 200 and r.json["scalingPaused"] is True
    r = admin(api, "PUT", "/adm/pause", params={"resume": "true"})
    assert r.json["scalingPaused"] is False
    assert admin(api, "POST", "/adm/default/edge/manualscale", params={"nodeCount": 3}).status == 400
    assert admin(api, "POST", "/adm/default/edge/manualscale", params={"nodeCount": 0}).status == 200
    assert admin(api, "POST", "/adm/default/relay/manualscale", params={"nodeCount": 0}).status == 404
    assert admin(api, "GET", "/status/adm").json == []
    assert admin(api, "GET", "/status/nope").status == 404
    assert admin(api, "DELETE", "/adm").status == 200
    assert admin(api, "GET", "/adm").status == 404
    # SM 4.0: ?accessToken=, a scale policy and a node group made from it
    sm4 = "/streammanager/api/4.0/admin"
    pol = {"policy": {"name": "p1", "description": "edges", "type":
                      "com.red5pro.services.autoscaling.model.ScalePolicyMaster", "version": "0.0.3",
                      "targets": {"region": [{"name": "default", "target": [
                          {"role": "edge", "minLimit": 0, "maxLimit": 0, "scaleAdjustment": 1,
                           "coolDownPeriod": 60000}]}]}}}
    assert api.request("POST", sm4 + "/configurations/scalepolicy", token=None,
                       body=pol).status in (401, 403)
    r = api.request("POST", sm4 + "/configurations/scalepolicy", body=pol)
    assert r.status == 201, r
    r = api.request("POST", sm4 + "/nodegroup", body={"regions": ["default"],
                                                       "launchConfig": "default",
                                                       "scalePolicy": "p1"})
    assert r.status == 201, r
    g = r.json
    assert g["name"].startswith("group-") and g["scalePolicy"] == "p1" and g["regions"] == ["default"]
    assert any(x["name"] == g["name"] for x in api.request("GET", sm4 + "/nodegroup").json)
    stored = admin(api, "GET", "/" + g["name"]).json
    assert stored["groups"]["default"]["rulesByRole"]["edge"]["max"] == 0
    # stats, resize (a manual scale of a role), the scale-out alarm (its out expression)
    r = api.request("GET", sm4 + "/nodegroup/%s/stats" % g["name"])
    assert r.status == 200 and r.json == {"totalConnections": 0, "targetTypeLoadSummary": []}, r
    assert api.request("GET", sm4 + "/nodegroup/nope/stats").status == 404
    r = api.request("POST", sm4 + "/nodegroup/%s/resize" % g["name"],
                    params={"role": "edge", "nodeCount": 0})
    assert r.status == 200, r
    assert api.request("POST", sm4 + "/nodegroup/%s/resize" % g["name"],
                       params={"role": "edge", "nodeCount": 5}).status == 400
    r = api.request("POST", sm4 + "/alarm/scaleout/default", params={"type": "edge",
                                                                     "threshold": 70})
    assert r.status == 200 and g["name"] in r.json["nodeGroups"], r
    stored = admin(api, "GET", "/" + g["name"]).json
    assert stored["groups"]["default"]["rulesByRole"]["edge"]["outExpression"] == \
        "avg(connections.load) > 70"
    assert api.request("POST", sm4 + "/alarm/scaleout/default",
                       params={"threshold": 0}).status == 400
    assert api.request("POST", sm4 + "/alarm/scaleout/default",
                       params={"type": "transcoder"}).status == 404
    # launch configurations: stored as cluster settings launchconfig/<name>
    lc = {"launchconfig": {"name": "lc1", "description": "d", "image": "sluice", "version": "0.0.3",
                           "targets": {"target": [{"role": "edge", "instanceType": "t3.small",
                                                   "connectionCapacity": 500}]},
                           "properties": {"property": []}, "metadata": {"meta": []}}}
    lcp = sm4 + "/configurations/launchconfig"
    assert api.request("POST", lcp, token=None, body=lc).status in (401, 403)
    r = api.request("POST", lcp, body=lc)
    assert r.status == 201 and r.json == lc, r
    assert api.request("POST", lcp, body=lc).status == 409
    assert api.request("GET", lcp + "/lc1").json == lc
    assert [x["launchconfig"]["name"] for x in api.request("GET", lcp).json["launchconfigs"]] == \
        ["lc1"]
    lc["launchconfig"]["targets"]["target"][0]["connectionCapacity"] = 900
    assert api.request("PUT", lcp + "/lc1", body=lc).status == 200
    assert api.request("GET", lcp + "/lc1").json == lc
    bad = {"launchconfig": {"name": "lc2", "targets": {"target": [{"role": "mixer"}]}}}
    assert api.request("POST", lcp, body=bad).status == 400
    assert api.request("DELETE", lcp + "/lc1").status == 200
    assert api.request("GET", lcp + "/lc1").status == 404
    assert api.request("DELETE", sm4 + "/nodegroup/" + g["name"]).status == 200
    assert api.request("POST", sm4 + "/nodegroup", body={"scalePolicy": "none"}).status == 400


def play_cmd(port, stream, out):
    return ["ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostdin", "-rw_timeout",
            "15000000", "-i", "rtmp://%s:%d/live/%s" % (HOST, port, stream), "-c", "copy",
            "-f", "flv", "-y", str(out)]


def size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def test_process_driver_scales_out_and_drains_in(sm, procs, media_src, tmp_path):
    srv, api = sm
    rule = {"min": 1, "max": 2, "increment": 1, "coolDownPeriod": 1000,
            "outExpression": "avg(subscribers) > 3", "inExpression": "avg(subscribers) < 2"}
    assert admin(api, "PUT", "", group_config("ng1", rule)).status == 200

    # min 1: the driver starts a real sluice process that registers as an edge of ng1
    first = wait_until(lambda: group_nodes(api, "ng1"), T(30), 0.1, "the first edge of ng1")
    assert len(first) == 1
    e1_id, e1 = next(iter(first.items()))
    assert e1["role"] == "edge" and e1["state"] in ("", "INSERVICE"), e1
    e1_rtmp = e1["ports"]["rtmp"]
    procs.start(ffmpeg_publish_cmd(media_src, "rtmp://%s:%d/live/s1" % (HOST, e1_rtmp)), "pub-e1")

    # five players on it: avg(subscribers) 5 > 3 -> a second edge (five, not four: with the
    # second edge at 0 the average is 2.5, one player away from the in threshold, not 0)
    players = []
    for i in range(5):
        out = tmp_path / ("e1-%d.flv" % i)
        players.append((procs.start(play_cmd(e1_rtmp, "s1", out), "play-e1-%d" % i), out))
    wait_until(lambda: nodes(api).get(e1_id, {}).get("load", {}).get("subscribers") == 5, T(20),
               0.1, "5 players counted on the first edge")
    both = wait_until(lambda: len(group_nodes(api, "ng1")) == 2 and group_nodes(api, "ng1"),
                      T(30), 0.1, "a second edge started by the process driver")
    e2_id = next(k for k in both if k != e1_id)
    e2_rtmp = both[e2_id]["ports"]["rtmp"]
    assert port_open(e2_rtmp)

    # one player on the second edge (its own publisher: relays are another module's)
    procs.start(ffmpeg_publish_cmd(media_src, "rtmp://%s:%d/live/s2" % (HOST, e2_rtmp)), "pub-e2")
    p_out = tmp_path / "e2-player.flv"
    p = procs.start(play_cmd(e2_rtmp, "s2", p_out), "play-e2")
    wait_until(lambda: nodes(api).get(e2_id, {}).get("load", {}).get("subscribers") == 1, T(20),
               0.1, "the player counted on the second edge")
    # avg (5 + 1) / 2 = 3: steady (at max)
    # three players leave the first edge: avg (2 + 1) / 2 = 1.5 < 2 -> scale in, the least
    # loaded edge (the second) drains
    for proc, _ in players[:3]:
        procs.stop(proc)
    wait_until(lambda: nodes(api).get(e2_id, {}).get("state") == "SOFT_SUNSET", T(20), 0.1,
               "the second edge draining (SOFT_SUNSET)")
    assert nodes(api)[e1_id]["state"] in ("", "INSERVICE")
    # the player on the draining edge keeps receiving, the process keeps running
    node_log = pathlib.Path(srv.workdir).parent.parent.glob("as*/nodes/%s.log" % e2_id)
    node_log = next(node_log)
    for _ in range(3):
        before = size(p_out)
        wait_until(lambda: size(p_out) > before + 20000, T(10), 0.1,
                   lambda: "bytes still flowing to the player of the draining edge (%d); its "
                   "log:\n%s" % (size(p_out), "\n".join(node_log.read_text().splitlines()[-60:])))
        assert p.poll() is None and port_open(e2_rtmp)
        assert nodes(api).get(e2_id, {}).get("state") == "SOFT_SUNSET"
    # a new player is refused by the draining edge (and taken by the one in service)
    def late_player(port, stream):
        return subprocess.run(play_cmd(port, stream, "-")[:-4] + ["-t", "0.5", "-f", "null", "-"],
                              capture_output=True, timeout=T(30)).returncode
    assert late_player(e2_rtmp, "s2") != 0
    assert late_player(e1_rtmp, "s1") == 0
    # the player leaves: the edge is stopped (HARD_SUNSET, SIGTERM, clean exit) and leaves
    procs.stop(p)
    wait_until(lambda: e2_id not in nodes(api), T(20), 0.1, "the drained edge gone")
    wait_until(lambda: not port_open(e2_rtmp), T(10), 0.1, "the drained edge's process stopped")
    # its log (process_dir/<node>.log) ends with sluice's clean exit report
    wait_until(lambda: node_log.read_text().rstrip().splitlines()[-1].endswith(" stopped"),
               T(10), 0.1, "the drained edge's clean exit report")
    assert "memory still allocated" not in node_log.read_text()
    assert nodes(api)[e1_id]["state"] in ("", "INSERVICE")
    st = api.data("autoscale")
    actions = [(d["action"], d["reason"]) for d in st["decisions"] if d["id"].startswith("ng1/")]
    assert actions[:4] == [("scale_out", "below min"), ("scale_out", "outExpression"),
                           ("scale_in", "inExpression"), ("stop", "drained")], actions
    assert st["evaluator"] is True and st["driver"] == "process"


class Hook(http.server.BaseHTTPRequestHandler):
    got = []
    fail_first = True

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.got.append((dict(self.headers), body))
        status = 500 if Hook.fail_first and len(Hook.got) == 1 else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_process_driver_children_die_with_a_killed_stream_manager(sluice_factory, redis_server,
                                                                   tmp_path):  # noqa: F811
    """kill -9 of the stream manager: the nodes its process driver started stop too
    (PR_SET_PDEATHSIG in each child, asked for through SL_AUTOSCALE_PARENT)."""
    srv, api = sm_node(sluice_factory, redis_server, tmp_path, name="sm-pdeath")
    assert admin(api, "PUT", "", group_config("ngk", {"min": 1, "max": 1})).status == 200
    wait_until(lambda: group_nodes(api, "ngk"), T(30), 0.1, "the edge of ngk started")
    m = wait_until(lambda: re.search(r"started node \S+ \(role edge, group ngk/\S+, pid (\d+)",
                                     srv.log_text()), T(10), 0.1, "the child's pid in the log")
    pid = int(m.group(1))
    assert pid_alive(pid)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(10)
    killed = time.monotonic()
    srv.proc = None  # killed on purpose
    wait_until(lambda: not pid_alive(pid), T(20), 0.02, "the child gone after kill -9 of its parent")
    print("process-driver child gone %.3f s after kill -9 of the stream manager"
          % (time.monotonic() - killed))


def test_webhook_driver_posts_signed_decisions(sluice_factory, redis_server, tmp_path):  # noqa: F811
    Hook.got = []
    Hook.fail_first = True
    httpd = http.server.ThreadingHTTPServer((HOST, 0), Hook)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        url = "http://%s:%d/scale" % (HOST, httpd.server_address[1])
        prefix = unique_prefix().replace(":", "-")
        srv, api = sm_node(sluice_factory, redis_server, tmp_path, driver="webhook",
                           extra={"webhook_url": url, "webhook_secret": HOOK_SECRET,
                                  "launch_timeout": "60s"}, prefix=prefix)
        assert admin(api, "PUT", "", group_config("ngw", {"min": 2, "max": 3})).status == 200
        wait_until(lambda: len(Hook.got) >= 2, T(20), 0.05, "the decision and its retry")
        (h1, b1), (h2, b2) = Hook.got[:2]
        assert b1 == b2 and h1["X-Sluice-Delivery"] == h2["X-Sluice-Delivery"]
        assert (h1["X-Sluice-Attempt"], h2["X-Sluice-Attempt"]) == ("1", "2")
        for h, b in ((h1, b1), (h2, b2)):
            want = hmac.new(HOOK_SECRET.encode(), h["X-Sluice-Timestamp"].encode() + b"." + b,
                            hashlib.sha256).hexdigest()
            assert h["X-Sluice-Signature"] == "sha256=" + want
        d = json.loads(b1)
        assert d["group"] == "ngw" and d["subGroup"] == "default" and d["role"] == "edge"
        assert d["action"] == "scale_out" and d["count"] == 2 and d["reason"] == "below min"
        assert d["nodes"] == ["ngw-edge-1", "ngw-edge-2"] and d["id"] == "ngw/default/edge#1"
        # launched but not registered: no second decision while they are awaited
        st = api.data("autoscale")
        assert st["rules"]["ngw/default/edge"]["pending"][0]["id"] == "ngw-edge-1"
        items = admin(api, "GET", "/status/ngw").json
        assert {i["scalingEvent"]["state"] for i in items} == {"CREATING"} and len(items) == 2
        assert len(Hook.got) == 2
        # the rule's state is in Redis, where another autoscale node would take it over
        state = wait_until(lambda: redis_server.cmd("HGET", prefix + "settings",
                                                    "autoscale/state/ngw/default/edge"),
                           T(5), 0.05, "the rule state in Redis")
        assert json.loads(state)["gen"] == 1 and len(json.loads(state)["pending"]) == 2
    finally:
        httpd.shutdown()


class DownThenUpHook(http.server.BaseHTTPRequestHandler):
    """503 while `down`, 200 after; records every POST."""
    got = []
    down = True

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        DownThenUpHook.got.append((dict(self.headers), body, DownThenUpHook.down))
        self.send_response(503 if DownThenUpHook.down else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def test_webhook_decisions_survive_a_restart(sluice_factory, redis_server, tmp_path):  # noqa: F811
    """A decision the receiver has not taken yet is in the store (sluice.db): after kill -9 and
    a restart it is delivered again, under the same X-Sluice-Delivery id, and then forgotten."""
    DownThenUpHook.got, DownThenUpHook.down = [], True
    httpd = http.server.ThreadingHTTPServer((HOST, 0), DownThenUpHook)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = "http://%s:%d/scale" % (HOST, httpd.server_address[1])
        srv, api = sm_node(sluice_factory, redis_server, tmp_path, driver="webhook",
                           extra={"webhook_url": url, "webhook_retries": 20,
                                  "launch_timeout": "60s"}, name="sm-durable")
        assert admin(api, "PUT", "", group_config("ngd", {"min": 1, "max": 1})).status == 200
        wait_until(lambda: DownThenUpHook.got, T(20), 0.05, "the decision tried once")
        first_id = DownThenUpHook.got[0][0]["X-Sluice-Delivery"]
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(10)
        DownThenUpHook.down = False
        n_before = len(DownThenUpHook.got)
        srv.start()
        up = wait_until(lambda: [g for g in DownThenUpHook.got[n_before:] if not g[2]], T(20),
                        0.05, "the decision delivered after the restart")
        assert up[0][0]["X-Sluice-Delivery"] == first_id == "ngd/default/edge#1"
        assert json.loads(up[0][1])["nodes"] == ["ngd-edge-1"]
        assert "from before the restart" in srv.log_text()
        # delivered: forgotten (a second restart sends nothing)
        wait_until(lambda: "decision ngd/default/edge#1 delivered" in srv.log_text(), T(10), 0.05,
                   "the delivery logged")
        srv.stop()
        n_after = len(DownThenUpHook.got)
        srv.start()
        Api(srv)  # reachable again
        wait_until(lambda: "autoscale: on" in srv.log_text().rsplit("SIGTERM", 1)[-1], T(10),
                   0.05, "the autoscaler started again")
        assert "from before the restart" not in srv.log_text().rsplit("SIGTERM", 1)[-1]
        assert len(DownThenUpHook.got) == n_after
    finally:
        httpd.shutdown()


def test_two_evaluators_make_one_decision(sluice_factory, redis_server, tmp_path):  # noqa: F811
    """Two autoscale nodes of one cluster: one holds the lease; the rule's decision is made
    and sent once."""
    Hook.got = []
    Hook.fail_first = False
    httpd = http.server.ThreadingHTTPServer((HOST, 0), Hook)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = "http://%s:%d/scale" % (HOST, httpd.server_address[1])
        prefix = unique_prefix().replace(":", "-")
        extra = {"webhook_url": url, "launch_timeout": "60s"}
        a = sm_node(sluice_factory, redis_server, tmp_path, "webhook", extra, prefix, "sm-a")[1]
        b = sm_node(sluice_factory, redis_server, tmp_path, "webhook", extra, prefix, "sm-b")[1]
        assert admin(a, "PUT", "", group_config("ng2", {"min": 1, "max": 2})).status == 200
        wait_until(lambda: Hook.got, T(20), 0.05, "a decision")
        ticks = [x.data("autoscale")["ticks"] for x in (a, b)]
        wait_until(lambda: all(x.data("autoscale")["ticks"] >= t + 10 for x, t in zip((a, b), ticks)),
                   T(20), 0.1, "both nodes evaluating ten more times")
        ids = [json.loads(body)["id"] for _, body in Hook.got]
        assert ids == ["ng2/default/edge#1"], ids
        evaluators = [x.data("autoscale")["evaluator"] for x in (a, b)]
        assert sorted(evaluators) == [False, True], evaluators
    finally:
        httpd.shutdown()


def test_kubernetes_hpa_example(sluice):
    kdir = REPO / "deploy/kubernetes/autoscaling"
    kust = yaml.safe_load((kdir / "kustomization.yaml").read_text())
    docs = {}
    for f in kust["resources"]:
        for d in yaml.safe_load_all((kdir / f).read_text()):
            docs[d["kind"]] = d
    assert set(docs) == {"Deployment", "HorizontalPodAutoscaler", "ConfigMap"}
    dep, hpa, cm = docs["Deployment"], docs["HorizontalPodAutoscaler"], docs["ConfigMap"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    ref = hpa["spec"]["scaleTargetRef"]
    assert ref["kind"] == "Deployment" and ref["name"] == dep["metadata"]["name"]
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    pod_metrics = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    rules = yaml.safe_load(cm["data"]["config.yaml"])["rules"]
    exposed = {r["name"]["as"] for r in rules}
    assert pod_metrics and set(pod_metrics) <= exposed
    # every series the adapter reads is one sluice really exports on /metrics
    metrics = Api(sluice).request("GET", "/metrics").body.decode()
    for r in rules:
        series = r["seriesQuery"].split("{")[0].strip("'")
        assert ("\n%s " % series) in metrics or ("\n%s{" % series) in metrics, series
    # every SLUICE_ variable of the edge names a real key; the pods are scraped
    defaults = yaml.safe_load(subprocess.run([str(sluice.cmdline()[0]), "--print-config", "yaml"],
                                             capture_output=True, text=True).stdout)
    c = dep["spec"]["template"]["spec"]["containers"][0]
    for e in c["env"]:
        section, _, key = e["name"][len("SLUICE_"):].lower().partition("_")
        assert key in (defaults.get(section) or {}), e["name"]
    assert dep["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
