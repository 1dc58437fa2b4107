<?php
// Part 2: the webhook receiver (docs/integration/webhooks.md).
//
// sluice POSTs one JSON event per delivery, signed when `webhooks.secret` is set:
//   X-Sluice-Timestamp: <unix seconds of this attempt>
//   X-Sluice-Signature: sha256=hex(HMAC-SHA256(secret, timestamp + "." + raw body))
//   X-Sluice-Delivery:  <delivery id, the same on every retry>
//
// Deliveries are at least once: the same delivery can come again (a retry after a lost
// answer, a restart, an operator's redeliver). We store each delivery id once (SQLite,
// INSERT OR IGNORE on the primary key) and answer 2xx to duplicates too, so sluice stops
// retrying them.

require_once __DIR__ . '/store.php';

const WEBHOOK_TOLERANCE_S = 300; // refuse timestamps further than this from our clock (replays)

// True when $signature is sluice's HMAC of $timestamp . "." . $body (the raw bytes) and
// the timestamp is fresh.
function webhook_verify(string $secret, string $timestamp, string $signature, string $body, ?int $now = null): bool
{
    if ($secret === '' || !ctype_digit($timestamp)) {
        return false;
    }
    if (abs(($now ?? time()) - (int)$timestamp) > WEBHOOK_TOLERANCE_S) {
        return false;
    }
    $want = 'sha256=' . hash_hmac('sha256', $timestamp . '.' . $body, $secret);
    return hash_equals($want, $signature);
}

// POST /webhook, with the raw body -> [HTTP status, JSON answer]
function webhook_receive(string $body): array
{
    $ok = webhook_verify((string)getenv('WEBHOOK_SECRET'), $_SERVER['HTTP_X_SLUICE_TIMESTAMP'] ?? '',
                         $_SERVER['HTTP_X_SLUICE_SIGNATURE'] ?? '', $body);
    if (!$ok) {
        return [401, ['error' => 'bad signature']];
    }
    $event = json_decode($body, true);
    if (!is_array($event) || !is_string($event['id'] ?? null) || !is_string($event['event'] ?? null)) {
        return [400, ['error' => 'not a sluice event']];
    }
    $st = db()->prepare('INSERT OR IGNORE INTO events (id, event, guid, received_at, body)
                         VALUES (?, ?, ?, ?, ?)');
    $st->execute([$event['id'], $event['event'], $event['guid'] ?? null,
                  (int)(microtime(true) * 1000), $body]);
    $stored = $st->rowCount() === 1;
    error_log(sprintf('webhook: %s %s %s%s', $event['id'], $event['event'], $event['guid'] ?? '',
                      $stored ? '' : ' (duplicate, dropped)'));
    return [200, ['stored' => $stored]]; // any 2xx acknowledges, duplicates too
}
