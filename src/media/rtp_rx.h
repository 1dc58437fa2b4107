/*
 * RTP receive side: one sl_rtp_rx_t per incoming SSRC (a WHIP publisher's
 * video or audio; later an RTSP ANNOUNCE/RECORD source), and one
 * sl_twcc_rx_t per incoming transport (all SSRCs that carry the
 * transport-wide sequence number header extension).
 *
 * sl_rtp_rx_t is a reorder buffer with NACK generation and the RFC 3550
 * receiver statistics. push() copies each packet in (bounded in packets and
 * bytes) and releases packets in sequence order through on_packet as soon
 * as they are next in line. A gap is waited for up to max_wait_ms; during
 * the wait sl_rtp_rx_poll() returns the sequence numbers to NACK (each at
 * most SL_RTP_RX_MAX_NACKS times, spaced by the RTT); after it the gap is
 * reported through on_loss and delivery resumes. Duplicates and packets
 * older than the delivery point are dropped; a jump of more than
 * SL_RTP_RX_RESET_GAP sequence numbers (a restarted sender) resets the
 * buffer. Sequence numbers are tracked extended (cycles << 16 | seq), so
 * 16-bit wrap is invisible.
 *
 * It does not parse RTP: the caller (which has parsed the header) passes
 * seq, timestamp, arrival time and the packet bytes. Loop thread only; the
 * callbacks run inside push() and poll() and must not call back into the
 * same rx (no push, poll or free from on_packet / on_loss).
 * Media layer: includes base and media/rtcp.h only.
 */
#ifndef SL_MEDIA_RTP_RX_H
#define SL_MEDIA_RTP_RX_H

#include <stddef.h>
#include <stdint.h>

#include "media/rtcp.h"

#define SL_RTP_RX_RING 1024           /* sequence numbers the buffer spans (power of two) */
#define SL_RTP_RX_MAX_PKTS 512        /* default cap on packets held */
#define SL_RTP_RX_MAX_BYTES (1u << 20)/* default cap on bytes held */
#define SL_RTP_RX_MAX_PKT 4096        /* larger packets are refused (SL_ETOOBIG) */
#define SL_RTP_RX_MAX_NACKS 3         /* NACKs per lost packet */
#define SL_RTP_RX_RESET_GAP 3000      /* a larger jump restarts the sequence */

typedef struct sl_rtp_rx sl_rtp_rx_t;

/* Packet released in order: pkt valid only during the call. */
typedef void (*sl_rtp_rx_packet_cb)(void *ud, const uint8_t *pkt, size_t len);
/* count packets from first (16-bit, may wrap) were given up as lost. */
typedef void (*sl_rtp_rx_loss_cb)(void *ud, uint16_t first, uint16_t count);

typedef struct sl_rtp_rx_stats {
    uint64_t received;    /* packets accepted (including late ones and retransmissions) */
    uint64_t delivered;   /* packets passed to on_packet */
    uint64_t lost;        /* packets given up and reported through on_loss */
    uint64_t recovered;   /* gaps filled after at least one NACK */
    uint64_t nacks_sent;  /* sequence numbers returned by poll (each NACK counts) */
    uint64_t duplicates;  /* packets already held or already delivered */
    uint64_t late;        /* packets arriving after their gap was given up */
    uint64_t resets;      /* sequence restarts (big jumps) */
    uint64_t overflows;   /* packets forced out by the packet/byte caps */
    uint32_t held_pkts;   /* packets held now */
    uint32_t held_bytes;  /* bytes held now */
} sl_rtp_rx_stats_t;

/**
 * Creates a receiver for one SSRC. clock_rate is the RTP clock (90000 for
 * video, 48000 for Opus) used for jitter; max_wait_ms is how long a gap is
 * waited for (100-150 ms: one or two NACK round trips; 0 delivers at once
 * and never NACKs). on_packet and on_loss may be NULL; ud is passed to them.
 * Caps default to SL_RTP_RX_MAX_PKTS / SL_RTP_RX_MAX_BYTES. Returns NULL on
 * allocation failure. Free with sl_rtp_rx_free().
 */
sl_rtp_rx_t *sl_rtp_rx_new(uint32_t clock_rate, uint32_t max_wait_ms, sl_rtp_rx_packet_cb on_packet,
                           sl_rtp_rx_loss_cb on_loss, void *ud);
/**
 * Sets the caps on packets (1..SL_RTP_RX_RING) and bytes held. When a push
 * would pass either, the oldest part of the buffer is released early
 * (gaps in it given up as lost). Returns 0 or SL_EINVAL.
 */
