"""Sharded event loops (server.workers: 2; issue 20, docs/internals/threads.md).

Players of one stream are spread over the main loop and a worker loop (their writes run
there; /metrics shows the split) and all receive the same media: every audio and video
message, compared by CRC in order. A kick (API), an unpublish and a server shutdown reach
the players on every loop. A player that stops reading never delays players on the other
loop. One server for the module; the shutdown test has its own.
"""

import re
import time
import urllib.request

import pytest

import rtmp_client
from api_helpers import Api, http_port_of, start_api_server
from conftest import HOST, T, wait_until

WORKERS_ENV = {"SLUICE_SERVER_WORKERS": "2"}
N_PLAYERS = 6


def worker_players(srv):
    """{loop index: players whose writes it runs} from /metrics."""
    url = "http://%s:%d/metrics" % (HOST, http_port_of(srv))
    body = urllib.request.urlopen(url, timeout=T(5)).read().decode()
    return {int(m.group(1)): int(m.group(2)) for m in re.finditer(
        r'^sluice_worker_players\{worker="(\d+)"\} (-?\d+)$', body, re.M)}


@pytest.fixture(scope="module")
def srv(module_sluice_factory):
    s = start_api_server(module_sluice_factory, env=WORKERS_ENV)
    s.api = Api(s)
    return s


class Publisher:
    """Our own RTMP publisher of the test media (looping, real time), so that the
    test decides when the stream ends."""

    def __init__(self, srv, stream, media_tags):
        self.client, sid = rtmp_client.open_publisher(HOST, srv.port, "live", stream,
                                                      timeout=T(5), name="pub-" + stream)
        self.sid = sid
        self.feed = rtmp_client.FlvPublisher(self.client, sid, media_tags)
        self.feed.start()

    def close(self):
        self.feed.stop()
        self.client.close()


def open_players(srv, stream, n, **kw):
    players = []
    for i in range(n):
        c, _ = rtmp_client.open_player(HOST, srv.port, "live", stream, timeout=T(5),
                                       name="%s-p%d" % (stream, i), **kw)
        players.append(c)
    return players


def media_crcs(c):
    """(type, crc) of every audio/video message but sequence headers, in arrival order."""
    with c._cv:
        return [(m.type, m.crc) for m in c.media if (m.is_video or m.is_audio) and not m.seq_header]


def test_players_on_both_loops_get_identical_media(srv, media_tags):
    pub = Publisher(srv, "same", media_tags)
    players = []
    try:
        players = open_players(srv, "same", N_PLAYERS)
        split = worker_players(srv)
        assert len(split) == 2, split
        assert split[0] >= 2 and split[1] >= 2, "players not spread over the loops: %s" % split
        for c in players:
            c.wait_video_frames(100, T(20))
        # Every player holds >= 4 s of media; they joined within a fraction of a second, so
        # each one's sequence from its first message on is a stretch of the first player's.
        ref = media_crcs(players[0])
        for c in players[1:]:
            got = media_crcs(c)
            assert got, c.name
            start = [i for i, x in enumerate(ref) if x == got[0]]
            assert start, "%s starts on a message the first player never got" % c.name
            n = min(len(ref) - start[0], len(got)) - 1
            assert n >= 100, "%s: only %d messages overlap" % (c.name, n)
            assert got[:n] == ref[start[0]:start[0] + n], "%s received other bytes" % c.name
            assert not c.closed, c.close_reason
    finally:
        for c in players:
            c.close()
        pub.close()
    wait_until(lambda: sum(worker_players(srv).values()) == 0, T(10),
               message="players gauge back to 0")


def test_kick_and_unpublish_reach_every_loop(srv, media_tags):
    pub = Publisher(srv, "ends", media_tags)
    kicked, stay = [], []
    try:
        # Four players (two per loop: each goes to the least loaded) are kicked through
        # the API; two more (again one per loop) hear the unpublish and stay connected.
        kicked = open_players(srv, "ends", 4)
        split = worker_players(srv)
        assert split[0] >= 2 and split[1] >= 2, split
        for c in kicked:
            c.wait_video_frames(10, T(10))
        ids = [s["id"] for s in srv.api.data("applications/live/streams/ends/subscribers")]
        assert len(ids) == 4, ids
        for sid in ids:
            r = srv.api.delete("applications/live/clients/" + sid)
            assert r.status == 200, r
        for c in kicked:
            c.wait_closed(T(10))
        wait_until(lambda: sum(worker_players(srv).values()) == 0, T(10),
                   message="players gauge back to 0 after the kicks")
        stay = open_players(srv, "ends", 2)
        split = worker_players(srv)
        assert split[0] == 1 and split[1] == 1, split
        for c in stay:
            c.wait_video_frames(10, T(10))
        pub.close()
        pub = None
        for c in stay:
            c.wait_status("NetStream.Play.UnpublishNotify", T(10))
            assert not c.is_closed()
    finally:
        for c in kicked + stay:
            c.close()
        if pub:
            pub.close()


