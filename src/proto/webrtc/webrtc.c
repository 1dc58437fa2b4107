/*
 * WebRTC's line in the protocol table (proto/proto.h), and the shared
 * transport: one UDP socket for every session, ICE-TCP on the same port
 * number, the demultiplexer and the tick (see webrtc_internal.h).
 *
 * Demultiplexing (RFC 7983 by the first byte): a STUN binding request is
 * matched to its session by the ICE username (our ufrag before the colon)
 * and checked with the session's password; a valid one binds the sender's
 * address to the session. Every other datagram (DTLS, SRTP, SRTCP) is
 * matched by its source address only: a packet from an address no
 * session has proven is dropped before any parser sees it, so an
 * unauthenticated peer can make us do one map lookup per datagram and
 * nothing else.
 *
 * libuv reads the socket at most 32 datagrams per loop iteration, so a loop
 * that falls behind (a starved CPU, hundreds of viewers to feed) left ICE
 * checks queued in the kernel for minutes; and timers run before I/O in an
 * iteration, so the tick saw checks the peers did send as missing and
 * closed healthy sessions by the hundred ("ICE consent expired"; issue 14,
 * docs/performance.md "WebRTC"). So the tick first reads the socket itself
 * (up to WRTC_TICK_READ_MAX datagrams, through the same handler), and
 * silence deadlines are measured up to the last time the socket was read
 * empty (udp_clear_ms), never past it.
 */
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <sys/socket.h>

#include "app/listeners.h"
#include "app/services.h"
#include "base/alloc.h"
#include "base/log.h"
#include "net/dtls.h"
#include "net/sctp.h"
#include "proto/proto.h"
#include "proto/webrtc/stun.h"
#include "proto/webrtc/webrtc.h"
#include "proto/webrtc/webrtc_internal.h"
#include "sluice/errors.h"

/* ---- the per-stream registry ---- */

wrtc_stream_t *wrtc_stream_get(wrtc_t *w, const char *path)
{
    wrtc_stream_t *ws = sl_map_get(&w->streams, path);
    if (ws)
        return ws;
    ws = sl_calloc(1, sizeof(*ws));
    if (!ws)
        return NULL;
    ws->w = w;
    snprintf(ws->path, sizeof ws->path, "%s", path);
    sl_list_init(&ws->viewers);
    if (sl_map_set(&w->streams, ws->path, ws)) {
        sl_free(ws);
        return NULL;
    }
    return ws;
}

void wrtc_stream_release(wrtc_stream_t *ws)
{
    if (!ws || ws->n_viewers || ws->publisher || ws->tap_on || ws->to_opus)
        return;
    sl_map_del(&ws->w->streams, ws->path);
    sl_free(ws);
}

/* ---- sending ---- */

static void tcp_write_done(uv_write_t *req, int status)
{
    (void)status;
    sl_free(req);
}

int wrtc_send(wrtc_pc_t *pc, const uint8_t *p, size_t len)
{
    wrtc_t *w = pc->w;
    if (!pc->have_addr || len > 0xFFFF)
        return 0;
    if (pc->tcp) {
        /* RFC 6544: a 16-bit length, then the packet. The write queue is
         * bounded by dropping when the kernel buffer is full: media over
         * TCP must not pile up in our memory. */
        wrtc_tcp_t *t = pc->tcp;
        if (t->closing)
            return 0;
        if (uv_stream_get_write_queue_size((uv_stream_t *)&t->h) > 512 * 1024)
            return 0;
        uv_write_t *req = sl_malloc(sizeof(*req) + 2 + len);
        if (!req)
            return SL_ENOMEM;
        uint8_t *frame = (uint8_t *)(req + 1);
        frame[0] = (uint8_t)(len >> 8);
        frame[1] = (uint8_t)len;
        memcpy(frame + 2, p, len);
        uv_buf_t b = uv_buf_init((char *)frame, (unsigned)(len + 2));
        if (uv_write(req, (uv_stream_t *)&t->h, &b, 1, tcp_write_done))
            sl_free(req);
        pc->sess.bytes_out += len + 2;
        return 0;
    }
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
    int rc = uv_udp_try_send(&w->udp, &b, 1, (const struct sockaddr *)&pc->addr);
    if (rc >= 0) {
        pc->sess.bytes_out += len;
        return 0;
    }
    /* The socket's send buffer (or the device queue) is full: the pacer
     * keeps the packet and tries again; other callers drop it. */
    return rc == UV_EAGAIN || rc == UV_ENOBUFS ? SL_EAGAIN : rc;
}

