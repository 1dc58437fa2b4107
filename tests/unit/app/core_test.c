/*
 * Core helper tests: sl_name_is_safe (the one name check every protocol and
 * the API use) accepts UTF-8 names and refuses malformed UTF-8, C0/C1
 * controls and path tricks; and the session registry: a session without a
 * socket of its own (an HLS player) is registered and listed like any
 * other, but is not a connection: sl_core_connections, which
 * server.max_connections bounds, leaves it out (issue 11: playlist GETs
 * exhausted the connection limit).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "app/core.h"
#include "base/alloc.h"
#include "builtin_config.h"

static const sl_session_ops_t no_ops = {0};

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

static void test_socketless_not_connections(void **state)
{
    (void)state;
    sl_config_t cfg;
    sl_config_defaults(&cfg);
    sl_core_t core;
    assert_int_equal(sl_core_init(&core, NULL, &cfg), 0);
    sl_session_t conn, hls[3];
    memset(&conn, 0, sizeof conn);
    memset(hls, 0, sizeof hls);
    sl_session_register(&core, &conn, &no_ops, "rtmp");
    for (int i = 0; i < 3; i++) {
        hls[i].socketless = 1;
        sl_session_register(&core, &hls[i], &no_ops, "hls");
    }
    assert_int_equal(core.n_sessions, 4);        /* all listed (API, statistics) */
    assert_int_equal(core.n_socketless, 3);
    assert_int_equal(sl_core_connections(&core), 1);
    assert_ptr_equal(sl_core_find_session(&core, hls[1].id), &hls[1]);
    sl_session_unregister(&core, &hls[1]);
    sl_session_unregister(&core, &hls[1]); /* twice: counted once */
    assert_int_equal(core.n_socketless, 2);
    assert_int_equal(sl_core_connections(&core), 1);
    sl_session_unregister(&core, &conn);
    assert_int_equal(sl_core_connections(&core), 0);
    sl_session_unregister(&core, &hls[0]);
    sl_session_unregister(&core, &hls[2]);
    assert_int_equal(core.n_sessions, 0);
    assert_int_equal(core.n_socketless, 0);
    sl_core_cleanup(&core);
    sl_config_cleanup(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_is_safe_utf8),
        cmocka_unit_test(test_socketless_not_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
