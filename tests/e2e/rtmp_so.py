"""RTMP Remote Shared Object messages for the e2e tests, written from Red5's
RTMPProtocolEncoder/Decoder and shared with nothing in sluice: encode the
client's events (connect, set, delete, send, disconnect) and decode the
server's (initial data, update data = "change", update attribute =
"success", delete, clear, send, status).

Layout: [type 16: u8 0] u16 name, u32 version, u32 flags (2 = persistent),
u32 0, then events: u8 type, u32 length, body.
"""

import struct
import time

from rtmp_client import CSID_COMMAND, amf0_decode, amf0_encode

CONNECT, DISCONNECT, SET_ATTRIBUTE, UPDATE_DATA, UPDATE_ATTRIBUTE = 1, 2, 3, 4, 5
SEND_MESSAGE, STATUS, CLEAR_DATA, DELETE_DATA, DELETE_ATTRIBUTE, INITIAL_DATA = 6, 7, 8, 9, 10, 11

NAMES = {CONNECT: "connect", DISCONNECT: "disconnect", SET_ATTRIBUTE: "set",
         UPDATE_DATA: "change", UPDATE_ATTRIBUTE: "success", SEND_MESSAGE: "send",
         STATUS: "status", CLEAR_DATA: "clear", DELETE_DATA: "delete",
         DELETE_ATTRIBUTE: "delete_attribute", INITIAL_DATA: "initial"}


def _u16s(s):
    b = s.encode("utf-8")
    return struct.pack(">H", len(b)) + b


def _event(t, body=b""):
    return bytes([t]) + struct.pack(">I", len(body)) + body


def encode(name, events, version=0, persistent=False, flex=False):
    """events: [(type, key, value)]; returns the message body."""
    out = bytearray(b"\x00" if flex else b"")
    out += _u16s(name) + struct.pack(">III", version, 2 if persistent else 0, 0)
    for t, key, value in events:
        if t in (CONNECT, DISCONNECT, CLEAR_DATA):
            out += _event(t)
        elif t == SET_ATTRIBUTE:
            out += _event(t, _u16s(key) + amf0_encode(value))
        elif t == DELETE_ATTRIBUTE:
            out += _event(t, _u16s(key))
        elif t == SEND_MESSAGE:
            out += _event(t, amf0_encode(key) + b"".join(amf0_encode(a) for a in value))
        else:
            raise ValueError("not a client event: %r" % t)
    return bytes(out)


def _str(buf, pos):
    n = struct.unpack_from(">H", buf, pos)[0]
    return buf[pos + 2:pos + 2 + n].decode("utf-8"), pos + 2 + n


def decode(body, flex=False):
    """Returns (name, version, persistent, [(event name, key, value)])."""
    pos = 1 if flex else 0
    if flex and body[0] != 0:
        raise ValueError("flex SO encoding %d" % body[0])
    name, pos = _str(body, pos)
    version, flags, _ = struct.unpack_from(">III", body, pos)
    pos += 12
    events = []
    while pos < len(body):
        t = body[pos]
        n = struct.unpack_from(">I", body, pos + 1)[0]
        pos += 5
        end = pos + n
        seg = body[:end]
        if t in (INITIAL_DATA, CLEAR_DATA, CONNECT, DISCONNECT):
            events.append((NAMES[t], None, None))
        elif t == STATUS:
            code, p = _str(seg, pos)
            level, p = _str(seg, p)
            events.append(("status", code, level))
        elif t == UPDATE_DATA:
            p = pos
            while p < end:
                key, p = _str(seg, p)
                value, p = amf0_decode(seg, p)
                events.append(("change", key, value))
        elif t == SEND_MESSAGE:
            handler, p = amf0_decode(seg, pos)
            args = []
            while p < end:
                v, p = amf0_decode(seg, p)
                args.append(v)
            events.append(("send", handler, args))
        else:
            key, p = _str(seg, pos) if n else (None, pos)
            value = amf0_decode(seg, p)[0] if p < end else None
            events.append((NAMES.get(t, str(t)), key, value))
        pos = end
    return name, version, flags == 2, events


class SharedObject:
    """One client's view of one remote shared object over an RtmpClient."""

    def __init__(self, client, name, persistent=False):
        self.c = client
        self.name = name
        self.persistent = persistent
        self.flex = False
        self.seen = 0  # so_messages consumed

    def _send(self, events):
        body = encode(self.name, events, 0, self.persistent, self.flex)
        self.c.send_message(CSID_COMMAND, 16 if self.flex else 19, 0, 0, body)

    def connect(self):
        self._send([(CONNECT, None, None)])

    def set(self, key, value):
        self._send([(SET_ATTRIBUTE, key, value)])

    def set_many(self, pairs):
        self._send([(SET_ATTRIBUTE, k, v) for k, v in pairs])

    def delete(self, key):
        self._send([(DELETE_ATTRIBUTE, key, None)])

    def send(self, handler, *args):
        self._send([(SEND_MESSAGE, handler, list(args))])

    def disconnect(self):
        self._send([(DISCONNECT, None, None)])

    def messages(self):
        """Every decoded message for this object so far: [(version, [events])]."""
        with self.c._cv:
            raw = list(self.c.so_messages)
        out = []
        for _, t, body in raw:
            name, version, _, events = decode(body, flex=(t == 16))
            if name == self.name:
                out.append((version, events))
        return out

    def events(self):
        """[(version, event name, key, value)] in arrival order."""
        return [(v, e, k, val) for v, evs in self.messages() for (e, k, val) in evs]

    def wait(self, predicate, timeout, what):
        """Waits until predicate(self.events()) is true."""
        self.c.wait_for(lambda: predicate(self._events_locked()), timeout, what)
        return self.events()

    def _events_locked(self):
        # called under c._cv by wait_for
        out = []
        for _, t, body in self.c.so_messages:
            name, version, _, events = decode(body, flex=(t == 16))
            if name == self.name:
                out.extend((version, e, k, v) for (e, k, v) in events)
        return out

    def wait_event(self, kind, key=None, timeout=5.0):
        """Waits for an event of kind (and key); returns the first match."""
        def match(evs):
            return any(e == kind and (key is None or k == key) for _, e, k, _ in evs)
        evs = self.wait(match, timeout, "SO %s %s %s" % (self.name, kind, key))
        return next(x for x in evs if x[1] == kind and (key is None or x[2] == key))

    def data(self):
        """The attributes as this client's events built them."""
        d = {}
        for _, e, k, v in self.events():
            if e == "change":
                d[k] = v
            elif e == "delete":
                d.pop(k, None)
            elif e == "clear":
                d.clear()
        return d
