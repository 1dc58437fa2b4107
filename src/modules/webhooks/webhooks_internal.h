/*
 * Internals shared by the webhooks module's files: webhooks.c (the module,
 * the loop-thread listener and the API endpoints) and webhooks_outbox.c
 * (the SQLite outbox, the writer thread and the sender threads). Not an
 * interface for anything else.
 *
 * Threads and what they own:
 *  - the loop thread: the listener (copies events into the queue), the API
 *    handlers (hand their SQL to the store with sl_store_submit), start/stop;
 *  - the writer thread: the only INSERTer; turns queued events into one
 *    outbox row per endpoint, commits, then wakes the senders;
 *  - one sender thread per endpoint URL: picks the next due row of its
 *    endpoint that is first in its ordering key, POSTs it, records the
 *    outcome;
 *  - the store's worker (app/store.h): runs every SQL statement of the
 *    above on the process's one connection; the writer and the senders
 *    wait for it (sl_store_call), the API gets its answer on the loop.
 * Everything below `mu` in sl_webhooks_t is guarded by it; the rest is set
 * before the threads start and read-only afterwards.
 */
#ifndef SL_MODULES_WEBHOOKS_INTERNAL_H
#define SL_MODULES_WEBHOOKS_INTERNAL_H

#include <stdint.h>
#include <uv.h>

#include "app/core.h"
#include "app/events.h"
#include "modules/webhooks/webhooks.h"

#define SL_WEBHOOKS_MAX_QUEUED 100000 /* events copied but not yet in the outbox */
#define SL_WEBHOOKS_DB_NAME "sluice.db"

typedef struct sl_webhooks sl_webhooks_t;

/* One copied event on its way from the loop to the writer (one allocation). */
typedef struct sl_wh_item {
    struct sl_wh_item *next;     /* queue link */
    sl_event_t ev;               /* its strings point into this block */
    const sl_app_config_t *app;  /* the event's app (config lives for the process), or NULL */
} sl_wh_item_t;

/* One endpoint URL and the thread that sends its rows. */
typedef struct sl_wh_endpoint {
    sl_webhooks_t *w;            /* owner */
    char *url;                   /* owned */
    char *log_url;               /* url as logged: userinfo password and secret query values masked, owned */
    uv_thread_t thread;
    int started;                 /* thread created (join it) */
    uint64_t rng;                /* jitter PRNG state (sender thread only) */
} sl_wh_endpoint_t;

/* URL lists replaced by a configuration reload, kept until free (the writer may hold them). */
typedef struct sl_wh_retired {
    struct sl_wh_retired *next;
    char **urls;                 /* owned, n entries */
    size_t n;
} sl_wh_retired_t;

struct sl_webhooks {
    sl_core_t *core;             /* borrowed */
    const sl_config_t *cfg;      /* borrowed, read-only; replaced by a reload (old ones live
                                    until exit): threads read it with sl__wh_cfg() */
    char *db_path;               /* {data_dir}/sluice.db, owned (for log lines) */
    struct sl_store *store;      /* the service "store" (borrowed; NULL: none, outbox unusable) */
    char *node;                  /* server.node_name ("" when unset), owned */
    sl__webhooks_cluster_t cluster; /* this node in cluster mode (type "" when standalone),
                                       copied at init from the "cluster" service */
    uint32_t mask;               /* selected event types (bit 1 << type) */
    int listener;                /* event bus listener id, 0 = none */
    char **global_urls;          /* webhooks.url split, owned; replaced by a reload under mu
                                    (the writer takes both fields under mu) */
    size_t n_global;
    sl_wh_retired_t *retired;    /* global URL lists replaced by reloads (loop thread) */
    sl_wh_endpoint_t *eps;       /* every distinct endpoint URL, owned */
    size_t n_eps;
    uv_thread_t writer;
    int writer_started;
    int curl_ref;                /* curl_global_init done (undo in free) */

    uv_mutex_t mu;               /* guards everything below */
    uv_cond_t writer_cv;         /* the writer waits here for items */
    uv_cond_t sender_cv;         /* senders wait here for rows and due times */
    sl_wh_item_t *head, *tail;   /* events for the writer, oldest first */
    size_t n_queued;
    uint64_t n_dropped;          /* events refused because the queue was full */
    uint64_t n_dropped_logged;   /* n_dropped when the queue last stopped being full */
    int queue_full;              /* the queue refused the last event (logged once) */
    uint64_t gen;                /* bumped whenever rows are added or re-queued */
    int writer_state;            /* 0 opening, 1 running, <0 failed to open (error code) */
    int writer_stop;             /* drain the queue and exit */
    int senders_stop;            /* finish the current attempt and exit */
    uint64_t stop_deadline_ms;   /* wall clock after which an attempt in flight is abandoned */
};

/* webhooks_outbox.c */
/**
 * Starts the writer (opens and migrates the database) and waits until it
 * reports; then starts one sender per endpoint. 0, or the error that kept
 * the database from opening (logged), or a thread creation error. On
 * error the threads already started are left for sl__webhooks_threads_join.
 */
int sl__webhooks_threads_start(sl_webhooks_t *w);
/**
 * Starts the sender thread of endpoint ep (one of w->eps, added after the
 * threads started: a reload's new URL). 0 or a thread creation error.
 */
int sl__webhooks_sender_start(sl_webhooks_t *w, sl_wh_endpoint_t *ep);
/** Tells the senders to finish their attempt and exit (non-blocking). */
void sl__webhooks_senders_stop(sl_webhooks_t *w, uint64_t grace_ms);
/** Drains the writer's queue into the outbox, then joins every thread. Blocks. */
void sl__webhooks_threads_join(sl_webhooks_t *w);
/** Wakes every sender to look at the outbox again (rows added or re-queued). */
void sl__webhooks_wake_senders(sl_webhooks_t *w);

/* The configuration in force, from any thread (a reload swaps it on the loop). */
static inline const sl_config_t *sl__wh_cfg(const sl_webhooks_t *w)
{
    return __atomic_load_n(&w->cfg, __ATOMIC_ACQUIRE);
}

#endif
