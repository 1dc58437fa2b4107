"""WebRTC silence deadlines while the server's loop is behind (issue 14, the 400-viewer stall).

A loop that falls behind its UDP socket (a starved CPU) leaves the peers' ICE consent
checks queued in the kernel; libuv runs timers before I/O, so the tick used to see
those peers as silent and close every session older than the consent timeout at once.
Here the server is stopped (SIGSTOP) for longer than its consent timeout while a peer
keeps sending consent checks; when it resumes, the session must still answer (the
checks were queued, not missing), and it must still end once the peer really goes
quiet. The stop is the point of the test (a loop that cannot run), not a wait.
"""
import os
import re
import signal
import socket
import struct
import threading
import time

import pytest

from conftest import HOST, T, ffmpeg_publish_cmd, wait_until
from test_webrtc import needs_aiortc, make_offer, request, start, stun_request, wait_live

CONSENT_S = 3


def answered(sock, port, ufrag_pair, pwd, timeout):
    """Sends one binding request; True when its success response comes within timeout."""
    msg, tid = stun_request(ufrag_pair, pwd)
    sock.sendto(msg, (HOST, port))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(2048)
        except socket.timeout:
            return False
        if len(data) >= 20 and data[8:20] == tid:
            return struct.unpack("!H", data[:2])[0] == 0x0101
    return False


@needs_aiortc
@pytest.mark.exclusive  # a 3 s consent timeout: a neighbour's load can starve the resumed loop
def test_consent_checks_queued_while_the_loop_is_stopped(sluice_factory, procs, media_src):
    srv = start(sluice_factory, extra={"webrtc": {"consent_timeout": "%ds" % CONSENT_S,
                                                  "setup_timeout": "120s"}})
    procs.start(ffmpeg_publish_cmd(media_src, srv.url("live", "b1")), "ffmpeg")
    wait_live(srv, "b1")
    offer = make_offer()
    st, _, answer = request(srv, "POST", "/live/whep/endpoint/b1", offer, {"Content-Type": "application/sdp"})
    assert st == 201, answer
    pair = "%s:%s" % (re.search(r"a=ice-ufrag:(\S+)", answer).group(1),
                      re.search(r"a=ice-ufrag:(\S+)", offer).group(1))
    pwd = re.search(r"a=ice-pwd:(\S+)", answer).group(1)

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    stop = threading.Event()

    def keeper():  # a live peer: a consent check every 0.5 s, from the bound address
        while not stop.is_set():
            msg, _ = stun_request(pair, pwd)
            sock.sendto(msg, (HOST, srv.webrtc_port))
            stop.wait(0.5)

    try:
        assert answered(sock, srv.webrtc_port, pair, pwd, T(5)), "the first ICE check is answered"
        t = threading.Thread(target=keeper, daemon=True)
        t.start()
        os.kill(srv.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(CONSENT_S + 2)  # the loop cannot run: the checks queue in its socket
        finally:
            os.kill(srv.proc.pid, signal.SIGCONT)
        # The session is alive: checks sent after the stop are answered.
        wait_until(lambda: answered(sock, srv.webrtc_port, pair, pwd, 0.5), T(5), 0.1, "a check answered after the stop")
        assert not re.search(r"consent expired", srv.log_text(), re.I), srv.log_text()[-3000:]
        # A peer that really goes quiet still ends by consent freshness.
        stop.set()
        t.join()
        srv.wait_log(r"consent expired", T(CONSENT_S + 10))
    finally:
        stop.set()
        sock.close()
