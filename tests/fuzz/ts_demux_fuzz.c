/*
 * Fuzz target for the MPEG-TS ingest path (src/proto/srt/ts_demux.c): the
 * bytes an SRT publisher or a UDP sender delivers, fed through
 * libavformat's mpegts demuxer and our conversion (Annex-B to length-
 * prefixed NAL units with avcC/hvcC built from the parameter sets, ADTS to
 * raw AAC). The input arrives in pieces of varying size (the first byte
 * picks it) as datagrams would. Every frame body must start with a valid
 * FLV header for its kind; allocations must balance.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "media/flv.h"
#include "proto/srt/ts_demux.h"

typedef struct {
    const uint8_t *p;
    size_t n, off, piece;
} src_t;

static int rd(void *ud, uint8_t *buf, int size)
{
    src_t *s = ud;
    size_t left = s->n - s->off;
    size_t k = left < s->piece ? left : s->piece;
    if ((size_t)size < k)
        k = (size_t)size;
    memcpy(buf, s->p + s->off, k);
    s->off += k;
    return (int)k;
}

static void on_frame(void *ud, uint8_t kind, int64_t dts_ms, sl_buf_t *body)
{
    (void)ud;
    if ((kind != SL_FLV_VIDEO && kind != SL_FLV_AUDIO) || dts_ms < 0 || body->len < 2)
        abort();
    sl_buf_unref(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int64_t base = sl_alloc_bytes();
    src_t s = {data + 1, size - 1, 0, (size_t)(data[0] % 8 + 1) * 188};
    sl_ts_demux_t *d = sl_ts_demux_new(rd, on_frame, &s, 1 << 20);
    if (!d)
        return 0;
    sl_ts_demux_run(d);
    sl_ts_demux_free(d);
    if (sl_alloc_bytes() != base)
        abort();
    return 0;
}
