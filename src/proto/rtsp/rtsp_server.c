/*
 * The RTSP server's connections (see rtsp_server.h and rtsp_internal.h):
 * accept on the listener scaffold (plain and TLS), read and parse requests
 * under the size caps, interleaved ($) packets, the method handlers,
 * admission with Basic / Digest / Red5 parameters, UDP port pairs from the
 * configured range, timeouts, and the write path.
 *
 * Write path: replies and interleaved packets are appended to `out`, a
 * buffer bounded by rtsp.max_pending_bytes (+64 KB for replies); a flush
 * writes what the socket takes at once (uv_try_write) and hands the rest
 * to one uv_write whose request owns a copy; while it is in flight new
 * bytes wait in `out`. A player whose `out` is full drops frames up to the
 * next keyframe (rtsp_media.c). RTSPS encrypts `out` into `wire` first.
 * Media payloads are shared per frame (the RTP cache); only the 4-byte $
 * header and the 12-byte RTP header are per player, copied with the payload
 * into `out` (TCP) or sent with it in one sendmsg (UDP, no copy).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "app/events.h"
#include "app/listeners.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/str.h"
#include "proto/rtsp/rtsp_internal.h"
#include "sluice/errors.h"

#define SWEEP_MS 200
#define REPLY_ROOM (64 * 1024)      /* bytes of replies allowed beyond the media budget */

static const sl_session_ops_t conn_ops;

/* ------------------------------------------------------------------ */
/* writing                                                             */

typedef struct wreq {
    uv_write_t req;
    rtsp_conn_t *c;
    size_t len;
    uint8_t data[];
} wreq_t;

size_t rtsp_pending(const rtsp_conn_t *c)
{
    return c->out.len + c->wire.len;
}

int rtsp_send(rtsp_conn_t *c, const void *p, size_t n)
{
    if (c->closing)
        return SL_ECLOSED;
    return sl_wbuf_put(&c->out, p, n);
}

static void on_written(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    rtsp_conn_t *c = w->c;
    sl_free(w);
    c->writing = 0;
    if (status < 0) {
        rtsp_conn_close(c, "write failed");
        return;
    }
    if (!c->closing)
        rtsp_flush(c);
}

/* Drops the first n bytes of b. */
static void consume(sl_wbuf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void rtsp_flush(rtsp_conn_t *c)
{
    if (c->closing && !c->tls)
        return;
    sl_wbuf_t *src = &c->out;
    if (c->tls) {
        while (c->out.len && sl_tls_handshake_done(c->tls)) {
            struct iovec iov = {c->out.data, c->out.len};
            size_t used = 0;
            if (sl_tls_write(c->tls, &iov, 1, c->out.len, &used))
                break;
            consume(&c->out, used);
        }
        size_t n;
        while ((n = sl_tls_out_take(c->tls, c->srv->wire, sizeof c->srv->wire)) > 0)
            if (sl_wbuf_put(&c->wire, c->srv->wire, n)) {
                rtsp_conn_close(c, "tls output over budget");
                return;
            }
        src = &c->wire;
    }
    if (c->writing || src->len == 0 || c->closing)
        return;
    uv_buf_t b = uv_buf_init((char *)src->data, (unsigned)src->len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n > 0) {
        c->sess.bytes_out += (uint64_t)n;
        consume(src, (size_t)n);
    } else if (n != UV_EAGAIN) {
        rtsp_conn_close(c, "write failed");
        return;
    }
    if (!src->len)
        return;
    wreq_t *w = sl_malloc(sizeof *w + src->len);
    if (!w) {
        rtsp_conn_close(c, "out of memory (write)");
        return;
    }
    w->c = c;
    w->len = src->len;
    memcpy(w->data, src->data, src->len);
    c->sess.bytes_out += src->len;
    src->len = 0;
    b = uv_buf_init((char *)w->data, (unsigned)w->len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written)) {
        sl_free(w);
        rtsp_conn_close(c, "write failed");
        return;
    }
    c->writing = 1;
}

int rtsp_send_packet(rtsp_conn_t *c, rtsp_track_t *t, int rtcp, const uint8_t *hdr, size_t hdr_len,
                     const uint8_t *payload, size_t len)
{
    if (c->closing)
        return SL_ECLOSED;
    if (t->tcp) {
        size_t n = hdr_len + len;
        if (n > 0xFFFF)
            return SL_ETOOBIG;
        uint8_t head[4] = {'$', (uint8_t)t->ch[rtcp ? 1 : 0], (uint8_t)(n >> 8), (uint8_t)n};
        int rc = sl_wbuf_put(&c->out, head, 4);
        if (!rc && hdr_len)
            rc = sl_wbuf_put(&c->out, hdr, hdr_len);
        if (!rc && len)
            rc = sl_wbuf_put(&c->out, payload, len);
        return rc;
    }
    if (!t->udp)
        return SL_EINVAL;
    uv_buf_t b[2] = {uv_buf_init((char *)hdr, (unsigned)hdr_len), uv_buf_init((char *)payload, (unsigned)len)};
    int rc = uv_udp_try_send(&t->udp->sock[rtcp ? 1 : 0], len ? b : b, len ? 2 : 1,
                             (const struct sockaddr *)&t->peer[rtcp ? 1 : 0]);
    if (rc > 0)
        c->sess.bytes_out += (uint64_t)rc;
    return rc < 0 ? rc : 0;
}

/* ------------------------------------------------------------------ */
/* closing                                                             */

static void maybe_finish_stop(rtsp_server_t *srv)
{
    if (srv->stopping && srv->n_conns == 0)
        sl_listener_idle(&srv->net);
}

static void conn_free(rtsp_conn_t *c)
{
    rtsp_server_t *srv = c->srv;
    sl_wbuf_cleanup(&c->out);
    sl_wbuf_cleanup(&c->wire);
    sl_tls_free(c->tls);
    sl_free(c->in);
    sl_free(c->pending_sdp);
    sl_free(c);
    srv->n_conns--;
    maybe_finish_stop(srv);
}

static void on_handle_closed(uv_handle_t *h)
{
    rtsp_conn_t *c = h->data;
    if (--c->handles == 0)
        conn_free(c);
}

static void on_udp_closed(uv_handle_t *h)
{
    rtsp_udp_t *u = h->data;
    if (--u->open == 0)
        sl_free(u);
}

