/*
 * RTP tests: header parse/write round trips (CSRC, padding, one-byte and
 * two-byte extensions, malformed blocks); H.264 packetize -> depacketize
 * (STAP-A with SPS/PPS before a keyframe, FU-A bits, identical AVCC back,
 * loss handling and need_keyframe, malformed STAP-A, caps); VP8 and Opus;
 * the per-frame cache (built once, freed with the frame); and real codecs:
 * libx264 and libvpx frames through libavcodec, packetized, depacketized
 * and decoded by libavcodec without error (skipped when an encoder is
 * missing). Reordering is the caller's job: the depacketizer trusts the
 * order it is given, which test_h264_order_is_callers_job pins down.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <libavcodec/avcodec.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>

#include "base/alloc.h"
#include "media/flv.h"
#include "media/frame.h"
#include "media/rtp.h"
#include "media/rtp_h264.h"
#include "media/rtp_vp8.h"
#include "sluice/errors.h"

/* ---- helpers ---- */

/* What a depacketizer handed out. */
typedef struct got {
    uint8_t cfg[2048];
    size_t cfg_len;
    int n_cfg;
    uint8_t *frames[256];
    size_t lens[256];
    int keys[256];
    uint32_t ts[256];
    int n;
} got_t;

static void got_config(void *ud, const uint8_t *rec, size_t len)
{
    got_t *g = ud;
    assert_true(len <= sizeof g->cfg);
    memcpy(g->cfg, rec, len);
    g->cfg_len = len;
    g->n_cfg++;
}

static void got_frame(void *ud, uint32_t ts, const uint8_t *p, size_t len, int is_key)
{
    got_t *g = ud;
    assert_true(g->n < 256);
    g->frames[g->n] = malloc(len ? len : 1);
    memcpy(g->frames[g->n], p, len);
    g->lens[g->n] = len;
    g->keys[g->n] = is_key;
    g->ts[g->n] = ts;
    g->n++;
}

static void got_clear(got_t *g)
{
    for (int i = 0; i < g->n; i++)
        free(g->frames[i]);
    memset(g, 0, sizeof(*g));
}

/* Sends packet i of p as a real RTP packet (header written, parsed back). */
static int push_pkt(void *d, int vp8, const sl_rtp_payloads_t *p, uint32_t i, uint16_t seq,
                    uint32_t ts)
{
    static uint8_t pkt[70000];
    const sl_rtp_pkt_ref_t *r = &p->pkts[i];
    int hl = sl_rtp_write_hdr(pkt, sizeof pkt, r->marker, 96, seq, ts, 0x1234, NULL);
    assert_int_equal(hl, 12);
    memcpy(pkt + hl, p->buf->data + r->off, r->len);
    sl_rtp_hdr_t h;
    assert_int_equal(sl_rtp_parse(pkt, (size_t)hl + r->len, &h), 0);
    return vp8 ? sl_vp8_depack_push(d, &h) : sl_h264_depack_push(d, &h);
}

/* Pushes every packet of p; returns the first error. */
static int push_all(void *d, int vp8, const sl_rtp_payloads_t *p, uint16_t *seq, uint32_t ts)
{
    int first = 0;
    for (uint32_t i = 0; i < p->n; i++) {
        int rc = push_pkt(d, vp8, p, i, (*seq)++, ts);
        if (rc && !first)
            first = rc;
    }
    return first;
}

/* Appends a NAL unit with a 4-byte length. */
static size_t put_nal(uint8_t *o, const uint8_t *nal, size_t len)
{
    o[0] = (uint8_t)(len >> 24);
    o[1] = (uint8_t)(len >> 16);
    o[2] = (uint8_t)(len >> 8);
    o[3] = (uint8_t)len;
    memcpy(o + 4, nal, len);
    return 4 + len;
}

static const uint8_t SPS[] = {0x67, 0x42, 0xC0, 0x1E, 0xDA, 0x02, 0x80, 0xBF, 0xE5, 0x84};
static const uint8_t PPS[] = {0x68, 0xCE, 0x3C, 0x80};

/* A fake slice: header byte, first_mb_in_slice = 0 (first bit 1), pattern. */
static void fill_slice(uint8_t *nal, size_t len, uint8_t hdr, unsigned seed)
{
    nal[0] = hdr;
    for (size_t i = 1; i < len; i++)
        nal[i] = (uint8_t)(i * 7 + seed);
    if (len > 1)
        nal[1] |= 0x80;
}

/* ---- RTP header ---- */

static void test_hdr_write_parse(void **state)
{
    (void)state;
    uint8_t pkt[128];
    sl_rtp_ext_out_t ext = {.mid_id = 3, .mid = "video0", .mid_len = 6, .twcc_id = 5,
                            .twcc_seq = 0xBEEF};
    size_t hs = sl_rtp_hdr_size(&ext);
    assert_int_equal(hs, 12 + 4 + 12); /* 3 + 7 = 10 bytes of elements, padded to 12 */
    int hl = sl_rtp_write_hdr(pkt, sizeof pkt, 1, 111, 65535, 0xDEADBEEF, 0x01020304, &ext);
    assert_int_equal(hl, (int)hs);
    memcpy(pkt + hl, "opus", 4);
    sl_rtp_hdr_t h;
    assert_int_equal(sl_rtp_parse(pkt, (size_t)hl + 4, &h), 0);
    assert_int_equal(h.marker, 1);
    assert_int_equal(h.pt, 111);
    assert_int_equal(h.seq, 65535);
    assert_int_equal(h.ts, 0xDEADBEEF);
    assert_int_equal(h.ssrc, 0x01020304);
    assert_int_equal(h.cc, 0);
    assert_int_equal(h.has_ext, 1);
    assert_int_equal(h.ext_profile, 0xBEDE);
    assert_int_equal(h.payload_len, 4);
    assert_memory_equal(h.payload, "opus", 4);
    const uint8_t *v;
    size_t vl;
    assert_int_equal(sl_rtp_ext_get(&h, 3, &v, &vl), 0);
    assert_int_equal(vl, 6);
    assert_memory_equal(v, "video0", 6);
    assert_int_equal(sl_rtp_ext_get(&h, 5, &v, &vl), 0);
    assert_int_equal(vl, 2);
    assert_int_equal(sl_rd_be16(v), 0xBEEF);
    assert_int_equal(sl_rtp_ext_get(&h, 4, &v, &vl), SL_ENOTFOUND);
    assert_int_equal(sl_rtp_ext_get(&h, 15, &v, &vl), SL_EINVAL);

    /* No extensions: 12 bytes, X clear, lookups find nothing. */
    hl = sl_rtp_write_hdr(pkt, 12, 0, 96, 1, 2, 3, NULL);
    assert_int_equal(hl, 12);
    assert_int_equal(pkt[0], 0x80);
    assert_int_equal(sl_rtp_parse(pkt, 12, &h), 0);
    assert_int_equal(h.payload_len, 0);
    assert_int_equal(sl_rtp_ext_get(&h, 3, &v, &vl), SL_ENOTFOUND);

    /* Writer errors. */
    assert_int_equal(sl_rtp_write_hdr(pkt, 11, 0, 96, 1, 2, 3, NULL), SL_ETOOBIG);
    assert_int_equal(sl_rtp_write_hdr(pkt, hs - 1, 0, 96, 1, 2, 3, &ext), SL_ETOOBIG);
    assert_int_equal(sl_rtp_write_hdr(pkt, sizeof pkt, 0, 128, 1, 2, 3, NULL), SL_EINVAL);
    sl_rtp_ext_out_t bad = {.mid_id = 15, .mid = "a", .mid_len = 1};
    assert_int_equal(sl_rtp_write_hdr(pkt, sizeof pkt, 0, 96, 1, 2, 3, &bad), SL_EINVAL);
    bad = (sl_rtp_ext_out_t){.mid_id = 1, .mid = "01234567890123456", .mid_len = 17};
    assert_int_equal(sl_rtp_write_hdr(pkt, sizeof pkt, 0, 96, 1, 2, 3, &bad), SL_EINVAL);
}

