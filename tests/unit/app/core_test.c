/*
 * Core helper tests: sl_name_is_safe (the one name check every protocol and
 * the API use) accepts UTF-8 names and refuses malformed UTF-8, C0/C1
 * controls and path tricks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "app/core.h"

static void test_name_is_safe_utf8(void **state)
{
    (void)state;
    const char *good[] = {"live/stream1", "live/room1/cam-2_b.x", "live/caf\xc3\xa9",
                          "live/\xe6\x9d\xb1\xe4\xba\xac", "live/\xf0\x9f\x8e\xa5",
                          "live/\xc2\xa0nbsp", "live/\xef\xbf\xbd", "live/\xf4\x8f\xbf\xbf"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(sl_name_is_safe(good[i], 256));
    const char *bad[] = {
        "live/bad\xff",            /* never valid in UTF-8 */
        "live/\x80x",              /* stray continuation byte */
        "live/cam\xc0\xaf",        /* overlong '/' */
        "live/\xe0\x80\xaf",       /* overlong, 3 bytes */
        "live/\xf0\x80\x80\xaf",   /* overlong, 4 bytes */
        "live/a\xed\xa0\x80-",     /* UTF-16 surrogate D800 */
        "live/\xf4\x90\x80\x80",   /* above U+10FFFF */
        "live/\xf5\x80\x80\x80",   /* lead byte past U+10FFFF */
        "live/c1\xc2\x85",         /* U+0085 NEL, a C1 control */
        "live/c1\xc2\x9f",         /* U+009F */
        "live/trunc\xe6\x9d",      /* truncated at the end */
        "live/trunc\xe6/x",        /* truncated before a slash */
        "live/a\x01-", "live/a\x7f", "live/a\\b", "live/../x", "live//x", "live/.",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (sl_name_is_safe(bad[i], 256))
            fail_msg("accepted bad name #%zu", i);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_is_safe_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
