#!/usr/bin/python3
"""A publisher and a subscriber speaking Red5 Pro's WebSocket signalling (the HTML5 SDK's
RTCPublisher / RTCSubscriber before WHIP), built on aiortc and python3-websocket, run as a
subprocess by tests/e2e/test_webrtc_ws.py.

  webrtc_ws_client.py pub WS_URL STREAM [--src FILE] [--seconds N] [--mode live]
  webrtc_ws_client.py sub WS_URL STREAM [--seconds N] [--frames N] [--audio-frames N]
                                        [--datachannel]

WS_URL is ws://host:port/{app}/?id=...&{connectionParams}. The message order is the
SDK's (docs/webrtc.md, "Red5 WebSocket signalling"):
  pub: Connect.Success, {isAvailable,bundle} -> {isAvailable}, {handleOffer} -> answer,
       {handleCandidate} (end of candidates), TrickleCompleted, {publish} -> "<name> starting"
  sub: Connect.Success, {requestOffer} -> offer, {handleAnswer}, TrickleCompleted,
       {subscribe} -> "<name> starting"
Prints one JSON line per event ({"event": "status", "code": ...}) and a final
{"event": "done", ...}. Exit 0 when the session ran (sub: --frames video frames
decoded), 2 when signalling failed (the server's error is printed), 1 otherwise.
"""
import argparse
import asyncio
import json
import sys
import time

import websocket  # python3-websocket

import webrtc_client  # noqa: F401 - its aioice/aiortc patches (127.0.0.1 candidates, PLI)
from aiortc import RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.contrib.media import MediaPlayer  # noqa: E402
from aiortc.mediastreams import MediaStreamError  # noqa: E402

out = webrtc_client.out


class Signal:
    """The WebSocket, read from a worker thread so the event loop keeps running."""

    def __init__(self, url):
        self.ws = websocket.create_connection(url, timeout=10)
        self.log = []

    def send(self, obj):
        self.ws.send(json.dumps(obj))

    async def wait(self, pred, timeout=15):
        """The next message matching pred; an error status ends the wait (returned)."""
        loop = asyncio.get_running_loop()
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.time()))
            try:
                raw = await loop.run_in_executor(None, self.ws.recv)
            except websocket.WebSocketTimeoutException:
                break
            except (websocket.WebSocketException, OSError) as e:
                return {"closed": str(e)}
            if not raw:
                return {"closed": "close frame"}
            m = json.loads(raw)
            self.log.append(m)
            d = m.get("data") if isinstance(m.get("data"), dict) else {}
            if "code" in d:
                out(event="status", type=d.get("type"), code=d.get("code"), message=d.get("message"))
            if pred(m):
                return m
            if d.get("type") == "error":
                return m
        return {"timeout": True}


def status_code(m):
    d = m.get("data") if isinstance(m.get("data"), dict) else {}
    return d.get("code")


def is_status(code):
    return lambda m: status_code(m) == code


def is_sdp(kind):
    def f(m):
        d = m.get("data")
        return isinstance(d, dict) and isinstance(d.get("sdp"), dict) and d["sdp"].get("type") == kind
    return f


def failed(m, what):
    out(event="failed", step=what, message=m)
    return 2


