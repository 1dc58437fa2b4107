/*
 * Fuzz target for the AMF3 decoder: string, trait and object reference
 * tables, U29 integers, mixed arrays, the reference budget.
 *
 * Each input that decodes must re-encode as AMF3 (inline, no references),
 * the re-encoding must decode under the same limits and encode back to the
 * same bytes; the tree must also encode as AMF0 (through the 0x11 switch
 * where needed) and that must decode too. A broken invariant aborts.
 * Allocation balance is checked with sl_alloc_bytes() on every input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "proto/rtmp/amf.h"
#include "sluice/errors.h"

#define FUZZ_DEPTH 32
#define FUZZ_OUT_MAX (1u << 30) /* far above anything the budget allows */

/* libFuzzer entry point: data is borrowed for the call. Always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t base = sl_alloc_bytes();
    sl_amf_t *v = NULL, *again = NULL, *via0 = NULL;
    size_t used = 0;
    sl_wbuf_t w1, w2, w0;

    sl_wbuf_init(&w1, FUZZ_OUT_MAX);
    sl_wbuf_init(&w2, FUZZ_OUT_MAX);
    sl_wbuf_init(&w0, FUZZ_OUT_MAX);
    if (sl_amf3_decode(data, size, &used, FUZZ_DEPTH, &v) != 0) {
        if (v || used)
            abort();
        goto done;
    }
    if (!v || used == 0 || used > size)
        abort();

    if (sl_amf3_encode(&w1, v) != 0)
        abort();
    if (sl_amf3_decode(w1.data, w1.len, &used, FUZZ_DEPTH, &again) != 0 || used != w1.len)
        abort();
    if (sl_amf3_encode(&w2, again) != 0)
        abort();
    if (w2.len != w1.len || memcmp(w1.data, w2.data, w1.len) != 0)
        abort();

    if (sl_amf0_encode(&w0, v) != 0)
        abort();
    if (sl_amf0_decode(w0.data, w0.len, &used, FUZZ_DEPTH, &via0) != 0 || used != w0.len)
        abort();
done:
    sl_amf_free(v);
    sl_amf_free(again);
    sl_amf_free(via0);
    sl_wbuf_cleanup(&w1);
    sl_wbuf_cleanup(&w2);
    sl_wbuf_cleanup(&w0);
    if (sl_alloc_bytes() != base)
        abort();
    return 0;
}
