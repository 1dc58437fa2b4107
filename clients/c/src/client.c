/*
 * libsluice-client core (see include/sluice/client.h): URL parsing, the
 * connection (resolve, TCP, handshake, chunk stream), the NetConnection /
 * NetStream command exchange of a player and a publisher, calls, the write
 * path, and the reconnection policy.
 *
 * One attempt runs: resolve -> TCP connect -> C0C1/S0S1S2/C2 (the server's
 * handshake state machine, client side) -> SetChunkSize + connect ->
 * _result -> [releaseStream, FCPublish] createStream -> _result(sid) ->
 * play / publish -> onStatus Play.Start / Publish.Start = ACTIVE. Every
 * failure on the way, and every loss later, goes through client_fail(),
 * which detaches the connection, reports Connect.Failed or Connect.Closed,
 * and either schedules the next attempt (backoff) or ends in CLOSED.
 *
 * Reentrancy: user callbacks may free or close the client. After each
 * callback the code checks c->freeing (the memory itself stays valid until
 * the handles close) and whether c->conn is still the connection it was
 * working on; a detached connection only finishes closing.
 *
 * Reading uses one 64 KB buffer per thread: libuv hands each read to its
 * callback before the next one, and the chunk reader copies message bytes
 * into buffers of their own, so ten thousand idle players do not hold ten
 * thousand read buffers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/alloc.h"
#include "client_internal.h"
#include "sluice/errors.h"

#define READ_BUF_SIZE 65536
#define MAX_CHUNK_SIZE 0xFFFFFFu
#define OUT_CAP ((size_t)SL_BUF_MAX)
#define CMD_CAP (1024u * 1024u)
#define WINDOW_ACK 2500000u
#define LINGER_MS 1000
#define AMF_DEPTH 64
#define DEFAULT_PORT 1935
#define DEFAULT_TLS_PORT 1936

/* A uv_write in flight with the bytes it holds. */
typedef struct {
    uv_write_t req;
    sl__client_conn_t *conn;
    sl_buf_t *buf;               /* owned until the callback */
} wreq_t;

static void client_fail(sl_client_t *c, int err);
static void conn_flush(sl__client_conn_t *k);
static void attempt_start(sl_client_t *c);
static void on_timer(uv_timer_t *t);
static void on_call_timer(uv_timer_t *t);

/* ------------------------------------------------------------------ */
/* options, URL                                                        */

/*
 * Fills the caller's options struct with the defaults documented in
 * client.h. Never fails; nothing is allocated.
 */
void sl_client_opts_init(sl_client_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->timeout_ms = 10000;
    o->chunk_size = 4096;
    o->buffer_ms = 1000;
    o->max_message_size = 16u * 1024u * 1024u;
    o->max_queue_bytes = 4u * 1024u * 1024u;
    o->reconnect.initial_ms = 500;
    o->reconnect.max_ms = 30000;
    o->reconnect.multiplier = 2.0;
    o->reconnect.jitter_pct = 20;
}

/* A static, printable name of a state; never NULL. */
const char *sl_client_state_name(sl_client_state_t s)
{
    switch (s) {
    case SL_CLIENT_IDLE: return "idle";
    case SL_CLIENT_CONNECTING: return "connecting";
    case SL_CLIENT_CONNECTED: return "connected";
    case SL_CLIENT_ACTIVE: return "active";
    case SL_CLIENT_RECONNECTING: return "reconnecting";
    case SL_CLIENT_CLOSED: return "closed";
    }
    return "unknown";
}

/* Duplicates a string option (NULL stays NULL); 0 or SL_ENOMEM. */
static int dup_opt(const char **field)
{
    if (!*field)
        return 0;
    char *s = sl_strdup(*field);
    if (!s)
        return SL_ENOMEM;
    *field = s;
    return 0;
}

/* "a" + "b" + "c" into a new string; NULL on ENOMEM. */
static char *cat3(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = sl_malloc(la + lb + lc + 1);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc + 1);
    return s;
}

/*
 * Splits rtmp[s]://host[:port]/path[?query] into the client's fields. The app
 * is opts.app when set (the path's prefix is then cut off the stream name),
 * else the first path segment; the stream is the rest.
 */
static int parse_url(sl_client_t *c, const char *url)
{
    const char *auth;
    if (strncasecmp(url, "rtmp://", 7) == 0) {
        auth = url + 7;
    } else if (strncasecmp(url, "rtmps://", 8) == 0) {
        auth = url + 8;
        c->tls = 1;
    } else {
        return SL_EINVAL;
    }
    const char *slash = strchr(auth, '/');
    if (!slash || slash == auth)
        return SL_EINVAL;
    size_t alen = (size_t)(slash - auth);
    char authority[300];
    if (alen >= sizeof authority)
        return SL_EINVAL;
    memcpy(authority, auth, alen);
    authority[alen] = '\0';
    char *host = authority, *port = NULL;
    if (host[0] == '[') {
        char *end = strchr(host, ']');
        if (!end)
            return SL_EINVAL;
        *end = '\0';
        host++;
        if (end[1] == ':')
            port = end + 2;
        else if (end[1])
            return SL_EINVAL;
    } else if ((port = strchr(host, ':')) != NULL) {
        *port++ = '\0';
    }
    c->port = c->tls ? DEFAULT_TLS_PORT : DEFAULT_PORT;
    if (port) {
        char *e;
        long p = strtol(port, &e, 10);
        if (!*port || *e || p <= 0 || p > 65535)
            return SL_EINVAL;
        c->port = (int)p;
    }
    if (!host[0])
        return SL_EINVAL;
    char path[2048];
    if (strlen(slash + 1) >= sizeof path)
        return SL_EINVAL;
    strcpy(path, slash + 1);
    char *q = strchr(path, '?');
    if (q)
        *q++ = '\0';
    size_t n = strlen(path);
    while (n && path[n - 1] == '/')
        path[--n] = '\0';
    const char *app, *stream;
    char first[1024];
    if (c->o.app && c->o.app[0]) {
        size_t al = strlen(c->o.app);
        app = c->o.app;
        stream = strncmp(path, app, al) == 0 && path[al] == '/' ? path + al + 1
               : strcmp(path, app) == 0 ? "" : path;
    } else {
        size_t fl = strcspn(path, "/");
        if (fl == 0 || fl >= sizeof first)
            return SL_EINVAL;
        memcpy(first, path, fl);
        first[fl] = '\0';
        app = first;
        stream = path[fl] ? path + fl + 1 : "";
    }
    c->host = sl_strdup(host);
    c->app = sl_strdup(app);
    c->stream = sl_strdup(stream);
    c->query = q && *q ? sl_strdup(q) : NULL;
    char hostport[320];
    snprintf(hostport, sizeof hostport, "%s%s%s:%d", strchr(host, ':') ? "[" : "", host,
             strchr(host, ':') ? "]" : "", c->port);
    char *base = cat3(c->tls ? "rtmps://" : "rtmp://", hostport, "/");
    char *tc = base ? cat3(base, app, "") : NULL;
    sl_free(base);
    c->tc_url = tc && c->query ? cat3(tc, "?", c->query) : tc;
    if (c->tc_url != tc)
        sl_free(tc);
    c->stream_arg = c->query ? cat3(stream, "?", c->query) : sl_strdup(stream);
    if (!c->host || !c->app || !c->stream || (q && *q && !c->query) || !c->tc_url || !c->stream_arg)
        return SL_ENOMEM;
    return 0;
}

/* ------------------------------------------------------------------ */
/* lifetime                                                            */

/* Frees everything the client owns; its handles must be closed already. */
static void free_client_memory(sl_client_t *c)
{
    sl_free((char *)c->o.username);
    sl_free((char *)c->o.password);
    sl_free((char *)c->o.token);
    sl_free((char *)c->o.app);
    sl_free((char *)c->o.flv_out);
    sl_free(c->host);
    sl_free(c->app);
    sl_free(c->stream);
    sl_free(c->query);
    sl_free(c->tc_url);
    sl_free(c->stream_arg);
    sl_free(c->calls);
    sl__client_so_free_all(c);
    sl_tls_ctx_free(c->tls_ctx);
    sl_buf_unref(c->hdr_meta);
    sl_buf_unref(c->hdr_video);
    sl_buf_unref(c->hdr_audio);
    sl_free(c->fout);
    sl_free(c);
}

