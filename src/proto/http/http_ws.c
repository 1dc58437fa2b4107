/*
 * WebSocket on an upgraded HTTP connection (see http.h and http_conn.h):
 * the opening handshake (RFC 6455 4.2), then framing by wslay's event API.
 * wslay answers pings, replies to a close and enforces the largest message
 * (http.ws_max_message_bytes, close 1009 past it); this file moves bytes
 * between wslay and the connection, checks that text is UTF-8 (1007
 * otherwise), pings a quiet peer and bounds what may wait to be sent.
 *
 * Bytes out: wslay_event_send() writes frames through send_cb into a
 * builder, which becomes one output piece per send pass. send_cb takes no
 * more than fits under WS_OUT_HIGH bytes of unwritten output, so a slow
 * reader leaves messages in wslay's queue, whose size (plus our unwritten
 * bytes) is what sl_ws_send_text() checks against
 * http.stream_max_pending_bytes: past it the sender gets SL_ETOOBIG and
 * decides (the event stream closes such a watcher with 1008). The same
 * budget covers what the client makes us queue by itself: wslay answers
 * every ping with a queued pong, so after each read the whole (see
 * ws_pending) is checked and a client over it is closed, logged once.
 *
 * wslay allocates its own memory with malloc (the library has no allocator
 * hook), so a WebSocket's queued messages are not in sl_alloc_bytes().
 * on_close runs from the connection's uv_close callback, never inside a
 * call the owner made, so the owner may remove itself from lists it is
 * walking when it calls sl_ws_send_text() or sl_ws_close().
 */
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/redact.h"
#include "proto/http/http_conn.h"
#include "sluice/errors.h"
#include "proto/http/http_config.h"

#define WS_OUT_HIGH (256u * 1024u) /* unwritten bytes before wslay is told to wait */
#define WS_CLOSE_WAIT_MS 5000      /* after our close frame, time for the peer's */
#define WS_MSG_COST 128u           /* bytes one queued message costs beyond its payload (wslay's
                                      record and allocation): an empty pong is not free */

static uint64_t now_ms(const sl_http_conn_t *c) { return uv_now(sl__http_core(c->srv)->loop); }

/*
 * wslay pulls input through this: we hand it what the socket just gave
 * us and say "would block" when that is used up, which ends
 * wslay_event_recv() until the next read.
 */
static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    sl_ws_t *ws = user;
    if (!ws->in_len) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < ws->in_len ? len : ws->in_len;
    memcpy(buf, ws->in, n);
    ws->in += n;
    ws->in_len -= n;
    return (ssize_t)n;
}

/*
 * wslay pushes frames through this. They are gathered into one builder
 * per send pass (one output piece, not one per frame header), and taken
 * only up to WS_OUT_HIGH unwritten bytes: past it wslay keeps the rest
 * queued, partially sent messages included, until the socket drains.
 */
static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    sl_ws_t *ws = user;
    sl_http_conn_t *c = ws->conn;
    if (!c || c->state != SL_HTTP_CONN_OPEN) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    size_t queued = c->out_bytes + ws->frames.len;
    if (queued >= WS_OUT_HIGH) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < WS_OUT_HIGH - queued ? len : WS_OUT_HIGH - queued;
    if (sl_wbuf_put(&ws->frames, data, n)) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)n;
}

/*
 * A complete message (wslay reassembles fragments, up to the configured
 * maximum). Ping, pong and close are handled by wslay itself.
 */
static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user)
{
    sl_ws_t *ws = user;
    sl_http_conn_t *c = ws->conn;
    if (!c || c->state != SL_HTTP_CONN_OPEN)
        return;
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) {
        int is_text = arg->opcode == WSLAY_TEXT_FRAME;
        c->sess.msgs_in++;
        if (is_text && !sl__http_utf8_valid(arg->msg, arg->msg_length)) {
            SL_LOGI(&c->sess.log, "websocket: text message is not UTF-8; closing");
            static const char why[] = "invalid UTF-8";
            wslay_event_queue_close(ctx, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA,
                                    (const uint8_t *)why, sizeof why - 1);
            wslay_event_shutdown_read(ctx);
            if (!ws->close_sent_ms)
                ws->close_sent_ms = now_ms(c);
            return;
        }
        if (ws->ops && ws->ops->on_message)
            ws->ops->on_message(ws, arg->msg, arg->msg_length, is_text, ws->ud);
    } else if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
        SL_LOGD(&c->sess.log, "websocket: close from the client (%u)", (unsigned)arg->status_code);
    }
}

