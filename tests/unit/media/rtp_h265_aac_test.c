/*
 * RTSP's RTP payloads in src/media: H.265 (RFC 7798) packetize ->
 * depacketize round trips (single NAL units, FUs over the MTU, parameter
 * sets from the hvcC before a keyframe, an AP from a sender, loss and
 * need-keyframe, the hvcC written from VPS/SPS/PPS with emulation
 * prevention removed), AAC-hbr (RFC 3640: several AUs in a packet, a
 * fragmented AU, fmtp parsing, malformed headers refused), G.711 and the
 * frame cache for HEVC/AAC/G.711 frames.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "media/flv.h"
#include "media/frame.h"
#include "media/rtp.h"
#include "media/rtp_aac.h"
#include "media/rtp_h265.h"
#include "sluice/errors.h"

static const uint8_t VPS[] = {0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60};
/* An SPS whose profile_tier_level holds 00 00 03 sequences (emulation prevention). */
static const uint8_t SPS[] = {0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00,
                              0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x5d, 0xa0, 0x02, 0x80};
static const uint8_t PPS[] = {0x44, 0x01, 0xc1, 0x72, 0xb4};

typedef struct {
    uint8_t au[70000];
    size_t len;
    int frames, configs, key;
    uint8_t rec[512];
    size_t rec_len;
} got_t;

static void on_cfg(void *ud, const uint8_t *rec, size_t len)
{
    got_t *g = ud;
    g->configs++;
    memcpy(g->rec, rec, len);
    g->rec_len = len;
}

static void on_frame(void *ud, uint32_t ts, const uint8_t *au, size_t len, int key)
{
    got_t *g = ud;
    (void)ts;
    g->frames++;
    g->key = key;
    memcpy(g->au, au, len);
    g->len = len;
}

static size_t put_nal(uint8_t *out, const uint8_t *nal, size_t n)
{
    out[0] = (uint8_t)(n >> 24);
    out[1] = (uint8_t)(n >> 16);
    out[2] = (uint8_t)(n >> 8);
    out[3] = (uint8_t)n;
    memcpy(out + 4, nal, n);
    return 4 + n;
}

static void feed(sl_h265_depack_t *d, const sl_rtp_payloads_t *pl, uint32_t ts)
{
    for (uint32_t i = 0; i < pl->n; i++) {
        sl_rtp_hdr_t h = {.marker = pl->pkts[i].marker, .ts = ts, .payload = pl->buf->data + pl->pkts[i].off,
                          .payload_len = pl->pkts[i].len};
        assert_int_equal(sl_h265_depack_push(d, &h), 0);
    }
}

static void test_hvcc_record(void **state)
{
    (void)state;
    uint8_t rec[256];
    int n = sl_h265_hvcc_record(VPS, sizeof VPS, SPS, sizeof SPS, PPS, sizeof PPS, rec, sizeof rec);
    assert_true(n > 23);
    assert_int_equal(rec[0], 1);
    assert_int_equal(rec[1], 0x01);                 /* Main profile */
    assert_int_equal(rec[2], 0x60);                 /* compatibility flags, no 03 byte inside */
    assert_int_equal(rec[12], 0x5d);                /* level 3.1 after three removed 03 bytes */
    assert_int_equal(sl_h265_config_nal_len(rec, (size_t)n), 4);
    assert_int_equal(rec[22], 3);
    assert_int_equal(sl_h265_hvcc_record(VPS, sizeof VPS, SPS, 10, PPS, sizeof PPS, rec, sizeof rec), SL_EINVAL);
    assert_int_equal(sl_h265_hvcc_record(VPS, sizeof VPS, SPS, sizeof SPS, PPS, sizeof PPS, rec, 30), SL_ETOOBIG);
}