/* ---- the pacing timer ---- */

static void on_pace(uv_timer_t *h)
{
    wrtc_t *w = h->data;
    if (!wrtc_view_pace(w, uv_now(w->core->loop)) && w->pace_running) {
        w->pace_running = 0;
        uv_timer_stop(&w->pace_timer);
    }
}

void wrtc_pace_arm(wrtc_t *w)
{
    if (!w->pace_open || w->pace_running || w->stopping)
        return;
    w->pace_running = 1;
    uv_timer_start(&w->pace_timer, on_pace, WRTC_PACE_MS, WRTC_PACE_MS);
}

/* ---- closing ---- */

void wrtc_pc_close(wrtc_pc_t *pc, const char *reason)
{
    if (pc->closing)
        return;
    pc->closing = 1;
    snprintf(pc->close_reason, sizeof pc->close_reason, "%s", reason ? reason : "closed");
}

wrtc_pc_t *wrtc_find(wrtc_t *w, const char *id)
{
    wrtc_pc_t *pc = sl_map_get(&w->by_resource, id);
    return pc && !pc->closing ? pc : NULL;
}

/* ---- UDP ---- */

static uint8_t g_udp_slab[65536]; /* one datagram at a time: the loop is single-threaded */

static void udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init((char *)g_udp_slab, sizeof g_udp_slab);
}

static void addr_key(char *out, size_t cap, const struct sockaddr *sa)
{
    char ip[64] = "";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        uv_ip4_name(in, ip, sizeof ip);
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(in6, ip, sizeof ip);
        port = ntohs(in6->sin6_port);
    }
    snprintf(out, cap, "udp|%s|%d", ip, port);
}

void wrtc__addr_key(char *out, size_t cap, const struct sockaddr *sa)
{
    addr_key(out, cap, sa);
}

/* One datagram read from the shared socket (by libuv or by the tick). */
static void udp_datagram(wrtc_t *w, const uint8_t *p, size_t len, const struct sockaddr *from)
{
    if (len > WRTC_MAX_DATAGRAM) {
        w->c.datagrams_unknown++;
        return;
    }
    sl_pkt_kind_t kind = sl_webrtc_classify(p, len);
    if (kind == SL_PKT_STUN) {
        wrtc_pc_on_stun(w, p, len, from, NULL);
        return;
    }
    char key[80];
    addr_key(key, sizeof key, from);
    wrtc_pc_t *pc = sl_map_get(&w->by_addr, key);
    if (!pc || pc->closing || pc->tcp) {
        w->c.datagrams_unknown++;
        return;
    }
    pc->sess.bytes_in += len;
    wrtc_pc_on_packet(pc, p, len);
}

static void on_udp(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                   unsigned flags)
{
    wrtc_t *w = h->data;
    if (n == 0 && !from) {
        w->udp_clear_ms = uv_now(w->core->loop); /* EAGAIN: everything queued has been read */
        return;
    }
    if (n <= 0 || !from || (flags & UV_UDP_PARTIAL))
        return;
    udp_datagram(w, (const uint8_t *)buf->base, (size_t)n, from);
}

/* ---- ICE-TCP ---- */

static void tcp_closed(uv_handle_t *h)
{
    wrtc_tcp_t *t = h->data;
    wrtc_t *w = t->w;
    sl_free(t->rbuf);
    sl_free(t);
    w->handles_open--;
}

static void tcp_close(wrtc_tcp_t *t)
{
    if (t->closing)
        return;
    t->closing = 1;
    if (!t->pc)
        t->w->n_tcp_unbound--;
    if (t->pc && t->pc->tcp == t) {
        wrtc_pc_close(t->pc, "ICE-TCP connection closed");
        t->pc->tcp = NULL;
        t->pc->have_addr = 0;
    }
    sl_list_remove(&t->link);
    uv_close((uv_handle_t *)&t->h, tcp_closed);
}

void wrtc__tcp_close_bound(wrtc_tcp_t *t)
{
    tcp_close(t);
}