/*
 * Called from the close callback of each client handle (its timer, the
 * source's timer and pipe). The memory goes with the last one, and only
 * once sl_client_free asked for it: this is what makes sl_client_free safe
 * inside the client's own callbacks.
 */
void sl__client_handle_done(sl_client_t *c)
{
    if (--c->handles_open == 0 && c->freeing)
        free_client_memory(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    sl__client_handle_done(h->data);
}

/*
 * Creates a client (client.h). Copies url, the options and every string in
 * them; the loop is borrowed for the client's lifetime. Returns 0 with a
 * client the caller owns, or SL_EINVAL / SL_ENOMEM with *out NULL and
 * nothing left allocated (the timer is only initialised on success, so a
 * failed client needs no loop iteration to go away).
 */
int sl_client_new(uv_loop_t *loop, const char *url, const sl_client_opts_t *o, sl_client_t **out)
{
    *out = NULL;
    if (!loop || !url)
        return SL_EINVAL;
    sl_client_t *c = sl_calloc(1, sizeof(*c));
    if (!c)
        return SL_ENOMEM;
    int rc = 0;
    c->loop = loop;
    if (o)
        c->o = *o;
    else
        sl_client_opts_init(&c->o);
    c->o.username = c->o.password = c->o.token = c->o.app = c->o.flv_out = NULL;
    if (o) {
        c->o.username = o->username;
        c->o.password = o->password;
        c->o.token = o->token;
        c->o.app = o->app;
        c->o.flv_out = o->flv_out;
    }
    /* Copies first, so that every pointer freed below is ours. */
    const char **fields[] = {&c->o.username, &c->o.password, &c->o.token, &c->o.app, &c->o.flv_out};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (rc) {
            *fields[i] = NULL;
            continue;
        }
        rc = dup_opt(fields[i]);
        if (rc)
            *fields[i] = NULL;
    }
    if (rc)
        goto fail;
    if (c->o.chunk_size < 128 || c->o.chunk_size > 0x7FFFFFFF)
        c->o.chunk_size = 4096;
    if (c->o.max_message_size < 65536)
        c->o.max_message_size = 65536;
    if (c->o.reconnect.multiplier < 1.0)
        c->o.reconnect.multiplier = 1.0;
    if (c->o.reconnect.initial_ms == 0)
        c->o.reconnect.initial_ms = 1;
    c->o.tls_ca_file = NULL; /* loaded into tls_ctx below, not kept */
    rc = parse_url(c, url);
    if (rc)
        goto fail;
    if (c->tls) {
        char why[256];
        rc = sl_tls_ctx_new_client(o ? o->tls_ca_file : NULL, o ? !o->tls_insecure : 1,
                                   &c->tls_ctx, why, sizeof why);
        if (rc)
            goto fail;
    }
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    uv_timer_init(loop, &c->call_timer);
    c->call_timer.data = c;
    c->handles_open = 2;
    c->state = SL_CLIENT_IDLE;
    *out = c;
    return 0;
fail:
    free_client_memory(c);
    return rc;
}

/* The current state (client.h). */
sl_client_state_t sl_client_state(const sl_client_t *c) { return c->state; }

/* Copies the counters into the caller's struct (client.h). */
void sl_client_get_stats(const sl_client_t *c, sl_client_stats_t *st)
{
    *st = c->st;
    st->sid = c->sid;
}

/* The stream name without query; borrowed, valid while the client lives. */
const char *sl_client_stream_name(const sl_client_t *c) { return c->stream; }

/* ------------------------------------------------------------------ */
/* events to the caller                                                */

/*
 * Moves to state s and tells the caller (once per change). The callback may
 * free, close or restart the client: callers re-check c->freeing, c->state
 * and c->conn afterwards.
 */
static void set_state(sl_client_t *c, sl_client_state_t s, int err)
{
    if (c->state == s || c->freeing)
        return;
    c->state = s;
    if (c->o.on_state)
        c->o.on_state(c, s, err, c->o.ud);
}

/* Hands a status event to the caller; strings are borrowed for the call. */
static void emit_status(sl_client_t *c, const char *level, const char *code, const char *desc)
{
    if (c->o.on_status && !c->freeing)
        c->o.on_status(c, level ? level : "", code ? code : "", desc ? desc : "", c->o.ud);
}

/* Ends every pending call with SL_ECLOSED (the list is taken first: callbacks may call again). */
static void fail_calls(sl_client_t *c)
{
    sl__client_call_t *calls = c->calls;
    size_t n = c->n_calls;
    c->calls = NULL;
    c->n_calls = c->cap_calls = 0;
    if (!c->freeing)
        uv_timer_stop(&c->call_timer);
    for (size_t i = 0; i < n && !c->freeing; i++)
        if (calls[i].cb)
            calls[i].cb(c, SL_ECLOSED, "[]", calls[i].ud);
    sl_free(calls);
}

/* ------------------------------------------------------------------ */
/* the connection                                                      */

/*
 * Connection lifetime: refs counts the open handles (tcp, linger) and an
 * in-flight getaddrinfo; the memory goes when the last one reports back.
 */
static void conn_free(sl__client_conn_t *k)
{
    sl_rtmp_chunk_reader_cleanup(&k->rd);
    sl_wbuf_cleanup(&k->out);
    sl_wbuf_cleanup(&k->wire);
    sl_tls_free(k->tls);
    sl_free(k->hs);
    sl_free(k);
}

static void conn_unref(sl__client_conn_t *k)
{
    if (--k->refs == 0)
        conn_free(k);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    conn_unref(h->data);
}

/* Detaches the connection from its client: from now on it only closes. */
static sl__client_conn_t *conn_detach(sl_client_t *c)
{
    sl__client_conn_t *k = c->conn;
    if (!k)
        return NULL;
    c->conn = NULL;
    k->client = NULL;
    return k;
}

static void on_discard_closed(uv_handle_t *h)
{
    sl__client_conn_t *k = h->data;
    close(k->discard_fd);
    k->discard_fd = -1;
    conn_unref(k);
}

static void conn_close_handles(sl__client_conn_t *k)
{
    if (k->closing)
        return;
    k->closing = 1;
    if (k->resolving)
        uv_cancel((uv_req_t *)&k->gai);
    if (k->discard_open) {
        k->discard_open = 0;
        uv_close((uv_handle_t *)&k->discard, on_discard_closed);
    }
    if (k->tcp_open) {
        k->tcp_open = 0;
        uv_close((uv_handle_t *)&k->tcp, on_conn_handle_closed);
    }
    if (k->linger_open) {
        k->linger_open = 0;
        uv_close((uv_handle_t *)&k->linger, on_conn_handle_closed);
    }
}

/* Drops the client's connection at once (no goodbye). */
static void conn_abort(sl_client_t *c)
{
    sl__client_conn_t *k = conn_detach(c);
    if (k)
        conn_close_handles(k);
}