static void test_h265_round_trip(void **state)
{
    (void)state;
    static got_t g;
    memset(&g, 0, sizeof g);
    uint8_t rec[256];
    int rn = sl_h265_hvcc_record(VPS, sizeof VPS, SPS, sizeof SPS, PPS, sizeof PPS, rec, sizeof rec);
    /* An IDR (type 19) of 3000 bytes and a small trailing slice: FUs, then a single NAL unit. */
    static uint8_t idr[3000], au[4000];
    idr[0] = 19 << 1;
    idr[1] = 1;
    for (size_t i = 2; i < sizeof idr; i++)
        idr[i] = (uint8_t)(i * 7);
    uint8_t tail[] = {19 << 1, 1, 0x11, 0x22};
    size_t n = put_nal(au, idr, sizeof idr);
    n += put_nal(au + n, tail, sizeof tail);
    sl_rtp_payloads_t pl;
    assert_int_equal(sl_h265_packetize(au, n, 4, rec, (size_t)rn, 1, 1200, &pl), 0);
    /* VPS, SPS, PPS singles, three FUs, one single. */
    assert_int_equal(pl.n, 7);
    assert_int_equal((pl.buf->data[pl.pkts[3].off] >> 1) & 0x3F, 49);
    assert_int_equal(pl.buf->data[pl.pkts[3].off + 2], 0x80 | 19);
    assert_int_equal(pl.buf->data[pl.pkts[5].off + 2], 0x40 | 19);
    assert_true(pl.pkts[6].marker && !pl.pkts[5].marker);
    sl_h265_depack_t *d = sl_h265_depack_new(on_cfg, on_frame, &g);
    feed(d, &pl, 1000);
    assert_int_equal(g.frames, 1);
    assert_int_equal(g.configs, 1);
    assert_true(g.key);
    assert_int_equal(g.rec_len, (size_t)rn);
    assert_memory_equal(g.rec, rec, (size_t)rn);
    /* The frame holds the parameter sets and then the AU as sent. */
    assert_int_equal(g.len, 3 * 4 + sizeof VPS + sizeof SPS + sizeof PPS + n);
    assert_memory_equal(g.au + g.len - n, au, n);
    /* A loss drops the next AU and waits for an IRAP picture. */
    sl_h265_depack_loss(d);
    assert_true(sl_h265_depack_need_keyframe(d));
    uint8_t p_nal[] = {1 << 1, 1, 0xaa}, p_au[16];
    size_t pn = put_nal(p_au, p_nal, sizeof p_nal);
    sl_rtp_payloads_t pp;
    assert_int_equal(sl_h265_packetize(p_au, pn, 4, rec, (size_t)rn, 0, 1200, &pp), 0);
    feed(d, &pp, 2000);
    assert_int_equal(g.frames, 1);
    feed(d, &pl, 3000);
    assert_int_equal(g.frames, 2);
    feed(d, &pp, 4000);
    assert_int_equal(g.frames, 3);
    assert_false(g.key);
    sl_rtp_payloads_release(&pp);
    sl_rtp_payloads_release(&pl);
    sl_h265_depack_free(d);
}

static void test_h265_ap_and_sdp_sets(void **state)
{
    (void)state;
    static got_t g;
    memset(&g, 0, sizeof g);
    sl_h265_depack_t *d = sl_h265_depack_new(on_cfg, on_frame, &g);
    /* Parameter sets from the SDP only, then an AP of two slices of an IRAP picture. */
    sl_h265_depack_set_ps(d, VPS, sizeof VPS, SPS, sizeof SPS, PPS, sizeof PPS);
    uint8_t ap[] = {48 << 1, 1, 0, 3, 20 << 1, 1, 0xa1, 0, 3, 20 << 1, 1, 0xa2};
    sl_rtp_hdr_t h = {.marker = 1, .ts = 9, .payload = ap, .payload_len = sizeof ap};
    assert_int_equal(sl_h265_depack_push(d, &h), 0);
    assert_int_equal(g.frames, 1);
    assert_int_equal(g.configs, 1);
    assert_int_equal(g.len, 14);
    /* Malformed: an AP length past the end, PACI, an FU continuation without a start. */
    uint8_t bad_ap[] = {48 << 1, 1, 0, 9, 1, 1};
    uint8_t paci[] = {50 << 1, 1, 0, 0};
    uint8_t fu_mid[] = {49 << 1, 1, 1, 0xaa};
    h.payload = bad_ap;
    h.payload_len = sizeof bad_ap;
    assert_int_equal(sl_h265_depack_push(d, &h), SL_EPROTO);
    h.payload = paci;
    h.payload_len = sizeof paci;
    assert_int_equal(sl_h265_depack_push(d, &h), SL_EPROTO);
    h.payload = fu_mid;
    h.payload_len = sizeof fu_mid;
    assert_int_equal(sl_h265_depack_push(d, &h), SL_EPROTO);
    assert_int_equal(g.frames, 1);
    sl_h265_depack_free(d);
}

