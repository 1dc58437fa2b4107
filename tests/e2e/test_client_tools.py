"""The native client's command-line tools against a real sluice: sluice-publish
publishes the generated FLV, sluice-play records it into an FLV that ffprobe
must read as H.264 + AAC, and sluice-bench plays it with several players and
reports its numbers as JSON.

The tools are built beside the sluice binary (clients/c/CMakeLists.txt), so
they are looked up in SLUICE_BIN's directory; a missing tool is a failure
(every build of sluice builds them).
"""

import json
import os
import pathlib
import signal
import subprocess

import pytest

from conftest import (HOST, SANITIZER_PATTERNS, SLUICE_BIN, T, ffprobe_packets, ffprobe_streams,
                      make_cert, port_open, wait_stream_live, wait_until)

TOOLS_DIR = pathlib.Path(SLUICE_BIN).resolve().parent


def tool(name):
    path = TOOLS_DIR / name
    if not os.access(str(path), os.X_OK):
        pytest.fail("%s not built in %s (set SLUICE_BIN to the build's sluice)" % (name, TOOLS_DIR))
    return str(path)


@pytest.fixture
def published(sluice, procs, media_src):
    """sluice-publish -re -loop of the generated FLV on live/tools; yields the server.
    At teardown the publisher must unpublish and exit 0 on SIGINT."""
    p = procs.start([tool("sluice-publish"), "-re", "-loop", str(media_src),
                     sluice.url("live", "tools")], "sluice-publish")
    try:
        wait_stream_live(sluice.port, "live", "tools", T(15))
    except AssertionError:
        raise AssertionError("stream not live; sluice-publish said:\n%s" % procs.log_of(p))
    assert p.poll() is None, "sluice-publish exited early:\n%s" % procs.log_of(p)
    yield sluice
    rc = procs.stop(p, signal.SIGINT, timeout=T(10))
    log = procs.log_of(p)
    assert rc == 0, "sluice-publish exited with %s on SIGINT:\n%s" % (rc, log[-2000:])
    assert not [x for x in SANITIZER_PATTERNS if x in log], log[-4000:]


def test_publish_and_play_to_flv(published, tmp_path):
    out = tmp_path / "played.flv"
    cmd = [tool("sluice-play"), "-t", "3", "-o", str(out), published.url("live", "tools")]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=T(30))
    assert p.returncode == 0, "sluice-play failed (%d): %s" % (p.returncode, p.stderr[-2000:])
    assert "NetStream.Play.Start" in p.stderr, p.stderr[-2000:]

    streams = {s["codec_type"]: s for s in ffprobe_streams(out)}
    assert streams.get("video", {}).get("codec_name") == "h264", streams
    assert streams.get("audio", {}).get("codec_name") == "aac", streams
    assert (streams["video"].get("width"), streams["video"].get("height")) == (640, 360)

    video = ffprobe_packets(out, "v")
    assert video, "no video packets in the recording"
    assert "K" in video[0]["flags"], "the recording does not start on a keyframe: %r" % video[:3]
    span = float(video[-1]["dts_time"]) - float(video[0]["dts_time"])
    assert 2.5 <= span <= 4.0, "recorded %.2f s of video for -t 3" % span
    assert ffprobe_packets(out, "a"), "no audio packets in the recording"


def test_publish_from_stdin_pipe(sluice, procs, media_src, tmp_path):
    """FLV arriving on a pipe (as from `ffmpeg -f flv -`) is read without blocking
    and paced by -re; what a player records is the same media."""
    cat = subprocess.Popen(["cat", str(media_src)], stdout=subprocess.PIPE)
    try:
        pub = procs.start([tool("sluice-publish"), "-re", "-", sluice.url("live", "piped")],
                          "sluice-publish-pipe", stdin=cat.stdout)
        cat.stdout.close()  # the publisher holds the read end now
        wait_stream_live(sluice.port, "live", "piped", T(15))
        out = tmp_path / "piped.flv"
        p = subprocess.run([tool("sluice-play"), "-q", "-t", "1", "-o", str(out),
                            sluice.url("live", "piped")], capture_output=True, text=True,
                           timeout=T(30))
        assert p.returncode == 0, p.stderr[-2000:]
        streams = {s["codec_type"]: s["codec_name"] for s in ffprobe_streams(out)}
        assert streams == {"video": "h264", "audio": "aac"}, streams
        assert procs.stop(pub, signal.SIGINT, timeout=T(10)) == 0, procs.log_of(pub)
    finally:
        cat.kill()
        cat.wait()


