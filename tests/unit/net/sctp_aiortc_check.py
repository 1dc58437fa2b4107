#!/usr/bin/python3
"""Interoperability check: sluice's SCTP / data channels (src/net/sctp.c) against
aiortc's pure-Python RTCSctpTransport, the peer the e2e tests use.

No DTLS: aiortc's RTCDtlsTransport is replaced by a stand-in that carries each
SCTP packet as one UDP datagram on 127.0.0.1 to sctp_aiortc_peer (built here
from tests/unit/net/sctp_aiortc_peer.c against a build directory's static
libraries). Both orientations run: aiortc as the DTLS server (it sends the
INIT, odd stream ids) and as the DTLS client (it waits for our INIT).

Checked: association up (CRC32c of usrsctp's packets accepted by aiortc and the
reverse), a channel opened by aiortc announced with label and protocol, text,
binary, empty and 100 KB messages echoed back intact, a channel opened by
sluice announced to aiortc with its first message, and a reset from sluice
closing the channel on aiortc's side.

Usage: tests/unit/net/sctp_aiortc_check.py [BUILD_DIR]   (default build-asan;
needs Debian's python3-aiortc; exit 0 when everything held)
"""
import asyncio
import os
import socket
import subprocess
import sys
import tempfile

from aiortc.rtcdatachannel import RTCDataChannel, RTCDataChannelParameters
from aiortc.rtcsctptransport import RTCSctpCapabilities, RTCSctpTransport

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def build_peer(build):
    out = os.path.join(tempfile.mkdtemp(), 'sctp_aiortc_peer')
    src = os.path.join(ROOT, 'tests/unit/net/sctp_aiortc_peer.c')
    base = ['cc', '-g', '-I', os.path.join(ROOT, 'src'), '-I', os.path.join(ROOT, 'include'), src,
            os.path.join(build, 'libsluice_core.a'), os.path.join(build, 'libsluice_rtmp_codec.a'),
            '-lusrsctp', '-luv', '-lssl', '-lcrypto', '-lm', '-lpthread', '-o', out]
    for extra in ([], ['-fsanitize=address,undefined']):
        if subprocess.run(base + extra, capture_output=True).returncode == 0:
            return out
    raise SystemExit('could not build the peer against ' + build)


class Ice:
    def __init__(self, role):
        self.role = role


class FakeDtls:
    """What RTCSctpTransport uses of an RTCDtlsTransport, over UDP."""

    def __init__(self, role, sock, peer_addr):
        self.state = 'connected'
        self.transport = Ice(role)
        self.sock = sock
        self.peer_addr = peer_addr
        self.receiver = None

    def _register_data_receiver(self, r):
        self.receiver = r

    def _unregister_data_receiver(self, r):
        self.receiver = None

    async def _send_data(self, data):
        self.sock.sendto(data, self.peer_addr)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


async def wait_for(cond, what, timeout=10.0):
    end = asyncio.get_event_loop().time() + timeout
    while not cond():
        if asyncio.get_event_loop().time() > end:
            raise AssertionError('timed out waiting for ' + what)
        await asyncio.sleep(0.01)


async def run(peer_bin, aiortc_role):
    """aiortc_role: 'controlling' = aiortc is the DTLS server and sends INIT."""
    loop = asyncio.get_event_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('127.0.0.1', 0))
    sock.setblocking(False)
    my_port = sock.getsockname()[1]
    c_port = free_port()
    we_are_dtls_client = 1 if aiortc_role == 'controlling' else 0
    proc = await asyncio.create_subprocess_exec(
        peer_bin, str(c_port), str(my_port), str(we_are_dtls_client),
        stdout=asyncio.subprocess.PIPE)
    lines = []

    async def read_lines():
        while True:
            line = await proc.stdout.readline()
            if not line:
                return
            lines.append(line.decode().strip())

    reader = asyncio.ensure_future(read_lines())
    await wait_for(lambda: 'ready' in lines, 'peer ready')
    dtls = FakeDtls(aiortc_role, sock, ('127.0.0.1', c_port))
    sctp = RTCSctpTransport(dtls)
    remote_channels = []
    got_remote = []

    def on_datachannel(ch):
        remote_channels.append(ch)
        ch.on('message', lambda m: got_remote.append(m))  # before the first one arrives

    sctp.on('datachannel', on_datachannel)

    def on_readable():
        try:
            while True:
                data = sock.recv(65536)
                if dtls.receiver:
                    asyncio.ensure_future(dtls.receiver._handle_data(data))
        except BlockingIOError:
            pass

    loop.add_reader(sock.fileno(), on_readable)
    await sctp.start(RTCSctpCapabilities(maxMessageSize=262144), 5000)
    await wait_for(lambda: sctp.state == 'connected', 'association up')
    await wait_for(lambda: any(l.startswith('connected') for l in lines), 'peer connected')

    # Sluice's channel: announced to aiortc with its first message.
    await wait_for(lambda: remote_channels, 'channel from sluice')
    rch = remote_channels[0]
    assert rch.label == 'from-sluice', rch.label
    await wait_for(lambda: got_remote, 'hello from sluice')
    assert got_remote[0] == 'hello from sluice', got_remote

    # aiortc's channel: announced to sluice, messages echoed.
    ch = RTCDataChannel(sctp, RTCDataChannelParameters(label='chat', protocol='json'))
    echoes = []
    ch.on('message', lambda m: echoes.append(m))
    await wait_for(lambda: ch.readyState == 'open', 'chat open')
    await wait_for(lambda: any(l.startswith('open ') and ' chat json' in l for l in lines),
                   'sluice saw chat')
    big = bytes((i * 7) & 0xff for i in range(100 * 1024))
    sent = ['ping', b'\x00\x01\x02', '', b'', big]
    for m in sent:
        ch.send(m)
    await wait_for(lambda: len(echoes) >= len(sent), 'echoes', timeout=20)
    for a, b in zip(sent, echoes):
        assert type(a) == type(b) and a == b, (type(a), type(b), len(a), len(b))

    # A reset from sluice closes aiortc's channel.
    ch.send('close')
    await wait_for(lambda: ch.readyState == 'closed', 'chat closed by reset')
    await wait_for(lambda: any(l.startswith('channel-closed') for l in lines), 'sluice saw close')

    await sctp.stop()
    await wait_for(lambda: any(l.startswith('closed') for l in lines), 'peer saw ABORT')
    loop.remove_reader(sock.fileno())
    await asyncio.wait_for(proc.wait(), 10)
    reader.cancel()
    sock.close()
    print('aiortc as %s: ok (%s)' % (aiortc_role, '; '.join(lines)))


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, 'build-asan')
    peer_bin = build_peer(build)
    for role in ('controlling', 'controlled'):
        asyncio.get_event_loop().run_until_complete(run(peer_bin, role))
    return 0


if __name__ == '__main__':
    sys.exit(main())