static void tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static uint8_t slab[16384];
    (void)h;
    (void)suggested;
    *buf = uv_buf_init((char *)slab, sizeof slab);
}

static void tcp_packet(wrtc_tcp_t *t, const uint8_t *p, size_t len)
{
    wrtc_t *w = t->w;
    sl_pkt_kind_t kind = sl_webrtc_classify(p, len);
    if (kind == SL_PKT_STUN) {
        struct sockaddr_storage peer;
        int plen = sizeof peer;
        memset(&peer, 0, sizeof peer);
        uv_tcp_getpeername(&t->h, (struct sockaddr *)&peer, &plen);
        wrtc_pc_on_stun(w, p, len, (const struct sockaddr *)&peer, t);
        return;
    }
    wrtc_pc_t *pc = t->pc;
    if (!pc || pc->closing || pc->tcp != t) {
        w->c.datagrams_unknown++;
        return;
    }
    pc->sess.bytes_in += len + 2;
    wrtc_pc_on_packet(pc, p, len);
}

static void on_tcp_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    wrtc_tcp_t *t = s->data;
    if (n < 0) {
        tcp_close(t);
        return;
    }
    const uint8_t *p = (const uint8_t *)buf->base;
    size_t len = (size_t)n;
    /* RFC 6544 framing: accumulate into rbuf (bounded by one packet). */
    while (len && !t->closing) {
        size_t need = 2;
        if (t->rlen >= 2)
            need = 2 + ((size_t)t->rbuf[0] << 8 | t->rbuf[1]);
        if (t->rlen >= 2 && need > WRTC_TCP_MAX_PACKET + 2) {
            tcp_close(t);
            return;
        }
        size_t take = need - t->rlen;
        if (take > len)
            take = len;
        memcpy(t->rbuf + t->rlen, p, take);
        t->rlen += take;
        p += take;
        len -= take;
        if (t->rlen >= 2 && t->rlen == 2 + ((size_t)t->rbuf[0] << 8 | t->rbuf[1])) {
            size_t plen = t->rlen - 2;
            t->rlen = 0;
            if (plen)
                tcp_packet(t, t->rbuf + 2, plen);
        }
    }
}

static void on_tcp_connection(uv_stream_t *server, int status)
{
    wrtc_t *w = server->data;
    if (status < 0)
        return;
    wrtc_tcp_t *t = sl_calloc(1, sizeof(*t));
    uint8_t *rbuf = sl_malloc(WRTC_TCP_MAX_PACKET + 2);
    if (!t || !rbuf || w->stopping || w->n_tcp_unbound >= WRTC_TCP_PENDING_MAX) {
        /* Accept and close at once: a waiting connection must not stay in the backlog. */
        uv_tcp_t *tmp = sl_malloc(sizeof(*tmp));
        sl_free(t);
        sl_free(rbuf);
        if (tmp && uv_tcp_init(w->core->loop, tmp) == 0) {
            uv_accept(server, (uv_stream_t *)tmp);
            uv_close((uv_handle_t *)tmp, (uv_close_cb)sl_free);
        } else {
            sl_free(tmp);
        }
        return;
    }
    t->w = w;
    t->rbuf = rbuf;
    uv_tcp_init(w->core->loop, &t->h);
    t->h.data = t;
    w->handles_open++;
    if (uv_accept(server, (uv_stream_t *)&t->h)) {
        t->closing = 1;
        uv_close((uv_handle_t *)&t->h, tcp_closed);
        return;
    }
    uv_tcp_nodelay(&t->h, 1);
    t->opened_ms = uv_now(w->core->loop);
    sl_list_push_back(&w->tcps, &t->link);
    w->n_tcp_unbound++;
    uv_read_start((uv_stream_t *)&t->h, tcp_alloc, on_tcp_read);
}

/* ---- the tick ---- */

/* Reads what the UDP socket holds, up to WRTC_TICK_READ_MAX datagrams (see
 * the top of the file), noting when it was read empty; warns, at most every
 * 10 s, while it has not been for more than a second. */
