"""Part 1: the round-trip auth validator (the business side of sluice's Round Trip
Authentication, Red5 Pro's RoundTripAuthValidator; docs/integration/auth-roundtrip.md).

sluice POSTs, before every publish and every play in an app with `auth_roundtrip: true`:

    {"username": "...", "password": "...", "token": "...",
     "type": "publisher" | "subscriber", "streamID": "stream1"}

to /validateCredentials and admits the client when we answer 2xx {"result": true}; when
an admitted client leaves it POSTs the same body to /invalidateCredentials.
"""

import hmac
import threading

# Your user store. Here: alice may publish and play, bob may only play.
USERS = {
    "alice": {"password": "alice-pass", "publish": True},
    "bob": {"password": "bob-pass", "publish": False},
}

# Who is admitted right now: (username, type, streamID) -> count. A real service keeps
# this in its database (e.g. to limit concurrent viewers per account).
_online = {}
_online_lock = threading.Lock()


def _allowed(body):
    user = USERS.get(str(body.get("username", "")))
    if user is None:
        return False
    # compare_digest: no timing leak about how much of the password matched.
    if not hmac.compare_digest(user["password"].encode(), str(body.get("password", "")).encode()):
        return False
    if body.get("type") == "publisher" and not user["publish"]:
        return False
    return body.get("type") in ("publisher", "subscriber")


def validate(body):
    """POST /validateCredentials -> (HTTP status, JSON answer)."""
    ok = _allowed(body)
    if ok:
        key = (body["username"], body["type"], body["streamID"])
        with _online_lock:
            _online[key] = _online.get(key, 0) + 1
    # Never log the password or the token.
    print("validate: %s %s %s -> %s" % (body.get("username"), body.get("type"),
                                         body.get("streamID"), "yes" if ok else "no"), flush=True)
    return 200, {"result": ok}  # optionally "url": a signed URL sluice keeps on the admission


def invalidate(body):
    """POST /invalidateCredentials: an admitted client left (the answer is only logged)."""
    key = (body.get("username"), body.get("type"), body.get("streamID"))
    with _online_lock:
        if _online.get(key, 0) > 1:
            _online[key] -= 1
        else:
            _online.pop(key, None)
    print("invalidate: %s %s %s" % key, flush=True)
    return 200, {"result": True}


def online():
    """[(username, type, streamID)] admitted right now."""
    with _online_lock:
        return sorted(_online)
