/*
 * WHEP viewers' send side on a worker loop (server.workers > 1; issue 20,
 * docs/internals/threads.md "WHEP viewers"). The per-packet per-viewer work
 * that dominates WebRTC fan-out is SRTP protection (AES per packet) and the
 * send system calls; both move to the viewer's worker. Everything else stays
 * on the main loop: packetization (shared per frame, media/rtp.h), the
 * pacer and the congestion estimate, the NACK history, sequence numbers,
 * the counters and the sender reports built from them, RTCP input (the main
 * loop unprotects it with the inbound half of the SRTP session), DTLS, SCTP,
 * ICE consent and signalling.
 *
 * At play (wrtc_wout_attach) a UDP viewer gets the least loaded loop. On a
 * worker, the SRTP session is split (net/srtp.h, sl_srtp_split_tx): the
 * outbound half moves into a wrtc_wout_t that the worker owns from then on.
 * Each time the pacer lets packets leave, the main loop appends them to a
 * batch (the 12-20 byte RTP header it wrote, and a reference to the shared
 * payload buffer: no copy); before the main loop polls again (a
 * uv_prepare), the batches gathered leave as one message per worker, so a
 * frame fanned out to a thousand viewers costs one wakeup per worker. The worker copies header and payload into a datagram,
 * protects it, and sends the batch with sendmmsg on its duplicate of the
 * shared UDP socket's descriptor (UDP sends from several threads on one
 * socket are safe; libuv handles are not, so no uv_udp_* call is made off
 * the main loop). RTCP the main loop sends to such a viewer (sender
 * reports) goes the same way, since only the outbound half may protect it;
 * a NACKed packet leaves through the pacer like any other, so it is
 * protected by the same session.
 *
 * Ordering does the rest: every message to a worker comes from the main
 * thread, and a worker runs its inbox in order, so the detach posted at
 * stop runs after the viewer's last batch, and the descriptor's close
 * (wrtc_wout_stop) after every viewer's detach. A socket the worker finds
 * full (EAGAIN/ENOBUFS) drops the rest of that batch (counted; the viewer
 * NACKs what it misses): on the main loop the pacer kept and retried such
 * packets, which would need an answer per batch. A batch the inbox refuses
 * is dropped alike. ICE-TCP viewers stay on the main loop.
 */
#define _GNU_SOURCE /* sendmmsg */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/log.h"
#include "net/srtp.h"
#include "net/workers.h"
#include "proto/webrtc/webrtc_internal.h"
#include "sluice/errors.h"

#define WOUT_BATCH_MAX 128   /* packets per batch message */
#define WOUT_MMSG 32         /* datagrams per sendmmsg */
#define WOUT_RAW_MAX 256     /* RTCP copied into a batch entry */

/* The worker-owned send side of one viewer. */
struct wrtc_wout {
    struct sl_srtp *tx;      /* the outbound half of the viewer's SRTP session */
    int fd;                  /* the worker's duplicate of the UDP socket (wrtc_t.wout_fd) */
    wrtc_t *w;               /* for the atomic counters only */
};

/* One packet of a batch: a header and a payload slice, or an RTCP packet. */
typedef struct wout_pkt {
    sl_buf_t *buf;           /* payload buffer (reference), NULL for RTCP */
    uint32_t off;
    uint16_t len;            /* payload bytes (RTP) or packet bytes (RTCP, in raw) */
    uint8_t hl;              /* RTP header bytes in hdr */
    uint8_t rtcp;
    uint8_t hdr[20];
} wout_pkt_t;

struct wrtc_wbatch {
    struct wrtc_wbatch *next;    /* the next batch of the same message */
    struct wrtc_wout *o;
    struct sockaddr_storage addr;
    socklen_t alen;
    uint32_t n;
    wout_pkt_t p[WOUT_BATCH_MAX];
};

/* An RTCP packet's bytes travel in a small buffer of their own. */
static sl_buf_t *raw_buf(const uint8_t *p, size_t len) { return sl_buf_from(p, len); }

static void batch_free(struct wrtc_wbatch *b)
{
    for (uint32_t i = 0; i < b->n; i++)
        sl_buf_unref(b->p[i].buf);
    sl_free(b);
}

/* ---- on the worker ---- */

typedef struct wout_tls {
    uint8_t pkt[WOUT_MMSG][WRTC_MAX_DATAGRAM + WRTC_SRTP_ROOM + WOUT_RAW_MAX];
    struct mmsghdr msg[WOUT_MMSG];
    struct iovec iov[WOUT_MMSG];
} wout_tls_t;