static void on_linger(uv_timer_t *t)
{
    conn_close_handles(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    /* Nothing to do: we keep reading until the server closes (or the linger
     * timer fires), so that closing with unread input never turns our
     * goodbye into a reset that could discard it. */
    (void)req;
    (void)status;
}

/*
 * Goodbye: the client's last messages are already queued; flush them, send
 * FIN, and close when the server closes or after LINGER_MS.
 */
static void conn_graceful(sl_client_t *c)
{
    sl__client_conn_t *k = c->conn;
    if (!k)
        return;
    conn_flush(k);
    if (k->tls && c->conn == k && sl_tls_close_notify(k->tls) == 0)
        conn_flush(k); /* our close_notify goes out before the FIN */
    conn_detach(c);
    if (!k->tcp_open || !k->tcp_connected || k->closing || k->discard_open ||
        uv_shutdown(&k->sreq, (uv_stream_t *)&k->tcp, on_shutdown) != 0) {
        conn_close_handles(k);
        return;
    }
    uv_timer_init(k->loop, &k->linger);
    k->linger.data = k;
    k->linger_open = 1;
    k->refs++;
    uv_timer_start(&k->linger, on_linger, LINGER_MS, 0);
}

/* ---- writing ---- */

/*
 * A uv_write finished: release its copy of the bytes. Write callbacks of a
 * closing handle arrive (with UV_ECANCELED) before its close callback, so
 * k is still alive here even when it is detached.
 */
static void on_write(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    sl__client_conn_t *k = w->conn;
    k->inflight -= w->buf->len;
    sl_buf_unref(w->buf);
    sl_free(w);
    sl_client_t *c = k->client;
    if (!c)
        return;
    if (status < 0) {
        client_fail(c, status);
        return;
    }
    if (c->src)
        sl__src_pump(c);
}

/* A TLS failure: keep its reason for the status event, then fail the attempt. */
static void conn_tls_fail(sl__client_conn_t *k, int rc)
{
    sl_client_t *c = k->client;
    if (!c)
        return;
    const char *why = sl_tls_error(k->tls);
    snprintf(c->tls_err, sizeof c->tls_err, "TLS: %s", why[0] ? why : sl_strerror(rc));
    client_fail(c, rc);
}

/*
 * rtmps: encrypts the queued plaintext (once the TLS handshake is done;
 * until then it waits in k->out) and moves every pending TLS byte
 * (handshake messages, records, alerts) to k->wire, the buffer that goes
 * to the socket. 0 or an error of the filter.
 */
static int conn_encrypt(sl__client_conn_t *k)
{
    if (k->out.len && sl_tls_handshake_done(k->tls)) {
        struct iovec iov = {.iov_base = k->out.data, .iov_len = k->out.len};
        size_t used = 0;
        int rc = sl_tls_write(k->tls, &iov, 1, k->out.len, &used);
        if (rc == SL_EAGAIN)
            rc = 0;
        if (rc)
            return rc;
        if (used == k->out.len) {
            sl_wbuf_reset(&k->out);
        } else if (used) {
            memmove(k->out.data, k->out.data + used, k->out.len - used);
            k->out.len -= used;
        }
    }
    size_t n = sl_tls_out_pending(k->tls);
    if (n) {
        int rc = sl_wbuf_reserve(&k->wire, n);
        if (rc)
            return rc;
        k->wire.len += sl_tls_out_take(k->tls, k->wire.data + k->wire.len, n);
    }
    return 0;
}

/*
 * Hands k->out (k->wire under TLS) to the socket: uv_try_write while
 * nothing is in flight (the common case costs no copy and no request), the
 * rest as one uv_write of a copy. Before the TCP connect completes, bytes
 * stay buffered.
 */
static void conn_flush(sl__client_conn_t *k)
{
    if (!k->tcp_open || !k->tcp_connected || k->closing)
        return;
    sl_wbuf_t *src = &k->out;
    if (k->tls) {
        int rc = conn_encrypt(k);
        if (rc) {
            conn_tls_fail(k, rc);
            return;
        }
        src = &k->wire;
    }
    if (!src->len)
        return;
    if (k->client)
        k->client->st.bytes_out += src->len;
    size_t done = 0;
    if (k->inflight == 0) {
        uv_buf_t b = uv_buf_init((char *)src->data, (unsigned)src->len);
        int r = uv_try_write((uv_stream_t *)&k->tcp, &b, 1);
        if (r == UV_EAGAIN)
            r = 0;
        if (r < 0) {
            sl_wbuf_reset(src);
            if (k->client)
                client_fail(k->client, r);
            return;
        }
        done = (size_t)r;
    }
    if (done == src->len) {
        sl_wbuf_reset(src);
        return;
    }
    wreq_t *w = sl_malloc(sizeof(*w));
    sl_buf_t *b = sl_buf_from(src->data + done, src->len - done);
    sl_wbuf_reset(src);
    int rc = SL_ENOMEM;
    if (w && b) {
        w->conn = k;
        w->buf = b;
        uv_buf_t ub = uv_buf_init((char *)b->data, b->len);
        rc = uv_write(&w->req, (uv_stream_t *)&k->tcp, &ub, 1, on_write);
        if (rc == 0) {
            k->inflight += b->len;
            return;
        }
    }
    sl_free(w);
    sl_buf_unref(b);
    if (k->client)
        client_fail(k->client, rc);
}

/* See client_internal.h: hands queued bytes to the socket; errors fail the attempt. */
void sl__client_flush(sl_client_t *c)
{
    if (c->conn)
        conn_flush(c->conn);
}

/* Bytes queued and in flight on the current connection (publisher backpressure). */
size_t sl__client_queued(const sl_client_t *c)
{
    return c->conn ? c->conn->out.len + c->conn->wire.len + c->conn->inflight : 0;
}

/* Queues one message on the current connection. */
/*
 * The send helpers below only append chunked bytes to the connection's
 * output buffer; the caller flushes once per batch (a read callback, a
 * pacing tick, an API call), so several messages go out in one write.
 */
static int send_msg(sl_client_t *c, uint32_t csid, uint8_t type, uint32_t sid, uint32_t ts,
                    const uint8_t *p, size_t n)
{
    if (!c->conn)
        return SL_ECLOSED;
    return sl_rtmp_chunk_write(&c->conn->out, csid, type, sid, ts, p, n, c->conn->out_chunk);
}

/* A command or shared-object message on message stream 0 (client_internal.h). */
int sl__client_send0(sl_client_t *c, uint8_t type, const uint8_t *p, size_t n)
{
    return send_msg(c, SL_RTMP_CSID_COMMAND, type, 0, 0, p, n);
}

static int send_u32(sl_client_t *c, uint8_t type, uint32_t v)
{
    uint8_t b[4];
    sl_wr_be32(b, v);
    return send_msg(c, SL_RTMP_CSID_CONTROL, type, 0, 0, b, 4);
}

static int send_uc(sl_client_t *c, uint16_t event, uint32_t a, int has_b, uint32_t b)
{
    uint8_t m[10];
    sl_wr_be16(m, event);
    sl_wr_be32(m + 2, a);
    if (has_b)
        sl_wr_be32(m + 6, b);
    return send_msg(c, SL_RTMP_CSID_CONTROL, SL_RTMP_USER_CONTROL, 0, 0, m, has_b ? 10 : 6);
}

/* Sends a built command body on message stream sid and cleans the builder. */
static int send_cmd(sl_client_t *c, uint32_t sid, sl_wbuf_t *w, int rc)
{
    if (!rc)
        rc = send_msg(c, SL_RTMP_CSID_COMMAND, SL_RTMP_COMMAND_AMF0, sid, 0, w->data, w->len);
    sl_wbuf_cleanup(w);
    return rc;
}

/* name(txn, null[, string arg]) */
static int send_simple(sl_client_t *c, const char *name, double txn, uint32_t sid, const char *arg)
{
    sl_wbuf_t w;
    sl_wbuf_init(&w, CMD_CAP);
    int rc = sl_amf0_put_string(&w, name);
    rc = rc ? rc : sl_amf0_put_number(&w, txn);
    rc = rc ? rc : sl_amf0_put_null(&w);
    if (arg)
        rc = rc ? rc : sl_amf0_put_string(&w, arg);
    return send_cmd(c, sid, &w, rc);
}

/*
 * connect(txn, {app, flashVer, tcUrl, ...}[, username, password[, token]]):
 * a publisher presents itself as FMLE (type nonprivate), a player as Flash
 * Player, as the servers in the wild expect. The query of the URL travels
 * on tcUrl (and on the stream name), where sluice and Red5 look for it.
 */
static int send_connect(sl_client_t *c)
{
    int publishing = c->mode == SL__MODE_PUBLISH;
    sl_wbuf_t w;
    sl_wbuf_init(&w, CMD_CAP);
    c->txn_connect = c->txn_next++;
    int rc = sl_amf0_put_string(&w, "connect");
    rc = rc ? rc : sl_amf0_put_number(&w, c->txn_connect);
    rc = rc ? rc : sl_amf0_put_object_start(&w);
    rc = rc ? rc : sl_amf0_put_prop_string(&w, "app", c->app);
    if (publishing)
        rc = rc ? rc : sl_amf0_put_prop_string(&w, "type", "nonprivate");
    rc = rc ? rc : sl_amf0_put_prop_string(&w, "flashVer", publishing ? "FMLE/3.0 (compatible; sluice-client)"
                                                                      : "LNX 9,0,124,2");
    rc = rc ? rc : sl_amf0_put_prop_string(&w, "tcUrl", c->tc_url);
    if (!publishing) {
        rc = rc ? rc : sl_amf0_put_prop_bool(&w, "fpad", 0);
        rc = rc ? rc : sl_amf0_put_prop_number(&w, "capabilities", 15);
        rc = rc ? rc : sl_amf0_put_prop_number(&w, "audioCodecs", 4071);
        rc = rc ? rc : sl_amf0_put_prop_number(&w, "videoCodecs", 252);
        rc = rc ? rc : sl_amf0_put_prop_number(&w, "videoFunction", 1);
    }
    rc = rc ? rc : sl_amf0_put_prop_number(&w, "objectEncoding", 0);
    rc = rc ? rc : sl_amf0_put_object_end(&w);
    /* Red5 convention: credentials as extra string arguments. */
    if (c->o.username || c->o.password || c->o.token) {
        rc = rc ? rc : sl_amf0_put_string(&w, c->o.username ? c->o.username : "");
        rc = rc ? rc : sl_amf0_put_string(&w, c->o.password ? c->o.password : "");
        if (c->o.token)
            rc = rc ? rc : sl_amf0_put_string(&w, c->o.token);
    }
    return send_cmd(c, 0, &w, rc);
}

/* ---- resolving and connecting ---- */

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static int conn_input(sl__client_conn_t *k, const uint8_t *p, size_t n);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static _Thread_local char rbuf[READ_BUF_SIZE];
    (void)h;
    (void)suggested;
    buf->base = rbuf;
    buf->len = sizeof rbuf;
}