def test_pause_and_republish_keep_their_order_on_every_loop(srv, media_tags):
    """What the main loop forwards to a worker (pause, unpause, a republish's rebase, status
    messages) stays in order with the media: nothing arrives between Pause.Notify and
    Unpause.Notify, the resumed media starts on a keyframe, and each player's timeline
    never goes back, across the unpause and a republish, on both loops."""
    pub = Publisher(srv, "ctl", media_tags)
    players = []
    try:
        for i in range(2):  # one per loop (each goes to the least loaded)
            c, sid = rtmp_client.open_player(HOST, srv.port, "live", "ctl", timeout=T(5),
                                             name="ctl-p%d" % i)
            players.append((c, sid))
        watch, _ = rtmp_client.open_player(HOST, srv.port, "live", "ctl", timeout=T(5),
                                           name="ctl-watch")
        players.append((watch, None))
        split = worker_players(srv)
        assert split[0] >= 1 and split[1] >= 1, split
        for c, _ in players:
            c.wait_video_frames(25, T(10))

        def watch_frames(n):
            with watch._cv:
                have = sum(1 for m in watch.media if m.is_video)
            watch.wait_video_frames(have + n, T(10))

        for c, sid in players[:2]:
            c.send_command("pause", None, True, 0.0, msid=sid)
        for c, _ in players[:2]:
            c.wait_status("NetStream.Pause.Notify", T(10))
        watch_frames(25)  # a second of media goes by while they are paused
        for c, sid in players[:2]:
            c.send_command("pause", None, False, 0.0, msid=sid)
        for c, _ in players[:2]:
            p = c.wait_status("NetStream.Pause.Notify", T(10))
            u = c.wait_status("NetStream.Unpause.Notify", T(10))
            c.wait_for(lambda c=c, u=u: any(m.arrival >= u.arrival and m.is_video and not m.seq_header
                                            for m in c.media), T(10), "video after unpause")
            with c._cv:
                during = [m for m in c.media if p.arrival < m.arrival < u.arrival]
                after = [m for m in c.media if m.arrival >= u.arrival and m.is_video
                         and not m.seq_header]
            assert not during, "%s: %d messages while paused" % (c.name, len(during))
            assert after and after[0].keyframe, "%s resumed on %r" % (c.name, after[:1])

        pub.close()
        for c, _ in players:
            c.wait_status("NetStream.Play.UnpublishNotify", T(10))
        pub = Publisher(srv, "ctl", media_tags)
        for c, _ in players:
            c.wait_status("NetStream.Play.PublishNotify", T(10))
            n = len(media_crcs(c))
            c.wait_video_frames(sum(1 for m in c.media if m.is_video) + 25, T(10))
            assert len(media_crcs(c)) > n
            with c._cv:
                ts = [m.ts for m in c.media if (m.is_video or m.is_audio) and not m.seq_header]
            back = [(a, b) for a, b in zip(ts, ts[1:]) if b + 100 < a]
            assert not back, "%s: timeline went back: %s" % (c.name, back[:3])
            assert not c.is_closed()
    finally:
        for c, _ in players:
            c.close()
        if pub:
            pub.close()


@pytest.mark.exclusive
def test_stuck_player_never_delays_the_other_loop(srv, media_tags):
    pub = Publisher(srv, "stuck", media_tags)
    players = []
    try:
        stuck, _ = rtmp_client.open_player(HOST, srv.port, "live", "stuck", timeout=T(5),
                                           rcvbuf=4096, name="stuck")
        players.append(stuck)
        stuck.pause_reading()
        players += open_players(srv, "stuck", 3)
        split = worker_players(srv)
        assert split[0] >= 1 and split[1] >= 1, split
        healthy = players[1:]
        for c in healthy:
            c.wait_video_frames(60, T(10))
        window = 5.0
        t0 = time.monotonic()
        t1 = t0 + window
        for c in healthy:
            c.wait_for(lambda c=c: any(m.arrival >= t1 for m in c.media if m.is_frame),
                       window + T(5), "frames after the window")
        for c in healthy:
            with c._cv:
                n = sum(1 for m in c.media if m.is_frame and t0 <= m.arrival < t1)
            assert n >= window * 25 * 0.9, "%s got %d frames in %.0f s" % (c.name, n, window)
    finally:
        for c in players:
            c.close()
        pub.close()


