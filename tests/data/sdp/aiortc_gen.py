#!/usr/bin/python3
"""Generates an aiortc offer (sendonly audio + video and a data channel), as
sluice's WHIP endpoint receives it from an aiortc publisher. Writes it to stdout.
Used to refresh tests/data/sdp/aiortc_offer.sdp."""
import asyncio
import sys

from aiortc import RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack


async def main():
    pc = RTCPeerConnection()
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
    pc.createDataChannel("chat")
    await pc.setLocalDescription(await pc.createOffer())
    sys.stdout.write(pc.localDescription.sdp)
    await pc.close()


asyncio.run(main())
