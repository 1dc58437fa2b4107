/*
 * Fuzz target for the AMF <-> JSON conversion of RPC (proto/rtmp/amf_json.h):
 * a client's call arguments (untrusted AMF) become JSON for handlers and the
 * business server, and JSON results (the business server's, untrusted too)
 * become AMF0 for the client.
 *
 * The first byte picks the direction; the rest is the input. AMF: decode
 * every value, convert to JSON, parse that JSON back to AMF and convert
 * again: both JSON texts must be equal (the mapping is a fixed point after
 * one pass). JSON: convert to AMF, encode as AMF0, decode, convert back to
 * JSON and that to AMF again, whose AMF0 encoding must equal the first.
 * (Integral reals may change form, 1.0 -> 1, which AMF0 does not see.)
 * Allocation balance is checked with sl_alloc_bytes() on every input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "proto/rtmp/amf.h"
#include "proto/rtmp/amf_json.h"
#include "sluice/errors.h"

#define FUZZ_DEPTH 32
#define FUZZ_MAX_JSON (1u << 20)
#define FUZZ_OUT_MAX (1u << 26)

static void from_amf(const uint8_t *p, size_t n)
{
    sl_amf_t **vals = NULL;
    size_t count = 0;
    char *j1 = NULL, *j2 = NULL;
    sl_amf_t *back = NULL;
    if (sl_amf0_decode_all(p, n, FUZZ_DEPTH, &vals, &count) != 0)
        return;
    /* One more level than the decoder allowed: the list is an array around the values. */
    if (sl_amf_list_to_json(vals, count, FUZZ_DEPTH + 1, FUZZ_MAX_JSON, &j1) != 0) {
        if (j1)
            abort();
        goto done;
    }
    if (sl_amf_from_json(j1, strlen(j1), FUZZ_DEPTH + 1, FUZZ_MAX_JSON, &back) != 0)
        abort(); /* our own JSON must convert back */
    if (sl_amf_to_json(back, FUZZ_DEPTH + 1, FUZZ_MAX_JSON, &j2) != 0 || strcmp(j1, j2) != 0)
        abort();
done:
    sl_free(j1);
    sl_free(j2);
    sl_amf_free(back);
    sl_amf_free_list(vals, count);
}

static void from_json(const uint8_t *p, size_t n)
{
    sl_amf_t *v = NULL, *dec = NULL, *v2 = NULL;
    char *j = NULL;
    size_t used = 0;
    sl_wbuf_t w1, w2;
    sl_wbuf_init(&w1, FUZZ_OUT_MAX);
    sl_wbuf_init(&w2, FUZZ_OUT_MAX);
    if (sl_amf_from_json((const char *)p, n, FUZZ_DEPTH, FUZZ_MAX_JSON, &v) != 0) {
        if (v)
            abort();
        goto done;
    }
    if (sl_amf0_encode(&w1, v) != 0)
        abort();
    if (sl_amf0_decode(w1.data, w1.len, &used, FUZZ_DEPTH, &dec) != 0 || used != w1.len)
        abort();
    if (sl_amf_to_json(dec, FUZZ_DEPTH, FUZZ_OUT_MAX, &j) != 0)
        abort();
    if (sl_amf_from_json(j, strlen(j), FUZZ_DEPTH, FUZZ_OUT_MAX, &v2) != 0)
        abort();
    if (sl_amf0_encode(&w2, v2) != 0 || w2.len != w1.len ||
        (w1.len && memcmp(w1.data, w2.data, w1.len) != 0))
        abort(); /* JSON -> AMF is a fixed point after one round trip */
done:
    sl_free(j);
    sl_amf_free(v);
    sl_amf_free(dec);
    sl_amf_free(v2);
    sl_wbuf_cleanup(&w1);
    sl_wbuf_cleanup(&w2);
}

/* libFuzzer entry point: data is borrowed for the call. Always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t base = sl_alloc_bytes();
    if (size == 0)
        return 0;
    if (data[0] & 1)
        from_json(data + 1, size - 1);
    else
        from_amf(data + 1, size - 1);
    if (sl_alloc_bytes() != base)
        abort();
    return 0;
}
