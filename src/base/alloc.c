/*
 * Counted allocator (see alloc.h). Each block carries a 16-byte header with
 * its requested size, which keeps payloads 16-byte aligned and lets sl_free
 * subtract the exact size from the counters.
 */
#include "base/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef union {
    size_t size;
    max_align_t align; /* keeps the payload maximally aligned */
} hdr_t;

static _Atomic int64_t g_bytes;
static _Atomic int64_t g_blocks;
#ifdef SL_FAULT_INJECTION
static _Atomic uint64_t g_fail_countdown; /* 0 = off */
static _Atomic int g_fail_sticky;
static _Atomic int g_fail_tripped;
#endif
static _Atomic uint64_t g_failed;

static int should_fail(void)
{
#ifdef SL_FAULT_INJECTION
    if (atomic_load(&g_fail_tripped) && atomic_load(&g_fail_sticky)) {
        atomic_fetch_add(&g_failed, 1);
        return 1;
    }
    uint64_t c = atomic_load(&g_fail_countdown);
    if (c == 0)
        return 0;
    if (atomic_fetch_sub(&g_fail_countdown, 1) == 1) {
        atomic_store(&g_fail_tripped, 1);
        atomic_fetch_add(&g_failed, 1);
        return 1;
    }
#endif
    return 0;
}

void *sl_malloc(size_t n)
{
    if (should_fail() || n > SIZE_MAX - sizeof(hdr_t))
        return NULL;
    hdr_t *h = malloc(sizeof(hdr_t) + n);
    if (!h)
        return NULL;
    h->size = n;
    atomic_fetch_add(&g_bytes, (int64_t)n);
    atomic_fetch_add(&g_blocks, 1);
    return h + 1;
}

void *sl_calloc(size_t count, size_t n)
{
    if (n && count > SIZE_MAX / n)
        return NULL;
    void *p = sl_malloc(count * n);
    if (p)
        memset(p, 0, count * n);
    return p;
}

void *sl_realloc(void *p, size_t n)
{
    if (!p)
        return sl_malloc(n);
    if (should_fail() || n > SIZE_MAX - sizeof(hdr_t))
        return NULL;
    hdr_t *h = (hdr_t *)p - 1;
    size_t old = h->size;
    hdr_t *nh = realloc(h, sizeof(hdr_t) + n);
    if (!nh)
        return NULL;
    nh->size = n;
    atomic_fetch_add(&g_bytes, (int64_t)n - (int64_t)old);
    return nh + 1;
}

void sl_free(void *p)
{
    if (!p)
        return;
    hdr_t *h = (hdr_t *)p - 1;
    atomic_fetch_sub(&g_bytes, (int64_t)h->size);
    atomic_fetch_sub(&g_blocks, 1);
    free(h);
}

char *sl_strndup(const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *d = sl_malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *sl_strdup(const char *s)
{
    return s ? sl_strndup(s, strlen(s)) : NULL;
}

int64_t sl_alloc_bytes(void) { return atomic_load(&g_bytes); }
int64_t sl_alloc_blocks(void) { return atomic_load(&g_blocks); }
uint64_t sl_alloc_failed_count(void) { return atomic_load(&g_failed); }

int sl_alloc_fail_at(uint64_t n, int sticky)
{
#ifdef SL_FAULT_INJECTION
    atomic_store(&g_fail_tripped, 0);
    atomic_store(&g_fail_sticky, sticky);
    atomic_store(&g_fail_countdown, n);
    return 1;
#else
    (void)n;
    (void)sticky;
    return 0;
#endif
}
