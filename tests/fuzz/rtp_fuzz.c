/*
 * Fuzz target: RTP parsing, header extension lookup, and the H.264 and VP8
 * depacketizers fed a sequence of packets, plus the H.264 packetizer on the
 * whole input (whose output must depacketize to well-formed AVCC).
 *
 * Input: records of  ctl(1) len(2, big-endian) bytes(len).  ctl bit 0
 * reports a loss before the packet; bit 1 makes the bytes a bare payload
 * (marker = bit 2, timestamp = ctl >> 3) instead of a whole RTP packet.
 * Every record goes to both depacketizers. The whole input also goes to
 * sl_h264_au_info as AVCC with 1- to 4-byte NAL lengths.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "media/rtp.h"
#include "media/rtp_h264.h"
#include "media/rtp_vp8.h"

static void on_config(void *ud, const uint8_t *rec, size_t len)
{
    (void)ud;
    sl_h264_config_t cfg;
    if (sl_h264_config_parse(rec, len, &cfg) != 0 || cfg.n_sps != 1 || cfg.n_pps != 1)
        __builtin_trap(); /* a record we wrote must parse */
}

static void on_h264(void *ud, uint32_t ts, const uint8_t *p, size_t len, int is_key)
{
    (void)ud;
    (void)ts;
    (void)is_key;
    if (len == 0 || len > SL_RTP_MAX_FRAME)
        __builtin_trap();
    /* Well-formed AVCC: 4-byte lengths that end exactly at the end. */
    size_t off = 0;
    while (off < len) {
        if (len - off < 4)
            __builtin_trap();
        size_t n = sl_rd_be32(p + off);
        if (n == 0 || n > len - off - 4)
            __builtin_trap();
        off += 4 + n;
    }
}

static void on_vp8(void *ud, uint32_t ts, const uint8_t *p, size_t len, int is_key)
{
    (void)ud;
    (void)ts;
    (void)is_key;
    if (len < 3 || len > SL_RTP_MAX_FRAME)
        __builtin_trap();
    (void)p[len - 1];
}

static void feed(sl_h264_depack_t *h, sl_vp8_depack_t *v, const sl_rtp_hdr_t *hdr)
{
    sl_h264_depack_push(h, hdr);
    sl_vp8_depack_push(v, hdr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The whole input as an access unit, with each NAL length size. */
    for (int nls = 1; nls <= 4; nls++) {
        sl_h264_au_info_t ai;
        if (sl_h264_au_info(data, size, nls, &ai) == 0 && (ai.n_slices < 0 || ai.n_slices > SL_H264_MAX_NALS))
            __builtin_trap();
    }
    sl_h264_depack_t *h = sl_h264_depack_new(on_config, on_h264, NULL);
    sl_vp8_depack_t *v = sl_vp8_depack_new(on_vp8, NULL);
    if (!h || !v)
        goto done;
    for (size_t off = 0; size - off >= 3;) {
        uint8_t ctl = data[off];
        size_t n = sl_rd_be16(data + off + 1);
        off += 3;
        if (n > size - off)
            n = size - off;
        const uint8_t *p = data + off;
        off += n;
        if (ctl & 1) {
            sl_h264_depack_loss(h);
            sl_vp8_depack_loss(v);
        }
        sl_rtp_hdr_t hdr;
        if (ctl & 2) {
            memset(&hdr, 0, sizeof hdr);
            hdr.payload = p;
            hdr.payload_len = n;
            hdr.marker = (ctl >> 2) & 1;
            hdr.ts = ctl >> 3;
        } else {
            if (sl_rtp_parse(p, n, &hdr) != 0)
                continue;
            if (hdr.payload + hdr.payload_len > p + n || hdr.ext + hdr.ext_len > p + n)
                __builtin_trap();
            for (int id = 1; id <= 16; id++) {
                const uint8_t *e;
                size_t el;
                if (sl_rtp_ext_get(&hdr, id, &e, &el) == 0 && (e < p || e + el > p + n))
                    __builtin_trap();
            }
        }
        feed(h, v, &hdr);
    }

    /* The packetizer on the whole input as AVCC, then back through a fresh
     * depacketizer: every payload fits the MTU and the last has the marker. */
    sl_rtp_payloads_t pl;
    size_t mtu = size ? SL_RTP_MIN_MTU + data[0] * 4u : 0;
    int nls = size ? 1 + (data[size - 1] & 3) : 4;
    if (nls == 3)
        nls = 4;
    if (sl_h264_packetize(data, size, nls, NULL, 0, 0, mtu, &pl) == 0) {
        sl_h264_depack_t *h2 = sl_h264_depack_new(on_config, on_h264, NULL);
        for (uint32_t i = 0; i < pl.n; i++) {
            if (pl.pkts[i].len > mtu || pl.pkts[i].len == 0 ||
                pl.pkts[i].off + pl.pkts[i].len > pl.buf->len ||
                (pl.pkts[i].marker != 0) != (i == pl.n - 1))
                __builtin_trap();
            sl_rtp_hdr_t hdr;
            memset(&hdr, 0, sizeof hdr);
            hdr.payload = pl.buf->data + pl.pkts[i].off;
            hdr.payload_len = pl.pkts[i].len;
            hdr.marker = pl.pkts[i].marker;
            if (h2)
                sl_h264_depack_push(h2, &hdr);
        }
        sl_h264_depack_free(h2);
        sl_rtp_payloads_release(&pl);
    }
done:
    sl_h264_depack_free(h);
    sl_vp8_depack_free(v);
    return 0;
}
