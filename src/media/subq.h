/*
 * A subscriber's bounded frame queue and its slow-consumer policy.
 *
 * Every subscriber (an RTMP player, an HTTP-FLV response, ...) owns one.
 * The stream pushes frame references in; the protocol pops them when its
 * socket can take more. The queue is bounded in bytes and in media time.
 * When a push would pass either bound the queue drops everything it holds
 * and then skips incoming frames until the next video keyframe (or, for a
 * stream without video, the next audio frame), so the subscriber resumes
 * on a clean picture instead of a smeared one; configuration frames are
 * never dropped. Each drop is counted. A subscriber that has been lagging
 * (not drained to empty since its first drop) for longer than the
 * configured time is reported by sl_subq_push() as SL_ESLOW: the owner
 * disconnects it with a logged reason. The publisher and the other
 * subscribers never wait for it.
 *
 * That reaction is the one slow-player policy of every protocol:
 * sl_subq_offer pushes, counts the drops into the session's counter and
 * tells the owner when the player first falls behind (log it once), and
 * sl_subq_slow_reason words the disconnect, so RTMP and HTTP-FLV (and any
 * later player protocol) behave and log alike.
 */
#ifndef SL_MEDIA_SUBQ_H
#define SL_MEDIA_SUBQ_H

#include <stddef.h>
#include <stdint.h>

#include "media/frame.h"

/* One queued frame and the owner's tag for it (RTMP: the output timestamp,
 * fixed when the frame was accepted so a later republish cannot shift it). */
typedef struct sl_subq_item {
    sl_frame_t *f;          /* owned reference */
    uint32_t tag;           /* owner's value */
} sl_subq_item_t;

typedef struct sl_subq {
    sl_subq_item_t *ring;   /* owned array */
    uint32_t cap;           /* ring capacity (power of two) */
    uint32_t head;          /* index of the oldest frame */
    uint32_t count;         /* frames queued */
    size_t bytes;           /* sum of queued frame sizes */
    size_t max_bytes;       /* bound in bytes */
    uint32_t max_ms;        /* bound in media time (newest dts - oldest dts) */
    uint64_t slow_ms;       /* lagging longer than this: SL_ESLOW (0 = never) */
    int skipping;           /* dropping until a resync point */
    int video_seen;         /* a video frame has passed: resync on video keyframes */
    uint64_t lag_since_ms;  /* time of the first drop not yet drained; 0 = not lagging */
    uint64_t frames_dropped;/* frames discarded by the policy */
    uint64_t drop_events;   /* times the bound was hit */
} sl_subq_t;

/** Initialises an empty queue with its bounds. 0 or SL_ENOMEM. */
int sl_subq_init(sl_subq_t *q, size_t max_bytes, uint32_t max_ms, uint64_t slow_ms);
/** Drops every queued reference and frees the ring. */
void sl_subq_cleanup(sl_subq_t *q);
/**
 * Offers a frame (borrowed; the queue takes its own reference when it keeps
 * it). now_ms is the loop time, for the lag clock. Returns 0 when queued,
 * 1 when dropped by the policy, SL_ESLOW when the subscriber has lagged past
 * slow_ms (the frame is not queued), SL_ENOMEM.
 */
int sl_subq_push(sl_subq_t *q, sl_frame_t *f, uint32_t tag, uint64_t now_ms);
/** sl_subq_offer: the frame was dropped, and it is the player's first drop. */
#define SL_SUBQ_FELL_BEHIND 2
/**
 * The slow-player policy around sl_subq_push, for a player's sink: offers
 * f (borrowed) with the owner's tag at loop time now_ms and adds the frames
 * the policy dropped to *session_dropped (the session's counter). Returns
 * what sl_subq_push returns, except SL_SUBQ_FELL_BEHIND instead of 1 for
 * the first drop of the queue's life (the owner logs "falling behind,
 * dropping to the next keyframe" once). On SL_ESLOW the owner disconnects
 * the player with sl_subq_slow_reason.
 */
static inline int sl_subq_offer(sl_subq_t *q, sl_frame_t *f, uint32_t tag, uint64_t now_ms,
                                uint64_t *session_dropped)
{
    uint64_t before = q->frames_dropped;
    int rc = sl_subq_push(q, f, tag, now_ms);
    *session_dropped += q->frames_dropped - before;
    if (rc == 1 && q->drop_events == 1 && before == 0)
        return SL_SUBQ_FELL_BEHIND;
    return rc;
}
/**
 * Words the reason a slow player is disconnected ("subscriber too slow:
 * lagging for over N ms, M frames dropped") into buf (cap bytes, always
 * terminated when cap > 0); returns buf.
 */
char *sl_subq_slow_reason(const sl_subq_t *q, char *buf, size_t cap);
/** Oldest queued frame (borrowed) or NULL. */
static inline sl_frame_t *sl_subq_peek(const sl_subq_t *q)
{
    return q->count ? q->ring[q->head].f : NULL;
}
/** The i-th queued item from the oldest (borrowed); i < count. */
static inline sl_subq_item_t *sl_subq_at(const sl_subq_t *q, uint32_t i)
{
    SL_ASSERT(i < q->count); /* only queued items are addressed */
    return &q->ring[(q->head + i) & (q->cap - 1)];
}
/**
 * Removes the oldest n items and hands their references to the caller
 * (out[0..n), which must have room), or drops them when out is NULL.
 * Draining to empty ends a lag episode.
 */
void sl_subq_pop(sl_subq_t *q, uint32_t n, sl_subq_item_t *out);
/** Drops everything queued and waits for the next resync point (used by pause/seek). */
void sl_subq_flush(sl_subq_t *q);
/**
 * Gives back the memory of a ring that grew for a burst (the GOP cache
 * replayed at join) once it is empty; a no-op otherwise, or when the small
 * ring cannot be allocated. Call it periodically, not per frame.
 */
void sl_subq_trim(sl_subq_t *q);

#endif
