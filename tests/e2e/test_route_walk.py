"""The route walk (issue 11, item 3): no HTTP route answers stream data without credentials.

The server lists its own route table (GET /api/v1/server/routes, from
sl_http_route_doc): every route says which URL templates of stream data it serves.
A route registered without that documentation fails the walk, so a new route cannot
be missed. On apps with auth (simple auth; JWT), with a stream published and
recorded, every template is requested:
  - without credentials: never a 2xx (no media, no listing), and the same answer for
    the live stream and for an absent one (no probing of stream keys);
  - with wrong credentials: never a 2xx;
  - with valid credentials: never 401/403, and what exists is served (200).
"""

import http.client
import re
import time
import urllib.parse

import jwt
import pytest

from api_helpers import TOKEN, http_port_of
from conftest import HOST, T, ffmpeg_publish_cmd, port_open, wait_until

SECRET = "sluice-e2e-route-walk-secret-0123456789ab"
USERS = "viewer s3cret\n"


# A WHEP offer (recvonly H.264 + Opus) for the WebRTC play route, which takes a POST.
WHEP_OFFER = "\r\n".join([
    "v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
    "m=video 9 UDP/TLS/RTP/SAVPF 102", "c=IN IP4 0.0.0.0", "a=mid:0", "a=recvonly", "a=rtcp-mux",
    "a=ice-ufrag:walk", "a=ice-pwd:walkwalkwalkwalkwalkwalk", "a=setup:actpass",
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
    "a=rtpmap:102 H264/90000", "a=fmtp:102 packetization-mode=1;profile-level-id=42e01f",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "c=IN IP4 0.0.0.0", "a=mid:1", "a=recvonly", "a=rtcp-mux",
    "a=ice-ufrag:walk", "a=ice-pwd:walkwalkwalkwalkwalkwalk", "a=setup:actpass",
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32), "a=rtpmap:111 opus/48000/2", ""])


def get(port, path, headers=None):
    c = http.client.HTTPConnection(HOST, port, timeout=T(10))
    try:
        if "/whep/endpoint/" in path:  # WHEP plays by POSTing an offer
            c.request("POST", path, body=WHEP_OFFER,
                      headers=dict(headers or {}, **{"Content-Type": "application/sdp"}))
        else:
            c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        # a live HTTP-FLV answer never ends: read a little and hang up
        body = r.read(4096) if r.getheader("content-length") is None else r.read()
        return r.status, body
    finally:
        c.close()


@pytest.fixture(scope="module")
def walk_srv(module_sluice_factory, module_procs, media_src, tmp_path_factory):
    d = tmp_path_factory.mktemp("walk")
    (d / "users.txt").write_text(USERS)
    cfg = {
        "api": {"access_token": TOKEN, "auth_fail_limit": 100000},
        "auth": {"simple_file": str(d / "users.txt"), "jwt_secret": SECRET},
        "apps": {
            # simple auth on every protocol: the publisher passes credentials too
            "simple": {"auth_simple": True, "record": True, "hls_segment": "1s"},
            # JWT on the HTTP surfaces and WebRTC (the publisher pushes over RTMP without a token);
            # LL-HLS so that parts and init sections exist; MP4 recordings
            "jwtapp": {"auth_jwt": True, "auth_protocols": "hls,http-flv,http,webrtc", "record": True,
                       "record_format": "mp4", "hls_low_latency": True, "hls_segment": "1s"},
        },
    }
    srv = module_sluice_factory(config=cfg)
    srv.http = http_port_of(srv)
    wait_until(lambda: port_open(srv.http), T(10), message="http port")
    good_simple = "username=viewer&password=s3cret"
    module_procs.start(ffmpeg_publish_cmd(media_src, srv.url("simple", "cam1?" + good_simple)), "pub-simple")
    module_procs.start(ffmpeg_publish_cmd(media_src, srv.url("jwtapp", "cam1")), "pub-jwt")
    token = jwt.encode({"exp": int(time.time()) + 3600, "roles": "red5-subscriber"}, SECRET,
                       algorithm="HS256")
    srv.good = {"simple": good_simple, "jwtapp": "token=" + token}
    srv.bad = {"simple": "username=viewer&password=wrong",
               "jwtapp": "token=" + jwt.encode({"exp": int(time.time()) + 3600}, "another-secret-"
                                               "another-secret-xx", algorithm="HS256")}
    # live over HLS with credentials, with at least two segments (the recording has data)
    for app in ("simple", "jwtapp"):
        def ready(app=app):
            st, body = get(srv.http, "/%s/cam1.m3u8?%s" % (app, srv.good[app]))
            if st != 200:
                return False
            media = [l for l in body.decode().splitlines() if l and not l.startswith("#")][0]
            st, body = get(srv.http, "/%s/%s" % (app, media))
            return st == 200 and body.decode().count("#EXTINF:") >= 2
        wait_until(ready, T(40), 0.25, "HLS of %s/cam1" % app)
    return srv


def routes(srv):
    st, body = get(srv.http, "/api/v1/server/routes?accessToken=" + TOKEN)
    assert st == 200, body
    import json
    return json.loads(body)["data"]


