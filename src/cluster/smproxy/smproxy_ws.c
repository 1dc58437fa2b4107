/*
 * The stream manager proxy's WebSocket relay (Red5 SM 2.0's
 * `wss://{sm}/as/v1/proxy/ws/{publish|subscribe}/{app}/{stream}?id=..`):
 * Red5's older WebRTC signalling (docs/webrtc.md, "Red5 WebSocket
 * signalling") carried to the chosen node's own endpoint
 * `/{app}/?id=..&{the client's query}`.
 *
 * Order: the node is chosen (sl__smproxy_pick), resolved (uv_getaddrinfo)
 * and connected, and our upgrade request is sent; only when the node
 * answers 101 is the client's upgrade accepted (ws_accept), so a refusal by
 * the node (404 no such app, 401...) reaches the client as that HTTP
 * status. From then on every message is relayed as it is, text or binary,
 * both ways: the client's side is the HTTP server's WebSocket (app/svc/
 * http.h), the node's side a wslay client context over our TCP socket
 * (masked frames, as RFC 6455 wants from a client). The relay is per
 * message, not per byte: frames are re-framed, their payloads are not
 * touched, so signalling that works directly works through the proxy.
 *
 * Budgets: sessions per server and per client address
 * (sm_proxy.ws_max_sessions, ws_max_per_address); bytes queued towards the
 * node (sm_proxy.ws_max_buffered: a client that outruns the node is cut);
 * towards the client, the HTTP server's WebSocket queue (http.ws_*; a slow
 * client is cut when it is full); the node's messages are capped by the
 * same size as the client's (http.ws_max_message_bytes via the server's
 * refusal, and wslay's max message length here); the upgrade head (8 KB)
 * and the time to set up (sm_proxy.timeout); an idle session
 * (sm_proxy.ws_idle_timeout) is closed.
 *
 * Lifetimes: a session lives from the request until everything it holds is
 * closed: the request answered or accepted, the client WebSocket's
 * on_close, the TCP handle's and the timer's close callbacks, a pending
 * getaddrinfo's callback. ws_end starts closing all of them once;
 * maybe_free frees after the last.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <uv.h>
#include <wslay/wslay.h>

#include "app/svc/streammanager.h"
#include "base/alloc.h"
#include "base/time.h"
#include "cluster/smproxy/smproxy_internal.h"
#include "sluice/errors.h"

#define LOGCTX (&sl__smproxy_log)
#define HEAD_MAX 8192              /* the node's upgrade answer head */
#define READ_CHUNK 16384
#define WS_MSG_MAX (1024 * 1024)   /* one message from the node */

typedef struct smp_ws {
    smp_t *p;
    sl_list_t link;                /* in p->ws while counted */
    sl_http_req_t *req;            /* until accepted or answered */
    sl_ws_t *cws;                  /* the client's WebSocket, until its on_close */
    uv_getaddrinfo_t gai;
    uv_connect_t conn;
    uv_tcp_t tcp;
    uv_timer_t timer;
    int gai_pending, tcp_open, timer_open, closing, upgraded;
    wslay_event_context_ptr ctx;   /* the node's side (client mode), after 101 */
    char head[HEAD_MAX + 1];       /* the node's answer head so far */
    size_t head_len;
    const uint8_t *in;             /* node bytes being fed to wslay */
    size_t in_len;
    size_t out_pending;            /* bytes written to the node, not yet done */
    uint64_t start_ms, last_ms;    /* loop time: setup deadline, idle */
    int port;
    char addr_key[72];             /* "ws:" + client address (its budget) */
    char node[SL_CLUSTER_ID_MAX];
    uint64_t id;                   /* for the admin API */
    uint64_t created_ms;           /* wall clock */
    int secure;                    /* the client came over TLS */
    char client_addr[64];
    char user_agent[256];
    char app[SL_CLUSTER_PATH_MAX];
    char what[1024];
    char upgrade[4096];            /* our request to the node */
    char rbuf[READ_CHUNK];
} smp_ws_t;

typedef struct ws_write {
    uv_write_t w;
    smp_ws_t *s;
    size_t len;
    uint8_t data[];
} ws_write_t;

