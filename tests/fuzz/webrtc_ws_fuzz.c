/*
 * Fuzz target for Red5's WebSocket signalling (src/proto/webrtc/webrtc_ws.c):
 * the message dispatch (size and rate caps, jansson parse with duplicates
 * rejected, the top-level key lookup over built-in and added handlers, the
 * built-in handlers' field extraction and state checks) and, behind it, the
 * shared_objects module's JSON messages (so_json.c) on the real carrier,
 * with no socket: the protocol's signalling part is started on a zeroed
 * wrtc_t whose HTTP service is a fake (route_add keeps the route,
 * ws_accept hands back the socket's ops, ws_send checks each answer is a
 * JSON object, ws_close asks for the close that the fake then delivers, as
 * the HTTP server does). Each input starts a core with only the
 * shared_objects module, opens three sockets on /live/?id=so-N, plays the
 * input, stops everything and aborts if the counted allocator is not back
 * where it started.
 *
 * Not reached: handleOffer and requestOffer start a WebRTC session (UDP
 * socket, DTLS identity, ICE candidates of a started protocol), which a
 * zeroed wrtc_t does not have: a message with either key is skipped (found
 * by parsing it as webrtc_ws.c does, so escaped spellings are skipped too).
 * The session paths are covered by the SDP, STUN, DTLS and SCTP targets and
 * the e2e/browser tests.
 *
 * Input: records separated by 0x1e (RS); a record's first byte b picks the
 * socket ((b & 3) % 3) and what happens: (b & 0x0c) == 0 the rest is a text
 * message, 0x04 a binary one, 0x08 the peer closes the socket, 0x0c a
 * closed socket opens again. Printable seeds: '`' 'a' 'b' text on sockets
 * 0..2, 'h' 'i' 'j' close them, 'l' 'm' 'n' reopen them.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "app/admission.h"
#include "app/core.h"
#include "app/services.h"
#include "app/svc/http.h"
#include "base/alloc.h"
#include "base/log.h"
#include "builtin_config.h"
#include "modules/plugins/plugins.h"
#include "modules/shared_objects/shared_objects.h"
#include "proto/webrtc/webrtc_internal.h"
#include "sluice/errors.h"

#define N_SOCKS 3

/* One fake socket: the request that opened it, then the ops it was given. */
typedef struct fsock {
    int open;              /* accepted and not yet closed */
    int close_asked;       /* ws_close was called: deliver on_close */
    const sl_ws_ops_t *ops;
    void *ud;
    char id[16];
} fsock_t;

static struct {
    sl_http_handler_cb cb; /* the route's handler */
    void *cb_ud;
    int routed;
    fsock_t socks[N_SOCKS];
    fsock_t *accepting;    /* the socket whose upgrade is being handled */
} g;

static int f_route_add(void *svc, const sl_http_route_spec_t *spec, sl_http_route_t **out)
{
    (void)svc;
    if (g.routed)
        abort();
    g.cb = spec->cb;
    g.cb_ud = spec->ud;
    g.routed = 1;
    *out = (sl_http_route_t *)&g;
    return 0;
}

static void f_route_remove(void *svc, sl_http_route_t *route)
{
    (void)svc;
    if (route != (sl_http_route_t *)&g)
        abort();
    g.routed = 0;
}

static const char *f_req_path(const sl_http_req_t *req) { (void)req; return "/live/"; }
static const char *f_req_query(const sl_http_req_t *req) { (void)req; return g.accepting->id; }