static const struct wslay_event_callbacks g_callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .on_msg_recv_callback = msg_cb,
};

static void ws_free(sl_ws_t *ws)
{
    if (ws->ctx)
        wslay_event_context_free(ws->ctx);
    sl_wbuf_cleanup(&ws->frames);
    sl_free(ws);
}

int sl_http_ws_accept(sl_http_req_t *req, const sl_ws_ops_t *ops, void *ud, sl_ws_t **out)
{
    sl_http_txn_t *t = (sl_http_txn_t *)req;
    sl_ws_t *ws = NULL;
    sl_wbuf_t w;
    sl_wbuf_init(&w, 4096);
    if (out)
        *out = NULL;
    int rc = sl__http_txn_answerable(t);
    if (rc)
        return rc;
    sl_http_conn_t *c = t->conn;
    const sl_http_msg_t *m = t->msg;
    const sl_config_t *cfg = sl__http_core(c->srv)->cfg;
    char accept[29];
    const char *version = sl_http_req_header(req, "sec-websocket-version");
    if (!m || !m->upgrade || m->method_id != HTTP_GET || c->ws ||
        !sl__http_header_has_token(sl_http_req_header(req, "upgrade"), "websocket") ||
        !sl__http_header_has_token(sl_http_req_header(req, "connection"), "upgrade") ||
        !version || strcmp(version, "13") != 0 ||
        sl__http_ws_accept_key(sl_http_req_header(req, "sec-websocket-key"), accept) != 0) {
        static const char msg[] = "bad websocket upgrade request\n";
        sl_http_respond(req, 400, "text/plain; charset=utf-8", msg, sizeof msg - 1,
                        "Sec-WebSocket-Version: 13\r\n");
        return SL_EPROTO;
    }
    ws = sl_calloc(1, sizeof(*ws));
    if (!ws || wslay_event_context_server_init(&ws->ctx, &g_callbacks, ws) != 0) {
        rc = SL_ENOMEM;
        goto fail;
    }
    wslay_event_config_set_max_recv_msg_length(ws->ctx, (uint64_t)sl_http_cfg(cfg)->ws_max_message_bytes);
    sl_wbuf_init(&ws->frames, SL_BUF_MAX);
    ws->ops = ops;
    ws->ud = ud;
    ws->conn = c;
    char extra[160];
    snprintf(extra, sizeof extra,
             "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n", accept);
    rc = sl__http_build_head(t, &w, 101, NULL, -1, extra);
    sl_buf_t *b = rc ? NULL : sl_wbuf_to_buf(&w);
    sl_http_out_t *o = b ? sl__http_out_new(b) : NULL;
    if (!o) {
        sl_buf_unref(b);
        rc = SL_ENOMEM;
        goto fail;
    }
    sl_wbuf_cleanup(&w);
    t->state = SL_HTTP_TXN_WS;
    t->status = 101;
    c->ws = ws;
    c->sess.proto = "ws";
    c->sess.log.proto = "ws";
    c->sess.msgs_out++;
    ws->last_ping_ms = now_ms(c);
    sl__http_txn_queue(t, o);
    char rb[SL_REDACT_MAX];
    SL_LOGD(&c->sess.log, "websocket accepted on %s", sl_redact(req->raw_path, rb, sizeof rb));
    if (out)
        *out = ws;
    return 0;
fail:
    sl_wbuf_cleanup(&w);
    if (ws)
        ws_free(ws);
    static const char oom[] = "out of memory\n";
    sl_http_respond(req, 500, "text/plain; charset=utf-8", oom, sizeof oom - 1, NULL);
    return rc;
}

/*
 * Called when the 101 has reached the connection's output (every answer
 * before it is queued ahead of it), so frames can follow it in order.
 */
void sl__http_ws_start(sl_http_conn_t *c)
{
    sl_ws_t *ws = c->ws;
    if (!ws || ws->active)
        return;
    ws->active = 1;
    c->upgrade_pending = 0;
    if (c->in.len) {
        /* Frames the client sent right behind its upgrade request. */
        sl__http_ws_on_data(c, c->in.data, c->in.len);
        c->in.len = 0;
    }
    sl__http_schedule_flush(c);
}