/* TCP is up: start reading and send C0+C1. */
static void on_connect(uv_connect_t *req, int status)
{
    sl__client_conn_t *k = req->data;
    sl_client_t *c = k->client;
    if (!c)
        return;
    if (status < 0) {
        client_fail(c, status);
        return;
    }
    k->tcp_connected = 1;
    int rc = uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read);
    k->hs = rc ? NULL : sl_malloc(sizeof(*k->hs));
    if (!rc && !k->hs)
        rc = SL_ENOMEM;
    rc = rc ? rc : sl_rtmp_hs_client_start(k->hs, c->o.digest_handshake, &k->out);
    if (rc) {
        client_fail(c, rc);
        return;
    }
    if (k->tls) {
        /* The first read with nothing fed produces the ClientHello; C0+C1
         * wait in k->out until the TLS handshake completes. */
        size_t none = 0;
        rc = sl_tls_read(k->tls, NULL, 0, &none);
        if (rc) {
            conn_tls_fail(k, rc);
            return;
        }
    }
    conn_flush(k);
}

/* Opens the TCP handle and connects; failures go through client_fail. */
static void conn_connect(sl__client_conn_t *k, const struct sockaddr *sa)
{
    sl_client_t *c = k->client;
    int rc = uv_tcp_init(k->loop, &k->tcp);
    if (rc) {
        client_fail(c, rc);
        return;
    }
    k->tcp.data = k;
    k->tcp_open = 1;
    k->refs++;
    uv_tcp_nodelay(&k->tcp, 1);
    k->creq.data = k;
    rc = uv_tcp_connect(&k->creq, &k->tcp, sa, on_connect);
    if (rc)
        client_fail(c, rc);
}

/* getaddrinfo answered (or was cancelled because the attempt ended). */
static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    sl__client_conn_t *k = req->data;
    k->resolving = 0;
    sl_client_t *c = k->client;
    if (c && status == 0 && res)
        conn_connect(k, res->ai_addr);
    else if (c)
        client_fail(c, status ? status : UV_EAI_NONAME);
    uv_freeaddrinfo(res);
    conn_unref(k);
}

/*
 * One attempt: a fresh connection, the attempt timeout, then resolve
 * (numeric addresses skip the thread pool) and connect. Everything after
 * this is driven by callbacks.
 */
static void attempt_start(sl_client_t *c)
{
    sl__client_conn_t *k = sl_calloc(1, sizeof(*k));
    if (!k) {
        client_fail(c, SL_ENOMEM);
        return;
    }
    k->client = c;
    k->loop = c->loop;
    k->refs = 1; /* the attempt's own reference, dropped below */
    k->discard_fd = -1;
    k->out_chunk = 128;
    sl_wbuf_init(&k->out, OUT_CAP);
    sl_wbuf_init(&k->wire, OUT_CAP);
    sl_rtmp_chunk_reader_init(&k->rd, MAX_CHUNK_SIZE, c->o.max_message_size);
    c->tls_err[0] = '\0';
    if (c->tls_ctx && sl_tls_new_client(c->tls_ctx, c->host, &k->tls) != 0) {
        conn_free(k);
        client_fail(c, SL_ENOMEM);
        return;
    }
    c->conn = k;
    c->sid = 0;
    c->connected_once = 0;
    c->txn_next = 1;
    c->txn_connect = c->txn_create = 0;
    c->last_in_ms = uv_now(c->loop);
    set_state(c, SL_CLIENT_CONNECTING, 0);
    if (c->freeing || c->conn != k) {
        conn_unref(k);
        return;
    }
    uv_timer_stop(&c->timer);
    if (c->o.timeout_ms)
        uv_timer_start(&c->timer, on_timer, c->o.timeout_ms, 0);
    struct sockaddr_storage sa;
    if (uv_ip4_addr(c->host, c->port, (struct sockaddr_in *)&sa) == 0 ||
        uv_ip6_addr(c->host, c->port, (struct sockaddr_in6 *)&sa) == 0) {
        conn_connect(k, (struct sockaddr *)&sa);
    } else {
        struct addrinfo hints;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        char port[16];
        snprintf(port, sizeof port, "%d", c->port);
        k->gai.data = k;
        k->refs++;
        k->resolving = 1;
        int rc = uv_getaddrinfo(c->loop, &k->gai, on_resolved, c->host, port, &hints);
        if (rc) {
            k->resolving = 0;
            k->refs--;
            client_fail(c, rc);
        }
    }
    conn_unref(k);
}

/* ------------------------------------------------------------------ */
/* the session: commands and state                                     */

/* Publish/play started: the session is ACTIVE. */
static void go_active(sl_client_t *c)
{
    c->failures = 0;
    uv_timer_stop(&c->timer);
    if (c->o.idle_timeout_ms) {
        uint64_t every = c->o.idle_timeout_ms / 4 ? c->o.idle_timeout_ms / 4 : 1;
        uv_timer_start(&c->timer, on_timer, every, every);
    }
    if (c->mode == SL__MODE_PUBLISH) {
        /* Headers first (again, after a reconnection), then video from a keyframe. */
        sl__client_conn_t *k = c->conn;
        sl_buf_t *hdrs[3] = {c->hdr_meta, c->hdr_video, c->hdr_audio};
        static const int kinds[3] = {SL_CLIENT_DATA, SL_CLIENT_VIDEO, SL_CLIENT_AUDIO};
        c->state = SL_CLIENT_ACTIVE; /* lets the headers through; reported below */
        for (int i = 0; i < 3; i++) {
            if (!hdrs[i])
                continue;
            sl_buf_t *h = sl_buf_ref(hdrs[i]); /* publish_frame replaces the slot */
            int rc = sl__client_publish_frame(c, kinds[i], c->last_out_ts, h->data, h->len);
            sl_buf_unref(h);
            if (rc && rc != SL_EAGAIN) {
                client_fail(c, rc);
                return;
            }
        }
        c->wait_key = 1;
        c->state = SL_CLIENT_CONNECTED;
        conn_flush(k);
        if (c->conn != k)
            return;
    }
    set_state(c, SL_CLIENT_ACTIVE, 0);
    if (c->freeing || c->state != SL_CLIENT_ACTIVE)
        return;
    if (c->src)
        sl__src_start(c);
}

/* connect succeeded: ask for a message stream (publishers announce the name first). */
static void on_connected(sl_client_t *c)
{
    set_state(c, SL_CLIENT_CONNECTED, 0);
    if (c->freeing || c->state != SL_CLIENT_CONNECTED)
        return;
    sl__client_so_rejoin(c);
    int rc = 0;
    switch (c->mode) {
    case SL__MODE_CONNECT:
        go_active(c);
        return;
    case SL__MODE_PUBLISH:
        rc = send_simple(c, "releaseStream", c->txn_next++, 0, c->stream_arg);
        rc = rc ? rc : send_simple(c, "FCPublish", c->txn_next++, 0, c->stream_arg);
        /* fall through */
    case SL__MODE_PLAY:
        c->txn_create = c->txn_next++;
        rc = rc ? rc : send_simple(c, "createStream", c->txn_create, 0, NULL);
        break;
    case SL__MODE_NONE:
        break;
    }
    if (rc)
        client_fail(c, rc);
}

