"""HTTP-FLV players on worker loops (server.workers: 2; issue 20, docs/internals/threads.md).

Plain-HTTP FLV players alternate between the main loop and the worker (the least loaded
loop; /metrics shows the split) and receive exactly the media an RTMP player of the same
stream receives: every audio and video tag's CRC, in order. A kick (API), an unpublish and
a server shutdown reach the players of both loops; a player that stops reading is closed
by its own loop's slow-player policy while the other loop's player plays on.
"""

import re
import time
import zlib

import pytest

import rtmp_client
from api_helpers import Api, http_port_of, start_api_server
from conftest import HOST, T, wait_until
from test_httpflv import FlvReader
from test_workers import WORKERS_ENV, Publisher, media_crcs, worker_players


@pytest.fixture(scope="module")
def srv(module_sluice_factory):
    s = start_api_server(module_sluice_factory, env=WORKERS_ENV)
    s.api = Api(s)
    s.http = http_port_of(s)
    return s


def flv_crcs(r):
    """(type, crc) of every audio/video tag but sequence headers, in arrival order."""
    out = []
    for typ, _, data in r.media():
        if typ == rtmp_client.MSG_VIDEO and not rtmp_client.video_is_seq_header(data):
            out.append((typ, zlib.crc32(data)))
        elif typ == rtmp_client.MSG_AUDIO and not rtmp_client.audio_is_seq_header(data):
            out.append((typ, zlib.crc32(data)))
    return out


def video_tags(r):
    return sum(1 for t in r.media() if t[0] == rtmp_client.MSG_VIDEO)


def flv_subscriber_ids(srv, stream):
    return [s["id"] for s in srv.api.data("applications/live/streams/%s/subscribers" % stream)
            if s["connection_protocol"] == "http-flv"]


def test_flv_players_on_both_loops_get_the_rtmp_players_media(srv, media_tags):
    pub = Publisher(srv, "same", media_tags)
    ref = None
    readers = []
    try:
        ref, _ = rtmp_client.open_player(HOST, srv.port, "live", "same", timeout=T(5), name="ref")
        ref.wait_video_frames(5, T(10))
        readers = [FlvReader(srv.http, "/live/same.flv") for _ in range(4)]
        wait_until(lambda: len(flv_subscriber_ids(srv, "same")) == 4, T(10), 0.1,
                   "four http-flv subscribers")
        split = worker_players(srv)
        assert split.get(0, 0) >= 2 and split.get(1, 0) >= 2, "not spread: %s" % split
        for r in readers:
            wait_until(lambda r=r: video_tags(r) >= 100, T(20), 0.05, "100 video tags")
        want = media_crcs(ref)
        for i, r in enumerate(readers):
            got = flv_crcs(r)
            assert got, i
            starts = [k for k, x in enumerate(want) if x == got[0]]
            assert starts, "player %d starts on a tag the RTMP player never got" % i
            ok = False
            for s in starts:
                n = min(len(want) - s, len(got)) - 1
                if n >= 100 and got[:n] == want[s:s + n]:
                    ok = True
                    break
            assert ok, "player %d received other media than the RTMP player" % i
            assert not r.eof, i
    finally:
        for r in readers:
            r.close()
        if ref:
            ref.close()
        pub.close()
    wait_until(lambda: sum(worker_players(srv).values()) == 0, T(10),
               message="players gauge back to 0")


