"""WHEP viewers on sharded event loops (server.workers: 2; issue 20, docs/internals/threads.md
"WHEP viewers"): each viewer is given the least loaded loop at play, and a viewer on the worker
loop has its RTP protected (SRTP) and sent there.

Checked with aiortc viewers of an RTMP (ffmpeg) stream:
- viewers are spread over the loops by CPU weight (/metrics: sluice_worker_load: 6 units for a
  viewer on the main loop; 4 on the worker and 2 on the main loop for one offloaded, whose pacer
  stays there), so of four viewers the main loop takes one and the worker three, and every one
  of them decodes video and audio; the worker's dropped sends are on /metrics
  (sluice_webrtc_worker_send_drops_total);
- NACK retransmission works for a viewer on the worker loop (a relay drops 5% of sluice's RTP
  to it; its NACKs are answered, it decodes without keyframe requests);
- kicks (API) and an unpublish close viewers on both loops (the gauge returns to 0);
- SIGTERM with viewers on both loops: the server exits 0, nothing leaked.
One server for the module; the loss test and the shutdown test have their own.
"""
import re
import signal
import urllib.request

import pytest

from api_helpers import http_port_of
from conftest import HOST, T, ffmpeg_publish_cmd, wait_until
from test_webrtc import client, events_of, needs_aiortc, run_client, start, wait_live, whep_url
from test_webrtc_loss import media_no_bframes, relay_factory  # noqa: F401 (fixtures)

pytestmark = needs_aiortc

WORKERS = {"server": {"workers": 2}}


def metrics_text(srv):
    url = "http://%s:%d/metrics" % (HOST, http_port_of(srv))
    return urllib.request.urlopen(url, timeout=T(5)).read().decode()


def worker_players(srv):
    """{loop index: players (here WHEP viewers) it serves} from /metrics."""
    body = metrics_text(srv)
    return {int(m.group(1)): int(m.group(2)) for m in re.finditer(
        r'^sluice_worker_players\{worker="(\d+)"\} (-?\d+)$', body, re.M)}


def worker_load(srv):
    """{loop index: load units} from /metrics."""
    body = metrics_text(srv)
    return {int(m.group(1)): int(m.group(2)) for m in re.finditer(
        r'^sluice_worker_load\{worker="(\d+)"\} (-?\d+)$', body, re.M)}


def viewers(procs, srv, stream, n, *args):
    """n WHEP viewers started at once; returns when all play. Each is given the least loaded
    loop when its play starts (the gauges count it at once, on the main loop), so the split
    does not depend on the order in which they get there."""
    before = sum(worker_players(srv).values())
    out = [client(procs, "whep", whep_url(srv, stream), *args, name="%s-v%d" % (stream, i))
           for i in range(n)]
    wait_until(lambda: sum(worker_players(srv).values()) >= before + n, T(30),
               message="%d viewers playing" % n)
    return out


def done_of(p):
    d = [e for e in events_of(p) if e.get("event") == "done"]
    return d[0] if d else None


@pytest.fixture(scope="module")
def srv(module_sluice_factory):
    return start(module_sluice_factory, WORKERS)


def test_viewers_on_both_loops_decode(srv, procs, media_src):
    procs.start(ffmpeg_publish_cmd(media_src, srv.url("live", "spread")), "ffmpeg")
    wait_live(srv, "spread")
    vs = viewers(procs, srv, "spread", 4, "--seconds", str(T(30)), "--frames", "60")
    split = worker_players(srv)
    # main 6, then the worker (4 + 2 on main: 8 / 4), the worker again (10 / 8), and again
    # (12 / 12): equal counts (2 / 2) would leave the main loop with the heavier share.
    assert split.get(0) == 1 and split.get(1) == 3, "viewers not spread by weight: %s" % split
    assert worker_load(srv) == {0: 12, 1: 12}, worker_load(srv)
    for p in vs:
        p.wait(T(40))
        d = done_of(p)
        assert p.returncode == 0 and d, procs.log_of(p)[-2000:]
        assert d["video"] >= 60 and d["audio"] > 0 and d["width"] == 640, d
    wait_until(lambda: sum(worker_players(srv).values()) == 0, T(15),
               message="viewers gauge back to 0")
    assert worker_load(srv) == {0: 0, 1: 0}, worker_load(srv)
    # The worker's sends it had to drop are exported; on loopback at this load the socket
    # takes every batch (docs/performance.md), so hardly any, out of thousands sent.
    body = metrics_text(srv)
    drops = re.search(r"^sluice_webrtc_worker_send_drops_total (\d+)$", body, re.M)
    sent = re.search(r'^sluice_webrtc_packets_total\{direction="out"\} (\d+)$', body, re.M)
    assert drops and sent, "worker send drops not on /metrics"
    assert int(sent.group(1)) > 1000 and int(drops.group(1)) * 100 <= int(sent.group(1)), body