/* createStream answered: play (after SetBufferLength) or publish on that stream. */
static void on_stream_created(sl_client_t *c, uint32_t sid)
{
    c->sid = sid;
    int rc;
    sl_wbuf_t w;
    sl_wbuf_init(&w, CMD_CAP);
    if (c->mode == SL__MODE_PLAY) {
        rc = send_uc(c, SL_RTMP_UC_SET_BUFFER_LENGTH, sid, 1, c->o.buffer_ms);
        rc = rc ? rc : sl_amf0_put_string(&w, "play");
        rc = rc ? rc : sl_amf0_put_number(&w, 0);
        rc = rc ? rc : sl_amf0_put_null(&w);
        rc = rc ? rc : sl_amf0_put_string(&w, c->stream_arg);
        rc = rc ? rc : sl_amf0_put_number(&w, -2000); /* live, or recorded if no live */
    } else {
        rc = sl_amf0_put_string(&w, "publish");
        rc = rc ? rc : sl_amf0_put_number(&w, 0);
        rc = rc ? rc : sl_amf0_put_null(&w);
        rc = rc ? rc : sl_amf0_put_string(&w, c->stream_arg);
        rc = rc ? rc : sl_amf0_put_string(&w, "live");
    }
    rc = send_cmd(c, sid, &w, rc);
    if (rc)
        client_fail(c, rc);
}

/* A status event from the server (onStatus, or a connect _result/_error). */
static void on_status_event(sl_client_t *c, const char *level, const char *code, const char *desc)
{
    sl__client_conn_t *k = c->conn;
    emit_status(c, level, code, desc);
    if (c->freeing || c->conn != k || !code)
        return;
    if (c->mode == SL__MODE_PLAY && strcmp(code, "NetStream.Play.Start") == 0) {
        go_active(c);
    } else if (c->mode == SL__MODE_PUBLISH && strcmp(code, "NetStream.Publish.Start") == 0) {
        go_active(c);
    } else if (strcmp(code, "NetConnection.Connect.Closed") == 0) {
        client_fail(c, SL_ECLOSED);
    } else if (level && strcmp(level, "error") == 0) {
        /* A refused connect is final; a refused stream (name busy, not
         * found, denied for now) may work on a later attempt. */
        if (strncmp(code, "NetConnection.Connect.", 22) == 0)
            c->terminal = 1;
        client_fail(c, SL_EDENIED);
    }
}

/* Hands a _result/_error to the pending call with that transaction. */
static void finish_call(sl_client_t *c, double txn, int ok, sl_amf_t **v, size_t n)
{
    for (size_t i = 0; i < c->n_calls; i++) {
        if (c->calls[i].txn != txn)
            continue;
        sl__client_call_t call = c->calls[i];
        memmove(c->calls + i, c->calls + i + 1, (c->n_calls - i - 1) * sizeof(*c->calls));
        c->n_calls--;
        if (!call.cb)
            return;
        char *json = sl__amf_to_json(v, n);
        call.cb(c, ok ? 0 : SL_EDENIED, json ? json : "[]", call.ud);
        free(json);
        return;
    }
}

/*
 * A command message: results of our connect/createStream/calls, onStatus,
 * and the server's close. Returns 0 or SL_EPROTO/SL_ENOMEM for a body that
 * does not decode (the caller then fails the attempt).
 */
static int on_command(sl_client_t *c, sl_rtmp_msg_t *m)
{
    const uint8_t *p = m->body->data;
    size_t n = m->body->len;
    if (m->type == SL_RTMP_COMMAND_AMF3 && n && p[0] == 0) {
        p++;
        n--;
    }
    sl_amf_t **v = NULL;
    size_t count = 0;
    int rc = sl_amf0_decode_all(p, n, AMF_DEPTH, &v, &count);
    if (rc)
        return rc == SL_ENOMEM ? rc : SL_EPROTO;
    const char *name = count ? sl_amf_str(v[0]) : NULL;
    double txn = count > 1 ? sl_amf_num(v[1], 0) : 0;
    const sl_amf_t *info = count > 3 ? v[3] : count > 2 ? v[2] : NULL;
    if (!name) {
        rc = SL_EPROTO;
    } else if (strcmp(name, "_result") == 0 || strcmp(name, "_error") == 0) {
        int ok = name[1] == 'r';
        if (txn == c->txn_connect && c->txn_connect > 0) {
            c->txn_connect = 0;
            const char *code = sl_amf_get_str(info, "code");
            const char *desc = sl_amf_get_str(info, "description");
            if (ok && (!code || strcmp(code, "NetConnection.Connect.Success") == 0)) {
                sl__client_conn_t *k = c->conn;
                emit_status(c, "status", code ? code : "NetConnection.Connect.Success", desc);
                if (!c->freeing && c->conn == k)
                    on_connected(c);
            } else {
                on_status_event(c, "error", code ? code : "NetConnection.Connect.Rejected",
                                desc ? desc : "");
            }
        } else if (txn == c->txn_create && c->txn_create > 0) {
            c->txn_create = 0;
            double sid = count > 3 ? sl_amf_num(v[3], 0) : 0;
            if (ok && sid >= 1 && sid < 0xFFFFFFFF)
                on_stream_created(c, (uint32_t)sid);
            else
                on_status_event(c, "error", "NetConnection.Call.Failed", "createStream failed");
        } else {
            finish_call(c, txn, ok, count > 2 ? v + 2 : NULL, count > 2 ? count - 2 : 0);
        }
    } else if (strcmp(name, "onStatus") == 0) {
        on_status_event(c, sl_amf_get_str(info, "level"), sl_amf_get_str(info, "code"),
                        sl_amf_get_str(info, "description"));
    } else if (strcmp(name, "close") == 0) {
        client_fail(c, SL_ECLOSED);
    } else if (strcmp(name, "onBWDone") != 0 && strcmp(name, "onFCPublish") != 0 &&
               strcmp(name, "onFCUnpublish") != 0) {
        /* A method the server calls on us: a handler answers, else "not found". */
        rc = sl__client_on_invoke(c, name, txn, count > 3 ? v + 3 : NULL, count > 3 ? count - 3 : 0);
    }
    sl_amf_free_list(v, count);
    return rc;
}

/* A media or data frame of the played stream. */
static void deliver(sl_client_t *c, int kind, uint32_t ts, const uint8_t *body, size_t len)
{
    if (c->mode != SL__MODE_PLAY || len == 0)
        return;
    sl_client_frame_t f;
    memset(&f, 0, sizeof f);
    f.kind = kind;
    f.ts_ms = ts;
    f.body = body;
    f.len = len;
    sl__flv_frame_classify(&f);
    c->st.frames_in++;
    if (c->fout)
        sl__flv_writer_put(c->fout, &f);
    if (c->o.on_frame)
        c->o.on_frame(c, &f, c->o.ud);
}

/*
 * A data message: onMetaData and the like go to the player as DATA frames
 * (an @setDataFrame wrapper is stripped); |RtmpSampleAccess is protocol
 * noise; an onStatus sent as data (some servers do) is a status event.
 */
static int on_data(sl_client_t *c, uint8_t type, uint32_t ts, const uint8_t *p, size_t n)
{
    if (type == SL_RTMP_DATA_AMF3 && n && p[0] == 0) {
        p++;
        n--;
    }
    /* Only the leading name is looked at here; the body goes out as is. */
    if (n >= 3 && p[0] == 0x02) {
        size_t nl = sl_rd_be16(p + 1);
        const char *name = (const char *)p + 3;
        if (3 + nl <= n) {
            if (nl == 17 && memcmp(name, "|RtmpSampleAccess", 17) == 0)
                return 0;
            if (nl == 13 && memcmp(name, "@setDataFrame", 13) == 0) {
                p += 16;
                n -= 16;
            } else if (nl == 8 && memcmp(name, "onStatus", 8) == 0) {
                sl_amf_t **v = NULL;
                size_t count = 0;
                if (sl_amf0_decode_all(p, n, AMF_DEPTH, &v, &count) == 0 && count > 1) {
                    const sl_amf_t *info = v[count - 1];
                    on_status_event(c, sl_amf_get_str(info, "level"), sl_amf_get_str(info, "code"),
                                    sl_amf_get_str(info, "description"));
                }
                sl_amf_free_list(v, count);
                return 0;
            }
        }
    }
    deliver(c, SL_CLIENT_DATA, ts, p, n);
    return 0;
}

