#!/usr/bin/python3
"""A WHIP publisher and a WHEP viewer built on aiortc (Debian's python3-aiortc), run
as a subprocess by the e2e tests so that each peer has its own event loop and can
be killed like a real client.

  webrtc_client.py whip URL [--src FILE] [--seconds N] [--tcp-only] [--token T]
                           [--datachannel MSG] [--no-audio] [--no-video] [--delete] [--relay H:P]
  webrtc_client.py whep URL [--seconds N] [--frames N] [--tcp-only] [--token T]
                           [--expect-dc N] [--delete] [--relay H:P]

Prints one JSON line per event to stdout ({"event": "answer", "status": 201, ...},
{"event": "video", "frames": n, "width": w, ...}) and a final {"event": "done", ...}
with counts. Exit status 0 when the session ran (for whep: at least --frames video
frames decoded), 2 when signalling failed (the HTTP status is printed), 1 otherwise.

aiortc leaves loopback addresses out of its ICE candidates, and this machine drops
packets from its own address to 127.0.0.1: the tests run the server on 127.0.0.1,
so the client offers 127.0.0.1 (aioice's host address list is replaced).

--relay HOST:PORT sends all UDP media through a relay (the loss tests run one): the
UDP candidates of the answer get the relay's address and port, and its TCP
candidates are dropped so that nothing bypasses it. The "done" event of a publisher
counts the packets it retransmitted on the server's NACKs ("retransmits"); that of a
viewer, the packets it NACKed ("nacked") and its keyframe requests ("plis"). SIGTERM
ends a publisher early, cleanly, with its "done" event.
"""
import argparse
import asyncio
import fractions
import json
import signal
import sys
import time
import urllib.error
import urllib.request

import aioice.ice

aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]

from aiortc import RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.codecs import h264 as _h264  # noqa: E402
from aiortc.contrib.media import MediaPlayer  # noqa: E402
from aiortc.mediastreams import MediaStreamError  # noqa: E402
from aiortc.rtcrtpreceiver import RTCRtpReceiver  # noqa: E402
from aiortc.rtcrtpsender import RTP_HISTORY_SIZE, RTCRtpSender  # noqa: E402


# aiortc 1.4's H.264 encoder ignores force_keyframe (a PLI from the receiver), so a
# WHIP publish would have one keyframe for its whole life and HLS could never cut a
# segment. Starting a new encoder context makes the next frame an IDR: PLIs then
# work as they do with a browser, which also tests that sluice sends them.
_orig_encode_frame = _h264.H264Encoder._encode_frame
PLI_SEEN = [0]


def _encode_frame(self, frame, force_keyframe):
    if force_keyframe and self.codec is not None:
        PLI_SEEN[0] += 1
        self.codec = None
        self.buffer_data = b""
        self.buffer_pts = None
    return _orig_encode_frame(self, frame, force_keyframe)


_h264.H264Encoder._encode_frame = _encode_frame

# aiortc offers only (Constrained) Baseline H.264, but its decoder (libavcodec) takes
# every profile. sluice answers a WHEP offer only with a format whose profile decodes
# the stream (RFC 6184 8.1) and refuses with 406 otherwise, so this viewer offers what
# it can decode: Main and High too, as Chrome does. Receiving only: a WHIP answer
# picks Constrained Baseline, which aiortc's encoder makes.
def _offer_more_h264():
    from aiortc.codecs import CODECS
    from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecParameters
    fb = [RTCRtcpFeedback(type="nack"), RTCRtcpFeedback(type="nack", parameter="pli"),
          RTCRtcpFeedback(type="goog-remb")]
    for pt, plid in ((103, "4d001f"), (105, "64001f")):
        CODECS["video"] += [
            RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=pt, rtcpFeedback=fb,
                                  parameters={"level-asymmetry-allowed": "1", "packetization-mode": "1",
                                              "profile-level-id": plid}),
            RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=pt + 1,
                                  parameters={"apt": pt}),
        ]


_offer_more_h264()

# Counts the packets aiortc resends on a NACK (found in its history, so really sent
# again), to show that the server asked and that its asking was answered.
_orig_retransmit = RTCRtpSender._retransmit
NACKED = [0]
RETRANSMITTED = [0]


async def _retransmit(self, sequence_number):
    NACKED[0] += 1
    hist = getattr(self, "_RTCRtpSender__rtp_history", {})
    packet = hist.get(sequence_number % RTP_HISTORY_SIZE) if isinstance(hist, dict) else None
    if packet is not None and packet.sequence_number == sequence_number:
        RETRANSMITTED[0] += 1
    return await _orig_retransmit(self, sequence_number)


RTCRtpSender._retransmit = _retransmit