def test_play_to_stdout(published):
    cmd = [tool("sluice-play"), "-q", "-t", "1", published.url("live", "tools")]
    p = subprocess.run(cmd, capture_output=True, timeout=T(30))
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout[:3] == b"FLV" and len(p.stdout) > 20000, "stdout: %d bytes" % len(p.stdout)


def test_bench_five_players(published):
    cmd = [tool("sluice-bench"), "-n", "5", "-d", "5", published.url("live", "tools")]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=T(60))
    assert p.returncode == 0, "sluice-bench failed (%d): %s" % (p.returncode, p.stderr[-2000:])
    r = json.loads(p.stdout)
    assert r["players"] == 5
    assert r["sessions"]["ok"] == 5, r["sessions"]
    assert r["sessions"]["failed"] == 0, r["sessions"]
    assert r["first_keyframe_ms"]["count"] == 5
    assert r["first_keyframe_ms"]["p95"] < 1000, r["first_keyframe_ms"]
    assert r["mbps_received"] > 1.0, r
    assert r["cpu_s"]["total"] >= 0


@pytest.mark.exclusive
def test_bench_own_publisher_measures_lag(sluice, media_src):
    """With its own publisher (-m 1) the bench measures lag from the SEI it embeds,
    and spread over two processes the results merge."""
    cmd = [tool("sluice-bench"), "-n", "4", "-m", "1", "--flv", str(media_src), "-d", "3",
           "--warmup-ms", "500", "--procs", "2", sluice.url("live", "benchlag")]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=T(60))
    assert p.returncode == 0, "sluice-bench failed (%d): %s" % (p.returncode, p.stderr[-2000:])
    r = json.loads(p.stdout)
    assert r["sessions"]["ok"] == 4, r["sessions"]
    assert r["procs"] == 2
    assert r["drop_detection"] == "sei", r
    assert r["lag_live_ms"] is not None and r["lag_live_ms"]["count"] > 0, r
    assert r["lag_live_ms"]["p95"] < T(500), r["lag_live_ms"]
    assert r["frames_dropped"] == 0, r


def test_bench_counting_players_receive_what_sampled_players_do(sluice, media_src):
    """--sample 3: one player in three parses, the others count bytes through the kernel's
    discard path after their first keyframe. They must stay playing (acknowledging) to the
    end and receive as much per player as the parsing ones; a counting player that stopped
    reading would fall behind, and one that stopped counting would show too few bytes."""
    cmd = [tool("sluice-bench"), "-n", "6", "-m", "1", "--flv", str(media_src), "-d", "4",
           "--warmup-ms", "500", "--procs", "2", "--sample", "3", "--lowat", "4096",
           sluice.url("live", "benchcount")]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=T(60))
    assert p.returncode == 0, "sluice-bench failed (%d): %s" % (p.returncode, p.stderr[-2000:])
    r = json.loads(p.stdout)
    assert r["sessions"] == {"ok": 6, "failed": 0, "reasons": {}}, r["sessions"]
    assert (r["sampled_players"], r["counting_players"], r["counting_failed"]) == (2, 4, 0), r
    assert r["first_keyframe_ms"]["count"] == 6, r  # every player got its keyframe parsed
    per_counting = r["bytes_counting"] / 4
    per_sampled = (r["bytes_received"] - r["bytes_counting"]) / 2
    assert per_sampled > 100000, r
    assert 0.8 < per_counting / per_sampled < 1.25, (per_counting, per_sampled, r)


# ----------------------------------------------------------------------------
# rtmps:// (RTMP over TLS to sluice's RTMPS listener)
# ----------------------------------------------------------------------------

@pytest.fixture
def tls_server(sluice_factory, tmp_path):
    """A sluice with RTMPS on (self-signed certificate for localhost / 127.0.0.1)."""
    from test_rtmps import tls_port_of
    cert, key = make_cert(tmp_path)
    srv = sluice_factory(config={"rtmp": {"tls_cert": str(cert), "tls_key": str(key)}})
    srv.tls_port = tls_port_of(srv)
    srv.cert = cert
    wait_until(lambda: port_open(srv.tls_port), T(10), message="the RTMPS port")
    return srv


