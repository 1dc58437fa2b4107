/*
 * Unit tests for base/assert.h: SL_ALWAYS / SL_NEVER evaluate their
 * expression once and yield its truth in every build; in a debug build
 * (SL_ASSERTS_ON) a failed SL_ASSERT, SL_ALWAYS or SL_NEVER aborts with
 * file:line and the expression on stderr, and in a release build it does
 * not (SL_ASSERT's expression is not even evaluated). The failing cases run
 * in a forked child.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/assert.h"

static int calls;
static int count(int v)
{
    calls++;
    return v;
}

static void test_value(void **state)
{
    (void)state;
    calls = 0;
    assert_true(SL_ALWAYS(count(1)));
    assert_false(SL_NEVER(count(0)));
    assert_int_equal(calls, 2);
    SL_ASSERT(count(1));
    assert_int_equal(calls, SL_ASSERTS_ON ? 3 : 2);
}

/* Runs which (0 = SL_ASSERT, 1 = SL_ALWAYS, 2 = SL_NEVER) with a false
 * claim in a child whose stderr goes to a pipe; returns its wait status and
 * what it printed. */
static int run_failing(int which, char *msg, size_t cap)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        signal(SIGABRT, SIG_DFL);
        int zero = count(0), r = 0;
        if (which == 0)
            SL_ASSERT(zero == 1);
        else if (which == 1)
            r = !SL_ALWAYS(zero == 1);
        else
            r = SL_NEVER(zero == 0);
        _exit(r ? 7 : 0);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], msg, cap - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

static void test_failure(void **state)
{
    (void)state;
    char msg[512];
    for (int which = 0; which < 3; which++) {
        int st = run_failing(which, msg, sizeof msg);
        if (SL_ASSERTS_ON) {
            assert_true(WIFSIGNALED(st));
            assert_int_equal(WTERMSIG(st), SIGABRT);
            assert_non_null(strstr(msg, "assert_test.c:"));
            assert_non_null(strstr(msg, "zero =="));
        } else {
            /* Release: the guard reports the can't-happen case to the
             * caller (exit 7); SL_ASSERT does nothing (exit 0). */
            assert_true(WIFEXITED(st));
            assert_int_equal(WEXITSTATUS(st), which == 0 ? 0 : 7);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value),
        cmocka_unit_test(test_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
