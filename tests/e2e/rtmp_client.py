"""A small, stdlib-only RTMP client for protocol-precise end-to-end assertions.

ffmpeg, rtmpdump and GStreamer prove that sluice interoperates; this client
proves what exactly went over the wire: which onStatus codes arrived and in
what order, when the first media message arrived after connecting, whether
the first video message was a keyframe, what timestamps the messages carried.
It can also misbehave on purpose: stop reading (a stuck player), send raw
bytes (garbage, truncated handshakes, oversized chunk and message headers).

Layout:
  - AMF0 encode/decode (number, boolean, string, long string, object, null,
    undefined, ECMA array, strict array, date, object end, typed object).
  - ChunkWriter / ChunkReader: the RTMP chunk stream, all four header types
    (fmt 0..3), extended timestamps (also repeated on fmt 3 chunks, as Flash
    and librtmp do), Set Chunk Size, Abort.
  - RtmpClient: TCP + plain handshake, then a reader thread that answers
    protocol control (acknowledgements against the peer's window, ping
    responses), matches command results to transactions and records every
    onStatus and every audio/video/data message with its arrival time.
  - FlvFile and FlvPublisher: publish an FLV file's tags in real time (or as
    fast as possible), optionally looping with continuous timestamps.

Every socket operation has a timeout and every wait has a deadline; a wait
that runs out raises RtmpTimeout with a summary of what *was* received.
"""

import os
import random
import socket
import struct
import threading
import time
import zlib

# --------------------------------------------------------------------------
# AMF0
# --------------------------------------------------------------------------

AMF0_NUMBER = 0x00
AMF0_BOOLEAN = 0x01
AMF0_STRING = 0x02
AMF0_OBJECT = 0x03
AMF0_NULL = 0x05
AMF0_UNDEFINED = 0x06
AMF0_ECMA_ARRAY = 0x08
AMF0_OBJECT_END = 0x09
AMF0_STRICT_ARRAY = 0x0A
AMF0_DATE = 0x0B
AMF0_LONG_STRING = 0x0C
AMF0_XML = 0x0F
AMF0_TYPED_OBJECT = 0x10
AMF0_AVMPLUS = 0x11

AMF_MAX_DEPTH = 64


class AmfError(ValueError):
    """Malformed or unsupported AMF input."""


class _Undefined:
    def __repr__(self):
        return "Undefined"


Undefined = _Undefined()


class _ObjectEnd:
    def __repr__(self):
        return "ObjectEnd"


ObjectEnd = _ObjectEnd()


class EcmaArray(dict):
    """A dict that encodes as an AMF0 ECMA (associative) array."""


class TypedObject(dict):
    """A decoded AMF0 typed object; class_name holds its class."""

    def __init__(self, class_name, *args, **kw):
        super().__init__(*args, **kw)
        self.class_name = class_name


class AmfDate(float):
    """Milliseconds since the epoch (AMF0 date); tz is kept but unused."""


def _amf0_key(k):
    b = k.encode("utf-8")
    if len(b) > 0xFFFF:
        raise AmfError("AMF0 property name too long")
    return struct.pack(">H", len(b)) + b


def amf0_encode(v):
    """Encodes one Python value as AMF0 bytes."""
    if v is None:
        return bytes([AMF0_NULL])
    if v is Undefined:
        return bytes([AMF0_UNDEFINED])
    if v is ObjectEnd:
        return b"\x00\x00\x09"
    if isinstance(v, bool):
        return bytes([AMF0_BOOLEAN, 1 if v else 0])
    if isinstance(v, AmfDate):
        return bytes([AMF0_DATE]) + struct.pack(">dh", float(v), 0)
    if isinstance(v, (int, float)):
        return bytes([AMF0_NUMBER]) + struct.pack(">d", float(v))
    if isinstance(v, str):
        b = v.encode("utf-8")
        if len(b) <= 0xFFFF:
            return bytes([AMF0_STRING]) + struct.pack(">H", len(b)) + b
        return bytes([AMF0_LONG_STRING]) + struct.pack(">I", len(b)) + b
    if isinstance(v, EcmaArray):
        out = bytearray([AMF0_ECMA_ARRAY]) + struct.pack(">I", len(v))
        for k, x in v.items():
            out += _amf0_key(k) + amf0_encode(x)
        return bytes(out + b"\x00\x00\x09")
    if isinstance(v, TypedObject):
        out = bytearray([AMF0_TYPED_OBJECT]) + _amf0_key(v.class_name)
        for k, x in v.items():
            out += _amf0_key(k) + amf0_encode(x)
        return bytes(out + b"\x00\x00\x09")
    if isinstance(v, dict):
        out = bytearray([AMF0_OBJECT])
        for k, x in v.items():
            out += _amf0_key(k) + amf0_encode(x)
        return bytes(out + b"\x00\x00\x09")
    if isinstance(v, (list, tuple)):
        out = bytearray([AMF0_STRICT_ARRAY]) + struct.pack(">I", len(v))
        for x in v:
            out += amf0_encode(x)
        return bytes(out)
    raise AmfError("cannot encode %r as AMF0" % (type(v),))


def amf0_encode_all(*values):
    return b"".join(amf0_encode(v) for v in values)


def _need(buf, pos, n):
    if pos + n > len(buf):
        raise AmfError("AMF0 input truncated at %d (need %d more)" % (pos, n))


