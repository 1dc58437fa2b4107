"""Enhanced RTMP (the FourCC extension): HEVC, AV1 and Opus pass from publisher to
players unchanged, their sequence headers are cached like AVC/AAC ones (a player who
joins late gets them first, then the GOP from the last keyframe), and the connect
result echoes the client's fourCcList. Debian's ffmpeg 5.1 cannot publish E-RTMP, so
the publisher here is the wire-level client sending hand-built E-RTMP tag bodies."""

import os
import struct

import rtmp_client
from conftest import HOST, T
from rtmp_client import RtmpClient


def video_tag(fourcc, frame_type, packet_type, data, cts=None):
    """E-RTMP video body: IsExHeader | FrameType(3) | PacketType(4), FourCC, [si24 cts], data."""
    head = bytes([0x80 | (frame_type << 4) | packet_type]) + fourcc
    if cts is not None:
        head += struct.pack(">i", cts)[1:]
    return head + data


def audio_tag(fourcc, packet_type, data):
    """E-RTMP audio body: SoundFormat 9 (ExHeader) | AudioPacketType, FourCC, data."""
    return bytes([0x90 | packet_type]) + fourcc + data


def frames_for(codec):
    """(video config, [(keyframe?, body)]) for hvc1 (CodedFrames with cts) or av01 (CodedFramesX)."""
    config = video_tag(codec, 1, 0, b"CFG-" + codec + os.urandom(24))
    out = []
    for i in range(30):
        key = i % 10 == 0
        payload = os.urandom(300 + 40 * i)
        if codec == b"hvc1":
            out.append((key, video_tag(codec, 1 if key else 2, 1, payload, cts=40)))
        else:
            out.append((key, video_tag(codec, 1 if key else 2, 3, payload)))
    return config, out


def sig(m):
    return (m.size, m.crc)


def run_codec(sluice, codec, stream):
    opus_config = audio_tag(b"Opus", 0, b"OpusHead" + bytes([1, 2, 0x38, 1, 0x80, 0xBB, 0, 0, 0, 0, 0]))
    vconf, frames = frames_for(codec)
    early, _ = rtmp_client.open_player(HOST, sluice.port, "live", stream, timeout=T(5),
                                       name="early", keep_payload=True)
    pub, sid = rtmp_client.open_publisher(HOST, sluice.port, "live", stream, timeout=T(5))
    late = None
    try:
        pub.send_video(sid, 0, vconf)
        pub.send_audio(sid, 0, opus_config)
        sent = []
        for i, (key, body) in enumerate(frames[:25]):
            ts = 40 * i
            pub.send_video(sid, ts, body)
            opus = audio_tag(b"Opus", 1, os.urandom(60 + i))
            pub.send_audio(sid, ts + 5, opus)
            sent.append(("V", key, body))
            sent.append(("A", False, opus))
        pub.sync(T(5))
        # The early player got every message byte for byte, configs included.
        early.wait_for(lambda: sum(1 for m in early.media if m.is_video or m.is_audio) >= 2 + len(sent),
                       T(5), "all media at the early player")
        with early._cv:
            got = [m for m in early.media if m.is_video or m.is_audio]
        assert got[0].data == vconf or got[1].data == vconf, "video sequence start not relayed unchanged"
        assert opus_config in (got[0].data, got[1].data), "Opus sequence start not relayed unchanged"
        assert [m.data for m in got[2:2 + len(sent)]] == [b for _, _, b in sent], \
            "E-RTMP frames were not relayed byte for byte"
        # A late player: cached configs first, then the GOP from the last keyframe (frame 20).
        late, _ = rtmp_client.open_player(HOST, sluice.port, "live", stream, timeout=T(5),
                                          name="late", keep_payload=True)
        late.wait_for(lambda: sum(1 for m in late.media if m.is_video) >= 1 + 5, T(5),
                      "configs and the cached GOP at the late player")
        with late._cv:
            lv = [m for m in late.media if m.is_video]
            la = [m for m in late.media if m.is_audio]
        assert lv[0].data == vconf, "the late player did not start with the cached %s config" % codec
        assert la and la[0].data == opus_config, "the late player did not get the cached Opus config"
        assert lv[1].data == frames[20][1], "the late player did not start on the last keyframe"
        assert lv[1].keyframe
        assert [m.data for m in lv[1:6]] == [b for _, b in frames[20:25]]
    finally:
        pub.close()
        early.close()
        if late:
            late.close()


def test_hevc_and_opus_pass_through_with_cached_configs(sluice):
    run_codec(sluice, b"hvc1", "hevc1")


def test_av1_and_opus_pass_through_with_cached_configs(sluice):
    run_codec(sluice, b"av01", "av1a")


def test_connect_echoes_fourcc_list(sluice):
    c = RtmpClient(HOST, sluice.port, timeout=T(5), name="fourcc")
    try:
        r = c.connect("live", extra={"fourCcList": ["hvc1", "av01", "Opus"]})
        assert r.ok, r
        assert list(r.info.get("fourCcList", [])) == ["hvc1", "av01", "Opus"], r.info
    finally:
        c.close()


def test_a_lying_hevc_record_does_not_stall_the_server(sluice):
    """An hvcC whose counts lie (255 arrays of 65535 empty NAL units, in 32 bytes) is
    refused before libavcodec's filter sees it: FFmpeg 5.1 trusted the counts and grew a
    buffer 4 bytes at a time on the event loop. The server keeps answering, and the
    players still get the stream byte for byte."""
    liar = bytearray(32)
    liar[0] = 1
    liar[22] = 255
    liar[23:26] = b"\x20\xff\xff"
    vconf = video_tag(b"hvc1", 1, 0, bytes(liar))
    pub, sid = rtmp_client.open_publisher(HOST, sluice.port, "live", "liar1", timeout=T(5))
    player, _ = rtmp_client.open_player(HOST, sluice.port, "live", "liar1", timeout=T(5),
                                        name="player", keep_payload=True)
    try:
        pub.send_video(sid, 0, vconf)
        key = video_tag(b"hvc1", 1, 1, b"\x00\x00\x00\x02\x26\x01", cts=0)
        for i in range(3):
            pub.send_video(sid, 40 * i, key)
        pub.sync(T(5))  # a round trip after the keyframes: the loop is not stuck
        other, _ = rtmp_client.open_player(HOST, sluice.port, "live", "liar1", timeout=T(5),
                                           name="other")
        other.close()
        player.wait_for(lambda: sum(1 for m in player.media if m.is_video) >= 4, T(5),
                        "config and frames at the player")
        sluice.wait_log(r"hls: cannot start the muxer", T(5))
    finally:
        pub.close()
        player.close()

