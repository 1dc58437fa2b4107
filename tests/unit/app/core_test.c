/*
 * Session registry tests: a session without a socket of its own (an HLS
 * player) is registered and listed like any other, but is not a
 * connection: sl_core_connections, which server.max_connections bounds,
 * leaves it out (issue 11: playlist GETs exhausted the connection limit).
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

static const sl_session_ops_t no_ops = {0};

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
        cmocka_unit_test(test_socketless_not_connections),
    };
    int64_t before = sl_alloc_bytes();
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (sl_alloc_bytes() != before) {
        fprintf(stderr, "leak: %lld bytes\n", (long long)(sl_alloc_bytes() - before));
        return 1;
    }
    return rc;
}
