/*
 * The bounded many-producer one-consumer queue (see mpsc.h).
 */
#include "base/mpsc.h"

#include "base/alloc.h"
#include "sluice/errors.h"

#define MPSC_MAX_CAP ((size_t)1 << 24)

int sl_mpsc_init(sl_mpsc_t *q, size_t cap)
{
    if (cap == 0 || cap > MPSC_MAX_CAP)
        return SL_EINVAL;
    size_t n = 2;
    while (n < cap)
        n <<= 1;
    q->cells = sl_malloc(n * sizeof(*q->cells));
    if (!q->cells)
        return SL_ENOMEM;
    for (size_t i = 0; i < n; i++)
        atomic_init(&q->cells[i].seq, i);
    q->mask = n - 1;
    atomic_init(&q->tail, 0);
    atomic_init(&q->head, 0);
    atomic_init(&q->depth_max, 0);
    return 0;
}

void sl_mpsc_cleanup(sl_mpsc_t *q)
{
    sl_free(q->cells);
    q->cells = NULL;
}

int sl_mpsc_push(sl_mpsc_t *q, const sl_mpsc_msg_t *m)
{
    size_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
    for (;;) {
        sl_mpsc_cell_t *c = &q->cells[pos & q->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)pos;
        if (dif == 0) {
            /* The cell is free for this position: claim the position. */
            if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1,
                                                      memory_order_relaxed, memory_order_relaxed)) {
                c->msg = *m;
                atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
                return 0;
            }
            /* pos was reloaded by the failed CAS: try the new tail. */
        } else if (dif < 0) {
            return SL_EAGAIN; /* the consumer has not freed this cell yet: full */
        } else {
            pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
        }
    }
}

int sl_mpsc_pop(sl_mpsc_t *q, sl_mpsc_msg_t *m)
{
    size_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    sl_mpsc_cell_t *c = &q->cells[head & q->mask];
    size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
    if ((intptr_t)seq - (intptr_t)(head + 1) < 0)
        return 0; /* not published yet: empty (or a producer mid-push) */
    *m = c->msg;
    /* The cell is free again for the producer one lap later. */
    atomic_store_explicit(&c->seq, head + q->mask + 1, memory_order_release);
    atomic_store_explicit(&q->head, head + 1, memory_order_relaxed);
    /* High-water mark for /metrics (consumer only writes it; approximate). */
    size_t depth = atomic_load_explicit(&q->tail, memory_order_relaxed) - head;
    if (depth > q->mask + 1) /* a producer already reused the cell freed above */
        depth = q->mask + 1;
    if (depth > atomic_load_explicit(&q->depth_max, memory_order_relaxed))
        atomic_store_explicit(&q->depth_max, depth, memory_order_relaxed);
    return 1;
}

size_t sl_mpsc_depth(sl_mpsc_t *q)
{
    size_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    size_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    return tail > head ? tail - head : 0;
}
