/*
 * Publisher timelines from RTP timestamps and sender reports (see
 * rtp_sync.h). Everything is kept in microseconds so that neither the
 * mapping nor its corrections accumulate rounding: a map is a base point
 * (RTP timestamp, dts) plus the nominal clock, rebased only at a switch,
 * at an SR, or when the timestamp distance nears the int32 range.
 */
#include "media/rtp_sync.h"

#include <string.h>

#include "sluice/errors.h"

#define REBASE_TICKS (1 << 30) /* rebase before (int32)(ts - base_ts) can overflow */

/* Microseconds of d RTP ticks at clock (d may be negative). */
static int64_t ticks_us(int64_t d, uint32_t clock)
{
    return d * 1000000 / (int64_t)clock;
}

/* An NTP 64-bit fixed-point time in microseconds. */
static int64_t ntp_us(uint64_t ntp)
{
    return (int64_t)(ntp >> 32) * 1000000 + (int64_t)(((ntp & 0xffffffffu) * 1000000u) >> 32);
}

/* The sender's NTP time (us) of RTP timestamp ts through the track's last SR. */
static int64_t sr_map_us(const sl_rtp_sync_track_t *t, uint32_t ts)
{
    return ntp_us(t->sr_ntp) + ticks_us((int32_t)(ts - t->sr_rtp), t->clock);
}

/* The map in use at ts. */
static int64_t map_us(const sl_rtp_sync_track_t *t, uint32_t ts)
{
    return t->base_us + ticks_us((int32_t)(ts - t->base_ts), t->clock);
}

void sl_rtp_sync_init(sl_rtp_sync_t *s)
{
    memset(s, 0, sizeof *s);
    s->mode = SL_RTP_SYNC_ARRIVAL;
}

int sl_rtp_sync_add_track(sl_rtp_sync_t *s, uint32_t clock)
{
    if (!clock)
        return SL_EINVAL;
    if (s->n_tracks >= SL_RTP_SYNC_TRACKS)
        return SL_ETOOBIG;
    sl_rtp_sync_track_t *t = &s->t[s->n_tracks];
    memset(t, 0, sizeof *t);
    t->clock = clock;
    return s->n_tracks++;
}

/*
 * Switches to SR mode when every track has started and has an SR. The
 * common offset is the largest (last dts - its NTP time) among the tracks,
 * so that no track's next dts is below its last one; each track is rebased
 * at its newest timestamp and the forward step is recorded for the caller.
 */
static void try_switch(sl_rtp_sync_t *s)
{
    if (s->mode != SL_RTP_SYNC_ARRIVAL || s->n_tracks == 0)
        return;
    int64_t off_max = INT64_MIN, off_min = INT64_MAX;
    for (int i = 0; i < s->n_tracks; i++) {
        const sl_rtp_sync_track_t *t = &s->t[i];
        if (!t->started || !t->have_sr)
            return;
        int64_t off = t->last_us - sr_map_us(t, t->last_ts);
        if (off > off_max)
            off_max = off;
        if (off < off_min)
            off_min = off;
    }
    if (off_max - off_min > (int64_t)SL_RTP_SYNC_MAX_SKEW_MS * 1000) {
        s->refused++;
        return;
    }
    s->mode = SL_RTP_SYNC_SR;
    s->offset_us = off_max;
    s->skew_us = off_max - off_min;
    for (int i = 0; i < s->n_tracks; i++) {
        sl_rtp_sync_track_t *t = &s->t[i];
        t->base_ts = t->last_ts;
        t->base_us = sr_map_us(t, t->last_ts) + s->offset_us;
        t->jump_us = t->base_us - t->last_us; /* >= 0 by the choice of the offset */
        t->corr_us = 0;
    }
}

void sl_rtp_sync_on_sr(sl_rtp_sync_t *s, int track, uint64_t ntp, uint32_t rtp_ts)
{
    if (track < 0 || track >= s->n_tracks)
        return;
    sl_rtp_sync_track_t *t = &s->t[track];
    if (ntp == 0) {
        t->srs_ignored++;
        return;
    }
    if (s->mode == SL_RTP_SYNC_SR && t->started) {
        /* Follow: the new target at the newest packet, against the map in use. */
        uint64_t old_ntp = t->sr_ntp;
        uint32_t old_rtp = t->sr_rtp;
        t->sr_ntp = ntp;
        t->sr_rtp = rtp_ts;
        int64_t cur = map_us(t, t->last_ts);
        int64_t delta = sr_map_us(t, t->last_ts) + s->offset_us - cur;
        if (delta > (int64_t)SL_RTP_SYNC_MAX_STEP_MS * 1000 || delta < -(int64_t)SL_RTP_SYNC_MAX_STEP_MS * 1000) {
            t->sr_ntp = old_ntp;
            t->sr_rtp = old_rtp;
            t->srs_ignored++;
            return;
        }
        t->base_ts = t->last_ts;
        t->base_us = cur;
        t->corr_us = delta;
        t->srs++;
        return;
    }
    t->sr_ntp = ntp;
    t->sr_rtp = rtp_ts;
    t->have_sr = 1;
    t->srs++;
    try_switch(s);
}

int64_t sl_rtp_sync_dts(sl_rtp_sync_t *s, int track, uint32_t rtp_ts, uint64_t arrival_ms)
{
    if (track < 0 || track >= s->n_tracks)
        return 0;
    sl_rtp_sync_track_t *t = &s->t[track];
    if (!s->zero_set) {
        s->zero_set = 1;
        s->zero_ms = arrival_ms;
    }
    if (!t->started) {
        /* Only in arrival mode: SR mode needs every track started. The
         * switch this may complete can move the track's map forward. */
        t->started = 1;
        t->base_ts = t->last_ts = rtp_ts;
        t->base_us = t->last_us = arrival_ms > s->zero_ms ? (int64_t)(arrival_ms - s->zero_ms) * 1000 : 0;
        try_switch(s);
    }
    int32_t ahead = (int32_t)(rtp_ts - t->last_ts);
    if (ahead > 0) {
        if (t->corr_us) {
            /* Slew: at most SLEW_PCT % of the media time this packet advances. */
            int64_t room = ticks_us(ahead, t->clock) * SL_RTP_SYNC_SLEW_PCT / 100;
            int64_t step = t->corr_us > room ? room : t->corr_us < -room ? -room : t->corr_us;
            t->base_us += step;
            t->corr_us -= step;
        }
        t->last_ts = rtp_ts;
        if ((int32_t)(rtp_ts - t->base_ts) > REBASE_TICKS || (int32_t)(rtp_ts - t->base_ts) < -REBASE_TICKS) {
            t->base_us = map_us(t, rtp_ts);
            t->base_ts = rtp_ts;
        }
    }
    int64_t us = map_us(t, rtp_ts);
    if (us < t->last_us)
        us = t->last_us; /* a reordered packet, or a correction not yet slewed in */
    t->last_us = us;
    return us / 1000;
}

int64_t sl_rtp_sync_take_jump(sl_rtp_sync_t *s, int track)
{
    if (track < 0 || track >= s->n_tracks)
        return 0;
    int64_t j = s->t[track].jump_us;
    s->t[track].jump_us = 0;
    return j / 1000;
}

const char *sl_rtp_sync_mode_name(const sl_rtp_sync_t *s)
{
    return s->mode == SL_RTP_SYNC_SR ? "sender_report" : "arrival";
}