def _decode_props(buf, pos, depth, target):
    while True:
        _need(buf, pos, 2)
        (klen,) = struct.unpack_from(">H", buf, pos)
        pos += 2
        _need(buf, pos, klen)
        key = bytes(buf[pos:pos + klen]).decode("utf-8", "replace")
        pos += klen
        _need(buf, pos, 1)
        if klen == 0 and buf[pos] == AMF0_OBJECT_END:
            return pos + 1
        val, pos = amf0_decode(buf, pos, depth + 1)
        target[key] = val


def amf0_decode(buf, pos=0, depth=0):
    """Decodes one AMF0 value at buf[pos:]; returns (value, new_pos)."""
    if depth > AMF_MAX_DEPTH:
        raise AmfError("AMF0 nesting too deep")
    _need(buf, pos, 1)
    t = buf[pos]
    pos += 1
    if t == AMF0_NUMBER:
        _need(buf, pos, 8)
        return struct.unpack_from(">d", buf, pos)[0], pos + 8
    if t == AMF0_BOOLEAN:
        _need(buf, pos, 1)
        return buf[pos] != 0, pos + 1
    if t in (AMF0_STRING,):
        _need(buf, pos, 2)
        (n,) = struct.unpack_from(">H", buf, pos)
        pos += 2
        _need(buf, pos, n)
        return bytes(buf[pos:pos + n]).decode("utf-8", "replace"), pos + n
    if t in (AMF0_LONG_STRING, AMF0_XML):
        _need(buf, pos, 4)
        (n,) = struct.unpack_from(">I", buf, pos)
        pos += 4
        _need(buf, pos, n)
        return bytes(buf[pos:pos + n]).decode("utf-8", "replace"), pos + n
    if t == AMF0_OBJECT:
        obj = {}
        return obj, _decode_props(buf, pos, depth, obj)
    if t == AMF0_TYPED_OBJECT:
        _need(buf, pos, 2)
        (n,) = struct.unpack_from(">H", buf, pos)
        pos += 2
        _need(buf, pos, n)
        obj = TypedObject(bytes(buf[pos:pos + n]).decode("utf-8", "replace"))
        pos += n
        return obj, _decode_props(buf, pos, depth, obj)
    if t == AMF0_NULL:
        return None, pos
    if t == AMF0_UNDEFINED:
        return Undefined, pos
    if t == AMF0_ECMA_ARRAY:
        _need(buf, pos, 4)
        pos += 4  # the count is a hint only; the end marker terminates
        arr = EcmaArray()
        return arr, _decode_props(buf, pos, depth, arr)
    if t == AMF0_OBJECT_END:
        return ObjectEnd, pos
    if t == AMF0_STRICT_ARRAY:
        _need(buf, pos, 4)
        (n,) = struct.unpack_from(">I", buf, pos)
        pos += 4
        if n > len(buf) - pos:
            raise AmfError("AMF0 strict array count %d exceeds input" % n)
        out = []
        for _ in range(n):
            v, pos = amf0_decode(buf, pos, depth + 1)
            out.append(v)
        return out, pos
    if t == AMF0_DATE:
        _need(buf, pos, 10)
        ms, _tz = struct.unpack_from(">dh", buf, pos)
        return AmfDate(ms), pos + 10
    if t == AMF0_AVMPLUS:
        raise AmfError("AMF3 values (avmplus switch) are not supported by this client")
    raise AmfError("unknown AMF0 marker 0x%02x at %d" % (t, pos - 1))


def amf0_decode_all(buf):
    """Decodes every AMF0 value in buf into a list."""
    out = []
    pos = 0
    while pos < len(buf):
        v, pos = amf0_decode(buf, pos)
        out.append(v)
    return out


# --------------------------------------------------------------------------
# Message types and media helpers
# --------------------------------------------------------------------------

MSG_SET_CHUNK_SIZE = 1
MSG_ABORT = 2
MSG_ACK = 3
MSG_USER_CONTROL = 4
MSG_WINDOW_ACK_SIZE = 5
MSG_SET_PEER_BANDWIDTH = 6
MSG_AUDIO = 8
MSG_VIDEO = 9
MSG_DATA_AMF3 = 15
MSG_COMMAND_AMF3 = 17
MSG_DATA_AMF0 = 18
MSG_COMMAND_AMF0 = 20
MSG_AGGREGATE = 22

UC_STREAM_BEGIN = 0
UC_STREAM_EOF = 1
UC_STREAM_DRY = 2
UC_SET_BUFFER_LENGTH = 3
UC_STREAM_IS_RECORDED = 4
UC_PING_REQUEST = 6
UC_PING_RESPONSE = 7

CSID_PROTOCOL = 2
CSID_COMMAND = 3
CSID_AUDIO = 4
CSID_DATA = 5
CSID_VIDEO = 6
CSID_STREAM_COMMAND = 8

HANDSHAKE_SIZE = 1536


def video_is_keyframe(data):
    """FLV/RTMP video tag body: frame type 1 is a keyframe (legacy and E-RTMP)."""
    return len(data) > 0 and ((data[0] >> 4) & 0x07) == 1


def video_is_seq_header(data):
    if len(data) < 2:
        return False
    if data[0] & 0x80:  # enhanced RTMP: packet type in the low nibble, 0 = SequenceStart
        return (data[0] & 0x0F) == 0
    return (data[0] & 0x0F) == 7 and data[1] == 0  # AVC sequence header


