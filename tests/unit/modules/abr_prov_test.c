/*
 * Provision parser tests (src/modules/abr/abr_prov.c): the contract's
 * shape parses (levels sorted, transcode defaulting to true, videoFPS
 * optional), every limit is refused with a reason naming the field, the
 * size cap holds, and writing a provision back parses to the same one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "base/alloc.h"
#include "modules/abr/abr_prov.h"
#include "sluice/errors.h"

#define V(g, l, w, h, b) \
    "{\"streamGuid\":\"" g "\",\"abrLevel\":" #l ",\"videoParams\":{\"videoWidth\":" #w \
    ",\"videoHeight\":" #h ",\"videoBitRate\":" #b "}}"

static const char good[] =
    "{\"streamGuid\":\"live/mystream\",\"streams\":[" V("live/mystream_3", 3, 320, 180, 500000) ","
    V("live/mystream_1", 1, 1280, 720, 2000000) ","
    "{\"streamGuid\":\"live/mystream_2\",\"abrLevel\":2,\"videoParams\":{\"videoWidth\":640,"
    "\"videoHeight\":360,\"videoBitRate\":1000000,\"videoFPS\":15}}]}";

static void test_good(void **state)
{
    (void)state;
    sl_abr_prov_t p;
    char why[200];
    assert_int_equal(sl_abr_prov_parse(good, strlen(good), &p, why, sizeof why), 0);
    assert_string_equal(p.guid, "live/mystream");
    assert_string_equal(p.app, "live");
    assert_int_equal(p.transcode, 1);
    assert_int_equal(p.n, 3);
    assert_int_equal(p.lv[0].level, 1); /* sorted by level */
    assert_string_equal(p.lv[0].guid, "live/mystream_1");
    assert_int_equal(p.lv[1].fps, 15);
    assert_int_equal(p.lv[2].width, 320);
    assert_non_null(sl_abr_prov_level(&p, "live/mystream_2"));
    assert_null(sl_abr_prov_level(&p, "live/mystream"));
    /* round trip */
    json_t *o = sl_abr_prov_json(&p);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    sl_abr_prov_t q;
    assert_int_equal(sl_abr_prov_parse(s, strlen(s), &q, why, sizeof why), 0);
    free(s);
    assert_memory_equal(&p, &q, sizeof p);
}

static void refused(const char *json, const char *needle)
{
    sl_abr_prov_t p;
    char why[200] = "";
    int rc = sl_abr_prov_parse(json, strlen(json), &p, why, sizeof why);
    assert_int_equal(rc, SL_EINVAL);
    if (!strstr(why, needle))
        fail_msg("reason \"%s\" does not name %s", why, needle);
}

static void test_limits(void **state)
{
    (void)state;
    refused("[]", "object");
    refused("{\"streamGuid\":\"mystream\",\"streams\":[" V("live/a_1", 1, 16, 16, 32000) "]}",
            "streamGuid");
    refused("{\"streamGuid\":\"live/a\",\"streams\":[]}", "streams");
    refused("{\"streamGuid\":\"live/a\",\"streams\":[" V("other/a_1", 1, 16, 16, 32000) "]}",
            "streamGuid");
    refused("{\"streamGuid\":\"live/a\",\"streams\":[" V("live/a", 1, 16, 16, 32000) "]}",
            "differ");
    refused("{\"streamGuid\":\"live/a\",\"streams\":[" V("live/a_1", 1, 16, 16, 32000) ","
            V("live/a_1", 2, 16, 16, 32000) "]}", "twice");
    refused("{\"streamGuid\":\"live/a\",\"streams\":[" V("live/a_1", 1, 16, 16, 32000) ","
            V("live/a_2", 1, 16, 16, 32000) "]}", "abrLevel");
    refused("{\"streamGuid\":\"live/a\",\"streams\":[" V("live/a_1", 9, 16, 16, 32000) "]}",
            "abrLevel");
    refused("{\"streamGuid\":\"live/a\",\"streams\":[" V("live/a_2", 2, 16, 16, 32000) "]}",
            "abrLevel 1");
    refused("{\"streamGuid\":\"live/a\",\"streams\":[" V("live/a_1", 1, 17, 16, 32000) "]}",
            "videoWidth");
    refused("{\"streamGuid\":\"live/a\",\"streams\":[" V("live/a_1", 1, 16, 4098, 32000) "]}",
            "videoHeight");
    refused("{\"streamGuid\":\"live/a\",\"streams\":[" V("live/a_1", 1, 16, 16, 31999) "]}",
            "videoBitRate");
    refused("{\"streamGuid\":\"live/a\",\"streams\":[" V("live/a_1", 1, 16, 16, 50000001) "]}",
            "videoBitRate");
    refused("{\"streamGuid\":\"live/a\",\"transcode\":1,\"streams\":[" V("live/a_1", 1, 16, 16,
                                                                          32000) "]}",
            "transcode");
    refused("{\"streamGuid\":\"live/a\",\"streams\":[{\"streamGuid\":\"live/a_1\",\"abrLevel\":1,"
            "\"videoParams\":{\"videoWidth\":16,\"videoHeight\":16,\"videoBitRate\":32000,"
            "\"videoFPS\":121}}]}", "videoFPS");
    refused("{\"streamGuid\":\"live/../a\",\"streams\":[" V("live/a_1", 1, 16, 16, 32000) "]}",
            "streamGuid");
    refused("{\"streamGuid\":\"live/a\",\"streamGuid\":\"live/b\"}", "object"); /* duplicate key */
    /* nine variants */
    char nine[4096] = "{\"streamGuid\":\"live/a\",\"streams\":[";
    for (int i = 1; i <= 9; i++) {
        char v[200];
        snprintf(v, sizeof v, "%s{\"streamGuid\":\"live/a_%d\",\"abrLevel\":%d,\"videoParams\":"
                 "{\"videoWidth\":16,\"videoHeight\":16,\"videoBitRate\":32000}}", i > 1 ? "," : "",
                 i, i > 8 ? 8 : i);
        strcat(nine, v);
    }
    strcat(nine, "]}");
    refused(nine, "streams");
    /* the size cap */
    char *big = malloc(SL_ABR_JSON_MAX + 2);
    memset(big, ' ', SL_ABR_JSON_MAX + 1);
    big[0] = '{';
    big[SL_ABR_JSON_MAX] = '}';
    sl_abr_prov_t p;
    char why[200];
    assert_int_equal(sl_abr_prov_parse(big, SL_ABR_JSON_MAX + 1, &p, why, sizeof why), SL_ETOOBIG);
    free(big);
    /* transcode false */
    const char *no = "{\"streamGuid\":\"live/a\",\"transcode\":false,\"streams\":[" V("live/a_1", 1,
                                                                                   16, 16, 32000) "]}";
    assert_int_equal(sl_abr_prov_parse(no, strlen(no), &p, why, sizeof why), 0);
    assert_int_equal(p.transcode, 0);
}

static int leak_check(void **state)
{
    (void)state;
    assert_int_equal(sl_alloc_blocks(), 0);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_good, leak_check),
        cmocka_unit_test_teardown(test_limits, leak_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