static void udp_drain(wrtc_t *w, uint64_t now)
{
    uv_os_fd_t fd;
    if (!w->udp_open || w->stopping || uv_fileno((uv_handle_t *)&w->udp, &fd)) {
        w->udp_clear_ms = now;
        return;
    }
    for (int i = 0; i < WRTC_TICK_READ_MAX; i++) {
        struct sockaddr_storage from;
        socklen_t flen = sizeof from;
        ssize_t n = recvfrom(fd, g_udp_slab, sizeof g_udp_slab, MSG_DONTWAIT | MSG_TRUNC,
                             (struct sockaddr *)&from, &flen);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                w->udp_clear_ms = now;
            break;
        }
        if (n > 0 && flen > 0)
            udp_datagram(w, g_udp_slab, (size_t)n, (const struct sockaddr *)&from);
    }
    if (now - w->udp_clear_ms > 1000 && now - w->udp_behind_log_ms >= 10000) {
        w->udp_behind_log_ms = now;
        SL_LOGW(NULL, "webrtc: the UDP socket has not been read empty for %llu ms: the loop is behind "
                "(CPU); setup and consent deadlines wait for it",
                (unsigned long long)(now - w->udp_clear_ms));
    }
}

uint64_t wrtc_heard_until_ms(const wrtc_pc_t *pc, uint64_t now_ms)
{
    uint64_t clear = pc->w->udp_clear_ms;
    if (pc->tcp || clear > now_ms)
        return now_ms;
    /* A socket that is never read empty (a flood, an overload that lasts)
     * delays deadlines by WRTC_BACKLOG_GRACE_MS at most: sessions of vanished
     * peers still end. */
    if (now_ms - clear > WRTC_BACKLOG_GRACE_MS)
        return now_ms - WRTC_BACKLOG_GRACE_MS;
    return clear;
}

static void on_tick(uv_timer_t *h)
{
    wrtc_t *w = h->data;
    uint64_t now = uv_now(w->core->loop);
    /* usrsctp compares its timers with the wall clock: hand it the real time that passed. */
    sl_sctp_tick((uint32_t)(w->last_tick_ms ? now - w->last_tick_ms : WRTC_TICK_MS));
    w->last_tick_ms = now;
    udp_drain(w, now);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &w->pcs) {
        wrtc_pc_t *pc = sl_container_of(it, wrtc_pc_t, link);
        if (!pc->closing)
            wrtc_pc_tick(pc, now);
        wrtc_stats_sample(pc, now);
        if (pc->closing)
            wrtc_pc_free(pc);
    }
    /* ICE-TCP connections that never proved a session: 10 s. */
    sl_list_foreach_safe(it, nx, &w->tcps) {
        wrtc_tcp_t *t = sl_container_of(it, wrtc_tcp_t, link);
        if (!t->pc && now - t->opened_ms > 10000)
            tcp_close(t);
    }
}

/* ---- candidates ---- */

static void add_cand(wrtc_t *w, const char *ip)
{
    if (w->n_cands >= (int)(sizeof w->cands / sizeof w->cands[0]))
        return;
    for (int i = 0; i < w->n_cands; i++)
        if (strcmp(w->cands[i], ip) == 0)
            return;
    /* NAT 1:1: "private=public,..." */
    const char *map = sl_webrtc_cfg(w->core->cfg)->nat_1to1;
    char mapped[64];
    snprintf(mapped, sizeof mapped, "%s", ip);
    for (const char *m = map; m && *m;) {
        const char *end = strchr(m, ',');
        size_t n = end ? (size_t)(end - m) : strlen(m);
        const char *eq = memchr(m, '=', n);
        if (eq && (size_t)(eq - m) == strlen(ip) && strncmp(m, ip, strlen(ip)) == 0) {
            snprintf(mapped, sizeof mapped, "%.*s", (int)(n - (size_t)(eq - m) - 1), eq + 1);
            break;
        }
        m = end ? end + 1 : NULL;
    }
    snprintf(w->cands[w->n_cands++], sizeof w->cands[0], "%s", mapped);
}

