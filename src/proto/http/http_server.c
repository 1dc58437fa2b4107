/*
 * The HTTP connection I/O on the listener scaffold of net/listener.h (see
 * http.h and http_conn.h):
 * accept, reading into the request framer (http_parse.c), routing, the
 * ordered request queue, plain and streaming responses, the gathered write
 * path, timeouts and close. WebSocket framing lives in http_ws.c, static
 * files in http_static.c.
 *
 * One read buffer serves every connection, as in the RTMP server: a read
 * is fully consumed before the next, and the framer copies what a request
 * keeps. Bytes that cannot be parsed yet (the pipeline is full, or they
 * follow an upgrade request) wait in the connection's `in` buffer, whose
 * growth past IN_HIGH_BYTES pauses reading: a client cannot make the
 * server hold more than that plus one read for it.
 *
 * Timeouts, checked by one sweep timer per server:
 *  - header timeout: a request head (from its first byte, or from the
 *    moment earlier requests were answered) or a gap in a request body
 *    longer than http.header_timeout is answered 408 and the connection
 *    closes; a fresh connection that sends nothing is closed after the same
 *    time without an answer.
 *  - idle timeout: a keep-alive connection with nothing in flight closes
 *    quietly after http.idle_timeout; so does one whose client stopped
 *    reading (a write that has not completed for that long).
 * Final answers (errors, Connection: close) end with a lingering close:
 * shut down our side, keep reading and dropping for up to LINGER_MS, then
 * close, so the client reads the answer instead of a reset caused by its
 * own unread bytes.
 *
 * HTTPS: with http.tls_cert and http.tls_key set, a second listener
 * (http.tls_bind:http.tls_port) accepts connections that get a TLS filter
 * (see http_conn.h); from the framer up they are the same connections,
 * with the same routes, limits and timeouts. The differences are all here,
 * at the socket edge:
 *  - reading: the ciphertext read is fed to the filter and every plaintext
 *    record is handed on at once, so the filter keeps at most one partial
 *    record. A read is capped at READ_BUF_SIZE - SL_TLS_RECORD_MAX bytes so
 *    that what one read yields never passes READ_BUF_SIZE, the margin the
 *    `in` buffer is sized for.
 *  - writing: plaintext pieces are encrypted in batches while fewer than
 *    TLS_OUT_HIGH_BYTES of ciphertext wait, and retired as soon as they are
 *    encrypted. The ciphertext is taken into a server-wide scratch buffer
 *    for uv_try_write; only what the socket refuses is copied into a
 *    buffer of the connection's own for the one uv_write in flight.
 *  - a handshake not complete within http.header_timeout closes the
 *    connection; a failed handshake (plain HTTP sent to the TLS port,
 *    garbage, no common cipher) closes it and is logged at debug;
 *  - an orderly close (lingering or quiet) sends close_notify first.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/redact.h"
#include "net/listener.h"
#include "proto/http/http_conn.h"
#include "sluice/errors.h"
#include "sluice/version.h"
#include "proto/http/http_config.h"

#define READ_BUF_SIZE 65536
#define SWEEP_INTERVAL_MS 250
#define IN_HIGH_BYTES (64u * 1024u) /* unparsed input held before reading pauses */
#define LINGER_MS 2000              /* draining input after a final answer */
#define OUT_HIGH_BYTES (1024u * 1024u) /* unwritten answers before parsing pauses */
#define TLS_READ_BYTES (READ_BUF_SIZE - SL_TLS_RECORD_MAX) /* one read on a TLS connection */
#define TLS_OUT_HIGH_BYTES (64u * 1024u) /* ciphertext waiting before encrypting pauses */
#define TLS_WIRE_BYTES (TLS_OUT_HIGH_BYTES + 16u * 1024u) /* ciphertext taken per write */

struct sl_http_route {
    char *method;              /* NULL = any */
    char *prefix;
    size_t prefix_len;         /* strlen(prefix), for ordering without the string */
    char *suffixes;            /* space-separated path endings, NULL = any */
    sl_http_prio_t prio;
    uint64_t seq;              /* registration order */
    sl_http_handler_cb cb;
    void *ud;
    void (*free_ud)(void *);   /* owned ud (static routes), or NULL */
    const char *name;          /* sl_http_route_doc: static string, NULL = undocumented */
    const char *serves;        /* URL templates of stream data it serves (static), "" = none */
    int options;               /* answers a plain OPTIONS itself (spec.options) */
};
typedef struct sl_http_route route_t;

struct sl_http_server {
    sl_core_t *core;
    sl_listener_t net;         /* listeners (HTTP, and HTTPS with a certificate), the flush
                                * pass, the timeout sweep and the stop deadline (net/) */
    sl_list_t conns;           /* open connections */
    size_t n_conns;            /* connections whose socket is not closed yet */
    sl_list_t orphans;         /* closed connections kept for unanswered requests */
    sl_list_t flush_list;
    route_t **routes;          /* owned, in dispatch order (see route_before) */
    size_t n_routes;
    uint64_t route_seq;        /* next registration number */
    uint64_t routes_gen;       /* bumped on every add/remove (dispatch re-finds its place) */
    route_t *last_added;       /* the route sl_http_route_doc documents */
    int svc_registered;        /* this server provides the "http" service */
    sl_http_limits_t lim;
    int stopping;
    int64_t date_sec;          /* second of the cached Date value */
    char date[32];
    uint8_t rbuf[READ_BUF_SIZE];
    uint8_t wire[TLS_WIRE_BYTES]; /* ciphertext being handed to uv_try_write */
};

static const sl_session_ops_t conn_session_ops;
static void conn_pump(sl_http_conn_t *c);
static void conn_graceful(sl_http_conn_t *c);

uv_loop_t *sl__http_req_loop(const sl_http_req_t *req)
{
    /* The request is the first field of its transaction, whose connection
     * stays allocated while the transaction exists. */
    return ((const sl_http_txn_t *)req)->conn->srv->core->loop;
}

sl_core_t *sl__http_core(const sl_http_server_t *srv) { return srv->core; }

static uint64_t now_ms(const sl_http_conn_t *c) { return uv_now(c->srv->core->loop); }

static uint64_t max3(uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t m = a > b ? a : b;
    return m > c ? m : c;
}

/* ------------------------------------------------------------------ */
/* output pieces                                                       */

static size_t piece_size(const sl_http_out_t *o)
{
    return o->pre_len + (o->buf ? o->buf->len : 0) + o->post_len;
}

sl_http_out_t *sl__http_out_new(sl_buf_t *buf)
{
    sl_http_out_t *o = sl_calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->buf = buf;
    sl_list_init(&o->link);
    return o;
}

static void out_free(sl_http_out_t *o)
{
    sl_buf_unref(o->buf);
    sl_free(o);
}

static void free_pieces(sl_list_t *list)
{
    while (!sl_list_empty(list)) {
        sl_http_out_t *o = sl_container_of(list->next, sl_http_out_t, link);
        sl_list_remove(&o->link);
        out_free(o);
    }
}

/* Appends every node of src to dst (src ends empty). */
static void list_splice_tail(sl_list_t *dst, sl_list_t *src)
{
    if (sl_list_empty(src))
        return;
    src->next->prev = dst->prev;
    dst->prev->next = src->next;
    src->prev->next = dst;
    dst->prev = src->prev;
    sl_list_init(src);
}

static int txn_is_head(const sl_http_txn_t *t) { return t->conn->txns.next == &t->link; }

void sl__http_txn_queue(sl_http_txn_t *t, sl_http_out_t *o)
{
    sl_http_conn_t *c = t->conn;
    size_t size = piece_size(o);
    if (txn_is_head(t)) {
        sl_list_push_back(&c->out, &o->link);
        c->out_bytes += size;
        c->n_out++;
    } else {
        sl_list_push_back(&t->out, &o->link);
        t->out_bytes += size;
        t->n_out++;
        c->held_bytes += size;
    }
    sl__http_schedule_flush(c);
}

int sl__http_conn_queue_raw(sl_http_conn_t *c, sl_buf_t *buf)
{
    sl_http_out_t *o = sl__http_out_new(sl_buf_ref(buf));
    if (!o) {
        sl_buf_unref(buf);
        return SL_ENOMEM;
    }
    sl_list_push_back(&c->out, &o->link);
    c->out_bytes += piece_size(o);
    c->n_out++;
    sl__http_schedule_flush(c);
    return 0;
}

/* Frees a request, its parsed message and any output it still held back. */
static void txn_free(sl_http_txn_t *t)
{
    free_pieces(&t->out);
    sl_http_msg_free(t->msg);
    sl_free(t);
}

/*
 * Drops one reference to a closed connection's memory. The socket holds
 * one until its uv_close callback; each orphaned request holds one until
 * its handler answers, so req->session stays readable for that long.
 */
static void conn_unref(sl_http_conn_t *c)
{
    if (--c->refs > 0)
        return;
    sl_list_remove(&c->link);
    sl_free(c);
}

/* The late answer of a request whose client is gone: nothing to send. */
static void orphan_done(sl_http_txn_t *t)
{
    sl_http_conn_t *c = t->conn;
    sl_list_remove(&t->link);
    txn_free(t);
    conn_unref(c);
}

/* ------------------------------------------------------------------ */
/* writing                                                             */

