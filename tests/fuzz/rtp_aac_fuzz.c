/*
 * Fuzz target: the AAC (RFC 3640 AAC-hbr) depacketizer and fmtp parser.
 * The first byte chooses sizelength (1..16) and index lengths (0..3); the
 * rest is records of  ctl(1) len(2, big-endian) payload(len)  (ctl bit 0:
 * loss before; bit 1: marker; timestamp = ctl >> 2). The input as text
 * goes to the fmtp parser too, and the packetizer's output of the input as
 * one access unit must depacketize to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "media/rtp.h"
#include "media/rtp_aac.h"

static const uint8_t *g_want;
static size_t g_want_len;
static int g_got;

static void on_frame(void *ud, uint32_t ts, const uint8_t *au, size_t len)
{
    (void)ud;
    (void)ts;
    if (len == 0 || len > SL_AAC_MAX_AU)
        __builtin_trap();
    if (g_want) {
        if (len != g_want_len || memcmp(au, g_want, len))
            __builtin_trap();
        g_got++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[512];
    size_t tn = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, tn);
    text[tn] = '\0';
    sl_aac_fmtp_t f;
    if (sl_aac_fmtp_parse(text, &f) == 0 && (f.sizelength < 1 || f.sizelength > 16 || f.config_len > SL_AAC_MAX_CONFIG))
        __builtin_trap();
    if (size < 1)
        return 0;
    memset(&f, 0, sizeof f);
    f.sizelength = (data[0] & 15) + 1;
    f.indexlength = (data[0] >> 4) & 3;
    f.indexdeltalength = (data[0] >> 6) & 3;
    g_want = NULL;
    sl_aac_depack_t *d = sl_aac_depack_new(&f, 1024, on_frame, NULL);
    if (!d)
        return 0;
    size_t off = 1;
    while (off + 3 <= size) {
        uint8_t ctl = data[off];
        size_t n = (size_t)data[off + 1] << 8 | data[off + 2];
        off += 3;
        if (n > size - off)
            n = size - off;
        if (ctl & 1)
            sl_aac_depack_loss(d);
        sl_rtp_hdr_t h;
        memset(&h, 0, sizeof h);
        h.marker = (ctl >> 1) & 1;
        h.ts = ctl >> 2;
        h.payload = data + off;
        h.payload_len = n;
        (void)sl_aac_depack_push(d, &h);
        off += n;
    }
    sl_aac_depack_free(d);
    /* Round trip: the input (after byte 0) as one AU, packetized for a small MTU. */
    sl_rtp_payloads_t pl;
    if (size > 1 && sl_aac_packetize(data + 1, size - 1, 64, &pl) == 0) {
        sl_aac_fmtp_t hbr = {.sizelength = 13, .indexlength = 3, .indexdeltalength = 3};
        g_want = data + 1;
        g_want_len = size - 1;
        g_got = 0;
        sl_aac_depack_t *b = sl_aac_depack_new(&hbr, 1024, on_frame, NULL);
        for (uint32_t i = 0; b && i < pl.n; i++) {
            sl_rtp_hdr_t h;
            memset(&h, 0, sizeof h);
            h.marker = pl.pkts[i].marker;
            h.payload = pl.buf->data + pl.pkts[i].off;
            h.payload_len = pl.pkts[i].len;
            (void)sl_aac_depack_push(b, &h);
        }
        if (b && g_got != 1 && size - 1 <= SL_AAC_MAX_AU)
            __builtin_trap();
        sl_aac_depack_free(b);
        sl_rtp_payloads_release(&pl);
        g_want = NULL;
    }
    return 0;
}