/* Splits an aggregate message (FLV tags back to back) into frames. */
static int on_aggregate(sl_client_t *c, sl_rtmp_msg_t *m)
{
    sl__client_conn_t *k = c->conn;
    const uint8_t *p = m->body->data;
    size_t n = m->body->len, off = 0;
    int64_t shift = 0;
    int first = 1;
    while (n - off >= 11 && c->conn == k && !c->freeing) {
        uint8_t type = p[off] & 0x1f;
        uint32_t size = sl_rd_be24(p + off + 1);
        uint32_t ts = sl_rd_be24(p + off + 4) | (uint32_t)p[off + 7] << 24;
        if (size > n - off - 11)
            return SL_EPROTO;
        if (first) {
            shift = (int64_t)m->ts - ts;
            first = 0;
        }
        uint32_t mts = (uint32_t)((int64_t)ts + shift);
        if (type == SL_RTMP_AUDIO || type == SL_RTMP_VIDEO)
            deliver(c, type, mts, p + off + 11, size);
        else if (type == SL_RTMP_DATA_AMF0)
            on_data(c, type, mts, p + off + 11, size);
        off += 11 + (size_t)size + 4;
        if (off > n)
            break;
    }
    return 0;
}

/* One complete message: protocol control here, the rest to its handler. */
static int dispatch(sl_client_t *c, sl_rtmp_msg_t *m)
{
    sl__client_conn_t *k = c->conn;
    const uint8_t *b = m->body->data;
    uint32_t len = m->body->len;
    switch (m->type) {
    case SL_RTMP_SET_CHUNK_SIZE:
        return len < 4 ? SL_EPROTO : sl_rtmp_chunk_reader_set_chunk_size(&k->rd, sl_rd_be32(b));
    case SL_RTMP_ABORT:
        if (len >= 4)
            sl_rtmp_chunk_reader_abort(&k->rd, sl_rd_be32(b));
        return 0;
    case SL_RTMP_USER_CONTROL:
        if (len >= 6 && sl_rd_be16(b) == SL_RTMP_UC_PING_REQUEST)
            return send_uc(c, SL_RTMP_UC_PING_RESPONSE, sl_rd_be32(b + 2), 0, 0);
        return 0;
    case SL_RTMP_WINDOW_ACK_SIZE:
        if (len >= 4)
            k->peer_window = sl_rd_be32(b);
        return 0;
    case SL_RTMP_SET_PEER_BW:
        if (!k->window_sent) {
            k->window_sent = 1;
            return send_u32(c, SL_RTMP_WINDOW_ACK_SIZE, WINDOW_ACK);
        }
        return 0;
    case SL_RTMP_AUDIO:
    case SL_RTMP_VIDEO:
        deliver(c, m->type, m->ts, b, len);
        return 0;
    case SL_RTMP_DATA_AMF0:
    case SL_RTMP_DATA_AMF3:
        return on_data(c, m->type, m->ts, b, len);
    case SL_RTMP_COMMAND_AMF0:
    case SL_RTMP_COMMAND_AMF3:
        return on_command(c, m);
    case SL_RTMP_AGGREGATE:
        return on_aggregate(c, m);
    case SL_RTMP_SO_AMF0:
    case SL_RTMP_SO_AMF3:
        return sl__client_on_so(c, b, len, m->type == SL_RTMP_SO_AMF3);
    default:
        return 0; /* acks, shared objects, ...: nothing to do */
    }
}

/*
 * Bytes from the server: the handshake first, then the chunk stream. After
 * each message the connection may have been replaced or the client freed
 * by a callback; reading stops there. Acknowledgements follow the server's
 * window, as the RTMP specification asks of every peer.
 */
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    sl__client_conn_t *k = s->data;
    sl_client_t *c = k->client;
    if (nread == 0)
        return;
    if (!c) {
        /* A detached connection saying goodbye: wait for the server's close. */
        if (nread < 0)
            conn_close_handles(k);
        return;
    }
    if (nread < 0) {
        client_fail(c, nread == UV_EOF ? SL_ECLOSED : (int)nread);
        return;
    }
    const uint8_t *p = (const uint8_t *)buf->base;
    size_t n = (size_t)nread;
    c->st.bytes_in += n;
    c->last_in_ms = uv_now(c->loop);
    if (!k->tls) {
        conn_input(k, p, n);
        return;
    }
    /* rtmps: ciphertext in, plaintext to the RTMP side record by record. */
    static _Thread_local uint8_t plain[READ_BUF_SIZE];
    int rc = sl_tls_feed(k->tls, p, n);
    while (rc == 0) {
        size_t got = 0;
        rc = sl_tls_read(k->tls, plain, sizeof plain, &got);
        if (rc || !got)
            break;
        if (!conn_input(k, plain, got))
            return;
    }
    if (rc == SL_ECLOSED) {
        client_fail(c, SL_ECLOSED); /* the server's close_notify */
        return;
    }
    if (rc) {
        /* Best effort: the alert saying why goes out before the socket
         * closes, when nothing else is queued ahead of it. */
        char alert[256];
        size_t an = k->inflight || k->wire.len ? 0 : sl_tls_out_take(k->tls, alert, sizeof alert);
        if (an) {
            uv_buf_t b = uv_buf_init(alert, (unsigned)an);
            (void)uv_try_write((uv_stream_t *)&k->tcp, &b, 1);
        }
        conn_tls_fail(k, rc);
        return;
    }
    conn_flush(k); /* handshake messages; queued RTMP bytes once it is done */
}

/* Acknowledges what came in once the server's window is full (every peer's duty). */
static void conn_ack_if_due(sl__client_conn_t *k)
{
    if (k->peer_window && k->bytes_in - k->acked >= k->peer_window) {
        k->acked = k->bytes_in;
        send_u32(k->client, SL_RTMP_ACK, (uint32_t)k->bytes_in);
    }
}

/*
 * A discarding connection is readable: take everything queued with
 * MSG_TRUNC (TCP drops it without copying; the buffer is never written),
 * count it, acknowledge per the server's window. EOF or an error ends the
 * attempt as a read would.
 */
static void on_discard_readable(uv_poll_t *h, int status, int events)
{
    static uint8_t sink[256 * 1024]; /* never written: MSG_TRUNC */
    sl__client_conn_t *k = h->data;
    sl_client_t *c = k->client;
    (void)events;
    if (!c) {
        conn_close_handles(k);
        return;
    }
    if (status < 0) {
        client_fail(c, status);
        return;
    }
    uint64_t got = 0;
    int err = 0;
    for (;;) {
        ssize_t n = recv(k->discard_fd, sink, sizeof sink, MSG_TRUNC | MSG_DONTWAIT);
        if (n > 0) {
            got += (uint64_t)n;
            continue;
        }
        if (n == 0)
            err = SL_ECLOSED;
        else if (errno == EINTR)
            continue;
        else if (errno != EAGAIN && errno != EWOULDBLOCK)
            err = -errno;
        break;
    }
    if (got) {
        c->st.bytes_in += got;
        k->bytes_in += got;
        c->last_in_ms = uv_now(c->loop);
        conn_ack_if_due(k);
        conn_flush(k);
    }
    if (err && c->conn == k)
        client_fail(c, err);
}

int sl__client_discard_input(sl_client_t *c, int lowat)
{
    sl__client_conn_t *k = c->conn;
    if (!k || k->tls || k->hs || k->closing || !k->tcp_open || k->discard_open ||
        c->state != SL_CLIENT_ACTIVE || c->mode != SL__MODE_PLAY)
        return SL_EINVAL;
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&k->tcp, &fd) != 0)
        return SL_EINVAL;
    /* A second descriptor of the same socket: libuv keeps the first for our
     * writes (acknowledgements), the poll handle watches this one. */
    int dfd = dup(fd);
    if (dfd < 0)
        return -errno;
    if (lowat > 0)
        (void)setsockopt(dfd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
    int rc = uv_poll_init(k->loop, &k->discard, dfd);
    if (rc) {
        close(dfd);
        return rc;
    }
    k->discard.data = k;
    k->discard_fd = dfd;
    k->discard_open = 1;
    k->refs++;
    uv_read_stop((uv_stream_t *)&k->tcp);
    uv_poll_start(&k->discard, UV_READABLE | UV_DISCONNECT, on_discard_readable);
    return 0;
}

/*
 * RTMP bytes from the server (plaintext under TLS): the RTMP handshake,
 * then chunks to dispatch. Returns 1 while the connection is still the
 * client's, 0 once it failed or the client was freed, closed or restarted.
 */
