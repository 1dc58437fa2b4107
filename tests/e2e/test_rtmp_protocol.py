"""Wire-level RTMP conformance with rtmp_client: the handshake, the connect and play
exchanges, byte-exact relay of media under every chunk header type, chunk sizes
and extended timestamps, and acknowledgements to a publisher."""

import struct

import pytest

import rtmp_client
from conftest import HOST, T
from rtmp_client import MSG_AUDIO, MSG_VIDEO, RtmpClient


def test_plain_handshake(sluice):
    c = RtmpClient(HOST, sluice.port, timeout=T(5), name="hs").open()
    try:
        c.handshake()
        assert c.s0 == b"\x03"
        assert len(c.s1) == 1536 and len(c.s2) == 1536
        assert c.s2_echoes_c1, "S2 does not echo C1's random bytes"
        assert c.connect("live").ok  # the server accepted our C2 (an echo of S1)
    finally:
        c.close()


def test_connect_exchange(sluice):
    c = RtmpClient(HOST, sluice.port, timeout=T(5), name="exchange")
    try:
        r = c.connect("live")
        assert r.ok, r
        assert r.code == "NetConnection.Connect.Success" and r.info.get("level") == "status", r
        assert c.peer_window > 0, "no Window Acknowledgement Size before the connect result"
        ids = [c.create_stream() for _ in range(3)]
        assert len(set(ids)) == 3 and 0 not in ids, "createStream ids: %r" % ids
    finally:
        c.close()


def test_play_exchange(sluice, media_tags):
    """Play of a live stream: StreamBegin for the stream, Play.Reset then Play.Start,
    every NetStream status on the stream's own message stream id."""
    pub, psid = rtmp_client.open_publisher(HOST, sluice.port, "live", "exchange", timeout=T(5))
    flv = rtmp_client.FlvPublisher(pub, psid, media_tags).start()
    c = RtmpClient(HOST, sluice.port, timeout=T(5), name="player")
    try:
        assert pub.statuses[0].msid == psid, "Publish.Start not on the publisher's stream id"
        assert c.connect("live").ok
        c.create_stream()
        sid = c.create_stream()  # not the first id, so that a hard-coded 1 shows
        c.play(sid, "exchange")
        c.wait_status("NetStream.Play.Start", T(5))
        c.wait_video_frames(1, T(5))
        codes = c.status_codes()
        assert "NetStream.Play.Reset" in codes, codes
        assert codes.index("NetStream.Play.Reset") < codes.index("NetStream.Play.Start"), codes
        with c._cv:
            on_stream = [s for s in c.statuses if s.code.startswith("NetStream.")]
            begins = [v for _, ev, v in c.user_controls if ev == rtmp_client.UC_STREAM_BEGIN]
            media_ids = {m.msid for m in c.media}
        assert all(s.msid == sid for s in on_stream), \
            "play statuses not on the stream's message stream id %d: %r" % (
                sid, [(s.code, s.msid) for s in on_stream])
        assert media_ids == {sid}, "media on message stream ids %r, expected %d" % (media_ids, sid)
        assert struct.pack(">I", sid) in begins, "no StreamBegin for stream %d: %r" % (sid, begins)
    finally:
        flv.stop()
        pub.close()
        c.close()


def first_seconds(tags, seconds):
    body = [t for t in tags if not (t.seq_header or t.type == rtmp_client.MSG_DATA_AMF0)]
    t0 = body[0].ts
    head = [t for t in tags if t.seq_header or t.type == rtmp_client.MSG_DATA_AMF0]
    return head + [t for t in body if t.ts - t0 < seconds * 1000]


def rel(ts_list):
    return [(t - ts_list[0]) & 0xFFFFFFFF for t in ts_list]


