/*
 * Unit tests for the AMF0/AMF3 codec (src/proto/rtmp/amf.c, amf3.c).
 *
 * What is proved here: every type round-trips through both encodings; the
 * encoders produce known wire bytes (a real FMLE `connect` command, the AMF3
 * integer boundaries); AMF3 string, trait and object references resolve;
 * malformed input of every kind (each truncation of a valid value, huge
 * declared lengths, depth bombs, reference bombs, cycles) fails with the
 * documented code and leaks nothing; and, when built with
 * -DSL_FAULT_INJECTION, that an allocation failure at every step of a
 * complex decode or encode fails cleanly with SL_ENOMEM until it succeeds.
 * Every test checks that sl_alloc_bytes() is back where it started. Input
 * buffers are copied into exact-size heap blocks so that ASan catches any
 * read past their end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "proto/rtmp/amf.h"
#include "sluice/errors.h"

#define DEPTH 32 /* the depth limit used unless a test is about depth */

/* The AMF0 body of a real FMLE 3.0 `connect` command (211 bytes). */
static const char CONNECT_HEX[] =
    "020007636f6e6e656374003ff00000000000000300036170700200046c697665"
    "0008666c617368566572020008464d4c452f332e300005746355726c02001572"
    "746d703a2f2f6c6f63616c686f73742f6c6976650004667061640100000c6361"
    "706162696c697469657300402e000000000000000b617564696f436f64656373"
    "0040afce0000000000000b766964656f436f6465637300406f80000000000000"
    "0d766964656f46756e6374696f6e003ff0000000000000000e6f626a65637445"
    "6e636f64696e67000000000000000000000009";

/* ---- helpers ---- */

/*
 * Decodes hex (spaces allowed) into a new exact-size test_malloc block;
 * *n receives its length. The caller frees it with test_free.
 */
static uint8_t *hex(const char *s, size_t *n)
{
    size_t len = 0;
    uint8_t *out = test_malloc(strlen(s) / 2 + 1);
    while (*s) {
        if (*s == ' ') {
            s++;
            continue;
        }
        unsigned v;
        assert_int_equal(sscanf(s, "%2x", &v), 1);
        out[len++] = (uint8_t)v;
        s += 2;
    }
    uint8_t *exact = test_malloc(len ? len : 1);
    memcpy(exact, out, len);
    test_free(out);
    *n = len;
    return exact;
}

/* An exact-size copy of p[0..n), so reads past n hit ASan's redzone. */
static uint8_t *exact_copy(const uint8_t *p, size_t n)
{
    uint8_t *c = test_malloc(n ? n : 1);
    if (n)
        memcpy(c, p, n);
    return c;
}

/* Structural equality; numbers and dates compare bit for bit (NaN, -0). */
static int amf_equal(const sl_amf_t *a, const sl_amf_t *b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case SL_AMF_NUMBER:
    case SL_AMF_DATE:
        return memcmp(&a->u.num, &b->u.num, sizeof(double)) == 0;
    case SL_AMF_BOOLEAN:
        return a->u.boolean == b->u.boolean;
    case SL_AMF_STRING:
    case SL_AMF_XML:
    case SL_AMF_BYTEARRAY:
        return a->u.str.len == b->u.str.len &&
               memcmp(a->u.str.ptr, b->u.str.ptr, a->u.str.len) == 0 &&
               a->u.str.ptr[a->u.str.len] == '\0' && b->u.str.ptr[b->u.str.len] == '\0';
    case SL_AMF_OBJECT:
    case SL_AMF_ECMA_ARRAY:
        if (a->u.obj.n != b->u.obj.n)
            return 0;
        if (!a->u.obj.class_name != !b->u.obj.class_name)
            return 0;
        if (a->u.obj.class_name && strcmp(a->u.obj.class_name, b->u.obj.class_name))
            return 0;
        for (uint32_t i = 0; i < a->u.obj.n; i++) {
            const sl_amf_prop_t *pa = &a->u.obj.props[i], *pb = &b->u.obj.props[i];
            if (pa->key_len != pb->key_len || memcmp(pa->key, pb->key, pa->key_len) ||
                pa->key[pa->key_len] != '\0' || !amf_equal(pa->val, pb->val))
                return 0;
        }
        return 1;
    case SL_AMF_STRICT_ARRAY:
        if (a->u.arr.n != b->u.arr.n)
            return 0;
        for (uint32_t i = 0; i < a->u.arr.n; i++)
            if (!amf_equal(a->u.arr.items[i], b->u.arr.items[i]))
                return 0;
        return 1;
    default:
        return 1;
    }
}

static sl_amf_t *new_typed(sl_amf_type_t type, const char *s, size_t n)
{
    sl_amf_t *v = sl_amf_new_stringn(s, n);
    if (v)
        v->type = type;
    return v;
}

static sl_amf_t *new_date(double ms)
{
    sl_amf_t *v = sl_amf_new_number(ms);
    if (v)
        v->type = SL_AMF_DATE;
    return v;
}

/*
 * A tree holding every type (nested containers, a typed object, binary
 * strings, AMF3 integer and double edge values), built through the public
 * API. with_bytearray adds a ByteArray (AMF0 carries it through 0x11).
 */
static sl_amf_t *all_types(int with_bytearray)
{
    sl_amf_t *o = sl_amf_new_object();
    assert_non_null(o);
    assert_int_equal(sl_amf_set(o, "num", sl_amf_new_number(1.5)), 0);
    assert_int_equal(sl_amf_set(o, "int", sl_amf_new_number(42)), 0);
    assert_int_equal(sl_amf_set(o, "neg", sl_amf_new_number(-1)), 0);
    assert_int_equal(sl_amf_set(o, "big", sl_amf_new_number(268435456.0)), 0);
    assert_int_equal(sl_amf_set(o, "negzero", sl_amf_new_number(-0.0)), 0);
    assert_int_equal(sl_amf_set(o, "nan", sl_amf_new_number(NAN)), 0);
    assert_int_equal(sl_amf_set(o, "t", sl_amf_new_bool(1)), 0);
    assert_int_equal(sl_amf_set(o, "f", sl_amf_new_bool(0)), 0);
    assert_int_equal(sl_amf_set(o, "str", sl_amf_new_string("hello")), 0);
    assert_int_equal(sl_amf_set(o, "empty", sl_amf_new_string("")), 0);
    assert_int_equal(sl_amf_set(o, "bin", sl_amf_new_stringn("a\0b", 3)), 0);
    assert_int_equal(sl_amf_set(o, "null", sl_amf_new_null()), 0);
    assert_int_equal(sl_amf_set(o, "undef", sl_amf_new_undefined()), 0);
    assert_int_equal(sl_amf_set(o, "date", new_date(1700000000123.0)), 0);
    assert_int_equal(sl_amf_set(o, "xml", new_typed(SL_AMF_XML, "<a b='c'/>", 10)), 0);
    if (with_bytearray)
        assert_int_equal(sl_amf_set(o, "ba", new_typed(SL_AMF_BYTEARRAY, "\x00\x01\xff", 3)), 0);

    sl_amf_t *ecma = sl_amf_new_ecma_array();
    assert_int_equal(sl_amf_set(ecma, "duration", sl_amf_new_number(0)), 0);
    assert_int_equal(sl_amf_set(ecma, "encoder", sl_amf_new_string("Lavf60")), 0);
    assert_int_equal(sl_amf_set(o, "ecma", ecma), 0);

    sl_amf_t *arr = sl_amf_new_strict_array();
    assert_int_equal(sl_amf_push(arr, sl_amf_new_number(1)), 0);
    assert_int_equal(sl_amf_push(arr, sl_amf_new_string("two")), 0);
    assert_int_equal(sl_amf_push(arr, sl_amf_new_null()), 0);
    sl_amf_t *inner = sl_amf_new_strict_array();
    assert_int_equal(sl_amf_push(inner, sl_amf_new_bool(1)), 0);
    assert_int_equal(sl_amf_push(arr, inner), 0);
    assert_int_equal(sl_amf_set(o, "arr", arr), 0);
    assert_int_equal(sl_amf_set(o, "emptyarr", sl_amf_new_strict_array()), 0);

    sl_amf_t *typed = sl_amf_new_object();
    typed->u.obj.class_name = sl_strdup("com.example.Point");
    assert_int_equal(sl_amf_set(typed, "x", sl_amf_new_number(3)), 0);
    assert_int_equal(sl_amf_set(typed, "y", sl_amf_new_number(-4.25)), 0);
    assert_int_equal(sl_amf_set(o, "point", typed), 0);
    assert_int_equal(sl_amf_set(o, "emptyobj", sl_amf_new_object()), 0);
    return o;
}