/*
 * Everything this WebSocket makes the server hold for its client: the
 * messages wslay has queued (ours, and the pongs and close replies it
 * queues by itself for every ping), charged WS_MSG_COST each on top of
 * their payload, the frames of the current send pass, and the
 * connection's unwritten output.
 */
static size_t ws_pending(const sl_http_conn_t *c)
{
    const sl_ws_t *ws = c->ws;
    return wslay_event_get_queued_msg_length(ws->ctx) +
           wslay_event_get_queued_msg_count(ws->ctx) * WS_MSG_COST + ws->frames.len + c->out_bytes;
}

void sl__http_ws_on_data(sl_http_conn_t *c, const uint8_t *p, size_t n)
{
    sl_ws_t *ws = c->ws;
    if (!wslay_event_want_read(ws->ctx))
        return; /* after a close: the rest is dropped */
    ws->in = p;
    ws->in_len = n;
    int rc = wslay_event_recv(ws->ctx);
    ws->in = NULL;
    ws->in_len = 0;
    if (c->state != SL_HTTP_CONN_OPEN)
        return;
    if (rc < 0) {
        sl__http_conn_close(c, "websocket receive failed");
        return;
    }
    /* A client that pings and never reads makes wslay queue a pong per
     * ping: every read is checked against the connection's budget, and
     * past it the client is gone (no close frame: it does not read). */
    const sl_config_t *cfg = sl__http_core(c->srv)->cfg;
    size_t pending = ws_pending(c);
    if (pending > (size_t)sl_http_cfg(cfg)->stream_max_pending_bytes) {
        char why[160];
        sl_core_budget_exceeded(sl__http_core(c->srv), SL_BUDGET_HTTP_PENDING_BYTES, NULL);
        snprintf(why, sizeof why, "websocket client does not read: %zu bytes (%zu messages) queued "
                 "for it, over http.stream_max_pending_bytes", pending,
                 wslay_event_get_queued_msg_count(ws->ctx));
        sl__http_conn_close(c, why);
        return;
    }
    sl__http_schedule_flush(c);
}

/*
 * Runs from the flush pass: lets wslay send what it queued (pongs, close
 * replies, our messages) and turns the frames into one output piece. When
 * wslay wants neither to read nor to write, the close handshake is over
 * (or a frame error ended the session) and the connection closes once its
 * output is written.
 */
static int queue_close(sl_ws_t *ws);

void sl__http_ws_pump(sl_http_conn_t *c)
{
    sl_ws_t *ws = c->ws;
    if (!ws->active)
        return;
    /* Two passes at most: the queued messages, then a close that waited for them. */
    for (int pass = 0; pass < 2; pass++) {
        if (ws->close_deferred && wslay_event_get_queued_msg_count(ws->ctx) == 0 && queue_close(ws)) {
            sl__http_conn_close(c, "websocket close failed");
            return;
        }
        if (!wslay_event_want_write(ws->ctx))
            break;
        int rc = wslay_event_send(ws->ctx);
        if (ws->frames.len) {
            sl_buf_t *b = sl_wbuf_to_buf(&ws->frames);
            if (!b || sl__http_conn_queue_raw(c, b)) {
                sl_buf_unref(b);
                sl__http_conn_close(c, "out of memory");
                return;
            }
            sl_buf_unref(b);
        }
        if (rc < 0) {
            sl__http_conn_close(c, "websocket send failed");
            return;
        }
        if (!ws->close_deferred)
            break;
    }
    if (wslay_event_get_close_sent(ws->ctx) && !ws->close_sent_ms)
        ws->close_sent_ms = now_ms(c);
    if (!wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx))
        c->close_after_flush = 1; /* close handshake done (or a fatal frame error) */
}

void sl__http_ws_sweep(sl_http_conn_t *c, uint64_t now)
{
    sl_ws_t *ws = c->ws;
    const sl_config_t *cfg = sl__http_core(c->srv)->cfg;
    uint64_t idle_ms = (uint64_t)sl_http_cfg(cfg)->idle_timeout_ms;
    if (ws->close_sent_ms && now - ws->close_sent_ms > WS_CLOSE_WAIT_MS) {
        sl__http_conn_close(c, "websocket close handshake timed out");
        return;
    }
    if (!ws->active)
        return;
    uint64_t quiet = now - c->last_read_ms;
    if (quiet > idle_ms) {
        sl__http_conn_close(c, "websocket idle");
        return;
    }
    /* A quiet peer is pinged; its pong counts as traffic. */
    if (quiet > idle_ms / 2 && now - ws->last_ping_ms > idle_ms / 2 && !ws->close_sent_ms) {
        struct wslay_event_msg ping = {WSLAY_PING, NULL, 0};
        ws->last_ping_ms = now;
        if (wslay_event_queue_msg(ws->ctx, &ping) == 0)
            sl__http_schedule_flush(c);
    }
}

