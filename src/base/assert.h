/*
 * Assertions (STYLE.md): SL_ASSERT for checks that cost something and run
 * only in debug builds; SL_ALWAYS / SL_NEVER for can't-happen cases that
 * still guard in release. A debug build is one without NDEBUG (CMake's
 * Debug, which `make build-asan` uses) or one that defines SL_DEBUG; there a
 * failed check prints file:line and the expression to stderr and aborts,
 * so the unit tests and the ASan e2e tier stop at the broken invariant.
 *
 *     SL_ASSERT(buf->refs > 0);                 // debug only; not evaluated in release
 *     if (SL_NEVER(stream->n_subs == 0))        // release: the guard runs, returns
 *         return;
 *     if (!SL_ALWAYS(node->prev != NULL))       // same, stated positively
 *         return;
 *
 * The expression of SL_ALWAYS / SL_NEVER is evaluated exactly once in every
 * build; that of SL_ASSERT is not evaluated at all in release builds, so it
 * must have no side effect.
 */
#ifndef SL_BASE_ASSERT_H
#define SL_BASE_ASSERT_H

#if !defined(NDEBUG) || defined(SL_DEBUG)
#define SL_ASSERTS_ON 1
#else
#define SL_ASSERTS_ON 0
#endif

/*
 * Reports a failed check (file:line: expression) on stderr and aborts.
 * Never returns. Called only by the macros below, in debug builds.
 */
__attribute__((noreturn, cold)) void sl__assert_fail(const char *what, const char *file, int line);

#if SL_ASSERTS_ON
#define SL_ASSERT(x) ((x) ? (void)0 : sl__assert_fail(#x, __FILE__, __LINE__))
#define SL_ALWAYS(x) ((x) ? 1 : (sl__assert_fail("SL_ALWAYS(" #x ")", __FILE__, __LINE__), 0))
#define SL_NEVER(x) ((x) ? (sl__assert_fail("SL_NEVER(" #x ")", __FILE__, __LINE__), 1) : 0)
#else
#define SL_ASSERT(x) ((void)0)
#define SL_ALWAYS(x) (__builtin_expect(!!(x), 1))
#define SL_NEVER(x) (__builtin_expect(!!(x), 0))
#endif

#endif