static _Thread_local wout_tls_t *g_tls;

/* Sends n prepared datagrams; what the socket refuses is dropped and counted. */
static void send_n(struct wrtc_wout *o, wout_tls_t *t, unsigned n)
{
    unsigned done = 0;
    while (done < n) {
        int r = sendmmsg(o->fd, t->msg + done, n - done, MSG_DONTWAIT);
        if (r > 0) {
            done += (unsigned)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
            atomic_fetch_add_explicit(&o->w->wout_drops, n - done, memory_order_relaxed);
            return;
        }
        /* Another error concerns the first datagram only: skip it. */
        atomic_fetch_add_explicit(&o->w->wout_drops, 1, memory_order_relaxed);
        done++;
    }
}

/* One batch on the viewer's worker: protect every packet and send them. */
static void run_batch(struct wrtc_wbatch *b)
{
    struct wrtc_wout *o = b->o;
    if (!g_tls)
        g_tls = sl_calloc(1, sizeof(*g_tls));
    wout_tls_t *t = g_tls;
    if (!t) {
        atomic_fetch_add_explicit(&o->w->wout_drops, b->n, memory_order_relaxed);
        batch_free(b);
        return;
    }
    unsigned k = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        wout_pkt_t *e = &b->p[i];
        uint8_t *pkt = t->pkt[k];
        size_t cap = sizeof t->pkt[k], n;
        int rc;
        if (e->rtcp) {
            memcpy(pkt, e->buf->data, e->len);
            n = e->len;
            rc = sl_srtp_protect_rtcp(o->tx, pkt, &n, cap);
        } else {
            memcpy(pkt, e->hdr, e->hl);
            memcpy(pkt + e->hl, e->buf->data + e->off, e->len);
            n = (size_t)e->hl + e->len;
            rc = sl_srtp_protect(o->tx, pkt, &n, cap);
        }
        if (rc) {
            atomic_fetch_add_explicit(&o->w->wout_drops, 1, memory_order_relaxed);
            continue;
        }
        t->iov[k] = (struct iovec){.iov_base = pkt, .iov_len = n};
        t->msg[k] = (struct mmsghdr){.msg_hdr = {.msg_name = &b->addr, .msg_namelen = b->alen,
                                                 .msg_iov = &t->iov[k], .msg_iovlen = 1}};
        if (++k == WOUT_MMSG) {
            send_n(o, t, k);
            k = 0;
        }
    }
    if (k)
        send_n(o, t, k);
    batch_free(b);
}

/* A message: the batches one loop iteration gathered for this worker (any viewers). */
static void wout_batch_fn(sl_worker_t *wk, void *obj, uint64_t u)
{
    (void)wk;
    (void)u;
    for (struct wrtc_wbatch *b = obj, *nx; b; b = nx) {
        nx = b->next;
        run_batch(b);
    }
}

/* The viewer stopped: its last batch has run (inbox order). */
static void wout_detach_fn(sl_worker_t *wk, void *obj, uint64_t u)
{
    (void)wk;
    (void)u;
    struct wrtc_wout *o = obj;
    sl_srtp_free(o->tx);
    sl_free(o);
}

/* The protocol stops: every viewer of this worker has detached before, so
 * this is WebRTC's last message to it; its datagram buffers go too. */
static void wout_close_fd_fn(sl_worker_t *wk, void *obj, uint64_t u)
{
    (void)wk;
    (void)obj;
    close((int)u);
    sl_free(g_tls);
    g_tls = NULL;
}

/* ---- on the main loop ---- */

static void on_wout_prep(uv_prepare_t *h);

/*
 * Posts to wk, waiting out a full inbox (a close must not be lost: the
 * worker drains its inbox without us, so room comes). SL_EAGAIN only when
 * the worker is stopping.
 */
static int post_sure(sl_worker_t *wk, sl_worker_fn fn, void *obj, uint64_t u)
{
    for (int i = 0; i < 10000; i++) {
        if (sl_worker_post(wk, fn, obj, u) == 0)
            return 0;
        uv_sleep(1);
    }
    return SL_EAGAIN;
}

