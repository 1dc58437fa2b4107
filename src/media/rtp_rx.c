/*
 * RTP receive side: reorder buffer, NACK generation, RFC 3550 receiver
 * statistics, and transport-wide CC recording (see rtp_rx.h).
 *
 * The buffer is a ring of SL_RTP_RX_RING slots indexed by extended
 * sequence number. `next` is the next sequence to deliver and `highest`
 * the highest seen, with next <= highest + 1 and highest - next < RING:
 * every slot in [next, highest] is either HAVE (a copied packet waiting
 * for the gap before it) or MISSING (a hole, with the time it was noticed
 * and its NACK schedule). A packet that arrives exactly at `next` is
 * delivered straight from the caller's bytes without a copy, which is the
 * common case on a clean network.
 *
 * Loss is reported in runs: consecutive given-up sequence numbers are
 * collected and passed to on_loss once, just before the next delivery or
 * at the end of the call.
 */
#include "media/rtp_rx.h"

#include <string.h>

#include "base/alloc.h"
#include "base/assert.h"
#include "sluice/errors.h"

#define RING_MASK (SL_RTP_RX_RING - 1)

enum { SLOT_EMPTY = 0, SLOT_HAVE, SLOT_MISSING };

typedef struct slot {
    uint8_t *data;          /* owned copy (HAVE), else NULL */
    uint32_t len;           /* bytes in data */
    uint8_t state;          /* SLOT_* */
    uint8_t nacks;          /* NACKs sent for this hole */
    uint64_t seen_ms;       /* when the hole was noticed */
    uint64_t next_nack_ms;  /* when the next NACK is due */
} slot_t;

struct sl_rtp_rx {
    uint32_t clock_rate;    /* RTP clock, Hz */
    uint32_t max_wait_ms;   /* how long a hole is waited for */
    uint32_t rtt_ms;        /* NACK spacing */
    uint32_t max_pkts;      /* cap on packets held */
    uint32_t max_bytes;     /* cap on bytes held */
    sl_rtp_rx_packet_cb on_packet;
    sl_rtp_rx_loss_cb on_loss;
    void *ud;

    int started;            /* a first packet has been seen */
    int64_t next;           /* next extended seq to deliver */
    int64_t highest;        /* highest extended seq seen */
    uint32_t n_missing;     /* MISSING slots in [next, highest] */
    int64_t loss_first;     /* pending loss run: first ext seq */
    uint32_t loss_n;        /* pending loss run: length */

    /* RFC 3550 A.3 / A.8 state, restarted on a sequence reset */
    int64_t base;           /* first extended seq of this sequence */
    uint64_t rfc_received;  /* packets received (late and duplicates count, as in A.3) */
    uint64_t expected_prior;
    uint64_t received_prior;
    uint32_t jitter_q4;     /* jitter in 1/16 timestamp units */
    uint32_t last_transit;  /* arrival (RTP units) - rtp_ts of the last in-order packet */
    int have_transit;

    int have_sr;            /* an SR has been recorded */
    uint64_t sr_ntp;        /* its NTP time */
    uint32_t sr_rtp;        /* its RTP time */
    uint64_t sr_arrival_ms; /* when it arrived */

    sl_rtp_rx_stats_t st;   /* lifetime counters */
    slot_t slots[SL_RTP_RX_RING];
};

sl_rtp_rx_t *sl_rtp_rx_new(uint32_t clock_rate, uint32_t max_wait_ms, sl_rtp_rx_packet_cb on_packet,
                           sl_rtp_rx_loss_cb on_loss, void *ud)
{
    sl_rtp_rx_t *rx = sl_calloc(1, sizeof(*rx));
    if (!rx)
        return NULL;
    rx->clock_rate = clock_rate ? clock_rate : 90000;
    rx->max_wait_ms = max_wait_ms;
    rx->rtt_ms = 50;
    rx->max_pkts = SL_RTP_RX_MAX_PKTS;
    rx->max_bytes = SL_RTP_RX_MAX_BYTES;
    rx->on_packet = on_packet;
    rx->on_loss = on_loss;
    rx->ud = ud;
    return rx;
}