static void maybe_free(smp_ws_t *s)
{
    if (s->closing && !s->req && !s->cws && !s->gai_pending && !s->tcp_open && !s->timer_open) {
        if (s->ctx)
            wslay_event_context_free(s->ctx);
        sl_free(s);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    smp_ws_t *s = h->data;
    if (h == (uv_handle_t *)&s->tcp)
        s->tcp_open = 0;
    else
        s->timer_open = 0;
    maybe_free(s);
}

static void answer(smp_ws_t *s, int status, const char *msg)
{
    if (!s->req)
        return;
    char body[256];
    int n = snprintf(body, sizeof body, "{\"errorMessage\":\"%s\"}", msg);
    s->p->http->respond(s->req, status, "application/json", body, (size_t)n, NULL);
    s->req = NULL;
}

/* Ends the session (once): answers or closes the client, closes the node's side. */
static void ws_end(smp_ws_t *s, int status, const char *why)
{
    if (s->closing)
        return;
    s->closing = 1;
    smp_t *p = s->p;
    sl_list_remove(&s->link);
    p->n_ws--;
    sl__smproxy_addr_give(p, s->addr_key);
    SL_LOGI(LOGCTX, "smproxy: %s (node %s) ended: %s", s->what, s->node, why);
    answer(s, status, why);
    if (s->cws)
        p->http->ws_close(s->cws, status == 200 ? 1000 : 1011, why); /* on_close follows */
    if (s->gai_pending)
        uv_cancel((uv_req_t *)&s->gai);
    if (s->timer_open) {
        uv_timer_stop(&s->timer);
        uv_close((uv_handle_t *)&s->timer, on_handle_closed);
    }
    if (s->tcp_open && !uv_is_closing((uv_handle_t *)&s->tcp))
        uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
    maybe_free(s);
}

/* ---- the node's side: wslay in client mode ---- */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    (void)flags;
    smp_ws_t *s = user;
    if (!s->in_len) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < s->in_len ? len : s->in_len;
    memcpy(buf, s->in, n);
    s->in += n;
    s->in_len -= n;
    return (ssize_t)n;
}

static void on_written(uv_write_t *w, int status)
{
    ws_write_t *ww = (ws_write_t *)w;
    smp_ws_t *s = ww->s;
    s->out_pending -= ww->len;
    sl_free(ww);
    if (status < 0 && status != UV_ECANCELED)
        ws_end(s, 502, "write to the node failed");
}

/* Writes len bytes to the node (copied). 0 or a negative error. */
static int tcp_write(smp_ws_t *s, const void *data, size_t len)
{
    ws_write_t *ww = sl_malloc(sizeof *ww + len);
    if (!ww)
        return SL_ENOMEM;
    ww->s = s;
    ww->len = len;
    memcpy(ww->data, data, len);
    uv_buf_t b = uv_buf_init((char *)ww->data, (unsigned)len);
    int rc = uv_write(&ww->w, (uv_stream_t *)&s->tcp, &b, 1, on_written);
    if (rc) {
        sl_free(ww);
        return rc;
    }
    s->out_pending += len;
    return 0;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    (void)flags;
    smp_ws_t *s = user;
    if (s->closing || tcp_write(s, data, len)) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    (void)ctx;
    (void)user;
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

/* A whole message from the node: to the client as it is. */
static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user)
{
    (void)ctx;
    smp_ws_t *s = user;
    if (s->closing || !s->cws)
        return;
    if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
        return;
    int rc = s->p->http->ws_send(s->cws, arg->msg, arg->msg_length, arg->opcode == WSLAY_TEXT_FRAME);
    if (rc == SL_ETOOBIG)
        ws_end(s, 500, "the client does not keep up (its WebSocket queue is full)");
    else if (rc)
        ws_end(s, 500, "the client is gone");
}

static const struct wslay_event_callbacks g_cb = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .genmask_callback = genmask_cb,
    .on_msg_recv_callback = msg_cb,
};