typedef struct {
    uint8_t au[SL_AAC_MAX_AU];
    size_t len[8];
    uint32_t ts[8];
    int n;
} aac_got_t;

static void on_aac(void *ud, uint32_t ts, const uint8_t *au, size_t len)
{
    aac_got_t *g = ud;
    if (g->n < 8) {
        g->len[g->n] = len;
        g->ts[g->n] = ts;
        memcpy(g->au, au, len);
    }
    g->n++;
}

static void test_aac(void **state)
{
    (void)state;
    sl_aac_fmtp_t f;
    assert_int_equal(sl_aac_fmtp_parse("streamtype=5; profile-level-id=1; mode=AAC-hbr; sizelength=13; "
                                       "indexlength=3; indexdeltalength=3; config=1210", &f), 0);
    assert_int_equal(f.sizelength, 13);
    assert_int_equal(f.config_len, 2);
    assert_int_equal(f.config[0], 0x12);
    uint32_t rate;
    int ch;
    assert_int_equal(sl_aac_asc_info(f.config, f.config_len, &rate, &ch), 0);
    assert_int_equal(rate, 44100);
    assert_int_equal(ch, 2);
    assert_int_equal(sl_aac_fmtp_parse("mode=CELP-cbr;sizelength=6", &f), SL_EPROTO);
    assert_int_equal(sl_aac_fmtp_parse("mode=AAC-hbr", &f), SL_EPROTO);
    assert_int_equal(sl_aac_fmtp_parse("sizelength=13;config=1", &f), SL_EPROTO);
    assert_int_equal(sl_aac_fmtp_parse("sizelength=13;config=1210", &f), 0);
    assert_int_equal(f.indexlength, 0);
    assert_int_equal(sl_aac_fmtp_parse("sizelength=13;indexlength=3;indexdeltalength=3;config=1210", &f), 0);

    static aac_got_t g;
    memset(&g, 0, sizeof g);
    sl_aac_depack_t *d = sl_aac_depack_new(&f, 1024, on_aac, &g);
    /* Two AUs of 4 and 3 bytes in one packet (headers 2 x 16 bits). */
    uint8_t two[] = {0, 32, 0, 4 << 3, 0, 3 << 3, 1, 2, 3, 4, 5, 6, 7};
    sl_rtp_hdr_t h = {.marker = 1, .ts = 5000, .payload = two, .payload_len = sizeof two};
    assert_int_equal(sl_aac_depack_push(d, &h), 0);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.ts[1], 5000 + 1024);
    assert_int_equal(g.len[1], 3);
    /* Sizes larger than the data, headers past the payload. */
    uint8_t bad[] = {0, 32, 0, 30 << 3, 0, 3 << 3, 1, 2};
    h.payload = bad;
    h.payload_len = sizeof bad;
    assert_int_equal(sl_aac_depack_push(d, &h), SL_EPROTO);
    uint8_t bad2[] = {0, 200, 0};
    h.payload = bad2;
    h.payload_len = sizeof bad2;
    assert_int_equal(sl_aac_depack_push(d, &h), SL_EPROTO);
    assert_int_equal(g.n, 2);
    /* Round trip of a 3000-byte AU over a 1200-byte MTU: three fragments, marker on the last. */
    static uint8_t big[3000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)i;
    sl_rtp_payloads_t pl;
    assert_int_equal(sl_aac_packetize(big, sizeof big, 1200, &pl), 0);
    assert_int_equal(pl.n, 3);
    assert_true(pl.pkts[2].marker && !pl.pkts[0].marker);
    for (uint32_t i = 0; i < pl.n; i++) {
        sl_rtp_hdr_t p = {.marker = pl.pkts[i].marker, .ts = 7, .payload = pl.buf->data + pl.pkts[i].off,
                          .payload_len = pl.pkts[i].len};
        assert_int_equal(sl_aac_depack_push(d, &p), 0);
    }
    assert_int_equal(g.n, 3);
    assert_int_equal(g.len[2], sizeof big);
    assert_memory_equal(g.au, big, sizeof big);
    sl_rtp_payloads_release(&pl);
    assert_int_equal(sl_aac_packetize(big, 9000, 1200, &pl), SL_ETOOBIG);
    sl_aac_depack_free(d);
}

