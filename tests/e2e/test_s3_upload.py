"""Cloud upload of recordings (src/modules/s3_upload) against a real S3-compatible
server: s3rver (tests/s3, installed with `cd tests/s3 && npm ci`), which checks
SigV4 signatures with its default credentials S3RVER/S3RVER.

Covers: a single PUT, a multipart upload (file over s3.part_size), the upload
verified and the catalog updated, upload_done / upload_failed events, the store
down then up (retried with backoff, across a sluice restart: nothing lost), and
delete-after-upload.
"""

import pathlib
import re
import shutil
import signal
import sqlite3
import subprocess

import pytest

from api_helpers import EventReader, start_api_server
import time

from conftest import HOST, T, free_port, port_open, wait_until
from test_recording import publish_for, rec_path, wait_saved

S3_DIR = pathlib.Path(__file__).resolve().parent.parent / "s3"
S3RVER = S3_DIR / "node_modules" / "s3rver" / "bin" / "s3rver.js"
BUCKET = "recordings"


class S3rver:
    def __init__(self, tmp_path):
        self.port = free_port()
        self.dir = tmp_path / "s3data"
        self.dir.mkdir()
        self.log = tmp_path / "s3rver.log"
        self.proc = None

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["node", str(S3RVER), "-d", str(self.dir), "-a", HOST, "-p", str(self.port),
                 "--configure-bucket", BUCKET], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)
        wait_until(lambda: port_open(self.port), T(20), message="s3rver on %d" % self.port)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(T(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def object_bytes(self, key):
        """The stored object's bytes (s3rver keeps them as <key>._S3rver_object), or None."""
        p = self.dir / BUCKET / (key + "._S3rver_object")
        return p.read_bytes() if p.exists() else None

    @property
    def endpoint(self):
        return "http://%s:%d" % (HOST, self.port)


@pytest.fixture
def s3(tmp_path):
    if shutil.which("node") is None or not S3RVER.exists():
        pytest.skip("s3rver not installed (cd tests/s3 && npm ci)")
    srv = S3rver(tmp_path)
    yield srv
    srv.stop()


def s3_env(s3, **extra):
    env = {"SLUICE_S3_ENDPOINT": s3.endpoint, "SLUICE_S3_BUCKET": BUCKET,
           "SLUICE_S3_ACCESS_KEY": "S3RVER", "SLUICE_S3_SECRET_KEY": "S3RVER",
           "SLUICE_S3_PART_SIZE": "5MB", "SLUICE_S3_RETRY_MAX_INTERVAL": "1s"}
    env.update(extra)
    return env


def upload_state(srv, name):
    db = sqlite3.connect(str(srv.data_dir / "sluice.db"))
    try:
        row = db.execute("SELECT upload_state FROM recordings WHERE name = ? ORDER BY id DESC",
                         (name,)).fetchone()
        return row[0] if row else None
    except sqlite3.OperationalError:
        # The recorder creates its tables on its own thread after start: not there yet.
        return None
    finally:
        db.close()


def test_upload_single_and_multipart(s3, sluice_factory, media_tags):
    s3.start()
    srv = start_api_server(sluice_factory, env=s3_env(s3))
    events = EventReader(srv, {"type": "upload_done,upload_failed"})
    try:
        publish_for(srv, "small1", 2, media_tags, kind="record")
        wait_saved(srv, "small1.flv")
        done = events.wait_for(lambda e: e["event"] == "upload_done", T(20), "upload_done")
        assert done["path"] == str(rec_path(srv, "small1.flv"))
        assert s3.object_bytes("live/streams/small1.flv") == rec_path(srv, "small1.flv").read_bytes()
        wait_until(lambda: upload_state(srv, "small1.flv") == "done", T(5), message="catalog")
        # Over 5 MB (s3.part_size): a multipart upload of two parts or more.
        publish_for(srv, "big1", 70, media_tags, kind="record", speed=16.0)
        wait_saved(srv, "big1.flv")
        local = rec_path(srv, "big1.flv").read_bytes()
        assert len(local) > 5 * 1024 * 1024
        events.wait_for(lambda e: e["event"] == "upload_done" and e["stream"] == "big1", T(60),
                        "upload_done of big1")
        assert s3.object_bytes("live/streams/big1.flv") == local
        assert not [e for e in events.snapshot() if e["event"] == "upload_failed"]
        assert "verified" in srv.log_text()
    finally:
        events.close()


def test_store_down_then_up_loses_nothing(s3, sluice_factory, media_tags):
    srv = start_api_server(sluice_factory, env=s3_env(s3))  # s3rver not started yet
    events = EventReader(srv, {"type": "upload_done,upload_failed"})
    try:
        publish_for(srv, "down1", 2, media_tags, kind="record")
        wait_saved(srv, "down1.flv")
        failed = events.wait_for(lambda e: e["event"] == "upload_failed", T(20), "upload_failed")
        assert failed["reason"] and failed["path"].endswith("down1.flv")
    finally:
        events.close()
    # sluice restarts while the store is still down: the queue is in sluice.db.
    assert srv.stop() == 0
    s3.start()
    srv.start()
    srv.wait_log(r"s3: uploaded .*down1\.flv", T(30))
    assert s3.object_bytes("live/streams/down1.flv") == rec_path(srv, "down1.flv").read_bytes()
    assert upload_state(srv, "down1.flv") == "done"


def test_delete_after_upload(s3, sluice_factory, media_tags):
    s3.start()
    srv = start_api_server(sluice_factory,
                           env=s3_env(s3, SLUICE_S3_DELETE_AFTER_UPLOAD="true"))
    publish_for(srv, "del1", 2, media_tags, kind="record")
    wait_saved(srv, "del1.flv")
    srv.wait_log(r"deleted the local copy .*del1\.flv", T(20))
    assert not rec_path(srv, "del1.flv").exists()
    data = s3.object_bytes("live/streams/del1.flv")
    assert data and data[:3] == b"FLV"


def test_store_error_logged_as_code_and_message(s3, sluice_factory, media_tags):
    """The store refuses (a bucket that does not exist): the log has S3's Code and
    Message on one line, not the XML body cut mid-sentence over two lines."""
    s3.start()
    srv = start_api_server(sluice_factory, env=s3_env(s3, SLUICE_S3_BUCKET="no-such-bucket"))
    publish_for(srv, "badkey1", 2, media_tags, kind="record")
    wait_saved(srv, "badkey1.flv")
    m = srv.wait_log(r"s3: upload of \S+badkey1\.flv failed \(attempt 1\): (.*); retrying in",
                     T(20))
    why = m.group(1)
    assert re.search(r"^PUT live/streams/badkey1\.flv: HTTP 404 NoSuchBucket: The specified "
                     r"bucket does not exist\.?$", why), why
    text = srv.log_text()
    assert "<?xml" not in text and "<Error>" not in text and "</Code>" not in text, why


def _has_table(srv, name):
    db = sqlite3.connect(str(srv.data_dir / "sluice.db"), timeout=T(5))
    try:
        return db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        db.close()


def test_queue_unwritable_backs_off(sluice_factory, media_tags):
    """Issue 11 item 4 for uploads: the store is down and the queue cannot record
    the failed attempt (a trigger plays the full disk). The row stays due in the
    database, yet the worker must not retry in a hot loop: it backs off in memory
    and logs the queue failure once. Needs no S3 server (nothing listens)."""
    dead = "http://%s:%d" % (HOST, free_port())
    srv = start_api_server(sluice_factory, env={
        "SLUICE_S3_ENDPOINT": dead, "SLUICE_S3_BUCKET": BUCKET, "SLUICE_S3_ACCESS_KEY": "AK",
        "SLUICE_S3_SECRET_KEY": "SK-e2e-secret", "SLUICE_S3_RETRY_MAX_INTERVAL": "2s"})
    wait_until(lambda: _has_table(srv, "upload_queue"), T(10), 0.05, "the upload queue")
    db = sqlite3.connect(str(srv.data_dir / "sluice.db"), timeout=T(5))
    try:
        db.executescript("CREATE TRIGGER e2e_full BEFORE UPDATE ON upload_queue"
                         " BEGIN SELECT RAISE(FAIL, 'e2e: database or disk is full'); END;")
    finally:
        db.close()
    publish_for(srv, "full1", 2, media_tags, kind="record")
    wait_saved(srv, "full1.flv")
    rx = re.compile(r"s3: upload of \S*full1\.flv failed \(attempt")
    wait_until(lambda: rx.search(srv.log_text()), T(10), 0.05, "a first failed attempt")
    start = len(rx.findall(srv.log_text()))
    t0 = time.monotonic()
    wait_until(lambda: time.monotonic() - t0 >= 4, 5, 0.1, "the 4 s window")
    log = srv.log_text()
    during = len(rx.findall(log)) - start
    assert during <= 10, "%d upload attempts in 4 s while the queue cannot be written" % during
    assert len(re.findall(r"upload queue .* cannot be written", log)) == 1
