"""Fan-out and stream lifecycle as players see it: many players at once, a stuck
player that must not hurt anyone else, a player that waits for its publisher,
and a player that outlives several publishers of the same name."""

import time

import pytest

import rtmp_client
from conftest import HOST, T, tcp_socket, tcp_state, wait_stream_live, wait_until

N_PLAYERS = 20


def test_twenty_players_all_receive_video(sluice, ffmpeg_publish):
    ffmpeg_publish(sluice.url("live", "stream1"))
    wait_stream_live(sluice.port, "live", "stream1", T(15))
    players = []
    try:
        for i in range(N_PLAYERS):
            c, _ = rtmp_client.open_player(HOST, sluice.port, "live", "stream1", timeout=T(5),
                                           name="player%d" % i)
            players.append(c)
        # 50 frames = 2 s of media beyond whatever GOP each one started with.
        deadline = time.monotonic() + T(15)
        for c in players:
            c.wait_video_frames(75, max(0.1, deadline - time.monotonic()))
        for c in players:
            frames = c.video_frames()
            assert frames[0].keyframe, "%s did not start on a keyframe" % c.name
            ts = [m.ts for m in frames]
            assert all(b >= a for a, b in zip(ts, ts[1:])), "%s: timestamps go backwards" % c.name
            assert not c.closed, "%s was disconnected: %s" % (c.name, c.close_reason)
    finally:
        for c in players:
            c.close()


def frames_in_window(c, t0, t1):
    with c._cv:
        return sum(1 for m in c.media if m.is_frame and t0 <= m.arrival < t1)


QUEUE_MAX_S = 3
SLOW_DISCONNECT_S = 3


@pytest.mark.exclusive
def test_stuck_player_does_not_slow_others(sluice_factory, ffmpeg_publish):
    """One player stops reading. The publisher and three other players must not
    notice (25 fps over a 10 s window), and the server must give up on the stuck
    one within its configured bounds (queue 3 s + slow_disconnect 3 s, plus slack)."""
    srv = sluice_factory(config={"media": {"queue_max_bytes": "2MB",
                                           "queue_max_ms": "%ds" % QUEUE_MAX_S,
                                           "slow_disconnect": "%ds" % SLOW_DISCONNECT_S}})
    publisher = ffmpeg_publish(srv.url("live", "stream1"))
    wait_stream_live(srv.port, "live", "stream1", T(15))
    healthy = []
    stuck = None
    try:
        stuck, _ = rtmp_client.open_player(HOST, srv.port, "live", "stream1", timeout=T(5),
                                           rcvbuf=4096, name="stuck")
        stuck.pause_reading()
        t_pause = time.monotonic()
        stuck_port = stuck.sock.getsockname()[1]
        for i in range(3):
            c, _ = rtmp_client.open_player(HOST, srv.port, "live", "stream1", timeout=T(5),
                                           name="healthy%d" % i)
            healthy.append(c)
        # Let the GOP burst pass, then measure a 10 s window on every healthy player.
        for c in healthy:
            c.wait_video_frames(60, T(10))
        window = 10.0
        t0 = time.monotonic()
        t1 = t0 + window
        for c in healthy:
            c.wait_for(lambda c=c: any(m.arrival >= t1 for m in c.media if m.is_frame),
                       window + T(5), "frames after the 10 s window")
        expected = window * 25
        for c in healthy:
            n = frames_in_window(c, t0, t1)
            assert n >= 0.85 * expected, \
                "%s got %d frames in %.0f s while a player was stuck (expected ~%d)" % (
                    c.name, n, window, expected)
            assert not c.closed, "%s was disconnected: %s" % (c.name, c.close_reason)
        assert publisher.poll() is None, "the publisher died while a player was stuck"

        # The server's end of the stuck connection must leave ESTABLISHED (closed,
        # its last bytes still queued behind our closed window) within the bounds.
        # Checked on the socket, since the client cannot see a FIN it does not read.
        bound = QUEUE_MAX_S + SLOW_DISCONNECT_S + 6  # timer-driven: not scaled for ASan
        left = max(0.5, t_pause + bound - time.monotonic())
        try:
            wait_until(lambda: tcp_state(srv.port, stuck_port) != "ESTABLISHED", left, 0.2,
                       "the server to close the stuck player")
        except AssertionError:
            raise AssertionError(
                "the server kept a player that stopped reading for %.0f s (queue_max_ms %d s + "
                "slow_disconnect %d s); its socket to that player: %s" % (
                    time.monotonic() - t_pause, QUEUE_MAX_S, SLOW_DISCONNECT_S,
                    tcp_socket(srv.port, stuck_port))) from None
        stuck.resume_reading()
        stuck.wait_closed(T(10))
    finally:
        if stuck is not None:
            stuck.close()
        for c in healthy:
            c.close()


def test_player_waits_for_publisher(sluice, ffmpeg_publish):
    c, _ = rtmp_client.open_player(HOST, sluice.port, "live", "late", timeout=T(5),
                                   expect_start=False)
    try:
        c.sync(T(5))  # the play command has been handled
        assert not c.video_frames(), "media before any publisher"
        assert not c.closed, "the waiting player was disconnected: %s" % c.close_reason
        ffmpeg_publish(sluice.url("live", "late"))
        notify = c.wait_status("NetStream.Play.PublishNotify", T(15))
        c.wait_video_frames(10, T(10))
        frames = c.video_frames()
        assert frames[0].keyframe, "first frame after PublishNotify is not a keyframe"
        assert notify.arrival <= frames[0].arrival, "PublishNotify came after the media"
    finally:
        c.close()


