/*
 * Unit tests of the stream manager's provisions (src/cluster/streammanager/
 * sm_provision.c): the canonical SM 2.0 form and every limit of the
 * contract with the abr module, the SM 4.0 conversion both ways, the parse
 * caps, and the level-1 variant a broadcaster publishes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/streammanager/sm_provision.h"
#include "sluice/errors.h"

static json_t *J(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    return j;
}

#define V(g, l, w, h, br) \
    "{\"streamGuid\":\"" g "\",\"abrLevel\":" #l ",\"videoParams\":{\"videoWidth\":" #w \
    ",\"videoHeight\":" #h ",\"videoBitRate\":" #br "}}"

/* Canonical: sorted by level, only the contract's fields, limits enforced. */
static void test_canon(void **state)
{
    (void)state;
    char err[200];
    json_t *out;
    json_t *in = J("{\"streamGuid\":\"live/s\",\"credentials\":{\"a\":1},\"streams\":["
                   V("live/s_2", 2, 640, 360, 1000000) "," V("live/s_1", 1, 1280, 720, 2000000) "]}");
    assert_int_equal(sl_sm_prov_canon(in, NULL, &out, err, sizeof err), 0);
    char *text = json_dumps(out, JSON_COMPACT);
    assert_string_equal(text, "{\"streamGuid\":\"live/s\",\"streams\":["
                              V("live/s_1", 1, 1280, 720, 2000000) ","
                              V("live/s_2", 2, 640, 360, 1000000) "]}");
    char l1[64];
    assert_int_equal(sl_sm_prov_level1(text, l1, sizeof l1), 0);
    assert_string_equal(l1, "live/s_1");
    free(text);
    json_decref(out);
    /* the URL's GUID must match */
    assert_int_equal(sl_sm_prov_canon(in, "live/other", &out, err, sizeof err), SL_EINVAL);
    json_decref(in);

    static const char *const bad[] = {
        "{\"streams\":[" V("live/s_1", 1, 320, 180, 500000) "]}",            /* no GUID */
        "{\"streamGuid\":\"s\",\"streams\":[" V("s_1", 1, 320, 180, 500000) "]}", /* no app */
        "{\"streamGuid\":\"live/../s\",\"streams\":[" V("live/s_1", 1, 320, 180, 500000) "]}",
        "{\"streamGuid\":\"live/s\",\"streams\":[]}",
        "{\"streamGuid\":\"live/s\",\"streams\":[" V("vod/s_1", 1, 320, 180, 500000) "]}",
        "{\"streamGuid\":\"live/s\",\"streams\":[" V("live/s_1", 0, 320, 180, 500000) "]}",
        "{\"streamGuid\":\"live/s\",\"streams\":[" V("live/s_1", 9, 320, 180, 500000) "]}",
        "{\"streamGuid\":\"live/s\",\"streams\":[" V("live/s_1", 1, 321, 180, 500000) "]}",
        "{\"streamGuid\":\"live/s\",\"streams\":[" V("live/s_1", 1, 14, 180, 500000) "]}",
        "{\"streamGuid\":\"live/s\",\"streams\":[" V("live/s_1", 1, 4098, 180, 500000) "]}",
        "{\"streamGuid\":\"live/s\",\"streams\":[" V("live/s_1", 1, 320, 180, 31999) "]}",
        "{\"streamGuid\":\"live/s\",\"streams\":[" V("live/s_1", 1, 320, 180, 50000001) "]}",
        "{\"streamGuid\":\"live/s\",\"streams\":[" V("live/s_1", 1, 320, 180, 500000) ","
        V("live/s_2", 1, 320, 180, 500000) "]}",                               /* level twice */
        "{\"streamGuid\":\"live/s\",\"streams\":[" V("live/s_1", 1, 320, 180, 500000) ","
        V("live/s_1", 2, 320, 180, 500000) "]}",                               /* GUID twice */
        "{\"streamGuid\":\"live/s\",\"streams\":[" V("live/s", 1, 320, 180, 500000) "]}",
        "{\"streamGuid\":\"live/s\",\"transcode\":1,\"streams\":[" V("live/s_1", 1, 320, 180, 500000) "]}",
        "{\"streamGuid\":\"live/s\",\"streams\":[{\"streamGuid\":\"live/s_1\",\"abrLevel\":1,"
        "\"videoParams\":{\"videoWidth\":320,\"videoHeight\":180,\"videoBitRate\":500000,"
        "\"videoFPS\":121}}]}",
        "[]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *b = J(bad[i]);
        err[0] = '\0';
        assert_int_equal(sl_sm_prov_canon(b, NULL, &out, err, sizeof err), SL_EINVAL);
        assert_true(err[0] != '\0');
        json_decref(b);
    }
    /* nine variants */
    char big[4096] = "{\"streamGuid\":\"live/s\",\"streams\":[";
    for (int i = 1; i <= 9; i++) {
        char v[200];
        snprintf(v, sizeof v, "%s{\"streamGuid\":\"live/s_%d\",\"abrLevel\":%d,\"videoParams\":"
                 "{\"videoWidth\":320,\"videoHeight\":180,\"videoBitRate\":500000}}",
                 i > 1 ? "," : "", i, i > 8 ? 8 : i);
        strcat(big, v);
    }
    strcat(big, "]}");
    json_t *b = J(big);
    assert_int_equal(sl_sm_prov_canon(b, NULL, &out, err, sizeof err), SL_EINVAL);
    json_decref(b);
}