/* Encodes v with enc into a fresh exact-size heap copy. */
static uint8_t *encode(int (*enc)(sl_wbuf_t *, const sl_amf_t *), const sl_amf_t *v,
                       size_t *n)
{
    sl_wbuf_t w;
    sl_wbuf_init(&w, 1u << 26);
    assert_int_equal(enc(&w, v), 0);
    uint8_t *out = exact_copy(w.data, w.len);
    *n = w.len;
    sl_wbuf_cleanup(&w);
    return out;
}

/* ---- AMF0: known bytes ---- */

static void check_connect(sl_amf_t **vals, size_t count)
{
    assert_int_equal(count, 3);
    assert_string_equal(sl_amf_str(vals[0]), "connect");
    assert_true(sl_amf_num(vals[1], -1) == 1.0);
    const sl_amf_t *o = vals[2];
    assert_int_equal(o->type, SL_AMF_OBJECT);
    assert_null(o->u.obj.class_name);
    assert_int_equal(o->u.obj.n, 9);
    assert_string_equal(sl_amf_get_str(o, "app"), "live");
    assert_string_equal(sl_amf_get_str(o, "flashVer"), "FMLE/3.0");
    assert_string_equal(sl_amf_get_str(o, "tcUrl"), "rtmp://localhost/live");
    assert_int_equal(sl_amf_bool(sl_amf_get(o, "fpad"), -1), 0);
    assert_true(sl_amf_get_num(o, "capabilities", -1) == 15);
    assert_true(sl_amf_get_num(o, "audioCodecs", -1) == 4071);
    assert_true(sl_amf_get_num(o, "videoCodecs", -1) == 252);
    assert_true(sl_amf_get_num(o, "videoFunction", -1) == 1);
    assert_true(sl_amf_get_num(o, "objectEncoding", -1) == 0);
}

/* The connect command decodes, and both encoders reproduce its bytes. */
static void test_amf0_connect(void **state)
{
    int64_t base = sl_alloc_bytes();
    size_t n;
    uint8_t *bytes = hex(CONNECT_HEX, &n);
    assert_int_equal(n, 211);

    sl_amf_t **vals;
    size_t count;
    assert_int_equal(sl_amf0_decode_all(bytes, n, DEPTH, &vals, &count), 0);
    check_connect(vals, count);

    /* Tree encoder. */
    sl_wbuf_t w;
    sl_wbuf_init(&w, 4096);
    for (size_t i = 0; i < count; i++)
        assert_int_equal(sl_amf0_encode(&w, vals[i]), 0);
    assert_int_equal(w.len, n);
    assert_memory_equal(w.data, bytes, n);
    sl_amf_free_list(vals, count);

    /* Streaming puts, the way replies are built. */
    sl_wbuf_reset(&w);
    assert_int_equal(sl_amf0_put_string(&w, "connect"), 0);
    assert_int_equal(sl_amf0_put_number(&w, 1), 0);
    assert_int_equal(sl_amf0_put_object_start(&w), 0);
    assert_int_equal(sl_amf0_put_prop_string(&w, "app", "live"), 0);
    assert_int_equal(sl_amf0_put_prop_string(&w, "flashVer", "FMLE/3.0"), 0);
    assert_int_equal(sl_amf0_put_prop_string(&w, "tcUrl", "rtmp://localhost/live"), 0);
    assert_int_equal(sl_amf0_put_prop_bool(&w, "fpad", 0), 0);
    assert_int_equal(sl_amf0_put_prop_number(&w, "capabilities", 15), 0);
    assert_int_equal(sl_amf0_put_prop_number(&w, "audioCodecs", 4071), 0);
    assert_int_equal(sl_amf0_put_prop_number(&w, "videoCodecs", 252), 0);
    assert_int_equal(sl_amf0_put_key(&w, "videoFunction"), 0);
    assert_int_equal(sl_amf0_put_number(&w, 1), 0);
    assert_int_equal(sl_amf0_put_prop_number(&w, "objectEncoding", 0), 0);
    assert_int_equal(sl_amf0_put_object_end(&w), 0);
    assert_int_equal(w.len, n);
    assert_memory_equal(w.data, bytes, n);
    sl_wbuf_cleanup(&w);
    test_free(bytes);
    assert_int_equal(sl_alloc_bytes(), base);
}

/* Wire bytes of each AMF0 type, both directions. */
static void test_amf0_vectors(void **state)
{
    static const struct {
        const char *hex;
        sl_amf_type_t type;
    } cases[] = {
        {"00 3ff8000000000000", SL_AMF_NUMBER},
        {"01 01", SL_AMF_BOOLEAN},
        {"01 00", SL_AMF_BOOLEAN},
        {"02 0002 6162", SL_AMF_STRING},
        {"02 0000", SL_AMF_STRING},
        {"05", SL_AMF_NULL},
        {"06", SL_AMF_UNDEFINED},
        {"03 0001 61 05 000009", SL_AMF_OBJECT},
        {"03 000009", SL_AMF_OBJECT},
        {"08 00000001 0001 61 00 4000000000000000 000009", SL_AMF_ECMA_ARRAY},
        {"0a 00000002 05 06", SL_AMF_STRICT_ARRAY},
        {"0b 42778f2c2f7b0000 0000", SL_AMF_DATE},
        {"0f 00000004 3c612f3e", SL_AMF_XML},
        {"10 0001 43 0001 78 05 000009", SL_AMF_OBJECT},
    };
    int64_t base = sl_alloc_bytes();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n, used;
        uint8_t *bytes = hex(cases[i].hex, &n);
        sl_amf_t *v;
        assert_int_equal(sl_amf0_decode(bytes, n, &used, DEPTH, &v), 0);
        assert_int_equal(used, n);
        assert_int_equal(v->type, cases[i].type);
        sl_wbuf_t w;
        sl_wbuf_init(&w, 1024);
        assert_int_equal(sl_amf0_encode(&w, v), 0);
        assert_int_equal(w.len, n);
        assert_memory_equal(w.data, bytes, n);
        sl_wbuf_cleanup(&w);
        sl_amf_free(v);
        test_free(bytes);
    }

    /* Values that decode but encode differently (normalised forms). */
    size_t n, used;
    sl_amf_t *v;
    uint8_t *b = hex("0c 00000002 6869", &n); /* short long string -> string */
    assert_int_equal(sl_amf0_decode(b, n, &used, DEPTH, &v), 0);
    assert_string_equal(sl_amf_str(v), "hi");
    sl_amf_free(v);
    test_free(b);
    b = hex("0d", &n); /* unsupported -> undefined */
    assert_int_equal(sl_amf0_decode(b, n, &used, DEPTH, &v), 0);
    assert_int_equal(v->type, SL_AMF_UNDEFINED);
    sl_amf_free(v);
    test_free(b);
    b = hex("01 07", &n); /* any nonzero boolean is true */
    assert_int_equal(sl_amf0_decode(b, n, &used, DEPTH, &v), 0);
    assert_int_equal(v->u.boolean, 1);
    sl_amf_free(v);
    test_free(b);
    b = hex("0b 0000000000000000 ffc4", &n); /* time zone ignored */
    assert_int_equal(sl_amf0_decode(b, n, &used, DEPTH, &v), 0);
    assert_int_equal(v->type, SL_AMF_DATE);
    sl_amf_free(v);
    test_free(b);
    b = hex("11 0406", &n); /* avmplus switch: AMF3 integer 6 */
    assert_int_equal(sl_amf0_decode(b, n, &used, DEPTH, &v), 0);
    assert_true(sl_amf_num(v, -1) == 6);
    sl_amf_free(v);
    test_free(b);
    b = hex("08 ffffffff 000009", &n); /* ECMA count is only a hint */
    assert_int_equal(sl_amf0_decode(b, n, &used, DEPTH, &v), 0);
    assert_int_equal(v->type, SL_AMF_ECMA_ARRAY);
    assert_int_equal(v->u.obj.n, 0);
    sl_amf_free(v);
    test_free(b);
    b = hex("03 0000 05 000009", &n); /* an empty key that is not the end */
    assert_int_equal(sl_amf0_decode(b, n, &used, DEPTH, &v), 0);
    assert_int_equal(v->u.obj.n, 1);
    assert_int_equal(v->u.obj.props[0].key_len, 0);
    sl_amf_free(v);
    test_free(b);
    b = hex("03 0001 61 00 4010000000000000 0001 61 00 4020000000000000 000009", &n);
    assert_int_equal(sl_amf0_decode(b, n, &used, DEPTH, &v), 0);
    assert_int_equal(v->u.obj.n, 2); /* duplicates kept, last one wins */
    assert_true(sl_amf_get_num(v, "a", -1) == 8.0);
    sl_amf_free(v);
    test_free(b);
    assert_int_equal(sl_alloc_bytes(), base);
}

