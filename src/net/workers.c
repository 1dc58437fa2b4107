/*
 * Event-loop workers (see workers.h): the threads, their loops, and the
 * inboxes through which loops talk.
 */
#include "net/workers.h"

#include <stdio.h>
#include <sys/prctl.h>

#include <string.h>

#include "base/alloc.h"
#include "base/assert.h"
#include "base/log.h"
#include "base/mpsc.h"
#include "sluice/errors.h"

struct sl_worker {
    sl_workers_t *pool;           /* owner */
    int index;                    /* 0 = the main loop */
    uv_loop_t *loop;              /* worker 0: the caller's; others: own_loop */
    uv_loop_t own_loop;           /* extra workers' loop (their thread only) */
    uv_thread_t thread;           /* extra workers */
    int started;                  /* thread created */
    int undone;                   /* set up, thread never created, torn down again */
    uv_async_t inbox_async;       /* wakes the loop for its inbox */
    sl_mpsc_t inbox;              /* messages for this loop */
    _Atomic int closing;          /* stop asked: posts are refused */
    _Atomic uint64_t msgs;        /* messages run */
    _Atomic uint64_t wakeups;     /* inbox wakeups */
    _Atomic uint64_t refused;     /* posts refused */
    _Atomic int64_t players;      /* users' gauge */
    _Atomic int64_t load;         /* cost units: 1 per player plus sl_worker_load_add */
};

struct sl_workers {
    int n;                        /* workers, worker 0 included */
    int keepalive;                /* answers awaited on the main loop (main thread only) */
    void (*thread_exit)(void);    /* per-thread cleanup on extra threads, or NULL */
    sl_worker_t w[];              /* n workers */
};

/* Runs one message (the handler was cast to the generic type on post). */
static void run_msg(sl_worker_t *w, const sl_mpsc_msg_t *m)
{
    ((sl_worker_fn)m->fn)(w, m->obj, m->u);
}

/* Drains the inbox: runs up to SL_WORKERS_BATCH_MAX messages, and wakes
 * itself again when more remain, so a flood cannot starve the sockets. */
static void on_inbox(uv_async_t *a)
{
    sl_worker_t *w = a->data;
    atomic_fetch_add_explicit(&w->wakeups, 1, memory_order_relaxed);
    sl_mpsc_msg_t m;
    int n = 0;
    while (n < SL_WORKERS_BATCH_MAX && sl_mpsc_pop(&w->inbox, &m)) {
        run_msg(w, &m);
        n++;
    }
    atomic_fetch_add_explicit(&w->msgs, (uint64_t)n, memory_order_relaxed);
    if (n == SL_WORKERS_BATCH_MAX && sl_mpsc_depth(&w->inbox) && !uv_is_closing((uv_handle_t *)a))
        uv_async_send(a);
}

/* A stop message: everything queued before it has run (it is last);
 * closes the inbox so the worker's loop can end. */
static void stop_fn(sl_worker_t *w, void *obj, uint64_t u)
{
    (void)obj;
    (void)u;
    if (!uv_is_closing((uv_handle_t *)&w->inbox_async))
        uv_close((uv_handle_t *)&w->inbox_async, NULL);
}

static void worker_main(void *arg)
{
    sl_worker_t *w = arg;
    /* "sl-worker-1": top -H, perf, and bench/vs-nginx's per-loop CPU budgets find it. */
    char name[16];
    snprintf(name, sizeof name, "sl-worker-%d", w->index);
    prctl(PR_SET_NAME, name, 0, 0, 0);
    uv_run(w->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(w->loop) != 0)
        SL_LOGW(NULL, "worker %d: loop ended with handles still open", w->index);
    if (w->pool->thread_exit)
        w->pool->thread_exit();
}

/* Sets up worker i's inbox (and loop, for i > 0). 0 or an error, with
 * nothing left allocated. */
