/*
 * Event-loop workers (server.workers; issue 20, docs/internals/threads.md):
 * the main loop is worker 0, and sl_workers_new starts n - 1 more, each a
 * thread running its own libuv loop. Every worker, the main one included,
 * has an inbox: a bounded lock-free many-producer queue (base/mpsc.h) and
 * one uv_async_t on its loop. Any thread posts a message (a function, an
 * object and a number) to any worker; the function runs on that worker's
 * loop thread. A burst of posts costs one wakeup: libuv's uv_async_send
 * only writes to the loop's eventfd when the async is not already pending,
 * and the handler drains everything queued (up to a cap per wakeup, so a
 * flood cannot starve the loop's sockets; the rest waits for the next
 * iteration).
 *
 * This is the only way state crosses loops: an object belongs to one
 * loop, and another loop asks it to act by message. The workers know
 * nothing of media or protocols (src/net: base and libuv only); what runs
 * where is docs/internals/threads.md.
 *
 * Load: each worker has gauges its users maintain (players) and counters
 * the pool keeps (messages run, wakeups, inbox high water); any thread may
 * read them (relaxed atomics: a snapshot, not a transaction).
 * sl_workers_least_loaded picks where a new player goes, by a load gauge
 * in cost units: each player counts 1 where its writes run, and a user
 * whose players cost more, or leave part of their work on another loop,
 * adds units there (sl_worker_load_add; WHEP viewers do both).
 *
 * Lifetime: sl_workers_new on the main thread before the main loop runs;
 * sl_workers_stop when every user has closed its handles on the worker
 * loops (it posts a stop to each: its inbox closes and its uv_run returns,
 * which needs every other handle of that loop closed); sl_workers_free
 * after the main loop has ended, which joins the threads. With n == 1 no
 * thread is started and the pool only holds worker 0.
 */
#ifndef SL_NET_WORKERS_H
#define SL_NET_WORKERS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/** Most workers (server.workers' upper bound). */
#define SL_WORKERS_MAX 64
/** Messages one wakeup runs before yielding to the loop's other events. */
#define SL_WORKERS_BATCH_MAX 4096

typedef struct sl_workers sl_workers_t;
typedef struct sl_worker sl_worker_t;

/** A message handler: runs on the target worker's loop thread. */
typedef void (*sl_worker_fn)(sl_worker_t *w, void *obj, uint64_t u);

/* What any thread may read about one worker (relaxed snapshots). */
typedef struct sl_worker_stats {
    uint64_t msgs;           /* messages run on this worker */
    uint64_t wakeups;        /* inbox wakeups (a burst of messages is one) */
    uint64_t posts_refused;  /* posts refused because the inbox was full */
    size_t inbox_depth;      /* messages waiting now */
    size_t inbox_depth_max;  /* most messages seen waiting */
    int64_t players;         /* the players gauge (sl_worker_players_add) */
    int64_t load;            /* cost units: players + sl_worker_load_add */
} sl_worker_stats_t;

/**
 * Creates the pool: worker 0 on main_loop (the caller's thread, borrowed)
 * and n - 1 threads with loops of their own (1 <= n <= SL_WORKERS_MAX).
 * inbox_cap bounds each inbox (messages). thread_exit, when set, runs on
 * each extra thread after its loop ended (per-thread caches, e.g. the
 * frame pool). Returns 0 and the pool in *out (caller frees with
 * sl_workers_free), SL_EINVAL, SL_ENOMEM or a libuv error (nothing is left
 * running on error).
 */
int sl_workers_new(uv_loop_t *main_loop, int n, size_t inbox_cap, void (*thread_exit)(void),
                   sl_workers_t **out);
/**
 * Asks every extra worker to end its loop and closes worker 0's inbox
 * (main thread, once). Messages already queued still run first. The users
 * must have closed their handles on the worker loops (by message) before.
 */
void sl_workers_stop(sl_workers_t *ws);
/**
 * Joins the threads and frees the pool (main thread, after sl_workers_stop
 * and after the main loop ran the inbox's close callback). NULL is ignored.
 */
void sl_workers_free(sl_workers_t *ws);

/** Number of workers, worker 0 included. */
int sl_workers_count(const sl_workers_t *ws);
/** Worker i (0 <= i < count). Borrowed, valid until sl_workers_free. */
sl_worker_t *sl_workers_get(sl_workers_t *ws, int i);
/**
 * The worker with the lowest load (ties: the lowest index), or worker
 * 0 when there is one. Any thread; racy by nature (a hint).
 */
sl_worker_t *sl_workers_least_loaded(sl_workers_t *ws);

/** The worker's loop (owned by the worker's thread: use it there only). */
uv_loop_t *sl_worker_loop(sl_worker_t *w);
/** The worker's index (0 = main loop). */
int sl_worker_index(const sl_worker_t *w);
/** The pool the worker belongs to. */
sl_workers_t *sl_worker_pool(sl_worker_t *w);
/**
 * Posts fn(w, obj, u) to run on w's loop thread (any thread). 0, or
 * SL_EAGAIN when the inbox is full or the worker is stopping (nothing is
 * queued: obj stays the caller's), counted in posts_refused.
 */
int sl_worker_post(sl_worker_t *w, sl_worker_fn fn, void *obj, uint64_t u);
/**
 * Keeps the main loop alive while answers from workers are awaited (main
 * thread only): worker 0's inbox is unreferenced (the main loop may end
 * without it) while the sum of deltas is 0, referenced while it is above.
 * A user that hands something to a worker and needs its answer before the
 * main loop ends adds 1, and -1 when the answer came.
 */
void sl_workers_keepalive(sl_workers_t *ws, int delta);
/** Adds delta to the worker's players gauge, and as many units to its load (any thread). */
void sl_worker_players_add(sl_worker_t *w, int64_t delta);
/** Adds cost units to the worker's load alone (any thread); the caller takes them back. */
void sl_worker_load_add(sl_worker_t *w, int64_t units);
/** Reads the worker's counters and gauges (any thread). */
void sl_worker_stats(sl_worker_t *w, sl_worker_stats_t *out);

#endif
