"""Misbehaving and refused clients: each case is answered in RTMP's own terms or by
closing that one connection, and never disturbs anyone else.

Most cases share one server (module scope) with a looping ffmpeg publisher; each
abuse case opens a fresh "witness" player first and checks afterwards that it
kept receiving, that the server is alive and that a new player still starts.
"""

import struct
import subprocess
import time

import pytest

import rtmp_client
from conftest import HOST, T, ffmpeg_publish_cmd, wait_stream_live
from rtmp_client import RtmpClient, amf0_encode_all, chunk_basic_header

MAX_MESSAGE = 1 << 20


@pytest.fixture(scope="module")
def target(module_sluice_factory, module_procs, media_src):
    srv = module_sluice_factory(config={"rtmp": {"handshake_timeout": "1s",
                                                 "max_message_size": "1MB",
                                                 "max_chunk_size": 65536}})
    module_procs.start(ffmpeg_publish_cmd(media_src, srv.url("live", "stream1")), "ffmpeg-publish")
    wait_stream_live(srv.port, "live", "stream1", T(15))
    return srv


class Witness:
    """A player that watches live/stream1 across an abuse case."""

    def __init__(self, srv):
        self.srv = srv
        assert srv.alive(), "sluice is not running (it died in an earlier case?)"
        self.c, _ = rtmp_client.open_player(HOST, srv.port, "live", "stream1", timeout=T(5),
                                            name="witness")
        self.c.wait_video_frames(1, T(5))

    def check(self):
        """The witness keeps receiving (10 more frames), the server lives, a newcomer plays."""
        mark = len(self.c.media)
        self.c.wait_video_frames(10, T(5), since=mark)
        assert self.srv.alive(), "sluice died"
        wait_stream_live(self.srv.port, "live", "stream1", T(5))

    def close(self):
        self.c.close()


@pytest.fixture
def witness(target):
    w = Witness(target)
    yield w
    w.close()


def raw(srv, timeout=None):
    return RtmpClient(HOST, srv.port, timeout=timeout or T(5), name="abuser").open()


# --------------------------------------------------------------------------
# Refusals the client hears about
# --------------------------------------------------------------------------

def test_publish_name_collision_bad_name(target, witness):
    c, sid = rtmp_client.open_publisher(HOST, target.port, "live", "stream1", timeout=T(5),
                                        expect_start=False, name="second-publisher")
    try:
        st = c.wait_status_any(["NetStream.Publish.BadName", "NetStream.Publish.Start"], T(5))
        assert st.code == "NetStream.Publish.BadName", \
            "a second publisher of live/stream1 got %s" % st.code
        assert st.level == "error", st.info
        # Its media, if it sends any, must not reach players.
        try:
            c.send_video(sid, 0, b"\x17\x01\x00\x00\x00" + b"\xEE" * 100)
        except OSError:
            pass  # it may have been disconnected after BadName
    finally:
        c.close()
    witness.check()
    assert all(m.size != 105 for m in witness.c.media if m.is_video), \
        "the refused publisher's frame reached a player"


def test_unknown_app_invalid_app(target):
    c = RtmpClient(HOST, target.port, timeout=T(5), name="unknown-app")
    try:
        r = c.connect("nosuchapp")
        assert not r.ok, "connect to an unknown app succeeded: %r" % r
        assert r.name == "_error", r
        assert r.code == "NetConnection.Connect.InvalidApp", r
    finally:
        c.close()


def test_configured_extra_app_accepts(target):
    c = RtmpClient(HOST, target.port, timeout=T(5), name="other-app")
    try:
        r = c.connect("other")
        assert r.ok and r.code == "NetConnection.Connect.Success", r
    finally:
        c.close()


def test_ffmpeg_publish_to_unknown_app_fails(target, media_src):
    cmd = ffmpeg_publish_cmd(media_src, target.url("nosuchapp", "stream1"))
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=T(20))
    except subprocess.TimeoutExpired:
        pytest.fail("ffmpeg kept publishing to an unknown app for %.0f s" % T(20))
    assert p.returncode != 0, "ffmpeg publish to an unknown app exited 0"


def test_disabled_app_refused(sluice_factory):
    srv = sluice_factory(config={"apps": {"closed": {"enabled": False}}})
    c = RtmpClient(HOST, srv.port, timeout=T(5), name="disabled-app")
    try:
        r = c.connect("closed")
        assert not r.ok, "connect to a disabled app succeeded: %r" % r
        assert r.code in ("NetConnection.Connect.InvalidApp",
                          "NetConnection.Connect.Rejected"), r
    finally:
        c.close()


# --------------------------------------------------------------------------
# Garbage and broken handshakes
# --------------------------------------------------------------------------