@pytest.mark.parametrize("chunk_size,ts_offset", [
    (128, 0),
    (60000, 0),
    (4096, 0xFFFFFF - 1000),   # timestamps cross 2**24 one second in: extended timestamps
], ids=["chunk128", "chunk60000", "extended_ts"])
def test_media_relayed_byte_exact(sluice, media_tags, chunk_size, ts_offset):
    port = sluice.port
    player, _ = rtmp_client.open_player(HOST, port, "live", "exact", timeout=T(5),
                                        expect_start=False, name="player")
    pub = None
    try:
        player.sync(T(5))
        pub, sid = rtmp_client.open_publisher(HOST, port, "live", "exact", timeout=T(5),
                                              out_chunk_size=chunk_size)
        tags = first_seconds(media_tags, 4)
        flv = rtmp_client.FlvPublisher(pub, sid, tags, realtime=True, loop=False,
                                       ts_offset=ts_offset, speed=4.0).start()
        n_video = sum(1 for t in tags if t.type == MSG_VIDEO and not t.seq_header)
        player.wait_video_frames(n_video, T(10))
        flv.stop()
        sent_v = [s for s in flv.sent if s[0] == MSG_VIDEO]
        sent_a = [s for s in flv.sent if s[0] == MSG_AUDIO]
        # The audio sent after the last video frame may still be on its way: wait for it.
        if sent_a:
            last_a = sent_a[-1]
            player.wait_for(lambda: any(m.is_audio and m.size and m.crc == last_a[3]
                                        for m in player.media[-8:]),
                            T(5), "the last audio message published")
        with player._cv:  # (empty messages are stream markers some servers send; not media)
            got_v = [m for m in player.media if m.is_video and m.size]
            got_a = [m for m in player.media if m.is_audio and m.size]
        assert [(m.size, m.crc) for m in got_v] == [(s[2], s[3]) for s in sent_v], \
            "video payloads differ from what was published"
        assert rel([m.ts for m in got_v[1:]]) == rel([s[1] for s in sent_v[1:]]), \
            "video timestamps (relative) differ from what was published"
        # Audio: all of it, or all but a few frames from before the first keyframe.
        assert len(sent_a) - 3 <= len(got_a) <= len(sent_a), \
            "%d audio messages received for %d sent" % (len(got_a), len(sent_a))
        tail = sent_a[len(sent_a) - len(got_a):]
        assert [(m.size, m.crc) for m in got_a[1:]] == [(s[2], s[3]) for s in tail[1:]], \
            "audio payloads differ from what was published"
        # Audio keeps its place relative to video.
        v0_sent, v0_got = sent_v[1][1], got_v[1].ts
        assert [(m.ts - v0_got) & 0xFFFFFFFF for m in got_a[1:]] == \
            [(s[1] - v0_sent) & 0xFFFFFFFF for s in tail[1:]], "audio/video offsets changed"
    finally:
        if pub is not None:
            pub.close()
        player.close()


def test_compact_chunk_headers(sluice, media_tags):
    """Fixed-size messages at a fixed delta make the publisher use fmt 2 and fmt 3
    headers for whole new messages; the relay must recover every timestamp."""
    port = sluice.port
    vseq = next(t for t in media_tags if t.type == MSG_VIDEO and t.seq_header)
    aseq = next(t for t in media_tags if t.type == MSG_AUDIO and t.seq_header)
    key = next(t for t in media_tags if t.keyframe and not t.seq_header)
    afr = next(t for t in media_tags if t.type == MSG_AUDIO and not t.seq_header)
    player, _ = rtmp_client.open_player(HOST, port, "live", "compact", timeout=T(5),
                                        expect_start=False)
    pub = None
    try:
        player.sync(T(5))
        pub, sid = rtmp_client.open_publisher(HOST, port, "live", "compact", timeout=T(5))
        pub.send_video(sid, 1000, vseq.data)
        pub.send_audio(sid, 1000, aseq.data)
        fmts = []
        for i in range(30):
            ts = 1000 + 40 * i
            st = pub.writer.state.get(rtmp_client.CSID_VIDEO)
            fmts.append(st and ("same" if st["length"] == len(key.data) and
                                st["delta"] == ts - st["ts"] else "diff"))
            pub.send_video(sid, ts, key.data)
            pub.send_audio(sid, ts, afr.data)
        player.wait_video_frames(30, T(10))
        got = [m for m in player.video_frames()]
        assert rel([m.ts for m in got]) == [40 * i for i in range(30)], \
            "timestamps after fmt 2/3 headers: %r" % [m.ts for m in got]
        assert all(m.crc == got[0].crc for m in got)
        assert fmts.count("same") >= 25, "the test did not exercise fmt 3 headers: %r" % fmts
    finally:
        if pub is not None:
            pub.close()
        player.close()


def test_server_acknowledges_publisher(sluice, media_tags):
    pub, sid = rtmp_client.open_publisher(HOST, sluice.port, "live", "acked", timeout=T(5))
    try:
        window = 100_000
        pub.send_window_ack_size(window)
        flv = rtmp_client.FlvPublisher(pub, sid, first_seconds(media_tags, 6), realtime=True,
                                       loop=False, speed=8.0).start()
        pub.wait_for(lambda: any(seq >= window for _, seq in pub.acks), T(5),
                     "an Acknowledgement of at least %d bytes" % window)
        flv.stop()
    finally:
        pub.close()
