"""WebRTC observability: an aiortc WHIP publisher (H.264 + Opus + a data channel) and an
aiortc WHEP viewer (with a data channel) of the same stream, seen through the API, the
event stream and /metrics.

Checked:
- the client detail of each session carries a "webrtc" object from the protocol's
  "webrtc" service: kind, transport udp, ICE and DTLS connected, codecs H264/opus,
  packets and bitrates moving the right way, the viewer's RTT from its receiver
  reports, PLIs sent to the publisher, data channel messages in and out;
- the RTMP-style clients list shows neither object (only the detail does);
- the event stream carries publish and play with protocol "webrtc";
- /metrics has the sluice_webrtc_* families (HELP/TYPE, strict parse), with sessions by
  kind and packet, byte, DTLS, STUN and data channel counters that move;
- kicking the viewer through the API ends it: its play_stop/disconnect events arrive,
  the viewer gauge goes back to 0 and its detail is 404;
- ICE-TCP keeps working after an ICE-TCP session ended (the count of connections not
  bound to a session once went below zero there, and every later connection was refused).
"""
import re
import socket
import struct

import pytest
import yaml

from api_helpers import EventReader
from conftest import T, wait_until
from test_metrics import parse_metrics, value
from test_openapi import SPEC_PATH, check_response
from test_webrtc import (HAVE_AIORTC, client, make_offer, needs_aiortc, request, start, stun_request,
                         wait_live, whep_url, whip_url)


def detail(srv, cid):
    r = srv.api.get("applications/live/clients/%s" % cid)
    return r.data if r.status == 200 else None


def webrtc_clients(srv):
    r = srv.api.get("applications/live/clients")
    assert r.status == 200, r
    out = {}
    for c in r.data:
        d = detail(srv, c["id"])
        if d and d.get("connection_protocol") == "webrtc":
            assert "webrtc" not in c, c  # the list stays Red5's short form
            out[d["webrtc"]["kind"]] = d
    return out


def scrape(srv):
    r = srv.api.get("/metrics", token=None)
    assert r.status == 200, r
    return parse_metrics(r.body.decode())


@needs_aiortc
def test_webrtc_sessions_observable(sluice_factory, procs, media_src):
    srv = start(sluice_factory)
    ev = EventReader(srv)
    try:
        m0 = scrape(srv)
        assert value(m0, "sluice_webrtc_sessions", '{kind="publisher"}') == 0
        assert value(m0, "sluice_webrtc_sessions", '{kind="viewer"}') == 0
        assert m0["sluice_webrtc_packets_total"]["type"] == "counter"

        client(procs, "whip", whip_url(srv, "obs"), "--src", str(media_src), "--seconds", "90",
               "--datachannel", "hello", name="whip")
        wait_live(srv, "obs")
        client(procs, "whep", whep_url(srv, "obs"), "--seconds", "80", "--frames", "1000000",
               "--expect-dc", "1", name="whep")

        def both_flowing():
            s = webrtc_clients(srv)
            if set(s) != {"publisher", "viewer"}:
                return None
            p, v = s["publisher"]["webrtc"], s["viewer"]["webrtc"]
            ok = (p["packets_in"] > 50 and p["bitrate_in_kbps"] > 0 and v["packets_out"] > 50 and
                  v["bitrate_out_kbps"] > 0 and v["rtt_ms"] is not None and
                  v["datachannel_messages_out"] > 0)
            return s if ok else None
        s = wait_until(both_flowing, T(40), 0.5,
                       lambda: "both sessions flowing (%s)\n%s" % (webrtc_clients(srv), srv.log_tail(40)))

        pub, view = s["publisher"], s["viewer"]
        # both answers validate against docs/openapi.yaml, with nothing undocumented
        spec = yaml.safe_load(SPEC_PATH.read_text())
        path = "/api/v1/applications/{app}/clients/{clientId}"
        for c in (pub, view):
            resp = srv.api.get("applications/live/clients/%s" % c["id"])
            problems = check_response(spec, "get", path, spec["paths"][path]["get"], resp, c["id"])
            assert not problems, problems
        p, v = pub["webrtc"], view["webrtc"]
        for w in (p, v):
            assert w["transport"] == "udp", w
            assert w["ice_state"] == "connected" and w["dtls_state"] == "connected", w
            assert w["video_codec"] == "H264" and w["audio_codec"] == "opus", w
            assert w["datachannel"] is True, w
            assert isinstance(w["connect_ms"], int) and w["connect_ms"] >= 0, w
            assert 0 <= w["loss_fraction"] <= 1 and w["packets_lost"] >= 0, w
            assert w["bytes_in"] > 0 and w["bytes_out"] > 0, w
        assert pub["role"] == "publisher" and view["role"] == "subscriber"
        # the publisher receives, the viewer sends
        assert p["packets_in"] > p["packets_out"] == 0, p
        assert v["packets_out"] > v["packets_in"] == 0, v
        assert p["bytes_in"] > p["bytes_out"] and v["bytes_out"] > v["bytes_in"], (p, v)
        assert p["rtt_ms"] is None and 0 <= v["rtt_ms"] < 2000, (p, v)
        # a keyframe is asked of the publisher at start (and every keyframe_interval)
        assert p["pli_sent"] >= 1 and p["pli_received"] == 0, p
        assert v["nack_sent"] == 0 and v["retransmissions"] <= v["nack_received"], v
        assert p["datachannel_messages_in"] > 0, p

        pub_ev = ev.wait_for(lambda e: e["event"] == "publish" and e.get("stream") == "obs",
                             what="publish")
        play_ev = ev.wait_for(lambda e: e["event"] == "play" and e.get("stream") == "obs",
                              what="play")
        assert pub_ev["protocol"] == "webrtc" and pub_ev["session"] == pub["id"], pub_ev
        assert play_ev["protocol"] == "webrtc" and play_ev["session"] == view["id"], play_ev

        m1 = scrape(srv)
        assert value(m1, "sluice_webrtc_sessions", '{kind="publisher"}') == 1
        assert value(m1, "sluice_webrtc_sessions", '{kind="viewer"}') == 1
        assert value(m1, "sluice_connections", '{protocol="webrtc"}') == 2
        for name, labels in (("sluice_webrtc_packets_total", '{direction="in"}'),
                             ("sluice_webrtc_packets_total", '{direction="out"}'),
                             ("sluice_webrtc_bytes_total", '{direction="in"}'),
                             ("sluice_webrtc_bytes_total", '{direction="out"}'),
                             ("sluice_webrtc_datachannel_messages_total", '{direction="in"}'),
                             ("sluice_webrtc_datachannel_messages_total", '{direction="out"}'),
                             ("sluice_webrtc_stun_requests_total", ""),
                             ("sluice_webrtc_plis_sent_total", "")):
            assert value(m1, name, labels) > value(m0, name, labels), name
        assert value(m1, "sluice_webrtc_dtls_handshakes_total") == 2
        assert value(m1, "sluice_webrtc_sessions_created_total") == 2
        assert value(m1, "sluice_webrtc_srtp_failures_total") == 0
        for name in ("sluice_webrtc_sessions_failed_total", "sluice_webrtc_stun_refused_total",
                     "sluice_webrtc_nacks_received_total", "sluice_webrtc_nacks_sent_total",
                     "sluice_webrtc_retransmissions_total", "sluice_webrtc_plis_received_total",
                     "sluice_webrtc_datagrams_unknown_total"):
            assert m1[name]["type"] == "counter" and value(m1, name) >= 0, name
        assert value(m1, "sluice_webrtc_packets_total", '{direction="in"}') >= p["packets_in"]

        # kick the viewer through the API
        r = srv.api.delete("applications/live/clients/%s" % view["id"])
        assert r.status == 200, r
        ev.wait_for(lambda e: e["event"] == "play_stop" and e["session"] == view["id"],
                    what="viewer play_stop")
        ev.wait_for(lambda e: e["event"] == "disconnect" and e["session"] == view["id"],
                    what="viewer disconnect")
        wait_until(lambda: detail(srv, view["id"]) is None, T(5), 0.1, "viewer gone")
        m2 = scrape(srv)
        assert value(m2, "sluice_webrtc_sessions", '{kind="viewer"}') == 0
        assert value(m2, "sluice_webrtc_sessions", '{kind="publisher"}') == 1
        assert detail(srv, pub["id"])["webrtc"]["ice_state"] == "connected"
    finally:
        ev.close()


