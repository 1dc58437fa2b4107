/*
 * SRT protocol unit tests (src/proto/srt): the streamid forms and their
 * refusals, the avcC/hvcC builders, the TS demuxer on real ffmpeg output
 * (tests/fuzz/corpus/ts_demux: H.264 + AAC, H.265, Opus), the TS muxer
 * round trip (demuxed frames muxed again and demuxed back), and the
 * thread -> loop queue's drop policy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "media/flv.h"
#include "media/frame.h"
#include "proto/srt/srt_internal.h"
#include "proto/srt/srt_streamid.h"
#include "proto/srt/ts_demux.h"
#include "proto/srt/ts_mux.h"
#include "sluice/errors.h"

static void test_streamid_forms(void **state)
{
    (void)state;
    sl_srt_streamid_t s;
    const char *why;
#define P(str) sl_srt_streamid_parse(str, strlen(str), &s, &why)
    assert_int_equal(P("publish:live/s1"), 0);
    assert_int_equal(s.mode, SL_SRT_MODE_PUBLISH);
    assert_string_equal(s.scope, "live");
    assert_string_equal(s.stream, "s1");
    assert_false(s.had_creds);
    assert_int_equal(P("read:live/room1/s1"), 0);
    assert_int_equal(s.mode, SL_SRT_MODE_READ);
    assert_string_equal(s.scope, "live/room1");
    assert_string_equal(s.path, "live/room1/s1");
    assert_int_equal(P("live/s2"), 0);
    assert_int_equal(s.mode, SL_SRT_MODE_READ);
    assert_int_equal(P("publish:live/s1?username=alice&password=p%20w&token=t1"), 0);
    assert_string_equal(s.user, "alice");
    assert_string_equal(s.pass, "p w");
    assert_string_equal(s.token, "t1");
    assert_string_equal(s.stream, "s1");
    assert_true(s.had_creds);
    /* URL-encoded as ffmpeg passes it on */
    assert_int_equal(P("publish:live/s1%3Fusername%3Dbob%26password%3Dx"), 0);
    assert_string_equal(s.user, "bob");
    assert_string_equal(s.pass, "x");
    assert_string_equal(s.stream, "s1");
    assert_int_equal(P("#!::r=live/s1,m=publish,u=alice,s=secret"), 0);
    assert_int_equal(s.mode, SL_SRT_MODE_PUBLISH);
    assert_string_equal(s.user, "alice");
    assert_string_equal(s.pass, "secret");
    assert_string_equal(s.token, "");
    assert_int_equal(P("#!::r=live/s1,t=jwt.x.y"), 0);
    assert_int_equal(s.mode, SL_SRT_MODE_READ);
    assert_string_equal(s.token, "jwt.x.y");
    /* a bare secret is a token */
    assert_int_equal(P("#!::r=live/s1,m=request,s=abc,h=host"), 0);
    assert_string_equal(s.token, "abc");
    assert_string_equal(s.pass, "");
    /* refusals */
    assert_int_equal(P(""), SL_EINVAL);
    assert_int_equal(P("publish:live"), SL_EINVAL);
    assert_int_equal(P("publish:/s1"), SL_EINVAL);
    assert_int_equal(P("publish:live/"), SL_EINVAL);
    assert_int_equal(P("publish:live/../x"), SL_EINVAL);
    assert_int_equal(P("#!::m=publish"), SL_EINVAL);
    assert_int_equal(P("#!::r=live/s1,m=bogus"), SL_EINVAL);
    assert_int_equal(P("#!::r=live/s1,novalue"), SL_EINVAL);
    assert_int_equal(P("publish:live/s1\x01"), SL_EINVAL);
    assert_int_equal(P("publish:live/s1?password=a%00b"), SL_EINVAL);
    assert_non_null(why);
    char big[700];
    memset(big, 'a', sizeof big);
    memcpy(big, "publish:live/", 13);
    assert_int_equal(sl_srt_streamid_parse(big, sizeof big, &s, &why), SL_ETOOBIG);
#undef P
}

static void test_avcc(void **state)
{
    (void)state;
    const uint8_t sps[] = {0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02};
    const uint8_t pps[] = {0x68, 0xce, 0x3c, 0x80};
    uint8_t out[64];
    size_t n = sl_ts_avcc_build(sps, sizeof sps, pps, sizeof pps, out, sizeof out);
    assert_int_equal(n, 11 + sizeof sps + sizeof pps);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 0x42);
    assert_int_equal(out[3], 0x1e);
    assert_int_equal(out[4], 0xff);
    assert_int_equal(out[5], 0xe1);
    assert_memory_equal(out + 8, sps, sizeof sps);
    assert_int_equal(sl_ts_avcc_build(sps, sizeof sps, pps, sizeof pps, out, 10), 0);
    assert_int_equal(sl_ts_avcc_build(sps, 2, pps, sizeof pps, out, sizeof out), 0);
}