def test_kick_and_unpublish_reach_both_loops(srv, procs, media_src):
    ff = procs.start(ffmpeg_publish_cmd(media_src, srv.url("live", "ends")), "ffmpeg")
    wait_live(srv, "ends")
    long = ("--seconds", str(T(60)), "--frames", "100000")
    kicked = viewers(procs, srv, "ends", 2, *long)
    split = worker_players(srv)
    assert split.get(0) == 1 and split.get(1) == 1, split
    ids = [s["id"] for s in srv.api.data("applications/live/streams/ends/subscribers")]
    assert len(ids) == 2, ids
    for sid in ids:
        r = srv.api.delete("applications/live/clients/" + sid)
        assert r.status == 200, r
    wait_until(lambda: sum(worker_players(srv).values()) == 0, T(10),
               message="viewers gauge back to 0 after the kicks")
    wait_until(lambda: not srv.api.data("applications/live/streams/ends/subscribers"), T(10),
               message="kicked viewers gone")
    for p in kicked:
        procs.stop(p, signal.SIGTERM)
    stay = viewers(procs, srv, "ends", 2, *long)
    split = worker_players(srv)
    assert split.get(0) == 1 and split.get(1) == 1, split
    procs.stop(ff, signal.SIGTERM)  # the unpublish
    wait_until(lambda: sum(worker_players(srv).values()) == 0, T(15),
               message="viewers of both loops closed by the unpublish")
    for p in stay:
        procs.stop(p, signal.SIGTERM)


@pytest.mark.exclusive
def test_nack_answered_on_the_worker(sluice_factory, procs, media_no_bframes, relay_factory):  # noqa: F811
    srv = start(sluice_factory, WORKERS)
    procs.start(ffmpeg_publish_cmd(media_no_bframes, srv.url("live", "loss")), "ffmpeg")
    wait_live(srv, "loss")
    # A first viewer takes the main loop, so the lossy one is on the worker.
    viewers(procs, srv, "loss", 1, "--seconds", str(T(60)), "--frames", "100000")
    relay = relay_factory(srv.webrtc_port, loss=0.0, loss_down=0.05, seed=15)
    rc, evs, err = run_client("whep", whep_url(srv, "loss"), "--seconds", str(T(20)), "--frames", "100",
                              "--relay", relay.address, timeout=T(60))
    done = [e for e in evs if e["event"] == "done"]
    info = (relay.n, done, err[-1500:], srv.log_tail(40))
    assert rc == 0 and done, info
    done = done[0]
    assert relay.n["dropped_down"] >= 10, info
    assert done["nacked"] >= relay.n["dropped_down"] // 2, info
    decode_errors = [l for l in err.splitlines() if "[h264 @" in l]
    assert len(decode_errors) <= 2 and done["plis"] <= 2, info


def test_sigterm_with_viewers_on_both_loops(sluice_factory, procs, media_src):
    srv = start(sluice_factory, WORKERS)
    procs.start(ffmpeg_publish_cmd(media_src, srv.url("live", "bye")), "ffmpeg")
    wait_live(srv, "bye")
    vs = viewers(procs, srv, "bye", 2, "--seconds", str(T(60)), "--frames", "100000")
    split = worker_players(srv)
    assert split.get(0) == 1 and split.get(1) == 1, split
    wait_until(lambda: all(any(e.get("event") == "first_video" for e in events_of(p)) for p in vs),
               T(20), message="both viewers decoding")
    srv.check_clean_exit()
