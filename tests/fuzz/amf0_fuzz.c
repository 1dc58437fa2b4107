/*
 * Fuzz target for the AMF0 decoder (and, through the 0x11 switch, AMF3):
 * the parser that reads every RTMP command a peer sends.
 *
 * Beyond "does not crash, leak or read out of bounds", each input that
 * decodes is checked for the codec's own invariants: the values re-encode
 * (sl_amf0_encode accepts every tree the decoder produces), the re-encoding
 * decodes again under the same depth limit and budget (it holds no
 * references, so it can only be cheaper), and encoding that second tree
 * gives the same bytes (decode and encode agree). Any broken invariant
 * aborts, which libFuzzer and the replayer both report as a crash.
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

/* Encodes every value into w, aborting if the encoder refuses one. */
static void encode_all(sl_wbuf_t *w, sl_amf_t **vals, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (sl_amf0_encode(w, vals[i]) != 0)
            abort();
}

/* libFuzzer entry point: data is borrowed for the call. Always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t base = sl_alloc_bytes();
    sl_amf_t **vals = NULL, **again = NULL;
    size_t count = 0, count_again = 0;
    sl_wbuf_t w1, w2;

    sl_wbuf_init(&w1, FUZZ_OUT_MAX);
    sl_wbuf_init(&w2, FUZZ_OUT_MAX);

    /* The single-value entry point on the same bytes. */
    sl_amf_t *one = NULL;
    size_t used = 0;
    if (sl_amf0_decode(data, size, &used, FUZZ_DEPTH, &one) == 0) {
        if (!one || used == 0 || used > size)
            abort();
        sl_amf_free(one);
    } else if (one || used) {
        abort();
    }

    if (sl_amf0_decode_all(data, size, FUZZ_DEPTH, &vals, &count) != 0) {
        if (vals || count)
            abort();
        goto done;
    }
    encode_all(&w1, vals, count);
    if (sl_amf0_decode_all(w1.data, w1.len, FUZZ_DEPTH, &again, &count_again) != 0)
        abort();
    if (count_again != count)
        abort();
    encode_all(&w2, again, count_again);
    if (w2.len != w1.len || (w1.len && memcmp(w1.data, w2.data, w1.len) != 0))
        abort();
done:
    sl_amf_free_list(vals, count);
    sl_amf_free_list(again, count_again);
    sl_wbuf_cleanup(&w1);
    sl_wbuf_cleanup(&w2);
    if (sl_alloc_bytes() != base)
        abort();
    return 0;
}
