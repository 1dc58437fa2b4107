/*
 * The cluster's wire formats (src/cluster/core/cluster_record.c): a node
 * record survives a write/parse round trip field by field with its
 * presences; the parser refuses what does not fit (oversized input, ids
 * outside the alphabet, strings longer than the struct's buffers, ports and
 * counters out of range, wrong types, duplicate keys), skips bad presences
 * without losing the node, and caps their number; bus messages round-trip
 * and refuse an invalid sender, addressee, topic or a payload that is not
 * JSON. Every test checks that nothing leaks (sl_alloc_bytes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "cluster/core/cluster_record.h"
#include "sluice/errors.h"

static int64_t g_base;

static int setup(void **state)
{
    (void)state;
    g_base = sl_alloc_bytes();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(sl_alloc_bytes(), g_base);
    return 0;
}

static sl_cluster_node_t sample(void)
{
    sl_cluster_node_t n = {0};
    snprintf(n.id, sizeof n.id, "node-a1");
    snprintf(n.role, sizeof n.role, "origin");
    snprintf(n.group, sizeof n.group, "default");
    snprintf(n.region, sizeof n.region, "eu-west");
    snprintf(n.state, sizeof n.state, "SOFT_SUNSET");
    snprintf(n.host, sizeof n.host, "203.0.113.7");
    snprintf(n.private_host, sizeof n.private_host, "10.0.0.7");
    n.rtmp_port = 1935;
    n.http_port = 5080;
    n.rtsp_port = 8554;
    n.srt_port = 0;
    n.started_ms = 1796550110997ull;
    n.reported_ms = 1796550112347ull;
    n.connections = 12;
    n.publishers = 2;
    n.subscribers = 10;
    n.streams = 2;
    n.cpu_load = 12.5;
    n.mem_load = 3.25;
    n.bytes_in_rate = 1000000;
    n.bytes_out_rate = 5000000;
    n.max_connections = 10000;
    return n;
}

static void test_record_round_trip(void **state)
{
    (void)state;
    sl_cluster_node_t n = sample(), back;
    sl_cluster_rec_presence_t p[2] = {{.path = "live/a", .is_origin = 1, .subscribers = 3,
                                       .started_ms = 42},
                                      {.path = "live/room1/b", .is_origin = 0, .subscribers = 7,
                                       .started_ms = 43}};
    char *txt = sl_cluster_record_write(&n, p, 2);
    assert_non_null(txt);
    sl_cluster_rec_presence_t *bp = NULL;
    size_t n_bp = 0;
    assert_int_equal(sl_cluster_record_parse(txt, strlen(txt), &back, &bp, &n_bp), 0);
    assert_string_equal(back.id, n.id);
    assert_string_equal(back.role, n.role);
    assert_string_equal(back.group, n.group);
    assert_string_equal(back.region, n.region);
    assert_string_equal(back.state, n.state);
    assert_string_equal(back.host, n.host);
    assert_string_equal(back.private_host, n.private_host);
    assert_int_equal(back.rtmp_port, 1935);
    assert_int_equal(back.http_port, 5080);
    assert_int_equal(back.rtsp_port, 8554);
    assert_int_equal(back.srt_port, 0);
    assert_int_equal(back.started_ms, n.started_ms);
    assert_int_equal(back.reported_ms, n.reported_ms);
    assert_int_equal(back.connections, 12);
    assert_int_equal(back.publishers, 2);
    assert_int_equal(back.subscribers, 10);
    assert_int_equal(back.streams, 2);
    assert_true(back.cpu_load > 12.49 && back.cpu_load < 12.51);
    assert_true(back.mem_load > 3.24 && back.mem_load < 3.26);
    assert_int_equal(back.bytes_in_rate, 1000000);
    assert_int_equal(back.bytes_out_rate, 5000000);
    assert_int_equal(back.max_connections, 10000);
    assert_int_equal(n_bp, 2);
    assert_string_equal(bp[0].path, "live/a");
    assert_int_equal(bp[0].is_origin, 1);
    assert_int_equal(bp[0].subscribers, 3);
    assert_int_equal(bp[0].started_ms, 42);
    assert_string_equal(bp[1].path, "live/room1/b");
    assert_int_equal(bp[1].is_origin, 0);
    assert_int_equal(bp[1].subscribers, 7);
    sl_cluster_presences_free(bp, n_bp);
    sl_free(txt);
}

/* Parses txt expecting rc; on success returns 1 so callers can inspect out. */
static int parse(const char *txt, int rc, sl_cluster_node_t *out)
{
    sl_cluster_node_t tmp;
    sl_cluster_rec_presence_t *p = (sl_cluster_rec_presence_t *)1;
    size_t n_p = 99;
    int got = sl_cluster_record_parse(txt, strlen(txt), out ? out : &tmp, &p, &n_p);
    assert_int_equal(got, rc);
    if (got) {
        assert_null(p);
        assert_int_equal(n_p, 0);
    }
    sl_cluster_presences_free(p, n_p);
    return got == 0;
}