int sl_rtp_rx_set_limits(sl_rtp_rx_t *rx, uint32_t max_pkts, uint32_t max_bytes)
{
    if (max_pkts < 1 || max_pkts > SL_RTP_RX_RING || max_bytes < 1)
        return SL_EINVAL;
    rx->max_pkts = max_pkts;
    rx->max_bytes = max_bytes;
    return 0;
}

void sl_rtp_rx_set_rtt(sl_rtp_rx_t *rx, uint32_t rtt_ms)
{
    rx->rtt_ms = rtt_ms < 10 ? 10 : rtt_ms;
}

static void flush_loss(sl_rtp_rx_t *rx)
{
    if (!rx->loss_n)
        return;
    rx->st.lost += rx->loss_n;
    if (rx->on_loss)
        rx->on_loss(rx->ud, (uint16_t)rx->loss_first, (uint16_t)rx->loss_n);
    rx->loss_n = 0;
}

static void note_loss(sl_rtp_rx_t *rx, int64_t ext)
{
    if (rx->loss_n && rx->loss_first + rx->loss_n == ext && rx->loss_n < 0xFFFF) {
        rx->loss_n++;
        return;
    }
    flush_loss(rx);
    rx->loss_first = ext;
    rx->loss_n = 1;
}

static void deliver(sl_rtp_rx_t *rx, const uint8_t *p, size_t len)
{
    flush_loss(rx);
    rx->st.delivered++;
    if (rx->on_packet)
        rx->on_packet(rx->ud, p, len);
}

/* Releases the head slot (next): delivers it if held, else gives it up. */
static void release_head(sl_rtp_rx_t *rx)
{
    slot_t *s = &rx->slots[rx->next & RING_MASK];
    if (s->state == SLOT_HAVE) {
        deliver(rx, s->data, s->len);
        rx->st.held_pkts--;
        rx->st.held_bytes -= s->len;
        sl_free(s->data);
    } else {
        if (s->state == SLOT_MISSING)
            rx->n_missing--;
        note_loss(rx, rx->next);
    }
    memset(s, 0, sizeof(*s));
    rx->next++;
}

/* Delivers what is in order and gives up holes older than max_wait_ms. */
static void deliver_ready(sl_rtp_rx_t *rx, uint64_t now_ms)
{
    while (rx->started && rx->next <= rx->highest) {
        slot_t *s = &rx->slots[rx->next & RING_MASK];
        SL_ASSERT(s->state != SLOT_EMPTY); /* [next, highest] holds packets or holes */
        if (s->state == SLOT_MISSING && now_ms < s->seen_ms + rx->max_wait_ms)
            break;
        release_head(rx);
    }
    flush_loss(rx);
}

/* Releases everything held (in order, holes lost) and forgets the sequence. */
static void drain_all(sl_rtp_rx_t *rx)
{
    while (rx->started && rx->next <= rx->highest)
        release_head(rx);
    flush_loss(rx);
}

static void start_at(sl_rtp_rx_t *rx, uint16_t seq)
{
    rx->started = 1;
    rx->next = rx->base = seq;
    rx->highest = (int64_t)seq - 1; /* nothing seen yet: the caller's packet makes it seq */
    rx->rfc_received = rx->expected_prior = rx->received_prior = 0;
    rx->jitter_q4 = 0;
    rx->have_transit = 0;
    rx->n_missing = 0;
}

/* RFC 3550 A.8: interarrival jitter, updated for in-order packets only so
 * that retransmissions do not count as network jitter. */
static void update_jitter(sl_rtp_rx_t *rx, uint32_t rtp_ts, uint64_t arrival_ms)
{
    uint32_t arrival = (uint32_t)(arrival_ms * rx->clock_rate / 1000u);
    uint32_t transit = arrival - rtp_ts;
    if (rx->have_transit) {
        int32_t d = (int32_t)(transit - rx->last_transit);
        uint32_t ad = d < 0 ? (uint32_t)0 - (uint32_t)d : (uint32_t)d;
        rx->jitter_q4 += ad - ((rx->jitter_q4 + 8) >> 4);
    }
    rx->last_transit = transit;
    rx->have_transit = 1;
}