def rtmps(srv, app, stream):
    return "rtmps://%s:%d/%s/%s" % (HOST, srv.tls_port, app, stream)


@pytest.fixture
def tls_published(tls_server, procs, media_src):
    """sluice-publish -re -loop over rtmps:// (--ca the server's certificate) on
    live/tlspub; the stream must be live for a plain RTMP player."""
    srv = tls_server
    p = procs.start([tool("sluice-publish"), "-re", "-loop", "--ca", str(srv.cert),
                     str(media_src), rtmps(srv, "live", "tlspub")], "sluice-publish-tls")
    try:
        wait_stream_live(srv.port, "live", "tlspub", T(15))
    except AssertionError:
        raise AssertionError("stream not live; sluice-publish said:\n%s" % procs.log_of(p))
    yield srv
    rc = procs.stop(p, signal.SIGINT, timeout=T(10))
    log = procs.log_of(p)
    assert rc == 0, "sluice-publish exited with %s on SIGINT:\n%s" % (rc, log[-2000:])
    assert not [x for x in SANITIZER_PATTERNS if x in log], log[-4000:]


def test_publish_over_rtmps_plays_over_rtmp(tls_published):
    streams = {s["codec_type"]: s["codec_name"]
               for s in ffprobe_streams(tls_published.url("live", "tlspub"))}
    assert streams.get("video") == "h264" and streams.get("audio") == "aac", streams


def test_play_over_rtmps(tls_published, tmp_path):
    out = tmp_path / "tls-played.flv"
    cmd = [tool("sluice-play"), "-t", "2", "-o", str(out), "--ca", str(tls_published.cert),
           rtmps(tls_published, "live", "tlspub")]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=T(30))
    assert p.returncode == 0, "sluice-play failed (%d): %s" % (p.returncode, p.stderr[-2000:])
    assert "NetStream.Play.Start" in p.stderr, p.stderr[-2000:]
    assert len(ffprobe_packets(out, "v")) >= 25, "too few video frames over rtmps"
    streams = {s["codec_type"]: s["codec_name"] for s in ffprobe_streams(out)}
    assert streams == {"video": "h264", "audio": "aac"}, streams


def test_rtmps_wrong_ca_fails_clearly(tls_published, tmp_path):
    other, _ = make_cert(tmp_path, "other")
    url = rtmps(tls_published, "live", "tlspub")
    p = subprocess.run([tool("sluice-play"), "-t", "2", "-timeout", "5000", "-o", os.devnull,
                        "--ca", str(other), url], capture_output=True, text=True, timeout=T(30))
    assert p.returncode != 0, p.stderr[-2000:]
    assert "NetConnection.Connect.Failed" in p.stderr, p.stderr[-2000:]
    assert "certificate verify failed" in p.stderr, p.stderr[-2000:]
    # The right CA but a name the certificate does not hold (127.0.0.2 reaches the
    # same listener; the certificate says localhost / 127.0.0.1).
    p = subprocess.run([tool("sluice-play"), "-t", "1", "-timeout", "5000", "-o", os.devnull,
                        "--ca", str(tls_published.cert),
                        "rtmps://127.0.0.2:%d/live/tlspub" % tls_published.tls_port],
                       capture_output=True, text=True, timeout=T(30))
    assert p.returncode != 0, p.stderr[-2000:]
    assert "IP address mismatch" in p.stderr, p.stderr[-2000:]
    # --insecure skips the check: the same player then plays.
    p = subprocess.run([tool("sluice-play"), "-q", "-t", "1", "-o", os.devnull, "--insecure",
                        url], capture_output=True, text=True, timeout=T(30))
    assert p.returncode == 0, p.stderr[-2000:]


def test_bench_over_rtmps(tls_published):
    cmd = [tool("sluice-bench"), "-n", "3", "-d", "2", "--ca", str(tls_published.cert),
           rtmps(tls_published, "live", "tlspub")]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=T(60))
    assert p.returncode == 0, "sluice-bench failed (%d): %s" % (p.returncode, p.stderr[-2000:])
    r = json.loads(p.stdout)
    assert r["sessions"]["ok"] == 3 and r["sessions"]["failed"] == 0, r["sessions"]
    assert r["mbps_received"] > 0.5, r