/* Streaming puts: exact bytes, long strings, caps, no change on error. */
static void test_amf0_puts(void **state)
{
    int64_t base = sl_alloc_bytes();
    sl_wbuf_t w;
    sl_wbuf_init(&w, 1u << 20);

    static const uint8_t num[] = {0x00, 0x40, 0x59, 0x00, 0, 0, 0, 0, 0}; /* 100.0 */
    assert_int_equal(sl_amf0_put_number(&w, 100), 0);
    assert_memory_equal(w.data, num, sizeof(num));
    sl_wbuf_reset(&w);
    assert_int_equal(sl_amf0_put_bool(&w, 5), 0);
    assert_int_equal(sl_amf0_put_null(&w), 0);
    assert_int_equal(sl_amf0_put_ecma_start(&w, 3), 0);
    static const uint8_t misc[] = {0x01, 0x01, 0x05, 0x08, 0, 0, 0, 3};
    assert_int_equal(w.len, sizeof(misc));
    assert_memory_equal(w.data, misc, sizeof(misc));

    /* 65535 bytes is still a short string; one more makes a long one. */
    char *s = test_malloc(70001);
    memset(s, 'a', 70000);
    s[65535] = '\0';
    sl_wbuf_reset(&w);
    assert_int_equal(sl_amf0_put_string(&w, s), 0);
    assert_int_equal(w.len, 3 + 65535);
    assert_int_equal(w.data[0], 0x02);
    assert_int_equal(sl_rd_be16(w.data + 1), 65535);
    s[65535] = 'a';
    s[70000] = '\0';
    sl_wbuf_reset(&w);
    assert_int_equal(sl_amf0_put_string(&w, s), 0);
    assert_int_equal(w.len, 5 + 70000);
    assert_int_equal(w.data[0], 0x0C);
    assert_int_equal(sl_rd_be32(w.data + 1), 70000);
    sl_amf_t *v;
    size_t used;
    assert_int_equal(sl_amf0_decode(w.data, w.len, &used, DEPTH, &v), 0);
    assert_int_equal(v->u.str.len, 70000);
    sl_amf_free(v);

    /* A key cannot be longer than 65535: refused, builder unchanged. */
    sl_wbuf_reset(&w);
    assert_int_equal(sl_amf0_put_key(&w, s), SL_EINVAL);
    assert_int_equal(sl_amf0_put_prop_number(&w, s, 1), SL_EINVAL);
    assert_int_equal(w.len, 0);
    assert_int_equal(sl_amf0_put_string(&w, NULL), SL_EINVAL);
    test_free(s);

    /* The builder's cap: SL_ETOOBIG and nothing half-written. */
    sl_wbuf_t small;
    sl_wbuf_init(&small, 12);
    assert_int_equal(sl_amf0_put_prop_string(&small, "key", "value"), SL_ETOOBIG);
    assert_int_equal(small.len, 0);
    assert_int_equal(sl_amf0_put_number(&small, 1), 0);
    assert_int_equal(sl_amf0_put_number(&small, 1), SL_ETOOBIG);
    assert_int_equal(small.len, 9);
    sl_amf_t *tree = all_types(1);
    assert_int_equal(sl_amf0_encode(&small, tree), SL_ETOOBIG);
    assert_int_equal(sl_amf3_encode(&small, tree), SL_ETOOBIG);
    assert_int_equal(small.len, 9);
    sl_amf_free(tree);
    sl_wbuf_cleanup(&small);
    sl_wbuf_cleanup(&w);
    assert_int_equal(sl_alloc_bytes(), base);
}

/* ---- round trips ---- */

static void roundtrip(int (*enc)(sl_wbuf_t *, const sl_amf_t *),
                      int (*dec)(const uint8_t *, size_t, size_t *, int, sl_amf_t **),
                      const sl_amf_t *v)
{
    size_t n, used;
    uint8_t *bytes = encode(enc, v, &n);
    sl_amf_t *back;
    assert_int_equal(dec(bytes, n, &used, DEPTH, &back), 0);
    assert_int_equal(used, n);
    assert_true(amf_equal(v, back));
    /* Encoding is deterministic: the decoded tree gives the same bytes. */
    size_t n2;
    uint8_t *again = encode(enc, back, &n2);
    assert_int_equal(n2, n);
    assert_memory_equal(again, bytes, n);
    test_free(again);
    sl_amf_free(back);
    test_free(bytes);
}

/* Every type through AMF0 (ByteArray via the 0x11 switch) and AMF3. */
static void test_roundtrip_all_types(void **state)
{
    int64_t base = sl_alloc_bytes();
    sl_amf_t *v = all_types(1);
    roundtrip(sl_amf0_encode, sl_amf0_decode, v);
    roundtrip(sl_amf3_encode, sl_amf3_decode, v);
    /* Each member on its own, as a top-level value. */
    for (uint32_t i = 0; i < v->u.obj.n; i++) {
        roundtrip(sl_amf0_encode, sl_amf0_decode, v->u.obj.props[i].val);
        roundtrip(sl_amf3_encode, sl_amf3_decode, v->u.obj.props[i].val);
    }
    /* An AMF3-encoded tree inside AMF0 comes back through the switch. */
    sl_wbuf_t w;
    sl_wbuf_init(&w, 1 << 20);
    assert_int_equal(sl_wbuf_put_u8(&w, 0x11), 0);
    assert_int_equal(sl_amf3_encode(&w, v), 0);
    sl_amf_t *back;
    size_t used;
    assert_int_equal(sl_amf0_decode(w.data, w.len, &used, DEPTH, &back), 0);
    assert_int_equal(used, w.len);
    assert_true(amf_equal(v, back));
    sl_amf_free(back);
    sl_wbuf_cleanup(&w);
    sl_amf_free(v);
    assert_int_equal(sl_alloc_bytes(), base);
}

/* Things only one encoding can say cross over cleanly. */
static void test_roundtrip_edges(void **state)
{
    int64_t base = sl_alloc_bytes();
    /* A 70000-byte key: AMF0 writes the object as AMF3 behind 0x11. */
    char *key = test_malloc(70001);
    memset(key, 'k', 70000);
    key[70000] = '\0';
    sl_amf_t *o = sl_amf_new_object();
    assert_int_equal(sl_amf_set(o, key, sl_amf_new_number(7)), 0);
    test_free(key);
    size_t n;
    uint8_t *bytes = encode(sl_amf0_encode, o, &n);
    assert_int_equal(bytes[0], 0x11);
    test_free(bytes);
    roundtrip(sl_amf0_encode, sl_amf0_decode, o);
    roundtrip(sl_amf3_encode, sl_amf3_decode, o);
    sl_amf_free(o);

    /* An empty key: AMF3 falls back to sealed traits, which can carry it. */
    o = sl_amf_new_object();
    assert_int_equal(sl_amf_set(o, "", sl_amf_new_number(1)), 0);
    assert_int_equal(sl_amf_set(o, "b", sl_amf_new_string("x")), 0);
    roundtrip(sl_amf0_encode, sl_amf0_decode, o);
    roundtrip(sl_amf3_encode, sl_amf3_decode, o);
    /* ... but an AMF3 associative array cannot. */
    o->type = SL_AMF_ECMA_ARRAY;
    sl_wbuf_t w;
    sl_wbuf_init(&w, 1024);
    assert_int_equal(sl_amf3_encode(&w, o), SL_EINVAL);
    assert_int_equal(w.len, 0);
    roundtrip(sl_amf0_encode, sl_amf0_decode, o);
    sl_amf_free(o);

    /* Strings with NULs and every byte value. */
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    sl_amf_t *s = sl_amf_new_stringn(all, sizeof(all));
    roundtrip(sl_amf0_encode, sl_amf0_decode, s);
    roundtrip(sl_amf3_encode, sl_amf3_decode, s);
    sl_amf_free(s);

    /* Malformed trees are refused, not crashed on. */
    assert_int_equal(sl_amf0_encode(&w, NULL), SL_EINVAL);
    assert_int_equal(sl_amf3_encode(&w, NULL), SL_EINVAL);
    sl_amf_t *arr = sl_amf_new_strict_array();
    assert_int_equal(sl_amf_push(arr, sl_amf_new_null()), 0);
    arr->u.arr.items[0]->type = (sl_amf_type_t)99;
    assert_int_equal(sl_amf0_encode(&w, arr), SL_EINVAL);
    assert_int_equal(sl_amf3_encode(&w, arr), SL_EINVAL);
    assert_int_equal(w.len, 0);
    arr->u.arr.items[0]->type = SL_AMF_NULL;
    sl_amf_free(arr);
    sl_wbuf_cleanup(&w);
    assert_int_equal(sl_alloc_bytes(), base);
}