def test_player_survives_unpublish_and_republish(sluice, procs, ffmpeg_publish, media_tags):
    port = sluice.port
    name = "cycle"
    player, _ = rtmp_client.open_player(HOST, port, "live", name, timeout=T(5),
                                        expect_start=False)
    publishers = []
    try:
        player.sync(T(5))

        # 1. ffmpeg publishes, then quits (SIGINT: FCUnpublish/deleteStream, then close).
        ff = ffmpeg_publish(sluice.url("live", name))
        player.wait_video_frames(10, T(15))
        procs.stop(ff)
        player.wait_status("NetStream.Play.UnpublishNotify", T(5))

        # 2. republish with rtmp_client; the same player resumes on a keyframe.
        mark = len(player.media)
        notifies = player.status_codes().count("NetStream.Play.PublishNotify")
        pub, sid = rtmp_client.open_publisher(HOST, port, "live", name, timeout=T(5))
        publishers.append(pub)
        flv = rtmp_client.FlvPublisher(pub, sid, media_tags).start()
        player.wait_status("NetStream.Play.PublishNotify", T(5), after=notifies)
        player.wait_video_frames(10, T(10), since=mark)
        new = [m for m in player.media[mark:] if m.is_frame]
        assert new[0].keyframe, "after republish the player did not restart on a keyframe"

        # 3. a clean FMLE-style unpublish: the publisher hears Unpublish.Success.
        flv.stop()
        pub.unpublish(sid, name)
        pub.wait_status("NetStream.Unpublish.Success", T(5))
        player.wait_status("NetStream.Play.UnpublishNotify", T(5), after=1)

        # 4. a publisher that just drops its TCP connection also ends the stream.
        mark = len(player.media)
        pub2, sid2 = rtmp_client.open_publisher(HOST, port, "live", name, timeout=T(5))
        publishers.append(pub2)
        flv2 = rtmp_client.FlvPublisher(pub2, sid2, media_tags).start()
        player.wait_video_frames(5, T(10), since=mark)
        flv2.stop()
        pub2.close()
        player.wait_status("NetStream.Play.UnpublishNotify", T(5), after=2)

        assert not player.closed, "the player was disconnected: %s" % player.close_reason
    finally:
        for p in publishers:
            p.close()
        player.close()


def _churn_one(port, i):
    """One short-lived client that leaves at a different point depending on i."""
    mode = i % 5
    c = rtmp_client.RtmpClient(HOST, port, timeout=T(5), name="churn%d" % i)
    try:
        c.open()
        if mode >= 1:
            c.handshake()
        if mode >= 2:
            assert c.connect("live").ok
        if mode >= 3:
            sid = c.create_stream()
            c.play(sid, "stream1")
            c.wait_status("NetStream.Play.Start", T(5))
        if mode == 4:
            c.wait_video_frames(5, T(5))
    finally:
        c.close(rst=(i % 2 == 0))


def test_player_churn(sluice, ffmpeg_publish):
    """60 clients come and go (after TCP connect, handshake, connect, play, or
    mid-burst; half with a TCP reset) while a witness keeps watching."""
    import concurrent.futures

    ffmpeg_publish(sluice.url("live", "stream1"))
    wait_stream_live(sluice.port, "live", "stream1", T(15))
    witness, _ = rtmp_client.open_player(HOST, sluice.port, "live", "stream1", timeout=T(5),
                                         name="witness")
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for f in [pool.submit(_churn_one, sluice.port, i) for i in range(60)]:
                f.result(timeout=T(30))
        mark = len(witness.media)
        witness.wait_video_frames(25, T(5), since=mark)
        assert sluice.alive(), "sluice died during client churn"
        wait_stream_live(sluice.port, "live", "stream1", T(5))
    finally:
        witness.close()


def _rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.mark.slow
@pytest.mark.exclusive
def test_soak_steady_rate_and_memory(sluice, ffmpeg_publish):
    """40 s across three loops of the source: steady 25 fps, monotonic timestamps
    without gaps for every player, and no unbounded memory growth."""
    ffmpeg_publish(sluice.url("live", "stream1"))
    wait_stream_live(sluice.port, "live", "stream1", T(15))
    players = []
    try:
        for i in range(5):
            c, _ = rtmp_client.open_player(HOST, sluice.port, "live", "stream1", timeout=T(5),
                                           name="soak%d" % i)
            players.append(c)
        for c in players:
            c.wait_video_frames(60, T(10))
        rss0 = _rss_kb(sluice.proc.pid)
        window = 40.0
        t0 = time.monotonic()
        t1 = t0 + window
        for c in players:
            c.wait_for(lambda c=c: any(m.arrival >= t1 for m in c.media if m.is_frame),
                       window + T(5), "frames after the soak window")
        rss1 = _rss_kb(sluice.proc.pid)
        for c in players:
            n = frames_in_window(c, t0, t1)
            assert n >= 0.9 * window * 25, "%s: %d frames in %.0f s" % (c.name, n, window)
            ts = [m.ts for m in c.video_frames()]
            steps = [b - a for a, b in zip(ts, ts[1:])]
            assert min(steps) >= 0, "%s: timestamps go backwards at the source loop" % c.name
            assert max(steps) <= 200, "%s: a %d ms gap in timestamps" % (c.name, max(steps))
        assert rss1 - rss0 < 30 * 1024, "RSS grew from %d kB to %d kB in %.0f s" % (
            rss0, rss1, window)
    finally:
        for c in players:
            c.close()