static void test_hdr_csrc_padding_two_byte(void **state)
{
    (void)state;
    /* V=2 P=1 X=1 CC=2, M=0 PT=100; two CSRCs; two-byte extension block with
     * id 1 (0 bytes), a padding byte, id 200 (3 bytes); payload; 3 pad bytes. */
    uint8_t pkt[] = {
        0xB2, 100, 0x00, 0x07, 0, 0, 0x10, 0x00, 0xCA, 0xFE, 0xBA, 0xBE, /* fixed */
        0, 0, 0, 1, 0, 0, 0, 2,                                           /* CSRCs */
        0x10, 0x05, 0x00, 0x02,                                           /* ext head: 2 words */
        1, 0, 0, 200, 3, 'a', 'b', 'c',                                   /* elements */
        'P', 'A', 'Y',                                                    /* payload */
        0, 0, 3};                                                         /* padding */
    sl_rtp_hdr_t h;
    assert_int_equal(sl_rtp_parse(pkt, sizeof pkt, &h), 0);
    assert_int_equal(h.cc, 2);
    assert_int_equal(sl_rd_be32(h.csrc + 4), 2);
    assert_int_equal(h.seq, 7);
    assert_int_equal(h.ts, 0x1000);
    assert_int_equal(h.ssrc, 0xCAFEBABE);
    assert_int_equal(h.padding, 3);
    assert_int_equal(h.ext_profile, 0x1005);
    assert_int_equal(h.ext_len, 8);
    assert_int_equal(h.payload_len, 3);
    assert_memory_equal(h.payload, "PAY", 3);
    const uint8_t *v;
    size_t vl;
    assert_int_equal(sl_rtp_ext_get(&h, 200, &v, &vl), 0);
    assert_int_equal(vl, 3);
    assert_memory_equal(v, "abc", 3);
    assert_int_equal(sl_rtp_ext_get(&h, 1, &v, &vl), 0);
    assert_int_equal(vl, 0);
    assert_int_equal(sl_rtp_ext_get(&h, 2, &v, &vl), SL_ENOTFOUND);

    /* An element running past the block is malformed. */
    pkt[28] = 7;
    assert_int_equal(sl_rtp_parse(pkt, sizeof pkt, &h), 0);
    assert_int_equal(sl_rtp_ext_get(&h, 200, &v, &vl), SL_EPROTO);

    /* Padding: a count of 0, or one that eats the header, is refused. */
    uint8_t p2[sizeof pkt];
    memcpy(p2, pkt, sizeof pkt);
    p2[sizeof p2 - 1] = 0;
    assert_int_equal(sl_rtp_parse(p2, sizeof p2, &h), SL_EPROTO);
    p2[sizeof p2 - 1] = 7; /* 3 payload + 3 pad + ... 7 reaches into the extension */
    assert_int_equal(sl_rtp_parse(p2, sizeof p2, &h), SL_EPROTO);
    p2[sizeof p2 - 1] = 6; /* exactly payload + padding: empty payload */
    assert_int_equal(sl_rtp_parse(p2, sizeof p2, &h), 0);
    assert_int_equal(h.payload_len, 0);
    /* Truncations at every length are refused, never read past. */
    for (size_t n = 0; n < 32; n++) {
        uint8_t *c = malloc(n ? n : 1);
        memcpy(c, pkt, n);
        c[n ? n - 1 : 0] = n ? 1 : 0; /* a plausible padding count */
        assert_int_equal(sl_rtp_parse(c, n, &h), SL_EPROTO);
        free(c);
    }
    /* Wrong version. */
    p2[0] = 0x40;
    assert_int_equal(sl_rtp_parse(p2, sizeof p2, &h), SL_EPROTO);
}

static void test_ext_one_byte_walk(void **state)
{
    (void)state;
    /* One-byte block: padding byte, id 2 (1 byte), id 15 stops the walk. */
    uint8_t pkt[] = {0x90, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xBE, 0xDE, 0x00, 0x02,
                     0x00, 0x20, 0x55, 0xF0, 0x40, 0x11, 0, 0, 'x'};
    sl_rtp_hdr_t h;
    assert_int_equal(sl_rtp_parse(pkt, sizeof pkt, &h), 0);
    const uint8_t *v;
    size_t vl;
    assert_int_equal(sl_rtp_ext_get(&h, 2, &v, &vl), 0);
    assert_int_equal(vl, 1);
    assert_int_equal(v[0], 0x55);
    assert_int_equal(sl_rtp_ext_get(&h, 4, &v, &vl), SL_ENOTFOUND); /* after the stop */
    pkt[17] = 0x2F; /* id 2 with 16 bytes: past the block */
    assert_int_equal(sl_rtp_parse(pkt, sizeof pkt, &h), 0);
    assert_int_equal(sl_rtp_ext_get(&h, 2, &v, &vl), SL_EPROTO);
    /* Another profile: nothing found. */
    pkt[12] = 0x12;
    assert_int_equal(sl_rtp_parse(pkt, sizeof pkt, &h), 0);
    assert_int_equal(sl_rtp_ext_get(&h, 2, &v, &vl), SL_ENOTFOUND);
    /* Extension length past the packet. */
    pkt[15] = 9;
    assert_int_equal(sl_rtp_parse(pkt, sizeof pkt, &h), SL_EPROTO);
}

/* ---- H.264 ---- */

static size_t make_config(uint8_t *rec, size_t cap)
{
    int n = sl_h264_avcc_record(SPS, sizeof SPS, PPS, sizeof PPS, rec, cap);
    assert_true(n > 0);
    return (size_t)n;
}

static void test_h264_config(void **state)
{
    (void)state;
    uint8_t rec[64];
    size_t n = make_config(rec, sizeof rec);
    assert_int_equal(n, 11 + sizeof SPS + sizeof PPS);
    sl_h264_config_t c;
    assert_int_equal(sl_h264_config_parse(rec, n, &c), 0);
    assert_int_equal(c.profile_idc, 0x42);
    assert_int_equal(c.level_idc, 0x1E);
    assert_int_equal(c.nal_len_size, 4);
    assert_int_equal(c.n_sps, 1);
    assert_int_equal(c.n_pps, 1);
    assert_int_equal(c.sps_len[0], sizeof SPS);
    assert_memory_equal(c.pps[0], PPS, sizeof PPS);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(sl_h264_config_parse(rec, k, &c), SL_EPROTO);
    rec[4] = 0xFE; /* lengthSizeMinusOne 2 does not exist */
    assert_int_equal(sl_h264_config_parse(rec, n, &c), SL_EPROTO);
    rec[4] = 0xFF;
    rec[5] = 0xE0 | 17; /* too many SPS */
    assert_int_equal(sl_h264_config_parse(rec, n, &c), SL_ETOOBIG);
    assert_int_equal(sl_h264_avcc_record(SPS, sizeof SPS, PPS, sizeof PPS, rec, 10), SL_ETOOBIG);
    assert_int_equal(sl_h264_avcc_record(SPS, 3, PPS, sizeof PPS, rec, 64), SL_EINVAL);
}

