<?php
// Part 1: the round-trip auth validator (the business side of sluice's Round Trip
// Authentication, Red5 Pro's RoundTripAuthValidator; docs/integration/auth-roundtrip.md).
//
// sluice POSTs, before every publish and every play in an app with `auth_roundtrip: true`:
//   {"username": "...", "password": "...", "token": "...",
//    "type": "publisher" | "subscriber", "streamID": "stream1"}
// to /validateCredentials and admits the client when we answer 2xx {"result": true}; when
// an admitted client leaves it POSTs the same body to /invalidateCredentials.

require_once __DIR__ . '/store.php';

// Your user store. Here: alice may publish and play, bob may only play.
const USERS = [
    'alice' => ['password' => 'alice-pass', 'publish' => true],
    'bob' => ['password' => 'bob-pass', 'publish' => false],
];

function rta_allowed(array $body): bool
{
    $user = USERS[(string)($body['username'] ?? '')] ?? null;
    // hash_equals: no timing leak about how much of the password matched.
    if ($user === null || !hash_equals($user['password'], (string)($body['password'] ?? ''))) {
        return false;
    }
    $type = $body['type'] ?? '';
    if ($type === 'publisher' && !$user['publish']) {
        return false;
    }
    return $type === 'publisher' || $type === 'subscriber';
}

// POST /validateCredentials -> [HTTP status, JSON answer]
function rta_validate(array $body): array
{
    $ok = rta_allowed($body);
    if ($ok) { // who is admitted right now (e.g. to limit concurrent viewers per account)
        db()->prepare('INSERT INTO online VALUES (?, ?, ?, 1)
                       ON CONFLICT (username, type, stream) DO UPDATE SET count = count + 1')
            ->execute([$body['username'], $body['type'], (string)($body['streamID'] ?? '')]);
    }
    // Never log the password or the token.
    error_log(sprintf('validate: %s %s %s -> %s', $body['username'] ?? '', $body['type'] ?? '',
                      $body['streamID'] ?? '', $ok ? 'yes' : 'no'));
    return [200, ['result' => $ok]]; // optionally 'url': a signed URL sluice keeps on the admission
}

// POST /invalidateCredentials: an admitted client left (the answer is only logged).
function rta_invalidate(array $body): array
{
    $key = [(string)($body['username'] ?? ''), (string)($body['type'] ?? ''), (string)($body['streamID'] ?? '')];
    db()->prepare('UPDATE online SET count = count - 1 WHERE username = ? AND type = ? AND stream = ?')
        ->execute($key);
    db()->exec('DELETE FROM online WHERE count <= 0');
    error_log('invalidate: ' . implode(' ', $key));
    return [200, ['result' => true]];
}