/*
 * A viewer's weight in the loops' load gauges (sl_workers_least_loaded), in
 * units of an RTMP player (1): a WHEP viewer costs about six per delivered
 * byte (docs/performance.md: ~1.3-1.5 s/Gbit against RTMP's ~0.2). One on a
 * worker still leaves its pacer, estimator, NACK history and packet loop on
 * the main loop, measured at about a third of a local viewer's cost
 * ("WHEP viewers on two loops"): 4 units there, 2 on the main loop. Equal
 * viewer counts per loop left the main loop the limit; this balances CPU.
 */
#define VIEW_UNITS_LOCAL 6
#define VIEW_UNITS_WORKER 4
#define VIEW_UNITS_MAIN_SHARE 2

static void view_load(wrtc_pc_t *v, int sign)
{
    sl_workers_t *ws = v->w->core->workers;
    /* sl_worker_players_add counted 1 where the viewer's writes run. */
    if (sl_worker_index(v->worker) == 0) {
        sl_worker_load_add(v->worker, sign * (VIEW_UNITS_LOCAL - 1));
        return;
    }
    sl_worker_load_add(v->worker, sign * (VIEW_UNITS_WORKER - 1));
    sl_worker_load_add(sl_workers_get(ws, 0), sign * VIEW_UNITS_MAIN_SHARE);
}

/* See webrtc_internal.h. */
int wrtc_wout_attach(wrtc_pc_t *v)
{
    wrtc_t *w = v->w;
    sl_workers_t *ws = w->core->workers;
    if (!ws || v->worker)
        return 0;
    /* ICE-TCP viewers stay on the main loop (their uv_tcp_t is its handle). */
    sl_worker_t *wk = v->tcp || !v->srtp ? sl_workers_get(ws, 0) : sl_workers_least_loaded(ws);
    int idx = sl_worker_index(wk);
    if (idx > 0) {
        if (!w->wout_fd[idx]) {
            int fd;
            if (uv_fileno((uv_handle_t *)&w->udp, &fd) == 0)
                fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
            else
                fd = -1;
            if (fd < 0) {
                SL_LOGW(NULL, "webrtc: cannot share the UDP socket with worker %d: viewers stay on the "
                        "main loop", idx);
                wk = sl_workers_get(ws, 0);
                idx = 0;
            } else {
                w->wout_fd[idx] = fd + 1;
            }
        }
    }
    if (idx > 0 && !w->wout_prep_open) {
        if (uv_prepare_init(w->core->loop, &w->wout_prep) == 0) {
            w->wout_prep.data = w;
            uv_prepare_start(&w->wout_prep, on_wout_prep);
            uv_unref((uv_handle_t *)&w->wout_prep); /* never keeps the loop alive */
            w->wout_prep_open = 1;
            w->handles_open++;
        } else {
            wk = sl_workers_get(ws, 0);
            idx = 0;
        }
    }
    if (idx > 0) {
        struct wrtc_wout *o = sl_calloc(1, sizeof(*o));
        if (!o)
            return SL_ENOMEM;
        if (sl_srtp_split_tx(v->srtp, &o->tx)) {
            sl_free(o);
            return SL_ENOMEM;
        }
        o->fd = w->wout_fd[idx] - 1;
        o->w = w;
        v->wout = o;
        v->wout_overhead = sl_srtp_rtp_overhead(o->tx);
    }
    v->worker = wk;
    sl_worker_players_add(wk, 1);
    view_load(v, 1);
    SL_LOGD(&v->sess.log, "webrtc viewer on loop %d", idx);
    return 0;
}

/* Posts worker idx's gathered batches as one message (dropped, counted, if refused). */
static void post_queue(wrtc_t *w, int idx)
{
    struct wrtc_wbatch *head = w->wout_q[idx];
    if (!head)
        return;
    w->wout_q[idx] = w->wout_qt[idx] = NULL;
    if (sl_worker_post(sl_workers_get(w->core->workers, idx), wout_batch_fn, head, 0) == 0)
        return;
    for (struct wrtc_wbatch *b = head, *nx; b; b = nx) {
        nx = b->next;
        atomic_fetch_add_explicit(&w->wout_drops, b->n, memory_order_relaxed);
        batch_free(b);
    }
}

/* Before each poll of the main loop (a uv_prepare: nothing gathered waits while the loop
 * blocks): what was gathered since leaves, one message (one wakeup at most) per worker,
 * instead of one per viewer and drain. */
static void on_wout_prep(uv_prepare_t *h)
{
    wrtc_t *w = h->data;
    for (int i = 1; i < SL_WORKERS_MAX; i++)
        post_queue(w, i);
}