static int worker_init(sl_workers_t *ws, int i, uv_loop_t *main_loop, size_t inbox_cap)
{
    sl_worker_t *w = &ws->w[i];
    w->pool = ws;
    w->index = i;
    int rc = sl_mpsc_init(&w->inbox, inbox_cap);
    if (rc)
        return rc;
    w->loop = i == 0 ? main_loop : &w->own_loop;
    if (i > 0 && (rc = uv_loop_init(w->loop))) {
        sl_mpsc_cleanup(&w->inbox);
        return rc;
    }
    w->inbox_async.data = w;
    if ((rc = uv_async_init(w->loop, &w->inbox_async, on_inbox))) {
        if (i > 0)
            uv_loop_close(w->loop);
        sl_mpsc_cleanup(&w->inbox);
        return rc;
    }
    if (i == 0)
        uv_unref((uv_handle_t *)&w->inbox_async); /* the main loop ends without waiting on it */
    return 0;
}

/* Undoes worker_init of an extra worker whose thread never ran. */
static void worker_undo(sl_worker_t *w)
{
    uv_close((uv_handle_t *)&w->inbox_async, NULL);
    uv_run(w->loop, UV_RUN_DEFAULT);
    uv_loop_close(w->loop);
    sl_mpsc_cleanup(&w->inbox);
}

int sl_workers_new(uv_loop_t *main_loop, int n, size_t inbox_cap, void (*thread_exit)(void),
                   sl_workers_t **out)
{
    *out = NULL;
    if (n < 1 || n > SL_WORKERS_MAX || !main_loop)
        return SL_EINVAL;
    sl_workers_t *ws = sl_calloc(1, sizeof(*ws) + (size_t)n * sizeof(ws->w[0]));
    if (!ws)
        return SL_ENOMEM;
    ws->n = n;
    ws->thread_exit = thread_exit;
    /* Extra workers first, worker 0 last: a failure before worker 0 leaves
     * nothing on the main loop to close. */
    int rc = 0, i, set_up = 1; /* extra workers 1..set_up-1 are set up */
    for (; set_up < n && !(rc = worker_init(ws, set_up, main_loop, inbox_cap)); set_up++)
        ;
    if (!rc)
        rc = worker_init(ws, 0, main_loop, inbox_cap);
    if (rc) {
        for (int k = 1; k < set_up; k++)
            worker_undo(&ws->w[k]);
        sl_free(ws);
        return rc;
    }
    for (i = 1; i < n; i++) {
        sl_worker_t *w = &ws->w[i];
        if ((rc = uv_thread_create(&w->thread, worker_main, w))) {
            SL_LOGE(NULL, "worker %d: thread: %s", i, uv_strerror(rc));
            break;
        }
        w->started = 1;
    }
    *out = ws;
    if (rc) {
        for (int k = i; k < n; k++) {
            worker_undo(&ws->w[k]);
            ws->w[k].undone = 1;
        }
        sl_workers_stop(ws);
        sl_workers_free(ws);
        *out = NULL;
        return rc;
    }
    return 0;
}

void sl_workers_stop(sl_workers_t *ws)
{
    if (!ws)
        return;
    for (int i = 1; i < ws->n; i++) {
        sl_worker_t *w = &ws->w[i];
        if (!w->started || atomic_load(&w->closing))
            continue;
        atomic_store(&w->closing, 1); /* posts (from this thread) are refused from now on */
        /* The stop goes through the inbox like any message, after what is
         * queued; if it is full, wait for room (shutdown only). */
        sl_mpsc_msg_t m = {.fn = (void (*)(void))stop_fn};
        while (sl_mpsc_push(&w->inbox, &m) == SL_EAGAIN) {
            uv_async_send(&w->inbox_async);
            uv_sleep(1);
        }
        uv_async_send(&w->inbox_async);
    }
}