void sl__http_schedule_flush(sl_http_conn_t *c)
{
    if (c->on_flush_list || c->state == SL_HTTP_CONN_CLOSING)
        return;
    c->on_flush_list = 1;
    sl_list_push_back(&c->srv->flush_list, &c->flush_link);
}

/*
 * Fills iov from the head of the output list; returns the bytes, sets the
 * counts. A piece takes up to three buffers (prefix, payload, CRLF) and is
 * only taken whole, so a write always ends on a piece boundary unless the
 * socket cuts it, and on_write can retire exactly the pieces it covered.
 */
static size_t gather(sl_http_conn_t *c, uv_buf_t *iov, unsigned *niov, size_t *npieces)
{
    static const char crlf[] = "\r\n";
    size_t total = 0, pieces = 0;
    unsigned n = 0;
    sl_list_t *it;
    for (it = c->out.next; it != &c->out && n + 3 <= SL_HTTP_MAX_IOV; it = it->next) {
        sl_http_out_t *o = sl_container_of(it, sl_http_out_t, link);
        size_t off = o->off;
        size_t bl = o->buf ? o->buf->len : 0;
        if (off < o->pre_len) {
            iov[n++] = uv_buf_init((char *)o->pre + off, (unsigned)(o->pre_len - off));
            total += o->pre_len - off;
            off = 0;
        } else {
            off -= o->pre_len;
        }
        if (off < bl) {
            iov[n++] = uv_buf_init((char *)o->buf->data + off, (unsigned)(bl - off));
            total += bl - off;
            off = 0;
        } else {
            off -= bl;
        }
        if (off < o->post_len) {
            iov[n++] = uv_buf_init((char *)crlf + off, (unsigned)(o->post_len - off));
            total += o->post_len - off;
        }
        pieces++;
    }
    *niov = n;
    *npieces = pieces;
    return total;
}

/*
 * Accounts n written (on TLS: encrypted) bytes: frees the pieces they
 * complete and advances the offset of one written in part. Empty pieces
 * are retired too. The caller counts the bytes that reached the socket.
 */
static void consume(sl_http_conn_t *c, size_t n)
{
    c->out_bytes -= n;
    while (!sl_list_empty(&c->out)) {
        sl_http_out_t *o = sl_container_of(c->out.next, sl_http_out_t, link);
        size_t left = piece_size(o) - o->off;
        if (n < left) {
            o->off += (uint32_t)n;
            break;
        }
        n -= left;
        sl_list_remove(&o->link);
        out_free(o);
        c->n_out--;
    }
}

/* uv_write writes everything or fails, so success retires exactly w_bytes. */
static void on_write(uv_write_t *req, int status)
{
    sl_http_conn_t *c = req->data;
    c->writing = 0;
    /* libuv is done with the ciphertext, whatever the status. */
    sl_free(c->tls_wire);
    c->tls_wire = NULL;
    if (c->state == SL_HTTP_CONN_CLOSING)
        return; /* the pieces go with the connection */
    if (status < 0) {
        sl__http_conn_close(c, uv_strerror(status));
        return;
    }
    c->sess.bytes_out += c->w_bytes;
    if (!c->tls)
        consume(c, c->w_bytes); /* on TLS the pieces were retired when encrypted */
    c->w_bytes = c->w_pieces = 0;
    c->last_write_ms = now_ms(c);
    sl__http_schedule_flush(c);
}

/*
 * Writes as much as the socket takes now in gathered batches, and hands a
 * remainder to one uv_write. Pieces stay referenced until written.
 *
 * uv_try_write first: most answers fit in the socket buffer, and then no
 * write request, callback or extra loop turn is needed. libuv copies the
 * iov array of a uv_write but not the bytes, which is why pieces (and the
 * sl_bufs in them) are only freed by consume().
 */
static void conn_write_tls(sl_http_conn_t *c);

static void conn_write(sl_http_conn_t *c)
{
    if (c->writing || c->state != SL_HTTP_CONN_OPEN)
        return;
    if (c->tls) {
        conn_write_tls(c);
        return;
    }
    while (!sl_list_empty(&c->out)) {
        uv_buf_t iov[SL_HTTP_MAX_IOV];
        unsigned niov;
        size_t npieces;
        size_t total = gather(c, iov, &niov, &npieces);
        int r = niov ? uv_try_write((uv_stream_t *)&c->tcp, iov, niov) : 0;
        if (r == UV_EAGAIN)
            r = 0;
        if (r < 0) {
            sl__http_conn_close(c, uv_strerror(r));
            return;
        }
        consume(c, (size_t)r);
        c->sess.bytes_out += (uint64_t)r;
        if (r > 0)
            c->last_write_ms = now_ms(c);
        if ((size_t)r == total)
            continue;
        total = gather(c, iov, &niov, &npieces);
        c->w_bytes = total;
        c->w_pieces = npieces;
        c->wreq.data = c;
        int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, iov, niov, on_write);
        if (rc) {
            sl__http_conn_close(c, uv_strerror(rc));
            return;
        }
        c->writing = 1;
        c->last_write_ms = now_ms(c); /* a stalled write is measured from here */
        return;
    }
}

/*
 * Encrypts pieces into the filter while little ciphertext waits there.
 * Pieces are retired as they are encrypted: from here on the ciphertext
 * stands for them, and it is bounded by TLS_OUT_HIGH_BYTES plus one batch,
 * so out_bytes (what every back-pressure check reads) stays within that
 * of the bytes not yet on the wire. 0, or a filter error.
 */
static int tls_encrypt(sl_http_conn_t *c)
{
    while (!sl_list_empty(&c->out) && sl_tls_handshake_done(c->tls)) {
        size_t waiting = sl_tls_out_pending(c->tls);
        if (waiting >= TLS_OUT_HIGH_BYTES)
            break;
        uv_buf_t iov[SL_HTTP_MAX_IOV];
        struct iovec v[SL_HTTP_MAX_IOV];
        unsigned niov;
        size_t npieces, used = 0;
        size_t total = gather(c, iov, &niov, &npieces);
        for (unsigned i = 0; i < niov; i++)
            v[i] = (struct iovec){.iov_base = iov[i].base, .iov_len = iov[i].len};
        int rc = total ? sl_tls_write(c->tls, v, niov, TLS_OUT_HIGH_BYTES - waiting, &used) : 0;
        if (rc)
            return rc;
        consume(c, total ? used : 0); /* also retires empty pieces */
        if (total && !used)
            break;
    }
    return 0;
}

/*
 * The TLS write path: encrypt a batch, take its ciphertext into the
 * server's scratch buffer, try to write it at once; what the socket does
 * not take is copied into tls_wire for one uv_write, and nothing more is
 * encrypted until that completes. Repeats while the socket takes all.
 */
static void conn_write_tls(sl_http_conn_t *c)
{
    sl_http_server_t *srv = c->srv;
    for (;;) {
        int rc = tls_encrypt(c);
        if (rc) {
            sl__http_conn_close(c, rc == SL_ENOMEM ? "out of memory" : sl_tls_error(c->tls));
            return;
        }
        size_t n = sl_tls_out_take(c->tls, srv->wire, sizeof srv->wire);
        if (!n)
            return;
        uv_buf_t b = uv_buf_init((char *)srv->wire, (unsigned)n);
        int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (r == UV_EAGAIN)
            r = 0;
        if (r < 0) {
            sl__http_conn_close(c, uv_strerror(r));
            return;
        }
        c->sess.bytes_out += (uint64_t)r;
        if (r > 0)
            c->last_write_ms = now_ms(c);
        if ((size_t)r == n)
            continue;
        size_t left = n - (size_t)r;
        c->tls_wire = sl_malloc(left);
        if (!c->tls_wire) {
            sl__http_conn_close(c, "out of memory");
            return;
        }
        memcpy(c->tls_wire, srv->wire + r, left);
        b = uv_buf_init((char *)c->tls_wire, (unsigned)left);
        c->w_bytes = left;
        c->w_pieces = 0;
        c->wreq.data = c;
        rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
        if (rc) {
            sl_free(c->tls_wire);
            c->tls_wire = NULL;
            sl__http_conn_close(c, uv_strerror(rc));
            return;
        }
        c->writing = 1;
        c->last_write_ms = now_ms(c);
        return;
    }
}

/*
 * Best effort before a close: queue close_notify (or the alert a failed
 * handshake left) and hand it to the socket if it takes it now. Nothing
 * waits for it: the connection is going away.
 */
static void tls_goodbye(sl_http_conn_t *c)
{
    if (!c->tls || c->writing)
        return;
    sl_tls_close_notify(c->tls);
    size_t n = sl_tls_out_take(c->tls, c->srv->wire, sizeof c->srv->wire);
    if (n) {
        uv_buf_t b = uv_buf_init((char *)c->srv->wire, (unsigned)n);
        int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (r > 0)
            c->sess.bytes_out += (uint64_t)r;
    }
}

/* Nothing left to write: no pieces, no write in flight, no ciphertext waiting. */
static int conn_drained(const sl_http_conn_t *c)
{
    return !c->writing && sl_list_empty(&c->out) && (!c->tls || !sl_tls_out_pending(c->tls));
}

/* ------------------------------------------------------------------ */
/* responses                                                           */

/* The Date value, formatted once per second rather than per response. */
static const char *http_date(sl_http_server_t *srv)
{
    time_t now = time(NULL);
    if ((int64_t)now != srv->date_sec || !srv->date[0]) {
        srv->date_sec = (int64_t)now;
        sl__http_date((int64_t)now, srv->date);
    }
    return srv->date;
}

