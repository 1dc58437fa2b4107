<?php
// The SQLite file the examples share (PDO with Debian's php-sqlite3): webhook events and
// the admissions the validator answered yes to. php -S runs each request afresh, so state
// that must outlive a request lives here.

function db(): PDO
{
    static $pdo = null;
    if ($pdo === null) {
        $pdo = new PDO('sqlite:' . (getenv('DB') ?: __DIR__ . '/events.sqlite'));
        $pdo->setAttribute(PDO::ATTR_ERRMODE, PDO::ERRMODE_EXCEPTION);
        $pdo->exec('PRAGMA busy_timeout = 5000');
        $pdo->exec('CREATE TABLE IF NOT EXISTS events (
            id TEXT PRIMARY KEY,          -- the delivery id (X-Sluice-Delivery, the payload\'s "id")
            event TEXT NOT NULL,          -- Red5\'s name: stream-published, connection-connect, ...
            guid TEXT,                    -- "app/stream" or the session id
            received_at INTEGER NOT NULL, -- unix ms
            body TEXT NOT NULL            -- the payload as received
        )');
        $pdo->exec('CREATE TABLE IF NOT EXISTS online (
            username TEXT, type TEXT, stream TEXT, count INTEGER,
            PRIMARY KEY (username, type, stream)
        )');
    }
    return $pdo;
}