def values(srv, app):
    """Placeholder values for the live stream of app: a listed segment, part, init section."""
    st, body = get(srv.http, "/%s/cam1.m3u8?%s" % (app, srv.good[app]))
    media = [l for l in body.decode().splitlines() if l and not l.startswith("#")][0]
    st, body = get(srv.http, "/%s/%s" % (app, media))
    text = body.decode()
    msn = re.findall(r"^cam1_(\d+)\.(?:ts|m4s)", text, re.M)[0]
    part = (re.findall(r"cam1_part(\d+)\.m4s", text) or ["0"])[0]
    gen = (re.findall(r"cam1_init(\d+)\.mp4", text) or ["1"])[0]
    return {"msn": msn, "part": part, "gen": gen}


def expand(template, app, stream, vals):
    out = template.replace("{app}", app).replace("{stream}", stream)
    for k, v in vals.items():
        out = out.replace("{%s}" % k, v)
    return out


def with_query(path, q):
    return path + ("&" if "?" in path else "?") + q if q else path


def test_every_route_is_documented(walk_srv):
    table = routes(walk_srv)
    assert table, "the server lists no routes"
    undocumented = [r for r in table if r["name"] is None or r["serves"] is None]
    assert not undocumented, "routes without sl_http_route_doc: %r" % undocumented
    names = {r["name"] for r in table}
    assert {"hls", "http-flv", "recordings", "api"} <= names, names


def test_routes_are_listed_in_dispatch_order(walk_srv):
    """Routes carry a prefix and a named priority and are listed in dispatch order
    (core, app, static; longer prefix first within one); the static files come last;
    every URL template a route serves passes its own prefix and suffix filter."""
    table = routes(walk_srv)
    rank = {"core": 0, "app": 1, "static": 2}
    keys = [(rank[r["priority"]], -len(r["prefix"])) for r in table]
    assert keys == sorted(keys), table
    by_name = {r["name"]: r for r in table}
    assert by_name["api"]["priority"] == "core" and by_name["api"]["prefix"] == "/api/v1/"
    for name in ("hls", "http-flv", "recordings"):
        assert by_name[name]["priority"] == "app", by_name[name]
    if "static" in by_name:
        assert table[-1]["name"] == "static", table
    for r in table:
        for tpl in r["serves"]:
            assert tpl.startswith(r["prefix"]), (tpl, r)
            if r["suffixes"]:
                assert any(tpl.endswith(sfx) for sfx in r["suffixes"].split()), (tpl, r)


@pytest.mark.parametrize("app", ["simple", "jwtapp"])
def test_no_route_serves_stream_data_without_credentials(walk_srv, app):
    srv = walk_srv
    vals = values(srv, app)
    templates = [t for r in routes(srv) for t in r["serves"]]
    assert len(templates) >= 8, templates
    served = []
    for tpl in templates:
        live = expand(tpl, app, "cam1", vals)
        absent = expand(tpl, app, "nosuch", vals)
        # no credentials: refused, and the same for a live and an absent stream
        a, b = get(srv.http, live), get(srv.http, absent)
        assert not 200 <= a[0] < 300, (live, a[0], a[1][:200])
        assert a[0] == b[0] == 401, (live, a[0], absent, b[0])
        assert a[1] == b[1], (live, a[1][:100], b[1][:100])
        # wrong credentials: refused
        a = get(srv.http, with_query(live, srv.bad[app]))
        assert a[0] == 403, (live, a[0], a[1][:200])
        # valid credentials: never refused, and present data is served
        a = get(srv.http, with_query(live, srv.good[app]))
        assert a[0] not in (401, 403), (live, a[0], a[1][:200])
        if a[0] == 200:
            served.append(tpl)
        b = get(srv.http, with_query(absent, srv.good[app]))
        assert b[0] == 404 or "mediafiles" in absent, (absent, b[0])
    ll = app == "jwtapp"
    must = {"/{app}/{stream}.m3u8", "/{app}/{stream}.flv", "/{app}/mediafiles",
            "/{app}/streams/{stream}.mp4" if ll else "/{app}/streams/{stream}.flv",
            "/{app}/{stream}_{msn}.m4s" if ll else "/{app}/{stream}_{msn}.ts"}
    if ll:
        must |= {"/{app}/{stream}_part{part}.m4s", "/{app}/{stream}_init{gen}.mp4"}
    assert must <= set(served), (must - set(served), served)
    # the listing with credentials names the recording
    st, body = get(srv.http, "/%s/mediafiles?%s" % (app, srv.good[app]))
    assert st == 200 and b"cam1" in body, body[:300]


def test_bearer_token_header_is_credentials(walk_srv):
    srv = walk_srv
    token = srv.good["jwtapp"].split("=", 1)[1]
    st, body = get(srv.http, "/jwtapp/mediafiles", {"Authorization": "Bearer " + token})
    assert st == 200 and b"cam1" in body
    st, _ = get(srv.http, "/jwtapp/streams/cam1.mp4", {"Authorization": "Bearer " + token,
                                                        "Range": "bytes=0-99"})
    assert st == 206
    assert get(srv.http, "/jwtapp/streams/cam1.mp4", {"Range": "bytes=0-99"})[0] == 401
