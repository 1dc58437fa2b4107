/*
 * A stream's fan-out relay to one worker loop (server.workers > 1;
 * docs/internals/threads.md): the media-level piece any player protocol
 * uses to run its players' per-frame work on a worker.
 *
 * Per stream and worker with relayed players of it, one internal sink on
 * the main loop takes one reference of each pushed frame and posts it to
 * the worker: one message per frame per worker, whatever the number of
 * players there. On the worker, the relay hands the frame to each of its
 * members (sl_relay_member_t, the protocol's worker-side players, linked
 * and unlinked on the worker) through the member's callback, then drops
 * the reference. A worker whose inbox is full makes the relay drop to the
 * next resync point (a video keyframe, or any audio frame of a stream
 * without video) for all its members, as a player's own queue would;
 * configuration frames wait for room instead.
 *
 * Who owns what: the main loop makes, attaches, counts and detaches the
 * relay (sl_relay_acquire / sl_relay_release) and keeps the set it is
 * found in; the member list is the worker's. The block is freed on the
 * worker by the last message naming it, posted by the last release behind
 * every frame, so a member must be unlinked (sl_relay_remove, by a message
 * its owner posted before calling sl_relay_release) before that.
 *
 * The RTMP module keeps its own relay (rtmp_conn.c, same shape, built
 * first); HTTP-FLV uses this one.
 */
#ifndef SL_MEDIA_RELAY_H
#define SL_MEDIA_RELAY_H

#include <stdint.h>

#include "base/list.h"
#include "media/stream.h"
#include "net/workers.h"

typedef struct sl_relay sl_relay_t;
typedef struct sl_relay_member sl_relay_member_t;

/** A frame for one member, on the worker (f borrowed; now_ms: the worker's loop time). */
typedef void (*sl_relay_frame_cb)(sl_relay_member_t *m, sl_frame_t *f, uint64_t now_ms);

struct sl_relay_member {
    sl_list_t link;              /* worker: in the relay's members (unlinked: not a member) */
    sl_relay_frame_cb on_frame;  /* set by the owner before sl_relay_add */
};

/** A set of relays (one per stream and worker), owned by a protocol on the main loop. */
typedef struct sl_relay_set {
    sl_list_t relays;            /* sl_relay_t */
} sl_relay_set_t;

/** Initialises an empty set (main loop). */
void sl_relay_set_init(sl_relay_set_t *set);

/**
 * Main loop, never from inside a push of st: the relay of stream st to
 * worker w, made and attached to st when this is its first user, and
 * counts one more user. The relay's sink ignores the replay of the
 * stream's caches at its own attach (its users' queues have them).
 * Returns the relay (borrowed until the matching sl_relay_release), or
 * NULL when out of memory (nothing counted).
 */
sl_relay_t *sl_relay_acquire(sl_relay_set_t *set, sl_stream_t *st, sl_worker_t *w);
/**
 * Main loop: one user less. The last one detaches the sink and posts the
 * free to the worker behind every frame already posted. The caller's
 * member must have been unlinked by a message posted before this call.
 */
void sl_relay_release(sl_relay_t *r);
/** The worker the relay feeds (any thread: set at creation). */
sl_worker_t *sl_relay_worker(const sl_relay_t *r);
/** Frames the relay dropped because the worker's inbox was full (main loop). */
uint64_t sl_relay_refused(const sl_relay_t *r);

/** Worker: m starts getting the relay's frames (m->on_frame set; m not a member). */
void sl_relay_add(sl_relay_t *r, sl_relay_member_t *m);
/** Worker: m stops getting them (no-op when not a member). m->link must be initialised. */
void sl_relay_remove(sl_relay_member_t *m);

/**
 * Posts fn(w, obj, u) to w for a message that must not be lost (attach,
 * detach, end): a full inbox is waited out (the worker drains it without
 * us). Main thread only, as every post to an extra worker.
 */
void sl_relay_post(sl_worker_t *w, sl_worker_fn fn, void *obj, uint64_t u);

#endif