static void test_h264_keyframe_roundtrip(void **state)
{
    (void)state;
    uint8_t rec[64];
    size_t rec_len = make_config(rec, sizeof rec);
    /* An RTMP keyframe: one 5000-byte IDR slice, SPS/PPS only in the config. */
    static uint8_t idr[5000], avcc[6000], want[7000];
    fill_slice(idr, sizeof idr, 0x65, 1);
    size_t alen = put_nal(avcc, idr, sizeof idr);
    sl_rtp_payloads_t p;
    assert_int_equal(sl_h264_packetize(avcc, alen, 4, rec, rec_len, 1, 1200, &p), 0);
    /* STAP-A(SPS, PPS), then 5 FU-As of at most 1200 bytes. */
    assert_int_equal(p.n, 6);
    const uint8_t *s = p.buf->data + p.pkts[0].off;
    assert_int_equal(s[0], 0x60 | 24); /* NRI = max of SPS/PPS NRI (3) */
    assert_int_equal(p.pkts[0].len, 1 + 2 + sizeof SPS + 2 + sizeof PPS);
    assert_int_equal(sl_rd_be16(s + 1), sizeof SPS);
    assert_memory_equal(s + 3, SPS, sizeof SPS);
    assert_int_equal(sl_rd_be16(s + 3 + sizeof SPS), sizeof PPS);
    assert_int_equal(p.pkts[0].marker, 0);
    size_t frag_total = 0;
    for (uint32_t i = 1; i < p.n; i++) {
        const uint8_t *f = p.buf->data + p.pkts[i].off;
        assert_true(p.pkts[i].len <= 1200);
        assert_int_equal(f[0], 0x60 | 28);            /* FU indicator: IDR's NRI, type 28 */
        assert_int_equal(f[1] & 0x1F, 5);             /* FU header: IDR */
        assert_int_equal(f[1] >> 7, i == 1);          /* S on the first */
        assert_int_equal((f[1] >> 6) & 1, i == p.n - 1); /* E on the last */
        assert_int_equal(f[1] & 0x20, 0);             /* R */
        assert_int_equal(p.pkts[i].marker, i == p.n - 1);
        frag_total += p.pkts[i].len - 2u;
    }
    assert_int_equal(frag_total, sizeof idr - 1);

    /* The view of the same buffer reads the same index. */
    sl_rtp_payloads_t v;
    assert_int_equal(sl_rtp_payloads_view(p.buf, &v), 0);
    assert_int_equal(v.n, p.n);
    assert_ptr_equal(v.pkts, p.pkts);

    got_t g;
    memset(&g, 0, sizeof g);
    sl_h264_depack_t *d = sl_h264_depack_new(got_config, got_frame, &g);
    assert_non_null(d);
    assert_int_equal(sl_h264_depack_need_keyframe(d), 1);
    uint16_t seq = 100;
    assert_int_equal(push_all(d, 0, &p, &seq, 9000), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.keys[0], 1);
    assert_int_equal(g.ts[0], 9000);
    assert_int_equal(g.n_cfg, 1);
    assert_int_equal(g.cfg_len, rec_len);
    assert_memory_equal(g.cfg, rec, rec_len);
    size_t wlen = put_nal(want, SPS, sizeof SPS);
    wlen += put_nal(want + wlen, PPS, sizeof PPS);
    wlen += put_nal(want + wlen, idr, sizeof idr);
    assert_int_equal(g.lens[0], wlen);
    assert_memory_equal(g.frames[0], want, wlen);
    assert_int_equal(sl_h264_depack_need_keyframe(d), 0);
    sl_rtp_payloads_release(&p);
    assert_null(p.buf);

    /* An inter frame of two slices and an SEI: STAP-A(SEI, small slice) + FU-As,
     * comes back byte for byte, no new config. */
    static uint8_t sl1[100], sl2[3000], sei[20];
    fill_slice(sl1, sizeof sl1, 0x41, 2);
    fill_slice(sl2, sizeof sl2, 0x41, 3);
    sl2[1] &= 0x7F; /* second slice does not start at macroblock 0 */
    memset(sei, 0xAA, sizeof sei);
    sei[0] = 0x06;
    alen = put_nal(avcc, sei, sizeof sei);
    alen += put_nal(avcc + alen, sl1, sizeof sl1);
    alen += put_nal(avcc + alen, sl2, sizeof sl2);
    assert_int_equal(sl_h264_packetize(avcc, alen, 4, rec, rec_len, 0, 1200, &p), 0);
    assert_int_equal(p.buf->data[p.pkts[0].off] & 0x1F, 24);
    assert_int_equal(p.n, 1 + 3);
    assert_int_equal(push_all(d, 0, &p, &seq, 12000), 0);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.keys[1], 0);
    assert_int_equal(g.lens[1], alen);
    assert_memory_equal(g.frames[1], avcc, alen);
    assert_int_equal(g.n_cfg, 1);
    sl_rtp_payloads_release(&p);

    /* A 2-byte NAL length input packetizes the same way; the AUD is left out. */
    uint8_t small[64];
    static const uint8_t aud[] = {0x09, 0xF0};
    size_t sl = 0;
    small[sl++] = 0;
    small[sl++] = 2;
    memcpy(small + sl, aud, 2);
    sl += 2;
    small[sl++] = 0;
    small[sl++] = 40;
    fill_slice(small + sl, 40, 0x41, 4);
    sl += 40;
    assert_int_equal(sl_h264_packetize(small, sl, 2, NULL, 0, 0, 0, &p), 0);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.pkts[0].len, 40);
    assert_int_equal(p.pkts[0].marker, 1);
    assert_int_equal(p.buf->data[0], 0x41);
    sl_rtp_payloads_release(&p);

    /* A keyframe that carries its own SPS/PPS gets no second copy. */
    alen = put_nal(avcc, SPS, sizeof SPS);
    alen += put_nal(avcc + alen, PPS, sizeof PPS);
    alen += put_nal(avcc + alen, idr, 500);
    avcc[alen - 500] = 0x65;
    assert_int_equal(sl_h264_packetize(avcc, alen, 4, rec, rec_len, 1, 1200, &p), 0);
    assert_int_equal(p.n, 1); /* all three in one STAP-A */
    assert_int_equal(p.pkts[0].len, 1 + 6 + sizeof SPS + sizeof PPS + 500);
    sl_rtp_payloads_release(&p);

    /* Bad inputs. */
    assert_int_equal(sl_h264_packetize(avcc, 3, 4, NULL, 0, 0, 0, &p), SL_EPROTO);
    avcc[0] = 0x7F; /* length past the end */
    assert_int_equal(sl_h264_packetize(avcc, alen, 4, NULL, 0, 0, 0, &p), SL_EPROTO);
    assert_int_equal(sl_h264_packetize(avcc, alen, 3 + 2, NULL, 0, 0, 0, &p), SL_EPROTO);
    assert_int_equal(sl_h264_packetize(small, sl, 2, NULL, 0, 0, 10, &p), SL_EINVAL);
    assert_int_equal(sl_h264_packetize(small, 4, 2, NULL, 0, 0, 0, &p), SL_EPROTO); /* AUD only */
    assert_null(p.buf);

    sl_h264_depack_free(d);
    got_clear(&g);
}

/* Packetizes a synthetic frame (keyframe: IDR of n bytes; else a P slice). */
static void h264_frame(int key, size_t n, unsigned seed, const uint8_t *rec, size_t rec_len,
                       sl_rtp_payloads_t *p)
{
    static uint8_t nal[20000], avcc[20010];
    assert_true(n <= sizeof nal);
    fill_slice(nal, n, key ? 0x65 : 0x41, seed);
    size_t alen = put_nal(avcc, nal, n);
    assert_int_equal(sl_h264_packetize(avcc, alen, 4, rec, rec_len, key, 1200, p), 0);
}