int sl_rtp_rx_set_limits(sl_rtp_rx_t *rx, uint32_t max_pkts, uint32_t max_bytes);
/** Sets the round-trip time that spaces repeated NACKs (default 50 ms, minimum 10 ms). */
void sl_rtp_rx_set_rtt(sl_rtp_rx_t *rx, uint32_t rtt_ms);
/**
 * Accepts one packet: copies pkt[0..len) (the whole RTP packet, or whatever
 * the caller wants back from on_packet), updates statistics and delivers
 * whatever is now in order. Returns 0 (also for a dropped duplicate or late
 * packet), SL_ETOOBIG when len is 0 or above SL_RTP_RX_MAX_PKT, or
 * SL_ENOMEM (the packet is then counted lost when its turn comes).
 */
int sl_rtp_rx_push(sl_rtp_rx_t *rx, uint16_t seq, uint32_t rtp_ts, uint64_t arrival_ms,
                   const uint8_t *pkt, size_t len);
/**
 * Drive this every 10-20 ms (and before sending RTCP): gives up gaps older
 * than max_wait_ms (on_loss, then delivery resumes), then writes to
 * nack_seqs (up to cap) the sequence numbers due for a NACK now, oldest
 * first. Returns how many were written; pass them to sl_rtcp_build_nack().
 * A gap is first due at the poll after it is seen, then every RTT.
 */
int sl_rtp_rx_poll(sl_rtp_rx_t *rx, uint64_t now_ms, uint16_t *nack_seqs, int cap);
/**
 * Fills an RR block about ssrc (RFC 3550 6.4.1 and A.3): fraction lost
 * since the previous call, cumulative lost, extended highest sequence,
 * jitter, and LSR/DLSR from the last SR given to sl_rtp_rx_on_sr(). Each
 * call starts a new fraction-lost interval.
 */
void sl_rtp_rx_report(sl_rtp_rx_t *rx, uint32_t ssrc, uint64_t now_ms, sl_rtcp_report_t *out);
/**
 * Records a sender report of this SSRC (its NTP and RTP times) received at
 * now_ms: the LSR/DLSR of the next reports and the mapping used by
 * sl_rtp_rx_ts_to_ntp().
 */
void sl_rtp_rx_on_sr(sl_rtp_rx_t *rx, uint64_t ntp, uint32_t rtp_ts, uint64_t now_ms);
/**
 * Maps an RTP timestamp of this SSRC to the sender's NTP wall clock through
 * the last SR (for lip sync). Returns 0 and sets *ntp, or SL_EAGAIN when no
 * SR has been seen yet.
 */
int sl_rtp_rx_ts_to_ntp(const sl_rtp_rx_t *rx, uint32_t rtp_ts, uint64_t *ntp);
/** Copies the counters. */
void sl_rtp_rx_get_stats(const sl_rtp_rx_t *rx, sl_rtp_rx_stats_t *out);
/** Frees the receiver and the packets it holds, without delivering them. NULL is ignored. */
void sl_rtp_rx_free(sl_rtp_rx_t *rx);

/*
 * Transport-wide congestion control feedback, receive side (towards a WHIP
 * publisher that negotiated transport-cc). record() notes each packet's
 * transport-wide sequence number and arrival time; build() every 50-100 ms
 * writes the feedback for what was recorded since the previous one.
 * Loop thread only.
 */
typedef struct sl_twcc_rx sl_twcc_rx_t;

/** Creates a recorder; sender_ssrc/media_ssrc go in the feedback header. NULL on allocation failure. */
sl_twcc_rx_t *sl_twcc_rx_new(uint32_t sender_ssrc, uint32_t media_ssrc);
/**
 * Records that transport-wide sequence number seq arrived at arrival_us
 * (microseconds, any monotonic origin). Returns 0; packets older than the
 * last feedback or more than SL_TWCC_MAX_STATUS ahead of its base are
 * ignored (also 0; the latter restarts the window at seq).
 */
int sl_twcc_rx_record(sl_twcc_rx_t *tw, uint16_t seq, uint64_t arrival_us);
/**
 * Writes one feedback packet (RTPFB fmt 15) for the packets recorded since
 * the previous feedback. Returns its length, 0 when there is nothing to
 * report, or SL_ETOOBIG. When a receive delta does not fit in 16 bits the
 * packet stops before it: call again until it returns 0.
 */
int sl_twcc_rx_build(sl_twcc_rx_t *tw, uint8_t *out, size_t cap);
/** Frees the recorder. NULL is ignored. */
void sl_twcc_rx_free(sl_twcc_rx_t *tw);

#endif