static void test_record_refusals(void **state)
{
    (void)state;
    parse("", SL_EINVAL, NULL);
    parse("[]", SL_EINVAL, NULL);
    parse("{\"role\":\"all\"}", SL_EINVAL, NULL);                    /* no id */
    parse("{\"id\":\"a b\",\"role\":\"all\"}", SL_EINVAL, NULL);     /* space in id */
    parse("{\"id\":\"a/b\",\"role\":\"all\"}", SL_EINVAL, NULL);     /* slash in id */
    parse("{\"id\":\"\",\"role\":\"all\"}", SL_EINVAL, NULL);
    parse("{\"id\":1,\"role\":\"all\"}", SL_EINVAL, NULL);
    parse("{\"id\":\"a\"}", SL_EINVAL, NULL);                        /* no role */
    parse("{\"id\":\"a\",\"id\":\"b\",\"role\":\"all\"}", SL_EINVAL, NULL); /* duplicate */
    parse("{\"id\":\"a\",\"role\":\"all\",\"ports\":{\"rtmp\":65536}}", SL_EINVAL, NULL);
    parse("{\"id\":\"a\",\"role\":\"all\",\"ports\":{\"rtmp\":-1}}", SL_EINVAL, NULL);
    parse("{\"id\":\"a\",\"role\":\"all\",\"ports\":[]}", SL_EINVAL, NULL);
    parse("{\"id\":\"a\",\"role\":\"all\",\"load\":{\"connections\":4294967296}}", SL_EINVAL,
          NULL);
    parse("{\"id\":\"a\",\"role\":\"all\",\"load\":{\"cpu\":\"high\"}}", SL_EINVAL, NULL);
    parse("{\"id\":\"a\",\"role\":\"all\",\"load\":{\"cpu\":-1}}", SL_EINVAL, NULL);
    parse("{\"id\":\"a\",\"role\":\"all\",\"host\":\"a\\nb\"}", SL_EINVAL, NULL);
    parse("{\"id\":\"a\",\"role\":\"all\",\"host\":\"a\\u0000b\"}", SL_EINVAL, NULL);
    parse("{\"id\":\"a\",\"role\":\"all\",\"streams\":{}}", SL_EINVAL, NULL);
    /* A 64-byte id does not fit the 64-byte buffer with its NUL. */
    char big[200];
    snprintf(big, sizeof big, "{\"id\":\"%064d\",\"role\":\"all\"}", 0);
    parse(big, SL_EINVAL, NULL);
    snprintf(big, sizeof big, "{\"id\":\"%063d\",\"role\":\"all\"}", 0);
    parse(big, 0, NULL);
    /* Over the size cap: refused before parsing. */
    size_t len = SL_CLUSTER_RECORD_MAX + 1;
    char *huge = sl_malloc(len + 1);
    assert_non_null(huge);
    memset(huge, ' ', len);
    huge[len] = '\0';
    sl_cluster_node_t out;
    assert_int_equal(sl_cluster_record_parse(huge, len, &out, NULL, NULL), SL_ETOOBIG);
    sl_free(huge);
}

static void test_record_defaults_and_bad_presences(void **state)
{
    (void)state;
    sl_cluster_node_t out;
    assert_true(parse("{\"id\":\"a\",\"role\":\"edge\",\"load\":{\"cpu\":250}}", 0, &out));
    assert_string_equal(out.state, "INSERVICE"); /* missing: in service */
    assert_true(out.cpu_load == 100);            /* a little over is clamped */
    const char *txt = "{\"id\":\"a\",\"role\":\"edge\",\"streams\":["
                      "{\"path\":\"live/ok\",\"origin\":true,\"subscribers\":1},"
                      "{\"path\":\"../etc\"},{\"path\":5},7,"
                      "{\"path\":\"live/neg\",\"subscribers\":-3},"
                      "{\"path\":\"live/ok2\"}]}";
    sl_cluster_rec_presence_t *p = NULL;
    size_t n_p = 0;
    assert_int_equal(sl_cluster_record_parse(txt, strlen(txt), &out, &p, &n_p), 0);
    assert_int_equal(n_p, 2);
    assert_string_equal(p[0].path, "live/ok");
    assert_int_equal(p[0].is_origin, 1);
    assert_string_equal(p[1].path, "live/ok2");
    assert_int_equal(p[1].is_origin, 0);
    sl_cluster_presences_free(p, n_p);
}