/* SM 4.0: names in the scope, levels quoted, bit rate from videoBR or bandwidth; and back. */
static void test_sm4(void **state)
{
    (void)state;
    char err[200];
    json_t *out;
    json_t *in = J("{\"meta\":{\"stream\":["
                   "{\"name\":\"s_2\",\"level\":\"2\",\"bandwidth\":1000000,\"properties\":"
                   "{\"videoWidth\":640,\"videoHeight\":360}},"
                   "{\"name\":\"s_1\",\"level\":1,\"properties\":{\"videoWidth\":1280,"
                   "\"videoHeight\":720,\"videoBR\":2000000,\"videoFPS\":30}}],"
                   "\"georules\":{\"regions\":[\"US\"],\"restricted\":false},\"qos\":3}}");
    assert_int_equal(sl_sm_prov_from_sm4(in, "live", "s", &out, err, sizeof err), 0);
    json_decref(in);
    assert_string_equal(json_string_value(json_object_get(out, "streamGuid")), "live/s");
    json_t *v1 = json_array_get(json_object_get(out, "streams"), 0);
    assert_string_equal(json_string_value(json_object_get(v1, "streamGuid")), "live/s_1");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(v1, "videoParams"),
                                                        "videoFPS")), 30);
    json_t *sm4 = sl_sm_prov_to_sm4(out, 42);
    assert_non_null(sm4);
    assert_string_equal(json_string_value(json_object_get(sm4, "name")), "s");
    assert_string_equal(json_string_value(json_object_get(sm4, "scope")), "live");
    assert_int_equal(json_integer_value(json_object_get(sm4, "updated")), 42);
    json_t *st = json_object_get(json_object_get(json_object_get(sm4, "data"), "meta"), "stream");
    assert_int_equal(json_array_size(st), 2);
    json_t *s2 = json_array_get(st, 1);
    assert_string_equal(json_string_value(json_object_get(s2, "name")), "s_2");
    assert_int_equal(json_integer_value(json_object_get(s2, "bandwidth")), 1000000);
    /* back again: the same canonical form */
    json_t *body = json_pack("{s:O}", "meta", json_object_get(json_object_get(sm4, "data"), "meta"));
    json_t *again;
    assert_int_equal(sl_sm_prov_from_sm4(body, "live", "s", &again, err, sizeof err), 0);
    assert_true(json_equal(again, out));
    json_decref(again);
    json_decref(body);
    json_decref(sm4);
    json_decref(out);
    json_t *bad = J("{\"meta\":{\"stream\":[{\"name\":\"x_1\",\"level\":\"one\",\"properties\":"
                    "{\"videoWidth\":320,\"videoHeight\":180,\"videoBR\":500000}}]}}");
    assert_int_equal(sl_sm_prov_from_sm4(bad, "live", "x", &out, err, sizeof err), SL_EINVAL);
    json_decref(bad);
    bad = J("{\"stream\":[]}");
    assert_int_equal(sl_sm_prov_from_sm4(bad, "live", "x", &out, err, sizeof err), SL_EINVAL);
    json_decref(bad);
}

/* Parse caps: size and nesting. */
static void test_parse_caps(void **state)
{
    (void)state;
    assert_null(sl_sm_prov_parse("", 0));
    assert_null(sl_sm_prov_parse("{", 1));
    char deep[64];
    memset(deep, '[', 17);
    memset(deep + 17, ']', 17);
    assert_null(sl_sm_prov_parse(deep, 34));
    json_t *ok = sl_sm_prov_parse(deep + 1, 32); /* 16 deep */
    assert_non_null(ok);
    json_decref(ok);
    assert_null(sl_sm_prov_parse("{\"a\":\"[[[[[[[[[[[[[[[[[[[[[\"}", 3)); /* truncated */
    const char *in_str = "{\"a\":\"[[[[[[[[[[[[[[[[[[[[\\\"\"}"; /* brackets in a string */
    json_t *str = sl_sm_prov_parse(in_str, strlen(in_str));
    assert_non_null(str);
    json_decref(str);
    char *big = malloc(SL_SM_PROV_BODY_MAX + 2);
    assert_non_null(big);
    memset(big, ' ', SL_SM_PROV_BODY_MAX + 1);
    big[0] = '1';
    assert_null(sl_sm_prov_parse(big, SL_SM_PROV_BODY_MAX + 1));
    free(big);
    char out[8];
    assert_int_equal(sl_sm_prov_level1("{\"streamGuid\":\"live/s\",\"streams\":["
                                       V("live/s_2", 2, 640, 360, 1000000) "]}", out, sizeof out),
                     SL_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canon),
        cmocka_unit_test(test_sm4),
        cmocka_unit_test(test_parse_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