/* Feeds node bytes to wslay and flushes what it wants to write. */
static void feed(smp_ws_t *s, const uint8_t *data, size_t len)
{
    s->in = data;
    s->in_len = len;
    if (wslay_event_recv(s->ctx) != 0) {
        ws_end(s, 502, "the node broke the WebSocket protocol");
        return;
    }
    if (s->closing)
        return;
    if (wslay_event_send(s->ctx) != 0) {
        ws_end(s, 502, "write to the node failed");
        return;
    }
    if (wslay_event_get_close_received(s->ctx))
        ws_end(s, 200, "closed by the node");
}

/* ---- the client's side ---- */

static void client_msg(sl_ws_t *ws, const uint8_t *data, size_t len, int is_text, void *ud)
{
    (void)ws;
    smp_ws_t *s = ud;
    if (s->closing || !s->ctx)
        return;
    s->last_ms = uv_now(s->p->core->loop);
    size_t queued = s->out_pending + wslay_event_get_queued_msg_length(s->ctx);
    if ((int64_t)(queued + len) > sl_smproxy_cfg(s->p->cfg)->ws_max_buffered_bytes) {
        ws_end(s, 500, "the node does not keep up (sm_proxy.ws_max_buffered)");
        return;
    }
    struct wslay_event_msg m = {
        .opcode = is_text ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME, .msg = data, .msg_length = len};
    if (wslay_event_queue_msg(s->ctx, &m) != 0 || wslay_event_send(s->ctx) != 0)
        ws_end(s, 502, "write to the node failed");
}

static void client_close(sl_ws_t *ws, void *ud)
{
    (void)ws;
    smp_ws_t *s = ud;
    s->cws = NULL;
    ws_end(s, 200, "closed by the client");
    maybe_free(s);
}

static const sl_ws_ops_t g_client_ops = {.on_message = client_msg, .on_close = client_close};

/* ---- setting up ---- */

/* The node's answer head is complete: 101 accepts the client, anything else refuses it. */
static void on_head(smp_ws_t *s, size_t head_end)
{
    int status = 0;
    if (sscanf(s->head, "HTTP/1.%*c %d", &status) != 1)
        status = 0;
    if (status != 101) {
        int code = status >= 400 && status < 600 ? status : 502;
        ws_end(s, code, "the node refused the WebSocket");
        return;
    }
    if (wslay_event_context_client_init(&s->ctx, &g_cb, s) != 0) {
        ws_end(s, 503, "out of memory");
        return;
    }
    wslay_event_config_set_max_recv_msg_length(s->ctx, WS_MSG_MAX);
    sl_http_req_t *req = s->req;
    s->req = NULL;
    int rc = s->p->http->ws_accept(req, &g_client_ops, s, &s->cws);
    if (rc) {
        s->cws = NULL;
        ws_end(s, 500, "the client's upgrade failed");
        return;
    }
    s->upgraded = 1;
    s->p->total_ws++;
    SL_LOGI(LOGCTX, "smproxy: %s relayed to node %s", s->what, s->node);
    size_t rest = s->head_len - head_end;
    if (rest)
        feed(s, (const uint8_t *)s->head + head_end, rest);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)hint;
    smp_ws_t *s = h->data;
    *b = uv_buf_init(s->rbuf, sizeof s->rbuf);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    smp_ws_t *s = st->data;
    if (n == 0 || s->closing)
        return;
    if (n < 0) {
        ws_end(s, 502, s->upgraded ? "the node closed the connection" : "the node closed during the upgrade");
        return;
    }
    s->last_ms = uv_now(s->p->core->loop);
    if (s->upgraded) {
        feed(s, (const uint8_t *)b->base, (size_t)n);
        return;
    }
    if (s->head_len + (size_t)n > HEAD_MAX) {
        ws_end(s, 502, "the node's upgrade answer is too large");
        return;
    }
    memcpy(s->head + s->head_len, b->base, (size_t)n);
    s->head_len += (size_t)n;
    s->head[s->head_len] = '\0';
    char *end = strstr(s->head, "\r\n\r\n");
    if (end)
        on_head(s, (size_t)(end + 4 - s->head));
}