async def pub(args):
    sig = Signal(args.url)
    m = await sig.wait(is_status("NetConnection.Connect.Success"))
    if status_code(m) != "NetConnection.Connect.Success":
        return failed(m, "connect")
    sig.send({"isAvailable": args.stream, "bundle": True})
    m = await sig.wait(lambda m: "isAvailable" in m)
    out(event="available", value=m.get("isAvailable"))
    if m.get("isAvailable") is not True:
        return failed(m, "isAvailable")
    pc = RTCPeerConnection()
    player = MediaPlayer(args.src, loop=True)
    if player.video:
        pc.addTrack(player.video)
    if player.audio:
        pc.addTrack(player.audio)
    webrtc_client.prefer_h264(pc)
    await pc.setLocalDescription(await pc.createOffer())
    sig.send({"handleOffer": args.stream, "transport": "udp",
              "data": {"sdp": {"type": "offer", "sdp": pc.localDescription.sdp}}})
    m = await sig.wait(is_sdp("answer"))
    if not is_sdp("answer")(m):
        await pc.close()
        return failed(m, "handleOffer")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=m["data"]["sdp"]["sdp"], type="answer"))
    sig.send({"handleCandidate": args.stream, "data": {"candidate": {"type": "candidate", "candidate": ""}}})
    m = await sig.wait(is_status("NetConnection.ICE.TrickleCompleted"))
    if status_code(m) != "NetConnection.ICE.TrickleCompleted":
        await pc.close()
        return failed(m, "trickle")
    sig.send({"publish": args.stream, "mode": args.mode, "keyFramerate": 3000})
    m = await sig.wait(lambda m: (m.get("data") or {}).get("message") == args.stream + " starting")
    if (m.get("data") or {}).get("message") != args.stream + " starting":
        await pc.close()
        return failed(m, "publish")
    t0 = time.time()
    connected = False
    while time.time() - t0 < args.seconds:
        if pc.connectionState == "connected" and not connected:
            connected = True
            out(event="connected", after=round(time.time() - t0, 3))
        if pc.connectionState in ("failed", "closed"):
            break
        await asyncio.sleep(0.25)
    if args.unpublish:
        sig.send({"unpublish": args.stream})
        m = await sig.wait(lambda m: (m.get("data") or {}).get("message") == args.stream + " stopping")
        out(event="unpublished", ok=(m.get("data") or {}).get("message") == args.stream + " stopping")
    await pc.close()
    for t in (player.audio, player.video):
        if t:
            t.stop()
    out(event="done", connected=connected)
    return 0 if connected else 1


async def sub(args):
    t_open = time.time()
    sig = Signal(args.url)
    m = await sig.wait(is_status("NetConnection.Connect.Success"))
    if status_code(m) != "NetConnection.Connect.Success":
        return failed(m, "connect")
    rid = "subscriber-%d" % int(time.time() * 1000 % 100000)
    sig.send({"requestOffer": args.stream, "requestId": rid, "transport": "udp",
              "datachannel": bool(args.datachannel), "doNotSwitch": False})
    m = await sig.wait(is_sdp("offer"))
    if not is_sdp("offer")(m):
        return failed(m, "requestOffer")
    offer = m["data"]["sdp"]["sdp"]
    out(event="offer", lines=len(offer.split("\r\n")), has_app="m=application" in offer)
    pc = RTCPeerConnection()
    counts = {"video": 0, "audio": 0}
    info = {}
    tasks = []

    async def consume(track):
        while True:
            try:
                f = await track.recv()
            except MediaStreamError:
                return
            counts[track.kind] += 1
            if track.kind == "video" and "width" not in info:
                info.update(width=f.width, height=f.height)

    @pc.on("track")
    def on_track(track):
        tasks.append(asyncio.ensure_future(consume(track)))

    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    sig.send({"handleAnswer": args.stream, "requestId": rid,
              "data": {"sdp": {"type": "answer", "sdp": pc.localDescription.sdp}}})
    m = await sig.wait(is_status("NetConnection.ICE.TrickleCompleted"))
    if status_code(m) != "NetConnection.ICE.TrickleCompleted":
        await pc.close()
        return failed(m, "handleAnswer")
    sig.send({"subscribe": args.stream, "requestId": rid})
    m = await sig.wait(lambda m: (m.get("data") or {}).get("message") == args.stream + " starting")
    if (m.get("data") or {}).get("message") != args.stream + " starting":
        await pc.close()
        return failed(m, "subscribe")
    t0 = time.time()
    first = None
    while time.time() - t0 < args.seconds:
        if counts["video"] and first is None:
            first = time.time() - t_open
            out(event="first_video", after_open=round(first, 3))
        if counts["video"] >= args.frames and counts["audio"] >= args.audio_frames:
            break
        if pc.connectionState in ("failed", "closed"):
            break
        await asyncio.sleep(0.02)
    out(event="done", state=pc.connectionState, video=counts["video"], audio=counts["audio"],
        after=round(time.time() - t0, 3), **info)
    for t in tasks:
        t.cancel()
    await pc.close()
    return 0 if counts["video"] >= args.frames and counts["audio"] >= args.audio_frames else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=["pub", "sub"])
    ap.add_argument("url")
    ap.add_argument("stream")
    ap.add_argument("--src")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--audio-frames", type=int, default=0)
    ap.add_argument("--mode", default="live")
    ap.add_argument("--datachannel", action="store_true")
    ap.add_argument("--unpublish", action="store_true")
    args = ap.parse_args()
    sys.exit(asyncio.run(pub(args) if args.role == "pub" else sub(args)))


if __name__ == "__main__":
    main()