def audio_is_seq_header(data):
    return len(data) >= 2 and (data[0] >> 4) == 10 and data[1] == 0  # AAC config


class Media:
    """One received audio/video/data message (payload kept only as size/crc/head)."""

    __slots__ = ("arrival", "type", "ts", "msid", "size", "crc", "head", "data")

    def __init__(self, arrival, type_, ts, msid, data, keep):
        self.arrival = arrival
        self.type = type_
        self.ts = ts
        self.msid = msid
        self.size = len(data)
        self.crc = zlib.crc32(data)
        self.head = bytes(data[:16])
        self.data = bytes(data) if keep else None

    @property
    def is_video(self):
        return self.type == MSG_VIDEO

    @property
    def is_audio(self):
        return self.type == MSG_AUDIO

    @property
    def keyframe(self):
        return self.type == MSG_VIDEO and video_is_keyframe(self.head)

    @property
    def seq_header(self):
        if self.type == MSG_VIDEO:
            return video_is_seq_header(self.head)
        if self.type == MSG_AUDIO:
            return audio_is_seq_header(self.head)
        return False

    @property
    def is_frame(self):
        """A coded video frame (not a sequence header, not a command frame)."""
        if self.type != MSG_VIDEO or self.size < 2 or self.seq_header:
            return False
        return ((self.head[0] >> 4) & 0x07) in (1, 2, 3)

    def __repr__(self):
        kind = {MSG_AUDIO: "A", MSG_VIDEO: "V"}.get(self.type, str(self.type))
        flags = ("K" if self.keyframe else "") + ("S" if self.seq_header else "")
        return "<%s ts=%d size=%d %s>" % (kind, self.ts, self.size, flags)


# --------------------------------------------------------------------------
# Chunk stream
# --------------------------------------------------------------------------

class RtmpError(Exception):
    """Protocol error seen by the client."""


class RtmpTimeout(AssertionError):
    """A wait ran past its deadline. An AssertionError so pytest shows it as a failure."""


class RtmpClosed(RtmpError):
    """The peer closed the connection."""


def chunk_basic_header(fmt, csid):
    if csid < 2 or csid > 65599:
        raise ValueError("chunk stream id %d out of range" % csid)
    if csid < 64:
        return bytes([(fmt << 6) | csid])
    if csid < 320:
        return bytes([fmt << 6, csid - 64])
    return bytes([(fmt << 6) | 1]) + struct.pack("<H", csid - 64)


class ChunkWriter:
    """Serialises messages into chunks, choosing the smallest header type.

    Per chunk stream it remembers the last header (message stream id,
    length, type, timestamp, delta) exactly as a receiver will, so that
    fmt 1/2/3 headers are valid. A caller may force a header type to
    exercise a receiver (force_fmt); it must then be valid in context.
    """

    def __init__(self, chunk_size=128):
        self.chunk_size = chunk_size
        self.state = {}  # csid -> dict(msid, length, type, ts, delta)

    def encode(self, csid, type_id, msid, ts, payload, force_fmt=None):
        ts &= 0xFFFFFFFF
        prev = self.state.get(csid)
        length = len(payload)
        if force_fmt is not None:
            fmt = force_fmt
        elif prev is None or prev["msid"] != msid or ts < prev["ts"]:
            fmt = 0
        elif prev["length"] != length or prev["type"] != type_id:
            fmt = 1
        elif prev["delta"] != ts - prev["ts"]:
            fmt = 2
        else:
            fmt = 3
        if fmt == 0:
            field = ts
            delta = ts  # spec: a fmt 3 after fmt 0 reuses its timestamp as the delta
        else:
            if prev is None:
                raise ValueError("fmt %d needs a previous header on csid %d" % (fmt, csid))
            delta = (ts - prev["ts"]) & 0xFFFFFFFF
            field = delta if fmt in (1, 2) else prev["delta"]
            if fmt == 3 and delta != prev["delta"]:
                raise ValueError("fmt 3 needs the same delta (%d != %d)" % (delta, prev["delta"]))
        ext = field >= 0xFFFFFF
        if fmt == 3 and prev is not None:
            ext = prev["ext"]
        hdr = bytearray(chunk_basic_header(fmt, csid))
        f3 = 0xFFFFFF if ext else field
        if fmt == 0:
            hdr += struct.pack(">I", f3)[1:] + struct.pack(">I", length)[1:] + bytes([type_id]) \
                + struct.pack("<I", msid)
        elif fmt == 1:
            hdr += struct.pack(">I", f3)[1:] + struct.pack(">I", length)[1:] + bytes([type_id])
        elif fmt == 2:
            hdr += struct.pack(">I", f3)[1:]
        extb = struct.pack(">I", field) if ext else b""
        hdr += extb
        self.state[csid] = {"msid": msid, "length": length, "type": type_id, "ts": ts,
                            "delta": delta if fmt else ts, "ext": ext}
        out = bytearray(hdr)
        cont = chunk_basic_header(3, csid) + extb
        for i in range(0, max(length, 1), self.chunk_size):
            if i:
                out += cont
            out += payload[i:i + self.chunk_size]
        return bytes(out)


class _ChunkState:
    __slots__ = ("ts", "delta", "length", "type", "msid", "buf", "ext", "started")

    def __init__(self):
        self.ts = 0
        self.delta = 0
        self.length = 0
        self.type = 0
        self.msid = 0
        self.buf = None  # bytearray while a message is being assembled
        self.ext = False
        self.started = False