void sl_workers_free(sl_workers_t *ws)
{
    if (!ws)
        return;
    for (int i = 1; i < ws->n; i++) {
        sl_worker_t *w = &ws->w[i];
        if (w->started) {
            uv_thread_join(&w->thread);
            /* Messages posted after the stop cannot be: only this thread posts to extra
             * workers, and it stopped posting. */
            sl_mpsc_cleanup(&w->inbox);
        } else if (!w->undone) {
            worker_undo(w);
        }
    }
    /* Every thread has ended: what they posted to the main loop and it has
     * not run yet runs now, then worker 0's inbox closes. */
    sl_worker_t *w0 = &ws->w[0];
    atomic_store(&w0->closing, 1);
    sl_mpsc_msg_t m;
    while (sl_mpsc_pop(&w0->inbox, &m))
        run_msg(w0, &m);
    uv_close((uv_handle_t *)&w0->inbox_async, NULL);
    uv_run(w0->loop, UV_RUN_NOWAIT); /* runs the close callback */
    sl_mpsc_cleanup(&w0->inbox);
    sl_free(ws);
}
int sl_workers_count(const sl_workers_t *ws) { return ws ? ws->n : 1; }

sl_worker_t *sl_workers_get(sl_workers_t *ws, int i)
{
    return i >= 0 && i < ws->n ? &ws->w[i] : NULL;
}

sl_worker_t *sl_workers_least_loaded(sl_workers_t *ws)
{
    sl_worker_t *best = &ws->w[0];
    int64_t best_n = atomic_load_explicit(&best->load, memory_order_relaxed);
    for (int i = 1; i < ws->n; i++) {
        int64_t p = atomic_load_explicit(&ws->w[i].load, memory_order_relaxed);
        if (p < best_n) {
            best = &ws->w[i];
            best_n = p;
        }
    }
    return best;
}

uv_loop_t *sl_worker_loop(sl_worker_t *w) { return w->loop; }
int sl_worker_index(const sl_worker_t *w) { return w->index; }
sl_workers_t *sl_worker_pool(sl_worker_t *w) { return w->pool; }

int sl_worker_post(sl_worker_t *w, sl_worker_fn fn, void *obj, uint64_t u)
{
    if (atomic_load_explicit(&w->closing, memory_order_acquire)) {
        atomic_fetch_add_explicit(&w->refused, 1, memory_order_relaxed);
        return SL_EAGAIN;
    }
    sl_mpsc_msg_t m = {.fn = (void (*)(void))fn, .obj = obj, .u = u};
    if (sl_mpsc_push(&w->inbox, &m)) {
        atomic_fetch_add_explicit(&w->refused, 1, memory_order_relaxed);
        return SL_EAGAIN;
    }
    uv_async_send(&w->inbox_async);
    return 0;
}

void sl_workers_keepalive(sl_workers_t *ws, int delta)
{
    int before = ws->keepalive;
    ws->keepalive += delta;
    SL_ASSERT(ws->keepalive >= 0);
    uv_handle_t *h = (uv_handle_t *)&ws->w[0].inbox_async;
    if (before == 0 && ws->keepalive > 0)
        uv_ref(h);
    else if (before > 0 && ws->keepalive == 0)
        uv_unref(h);
}

void sl_worker_players_add(sl_worker_t *w, int64_t delta)
{
    atomic_fetch_add_explicit(&w->players, delta, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->load, delta, memory_order_relaxed);
}

void sl_worker_load_add(sl_worker_t *w, int64_t units)
{
    atomic_fetch_add_explicit(&w->load, units, memory_order_relaxed);
}

void sl_worker_stats(sl_worker_t *w, sl_worker_stats_t *out)
{
    out->msgs = atomic_load_explicit(&w->msgs, memory_order_relaxed);
    out->wakeups = atomic_load_explicit(&w->wakeups, memory_order_relaxed);
    out->posts_refused = atomic_load_explicit(&w->refused, memory_order_relaxed);
    out->inbox_depth = sl_mpsc_depth(&w->inbox);
    out->inbox_depth_max = atomic_load_explicit(&w->inbox.depth_max, memory_order_relaxed);
    out->players = atomic_load_explicit(&w->players, memory_order_relaxed);
    out->load = atomic_load_explicit(&w->load, memory_order_relaxed);
}
