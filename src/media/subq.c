/*
 * Subscriber queue and drop policy (see subq.h).
 *
 * The ring starts small (SUBQ_INITIAL_CAP frames: a player written at once
 * holds one or two frames, one behind a 100 ms merged-write window about
 * eight) and doubles when full. A join replays the whole GOP cache into it
 * at once (a 2 s GOP is ~150 frames), so after that burst has drained the
 * ring goes back to its initial size: otherwise every player would keep
 * 4 KB it no longer needs. The owner calls sl_subq_trim() now and then
 * (RTMP: from its 250 ms sweep), which shrinks an empty ring at least
 * SUBQ_SHRINK_FACTOR times the initial size: a queue that fills and
 * drains in bursts (a player catching up) is not made to reallocate on
 * every drain, and the steady state never allocates.
 */
#include "media/subq.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "sluice/errors.h"

#define SUBQ_INITIAL_CAP 16
#define SUBQ_SHRINK_FACTOR 4
#define SUBQ_MAX_CAP (1u << 16) /* frames; far beyond any sane byte bound */

int sl_subq_init(sl_subq_t *q, size_t max_bytes, uint32_t max_ms, uint64_t slow_ms)
{
    memset(q, 0, sizeof(*q));
    q->ring = sl_malloc(SUBQ_INITIAL_CAP * sizeof(*q->ring));
    if (!q->ring)
        return SL_ENOMEM;
    q->cap = SUBQ_INITIAL_CAP;
    q->max_bytes = max_bytes;
    q->max_ms = max_ms;
    q->slow_ms = slow_ms;
    return 0;
}

static void drop_all(sl_subq_t *q)
{
    uint32_t kept = 0;
    /* Configuration frames survive: a subscriber resuming at a keyframe
     * still needs the decoder configuration that preceded it. */
    for (uint32_t i = 0; i < q->count; i++) {
        sl_subq_item_t it = *sl_subq_at(q, i);
        sl_frame_t *f = it.f;
        if (f->flags & (SL_FRAME_CONFIG | SL_FRAME_META)) {
            q->ring[(q->head + kept) & (q->cap - 1)] = it;
            kept++;
        } else {
            q->bytes -= sl_frame_size(f);
            q->frames_dropped++;
            sl_frame_unref(f);
        }
    }
    q->count = kept;
}

void sl_subq_cleanup(sl_subq_t *q)
{
    for (uint32_t i = 0; i < q->count; i++)
        sl_frame_unref(sl_subq_at(q, i)->f);
    sl_free(q->ring);
    memset(q, 0, sizeof(*q));
}

static int grow(sl_subq_t *q)
{
    if (q->cap >= SUBQ_MAX_CAP)
        return SL_ETOOBIG;
    uint32_t ncap = q->cap * 2;
    sl_subq_item_t *nr = sl_malloc(ncap * sizeof(*nr));
    if (!nr)
        return SL_ENOMEM;
    for (uint32_t i = 0; i < q->count; i++)
        nr[i] = *sl_subq_at(q, i);
    sl_free(q->ring);
    q->ring = nr;
    q->cap = ncap;
    q->head = 0;
    return 0;
}

static int is_resync_point(sl_subq_t *q, const sl_frame_t *f)
{
    if (f->kind == SL_FLV_VIDEO)
        return (f->flags & SL_FRAME_KEY) != 0;
    if (f->kind == SL_FLV_AUDIO)
        return !q->video_seen;
    return 0;
}

int sl_subq_push(sl_subq_t *q, sl_frame_t *f, uint32_t tag, uint64_t now_ms)
{
    int keep_always = (f->flags & (SL_FRAME_CONFIG | SL_FRAME_META)) != 0;
    if (f->kind == SL_FLV_VIDEO && !(f->flags & SL_FRAME_CONFIG))
        q->video_seen = 1;
    if (q->lag_since_ms && q->slow_ms && now_ms - q->lag_since_ms > q->slow_ms)
        return SL_ESLOW;
    /* Configuration frames are never dropped, so they alone could grow the
     * queue without bound (a publisher resending sequence headers to a
     * stuck player): past twice the bound the subscriber is hopeless. */
    if (keep_always && q->bytes + sl_frame_size(f) > 2 * q->max_bytes)
        return SL_ESLOW;
    if (q->skipping && !keep_always) {
        if (!is_resync_point(q, f)) {
            q->frames_dropped++;
            return 1;
        }
        q->skipping = 0;
    }
    if (!keep_always && q->count) {
        /* The time span is measured between media frames: configuration
         * and metadata frames carry the timestamp of when they were first
         * sent (often 0), so a newcomer's replayed configs must not make
         * the GOP that follows them look minutes long. */
        const sl_frame_t *oldest = NULL;
        for (uint32_t i = 0; i < q->count && !oldest; i++) {
            const sl_frame_t *o = sl_subq_at(q, i)->f;
            if (!(o->flags & (SL_FRAME_CONFIG | SL_FRAME_META)))
                oldest = o;
        }
        uint32_t span = oldest ? f->dts_ms - oldest->dts_ms : 0;
        int over_bytes = q->bytes + sl_frame_size(f) > q->max_bytes;
        int over_time = q->max_ms && span > q->max_ms && span < 0x80000000u;
        if (over_bytes || over_time) {
            drop_all(q);
            q->drop_events++;
            if (!q->lag_since_ms)
                q->lag_since_ms = now_ms ? now_ms : 1;
            if (!is_resync_point(q, f)) {
                q->skipping = 1;
                q->frames_dropped++;
                return 1;
            }
        }
    }
    if (q->count == q->cap) {
        int rc = grow(q);
        if (rc)
            return rc;
    }
    sl_subq_item_t *slot = &q->ring[(q->head + q->count) & (q->cap - 1)];
    slot->f = sl_frame_ref(f);
    slot->tag = tag;
    q->count++;
    q->bytes += sl_frame_size(f);
    return 0;
}

void sl_subq_pop(sl_subq_t *q, uint32_t n, sl_subq_item_t *out)
{
    if (n > q->count)
        n = q->count;
    for (uint32_t i = 0; i < n; i++) {
        sl_subq_item_t it = q->ring[q->head];
        SL_ASSERT(q->bytes >= sl_frame_size(it.f)); /* bytes is the sum over the queue */
        q->bytes -= sl_frame_size(it.f);
        if (out)
            out[i] = it;
        else
            sl_frame_unref(it.f);
        q->head = (q->head + 1) & (q->cap - 1);
    }
    q->count -= n;
    if (q->count == 0) {
        q->head = 0;
        q->lag_since_ms = 0;
    }
}

void sl_subq_trim(sl_subq_t *q)
{
    if (q->count || q->cap < SUBQ_INITIAL_CAP * SUBQ_SHRINK_FACTOR)
        return;
    /* A burst is over: give its ring back (keep the big one if the small
     * one cannot be had; it is only memory). */
    sl_subq_item_t *nr = sl_malloc(SUBQ_INITIAL_CAP * sizeof(*nr));
    if (!nr)
        return;
    sl_free(q->ring);
    q->ring = nr;
    q->cap = SUBQ_INITIAL_CAP;
    q->head = 0;
}

void sl_subq_flush(sl_subq_t *q)
{
    drop_all(q);
    q->skipping = 1;
}

char *sl_subq_slow_reason(const sl_subq_t *q, char *buf, size_t cap)
{
    if (cap)
        snprintf(buf, cap, "subscriber too slow: lagging for over %lld ms, %llu frames dropped",
                 (long long)q->slow_ms, (unsigned long long)q->frames_dropped);
    return buf;
}
