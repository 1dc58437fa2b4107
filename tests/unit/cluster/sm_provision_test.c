/*
 * Unit tests of the stream manager's provisions (src/cluster/streammanager/
 * sm_provision.c): the canonical SM 2.0 form and every limit of the
 * contract with the abr module, the SM 4.0 conversion both ways, the parse
 * caps, and the level-1 variant a broadcaster publishes; restreamer
 * provisions (camParams) and the capabilities a distribution asks for.
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
#define RS(guid, props) \
    "{\"provisionGuid\":\"" guid "\",\"streams\":[{\"streamGuid\":\"live/cam1\"," \
    "\"abrLevel\":0,\"camParams\":{\"properties\":" props "}}]}"

/* Restreamer provisions: the canonical form, every refusal with its reason, the caps. */
static void test_restream(void **state)
{
    (void)state;
    char err[200];
    json_t *out;
    json_t *in = J("[" RS("srt1", "{\"type\":\"srt\",\"ip\":\"10.0.0.5\",\"port\":\"5799\","
                                  "\"latency\":100,\"audio\":true}") "]");
    assert_true(sl_sm_prov_is_restream(json_array_get(in, 0)));
    assert_false(sl_sm_prov_is_restream(in));
    assert_int_equal(sl_sm_prov_restream_canon(json_array_get(in, 0), NULL, &out, err, sizeof err), 0);
    char *text = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"provisionGuid\":\"srt1\",\"streams\":[{\"abrLevel\":0,"
                              "\"camParams\":{\"properties\":{\"action\":\"create\",\"audio\":true,"
                              "\"ip\":\"10.0.0.5\",\"latency\":100,\"port\":\"5799\",\"type\":\"srt\"}},"
                              "\"streamGuid\":\"live/cam1\"}]}");
    free(text);
    assert_int_equal(sl_sm_prov_caps(out, NULL), SL_SM_CAP_PUBLISH);
    assert_int_equal(sl_sm_prov_caps(out, "SUBSCRIBE"), SL_SM_CAP_SUBSCRIBE);
    assert_int_equal(sl_sm_prov_caps(out, "PUBLISH,TRANSCODE"),
                     SL_SM_CAP_PUBLISH | SL_SM_CAP_TRANSCODE);
    assert_int_equal(sl_sm_prov_caps(out, "MIX"), SL_SM_CAP_OTHER);
    assert_int_equal(sl_sm_prov_caps(out, ",PUBLISH"), -1);
    assert_int_equal(sl_sm_prov_caps(out, "PUBLISH,,SUBSCRIBE"), -1);
    assert_int_equal(sl_sm_prov_caps(out, "publish"), -1);
    json_decref(out);
    /* The URL's GUID must match. */
    assert_int_equal(sl_sm_prov_restream_canon(json_array_get(in, 0), "other", &out, err, sizeof err),
                     SL_EINVAL);
    assert_null(out);
    json_decref(in);
    /* Provision capabilities come second, the API's first. */
    in = J("{\"provisionGuid\":\"p-1\",\"capabilities\":[\"SUBSCRIBE\"],\"streams\":["
           "{\"streamGuid\":\"live/x\",\"camParams\":{\"properties\":{\"type\":\"rtmp-push\","
           "\"rtmpUri\":\"rtmp://h/live/k\"}}}]}");
    assert_int_equal(sl_sm_prov_restream_canon(in, NULL, &out, err, sizeof err), 0);
    assert_int_equal(sl_sm_prov_caps(out, NULL), SL_SM_CAP_SUBSCRIBE);
    assert_int_equal(sl_sm_prov_caps(out, "PUBLISH"), SL_SM_CAP_PUBLISH);
    json_decref(out);
    json_decref(in);
    static const struct {
        const char *body, *word;
    } bad[] = {
        {RS("ab", "{\"type\":\"rtsp\",\"url\":\"rtsp://h/x\"}"), "provisionGuid"},
        {RS("a/b", "{\"type\":\"rtsp\",\"url\":\"rtsp://h/x\"}"), "provisionGuid"},
        {RS("p-1", "{\"url\":\"rtsp://h/x\"}"), "type is required"},
        {RS("p-1", "{\"type\":\"zixi\"}"), "not served"},
        {RS("p-1", "{\"type\":\"rtsp\",\"action\":\"kill\",\"url\":\"rtsp://h/x\"}"), "action"},
        {RS("p-1", "{\"type\":\"rtsp\"}"), "url is required"},
        {RS("p-1", "{\"type\":\"srt\",\"ip\":\"h\"}"), "port"},
        {RS("p-1", "{\"type\":\"srt\",\"ip\":\"0.0.0.0\",\"port\":9}"), "listen"},
        {RS("p-1", "{\"type\":\"srt\",\"ip\":\"h\",\"port\":0}"), "port"},
        {RS("p-1", "{\"type\":\"rtmp\",\"host\":\"h\"}"), "application"},
        {RS("p-1", "{\"type\":\"ipcam\"}"), "ip (or host)"},
        {RS("p-1", "{\"type\":\"rtsp\",\"url\":\"rtsp://h/x\",\"o\":{}}"), "must be"},
        {RS("p-1", "{\"type\":\"rtsp\",\"url\":\"rtsp://h/x\",\"bad key\":1}"), "keys"},
        {RS("p-1", "[]"), "must be an object"},
        {"{\"provisionGuid\":\"p-1\",\"streams\":[]}", "exactly one"},
        {"{\"provisionGuid\":\"p-1\",\"streams\":[{\"streamGuid\":\"live/x\",\"abrLevel\":2,"
         "\"camParams\":{\"properties\":{\"type\":\"hls\",\"url\":\"http://h/a.m3u8\"}}}]}",
         "abrLevel"},
        {"{\"provisionGuid\":\"p-1\",\"capabilities\":[\"FLY\"],\"streams\":[{\"streamGuid\":"
         "\"live/x\",\"camParams\":{\"properties\":{\"type\":\"hls\",\"url\":\"http://h\"}}}]}",
         "capabilities"},
        {"{\"provisionGuid\":\"p-1\",\"streams\":[{\"streamGuid\":\"x\",\"camParams\":{}}]}",
         "app/name"},
        {"[]", "JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        in = J(bad[i].body);
        err[0] = '\0';
        assert_int_equal(sl_sm_prov_restream_canon(in, NULL, &out, err, sizeof err), SL_EINVAL);
        assert_null(out);
        if (!strstr(err, bad[i].word))
            fail_msg("%s: %s (wanted %s)", bad[i].body, err, bad[i].word);
        json_decref(in);
    }
    /* 33 properties are one too many; a 2048-byte string is one byte too long. */
    json_t *props = json_pack("{s:s, s:s}", "type", "rtsp", "url", "rtsp://h/x");
    for (int i = 0; json_object_size(props) < 33; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        json_object_set_new(props, k, json_integer(i));
    }
    in = json_pack("{s:s, s:[{s:s, s:{s:o}}]}", "provisionGuid", "p-1", "streams", "streamGuid",
                   "live/x", "camParams", "properties", props);
    assert_int_equal(sl_sm_prov_restream_canon(in, NULL, &out, err, sizeof err), SL_EINVAL);
    assert_non_null(strstr(err, "32"));
    json_decref(in);
    char big[2049];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    in = json_pack("{s:s, s:[{s:s, s:{s:{s:s, s:s, s:s}}}]}", "provisionGuid", "p-1", "streams",
                   "streamGuid", "live/x", "camParams", "properties", "type", "rtsp", "url",
                   "rtsp://h/x", "note", big);
    assert_int_equal(sl_sm_prov_restream_canon(in, NULL, &out, err, sizeof err), SL_EINVAL);
    assert_non_null(strstr(err, "2047"));
    json_decref(in);
}

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
        cmocka_unit_test(test_restream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