static void gather_candidates(wrtc_t *w)
{
    const sl_webrtc_config_t *wc = sl_webrtc_cfg(w->core->cfg);
    w->n_cands = 0;
    if (wc->candidates && wc->candidates[0]) {
        for (const char *m = wc->candidates; *m;) {
            while (*m == ' ' || *m == ',')
                m++;
            size_t n = strcspn(m, ", ");
            if (!n)
                break;
            char ip[64];
            snprintf(ip, sizeof ip, "%.*s", (int)n, m);
            add_cand(w, ip);
            m += n;
        }
        return;
    }
    if (strcmp(wc->bind, "0.0.0.0") != 0 && strcmp(wc->bind, "::") != 0) {
        add_cand(w, wc->bind);
        return;
    }
    uv_interface_address_t *ifs = NULL;
    int n = 0;
    if (uv_interface_addresses(&ifs, &n) == 0) {
        /* Non-loopback IPv4 first, then loopback: a browser on this machine still connects. */
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < n; i++) {
                if (ifs[i].address.address4.sin_family != AF_INET || ifs[i].is_internal != pass)
                    continue;
                char ip[64];
                uv_ip4_name(&ifs[i].address.address4, ip, sizeof ip);
                add_cand(w, ip);
            }
        uv_free_interface_addresses(ifs, n);
    }
    if (!w->n_cands)
        add_cand(w, "127.0.0.1");
}

/* ---- the protocol entry ---- */

static int webrtc_enabled(const sl_config_t *cfg)
{
    return sl_webrtc_cfg(cfg)->enabled;
}

static int webrtc_start(sl_core_t *core, void **state)
{
    const sl_webrtc_config_t *wc = sl_webrtc_cfg(core->cfg);
    wrtc_t *w = sl_calloc(1, sizeof(*w));
    if (!w)
        return SL_ENOMEM;
    w->core = core;
    sl_list_init(&w->pcs);
    sl_list_init(&w->pacing);
    sl_list_init(&w->tcps);
    sl_map_init(&w->by_ufrag);
    sl_map_init(&w->by_addr);
    sl_map_init(&w->by_id);
    sl_map_init(&w->by_resource);
    sl_map_init(&w->streams);
    sl_map_init(&w->per_addr);
    *state = w;
    int rc = sl_dtls_ctx_new(&w->dtls_ctx);
    if (rc) {
        SL_LOGE(NULL, "webrtc: cannot make the DTLS certificate: %s", sl_strerror(rc));
        return rc;
    }
    if ((rc = sl_sctp_global_init())) {
        SL_LOGE(NULL, "webrtc: SCTP (usrsctp) did not start: %s", sl_strerror(rc));
        return rc;
    }
    w->sctp_started = 1;
    struct sockaddr_storage sa;
    if (uv_ip4_addr(wc->bind, (int)wc->port, (struct sockaddr_in *)&sa) &&
        uv_ip6_addr(wc->bind, (int)wc->port, (struct sockaddr_in6 *)&sa)) {
        SL_LOGE(NULL, "webrtc: bad bind address '%s'", wc->bind);
        return SL_EINVAL;
    }
    uv_udp_init(core->loop, &w->udp);
    w->udp.data = w;
    w->udp_open = 1;
    w->handles_open++;
    rc = uv_udp_bind(&w->udp, (const struct sockaddr *)&sa, 0);
    if (rc == 0) {
        /* Deep kernel buffers: media arrives in bursts (a keyframe is 50+ packets). */
        int sz = 4 * 1024 * 1024;
        uv_recv_buffer_size((uv_handle_t *)&w->udp, &sz);
        sz = 4 * 1024 * 1024;
        uv_send_buffer_size((uv_handle_t *)&w->udp, &sz);
        rc = uv_udp_recv_start(&w->udp, udp_alloc, on_udp);
    }
    if (rc) {
        SL_LOGE(NULL, "webrtc: cannot bind UDP %s:%lld: %s", wc->bind, (long long)wc->port,
                uv_strerror(rc));
        return rc;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_udp_getsockname(&w->udp, (struct sockaddr *)&bound, &blen);
    w->udp_port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    if (wc->tcp) {
        uv_tcp_init(core->loop, &w->tcp);
        w->tcp.data = w;
        w->tcp_open = 1;
        w->handles_open++;
        ((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)w->udp_port);
        if (sa.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)w->udp_port);
        rc = uv_tcp_bind(&w->tcp, (const struct sockaddr *)&sa, 0);
        if (!rc)
            rc = uv_listen((uv_stream_t *)&w->tcp, 128, on_tcp_connection);
        if (rc) {
            SL_LOGE(NULL, "webrtc: cannot listen on TCP %s:%d (ICE-TCP): %s", wc->bind, w->udp_port,
                    uv_strerror(rc));
            return rc;
        }
    }
    gather_candidates(w);
    uv_timer_init(core->loop, &w->tick);
    w->tick.data = w;
    w->tick_open = 1;
    w->handles_open++;
    uv_timer_start(&w->tick, on_tick, WRTC_TICK_MS, WRTC_TICK_MS);
    uv_timer_init(core->loop, &w->pace_timer);
    w->pace_timer.data = w;
    w->pace_open = 1;
    w->handles_open++;
    if ((rc = wrtc_signal_start(w)))
        return rc;
    if ((rc = wrtc_ws_start(w)))
        return rc;
    if ((rc = wrtc_stats_register(w)))
        return rc;
    if ((rc = sl_listeners_announce(core, "webrtc", wc->bind, w->udp_port, 0, 1)))
        return rc;
    if (wc->tcp && (rc = sl_listeners_announce(core, "webrtc-tcp", wc->bind, w->udp_port, 0, 0)))
        return rc;
    SL_LOGI(NULL, "webrtc media on udp%s %s:%d (WHIP/WHEP at /{app}/whip|whep/endpoint/{stream}; "
            "candidates %s%s)", wc->tcp ? "+tcp" : "", wc->bind, w->udp_port, w->cands[0],
            w->n_cands > 1 ? " ..." : "");
    return 0;
}