int sl_rtp_rx_push(sl_rtp_rx_t *rx, uint16_t seq, uint32_t rtp_ts, uint64_t arrival_ms,
                   const uint8_t *pkt, size_t len)
{
    if (len == 0 || len > SL_RTP_RX_MAX_PKT)
        return SL_ETOOBIG;
    if (!rx->started) {
        start_at(rx, seq);
    } else {
        int32_t d = (int16_t)(uint16_t)(seq - (uint16_t)rx->highest);
        if (d > SL_RTP_RX_RESET_GAP || d < -SL_RTP_RX_RESET_GAP) {
            /* A restarted sender (or a wild packet): deliver what is held
             * and begin a new sequence here. */
            drain_all(rx);
            rx->st.resets++;
            start_at(rx, seq);
        }
    }
    int64_t ext = rx->highest + (int16_t)(uint16_t)(seq - (uint16_t)rx->highest);
    rx->st.received++;
    rx->rfc_received++;
    if (ext < rx->next) {
        rx->st.late++; /* delivered already or given up */
        return 0;
    }
    slot_t *s;
    if (ext > rx->highest) {
        update_jitter(rx, rtp_ts, arrival_ms);
        /* Keep [next, ext] within the ring: the oldest part is forced out. */
        while (ext - rx->next >= SL_RTP_RX_RING && rx->next <= rx->highest) {
            rx->st.overflows += rx->slots[rx->next & RING_MASK].state == SLOT_HAVE;
            release_head(rx);
        }
        int64_t from = rx->highest + 1;
        if (ext - rx->next >= SL_RTP_RX_RING) { /* the jump alone is wider than the ring */
            for (int64_t e = rx->next; e <= ext - SL_RTP_RX_RING; e++)
                note_loss(rx, e);
            rx->next = from = ext - SL_RTP_RX_RING + 1;
        }
        for (int64_t e = from; e < ext; e++) { /* new holes */
            s = &rx->slots[e & RING_MASK];
            SL_ASSERT(s->state == SLOT_EMPTY);
            s->state = SLOT_MISSING;
            s->nacks = 0;
            s->seen_ms = s->next_nack_ms = arrival_ms;
            rx->n_missing++;
        }
        rx->highest = ext;
    } else {
        s = &rx->slots[ext & RING_MASK];
        if (s->state == SLOT_HAVE) {
            rx->st.duplicates++;
            rx->rfc_received--; /* a duplicate we can see is not counted (A.3 would) */
            return 0;
        }
        if (s->state == SLOT_MISSING) {
            rx->n_missing--;
            if (s->nacks)
                rx->st.recovered++;
        }
        memset(s, 0, sizeof(*s));
    }
    /* Make room under the caps by releasing from the head. */
    while (ext > rx->next && (rx->st.held_pkts + 1 > rx->max_pkts || rx->st.held_bytes + len > rx->max_bytes)) {
        rx->st.overflows += rx->slots[rx->next & RING_MASK].state == SLOT_HAVE;
        release_head(rx);
    }
    s = &rx->slots[ext & RING_MASK];
    if (ext == rx->next) {
        /* In order: straight from the caller's bytes. */
        memset(s, 0, sizeof(*s));
        deliver(rx, pkt, len);
        rx->next++;
    } else {
        uint8_t *copy = sl_malloc(len);
        if (!copy) {
            s->state = SLOT_MISSING; /* given up when its turn comes */
            s->nacks = SL_RTP_RX_MAX_NACKS;
            s->seen_ms = s->next_nack_ms = arrival_ms;
            rx->n_missing++;
            deliver_ready(rx, arrival_ms);
            return SL_ENOMEM;
        }
        memcpy(copy, pkt, len);
        s->data = copy;
        s->len = (uint32_t)len;
        s->state = SLOT_HAVE;
        rx->st.held_pkts++;
        rx->st.held_bytes += (uint32_t)len;
    }
    deliver_ready(rx, arrival_ms);
    return 0;
}

