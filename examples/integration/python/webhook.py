"""Part 2: the webhook receiver (docs/integration/webhooks.md).

sluice POSTs one JSON event per delivery, signed when `webhooks.secret` is set:

    X-Sluice-Timestamp: <unix seconds of this attempt>
    X-Sluice-Signature: sha256=hex(HMAC-SHA256(secret, timestamp + "." + raw body))
    X-Sluice-Delivery:  <delivery id, the same on every retry>

Deliveries are at least once: the same delivery can come again (a retry after a lost
answer, a restart, an operator's redeliver). We store each delivery id once (SQLite,
INSERT OR IGNORE on the primary key) and answer 2xx to duplicates too, so sluice stops
retrying them.
"""

import hashlib
import hmac
import json
import sqlite3
import threading
import time

TOLERANCE_S = 300  # refuse timestamps further than this from our clock (replays)

SCHEMA = """CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,          -- the delivery id (X-Sluice-Delivery, the payload's "id")
    event TEXT NOT NULL,          -- Red5's name: stream-published, connection-connect, ...
    guid TEXT,                    -- "app/stream" or the session id
    received_at INTEGER NOT NULL, -- unix ms
    body TEXT NOT NULL            -- the payload as received
)"""


def verify(secret, timestamp, signature, body, now=None):
    """True when signature is sluice's HMAC of timestamp + "." + body (raw bytes) and
    the timestamp is fresh."""
    if not secret or not timestamp.isdigit():
        return False
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > TOLERANCE_S:
        return False
    want = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body,
                                hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, signature)


class Store:
    """The events table in one SQLite file, shared by the server's threads."""

    def __init__(self, path):
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(SCHEMA)
        self.db.commit()
        self.lock = threading.Lock()

    def add(self, event, raw):
        """Stores the event; False when its id was already stored (a duplicate)."""
        with self.lock:
            cur = self.db.execute(
                "INSERT OR IGNORE INTO events (id, event, guid, received_at, body) "
                "VALUES (?, ?, ?, ?, ?)",
                (event["id"], event["event"], event.get("guid"), int(time.time() * 1000),
                 raw.decode()))
            self.db.commit()
            return cur.rowcount == 1


def receive(store, secret, headers, body):
    """POST /webhook -> (HTTP status, JSON answer)."""
    if not verify(secret, headers.get("X-Sluice-Timestamp", ""),
                  headers.get("X-Sluice-Signature", ""), body):
        return 401, {"error": "bad signature"}
    try:
        event = json.loads(body)
        event["id"], event["event"]
    except (ValueError, KeyError, TypeError):
        return 400, {"error": "not a sluice event"}
    stored = store.add(event, body)
    print("webhook: %s %s %s%s" % (event["id"], event["event"], event.get("guid"),
                                   "" if stored else " (duplicate, dropped)"), flush=True)
    return 200, {"stored": stored}  # any 2xx acknowledges, duplicates too