static void test_h264_loss(void **state)
{
    (void)state;
    uint8_t rec[64];
    size_t rec_len = make_config(rec, sizeof rec);
    got_t g;
    memset(&g, 0, sizeof g);
    sl_h264_depack_t *d = sl_h264_depack_new(got_config, got_frame, &g);
    uint16_t seq = 0;
    sl_rtp_payloads_t p;

    /* An inter frame before any keyframe: nothing comes out. */
    h264_frame(0, 3000, 1, rec, rec_len, &p);
    push_all(d, 0, &p, &seq, 1000);
    sl_rtp_payloads_release(&p);
    assert_int_equal(g.n, 0);
    assert_int_equal(sl_h264_depack_need_keyframe(d), 1);

    h264_frame(1, 5000, 2, rec, rec_len, &p);
    push_all(d, 0, &p, &seq, 2000);
    sl_rtp_payloads_release(&p);
    assert_int_equal(g.n, 1);
    assert_int_equal(sl_h264_depack_need_keyframe(d), 0);

    /* A middle FU-A fragment is lost: the caller reports the gap. */
    h264_frame(0, 5000, 3, rec, rec_len, &p);
    assert_true(p.n >= 4);
    for (uint32_t i = 0; i < p.n; i++) {
        if (i == 2) {
            seq++;
            sl_h264_depack_loss(d);
            continue;
        }
        assert_int_equal(push_pkt(d, 0, &p, i, seq++, 3000), 0);
    }
    sl_rtp_payloads_release(&p);
    assert_int_equal(g.n, 1); /* dropped */
    assert_int_equal(sl_h264_depack_need_keyframe(d), 1);

    /* Complete inter frames are not shown until the next IDR. */
    h264_frame(0, 800, 4, rec, rec_len, &p);
    assert_int_equal(push_all(d, 0, &p, &seq, 4000), 0);
    sl_rtp_payloads_release(&p);
    assert_int_equal(g.n, 1);
    assert_int_equal(sl_h264_depack_need_keyframe(d), 1);

    h264_frame(1, 5000, 5, rec, rec_len, &p);
    push_all(d, 0, &p, &seq, 5000);
    sl_rtp_payloads_release(&p);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.keys[1], 1);
    assert_int_equal(g.n_cfg, 1); /* same SPS/PPS: no new record */
    assert_int_equal(sl_h264_depack_need_keyframe(d), 0);

    /* The start fragment is lost and the caller does not say so: the
     * continuation without a start is refused and the frame dropped. */
    h264_frame(0, 5000, 6, rec, rec_len, &p);
    int rc = 0;
    for (uint32_t i = 1; i < p.n; i++) {
        int r = push_pkt(d, 0, &p, i, seq++, 6000);
        if (r && !rc)
            rc = r;
    }
    sl_rtp_payloads_release(&p);
    assert_int_equal(rc, SL_EPROTO);
    assert_int_equal(g.n, 2);
    assert_int_equal(sl_h264_depack_need_keyframe(d), 1);

    /* The marker packet is lost (end fragment): the timestamp change ends it. */
    h264_frame(1, 5000, 7, rec, rec_len, &p);
    for (uint32_t i = 0; i + 1 < p.n; i++)
        push_pkt(d, 0, &p, i, seq++, 7000);
    sl_rtp_payloads_release(&p);
    h264_frame(0, 500, 8, rec, rec_len, &p);
    push_all(d, 0, &p, &seq, 8000);
    sl_rtp_payloads_release(&p);
    assert_int_equal(g.n, 2);
    assert_int_equal(sl_h264_depack_need_keyframe(d), 1);

    /* A gap reported between frames: the next keyframe is good if it starts
     * at macroblock 0 (its own beginning was not what got lost). */
    sl_h264_depack_loss(d);
    h264_frame(1, 5000, 9, rec, rec_len, &p);
    push_all(d, 0, &p, &seq, 9000);
    sl_rtp_payloads_release(&p);
    assert_int_equal(g.n, 3);
    assert_int_equal(sl_h264_depack_need_keyframe(d), 0);

    /* A gap that swallowed the head of a two-slice IDR: what is left (the
     * second slice, not at macroblock 0) is not shown. */
    sl_h264_depack_loss(d);
    uint8_t tail[300];
    fill_slice(tail, sizeof tail, 0x65, 11);
    tail[1] &= 0x7F;
    sl_rtp_hdr_t th;
    memset(&th, 0, sizeof th);
    th.payload = tail;
    th.payload_len = sizeof tail;
    th.ts = 9500;
    th.marker = 1;
    assert_int_equal(sl_h264_depack_push(d, &th), 0);
    assert_int_equal(g.n, 3);
    assert_int_equal(sl_h264_depack_need_keyframe(d), 1);

    /* A new SPS/PPS: a new record comes before the frame. */
    uint8_t sps2[sizeof SPS];
    memcpy(sps2, SPS, sizeof SPS);
    sps2[3] = 0x1F; /* level 3.1 */
    uint8_t rec2[64];
    int rec2_len = sl_h264_avcc_record(sps2, sizeof sps2, PPS, sizeof PPS, rec2, sizeof rec2);
    assert_true(rec2_len > 0);
    h264_frame(1, 3000, 10, rec2, (size_t)rec2_len, &p);
    push_all(d, 0, &p, &seq, 10000);
    sl_rtp_payloads_release(&p);
    assert_int_equal(g.n, 4);
    assert_int_equal(g.n_cfg, 2);
    assert_int_equal(g.cfg_len, (size_t)rec2_len);
    assert_memory_equal(g.cfg, rec2, (size_t)rec2_len);

    sl_h264_depack_free(d);
    got_clear(&g);
}

/* Makes an RTP header view over a payload. */
static sl_rtp_hdr_t hdr_of(const uint8_t *payload, size_t len, uint32_t ts, int marker)
{
    sl_rtp_hdr_t h;
    memset(&h, 0, sizeof h);
    h.payload = payload;
    h.payload_len = len;
    h.ts = ts;
    h.marker = (uint8_t)marker;
    return h;
}

