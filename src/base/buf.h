/*
 * Buffers: the refcounted immutable payload block (sl_buf_t) that carries
 * media through the hub to every subscriber without copies, and the capped
 * growable byte builder (sl_wbuf_t) used to serialise messages.
 *
 * sl_buf_t crosses threads: with server.workers > 1 one payload is
 * referenced by players on several event-loop threads (see
 * docs/internals/threads.md), so its refcount is atomic. Taking a
 * reference is a relaxed increment (the taker already holds a reference,
 * which orders it); dropping one is an acquire-release decrement, so the
 * thread that frees the block sees every other owner's reads finished.
 * The bytes themselves are immutable once the block is shared: only its
 * creator writes data/len, before the first reference leaves its thread.
 * At one worker the cost is one locked instruction per ref/unref (measured
 * in docs/performance.md, "Sharded loops"). See docs/internals/BUFFERS.md.
 */
#ifndef SL_BASE_BUF_H
#define SL_BASE_BUF_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/assert.h"

typedef struct sl_buf {
    _Atomic uint32_t refs; /* owners; the block is freed when it drops to 0 (atomic: shared across loops) */
    uint32_t len;  /* bytes of data in use */
    uint32_t cap;  /* bytes allocated for data */
    uint8_t data[]; /* the bytes */
} sl_buf_t;

/** Largest single sl_buf (also bounds any one media message). */
#define SL_BUF_MAX (64u * 1024u * 1024u)

/**
 * Allocates a buffer with room for cap bytes, len 0, one reference owned by
 * the caller. Returns NULL on allocation failure or cap > SL_BUF_MAX.
 */
sl_buf_t *sl_buf_new(size_t cap);
/** Allocates a buffer holding a copy of n bytes from p; caller owns the reference. */
sl_buf_t *sl_buf_from(const void *p, size_t n);
/** Takes one more reference (any thread; the caller holds one); returns b for chaining. */
static inline sl_buf_t *sl_buf_ref(sl_buf_t *b)
{
    SL_ASSERT(atomic_load_explicit(&b->refs, memory_order_relaxed) > 0); /* never revived */
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}
/** Drops one reference (any thread) and frees the block at zero. NULL is ignored. */
void sl_buf_unref(sl_buf_t *b);

/*
 * A growable byte builder with a hard cap. The memory is owned by the
 * builder until sl_wbuf_cleanup().
 * Every put returns 0 or SL_ETOOBIG (cap reached) / SL_ENOMEM; after an
 * error the builder's content is unspecified but it stays safe to clean up.
 */
typedef struct sl_wbuf {
    uint8_t *data; /* bytes written so far (may be NULL when empty) */
    size_t len;    /* bytes in use */
    size_t cap;    /* bytes allocated */
    size_t max;    /* hard cap on len */
} sl_wbuf_t;

/** Initialises an empty builder that refuses to grow past max bytes. */
void sl_wbuf_init(sl_wbuf_t *w, size_t max);
/** Frees the builder's memory; the builder may be reused after init. */
void sl_wbuf_cleanup(sl_wbuf_t *w);
/** Makes room for n more bytes. */
int sl_wbuf_reserve(sl_wbuf_t *w, size_t n);
/** Appends n bytes. */
int sl_wbuf_put(sl_wbuf_t *w, const void *p, size_t n);
int sl_wbuf_put_u8(sl_wbuf_t *w, uint8_t v);
int sl_wbuf_put_be16(sl_wbuf_t *w, uint16_t v);
int sl_wbuf_put_be24(sl_wbuf_t *w, uint32_t v);
int sl_wbuf_put_be32(sl_wbuf_t *w, uint32_t v);
int sl_wbuf_put_le32(sl_wbuf_t *w, uint32_t v);
int sl_wbuf_put_be64(sl_wbuf_t *w, uint64_t v);
/** Empties the builder without freeing memory. */
static inline void sl_wbuf_reset(sl_wbuf_t *w) { w->len = 0; }
/**
 * Copies the content into a new sl_buf_t (one reference owned by the
 * caller) and empties the builder, which keeps its memory for reuse.
 * Returns NULL on allocation failure (the builder is then unchanged).
 */
sl_buf_t *sl_wbuf_to_buf(sl_wbuf_t *w);

/* Big-endian loads and stores on raw bytes. */
static inline uint16_t sl_rd_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t sl_rd_be24(const uint8_t *p) { return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]; }
static inline uint32_t sl_rd_be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static inline uint32_t sl_rd_le32(const uint8_t *p) { return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]; }
static inline uint64_t sl_rd_be64(const uint8_t *p) { return (uint64_t)sl_rd_be32(p) << 32 | sl_rd_be32(p + 4); }
static inline void sl_wr_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void sl_wr_be24(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 16); p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)v; }
static inline void sl_wr_be32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }
static inline void sl_wr_le32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }

#endif