typedef struct {
    const uint8_t *p;
    size_t n, off;
    int video, audio, vconfig, aconfig, keys;
    uint32_t vcodec, acodec;
    sl_frame_t *frames[512];
    int n_frames;
} demux_ctx_t;

static int rd(void *ud, uint8_t *buf, int size)
{
    demux_ctx_t *c = ud;
    size_t k = c->n - c->off < 1316 ? c->n - c->off : 1316;
    if ((size_t)size < k)
        k = (size_t)size;
    memcpy(buf, c->p + c->off, k);
    c->off += k;
    return (int)k;
}

static void on_frame(void *ud, uint8_t kind, int64_t dts, sl_buf_t *body)
{
    demux_ctx_t *c = ud;
    sl_frame_t *f;
    assert_int_equal(sl_frame_new(kind, (uint32_t)dts, body, &f), 0);
    if (kind == SL_FLV_VIDEO) {
        c->video++;
        c->vcodec = f->codec;
        if (f->flags & SL_FRAME_CONFIG)
            c->vconfig++;
        else if (f->flags & SL_FRAME_KEY)
            c->keys++;
        if (!(f->flags & SL_FRAME_CONFIG))
            assert_true(c->vconfig > 0); /* the config comes first */
    } else {
        c->audio++;
        c->acodec = f->codec;
        if (f->flags & SL_FRAME_CONFIG)
            c->aconfig++;
    }
    if (c->n_frames < 512)
        c->frames[c->n_frames++] = f;
    else
        sl_frame_unref(f);
}

static uint8_t *load(const char *name, size_t *n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/ts_demux/%s", SL_SOURCE_DIR, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *b = malloc(1 << 20);
    *n = fread(b, 1, 1 << 20, f);
    fclose(f);
    return b;
}

static void demux_file(const char *name, demux_ctx_t *c)
{
    size_t n;
    uint8_t *b = load(name, &n);
    memset(c, 0, sizeof *c);
    c->p = b + 1; /* the fuzzer's piece-size byte */
    c->n = n - 1;
    sl_ts_demux_t *d = sl_ts_demux_new(rd, on_frame, c, 1 << 20);
    assert_non_null(d);
    assert_int_equal(sl_ts_demux_run(d), 0);
    sl_ts_demux_free(d);
    free(b);
}

static void drop_frames(demux_ctx_t *c)
{
    for (int i = 0; i < c->n_frames; i++)
        sl_frame_unref(c->frames[i]);
    c->n_frames = 0;
}

static void test_demux_h264_aac_and_mux_round_trip(void **state)
{
    (void)state;
    demux_ctx_t c;
    demux_file("h264_aac", &c);
    assert_int_equal(c.vcodec, SL_CODEC_AVC);
    assert_int_equal(c.acodec, SL_CODEC_AAC);
    assert_int_equal(c.vconfig, 1);
    assert_int_equal(c.aconfig, 1);
    assert_true(c.keys >= 1);
    assert_true(c.video >= 5);
    assert_true(c.audio >= 10);
    /* Mux what came out, then demux that again: same codecs and frames. */
    sl_frame_t *vcfg = NULL, *acfg = NULL;
    for (int i = 0; i < c.n_frames; i++)
        if (c.frames[i]->flags & SL_FRAME_CONFIG) {
            if (c.frames[i]->kind == SL_FLV_VIDEO)
                vcfg = c.frames[i];
            else
                acfg = c.frames[i];
        }
    sl_ts_mux_t *m;
    assert_int_equal(sl_ts_mux_new(vcfg, acfg, &m), 0);
    assert_true(sl_ts_mux_matches(m, vcfg, acfg));
    assert_false(sl_ts_mux_matches(m, vcfg, NULL));
    size_t cap = 1 << 20, len = 0;
    uint8_t *ts = malloc(cap);
    ts[len++] = 0; /* piece-size byte, as in the corpus files */
    for (int i = 0; i < c.n_frames; i++) {
        assert_int_equal(sl_ts_mux_write(m, c.frames[i]), 0);
        size_t n;
        const uint8_t *p = sl_ts_mux_take(m, &n);
        assert_int_equal(n % 188, 0);
        assert_true(len + n <= cap);
        if (n)
            memcpy(ts + len, p, n);
        len += n;
    }
    sl_ts_mux_free(m);
    int video = c.video, audio = c.audio;
    drop_frames(&c);
    demux_ctx_t c2;
    memset(&c2, 0, sizeof c2);
    c2.p = ts + 1;
    c2.n = len - 1;
    sl_ts_demux_t *d = sl_ts_demux_new(rd, on_frame, &c2, 1 << 20);
    assert_int_equal(sl_ts_demux_run(d), 0);
    sl_ts_demux_free(d);
    assert_int_equal(c2.vcodec, SL_CODEC_AVC);
    assert_int_equal(c2.acodec, SL_CODEC_AAC);
    /* the muxer holds no frame back; the demuxer's parser may keep the last one */
    assert_true(c2.video >= video - 1 && c2.video <= video);
    assert_true(c2.audio >= audio - 1 && c2.audio <= audio);
    drop_frames(&c2);
    free(ts);
}