class ChunkReader:
    """Reassembles messages from a chunk stream read through read_exact(n)."""

    def __init__(self, read_exact, max_message_size=64 << 20):
        self.read_exact = read_exact
        self.chunk_size = 128
        self.max_message_size = max_message_size
        self.streams = {}

    def abort(self, csid):
        st = self.streams.get(csid)
        if st is not None:
            st.buf = None

    def read_message(self):
        """Reads chunks until one message is complete: (type, ts, msid, payload, csid)."""
        while True:
            b0 = self.read_exact(1)[0]
            fmt = b0 >> 6
            csid = b0 & 0x3F
            if csid == 0:
                csid = 64 + self.read_exact(1)[0]
            elif csid == 1:
                b = self.read_exact(2)
                csid = 64 + b[0] + 256 * b[1]
            st = self.streams.get(csid)
            if st is None:
                if fmt != 0:
                    raise RtmpError("first chunk on csid %d has fmt %d" % (csid, fmt))
                st = self.streams[csid] = _ChunkState()
            new_message = st.buf is None
            if fmt == 0:
                h = self.read_exact(11)
                field = (h[0] << 16) | (h[1] << 8) | h[2]
                st.length = (h[3] << 16) | (h[4] << 8) | h[5]
                st.type = h[6]
                st.msid = struct.unpack("<I", bytes(h[7:11]))[0]
                st.ext = field == 0xFFFFFF
                if st.ext:
                    field = struct.unpack(">I", self.read_exact(4))[0]
                st.ts = field
                st.delta = field
            elif fmt == 1 or fmt == 2:
                h = self.read_exact(7 if fmt == 1 else 3)
                field = (h[0] << 16) | (h[1] << 8) | h[2]
                if fmt == 1:
                    st.length = (h[3] << 16) | (h[4] << 8) | h[5]
                    st.type = h[6]
                st.ext = field == 0xFFFFFF
                if st.ext:
                    field = struct.unpack(">I", self.read_exact(4))[0]
                st.delta = field
                st.ts = (st.ts + field) & 0xFFFFFFFF
            else:
                if st.ext:
                    # Flash/librtmp convention: fmt 3 repeats the extended timestamp.
                    self.read_exact(4)
                if new_message:
                    st.ts = (st.ts + st.delta) & 0xFFFFFFFF
            if new_message:
                if st.length > self.max_message_size:
                    raise RtmpError("message of %d bytes exceeds the client limit" % st.length)
                st.buf = bytearray()
            elif fmt != 3:
                raise RtmpError("fmt %d chunk inside an unfinished message on csid %d" % (fmt, csid))
            n = min(self.chunk_size, st.length - len(st.buf))
            if n:
                st.buf += self.read_exact(n)
            if len(st.buf) >= st.length:
                payload = bytes(st.buf)
                st.buf = None
                return st.type, st.ts, st.msid, payload, csid


# --------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------

class Status:
    """One onStatus (or connect _result/_error) received."""

    __slots__ = ("arrival", "code", "level", "info", "msid", "name")

    def __init__(self, arrival, name, info, msid):
        self.arrival = arrival
        self.name = name
        self.info = info if isinstance(info, dict) else {}
        self.code = self.info.get("code")
        self.level = self.info.get("level")
        self.msid = msid

    def __repr__(self):
        return "<%s %s %s>" % (self.name, self.code, self.info.get("description", ""))


class CommandResult:
    def __init__(self, name, txn, args):
        self.name = name  # "_result" or "_error"
        self.txn = txn
        self.args = args  # values after the transaction id

    @property
    def ok(self):
        return self.name == "_result"

    @property
    def info(self):
        """The information object (second value for connect, else the first dict)."""
        dicts = [a for a in self.args if isinstance(a, dict)]
        return dicts[-1] if dicts else {}

    @property
    def code(self):
        return self.info.get("code")

    def __repr__(self):
        return "<%s txn=%s %r>" % (self.name, self.txn, self.args)