def test_kick_and_unpublish_reach_flv_players_on_every_loop(srv, media_tags):
    pub = Publisher(srv, "ends", media_tags)
    kicked, stay = [], []
    try:
        kicked = [FlvReader(srv.http, "/live/ends.flv") for _ in range(4)]
        wait_until(lambda: len(flv_subscriber_ids(srv, "ends")) == 4, T(10), 0.1, "subscribers")
        split = worker_players(srv)
        assert split.get(0) == 2 and split.get(1) == 2, split
        for r in kicked:
            wait_until(lambda r=r: video_tags(r) >= 10, T(10), 0.05, "tags")
        for sid in flv_subscriber_ids(srv, "ends"):
            assert srv.api.delete("applications/live/clients/" + sid).status == 200
        for r in kicked:  # the response ends (the main loop's may keep its connection open)
            wait_until(lambda r=r: r.ended or r.eof, T(10), 0.05, "the kicked player's response to end")
        wait_until(lambda: sum(worker_players(srv).values()) == 0, T(10),
                   message="players gauge back to 0 after the kicks")
        stay = [FlvReader(srv.http, "/live/ends.flv") for _ in range(2)]
        wait_until(lambda: len(flv_subscriber_ids(srv, "ends")) == 2, T(10), 0.1, "subscribers")
        assert worker_players(srv) == {0: 1, 1: 1}
        for r in stay:
            wait_until(lambda r=r: video_tags(r) >= 10, T(10), 0.05, "tags")
        pub.close()
        pub = None
        for r in stay:  # the response ends cleanly (terminating chunk) on both loops
            wait_until(lambda r=r: r.ended, T(10), 0.05, "the end of the response")
        wait_until(lambda: sum(worker_players(srv).values()) == 0, T(10),
                   message="players gauge back to 0 after the unpublish")
    finally:
        for r in kicked + stay:
            r.close()
        if pub:
            pub.close()


@pytest.mark.exclusive
def test_stuck_flv_player_on_a_worker_is_closed_there(sluice_factory, media_tags):
    """A plain-HTTP FLV player on the worker that never reads is cut by that loop's own
    slow-player policy (its queue's bounds, then media.slow_disconnect) within the bounds,
    while the main loop's player plays on."""
    queue_s, slow_s = 2, 2
    own = start_api_server(sluice_factory, env=WORKERS_ENV, config={"media": {
        "queue_max_bytes": "1MB", "queue_max_ms": "%ds" % queue_s, "slow_disconnect": "%ds" % slow_s}})
    http = http_port_of(own)
    pub = Publisher(own, "slow", media_tags)
    readers = []
    try:
        healthy = FlvReader(http, "/live/slow.flv")
        readers.append(healthy)
        wait_until(lambda: video_tags(healthy) >= 5, T(10), 0.05, "tags")
        stuck = FlvReader(http, "/live/slow.flv", rcvbuf=4096, read=False)
        readers.append(stuck)
        t0 = time.monotonic()
        wait_until(lambda: worker_players(own) == {0: 1, 1: 1}, T(5), 0.05,
                   "the stuck player on the worker")
        bound = queue_s + slow_s + 6  # timer-driven: not scaled for ASan
        wait_until(lambda: worker_players(own).get(1) == 0, bound, 0.2,
                   "the worker to close its stuck player")
        assert time.monotonic() - t0 <= bound
        log = own.log_text()
        assert re.search(r"http-flv player closing on worker 1: (subscriber too slow|player stopped "
                         r"reading)", log), log[-3000:]
        n = video_tags(healthy)
        wait_until(lambda: video_tags(healthy) >= n + 25, T(10), 0.05, "more tags")
        assert not healthy.eof
    finally:
        for r in readers:
            r.close()
        pub.close()


def test_shutdown_reaches_flv_players_on_every_loop(sluice_factory, media_tags):
    own = start_api_server(sluice_factory, env=WORKERS_ENV)
    http = http_port_of(own)
    pub = Publisher(own, "bye", media_tags)
    readers = []
    try:
        readers = [FlvReader(http, "/live/bye.flv") for _ in range(4)]
        for r in readers:
            wait_until(lambda r=r: video_tags(r) >= 10, T(10), 0.05, "tags")
        assert worker_players(own) == {0: 2, 1: 2}
        own.stop()
        for r in readers:
            wait_until(lambda r=r: r.eof, T(10), 0.05, "the connection to close")
        assert own.returncode == 0
    finally:
        for r in readers:
            r.close()
        pub.close()
