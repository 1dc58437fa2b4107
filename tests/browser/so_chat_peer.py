#!/usr/bin/python3
"""An RTMP client in the chat of the sharedObject testbed, for
testbeds.test.mjs, on tests/e2e/rtmp_client.py + rtmp_so.py (a Python AMF
stack sharing no code with sluice).

  so_chat_peer.py HOST PORT APP OBJECT TEXT [WANT ...]

Joins OBJECT, sends the chat message TEXT (the testbed's form: method "chat",
one argument {"text": TEXT}), prints {"joined": true} and then one JSON line
{"chat": text} per chat message it receives (its own included), and exits 0
once it has received every WANT (1 after 60 s).
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))

from rtmp_client import RtmpClient  # noqa: E402
from rtmp_so import SharedObject  # noqa: E402


def chats(so):
    out = []
    for _, e, handler, args in so.events():
        if e == "send" and handler == "chat" and args:
            a = args[0]
            out.append(a.get("text") if isinstance(a, dict) else a)
    return out


def main():
    host, port, app, name, text = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    want = set(sys.argv[6:])
    c = RtmpClient(host, port, timeout=10, name="chat-peer")
    c.connect(app)
    so = SharedObject(c, name)
    so.connect()
    so.wait_event("initial", timeout=10)
    so.send("chat", {"text": text})
    print(json.dumps({"joined": True}), flush=True)
    printed = 0
    deadline = time.time() + 60
    while time.time() < deadline:
        got = chats(so)
        for t in got[printed:]:
            print(json.dumps({"chat": t}), flush=True)
        printed = len(got)
        if want <= set(got):
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
