/*
 * A budget: a count of some resource that peers make the server hold
 * (bytes of half-received messages, queued bytes, sessions without a
 * socket), with a server-wide limit and a count of the times a peer went
 * over any of its limits. One sl_budget_t exists per resource per server;
 * per-connection limits live with the connection and use the same
 * reserve/release pair so that the server-wide count is always the sum of
 * what the connections hold. /metrics shows every registered budget as
 * sluice_budget_used{budget="name"}, sluice_budget_limit{budget="name"}
 * and sluice_budget_exceeded_total{budget="name"} (see sl_core_budget).
 *
 * Header-only and free of libuv and the core, so that protocol codecs
 * shared with clients/c and the fuzz targets can use it. Not thread-safe:
 * a budget belongs to the loop thread.
 */
#ifndef SL_BASE_BUDGET_H
#define SL_BASE_BUDGET_H

#include <stdint.h>

typedef struct sl_budget {
    const char *name;     /* label value on /metrics, e.g. "rtmp_partial" (static string) */
    int64_t used;         /* units held now, over every holder */
    int64_t limit;        /* server-wide limit; 0 = none */
    uint64_t exceeded;    /* times a holder was refused (per-holder or server-wide limit) */
    uint64_t last_warn_ms;/* when the server-wide limit was last logged (callers rate-limit) */
    uint64_t unlogged;    /* server-wide refusals not logged since last_warn_ms */
} sl_budget_t;

/**
 * Takes n units from b when the server-wide limit allows it: returns 1 and
 * adds n to b->used, or 0 (nothing taken). A NULL budget always allows.
 * Does not count the refusal in b->exceeded: the caller decides whether a
 * refusal closes a peer (and then calls sl_budget_refused once).
 */
static inline int sl_budget_take(sl_budget_t *b, int64_t n)
{
    if (!b)
        return 1;
    if (b->limit > 0 && b->used + n > b->limit)
        return 0;
    b->used += n;
    return 1;
}

/** Gives n units back to b (NULL is ignored). */
static inline void sl_budget_give(sl_budget_t *b, int64_t n)
{
    if (b)
        b->used -= n;
}

/** Counts one peer refused for being over a limit of this resource (NULL is ignored). */
static inline void sl_budget_refused(sl_budget_t *b)
{
    if (b)
        b->exceeded++;
}

#endif
