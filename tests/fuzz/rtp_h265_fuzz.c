/*
 * Fuzz target: the H.265 RTP depacketizer (RFC 7798: single, AP, FU) fed a
 * sequence of packets, and the packetizer on the whole input as
 * length-prefixed NAL units, whose output is fed back to a depacketizer.
 *
 * Input: records of  ctl(1) len(2, big-endian) bytes(len).  ctl bit 0
 * reports a loss before the packet; the bytes are a payload with marker =
 * bit 1 and timestamp = ctl >> 2.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "media/rtp.h"
#include "media/rtp_h265.h"

static void on_config(void *ud, const uint8_t *rec, size_t len)
{
    (void)ud;
    if (len < 23 || sl_h265_config_nal_len(rec, len) != 4)
        __builtin_trap(); /* a record we wrote must say 4-byte lengths */
}

static void on_frame(void *ud, uint32_t ts, const uint8_t *p, size_t len, int key)
{
    (void)ud;
    (void)ts;
    (void)key;
    size_t off = 0;
    while (off < len) {
        if (len - off < 4)
            __builtin_trap();
        size_t n = (size_t)p[off] << 24 | (size_t)p[off + 1] << 16 | (size_t)p[off + 2] << 8 | p[off + 3];
        if (n < 2 || n > len - off - 4)
            __builtin_trap();
        off += 4 + n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_h265_depack_t *d = sl_h265_depack_new(on_config, on_frame, NULL);
    if (!d)
        return 0;
    if (size > 8)
        sl_h265_depack_set_ps(d, data, 4, data + 2, size > 20 ? 16 : 4, data + 4, 3);
    size_t off = 0;
    while (off + 3 <= size) {
        uint8_t ctl = data[off];
        size_t n = (size_t)data[off + 1] << 8 | data[off + 2];
        off += 3;
        if (n > size - off)
            n = size - off;
        if (ctl & 1)
            sl_h265_depack_loss(d);
        sl_rtp_hdr_t h;
        memset(&h, 0, sizeof h);
        h.marker = (ctl >> 1) & 1;
        h.ts = ctl >> 2;
        h.payload = data + off;
        h.payload_len = n;
        (void)sl_h265_depack_push(d, &h);
        off += n;
    }
    sl_h265_depack_free(d);
    /* The packetizer over the input as 4-byte length-prefixed NAL units, fed back. */
    sl_rtp_payloads_t pl;
    if (sl_h265_packetize(data, size, 4, NULL, 0, size && (data[0] & 1), 200, &pl) == 0) {
        sl_h265_depack_t *b = sl_h265_depack_new(on_config, on_frame, NULL);
        for (uint32_t i = 0; b && i < pl.n; i++) {
            sl_rtp_hdr_t h;
            memset(&h, 0, sizeof h);
            h.marker = pl.pkts[i].marker;
            h.payload = pl.buf->data + pl.pkts[i].off;
            h.payload_len = pl.pkts[i].len;
            if (h.payload_len > 203)
                __builtin_trap(); /* over the MTU */
            (void)sl_h265_depack_push(b, &h);
        }
        sl_h265_depack_free(b);
        sl_rtp_payloads_release(&pl);
    }
    return 0;
}