static int put(sl_wbuf_t *w, const char *s) { return sl_wbuf_put(w, s, strlen(s)); }

/*
 * content_length: >= 0 writes Content-Length, -1 writes no length, -2
 * announces chunked transfer encoding. The CORS origin goes on every
 * answer, errors included, so a browser script can read why it failed.
 * Connection: close is announced whenever the server will close after
 * this answer; an HTTP/1.0 client is told keep-alive explicitly.
 */
int sl__http_build_head(sl_http_txn_t *t, sl_wbuf_t *w, int status, const char *content_type,
                        int64_t content_length, const char *extra_headers)
{
    sl_http_conn_t *c = t->conn;
    const sl_config_t *cfg = c->srv->core->cfg;
    char line[256];
    int n = snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: sluice/%s\r\n",
                     status, sl__http_reason(status), http_date(c->srv), SL_VERSION_STRING);
    int rc = sl_wbuf_put(w, line, (size_t)n);
    if (!rc && sl_http_cfg(cfg)->cors_origin && sl_http_cfg(cfg)->cors_origin[0]) {
        rc = put(w, "Access-Control-Allow-Origin: ");
        rc = rc ? rc : put(w, sl_http_cfg(cfg)->cors_origin);
        rc = rc ? rc : put(w, "\r\n");
        if (!rc && strcmp(sl_http_cfg(cfg)->cors_origin, "*") != 0)
            rc = put(w, "Vary: Origin\r\n");
    }
    if (!rc && content_type) {
        rc = put(w, "Content-Type: ");
        rc = rc ? rc : put(w, content_type);
        rc = rc ? rc : put(w, "\r\n");
    }
    if (!rc && content_length >= 0) {
        n = snprintf(line, sizeof line, "Content-Length: %lld\r\n", (long long)content_length);
        rc = sl_wbuf_put(w, line, (size_t)n);
    } else if (!rc && content_length == -2) {
        rc = put(w, "Transfer-Encoding: chunked\r\n");
    }
    if (!rc && status != 101) {
        if (t->close_after)
            rc = put(w, "Connection: close\r\n");
        else if (t->msg && t->msg->http_major == 1 && t->msg->http_minor == 0)
            rc = put(w, "Connection: keep-alive\r\n");
    }
    if (!rc && extra_headers && extra_headers[0]) {
        size_t el = strlen(extra_headers);
        rc = sl_wbuf_put(w, extra_headers, el);
        if (!rc && (el < 2 || extra_headers[el - 2] != '\r' || extra_headers[el - 1] != '\n'))
            rc = put(w, "\r\n");
    }
    return rc ? rc : put(w, "\r\n");
}

/* Queues a head and body_len bytes of body (copied once, into the piece's buffer). */
static int queue_response(sl_http_txn_t *t, int status, const char *content_type,
                          int64_t content_length, const char *extra, const void *body,
                          size_t body_len)
{
    sl_http_conn_t *c = t->conn;
    sl_buf_t *b = NULL;
    sl_http_out_t *o = NULL;
    sl_wbuf_t w;
    sl_wbuf_init(&w, 64 * 1024);
    int rc = sl__http_build_head(t, &w, status, content_type, content_length, extra);
    if (rc)
        goto fail;
    rc = SL_ETOOBIG;
    if (body_len > SL_BUF_MAX - w.len || !(b = sl_buf_new(w.len + body_len)))
        goto fail;
    memcpy(b->data, w.data, w.len);
    if (body_len)
        memcpy(b->data + w.len, body, body_len);
    b->len = (uint32_t)(w.len + body_len);
    rc = SL_ENOMEM;
    if (!(o = sl__http_out_new(b)))
        goto fail;
    sl_wbuf_cleanup(&w);
    t->status = status;
    c->sess.msgs_out++;
    sl__http_txn_queue(t, o);
    return 0;
fail:
    sl_wbuf_cleanup(&w);
    sl_buf_unref(b);
    SL_LOGW(&c->sess.log, "cannot queue a %d response: %s", status, sl_strerror(rc));
    sl__http_conn_close(c, "response could not be queued");
    return rc;
}

int sl__http_txn_answerable(sl_http_txn_t *t)
{
    if (t->state != SL_HTTP_TXN_PENDING)
        return SL_EINVAL;
    if (t->orphan) {
        orphan_done(t);
        return SL_ECLOSED;
    }
    if (t->conn->state == SL_HTTP_CONN_CLOSING) {
        t->state = SL_HTTP_TXN_DONE; /* freed with the connection */
        return SL_ECLOSED;
    }
    return 0;
}

/*
 * For HEAD the length is the one GET would have, and no body is sent:
 * that is why body may be NULL with len > 0 for HEAD (http_static.c does
 * so to avoid reading the file).
 */
int sl_http_respond(sl_http_req_t *req, int status, const char *content_type, const void *body,
                    size_t len, const char *extra_headers)
{
    sl_http_txn_t *t = (sl_http_txn_t *)req;
    if (!body && len && !t->head_only)
        return SL_EINVAL;
    int rc = sl__http_txn_answerable(t);
    if (rc)
        return rc;
    t->state = SL_HTTP_TXN_DONE;
    /* 1xx, 204 and 304 have no body and no length (RFC 9110 8.6). */
    int bodyless = status < 200 || status == 204 || status == 304;
    if (bodyless)
        return queue_response(t, status, NULL, -1, extra_headers, NULL, 0);
    return queue_response(t, status, content_type ? content_type : "application/octet-stream",
                          (int64_t)len, extra_headers, t->head_only ? NULL : body,
                          t->head_only ? 0 : len);
}

int sl_http_respond_json(sl_http_req_t *req, int status, const char *json)
{
    return sl_http_respond(req, status, "application/json", json, strlen(json), NULL);
}

static int respond_text(sl_http_req_t *req, int status, const char *text)
{
    return sl_http_respond(req, status, "text/plain; charset=utf-8", text, strlen(text), NULL);
}

/*
 * Both kinds of streaming answer. length < 0: chunked to an HTTP/1.1 client,
 * unframed up to the close to an HTTP/1.0 one. length >= 0: Content-Length
 * framing for every client, and the connection stays usable after the last
 * byte (sl_http_stream_end checks that the owner sent exactly that much).
 */
static int stream_start(sl_http_req_t *req, int status, const char *content_type,
                        const char *extra_headers, int64_t length, sl_http_close_cb close_cb,
                        void *ud)
{
    sl_http_txn_t *t = (sl_http_txn_t *)req;
    int rc = sl__http_txn_answerable(t);
    if (rc)
        return rc;
    const sl_http_msg_t *m = t->msg;
    t->sized_left = length >= 0 ? length : -1;
    t->chunked = length < 0 && m && (m->http_major > 1 || (m->http_major == 1 && m->http_minor >= 1));
    if (length < 0 && !t->chunked) {
        /* An HTTP/1.0 client reads the body up to the close: nothing may follow. */
        t->close_after = 1;
        t->conn->no_more_requests = 1;
    }
    int64_t framing = length >= 0 ? length : t->chunked ? -2 : -1;
    if (t->head_only) {
        t->state = SL_HTTP_TXN_DONE;
        rc = queue_response(t, status, content_type, framing, extra_headers, NULL, 0);
        return rc ? rc : SL_ECLOSED;
    }
    t->state = SL_HTTP_TXN_STREAM;
    t->close_cb = close_cb;
    t->close_ud = ud;
    rc = queue_response(t, status, content_type, framing, extra_headers, NULL, 0);
    if (rc)
        t->close_cb = NULL; /* the error is the answer: no callback */
    return rc;
}

/* See http.h: chunked (HTTP/1.1) or up to the close (HTTP/1.0). */
int sl_http_stream_start(sl_http_req_t *req, int status, const char *content_type,
                         const char *extra_headers, sl_http_close_cb close_cb, void *ud)
{
    return stream_start(req, status, content_type, extra_headers, -1, close_cb, ud);
}

/* See http.h: Content-Length framing; SL_EINVAL for a length past INT64_MAX. */
int sl_http_stream_start_sized(sl_http_req_t *req, int status, const char *content_type,
                               const char *extra_headers, uint64_t length,
                               sl_http_close_cb close_cb, void *ud)
{
    if (length > (uint64_t)INT64_MAX)
        return SL_EINVAL;
    return stream_start(req, status, content_type, extra_headers, (int64_t)length, close_cb, ud);
}

static void update_reading(sl_http_conn_t *c);
static void conn_close_at(sl_http_conn_t *c, const char *reason, sl_log_level_t level);

/* The stream's held-back bytes plus everything ahead of them on the socket. */
size_t sl_http_stream_pending(const sl_http_req_t *req)
{
    const sl_http_txn_t *t = (const sl_http_txn_t *)req;
    if (t->orphan || t->handed_over || t->conn->state == SL_HTTP_CONN_CLOSING)
        return 0;
    return t->out_bytes + t->conn->out_bytes;
}

/*
 * Hot path of HTTP-FLV and event streams: one small piece per chunk that
 * references the caller's buffer, so one encoded frame is shared by every
 * subscriber. The bound counts the chunk framing too (at most 12 bytes).
 */