static int f_req_query_get(const sl_http_req_t *req, const char *key, char *out, size_t cap)
{
    (void)req;
    if (strcmp(key, "id"))
        return -1;
    int n = snprintf(out, cap, "%s", g.accepting->id + 3); /* past "id=" */
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

static const char *f_req_header(const sl_http_req_t *req, const char *name)
{
    (void)req;
    return strcasecmp(name, "Upgrade") ? NULL : "websocket";
}

static const char *f_req_remote(const sl_http_req_t *req, int *port)
{
    (void)req;
    if (port)
        *port = 5000;
    return "127.0.0.1";
}

static int f_respond(sl_http_req_t *req, int status, const char *ct, const void *body, size_t len,
                     const char *headers)
{
    (void)req, (void)status, (void)ct, (void)body, (void)len, (void)headers;
    return 0;
}

static int f_ws_accept(sl_http_req_t *req, const sl_ws_ops_t *ops, void *ud, sl_ws_t **out)
{
    (void)req;
    fsock_t *s = g.accepting;
    s->ops = ops;
    s->ud = ud;
    s->open = 1;
    s->close_asked = 0;
    *out = (sl_ws_t *)s;
    return 0;
}

static int f_ws_send(sl_ws_t *ws, const void *data, size_t len, int is_text)
{
    fsock_t *s = (fsock_t *)ws;
    if (!s->open || !is_text)
        abort();
    json_t *o = json_loadb(data, len, 0, NULL);
    if (!json_is_object(o))
        abort(); /* every answer is a JSON object */
    json_decref(o);
    if (getenv("SL_FUZZ_TRACE")) /* what a seed reaches: SL_FUZZ_TRACE=1 webrtc_ws_fuzz_replay FILE */
        fprintf(stderr, "sock %d <- %.*s\n", (int)(s - g.socks), (int)len, (const char *)data);
    return 0;
}

static void f_ws_close(sl_ws_t *ws, int code, const char *reason)
{
    (void)code, (void)reason;
    fsock_t *s = (fsock_t *)ws;
    if (!s->open)
        abort();
    s->close_asked = 1;
}

static const sl_http_svc_t g_http = {
    .route_add = f_route_add, .route_remove = f_route_remove, .req_path = f_req_path,
    .req_query = f_req_query, .req_query_get = f_req_query_get, .req_header = f_req_header,
    .req_remote = f_req_remote, .respond = f_respond, .ws_accept = f_ws_accept,
    .ws_send = f_ws_send, .ws_close = f_ws_close,
};

static void sock_open(fsock_t *s)
{
    if (s->open || !g.routed)
        return;
    g.accepting = s;
    int rc = g.cb((sl_http_req_t *)s, g.cb_ud);
    g.accepting = NULL;
    if (rc)
        abort(); /* an upgrade on /live/?id= is the route's */
}

/* The peer (or, after ws_close, the server) ends the socket. */
static void sock_closed(fsock_t *s)
{
    if (!s->open)
        return;
    s->open = 0;
    s->close_asked = 0;
    s->ops->on_close((sl_ws_t *)s, s->ud);
}

/* handleOffer and requestOffer start a real session (see the header). */
static int starts_session(const uint8_t *p, size_t len)
{
    json_t *m = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, NULL);
    int yes = json_is_object(m) &&
              (json_object_get(m, "handleOffer") || json_object_get(m, "requestOffer"));
    json_decref(m);
    return yes;
}

/* One turn of the loop: due timers (the protocol's idle timer keeps the loop alive). */
static void turn(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_NOWAIT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Entry point called by libFuzzer (or the replayer) once per input; always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_log_set_level(SL_LOG_ERROR);
    int64_t bytes0 = sl_alloc_bytes();
    memset(&g, 0, sizeof g);
    sl_config_t cfg;
    static const char yaml[] = "webrtc:\n  ws_max_message_bytes: 4k\n  ws_messages_per_second: 40\n"
                               "apps:\n  live:\n    so_max_objects: 4\n    so_max_keys: 8\n"
                               "    so_max_value_bytes: 64\n";
    if (sl_config_defaults(&cfg) || sl_config_load_string(&cfg, yaml, strlen(yaml), "fuzz", NULL, NULL))
        abort();
    uv_loop_t loop;
    sl_core_t core;
    if (uv_loop_init(&loop) || sl_core_init(&core, &loop, &cfg))
        abort();
    static const sl_builtin_t *const only[] = {&sl_shared_objects_builtin, NULL};
    sl_plugins_t *mod = NULL;
    if (sl_plugins_start(&core, NULL, only, &mod))
        abort();
    static wrtc_t w; /* large: the protocol's whole state, zeroed */
    memset(&w, 0, sizeof w);
    w.core = &core;
    w.http = &g_http;
    w.http_ud = &g;
    sl_list_init(&w.pcs);
    if (wrtc_ws_start(&w))
        abort();
    turn(&loop); /* the module finds the service from its timer */

    for (int i = 0; i < N_SOCKS; i++) {
        snprintf(g.socks[i].id, sizeof g.socks[i].id, "id=so-%d", i);
        sock_open(&g.socks[i]);
    }
    size_t pos = 0;
    while (pos < size) {
        const uint8_t *rec = data + pos;
        const uint8_t *end = memchr(rec, 0x1e, size - pos);
        size_t len = end ? (size_t)(end - rec) : size - pos;
        pos += len + 1;
        if (len == 0)
            continue;
        fsock_t *s = &g.socks[(rec[0] & 3) % N_SOCKS];
        switch (rec[0] & 0x0c) {
        case 0x00:
        case 0x04:
            if (s->open && !starts_session(rec + 1, len - 1))
                s->ops->on_message((sl_ws_t *)s, rec + 1, len - 1, (rec[0] & 0x0c) == 0, s->ud);
            break;
        case 0x08:
            sock_closed(s);
            break;
        default:
            sock_open(s);
            break;
        }
        if (s->close_asked)
            sock_closed(s);
        turn(&loop); /* admissions that answer from the loop */
    }

    wrtc_ws_stop(&w); /* asks every open socket to close */
    for (int i = 0; i < N_SOCKS; i++)
        sock_closed(&g.socks[i]);
    turn(&loop);
    if (g.routed)
        abort();
    sl_plugins_stop(mod);
    uv_run(&loop, UV_RUN_DEFAULT);
    sl_plugins_free(mod);
    sl_admit_cleanup(&core);
    sl_core_cleanup(&core);
    if (uv_loop_close(&loop))
        abort();
    sl_config_cleanup(&cfg);
    if (sl_alloc_bytes() != bytes0)
        abort();
    return 0;
}
