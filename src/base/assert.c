/*
 * The failure path of SL_ASSERT / SL_ALWAYS / SL_NEVER (see assert.h): one
 * line on stderr with where and what, then abort() so that a core file or
 * the sanitizer's report shows the stack.
 */
#include "base/assert.h"

#include <stdio.h>
#include <stdlib.h>

void sl__assert_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, what);
    fflush(stderr);
    abort();
}