static void test_h264_malformed(void **state)
{
    (void)state;
    got_t g;
    memset(&g, 0, sizeof g);
    sl_h264_depack_t *d = sl_h264_depack_new(got_config, got_frame, &g);
    /* A good keyframe first, as a single STAP-A of SPS, PPS, IDR. */
    uint8_t stap[64];
    size_t n = 0;
    stap[n++] = 0x78;
    stap[n++] = 0;
    stap[n++] = sizeof SPS;
    memcpy(stap + n, SPS, sizeof SPS);
    n += sizeof SPS;
    stap[n++] = 0;
    stap[n++] = sizeof PPS;
    memcpy(stap + n, PPS, sizeof PPS);
    n += sizeof PPS;
    stap[n++] = 0;
    stap[n++] = 4;
    memcpy(stap + n, "\x65\x88\x84\x00", 4);
    n += 4;
    sl_rtp_hdr_t h = hdr_of(stap, n, 1, 1);
    assert_int_equal(sl_h264_depack_push(d, &h), 0);
    assert_int_equal(g.n, 1);

    /* STAP-A whose last length runs past the packet. */
    stap[n - 5] = 5;
    h = hdr_of(stap, n, 2, 1);
    assert_int_equal(sl_h264_depack_push(d, &h), SL_EPROTO);
    assert_int_equal(g.n, 1);
    assert_int_equal(sl_h264_depack_need_keyframe(d), 1);
    /* A zero length, a dangling length byte, an empty STAP-A. */
    stap[n - 5] = 4;
    stap[1] = 0;
    stap[2] = 0;
    h = hdr_of(stap, n, 3, 1);
    assert_int_equal(sl_h264_depack_push(d, &h), SL_EPROTO);
    h = hdr_of((const uint8_t *)"\x78\x00\x01\x41\x00", 5, 4, 1);
    assert_int_equal(sl_h264_depack_push(d, &h), SL_EPROTO);
    h = hdr_of((const uint8_t *)"\x78", 1, 5, 1);
    assert_int_equal(sl_h264_depack_push(d, &h), SL_EPROTO);
    /* A STAP-A holding an aggregation NAL unit. */
    h = hdr_of((const uint8_t *)"\x78\x00\x02\x78\x00", 5, 6, 1);
    assert_int_equal(sl_h264_depack_push(d, &h), SL_EPROTO);
    /* Unsupported and reserved types, the forbidden bit, an FU-A with S and E. */
    h = hdr_of((const uint8_t *)"\x79\x00", 2, 7, 1); /* STAP-B */
    assert_int_equal(sl_h264_depack_push(d, &h), SL_EPROTO);
    h = hdr_of((const uint8_t *)"\x7D\x85\x00", 3, 8, 1); /* FU-B */
    assert_int_equal(sl_h264_depack_push(d, &h), SL_EPROTO);
    h = hdr_of((const uint8_t *)"\x60\x00", 2, 9, 1);
    assert_int_equal(sl_h264_depack_push(d, &h), SL_EPROTO);
    h = hdr_of((const uint8_t *)"\xE5\x00", 2, 10, 1);
    assert_int_equal(sl_h264_depack_push(d, &h), SL_EPROTO);
    h = hdr_of((const uint8_t *)"\x7C\xC5\x00", 3, 11, 1);
    assert_int_equal(sl_h264_depack_push(d, &h), SL_EPROTO);
    h = hdr_of((const uint8_t *)"\x7C\x85", 2, 12, 1); /* FU-A without data */
    assert_int_equal(sl_h264_depack_push(d, &h), SL_EPROTO);
    /* Padding-only packets are ignored. */
    h = hdr_of(stap, 0, 13, 1);
    assert_int_equal(sl_h264_depack_push(d, &h), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(sl_h264_depack_need_keyframe(d), 1);
    sl_h264_depack_free(d);
    got_clear(&g);
}

static void test_h264_order_is_callers_job(void **state)
{
    (void)state;
    /* The depacketizer does not reorder: FU-A fragments given out of order
     * are either refused (a fragment before its start) or, when every
     * fragment is there, concatenated in the order given. The caller's
     * jitter buffer must sort by sequence number first. */
    uint8_t rec[64];
    size_t rec_len = make_config(rec, sizeof rec);
    got_t g;
    memset(&g, 0, sizeof g);
    sl_h264_depack_t *d = sl_h264_depack_new(got_config, got_frame, &g);
    sl_rtp_payloads_t p;
    h264_frame(1, 5000, 1, rec, rec_len, &p);
    uint16_t seq = 0;
    /* Swap the 2nd and 3rd fragments. */
    assert_int_equal(push_pkt(d, 0, &p, 0, seq++, 1), 0);
    assert_int_equal(push_pkt(d, 0, &p, 1, seq++, 1), 0);
    assert_int_equal(push_pkt(d, 0, &p, 3, seq++, 1), 0);
    assert_int_equal(push_pkt(d, 0, &p, 2, seq++, 1), 0);
    for (uint32_t i = 4; i < p.n; i++)
        assert_int_equal(push_pkt(d, 0, &p, i, seq++, 1), 0);
    assert_int_equal(g.n, 1);
    /* Emitted, but not the frame that was sent: the bytes are in the wrong order. */
    static uint8_t idr[5000];
    fill_slice(idr, sizeof idr, 0x65, 1);
    assert_int_equal(g.lens[0], 4 + sizeof SPS + 4 + sizeof PPS + 4 + sizeof idr);
    assert_memory_not_equal(g.frames[0] + g.lens[0] - sizeof idr, idr, sizeof idr);
    /* A fragment before its start: refused. */
    assert_int_equal(push_pkt(d, 0, &p, 2, seq++, 2), SL_EPROTO);
    sl_rtp_payloads_release(&p);
    sl_h264_depack_free(d);
    got_clear(&g);
}

static void test_h264_caps(void **state)
{
    (void)state;
    /* Packetizer: more than 1024 NAL units, more than 4 MiB. */
    size_t n = (SL_H264_MAX_NALS + 1) * 6;
    uint8_t *avcc = malloc(n);
    for (size_t i = 0; i < n; i += 6)
        memcpy(avcc + i, "\x00\x00\x00\x02\x41\x80", 6);
    sl_rtp_payloads_t p;
    assert_int_equal(sl_h264_packetize(avcc, n, 4, NULL, 0, 0, 0, &p), SL_ETOOBIG);
    assert_int_equal(sl_h264_packetize(avcc, n - 6, 4, NULL, 0, 0, 0, &p), 0);
    assert_int_equal(p.pkts[p.n - 1].marker, 1);
    sl_rtp_payloads_release(&p);
    free(avcc);
    uint8_t *big = calloc(1, SL_RTP_MAX_FRAME + 1);
    assert_int_equal(sl_h264_packetize(big, SL_RTP_MAX_FRAME + 1, 4, NULL, 0, 0, 0, &p),
                     SL_ETOOBIG);

    /* Depacketizer: 1025 single NAL packets in one access unit. */
    got_t g;
    memset(&g, 0, sizeof g);
    sl_h264_depack_t *d = sl_h264_depack_new(got_config, got_frame, &g);
    int rc = 0;
    for (int i = 0; i <= SL_H264_MAX_NALS && !rc; i++) {
        sl_rtp_hdr_t h = hdr_of((const uint8_t *)"\x41\x80", 2, 1, 0);
        rc = sl_h264_depack_push(d, &h);
    }
    assert_int_equal(rc, SL_ETOOBIG);
    /* An FU-A NAL unit past 4 MiB. */
    big[0] = 0x7C;
    big[1] = 0x85;
    sl_rtp_hdr_t h = hdr_of(big, 60000, 2, 0);
    assert_int_equal(sl_h264_depack_push(d, &h), 0);
    big[1] = 0x05;
    rc = 0;
    for (int i = 0; i < 80 && !rc; i++) {
        h = hdr_of(big, 60000, 2, 0);
        rc = sl_h264_depack_push(d, &h);
    }
    assert_int_equal(rc, SL_ETOOBIG);
    big[1] = 0x45;
    h = hdr_of(big, 60000, 2, 1);
    sl_h264_depack_push(d, &h);
    assert_int_equal(g.n, 0);
    assert_int_equal(sl_h264_depack_need_keyframe(d), 1);
    free(big);
    sl_h264_depack_free(d);
    got_clear(&g);
}

/* ---- VP8, Opus ---- */

static void test_vp8(void **state)
{
    (void)state;
    static uint8_t key[3000], inter[700];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(i * 13);
    key[0] = 0x10; /* frame tag: P bit clear = keyframe */
    memcpy(key + 3, "\x9d\x01\x2a", 3);
    for (size_t i = 0; i < sizeof inter; i++)
        inter[i] = (uint8_t)(i * 5 + 1);
    inter[0] = 0x11;
    sl_rtp_payloads_t p;
    assert_int_equal(sl_vp8_packetize(key, sizeof key, 1200, &p), 0);
    assert_int_equal(p.n, 3);
    for (uint32_t i = 0; i < p.n; i++) {
        assert_true(p.pkts[i].len <= 1200);
        assert_int_equal(p.buf->data[p.pkts[i].off], i == 0 ? 0x10 : 0x00);
        assert_int_equal(p.pkts[i].marker, i == p.n - 1);
    }
    got_t g;
    memset(&g, 0, sizeof g);
    sl_vp8_depack_t *d = sl_vp8_depack_new(got_frame, &g);
    uint16_t seq = 0;
    assert_int_equal(push_all(d, 1, &p, &seq, 90), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.keys[0], 1);
    assert_int_equal(g.lens[0], sizeof key);
    assert_memory_equal(g.frames[0], key, sizeof key);
    sl_rtp_payloads_release(&p);

    /* A descriptor with every optional field (X, I with 15-bit id, L, T/K). */
    uint8_t pk[64] = {0x90, 0xF0, 0x80 | 0x12, 0x34, 0x07, 0x40};
    memcpy(pk + 6, inter, 40);
    sl_rtp_hdr_t h = hdr_of(pk, 46, 180, 1);
    assert_int_equal(sl_vp8_depack_push(d, &h), 0);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.keys[1], 0);
    assert_int_equal(g.lens[1], 40);
    assert_memory_equal(g.frames[1], inter, 40);
    /* Truncated descriptors. */
    h = hdr_of(pk, 5, 270, 1);
    assert_int_equal(sl_vp8_depack_push(d, &h), 0 == 1 ? 0 : SL_EPROTO);
    h = hdr_of(pk, 1, 360, 1);
    assert_int_equal(sl_vp8_depack_push(d, &h), SL_EPROTO);
    assert_int_equal(sl_vp8_depack_need_keyframe(d), 1);

    /* Inter frames wait for a keyframe; a lost middle packet drops the keyframe. */
    assert_int_equal(sl_vp8_packetize(inter, sizeof inter, 300, &p), 0);
    push_all(d, 1, &p, &seq, 450);
    sl_rtp_payloads_release(&p);
    assert_int_equal(g.n, 2);
    assert_int_equal(sl_vp8_packetize(key, sizeof key, 1200, &p), 0);
    push_pkt(d, 1, &p, 0, seq++, 540);
    sl_vp8_depack_loss(d);
    seq++;
    push_pkt(d, 1, &p, 2, seq++, 540);
    assert_int_equal(g.n, 2);
    push_all(d, 1, &p, &seq, 630);
    assert_int_equal(g.n, 3);
    assert_int_equal(sl_vp8_depack_need_keyframe(d), 0);
    /* The first packet lost: the frame is dropped at its end. */
    push_pkt(d, 1, &p, 1, seq++, 720);
    push_pkt(d, 1, &p, 2, seq++, 720);
    assert_int_equal(g.n, 3);
    assert_int_equal(sl_vp8_depack_need_keyframe(d), 1);
    sl_rtp_payloads_release(&p);
    assert_int_equal(sl_vp8_packetize(key, 0, 1200, &p), SL_EINVAL);
    assert_int_equal(sl_vp8_packetize(key, sizeof key, 10, &p), SL_EINVAL);
    sl_vp8_depack_free(d);
    got_clear(&g);

    sl_buf_t *b = sl_vp8_flv_frame_body(key, sizeof key, 1);
    sl_flv_info_t info;
    assert_int_equal(sl_flv_parse_video(b->data, b->len, &info), 0);
    assert_int_equal(info.codec, SL_CODEC_VP8);
    assert_int_equal(info.is_key, 1);
    assert_int_equal(info.data_off, 5);
    sl_buf_unref(b);
}

static void test_opus(void **state)
{
    (void)state;
    sl_rtp_payloads_t p;
    assert_int_equal(sl_opus_packetize((const uint8_t *)"\xfc\x01\x02", 3, &p), 0);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.pkts[0].len, 3);
    assert_int_equal(p.pkts[0].marker, 0);
    assert_memory_equal(p.buf->data, "\xfc\x01\x02", 3);
    sl_rtp_payloads_release(&p);
    assert_int_equal(sl_opus_packetize(NULL, 0, &p), SL_EINVAL);
    sl_buf_t *b = sl_opus_flv_frame_body((const uint8_t *)"\xfc\x01\x02", 3);
    sl_flv_info_t info;
    assert_int_equal(sl_flv_parse_audio(b->data, b->len, &info), 0);
    assert_int_equal(info.codec, SL_CODEC_OPUS);
    assert_int_equal(info.is_config, 0);
    assert_int_equal(b->len - info.data_off, 3);
    sl_buf_unref(b);
}

/* ---- frame cache and FLV bodies ---- */

