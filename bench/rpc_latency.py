#!/usr/bin/python3
"""bench/rpc_latency.py: round-trip time of RPC calls, client -> server.

Starts sluice (SLUICE_BIN, default ./build/sluice) with the approute example
plugin (examples/plugins/approute.c, built here with cc; its method
"approute.echo" answers at once) and a business server of its own (a Python
http.server answering every POST with {"ok": true}), then times N sequential
NetConnection.call round trips of one RTMP client (tests/e2e/rtmp_client.py)
for: a plugin handler, the business server, and server -> client invokes
through POST /api/v1/applications/live/clients/{id}/invoke (HTTP included).
Prints p50/p95/p99 in milliseconds for each.

Usage: /usr/bin/python3 bench/rpc_latency.py [N]     (N = 2000 by default; needs pytest
for the test helpers it borrows, as the e2e tests do)
"""
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))
import rtmp_client  # noqa: E402

TOKEN = "bench-token-0123456789"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real business server
    wbufsize = 65536  # headers and body in one write (no Nagle/delayed-ACK stall)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        data = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] * 1000


def report(name, xs):
    print("%-28s n=%d p50 %.3f ms  p95 %.3f ms  p99 %.3f ms" % (name, len(xs), pct(xs, 50),
                                                              pct(xs, 95), pct(xs, 99)))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    binary = os.environ.get("SLUICE_BIN", str(REPO / "build" / "sluice"))
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="rpcbench"))
    so = tmp / "approute.so"
    subprocess.run([shutil.which("cc") or "gcc", "-shared", "-fPIC", "-O2", "-I%s" % (REPO / "include"),
                    "-o", str(so), str(REPO / "examples" / "plugins" / "approute.c")], check=True)
    biz = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=biz.serve_forever, daemon=True).start()
    from conftest import default_config, to_yaml  # every listener on a free port

    rtmp = free_port()
    cfg = default_config(rtmp)
    http = cfg["http"]["port"]
    cfg["api"] = {"access_token": TOKEN}
    cfg["log"] = {"level": "warn"}
    cfg["apps"] = {"live": {"rpc_url": "http://127.0.0.1:%d/rpc" % biz.server_address[1]}}
    (tmp / "sluice.yml").write_text(to_yaml(cfg) + "\nplugins:\n  - name: approute\n    path: %s\n" % so)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env["SLUICE_SERVER_DATA_DIR"] = str(tmp)
    proc = subprocess.Popen([binary, "--config", str(tmp / "sluice.yml")], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "sluice.log", "w"))
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", rtmp), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
        c = rtmp_client.RtmpClient("127.0.0.1", rtmp)
        assert c.connect("live").ok
        for name, method in (("plugin handler", "approute.echo"), ("business server", "anything")):
            xs = []
            for i in range(n):
                t0 = time.perf_counter()
                r = c.call(method, None, float(i), timeout=5)
                xs.append(time.perf_counter() - t0)
                assert r.name == "_result", r
            report("call -> " + name, xs)
        c.invoke_handlers["ping"] = lambda: "pong"
        url = "http://127.0.0.1:%d/api/v1/applications/live/clients" % http
        cid = json.load(urllib.request.urlopen(url + "?accessToken=" + TOKEN))["data"][0]["id"]
        xs = []
        for i in range(min(n, 1000)):
            req = urllib.request.Request("%s/%s/invoke?accessToken=%s" % (url, cid, TOKEN),
                                         data=b'{"method":"ping"}', method="POST",
                                         headers={"Content-Type": "application/json"})
            t0 = time.perf_counter()
            body = json.load(urllib.request.urlopen(req))
            xs.append(time.perf_counter() - t0)
            assert body["data"]["value"] == "pong", body
        report("API invoke -> RTMP client", xs)
        c.close()
    finally:
        proc.terminate()
        proc.wait(10)
        biz.shutdown()


if __name__ == "__main__":
    main()