def _garbage(seed, n, first=None):
    b = bytearray(rtmp_client.random_bytes(n, seed))
    if first is not None:
        b[0] = first
    return bytes(b)


@pytest.mark.parametrize("seed", [1, 2])
def test_garbage_instead_of_handshake_is_closed(target, witness, seed):
    c = raw(target)
    try:
        # Version byte 0xAB is no RTMP version: the server must hang up.
        try:
            c.send_raw(_garbage(seed, 4096, first=0xAB))
        except OSError:
            pass
        assert c.wait_eof_raw(T(3)), "the server kept a connection with a bad C0"
    finally:
        c.close()
    witness.check()


@pytest.mark.parametrize("seed", [3, 4])
def test_garbage_handshake_with_valid_version(target, witness, seed):
    c = raw(target)
    try:
        try:
            c.send_raw(_garbage(seed, 1 + 1536 * 2 + 8192, first=0x03))
        except OSError:
            pass
        c.wait_eof_raw(0.5)  # closing is allowed, staying is allowed; nothing else is
    finally:
        c.close()
    witness.check()


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_garbage_after_handshake(target, witness, seed):
    c = raw(target).handshake()
    try:
        try:
            for i in range(16):
                c.send_raw(_garbage(seed * 100 + i, 4096))
        except OSError:
            pass  # the server hung up: fine
        c.wait_eof_raw(0.5)
    finally:
        c.close()
    witness.check()


@pytest.mark.parametrize("seed", [8, 9])
def test_garbage_after_connect(target, witness, seed):
    c = RtmpClient(HOST, target.port, timeout=T(5), name="abuser")
    try:
        assert c.connect("live").ok
        sid = c.create_stream()
        c.publish(sid, "garbage%d" % seed)
        try:
            for i in range(16):
                c.send_raw(_garbage(seed * 100 + i, 4096))
        except OSError:
            pass
    finally:
        c.close()
    witness.check()


def test_deep_amf_nesting(target, witness):
    """A connect whose command object nests 100000 levels deep: refused, no stack blowup."""
    c = raw(target).handshake()
    try:
        depth = 100000
        body = amf0_encode_all("connect", 1.0) + (b"\x03\x00\x01a" * depth) + \
            (b"\x00\x00\x09" * depth)
        w = rtmp_client.ChunkWriter(128)
        try:
            c.send_raw(w.encode(3, rtmp_client.MSG_SET_CHUNK_SIZE, 0, 0, struct.pack(">I", 65536)))
            w.chunk_size = 65536
            c.send_raw(w.encode(3, rtmp_client.MSG_COMMAND_AMF0, 0, 0, body))
        except OSError:
            pass
        c.wait_eof_raw(T(3))
    finally:
        c.close()
    witness.check()


def test_truncated_handshake_then_close(target, witness):
    for _ in range(5):
        c = raw(target)
        try:
            c.send_raw(b"\x03" + _garbage(10, 768))
        finally:
            c.close()
    witness.check()


@pytest.mark.parametrize("sent", ["nothing", "c0", "c0_half_c1", "c0c1_no_c2"])
def test_stalled_handshake_times_out(target, witness, sent):
    """handshake_timeout is 1 s in this module's config."""
    c = raw(target)
    try:
        data = {"nothing": b"", "c0": b"\x03", "c0_half_c1": b"\x03" + _garbage(11, 768),
                "c0c1_no_c2": b"\x03" + _garbage(12, 1536)}[sent]
        t0 = time.monotonic()
        if data:
            c.send_raw(data)
        assert c.wait_eof_raw(T(4)), "a stalled handshake (%s) was not closed" % sent
        elapsed = time.monotonic() - t0
        assert elapsed >= 0.7, "closed after %.2f s, before the 1 s handshake timeout" % elapsed
    finally:
        c.close()
    witness.check()


# --------------------------------------------------------------------------
# Limits: message size, chunk size
# --------------------------------------------------------------------------

def _oversized_header(csid, type_id, msid, length):
    return chunk_basic_header(0, csid) + b"\x00\x00\x00" + struct.pack(">I", length)[1:] + \
        bytes([type_id]) + struct.pack("<I", msid)