static void on_connect(uv_connect_t *c, int status)
{
    smp_ws_t *s = c->data;
    if (s->closing)
        return;
    if (status < 0) {
        ws_end(s, 502, "the node cannot be reached");
        return;
    }
    if (tcp_write(s, s->upgrade, strlen(s->upgrade)) ||
        uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read))
        ws_end(s, 502, "the node cannot be reached");
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    smp_ws_t *s = g->data;
    s->gai_pending = 0;
    if (s->closing || status < 0 || !res) {
        if (res)
            uv_freeaddrinfo(res);
        if (!s->closing)
            ws_end(s, 502, "the node's address does not resolve");
        maybe_free(s);
        return;
    }
    int rc = uv_tcp_init(s->p->core->loop, &s->tcp);
    if (!rc) {
        s->tcp_open = 1;
        s->tcp.data = s;
        s->conn.data = s;
        rc = uv_tcp_connect(&s->conn, &s->tcp, res->ai_addr, on_connect);
    }
    uv_freeaddrinfo(res);
    if (rc)
        ws_end(s, 502, "the node cannot be reached");
}

static void on_tick(uv_timer_t *t)
{
    smp_ws_t *s = t->data;
    const sl_smproxy_config_t *c = sl_smproxy_cfg(s->p->cfg);
    uint64_t now = uv_now(s->p->core->loop);
    if (!s->upgraded && now - s->start_ms > (uint64_t)c->timeout_ms)
        ws_end(s, 504, "the node did not answer the upgrade in time");
    else if (s->upgraded && now - s->last_ms > (uint64_t)c->ws_idle_timeout_ms)
        ws_end(s, 200, "idle (sm_proxy.ws_idle_timeout)");
}

/* Query bytes we copy into our request line: printable ASCII without space. */
static int query_ok(const char *q)
{
    for (; *q; q++)
        if ((unsigned char)*q < 0x21 || (unsigned char)*q > 0x7e)
            return 0;
    return 1;
}

