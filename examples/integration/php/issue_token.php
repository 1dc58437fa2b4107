<?php
// Part 4: a JWT issuer for publish/play tokens (HS256; docs/integration/auth-jwt.md).
//
//   JWT_SECRET='same as auth.jwt_secret' php issue_token.php publisher --stream=cam1
//   php issue_token.php subscriber --stream='cam*' --ttl=600 --sub=viewer-42
//
// Prints the token. Clients pass it as `?token=<JWT>` on the stream name
// (rtmp://host/app/cam1?token=...) or as Red5's connect arguments "jwt", "jwt", <token>.
// Optional: JWT_ISSUER / JWT_AUDIENCE (when sluice sets auth.jwt_issuer / jwt_audience).

const JWT_ROLES = ['publisher' => 'red5-publisher', 'subscriber' => 'red5-subscriber'];

function b64url(string $data): string
{
    return rtrim(strtr(base64_encode($data), '+/', '-_'), '=');
}

// A compact HS256 JWS with the claims sluice checks: exp (required), roles
// (red5-publisher may publish and play, red5-subscriber may play), and optionally
// stream (a name or pattern with *), app, red5-room, iss, aud.
function issue_token(string $secret, string $role, array $opt = []): string
{
    if (strlen($secret) < 32) {
        throw new InvalidArgumentException('use a secret of at least 32 bytes');
    }
    if (!isset(JWT_ROLES[$role])) {
        throw new InvalidArgumentException('role is publisher or subscriber');
    }
    $now = $opt['now'] ?? time();
    $claims = ['sub' => $opt['sub'] ?? 'user-1', 'iat' => $now, 'exp' => $now + (int)($opt['ttl'] ?? 3600),
               'roles' => JWT_ROLES[$role]];
    foreach (['stream' => 'stream', 'app' => 'app', 'room' => 'red5-room', 'issuer' => 'iss',
              'audience' => 'aud'] as $k => $claim) {
        if (!empty($opt[$k])) {
            $claims[$claim] = $opt[$k];
        }
    }
    $flags = JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR;
    $signingInput = b64url(json_encode(['alg' => 'HS256', 'typ' => 'JWT'], $flags)) . '.'
                  . b64url(json_encode($claims, $flags));
    return $signingInput . '.' . b64url(hash_hmac('sha256', $signingInput, $secret, true));
}

if (PHP_SAPI === 'cli' && realpath($argv[0] ?? '') === __FILE__) {
    // php issue_token.php <role> [--sub=..] [--stream=..] [--app=..] [--room=..] [--ttl=..]
    $opt = ['issuer' => getenv('JWT_ISSUER') ?: null, 'audience' => getenv('JWT_AUDIENCE') ?: null];
    $role = '';
    foreach (array_slice($argv, 1) as $arg) {
        if (preg_match('/^--(sub|stream|app|room|ttl)=(.*)$/s', $arg, $m)) {
            $opt[$m[1]] = $m[2];
        } elseif ($role === '' && !str_starts_with($arg, '-')) {
            $role = $arg;
        } else {
            fwrite(STDERR, "usage: php issue_token.php publisher|subscriber [--sub=ID] [--stream=NAME]"
                           . " [--app=APP] [--room=ROOM] [--ttl=SECONDS]\n");
            exit(2);
        }
    }
    try {
        echo issue_token((string)getenv('JWT_SECRET'), $role, $opt), "\n";
    } catch (InvalidArgumentException $e) {
        fwrite(STDERR, 'error: ' . $e->getMessage() . "\n");
        exit(2);
    }
}
