/*
 * RTCP: the compound-packet parser and the builders for every report and
 * feedback message sluice's WebRTC (and later RTSP) sessions exchange:
 * SR / RR / SDES / BYE (RFC 3550), generic NACK and PLI (RFC 4585), FIR
 * (RFC 5104), REMB (draft-alvestrand-rmcat-remb) and transport-wide
 * congestion control feedback (draft-holmer-rmcat-transport-wide-cc-
 * extensions, RTPFB fmt 15). Pure functions over bytes, media layer, no
 * state: the per-SSRC machinery that uses them lives in rtp_rx.h (receive
 * side: jitter buffer, NACK generation, RR statistics, TWCC recording) and
 * rtp_tx.h (send side: retransmission history, RTT, SR). The packets here
 * are plaintext: SRTCP protection and unprotection happen around them.
 *
 * The parser is bounded: at most SL_RTCP_MAX_ITEMS packets per compound,
 * every length checked against the bytes actually present, TWCC feedback
 * at most SL_TWCC_MAX_STATUS packets. Fuzzed by tests/fuzz/rtcp_fuzz.c.
 */
#ifndef SL_MEDIA_RTCP_H
#define SL_MEDIA_RTCP_H

#include <stddef.h>
#include <stdint.h>

#define SL_RTCP_SR 200
#define SL_RTCP_RR 201
#define SL_RTCP_SDES 202
#define SL_RTCP_BYE 203
#define SL_RTCP_APP 204
#define SL_RTCP_RTPFB 205 /* fmt 1 NACK, fmt 15 TWCC */
#define SL_RTCP_PSFB 206  /* fmt 1 PLI, fmt 4 FIR, fmt 15 AFB (REMB) */

#define SL_RTCP_MAX_ITEMS 64     /* packets in one compound; more is SL_EPROTO */
#define SL_TWCC_MAX_STATUS 4096  /* packet statuses in one TWCC feedback we accept / build */
#define SL_TWCC_NOT_RECEIVED (-32768) /* delta_250us value of a packet reported lost */

/* One report block (RFC 3550 6.4.1), as read from an SR/RR or built by
 * sl_rtp_rx_report(). */
typedef struct sl_rtcp_report {
    uint32_t source;       /* SSRC this block is about */
    uint8_t fraction_lost; /* lost since the previous report, in 1/256 */
    int32_t cum_lost;      /* cumulative lost (24-bit signed on the wire) */
    uint32_t ext_high_seq; /* cycles << 16 | highest sequence number received */
    uint32_t jitter;       /* interarrival jitter, RTP timestamp units */
    uint32_t lsr;          /* middle 32 bits of the last SR's NTP time, 0 if none */
    uint32_t dlsr;         /* delay since that SR, in 1/65536 s */
} sl_rtcp_report_t;

/*
 * Callbacks of sl_rtcp_parse(); any may be NULL (the item is then skipped).
 * Pointers passed to a callback are valid only during that call.
 */
typedef struct sl_rtcp_cb {
    /* Sender report: sender's SSRC, NTP time, RTP time, packet and octet counts. */
    void (*sr)(void *ud, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts, uint32_t pkts, uint32_t octets);
    /* One report block of an SR or RR; reporter is the SSRC that sent it. */
    void (*rr_block)(void *ud, uint32_t reporter, const sl_rtcp_report_t *rb);
    /* Generic NACK: one call per lost sequence number (PID + BLP expanded). */
    void (*nack)(void *ud, uint32_t sender_ssrc, uint32_t media_ssrc, uint16_t seq);
    /* Picture loss indication. */
    void (*pli)(void *ud, uint32_t sender_ssrc, uint32_t media_ssrc);
    /* Full intra request: one call per FCI entry (media_ssrc is the entry's SSRC). */
    void (*fir)(void *ud, uint32_t sender_ssrc, uint32_t media_ssrc, uint8_t seq_nr);
    /* Receiver estimated maximum bitrate and the SSRCs it applies to. */
    void (*remb)(void *ud, uint32_t sender_ssrc, uint64_t bitrate_bps, const uint32_t *ssrcs, int n);
    /* Transport-wide CC feedback: n = status_count statuses from base_seq;
     * delta_250us[i] is the receive delta of packet base_seq + i in 250 us
     * units, or SL_TWCC_NOT_RECEIVED. The first received packet's delta is
     * relative to ref_time_64ms * 64 ms, later ones to the previous received. */
    void (*twcc)(void *ud, uint32_t media_ssrc, uint16_t base_seq, int32_t ref_time_64ms,
                 uint8_t fb_count, const int16_t *delta_250us, int n);
    /* BYE: one call per SSRC leaving. */
    void (*bye)(void *ud, uint32_t ssrc);
} sl_rtcp_cb_t;