int sl_http_stream_write(sl_http_req_t *req, sl_buf_t *buf)
{
    sl_http_txn_t *t = (sl_http_txn_t *)req;
    sl_http_conn_t *c = t->conn;
    if (t->state != SL_HTTP_TXN_STREAM || c->state != SL_HTTP_CONN_OPEN)
        return SL_ECLOSED;
    if (t->handed_over)
        return SL_EINVAL; /* its writes are the owner's now */
    if (!buf->len)
        return 0; /* an empty chunk would end the stream */
    size_t size = buf->len + (t->chunked ? 12u : 0u);
    if (sl_http_stream_pending(req) + size > (size_t)sl_http_cfg(c->srv->core->cfg)->stream_max_pending_bytes)
        return SL_ETOOBIG;
    if (t->sized_left >= 0 && (uint64_t)buf->len > (uint64_t)t->sized_left)
        return SL_EINVAL; /* more than the Content-Length announced */
    sl_http_out_t *o = sl__http_out_new(sl_buf_ref(buf));
    if (!o) {
        sl_buf_unref(buf);
        return SL_ENOMEM;
    }
    if (t->chunked) {
        o->pre_len = (uint8_t)snprintf((char *)o->pre, sizeof o->pre, "%x\r\n", (unsigned)buf->len);
        o->post_len = 2;
    }
    c->sess.msgs_out++;
    if (t->sized_left >= 0)
        t->sized_left -= (int64_t)buf->len;
    sl__http_txn_queue(t, o);
    return 0;
}

/*
 * Queues the last chunk. close_cb runs later from the flush pass, when the
 * queue passes this request, never from inside this call.
 */
int sl_http_stream_end(sl_http_req_t *req)
{
    sl_http_txn_t *t = (sl_http_txn_t *)req;
    sl_http_conn_t *c = t->conn;
    if (t->state != SL_HTTP_TXN_STREAM)
        return SL_ECLOSED;
    t->state = SL_HTTP_TXN_STREAM_ENDED; /* close_cb runs when the queue passes it */
    if (c->state != SL_HTTP_CONN_OPEN)
        return SL_ECLOSED;
    if (t->handed_over) {
        /* The owner wrote (or gave up writing) the end on its descriptor. */
        conn_close_at(c, "stream ended", SL_LOG_DEBUG);
        return 0;
    }
    if (t->sized_left > 0) {
        /* Ended short of its Content-Length: the client cannot tell where this
         * answer ends, so the connection cannot carry another one. */
        sl__http_conn_close(c, "sized stream ended early");
        return SL_ECLOSED;
    }
    if (t->chunked) {
        sl_http_out_t *o = sl__http_out_new(NULL);
        if (!o) {
            sl__http_conn_close(c, "out of memory");
            return SL_ENOMEM;
        }
        memcpy(o->pre, "0\r\n\r\n", 5);
        o->pre_len = 5;
        sl__http_txn_queue(t, o);
    } else {
        sl__http_schedule_flush(c);
    }
    return 0;
}

/*
 * See http.h. The unsent bytes are copied out of the output pieces (the
 * head and the first writes: a few hundred bytes), so that the new owner
 * holds one plain buffer and the pieces are retired here at once.
 */
int sl_http_stream_handover(sl_http_req_t *req, int *fd, sl_buf_t **unsent, int *chunked)
{
    sl_http_txn_t *t = (sl_http_txn_t *)req;
    sl_http_conn_t *c = t->conn;
    *fd = -1;
    *unsent = NULL;
    *chunked = 0;
    if (t->state != SL_HTTP_TXN_STREAM || t->handed_over || t->orphan || c->state != SL_HTTP_CONN_OPEN)
        return SL_ECLOSED;
    if (c->tls || t->sized_left >= 0)
        return SL_EDECLINED;
    if (c->writing || c->txns.next != &t->link || t->n_out || c->ws)
        return SL_EAGAIN;
    uv_os_fd_t sock;
    int rc = uv_fileno((uv_handle_t *)&c->tcp, &sock);
    if (rc)
        return rc;
    sl_buf_t *b = NULL;
    if (c->out_bytes && !(b = sl_buf_new(c->out_bytes)))
        return SL_ENOMEM;
    int dfd = fcntl((int)sock, F_DUPFD_CLOEXEC, 0);
    if (dfd < 0) {
        rc = -errno;
        sl_buf_unref(b);
        return rc;
    }
    while (!sl_list_empty(&c->out)) {
        uv_buf_t iov[SL_HTTP_MAX_IOV];
        unsigned niov;
        size_t npieces;
        size_t total = gather(c, iov, &niov, &npieces);
        SL_ASSERT(!total || b); /* out_bytes counted them */
        for (unsigned i = 0; i < niov; i++) {
            memcpy(b->data + b->len, iov[i].base, iov[i].len);
            b->len += iov[i].len;
        }
        consume(c, total); /* gather took whole pieces: they are retired */
    }
    t->handed_over = 1;
    c->handed_over = 1;
    c->no_more_requests = 1;
    t->close_after = 1;
    update_reading(c);
    *fd = dfd;
    *unsent = b;
    *chunked = t->chunked;
    return 0;
}

/* ------------------------------------------------------------------ */
/* routing                                                             */

static const char *const prio_names[] = {"core", "app", "static"};

const char *sl_http_prio_name(sl_http_prio_t prio)
{
    return (unsigned)prio < sizeof prio_names / sizeof prio_names[0] ? prio_names[prio] : "?";
}

/* Dispatch order: priority, then longer prefix, then registration. */
static int route_before(const route_t *a, const route_t *b)
{
    if (a->prio != b->prio)
        return a->prio < b->prio;
    if (a->prefix_len != b->prefix_len)
        return a->prefix_len > b->prefix_len;
    return a->seq < b->seq;
}

static void route_free(route_t *r)
{
    if (!r)
        return;
    sl_free(r->method);
    sl_free(r->prefix);
    sl_free(r->suffixes);
    if (r->free_ud)
        r->free_ud(r->ud);
    sl_free(r);
}

int sl__http_route_owned(sl_http_server_t *srv, const sl_http_route_spec_t *spec,
                         void (*free_ud)(void *), sl_http_route_t **out)
{
    if (out)
        *out = NULL;
    route_t *r = NULL;
    if (!srv || !spec || !spec->cb || !spec->prefix || spec->prefix[0] != '/' ||
        (unsigned)spec->prio > SL_HTTP_PRIO_STATIC) {
        if (free_ud)
            free_ud(spec ? spec->ud : NULL);
        return SL_EINVAL;
    }
    route_t **n = sl_realloc(srv->routes, (srv->n_routes + 1) * sizeof(*n));
    if (!n)
        goto fail;
    srv->routes = n;
    if (!(r = sl_calloc(1, sizeof(*r))))
        goto fail;
    r->free_ud = free_ud;
    r->ud = spec->ud;
    if ((spec->method && !(r->method = sl_strdup(spec->method))) ||
        !(r->prefix = sl_strdup(spec->prefix)) ||
        (spec->suffixes && spec->suffixes[0] && !(r->suffixes = sl_strdup(spec->suffixes))))
        goto fail;
    r->prefix_len = strlen(r->prefix);
    r->prio = spec->prio;
    r->seq = srv->route_seq++;
    r->cb = spec->cb;
    r->options = spec->options;
    r->name = spec->name;
    r->serves = spec->name ? (spec->serves ? spec->serves : "") : NULL;
    size_t at = srv->n_routes;
    while (at > 0 && route_before(r, srv->routes[at - 1]))
        at--;
    memmove(&srv->routes[at + 1], &srv->routes[at], (srv->n_routes - at) * sizeof(*n));
    srv->routes[at] = r;
    srv->n_routes++;
    srv->routes_gen++;
    srv->last_added = r;
    if (out)
        *out = r;
    return 0;
fail:
    if (r)
        route_free(r); /* runs free_ud */
    else if (free_ud)
        free_ud(spec->ud);
    return SL_ENOMEM;
}

int sl_http_route_add(sl_http_server_t *srv, const sl_http_route_spec_t *spec,
                      sl_http_route_t **out)
{
    return sl__http_route_owned(srv, spec, NULL, out);
}

int sl_http_route(sl_http_server_t *srv, const char *method, const char *prefix,
                  sl_http_prio_t prio, sl_http_handler_cb cb, void *ud)
{
    sl_http_route_spec_t spec = {.method = method, .prefix = prefix, .prio = prio, .cb = cb,
                                 .ud = ud};
    return sl_http_route_add(srv, &spec, NULL);
}

void sl_http_route_remove(sl_http_server_t *srv, sl_http_route_t *route)
{
    if (!srv || !route)
        return;
    for (size_t i = 0; i < srv->n_routes; i++) {
        if (srv->routes[i] != route)
            continue;
        memmove(&srv->routes[i], &srv->routes[i + 1],
                (srv->n_routes - i - 1) * sizeof(srv->routes[0]));
        srv->n_routes--;
        srv->routes_gen++;
        if (srv->last_added == route)
            srv->last_added = NULL;
        route_free(route);
        return;
    }
}

void sl_http_route_doc(sl_http_server_t *srv, const char *name, const char *serves)
{
    if (!srv || !srv->last_added) /* a doc without a route: ignored */
        return;
    srv->last_added->name = name;
    srv->last_added->serves = serves ? serves : "";
}