static void test_presences_capped(void **state)
{
    (void)state;
    size_t n = SL_CLUSTER_PRESENCES_MAX + 10;
    size_t cap = 64 + n * 24;
    char *txt = sl_malloc(cap);
    assert_non_null(txt);
    size_t off = (size_t)snprintf(txt, cap, "{\"id\":\"a\",\"role\":\"all\",\"streams\":[");
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(txt + off, cap - off, "%s{\"path\":\"l/s%zu\"}", i ? "," : "", i);
    off += (size_t)snprintf(txt + off, cap - off, "]}");
    sl_cluster_node_t out;
    sl_cluster_rec_presence_t *p = NULL;
    size_t n_p = 0;
    assert_int_equal(sl_cluster_record_parse(txt, off, &out, &p, &n_p), 0);
    assert_int_equal(n_p, SL_CLUSTER_PRESENCES_MAX);
    sl_cluster_presences_free(p, n_p);
    sl_free(txt);
}

static void test_msg_round_trip_and_refusals(void **state)
{
    (void)state;
    char *m = sl_cluster_msg_write("node-a", "node-b", "kick", "{\"session\":\"S1\"}");
    assert_non_null(m);
    sl_cluster_msg_t msg;
    assert_int_equal(sl_cluster_msg_parse(m, strlen(m), &msg), 0);
    assert_string_equal(msg.from, "node-a");
    assert_string_equal(msg.to, "node-b");
    assert_string_equal(msg.topic, "kick");
    assert_string_equal(msg.json, "{\"session\":\"S1\"}");
    sl_free(msg.json);
    sl_free(m);
    m = sl_cluster_msg_write("node-a", NULL, "state", NULL);
    assert_non_null(m);
    assert_int_equal(sl_cluster_msg_parse(m, strlen(m), &msg), 0);
    assert_string_equal(msg.to, "");
    assert_string_equal(msg.json, "{}");
    sl_free(msg.json);
    sl_free(m);
    assert_null(sl_cluster_msg_write("bad id", NULL, "kick", NULL));
    assert_null(sl_cluster_msg_write("a", "b/c", "kick", NULL));
    assert_null(sl_cluster_msg_write("a", NULL, "", NULL));
    static const char *const bad[] = {
        "{}",
        "{\"from\":\"a\",\"topic\":\"t\"}",                          /* no json */
        "{\"from\":\"a\",\"topic\":\"t\",\"json\":\"{not json\"}",
        "{\"from\":\"a b\",\"topic\":\"t\",\"json\":\"{}\"}",
        "{\"from\":\"a\",\"to\":\"x/y\",\"topic\":\"t\",\"json\":\"{}\"}",
        "{\"from\":\"a\",\"topic\":\"\",\"json\":\"{}\"}",
        "{\"from\":\"a\",\"topic\":\"t\",\"json\":{}}",
        "{\"from\":\"a\",\"topic\":\"t\",\"json\":\"{}\",\"json\":\"{}\"}",
        "[1]",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(sl_cluster_msg_parse(bad[i], strlen(bad[i]), &msg), SL_EINVAL);
        assert_null(msg.json);
    }
    char *huge = sl_malloc(SL_CLUSTER_MSG_MAX + 2);
    assert_non_null(huge);
    memset(huge, ' ', SL_CLUSTER_MSG_MAX + 1);
    assert_int_equal(sl_cluster_msg_parse(huge, SL_CLUSTER_MSG_MAX + 1, &msg), SL_ETOOBIG);
    sl_free(huge);
}

static void test_id_alphabet(void **state)
{
    (void)state;
    assert_true(sl_cluster_id_is_valid("node-1.eu_west"));
    assert_false(sl_cluster_id_is_valid(""));
    assert_false(sl_cluster_id_is_valid(NULL));
    assert_false(sl_cluster_id_is_valid("a:b"));
    assert_false(sl_cluster_id_is_valid("a*"));
    assert_false(sl_cluster_id_is_valid("\xc3\xa9"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_record_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_defaults_and_bad_presences, setup, teardown),
        cmocka_unit_test_setup_teardown(test_presences_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msg_round_trip_and_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_id_alphabet, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
