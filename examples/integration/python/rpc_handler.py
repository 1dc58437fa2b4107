"""Part 5: the RPC handler for the business-URL form of NetConnection.call
(docs/integration/rpc.md). With `apps.<app>.rpc_url` set, sluice POSTs every call that
no in-server handler takes:

    {"app": "live", "session": "S9YD7FMFXK9WG", "method": "sum",
     "params": [1, 2, 3], "username": "alice"}

A 2xx answer with a JSON body is the result (the client's _result); anything else fails
the call (its _error). Calls are never retried, so act on each one exactly once.
"""


def _sum(call):
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in call["params"]):
        raise ValueError("sum takes numbers")
    return {"sum": sum(call["params"])}


def _whoami(call):
    return {"app": call.get("app"), "session": call.get("session"),
            "username": call.get("username")}


METHODS = {"sum": _sum, "whoami": _whoami}


def handle(call):
    """POST /rpc -> (HTTP status, JSON result)."""
    method = METHODS.get(call.get("method"))
    if method is None:
        return 404, {"error": "unknown method"}  # the client gets "... answered HTTP 404."
    if not isinstance(call.get("params"), list):
        return 400, {"error": "params must be an array"}
    try:
        result = method(call)
    except ValueError as e:
        return 400, {"error": str(e)}
    print("rpc: %s from %s -> %s" % (call["method"], call.get("session"), result), flush=True)
    return 200, result
