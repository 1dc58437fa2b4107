/*
 * Redis Cluster support of the cluster core's Redis link
 * (src/cluster/core/cluster_redis.c): the MOVED/ASK parser takes what
 * Redis sends (IPv4, hostnames, bare and bracketed IPv6, Redis 7's empty
 * "unknown endpoint" host) and refuses the rest with hard caps (text and
 * host length, slot and port ranges, stray bytes); other errors are
 * declined; the key prefix gets one hash tag in cluster mode and keeps an
 * existing one, so that every key sluice writes hashes to one slot.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cluster/core/cluster_redis.h"
#include "sluice/errors.h"

static int parse(const char *s, sl_cluster_redis_redirect_t *r)
{
    return sl_cluster_redis_parse_redirect(s, strlen(s), r);
}

static void test_moved_and_ask(void **state)
{
    (void)state;
    sl_cluster_redis_redirect_t r;
    assert_int_equal(parse("MOVED 3999 127.0.0.1:6381", &r), 0);
    assert_int_equal(r.ask, 0);
    assert_int_equal(r.slot, 3999);
    assert_string_equal(r.host, "127.0.0.1");
    assert_int_equal(r.port, 6381);
    assert_int_equal(parse("ASK 0 redis-2.example.net:7000", &r), 0);
    assert_int_equal(r.ask, 1);
    assert_int_equal(r.slot, 0);
    assert_string_equal(r.host, "redis-2.example.net");
    assert_int_equal(r.port, 7000);
    assert_int_equal(parse("MOVED 16383 ::1:65535", &r), 0);
    assert_string_equal(r.host, "::1");
    assert_int_equal(r.slot, 16383);
    assert_int_equal(r.port, 65535);
    assert_int_equal(parse("MOVED 12 [fe80::1%eth0]:6379", &r), 0);
    assert_string_equal(r.host, "fe80::1%eth0");
    assert_int_equal(parse("MOVED 12 :6380", &r), 0); /* unknown endpoint: the same host */
    assert_string_equal(r.host, "");
    assert_int_equal(r.port, 6380);
}

static void test_other_errors_declined(void **state)
{
    (void)state;
    sl_cluster_redis_redirect_t r;
    assert_int_equal(parse("CLUSTERDOWN The cluster is down", &r), SL_EDECLINED);
    assert_int_equal(parse("TRYAGAIN Multiple keys request during rehashing of slot", &r),
                     SL_EDECLINED);
    assert_int_equal(parse("CROSSSLOT Keys in request don't hash to the same slot", &r),
                     SL_EDECLINED);
    assert_int_equal(parse("ASKING", &r), SL_EDECLINED);
    assert_int_equal(parse("MOVED", &r), SL_EDECLINED);
    assert_int_equal(sl_cluster_redis_parse_redirect("", 0, &r), SL_EDECLINED);
}

static void test_malformed_refused(void **state)
{
    (void)state;
    sl_cluster_redis_redirect_t r;
    const char *bad[] = {
        "MOVED 16384 127.0.0.1:6379",   /* slot out of range */
        "MOVED 123456 127.0.0.1:6379",  /* too many digits */
        "MOVED -1 127.0.0.1:6379",
        "MOVED  1 127.0.0.1:6379",
        "MOVED 1 127.0.0.1:0",          /* port out of range */
        "MOVED 1 127.0.0.1:65536",
        "MOVED 1 127.0.0.1:123456",
        "MOVED 1 127.0.0.1:",
        "MOVED 1 127.0.0.1",            /* no port */
        "MOVED 1 127.0.0.1:6379 x",     /* trailing bytes */
        "MOVED 1 127.0.0.1:63x9",
        "MOVED 1 ?:6379",               /* Redis's "no hostname" marker */
        "MOVED 1 a/b:6379",
        "MOVED 1 [::1:6379",            /* stray bracket */
        "MOVED 1 ::1]:6379",
        "ASK 1",
        "ASK x 127.0.0.1:6379",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(bad[i], &r) != SL_EINVAL)
            fail_msg("accepted: %s", bad[i]);
    }
    /* Control bytes and NULs inside the length count, never read past it. */
    assert_int_equal(sl_cluster_redis_parse_redirect("MOVED 1 a\0b:1", 13, &r), SL_EINVAL);
    assert_int_equal(sl_cluster_redis_parse_redirect("MOVED 1 ab:1\r\n", 14, &r), SL_EINVAL);
    assert_int_equal(sl_cluster_redis_parse_redirect("MOVED 1 127.0.0.1:6379", 20, &r), 0);
    assert_int_equal(r.port, 63); /* the length given, not the NUL, ends the text */
}

static void test_caps(void **state)
{
    (void)state;
    sl_cluster_redis_redirect_t r;
    char buf[SL_CLUSTER_REDIS_REDIRECT_MAX + 64];
    char host[SL_CLUSTER_REDIS_HOST_MAX + 2];
    memset(host, 'h', SL_CLUSTER_REDIS_HOST_MAX);
    host[SL_CLUSTER_REDIS_HOST_MAX] = '\0';
    snprintf(buf, sizeof buf, "ASK 7 %s:1", host); /* the longest host */
    assert_int_equal(parse(buf, &r), 0);
    assert_int_equal(strlen(r.host), SL_CLUSTER_REDIS_HOST_MAX);
    host[SL_CLUSTER_REDIS_HOST_MAX] = 'h';
    host[SL_CLUSTER_REDIS_HOST_MAX + 1] = '\0';
    snprintf(buf, sizeof buf, "ASK 7 %s:1", host); /* one byte more */
    assert_int_equal(parse(buf, &r), SL_EINVAL);
    memset(buf, '1', sizeof buf - 1); /* a long text is refused before it is read */
    memcpy(buf, "MOVED 1 ", 8);
    buf[sizeof buf - 1] = '\0';
    assert_int_equal(parse(buf, &r), SL_EINVAL);
}

static void test_prefix_hash_tag(void **state)
{
    (void)state;
    char out[80];
    assert_int_equal(sl_cluster_redis_prefix("sluice:", 0, out, sizeof out), 0);
    assert_string_equal(out, "sluice:");
    assert_int_equal(sl_cluster_redis_prefix("", 0, out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_equal(sl_cluster_redis_prefix("sluice:", 1, out, sizeof out), 0);
    assert_string_equal(out, "{sluice}:");
    assert_int_equal(sl_cluster_redis_prefix("abc", 1, out, sizeof out), 0);
    assert_string_equal(out, "{abc}");
    assert_int_equal(sl_cluster_redis_prefix(":", 1, out, sizeof out), 0);
    assert_string_equal(out, "{:}");
    assert_int_equal(sl_cluster_redis_prefix("app:{prod}:", 1, out, sizeof out), 0);
    assert_string_equal(out, "app:{prod}:"); /* a tag of its own is kept */
    assert_int_equal(sl_cluster_redis_prefix("a{}b:", 1, out, sizeof out), 0);
    assert_string_equal(out, "{a{}b}:"); /* an empty tag is no tag: wrapped */
    assert_int_equal(sl_cluster_redis_prefix("", 1, out, sizeof out), SL_EINVAL);
    assert_int_equal(sl_cluster_redis_prefix("}x:", 1, out, sizeof out), SL_EINVAL);
    assert_int_equal(sl_cluster_redis_prefix("sluice:", 1, out, 9), SL_ETOOBIG);
    assert_int_equal(sl_cluster_redis_prefix("sluice:", 1, out, 10), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moved_and_ask),
        cmocka_unit_test(test_other_errors_declined),
        cmocka_unit_test(test_malformed_refused),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_prefix_hash_tag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