static void handle_closed(uv_handle_t *h)
{
    wrtc_t *w = h->data;
    w->handles_open--;
}

static void webrtc_stop(void *state)
{
    wrtc_t *w = state;
    if (!w || w->stopping)
        return;
    w->stopping = 1;
    wrtc_stats_unregister(w);
    wrtc_signal_stop(w);
    wrtc_ws_stop(w);
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &w->pcs) {
        wrtc_pc_t *pc = sl_container_of(it, wrtc_pc_t, link);
        wrtc_pc_close(pc, "server shutdown");
        wrtc_pc_free(pc);
    }
    sl_list_foreach_safe(it, nx, &w->tcps) {
        tcp_close(sl_container_of(it, wrtc_tcp_t, link));
    }
    wrtc_wout_stop(w); /* after every viewer detached: the workers close their descriptors */
    if (w->tick_open) {
        w->tick_open = 0;
        uv_timer_stop(&w->tick);
        uv_close((uv_handle_t *)&w->tick, handle_closed);
    }
    if (w->pace_open) {
        w->pace_open = 0;
        w->pace_running = 0;
        uv_timer_stop(&w->pace_timer);
        uv_close((uv_handle_t *)&w->pace_timer, handle_closed);
    }
    if (w->udp_open) {
        w->udp_open = 0;
        uv_udp_recv_stop(&w->udp);
        uv_close((uv_handle_t *)&w->udp, handle_closed);
    }
    if (w->tcp_open) {
        w->tcp_open = 0;
        uv_close((uv_handle_t *)&w->tcp, handle_closed);
    }
}

static void webrtc_free(void *state)
{
    wrtc_t *w = state;
    if (!w)
        return;
    if (!w->stopping) {
        /* A failed start: close what was opened, and let the loop finish the closes. */
        webrtc_stop(w);
        while (w->handles_open > 0 && uv_run(w->core->loop, UV_RUN_ONCE))
            ;
    }
    size_t pos = 0;
    sl_map_entry_t *e;
    while ((e = sl_map_next(&w->streams, &pos)))
        sl_free(e->val);
    sl_map_cleanup(&w->streams);
    sl_map_cleanup(&w->by_ufrag);
    sl_map_cleanup(&w->by_addr);
    sl_map_cleanup(&w->by_id);
    sl_map_cleanup(&w->by_resource);
    sl_map_cleanup(&w->per_addr);
    sl_dtls_ctx_free(w->dtls_ctx);
    if (w->sctp_started)
        sl_sctp_global_cleanup();
    sl_free(w);
}

const sl_proto_t sl_webrtc_proto = {
    .name = "webrtc",
    .enabled = webrtc_enabled,
    .check = NULL,
    .start = webrtc_start,
    .stop = webrtc_stop,
    .free = webrtc_free,
};
