/*
 * Send-side congestion control for one receiver (a WebRTC viewer): the
 * bandwidth estimate the pacer (media/pacer.h) paces at and the viewer's
 * adaptation compares with the stream's bitrate. Pure logic over the
 * feedback the receiver sends and a caller-supplied clock (milliseconds),
 * so that it is tested on synthetic time; no allocation, no I/O.
 *
 * Three inputs, as in Google Congestion Control (draft-ietf-rmcat-gcc-02)
 * and libwebrtc's SendSideBandwidthEstimation:
 *   - REMB (draft-alvestrand-rmcat-remb): the receiver's own delay-based
 *     estimate; taken as a ceiling, as sent.
 *   - The loss-based controller, fed with each receiver report's fraction
 *     lost: under 2 % the estimate grows by 8 % per second of reports
 *     (plus 1 kbit/s), over 10 % it is multiplied by (1 - 0.5 x loss) at
 *     most once per 300 ms + RTT (so one burst of loss seen in several
 *     reports is not punished several times), in between it holds.
 *   - A delay-based ceiling from transport-wide feedback, when the owner
 *     computes one (sl_cc_on_delay_estimate): optional.
 *   - A floor: the rate the receiver demonstrably got with under 2 % loss
 *     (sl_cc_on_delivered, from the owner's own send counters between
 *     receiver reports). A server cannot make the stream smaller, so an
 *     estimate below what the path already carries cleanly would only
 *     drop video for nothing; receivers' REMB is often such an
 *     underestimate (aiortc's, in Python, reads its own scheduling jitter
 *     as queueing delay and reports ~1 Mbit/s while it takes 1.6 cleanly).
 * The estimate is the minimum of the ones present, raised to the floor,
 * clamped to [min, max].
 * The loss-based estimate itself is kept within [min, max] and no higher
 * than 1.5 x the lowest ceiling, so that it does not climb unboundedly
 * while REMB is the binding limit and then overshoot when REMB rises.
 */
#ifndef SL_MEDIA_CC_H
#define SL_MEDIA_CC_H

#include <stdint.h>

#define SL_CC_LOW_LOSS 0.02      /* below: increase */
#define SL_CC_HIGH_LOSS 0.10     /* above: decrease */
#define SL_CC_INCREASE 0.08      /* per second while loss is low */
#define SL_CC_DECREASE_HOLD_MS 300 /* plus the RTT: minimum time between decreases */

/* One receiver's estimator (caller-allocated; sl_cc_init, no cleanup). */
typedef struct sl_cc {
    uint64_t min_bps, max_bps;   /* clamp of every estimate */
    double loss_bps;             /* the loss-based estimate */
    uint64_t remb_bps;           /* last REMB, 0 = none received */
    uint64_t remb_ms;            /* when it came */
    uint64_t delay_bps;          /* delay-based ceiling from transport-wide feedback, 0 = none */
    uint64_t last_report_ms;     /* the last loss report (growth is per elapsed time) */
    uint64_t last_decrease_ms;   /* the last loss-based decrease */
    int have_report;             /* last_report_ms is valid */
    int have_decrease;           /* last_decrease_ms is valid */
    uint32_t rtt_ms;             /* from the reports, 0 unknown */
    uint64_t n_remb, n_reports;  /* feedback received (statistics) */
    uint8_t last_fraction;       /* the last report's fraction lost (/256) */
    uint64_t delivered_bps;      /* floor: rate received with low loss, 0 = none */
} sl_cc_t;

/**
 * Initialises cc with the clamp and the starting estimate (start_bps is
 * clamped into [min_bps, max_bps]; max_bps < min_bps is taken as min_bps).
 */
void sl_cc_init(sl_cc_t *cc, uint64_t min_bps, uint64_t start_bps, uint64_t max_bps);

/** A REMB from the receiver (bps as sent; 0 is taken as the minimum). */
void sl_cc_on_remb(sl_cc_t *cc, uint64_t bps, uint64_t now_ms);

/**
 * A receiver report block about our stream: fraction_lost in 1/256 (RFC
 * 3550), rtt_ms the round trip computed from it (0 = unknown, keeps the
 * previous value). Runs the loss-based controller.
 */
void sl_cc_on_loss(sl_cc_t *cc, uint8_t fraction_lost, uint32_t rtt_ms, uint64_t now_ms);

/** A delay-based ceiling computed elsewhere (0 removes it). */
void sl_cc_on_delay_estimate(sl_cc_t *cc, uint64_t bps);

/**
 * The rate the receiver got over the last report interval(s) when it
 * reported under 2 % loss (0 clears the floor: the owner passes 0 when the
 * loss was higher).
 */
void sl_cc_on_delivered(sl_cc_t *cc, uint64_t bps);

/**
 * The estimate in bit/s: min(loss-based, REMB, delay-based), at least the
 * delivered floor, clamped to [min, max].
 */
uint64_t sl_cc_estimate(const sl_cc_t *cc);

#endif
