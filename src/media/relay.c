/*
 * A stream's fan-out relay to one worker loop (see relay.h): the main
 * loop's sink that posts each frame once per worker, and the worker's
 * hand-out of it to the members there.
 */
#include "media/relay.h"

#include <sched.h>

#include "base/alloc.h"
#include "base/log.h"
#include "sluice/errors.h"

struct sl_relay {
    sl_sink_t sink;          /* main: attached to the stream, internal (not a player) */
    sl_worker_t *worker;     /* the loop it feeds */
    sl_list_t link;          /* main: in set->relays */
    size_t users;            /* main: users counted by sl_relay_acquire */
    int joining;             /* main: inside sl_hub_add_sink (the replay is not for it) */
    int skipping;            /* main: the inbox refused a frame: drop to a resync point */
    int video_seen;          /* main: a video frame has passed (resync on keyframes) */
    uint64_t refused;        /* main: frames dropped because the inbox was full */
    sl_list_t members;       /* worker: sl_relay_member_t */
};

void sl_relay_post(sl_worker_t *w, sl_worker_fn fn, void *obj, uint64_t u)
{
    while (sl_worker_post(w, fn, obj, u) == SL_EAGAIN)
        sched_yield();
}

void sl_relay_set_init(sl_relay_set_t *set) { sl_list_init(&set->relays); }

sl_worker_t *sl_relay_worker(const sl_relay_t *r) { return r->worker; }

uint64_t sl_relay_refused(const sl_relay_t *r) { return r->refused; }

/* Worker: a frame for every member here; the message's reference drops. */
static void relay_frame(sl_worker_t *w, void *obj, uint64_t u)
{
    sl_relay_t *r = obj;
    sl_frame_t *f = (sl_frame_t *)(uintptr_t)u;
    uint64_t now = uv_now(sl_worker_loop(w));
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &r->members) {
        sl_relay_member_t *m = sl_container_of(it, sl_relay_member_t, link);
        m->on_frame(m, f, now);
    }
    sl_frame_unref(f);
}

/* Worker: the relay's last message. */
static void relay_free(sl_worker_t *w, void *obj, uint64_t u)
{
    (void)w;
    (void)u;
    sl_relay_t *r = obj;
    SL_ASSERT(sl_list_empty(&r->members)); /* each member's removal came before */
    sl_free(r);
}

/* Main loop: one reference, one message per frame; a full inbox drops to
 * the next resync point (configuration frames wait for room). */
static void relay_on_frame(sl_sink_t *sink, sl_frame_t *f)
{
    sl_relay_t *r = sink->ctx;
    if (r->joining)
        return;
    int keep = (f->flags & (SL_FRAME_CONFIG | SL_FRAME_META)) != 0;
    if (f->kind == SL_FLV_VIDEO && !keep)
        r->video_seen = 1;
    if (r->skipping && !keep) {
        int resync = f->kind == SL_FLV_VIDEO ? (f->flags & SL_FRAME_KEY) != 0
                                             : f->kind == SL_FLV_AUDIO && !r->video_seen;
        if (!resync) {
            r->refused++;
            return;
        }
        r->skipping = 0;
    }
    sl_frame_ref(f);
    if (keep) {
        sl_relay_post(r->worker, relay_frame, r, (uint64_t)(uintptr_t)f);
        return;
    }
    if (sl_worker_post(r->worker, relay_frame, r, (uint64_t)(uintptr_t)f) == SL_EAGAIN) {
        sl_frame_unref(f);
        if (!r->refused)
            SL_LOGW(NULL, "worker %d is behind (inbox full): its relayed players of %s drop to "
                    "the next keyframe", sl_worker_index(r->worker),
                    sink->stream ? sink->stream->name : "-");
        r->refused++;
        r->skipping = 1;
    }
}

static const sl_sink_ops_t relay_ops = {.on_frame = relay_on_frame};

sl_relay_t *sl_relay_acquire(sl_relay_set_t *set, sl_stream_t *st, sl_worker_t *w)
{
    sl_list_t *it;
    for (it = set->relays.next; it != &set->relays; it = it->next) {
        sl_relay_t *r = sl_container_of(it, sl_relay_t, link);
        if (r->sink.stream == st && r->worker == w) {
            r->users++;
            return r;
        }
    }
    SL_ASSERT(!st->pushing); /* attaching a sink inside a push would move its list */
    sl_relay_t *r = sl_calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->sink.ops = &relay_ops;
    r->sink.ctx = r;
    r->sink.internal = 1;
    r->worker = w;
    sl_list_init(&r->members);
    r->joining = 1;
    int rc = sl_hub_add_sink(st->hub, st->name, &r->sink);
    r->joining = 0;
    if (rc) {
        sl_free(r);
        return NULL;
    }
    r->users = 1;
    sl_list_push_back(&set->relays, &r->link);
    return r;
}

void sl_relay_release(sl_relay_t *r)
{
    SL_ASSERT(r->users > 0);
    if (--r->users)
        return;
    sl_list_remove(&r->link);
    sl_stream_remove_sink(&r->sink);
    sl_relay_post(r->worker, relay_free, r, 0);
}

void sl_relay_add(sl_relay_t *r, sl_relay_member_t *m)
{
    SL_ASSERT(m->on_frame);
    sl_list_push_back(&r->members, &m->link);
}

void sl_relay_remove(sl_relay_member_t *m)
{
    if (!sl_list_linked(&m->link))
        return;
    sl_list_remove(&m->link);
}
