/*
 * The per-receiver packet pacer (see pacer.h): two rings of payload
 * references and an interval budget. The budget fills at rate_bps / 8
 * bytes per second of the caller's clock, up to SL_PACER_BURST_MS worth
 * (at least two full packets) so that an idle period does not turn into
 * a burst; a packet may go while the budget is positive and is charged in
 * full, so the budget may dip below zero by one packet.
 */
#include "media/pacer.h"

#include <string.h>

#include "base/alloc.h"
#include "sluice/errors.h"

static int ring_init(sl_pacer_ring_t *r, uint32_t cap)
{
    r->e = sl_calloc(cap ? cap : 1, sizeof(*r->e));
    r->cap = cap ? cap : 1;
    r->head = r->n = 0;
    return r->e ? 0 : SL_ENOMEM;
}

static sl_pacer_pkt_t *ring_at(sl_pacer_ring_t *r, uint32_t i)
{
    return &r->e[(r->head + i) % r->cap];
}

/* Removes the head, releasing its reference. */
static void ring_pop(sl_pacer_t *p, sl_pacer_ring_t *r)
{
    sl_pacer_pkt_t *e = ring_at(r, 0);
    p->bytes -= e->len;
    if (e->buf)
        sl_buf_unref(e->buf);
    e->buf = NULL;
    r->head = (r->head + 1) % r->cap;
    r->n--;
}

/* Initialises both rings; see pacer.h. */
int sl_pacer_init(sl_pacer_t *p, uint32_t video_cap, uint32_t prio_cap)
{
    memset(p, 0, sizeof *p);
    if (ring_init(&p->video, video_cap) || ring_init(&p->prio, prio_cap)) {
        sl_pacer_cleanup(p);
        return SL_ENOMEM;
    }
    return 0;
}

/* Releases everything; see pacer.h. */
void sl_pacer_cleanup(sl_pacer_t *p)
{
    while (p->prio.e && p->prio.n)
        ring_pop(p, &p->prio);
    while (p->video.e && p->video.n)
        ring_pop(p, &p->video);
    sl_free(p->prio.e);
    sl_free(p->video.e);
    p->prio.e = p->video.e = NULL;
    p->prio.cap = p->video.cap = 0;
}

/* Sets the rate; see pacer.h. */
void sl_pacer_set_rate(sl_pacer_t *p, uint64_t rate_bps)
{
    p->rate_bps = rate_bps;
}

/* Queues one packet; see pacer.h. */
int sl_pacer_push(sl_pacer_t *p, const sl_pacer_pkt_t *pkt, uint64_t now_ms)
{
    sl_pacer_ring_t *r = pkt->kind == SL_PACER_VIDEO ? &p->video : &p->prio;
    if (!r->e)
        return SL_ENOMEM;
    if (r->n == r->cap) {
        if (r == &p->video)
            return SL_ETOOBIG;
        ring_pop(p, r);
        p->prio_dropped++;
    }
    sl_pacer_pkt_t *e = ring_at(r, r->n);
    *e = *pkt;
    e->enq_ms = now_ms;
    e->buf = sl_buf_ref(pkt->buf);
    r->n++;
    p->bytes += e->len;
    return 0;
}

/* Adds the budget earned since the last fill. */
static void refill(sl_pacer_t *p, uint64_t now_ms)
{
    if (!p->rate_bps)
        return;
    double bytes_per_ms = (double)p->rate_bps / 8000.0;
    double cap = bytes_per_ms * SL_PACER_BURST_MS;
    if (cap < 2.0 * 1500)
        cap = 2.0 * 1500;
    if (!p->budget_set) {
        p->budget_set = 1;
        p->budget = cap;
    } else if (now_ms > p->budget_ms) {
        p->budget += bytes_per_ms * (double)(now_ms - p->budget_ms);
        if (p->budget > cap)
            p->budget = cap;
    }
    p->budget_ms = now_ms;
}

/* Sends what the budget allows; see pacer.h. */
int sl_pacer_drain(sl_pacer_t *p, uint64_t now_ms, sl_pacer_send_cb send, void *ud)
{
    refill(p, now_ms);
    while (!sl_pacer_empty(p)) {
        if (p->rate_bps && p->budget <= 0)
            return 0;
        sl_pacer_ring_t *r = p->prio.n ? &p->prio : &p->video;
        sl_pacer_pkt_t *e = ring_at(r, 0);
        int rc = send(ud, e);
        if (rc == SL_EAGAIN) {
            p->retries++;
            return SL_EAGAIN;
        }
        if (rc)
            p->send_failed++;
        else
            p->sent++;
        if (r == &p->video) {
            /* Track the frame on the wire: drop_video keeps its rest. */
            p->started_frame = e->frame;
            p->started = !e->marker;
        }
        if (p->rate_bps)
            p->budget -= (double)e->len + SL_PACER_OVERHEAD;
        ring_pop(p, r);
    }
    return 0;
}

/* Drops queued video but a frame begun; see pacer.h. */
uint32_t sl_pacer_drop_video(sl_pacer_t *p)
{
    sl_pacer_ring_t *r = &p->video;
    uint32_t keep = 0;
    if (p->started)
        while (keep < r->n && ring_at(r, keep)->frame == p->started_frame)
            keep++;
    uint32_t frames = 0, last = 0;
    int have_last = 0;
    while (r->n > keep) {
        /* Pop from the tail: the kept packets are the head. */
        sl_pacer_pkt_t *e = ring_at(r, r->n - 1);
        if (!have_last || e->frame != last) {
            frames++;
            last = e->frame;
            have_last = 1;
        }
        p->bytes -= e->len;
        if (e->buf)
            sl_buf_unref(e->buf);
        e->buf = NULL;
        r->n--;
    }
    return frames;
}

/* The queue's delay; see pacer.h. */
uint32_t sl_pacer_queue_ms(const sl_pacer_t *p, uint64_t now_ms)
{
    if (sl_pacer_empty(p))
        return 0;
    uint64_t oldest = UINT64_MAX;
    if (p->prio.n)
        oldest = p->prio.e[p->prio.head].enq_ms;
    if (p->video.n && p->video.e[p->video.head].enq_ms < oldest)
        oldest = p->video.e[p->video.head].enq_ms;
    uint64_t age = now_ms > oldest ? now_ms - oldest : 0;
    uint64_t drain = 0;
    if (p->rate_bps) {
        uint64_t pkts = p->prio.n + p->video.n;
        drain = ((uint64_t)p->bytes + pkts * SL_PACER_OVERHEAD) * 8000 / p->rate_bps;
    }
    uint64_t ms = age > drain ? age : drain;
    return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}