@pytest.mark.exclusive
def test_stuck_player_on_a_worker_is_closed_there(sluice_factory, media_tags):
    """A player on the worker loop that stops reading is closed by that loop's own slow-player
    policy (its queue's bounds, then media.slow_disconnect or the stall check) within the
    configured bounds, while the player on the main loop plays on."""
    queue_s, slow_s = 2, 2
    own = sluice_factory(env=WORKERS_ENV, config={"media": {
        "queue_max_bytes": "1MB", "queue_max_ms": "%ds" % queue_s, "slow_disconnect": "%ds" % slow_s}})
    pub = Publisher(own, "slow", media_tags)
    players = []
    try:
        healthy, _ = rtmp_client.open_player(HOST, own.port, "live", "slow", timeout=T(5),
                                             name="healthy")
        players.append(healthy)
        stuck, _ = rtmp_client.open_player(HOST, own.port, "live", "slow", timeout=T(5),
                                           rcvbuf=4096, name="stuck")
        players.append(stuck)
        stuck.pause_reading()
        t_pause = time.monotonic()
        split = worker_players(own)
        assert split == {0: 1, 1: 1}, split  # the stuck one went to the worker (least loaded)
        bound = queue_s + slow_s + 6  # timer-driven: not scaled for ASan
        wait_until(lambda: worker_players(own).get(1) == 0, bound, 0.2,
                   "the worker to close its stuck player")
        assert time.monotonic() - t_pause <= bound
        log = own.log_text()
        assert "player stopped reading" in log or "subscriber too slow" in log, log[-2000:]
        n = sum(1 for m in healthy.media if m.is_video)
        healthy.wait_video_frames(n + 25, T(10))
        assert not healthy.is_closed()
    finally:
        for c in players:
            c.close()
        pub.close()


def test_shutdown_reaches_every_loop(sluice_factory, media_tags):
    own = sluice_factory(env=WORKERS_ENV)
    pub = Publisher(own, "bye", media_tags)
    players = []
    try:
        players = open_players(own, "bye", 4)
        for c in players:
            c.wait_video_frames(10, T(10))
        assert "writes on worker 1" in own.log_text()
        own.stop()
        for c in players:
            c.wait_status("NetStream.Play.UnpublishNotify", T(10))
            c.wait_closed(T(10))
        assert own.returncode == 0
    finally:
        for c in players:
            c.close()
        pub.close()


def arrival_clusters(c, t0, t1):
    """Runs of media messages that arrived within 20 ms of the one before, in [t0, t1)."""
    with c._cv:
        ts = sorted(m.arrival for m in c.media if m.is_frame and t0 <= m.arrival < t1)
    return 1 + sum(1 for a, b in zip(ts, ts[1:]) if b - a > 0.02) if ts else 0


@pytest.mark.exclusive
def test_reload_reaches_the_workers_write_timers(sluice_factory, media_tags):
    """A reload (SIGHUP) that sets media.write_merge reaches the write timers of the worker
    loop (by message from the main thread) as well as the main loop's: players on both loops
    then get their media in bursts one window apart, where before each frame came alone."""
    import signal
    import yaml
    from conftest import to_yaml
    own = sluice_factory(env=WORKERS_ENV)
    pub = Publisher(own, "merge", media_tags)
    players = []
    try:
        players = open_players(own, "merge", 2)
        assert worker_players(own) == {0: 1, 1: 1}
        for c in players:
            c.wait_video_frames(25, T(10))
        window = 3.0
        t0 = time.monotonic()
        for c in players:
            c.wait_for(lambda c=c: any(m.arrival >= t0 + window for m in c.media if m.is_frame),
                       window + T(5), "frames after the first window")
        before = [arrival_clusters(c, t0, t0 + window) for c in players]
        cfg = yaml.safe_load(own.config_path.read_text())
        cfg.setdefault("media", {})["write_merge"] = "300ms"
        own.config_path.write_text(to_yaml(cfg) + "\n")
        own.proc.send_signal(signal.SIGHUP)
        own.wait_log(r"config reloaded", T(10))
        t1 = time.monotonic() + 0.5
        for c in players:
            c.wait_for(lambda c=c: any(m.arrival >= t1 + window for m in c.media if m.is_frame),
                       window + T(5), "frames after the second window")
        after = [arrival_clusters(c, t1, t1 + window) for c in players]
        for i in range(2):  # 25 fps and ~43 audio frames a second: dozens of runs at once
            assert before[i] >= 30, (i, before, after)
            assert after[i] <= window / 0.3 + 4, (i, before, after)
    finally:
        for c in players:
            c.close()
        pub.close()
