// Part 5: the RPC handler for the business-URL form of NetConnection.call
// (docs/integration/rpc.md). With `apps.<app>.rpc_url` set, sluice POSTs every call that
// no in-server handler takes:
//   {"app": "live", "session": "S9YD7FMFXK9WG", "method": "sum",
//    "params": [1, 2, 3], "username": "alice"}
// A 2xx answer with a JSON body is the result (the client's _result); anything else fails
// the call (its _error). Calls are never retried, so act on each one exactly once.
"use strict";

const METHODS = {
  sum(call) {
    if (!call.params.every((x) => typeof x === "number")) throw new Error("sum takes numbers");
    return { sum: call.params.reduce((a, b) => a + b, 0) };
  },
  whoami(call) {
    return { app: call.app ?? null, session: call.session ?? null, username: call.username ?? null };
  },
};

// POST /rpc -> [HTTP status, JSON result]
function handle(call) {
  if (!Object.hasOwn(METHODS, call.method)) {
    return [404, { error: "unknown method" }]; // the client gets "... answered HTTP 404."
  }
  if (!Array.isArray(call.params)) return [400, { error: "params must be an array" }];
  let result;
  try {
    result = METHODS[call.method](call);
  } catch (e) {
    return [400, { error: e.message }];
  }
  console.log(`rpc: ${call.method} from ${call.session} -> ${JSON.stringify(result)}`);
  return [200, result];
}

module.exports = { handle };
