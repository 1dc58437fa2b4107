<?php
// The business server: round-trip auth validator, webhook receiver and RPC handler on one
// port, as a router script for PHP's built-in server (php-cli; behind a real web server,
// point the same paths at this file). Run:
//
//   WEBHOOK_SECRET='same as webhooks.secret' php -S 127.0.0.1:3000 router.php
//
// Environment: WEBHOOK_SECRET, DB (events.sqlite next to this file).

require_once __DIR__ . '/validator.php';
require_once __DIR__ . '/webhook.php';
require_once __DIR__ . '/rpc.php';

const MAX_BODY = 1 << 20; // a hard cap on what we read from anyone

function answer(array $r): void
{
    [$status, $doc] = $r;
    http_response_code($status);
    header('Content-Type: application/json');
    echo json_encode($doc);
}

function route(): array
{
    if ($_SERVER['REQUEST_METHOD'] !== 'POST') {
        return [405, ['error' => 'POST only']];
    }
    if ((int)($_SERVER['CONTENT_LENGTH'] ?? 0) > MAX_BODY) {
        return [413, ['error' => 'body too large']];
    }
    $body = (string)file_get_contents('php://input', false, null, 0, MAX_BODY);
    $path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
    if ($path === '/webhook') {
        return webhook_receive($body); // verified on the raw bytes: parsed after
    }
    $doc = json_decode($body, true);
    if (!is_array($doc) || array_is_list($doc)) {
        return [400, ['error' => 'not a JSON object']];
    }
    switch ($path) {
        case '/validateCredentials':
            return rta_validate($doc);
        case '/invalidateCredentials':
            return rta_invalidate($doc);
        case '/rpc':
            return rpc_handle($doc);
        default:
            return [404, ['error' => 'not found']];
    }
}

answer(route());