void sl_http_routes_each(const sl_http_server_t *srv, sl_http_route_each_cb each, void *arg)
{
    for (size_t i = 0; i < srv->n_routes; i++) {
        const route_t *r = srv->routes[i];
        sl_http_route_info_t info = {r->method, r->prefix, r->suffixes, r->prio,
                                     sl_http_prio_name(r->prio), r->name, r->serves};
        each(arg, &info);
    }
}

/*
 * A plain OPTIONS (no Access-Control-Request-Method: not a preflight) that
 * a route taking OPTIONS itself matches: Red5's WHIP/WHEP clients read
 * headers of that answer (the stream manager proxy's Session-Host).
 */
static int options_routed(const sl_http_server_t *srv, const sl_http_req_t *req)
{
    if (sl_http_req_header(req, "Access-Control-Request-Method"))
        return 0;
    for (size_t i = 0; i < srv->n_routes; i++)
        if (srv->routes[i]->options &&
            sl__http_route_match(srv->routes[i]->method, srv->routes[i]->prefix,
                                 srv->routes[i]->suffixes, req->method, req->path))
            return 1;
    return 0;
}

/*
 * Runs the matching routes in dispatch order (priority, longer prefix,
 * registration). With CORS on, OPTIONS is a preflight for every route and
 * is answered here, before any of them. A route that declines passes the
 * request on; one that fails without answering gets a 500 written for it;
 * nobody taking it is a 404. A handler may add or remove routes: then the
 * walk finds its place again as the first route ordered after the one that
 * just declined, so none is tried twice.
 */
static void route_request(sl_http_conn_t *c, sl_http_txn_t *t)
{
    sl_http_server_t *srv = c->srv;
    const sl_config_t *cfg = srv->core->cfg;
    sl_http_req_t *req = &t->req;
    if (sl_http_cfg(cfg)->cors_origin && sl_http_cfg(cfg)->cors_origin[0] && t->msg->method_id == HTTP_OPTIONS &&
        !options_routed(srv, req)) {
        sl_http_respond(req, 204, NULL, NULL, 0,
                        "Access-Control-Allow-Methods: GET, POST, PUT, PATCH, DELETE, OPTIONS\r\n"
                        "Access-Control-Allow-Headers: Authorization, Content-Type\r\n"
                        "Access-Control-Max-Age: 86400\r\n");
        return;
    }
    for (size_t i = 0; i < srv->n_routes; i++) {
        route_t *r = srv->routes[i];
        if (!sl__http_route_match(r->method, r->prefix, r->suffixes, req->method, req->path))
            continue;
        /* Kept by value: the handler may remove (free) this route; only its
         * order key (prio, prefix_len, seq) is used afterwards. */
        route_t tried = *r;
        uint64_t gen = srv->routes_gen;
        int rc = tried.cb(req, tried.ud);
        if (rc == SL_EDECLINED && t->state == SL_HTTP_TXN_PENDING) {
            if (gen != srv->routes_gen) {
                size_t j = 0;
                while (j < srv->n_routes && !route_before(&tried, srv->routes[j]))
                    j++;
                i = j - 1; /* wraps to SIZE_MAX when j is 0; the loop's ++ makes it 0 */
            }
            continue;
        }
        if (rc < 0 && rc != SL_EDECLINED && t->state == SL_HTTP_TXN_PENDING) {
            char rb[SL_REDACT_MAX];
            SL_LOGW(&c->sess.log, "%s %s: handler failed: %s", req->method,
                    sl_redact(req->raw_path, rb, sizeof rb),
                    sl_strerror(rc));
            respond_text(req, 500, "internal server error\n");
        }
        return;
    }
    respond_text(req, 404, "not found\n");
}

/* ------------------------------------------------------------------ */
/* requests in                                                         */

/*
 * Answers an error the connection cannot recover from (400, 408, 413,
 * 414, 431), after the answers before it: the error is a request of its
 * own at the tail of the queue, closing the connection once written.
 */
static void answer_error(sl_http_conn_t *c, int status, const char *why)
{
    SL_LOGI(&c->sess.log, "answering %d %s: %s", status, sl__http_reason(status), why);
    c->no_more_requests = 1;
    sl_http_txn_t *t = sl_calloc(1, sizeof(*t));
    if (!t) {
        sl__http_conn_close(c, "out of memory");
        return;
    }
    t->conn = c;
    sl_list_init(&t->out);
    t->close_after = 1;
    t->req.method = "-";
    t->req.path = t->req.raw_path = "-";
    t->req.query = "";
    t->req.session = &c->sess;
    sl_list_push_back(&c->txns, &t->link);
    c->n_txns++;
    char body[96];
    snprintf(body, sizeof body, "%d %s\n", status, sl__http_reason(status));
    respond_text(&t->req, status, body);
}

/* Why the framer refused a request, for the log. */
static const char *parse_error_text(const sl_http_parser_t *p)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
    if (e != HPE_OK && (e < HPE_CB_message_begin || e > HPE_CB_chunk_complete))
        return http_errno_description(e); /* http-parser's own finding */
    switch (p->status) {
    case 413: return "body over http.max_body_bytes";
    case 414: return "URL over http.max_url_bytes";
    case 431: return "head over http.max_header_bytes or http.max_headers";
    case 500: return "out of memory";
    default: return "malformed request target";
    }
}

static int is_ws_upgrade(const sl_http_msg_t *m)
{
    return sl__http_header_has_token(sl__http_header_find(m->headers, m->n_headers, "upgrade"),
                                     "websocket");
}

/* A complete request: queue it (owning m) and route it. Handlers run from here. */
static void dispatch(sl_http_conn_t *c, sl_http_msg_t *m)
{
    sl_http_txn_t *t = sl_calloc(1, sizeof(*t));
    if (!t) {
        sl_http_msg_free(m);
        sl__http_conn_close(c, "out of memory");
        return;
    }
    t->conn = c;
    t->msg = m;
    sl_list_init(&t->out);
    sl_http_req_t *req = &t->req;
    req->method = m->method;
    req->path = m->path;
    req->raw_path = m->raw_path;
    req->query = m->query;
    req->headers = m->headers;
    req->n_headers = m->n_headers;
    req->body = m->body;
    req->body_len = m->body_len;
    req->remote_addr = c->sess.remote_addr;
    req->remote_port = c->sess.remote_port;
    req->session = &c->sess;
    t->head_only = m->method_id == HTTP_HEAD;
    t->close_after = !m->keep_alive || c->srv->stopping;
    if (m->upgrade) {
        /* What follows is another protocol: no more HTTP requests here. A
         * WebSocket upgrade keeps those bytes for the WebSocket; any other
         * upgrade (h2c, CONNECT) is answered as plain HTTP and closed. */
        t->close_after = 1;
        if (is_ws_upgrade(m))
            c->upgrade_pending = 1;
    }
    if (t->close_after)
        c->no_more_requests = 1;
    sl_list_push_back(&c->txns, &t->link);
    c->n_txns++;
    c->n_requests++;
    c->sess.msgs_in++;
    c->head_start_ms = 0;
    /* A whole request makes the connection a client: out of the pending share. */
    sl_session_admitted(&c->sess);
    route_request(c, t);
}

static int can_parse(const sl_http_conn_t *c)
{

    /* A client that pipelines without reading its answers is not parsed
     * further; its input then fills `in` and reading pauses. Answers held
     * back behind an unanswered one count too: a slow first handler must
     * not let fifteen large answers pile up behind it. */
    return c->state == SL_HTTP_CONN_OPEN && !c->no_more_requests && !c->ws &&
           c->n_txns < SL_HTTP_MAX_PIPELINE && c->out_bytes + c->held_bytes < OUT_HIGH_BYTES;
}

/*
 * Parses buffered input, then p[0..n) (borrowed), dispatching each complete
 * request; keeps what cannot be parsed now. Handlers run from here.
 */
static void conn_parse(sl_http_conn_t *c, const uint8_t *p, size_t n)
{
    const uint8_t *data = p;
    size_t len = n, off = 0;
    if (c->in.len) {
        if (n && sl_wbuf_put(&c->in, p, n)) {
            sl__http_conn_close(c, "input buffer full");
            return;
        }
        data = c->in.data;
        len = c->in.len;
    }
    while (off < len && can_parse(c)) {
        size_t used = 0;
        int rc = sl_http_parser_feed(&c->parser, data + off, len - off, &used);
        off += used;
        /* A request that began in this read may already be in its body. */
        if ((c->parser.phase == SL_HTTP_PHASE_HEAD || c->parser.phase == SL_HTTP_PHASE_BODY) &&
            !c->head_start_ms)
            c->head_start_ms = now_ms(c);
        if (rc < 0) {
            answer_error(c, c->parser.status ? c->parser.status : 400, parse_error_text(&c->parser));
            off = len; /* nothing after a broken request can be trusted */
            break;
        }
        if (rc == 0 && c->parser.expect_continue) {
            /* Only when every earlier answer is out, so it cannot overtake one. */
            c->parser.expect_continue = 0;
            if (c->n_txns == 0) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                sl_buf_t *b = sl_buf_from(cont, sizeof cont - 1);
                if (b) {
                    sl__http_conn_queue_raw(c, b);
                    sl_buf_unref(b);
                }
            }
        }
        if (rc == 1) {
            dispatch(c, sl_http_parser_take(&c->parser));
            if (c->state != SL_HTTP_CONN_OPEN)
                return; /* a handler closed us; the buffers go with the connection */
        }
    }
    size_t rest = len - off;
    int keep = rest && (c->upgrade_pending || !c->no_more_requests);
    if (data == c->in.data) {
        if (keep)
            memmove(c->in.data, data + off, rest);
        c->in.len = keep ? rest : 0;
    } else if (keep && sl_wbuf_put(&c->in, data + off, rest)) {
        sl__http_conn_close(c, "input buffer full");
    }
}

