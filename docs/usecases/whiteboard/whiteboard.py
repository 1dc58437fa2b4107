#!/usr/bin/env python3
"""Whiteboard: a lesson's board is a persistent Remote Shared Object in sluice.
One participant draws strokes (and undoes one) over RTMP while another watches
them arrive; sluice restarts; a participant who joins later gets the board back,
exactly as it was. Walkthrough: docs/usecases/whiteboard.md.

Python 3 standard library. The participants are sluice-so, the command-line
face of sluice's C client library (libsluice-client): a real RTMP client that
speaks Red5's shared object messages, as a Flash/AIR or native app would.

    whiteboard.py draw [--board NAME] [--strokes N]   draw N strokes, undo the first;
                                                      prints the board as JSON
    whiteboard.py show [--board NAME]                 join as a new participant;
                                                      prints the board as JSON
"""

import argparse
import json
import os
import pathlib
import random
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time

APP = "whiteboard"


def log(*args):
    print("whiteboard:", *args, file=sys.stderr, flush=True)


def find_tool(name, tools_dir):
    """sluice-so from --tools, else PATH, else the repository's build folder."""
    here = pathlib.Path(__file__).resolve()
    for cand in ([pathlib.Path(tools_dir) / name] if tools_dir else []) + \
            [pathlib.Path(p) for p in [shutil.which(name)] if p] + \
            [here.parents[3] / "build" / name]:
        if cand.is_file() and os.access(str(cand), os.X_OK):
            return str(cand)
    raise SystemExit("whiteboard: %s not found (build it: cmake --build build --target %s, "
                     "or pass --tools DIR)" % (name, name))


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise SystemExit("whiteboard: timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(0.05)  # poll interval of a deadline-bounded wait


class Participant:
    """A long-running sluice-so joined to the board; its JSON lines are collected."""

    def __init__(self, tool, url, board):
        self.lines = []
        self.lock = threading.Lock()
        self.proc = subprocess.Popen([tool, "-q", "--persistent", url, board],
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith("{"):
                with self.lock:
                    self.lines.append(json.loads(line))

    def events(self):
        with self.lock:
            return list(self.lines)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)


def board_from(events):
    """Replays a participant's events into the board's state: {key: value}."""
    board = {}
    for e in events:
        if e["event"] == "change":
            board[e["key"]] = e["value"]
        elif e["event"] == "delete":
            board.pop(e["key"], None)
        elif e["event"] == "clear":
            board.clear()
    return board


def stroke(rng, who):
    """One pen stroke: a colour, a width and the points of the pen's path."""
    x, y = rng.randint(0, 800), rng.randint(0, 600)
    points = []
    for _ in range(rng.randint(5, 20)):
        x, y = x + rng.randint(-20, 20), y + rng.randint(-20, 20)
        points.append([x, y])
    return {"by": who, "color": rng.choice(["#e33", "#33e", "#3a3", "#000"]),
            "width": rng.choice([2, 3, 5]), "points": points}


def draw(cfg, tool, url):
    rng = random.Random(cfg.seed)
    # Bob has the board open: he sees every stroke as it is drawn.
    bob = Participant(tool, url, cfg.board)
    try:
        wait_until(lambda: any(e["event"] == "initial" for e in bob.events()), cfg.timeout,
                   "bob to join the board")
        tag = secrets.token_hex(3)
        strokes = {"stroke-%s-%d" % (tag, i): stroke(rng, "alice") for i in range(cfg.strokes)}
        undone = next(iter(strokes))
        # Alice draws: one set per stroke, then undoes her first stroke. --once exits 0
        # once every set was answered "success", which on a persistent object sluice
        # sends only after the write is committed to its database.
        cmd = [tool, "-q", "--once", "--persistent"]
        for key, value in strokes.items():
            cmd += ["--set", "%s=%s" % (key, json.dumps(value, separators=(",", ":")))]
        cmd += ["--delete", undone, url, cfg.board]
        alice = subprocess.run(cmd, capture_output=True, text=True, timeout=cfg.timeout)
        if alice.returncode != 0:
            raise SystemExit("whiteboard: alice's drawing failed: %s %s"
                             % (alice.stdout[-2000:], alice.stderr[-2000:]))
        acked = [json.loads(x)["key"] for x in alice.stdout.splitlines()
                 if x.startswith("{") and json.loads(x)["event"] == "success"]
        log("alice drew %d strokes (all acknowledged: %s) and undid %s"
            % (len(strokes), sorted(acked) == sorted(strokes), undone))
        del strokes[undone]
        # Bob's view converges on the same board: every stroke arrived, the undo too.
        wait_until(lambda: {k: v for k, v in board_from(bob.events()).items() if k in strokes}
                   == strokes and undone not in board_from(bob.events())
                   and any(e["event"] == "delete" for e in bob.events()),
                   cfg.timeout, "bob to see alice's strokes and her undo")
        log("bob saw every stroke and the undo")
    finally:
        bob.stop()
    board = board_from(bob.events())
    print(json.dumps({"board": cfg.board, "drawn": strokes, "undone": undone, "strokes": board}),
          flush=True)


def show(cfg, tool, url):
    # A participant joining now: --once with nothing to do joins, prints the board's
    # data (version and every key) and leaves.
    p = subprocess.run([tool, "-q", "--once", "--persistent", url, cfg.board],
                       capture_output=True, text=True, timeout=cfg.timeout)
    events = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    if p.returncode != 0 or not events or events[0]["event"] != "initial":
        raise SystemExit("whiteboard: could not join %s: %s %s" % (cfg.board, p.stdout[-2000:],
                                                                   p.stderr[-2000:]))
    board = board_from(events)
    log("the board %s has %d strokes (version %d)" % (cfg.board, len(board), events[0]["version"]))
    print(json.dumps({"board": cfg.board, "version": events[0]["version"], "strokes": board}),
          flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("draw", "show"))
    ap.add_argument("--rtmp", default="rtmp://127.0.0.1:1935", help="sluice's RTMP base URL")
    ap.add_argument("--board", default="lesson-42", help="the board (shared object) name")
    ap.add_argument("--strokes", type=int, default=4, help="draw: strokes to draw")
    ap.add_argument("--seed", type=int, default=None, help="draw: random seed of the strokes")
    ap.add_argument("--tools", default=None, help="folder holding sluice-so")
    ap.add_argument("--timeout", type=float, default=20, help="seconds to wait for a step")
    cfg = ap.parse_args(argv)
    tool = find_tool("sluice-so", cfg.tools)
    url = "%s/%s" % (cfg.rtmp.rstrip("/"), APP)
    (draw if cfg.mode == "draw" else show)(cfg, tool, url)


if __name__ == "__main__":
    main()
