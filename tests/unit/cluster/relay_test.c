/*
 * The cluster relay's pure parts (src/cluster/relay/relay_util.c): the
 * static origins list (forms, every refusal, the cap), the stable relay
 * choice, the constant-time password compare, masking restreamer= in a
 * query, and the upstream URL with Red5's cluster-restreamer parameters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cluster/relay/relay_util.h"
#include "sluice/errors.h"

static void test_origins(void **state)
{
    (void)state;
    sl_relay_addr_t a[SL_RELAY_MAX_ORIGINS];
    const char *why = NULL;
    assert_int_equal(sl_relay_origins_parse(NULL, a, 16, &why), 0);
    assert_int_equal(sl_relay_origins_parse("  ,, ", a, 16, &why), 0);
    int n = sl_relay_origins_parse("10.0.0.1, origin-2.example:1940 rtmp://o3:1936/ [::1]:19350",
                                   a, 16, &why);
    assert_int_equal(n, 4);
    assert_string_equal(a[0].host, "10.0.0.1");
    assert_int_equal(a[0].port, 1935);
    assert_string_equal(a[1].host, "origin-2.example");
    assert_int_equal(a[1].port, 1940);
    assert_string_equal(a[2].host, "o3");
    assert_int_equal(a[2].port, 1936);
    assert_string_equal(a[3].host, "::1");
    assert_int_equal(a[3].port, 19350);
    const char *bad[] = {"h:0", "h:65536", "h:", "h:12a", ":1935", "h/x", "[::1", "[::1]x",
                         "bad host", "h:123456"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        why = NULL;
        int rc = sl_relay_origins_parse(bad[i], a, 16, &why);
        if (strcmp(bad[i], "bad host") == 0) {
            assert_int_equal(rc, 2); /* two entries, both fine */
            continue;
        }
        assert_int_equal(rc, SL_EINVAL);
        assert_non_null(why);
    }
    char many[1024] = "";
    for (int i = 0; i < 17; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "h%d ", i);
    assert_int_equal(sl_relay_origins_parse(many, a, 16, &why), SL_ETOOBIG);
    assert_int_equal(sl_relay_origins_parse("a b c", a, 2, &why), SL_ETOOBIG);
    char longhost[400];
    memset(longhost, 'x', 300);
    longhost[300] = '\0';
    assert_int_equal(sl_relay_origins_parse(longhost, a, 16, &why), SL_EINVAL);
}

static void test_pick(void **state)
{
    (void)state;
    /* stable: same answer every call; spread: 100 paths over 4 relays use each */
    int seen[4] = {0};
    for (int i = 0; i < 100; i++) {
        char p[32];
        snprintf(p, sizeof p, "live/stream%d", i);
        size_t k = sl_relay_pick(p, 4);
        assert_true(k < 4);
        assert_int_equal(k, sl_relay_pick(p, 4));
        seen[k]++;
    }
    for (int i = 0; i < 4; i++)
        assert_true(seen[i] > 5);
    assert_int_equal(sl_relay_pick("live/x", 1), 0);
}

static void test_secret_eq(void **state)
{
    (void)state;
    assert_true(sl_relay_secret_eq("pw", "pw"));
    assert_true(sl_relay_secret_eq("", NULL));
    assert_false(sl_relay_secret_eq("pw", "pW"));
    assert_false(sl_relay_secret_eq("pw", "pw1"));
    assert_false(sl_relay_secret_eq("pw1", "pw"));
    assert_false(sl_relay_secret_eq("", "x"));
}

static void test_mask(void **state)
{
    (void)state;
    char out[256];
    assert_int_equal(sl_relay_query_mask("a=1&restreamer=s3cret&cluster-restreamer-name=x&"
                                         "restreamer=again", "restreamer", out, sizeof out), 2);
    assert_string_equal(out, "a=1&restreamer=***&cluster-restreamer-name=x&restreamer=***");
    assert_int_equal(sl_relay_query_mask("re%73treamer=pw&x=restreamer=y", "restreamer", out,
                                         sizeof out), 1);
    assert_string_equal(out, "re%73treamer=***&x=restreamer=y");
    assert_int_equal(sl_relay_query_mask("restreamer", "restreamer", out, sizeof out), 0);
    assert_string_equal(out, "restreamer");
    assert_int_equal(sl_relay_query_mask("restreamer=", "restreamer", out, sizeof out), 1);
    assert_string_equal(out, "restreamer=***");
    assert_int_equal(sl_relay_query_mask(NULL, "restreamer", out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_equal(sl_relay_query_mask("restreamer=a", "restreamer", out, 14), SL_ETOOBIG);
    assert_string_equal(out, "");
    assert_int_equal(sl_relay_query_mask("restreamer=a", "restreamer", out, 15), 1);
}

static void test_url(void **state)
{
    (void)state;
    char out[SL_RELAY_URL_MAX];
    int n = sl_relay_url(out, sizeof out, "10.0.0.2", 1935, "live/room1", "cam 1", "p&w=d", 2);
    assert_int_equal(n, (int)strlen(out));
    assert_string_equal(out, "rtmp://10.0.0.2:1935/live/room1/cam%201?restreamer=p%26w%3Dd&"
                             "cluster-restreamer-context=live/room1&cluster-restreamer-name=cam%201&"
                             "cluster-hops=2");
    sl_relay_url(out, sizeof out, "::1", 19350, "live", "s", "", 1);
    assert_string_equal(out, "rtmp://[::1]:19350/live/s?cluster-restreamer-context=live&"
                             "cluster-restreamer-name=s&cluster-hops=1");
    assert_int_equal(sl_relay_url(out, 40, "10.0.0.2", 1935, "live", "s", "pw", 1), SL_ETOOBIG);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_origins),
        cmocka_unit_test(test_pick),
        cmocka_unit_test(test_secret_eq),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