static void update_reading(sl_http_conn_t *c);

static void conn_close_at(sl_http_conn_t *c, const char *reason, sl_log_level_t level);

static int conn_streaming(const sl_http_conn_t *c)
{
    const sl_list_t *it;
    for (it = c->txns.next; it != &c->txns; it = it->next) {
        const sl_http_txn_t *t = sl_container_of(it, sl_http_txn_t, link);
        if (t->state == SL_HTTP_TXN_STREAM || t->state == SL_HTTP_TXN_STREAM_ENDED)
            return 1;
    }
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    sl_http_conn_t *c = h->data;
    buf->base = (char *)c->srv->rbuf;
    buf->len = c->tls ? TLS_READ_BYTES : READ_BUF_SIZE;
}

/* The client shut down its side (a FIN, or TLS close_notify). */
static void conn_on_eof(sl_http_conn_t *c)
{
    if (c->state == SL_HTTP_CONN_LINGER) {
        sl__http_conn_close(c, NULL);
        return;
    }
    /* A client that leaves a stream or a WebSocket is gone. One that
     * only half-closed after asking gets its answers, then the close
     * (see conn_pump). */
    if (c->ws || conn_streaming(c)) {
        conn_close_at(c, "peer closed the connection", SL_LOG_DEBUG);
        return;
    }
    c->eof = 1;
    update_reading(c);
    sl__http_schedule_flush(c);
}

/* Plaintext (borrowed) for the WebSocket once it runs, else for the framer. */
static void conn_deliver(sl_http_conn_t *c, const uint8_t *p, size_t n)
{
    if (c->ws && c->ws->active)
        sl__http_ws_on_data(c, p, n);
    else
        conn_parse(c, p, n);
}

/*
 * A plain-HTTP request sent to the HTTPS port (OpenSSL recognises it): as
 * nginx does, answer in clear once, so `curl http://host:5443/` says what
 * is wrong instead of "empty reply". Best effort; the connection closes.
 */
static void tls_plain_http_answer(sl_http_conn_t *c)
{
    static const char body[] = "This port speaks HTTPS: use https:// for this address.\n";
    char msg[256];
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     sizeof body - 1, body);
    if (n <= 0 || (size_t)n >= sizeof msg)
        return;
    uv_buf_t b = uv_buf_init(msg, (unsigned)n);
    int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (r > 0)
        c->sess.bytes_out += (uint64_t)r;
}

/*
 * Ciphertext read on a TLS connection (borrowed): feed it to the filter
 * and hand on every record it completes, decrypted into the read buffer
 * (free again once the filter has copied the ciphertext). Handshake
 * answers wait in the filter for the flush pass to write them.
 */
static void tls_on_data(sl_http_conn_t *c, const uint8_t *p, size_t n)
{
    sl_http_server_t *srv = c->srv;
    if (sl_tls_feed(c->tls, p, n)) {
        sl__http_conn_close(c, "out of memory");
        return;
    }
    while (c->state == SL_HTTP_CONN_OPEN) {
        size_t got = 0;
        int rc = sl_tls_read(c->tls, srv->rbuf, sizeof srv->rbuf, &got);
        if (!c->tls_established && sl_tls_handshake_done(c->tls)) {
            c->tls_established = 1;
            SL_LOGD(&c->sess.log, "tls: %s %s", sl_tls_version(c->tls), sl_tls_cipher(c->tls));
        }
        if (rc == SL_ECLOSED) {
            conn_on_eof(c);
            return;
        }
        if (rc) {
            /* Peer misbehaviour (a plain-HTTP request, a scanner, no common
             * cipher, a corrupt record): debug, and the alert goes out if
             * the socket takes it. */
            if (!c->tls_established && strcmp(sl_tls_error(c->tls), "http request") == 0) {
                tls_plain_http_answer(c);
                conn_close_at(c, "tls handshake failed: http request (answered 400 in clear)",
                              SL_LOG_DEBUG);
                return;
            }
            char why[200];
            snprintf(why, sizeof why, "tls %s: %s",
                     c->tls_established ? "error" : "handshake failed",
                     rc == SL_ENOMEM ? "out of memory" : sl_tls_error(c->tls));
            tls_goodbye(c);
            conn_close_at(c, why, SL_LOG_DEBUG);
            return;
        }
        if (!got)
            return;
        conn_deliver(c, srv->rbuf, got);
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    sl_http_conn_t *c = s->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (nread != UV_EOF) {
            sl__http_conn_close(c, uv_strerror((int)nread));
            return;
        }
        conn_on_eof(c);
        return;
    }
    c->sess.bytes_in += (uint64_t)nread;
    c->last_read_ms = now_ms(c);
    if (c->state == SL_HTTP_CONN_LINGER || c->handed_over)
        return; /* drained and dropped (after a hand-over: read only to see the client leave) */
    if (c->tls)
        tls_on_data(c, (const uint8_t *)buf->base, (size_t)nread);
    else
        conn_deliver(c, (const uint8_t *)buf->base, (size_t)nread);
    if (c->state != SL_HTTP_CONN_OPEN)
        return;
    /* Now, not at the flush: libuv may read again before it. */
    update_reading(c);
    sl__http_schedule_flush(c);
}

/*
 * Reads only while input can go somewhere: not while an upgrade awaits
 * its answer (the bytes belong to the WebSocket), not after the last
 * request of the connection, not while `in` is at its mark. A lingering
 * connection reads to drain. This is the input side of backpressure.
 */