static void test_demux_hevc_opus(void **state)
{
    (void)state;
    demux_ctx_t c;
    demux_file("hevc", &c);
    assert_int_equal(c.vcodec, SL_CODEC_HEVC);
    assert_int_equal(c.vconfig, 1);
    assert_true(c.keys >= 1);
    /* the hvcC: version 1, three arrays VPS/SPS/PPS */
    const sl_frame_t *cfg = c.frames[0];
    assert_true(cfg->flags & SL_FRAME_CONFIG);
    const uint8_t *h = cfg->body->data + cfg->data_off;
    assert_int_equal(h[0], 1);
    assert_int_equal(h[22], 3);
    assert_int_equal(h[23] & 0x3f, 32);
    drop_frames(&c);
    demux_file("opus", &c);
    assert_int_equal(c.acodec, SL_CODEC_OPUS);
    assert_int_equal(c.aconfig, 1);
    assert_true(c.audio > 5);
    drop_frames(&c);
}

static void test_not_ts(void **state)
{
    (void)state;
    uint8_t junk[4000];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 7);
    demux_ctx_t c;
    memset(&c, 0, sizeof c);
    c.p = junk;
    c.n = sizeof junk;
    sl_ts_demux_t *d = sl_ts_demux_new(rd, on_frame, &c, 1 << 20);
    sl_ts_demux_run(d);
    sl_ts_demux_free(d);
    assert_int_equal(c.n_frames, 0);
}

static sl_buf_t *body(const uint8_t *b, size_t n)
{
    sl_buf_t *x = sl_buf_new(n);
    memcpy(x->data, b, n);
    x->len = n;
    return x;
}

static void test_queue_drops_to_keyframe(void **state)
{
    (void)state;
    sl__srt_q_t q;
    assert_int_equal(sl__srt_q_init(&q, 100), 0);
    const uint8_t cfg[] = {0x17, 0x00, 0, 0, 0, 1, 2, 3};
    uint8_t inter[60] = {0x27, 0x01}, key[60] = {0x17, 0x01};
    assert_int_equal(sl__srt_q_push(&q, SL_FLV_VIDEO, 0, body(cfg, sizeof cfg)), 1);
    assert_int_equal(sl__srt_q_push(&q, SL_FLV_VIDEO, 0, body(key, sizeof key)), 1);
    assert_int_equal(sl__srt_q_push(&q, SL_FLV_VIDEO, 40, body(inter, sizeof inter)), 0); /* over budget */
    sl_list_t got;
    sl_list_init(&got);
    sl__srt_q_take(&q, &got);
    sl__srt_q_free_list(&got);
    /* room again, but video waits for a keyframe; configs always pass */
    assert_int_equal(sl__srt_q_push(&q, SL_FLV_VIDEO, 80, body(inter, sizeof inter)), 0);
    assert_int_equal(sl__srt_q_push(&q, SL_FLV_VIDEO, 80, body(cfg, sizeof cfg)), 1);
    assert_int_equal(sl__srt_q_push(&q, SL_FLV_VIDEO, 120, body(key, sizeof key)), 1);
    assert_int_equal(q.dropped, 2);
    sl__srt_q_cleanup(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_streamid_forms),
        cmocka_unit_test(test_avcc),
        cmocka_unit_test(test_demux_h264_aac_and_mux_round_trip),
        cmocka_unit_test(test_demux_hevc_opus),
        cmocka_unit_test(test_not_ts),
        cmocka_unit_test(test_queue_drops_to_keyframe),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sl_frame_pool_drain();
    return rc;
}