static void test_frame_cache_audio_hevc(void **state)
{
    (void)state;
    uint8_t au[200];
    memset(au, 0x5a, sizeof au);
    sl_frame_t *f;
    assert_int_equal(sl_frame_new(SL_FLV_AUDIO, 0, sl_aac_flv_frame_body(au, sizeof au), &f), 0);
    assert_int_equal(f->codec, SL_CODEC_AAC);
    sl_rtp_payloads_t a, b;
    assert_int_equal(sl_frame_rtp_payloads(f, 0, NULL, 0, &a), 0);
    assert_int_equal(sl_frame_rtp_payloads(f, 0, NULL, 0, &b), 0);
    assert_ptr_equal(a.buf, b.buf); /* built once, shared */
    assert_int_equal(a.pkts[0].len, 4 + sizeof au);
    sl_frame_unref(f);
    assert_int_equal(sl_frame_new(SL_FLV_AUDIO, 0, sl_g711_flv_frame_body(1, au, 160), &f), 0);
    assert_int_equal(f->codec, SL_CODEC_FLV_AUDIO(7));
    assert_int_equal(sl_frame_rtp_payloads(f, 0, NULL, 0, &a), 0);
    assert_int_equal(a.pkts[0].len, 160);
    sl_frame_unref(f);
    uint8_t hau[16];
    uint8_t nal[] = {1 << 1, 1, 0xaa, 0xbb};
    size_t n = put_nal(hau, nal, sizeof nal);
    assert_int_equal(sl_frame_new(SL_FLV_VIDEO, 0, sl_h265_flv_frame_body(hau, n, 0, 0), &f), 0);
    assert_int_equal(f->codec, SL_CODEC_HEVC);
    assert_int_equal(sl_frame_rtp_payloads(f, 0, NULL, 0, &a), 0);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.pkts[0].len, sizeof nal);
    sl_frame_unref(f);
    uint8_t rec[256];
    int rn = sl_h265_hvcc_record(VPS, sizeof VPS, SPS, sizeof SPS, PPS, sizeof PPS, rec, sizeof rec);
    assert_int_equal(sl_frame_new(SL_FLV_VIDEO, 0, sl_h265_flv_config_body(rec, (size_t)rn), &f), 0);
    assert_true(f->flags & SL_FRAME_CONFIG);
    assert_int_equal(f->codec, SL_CODEC_HEVC);
    sl_frame_unref(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hvcc_record),
        cmocka_unit_test(test_h265_round_trip),
        cmocka_unit_test(test_h265_ap_and_sdp_sets),
        cmocka_unit_test(test_aac),
        cmocka_unit_test(test_frame_cache_audio_hevc),
    };
    int64_t before = sl_alloc_bytes();
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sl_frame_pool_drain();
    if (sl_frame_count() != 0 || sl_alloc_bytes() != before)
        return 1;
    return rc;
}
