#!/usr/bin/python3
"""An RTMP client on one shared object for shared_objects.test.mjs, built on
tests/e2e/rtmp_client.py + rtmp_so.py (a Python AMF stack sharing no code with
sluice).

  so_rtmp_peer.py HOST PORT APP OBJECT [AFTER_KEY]

Joins OBJECT, sets "rtmp" = "from-rtmp" (at once, or once the key AFTER_KEY
appears), then prints the object's data as one JSON line ({"data": {...},
"changes": [[version, key, value], ...]}, changes being every write applied,
its own included, in arrival order) whenever it changes, and exits 0 once the
key "done" appears (1 after 60 s).
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))

from rtmp_client import RtmpClient  # noqa: E402
from rtmp_so import SharedObject  # noqa: E402


def main():
    host, port, app, name = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    after = sys.argv[5] if len(sys.argv) > 5 else None
    c = RtmpClient(host, port, timeout=10, name="so-peer")
    c.connect(app)
    so = SharedObject(c, name)
    so.connect()
    so.wait_event("initial", timeout=10)
    pending = True
    own = {"rtmp": "from-rtmp"}  # the value of our own (success) writes
    last = None
    deadline = time.time() + 60
    while time.time() < deadline:
        d = so.data()
        if pending and (after is None or after in d):
            so.set("rtmp", "from-rtmp")
            pending = False
        if d != last:
            changes = [[v, k, val if e == "change" else own.get(k)]
                       for (v, e, k, val) in so.events() if e in ("change", "success")]
            print(json.dumps({"data": d, "changes": changes}), flush=True)
            last = d
        if "done" in d:
            c.close()
            return 0
        try:
            so.wait(lambda evs, n=len(so.events()): len(evs) > n, 1.0, "more events")
        except Exception:  # noqa: BLE001 - a timeout: look again
            pass
    c.close()
    return 1


if __name__ == "__main__":
    sys.exit(main())