/* ---- AMF3 ---- */

/* U29 integer boundaries: exact bytes out, same value back. */
static void test_amf3_integers(void **state)
{
    static const struct {
        double v;
        const char *hex;
    } cases[] = {
        {0, "04 00"},
        {1, "04 01"},
        {127, "04 7f"},
        {128, "04 8100"},
        {16383, "04 ff7f"},
        {16384, "04 818000"},
        {2097151, "04 ffff7f"},
        {2097152, "04 80c08000"},
        {268435455, "04 bfffffff"},          /* 2^28 - 1, the largest */
        {-1, "04 ffffffff"},
        {-2, "04 fffffffe"},
        {-128, "04 ffffff80"},
        {-268435456, "04 c0808000"},         /* -2^28, the smallest */
        {268435456, "05 41b0000000000000"},  /* 2^28: a double */
        {-268435457, "05 c1b0000001000000"}, /* below the range: a double */
        {1.5, "05 3ff8000000000000"},
        {-0.0, "05 8000000000000000"},
    };
    int64_t base = sl_alloc_bytes();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n, used;
        uint8_t *want = hex(cases[i].hex, &n);
        sl_amf_t *v = sl_amf_new_number(cases[i].v);
        sl_wbuf_t w;
        sl_wbuf_init(&w, 64);
        assert_int_equal(sl_amf3_encode(&w, v), 0);
        assert_int_equal(w.len, n);
        assert_memory_equal(w.data, want, n);
        sl_amf_t *back;
        assert_int_equal(sl_amf3_decode(want, n, &used, DEPTH, &back), 0);
        assert_int_equal(used, n);
        assert_true(amf_equal(v, back));
        sl_amf_free(back);
        sl_amf_free(v);
        sl_wbuf_cleanup(&w);
        test_free(want);
    }
    /* Non-canonical long forms decode too (4 bytes for a small value). */
    size_t n, used;
    sl_amf_t *v;
    uint8_t *b = hex("04 80808001", &n);
    assert_int_equal(sl_amf3_decode(b, n, &used, DEPTH, &v), 0);
    assert_true(sl_amf_num(v, -1) == 1);
    sl_amf_free(v);
    test_free(b);
    assert_int_equal(sl_alloc_bytes(), base);
}

/* Decodes hex as one AMF3 value that must consume everything. */
static sl_amf_t *dec3_hex(const char *h, int max_depth)
{
    size_t n, used;
    uint8_t *b = hex(h, &n);
    sl_amf_t *v = NULL;
    int rc = sl_amf3_decode(b, n, &used, max_depth, &v);
    test_free(b);
    assert_int_equal(rc, 0);
    assert_int_equal(used, n);
    return v;
}

/* Decodes hex as AMF3 and returns the error (which must be one). */
static int dec3_err(const char *h, int max_depth)
{
    size_t n, used = 99;
    uint8_t *b = hex(h, &n);
    sl_amf_t *v = (sl_amf_t *)&v;
    int rc = sl_amf3_decode(b, n, &used, max_depth, &v);
    test_free(b);
    assert_null(v);
    assert_int_equal(used, 0);
    assert_true(rc < 0);
    return rc;
}

/* The same for AMF0 (one value). */
static int dec0_err(const char *h, int max_depth)
{
    size_t n, used = 99;
    uint8_t *b = hex(h, &n);
    sl_amf_t *v = (sl_amf_t *)&v;
    int rc = sl_amf0_decode(b, n, &used, max_depth, &v);
    test_free(b);
    assert_null(v);
    assert_int_equal(used, 0);
    assert_true(rc < 0);
    return rc;
}

static sl_amf_t *dec0_hex(const char *h, int max_depth)
{
    size_t n, used;
    uint8_t *b = hex(h, &n);
    sl_amf_t *v = NULL;
    int rc = sl_amf0_decode(b, n, &used, max_depth, &v);
    test_free(b);
    assert_int_equal(rc, 0);
    assert_int_equal(used, n);
    return v;
}

/* Wire forms of each AMF3 type. */
static void test_amf3_vectors(void **state)
{
    int64_t base = sl_alloc_bytes();
    sl_amf_t *v;
    v = dec3_hex("00", DEPTH);
    assert_int_equal(v->type, SL_AMF_UNDEFINED);
    sl_amf_free(v);
    v = dec3_hex("01", DEPTH);
    assert_int_equal(v->type, SL_AMF_NULL);
    sl_amf_free(v);
    v = dec3_hex("02", DEPTH);
    assert_int_equal(sl_amf_bool(v, -1), 0);
    sl_amf_free(v);
    v = dec3_hex("03", DEPTH);
    assert_int_equal(sl_amf_bool(v, -1), 1);
    sl_amf_free(v);
    v = dec3_hex("06 0b 68656c6c6f", DEPTH);
    assert_string_equal(sl_amf_str(v), "hello");
    sl_amf_free(v);
    v = dec3_hex("08 01 42778f2c2f7b0000", DEPTH);
    assert_int_equal(v->type, SL_AMF_DATE);
    sl_amf_free(v);
    v = dec3_hex("07 09 3c612f3e", DEPTH);
    assert_int_equal(v->type, SL_AMF_XML);
    assert_string_equal(v->u.str.ptr, "<a/>");
    sl_amf_free(v);
    v = dec3_hex("0b 09 3c622f3e", DEPTH);
    assert_int_equal(v->type, SL_AMF_XML);
    sl_amf_free(v);
    v = dec3_hex("0c 07 0001ff", DEPTH);
    assert_int_equal(v->type, SL_AMF_BYTEARRAY);
    assert_int_equal(v->u.str.len, 3);
    assert_memory_equal(v->u.str.ptr, "\x00\x01\xff", 3);
    sl_amf_free(v);
    v = dec3_hex("09 05 01 0401 0402", DEPTH); /* dense [1, 2] */
    assert_int_equal(v->type, SL_AMF_STRICT_ARRAY);
    assert_int_equal(v->u.arr.n, 2);
    sl_amf_free(v);
    v = dec3_hex("0a 0b 01 0361 0401 01", DEPTH); /* anonymous dynamic {a: 1} */
    assert_int_equal(v->type, SL_AMF_OBJECT);
    assert_null(v->u.obj.class_name);
    assert_true(sl_amf_get_num(v, "a", -1) == 1);
    sl_amf_free(v);
    /* A mixed array: associative {k: 5} then dense [7] -> ECMA {k, "0"}. */
    v = dec3_hex("09 03 036b 0405 01 0407", DEPTH);
    assert_int_equal(v->type, SL_AMF_ECMA_ARRAY);
    assert_int_equal(v->u.obj.n, 2);
    assert_true(sl_amf_get_num(v, "k", -1) == 5);
    assert_true(sl_amf_get_num(v, "0", -1) == 7);
    sl_amf_free(v);
    /* Trailing bytes are not consumed. */
    {
        size_t n, used;
        uint8_t *b = hex("01 02 03", &n);
        assert_int_equal(sl_amf3_decode(b, n, &used, DEPTH, &v), 0);
        assert_int_equal(used, 1);
        sl_amf_free(v);
        test_free(b);
    }
    /* Refused: vectors, dictionary, unknown markers, externalizable traits. */
    assert_int_equal(dec3_err("0d 01 00", DEPTH), SL_EPROTO);
    assert_int_equal(dec3_err("0e 01 00", DEPTH), SL_EPROTO);
    assert_int_equal(dec3_err("0f 01 00", DEPTH), SL_EPROTO);
    assert_int_equal(dec3_err("10 01 00 01", DEPTH), SL_EPROTO);
    assert_int_equal(dec3_err("11 01 00", DEPTH), SL_EPROTO);
    assert_int_equal(dec3_err("ff", DEPTH), SL_EPROTO);
    assert_int_equal(dec3_err("0a 07 0343 00", DEPTH), SL_EPROTO);
    /* Keys with a NUL. */
    assert_int_equal(dec3_err("0a 0b 01 03 00 01 01", DEPTH), SL_EPROTO);
    assert_int_equal(dec3_err("0a 13 01 0561 00 01", DEPTH), SL_EPROTO);
    assert_int_equal(sl_alloc_bytes(), base);
}

