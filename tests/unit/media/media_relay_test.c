/*
 * The media-level fan-out relay (media/relay.h) with a real worker
 * thread: every frame pushed to the stream reaches the worker's member
 * once, in order, on the worker's thread; a worker whose inbox is full
 * makes the relay drop to the next keyframe (counted), and the member
 * resumes on that keyframe; the last release detaches the relay's sink and
 * frees it on the worker behind its frames; nothing is left allocated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sched.h>
#include <string.h>
#include <cmocka.h>

#include <uv.h>

#include "base/alloc.h"
#include "media/relay.h"
#include "media/stream.h"
#include "sluice/errors.h"

#define N_FRAMES 1000
#define INBOX 256            /* messages: phase 1 fits, phase 2 does not */
#define BLOCKED 400

typedef struct {
    sl_relay_member_t m;
    uint32_t dts[N_FRAMES];      /* worker: what arrived, in order */
    uint8_t key[N_FRAMES];
    int n;
    int wrong_thread;
    uv_thread_t worker_thread;   /* set by the first message */
    uv_sem_t go;                 /* the blocker waits on it */
} member_t;

static member_t g;

static void on_frame(sl_relay_member_t *m, sl_frame_t *f, uint64_t now_ms)
{
    (void)now_ms;
    member_t *mm = (member_t *)m;
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &mm->worker_thread))
        mm->wrong_thread = 1;
    if (mm->n < N_FRAMES) {
        mm->dts[mm->n] = f->dts_ms;
        mm->key[mm->n] = (f->flags & SL_FRAME_KEY) != 0;
        mm->n++;
    }
}

/* Worker: join the relay (u), then optionally block until the main thread says go. */
static void join(sl_worker_t *w, void *obj, uint64_t u)
{
    (void)w;
    g.worker_thread = uv_thread_self();
    sl_relay_add((sl_relay_t *)(uintptr_t)u, obj);
}
static void block(sl_worker_t *w, void *obj, uint64_t u)
{
    (void)w;
    (void)obj;
    (void)u;
    uv_sem_wait(&g.go);
}
static void leave(sl_worker_t *w, void *obj, uint64_t u)
{
    (void)w;
    (void)u;
    sl_relay_remove(obj);
}

static sl_frame_t *mk(int key, uint32_t dts)
{
    sl_buf_t *b = sl_buf_new(16);
    b->len = 16;
    memset(b->data, 0, b->len);
    b->data[0] = key ? 0x17 : 0x27;
    b->data[1] = 1;
    sl_frame_t *f;
    assert_int_equal(sl_frame_new(SL_FLV_VIDEO, dts, b, &f), 0);
    return f;
}

static void push(sl_stream_t *st, int key, uint32_t dts)
{
    sl_frame_t *f = mk(key, dts);
    sl_stream_push(st, f);
    sl_frame_unref(f);
}

static void test_relay_order_drop_and_free(void **state)
{
    (void)state;
    int64_t bytes0 = sl_alloc_bytes();
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    memset(&g, 0, sizeof g);
    assert_int_equal(uv_sem_init(&g.go, 0), 0);
    g.m.on_frame = on_frame;
    sl_list_init(&g.m.link);
    sl_workers_t *ws;
    assert_int_equal(sl_workers_new(&loop, 2, INBOX, sl_frame_pool_drain, &ws), 0);
    sl_worker_t *w = sl_workers_get(ws, 1);
    sl_hub_t *hub = sl_hub_new(1 << 20);
    sl_stream_t *st;
    int pub;
    assert_int_equal(sl_hub_publish(hub, "live/s", &pub, &st), 0);
    push(st, 1, 0); /* in the GOP cache: the relay's attach must not forward the replay */
    sl_relay_set_t set;
    sl_relay_set_init(&set);
    sl_relay_t *r = sl_relay_acquire(&set, st, w);
    assert_non_null(r);
    assert_ptr_equal(sl_relay_acquire(&set, st, w), r); /* found again: two users */
    assert_ptr_equal(sl_relay_worker(r), w);
    assert_int_equal(st->n_players, 0); /* internal: not a player */
    sl_relay_post(w, join, &g.m, (uint64_t)(uintptr_t)r);

    /* 1: the worker keeps up: everything arrives, in order. */
    uint32_t dts = 40;
    for (int i = 0; i < 100; i++, dts += 40)
        push(st, i % 10 == 0, dts);

    /* 2: the worker is blocked and its inbox fills: the relay
     * drops to the next keyframe, then resumes on it once there is room. */
    sl_relay_post(w, block, NULL, 0);
    uint32_t first_blocked = dts;
    for (int i = 0; i < BLOCKED; i++, dts += 40)
        push(st, i % 10 == 0, dts);
    assert_true(sl_relay_refused(r) > 0);
    uint64_t refused_while_blocked = sl_relay_refused(r);
    uv_sem_post(&g.go);
    /* Let the worker drain its inbox before the last phase. */
    uint64_t until = uv_hrtime() + 10000000000ull;
    for (;;) {
        sl_worker_stats_t ws_st;
        sl_worker_stats(w, &ws_st);
        if (!ws_st.inbox_depth)
            break;
        assert_true(uv_hrtime() < until);
        sched_yield();
    }
    /* Until a keyframe passes, the relay keeps dropping (the inbox has
     * room again, or soon: these may be refused either way). */
    for (int i = 1; i <= 30; i++, dts += 40)
        push(st, i % 10 == 0, dts);

    uint64_t refused = sl_relay_refused(r);
    sl_relay_post(w, leave, &g.m, 0);
    sl_relay_release(r);
    assert_int_equal(st->n_sinks, 1); /* one user left: still attached */
    sl_relay_release(r);
    assert_int_equal(st->n_sinks, 0); /* the last release detached it; its free is posted */
    sl_stream_unpublish(st);
    sl_hub_free(hub);
    sl_workers_stop(ws);
    uv_run(&loop, UV_RUN_DEFAULT);
    sl_workers_free(ws);
    assert_int_equal(uv_loop_close(&loop), 0);
    uv_sem_destroy(&g.go);

    assert_false(g.wrong_thread);
    /* The first 100 frames came whole and in order (not the replayed one at 0). */
    assert_true(g.n >= 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(g.dts[i], 40u * (uint32_t)(i + 1));
    /* Then a run from the blocked phase (what fit the inbox), in order... */
    int i = 100;
    uint32_t expect = first_blocked;
    while (i < g.n && g.dts[i] == expect) {
        i++;
        expect += 40;
    }
    assert_true(i > 100); /* some fit */
    /* ...then nothing until a keyframe (of the blocked phase if the worker
     * made room before blocking, else of the last), and from it every
     * frame to the end, though more gaps may follow, each closed by a keyframe. */
    assert_true(i < g.n);
    assert_true(g.key[i]);
    for (int k = i + 1; k < g.n; k++)
        assert_true(g.dts[k] == g.dts[k - 1] + 40 || (g.dts[k] > g.dts[k - 1] && g.key[k]));
    assert_int_equal(g.dts[g.n - 1], dts - 40);
    /* Each pushed frame was posted (and arrived) or refused (and counted). */
    assert_int_equal((uint64_t)(100 + BLOCKED + 30 - g.n), refused);
    assert_true(refused >= refused_while_blocked);
    sl_frame_pool_drain();
    assert_int_equal(sl_alloc_bytes(), bytes0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relay_order_drop_and_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
