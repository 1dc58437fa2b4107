"""The store (src/app/store.c, docs/internals/STORE.md) end to end:
  - a server upgraded in place adopts a sluice.db written before the store
    (no schema_versions table): undelivered webhook rows are delivered with
    their old ids, the recordings catalog and the upload queue keep their rows,
    and each module's schema is recorded at version 1;
  - the process holds one SQLite connection to sluice.db, however many
    modules and webhook endpoints use it (before: one per sender, the writer,
    the recorder, the uploader).
"""
import os
import sqlite3

from conftest import T, free_port, wait_until
from test_webhooks import Receiver, SECRET, hook_config, rtmp_session

# The schemas as every sluice before the store created them.
OLD_SCHEMA = """
CREATE TABLE webhook_deliveries (
 seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, event TEXT NOT NULL,
 endpoint TEXT NOT NULL, okey TEXT NOT NULL, body TEXT NOT NULL,
 state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
 last_status INTEGER, last_error TEXT, created INTEGER NOT NULL,
 next_attempt INTEGER NOT NULL, delivered_at INTEGER);
CREATE INDEX webhook_deliveries_open ON webhook_deliveries (endpoint, okey, seq)
 WHERE state <> 'delivered';
CREATE INDEX webhook_deliveries_done ON webhook_deliveries (delivered_at)
 WHERE state = 'delivered';
CREATE TABLE webhook_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE upload_queue (
 id INTEGER PRIMARY KEY AUTOINCREMENT, file TEXT NOT NULL, key TEXT NOT NULL,
 app TEXT, stream TEXT, state TEXT NOT NULL DEFAULT 'pending',
 attempts INTEGER NOT NULL DEFAULT 0, next_attempt INTEGER NOT NULL, last_error TEXT,
 created INTEGER NOT NULL, done_at INTEGER);
CREATE INDEX upload_queue_due ON upload_queue (next_attempt) WHERE state = 'pending';
CREATE TABLE recordings (
 id INTEGER PRIMARY KEY AUTOINCREMENT, app TEXT NOT NULL, stream TEXT NOT NULL,
 file TEXT NOT NULL, name TEXT NOT NULL, start INTEGER NOT NULL, end INTEGER,
 duration INTEGER, size INTEGER, codecs TEXT, state TEXT NOT NULL, upload_state TEXT);
CREATE INDEX recordings_state ON recordings (state);
"""


def make_old_db(data_dir, endpoint):
    data_dir.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(str(data_dir / "sluice.db"))
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.executescript(OLD_SCHEMA)
        for i in range(3):
            body = '{"event":"stream-published","id":"old-%d-0","guid":"live/up%d"}' % (40 + i, i)
            con.execute("INSERT INTO webhook_deliveries (id, event, endpoint, okey, body, created,"
                        " next_attempt) VALUES (?, 'stream-published', ?, ?, ?, 1, 1)",
                        ("old-%d-0" % (40 + i), endpoint, "live/up%d" % i, body))
        con.execute("INSERT INTO webhook_meta VALUES ('event_seq', 42)")
        con.execute("INSERT INTO recordings (app, stream, file, name, start, end, duration, size,"
                    " codecs, state, upload_state) VALUES ('live', 'old', ?, 'old.flv', 1, 2,"
                    " 1234, 99, 'h264,aac', 'done', 'done')",
                    (str(data_dir / "live" / "streams" / "old.flv"),))
        con.execute("INSERT INTO upload_queue (file, key, app, stream, state, next_attempt,"
                    " created, done_at) VALUES ('/x/old.flv', 'live/streams/old.flv', 'live',"
                    " 'old', 'done', 1, 1, 2)")
        con.commit()
    finally:
        con.close()


def read(db_path, sql):
    con = sqlite3.connect(str(db_path), timeout=T(5))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_upgrade_in_place_keeps_outbox_catalog_queue(sluice_factory, tmp_path):
    rec = Receiver(secret=SECRET).start()
    try:
        data_dir = tmp_path / "olddata"
        make_old_db(data_dir, rec.url)
        http_port = free_port()
        srv = sluice_factory(config=hook_config([rec.url], http_port),
                             env={"SLUICE_SERVER_DATA_DIR": str(data_dir)})
        got = rec.wait_events(lambda b: b["id"].startswith("old-"), 3, T(10),
                              "the 3 deliveries written by the old server")
        assert sorted(b["id"] for b in got) == ["old-40-0", "old-41-0", "old-42-0"]
        srv.wait_log(r"3 undelivered deliveries in the outbox are due again", T(5))
        db = data_dir / "sluice.db"
        versions = dict(read(db, "SELECT module, version FROM schema_versions"))
        assert versions.get("webhooks") == 1 and versions.get("recorder") == 1, versions
        # New events continue the old sequence (webhook_meta was kept).
        rtmp_session(srv.port, "live", "new1")
        got = rec.wait_events(lambda b: not b["id"].startswith("old-"), 4, T(10), "4 new events")
        assert min(b["event_seq"] for b in got) > 42
        rows = read(db, "SELECT stream, state, duration, upload_state FROM recordings")
        assert ("old", "done", 1234, "done") in rows
        assert read(db, "SELECT key, state FROM upload_queue") == [("live/streams/old.flv", "done")]
    finally:
        rec.stop()


def open_db_fds(pid, name="sluice.db"):
    """How many of the process's descriptors are the database file itself."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.endswith("/" + name):
            n += 1
    return n


def test_one_connection_for_every_module(sluice_factory):
    recs = [Receiver(secret=SECRET).start() for _ in range(3)]
    try:
        http_port = free_port()
        srv = sluice_factory(config=hook_config([r.url for r in recs], http_port))
        rtmp_session(srv.port, "live", "fds1")
        for r in recs:
            r.wait_events(lambda b: True, 4, T(10), "4 events at each endpoint")
        # Writer, three senders and the recorder used to hold five connections.
        assert open_db_fds(srv.proc.pid) == 1
        assert open_db_fds(srv.proc.pid, "sluice.db-wal") == 1
    finally:
        for r in recs:
            r.stop()
