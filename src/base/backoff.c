/*
 * Exponential backoff with jitter (see backoff.h). The doubling stops at
 * the cap, so any number of failures is safe from overflow.
 */
#include "base/backoff.h"

void sl_backoff_init(sl_backoff_t *b, uint64_t seed)
{
    b->failures = 0;
    b->rng = seed ? seed : 0x9E3779B97F4A7C15ull;
}

static uint64_t next_rand(sl_backoff_t *b)
{
    uint64_t x = b->rng ? b->rng : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    b->rng = x;
    return x * 2685821657736338717ull;
}

uint64_t sl_backoff_fail(sl_backoff_t *b, uint64_t base_ms, uint64_t cap_ms)
{
    if (b->failures < UINT32_MAX)
        b->failures++;
    if (!base_ms)
        base_ms = 1;
    if (cap_ms < base_ms)
        cap_ms = base_ms;
    uint64_t window = base_ms;
    for (uint32_t i = 1; i < b->failures && window < cap_ms; i++)
        window *= 2;
    if (window > cap_ms)
        window = cap_ms;
    uint64_t half = window / 2;
    return half + next_rand(b) % (window - half + 1);
}

uint32_t sl_backoff_ok(sl_backoff_t *b)
{
    uint32_t n = b->failures;
    b->failures = 0;
    return n;
}