def tcp_bind(srv, answer, offer):
    """Sends a valid binding request for the answer's session over a new ICE-TCP
    connection; returns (socket, response type) with the socket left open."""
    ufrag = re.search(r"a=ice-ufrag:(\S+)", answer).group(1)
    pwd = re.search(r"a=ice-pwd:(\S+)", answer).group(1)
    remote_ufrag = re.search(r"a=ice-ufrag:(\S+)", offer).group(1)
    msg, tid = stun_request("%s:%s" % (ufrag, remote_ufrag), pwd)
    s = socket.create_connection(("127.0.0.1", srv.webrtc_port), timeout=5)
    s.sendall(struct.pack("!H", len(msg)) + msg)
    buf = b""
    while len(buf) < 2:
        chunk = s.recv(2 - len(buf))
        if not chunk:
            return s, None  # closed by the server without an answer
        buf += chunk
    n = struct.unpack("!H", buf)[0]
    resp = b""
    while len(resp) < n:
        chunk = s.recv(n - len(resp))
        if not chunk:
            return s, None
        resp += chunk
    assert resp[8:20] == tid
    return s, struct.unpack("!H", resp[:2])[0]


def test_ice_tcp_after_a_session_ended(sluice_factory, procs, media_src):
    from conftest import ffmpeg_publish_cmd
    srv = start(sluice_factory)
    procs.start(ffmpeg_publish_cmd(media_src, srv.url("live", "t2")), "ffmpeg")
    wait_live(srv, "t2")
    if not HAVE_AIORTC:
        pytest.skip("needs an offer from aiortc")
    socks = []
    try:
        for round_ in range(3):
            offer = make_offer()
            st, h, answer = request(srv, "POST", "/live/whep/endpoint/t2", offer,
                                    {"Content-Type": "application/sdp"})
            assert st == 201, answer
            s, typ = tcp_bind(srv, answer, offer)
            socks.append(s)
            assert typ == 0x0101, "round %d: ICE-TCP binding refused\n%s" % (round_, srv.log_tail(30))
            # The Location token is not the session id: find the session among the subscribers.
            # (It has not played yet: no DTLS. It is among the app's clients.)
            ids = [c["id"] for c in srv.api.data("applications/live/clients")]
            tcp = [i for i in ids if ((detail(srv, i) or {}).get("webrtc") or {}).get("transport") == "tcp"]
            assert len(tcp) == 1, ids
            cid = tcp[0]
            st, _, _ = request(srv, "DELETE", h["location"])
            assert st == 200
            wait_until(lambda: detail(srv, cid) is None, T(5), 0.05, "session freed")
    finally:
        for s in socks:
            s.close()


def test_no_webrtc_metrics_when_off(sluice_factory):
    srv = start(sluice_factory, extra={"webrtc": {"enabled": False}})
    m = scrape(srv)
    assert not [n for n in m if n.startswith("sluice_webrtc_")], sorted(m)


if __name__ == "__main__":
    pytest.main([__file__])