static void udp_release(rtsp_server_t *srv, rtsp_udp_t *u)
{
    if (!u)
        return;
    u->c = NULL;
    srv->n_udp_pairs--;
    for (int i = 0; i < 2; i++)
        uv_close((uv_handle_t *)&u->sock[i], on_udp_closed);
}

/* Ends the RTSP session (not the connection): publish / play stop, UDP ports freed. */
static void session_end(rtsp_conn_t *c, const char *reason)
{
    if (c->role == RTSP_ROLE_PUBLISH)
        rtsp_pub_stop(c);
    else if (c->role == RTSP_ROLE_PLAY)
        rtsp_play_stop(c, reason);
    for (int i = 0; i < RTSP_MAX_TRACKS; i++) {
        rtsp_track_t *t = &c->tracks[i];
        udp_release(c->srv, t->udp);
        t->udp = NULL;
        sl_rtp_rx_free(t->rx);
        sl_h264_depack_free(t->h264);
        sl_h265_depack_free(t->h265);
        sl_aac_depack_free(t->aac);
        memset(t, 0, sizeof *t);
    }
    c->n_tracks = 0;
    c->live = 0;
    c->paused = 0;
    c->session_id[0] = '\0';
    c->role = RTSP_ROLE_NONE;
    c->admitted = 0;
}

void rtsp_conn_close(rtsp_conn_t *c, const char *reason)
{
    if (c->closing)
        return;
    if (c->admit) {
        sl_admit_cancel(c->admit);
        c->admit = NULL;
    }
    session_end(c, reason ? reason : "closed");
    if (c->tls && !c->writing && sl_tls_handshake_done(c->tls)) {
        /* An orderly end for the client's TLS library, best effort. */
        rtsp_flush(c);
        sl_tls_close_notify(c->tls);
        size_t n = sl_tls_out_take(c->tls, c->srv->wire, sizeof c->srv->wire);
        uv_buf_t b = uv_buf_init((char *)c->srv->wire, (unsigned)n);
        if (n)
            (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
    c->closing = 1;
    if (reason)
        SL_LOGI(&c->sess.log, "rtsp: closed: %s", reason);
    if (c->connected)
        sl_events_emit_session(c->srv->core, &c->sess, SL_EV_DISCONNECT, reason);
    sl_list_remove(&c->link);
    sl_session_unregister(c->srv->core, &c->sess);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* ------------------------------------------------------------------ */
/* UDP ports                                                           */

static void on_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    rtsp_udp_t *u = h->data;
    rtsp_server_t *srv = u->c ? u->c->srv : NULL;
    static uint8_t spare[2048];
    if (!srv)
        *buf = uv_buf_init((char *)spare, sizeof spare);
    else
        *buf = uv_buf_init((char *)srv->rbuf, sizeof srv->rbuf);
}

/* The client's own address: packets from elsewhere are ignored. */
static int from_client(const rtsp_conn_t *c, const struct sockaddr *a)
{
    char ip[64] = "";
    if (a->sa_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)a, ip, sizeof ip);
    else if (a->sa_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)a, ip, sizeof ip);
    return strcmp(ip, c->sess.remote_addr) == 0;
}

static void on_udp_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *addr,
                        unsigned flags)
{
    (void)flags;
    rtsp_udp_t *u = h->data;
    rtsp_conn_t *c = u->c;
    if (n <= 0 || !addr || !c || c->closing || !from_client(c, addr))
        return;
    c->sess.bytes_in += (uint64_t)n;
    c->last_in_ms = uv_now(c->srv->core->loop);
    int rtcp = h == &u->sock[1];
    if (rtcp)
        rtsp_rtcp_in(c, u->track, (const uint8_t *)buf->base, (size_t)n);
    else if (c->role == RTSP_ROLE_PUBLISH && c->live)
        rtsp_pub_rtp(c, u->track, (const uint8_t *)buf->base, (size_t)n);
}

/*
 * Opens a server RTP/RTCP pair for track ti from the configured range,
 * within rtsp.max_udp_pairs. 0, SL_EBUSY (budget or range exhausted),
 * SL_ENOMEM.
 */
static int udp_open(rtsp_conn_t *c, int ti)
{
    rtsp_server_t *srv = c->srv;
    const sl_rtsp_config_t *rc = sl_rtsp_cfg(srv->core->cfg);
    if (srv->n_udp_pairs >= (size_t)rc->max_udp_pairs)
        return SL_EBUSY;
    int lo = (int)(rc->udp_port_min + 1) & ~1, hi = (int)rc->udp_port_max;
    if (hi - lo < 1)
        return SL_EBUSY;
    int n_ports = (hi - lo + 1) / 2;
    int ipv6 = strchr(c->sess.remote_addr, ':') != NULL;
    for (int tries = 0; tries < n_ports && tries < 64; tries++) {
        if (srv->udp_next < lo || srv->udp_next + 1 > hi)
            srv->udp_next = lo;
        int port = srv->udp_next;
        srv->udp_next += 2;
        rtsp_udp_t *u = sl_calloc(1, sizeof *u);
        if (!u)
            return SL_ENOMEM;
        u->c = c;
        u->track = ti;
        u->port = port;
        int ok = 1;
        for (int i = 0; i < 2; i++) {
            uv_udp_init(srv->core->loop, &u->sock[i]);
            u->sock[i].data = u;
            u->open++;
            struct sockaddr_storage sa;
            if (ipv6)
                uv_ip6_addr("::", port + i, (struct sockaddr_in6 *)&sa);
            else
                uv_ip4_addr("0.0.0.0", port + i, (struct sockaddr_in *)&sa);
            if (ok && uv_udp_bind(&u->sock[i], (const struct sockaddr *)&sa, 0))
                ok = 0;
        }
        if (ok && (uv_udp_recv_start(&u->sock[0], on_udp_alloc, on_udp_recv) ||
                   uv_udp_recv_start(&u->sock[1], on_udp_alloc, on_udp_recv)))
            ok = 0;
        if (!ok) {
            for (int i = 0; i < 2; i++)
                uv_close((uv_handle_t *)&u->sock[i], on_udp_closed);
            continue;
        }
        srv->n_udp_pairs++;
        c->tracks[ti].udp = u;
        return 0;
    }
    return SL_EBUSY;
}