int sl_rtp_rx_poll(sl_rtp_rx_t *rx, uint64_t now_ms, uint16_t *nack_seqs, int cap)
{
    deliver_ready(rx, now_ms);
    if (!rx->started || rx->n_missing == 0 || rx->max_wait_ms == 0)
        return 0;
    int k = 0;
    for (int64_t e = rx->next; e <= rx->highest && k < cap; e++) {
        slot_t *s = &rx->slots[e & RING_MASK];
        if (s->state != SLOT_MISSING || s->nacks >= SL_RTP_RX_MAX_NACKS || now_ms < s->next_nack_ms)
            continue;
        nack_seqs[k++] = (uint16_t)e;
        s->nacks++;
        s->next_nack_ms = now_ms + rx->rtt_ms;
    }
    rx->st.nacks_sent += (uint64_t)k;
    return k;
}

void sl_rtp_rx_report(sl_rtp_rx_t *rx, uint32_t ssrc, uint64_t now_ms, sl_rtcp_report_t *out)
{
    memset(out, 0, sizeof(*out));
    out->source = ssrc;
    if (rx->have_sr) {
        out->lsr = sl_ntp_mid32(rx->sr_ntp);
        out->dlsr = now_ms > rx->sr_arrival_ms ? (uint32_t)((now_ms - rx->sr_arrival_ms) * 65536u / 1000u) : 0;
    }
    if (!rx->started || rx->highest < rx->base)
        return;
    /* RFC 3550 A.3 */
    uint64_t expected = (uint64_t)(rx->highest - rx->base + 1);
    int64_t lost = (int64_t)expected - (int64_t)rx->rfc_received;
    if (lost > 0x7FFFFF)
        lost = 0x7FFFFF;
    if (lost < -0x800000)
        lost = -0x800000;
    uint64_t expected_interval = expected - rx->expected_prior;
    int64_t received_interval = (int64_t)(rx->rfc_received - rx->received_prior);
    int64_t lost_interval = (int64_t)expected_interval - received_interval;
    rx->expected_prior = expected;
    rx->received_prior = rx->rfc_received;
    uint32_t fraction = 0;
    if (expected_interval && lost_interval > 0)
        fraction = (uint32_t)(((uint64_t)lost_interval << 8) / expected_interval);
    out->fraction_lost = (uint8_t)(fraction > 255 ? 255 : fraction);
    out->cum_lost = (int32_t)lost;
    out->ext_high_seq = (uint32_t)rx->highest;
    out->jitter = rx->jitter_q4 >> 4;
}

void sl_rtp_rx_on_sr(sl_rtp_rx_t *rx, uint64_t ntp, uint32_t rtp_ts, uint64_t now_ms)
{
    rx->have_sr = 1;
    rx->sr_ntp = ntp;
    rx->sr_rtp = rtp_ts;
    rx->sr_arrival_ms = now_ms;
}

int sl_rtp_rx_ts_to_ntp(const sl_rtp_rx_t *rx, uint32_t rtp_ts, uint64_t *ntp)
{
    if (!rx->have_sr)
        return SL_EAGAIN;
    int64_t diff = (int32_t)(rtp_ts - rx->sr_rtp);
    int64_t secs = diff / (int64_t)rx->clock_rate;
    int64_t rem = diff % (int64_t)rx->clock_rate;
    int64_t off = secs * 4294967296LL + rem * 4294967296LL / (int64_t)rx->clock_rate;
    *ntp = rx->sr_ntp + (uint64_t)off;
    return 0;
}

void sl_rtp_rx_get_stats(const sl_rtp_rx_t *rx, sl_rtp_rx_stats_t *out)
{
    *out = rx->st;
}

void sl_rtp_rx_free(sl_rtp_rx_t *rx)
{
    if (!rx)
        return;
    for (int i = 0; i < SL_RTP_RX_RING; i++)
        sl_free(rx->slots[i].data);
    sl_free(rx);
}

/* ---- transport-wide CC recording ---- */