/* String, trait and object references. */
static void test_amf3_references(void **state)
{
    int64_t base = sl_alloc_bytes();
    /* ["abc", <string ref 0>, <string ref 0>] */
    sl_amf_t *v = dec3_hex("09 07 01 06 07 616263 06 00 06 00", DEPTH);
    assert_int_equal(v->u.arr.n, 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(sl_amf_str(v->u.arr.items[i]), "abc");
    sl_amf_free(v);
    /* The empty string is never in the table, so ref 0 does not exist. */
    assert_int_equal(dec3_err("09 05 01 06 01 06 00", DEPTH), SL_EPROTO);
    /* Keys share the string table with values: key "a", then value ref 0. */
    v = dec3_hex("0a 0b 01 0361 0600 01", DEPTH);
    assert_string_equal(sl_amf_get_str(v, "a"), "a");
    sl_amf_free(v);

    /*
     * [P{x:1, y:2}, P{x:3, y:4} via traits ref 0, object ref 1 (the first)]
     * Object table: 0 = the outer array, 1 = first P, 2 = second P.
     */
    v = dec3_hex("09 07 01"
                 " 0a 23 0350 0378 0379 0401 0402"
                 " 0a 01 0403 0404"
                 " 0a 02",
                 DEPTH);
    assert_int_equal(v->u.arr.n, 3);
    for (int i = 0; i < 3; i++) {
        const sl_amf_t *p = v->u.arr.items[i];
        assert_int_equal(p->type, SL_AMF_OBJECT);
        assert_string_equal(p->u.obj.class_name, "P");
        assert_int_equal(p->u.obj.n, 2);
        assert_string_equal(p->u.obj.props[0].key, "x");
        assert_string_equal(p->u.obj.props[1].key, "y");
    }
    assert_true(sl_amf_get_num(v->u.arr.items[1], "x", -1) == 3);
    assert_true(amf_equal(v->u.arr.items[0], v->u.arr.items[2]));
    sl_amf_free(v);
    /* Sealed + dynamic members with a traits ref: D{s} dynamic, then {s, d}. */
    v = dec3_hex("09 05 01 0a 1b 0344 0373 0401 0364 0402 01 0a 01 0405 01", DEPTH);
    assert_int_equal(v->u.arr.items[0]->u.obj.n, 2);
    assert_int_equal(v->u.arr.items[1]->u.obj.n, 1);
    assert_true(sl_amf_get_num(v->u.arr.items[1], "s", -1) == 5);
    sl_amf_free(v);
    /* Date, XML and ByteArray references. */
    v = dec3_hex("09 09 01 08 01 3ff0000000000000 08 02 0c 05 6162 0c 04", DEPTH);
    assert_true(amf_equal(v->u.arr.items[0], v->u.arr.items[1]));
    assert_int_equal(v->u.arr.items[3]->type, SL_AMF_BYTEARRAY);
    assert_true(amf_equal(v->u.arr.items[2], v->u.arr.items[3]));
    sl_amf_free(v);
    /* Array ref to an array. */
    v = dec3_hex("09 05 01 09 03 01 0401 09 02", DEPTH);
    assert_true(amf_equal(v->u.arr.items[0], v->u.arr.items[1]));
    sl_amf_free(v);

    /* Bad references. */
    assert_int_equal(dec3_err("09 03 01 0a 02", DEPTH), SL_EPROTO);    /* out of range */
    assert_int_equal(dec3_err("0a 0b 01 0361 0a 00 01", DEPTH), SL_EPROTO); /* cycle */
    assert_int_equal(dec3_err("09 03 01 09 00", DEPTH), SL_EPROTO);    /* self */
    assert_int_equal(dec3_err("0a 01", DEPTH), SL_EPROTO);             /* no traits */
    assert_int_equal(dec3_err("06 00", DEPTH), SL_EPROTO);             /* no strings */
    /* A date marker naming an array, an object marker naming a date. */
    assert_int_equal(dec3_err("09 05 01 09 01 01 08 02", DEPTH), SL_EPROTO);
    assert_int_equal(dec3_err("09 05 01 08 01 0000000000000000 0a 02", DEPTH), SL_EPROTO);
    assert_int_equal(sl_alloc_bytes(), base);
}

/* AMF0 references (0x07) resolve by copy; cycles and bad indexes fail. */
static void test_amf0_references(void **state)
{
    int64_t base = sl_alloc_bytes();
    /* [ {a: 1}, <ref 1> ]: 0 = the array, 1 = the object. */
    sl_amf_t *v = dec0_hex("0a 00000002 03 0001 61 003ff0000000000000 000009 07 0001", DEPTH);
    assert_int_equal(v->u.arr.n, 2);
    assert_true(amf_equal(v->u.arr.items[0], v->u.arr.items[1]));
    assert_true(v->u.arr.items[0] != v->u.arr.items[1]);
    sl_amf_free(v);
    assert_int_equal(dec0_err("0a 00000001 07 0000", DEPTH), SL_EPROTO); /* cycle */
    assert_int_equal(dec0_err("07 0000", DEPTH), SL_EPROTO);             /* empty table */
    assert_int_equal(dec0_err("0a 00000002 03 000009 07 0002", DEPTH), SL_EPROTO);

    /* References across the values of one body. */
    size_t n;
    uint8_t *b = hex("03 0001 61 05 000009 07 0000", &n);
    sl_amf_t **vals;
    size_t count;
    assert_int_equal(sl_amf0_decode_all(b, n, DEPTH, &vals, &count), 0);
    assert_int_equal(count, 2);
    assert_true(amf_equal(vals[0], vals[1]));
    sl_amf_free_list(vals, count);
    test_free(b);
    assert_int_equal(sl_alloc_bytes(), base);
}

/* ---- malformed input ---- */

/*
 * Every strict prefix of a valid single-value encoding must fail with
 * SL_EPROTO, with nothing leaked and nothing read past the prefix.
 */
static void truncate_all(const uint8_t *full, size_t n,
                         int (*dec)(const uint8_t *, size_t, size_t *, int, sl_amf_t **))
{
    int64_t base = sl_alloc_bytes();
    for (size_t k = 0; k < n; k++) {
        uint8_t *p = exact_copy(full, k);
        size_t used = 99;
        sl_amf_t *v = (sl_amf_t *)&v;
        int rc = dec(k ? p : NULL, k, &used, DEPTH, &v);
        if (rc != SL_EPROTO)
            fail_msg("prefix of %zu/%zu bytes: rc %d", k, n, rc);
        assert_null(v);
        assert_int_equal(used, 0);
        assert_int_equal(sl_alloc_bytes(), base);
        test_free(p);
    }
}

static void test_truncation(void **state)
{
    int64_t base = sl_alloc_bytes();
    sl_amf_t *tree = all_types(1);
    size_t n;
    uint8_t *b = encode(sl_amf0_encode, tree, &n);
    truncate_all(b, n, sl_amf0_decode);
    test_free(b);
    b = encode(sl_amf3_encode, tree, &n);
    truncate_all(b, n, sl_amf3_decode);
    test_free(b);
    sl_amf_free(tree);

    /* References too: a prefix may cut an index. */
    b = hex("09 07 01 0a 23 0350 0378 0379 0401 0402 0a 01 0403 0404 0a 02", &n);
    truncate_all(b, n, sl_amf3_decode);
    test_free(b);

    /* decode_all: every prefix is either a shorter list of values or EPROTO. */
    b = hex(CONNECT_HEX, &n);
    for (size_t k = 0; k < n; k++) {
        uint8_t *p = exact_copy(b, k);
        sl_amf_t **vals;
        size_t count;
        int rc = sl_amf0_decode_all(p, k, DEPTH, &vals, &count);
        if (rc == 0) {
            assert_true(k == 0 || k == 10 || k == 19);
            assert_true(count < 3);
            sl_amf_free_list(vals, count);
        } else {
            assert_int_equal(rc, SL_EPROTO);
            assert_null(vals);
            assert_int_equal(count, 0);
        }
        test_free(p);
        assert_int_equal(sl_alloc_bytes(), base);
    }
    test_free(b);
    assert_int_equal(sl_alloc_bytes(), base);
}

/* Declared lengths and counts beyond the input: SL_EPROTO, nothing allocated. */
static void test_huge_lengths(void **state)
{
    static const char *amf0[] = {
        "02 ffff 61",
        "0c ffffffff 61",
        "0c 80000000",
        "0f ffffffff 3c",
        "0a ffffffff 05",
        "0a 00000003 05 05",
        "10 ffff 43",
        "11 06 bfffffff",
    };
    static const char *amf3[] = {
        "06 bfffffff 61",
        "06 ffffffff",
        "07 bfffffff",
        "0b bfffffff",
        "0c bfffffff 00",
        "09 bfffffff 01",
        "09 07 01 01",
        "0a fffffffb 01",
        "0a 33 01", /* 3 sealed names, 1 byte left */
    };
    int64_t base = sl_alloc_bytes();
    /*
     * With injection compiled in, make every allocation fail: getting
     * SL_EPROTO rather than SL_ENOMEM proves the length was checked first.
     */
    int injecting = sl_alloc_fail_at(1, 1);
    for (size_t i = 0; i < sizeof(amf0) / sizeof(amf0[0]); i++)
        assert_int_equal(dec0_err(amf0[i], DEPTH), SL_EPROTO);
    for (size_t i = 0; i < sizeof(amf3) / sizeof(amf3[0]); i++)
        assert_int_equal(dec3_err(amf3[i], DEPTH), SL_EPROTO);
    if (injecting)
        assert_int_equal(dec0_err("05", DEPTH), SL_ENOMEM); /* injection was live */
    sl_alloc_fail_at(0, 0);
    /* These are checked once the container exists; still no leak. */
    assert_int_equal(dec0_err("03 ffff 61", DEPTH), SL_EPROTO);
    assert_int_equal(dec0_err("08 00000000 0005 61", DEPTH), SL_EPROTO);
    assert_int_equal(dec3_err("0a 33 01 0361", DEPTH), SL_EPROTO);
    assert_int_equal(sl_alloc_bytes(), base);
}

/* Markers and structures that are never valid. */
static void test_amf0_malformed(void **state)
{
    int64_t base = sl_alloc_bytes();
    assert_int_equal(dec0_err("04", DEPTH), SL_EPROTO);           /* movieclip */
    assert_int_equal(dec0_err("0e", DEPTH), SL_EPROTO);           /* recordset */
    assert_int_equal(dec0_err("09", DEPTH), SL_EPROTO);           /* stray end */
    assert_int_equal(dec0_err("12", DEPTH), SL_EPROTO);           /* unknown */
    assert_int_equal(dec0_err("ff", DEPTH), SL_EPROTO);
    assert_int_equal(dec0_err("03 0001 61 09", DEPTH), SL_EPROTO); /* end as a value */
    assert_int_equal(dec0_err("03 0002 6100 05 000009", DEPTH), SL_EPROTO); /* NUL key */
    assert_int_equal(dec0_err("10 0002 4300 000009", DEPTH), SL_EPROTO);    /* NUL class */
    assert_int_equal(dec0_err("11 0d", DEPTH), SL_EPROTO);         /* AMF3 vector */
    assert_int_equal(dec0_err("", DEPTH), SL_EPROTO);

    /* Bad arguments. */
    sl_amf_t *v;
    size_t used;
    uint8_t one = 0x05;
    assert_int_equal(sl_amf0_decode(NULL, 1, &used, DEPTH, &v), SL_EINVAL);
    assert_int_equal(sl_amf0_decode(&one, 1, NULL, DEPTH, &v), SL_EINVAL);
    assert_int_equal(sl_amf0_decode(&one, 1, &used, DEPTH, NULL), SL_EINVAL);
    assert_int_equal(sl_amf0_decode(&one, 1, &used, -1, &v), SL_EINVAL);
    assert_int_equal(sl_amf3_decode(&one, 1, &used, -1, &v), SL_EINVAL);
    sl_amf_t **vals;
    size_t count;
    assert_int_equal(sl_amf0_decode_all(&one, 1, -1, &vals, &count), SL_EINVAL);
    assert_int_equal(sl_amf0_decode_all(&one, 1, DEPTH, NULL, &count), SL_EINVAL);
    assert_int_equal(sl_alloc_bytes(), base);
}

/* decode_all: empty bodies, the tolerated stray 00 00 09, other trailers. */
static void test_decode_all_trailing(void **state)
{
    int64_t base = sl_alloc_bytes();
    sl_amf_t **vals;
    size_t count, n;
    assert_int_equal(sl_amf0_decode_all(NULL, 0, DEPTH, &vals, &count), 0);
    assert_null(vals);
    assert_int_equal(count, 0);
    sl_amf_free_list(vals, count);

    char buf[sizeof(CONNECT_HEX) + 32];
    snprintf(buf, sizeof(buf), "%s000009", CONNECT_HEX);
    uint8_t *b = hex(buf, &n);
    assert_int_equal(sl_amf0_decode_all(b, n, DEPTH, &vals, &count), 0);
    check_connect(vals, count);
    sl_amf_free_list(vals, count);
    test_free(b);

    static const char *bad[] = {"000009000009", "00", "0000", "05", "0009", "000008"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(buf, sizeof(buf), "%s%s", CONNECT_HEX, bad[i]);
        b = hex(buf, &n);
        int rc = sl_amf0_decode_all(b, n, DEPTH, &vals, &count);
        if (strcmp(bad[i], "05") == 0) { /* a real null value is fine */
            assert_int_equal(rc, 0);
            assert_int_equal(count, 4);
            sl_amf_free_list(vals, count);
        } else {
            assert_int_equal(rc, SL_EPROTO);
            assert_null(vals);
            assert_int_equal(count, 0);
        }
        test_free(b);
    }
    /* On its own the stray end is skipped too: an empty body. */
    b = hex("000009", &n);
    assert_int_equal(sl_amf0_decode_all(b, n, DEPTH, &vals, &count), 0);
    assert_int_equal(count, 0);
    test_free(b);
    assert_int_equal(sl_alloc_bytes(), base);
}

/* ---- depth ---- */

/* Builds prefix*levels + middle + suffix*levels as exact-size bytes. */
static uint8_t *nest(const char *prefix_hex, const char *middle_hex, const char *suffix_hex,
                     size_t levels, size_t *n)
{
    size_t np, nm, ns;
    uint8_t *pre = hex(prefix_hex, &np), *mid = hex(middle_hex, &nm), *suf = hex(suffix_hex, &ns);
    size_t total = levels * (np + ns) + nm;
    uint8_t *out = test_malloc(total);
    size_t o = 0;
    for (size_t i = 0; i < levels; i++, o += np)
        memcpy(out + o, pre, np);
    memcpy(out + o, mid, nm);
    o += nm;
    for (size_t i = 0; i < levels; i++, o += ns)
        memcpy(out + o, suf, ns);
    test_free(pre);
    test_free(mid);
    test_free(suf);
    *n = total;
    return out;
}

static int dec_nested(int amf3, const char *pre, const char *mid, const char *suf,
                      size_t levels, int max_depth)
{
    size_t n, used;
    uint8_t *b = nest(pre, mid, suf, levels, &n);
    sl_amf_t *v;
    int rc = amf3 ? sl_amf3_decode(b, n, &used, max_depth, &v)
                  : sl_amf0_decode(b, n, &used, max_depth, &v);
    if (rc == 0) {
        assert_int_equal(used, n);
        sl_amf_free(v);
    }
    test_free(b);
    return rc;
}

static void test_depth(void **state)
{
    int64_t base = sl_alloc_bytes();
    static const struct {
        int amf3;
        const char *pre, *mid, *suf;
    } shapes[] = {
        {0, "03 0001 61", "05", "000009"},        /* objects */
        {0, "08 00000001 0001 61", "05", "000009"}, /* ECMA arrays */
        {0, "0a 00000001", "05", ""},             /* strict arrays */
        {0, "10 0001 43 0001 61", "05", "000009"}, /* typed objects */
        {1, "09 03 01", "01", ""},                /* AMF3 dense arrays */
        {1, "09 01 0361", "01", "01"},            /* AMF3 associative arrays */
        {1, "0a 0b 01 0361", "01", "01"},         /* AMF3 dynamic objects */
    };
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        /* The 10000-deep bomb, also with an absurd limit (clamped). */
        assert_int_equal(dec_nested(shapes[i].amf3, shapes[i].pre, shapes[i].mid,
                                    shapes[i].suf, 10000, 64),
                         SL_EDEPTH);
        assert_int_equal(dec_nested(shapes[i].amf3, shapes[i].pre, shapes[i].mid,
                                    shapes[i].suf, 10000, 1 << 30),
                         SL_EDEPTH);
        /* Exactly at the limit passes, one more fails. */
        size_t at = 32;
        assert_int_equal(
            dec_nested(shapes[i].amf3, shapes[i].pre, shapes[i].mid, shapes[i].suf, at, 32), 0);
        assert_int_equal(dec_nested(shapes[i].amf3, shapes[i].pre, shapes[i].mid, shapes[i].suf,
                                    at + 1, 32),
                         SL_EDEPTH);
        /* max_depth 0: scalars only. */
        assert_int_equal(
            dec_nested(shapes[i].amf3, shapes[i].pre, shapes[i].mid, shapes[i].suf, 0, 0), 0);
        assert_int_equal(
            dec_nested(shapes[i].amf3, shapes[i].pre, shapes[i].mid, shapes[i].suf, 1, 0),
            SL_EDEPTH);
    }
    /* AMF0 objects around an AMF3 nest: one depth count across the switch. */
    for (size_t inner = 15; inner <= 17; inner++) {
        char mid[256] = "11";
        for (size_t i = 0; i < inner; i++)
            strcat(mid, "0a0b010361");
        strcat(mid, "01");
        for (size_t i = 0; i < inner; i++)
            strcat(mid, "01");
        assert_int_equal(dec_nested(0, "03 0001 61", mid, "000009", 16, 32),
                         inner <= 16 ? 0 : SL_EDEPTH);
    }
    /* Nesting up to SL_AMF_DEPTH_CAP works when asked for. */
    assert_int_equal(dec_nested(1, "09 03 01", "01", "", SL_AMF_DEPTH_CAP, 1 << 30), 0);
    assert_int_equal(dec_nested(1, "09 03 01", "01", "", SL_AMF_DEPTH_CAP + 1, 1 << 30),
                     SL_EDEPTH);
    /*
     * A reference may not lift a subtree past the limit: the outer array
     * holds [[1]] (3 containers deep in all) and then two arrays around a
     * reference to that [[1]], which lands 5 containers deep.
     */
    const char *deep_ref = "09 05 01 09 03 01 09 03 01 0401 09 03 01 09 03 01 09 02";
    sl_amf_t *v = dec3_hex(deep_ref, 5);
    sl_amf_free(v);
    assert_int_equal(dec3_err(deep_ref, 4), SL_EDEPTH);
    assert_int_equal(sl_alloc_bytes(), base);
}