static void wout_prep_closed(uv_handle_t *h)
{
    wrtc_t *w = h->data;
    w->handles_open--;
}

/* See webrtc_internal.h. */
void wrtc_wout_flush(wrtc_pc_t *v)
{
    struct wrtc_wbatch *b = v->wbatch;
    if (!b)
        return;
    v->wbatch = NULL;
    wrtc_t *w = v->w;
    int idx = sl_worker_index(v->worker);
    b->next = NULL;
    if (w->wout_qt[idx])
        w->wout_qt[idx]->next = b;
    else
        w->wout_q[idx] = b;
    w->wout_qt[idx] = b;
}

/* The open batch, made on demand (NULL on ENOMEM). */
static struct wrtc_wbatch *batch_of(wrtc_pc_t *v)
{
    if (v->wbatch && v->wbatch->n == WOUT_BATCH_MAX)
        wrtc_wout_flush(v);
    if (!v->wbatch) {
        struct wrtc_wbatch *b = sl_malloc(sizeof(*b));
        if (!b)
            return NULL;
        b->o = v->wout;
        b->next = NULL;
        b->n = 0;
        memcpy(&b->addr, &v->addr, sizeof b->addr);
        b->alen = v->addr.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        v->wbatch = b;
    }
    return v->wbatch;
}

/* See webrtc_internal.h. */
int wrtc_wout_rtp(wrtc_pc_t *v, const uint8_t *hdr, size_t hl, sl_buf_t *buf, uint32_t off, uint16_t len)
{
    if (hl > sizeof(((wout_pkt_t *)0)->hdr))
        return SL_ETOOBIG;
    struct wrtc_wbatch *b = batch_of(v);
    if (!b)
        return SL_ENOMEM;
    wout_pkt_t *e = &b->p[b->n++];
    e->buf = sl_buf_ref(buf);
    e->off = off;
    e->len = len;
    e->hl = (uint8_t)hl;
    e->rtcp = 0;
    memcpy(e->hdr, hdr, hl);
    return 0;
}

/* See webrtc_internal.h. */
int wrtc_wout_rtcp(wrtc_pc_t *v, const uint8_t *p, size_t len)
{
    if (len > WOUT_RAW_MAX)
        return SL_ETOOBIG;
    struct wrtc_wbatch *b = batch_of(v);
    if (!b)
        return SL_ENOMEM;
    sl_buf_t *rb = raw_buf(p, len);
    if (!rb)
        return SL_ENOMEM;
    wout_pkt_t *e = &b->p[b->n++];
    e->buf = rb;
    e->off = 0;
    e->len = (uint16_t)len;
    e->hl = 0;
    e->rtcp = 1;
    wrtc_wout_flush(v);
    return 0;
}

/* See webrtc_internal.h. */
void wrtc_wout_detach(wrtc_pc_t *v)
{
    if (!v->worker)
        return;
    sl_worker_t *wk = v->worker;
    wrtc_wout_flush(v);
    post_queue(v->w, sl_worker_index(wk)); /* its last packets leave before the detach */
    if (v->wout) {
        if (post_sure(wk, wout_detach_fn, v->wout, 0))
            SL_LOGW(&v->sess.log, "webrtc: worker %d stopping: a viewer's send state is left behind",
                    sl_worker_index(wk));
        v->wout = NULL;
    }
    sl_worker_players_add(wk, -1);
    view_load(v, -1);
    v->worker = NULL;
}

/* See webrtc_internal.h. */
void wrtc_wout_stop(wrtc_t *w)
{
    sl_workers_t *ws = w->core->workers;
    for (int i = 1; ws && i < SL_WORKERS_MAX; i++)
        post_queue(w, i);
    if (w->wout_prep_open) {
        w->wout_prep_open = 0;
        uv_prepare_stop(&w->wout_prep);
        uv_close((uv_handle_t *)&w->wout_prep, wout_prep_closed);
    }
    for (int i = 1; ws && i < SL_WORKERS_MAX; i++) {
        if (!w->wout_fd[i])
            continue;
        int fd = w->wout_fd[i] - 1;
        w->wout_fd[i] = 0;
        sl_worker_t *wk = sl_workers_get(ws, i);
        if (!wk || post_sure(wk, wout_close_fd_fn, NULL, (uint64_t)fd))
            SL_LOGW(NULL, "webrtc: worker %d gone: its UDP descriptor stays open", i);
    }
}
