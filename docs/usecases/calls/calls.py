#!/usr/bin/env python3
"""1:1 calls: the business sets up a call between two parties by generating two
unguessable stream names and, for each party, one token to publish its own stream
and one to play the other's. sluice checks the tokens (JWT, HS256) on every
publish and play, so only the two parties can publish and play the call's
streams: a third party holding a valid token of another call is refused.
Walkthrough: docs/usecases/calls.md.

Python 3 standard library + python3-jwt (PyJWT); ffmpeg publishes, sluice-play
and sluice-publish (libsluice-client's tools) play and try to publish.

    calls.py create alice bob     prints the call (stream names, tokens, URLs) as JSON
    calls.py demo                 the whole story against a running sluice: two
                                  calls, each party plays the other, the third
                                  party is refused; prints one JSON line, exits 0
                                  when every check held

The defaults match docs/usecases/calls/sluice.yml.
"""

import argparse
import json
import os
import pathlib
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

import jwt  # PyJWT (Debian: python3-jwt)

APP = "calls"


def log(*args):
    print("calls:", *args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# The business's side: a call is two stream names and four tokens
# ---------------------------------------------------------------------------

def token(cfg, party, stream, action, ttl_s):
    """One right: `party` may `action` ("publish" or "play") the stream `stream`."""
    claims = {"iss": cfg.issuer, "aud": cfg.audience, "sub": party,
              "exp": int(time.time()) + ttl_s, "app": APP, "stream": stream, "action": action,
              "roles": "red5-publisher" if action == "publish" else "red5-subscriber"}
    return jwt.encode(claims, cfg.jwt_secret, algorithm="HS256")


def create_call(cfg, a, b, ttl_s=3600):
    """The call between a and b: each party's stream has a random name nobody can
    guess, and each party gets a publish token for its own stream and a play token
    for the other's. Send each party only its own half."""
    call_id = secrets.token_hex(6)
    streams = {a: "c%s-%s" % (call_id, secrets.token_hex(8)),
               b: "c%s-%s" % (call_id, secrets.token_hex(8))}
    other = {a: b, b: a}
    parties = {}
    for p in (a, b):
        pub = token(cfg, p, streams[p], "publish", ttl_s)
        play = token(cfg, p, streams[other[p]], "play", ttl_s)
        parties[p] = {
            "publish": {"stream": streams[p], "token": pub,
                        "url": "%s/%s/%s?token=%s" % (cfg.rtmp, APP, streams[p], pub)},
            "play": {"stream": streams[other[p]], "token": play,
                     "url": "%s/%s/%s?token=%s" % (cfg.rtmp, APP, streams[other[p]], play)},
        }
    return {"call": call_id, "parties": parties}


# ---------------------------------------------------------------------------
# The demo: real publishers and players
# ---------------------------------------------------------------------------

def find_tool(name, tools_dir):
    """A client tool from --tools, else PATH, else the repository's build folder."""
    here = pathlib.Path(__file__).resolve()
    for cand in ([pathlib.Path(tools_dir) / name] if tools_dir else []) + \
            [pathlib.Path(p) for p in [shutil.which(name)] if p] + \
            [here.parents[3] / "build" / name]:
        if cand.is_file() and os.access(str(cand), os.X_OK):
            return str(cand)
    raise SystemExit("calls: %s not found (pass --tools DIR)" % name)


def camera(url, seconds):
    """A party's camera and microphone: a live test picture and tone over RTMP."""
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
         "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
         "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         "-g", "25", "-c:a", "aac", "-b:a", "64k", "-f", "flv", url],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def statuses(stderr):
    """The onStatus lines a client tool printed: ["NetStream.Play.Failed: Stream not allowed."]."""
    out = []
    for line in stderr.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in ("status", "error", "warning"):
            out.append(parts[2])
    return out


def play(cfg, url, seconds=1.0):
    """Plays url until `seconds` of media arrived; (ok, statuses). A play waits for a
    publisher that has not started yet, so this is also the wait for the other party."""
    p = subprocess.run([cfg.play_tool, "-t", str(seconds), "-o", "-", "-timeout", "10000", url],
                       capture_output=True, timeout=cfg.timeout)
    err = p.stderr.decode(errors="replace")
    return p.returncode == 0 and p.stdout[:3] == b"FLV" and len(p.stdout) > 1000, statuses(err)


def try_publish(cfg, flv, url):
    """Tries to publish a short file; (ok, statuses)."""
    p = subprocess.run([cfg.publish_tool, "-timeout", "10000", flv, url], capture_output=True,
                       text=True, timeout=cfg.timeout)
    st = statuses(p.stderr)
    return p.returncode == 0 and any("Publish.Start" in s for s in st), st


def demo(cfg):
    cfg.play_tool = find_tool("sluice-play", cfg.tools)
    cfg.publish_tool = find_tool("sluice-publish", cfg.tools)
    call = create_call(cfg, "alice", "bob")
    other_call = create_call(cfg, "mallory", "trent")   # a real customer, another call
    alice, bob = call["parties"]["alice"], call["parties"]["bob"]
    mallory = other_call["parties"]["mallory"]
    log("call %s: alice publishes %s, bob publishes %s"
        % (call["call"], alice["publish"]["stream"], bob["publish"]["stream"]))
    checks = {}
    cams = [camera(alice["publish"]["url"], cfg.seconds), camera(bob["publish"]["url"], cfg.seconds)]
    tmp = tempfile.mkdtemp(prefix="calls-")
    try:
        # Each party plays the other's stream with its own play token.
        checks["alice plays bob"] = play(cfg, alice["play"]["url"])
        checks["bob plays alice"] = play(cfg, bob["play"]["url"])
        # Mallory holds valid tokens, for her own call: none of them opens this one.
        mallory_on_alice = "%s/%s/%s?token=%s" % (cfg.rtmp, APP, alice["publish"]["stream"],
                                                  mallory["play"]["token"])
        checks["mallory plays alice"] = play(cfg, mallory_on_alice)
        flv = os.path.join(tmp, "short.flv")
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                        "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=10", "-t", "1",
                        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                        "-f", "flv", flv], check=True, timeout=60)
        checks["mallory publishes as bob"] = try_publish(
            cfg, flv, "%s/%s/%s?token=%s" % (cfg.rtmp, APP, bob["publish"]["stream"],
                                             mallory["publish"]["token"]))
        # A party's play token does not let it publish the other's stream either,
        checks["alice publishes as bob"] = try_publish(
            cfg, flv, "%s/%s/%s?token=%s" % (cfg.rtmp, APP, bob["publish"]["stream"],
                                             alice["play"]["token"]))
        # and without a token nobody gets in.
        checks["no token plays alice"] = play(
            cfg, "%s/%s/%s" % (cfg.rtmp, APP, alice["publish"]["stream"]))
    finally:
        for c in cams:
            if c.poll() is None:
                c.terminate()
            c.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    want = {"alice plays bob": True, "bob plays alice": True, "mallory plays alice": False,
            "mallory publishes as bob": False, "alice publishes as bob": False,
            "no token plays alice": False}
    result = {"call": call["call"], "other_call": other_call["call"],
              "streams": [alice["publish"]["stream"], bob["publish"]["stream"]],
              "tokens": [t["token"] for c in (call, other_call) for p in c["parties"].values()
                         for t in p.values()],
              "checks": {k: {"ok": v[0], "statuses": v[1]} for k, v in checks.items()}}
    print(json.dumps(result), flush=True)
    wrong = [k for k, v in want.items() if checks[k][0] != v]
    for k, (ok, st) in checks.items():
        why = [x for x in st if "Failed" in x or "BadName" in x]
        log("%-26s %s  %s" % (k, "allowed" if ok else "refused", why[0] if why else ""))
    if wrong:
        raise SystemExit("calls: not as expected: %s" % ", ".join(wrong))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("create", "demo"))
    ap.add_argument("parties", nargs="*", help="create: the two parties")
    ap.add_argument("--rtmp", default="rtmp://127.0.0.1:1935", help="sluice's RTMP base URL")
    ap.add_argument("--tools", default=None, help="folder holding sluice-play, sluice-publish")
    ap.add_argument("--seconds", type=int, default=30, help="demo: the cameras' longest run")
    ap.add_argument("--timeout", type=float, default=30, help="seconds to wait for a step")
    ap.add_argument("--issuer", default="https://calls.example.com")
    ap.add_argument("--audience", default="sluice")
    ap.add_argument("--jwt-secret", default=os.environ.get(
        "CALLS_JWT_SECRET", "calls-demo-jwt-secret-0123456789abcdef"))
    cfg = ap.parse_args(argv)
    cfg.rtmp = cfg.rtmp.rstrip("/")
    if cfg.mode == "create":
        if len(cfg.parties) != 2:
            ap.error("create needs two parties")
        print(json.dumps(create_call(cfg, *cfg.parties), indent=2))
    else:
        demo(cfg)


if __name__ == "__main__":
    main()