void sl__http_ws_shutdown(sl_http_conn_t *c)
{
    sl_ws_close(c->ws, WSLAY_CODE_GOING_AWAY, "server shutdown");
}

/* From the connection's uv_close callback: the owner hears it exactly once. */
void sl__http_ws_closed(sl_http_conn_t *c)
{
    sl_ws_t *ws = c->ws;
    c->ws = NULL;
    /* ws->conn stays set during on_close: the session is still readable. */
    if (ws->ops && ws->ops->on_close)
        ws->ops->on_close(ws, ws->ud);
    ws_free(ws);
}

size_t sl__http_ws_queued(const sl_http_conn_t *c)
{
    return c->ws ? wslay_event_get_queued_msg_count(c->ws->ctx) : 0;
}

int sl_ws_send_text(sl_ws_t *ws, const char *text, size_t len)
{
    return sl_ws_send(ws, text, len, 1);
}

int sl_ws_send(sl_ws_t *ws, const void *data, size_t len, int is_text)
{
    sl_http_conn_t *c = ws ? ws->conn : NULL;
    if (!c || c->state != SL_HTTP_CONN_OPEN || c->ws != ws || ws->close_sent_ms ||
        wslay_event_get_close_sent(ws->ctx) || wslay_event_get_close_received(ws->ctx))
        return SL_ECLOSED;
    const sl_config_t *cfg = sl__http_core(c->srv)->cfg;
    if (len > (size_t)sl_http_cfg(cfg)->ws_max_message_bytes)
        return SL_ETOOBIG;
    if (ws_pending(c) + len + WS_MSG_COST > (size_t)sl_http_cfg(cfg)->stream_max_pending_bytes)
        return SL_ETOOBIG;
    struct wslay_event_msg msg = {is_text ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME,
                                  (const uint8_t *)data, len};
    int rc = wslay_event_queue_msg(ws->ctx, &msg);
    if (rc == WSLAY_ERR_NOMEM)
        return SL_ENOMEM;
    if (rc == WSLAY_ERR_NO_MORE_MSG)
        return SL_ECLOSED;
    if (rc)
        return SL_EINVAL;
    c->sess.msgs_out++;
    sl__http_schedule_flush(c);
    return 0;
}

/* Queues the close frame kept in ws (0, or a wslay error). */
static int queue_close(sl_ws_t *ws)
{
    ws->close_deferred = 0;
    int rc = wslay_event_queue_close(ws->ctx, ws->close_code, ws->close_reason, ws->close_rlen);
    if (rc == WSLAY_ERR_INVALID_ARGUMENT) /* a code a peer may not see on the wire */
        rc = wslay_event_queue_close(ws->ctx, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
    return rc == WSLAY_ERR_NO_MORE_MSG ? 0 : rc;
}

void sl_ws_close(sl_ws_t *ws, int code, const char *reason)
{
    sl_http_conn_t *c = ws ? ws->conn : NULL;
    if (!c || c->state != SL_HTTP_CONN_OPEN || c->ws != ws || ws->close_sent_ms)
        return;
    size_t rl = reason ? strlen(reason) : 0;
    if (rl > sizeof ws->close_reason)
        rl = sizeof ws->close_reason; /* the control frame's limit */
    ws->close_code = (uint16_t)code;
    if (rl)
        memcpy(ws->close_reason, reason, rl);
    ws->close_rlen = rl;
    ws->close_sent_ms = now_ms(c) ? now_ms(c) : 1; /* no message is taken after this */
    /* wslay sends control frames ahead of queued messages: a close queued
     * now would overtake what the owner sent just before it (a status,
     * then close). It is queued by the pump once those have gone. */
    if (!ws->active || wslay_event_get_queued_msg_count(ws->ctx) > 0) {
        ws->close_deferred = 1;
    } else if (queue_close(ws)) {
        sl__http_conn_close(c, "websocket close failed");
        return;
    }
    sl__http_schedule_flush(c);
}

sl_session_t *sl_ws_session(sl_ws_t *ws) { return ws && ws->conn ? &ws->conn->sess : NULL; }
