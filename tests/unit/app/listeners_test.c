/*
 * Listeners table tests: announce, look a port up by protocol name and
 * TLS, a second announcement replaces the first, listing in announcement
 * order, bad names and ports refused, nothing left allocated after
 * cleanup.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "app/core.h"
#include "app/listeners.h"
#include "base/alloc.h"
#include "sluice/errors.h"

static void each_listener(void *arg, const sl_listener_info_t *l)
{
    char *out = arg;
    char one[128];
    snprintf(one, sizeof one, "%s%s@%s:%d;", l->name, l->tls ? "+tls" : "", l->bind, l->port);
    strcat(out, one);
}

static void test_announce_lookup(void **state)
{
    (void)state;
    int64_t bytes0 = sl_alloc_bytes();
    sl_core_t core;
    memset(&core, 0, sizeof core);
    assert_int_equal(sl_listeners_port(&core, "rtmp", 0), -1); /* empty table */
    assert_int_equal(sl_listeners_announce(&core, "rtmp", "0.0.0.0", 1935, 0, 0), 0);
    assert_int_equal(sl_listeners_announce(&core, "rtmp", "0.0.0.0", 1936, 1, 0), 0);
    assert_int_equal(sl_listeners_announce(&core, "http", "::", 5080, 0, 0), 0);
    assert_int_equal(sl_listeners_port(&core, "rtmp", 0), 1935);
    assert_int_equal(sl_listeners_port(&core, "rtmp", 1), 1936);
    assert_int_equal(sl_listeners_port(&core, "http", 0), 5080);
    assert_int_equal(sl_listeners_port(&core, "http", 1), -1); /* no HTTPS */
    assert_int_equal(sl_listeners_port(&core, "srt", 0), -1);
    /* The same name and TLS again: replaced, not added. */
    assert_int_equal(sl_listeners_announce(&core, "http", "127.0.0.1", 8080, 0, 0), 0);
    char list[256] = "";
    sl_listeners_each(&core, each_listener, list);
    assert_string_equal(list, "rtmp@0.0.0.0:1935;rtmp+tls@0.0.0.0:1936;http@127.0.0.1:8080;");
    assert_int_equal(sl_listeners_announce(&core, "", "x", 1, 0, 0), SL_EINVAL);
    assert_int_equal(sl_listeners_announce(&core, "a-name-far-too-long", "x", 1, 0, 0), SL_EINVAL);
    assert_int_equal(sl_listeners_announce(&core, "udp", "x", 70000, 0, 1), SL_EINVAL);
    assert_int_equal(sl_listeners_announce(&core, "udp", "x", -1, 0, 1), SL_EINVAL);
    sl_listeners_cleanup(&core);
    assert_null(core.listeners);
    sl_listeners_cleanup(&core); /* twice: fine */
    assert_int_equal(sl_alloc_bytes(), bytes0);
}

/* Many listeners: the table grows past its first allocation. */
static void test_grows(void **state)
{
    (void)state;
    int64_t bytes0 = sl_alloc_bytes();
    sl_core_t core;
    memset(&core, 0, sizeof core);
    char name[16];
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "p%d", i);
        assert_int_equal(sl_listeners_announce(&core, name, "0.0.0.0", 1000 + i, i & 1, 0), 0);
    }
    assert_int_equal(sl_listeners_port(&core, "p0", 0), 1000);
    assert_int_equal(sl_listeners_port(&core, "p39", 1), 1039);
    assert_int_equal(sl_listeners_port(&core, "p39", 0), -1);
    sl_listeners_cleanup(&core);
    assert_int_equal(sl_alloc_bytes(), bytes0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_announce_lookup),
        cmocka_unit_test(test_grows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
