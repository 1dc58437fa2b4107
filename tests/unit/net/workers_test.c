/*
 * Event-loop workers and their inboxes (net/workers.h, base/mpsc.h): the
 * queue keeps order and reports full; messages posted to a worker run on
 * that worker's thread; several worker threads flooding the main loop's
 * small inbox at once (it fills: they retry) deliver every message once,
 * in order per producer; stop and free end every thread and leave the
 * main loop with no handle open. Under ThreadSanitizer (make test-tsan)
 * this is the data-race check of the hand-over between loops.
 */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/mpsc.h"
#include "net/workers.h"
#include "sluice/errors.h"

static void nop(void) {}

static void test_mpsc_order_and_full(void **state)
{
    (void)state;
    sl_mpsc_t q;
    assert_int_equal(sl_mpsc_init(&q, 3), 0); /* rounded up to 4 */
    sl_mpsc_msg_t m = {.fn = nop};
    for (int lap = 0; lap < 5; lap++) { /* wraps the ring several times */
        for (uint64_t i = 0; i < 4; i++) {
            m.u = i;
            assert_int_equal(sl_mpsc_push(&q, &m), 0);
        }
        assert_int_equal(sl_mpsc_push(&q, &m), SL_EAGAIN);
        assert_int_equal(sl_mpsc_depth(&q), 4);
        sl_mpsc_msg_t out;
        for (uint64_t i = 0; i < 4; i++) {
            assert_int_equal(sl_mpsc_pop(&q, &out), 1);
            assert_int_equal(out.u, i);
        }
        assert_int_equal(sl_mpsc_pop(&q, &out), 0);
        assert_int_equal(sl_mpsc_depth(&q), 0);
    }
    assert_int_equal(q.depth_max, 4);
    sl_mpsc_cleanup(&q);
    assert_int_equal(sl_mpsc_init(&q, 0), SL_EINVAL);
}

#define N_WORKERS 3
#define PER_WORKER 20000

typedef struct {
    sl_workers_t *ws;
    uv_thread_t main_thread;
    uint64_t next[N_WORKERS];   /* next sequence expected from each worker (main only) */
    uint64_t received;          /* messages run on main */
    int wrong_thread;           /* a message ran on the wrong thread */
    int out_of_order;
    uv_timer_t deadline;
    int timed_out;
    uv_thread_t worker_thread[N_WORKERS];
} test_ctx_t;

static test_ctx_t g;

/* On the main loop: one message from a worker. */
static void on_reply(sl_worker_t *w, void *obj, uint64_t u)
{
    (void)obj;
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &g.main_thread) || sl_worker_index(w) != 0)
        g.wrong_thread = 1;
    int from = (int)(u >> 32);
    uint64_t seq = u & 0xFFFFFFFFu;
    if (from < 1 || from >= N_WORKERS || seq != g.next[from])
        g.out_of_order = 1;
    else
        g.next[from]++;
    if (++g.received == (uint64_t)PER_WORKER * (N_WORKERS - 1)) {
        uv_close((uv_handle_t *)&g.deadline, NULL);
        sl_workers_stop(g.ws);
    }
}

/* On worker i: flood the main loop, retrying while its inbox is full. */
static void on_go(sl_worker_t *w, void *obj, uint64_t count)
{
    (void)obj;
    int i = sl_worker_index(w);
    g.worker_thread[i] = uv_thread_self();
    sl_worker_t *main_w = sl_workers_get(sl_worker_pool(w), 0);
    for (uint64_t k = 0; k < count; k++) {
        while (sl_worker_post(main_w, on_reply, NULL, (uint64_t)i << 32 | k) == SL_EAGAIN)
            sched_yield();
    }
}

static void on_deadline(uv_timer_t *t)
{
    g.timed_out = 1;
    uv_close((uv_handle_t *)t, NULL);
    sl_workers_stop(g.ws);
}

static void test_flood_main(void **state)
{
    (void)state;
    int64_t bytes0 = sl_alloc_bytes();
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    memset(&g, 0, sizeof g);
    g.main_thread = uv_thread_self();
    assert_int_equal(sl_workers_new(&loop, N_WORKERS, 64, NULL, &g.ws), 0);
    assert_int_equal(sl_workers_count(g.ws), N_WORKERS);
    assert_ptr_equal(sl_worker_loop(sl_workers_get(g.ws, 0)), &loop);
    assert_null(sl_workers_get(g.ws, N_WORKERS));
    uv_timer_init(&loop, &g.deadline);
    uv_timer_start(&g.deadline, on_deadline, 20000, 0);
    for (int i = 1; i < N_WORKERS; i++)
        assert_int_equal(sl_worker_post(sl_workers_get(g.ws, i), on_go, NULL, PER_WORKER), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    sl_worker_stats_t st;
    sl_worker_stats(sl_workers_get(g.ws, 0), &st);
    sl_workers_free(g.ws);
    assert_int_equal(uv_loop_close(&loop), 0); /* nothing left on the main loop */
    assert_false(g.timed_out);
    assert_false(g.wrong_thread);
    assert_false(g.out_of_order);
    assert_int_equal(g.received, (uint64_t)PER_WORKER * (N_WORKERS - 1));
    for (int i = 1; i < N_WORKERS; i++)
        assert_false(uv_thread_equal(&g.worker_thread[i], &g.main_thread));
    assert_true(st.msgs >= g.received - SL_WORKERS_BATCH_MAX); /* counted per wakeup */
    assert_true(st.wakeups < g.received); /* bursts share wakeups */
    assert_true(st.inbox_depth_max <= 64);
    assert_int_equal(sl_alloc_bytes(), bytes0);
}

/* Players gauge and the least-loaded pick. */
static void test_least_loaded(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    sl_workers_t *ws;
    assert_int_equal(sl_workers_new(&loop, 3, 16, NULL, &ws), 0);
    assert_ptr_equal(sl_workers_least_loaded(ws), sl_workers_get(ws, 0));
    sl_worker_players_add(sl_workers_get(ws, 0), 2);
    sl_worker_players_add(sl_workers_get(ws, 1), 1);
    assert_ptr_equal(sl_workers_least_loaded(ws), sl_workers_get(ws, 2));
    sl_worker_players_add(sl_workers_get(ws, 2), 3);
    assert_ptr_equal(sl_workers_least_loaded(ws), sl_workers_get(ws, 1));
    sl_workers_stop(ws);
    assert_int_equal(sl_worker_post(sl_workers_get(ws, 1), on_go, NULL, 0), SL_EAGAIN);
    sl_workers_free(ws);
    assert_int_equal(uv_loop_close(&loop), 0);
    /* one worker: no thread, the main loop only */
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(sl_workers_new(&loop, 1, 16, NULL, &ws), 0);
    assert_ptr_equal(sl_workers_least_loaded(ws), sl_workers_get(ws, 0));
    sl_workers_stop(ws);
    sl_workers_free(ws);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(sl_workers_new(&loop, 0, 16, NULL, &ws), SL_EINVAL);
    assert_int_equal(sl_workers_new(&loop, SL_WORKERS_MAX + 1, 16, NULL, &ws), SL_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mpsc_order_and_full),
        cmocka_unit_test(test_flood_main),
        cmocka_unit_test(test_least_loaded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