# What a publisher's sender reports say about its two clocks: aiortc maps the RTP
# timestamp of the last packet sent to the wall clock after sending it, and the RTP
# timestamp is the frame's media time (plus a random origin). For each frame, wall time
# at its send minus its media time is the track's "start" on the sender's clock; the
# median over a run, audio minus video, is where the sender's own reports put sound
# relative to picture (what a receiver that follows them, as RFC 3550 6.4.1 says,
# reproduces). Reported in the "done" event as sender_av_ms (the lip sync test).
_orig_next_encoded = RTCRtpSender._next_encoded_frame
SENDER_STARTS = {"audio": [], "video": []}


async def _next_encoded_frame(self, codec):
    enc = await _orig_next_encoded(self, codec)
    kind = codec.mimeType.split("/")[0].lower()
    if enc is not None and kind in SENDER_STARTS and codec.clockRate:
        SENDER_STARTS[kind].append(time.time() - enc.timestamp / codec.clockRate)
    return enc


RTCRtpSender._next_encoded_frame = _next_encoded_frame


def sender_av_ms():
    """Median start of audio minus that of video on the sender's clock (ms), or None."""
    def median(v):
        v = sorted(v[len(v) // 4:])  # past the start (encoder opening, catching up)
        return v[len(v) // 2] if v else None
    a, v = median(SENDER_STARTS["audio"]), median(SENDER_STARTS["video"])
    return None if a is None or v is None else round((a - v) * 1000, 1)


# A viewer counts the packets it NACKs and the keyframes it asks for (PLI).
_orig_send_nack = RTCRtpReceiver._send_rtcp_nack
_orig_send_pli = RTCRtpReceiver._send_rtcp_pli
RX = {"nacked": 0, "plis": 0}


async def _send_rtcp_nack(self, media_ssrc, lost):
    RX["nacked"] += len(lost)
    return await _orig_send_nack(self, media_ssrc, lost)


async def _send_rtcp_pli(self, media_ssrc):
    RX["plis"] += 1
    return await _orig_send_pli(self, media_ssrc)


RTCRtpReceiver._send_rtcp_nack = _send_rtcp_nack
RTCRtpReceiver._send_rtcp_pli = _send_rtcp_pli


def out(**kw):
    print(json.dumps(kw), flush=True)


def post(url, sdp, token=None, method="POST", ctype="application/sdp"):
    headers = {"Content-Type": ctype}
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=sdp.encode() if sdp is not None else None,
                                 headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace"), dict(e.headers)


def prefer_h264(pc, codec="h264"):
    caps = RTCRtpSender.getCapabilities("video").codecs
    h264 = [c for c in caps if c.mimeType.lower() in ("video/" + codec, "video/rtx")]
    for t in pc.getTransceivers():
        if t.kind == "video":
            t.setCodecPreferences(h264)


def via_relay(sdp, relay):
    """Points the UDP candidates of an answer at relay ("host:port"); drops TCP ones."""
    host, port = relay.rsplit(":", 1)
    lines = []
    for l in sdp.split("\r\n"):
        if l.startswith("a=candidate:"):
            f = l.split(" ")
            if len(f) < 8 or f[2].lower() != "udp":
                continue
            f[4], f[5] = host, port
            l = " ".join(f)
        lines.append(l)
    return "\r\n".join(lines)


def dtls_closed(pc):
    """True once the server ended DTLS (close_notify): the session is over."""
    return any(t.sender.transport is not None and t.sender.transport.state == "closed"
               for t in pc.getTransceivers())


def tcp_only(sdp):
    """Keeps only TCP candidates in an answer (a network that blocks UDP)."""
    lines = [l for l in sdp.split("\r\n")
             if not (l.startswith("a=candidate:") and " udp " in l.lower())]
    return "\r\n".join(lines)


async def whip(args):
    pc = RTCPeerConnection()
    player = MediaPlayer(args.src, loop=True) if args.src else None
    if player and player.video and not args.no_video:
        pc.addTrack(player.video)
    if player and player.audio and not args.no_audio:
        pc.addTrack(player.audio)
    dc = None
    dc_open = asyncio.Event()
    if args.datachannel is not None:
        dc = pc.createDataChannel("red5pro")
        dc.on("open", lambda: dc_open.set())
    prefer_h264(pc, args.codec)
    await pc.setLocalDescription(await pc.createOffer())
    status, body, headers = post(args.url, pc.localDescription.sdp, args.token)
    out(event="answer", status=status, location=headers.get("Location"),
        etag=headers.get("ETag"), body=body[:300] if status != 201 else "")
    if status != 201:
        await pc.close()
        return 2
    answer = tcp_only(body) if args.tcp_only else body
    if args.relay:
        answer = via_relay(answer, args.relay)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    t0 = time.time()
    connected = False
    stop = asyncio.Event()  # SIGTERM ends the session early, still with its "done" event
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    while time.time() - t0 < args.seconds and not stop.is_set():
        if pc.connectionState == "connected" and not connected:
            connected = True
            out(event="connected", after=round(time.time() - t0, 3))
        if pc.connectionState in ("failed", "closed"):
            out(event="state", state=pc.connectionState)
            break
        if connected and dtls_closed(pc):  # aiortc 1.4 stays "connected" after a close_notify
            out(event="state", state="dtls-closed")
            break
        if dc is not None and dc.readyState == "open" and args.datachannel:
            dc.send(args.datachannel)
        await asyncio.sleep(0.25)
    loc = headers.get("Location")
    if loc and args.delete:
        base = args.url.split("/", 3)
        st, _, _ = post("%s//%s%s" % (base[0], base[2], loc), None, args.token, method="DELETE")
        out(event="delete", status=st)
    await pc.close()
    if player:
        for t in (player.audio, player.video):
            if t:
                t.stop()
    out(event="done", connected=connected, keyframes_asked=PLI_SEEN[0], nacked=NACKED[0],
        retransmits=RETRANSMITTED[0], sender_av_ms=sender_av_ms())
    return 0 if connected else 1


async def whep(args):
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    if args.codec_forced:
        prefer_h264(pc, args.codec)
    counts = {"video": 0, "audio": 0, "dc": 0}
    info = {}
    tasks = []
    dc_msgs = []

    def listen(ch):
        @ch.on("message")
        def on_msg(m):
            counts["dc"] += 1
            if len(dc_msgs) < 5:
                dc_msgs.append(m if isinstance(m, str) else m.hex())

    pc.on("datachannel", listen)

    async def consume(track):
        while True:
            try:
                f = await track.recv()
            except MediaStreamError:
                return
            counts[track.kind] += 1
            if track.kind == "video" and "width" not in info:
                info.update(width=f.width, height=f.height)
            if track.kind == "audio" and "sample_rate" not in info:
                info.update(sample_rate=f.sample_rate, channels=len(f.layout.channels))

    @pc.on("track")
    def on_track(track):
        tasks.append(asyncio.ensure_future(consume(track)))

    if args.expect_dc:
        listen(pc.createDataChannel("red5pro"))
    await pc.setLocalDescription(await pc.createOffer())
    status, body, headers = post(args.url, pc.localDescription.sdp, args.token)
    out(event="answer", status=status, location=headers.get("Location"), body=body[:300] if status != 201 else "")
    if status != 201:
        await pc.close()
        return 2
    answer = tcp_only(body) if args.tcp_only else body
    if args.relay:
        answer = via_relay(answer, args.relay)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    t0 = time.time()
    first = None
    next_progress = t0 + 1
    while time.time() - t0 < args.seconds:
        if counts["video"] and first is None:
            first = time.time() - t0
            out(event="first_video", after=round(first, 3))
        if args.progress and time.time() >= next_progress:
            next_progress += 1
            out(event="progress", after=round(time.time() - t0, 3), video=counts["video"], audio=counts["audio"])
        if counts["video"] >= args.frames and counts["audio"] >= args.audio_frames and \
                counts["dc"] >= args.expect_dc:
            break
        if pc.connectionState in ("failed", "closed"):
            break
        await asyncio.sleep(0.1)
    out(event="done", state=pc.connectionState, video=counts["video"], audio=counts["audio"],
        dc=counts["dc"], dc_msgs=dc_msgs, after=round(time.time() - t0, 3), nacked=RX["nacked"],
        plis=RX["plis"], **info)
    for t in tasks:
        t.cancel()
    loc = headers.get("Location")
    if loc and args.delete:
        base = args.url.split("/", 3)
        st, _, _ = post("%s//%s%s" % (base[0], base[2], loc), None, args.token, method="DELETE")
        out(event="delete", status=st)
    await pc.close()
    ok = counts["video"] >= args.frames and counts["audio"] >= args.audio_frames and \
        counts["dc"] >= args.expect_dc
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["whip", "whep"])
    ap.add_argument("url")
    ap.add_argument("--src")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--audio-frames", type=int, default=0)
    ap.add_argument("--tcp-only", action="store_true")
    ap.add_argument("--token")
    ap.add_argument("--datachannel")
    ap.add_argument("--expect-dc", type=int, default=0)
    ap.add_argument("--no-audio", action="store_true")
    ap.add_argument("--no-video", action="store_true")
    ap.add_argument("--delete", action="store_true")
    ap.add_argument("--relay", help="HOST:PORT replacing the UDP candidates of the answer")
    ap.add_argument("--progress", action="store_true", help="whep: print the frame counts every second")
    ap.add_argument("--codec", default="h264", choices=["h264", "vp8"])
    args = ap.parse_args()
    args.codec_forced = "--codec" in sys.argv
    rc = asyncio.run(whip(args) if args.mode == "whip" else whep(args))
    sys.exit(rc)


if __name__ == "__main__":
    main()