static void test_frame_cache(void **state)
{
    (void)state;
    uint8_t rec[64];
    size_t rec_len = make_config(rec, sizeof rec);
    sl_buf_t *cb = sl_h264_flv_config_body(rec, rec_len);
    sl_frame_t *cf;
    assert_int_equal(sl_frame_new(SL_FLV_VIDEO, 0, cb, &cf), 0);
    assert_true(cf->flags & SL_FRAME_CONFIG);
    assert_int_equal(cf->codec, SL_CODEC_AVC);
    sl_rtp_payloads_t p, q;
    assert_int_equal(sl_frame_rtp_payloads(cf, 0, rec, rec_len, &p), SL_EINVAL);
    sl_frame_unref(cf);

    static uint8_t idr[4000], avcc[4100];
    fill_slice(idr, sizeof idr, 0x65, 9);
    size_t alen = put_nal(avcc, idr, sizeof idr);
    sl_buf_t *fb = sl_h264_flv_frame_body(avcc, alen, 1, 0);
    assert_int_equal(fb->data[0], 0x17);
    assert_int_equal(fb->data[1], 1);
    sl_frame_t *f;
    assert_int_equal(sl_frame_new(SL_FLV_VIDEO, 40, fb, &f), 0);
    assert_true(f->flags & SL_FRAME_KEY);
    assert_int_equal(f->data_off, 5);
    assert_int_equal(sl_frame_rtp_payloads(f, 0, rec, rec_len, &p), 0);
    assert_ptr_equal(f->enc[SL_ENC_RTP], p.buf);
    assert_int_equal(atomic_load(&f->enc_param[SL_ENC_RTP]), SL_RTP_DEFAULT_MTU);
    assert_int_equal(p.buf->data[p.pkts[0].off] & 0x1F, 24); /* STAP-A SPS/PPS first */
    /* Second viewer: the very same buffer, no new build. */
    assert_int_equal(sl_frame_rtp_payloads(f, 1200, rec, rec_len, &q), 0);
    assert_ptr_equal(q.buf, p.buf);
    assert_ptr_equal(q.pkts, p.pkts);
    assert_int_equal(p.buf->refs, 1); /* only the frame holds it */
    /* A viewer that keeps the payloads past the frame takes a reference. */
    sl_buf_t *kept = sl_buf_ref(q.buf);
    /* A second MTU: built once into the second slot; the first stays as it was (set once). */
    assert_int_equal(sl_frame_rtp_payloads(f, 500, rec, rec_len, &q), 0);
    assert_ptr_not_equal(q.buf, kept);
    assert_false(q.priv);
    assert_true(q.n > p.n);
    assert_ptr_equal(f->enc[SL_ENC_RTP_ALT], q.buf);
    assert_ptr_equal(f->enc[SL_ENC_RTP], kept);
    assert_int_equal(atomic_load(&f->enc_param[SL_ENC_RTP]), SL_RTP_DEFAULT_MTU);
    sl_buf_t *alt = q.buf;
    sl_rtp_payloads_done(&q);
    assert_int_equal(sl_frame_rtp_payloads(f, 500, rec, rec_len, &q), 0);
    assert_ptr_equal(q.buf, alt);
    sl_rtp_payloads_done(&q);
    /* A third MTU: a private build, released by sl_rtp_payloads_done. */
    assert_int_equal(sl_frame_rtp_payloads(f, 700, rec, rec_len, &q), 0);
    assert_true(q.priv);
    assert_ptr_not_equal(q.buf, kept);
    assert_ptr_not_equal(q.buf, alt);
    sl_rtp_payloads_done(&q);
    assert_int_equal(sl_frame_rtp_payloads(f, 0, rec, rec_len, &q), 0);
    assert_false(q.priv);
    assert_ptr_equal(q.buf, kept);
    sl_rtp_payloads_done(&q);
    sl_frame_unref(f); /* frees the cached payloads and their index */
    assert_int_equal(kept->refs, 1);
    sl_rtp_payloads_view(kept, &p);
    assert_int_equal(p.pkts[p.n - 1].marker, 1);
    sl_buf_unref(kept);

    /* Inter frame body with a composition offset. */
    fb = sl_h264_flv_frame_body(avcc, alen, 0, -40);
    sl_flv_info_t info;
    assert_int_equal(sl_flv_parse_video(fb->data, fb->len, &info), 0);
    assert_int_equal(info.cts_ms, -40);
    assert_int_equal(info.is_key, 0);
    sl_buf_unref(fb);

    /* Opus and VP8 frames through the cache. */
    sl_buf_t *ob = sl_opus_flv_frame_body((const uint8_t *)"\xfc\xff\xfe", 3);
    assert_int_equal(sl_frame_new(SL_FLV_AUDIO, 0, ob, &f), 0);
    assert_int_equal(sl_frame_rtp_payloads(f, 0, NULL, 0, &p), 0);
    assert_int_equal(p.n, 1);
    assert_memory_equal(p.buf->data, "\xfc\xff\xfe", 3);
    sl_frame_unref(f);
    uint8_t vp8[2000];
    memset(vp8, 0x42, sizeof vp8);
    vp8[0] = 0x10;
    sl_buf_t *vb = sl_vp8_flv_frame_body(vp8, sizeof vp8, 1);
    assert_int_equal(sl_frame_new(SL_FLV_VIDEO, 0, vb, &f), 0);
    assert_int_equal(sl_frame_rtp_payloads(f, 0, NULL, 0, &p), 0);
    assert_int_equal(p.n, 2);
    sl_frame_unref(f);
    /* A codec without a payload format here (MP3; AAC has one for RTSP since RFC 3640). */
    static const uint8_t mp3[] = {0x2F, 0xFF, 0xFB, 0x90};
    assert_int_equal(sl_frame_new(SL_FLV_AUDIO, 0, sl_buf_from(mp3, sizeof mp3), &f), 0);
    assert_int_equal(sl_frame_rtp_payloads(f, 0, NULL, 0, &p), SL_EINVAL);
    sl_frame_unref(f);
}

/* ---- real encoders through libavcodec ---- */

static AVFrame *make_picture(int w, int h, int i)
{
    AVFrame *pic = av_frame_alloc();
    pic->format = AV_PIX_FMT_YUV420P;
    pic->width = w;
    pic->height = h;
    assert_int_equal(av_frame_get_buffer(pic, 0), 0);
    unsigned x = 12345u + (unsigned)i * 777u;
    for (int y = 0; y < h; y++)
        for (int k = 0; k < w; k++) {
            /* Moving gradient plus noise: big frames that need FU-A / many packets. */
            x = x * 1103515245u + 12345u;
            pic->data[0][y * pic->linesize[0] + k] = (uint8_t)((k + y + i * 4) + ((x >> 16) & 31));
        }
    for (int y = 0; y < h / 2; y++) {
        memset(pic->data[1] + y * pic->linesize[1], 128 + i, (size_t)w / 2);
        memset(pic->data[2] + y * pic->linesize[2], 128 - i, (size_t)w / 2);
    }
    pic->pts = i;
    return pic;
}

/* Splits Annex B into NAL units: calls fn for each. Returns the count. */
static int annexb_each(const uint8_t *p, size_t n, void (*fn)(void *, const uint8_t *, size_t),
                       void *ud)
{
    int count = 0;
    size_t i = 0, start = SIZE_MAX;
    while (i + 3 <= n) {
        if (p[i] == 0 && p[i + 1] == 0 && p[i + 2] == 1) {
            if (start != SIZE_MAX) {
                size_t end = i;
                while (end > start && p[end - 1] == 0)
                    end--;
                fn(ud, p + start, end - start);
                count++;
            }
            i += 3;
            start = i;
        } else {
            i++;
        }
    }
    if (start != SIZE_MAX && start < n) {
        fn(ud, p + start, n - start);
        count++;
    }
    return count;
}

typedef struct split {
    uint8_t avcc[1 << 20]; /* slices and SEI as AVCC (what RTMP carries) */
    size_t len;
    uint8_t sps[256], pps[256];
    size_t sps_len, pps_len;
} split_t;

static void split_nal(void *ud, const uint8_t *nal, size_t len)
{
    split_t *s = ud;
    int type = nal[0] & 0x1F;
    if (type == 7) {
        memcpy(s->sps, nal, len);
        s->sps_len = len;
    } else if (type == 8) {
        memcpy(s->pps, nal, len);
        s->pps_len = len;
    } else {
        assert_true(s->len + 4 + len <= sizeof s->avcc);
        s->len += put_nal(s->avcc + s->len, nal, len);
    }
}

