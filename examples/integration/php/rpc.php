<?php
// Part 5: the RPC handler for the business-URL form of NetConnection.call
// (docs/integration/rpc.md). With `apps.<app>.rpc_url` set, sluice POSTs every call that
// no in-server handler takes:
//   {"app": "live", "session": "S9YD7FMFXK9WG", "method": "sum",
//    "params": [1, 2, 3], "username": "alice"}
// A 2xx answer with a JSON body is the result (the client's _result); anything else fails
// the call (its _error). Calls are never retried, so act on each one exactly once.

function rpc_sum(array $call): array
{
    foreach ($call['params'] as $x) {
        if (!is_int($x) && !is_float($x)) {
            throw new InvalidArgumentException('sum takes numbers');
        }
    }
    return ['sum' => array_sum($call['params'])];
}

function rpc_whoami(array $call): array
{
    return ['app' => $call['app'] ?? null, 'session' => $call['session'] ?? null,
            'username' => $call['username'] ?? null];
}

const RPC_METHODS = ['sum' => 'rpc_sum', 'whoami' => 'rpc_whoami'];

// POST /rpc -> [HTTP status, JSON result]
function rpc_handle(array $call): array
{
    $fn = RPC_METHODS[(string)($call['method'] ?? '')] ?? null;
    if ($fn === null) {
        return [404, ['error' => 'unknown method']]; // the client gets "... answered HTTP 404."
    }
    if (!is_array($call['params'] ?? null) || !array_is_list($call['params'])) {
        return [400, ['error' => 'params must be an array']];
    }
    try {
        $result = $fn($call);
    } catch (InvalidArgumentException $e) {
        return [400, ['error' => $e->getMessage()]];
    }
    error_log(sprintf('rpc: %s from %s -> %s', $call['method'], $call['session'] ?? '-', json_encode($result)));
    return [200, $result];
}
