/*
 * Publisher timelines from RTP timestamps: the stream dts (ms) of each
 * packet of a sender's tracks (a WHIP publisher's video and audio; later an
 * RTSP source), lip-synced through the sender's RTCP sender reports as
 * RFC 3550 §6.4.1 intends.
 *
 * Two regimes. Until every track has started and has a sender report,
 * each track is anchored at the arrival of its first packet (dts = arrival
 * - arrival of the first packet of any track) and advanced by its RTP
 * clock: what a receiver can do without the sender's clock, and what a
 * track that is delayed on the way (a slower path, a jitter buffer) gets
 * wrong by that delay. Once every track has an SR, each RTP timestamp is
 * mapped to the sender's NTP clock (ntp(ts) = sr_ntp + (ts - sr_rtp) /
 * clock), and every track uses dts = ntp(ts) + one common offset, so
 * samples captured together get the same dts whatever their delay on the
 * way. The offset is the largest (dts - ntp) of the tracks at the switch:
 * the track that arrived latest relative to its capture keeps its dts and
 * the others step forward to meet it, so no dts ever goes backwards (a
 * forward step of the early track is exactly the delay a player would
 * have to add to it). The step is reported once per track
 * (sl_rtp_sync_take_jump) for consumers that follow a timeline by sample
 * counts (an audio transcoder) and must restart to follow it.
 *
 * Later SRs are followed smoothly: each one gives a new target mapping;
 * the difference from the mapping in use at the newest packet is applied
 * gradually, at most SL_RTP_SYNC_SLEW_PCT % of the media time that passes
 * (dts then advances at 0.9x to 1.1x the RTP clock), never as a step.
 * Sender clock drift and SR jitter therefore never make a dts go back. An
 * SR that would move a track by more than SL_RTP_SYNC_MAX_STEP_MS is
 * ignored (a sender that restarted its clock or lies): its track goes on by
 * its RTP clock. When the tracks' SRs disagree with their arrival by more
 * than SL_RTP_SYNC_MAX_SKEW_MS between them, the switch is refused (the
 * SRs are not on one clock) and arrival anchoring stays. SRs with an NTP
 * time of 0 (aiortc sends one before its first packet) are ignored.
 *
 * Per track, dts never decreases: a reordered older packet gets the last
 * dts. A track with a single SR and no partner (audio-only, video-only)
 * switches with no step and then follows its SRs. A track declared but
 * never started keeps the others on arrival anchoring.
 *
 * Pure (no clock of its own: the caller passes arrival times), caller
 * allocated, no allocation, no failure after init. Media layer: includes
 * only libc and sluice/errors.h.
 */
#ifndef SL_MEDIA_RTP_SYNC_H
#define SL_MEDIA_RTP_SYNC_H

#include <stdint.h>

#define SL_RTP_SYNC_TRACKS 2          /* tracks per sender (video, audio) */
#define SL_RTP_SYNC_SLEW_PCT 10       /* a correction moves dts by at most 10% of media time */
#define SL_RTP_SYNC_MAX_STEP_MS 1000  /* a later SR moving its track more than this is ignored */
#define SL_RTP_SYNC_MAX_SKEW_MS 3000  /* tracks disagreeing more than this never switch to SRs */

typedef enum {
    SL_RTP_SYNC_ARRIVAL = 0,          /* tracks anchored at their first packet's arrival */
    SL_RTP_SYNC_SR = 1,               /* tracks mapped through the sender's SRs */
} sl_rtp_sync_mode_t;

/* One track. Fields are read-only for the caller (tests and statistics). */
typedef struct sl_rtp_sync_track {
    uint32_t clock;       /* RTP clock rate (Hz) */
    int started;          /* a packet has been mapped */
    uint32_t base_ts;     /* the map in use: dts_us(ts) = base_us + (int32)(ts - base_ts) * 1e6 / clock */
    int64_t base_us;
    uint32_t last_ts;     /* newest RTP timestamp mapped */
    int64_t last_us;      /* the largest dts given (us): no dts below it */
    int have_sr;          /* an SR (with a non-zero NTP time) was seen */
    uint64_t sr_ntp;      /* the last SR: NTP time (64-bit fixed point) */
    uint32_t sr_rtp;      /* and the RTP timestamp it maps */
    int64_t corr_us;      /* correction still to apply (slewed in as media time passes) */
    int64_t jump_us;      /* forward step of the last switch, until taken */
    uint64_t srs;         /* SRs taken */
    uint64_t srs_ignored; /* SRs ignored (NTP 0, or a step beyond SL_RTP_SYNC_MAX_STEP_MS) */
} sl_rtp_sync_track_t;

typedef struct sl_rtp_sync {
    int n_tracks;
    sl_rtp_sync_track_t t[SL_RTP_SYNC_TRACKS];
    int zero_set;
    uint64_t zero_ms;     /* arrival of the first packet of any track: dts 0 */
    sl_rtp_sync_mode_t mode;
    int64_t offset_us;    /* SR mode: dts_us = ntp_us(ts) + offset_us (ntp_us: NTP in microseconds) */
    int64_t skew_us;      /* at the switch: how far apart the tracks' arrival offsets were */
    uint64_t refused;     /* switches refused for skew beyond SL_RTP_SYNC_MAX_SKEW_MS */
} sl_rtp_sync_t;

/** Initialises an empty timeline (no tracks, arrival mode). Nothing to clean up. */
void sl_rtp_sync_init(sl_rtp_sync_t *s);
/**
 * Declares a track with RTP clock rate clock (e.g. 90000, 48000); declare
 * every track the sender negotiated before the first packet. Returns the
 * track index (0..SL_RTP_SYNC_TRACKS-1), SL_EINVAL for a zero clock, or
 * SL_ETOOBIG when SL_RTP_SYNC_TRACKS are declared.
 */
int sl_rtp_sync_add_track(sl_rtp_sync_t *s, uint32_t clock);
/**
 * The dts in ms (>= 0, never below the track's previous one) of a packet
 * of track with RTP timestamp rtp_ts that arrived at arrival_ms (any
 * monotonic millisecond clock, the same for every call). Packets of one
 * frame share a timestamp and get the same dts. An unknown track gives 0.
 */
int64_t sl_rtp_sync_dts(sl_rtp_sync_t *s, int track, uint32_t rtp_ts, uint64_t arrival_ms);
/**
 * A sender report of track: its NTP time (64-bit fixed point, RFC 3550)
 * and the RTP timestamp it corresponds to. May switch the timeline to SR
 * mode (when every track has started and has an SR) or correct the
 * track's mapping (slewed). Unknown tracks are ignored.
 */
void sl_rtp_sync_on_sr(sl_rtp_sync_t *s, int track, uint64_t ntp, uint32_t rtp_ts);
/**
 * The forward step (ms, >= 0) the last switch gave track, then 0 until
 * the next switch: the caller restarts what follows the track by sample
 * count. Unknown tracks give 0.
 */
int64_t sl_rtp_sync_take_jump(sl_rtp_sync_t *s, int track);
/** "arrival" or "sender_report": the regime, for statistics. */
const char *sl_rtp_sync_mode_name(const sl_rtp_sync_t *s);

#endif