/* ---- reference bombs ---- */

static void test_reference_bombs(void **state)
{
    int64_t base = sl_alloc_bytes();
    /*
     * Exponential: element 0 is [1, 1]; element i is [ref(i), ref(i)], two
     * copies of element i-1 (object index i; the outer array is index 0).
     * 40 levels would be 2^40 values from ~250 bytes of input.
     */
    enum { LEVELS = 40 };
    uint8_t buf[512];
    size_t n = 0;
    buf[n++] = 0x09;
    buf[n++] = (LEVELS + 1) << 1 | 1;
    buf[n++] = 0x01;
    memcpy(buf + n, "\x09\x05\x01\x04\x01\x04\x01", 7);
    n += 7;
    for (int i = 1; i <= LEVELS; i++) {
        buf[n++] = 0x09;
        buf[n++] = 0x05;
        buf[n++] = 0x01;
        buf[n++] = 0x09;
        buf[n++] = (uint8_t)(i << 1);
        buf[n++] = 0x09;
        buf[n++] = (uint8_t)(i << 1);
    }
    uint8_t *b = exact_copy(buf, n);
    sl_amf_t *v;
    size_t used;
    assert_int_equal(sl_amf3_decode(b, n, &used, 100, &v), SL_ETOOBIG);
    assert_null(v);
    /* A few levels are fine: references are not refused as such. */
    b[1] = (5 + 1) << 1 | 1;
    assert_int_equal(sl_amf3_decode(b, n, &used, 100, &v), 0);
    assert_int_equal(v->u.arr.n, 6);
    sl_amf_free(v);
    test_free(b);

    /* Flat: a 60000-byte string then 20000 references to it (1.2 GB). */
    size_t big = 60000, refs = 20000;
    n = 9 + big + 2 * refs;
    b = test_malloc(n);
    size_t o = 0;
    b[o++] = 0x09;
    b[o++] = (uint8_t)(((refs + 1) << 1 | 1) >> 14 | 0x80);
    b[o++] = (uint8_t)(((((refs + 1) << 1 | 1) >> 7) & 0x7F) | 0x80);
    b[o++] = (uint8_t)(((refs + 1) << 1 | 1) & 0x7F);
    b[o++] = 0x01;
    b[o++] = 0x06;
    b[o++] = (uint8_t)((big << 1 | 1) >> 14 | 0x80);
    b[o++] = (uint8_t)((((big << 1 | 1) >> 7) & 0x7F) | 0x80);
    b[o++] = (uint8_t)((big << 1 | 1) & 0x7F);
    memset(b + o, 'x', big);
    o += big;
    for (size_t i = 0; i < refs; i++) {
        b[o++] = 0x06;
        b[o++] = 0x00;
    }
    assert_true(o <= n);
    assert_int_equal(sl_amf3_decode(b, o, &used, DEPTH, &v), SL_ETOOBIG);
    /* Within budget: 5 references decode. */
    b[1] = 0x80;
    b[2] = 0x80;
    b[3] = (5 + 1) << 1 | 1;
    assert_int_equal(sl_amf3_decode(b, o, &used, DEPTH, &v), 0);
    assert_int_equal(v->u.arr.n, 6);
    assert_int_equal(v->u.arr.items[5]->u.str.len, big);
    sl_amf_free(v);
    test_free(b);

    /* Trait references copy member names: charged the same way. */
    size_t names = 200;
    n = 16 + names * 260 + 200000;
    b = test_malloc(n);
    o = 0;
    size_t items = 20000;
    b[o++] = 0x09;
    b[o++] = (uint8_t)(((items) << 1 | 1) >> 14 | 0x80);
    b[o++] = (uint8_t)(((((items) << 1 | 1) >> 7) & 0x7F) | 0x80);
    b[o++] = (uint8_t)(((items) << 1 | 1) & 0x7F);
    b[o++] = 0x01;
    b[o++] = 0x0a;
    b[o++] = (uint8_t)((names << 4 | 3) >> 7 | 0x80);
    b[o++] = (uint8_t)((names << 4 | 3) & 0x7F);
    b[o++] = 0x01; /* anonymous */
    for (size_t i = 0; i < names; i++) {
        b[o++] = (uint8_t)((250 << 1 | 1) >> 7 | 0x80);
        b[o++] = (uint8_t)((250 << 1 | 1) & 0x7F);
        memset(b + o, 'a', 250);
        snprintf((char *)b + o, 5, "%04zu", i);
        b[o + 4] = 'a';
        o += 250;
    }
    memset(b + o, 0x01, names); /* null values */
    o += names;
    for (size_t i = 1; i < items && o + 1 + names <= n; i++) {
        b[o++] = 0x0a;
        b[o++] = 0x01; /* traits ref 0 */
        memset(b + o, 0x01, names);
        o += names;
    }
    assert_int_equal(sl_amf3_decode(b, o, &used, DEPTH, &v), SL_ETOOBIG);
    test_free(b);
    assert_int_equal(sl_alloc_bytes(), base);
}