/**
 * Parses a whole compound RTCP packet (already decrypted) and calls cb for
 * every item, in order. Unknown packet types and feedback formats, SDES and
 * APP are skipped by their length. Returns 0, or SL_EPROTO when any header
 * or length is inconsistent with the bytes present, the version is not 2,
 * or there are more than SL_RTCP_MAX_ITEMS packets; callbacks for the items
 * before the bad one may already have run. Borrows p. Uses about 14 KiB
 * of stack (TWCC statuses and deltas); reentrant, no allocation.
 */
int sl_rtcp_parse(const uint8_t *p, size_t len, const sl_rtcp_cb_t *cb, void *ud);

/**
 * Returns 1 when a datagram demultiplexed as RTP/RTCP is RTCP (RFC 5761:
 * version 2 and the second byte, the packet type, in 192..223), else 0.
 */
int sl_rtcp_is_rtcp(const uint8_t *p, size_t len);

/*
 * Builders. Each writes one RTCP packet at out (cap bytes available) and
 * returns its length in bytes (a multiple of 4), or SL_ETOOBIG when cap is
 * too small, or SL_EINVAL on a bad count. Concatenate them for a compound
 * packet (RFC 3550: start with SR or RR, then SDES with CNAME).
 */
/** Sender report with n (0..31) report blocks. */
int sl_rtcp_build_sr(uint8_t *out, size_t cap, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts,
                     uint32_t pkts, uint32_t octets, const sl_rtcp_report_t *blocks, int n);
/** Receiver report with n (0..31) report blocks. */
int sl_rtcp_build_rr(uint8_t *out, size_t cap, uint32_t ssrc, const sl_rtcp_report_t *blocks, int n);
/** SDES with one chunk holding a CNAME item (cname at most 255 bytes). */
int sl_rtcp_build_sdes_cname(uint8_t *out, size_t cap, uint32_t ssrc, const char *cname);
/** BYE for one SSRC, no reason. */
int sl_rtcp_build_bye(uint8_t *out, size_t cap, uint32_t ssrc);
/**
 * Generic NACK for n sequence numbers, packed into PID + BLP pairs. seqs
 * should ascend in 16-bit serial order (wrap allowed: 65534, 65535, 0, 3);
 * a seq within 16 after the pair's PID joins its bitmask, any other starts
 * a new pair; a repeat of the PID is ignored. n >= 1.
 */
int sl_rtcp_build_nack(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                       const uint16_t *seqs, int n);
/** Picture loss indication. */
int sl_rtcp_build_pli(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc);
/** Full intra request with one FCI entry; seq_nr increments per new request. */
int sl_rtcp_build_fir(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc, uint8_t seq_nr);
/**
 * REMB for n (0..255) SSRCs; bps is stored as an 18-bit mantissa and 6-bit
 * exponent, so it is rounded down to 18 significant bits.
 */
int sl_rtcp_build_remb(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint64_t bps,
                       const uint32_t *ssrcs, int n);
/**
 * Transport-wide CC feedback (RTPFB fmt 15) for n = 1..SL_TWCC_MAX_STATUS
 * statuses from base_seq, deltas as in sl_rtcp_cb_t.twcc (SL_TWCC_NOT_RECEIVED
 * for a lost packet). Chunks are chosen
 * run-length where runs are long, status vectors otherwise; zero padding to
 * 32 bits with the P bit set, as libwebrtc does.
 */
int sl_rtcp_build_twcc(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                       uint16_t base_seq, int32_t ref_time_64ms, uint8_t fb_count,
                       const int16_t *delta_250us, int n);

/** The NTP 64-bit wall clock now (seconds since 1900 << 32 | fraction). */
uint64_t sl_ntp_now(void);
/** The middle 32 bits of an NTP time: the LSR / DLSR unit (1/65536 s). */
static inline uint32_t sl_ntp_mid32(uint64_t ntp) { return (uint32_t)(ntp >> 16); }

#endif
