/*
 * Refcounted payload blocks and the capped byte builder (see buf.h).
 */
#include "base/buf.h"

#include <string.h>

#include "base/alloc.h"
#include "sluice/errors.h"

sl_buf_t *sl_buf_new(size_t cap)
{
    if (cap > SL_BUF_MAX)
        return NULL;
    sl_buf_t *b = sl_malloc(sizeof(*b) + cap);
    if (!b)
        return NULL;
    atomic_init(&b->refs, 1);
    b->len = 0;
    b->cap = (uint32_t)cap;
    return b;
}

sl_buf_t *sl_buf_from(const void *p, size_t n)
{
    sl_buf_t *b = sl_buf_new(n);
    if (!b)
        return NULL;
    if (n)
        memcpy(b->data, p, n);
    b->len = (uint32_t)n;
    return b;
}

void sl_buf_unref(sl_buf_t *b)
{
    if (!b)
        return;
    uint32_t before = atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel);
    SL_ASSERT(before > 0); /* refs never go below zero: one unref per owner */
    if (before == 1)
        sl_free(b);
}

void sl_wbuf_init(sl_wbuf_t *w, size_t max)
{
    w->data = NULL;
    w->len = 0;
    w->cap = 0;
    w->max = max;
}

void sl_wbuf_cleanup(sl_wbuf_t *w)
{
    sl_free(w->data);
    w->data = NULL;
    w->len = w->cap = 0;
}

int sl_wbuf_reserve(sl_wbuf_t *w, size_t n)
{
    if (n > w->max || w->len > w->max - n)
        return SL_ETOOBIG;
    size_t need = w->len + n;
    if (need <= w->cap)
        return 0;
    size_t ncap = w->cap ? w->cap : 64;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (ncap > w->max)
        ncap = w->max;
    uint8_t *d = sl_realloc(w->data, ncap);
    if (!d)
        return SL_ENOMEM;
    w->data = d;
    w->cap = ncap;
    return 0;
}

int sl_wbuf_put(sl_wbuf_t *w, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    int rc = sl_wbuf_reserve(w, n);
    if (rc)
        return rc;
    memcpy(w->data + w->len, p, n);
    w->len += n;
    return 0;
}

int sl_wbuf_put_u8(sl_wbuf_t *w, uint8_t v) { return sl_wbuf_put(w, &v, 1); }
int sl_wbuf_put_be16(sl_wbuf_t *w, uint16_t v) { uint8_t b[2]; sl_wr_be16(b, v); return sl_wbuf_put(w, b, 2); }
int sl_wbuf_put_be24(sl_wbuf_t *w, uint32_t v) { uint8_t b[3]; sl_wr_be24(b, v); return sl_wbuf_put(w, b, 3); }
int sl_wbuf_put_be32(sl_wbuf_t *w, uint32_t v) { uint8_t b[4]; sl_wr_be32(b, v); return sl_wbuf_put(w, b, 4); }
int sl_wbuf_put_le32(sl_wbuf_t *w, uint32_t v) { uint8_t b[4]; sl_wr_le32(b, v); return sl_wbuf_put(w, b, 4); }
int sl_wbuf_put_be64(sl_wbuf_t *w, uint64_t v)
{
    uint8_t b[8];
    sl_wr_be32(b, (uint32_t)(v >> 32));
    sl_wr_be32(b + 4, (uint32_t)v);
    return sl_wbuf_put(w, b, 8);
}

sl_buf_t *sl_wbuf_to_buf(sl_wbuf_t *w)
{
    sl_buf_t *b = sl_buf_from(w->data, w->len);
    if (b)
        w->len = 0;
    return b;
}