/* ---- the tree API ---- */

static void test_tree_api(void **state)
{
    int64_t base = sl_alloc_bytes();
    sl_amf_t *o = sl_amf_new_object();
    assert_int_equal(sl_amf_set(o, "a", sl_amf_new_number(1)), 0);
    assert_int_equal(sl_amf_set(o, "b", sl_amf_new_string("x")), 0);
    assert_int_equal(sl_amf_set(o, "a", sl_amf_new_number(2)), 0); /* replaces */
    assert_int_equal(o->u.obj.n, 2);
    assert_true(sl_amf_get_num(o, "a", 0) == 2);
    assert_string_equal(sl_amf_get_str(o, "b"), "x");
    assert_null(sl_amf_get(o, "missing"));
    assert_null(sl_amf_get_str(o, "a"));            /* wrong type */
    assert_true(sl_amf_get_num(o, "b", -3) == -3);  /* wrong type */
    assert_null(sl_amf_get(NULL, "a"));
    assert_null(sl_amf_get(o, NULL));
    assert_null(sl_amf_str(NULL));
    assert_true(sl_amf_num(NULL, 9) == 9);
    assert_int_equal(sl_amf_bool(NULL, 7), 7);
    assert_int_equal(sl_amf_bool(sl_amf_get(o, "a"), 0), 1);  /* numbers: nonzero */
    assert_int_equal(sl_amf_bool(sl_amf_get(o, "b"), 5), 5);  /* strings: fallback */
    sl_amf_t *nan = sl_amf_new_number(NAN);
    assert_int_equal(sl_amf_bool(nan, 1), 0);
    sl_amf_free(nan);

    /* Ownership on error: val is always taken. */
    sl_amf_t *arr = sl_amf_new_strict_array();
    assert_int_equal(sl_amf_set(arr, "k", sl_amf_new_number(1)), SL_EINVAL);
    assert_int_equal(sl_amf_set(o, NULL, sl_amf_new_number(1)), SL_EINVAL);
    assert_int_equal(sl_amf_set(o, "k", NULL), SL_ENOMEM);
    assert_int_equal(sl_amf_push(o, sl_amf_new_number(1)), SL_EINVAL);
    assert_int_equal(sl_amf_push(arr, NULL), SL_ENOMEM);
    assert_int_equal(sl_amf_push(arr, sl_amf_new_bool(1)), 0);
    assert_int_equal(sl_amf_set(o, "arr", arr), 0);

    /* Clone is deep and equal. */
    sl_amf_t *c = sl_amf_clone(o);
    assert_true(amf_equal(o, c));
    assert_true(c->u.obj.props[0].val != o->u.obj.props[0].val);
    sl_amf_free(c);
    c = sl_amf_clone(NULL);
    assert_null(c);
    sl_amf_t *t = all_types(1);
    c = sl_amf_clone(t);
    assert_true(amf_equal(t, c));
    sl_amf_free(c);
    sl_amf_free(t);
    sl_amf_free(o);

    assert_null(sl_amf_new_string(NULL));
    sl_amf_t *e = sl_amf_new_stringn(NULL, 0);
    assert_string_equal(sl_amf_str(e), "");
    sl_amf_free(e);
    sl_amf_free(NULL);
    sl_amf_free_list(NULL, 0);
    assert_int_equal(sl_alloc_bytes(), base);
}

