"""Benchmark, not a test (not collected by the suite): what the stream manager's proxy
adds to a request on loopback. A stream manager (role relay, sm_proxy on) and an origin on
one private redis-server; 300 sequential requests each, a new connection per request:
GET /api/v1/server direct to the origin vs through /as/v1/proxy/forward/, and OPTIONS on the
origin's WHIP endpoint vs /as/v1/proxy/whip/... (choice + forward). Prints p50 and p95 in ms.

  cd tests/e2e && SLUICE_BIN=$PWD/../../build/sluice python3 -m pytest -q -s bench_sm_proxy.py
"""
import http.client, time, json, urllib.parse, statistics
import pytest
from api_helpers import TOKEN, http_port_of
from conftest import HOST
import clusterlib
from clusterlib import redis_server, start_nodes, wait_nodes  # noqa

def req(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection(HOST, port, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse(); b = r.read(); c.close()
    return r.status, b

def test_proxy_overhead(module_sluice_factory, redis_server):
    prefix = clusterlib.unique_prefix()
    sm, = start_nodes(module_sluice_factory, redis_server, 1, roles=["relay"], config={"stream_manager": {"enabled": True}, "sm_proxy": {"enabled": True}}, ids=["m-sm"], prefix=prefix)
    o, = start_nodes(module_sluice_factory, redis_server, 1, roles=["origin"], ids=["m-o"], prefix=prefix)
    wait_nodes(sm, ["m-sm", "m-o"])
    smp = http_port_of(sm.srv)
    direct_path = "/api/v1/server?accessToken=%s" % TOKEN
    target = "http://%s:%d%s" % (HOST, o.http_port, direct_path)
    fwd = "/as/v1/proxy/forward/?accessToken=%s&target=%s" % (TOKEN, urllib.parse.quote(target, safe=""))
    res = {}
    for name, port, path in [("direct", o.http_port, direct_path), ("proxied", smp, fwd)]:
        ts = []
        for i in range(300):
            t = time.perf_counter(); st, _ = req(port, "GET", path); ts.append((time.perf_counter() - t) * 1000)
            assert st == 200
        ts.sort()
        res[name] = (statistics.median(ts), ts[int(len(ts) * 0.95)])
    # OPTIONS via the proxy (choose + forward) vs direct OPTIONS
    for name, port, path in [("options-direct", o.http_port, "/live/whip/endpoint/x"), ("options-proxied", smp, "/as/v1/proxy/whip/live/x")]:
        ts = []
        for i in range(300):
            t = time.perf_counter(); st, _ = req(port, "OPTIONS", path); ts.append((time.perf_counter() - t) * 1000)
            assert st == 204
        ts.sort()
        res[name] = (statistics.median(ts), ts[int(len(ts) * 0.95)])
    print("MEASURE", json.dumps(res))
