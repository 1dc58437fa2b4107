<?php
// Part 3: a Server API client (docs/openapi.yaml; Red5 Pro's /api/v1 paths and envelope).
//
//   API_URL=http://127.0.0.1:5080 API_TOKEN=... php api_client.php streams live
//   php api_client.php clients live
//   php api_client.php kick live <client id>
//   php api_client.php record-start live stream1 [saveas]
//   php api_client.php record-stop live stream1
//   php api_client.php invoke live <method> '[params as JSON]'
//   php api_client.php invoke-client live <client id> <method> '[params as JSON]'
//
// Prints the answer's `data` as JSON; on an error prints the status and message and exits 1.
// The token goes in the Authorization header, never in the URL (URLs end up in logs).
// PHP's http:// stream wrapper only: no curl extension needed.

class SluiceApiError extends RuntimeException
{
}

class SluiceApi
{
    private string $base;

    public function __construct(string $baseUrl, private string $token)
    {
        $this->base = rtrim($baseUrl, '/') . '/api/v1/';
    }

    private function call(string $method, string $path, ?array $params = null, ?array $body = null): mixed
    {
        $url = $this->base . $path . ($params ? '?' . http_build_query($params) : '');
        $headers = ['Authorization: Bearer ' . $this->token];
        if ($body !== null) {
            $headers[] = 'Content-Type: application/json';
        }
        $ctx = stream_context_create(['http' => [
            'method' => $method,
            'header' => implode("\r\n", $headers),
            'content' => $body === null ? '' : json_encode($body),
            'ignore_errors' => true, // read the error envelope of 4xx/5xx answers too
            'timeout' => 30,
        ]]);
        $text = @file_get_contents($url, false, $ctx);
        if ($text === false) {
            throw new SluiceApiError("cannot reach $this->base");
        }
        // $http_response_header is set by file_get_contents: "HTTP/1.1 200 OK" first.
        $status = (int)explode(' ', $http_response_header[0] ?? 'HTTP/1.1 0')[1];
        $doc = json_decode($text, true);
        if ($status < 200 || $status > 299) {
            throw new SluiceApiError("HTTP $status: " . ($doc['message'] ?? 'error'), $status);
        }
        return $doc['data']; // {status: "success", code: 200, data, timestamp}
    }

    private static function q(string $s): string
    {
        return rawurlencode($s);
    }

    /** Names of the streams being published in $app. */
    public function streams(string $app): array
    {
        return $this->call('GET', 'applications/' . self::q($app) . '/streams');
    }

    /** Connected clients of $app: [{id, remote_address, ...}]. */
    public function clients(string $app): array
    {
        return $this->call('GET', 'applications/' . self::q($app) . '/clients');
    }

    /** Disconnects one client. */
    public function kick(string $app, string $clientId): array
    {
        return $this->call('DELETE', 'applications/' . self::q($app) . '/clients/' . self::q($clientId));
    }

    /** Records the live stream to {data_dir}/{app}/streams/{saveas or stream}.flv. */
    public function startRecord(string $app, string $stream, ?string $saveas = null): array
    {
        return $this->call('GET', 'applications/' . self::q($app) . '/streams/' . self::q($stream)
                           . '/action/startrecord', $saveas ? ['saveas' => $saveas] : null);
    }

    public function stopRecord(string $app, string $stream): array
    {
        return $this->call('GET', 'applications/' . self::q($app) . '/streams/' . self::q($stream)
                           . '/action/stoprecord');
    }

    /** Calls an application method (a server handler or the app's rpc_url). */
    public function invoke(string $app, string $method, array $params = []): mixed
    {
        return $this->call('POST', 'applications/' . self::q($app) . '/invoke', null,
                           ['method' => $method, 'parameters' => $params]);
    }

    /** Calls a method on one client; returns {client, status, value}. */
    public function invokeClient(string $app, string $clientId, string $method, array $params = [],
                                 int $timeoutMs = 5000): array
    {
        return $this->call('POST', 'applications/' . self::q($app) . '/clients/' . self::q($clientId) . '/invoke',
                           null, ['method' => $method, 'params' => $params, 'timeout_ms' => $timeoutMs]);
    }
}

function api_client_main(array $argv): int
{
    $api = new SluiceApi(getenv('API_URL') ?: 'http://127.0.0.1:5080', (string)getenv('API_TOKEN'));
    $json = fn(?string $s) => json_decode($s ?? '[]', true, 64, JSON_THROW_ON_ERROR);
    $commands = [
        'streams' => [1, fn($app) => $api->streams($app)],
        'clients' => [1, fn($app) => $api->clients($app)],
        'kick' => [2, fn($app, $id) => $api->kick($app, $id)],
        'record-start' => [2, fn($app, $stream, $saveas = null) => $api->startRecord($app, $stream, $saveas)],
        'record-stop' => [2, fn($app, $stream) => $api->stopRecord($app, $stream)],
        'invoke' => [2, fn($app, $method, $p = null) => $api->invoke($app, $method, $json($p))],
        'invoke-client' => [3, fn($app, $id, $method, $p = null)
                                => $api->invokeClient($app, $id, $method, $json($p))],
    ];
    $cmd = $argv[1] ?? '';
    $args = array_slice($argv, 2);
    if (!isset($commands[$cmd]) || count($args) < $commands[$cmd][0]) {
        fwrite(STDERR, "usage: php api_client.php "
                       . "streams|clients|kick|record-start|record-stop|invoke|invoke-client ...\n");
        return 2;
    }
    try {
        echo json_encode($commands[$cmd][1](...$args), JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES), "\n";
    } catch (SluiceApiError | JsonException $e) {
        fwrite(STDERR, 'error: ' . $e->getMessage() . "\n");
        return 1;
    }
    return 0;
}

if (PHP_SAPI === 'cli' && realpath($argv[0] ?? '') === __FILE__) {
    exit(api_client_main($argv));
}