/* ---- fault injection ---- */

/*
 * A body that allocates in every way the decoders do: the connect object,
 * an ECMA array, a strict array, AMF0 references, and an AMF3 value with
 * string, trait and object references (tables grow past their first size).
 */
static uint8_t *complex_body(size_t *n)
{
    sl_wbuf_t w;
    size_t cn;
    uint8_t *c = hex(CONNECT_HEX, &cn);
    sl_wbuf_init(&w, 1 << 20);
    assert_int_equal(sl_wbuf_put(&w, c, cn), 0);
    test_free(c);
    sl_amf_t *t = all_types(1);
    assert_int_equal(sl_amf0_encode(&w, t), 0);
    sl_amf_free(t);
    static const char tail[] =
        "0a 00000002 03 0001 61 05 000009 07 0001"
        "11 09 15 01"
        " 0a 23 0350 0378 0379 0401 0402"
        " 0a 01 0403 0404"
        " 0a 02"
        " 06 07 616263 06 04 06 00"
        " 08 01 3ff0000000000000 08 06"
        " 0c 05 6162 0c 08";
    size_t tn;
    uint8_t *tb = hex(tail, &tn);
    assert_int_equal(sl_wbuf_put(&w, tb, tn), 0);
    test_free(tb);
    uint8_t *out = exact_copy(w.data, w.len);
    *n = w.len;
    sl_wbuf_cleanup(&w);
    return out;
}

static void test_fault_injection(void **state)
{
    if (!sl_alloc_fail_at(0, 0))
        skip(); /* built without SL_FAULT_INJECTION */
    int64_t base = sl_alloc_bytes();
    size_t n;
    uint8_t *body = complex_body(&n);

    /* Reference result without injection. */
    sl_amf_t **want;
    size_t want_count;
    assert_int_equal(sl_amf0_decode_all(body, n, DEPTH, &want, &want_count), 0);
    assert_int_equal(want_count, 6);
    int64_t held = sl_alloc_bytes();

    int steps = 0;
    for (uint64_t k = 1;; k++) {
        assert_true(k < 100000);
        sl_amf_t **vals;
        size_t count;
        sl_alloc_fail_at(k, 1);
        int rc = sl_amf0_decode_all(body, n, DEPTH, &vals, &count);
        sl_alloc_fail_at(0, 0);
        if (rc == 0) {
            assert_int_equal(count, want_count);
            for (size_t i = 0; i < count; i++)
                assert_true(amf_equal(vals[i], want[i]));
            sl_amf_free_list(vals, count);
            break;
        }
        assert_int_equal(rc, SL_ENOMEM);
        assert_null(vals);
        assert_int_equal(count, 0);
        assert_int_equal(sl_alloc_bytes(), held); /* the failed attempt left nothing */
        steps++;
    }
    assert_true(steps > 50);

    /* Encoders, clone and set under the same treatment. */
    int (*encs[2])(sl_wbuf_t *, const sl_amf_t *) = {sl_amf0_encode, sl_amf3_encode};
    for (int e = 0; e < 2; e++) {
        for (uint64_t k = 1;; k++) {
            sl_wbuf_t w;
            sl_wbuf_init(&w, 1 << 20);
            assert_int_equal(sl_wbuf_put_u8(&w, 0xAA), 0);
            sl_alloc_fail_at(k, 1);
            int rc = 0;
            for (size_t i = 0; rc == 0 && i < want_count; i++)
                rc = encs[e](&w, want[i]);
            sl_alloc_fail_at(0, 0);
            sl_wbuf_cleanup(&w);
            if (rc == 0)
                break;
            assert_int_equal(rc, SL_ENOMEM);
        }
    }
    for (uint64_t k = 1;; k++) {
        int64_t before = sl_alloc_bytes();
        sl_alloc_fail_at(k, 1);
        sl_amf_t *c = sl_amf_clone(want[5]);
        sl_alloc_fail_at(0, 0);
        if (c) {
            assert_true(amf_equal(c, want[5]));
            sl_amf_free(c);
            break;
        }
        assert_int_equal(sl_alloc_bytes(), before);
    }
    for (uint64_t k = 1;; k++) {
        int64_t before = sl_alloc_bytes();
        sl_amf_t *o = sl_amf_new_object();
        sl_alloc_fail_at(k, 1);
        int rc = sl_amf_set(o, "key", sl_amf_new_string("value"));
        sl_alloc_fail_at(0, 0);
        sl_amf_free(o);
        assert_int_equal(sl_alloc_bytes(), before);
        if (rc == 0)
            break;
        assert_int_equal(rc, SL_ENOMEM);
    }
    sl_amf_free_list(want, want_count);
    test_free(body);
    assert_int_equal(sl_alloc_bytes(), base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_amf0_connect),
        cmocka_unit_test(test_amf0_vectors),
        cmocka_unit_test(test_amf0_puts),
        cmocka_unit_test(test_roundtrip_all_types),
        cmocka_unit_test(test_roundtrip_edges),
        cmocka_unit_test(test_amf3_integers),
        cmocka_unit_test(test_amf3_vectors),
        cmocka_unit_test(test_amf3_references),
        cmocka_unit_test(test_amf0_references),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_huge_lengths),
        cmocka_unit_test(test_amf0_malformed),
        cmocka_unit_test(test_decode_all_trailing),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_reference_bombs),
        cmocka_unit_test(test_tree_api),
        cmocka_unit_test(test_fault_injection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
