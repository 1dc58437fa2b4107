/*
 * RTP send side: one sl_rtp_tx_t per outgoing SSRC (a WHEP viewer's video
 * or audio; later an RTSP PLAY session). It keeps the retransmission
 * history, answers NACKs from it, measures the RTT from the viewer's
 * receiver reports (LSR/DLSR), counts what the API shows (NACKs received,
 * retransmissions, PLIs, FIRs, the viewer's loss and jitter) and builds the
 * sender report.
 *
 * The history holds the last SL_RTP_TX_HISTORY packets as references to
 * the refcounted sl_buf_t the caller sent (the protected or unprotected
 * packet, whichever the caller wants to resend), so nothing is copied;
 * entries older than SL_RTP_TX_MAX_AGE_MS are not answered. A packet is
 * retransmitted at most once per RTT. The caller parses RTP and RTCP: this
 * module takes plain values. Loop thread only (sl_buf_t is not atomic).
 * Media layer: includes base and media/rtcp.h only.
 */
#ifndef SL_MEDIA_RTP_TX_H
#define SL_MEDIA_RTP_TX_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "media/rtcp.h"

#define SL_RTP_TX_HISTORY 512     /* packets remembered (power of two) */
#define SL_RTP_TX_MAX_AGE_MS 1000 /* older packets are not retransmitted */

typedef struct sl_rtp_tx sl_rtp_tx_t;

typedef struct sl_rtp_tx_stats {
    uint64_t packets;        /* packets sent (first transmissions) */
    uint64_t octets;         /* payload octets sent (first transmissions) */
    uint64_t nacks;          /* sequence numbers NACKed by the receiver */
    uint64_t retransmitted;  /* packets handed back for retransmission */
    uint64_t nack_misses;    /* NACKed packets no longer (or never) in the history */
    uint64_t plis;           /* PLIs received */
    uint64_t firs;           /* FIRs received */
    uint32_t rtt_ms;         /* last RTT measured from an RR, 0 before any */
    uint8_t fraction_lost;   /* from the last RR block */
    int32_t cum_lost;        /* from the last RR block */
    uint32_t jitter;         /* from the last RR block, RTP units */
} sl_rtp_tx_stats_t;

/** Creates a sender for one SSRC with the given RTP clock rate. NULL on allocation failure. */
sl_rtp_tx_t *sl_rtp_tx_new(uint32_t ssrc, uint32_t clock_rate);
/**
 * Records a packet just sent: takes a new reference to pkt (the caller
 * keeps its own) and drops the reference of the entry it replaces.
 * payload_len counts toward the SR's octet count; rtp_ts and now_ms give
 * the RTP/wall-clock mapping the SR extrapolates from.
 */
void sl_rtp_tx_sent(sl_rtp_tx_t *tx, uint16_t seq, uint32_t rtp_ts, sl_buf_t *pkt, size_t payload_len,
                    uint64_t now_ms);
/**
 * Answers a NACK for seq: on 0, *out is a new reference the caller must
 * unref after sending it again. SL_ENOTFOUND when seq is not in the history
 * (overwritten, too old, never sent); SL_EAGAIN when it was retransmitted
 * less than an RTT ago (the NACK crossed the retransmission).
 */
int sl_rtp_tx_nack(sl_rtp_tx_t *tx, uint16_t seq, uint64_t now_ms, sl_buf_t **out);
/**
 * Takes an RR block about this SSRC received when the NTP clock read
 * now_ntp: updates the RTT (RFC 3550 6.4.1: now - LSR - DLSR) when LSR is
 * set, and the loss/jitter shown in the stats.
 */
void sl_rtp_tx_on_rr(sl_rtp_tx_t *tx, const sl_rtcp_report_t *rb, uint64_t now_ntp);
/** Counts a PLI (the caller asks the source for a keyframe). */
void sl_rtp_tx_on_pli(sl_rtp_tx_t *tx);
/** Counts a FIR. */
void sl_rtp_tx_on_fir(sl_rtp_tx_t *tx);
/** RTT estimate in ms (default 100 until an RR gives one). */
uint32_t sl_rtp_tx_rtt_ms(const sl_rtp_tx_t *tx);
/**
 * Builds this SSRC's sender report at out: NTP time now_ntp, the RTP time
 * extrapolated from the last sent packet to now_ms, packets and octets sent.
 * Returns the length or SL_ETOOBIG.
 */
int sl_rtp_tx_build_sr(sl_rtp_tx_t *tx, uint8_t *out, size_t cap, uint64_t now_ntp, uint64_t now_ms);
/** Copies the counters. */
void sl_rtp_tx_get_stats(const sl_rtp_tx_t *tx, sl_rtp_tx_stats_t *out);
/** Frees the sender and drops every history reference. NULL is ignored. */
void sl_rtp_tx_free(sl_rtp_tx_t *tx);

#endif