/* ------------------------------------------------------------------ */
/* replies                                                             */

static const char *status_text(int code)
{
    switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Request Entity Too Large";
    case 415: return "Unsupported Media Type";
    case 453: return "Not Enough Bandwidth";
    case 454: return "Session Not Found";
    case 455: return "Method Not Valid in This State";
    case 459: return "Aggregate Operation Not Allowed";
    case 461: return "Unsupported Transport";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

#define PUBLIC_METHODS "OPTIONS, DESCRIBE, ANNOUNCE, SETUP, PLAY, PAUSE, RECORD, TEARDOWN, GET_PARAMETER, SET_PARAMETER"

/* Writes a reply; extra is more header lines ending in CRLF (may be NULL); body may be NULL. */
static void reply(rtsp_conn_t *c, int cseq, int code, const char *extra, const char *ctype, const char *body,
                  size_t body_len)
{
    char head[2048];
    int n = snprintf(head, sizeof head, "RTSP/1.0 %d %s\r\nCSeq: %d\r\nServer: sluice\r\n%s", code,
                     status_text(code), cseq < 0 ? 0 : cseq, extra ? extra : "");
    if (n < 0 || (size_t)n >= sizeof head)
        n = snprintf(head, sizeof head, "RTSP/1.0 %d %s\r\nCSeq: %d\r\n", code, status_text(code), cseq);
    if (c->session_id[0] && code < 300) {
        n += snprintf(head + n, sizeof head - (size_t)n, "Session: %s;timeout=%lld\r\n", c->session_id,
                      (long long)(sl_rtsp_cfg(c->srv->core->cfg)->session_timeout_ms / 1000));
    }
    if (body)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Type: %s\r\nContent-Length: %zu\r\n",
                      ctype, body_len);
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    if ((size_t)n >= sizeof head)
        n = (int)sizeof head - 1;
    /* Media stops at half of the budget (rtsp_media.c), so replies always
     * have room; a client that sends requests and never reads runs out of
     * it and is closed. */
    if (rtsp_send(c, head, (size_t)n) || (body && rtsp_send(c, body, body_len))) {
        rtsp_conn_close(c, "replies not read (output over rtsp.max_pending_bytes)");
        return;
    }
    c->sess.msgs_out++;
}

