/*
 * RTP send side: retransmission history, RTT, sender reports (see rtp_tx.h).
 *
 * The history is a ring indexed by seq & (SL_RTP_TX_HISTORY - 1). Because
 * the ring size divides 65536, a slot holds only sequence numbers that are
 * congruent modulo the ring size, and the newest one replaces the older:
 * a lookup checks the stored seq and the age, so a NACK for a packet that
 * was overwritten (or sent 65536 packets ago) finds nothing instead of the
 * wrong packet.
 */
#include "media/rtp_tx.h"

#include <string.h>

#include "base/alloc.h"
#include "sluice/errors.h"

#define HIST_MASK (SL_RTP_TX_HISTORY - 1)

typedef struct hist {
    sl_buf_t *pkt;          /* reference owned by the history, NULL when empty */
    uint16_t seq;           /* sequence number of pkt */
    uint64_t sent_ms;       /* first transmission */
    uint64_t resent_ms;     /* last retransmission, 0 if none */
} hist_t;

struct sl_rtp_tx {
    uint32_t ssrc;          /* this sender's SSRC */
    uint32_t clock_rate;    /* RTP clock, Hz */
    int have_last;          /* a packet has been sent */
    uint32_t last_ts;       /* RTP time of the last packet sent */
    uint64_t last_ms;       /* when it was sent */
    sl_rtp_tx_stats_t st;   /* counters */
    hist_t hist[SL_RTP_TX_HISTORY];
};

sl_rtp_tx_t *sl_rtp_tx_new(uint32_t ssrc, uint32_t clock_rate)
{
    sl_rtp_tx_t *tx = sl_calloc(1, sizeof(*tx));
    if (!tx)
        return NULL;
    tx->ssrc = ssrc;
    tx->clock_rate = clock_rate ? clock_rate : 90000;
    return tx;
}

void sl_rtp_tx_sent(sl_rtp_tx_t *tx, uint16_t seq, uint32_t rtp_ts, sl_buf_t *pkt, size_t payload_len,
                    uint64_t now_ms)
{
    hist_t *h = &tx->hist[seq & HIST_MASK];
    sl_buf_unref(h->pkt);
    h->pkt = pkt ? sl_buf_ref(pkt) : NULL;
    h->seq = seq;
    h->sent_ms = now_ms;
    h->resent_ms = 0;
    tx->st.packets++;
    tx->st.octets += payload_len;
    tx->have_last = 1;
    tx->last_ts = rtp_ts;
    tx->last_ms = now_ms;
}

uint32_t sl_rtp_tx_rtt_ms(const sl_rtp_tx_t *tx)
{
    return tx->st.rtt_ms ? tx->st.rtt_ms : 100;
}

int sl_rtp_tx_nack(sl_rtp_tx_t *tx, uint16_t seq, uint64_t now_ms, sl_buf_t **out)
{
    *out = NULL;
    tx->st.nacks++;
    hist_t *h = &tx->hist[seq & HIST_MASK];
    if (!h->pkt || h->seq != seq || now_ms > h->sent_ms + SL_RTP_TX_MAX_AGE_MS) {
        tx->st.nack_misses++;
        return SL_ENOTFOUND;
    }
    if (h->resent_ms && now_ms < h->resent_ms + sl_rtp_tx_rtt_ms(tx))
        return SL_EAGAIN;
    h->resent_ms = now_ms ? now_ms : 1;
    tx->st.retransmitted++;
    *out = sl_buf_ref(h->pkt);
    return 0;
}

void sl_rtp_tx_on_rr(sl_rtp_tx_t *tx, const sl_rtcp_report_t *rb, uint64_t now_ntp)
{
    tx->st.fraction_lost = rb->fraction_lost;
    tx->st.cum_lost = rb->cum_lost;
    tx->st.jitter = rb->jitter;
    if (!rb->lsr)
        return; /* no SR received by the viewer yet */
    uint32_t rtt = sl_ntp_mid32(now_ntp) - rb->lsr - rb->dlsr; /* 1/65536 s, wraps */
    if (rtt & 0x80000000u)
        return; /* negative: clocks or a bogus block */
    uint32_t ms = (uint32_t)(((uint64_t)rtt * 1000u) >> 16);
    tx->st.rtt_ms = ms ? ms : 1;
}

void sl_rtp_tx_on_pli(sl_rtp_tx_t *tx)
{
    tx->st.plis++;
}

void sl_rtp_tx_on_fir(sl_rtp_tx_t *tx)
{
    tx->st.firs++;
}

int sl_rtp_tx_build_sr(sl_rtp_tx_t *tx, uint8_t *out, size_t cap, uint64_t now_ntp, uint64_t now_ms)
{
    uint32_t ts = tx->last_ts;
    if (tx->have_last && now_ms > tx->last_ms)
        ts += (uint32_t)((now_ms - tx->last_ms) * tx->clock_rate / 1000u);
    return sl_rtcp_build_sr(out, cap, tx->ssrc, now_ntp, ts, (uint32_t)tx->st.packets,
                            (uint32_t)tx->st.octets, NULL, 0);
}

void sl_rtp_tx_get_stats(const sl_rtp_tx_t *tx, sl_rtp_tx_stats_t *out)
{
    *out = tx->st;
}

void sl_rtp_tx_free(sl_rtp_tx_t *tx)
{
    if (!tx)
        return;
    for (int i = 0; i < SL_RTP_TX_HISTORY; i++)
        sl_buf_unref(tx->hist[i].pkt);
    sl_free(tx);
}