@pytest.mark.parametrize("where", ["command_before_connect", "publisher_video"])
def test_message_above_max_size_is_refused(target, witness, where):
    c = RtmpClient(HOST, target.port, timeout=T(5), name="oversize")
    try:
        if where == "command_before_connect":
            c.open().handshake()
            hdr = _oversized_header(3, rtmp_client.MSG_COMMAND_AMF0, 0, MAX_MESSAGE + 1)
        else:
            assert c.connect("live").ok
            sid = c.create_stream()
            c.publish(sid, "oversize")
            c.wait_status("NetStream.Publish.Start", T(5))
            hdr = _oversized_header(6, rtmp_client.MSG_VIDEO, sid, 2 * MAX_MESSAGE)
        try:
            # One full chunk of the 4096-byte chunk size set by connect() (or 128 before it).
            c.send_raw(hdr + b"\x17\x01" + b"\x00" * 126)
        except OSError:
            pass
        if c._reader is not None:
            c.wait_closed(T(3))
        else:
            assert c.wait_eof_raw(T(3)), "a message header above max_message_size was accepted"
    finally:
        c.close()
    witness.check()


@pytest.mark.parametrize("chunk_size", [0x00010001, 0x01000000, 0x7FFFFFFF, 0xFFFFFFFF])
def test_chunk_size_above_max_is_refused(target, witness, chunk_size):
    """max_chunk_size is 65536 in this module's config."""
    c = RtmpClient(HOST, target.port, timeout=T(5), name="chunky")
    try:
        assert c.connect("live").ok
        c.send_message(rtmp_client.CSID_PROTOCOL, rtmp_client.MSG_SET_CHUNK_SIZE, 0, 0,
                       struct.pack(">I", chunk_size))
        try:
            c.send_command("createStream", None)
        except OSError:
            pass
        c.wait_closed(T(3))
    finally:
        c.close()
    witness.check()


def test_chunk_size_zero_is_not_applied(target, witness):
    """0 is no chunk size: the server may close or ignore it, but must not apply it."""
    c = RtmpClient(HOST, target.port, timeout=T(5), name="chunk0")
    try:
        assert c.connect("live").ok
        c.send_message(rtmp_client.CSID_PROTOCOL, rtmp_client.MSG_SET_CHUNK_SIZE, 0, 0,
                       struct.pack(">I", 0))
        try:
            txn = c.send_command("createStream", None)
            c.wait_for(lambda: c.closed or txn in c.results, T(3),
                       "a close or the createStream result", fail_on_close=False)
        except OSError:
            pass
    finally:
        c.close()
    witness.check()


def test_chunk_size_at_max_is_accepted(target, media_tags):
    pub, sid = rtmp_client.open_publisher(HOST, target.port, "live", "big", timeout=T(5),
                                          out_chunk_size=65536)
    flv = None
    try:
        flv = rtmp_client.FlvPublisher(pub, sid, media_tags).start()
        wait_stream_live(target.port, "live", "big", T(10))
        assert not pub.closed, pub.close_reason
    finally:
        if flv is not None:
            flv.stop()
        pub.close()


def next_status(c, seen, what):
    """The first onStatus after the `seen` first ones."""
    c.wait_for(lambda: len(c.statuses) > seen, T(5), what)
    with c._cv:
        return c.statuses[seen]


def test_publish_and_play_refusals_each_with_its_own_status(sluice_factory):
    """The checks publish and play share (stream id, name, app permission), each refusal
    answered with the action's own status code and a description, the connection kept."""
    srv = sluice_factory(config={"apps": {"live": {}, "noplay": {"play": False},
                                          "nopub": {"publish": False}}})
    cases = [
        ("live", "publish", 7, "s1", "NetStream.Publish.BadName", "invalid stream"),
        ("live", "play", 7, "s1", "NetStream.Play.Failed", "invalid stream"),
        ("live", "publish", None, "a/../../b", "NetStream.Publish.BadName", "invalid stream name"),
        ("live", "play", None, "a/../../b", "NetStream.Play.StreamNotFound", "invalid stream name"),
        ("live", "publish", None, "x" * 5000, "NetStream.Publish.BadName", "invalid stream name"),
        ("noplay", "play", None, "s1", "NetStream.Play.Failed", "not allowed"),
        ("nopub", "publish", None, "s1", "NetStream.Publish.BadName", "not allowed"),
    ]
    for app, action, sid, name, code, words in cases:
        c = RtmpClient(HOST, srv.port, timeout=T(5), name="refused-%s-%s" % (app, action))
        try:
            assert c.connect(app).ok
            if sid is None:
                sid = c.create_stream()
            seen = len(c.statuses)
            if action == "publish":
                c.publish(sid, name)
            else:
                c.play(sid, name)
            st = next_status(c, seen, "the answer to %s %s" % (action, name[:20]))
            assert (st.code, st.level) == (code, "error"), (app, action, name[:20], st)
            assert words in st.info.get("description", "").lower(), (app, action, st)
            assert c.call("getStreamLength", None, "s1").ok  # the connection is still served
        finally:
            c.close()