static void reply_error(rtsp_conn_t *c, int cseq, int code)
{
    reply(c, cseq, code, NULL, NULL, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* authentication                                                      */

static void md5_hex(const char *s, char out[33])
{
    uint8_t d[16];
    unsigned n = 0;
    EVP_Digest(s, strlen(s), d, &n, EVP_md5(), NULL);
    sl_hex_encode(d, 16, out, 0);
    out[32] = '\0';
}

/*
 * Finds user's password in rtsp.digest_file (Simple Auth's `user password`
 * format, the password in clear). The file is small and read on demand: a
 * Digest answer is one per session. 0 with the password in out, or
 * SL_ENOTFOUND.
 */
static int digest_password(const char *file, const char *user, char *out, size_t cap)
{
    if (!file || !file[0])
        return SL_ENOTFOUND;
    FILE *f = fopen(file, "r");
    if (!f)
        return SL_ENOTFOUND;
    char line[1024];
    int rc = SL_ENOTFOUND, lines = 0;
    while (rc && lines++ < 100000 && fgets(line, sizeof line, f)) {
        char *save = NULL, *name = strtok_r(line, " \t\r\n", &save), *pw = strtok_r(NULL, " \t\r\n", &save);
        if (!name || !pw || name[0] == '#' || strcmp(name, user))
            continue;
        if (strlen(pw) < cap) {
            strcpy(out, pw);
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}

/*
 * Credentials of a request: Authorization (Basic: as given; Digest:
 * checked against rtsp.digest_file, then the clear password), else Red5's
 * path parameters, else the query. Returns 0, or SL_EDENIED for a Digest
 * answer that is wrong (unknown user, stale nonce, bad response).
 */
static int find_creds(rtsp_conn_t *c, const sl_rtsp_req_t *r, const char *params, const char *query,
                      char *user, char *pass, char *token, size_t cap)
{
    user[0] = pass[0] = token[0] = '\0';
    const char *az = sl_rtsp_req_header(r, "Authorization");
    sl_rtsp_auth_t *a = sl_malloc(sizeof *a);
    if (!a)
        return SL_ENOMEM;
    int rc = 0;
    if (az && sl_rtsp_auth_parse(az, a) == 0) {
        if (a->scheme == SL_RTSP_AUTH_BASIC) {
            snprintf(user, cap, "%s", a->username);
            snprintf(pass, cap, "%s", a->password);
        } else {
            const sl_rtsp_config_t *rc_ = sl_rtsp_cfg(c->srv->core->cfg);
            char pw[256], buf[SL_RTSP_MAX_URL + 512], ha1[33], ha2[33], want[33];
            if (strcmp(a->nonce, c->nonce) || digest_password(rc_->digest_file, a->username, pw, sizeof pw)) {
                rc = SL_EDENIED;
            } else {
                snprintf(buf, sizeof buf, "%s:%s:%s", a->username, a->realm, pw);
                md5_hex(buf, ha1);
                snprintf(buf, sizeof buf, "%s:%s", r->method, a->uri[0] ? a->uri : r->url);
                md5_hex(buf, ha2);
                if (a->qop[0])
                    snprintf(buf, sizeof buf, "%s:%s:%s:%s:%s:%s", ha1, a->nonce, a->nc, a->cnonce, a->qop, ha2);
                else
                    snprintf(buf, sizeof buf, "%s:%s:%s", ha1, a->nonce, ha2);
                md5_hex(buf, want);
                char got[33] = "";
                for (size_t i = 0; i < 32 && a->response[i]; i++)
                    got[i] = (char)(a->response[i] | 0x20); /* hex digits to lower case */
                if (strlen(a->response) != 32 || CRYPTO_memcmp(want, got, 32)) {
                    rc = SL_EDENIED;
                } else {
                    snprintf(user, cap, "%s", a->username);
                    snprintf(pass, cap, "%s", pw);
                }
                OPENSSL_cleanse(pw, sizeof pw);
            }
        }
    }
    OPENSSL_cleanse(a, sizeof *a);
    sl_free(a);
    const char *srcs[2] = {params, query};
    for (int i = 0; i < 2; i++) {
        if (!srcs[i] || !srcs[i][0])
            continue;
        if (!user[0])
            sl_query_get(srcs[i], "username", SL_QUERY_LAST, user, cap);
        if (!pass[0])
            sl_query_get(srcs[i], "password", SL_QUERY_LAST, pass, cap);
        if (!token[0])
            sl_query_get(srcs[i], "token", SL_QUERY_LAST, token, cap);
    }
    return rc;
}

static void reply_unauthorized(rtsp_conn_t *c, int cseq)
{
    const sl_rtsp_config_t *rc = sl_rtsp_cfg(c->srv->core->cfg);
    char extra[512];
    int n = 0;
    if (rc->digest_file && rc->digest_file[0])
        n = snprintf(extra, sizeof extra, "WWW-Authenticate: Digest realm=\"%s\", nonce=\"%s\", algorithm=MD5\r\n",
                     rc->realm, c->nonce);
    snprintf(extra + n, sizeof extra - (size_t)n, "WWW-Authenticate: Basic realm=\"%s\"\r\n", rc->realm);
    reply(c, cseq, 401, extra, NULL, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* methods                                                             */

/* Splits "live/room/cam1" into app "live/room" and stream "cam1" on the session. */
static int set_path(rtsp_conn_t *c, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path || !slash[1] || strlen(path) >= sizeof c->path)
        return SL_EINVAL;
    char app[RTSP_PATH_MAX];
    snprintf(app, sizeof app, "%.*s", (int)(slash - path), path);
    if (sl_session_set_app(&c->sess, app) || sl_session_set_stream(&c->sess, slash + 1))
        return SL_ENOMEM;
    snprintf(c->path, sizeof c->path, "%s", path);
    return 0;
}

static void process_input(rtsp_conn_t *c);

static void announce_finish(rtsp_conn_t *c, int cseq)
{
    sl_sdp_t *sdp = sl_malloc(sizeof *sdp);
    char err[160];
    const char *why = NULL;
    if (!sdp) {
        reply_error(c, cseq, 500);
        return;
    }
    if (sl_sdp_parse_description(c->pending_sdp, c->pending_sdp_len, sdp, err, sizeof err)) {
        SL_LOGI(&c->sess.log, "rtsp: ANNOUNCE with a bad SDP: %s", err);
        reply_error(c, cseq, 400);
    } else if (rtsp_tracks_from_sdp(c, sdp, &why)) {
        SL_LOGI(&c->sess.log, "rtsp: ANNOUNCE refused: %s", why);
        reply_error(c, cseq, 415);
    } else {
        c->role = RTSP_ROLE_PUBLISH;
        c->admitted = 1;
        reply(c, cseq, 200, NULL, NULL, NULL, 0);
    }
    sl_free(sdp);
    sl_free(c->pending_sdp);
    c->pending_sdp = NULL;
}

static void describe_finish(rtsp_conn_t *c, int cseq)
{
    sl_stream_t *st = sl_hub_find(c->srv->core->hub, c->path);
    if (!st || !st->publisher) {
        reply_error(c, cseq, 404);
        return;
    }
    char *sdp = sl_malloc(8192);
    if (!sdp) {
        reply_error(c, cseq, 500);
        return;
    }
    int n = rtsp_describe(c, st, "0.0.0.0", sdp, 8192);
    if (n < 0) {
        sl_free(sdp);
        reply_error(c, cseq, n == SL_ENOTFOUND ? 415 : 500);
        return;
    }
    c->role = RTSP_ROLE_PLAY;
    c->admitted = 1;
    char extra[SL_RTSP_MAX_URL + 64];
    size_t ul = strlen(c->pending_url);
    snprintf(extra, sizeof extra, "Content-Base: %s%s\r\n", c->pending_url,
             ul && c->pending_url[ul - 1] == '/' ? "" : "/");
    reply(c, cseq, 200, extra, "application/sdp", sdp, (size_t)n);
    sl_free(sdp);
}

static void admit_done(sl_admit_t *a, int result, const char *reason, void *ud)
{
    rtsp_conn_t *c = ud;
    int publish = sl_admit_request(a)->kind == SL_ADMIT_PUBLISH;
    if (c->admit) {
        sl_admit_unref(c->admit);
        c->admit = NULL;
    }
    if (result) {
        SL_LOGI(&c->sess.log, "rtsp: %s refused: %s", publish ? "publish" : "play", reason ? reason : "denied");
        if (c->had_creds)
            reply_error(c, c->pending_cseq, 403);
        else
            reply_unauthorized(c, c->pending_cseq);
        sl_free(c->pending_sdp);
        c->pending_sdp = NULL;
    } else {
        if (!c->connected) {
            c->connected = 1;
            sl_session_admitted(&c->sess);
            sl_events_emit_session(c->srv->core, &c->sess, SL_EV_CONNECT, NULL);
        }
        if (publish)
            announce_finish(c, c->pending_cseq);
        else
            describe_finish(c, c->pending_cseq);
    }
    rtsp_flush(c);
    /* Requests that came while the admission ran. The callback may come from
     * inside sl_admit() (synchronous checks): the caller's loop continues then. */
    if (!c->closing && !c->in_admit_call)
        process_input(c);
}

/* ANNOUNCE / DESCRIBE: the path, the credentials, the admission chain. */
static void start_admission(rtsp_conn_t *c, const sl_rtsp_req_t *r, int publish, const uint8_t *body, size_t blen)
{
    char path[RTSP_PATH_MAX], params[1024], query[2048];
    if (sl_rtsp_url_split(r->url, path, sizeof path, params, sizeof params, query, sizeof query) ||
        !sl_name_is_safe(path, RTSP_PATH_MAX - 1) || !sl_query_is_safe(params) || !sl_query_is_safe(query)) {
        reply_error(c, r->cseq, 400);
        return;
    }
    if (c->role != RTSP_ROLE_NONE)
        session_end(c, "new ANNOUNCE or DESCRIBE");
    if (set_path(c, path)) {
        reply_error(c, r->cseq, 400);
        return;
    }
    if (!sl_core_app(c->srv->core, c->sess.app)) {
        SL_LOGI(&c->sess.log, "rtsp: unknown app %s", c->sess.app);
        reply_error(c, r->cseq, 404);
        return;
    }
    /* The stream's query for the session (webhooks, the API): params and query together. */
    char q[3200];
    snprintf(q, sizeof q, "%s%s%s", params, params[0] && query[0] ? "&" : "", query);
    sl_session_set_query(&c->sess, q[0] ? q : NULL);
    char user[512], pass[512], token[2048];
    int rc = find_creds(c, r, params, query, user, pass, token, sizeof user);
    if (rc == SL_EDENIED) {
        SL_LOGI(&c->sess.log, "rtsp: Digest answer refused (user, nonce or response)");
        reply_unauthorized(c, r->cseq);
        return;
    }
    snprintf(c->pending_url, sizeof c->pending_url, "%s", r->url);
    c->had_creds = user[0] || pass[0] || token[0];
    c->pending_cseq = r->cseq;
    if (publish) {
        c->pending_sdp = sl_malloc(blen + 1);
        if (!c->pending_sdp) {
            reply_error(c, r->cseq, 500);
            return;
        }
        memcpy(c->pending_sdp, body, blen);
        c->pending_sdp[blen] = '\0';
        c->pending_sdp_len = blen;
    }
    sl_admit_req_t ar = {
        .kind = publish ? SL_ADMIT_PUBLISH : SL_ADMIT_PLAY,
        .app = c->sess.app,
        .stream = c->sess.stream,
        .transport = "rtsp",
        .query = c->sess.query,
        .username = user[0] ? user : NULL,
        .password = pass[0] ? pass : NULL,
        .token = token[0] ? token : NULL,
        .publish_mode = publish ? "live" : NULL,
    };
    c->sess.publish_mode = SL_PUBLISH_LIVE;
    sl_admit_t *a = NULL;
    c->in_admit_call = 1;
    rc = sl_admit(c->srv->core, &c->sess, &ar, admit_done, c, &a);
    c->in_admit_call = 0;
    OPENSSL_cleanse(pass, sizeof pass);
    if (rc == SL_EPENDING)
        c->admit = a;
    else if (rc && rc != SL_OK)
        reply_error(c, r->cseq, 500);
}

static void random_hex(char *out, size_t bytes)
{
    uint8_t r[32];
    if (bytes > sizeof r)
        bytes = sizeof r;
    RAND_bytes(r, (int)bytes);
    sl_hex_encode(r, bytes, out, 1);
    out[2 * bytes] = '\0';
}

/* The track a SETUP URL names: by a=control suffix, else the first not set up. */
static int track_for_url(rtsp_conn_t *c, const char *url)
{
    char path[RTSP_PATH_MAX * 2], params[1024], query[2048];
    size_t pl;
    if (sl_rtsp_url_split(url, path, sizeof path, params, sizeof params, query, sizeof query) == SL_ETOOBIG)
        return -1;
    pl = strlen(path);
    for (int i = 0; i < c->n_tracks; i++) {
        const char *ctl = c->tracks[i].control;
        if (!ctl[0] || !strcmp(ctl, "*"))
            continue;
        const char *tail = strrchr(ctl, '/');
        tail = tail ? tail + 1 : ctl;
        size_t tl = strlen(tail);
        if (!strcmp(url, ctl) || (pl >= tl && !strcmp(path + pl - tl, tail) &&
                                  (pl == tl || path[pl - tl - 1] == '/')))
            return i;
    }
    for (int i = 0; i < c->n_tracks; i++)
        if (!c->tracks[i].setup)
            return i;
    return -1;
}

static void on_setup(rtsp_conn_t *c, const sl_rtsp_req_t *r)
{
    const char *sess = sl_rtsp_req_header(r, "Session");
    if (!c->admitted || c->role == RTSP_ROLE_NONE) {
        reply_error(c, r->cseq, 455);
        return;
    }
    if (sess && c->session_id[0] && strncmp(sess, c->session_id, strlen(c->session_id))) {
        reply_error(c, r->cseq, 454);
        return;
    }
    const char *tv = sl_rtsp_req_header(r, "Transport");
    sl_rtsp_transport_t tr;
    if (!tv || sl_rtsp_transport_parse(tv, &tr) || tr.multicast) {
        reply_error(c, r->cseq, 461);
        return;
    }
    int ti = track_for_url(c, r->url);
    if (ti < 0) {
        reply_error(c, r->cseq, 404);
        return;
    }
    rtsp_track_t *t = &c->tracks[ti];
    if (t->setup) {
        reply_error(c, r->cseq, 459);
        return;
    }
    const sl_rtsp_config_t *rc = sl_rtsp_cfg(c->srv->core->cfg);
    char extra[256];
    if (tr.tcp) {
        t->tcp = 1;
        t->ch[0] = tr.interleaved[0] >= 0 ? tr.interleaved[0] : 2 * ti;
        t->ch[1] = tr.interleaved[0] >= 0 ? tr.interleaved[1] : 2 * ti + 1;
        snprintf(extra, sizeof extra, "Transport: RTP/AVP/TCP;unicast;interleaved=%d-%d%s\r\n", t->ch[0], t->ch[1],
                 c->role == RTSP_ROLE_PUBLISH ? ";mode=record" : "");
    } else {
        if (!rc->udp || tr.client_port[0] < 0) {
            reply_error(c, r->cseq, 461);
            return;
        }
        int orc = udp_open(c, ti);
        if (orc) {
            if (orc == SL_EBUSY)
                SL_LOGW(&c->sess.log, "rtsp: no UDP port pair left (rtsp.max_udp_pairs or the port range)");
            reply_error(c, r->cseq, orc == SL_EBUSY ? 453 : 500);
            return;
        }
        int ipv6 = strchr(c->sess.remote_addr, ':') != NULL;
        for (int i = 0; i < 2; i++) {
            if (ipv6)
                uv_ip6_addr(c->sess.remote_addr, tr.client_port[i], (struct sockaddr_in6 *)&t->peer[i]);
            else
                uv_ip4_addr(c->sess.remote_addr, tr.client_port[i], (struct sockaddr_in *)&t->peer[i]);
        }
        snprintf(extra, sizeof extra, "Transport: RTP/AVP;unicast;client_port=%d-%d;server_port=%d-%d%s\r\n",
                 tr.client_port[0], tr.client_port[1], t->udp->port, t->udp->port + 1,
                 c->role == RTSP_ROLE_PUBLISH ? ";mode=record" : "");
    }
    t->setup = 1;
    if (!c->session_id[0])
        random_hex(c->session_id, 8);
    reply(c, r->cseq, 200, extra, NULL, NULL, 0);
}

static int session_ok(rtsp_conn_t *c, const sl_rtsp_req_t *r)
{
    const char *s = sl_rtsp_req_header(r, "Session");
    if (!c->session_id[0]) {
        reply_error(c, r->cseq, 455);
        return 0;
    }
    if (s && strncmp(s, c->session_id, strlen(c->session_id))) {
        reply_error(c, r->cseq, 454);
        return 0;
    }
    return 1;
}

static void on_record(rtsp_conn_t *c, const sl_rtsp_req_t *r)
{
    if (!session_ok(c, r))
        return;
    if (c->role != RTSP_ROLE_PUBLISH || c->live) {
        reply_error(c, r->cseq, 455);
        return;
    }
    int rc = rtsp_pub_start(c);
    if (rc) {
        SL_LOGI(&c->sess.log, "rtsp: RECORD refused: %s", sl_strerror(rc));
        reply_error(c, r->cseq, rc == SL_EBUSY ? 455 : 500);
        return;
    }
    c->live = 1;
    reply(c, r->cseq, 200, NULL, NULL, NULL, 0);
}

static void on_play(rtsp_conn_t *c, const sl_rtsp_req_t *r)
{
    if (!session_ok(c, r))
        return;
    if (c->role != RTSP_ROLE_PLAY) {
        reply_error(c, r->cseq, 455);
        return;
    }
    if (c->live && c->paused) {
        c->paused = 0;
        c->need_key = 1;
        reply(c, r->cseq, 200, "Range: npt=0.000-\r\n", NULL, NULL, 0);
        return;
    }
    if (c->live) {
        reply(c, r->cseq, 200, "Range: npt=0.000-\r\n", NULL, NULL, 0);
        return;
    }
    /* RTP-Info: where each set-up track starts (players use it to sync). */
    char extra[SL_RTSP_MAX_URL * 2 + 200];
    int n = snprintf(extra, sizeof extra, "Range: npt=0.000-\r\nRTP-Info: ");
    int first = 1;
    size_t ul = strlen(c->pending_url);
    for (int i = 0; i < c->n_tracks; i++) {
        rtsp_track_t *t = &c->tracks[i];
        if (!t->setup)
            continue;
        n += snprintf(extra + n, sizeof extra - (size_t)n, "%surl=%s%s%s;seq=%u;rtptime=%u", first ? "" : ",",
                      c->pending_url, ul && c->pending_url[ul - 1] == '/' ? "" : "/", t->control, t->seq,
                      t->ts_base);
        first = 0;
        if ((size_t)n >= sizeof extra)
            break;
    }
    if ((size_t)n + 3 > sizeof extra || first)
        n = snprintf(extra, sizeof extra, "Range: npt=0.000-\r\n");
    else
        snprintf(extra + n, sizeof extra - (size_t)n, "\r\n");
    /* The reply goes before the first packet. */
    reply(c, r->cseq, 200, extra, NULL, NULL, 0);
    if (c->closing)
        return;
    if (rtsp_play_start(c)) {
        rtsp_conn_close(c, "stream gone before PLAY");
        return;
    }
    c->live = 1;
}

static void on_request(rtsp_conn_t *c, const sl_rtsp_req_t *r, const uint8_t *body, size_t blen)
{
    const char *m = r->method;
    c->sess.msgs_in++;
    if (!strcmp(m, "OPTIONS")) {
        reply(c, r->cseq, 200, "Public: " PUBLIC_METHODS "\r\n", NULL, NULL, 0);
    } else if (!strcmp(m, "ANNOUNCE")) {
        const char *ct = sl_rtsp_req_header(r, "Content-Type");
        if (!ct || strncasecmp(ct, "application/sdp", 15) || !blen)
            reply_error(c, r->cseq, 415);
        else
            start_admission(c, r, 1, body, blen);
    } else if (!strcmp(m, "DESCRIBE")) {
        start_admission(c, r, 0, NULL, 0);
    } else if (!strcmp(m, "SETUP")) {
        on_setup(c, r);
    } else if (!strcmp(m, "RECORD")) {
        on_record(c, r);
    } else if (!strcmp(m, "PLAY")) {
        on_play(c, r);
    } else if (!strcmp(m, "PAUSE")) {
        if (session_ok(c, r)) {
            if (c->role == RTSP_ROLE_PLAY)
                c->paused = 1;
            reply(c, r->cseq, 200, NULL, NULL, NULL, 0);
        }
    } else if (!strcmp(m, "TEARDOWN")) {
        reply(c, r->cseq, 200, NULL, NULL, NULL, 0);
        if (!c->closing)
            session_end(c, "teardown");
    } else if (!strcmp(m, "GET_PARAMETER") || !strcmp(m, "SET_PARAMETER")) {
        /* Keep-alive (the session's timer was reset by the read). */
        reply(c, r->cseq, 200, NULL, NULL, NULL, 0);
    } else {
        reply(c, r->cseq, 501, "Public: " PUBLIC_METHODS "\r\n", NULL, NULL, 0);
    }
}

/* ------------------------------------------------------------------ */
/* reading                                                             */

/* Parses what is in c->in: interleaved packets and requests, until more is needed. */
static void process_input(rtsp_conn_t *c)
{
    const sl_rtsp_config_t *rc = sl_rtsp_cfg(c->srv->core->cfg);
    static sl_rtsp_req_t req; /* loop thread only; 70 KB is not for the stack */
    size_t off = 0;
    while (!c->closing && !c->admit && off < c->in_len) {
        const uint8_t *p = c->in + off;
        size_t n = c->in_len - off;
        if (p[0] == '$') {
            if (n < 4)
                break;
            size_t plen = sl_rd_be16(p + 2);
            if (plen > (size_t)rc->max_interleaved_size) {
                rtsp_conn_close(c, "interleaved packet over rtsp.max_interleaved_size");
                return;
            }
            if (n < 4 + plen)
                break;
            int ch = p[1];
            for (int i = 0; i < c->n_tracks; i++) {
                rtsp_track_t *t = &c->tracks[i];
                if (!t->setup || !t->tcp)
                    continue;
                if (ch == t->ch[0] && c->role == RTSP_ROLE_PUBLISH && c->live)
                    rtsp_pub_rtp(c, i, p + 4, plen);
                else if (ch == t->ch[1])
                    rtsp_rtcp_in(c, i, p + 4, plen);
            }
            off += 4 + plen;
            continue;
        }
        int prc = sl_rtsp_req_parse(p, n, (size_t)rc->max_request_size, &req);
        if (prc == SL_EAGAIN)
            break;
        if (prc) {
            if (prc == SL_ETOOBIG)
                reply_error(c, -1, 413);
            else
                reply_error(c, -1, 400);
            rtsp_flush(c);
            rtsp_conn_close(c, prc == SL_ETOOBIG ? "request over rtsp.max_request_size" : "malformed request");
            return;
        }
        if (req.content_length > (size_t)rc->max_sdp_size) {
            reply_error(c, req.cseq, 413);
            rtsp_flush(c);
            rtsp_conn_close(c, "body over rtsp.max_sdp_size");
            return;
        }
        if (n < req.head_len + req.content_length)
            break;
        c->got_request = 1;
        on_request(c, &req, p + req.head_len, req.content_length);
        off += req.head_len + req.content_length;
    }
    if (off && !c->closing) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    rtsp_flush(c);
}

/* Appends plaintext to the input and parses it. */
static void on_bytes(rtsp_conn_t *c, const uint8_t *p, size_t n)
{
    while (n && !c->closing) {
        size_t room = c->in_cap - c->in_len;
        if (room == 0) {
            /* Held input is bounded by the request and SDP caps (and 64 KB for $
             * packets); an idle connection holds only the first 4 KB. */
            if (c->in_cap >= c->in_max) {
                rtsp_conn_close(c, "input over budget");
                return;
            }
            size_t cap = c->in_cap * 2 < c->in_max ? c->in_cap * 2 : c->in_max;
            uint8_t *in = sl_realloc(c->in, cap);
            if (!in) {
                rtsp_conn_close(c, "out of memory (input)");
                return;
            }
            c->in = in;
            c->in_cap = cap;
            continue;
        }
        size_t take = n < room ? n : room;
        memcpy(c->in + c->in_len, p, take);
        c->in_len += take;
        p += take;
        n -= take;
        process_input(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    rtsp_conn_t *c = h->data;
    *buf = uv_buf_init((char *)c->srv->rbuf, sizeof c->srv->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    rtsp_conn_t *c = s->data;
    if (nread < 0) {
        rtsp_conn_close(c, nread == UV_EOF ? "client closed" : uv_strerror((int)nread));
        return;
    }
    if (nread == 0 || c->closing)
        return;
    c->sess.bytes_in += (uint64_t)nread;
    c->last_in_ms = uv_now(c->srv->core->loop);
    if (!c->tls) {
        on_bytes(c, (const uint8_t *)buf->base, (size_t)nread);
        return;
    }
    /* RTSPS: decrypt into a copy (rbuf is the read buffer itself). */
    if (sl_tls_feed(c->tls, buf->base, (size_t)nread)) {
        rtsp_conn_close(c, "out of memory (tls)");
        return;
    }
    uint8_t plain[16384];
    for (;;) {
        size_t got = 0;
        int rc = sl_tls_read(c->tls, plain, sizeof plain, &got);
        if (!c->tls_established && sl_tls_handshake_done(c->tls))
            c->tls_established = 1;
        if (rc) {
            rtsp_flush(c);
            rtsp_conn_close(c, rc == SL_ECLOSED ? "client closed (tls)" : sl_tls_error(c->tls));
            return;
        }
        if (sl_tls_out_pending(c->tls))
            rtsp_flush(c);
        if (!got)
            break;
        on_bytes(c, plain, got);
        if (c->closing)
            return;
    }
}

/* ------------------------------------------------------------------ */
/* session ops                                                         */

static void conn_kick(sl_session_t *s, const char *reason)
{
    rtsp_conn_close((rtsp_conn_t *)s, reason ? reason : "kicked");
}

static void conn_shutdown(sl_session_t *s)
{
    rtsp_conn_close((rtsp_conn_t *)s, "server shutting down");
}

static uint64_t conn_pending_op(const sl_session_t *s)
{
    return rtsp_pending((const rtsp_conn_t *)s);
}

static const sl_session_ops_t conn_ops = {
    .kick = conn_kick,
    .shutdown = conn_shutdown,
    .pending = conn_pending_op,
};

/* ------------------------------------------------------------------ */
/* listener                                                            */

static void on_connection(void *ud, int is_tls)
{
    rtsp_server_t *srv = ud;
    const sl_rtsp_config_t *rc = sl_rtsp_cfg(srv->core->cfg);
    rtsp_conn_t *c = sl_calloc(1, sizeof *c);
    size_t in_cap = 4096;
    uint8_t *in = c ? sl_malloc(in_cap) : NULL;
    if (!c || !in) {
        sl_free(c);
        sl_free(in);
        SL_LOGE(NULL, "rtsp: out of memory accepting a connection");
        sl_listener_shed(&srv->net, is_tls);
        return;
    }
    uv_tcp_init(srv->core->loop, &c->tcp);
    c->tcp.data = c;
    c->handles = 1;
    c->srv = srv;
    c->in = in;
    c->in_cap = in_cap;
    c->in_max = (size_t)rc->max_request_size + (size_t)rc->max_sdp_size + 65536 + 4;
    c->video_track = c->audio_track = -1;
    sl_wbuf_init(&c->out, (size_t)rc->max_pending_bytes + REPLY_ROOM);
    sl_wbuf_init(&c->wire, (size_t)rc->max_pending_bytes + REPLY_ROOM + 65536);
    sl_list_init(&c->sink.link);
    random_hex(c->nonce, 16);
    srv->n_conns++;
    sl_list_push_back(&srv->conns, &c->link);
    sl_session_register(srv->core, &c->sess, &conn_ops, is_tls ? "rtsps" : "rtsp");
    if (sl_listener_accept(&srv->net, is_tls, &c->tcp) != 0) {
        rtsp_conn_close(c, "accept failed");
        return;
    }
    sl_session_set_peer(&c->sess, &c->tcp);
    if (srv->stopping || srv->core->shutting_down) {
        rtsp_conn_close(c, NULL);
        return;
    }
    const char *why = NULL;
    if (sl_session_accept(srv->core, &c->sess, &why) != 0) {
        SL_LOGD(&c->sess.log, "rtsp: refused: %s", why);
        rtsp_conn_close(c, NULL);
        return;
    }
    if (is_tls && sl_tls_new(sl_listener_tls(&srv->net), &c->tls) != 0) {
        rtsp_conn_close(c, "out of memory (tls)");
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->accept_ms = c->last_in_ms = uv_now(srv->core->loop);
    int r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (r)
        rtsp_conn_close(c, uv_strerror(r));
}

static void on_sweep(void *ud, uint64_t now)
{
    rtsp_server_t *srv = ud;
    const sl_rtsp_config_t *rc = sl_rtsp_cfg(srv->core->cfg);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &srv->conns) {
        rtsp_conn_t *c = sl_container_of(it, rtsp_conn_t, link);
        if (!c->got_request && (int64_t)(now - c->accept_ms) > rc->request_timeout_ms) {
            rtsp_conn_close(c, "no request within rtsp.request_timeout");
            continue;
        }
        if ((int64_t)(now - c->last_in_ms) > rc->session_timeout_ms) {
            rtsp_conn_close(c, "session timeout (nothing received within rtsp.session_timeout)");
            continue;
        }
        rtsp_media_tick(c, now);
        rtsp_flush(c);
    }
}

static void on_deadline(void *ud)
{
    rtsp_server_t *srv = ud;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &srv->conns)
        rtsp_conn_close(sl_container_of(it, rtsp_conn_t, link), "shutdown deadline");
}

static const sl_listener_ops_t listener_ops = {
    .on_connection = on_connection,
    .on_sweep = on_sweep,
    .on_deadline = on_deadline,
};

static int nonempty(const char *s) { return s && s[0]; }

static void tls_files(const sl_config_t *cfg, const char **cert, const char **key)
{
    const sl_rtsp_config_t *rc = sl_rtsp_cfg(cfg);
    int own = nonempty(rc->tls_cert) || nonempty(rc->tls_key);
    *cert = own ? rc->tls_cert : sl_config_str(cfg, "http.tls_cert");
    *key = own ? rc->tls_key : sl_config_str(cfg, "http.tls_key");
    if (!*cert)
        *cert = "";
    if (!*key)
        *key = "";
}

int sl_rtsp_server_tls_enabled(const sl_config_t *cfg)
{
    const char *cert, *key;
    tls_files(cfg, &cert, &key);
    return sl_rtsp_cfg(cfg)->tls_port != 0 && (cert[0] || key[0]);
}

static int tls_ctx_new(const sl_config_t *cfg, sl_tls_ctx_t **out, char *err, size_t err_cap)
{
    *out = NULL;
    err[0] = '\0';
    if (!sl_rtsp_server_tls_enabled(cfg))
        return 0;
    const char *cert, *key;
    tls_files(cfg, &cert, &key);
    if (!cert[0] || !key[0]) {
        snprintf(err, err_cap, "RTSPS needs both a certificate and a key");
        return SL_EINVAL;
    }
    int rc = sl_tls_ctx_new_server(cert, key, NULL, out, err, err_cap);
    if (!rc)
        sl_tls_ctx_no_tickets(*out);
    return rc;
}

int sl_rtsp_server_tls_check(const sl_config_t *cfg, char *err, size_t err_cap)
{
    sl_tls_ctx_t *ctx = NULL;
    int rc = tls_ctx_new(cfg, &ctx, err, err_cap);
    sl_tls_ctx_free(ctx);
    return rc;
}

int sl_rtsp_server_start(sl_core_t *core, sl_rtsp_server_t **out)
{
    *out = NULL;
    const sl_config_t *cfg = core->cfg;
    const sl_rtsp_config_t *rc = sl_rtsp_cfg(cfg);
    rtsp_server_t *srv = sl_calloc(1, sizeof *srv);
    if (!srv)
        return SL_ENOMEM;
    srv->core = core;
    sl_list_init(&srv->conns);
    srv->udp_next = (int)(rc->udp_port_min + 1) & ~1;
    char err[512];
    sl_tls_ctx_t *ctx = NULL;
    int r = tls_ctx_new(cfg, &ctx, err, sizeof err);
    if (r) {
        SL_LOGE(NULL, "rtsps: %s", err[0] ? err : sl_strerror(r));
        sl_free(srv);
        return r;
    }
    const sl_listener_config_t lc = {
        .name = "rtsp", .tls_name = "rtsps",
        .bind = rc->bind, .port = rc->port,
        .tls_bind = nonempty(rc->tls_bind) ? rc->tls_bind : rc->bind, .tls_port = rc->tls_port,
        .tls_ctx = ctx,
        .sweep_ms = SWEEP_MS,
        .stop_timeout_ms = (uint64_t)cfg->server_shutdown_timeout_ms,
    };
    r = sl_listener_start(&srv->net, core->loop, &lc, &listener_ops, srv);
    if (r) {
        sl_free(srv);
        return r;
    }
    *out = srv;
    return 0;
}

int sl_rtsp_server_port(const sl_rtsp_server_t *s, int is_tls)
{
    return s ? sl_listener_port(&s->net, is_tls) : -1;
}

void sl_rtsp_server_stop(sl_rtsp_server_t *s)
{
    rtsp_server_t *srv = s;
    if (srv->stopping)
        return;
    srv->stopping = 1;
    sl_listener_stop(&srv->net);
    /* Always the first: closing a publisher unpublishes its stream, which
     * closes that stream's RTSP players, and one of them may be the next
     * node a saved-next iteration would step onto (unlinked, self-linked:
     * the loop never ended and shutdown hung). Each close unlinks its conn. */
    while (!sl_list_empty(&srv->conns))
        rtsp_conn_close(sl_container_of(srv->conns.next, rtsp_conn_t, link), "server shutting down");
    maybe_finish_stop(srv);
}

void sl_rtsp_server_free(sl_rtsp_server_t *s)
{
    if (!s)
        return;
    rtsp_server_t *srv = s;
    sl_listener_cleanup(&srv->net);
    sl_free(srv);
}