static void update_reading(sl_http_conn_t *c)
{
    int want;
    if (c->state == SL_HTTP_CONN_LINGER)
        want = !c->eof;
    else if (c->state != SL_HTTP_CONN_OPEN || c->eof)
        want = 0;
    else if (c->ws)
        want = c->ws->active;
    else if (c->handed_over)
        want = 1; /* a stream's writes moved: reading sees the client leave */
    else
        want = !c->upgrade_pending && !c->no_more_requests && c->in.len < IN_HIGH_BYTES;
    if (want && !c->reading) {
        int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        if (rc) {
            sl__http_conn_close(c, uv_strerror(rc));
            return;
        }
        c->reading = 1;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

/* ------------------------------------------------------------------ */
/* the queue, closing                                                  */

/*
 * Moves the head request's output to the connection and retires finished
 * requests in order. Streams learn here that their end was passed on.
 */
static void advance(sl_http_conn_t *c)
{
    while (c->state != SL_HTTP_CONN_CLOSING && !sl_list_empty(&c->txns)) {
        sl_http_txn_t *t = sl_container_of(c->txns.next, sl_http_txn_t, link);
        if (!sl_list_empty(&t->out)) {
            list_splice_tail(&c->out, &t->out);
            c->held_bytes -= t->out_bytes;
            c->out_bytes += t->out_bytes;
            c->n_out += t->n_out;
            t->out_bytes = t->n_out = 0;
        }
        if (t->state == SL_HTTP_TXN_PENDING || t->state == SL_HTTP_TXN_STREAM)
            break;
        sl_list_remove(&t->link);
        c->n_txns--;
        if (t->state == SL_HTTP_TXN_WS) {
            txn_free(t);
            sl__http_ws_start(c);
            break;
        }
        if (t->close_after) {
            c->close_after_flush = 1;
            c->no_more_requests = 1;
        }
        char rb[SL_REDACT_MAX]; /* ?accessToken=, ?token=, ?password= stay out of the log */
        SL_LOGD(&c->sess.log, "%s %s -> %d", t->req.method, sl_redact(t->req.raw_path, rb, sizeof rb),
                t->status);
        if (t->state == SL_HTTP_TXN_STREAM_ENDED && t->close_cb) {
            sl_http_close_cb cb = t->close_cb;
            t->close_cb = NULL;
            cb(&t->req, t->close_ud);
        }
        txn_free(t);
        if (!c->n_txns)
            c->quiet_since_ms = now_ms(c);
    }
}

/*
 * The socket is closed: tell the owners (WebSocket first, then streams,
 * whose close_cb runs here and not inside the call that closed us), keep
 * requests whose handler still owes an answer, free the rest.
 */
static void on_conn_closed(uv_handle_t *h)
{
    sl_http_conn_t *c = h->data;
    sl_http_server_t *srv = c->srv;
    if (c->ws)
        sl__http_ws_closed(c);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &c->txns) {
        sl_http_txn_t *t = sl_container_of(it, sl_http_txn_t, link);
        if (t->orphan)
            continue;
        if (t->state == SL_HTTP_TXN_PENDING) {
            /* The handler still owes an answer: keep the request (and us). */
            t->orphan = 1;
            c->refs++;
            continue;
        }
        sl_list_remove(&t->link);
        if (t->close_cb) {
            sl_http_close_cb cb = t->close_cb;
            t->close_cb = NULL;
            cb(&t->req, t->close_ud);
        }
        txn_free(t);
    }
    free_pieces(&c->out);
    sl_http_parser_cleanup(&c->parser);
    sl_wbuf_cleanup(&c->in);
    sl_tls_free(c->tls);
    c->tls = NULL;
    sl_free(c->tls_wire); /* NULL by now: a cancelled write has called on_write */
    c->tls_wire = NULL;
    srv->n_conns--;
    sl_list_push_back(&srv->orphans, &c->link);
    conn_unref(c);
    if (srv->stopping && !srv->n_conns)
        sl_listener_idle(&srv->net);
}

/* Closes at once; reason logged at level (info for trouble, debug for routine). */
static void conn_close_at(sl_http_conn_t *c, const char *reason, sl_log_level_t level)
{
    if (c->state == SL_HTTP_CONN_CLOSING)
        return;
    if (reason && sl_log_enabled(level))
        sl_log(level, &c->sess.log, "closing: %s (%llu requests, in %llu B, out %llu B)", reason,
               (unsigned long long)c->n_requests, (unsigned long long)c->sess.bytes_in,
               (unsigned long long)c->sess.bytes_out);
    if (c->tls && c->tls_established && c->state == SL_HTTP_CONN_OPEN)
        tls_goodbye(c); /* an orderly end for the client's TLS library */
    c->state = SL_HTTP_CONN_CLOSING;
    if (c->on_flush_list) {
        sl_list_remove(&c->flush_link);
        c->on_flush_list = 0;
    }
    sl_list_remove(&c->link);
    sl_session_unregister(c->srv->core, &c->sess);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

void sl__http_conn_close(sl_http_conn_t *c, const char *reason)
{
    conn_close_at(c, reason, SL_LOG_INFO);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    sl_http_conn_t *c = req->data;
    if (status < 0 && c->state == SL_HTTP_CONN_LINGER)
        conn_close_at(c, "shutdown failed", SL_LOG_DEBUG);
}

/* Everything is answered and written: shut down our side, drain, close. */
static void begin_linger(sl_http_conn_t *c)
{
    if (c->state != SL_HTTP_CONN_OPEN)
        return;
    if (c->eof) {
        conn_close_at(c, "done", SL_LOG_DEBUG);
        return;
    }
    if (c->tls) {
        /* close_notify goes before our FIN: uv_shutdown waits for the write. */
        sl_tls_close_notify(c->tls);
        conn_write(c);
        if (c->state != SL_HTTP_CONN_OPEN)
            return;
    }
    c->state = SL_HTTP_CONN_LINGER;
    c->linger_start_ms = now_ms(c);
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close_at(c, "done", SL_LOG_DEBUG);
        return;
    }
    update_reading(c);
}

/*
 * The connection's work, run from the flush pass: retire answered
 * requests, parse what waited, let the WebSocket write, write, then decide
 * about closing and reading.
 */
static void conn_pump(sl_http_conn_t *c)
{
    if (c->state != SL_HTTP_CONN_OPEN)
        return;
    advance(c);
    if (c->in.len && can_parse(c)) {
        conn_parse(c, NULL, 0);
        advance(c);
    }
    if (c->state == SL_HTTP_CONN_OPEN && c->ws && c->ws->active)
        sl__http_ws_pump(c);
    /* Requests waiting for the output to drain: when this write takes it
     * under the mark at once (no write callback follows), parse them in
     * another pass. Only on that transition, so a partial request that
     * waits for more bytes never spins the flush pass. */
    int blocked = c->state == SL_HTTP_CONN_OPEN && c->in.len && !can_parse(c);
    conn_write(c);
    if (c->state != SL_HTTP_CONN_OPEN)
        return;
    if (blocked && can_parse(c))
        sl__http_schedule_flush(c);
    if (conn_drained(c) && !c->n_txns) {
        if (c->close_after_flush) {
            begin_linger(c);
            return;
        }
        if (c->eof) {
            conn_close_at(c, "peer closed the connection", SL_LOG_DEBUG);
            return;
        }
    }
    update_reading(c);
}

/* The flush pass: every connection with work, just before the loop sleeps. */
static void on_prepare(void *ud)
{
    sl_http_server_t *srv = ud;
    /* Not foreach_safe: pumping one connection may close or requeue another. */
    while (!sl_list_empty(&srv->flush_list)) {
        sl_http_conn_t *c = sl_container_of(srv->flush_list.next, sl_http_conn_t, flush_link);
        sl_list_remove(&c->flush_link);
        c->on_flush_list = 0;
        conn_pump(c);
    }
}

/* Graceful: finish what was asked, end streams, close WebSockets, then close. */
static void conn_graceful(sl_http_conn_t *c)
{
    if (c->state == SL_HTTP_CONN_LINGER) {
        conn_close_at(c, "server shutdown", SL_LOG_DEBUG); /* answered already */
        return;
    }
    if (c->state != SL_HTTP_CONN_OPEN)
        return;
    c->no_more_requests = 1;
    if (c->ws) {
        sl__http_ws_shutdown(c);
        return;
    }
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &c->txns) {
        sl_http_txn_t *t = sl_container_of(it, sl_http_txn_t, link);
        t->close_after = 1;
        if (t->state == SL_HTTP_TXN_STREAM)
            sl_http_stream_end(&t->req);
    }
    if (!c->n_txns && conn_drained(c)) {
        conn_close_at(c, "server shutdown", SL_LOG_DEBUG);
        return;
    }
    c->close_after_flush = 1;
    sl__http_schedule_flush(c);
}

/* Session ops: what the core (API kicks, shutdown, stats) may do to us. */
static void conn_kick(sl_session_t *s, const char *reason)
{
    conn_close_at((sl_http_conn_t *)s, reason ? reason : "kicked",
                  s->close_quietly ? SL_LOG_DEBUG : SL_LOG_INFO);
}

static void conn_shutdown(sl_session_t *s) { conn_graceful((sl_http_conn_t *)s); }

static uint64_t conn_pending(const sl_session_t *s)
{
    const sl_http_conn_t *c = (const sl_http_conn_t *)s;
    return c->n_out + (c->ws ? sl__http_ws_queued(c) : 0);
}

static const sl_session_ops_t conn_session_ops = {
    .kick = conn_kick,
    .shutdown = conn_shutdown,
    .pending = conn_pending,
};

/* ------------------------------------------------------------------ */
/* accepting, timers, start/stop                                       */

/*
 * A connection refused at accept (a budget of sl_session_accept) on plain
 * HTTP hears why in one best-effort write: it has sent nothing yet, so a
 * close right after cannot turn into a reset that hides the answer. On
 * HTTPS it is only closed: a TLS handshake costs more than the refusal.
 */
