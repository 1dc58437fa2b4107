#!/usr/bin/python3
"""A WHIP publisher (aiortc) that joins a shared object over its `red5pro` data
channel with Red5's JSON messages (HTML5 SDK <= 12), for test_shared_objects_json.py.

  so_dc_client.py WHIP_URL SRC OBJECT [--seconds N]

Once the channel is open it sends sharedObjectGetRemote, then (on GetRemote
Success) sharedObjectConnect, then on Connect Success sets "dc" = "hello from dc"
and sends the message "fromDc"(42). It prints every message the server sends on
the channel as {"event": "dc", "msg": {...}} and exits 0 after it has seen an
update of the attribute "bye" (or 1 at the deadline).
"""
import argparse
import asyncio
import json
import time

import webrtc_client  # noqa: F401 - its aioice/aiortc patches (127.0.0.1 candidates)
from aiortc import RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.contrib.media import MediaPlayer  # noqa: E402

out = webrtc_client.out


async def run(args):
    pc = RTCPeerConnection()
    player = MediaPlayer(args.src, loop=True)
    if player.video:
        pc.addTrack(player.video)
    dc = pc.createDataChannel("red5pro")
    done = asyncio.Event()

    def post(o):
        dc.send(json.dumps(o))

    @dc.on("open")
    def on_open():
        out(event="open")
        post({"sharedObjectGetRemote": {"name": args.object}})

    @dc.on("message")
    def on_message(m):
        try:
            msg = json.loads(m)
        except ValueError:
            return
        out(event="dc", msg=msg)
        d = msg.get("data") or {}
        if d.get("name") != args.object:
            return
        if d.get("status") == "SharedObject.Status.GetRemote" and d.get("message") == "Success":
            post({"sharedObjectConnect": {"name": args.object}})
        elif d.get("status") == "SharedObject.Status.Connect" and d.get("message") == "Success":
            post({"sharedObjectSetProperty": {"name": args.object, "key": "dc", "value": "hello from dc"}})
            post({"sharedObjectSend": {"name": args.object, "method": "fromDc", "message": 42}})
        for e in d.get("events") or []:
            if e.get("subtype") == 4 and e.get("attribute") == "bye":
                done.set()

    webrtc_client.prefer_h264(pc)
    await pc.setLocalDescription(await pc.createOffer())
    status, body, _ = webrtc_client.post(args.url, pc.localDescription.sdp)
    out(event="answer", status=status)
    if status != 201:
        await pc.close()
        return 2
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    try:
        await asyncio.wait_for(done.wait(), args.seconds)
        ok = True
    except asyncio.TimeoutError:
        ok = False
    out(event="done", ok=ok)
    await pc.close()
    if player.video:
        player.video.stop()
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("src")
    ap.add_argument("object")
    ap.add_argument("--seconds", type=float, default=30)
    args = ap.parse_args()
    raise SystemExit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
