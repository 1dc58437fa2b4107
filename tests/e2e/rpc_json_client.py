#!/usr/bin/python3
"""A WebRTC publisher (aiortc) that calls server methods the way Red5's HTML5 SDK's
callServer() does, for test_rpc_json.py:

  rpc_json_client.py dc WHIP_URL SRC CALLS [--seconds N]
  rpc_json_client.py ws WS_URL STREAM SRC CALLS [--seconds N]

dc: a WHIP session with a `red5pro` data channel; the calls go on the channel.
ws: Red5's signalling WebSocket (webrtc_ws_client.py's publisher); the calls go on
the socket once the stream is publishing.
CALLS is a JSON list of [method, arguments]; each is sent as
{"callAdapter":{"method","arguments"},"id":"c<i>","async":true}. Prints every
message the server sends on the carrier as {"event": "msg", "msg": {...}}, and
exits 0 once it has a reply (same id, async) to every call and has received the
server's `send` of the method "bye" (1 at the deadline).
"""
import argparse
import asyncio
import json
import time

import webrtc_client  # noqa: F401 - its aioice/aiortc patches (127.0.0.1 candidates)
import webrtc_ws_client
from aiortc import RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.contrib.media import MediaPlayer  # noqa: E402

out = webrtc_client.out


class State:
    def __init__(self, calls):
        self.calls = calls
        self.replies = set()
        self.bye = False
        self.sent_at = {}  # id -> monotonic time the call was posted

    def requests(self):
        now = time.monotonic()
        for i in range(len(self.calls)):
            self.sent_at["c%d" % i] = now
        return [{"callAdapter": {"method": m, "arguments": a}, "id": "c%d" % i, "async": True}
                for i, (m, a) in enumerate(self.calls)]

    def take(self, msg):
        rtt = None
        if msg.get("async") and msg.get("id") in self.sent_at:
            rtt = round((time.monotonic() - self.sent_at[msg["id"]]) * 1000, 2)
        out(event="msg", msg=msg, rtt_ms=rtt)
        if msg.get("async") and msg.get("id"):
            self.replies.add(msg["id"])
        if (msg.get("send") or {}).get("method") == "bye":
            self.bye = True

    def done(self):
        return self.bye and len(self.replies) == len(self.calls)


async def run_dc(args, st):
    pc = RTCPeerConnection()
    player = MediaPlayer(args.src, loop=True)
    if player.video:
        pc.addTrack(player.video)
    dc = pc.createDataChannel("red5pro")

    @dc.on("open")
    def on_open():
        out(event="open")
        for r in st.requests():
            dc.send(json.dumps(r))

    @dc.on("message")
    def on_message(m):
        try:
            st.take(json.loads(m))
        except ValueError:
            pass

    webrtc_client.prefer_h264(pc)
    await pc.setLocalDescription(await pc.createOffer())
    status, body, _ = webrtc_client.post(args.url, pc.localDescription.sdp)
    out(event="answer", status=status)
    if status != 201:
        await pc.close()
        return 2
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    t0 = time.time()
    while time.time() - t0 < args.seconds and not st.done():
        await asyncio.sleep(0.05)
    await pc.close()
    if player.video:
        player.video.stop()
    return 0 if st.done() else 1


async def run_ws(args, st):
    W = webrtc_ws_client
    sig = W.Signal(args.url)
    m = await sig.wait(W.is_status("NetConnection.Connect.Success"))
    if W.status_code(m) != "NetConnection.Connect.Success":
        return W.failed(m, "connect")
    sig.send({"isAvailable": args.stream, "bundle": True})
    await sig.wait(lambda m: "isAvailable" in m)
    pc = RTCPeerConnection()
    player = MediaPlayer(args.src, loop=True)
    if player.video:
        pc.addTrack(player.video)
    webrtc_client.prefer_h264(pc)
    await pc.setLocalDescription(await pc.createOffer())
    sig.send({"handleOffer": args.stream, "transport": "udp",
              "data": {"sdp": {"type": "offer", "sdp": pc.localDescription.sdp}}})
    m = await sig.wait(W.is_sdp("answer"))
    if not W.is_sdp("answer")(m):
        await pc.close()
        return W.failed(m, "handleOffer")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=m["data"]["sdp"]["sdp"], type="answer"))
    sig.send({"handleCandidate": args.stream, "data": {"candidate": {"type": "candidate", "candidate": ""}}})
    await sig.wait(W.is_status("NetConnection.ICE.TrickleCompleted"))
    sig.send({"publish": args.stream, "mode": "live", "keyFramerate": 3000})
    m = await sig.wait(lambda m: (m.get("data") or {}).get("message") == args.stream + " starting")
    if (m.get("data") or {}).get("message") != args.stream + " starting":
        await pc.close()
        return W.failed(m, "publish")
    out(event="open")
    for r in st.requests():
        sig.send(r)
    t0 = time.time()
    while time.time() - t0 < args.seconds and not st.done():
        m = await sig.wait(lambda m: True, timeout=0.5)
        if "closed" in m:
            break
        if "timeout" not in m:
            st.take(m)
    await pc.close()
    if player.video:
        player.video.stop()
    return 0 if st.done() else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["dc", "ws"])
    ap.add_argument("url")
    ap.add_argument("rest", nargs="+")
    ap.add_argument("--seconds", type=float, default=30)
    args = ap.parse_args()
    if args.mode == "dc":
        args.src, calls = args.rest
    else:
        args.stream, args.src, calls = args.rest
    st = State(json.loads(calls))
    rc = asyncio.run(run_dc(args, st) if args.mode == "dc" else run_ws(args, st))
    out(event="done", ok=rc == 0)
    raise SystemExit(rc)


if __name__ == "__main__":
    main()
