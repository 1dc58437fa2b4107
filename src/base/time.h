/*
 * Clocks. Wall-clock milliseconds for timestamps people read (creation
 * times in the API, log lines), and the monotonic clock for durations and
 * timeouts (the loop's uv_now() is preferred on the loop thread).
 */
#ifndef SL_BASE_TIME_H
#define SL_BASE_TIME_H

#include <stdint.h>
#include <time.h>

/** Milliseconds since the Unix epoch. */
static inline uint64_t sl_time_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/** Monotonic milliseconds (arbitrary origin). */
static inline uint64_t sl_time_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif
