/*
 * Send-side congestion control for one receiver (see cc.h): the loss-based
 * controller of GCC and the minimum with the receiver's REMB. Doubles for
 * the loss-based estimate so that 8 %/s applied every few hundred
 * milliseconds does not round away.
 */
#include "media/cc.h"

#include <stddef.h>

static double clampd(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* The lowest ceiling the receiver gave us, 0 = none. */
static uint64_t ceiling(const sl_cc_t *cc)
{
    uint64_t c = 0;
    if (cc->remb_bps)
        c = cc->remb_bps;
    if (cc->delay_bps && (!c || cc->delay_bps < c))
        c = cc->delay_bps;
    return c;
}

/* Keeps the loss-based estimate in [min, max] and under 1.5 x the ceiling. */
static void bound_loss(sl_cc_t *cc)
{
    double hi = (double)cc->max_bps;
    uint64_t c = ceiling(cc);
    if (c && 1.5 * (double)c < hi)
        hi = 1.5 * (double)c;
    if (hi < (double)cc->min_bps)
        hi = (double)cc->min_bps;
    cc->loss_bps = clampd(cc->loss_bps, (double)cc->min_bps, hi);
}

/* Initialises cc; see cc.h. */
void sl_cc_init(sl_cc_t *cc, uint64_t min_bps, uint64_t start_bps, uint64_t max_bps)
{
    *cc = (sl_cc_t){0};
    if (max_bps < min_bps)
        max_bps = min_bps;
    cc->min_bps = min_bps;
    cc->max_bps = max_bps;
    cc->loss_bps = clampd((double)start_bps, (double)min_bps, (double)max_bps);
}

/* Records a REMB; see cc.h. */
void sl_cc_on_remb(sl_cc_t *cc, uint64_t bps, uint64_t now_ms)
{
    cc->remb_bps = bps ? bps : 1;
    cc->remb_ms = now_ms;
    cc->n_remb++;
    bound_loss(cc);
}

/* Runs the loss-based controller on one report; see cc.h. */
void sl_cc_on_loss(sl_cc_t *cc, uint8_t fraction_lost, uint32_t rtt_ms, uint64_t now_ms)
{
    double loss = fraction_lost / 256.0;
    if (rtt_ms)
        cc->rtt_ms = rtt_ms;
    cc->n_reports++;
    cc->last_fraction = fraction_lost;
    if (loss < SL_CC_LOW_LOSS) {
        /* Growth is proportional to the time the reports cover (at most
         * one second per report, so a report after a long silence does
         * not jump), as libwebrtc's 8 %/s. */
        if (cc->have_report && now_ms > cc->last_report_ms) {
            uint64_t dt = now_ms - cc->last_report_ms;
            if (dt > 1000)
                dt = 1000;
            cc->loss_bps = cc->loss_bps * (1.0 + SL_CC_INCREASE * (double)dt / 1000.0) + 1000.0 * (double)dt / 1000.0;
        }
    } else if (loss > SL_CC_HIGH_LOSS) {
        uint64_t hold = SL_CC_DECREASE_HOLD_MS + cc->rtt_ms;
        if (!cc->have_decrease || now_ms - cc->last_decrease_ms >= hold) {
            cc->loss_bps *= 1.0 - 0.5 * loss;
            cc->last_decrease_ms = now_ms;
            cc->have_decrease = 1;
        }
    }
    cc->last_report_ms = now_ms;
    cc->have_report = 1;
    bound_loss(cc);
}

/* Sets or clears the delay-based ceiling; see cc.h. */
void sl_cc_on_delay_estimate(sl_cc_t *cc, uint64_t bps)
{
    cc->delay_bps = bps;
    bound_loss(cc);
}

/* Sets or clears the delivered floor; see cc.h. */
void sl_cc_on_delivered(sl_cc_t *cc, uint64_t bps)
{
    cc->delivered_bps = bps;
}

/* The current estimate; see cc.h. */
uint64_t sl_cc_estimate(const sl_cc_t *cc)
{
    double e = cc->loss_bps;
    uint64_t c = ceiling(cc);
    if (c && (double)c < e)
        e = (double)c;
    if ((double)cc->delivered_bps > e)
        e = (double)cc->delivered_bps;
    return (uint64_t)clampd(e, (double)cc->min_bps, (double)cc->max_bps);
}
