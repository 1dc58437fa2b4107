/*
 * Counted allocation: every heap allocation in sluice goes through these.
 *
 * The allocator prefixes each block with a small header holding its size so
 * that the bytes in use can be reported on /metrics without a malloc hook.
 * Test builds (SL_FAULT_INJECTION) can make the Nth allocation fail, so that
 * tests can walk every failure path of session setup and teardown.
 * All functions are thread-safe (the counters are atomic).
 */
#ifndef SL_BASE_ALLOC_H
#define SL_BASE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

/** Allocates n bytes; returns NULL on failure (or injected failure). */
void *sl_malloc(size_t n);
/** Allocates n zeroed bytes; returns NULL on failure. */
void *sl_calloc(size_t count, size_t n);
/** Resizes p (which may be NULL); on failure returns NULL and p stays valid. */
void *sl_realloc(void *p, size_t n);
/** Frees p (NULL is ignored). p must come from sl_malloc/calloc/realloc/strdup. */
void sl_free(void *p);
/** Duplicates a NUL-terminated string; NULL on failure or if s is NULL. */
char *sl_strdup(const char *s);
/** Duplicates n bytes of s and NUL-terminates; NULL on failure. */
char *sl_strndup(const char *s, size_t n);

/** Bytes currently allocated through sl_malloc (payload bytes, no headers). */
int64_t sl_alloc_bytes(void);
/** Number of live blocks. */
int64_t sl_alloc_blocks(void);

/**
 * Fault injection (effective only when built with SL_FAULT_INJECTION):
 * after this call, the nth allocation from now (1-based) fails, and so does
 * every later one if `sticky` is set. n = 0 disables injection.
 * Returns 1 when injection is compiled in, 0 otherwise.
 */
int sl_alloc_fail_at(uint64_t n, int sticky);
/** Number of allocations injected to fail so far. */
uint64_t sl_alloc_failed_count(void);

#endif
