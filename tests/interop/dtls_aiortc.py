#!/usr/bin/python3
"""Interop check, by hand: sluice's DTLS-SRTP against aiortc's RTCDtlsTransport.

Runs the C helper tests/interop/dtls_peer.c (build line in its header) on a
UDP socket and an aiortc 1.4 RTCDtlsTransport (pyOpenSSL + pylibsrtp) over
a stand-in ICE transport on another, in both DTLS roles, and checks:
the handshake completes with each side verifying the other's SDP-style
sha-256 fingerprint; application data round-trips through DTLS; an RTP and
an RTCP packet protected by aiortc are unprotected by sluice, re-protected
with sluice's key and unprotected by aiortc (both SRTP key directions).

Usage: /usr/bin/python3 tests/interop/dtls_aiortc.py /tmp/dtls_peer
Exit 0 when every check passed.
"""
import asyncio
import struct
import subprocess
import sys

from aiortc.rtcdtlstransport import (RTCCertificate, RTCDtlsFingerprint,
                                     RTCDtlsParameters, RTCDtlsTransport)


class FakeIce:
    """What RTCDtlsTransport needs of an RTCIceTransport: role, _send, _recv."""

    def __init__(self, role):
        self.role = role
        self.queue = asyncio.Queue()
        self.srtp_in = asyncio.Queue()  # SRTP/SRTCP coming back, checked by hand
        self.sock = None
        self.peer = None

    async def _send(self, data):
        self.sock.sendto(data, self.peer)

    async def _recv(self):
        return await self.queue.get()


class Proto(asyncio.DatagramProtocol):
    def __init__(self, ice):
        self.ice = ice

    def datagram_received(self, data, addr):
        if 127 < data[0] < 192:
            self.ice.srtp_in.put_nowait(data)
        else:
            self.ice.queue.put_nowait(data)


class DataSink:
    def __init__(self):
        self.got = asyncio.Queue()

    async def _handle_data(self, data):
        self.got.put_nowait(data)


async def run(peer_bin, our_role):
    loop = asyncio.get_running_loop()
    ice = FakeIce("controlled")
    transport, _ = await loop.create_datagram_endpoint(lambda: Proto(ice), local_addr=("127.0.0.1", 0))
    ice.sock = transport
    port = transport.get_extra_info("sockname")[1]
    sluice_role = "server" if our_role == "client" else "client"
    proc = await asyncio.create_subprocess_exec(peer_bin, sluice_role, str(port),
                                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    first = (await proc.stdout.readline()).decode().split()
    ice.peer = ("127.0.0.1", int(first[1]))
    sluice_fp = first[3]

    cert = RTCCertificate.generateCertificate()
    dtls = RTCDtlsTransport(ice, [cert])
    dtls._set_role(our_role)
    our_fp = [f for f in cert.getFingerprints() if f.algorithm == "sha-256"][0].value
    proc.stdin.write((our_fp + "\n").encode())
    await proc.stdin.drain()
    sink = DataSink()
    dtls._register_data_receiver(sink)
    await asyncio.wait_for(dtls.start(RTCDtlsParameters(fingerprints=[RTCDtlsFingerprint("sha-256", sluice_fp)])), 10)
    ok = True

    def check(what, cond):
        nonlocal ok
        print(f"  [{'ok' if cond else 'FAIL'}] {what}")
        ok = ok and cond

    check("aiortc connected (sluice's fingerprint verified)", dtls.state == "connected")
    line = (await asyncio.wait_for(proc.stdout.readline(), 5)).decode().strip()
    check(f"sluice connected: {line}", line.startswith("CONNECTED profile=1 key_len=30"))

    await dtls._send_data(b"hello-sctp")
    line = (await asyncio.wait_for(proc.stdout.readline(), 5)).decode().strip()
    check(f"sluice got data: {line}", line == "DATA hello-sctp")
    echoed = await asyncio.wait_for(sink.got.get(), 5)
    check("aiortc got the echo", echoed == b"hello-sctp")

    rtp = struct.pack("!BBHII", 0x80, 96, 1, 1234, 0xCAFE) + bytes(range(200))
    await dtls._send_rtp(rtp)
    line = (await asyncio.wait_for(proc.stdout.readline(), 5)).decode().strip()
    check(f"sluice unprotected aiortc's RTP: {line}", line == f"RTP ok len={len(rtp)}")
    back = await asyncio.wait_for(ice.srtp_in.get(), 5)
    check("aiortc unprotected sluice's RTP", dtls._rx_srtp.unprotect(back) == rtp)

    rtcp = struct.pack("!BBHI", 0x80, 201, 1, 0xCAFE)
    await dtls._send_rtp(rtcp)
    line = (await asyncio.wait_for(proc.stdout.readline(), 5)).decode().strip()
    check(f"sluice unprotected aiortc's RTCP: {line}", line == f"RTCP ok len={len(rtcp)}")
    back = await asyncio.wait_for(ice.srtp_in.get(), 5)
    check("aiortc unprotected sluice's RTCP", dtls._rx_srtp.unprotect_rtcp(back) == rtcp)

    await dtls.stop()
    line = (await asyncio.wait_for(proc.stdout.readline(), 5)).decode().strip()
    check(f"sluice saw the close: {line}", line == "CLOSED close_notify")
    await proc.wait()
    transport.close()
    return ok


async def main():
    peer_bin = sys.argv[1] if len(sys.argv) > 1 else "/tmp/dtls_peer"
    ok = True
    for role in ("client", "server"):
        print(f"aiortc as DTLS {role}, sluice as {'server' if role == 'client' else 'client'}:")
        ok = await run(peer_bin, role) and ok
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
