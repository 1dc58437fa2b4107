#!/usr/bin/python3
"""Makes aiortc judge sluice's SDP answers: aiortc creates an offer (WHIP:
sendonly audio + video + a data channel; WHEP: recvonly audio + video),
`sdp_test --answer whip|whep` answers it, and aiortc must accept the answer
with setRemoteDescription and agree on the codecs. Run by hand:

    /usr/bin/python3 tests/data/sdp/aiortc_check.py build-asan/sdp_test

Prints one line per case and exits non-zero on the first failure."""
import asyncio
import subprocess
import sys

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack


async def case(binary, mode):
    pc = RTCPeerConnection()
    if mode == "whip":
        pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
        pc.createDataChannel("chat")
    else:
        pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    run = subprocess.run([binary, "--answer", mode], input=pc.localDescription.sdp.encode(),
                         capture_output=True, check=False)
    if run.returncode != 0:
        raise SystemExit(f"{mode}: sdp_test refused aiortc's offer: {run.stderr.decode()}")
    answer = run.stdout.decode()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    got = []
    for t in pc.getTransceivers():
        codecs = [f"{c.mimeType}/{c.payloadType}" for c in t._codecs]
        got.append(f"{t.kind}:{t.currentDirection}:{','.join(codecs)}")
        want = "sendonly" if mode == "whip" else "recvonly"
        if t.currentDirection != want or not t._codecs:
            raise SystemExit(f"{mode}: transceiver {t.kind} is {t.currentDirection} with {codecs}")
    if mode == "whip" and (pc.sctp is None or pc.sctp.transport is not pc.getTransceivers()[0].sender.transport):
        raise SystemExit("whip: the data channel is not on the bundled transport")
    print(f"{mode}: aiortc accepted the answer: {' '.join(got)} signaling={pc.signalingState}")
    await pc.close()


async def main():
    # Closing the peer connection ends aiortc's ICE attempt towards the
    # made-up candidate; that task's "transport is closed" error is expected.
    asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: None)
    binary = sys.argv[1] if len(sys.argv) > 1 else "build-asan/sdp_test"
    await case(binary, "whip")
    await case(binary, "whep")


asyncio.run(main())