static int decode_all(const AVCodec *dec, const uint8_t *extra, size_t extra_len, got_t *g)
{
    AVCodecContext *ctx = avcodec_alloc_context3(dec);
    ctx->thread_count = 1;
    ctx->err_recognition = AV_EF_EXPLODE | AV_EF_CRCCHECK | AV_EF_BITSTREAM;
    if (extra_len) {
        ctx->extradata = av_mallocz(extra_len + AV_INPUT_BUFFER_PADDING_SIZE);
        memcpy(ctx->extradata, extra, extra_len);
        ctx->extradata_size = (int)extra_len;
    }
    assert_int_equal(avcodec_open2(ctx, dec, NULL), 0);
    AVPacket *pkt = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    int decoded = 0;
    for (int i = 0; i <= g->n; i++) {
        if (i < g->n) {
            av_new_packet(pkt, (int)g->lens[i]);
            memcpy(pkt->data, g->frames[i], g->lens[i]);
            pkt->pts = i;
            if (g->keys[i])
                pkt->flags |= AV_PKT_FLAG_KEY;
            assert_int_equal(avcodec_send_packet(ctx, pkt), 0);
            av_packet_unref(pkt);
        } else {
            assert_int_equal(avcodec_send_packet(ctx, NULL), 0);
        }
        int rc;
        while ((rc = avcodec_receive_frame(ctx, fr)) == 0) {
            assert_int_equal(fr->decode_error_flags, 0);
            decoded++;
            av_frame_unref(fr);
        }
        assert_true(rc == AVERROR(EAGAIN) || rc == AVERROR_EOF);
    }
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avcodec_free_context(&ctx);
    return decoded;
}

/*
 * sl_h264_au_info on real x264 output with B-frames (b-pyramid normal, 3
 * slices per picture): its B verdict matches libavcodec's H.264 parser's
 * picture type for every access unit; reference and non-reference
 * B-frames both occur; IDRs are found. Then hand-made units: emulation
 * prevention inside the slice header, bad lengths, non-slice NAL units.
 */
static void test_h264_au_info(void **state)
{
    (void)state;
    const AVCodec *enc = avcodec_find_encoder_by_name("libx264");
    if (!enc)
        skip();
    AVCodecContext *ec = avcodec_alloc_context3(enc);
    ec->width = 320;
    ec->height = 240;
    ec->pix_fmt = AV_PIX_FMT_YUV420P;
    ec->time_base = (AVRational){1, 25};
    ec->gop_size = 24;
    ec->max_b_frames = 3;
    ec->thread_count = 1;
    ec->bit_rate = 1000000;
    av_opt_set(ec->priv_data, "preset", "veryfast", 0);
    av_opt_set(ec->priv_data, "x264-params", "slices=3:b-pyramid=normal:b-adapt=0:scenecut=0", 0);
    assert_int_equal(avcodec_open2(ec, enc, NULL), 0);
    AVCodecParserContext *parser = av_parser_init(AV_CODEC_ID_H264);
    AVCodecContext *pc = avcodec_alloc_context3(avcodec_find_decoder(AV_CODEC_ID_H264));
    assert_non_null(parser);
    parser->flags |= PARSER_FLAG_COMPLETE_FRAMES; /* one packet = one access unit, judged at once */
    AVPacket *pkt = av_packet_alloc();
    split_t *s = calloc(1, sizeof *s);
    int n_b = 0, n_b_ref = 0, n_idr = 0, n_au = 0;
    for (int i = 0; i <= 40; i++) {
        AVFrame *pic = i < 40 ? make_picture(320, 240, i) : NULL;
        assert_int_equal(avcodec_send_frame(ec, pic), 0);
        av_frame_free(&pic);
        while (avcodec_receive_packet(ec, pkt) == 0) {
            /* The parser's picture type of this access unit (whole packet in). */
            uint8_t *out;
            int out_len;
            av_parser_parse2(parser, pc, &out, &out_len, pkt->data, pkt->size, AV_NOPTS_VALUE, AV_NOPTS_VALUE, 0);
            s->len = 0;
            assert_true(annexb_each(pkt->data, (size_t)pkt->size, split_nal, s) > 0);
            sl_h264_au_info_t ai;
            assert_int_equal(sl_h264_au_info(s->avcc, s->len, 4, &ai), 0);
            assert_int_equal(ai.n_slices, 3);
            assert_int_equal(ai.has_b, parser->pict_type == AV_PICTURE_TYPE_B);
            assert_int_equal(ai.is_idr, (pkt->flags & AV_PKT_FLAG_KEY) != 0);
            n_au++;
            n_b += ai.has_b;
            n_b_ref += ai.has_b && ai.is_ref;
            n_idr += ai.is_idr;
            if (!ai.has_b)
                assert_true(ai.is_ref); /* x264's I and P frames are references */
        }
    }
    assert_int_equal(n_au, 40);
    assert_true(n_b >= 20);
    assert_true(n_b_ref >= 5 && n_b_ref < n_b); /* pyramid: some B-frames are references */
    assert_true(n_idr >= 2);
    free(s);
    av_packet_free(&pkt);
    av_parser_close(parser);
    avcodec_free_context(&pc);
    avcodec_free_context(&ec);

    /* A non-reference B slice whose first_mb_in_slice (23 leading zero bits,
     * 23 zero info bits) needs two emulation prevention bytes; slice_type
     * ue(6) = 00111 follows. Read without removing them, it is no B slice. */
    static const uint8_t b_epb[] = {0, 0, 0, 10, 0x01, 0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x03, 0x00, 0x78};
    sl_h264_au_info_t ai;
    assert_int_equal(sl_h264_au_info(b_epb, sizeof b_epb, 4, &ai), 0);
    assert_int_equal(ai.n_slices, 1);
    assert_true(ai.has_b);
    assert_false(ai.is_ref);
    /* SEI + a reference P slice (ue(0) = 1, ue(5) = 00110) with 2-byte lengths. */
    static const uint8_t p_ref[] = {0, 2, 0x06, 0x05, 0, 2, 0x41, 0x98};
    assert_int_equal(sl_h264_au_info(p_ref, sizeof p_ref, 2, &ai), 0);
    assert_int_equal(ai.n_slices, 1);
    assert_false(ai.has_b);
    assert_true(ai.is_ref);
    /* An IDR (ue(0), ue(7) = 0001000) with a 1-byte length. */
    static const uint8_t idr[] = {2, 0x65, 0x88};
    assert_int_equal(sl_h264_au_info(idr, sizeof idr, 1, &ai), 0);
    assert_true(ai.is_idr && ai.is_ref && !ai.has_b);
    /* A length past the end, a bad length size, a truncated length, a slice
     * whose header is cut (not counted), empty input. */
    static const uint8_t over[] = {0, 0, 0, 9, 0x01, 0x80};
    assert_int_equal(sl_h264_au_info(over, sizeof over, 4, &ai), SL_EPROTO);
    assert_int_equal(sl_h264_au_info(idr, sizeof idr, 3, &ai), SL_EPROTO);
    assert_int_equal(sl_h264_au_info(p_ref, 1, 2, &ai), SL_EPROTO);
    static const uint8_t cut[] = {0, 2, 0x01, 0x00};
    assert_int_equal(sl_h264_au_info(cut, sizeof cut, 2, &ai), 0);
    assert_int_equal(ai.n_slices, 0);
    assert_int_equal(sl_h264_au_info(NULL, 0, 4, &ai), 0);
    assert_int_equal(ai.n_slices, 0);
}