class RtmpClient:
    """One RTMP connection. Not reusable after close().

    Typical use:
        c = RtmpClient("127.0.0.1", port)
        c.connect("live")                  # TCP + handshake + connect command
        sid = c.create_stream()
        c.play(sid, "stream1")
        c.wait_status("NetStream.Play.Start", 5)
        c.wait_video_frames(10, 5)
    """

    def __init__(self, host, port, timeout=5.0, rcvbuf=None, keep_payload=False,
                 out_chunk_size=4096, name="client"):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.rcvbuf = rcvbuf
        self.keep_payload = keep_payload
        self.name = name
        self.sock = None
        self._wlock = threading.Lock()
        self._cv = threading.Condition()
        self._rbuf = bytearray()
        self._stop = False
        self._paused = threading.Event()
        self._paused.set()  # set = reading allowed
        self._reader = None
        self._next_txn = 1
        self._out_chunk_size = out_chunk_size
        self.writer = ChunkWriter(128)
        self.reader = None
        # observations (guarded by _cv)
        self.t_connect = None        # monotonic time the TCP connect started
        self.t_connected = None      # TCP connected
        self.t_handshake_done = None
        self.results = {}            # txn -> CommandResult
        self.statuses = []           # [Status]
        self.media = []              # [Media]
        self.data_messages = []      # [(arrival, values)]
        self.user_controls = []      # [(arrival, event, value)]
        self.commands = []           # other commands received [(arrival, name, args)]
        self.acks = []               # Acknowledgements from the peer [(arrival, sequence)]
        self.so_messages = []        # shared object messages [(arrival, type 16|19, body)] (rtmp_so.py)
        self.closed = False
        self.closed_at = None
        self.close_reason = None
        self.error = None            # exception that stopped the reader, if not a clean EOF
        self.bytes_in = 0
        self.peer_window = 0
        self._acked = 0
        self.peer_chunk_size = 128
        self.peer_bandwidth = None
        self.s0 = None
        self.s1 = None
        self.s2 = None
        self.c1 = None

    # ---------------------------------------------------------------- socket
    def open(self):
        """Opens the TCP connection (no handshake)."""
        self.t_connect = time.monotonic()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        s.settimeout(self.timeout)
        s.connect((self.host, self.port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s
        self.t_connected = time.monotonic()
        return self

    def send_raw(self, data):
        """Writes raw bytes, bypassing the chunk layer."""
        with self._wlock:
            self.sock.sendall(data)

    def recv_raw(self, n, timeout=None):
        """Reads up to n bytes directly (only before the reader thread starts)."""
        self.sock.settimeout(timeout if timeout is not None else self.timeout)
        try:
            return self.sock.recv(n)
        finally:
            self.sock.settimeout(self.timeout)

    def wait_eof_raw(self, timeout):
        """Reads and discards until EOF; True if the peer closed within timeout.

        Only usable without the reader thread (raw-bytes tests).
        """
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(min(left, 0.5))
            try:
                b = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not b:
                return True

    def _read_exact(self, n):
        while len(self._rbuf) < n:
            if self._stop:
                raise RtmpClosed("client stopped")
            if not self._paused.is_set():
                # Stuck-player mode: hold off reading until resumed or stopped.
                self._paused.wait(0.2)
                continue
            try:
                b = self.sock.recv(max(65536, n))
            except socket.timeout:
                continue
            if not b:
                raise RtmpClosed("EOF")
            self._rbuf += b
            self.bytes_in += len(b)
            self._maybe_ack()
        out = bytes(self._rbuf[:n])
        del self._rbuf[:n]
        return out

    def _read_exact_handshake(self, n):
        buf = bytearray()
        while len(buf) < n:
            b = self.sock.recv(n - len(buf))
            if not b:
                raise RtmpClosed("EOF during handshake after %d/%d bytes" % (len(buf), n))
            buf += b
            self.bytes_in += len(b)
        return bytes(buf)

    # ------------------------------------------------------------- handshake
    def handshake(self):
        """Plain handshake: C0C1 -> S0S1 -> C2 -> S2."""
        c1 = struct.pack(">II", int(time.monotonic() * 1000) & 0xFFFFFFFF, 0) + \
            os.urandom(HANDSHAKE_SIZE - 8)
        self.c1 = c1
        self.send_raw(b"\x03" + c1)
        self.s0 = self._read_exact_handshake(1)
        if self.s0 != b"\x03":
            raise RtmpError("S0 version %r, expected 3" % self.s0)
        self.s1 = self._read_exact_handshake(HANDSHAKE_SIZE)
        self.send_raw(self.s1)  # C2 echoes S1
        self.s2 = self._read_exact_handshake(HANDSHAKE_SIZE)
        self.t_handshake_done = time.monotonic()
        return self

    @property
    def s2_echoes_c1(self):
        return self.s2 is not None and self.s2[8:] == self.c1[8:]

    # ---------------------------------------------------------------- reader
    def start_reader(self):
        self.reader = ChunkReader(self._read_exact)
        self._reader = threading.Thread(target=self._reader_main, name="rtmp-" + self.name,
                                        daemon=True)
        self._reader.start()
        return self

    def _reader_main(self):
        try:
            while not self._stop:
                type_id, ts, msid, payload, csid = self.reader.read_message()
                self._on_message(type_id, ts, msid, payload)
        except RtmpClosed as e:
            self._mark_closed(str(e))
        except (OSError, RtmpError, AmfError) as e:
            self._mark_closed(repr(e), error=e)

    def _mark_closed(self, reason, error=None):
        with self._cv:
            if not self.closed:
                self.closed = True
                self.closed_at = time.monotonic()
                self.close_reason = reason
                self.error = error
            self._cv.notify_all()

    def _maybe_ack(self):
        if self.peer_window and self.bytes_in - self._acked >= self.peer_window:
            self._acked = self.bytes_in
            try:
                self.send_message(CSID_PROTOCOL, MSG_ACK, 0, 0,
                                  struct.pack(">I", self.bytes_in & 0xFFFFFFFF))
            except OSError:
                pass

    def _on_message(self, type_id, ts, msid, payload):
        now = time.monotonic()
        if type_id == MSG_SET_CHUNK_SIZE:
            size = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
            self.reader.chunk_size = size
            self.peer_chunk_size = size
        elif type_id == MSG_ABORT:
            self.reader.abort(struct.unpack(">I", payload[:4])[0])
        elif type_id == MSG_WINDOW_ACK_SIZE:
            self.peer_window = struct.unpack(">I", payload[:4])[0]
        elif type_id == MSG_SET_PEER_BANDWIDTH:
            self.peer_bandwidth = struct.unpack(">I", payload[:4])[0]
        elif type_id == MSG_ACK:
            with self._cv:
                self.acks.append((now, struct.unpack(">I", payload[:4])[0]))
                self._cv.notify_all()
        elif type_id == MSG_USER_CONTROL:
            event = struct.unpack(">H", payload[:2])[0]
            value = payload[2:]
            if event == UC_PING_REQUEST:
                self.send_message(CSID_PROTOCOL, MSG_USER_CONTROL, 0, 0,
                                  struct.pack(">H", UC_PING_RESPONSE) + value[:4])
            with self._cv:
                self.user_controls.append((now, event, value))
                self._cv.notify_all()
        elif type_id in (MSG_AUDIO, MSG_VIDEO):
            m = Media(now, type_id, ts, msid, payload, self.keep_payload)
            with self._cv:
                self.media.append(m)
                self._cv.notify_all()
        elif type_id == MSG_AGGREGATE:
            self._on_aggregate(now, ts, msid, payload)
        elif type_id in (MSG_DATA_AMF0, MSG_DATA_AMF3):
            body = payload[1:] if type_id == MSG_DATA_AMF3 else payload
            vals = amf0_decode_all(body)
            with self._cv:
                self.data_messages.append((now, vals))
                self._cv.notify_all()
        elif type_id in (16, 19):  # shared objects: decoded by rtmp_so.py
            with self._cv:
                self.so_messages.append((now, type_id, bytes(payload)))
                self._cv.notify_all()
        elif type_id in (MSG_COMMAND_AMF0, MSG_COMMAND_AMF3):
            body = payload[1:] if type_id == MSG_COMMAND_AMF3 else payload
            vals = amf0_decode_all(body)
            if not vals or not isinstance(vals[0], str):
                raise RtmpError("command without a name: %r" % (vals,))
            name = vals[0]
            txn = vals[1] if len(vals) > 1 else 0
            args = vals[2:]
            with self._cv:
                if name in ("_result", "_error"):
                    self.results[txn] = CommandResult(name, txn, args)
                elif name == "onStatus":
                    info = next((a for a in args if isinstance(a, dict)), {})
                    self.statuses.append(Status(now, name, info, msid))
                else:
                    self.commands.append((now, name, args))
                self._cv.notify_all()

    def _on_aggregate(self, now, ts, msid, payload):
        # An aggregate message is a run of FLV tags; timestamps are rebased on the first.
        pos = 0
        base = None
        while pos + 11 <= len(payload):
            t = payload[pos]
            size = int.from_bytes(payload[pos + 1:pos + 4], "big")
            tts = int.from_bytes(payload[pos + 4:pos + 7], "big") | (payload[pos + 7] << 24)
            body = payload[pos + 11:pos + 11 + size]
            if base is None:
                base = tts
            if t in (MSG_AUDIO, MSG_VIDEO):
                with self._cv:
                    self.media.append(Media(now, t, ts + (tts - base), msid, body,
                                            self.keep_payload))
                    self._cv.notify_all()
            pos += 11 + size + 4

    # --------------------------------------------------------------- writing
    def send_message(self, csid, type_id, msid, ts, payload, force_fmt=None):
        with self._wlock:
            data = self.writer.encode(csid, type_id, msid, ts, payload, force_fmt)
            self.sock.sendall(data)

    def set_chunk_size(self, size):
        """Announces our outgoing chunk size and switches to it."""
        with self._wlock:
            data = self.writer.encode(CSID_PROTOCOL, MSG_SET_CHUNK_SIZE, 0, 0,
                                      struct.pack(">I", size))
            self.sock.sendall(data)
            self.writer.chunk_size = size

    def send_window_ack_size(self, size):
        self.send_message(CSID_PROTOCOL, MSG_WINDOW_ACK_SIZE, 0, 0, struct.pack(">I", size))

    def send_command(self, name, *args, msid=0, csid=CSID_COMMAND, txn=None):
        """Sends an AMF0 command; returns its transaction id."""
        if txn is None:
            txn = self._next_txn
            self._next_txn += 1
        self.send_message(csid, MSG_COMMAND_AMF0, msid, 0, amf0_encode_all(name, txn, *args))
        return txn

    def wait_result(self, txn, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        self.wait_for(lambda: txn in self.results, timeout, "result of transaction %s" % txn)
        return self.results[txn]

    def call(self, name, *args, timeout=None):
        return self.wait_result(self.send_command(name, *args), timeout)

    # ------------------------------------------------------------- commands
    def connect(self, app, tc_url=None, extra=None, timeout=None, chunk_size=None,
                connect_args=()):
        """TCP + handshake + connect command; returns the CommandResult.

        Does not raise on _error: the caller asserts on result.ok/result.code.
        """
        if self.sock is None:
            self.open()
        if self.s1 is None:
            self.handshake()
        if self._reader is None:
            self.start_reader()
        self.set_chunk_size(chunk_size or self._out_chunk_size)
        props = {
            "app": app,
            "flashVer": "FMLE/3.0 (compatible; sluice-e2e)",
            "tcUrl": tc_url or "rtmp://%s:%d/%s" % (self.host, self.port, app),
            "fpad": False,
            "capabilities": 15.0,
            "audioCodecs": 4071.0,
            "videoCodecs": 252.0,
            "videoFunction": 1.0,
            "objectEncoding": 0.0,
            "type": "nonprivate",
        }
        if extra:
            props.update(extra)
        result = self.call("connect", props, *connect_args, timeout=timeout)
        if result.ok:
            self.send_window_ack_size(2500000)
        return result

    def create_stream(self, timeout=None):
        r = self.call("createStream", None, timeout=timeout)
        if not r.ok:
            raise RtmpError("createStream failed: %r" % (r,))
        sid = next((a for a in r.args if isinstance(a, float)), None)
        if sid is None:
            raise RtmpError("createStream result without a stream id: %r" % (r,))
        return int(sid)

    def sync(self, timeout=None):
        """A round trip: returns once the server has handled everything sent before.

        Commands on one connection are handled in order, so the answer to a
        createStream proves that earlier commands (e.g. play) were processed.
        """
        self.create_stream(timeout)

    def publish(self, stream_id, name, kind="live", fmle=True):
        """Sends (releaseStream, FCPublish,) publish. Returns immediately."""
        if fmle:
            self.send_command("releaseStream", None, name)
            self.send_command("FCPublish", None, name)
        self.send_command("publish", None, name, kind, msid=stream_id,
                          csid=CSID_STREAM_COMMAND, txn=0)

    def play(self, stream_id, name, start=-2.0, buffer_ms=1000):
        self.send_message(CSID_PROTOCOL, MSG_USER_CONTROL, 0, 0,
                          struct.pack(">HII", UC_SET_BUFFER_LENGTH, stream_id, buffer_ms))
        self.send_command("play", None, name, float(start), msid=stream_id,
                          csid=CSID_STREAM_COMMAND, txn=0)

    def unpublish(self, stream_id, name):
        """FMLE-style stop: FCUnpublish, then deleteStream."""
        self.send_command("FCUnpublish", None, name)
        self.delete_stream(stream_id)

    def delete_stream(self, stream_id):
        self.send_command("deleteStream", None, float(stream_id), txn=0)

    def send_video(self, stream_id, ts, payload, force_fmt=None):
        self.send_message(CSID_VIDEO, MSG_VIDEO, stream_id, ts, payload, force_fmt)

    def send_audio(self, stream_id, ts, payload, force_fmt=None):
        self.send_message(CSID_AUDIO, MSG_AUDIO, stream_id, ts, payload, force_fmt)

    def send_data(self, stream_id, ts, payload):
        self.send_message(CSID_DATA, MSG_DATA_AMF0, stream_id, ts, payload)

    # ----------------------------------------------------------- flow control
    def pause_reading(self):
        """Stops reading from the socket (a stuck player); data piles up in the kernel."""
        self._paused.clear()

    def resume_reading(self):
        self._paused.set()

    # ----------------------------------------------------------------- waits
    def wait_for(self, predicate, timeout, what, fail_on_close=True):
        """Waits on the condition until predicate() is true; raises RtmpTimeout.

        With fail_on_close, a connection that closes first ends the wait at
        once (nothing more can arrive) with the same exception type.
        """
        deadline = time.monotonic() + timeout
        with self._cv:
            while not predicate():
                if fail_on_close and self.closed:
                    raise RtmpTimeout("%s: connection closed while waiting for %s; %s"
                                      % (self.name, what, self.summary()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RtmpTimeout("%s: timed out after %.1fs waiting for %s; %s"
                                      % (self.name, timeout, what, self.summary()))
                self._cv.wait(min(left, 0.5))

    def status_codes(self):
        with self._cv:
            return [s.code for s in self.statuses]

    def wait_status(self, code, timeout=None, after=0):
        """Waits for an onStatus with this code (the (after+1)-th such); returns it."""
        timeout = self.timeout if timeout is None else timeout

        def found():
            return sum(1 for s in self.statuses if s.code == code) > after

        self.wait_for(found, timeout, "onStatus %s" % code)
        with self._cv:
            return [s for s in self.statuses if s.code == code][after]

    def wait_status_any(self, codes, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        self.wait_for(lambda: any(s.code in codes for s in self.statuses), timeout,
                      "onStatus in %s" % (codes,))
        with self._cv:
            return next(s for s in self.statuses if s.code in codes)

    def video_frames(self):
        with self._cv:
            return [m for m in self.media if m.is_frame]

    def audio_frames(self):
        with self._cv:
            return [m for m in self.media if m.is_audio and not m.seq_header]

    def wait_video_frames(self, n, timeout, since=0):
        """Waits until at least n coded video frames arrived after index `since` of media."""
        self.wait_for(lambda: sum(1 for m in self.media[since:] if m.is_frame) >= n, timeout,
                      "%d video frames" % n)

    def wait_closed(self, timeout):
        self.wait_for(lambda: self.closed, timeout, "the connection to close",
                      fail_on_close=False)

    def is_closed(self):
        with self._cv:
            return self.closed

    def summary(self):
        v = sum(1 for m in self.media if m.is_video)
        a = sum(1 for m in self.media if m.is_audio)
        return ("statuses=%s results=%s video=%d audio=%d closed=%s (%s) bytes_in=%d"
                % ([s.code for s in self.statuses],
                   {k: (r.name, r.code) for k, r in self.results.items()},
                   v, a, self.closed, self.close_reason, self.bytes_in))

    # ----------------------------------------------------------------- close
    def close(self, rst=False):
        """Closes the connection; rst=True aborts it with a TCP reset instead of a FIN."""
        self._stop = True
        self._paused.set()
        if self.sock is not None:
            try:
                if rst:
                    self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                         struct.pack("ii", 1, 0))
                    # SHUT_RD wakes our reader thread without sending anything;
                    # close() with linger 0 then sends the reset.
                    self.sock.shutdown(socket.SHUT_RD)
                else:
                    self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                self.sock.close()
            except OSError:
                pass
        if self._reader is not None:
            self._reader.join(self.timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------
# Convenience constructors
# --------------------------------------------------------------------------

def open_player(host, port, app, stream, timeout=5.0, expect_start=True, **kw):
    """Connects and plays; returns (client, stream_id). Raises if connect fails."""
    c = RtmpClient(host, port, timeout=timeout, name=kw.pop("name", "player"), **kw)
    try:
        r = c.connect(app)
        if not r.ok:
            raise RtmpError("connect to %s failed: %r" % (app, r))
        sid = c.create_stream()
        c.play(sid, stream)
        if expect_start:
            c.wait_status("NetStream.Play.Start", timeout)
    except BaseException:
        c.close()
        raise
    return c, sid


def open_publisher(host, port, app, stream, timeout=5.0, expect_start=True, kind="live", **kw):
    """Connects and publishes (kind: live, record or append); returns (client, stream_id)."""
    c = RtmpClient(host, port, timeout=timeout, name=kw.pop("name", "publisher"), **kw)
    try:
        r = c.connect(app)
        if not r.ok:
            raise RtmpError("connect to %s failed: %r" % (app, r))
        sid = c.create_stream()
        c.publish(sid, stream, kind=kind)
        if expect_start:
            c.wait_status("NetStream.Publish.Start", timeout)
    except BaseException:
        c.close()
        raise
    return c, sid


# --------------------------------------------------------------------------
# FLV input
# --------------------------------------------------------------------------

class FlvTag:
    __slots__ = ("type", "ts", "data")

    def __init__(self, type_, ts, data):
        self.type = type_
        self.ts = ts
        self.data = data

    @property
    def keyframe(self):
        return self.type == MSG_VIDEO and video_is_keyframe(self.data)

    @property
    def seq_header(self):
        return (self.type == MSG_VIDEO and video_is_seq_header(self.data)) or \
            (self.type == MSG_AUDIO and audio_is_seq_header(self.data))


def read_flv(path):
    """Returns the list of FlvTag in an FLV file."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:3] != b"FLV":
        raise ValueError("%s is not an FLV file" % path)
    pos = struct.unpack(">I", data[5:9])[0] + 4
    tags = []
    while pos + 11 <= len(data):
        t = data[pos] & 0x1F
        size = int.from_bytes(data[pos + 1:pos + 4], "big")
        ts = int.from_bytes(data[pos + 4:pos + 7], "big") | (data[pos + 7] << 24)
        body = data[pos + 11:pos + 11 + size]
        if len(body) < size:
            break
        tags.append(FlvTag(t, ts, body))
        pos += 11 + size + 4
    return tags


class FlvPublisher:
    """Publishes FLV tags over an RtmpClient from a thread, paced by timestamps.

    Sequence headers and metadata are sent first; with loop=True the media
    tags repeat with continuous timestamps until stop(). ts_offset shifts
    every timestamp (e.g. near 2**24 to exercise extended timestamps).
    """

    def __init__(self, client, stream_id, tags, realtime=True, loop=True, ts_offset=0,
                 speed=1.0):
        self.client = client
        self.stream_id = stream_id
        self.headers = [t for t in tags if t.seq_header or t.type == MSG_DATA_AMF0]
        self.body = [t for t in tags if not (t.seq_header or t.type == MSG_DATA_AMF0)]
        self.realtime = realtime
        self.loop = loop
        self.ts_offset = ts_offset
        self.speed = speed
        self.sent = []           # [(type, ts, size, crc)] of everything sent, in order
        self.error = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="flv-publisher", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self, timeout=5.0):
        self._stop.set()
        self._thread.join(timeout)

    @property
    def running(self):
        return self._thread.is_alive()

    def _send(self, tag, ts):
        ts = (ts + self.ts_offset) & 0xFFFFFFFF
        if tag.type == MSG_DATA_AMF0:
            body = tag.data
            if not body.startswith(amf0_encode("@setDataFrame")):
                body = amf0_encode("@setDataFrame") + body
            self.client.send_data(self.stream_id, ts, body)
        elif tag.type == MSG_VIDEO:
            self.client.send_video(self.stream_id, ts, tag.data)
        elif tag.type == MSG_AUDIO:
            self.client.send_audio(self.stream_id, ts, tag.data)
        self.sent.append((tag.type, ts, len(tag.data), zlib.crc32(tag.data)))

    def _main(self):
        try:
            for t in self.headers:
                self._send(t, 0 if not self.body else self.body[0].ts)
            if not self.body:
                return
            first = self.body[0].ts
            span = self.body[-1].ts - first + 40
            base_wall = time.monotonic()
            loop_n = 0
            while not self._stop.is_set():
                for t in self.body:
                    ts = t.ts - first + loop_n * span
                    if self.realtime:
                        due = base_wall + ts / 1000.0 / self.speed
                        # Pacing: a wait on the stop event, so stop() interrupts it.
                        if self._stop.wait(max(0.0, due - time.monotonic())):
                            return
                    elif self._stop.is_set():
                        return
                    self._send(t, ts + first)
                loop_n += 1
                if not self.loop:
                    return
        except OSError as e:
            self.error = e


def random_bytes(n, seed):
    """Deterministic garbage for a seed."""
    return random.Random(seed).randbytes(n)