static void refuse_503(sl_http_conn_t *c)
{
    static const char msg[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                              "Content-Length: 25\r\nRetry-After: 10\r\nConnection: close\r\n\r\n"
                              "connection limit reached\n";
    uv_buf_t b = uv_buf_init((char *)msg, sizeof msg - 1);
    int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (r > 0)
        c->sess.bytes_out += (uint64_t)r;
}

static void on_connection(void *ud, int is_tls)
{
    sl_http_server_t *srv = ud;
    sl_http_conn_t *c = sl_calloc(1, sizeof(*c));
    if (!c) {
        SL_LOGE(NULL, "http: out of memory accepting a connection");
        sl_listener_shed(&srv->net, is_tls);
        return;
    }
    uv_tcp_init(srv->core->loop, &c->tcp);
    c->tcp.data = c;
    c->srv = srv;
    c->refs = 1;
    sl_list_init(&c->link);
    sl_list_init(&c->flush_link);
    sl_list_init(&c->txns);
    sl_list_init(&c->out);
    sl_http_parser_init(&c->parser, &srv->lim);
    sl_wbuf_init(&c->in, IN_HIGH_BYTES + READ_BUF_SIZE);
    srv->n_conns++;
    sl_list_push_back(&srv->conns, &c->link);
    sl_session_register(srv->core, &c->sess, &conn_session_ops, "http");
    if (sl_listener_accept(&srv->net, is_tls, &c->tcp) != 0) {
        sl__http_conn_close(c, "accept failed");
        return;
    }
    sl_session_set_peer(&c->sess, &c->tcp);
    if (srv->stopping || srv->core->shutting_down) {
        conn_close_at(c, "server is shutting down", SL_LOG_DEBUG);
        return;
    }
    const char *why = NULL;
    if (sl_session_accept(srv->core, &c->sess, &why) != 0) {
        /* Logged by the core, at most once per address or per interval. */
        if (!is_tls)
            refuse_503(c);
        conn_close_at(c, why, SL_LOG_DEBUG);
        return;
    }
    if (is_tls && sl_tls_new(sl_listener_tls(&srv->net), &c->tls) != 0) {
        sl__http_conn_close(c, "out of memory (tls)");
        return;
    }
    /* Answers are written whole and at once: Nagle would only delay the
     * last segment of each one. */
    uv_tcp_nodelay(&c->tcp, 1);
    c->quiet_since_ms = c->last_read_ms = c->last_write_ms = now_ms(c);
    SL_LOGD(&c->sess.log, "accepted from %s:%d%s", c->sess.remote_addr, c->sess.remote_port,
            is_tls ? " (tls)" : "");
    update_reading(c);
}

/*
 * The timeouts (see the top of this file). One timer for the server, not
 * one per connection: a 250 ms tick is precise enough for timeouts of a
 * second or more, and costs nothing per idle client between ticks.
 */
static void on_sweep(void *ud, uint64_t now)
{
    sl_list_t *it, *nx;
    sl_http_server_t *srv = ud;
    const sl_config_t *cfg = srv->core->cfg;
    uint64_t header_ms = (uint64_t)sl_http_cfg(cfg)->header_timeout_ms;
    uint64_t idle_ms = (uint64_t)sl_http_cfg(cfg)->idle_timeout_ms;
    uint64_t request_ms = (uint64_t)sl_http_cfg(cfg)->request_timeout_ms;
    sl_list_foreach_safe(it, nx, &srv->conns) {
        sl_http_conn_t *c = sl_container_of(it, sl_http_conn_t, link);
        if (c->state == SL_HTTP_CONN_LINGER) {
            if (now - c->linger_start_ms > LINGER_MS)
                conn_close_at(c, "linger done", SL_LOG_DEBUG);
            continue;
        }
        if (c->state != SL_HTTP_CONN_OPEN)
            continue;
        if (c->writing && now - c->last_write_ms > idle_ms) {
            sl__http_conn_close(c, "client stopped reading");
            continue;
        }
        if (c->tls && !c->tls_established) {
            /* quiet_since_ms is the accept time until a request is answered. */
            if (now - c->quiet_since_ms > header_ms)
                conn_close_at(c, "tls handshake not complete in time", SL_LOG_DEBUG);
            continue;
        }
        if (c->ws) {
            sl__http_ws_sweep(c, now);
            continue;
        }
        /* The whole-request deadline: head and body from the first byte
         * (or from when the answers before it were out), however steadily
         * the bytes trickle in. Behind answers still owed, a 408 could not
         * overtake them: the connection just closes. */
        if ((c->parser.phase == SL_HTTP_PHASE_HEAD || c->parser.phase == SL_HTTP_PHASE_BODY) &&
            c->head_start_ms && !c->no_more_requests &&
            now - (c->head_start_ms > c->quiet_since_ms ? c->head_start_ms : c->quiet_since_ms) >
                request_ms) {
            sl_core_budget_exceeded(srv->core, SL_BUDGET_HTTP_REQUEST_TIMEOUT, NULL);
            if (c->n_txns) {
                sl__http_conn_close(c, "request not complete within http.request_timeout");
            } else {
                answer_error(c, 408, "request not complete within http.request_timeout");
                sl__http_schedule_flush(c);
            }
            continue;
        }
        if (c->n_txns)
            continue; /* a handler or a stream is at work: its business */
        switch (c->parser.phase) {
        case SL_HTTP_PHASE_HEAD:
            if (now - (c->head_start_ms > c->quiet_since_ms ? c->head_start_ms : c->quiet_since_ms) >
                header_ms) {
                answer_error(c, 408, "request head not complete in time");
                sl__http_schedule_flush(c);
            }
            break;
        case SL_HTTP_PHASE_BODY:
            if (now - (c->last_read_ms > c->quiet_since_ms ? c->last_read_ms : c->quiet_since_ms) >
                header_ms) {
                answer_error(c, 408, "request body stalled");
                sl__http_schedule_flush(c);
            }
            break;
        default:
            if (!conn_drained(c) || c->close_after_flush)
                break;
            if (!c->n_requests) {
                if (now - c->quiet_since_ms > header_ms)
                    conn_close_at(c, "no request in time", SL_LOG_DEBUG);
            } else if (now - max3(c->quiet_since_ms, c->last_read_ms, c->last_write_ms) > idle_ms) {
                conn_close_at(c, "idle", SL_LOG_DEBUG);
            }
            break;
        }
    }
}

static void on_stop_deadline(void *ud)
{
    sl_http_server_t *srv = ud;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &srv->conns) {
        sl__http_conn_close(sl_container_of(it, sl_http_conn_t, link), "shutdown deadline");
    }
}

int sl_http_server_tls_enabled(const sl_config_t *cfg)
{
    return (sl_http_cfg(cfg)->tls_cert && sl_http_cfg(cfg)->tls_cert[0]) ||
           (sl_http_cfg(cfg)->tls_key && sl_http_cfg(cfg)->tls_key[0]);
}

const char *sl_http_server_tls_bind(const sl_config_t *cfg)
{
    return sl_http_cfg(cfg)->tls_bind && sl_http_cfg(cfg)->tls_bind[0] ? sl_http_cfg(cfg)->tls_bind : sl_http_cfg(cfg)->bind;
}

int sl_http_server_tls_check(const sl_config_t *cfg, char *err, size_t err_cap)
{
    if (!sl_http_server_tls_enabled(cfg))
        return 0;
    sl_tls_ctx_t *ctx = NULL;
    int rc = sl_tls_ctx_new_server(sl_http_cfg(cfg)->tls_cert, sl_http_cfg(cfg)->tls_key, "http/1.1", &ctx, err,
                                   err_cap);
    sl_tls_ctx_free(ctx);
    return rc;
}

static const sl_listener_ops_t listener_ops = {
    .on_connection = on_connection,
    .on_sweep = on_sweep,
    .on_prepare = on_prepare,
    .on_deadline = on_stop_deadline,
};

int sl_http_server_start(sl_core_t *core, sl_http_server_t **out)
{
    *out = NULL;
    const sl_config_t *cfg = core->cfg;
    sl_http_server_t *srv = sl_calloc(1, sizeof(*srv));
    if (!srv)
        return SL_ENOMEM;
    srv->core = core;
    sl_list_init(&srv->conns);
    sl_list_init(&srv->orphans);
    sl_list_init(&srv->flush_list);
    srv->lim.max_header_bytes = (size_t)sl_http_cfg(cfg)->max_header_bytes;
    srv->lim.max_headers = (size_t)sl_http_cfg(cfg)->max_headers;
    srv->lim.max_body_bytes = (size_t)sl_http_cfg(cfg)->max_body_bytes;
    srv->lim.max_url_bytes = (size_t)sl_http_cfg(cfg)->max_url_bytes;

    /* The certificate first: a bad one must fail the start before anything listens. */
    int rc = 0;
    sl_tls_ctx_t *tls_ctx = NULL;
    if (sl_http_server_tls_enabled(cfg)) {
        char err[512];
        rc = sl_tls_ctx_new_server(sl_http_cfg(cfg)->tls_cert, sl_http_cfg(cfg)->tls_key, "http/1.1", &tls_ctx,
                                   err, sizeof err);
        if (rc) {
            SL_LOGE(NULL, "https: %s", err[0] ? err : sl_strerror(rc));
            goto fail;
        }
    }
    const sl_listener_config_t lc = {
        .name = "http", .tls_name = "https",
        .bind = sl_http_cfg(cfg)->bind, .port = sl_http_cfg(cfg)->port,
        .tls_bind = sl_http_server_tls_bind(cfg), .tls_port = sl_http_cfg(cfg)->tls_port,
        .tls_ctx = tls_ctx, /* taken */
        .sweep_ms = SWEEP_INTERVAL_MS,
        .stop_timeout_ms = (uint64_t)cfg->server_shutdown_timeout_ms,
    };
    rc = sl_listener_start(&srv->net, core->loop, &lc, &listener_ops, srv);
    if (rc)
        goto fail; /* logged, and nothing left open */
    /* One provider per name: a second server in one process (tests) serves
     * without being the service. */
    srv->svc_registered = sl__http_svc_register(srv) == 0;
    *out = srv;
    return 0;
fail:
    sl_free(srv);
    return rc;
}

int sl_http_server_port(const sl_http_server_t *srv)
{
    return srv ? sl_listener_port(&srv->net, 0) : -1;
}

int sl_http_server_tls_port(const sl_http_server_t *srv)
{
    return srv ? sl_listener_port(&srv->net, 1) : -1;
}

void sl_http_server_stop(sl_http_server_t *srv)
{
    if (!srv || srv->stopping)
        return;
    srv->stopping = 1;
    if (srv->svc_registered) {
        srv->svc_registered = 0;
        sl__http_svc_unregister(srv);
    }
    sl_http_admit_stop();
    sl_listener_stop(&srv->net); /* closes the listeners, arms the stop deadline */
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &srv->conns) {
        conn_graceful(sl_container_of(it, sl_http_conn_t, link));
    }
    if (!srv->n_conns)
        sl_listener_idle(&srv->net);
}

/*
 * Requests still owed an answer are freed here with a warning: a handler
 * that answers after this point would touch freed memory.
 */
void sl_http_server_free(sl_http_server_t *srv)
{
    if (!srv)
        return;
    if (srv->svc_registered)
        sl__http_svc_unregister(srv);
    size_t n_orphans = 0;
    while (!sl_list_empty(&srv->orphans)) {
        sl_http_conn_t *c = sl_container_of(srv->orphans.next, sl_http_conn_t, link);
        while (!sl_list_empty(&c->txns)) {
            sl_http_txn_t *t = sl_container_of(c->txns.next, sl_http_txn_t, link);
            sl_list_remove(&t->link);
            txn_free(t);
            n_orphans++;
        }
        sl_list_remove(&c->link);
        sl_free(c);
    }
    if (n_orphans)
        SL_LOGW(NULL, "http: %zu request(s) never answered by their handler", n_orphans);
    for (size_t i = 0; i < srv->n_routes; i++)
        route_free(srv->routes[i]);
    sl_free(srv->routes);
    sl_listener_cleanup(&srv->net);
    sl_free(srv);
}