static void test_x264_real(void **state)
{
    (void)state;
    const AVCodec *enc = avcodec_find_encoder_by_name("libx264");
    const AVCodec *dec = avcodec_find_decoder(AV_CODEC_ID_H264);
    if (!enc || !dec)
        skip();
    AVCodecContext *ec = avcodec_alloc_context3(enc);
    ec->width = 320;
    ec->height = 240;
    ec->pix_fmt = AV_PIX_FMT_YUV420P;
    ec->time_base = (AVRational){1, 25};
    ec->gop_size = 6;
    ec->max_b_frames = 0;
    ec->thread_count = 1;
    ec->bit_rate = 4000000;
    av_opt_set(ec->priv_data, "preset", "ultrafast", 0);
    av_opt_set(ec->priv_data, "tune", "zerolatency", 0);
    av_opt_set(ec->priv_data, "x264-params", "slices=3:keyint=6:scenecut=0", 0);
    assert_int_equal(avcodec_open2(ec, enc, NULL), 0);

    const int n_frames = 14;
    AVPacket *pkt = av_packet_alloc();
    split_t *s = calloc(1, sizeof *s);
    got_t *g = calloc(1, sizeof *g);
    sl_h264_depack_t *d = sl_h264_depack_new(got_config, got_frame, g);
    uint8_t rec[600];
    size_t rec_len = 0;
    uint16_t seq = 65000; /* wraps */
    int n_pkts = 0, n_keys = 0, max_payload = 0;
    static uint8_t sent[64][1 << 17];
    static size_t sent_len[64];
    for (int i = 0; i <= n_frames; i++) {
        AVFrame *pic = i < n_frames ? make_picture(320, 240, i) : NULL;
        assert_int_equal(avcodec_send_frame(ec, pic), 0);
        av_frame_free(&pic);
        while (avcodec_receive_packet(ec, pkt) == 0) {
            s->len = 0;
            assert_true(annexb_each(pkt->data, (size_t)pkt->size, split_nal, s) > 0);
            int key = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
            if (key) {
                assert_true(s->sps_len && s->pps_len);
                int r = sl_h264_avcc_record(s->sps, s->sps_len, s->pps, s->pps_len, rec, sizeof rec);
                assert_true(r > 0);
                rec_len = (size_t)r;
                n_keys++;
            }
            /* As RTMP would carry it: SPS/PPS in the config record only. */
            sl_rtp_payloads_t p;
            assert_int_equal(sl_h264_packetize(s->avcc, s->len, 4, rec, rec_len, key, 1200, &p), 0);
            for (uint32_t k = 0; k < p.n; k++)
                if (p.pkts[k].len > max_payload)
                    max_payload = p.pkts[k].len;
            n_pkts += (int)p.n;
            int idx = n_pkts > 0 ? g->n : 0;
            assert_true(idx < 64);
            memcpy(sent[idx], s->avcc, s->len);
            sent_len[idx] = s->len;
            assert_int_equal(push_all(d, 0, &p, &seq, (uint32_t)pkt->pts * 3600), 0);
            sl_rtp_payloads_release(&p);
            av_packet_unref(pkt);
            /* Each access unit comes out as soon as its marker packet is in. */
            assert_int_equal(g->n, idx + 1);
            assert_int_equal(g->keys[idx], key);
            size_t off = 0;
            if (key) /* SPS and PPS from the STAP-A lead the keyframe */
                off = 4 + s->sps_len + 4 + s->pps_len;
            assert_int_equal(g->lens[idx], off + sent_len[idx]);
            assert_memory_equal(g->frames[idx] + off, sent[idx], sent_len[idx]);
        }
    }
    assert_int_equal(g->n, n_frames);
    assert_true(n_keys >= 3);
    assert_true(n_pkts > 3 * n_frames); /* FU-As were exercised */
    assert_true(max_payload <= 1200);
    assert_int_equal(g->n_cfg, 1);
    assert_int_equal(g->cfg_len, rec_len);
    assert_memory_equal(g->cfg, rec, rec_len);
    /* libavcodec decodes every access unit, with the depacketizer's record as avcC. */
    assert_int_equal(decode_all(dec, g->cfg, g->cfg_len, g), n_frames);
    sl_h264_depack_free(d);
    got_clear(g);
    free(g);
    free(s);
    av_packet_free(&pkt);
    avcodec_free_context(&ec);
}

static void test_vpx_real(void **state)
{
    (void)state;
    const AVCodec *enc = avcodec_find_encoder_by_name("libvpx");
    const AVCodec *dec = avcodec_find_decoder(AV_CODEC_ID_VP8);
    if (!enc || !dec)
        skip();
    AVCodecContext *ec = avcodec_alloc_context3(enc);
    ec->width = 320;
    ec->height = 240;
    ec->pix_fmt = AV_PIX_FMT_YUV420P;
    ec->time_base = (AVRational){1, 25};
    ec->gop_size = 5;
    ec->thread_count = 1;
    ec->bit_rate = 3000000;
    av_opt_set(ec->priv_data, "deadline", "realtime", 0);
    av_opt_set_int(ec->priv_data, "cpu-used", 8, 0);
    av_opt_set_int(ec->priv_data, "lag-in-frames", 0, 0);
    assert_int_equal(avcodec_open2(ec, enc, NULL), 0);
    const int n_frames = 10;
    AVPacket *pkt = av_packet_alloc();
    got_t *g = calloc(1, sizeof *g);
    sl_vp8_depack_t *d = sl_vp8_depack_new(got_frame, g);
    uint16_t seq = 1;
    int n_pkts = 0;
    for (int i = 0; i <= n_frames; i++) {
        AVFrame *pic = i < n_frames ? make_picture(320, 240, i) : NULL;
        assert_int_equal(avcodec_send_frame(ec, pic), 0);
        av_frame_free(&pic);
        while (avcodec_receive_packet(ec, pkt) == 0) {
            sl_rtp_payloads_t p;
            assert_int_equal(sl_vp8_packetize(pkt->data, (size_t)pkt->size, 1000, &p), 0);
            n_pkts += (int)p.n;
            int idx = g->n;
            assert_int_equal(push_all(d, 1, &p, &seq, (uint32_t)pkt->pts * 3600), 0);
            sl_rtp_payloads_release(&p);
            assert_int_equal(g->n, idx + 1);
            assert_int_equal(g->keys[idx], (pkt->flags & AV_PKT_FLAG_KEY) != 0);
            assert_int_equal(g->lens[idx], (size_t)pkt->size);
            assert_memory_equal(g->frames[idx], pkt->data, (size_t)pkt->size);
            av_packet_unref(pkt);
        }
    }
    assert_int_equal(g->n, n_frames);
    assert_true(n_pkts > n_frames);
    assert_int_equal(decode_all(dec, NULL, 0, g), n_frames);
    sl_vp8_depack_free(d);
    got_clear(g);
    free(g);
    av_packet_free(&pkt);
    avcodec_free_context(&ec);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    if (!sl_alloc_fail_at(0, 0))
        skip(); /* built without fault injection */
    uint8_t rec[64];
    size_t rec_len = make_config(rec, sizeof rec);
    static uint8_t idr[3000], avcc[3010];
    fill_slice(idr, sizeof idr, 0x65, 1);
    size_t alen = put_nal(avcc, idr, sizeof idr);
    /* Fail each allocation in turn: every step reports SL_ENOMEM (or NULL)
     * cleanly, and the leak check in main() proves nothing is left behind. */
    int ok = 0;
    for (uint64_t nth = 1; nth < 40 && !ok; nth++) {
        sl_alloc_fail_at(nth, 0);
        got_t g;
        memset(&g, 0, sizeof g);
        sl_rtp_payloads_t p;
        int rc = sl_h264_packetize(avcc, alen, 4, rec, rec_len, 1, 1200, &p);
        if (rc) {
            assert_int_equal(rc, SL_ENOMEM);
            assert_null(p.buf);
            continue;
        }
        sl_h264_depack_t *d = sl_h264_depack_new(got_config, got_frame, &g);
        if (!d) {
            sl_rtp_payloads_release(&p);
            continue;
        }
        uint16_t seq = 0;
        rc = push_all(d, 0, &p, &seq, 1);
        assert_true(rc == 0 || rc == SL_ENOMEM);
        ok = rc == 0 && g.n == 1;
        if (rc)
            assert_int_equal(g.n, 0);
        sl_h264_depack_free(d);
        sl_rtp_payloads_release(&p);
        got_clear(&g);
    }
    sl_alloc_fail_at(0, 0);
    assert_true(ok); /* enough allocations let it through */
}

int main(void)
{
    av_log_set_level(AV_LOG_WARNING);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hdr_write_parse),
        cmocka_unit_test(test_hdr_csrc_padding_two_byte),
        cmocka_unit_test(test_ext_one_byte_walk),
        cmocka_unit_test(test_h264_config),
        cmocka_unit_test(test_h264_keyframe_roundtrip),
        cmocka_unit_test(test_h264_loss),
        cmocka_unit_test(test_h264_malformed),
        cmocka_unit_test(test_h264_order_is_callers_job),
        cmocka_unit_test(test_h264_caps),
        cmocka_unit_test(test_vp8),
        cmocka_unit_test(test_opus),
        cmocka_unit_test(test_frame_cache),
        cmocka_unit_test(test_x264_real),
        cmocka_unit_test(test_h264_au_info),
        cmocka_unit_test(test_vpx_real),
        cmocka_unit_test(test_alloc_failures),
    };
    int64_t before = sl_alloc_bytes();
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sl_frame_pool_drain();
    if (sl_frame_count() != 0 || sl_alloc_bytes() != before) {
        fprintf(stderr, "leak: %lld frames, %lld bytes\n", (long long)sl_frame_count(),
                (long long)(sl_alloc_bytes() - before));
        return 1;
    }
    return rc;
}