#define TW_MASK (SL_TWCC_MAX_STATUS - 1)
#define TW_NONE UINT64_MAX

struct sl_twcc_rx {
    uint32_t sender_ssrc;   /* feedback header fields */
    uint32_t media_ssrc;
    int started;            /* a packet has been recorded */
    int64_t base;           /* first extended seq not yet reported */
    int64_t highest;        /* highest extended seq recorded */
    uint8_t fb_count;       /* feedback packet counter */
    uint64_t arrival_us[SL_TWCC_MAX_STATUS]; /* by ext seq & mask; TW_NONE = not received */
};

sl_twcc_rx_t *sl_twcc_rx_new(uint32_t sender_ssrc, uint32_t media_ssrc)
{
    sl_twcc_rx_t *tw = sl_calloc(1, sizeof(*tw));
    if (!tw)
        return NULL;
    tw->sender_ssrc = sender_ssrc;
    tw->media_ssrc = media_ssrc;
    for (int i = 0; i < SL_TWCC_MAX_STATUS; i++)
        tw->arrival_us[i] = TW_NONE;
    return tw;
}

int sl_twcc_rx_record(sl_twcc_rx_t *tw, uint16_t seq, uint64_t arrival_us)
{
    if (arrival_us == TW_NONE)
        arrival_us--;
    if (!tw->started) {
        tw->started = 1;
        tw->base = tw->highest = seq;
    }
    int64_t ext = tw->highest + (int16_t)(uint16_t)(seq - (uint16_t)tw->highest);
    if (ext < tw->base)
        return 0; /* already reported as lost: too late */
    if (ext - tw->base >= SL_TWCC_MAX_STATUS) {
        /* Feedback has not been built for too long (or the sequence jumped):
         * forget the window and restart it here. */
        for (int i = 0; i < SL_TWCC_MAX_STATUS; i++)
            tw->arrival_us[i] = TW_NONE;
        tw->base = tw->highest = ext;
    }
    tw->arrival_us[ext & TW_MASK] = arrival_us;
    if (ext > tw->highest)
        tw->highest = ext;
    return 0;
}

int sl_twcc_rx_build(sl_twcc_rx_t *tw, uint8_t *out, size_t cap)
{
    if (!tw->started || tw->base > tw->highest)
        return 0;
    int16_t delta[SL_TWCC_MAX_STATUS];
    int64_t first = tw->base;
    while (first <= tw->highest && tw->arrival_us[first & TW_MASK] == TW_NONE)
        first++;
    if (!SL_ALWAYS(first <= tw->highest)) /* highest is always a received packet */
        return 0;
    uint64_t ref_64ms = tw->arrival_us[first & TW_MASK] / 64000u;
    uint64_t prev_us = ref_64ms * 64000u;
    int n = 0;
    for (int64_t e = tw->base; e <= tw->highest; e++, n++) {
        uint64_t t = tw->arrival_us[e & TW_MASK];
        if (t == TW_NONE) {
            delta[n] = SL_TWCC_NOT_RECEIVED;
            continue;
        }
        int64_t d = ((int64_t)(t - prev_us)) / 250; /* toward zero; prev follows the quantised value */
        if (d > 32767 || d < -32767)
            break; /* does not fit: the next feedback starts here */
        delta[n] = (int16_t)d;
        prev_us += (uint64_t)(d * 250);
    }
    /* The 24-bit reference time wraps (every ~12 days): send it modulo 2^24. */
    int32_t ref = (int32_t)(ref_64ms & 0xFFFFFFu);
    int rc = sl_rtcp_build_twcc(out, cap, tw->sender_ssrc, tw->media_ssrc, (uint16_t)tw->base, ref,
                                tw->fb_count, delta, n);
    if (rc < 0)
        return rc;
    for (int64_t e = tw->base; e < tw->base + n; e++)
        tw->arrival_us[e & TW_MASK] = TW_NONE;
    tw->base += n;
    tw->fb_count++;
    return rc;
}

void sl_twcc_rx_free(sl_twcc_rx_t *tw)
{
    sl_free(tw);
}
