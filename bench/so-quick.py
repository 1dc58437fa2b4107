"""Quick shared object figures (docs/integration/shared-objects.md). Run:
    SLUICE_BIN=$PWD/build/sluice /usr/bin/python3 bench/so-quick.py
Rough figures: change latency A -> B (non-persistent), and the rate of
acknowledged writes on a persistent object (store commit per update)."""
import os, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from conftest import HOST, Sluice, free_port
from rtmp_client import RtmpClient
from rtmp_so import SharedObject

work = tempfile.mkdtemp(prefix="so-bench-")
srv = Sluice(work, config={"apps": {"live": {"so_max_updates_per_sec": 100000}}})
srv.start()
try:
    a = RtmpClient(HOST, srv.port, name="a"); a.connect("live")
    b = RtmpClient(HOST, srv.port, name="b"); b.connect("live")
    sa = SharedObject(a, "lat"); sa.connect(); sa.wait_event("initial")
    sb = SharedObject(b, "lat"); sb.connect(); sb.wait_event("initial")
    lat = []
    for i in range(500):
        t0 = time.monotonic()
        sa.set("n", i)
        b.wait_for(lambda: len(b.so_messages) >= 2 + i, 5, "change")
        lat.append((b.so_messages[-1][0] - t0) * 1000)
    lat.sort()
    print("change A->B latency, 500 sequential sets: p50 %.3f ms p95 %.3f ms" % (lat[250], lat[475]))
    # persistent: time for 500 sets to be acknowledged (each a committed row)
    sp = SharedObject(a, "pers", persistent=True); sp.connect(); sp.wait_event("initial")
    n0 = len(a.so_messages)
    t0 = time.monotonic()
    for i in range(500):
        sp.set("n", i)
    a.wait_for(lambda: sum(1 for _, _, body in a.so_messages[n0:] if b"\x05\x00\x00\x00\x03\x00\x01n" in body) >= 500, 60, "acks")
    dt = time.monotonic() - t0
    print("persistent: 500 pipelined sets acknowledged in %.2f s (%.0f acknowledged writes/s)" % (dt, 500 / dt))
    lat = []
    for i in range(100):
        n1 = len(a.so_messages)
        t1 = time.monotonic()
        sp.set("m", i)
        a.wait_for(lambda: len(a.so_messages) > n1, 5, "ack")
        lat.append((a.so_messages[n1][0] - t1) * 1000)
    lat.sort()
    print("persistent: sequential set -> success: p50 %.2f ms p95 %.2f ms" % (lat[50], lat[95]))
finally:
    srv.stop()