static int conn_input(sl__client_conn_t *k, const uint8_t *p, size_t n)
{
    sl_client_t *c = k->client;
    size_t off = 0;
    k->bytes_in += n;
    if (k->hs) {
        size_t used = 0;
        int rc = sl_rtmp_hs_feed(k->hs, p, n, &used, &k->out);
        if (rc < 0) {
            client_fail(c, SL_EPROTO);
            return 0;
        }
        off = used;
        if (rc == 1) {
            sl_free(k->hs);
            k->hs = NULL;
            c->connected_once = 1;
            rc = send_u32(c, SL_RTMP_SET_CHUNK_SIZE, c->o.chunk_size);
            if (!rc)
                k->out_chunk = c->o.chunk_size;
            rc = rc ? rc : send_connect(c);
            if (rc) {
                client_fail(c, rc);
                return 0;
            }
        }
        conn_flush(k);
        if (c->freeing || c->conn != k)
            return 0;
    }
    while (off < n) {
        size_t used = 0;
        sl_rtmp_msg_t m;
        int rc = sl_rtmp_chunk_read(&k->rd, p + off, n - off, &used, &m);
        off += used;
        if (rc < 0) {
            client_fail(c, rc);
            return 0;
        }
        if (rc == 0)
            break;
        rc = dispatch(c, &m);
        sl_buf_unref(m.body);
        if (c->freeing || c->conn != k)
            return 0;
        if (rc < 0) {
            client_fail(c, rc);
            return 0;
        }
    }
    conn_ack_if_due(k);
    conn_flush(k);
    return !c->freeing && c->conn == k;
}

/* ------------------------------------------------------------------ */
/* failure, reconnection, timers                                       */

/*
 * Delay before the next attempt: initial * multiplier^(failures - 1),
 * capped, then spread by +-jitter_pct so that a thousand clients cut off
 * together do not come back in the same millisecond.
 */
static uint32_t backoff_ms(sl_client_t *c)
{
    const sl_client_reconnect_t *r = &c->o.reconnect;
    double d = r->initial_ms;
    for (uint32_t i = 1; i < c->failures && d < r->max_ms; i++)
        d *= r->multiplier;
    if (r->max_ms && d > r->max_ms)
        d = r->max_ms;
    if (r->jitter_pct) {
        /* A cheap per-client generator: spreading thousands of clients is
         * all this is for. */
        uint64_t x = (uintptr_t)c ^ uv_hrtime();
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdULL;
        x ^= x >> 33;
        double u = (double)(x % 2001) / 1000.0 - 1.0; /* [-1, 1] */
        d += d * u * (r->jitter_pct > 100 ? 100 : r->jitter_pct) / 100.0;
    }
    return d < 1 ? 1 : (uint32_t)d;
}

/* Final state: the FLV output is completed here, not at free. */
static void enter_closed(sl_client_t *c, int err)
{
    uv_timer_stop(&c->timer);
    if (c->fout)
        sl__flv_writer_close(c->fout);
    set_state(c, SL_CLIENT_CLOSED, err);
}

/*
 * The current attempt is over (err says why): drop the connection, fail
 * pending calls, tell the caller, then retry after a backoff or close.
 */
static void client_fail(sl_client_t *c, int err)
{
    if (c->state == SL_CLIENT_CLOSED || c->state == SL_CLIENT_RECONNECTING || c->freeing) {
        conn_abort(c);
        return;
    }
    int reached = c->connected_once;
    conn_abort(c);
    sl__src_stop(c);
    uv_timer_stop(&c->timer);
    c->sid = 0;
    sl__client_so_lost(c);
    fail_calls(c);
    if (c->freeing)
        return;
    emit_status(c, "error", reached ? "NetConnection.Connect.Closed" : "NetConnection.Connect.Failed",
                c->tls_err[0] ? c->tls_err : sl_strerror(err));
    if (c->freeing || c->state == SL_CLIENT_CLOSED || c->conn)
        return; /* the callback closed or restarted us */
    const sl_client_reconnect_t *r = &c->o.reconnect;
    c->failures++;
    if (r->enabled && !c->user_closed && !c->terminal &&
        (r->max_attempts == 0 || c->failures < r->max_attempts)) {
        uint32_t delay = backoff_ms(c);
        set_state(c, SL_CLIENT_RECONNECTING, err);
        if (c->freeing || c->state != SL_CLIENT_RECONNECTING)
            return;
        uv_timer_start(&c->timer, on_timer, delay, 0);
        return;
    }
    enter_closed(c, err);
}

/* The client timer: reconnect delay, attempt timeout, or idle check, by state. */
static void on_timer(uv_timer_t *t)
{
    sl_client_t *c = t->data;
    switch (c->state) {
    case SL_CLIENT_RECONNECTING:
        c->st.reconnects++;
        attempt_start(c);
        break;
    case SL_CLIENT_CONNECTING:
    case SL_CLIENT_CONNECTED:
        client_fail(c, UV_ETIMEDOUT);
        break;
    case SL_CLIENT_ACTIVE:
        if (c->o.idle_timeout_ms && uv_now(c->loop) - c->last_in_ms >= c->o.idle_timeout_ms)
            client_fail(c, UV_ETIMEDOUT);
        break;
    default:
        uv_timer_stop(t);
        break;
    }
}

/*
 * The FLV source ended: at the end of the file (err 0) the session ends
 * gracefully; a read or parse error ends it for good (no reconnection).
 */
void sl__client_source_done(sl_client_t *c, int err)
{
    if (err && c->state != SL_CLIENT_CLOSED) {
        c->terminal = 1; /* a broken file does not get better by reconnecting */
        client_fail(c, err);
        return;
    }
    sl_client_close(c);
}

/* ------------------------------------------------------------------ */
/* public calls                                                        */

/* Common part of the start calls: one start per client. */
static int start(sl_client_t *c, sl__client_mode_t mode)
{
    if (c->freeing || c->mode != SL__MODE_NONE)
        return SL_EBUSY;
    if (mode != SL__MODE_CONNECT && !c->stream[0])
        return SL_EINVAL;
    if (mode == SL__MODE_PLAY && c->o.flv_out) {
        c->fout = sl_calloc(1, sizeof(*c->fout));
        if (!c->fout)
            return SL_ENOMEM;
        int rc = sl__flv_writer_open(c->fout, c->o.flv_out);
        if (rc) {
            sl_free(c->fout);
            c->fout = NULL;
            return rc;
        }
    }
    c->mode = mode;
    attempt_start(c);
    return 0;
}

/* The start calls (client.h): 0, SL_EBUSY, SL_EINVAL, or an flv_out open error. */
int sl_client_play(sl_client_t *c) { return start(c, SL__MODE_PLAY); }
int sl_client_publish(sl_client_t *c) { return start(c, SL__MODE_PUBLISH); }
int sl_client_connect(sl_client_t *c) { return start(c, SL__MODE_CONNECT); }

/*
 * Starts publishing an FLV file (client.h). path is copied into an opened
 * source; on error nothing is started and the source is released.
 */
int sl_client_publish_flv(sl_client_t *c, const char *path, unsigned flags)
{
    if (c->freeing || c->mode != SL__MODE_NONE)
        return SL_EBUSY;
    if (!c->stream[0] || !path)
        return SL_EINVAL;
    int rc = sl__src_open(c, path, flags);
    return rc ? rc : start(c, SL__MODE_PUBLISH);
}

/* True for a data body that is onMetaData, bare or inside @setDataFrame. */
static int data_is_meta(const uint8_t *b, size_t n, int *wrapped)
{
    *wrapped = n >= 16 && b[0] == 0x02 && sl_rd_be16(b + 1) == 13 && memcmp(b + 3, "@setDataFrame", 13) == 0;
    if (*wrapped) {
        b += 16;
        n -= 16;
    }
    return n >= 13 && b[0] == 0x02 && sl_rd_be16(b + 1) == 10 && memcmp(b + 3, "onMetaData", 10) == 0;
}

static int remember(sl_buf_t **slot, const uint8_t *body, size_t len)
{
    sl_buf_t *b = sl_buf_from(body, len);
    if (!b)
        return SL_ENOMEM;
    sl_buf_unref(*slot);
    *slot = b;
    return 0;
}

/*
 * The publishing path of sl_client_write and the FLV source: remember
 * headers, drop while not ACTIVE, hold video until a keyframe after a
 * (re)start, refuse past max_queue_bytes, then chunk the frame into the
 * output buffer (body is copied there; the caller keeps ownership).
 */
