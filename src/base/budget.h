/*
 * A byte pool shared by many holders: bytes of some resource that peers
 * make the server hold (half-received RTMP messages today), with a
 * server-wide limit. Per-connection limits live with the connection and
 * take from the pool through the same take/give pair, so the pool's count
 * is always the sum of what its holders hold. Counting the peers refused
 * for a budget is the core's job (sluice_budget_exceeded_total).
 *
 * Header-only and free of libuv and the core, so that protocol codecs
 * shared with clients/c and the fuzz targets can use it. Not thread-safe:
 * a pool belongs to the loop thread.
 */
#ifndef SL_BASE_BUDGET_H
#define SL_BASE_BUDGET_H

#include <stdint.h>

#include "base/assert.h"

typedef struct sl_byte_pool {
    int64_t used;         /* bytes held now, over every holder */
    int64_t limit;        /* server-wide limit; 0 = none */
} sl_byte_pool_t;

/**
 * Takes n bytes from p when its limit allows it: returns 1 and adds n to
 * p->used, or 0 (nothing taken). A NULL pool always allows.
 */
static inline int sl_byte_pool_take(sl_byte_pool_t *p, int64_t n)
{
    if (!p)
        return 1;
    if (p->limit > 0 && p->used + n > p->limit)
        return 0;
    p->used += n;
    return 1;
}

/** Gives n bytes back to p (NULL is ignored). */
static inline void sl_byte_pool_give(sl_byte_pool_t *p, int64_t n)
{
    if (!p)
        return;
    /* The pool is the sum of what its holders took: a give never exceeds it. */
    SL_ASSERT(n >= 0 && p->used >= n);
    p->used -= n;
}

#endif
