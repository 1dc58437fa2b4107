#!/usr/bin/env python3
"""Part 4: a JWT issuer for publish/play tokens (HS256; docs/integration/auth-jwt.md).

    JWT_SECRET='same as auth.jwt_secret' python3 issue_token.py publisher --stream cam1
    python3 issue_token.py subscriber --stream 'cam*' --ttl 600 --sub viewer-42

Prints the token. Clients pass it as `?token=<JWT>` on the stream name
(rtmp://host/app/cam1?token=...) or as Red5's connect arguments "jwt", "jwt", <token>.
Optional: JWT_ISSUER / JWT_AUDIENCE (when sluice sets auth.jwt_issuer / jwt_audience).

Standard library only; with Debian's python3-jwt the same token is
jwt.encode(claims, secret, algorithm="HS256").
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time

ROLES = {"publisher": "red5-publisher", "subscriber": "red5-subscriber"}


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def issue_token(secret, role, sub, stream=None, app=None, room=None, ttl=3600,
                issuer=None, audience=None, now=None):
    """A compact HS256 JWS with the claims sluice checks:
    exp (required), roles (red5-publisher may publish and play, red5-subscriber may
    play), and optionally stream (a name or pattern with *), app, red5-room, iss, aud."""
    if len(secret) < 32:
        raise ValueError("use a secret of at least 32 bytes")
    now = int(time.time()) if now is None else now
    claims = {"sub": sub, "iat": now, "exp": now + ttl, "roles": ROLES[role]}
    if stream:
        claims["stream"] = stream
    if app:
        claims["app"] = app
    if room:
        claims["red5-room"] = room
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = "%s.%s" % (_b64url(json.dumps(header, separators=(",", ":")).encode()),
                               _b64url(json.dumps(claims, separators=(",", ":")).encode()))
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64url(sig)


def main(argv):
    p = argparse.ArgumentParser(description="Mint a sluice publish/play token (HS256).")
    p.add_argument("role", choices=sorted(ROLES))
    p.add_argument("--sub", default="user-1", help="who the token is for (logged by sluice)")
    p.add_argument("--stream", help="stream name or pattern, e.g. cam1 or 'cam*'")
    p.add_argument("--app", help="the app, e.g. live")
    p.add_argument("--room", help="red5-room: the stream must be in this room")
    p.add_argument("--ttl", type=int, default=3600, help="seconds until exp")
    a = p.parse_args(argv[1:])
    secret = os.environ.get("JWT_SECRET", "")
    try:
        print(issue_token(secret, a.role, a.sub, a.stream, a.app, a.room, a.ttl,
                          os.environ.get("JWT_ISSUER"), os.environ.get("JWT_AUDIENCE")))
    except ValueError as e:
        print("error: JWT_SECRET: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