int sl__smproxy_ws_start(smp_t *p, sl_http_req_t *req, const sl_smproxy_path_t *pp)
{
    const sl_http_svc_t *h = p->http;
    const sl_smproxy_config_t *c = sl_smproxy_cfg(p->cfg);
    if (strcmp(h->req_method(req), "GET") != 0)
        return h->respond(req, 405, "text/plain", "use GET (a WebSocket upgrade)\n", 30, "Allow: GET\r\n"), 0;
    const char *up = h->req_header(req, "Upgrade");
    if (!up || strcasecmp(up, "websocket") != 0)
        return h->respond(req, 400, "text/plain", "a WebSocket upgrade is expected\n", 32, NULL), 0;
    const char *q = h->req_query(req);
    if (strlen(q) > 2048 || !query_ok(q))
        return h->respond(req, 400, "text/plain", "bad query\n", 10, NULL), 0;
    if (p->n_ws >= c->ws_max_sessions) {
        p->refused++;
        SL_LOGW(LOGCTX, "smproxy: %lld WebSocket sessions (sm_proxy.ws_max_sessions): refusing",
                (long long)p->n_ws);
        return h->respond(req, 503, "text/plain", "too many sessions\n", 18, NULL), 0;
    }
    char path[SL_CLUSTER_PATH_MAX + SL_SMPROXY_NAME_MAX + 2];
    snprintf(path, sizeof path, "%s/%s", pp->scope, pp->name);
    sl_cluster_node_t node;
    if (sl__smproxy_pick(p, req, pp->publish ? SL_SM_PUBLISH : SL_SM_SUBSCRIBE, path, &node))
        return 0;
    smp_ws_t *s = sl_calloc(1, sizeof *s);
    if (!s)
        return h->respond(req, 503, "text/plain", "out of memory\n", 14, NULL), 0;
    const char *raddr = h->req_remote(req, NULL);
    snprintf(s->addr_key, sizeof s->addr_key, "ws:%s", raddr ? raddr : "?");
    if (!sl__smproxy_addr_take(p, s->addr_key, c->ws_max_per_addr)) {
        p->refused++;
        SL_LOGI(LOGCTX, "smproxy: %s has %lld WebSocket sessions (sm_proxy.ws_max_per_address)",
                s->addr_key + 3, (long long)c->ws_max_per_addr);
        sl_free(s);
        return h->respond(req, 429, "text/plain", "too many sessions from this address\n", 36, NULL), 0;
    }
    s->p = p;
    s->req = req;
    s->id = ++p->next_ws_id;
    s->created_ms = sl_time_wall_ms();
    snprintf(s->client_addr, sizeof s->client_addr, "%s", raddr ? raddr : "");
    const char *ua = h->req_header(req, "User-Agent");
    snprintf(s->user_agent, sizeof s->user_agent, "%s", ua ? ua : "");
    snprintf(s->app, sizeof s->app, "%s", pp->scope);
    /* The HTTP service does not say whether the client came over TLS: a
     * proxy in front (X-Forwarded-Proto) is the usual way to serve wss. */
    const char *fp = h->req_header(req, "X-Forwarded-Proto");
    s->secure = fp && strcasecmp(fp, "https") == 0;
    sl_list_push_back(&p->ws, &s->link);
    p->n_ws++;
    snprintf(s->node, sizeof s->node, "%s", node.id);
    snprintf(s->what, sizeof s->what, "ws %s %.800s", pp->publish ? "publish" : "subscribe", path);
    const char *addr = sl_smproxy_node_addr(&node, &s->port);

    /* Our upgrade: the node's own signalling endpoint, the client's query
     * as it came (id= defaults to the stream, as Red5's SDK sets it). */
    unsigned char key[16];
    char key64[32];
    RAND_bytes(key, sizeof key);
    EVP_EncodeBlock((unsigned char *)key64, key, sizeof key);
    char idq[SL_SMPROXY_NAME_MAX + 8] = "";
    char idv[8];
    if (h->req_query_get(req, "id", idv, sizeof idv) == -1)
        snprintf(idq, sizeof idq, "%sid=%s", q[0] ? "&" : "", pp->name);
    int v6 = strchr(addr, ':') != NULL;
    int n = snprintf(s->upgrade, sizeof s->upgrade,
                     "GET /%s/?%s%s HTTP/1.1\r\nHost: %s%s%s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                     "User-Agent: sluice-smproxy\r\n\r\n",
                     pp->scope, q, idq, v6 ? "[" : "", addr, v6 ? "]" : "", s->port, key64);
    if (n < 0 || (size_t)n >= sizeof s->upgrade) {
        ws_end(s, 414, "request too long");
        return 0;
    }
    uv_timer_init(p->core->loop, &s->timer);
    s->timer.data = s;
    s->timer_open = 1;
    s->start_ms = s->last_ms = uv_now(p->core->loop);
    uint64_t tick = (uint64_t)(c->timeout_ms < c->ws_idle_timeout_ms ? c->timeout_ms : c->ws_idle_timeout_ms) / 4;
    uv_timer_start(&s->timer, on_tick, tick ? tick : 1, tick ? tick : 1);
    char port[8];
    snprintf(port, sizeof port, "%d", s->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    s->gai.data = s;
    int rc = uv_getaddrinfo(p->core->loop, &s->gai, on_resolved, addr, port, &hints);
    if (rc) {
        ws_end(s, 502, "the node's address does not resolve");
        return 0;
    }
    s->gai_pending = 1;
    SL_LOGI(LOGCTX, "smproxy: %s from %s -> node %s", s->what, s->addr_key + 3, node.id);
    return 0;
}

/* ------------------------------------------------------------------ */
/* the SM 4.0 admin API of the sessions                                */

static int healthy(const smp_ws_t *s)
{
    return s->upgraded && s->cws && s->tcp_open && !s->closing;
}

static json_t *ws_json(const smp_ws_t *s)
{
    return json_pack("{s:I, s:s, s:i, s:s, s:s, s:b, s:b, s:s, s:s, s:b, s:I}", "id",
                     (json_int_t)s->id, "targetHost", s->node, "targetPort", s->port,
                     "targetApp", s->app, "stream", s->what, "clientConnected", s->cws != NULL,
                     "proxyConnected", s->upgraded && s->tcp_open, "clientUserAgent",
                     s->user_agent, "clientAddress", s->client_addr, "secureClient", s->secure,
                     "creationTime", (json_int_t)s->created_ms);
}

static int admin_reply(smp_t *p, sl_http_req_t *req, int status, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return p->http->respond(req, 500, "application/json", "{}", 2, NULL), 0;
    p->http->respond(req, status, "application/json", text, strlen(text),
                     "Cache-Control: no-store\r\n");
    free(text);
    return 0;
}

static int admin_err(smp_t *p, sl_http_req_t *req, int status, const char *msg)
{
    return admin_reply(p, req, status,
                       json_pack("{s:s, s:I}", "errorMessage", msg, "timestamp",
                                 (json_int_t)sl_time_wall_ms()));
}

int sl__smproxy_ws_admin(sl_http_req_t *req, void *ud)
{
    smp_t *p = ud;
    const sl_http_svc_t *h = p->http;
    void *sud;
    const sl_svc_streammanager_t *sm =
        sl_service_get(p->core, SL_SVC_STREAMMANAGER, SL_SVC_STREAMMANAGER_MAJOR, 2, &sud);
    if (!sm)
        return admin_err(p, req, 503, "the stream manager is off on this node");
    char tok[160];
    int tl = h->req_query_get(req, "accessToken", tok, sizeof tok);
    int rc = sm->check_admin_token(sud, tl >= 0 ? tok : NULL, h->req_remote(req, NULL));
    OPENSSL_cleanse(tok, sizeof tok);
    if (rc)
        return admin_err(p, req, rc == SL_ETOOBIG ? 429 : rc == SL_EBUSY ? 403 : 401,
                         rc == SL_EBUSY ? "invalid accessToken" : "accessToken is required");
    const char *path = h->req_path(req) + strlen(SL_SMPROXY_ADMIN_PREFIX);
    uint64_t id = 0;
    if (*path == '/' && path[1]) {
        char *end;
        id = strtoull(path + 1, &end, 10);
        if (*end || id == 0)
            return admin_err(p, req, 404, "no such session");
    } else if (*path && strcmp(path, "/") != 0) {
        return admin_err(p, req, 404, "no such resource");
    }
    const char *method = h->req_method(req);
    int del = strcmp(method, "DELETE") == 0;
    if (!del && strcmp(method, "GET") != 0)
        return admin_err(p, req, 405, "use GET or DELETE");
    char filter[16] = "any", count[8] = "";
    h->req_query_get(req, "filter", filter, sizeof filter);
    h->req_query_get(req, "count", count, sizeof count);
    int want = strcmp(filter, "healthy") == 0 ? 1 : strcmp(filter, "unhealthy") == 0 ? 0 : -1;
    if (want == -1 && strcmp(filter, "any") != 0)
        return admin_err(p, req, 400, "filter must be healthy, unhealthy or any");
    json_t *arr = json_array();
    sl_list_t *it = p->ws.next;
    while (it != &p->ws) {
        smp_ws_t *s = sl_container_of(it, smp_ws_t, link);
        it = it->next; /* ws_end unlinks s */
        if ((id && s->id != id) || (want != -1 && healthy(s) != want))
            continue;
        json_array_append_new(arr, ws_json(s));
        if (del)
            ws_end(s, 200, "closed by the admin (DELETE /admin/proxy/clients)");
    }
    if (id && json_array_size(arr) == 0) {
        json_decref(arr);
        return admin_err(p, req, 404, "no such session");
    }
    if (id)
        return admin_reply(p, req, 200, json_incref(json_array_get(arr, 0))), json_decref(arr), 0;
    if (strcmp(count, "true") == 0) {
        json_t *o = json_pack("{s:I}", "count", (json_int_t)json_array_size(arr));
        json_decref(arr);
        return admin_reply(p, req, 200, o);
    }
    return admin_reply(p, req, 200, arr);
}

void sl__smproxy_ws_stop_all(smp_t *p)
{
    while (!sl_list_empty(&p->ws)) {
        smp_ws_t *s = sl_container_of(p->ws.next, smp_ws_t, link);
        ws_end(s, 503, "shutting down");
    }
}
