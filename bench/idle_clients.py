#!/usr/bin/env python3
"""bench/idle_clients.py: holds many idle RTMP connections open (used by
bench/memory).

Each connection does the RTMP handshake (plain: C0 C1, S0 S1 S2, C2), sends
one `connect` command to app "live" and waits for the server's
NetConnection.Connect.Success, then stays connected and idle, reading (and
discarding) whatever the server sends, such as ping requests. It answers
ping requests when they come whole at the start of a read, which is how
servers send them to an otherwise quiet connection.

Protocol: the parent writes nothing; this process prints one line per
milestone on stdout ("ready N" once N connections are connected) and then
holds them until stdin is closed or a line "quit" arrives ("count" prints
"alive N": connections still open). With --at 1000,5000 it also stops when
1000 and then 5000 are open, prints "ready N failed F" and waits for a line
"more" before going on (so the caller can sample memory at each).

Usage: idle_clients.py HOST PORT COUNT [--at N1,N2,...] [--parallel P]
"""
import argparse
import asyncio
import os
import struct
import sys

CONNECT_OK = b"NetConnection.Connect.Success"
ALIVE = [0]  # connections connected and not yet closed by the server


def amf0_string(s):
    b = s.encode()
    return b"\x02" + struct.pack(">H", len(b)) + b


def amf0_number(v):
    return b"\x00" + struct.pack(">d", v)


def amf0_object(props):
    out = b"\x03"
    for k, v in props:
        kb = k.encode()
        out += struct.pack(">H", len(kb)) + kb + amf0_string(v)
    return out + b"\x00\x00\x09"


def connect_message(host, port):
    """The connect command as one type-0 chunk (it fits the 128-byte default chunk size)."""
    body = (amf0_string("connect") + amf0_number(1.0) +
            amf0_object([("app", "live"), ("tcUrl", "rtmp://%s:%d/live" % (host, port))]))
    assert len(body) <= 128, len(body)
    hdr = bytes([0x03]) + b"\x00\x00\x00" + struct.pack(">I", len(body))[1:] + bytes([20]) + b"\x00\x00\x00\x00"
    return hdr + body


async def one(host, port, sem, conns, failures):
    async with sem:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
            w.write(b"\x03" + b"\x00" * 8 + os.urandom(1528))
            s0s1 = await asyncio.wait_for(r.readexactly(1 + 1536), 30)
            await asyncio.wait_for(r.readexactly(1536), 30)  # S2
            w.write(s0s1[1:])  # C2 echoes S1
            w.write(connect_message(host, port))
            await w.drain()
            buf = b""
            while CONNECT_OK not in buf:
                chunk = await asyncio.wait_for(r.read(4096), 30)
                if not chunk:
                    raise ConnectionError("closed before connect success")
                buf += chunk
        except Exception as e:  # noqa: BLE001 - counted and reported
            failures.append(repr(e))
            return
    conns.append((r, w))
    ALIVE[0] += 1
    asyncio.ensure_future(drain(r, w))


async def drain(r, w):
    """Reads what the server sends; answers a ping request that starts a read."""
    try:
        while True:
            data = await r.read(4096)
            if not data:
                break
            # fmt 0, csid 2, type 4 (user control), event 6 (ping request)
            if len(data) >= 18 and data[0] == 0x02 and data[7] == 4 and data[12:14] == b"\x00\x06":
                body = b"\x00\x07" + data[14:18]
                hdr = bytes([0x02]) + b"\x00\x00\x00" + struct.pack(">I", len(body))[1:] + bytes([4]) + b"\x00" * 4
                w.write(hdr + body)
    except Exception:  # noqa: BLE001 - the connection is gone; the count shows it
        pass
    ALIVE[0] -= 1


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("count", type=int)
    ap.add_argument("--at", default="")
    ap.add_argument("--parallel", type=int, default=200)
    a = ap.parse_args()
    sem = asyncio.Semaphore(a.parallel)
    conns, failures = [], []
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    marks = sorted({int(x) for x in a.at.split(",") if x} | {a.count})
    done = 0
    for mark in marks:
        if mark <= done or mark > a.count:
            continue
        k = mark - done
        await asyncio.gather(*(one(a.host, a.port, sem, conns, failures) for _ in range(k)))
        done += k
        print("ready %d failed %d" % (ALIVE[0], len(failures)), flush=True)
        if failures:
            print("first failure: %s" % failures[0], file=sys.stderr, flush=True)
        if done < a.count:
            line = await stdin.readline()
            if not line or line.strip() == b"quit":
                break
    while True:
        line = await stdin.readline()
        if line.strip() == b"count":
            print("alive %d" % ALIVE[0], flush=True)
            continue
        if not line or line.strip() == b"quit":
            break
    for _, w in conns:
        w.close()


if __name__ == "__main__":
    asyncio.run(main())
