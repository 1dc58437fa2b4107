/*
 * A bounded lock-free queue of fixed-size messages with many producers and
 * one consumer: how event-loop threads talk to each other (server.workers,
 * net/workers.h; docs/internals/threads.md). Producers on any thread push;
 * the thread that owns the queue pops.
 *
 * It is Dmitry Vyukov's bounded array queue: each cell carries a sequence
 * number that says whether it is free for the producer of a given position
 * or full for the consumer of that position; a producer claims a position
 * with one compare-and-swap on the tail and publishes the cell with a
 * release store of its sequence; the consumer reads cells in order with
 * acquire loads. No lock, no allocation after init, and a full queue is
 * reported to the producer (SL_EAGAIN) instead of blocking it: the caller
 * decides (drop to the next keyframe, retry on the next iteration, or
 * close). The capacity is a power of two fixed at init (the budget).
 */
#ifndef SL_BASE_MPSC_H
#define SL_BASE_MPSC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* One message: a handler, its object, and a number. */
typedef struct sl_mpsc_msg {
    void (*fn)(void); /* the handler, cast to this generic type; the consumer casts it back */
    void *obj;        /* the handler's object (ownership per handler) */
    uint64_t u;       /* the handler's number */
} sl_mpsc_msg_t;

typedef struct sl_mpsc_cell {
    _Atomic size_t seq;   /* position this cell is free (== pos) or full (== pos + 1) for */
    sl_mpsc_msg_t msg;    /* the message, valid while full */
} sl_mpsc_cell_t;

typedef struct sl_mpsc {
    sl_mpsc_cell_t *cells;     /* owned array of cap cells */
    size_t mask;               /* cap - 1 */
    char pad0[64];             /* keeps tail off the lines of the fields before it */
    _Atomic size_t tail;       /* next position producers claim */
    char pad1[64];             /* and head off tail's: producers and the consumer do not
                                  share a cache line (padding, not _Alignas: the queue is
                                  embedded in blocks sl_malloc aligns to 16 bytes) */
    _Atomic size_t head;       /* next position the consumer reads (written by the consumer
                                  only; atomic so depth can be read anywhere) */
    _Atomic size_t depth_max;  /* most messages seen waiting (high-water mark, approximate) */
} sl_mpsc_t;

/**
 * Initialises an empty queue of cap messages (rounded up to a power of
 * two, at least 2, at most 1 << 24). 0, SL_EINVAL or SL_ENOMEM.
 */
int sl_mpsc_init(sl_mpsc_t *q, size_t cap);
/** Frees the cells; messages still queued are dropped unrun (drain first). */
void sl_mpsc_cleanup(sl_mpsc_t *q);
/**
 * Pushes a copy of *m (any thread). 0, or SL_EAGAIN when the queue is
 * full (nothing queued: the caller still owns whatever m refers to).
 */
int sl_mpsc_push(sl_mpsc_t *q, const sl_mpsc_msg_t *m);
/** Pops the oldest message into *m (owning thread only). 1, or 0 when empty. */
int sl_mpsc_pop(sl_mpsc_t *q, sl_mpsc_msg_t *m);
/** Messages waiting (approximate when producers are active; any thread). */
size_t sl_mpsc_depth(sl_mpsc_t *q);

#endif
