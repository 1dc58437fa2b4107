/*
 * Retry pacing shared by every loop that tries something again after a
 * failure (webhook deliveries, S3 uploads, the outbox writer): exponential
 * backoff with jitter, capped. It lives in memory, so it still paces a loop
 * when the failure cannot be recorded anywhere else (the database that
 * holds the next attempt time is the thing that fails). One sl_backoff_t
 * per retrying thing, owned by the thread that retries; not thread-safe.
 */
#ifndef SL_BASE_BACKOFF_H
#define SL_BASE_BACKOFF_H

#include <stdint.h>

typedef struct sl_backoff {
    uint32_t failures;           /* consecutive failures since the last success */
    uint64_t rng;                /* xorshift64* state, never 0 */
} sl_backoff_t;

/** Starts with no failures; seed may be anything (0 is replaced). */
void sl_backoff_init(sl_backoff_t *b, uint64_t seed);

/**
 * Records one more failure and returns how long to wait before the next
 * try, in ms: the window doubles from base_ms with every consecutive
 * failure up to cap_ms, and the wait is drawn uniformly from its upper
 * half ([window/2, window]) so that retries never come back at once and
 * peers that failed together spread out. base_ms 0 is taken as 1.
 */
uint64_t sl_backoff_fail(sl_backoff_t *b, uint64_t base_ms, uint64_t cap_ms);

/** Records a success; returns how many failures it ends (0 when none). */
uint32_t sl_backoff_ok(sl_backoff_t *b);

#endif