int sl__client_publish_frame(sl_client_t *c, int kind, uint32_t ts_ms, const uint8_t *body,
                             size_t len)
{
    if (c->mode != SL__MODE_PUBLISH || (kind != SL_CLIENT_AUDIO && kind != SL_CLIENT_VIDEO &&
                                        kind != SL_CLIENT_DATA) || (!body && len))
        return SL_EINVAL;
    if (len > SL__CLIENT_MAX_TAG)
        return SL_ETOOBIG;
    sl_client_frame_t f;
    memset(&f, 0, sizeof f);
    f.kind = kind;
    f.body = body;
    f.len = len;
    sl__flv_frame_classify(&f);
    int wrapped = 0, meta = kind == SL_CLIENT_DATA && data_is_meta(body, len, &wrapped);
    int rc = 0;
    if (meta)
        rc = remember(&c->hdr_meta, body, len);
    else if (f.config)
        rc = remember(kind == SL_CLIENT_VIDEO ? &c->hdr_video : &c->hdr_audio, body, len);
    if (rc)
        return rc;
    if (c->state != SL_CLIENT_ACTIVE || !c->conn) {
        c->st.frames_dropped++;
        return SL_EAGAIN;
    }
    if (kind == SL_CLIENT_VIDEO && c->wait_key && !f.config) {
        if (!f.keyframe) {
            c->st.frames_dropped++;
            return 0;
        }
        c->wait_key = 0;
    }
    if (sl__client_queued(c) > c->o.max_queue_bytes) {
        /* The connection cannot keep up: drop, and restart video on a keyframe
         * so that what does go out stays decodable. */
        c->st.frames_dropped++;
        if (kind == SL_CLIENT_VIDEO)
            c->wait_key = 1;
        return SL_EAGAIN;
    }
    uint32_t csid = kind == SL_CLIENT_VIDEO ? SL_RTMP_CSID_VIDEO
                  : kind == SL_CLIENT_AUDIO ? SL_RTMP_CSID_AUDIO : SL_RTMP_CSID_DATA;
    if (meta && !wrapped) {
        /* Servers store metadata sent as @setDataFrame (FMLE, ffmpeg and OBS do this). */
        sl_wbuf_t w;
        sl_wbuf_init(&w, len + 16);
        rc = sl_amf0_put_string(&w, "@setDataFrame");
        rc = rc ? rc : sl_wbuf_put(&w, body, len);
        rc = rc ? rc : send_msg(c, csid, (uint8_t)kind, c->sid, ts_ms, w.data, w.len);
        sl_wbuf_cleanup(&w);
    } else {
        rc = send_msg(c, csid, (uint8_t)kind, c->sid, ts_ms, body, len);
    }
    if (rc)
        return rc;
    c->st.frames_out++;
    c->last_out_ts = ts_ms;
    return 0;
}

/* Publishes one caller frame and flushes (client.h); body is borrowed for the call. */
int sl_client_write(sl_client_t *c, int kind, uint32_t ts_ms, const uint8_t *body, size_t len)
{
    if (c->src || c->freeing)
        return SL_EINVAL;
    int rc = sl__client_publish_frame(c, kind, ts_ms, body, len);
    if (rc == 0)
        sl__client_flush(c);
    return rc;
}

/*
 * Calls a server method (client.h). The result callback and ud are kept
 * until the answer or the end of the connection, whichever comes first.
 */
int sl_client_call(sl_client_t *c, const char *method, const char *args_json,
                   sl_client_result_cb cb, void *ud)
{
    return sl_client_call_timeout(c, method, args_json, 0, cb, ud);
}

/* Starts the call timer for the earliest deadline of the pending calls. */
static void arm_call_timer(sl_client_t *c)
{
    uint64_t first = 0;
    for (size_t i = 0; i < c->n_calls; i++)
        if (c->calls[i].deadline && (!first || c->calls[i].deadline < first))
            first = c->calls[i].deadline;
    if (!first) {
        uv_timer_stop(&c->call_timer);
        return;
    }
    uint64_t now = uv_now(c->loop);
    uv_timer_start(&c->call_timer, on_call_timer, first > now ? first - now : 0, 0);
}

/* Calls past their deadline end with UV_ETIMEDOUT (one at a time: callbacks may call again). */
static void on_call_timer(uv_timer_t *t)
{
    sl_client_t *c = t->data;
    for (;;) {
        uint64_t now = uv_now(c->loop);
        size_t i = 0;
        while (i < c->n_calls && !(c->calls[i].deadline && c->calls[i].deadline <= now))
            i++;
        if (i == c->n_calls || c->freeing)
            break;
        sl__client_call_t call = c->calls[i];
        memmove(c->calls + i, c->calls + i + 1, (c->n_calls - i - 1) * sizeof(*c->calls));
        c->n_calls--;
        if (call.cb)
            call.cb(c, UV_ETIMEDOUT, "[]", call.ud);
    }
    if (!c->freeing)
        arm_call_timer(c);
}

/*
 * sl_client_call with a deadline (client.h); the timer of the client's
 * calls fires for the earliest one.
 */
int sl_client_call_timeout(sl_client_t *c, const char *method, const char *args_json,
                           uint32_t timeout_ms, sl_client_result_cb cb, void *ud)
{
    if (!method || !c->conn || c->freeing ||
        (c->state != SL_CLIENT_CONNECTED && c->state != SL_CLIENT_ACTIVE))
        return SL_EINVAL;
    if (c->n_calls == c->cap_calls) {
        size_t cap = c->cap_calls ? c->cap_calls * 2 : 4;
        sl__client_call_t *calls = sl_realloc(c->calls, cap * sizeof(*calls));
        if (!calls)
            return SL_ENOMEM;
        c->calls = calls;
        c->cap_calls = cap;
    }
    double txn = c->txn_next++;
    sl_wbuf_t w;
    sl_wbuf_init(&w, CMD_CAP);
    int rc = sl_amf0_put_string(&w, method);
    rc = rc ? rc : sl_amf0_put_number(&w, txn);
    rc = rc ? rc : sl_amf0_put_null(&w);
    rc = rc ? rc : sl__json_args_to_amf0(args_json, &w);
    rc = send_cmd(c, 0, &w, rc);
    if (rc)
        return rc;
    c->calls[c->n_calls++] = (sl__client_call_t){
        .txn = txn, .cb = cb, .ud = ud,
        .deadline = timeout_ms ? uv_now(c->loop) + timeout_ms : 0};
    if (timeout_ms)
        arm_call_timer(c);
    sl__client_flush(c);
    return 0;
}

/*
 * Graceful end (client.h): goodbye commands, FIN, CLOSED with err 0. The
 * old connection finishes closing on its own; the client stays allocated.
 */
void sl_client_close(sl_client_t *c)
{
    if (c->freeing || c->state == SL_CLIENT_CLOSED)
        return;
    c->user_closed = 1;
    uv_timer_stop(&c->timer);
    sl__src_stop(c);
    if (c->conn && c->sid) {
        if (c->mode == SL__MODE_PUBLISH)
            send_simple(c, "FCUnpublish", c->txn_next++, 0, c->stream_arg);
        sl_wbuf_t w;
        sl_wbuf_init(&w, 256);
        int rc = sl_amf0_put_string(&w, "deleteStream");
        rc = rc ? rc : sl_amf0_put_number(&w, c->txn_next++);
        rc = rc ? rc : sl_amf0_put_null(&w);
        rc = rc ? rc : sl_amf0_put_number(&w, c->sid);
        send_cmd(c, 0, &w, rc);
    }
    c->sid = 0;
    conn_graceful(c);
    fail_calls(c);
    if (c->freeing)
        return;
    enter_closed(c, 0);
}

/*
 * Releases the client (client.h): aborts the connection, closes the
 * source and the FLV output; the memory goes in the last close callback.
 * Pending call callbacks are dropped without being called.
 */
void sl_client_free(sl_client_t *c)
{
    if (!c || c->freeing)
        return;
    c->freeing = 1;
    conn_abort(c);
    sl__src_close(c);
    if (c->fout)
        sl__flv_writer_close(c->fout);
    c->n_calls = 0; /* no callbacks after free */
    sl__client_so_free_all(c);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    uv_close((uv_handle_t *)&c->call_timer, on_timer_closed);
}
