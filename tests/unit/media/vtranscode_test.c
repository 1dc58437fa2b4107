/*
 * Video transcoder tests: 2 s of a moving synthetic picture (320x240,
 * 30 fps) is encoded in-process with libx264 (keyint 30, two B-frames, so
 * pts != dts) into FLV AVC bodies, pushed through a two-variant ladder
 * (160x120 and 96x72 at 15 fps) on a real uv loop, and every output is
 * decoded again: sizes, counts, a sequence header first, keyframes at the
 * source keyframes' exact dts and pts, monotonic dts, no B-frames. An H.265
 * source (libx265) makes H.264 variants the same way. Also: a
 * hostile SPS (16384x16384) is refused before any picture is allocated; an
 * overloaded queue skips to the next keyframe and counts; free while busy
 * and inside the callback are clean; bad arguments; the Annex B helpers.
 * Waits poll the counters with a deadline: no sleeps.
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
#include "media/avpar.h"
#include "media/rtp_h265.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LSAN_OFF() __lsan_disable() /* libx265 keeps some of its allocations past close */
#define LSAN_ON() __lsan_enable()
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/lsan_interface.h>
#define LSAN_OFF() __lsan_disable()
#define LSAN_ON() __lsan_enable()
#endif
#endif
#ifndef LSAN_OFF
#define LSAN_OFF() ((void)0)
#define LSAN_ON() ((void)0)
#endif
#include "media/vtranscode.h"
#include "sluice/errors.h"

#define W 320
#define H 240
#define FPS 30
#define N_FRAMES 60
#define MAX_OUT 512
#define DEADLINE_MS 10000

typedef struct {
    sl_frame_t *f[MAX_OUT];
    int n;
} fset_t;

static void fset_clear(fset_t *s)
{
    for (int i = 0; i < s->n; i++)
        sl_frame_unref(s->f[i]);
    s->n = 0;
}

static sl_frame_t *mk_video(int is_config, int is_key, int32_t cts, const uint8_t *p, size_t n,
                            uint32_t dts)
{
    uint8_t hdr[SL_AVPAR_TAG_HEADER_MAX];
    size_t h = sl_avpar_flv_header(SL_CODEC_AVC, is_config, is_key, cts, hdr);
    sl_buf_t *b = sl_buf_new(h + n);
    assert_non_null(b);
    memcpy(b->data, hdr, h);
    memcpy(b->data + h, p, n);
    b->len = (uint32_t)(h + n);
    sl_frame_t *f = NULL;
    assert_int_equal(sl_frame_new(SL_FLV_VIDEO, dts, b, &f), 0);
    return f;
}

/* Encodes the source: a sequence header, then N_FRAMES coded frames (decode order). */
static void make_source(fset_t *out, uint32_t key_dts[4], uint32_t key_pts[4], int *n_keys)
{
    const AVCodec *c = avcodec_find_encoder_by_name("libx264");
    assert_non_null(c);
    AVCodecContext *ctx = avcodec_alloc_context3(c);
    ctx->width = W;
    ctx->height = H;
    ctx->pix_fmt = AV_PIX_FMT_YUV420P;
    ctx->time_base = (AVRational){1, 1000};
    ctx->framerate = (AVRational){FPS, 1};
    ctx->gop_size = 30;
    ctx->max_b_frames = 2;
    ctx->bit_rate = 300000;
    ctx->thread_count = 1;
    ctx->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    AVDictionary *o = NULL;
    av_dict_set(&o, "preset", "ultrafast", 0);
    av_dict_set(&o, "x264-params", "bframes=2:scenecut=0:keyint=30:min-keyint=30", 0);
    assert_int_equal(avcodec_open2(ctx, c, &o), 0);
    av_dict_free(&o);
    uint8_t *avcc = NULL;
    size_t avcc_len = 0;
    assert_int_equal(sl__vt_make_avcc(ctx->extradata, (size_t)ctx->extradata_size, &avcc, &avcc_len), 0);
    out->f[out->n++] = mk_video(1, 1, 0, avcc, avcc_len, 0);
    sl_free(avcc);
    AVFrame *fr = av_frame_alloc();
    fr->format = AV_PIX_FMT_YUV420P;
    fr->width = W;
    fr->height = H;
    assert_int_equal(av_frame_get_buffer(fr, 0), 0);
    AVPacket *pkt = av_packet_alloc();
    *n_keys = 0;
    /* A B-frame encoder's first dts is negative: the stream is shifted so it starts at 0. */
    int64_t shift = -1;
    for (int i = 0; i <= N_FRAMES; i++) {
        if (i < N_FRAMES) {
            av_frame_make_writable(fr);
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    fr->data[0][y * fr->linesize[0] + x] = (uint8_t)(x + y + i * 4);
            memset(fr->data[1], 128, (size_t)fr->linesize[1] * H / 2);
            memset(fr->data[2], (uint8_t)(64 + i), (size_t)fr->linesize[2] * H / 2);
            fr->pts = (int64_t)i * 1000 / FPS;
            assert_int_equal(avcodec_send_frame(ctx, fr), 0);
        } else {
            avcodec_send_frame(ctx, NULL);
        }
        while (avcodec_receive_packet(ctx, pkt) == 0) {
            if (shift < 0)
                shift = -pkt->dts > 0 ? -pkt->dts : 0;
            size_t n = sl__vt_to_avcc(pkt->data, (size_t)pkt->size, NULL);
            uint8_t *b = malloc(n);
            sl__vt_to_avcc(pkt->data, (size_t)pkt->size, b);
            int key = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
            uint32_t dts = (uint32_t)(pkt->dts + shift);
            int32_t cts = (int32_t)(pkt->pts - pkt->dts);
            if (key && *n_keys < 4) {
                key_dts[*n_keys] = dts;
                key_pts[*n_keys] = dts + (uint32_t)cts;
                (*n_keys)++;
            }
            assert_true(out->n < MAX_OUT);
            out->f[out->n++] = mk_video(0, key, cts, b, n, dts);
            free(b);
            av_packet_unref(pkt);
        }
    }
    av_packet_free(&pkt);
    av_frame_free(&fr);
    avcodec_free_context(&ctx);
}

/* Finds the first NAL of HEVC type `type` in an Annex B block (4-byte start codes or 3). */
static const uint8_t *find_hevc_nal(const uint8_t *p, size_t n, int type, size_t *len)
{
    for (size_t i = 0; i + 3 < n; i++) {
        if (!(p[i] == 0 && p[i + 1] == 0 && p[i + 2] == 1))
            continue;
        size_t s = i + 3, e = s;
        while (e + 3 <= n && !(p[e] == 0 && p[e + 1] == 0 && (p[e + 2] == 1 || p[e + 2] == 0)))
            e++;
        if (e + 3 > n)
            e = n;
        if (((p[s] >> 1) & 0x3f) == type) {
            *len = e - s;
            return p + s;
        }
    }
    return NULL;
}

/* An H.265 source (libx265, no B-frames): its hvcC, then N_FRAMES / 2 coded frames. */
static int make_hevc_source(fset_t *out)
{
    const AVCodec *c = avcodec_find_encoder_by_name("libx265");
    if (!c)
        return 0;
    LSAN_OFF();
    AVCodecContext *ctx = avcodec_alloc_context3(c);
    ctx->width = W;
    ctx->height = H;
    ctx->pix_fmt = AV_PIX_FMT_YUV420P;
    ctx->time_base = (AVRational){1, 1000};
    ctx->framerate = (AVRational){FPS, 1};
    ctx->bit_rate = 300000;
    ctx->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    AVDictionary *o = NULL;
    av_dict_set(&o, "preset", "ultrafast", 0);
    av_dict_set(&o, "x265-params", "log-level=none:bframes=0:keyint=15:min-keyint=15:scenecut=0:pools=1:frame-threads=1", 0);
    assert_int_equal(avcodec_open2(ctx, c, &o), 0);
    av_dict_free(&o);
    size_t vl = 0, sl = 0, pl = 0;
    const uint8_t *vps = find_hevc_nal(ctx->extradata, (size_t)ctx->extradata_size, 32, &vl);
    const uint8_t *sps = find_hevc_nal(ctx->extradata, (size_t)ctx->extradata_size, 33, &sl);
    const uint8_t *pps = find_hevc_nal(ctx->extradata, (size_t)ctx->extradata_size, 34, &pl);
    assert_non_null(vps);
    assert_non_null(sps);
    assert_non_null(pps);
    uint8_t hvcc[SL_H265_MAX_RECORD];
    int hl = sl_h265_hvcc_record(vps, vl, sps, sl, pps, pl, hvcc, sizeof hvcc);
    assert_true(hl > 0);
    uint8_t hdr[SL_AVPAR_TAG_HEADER_MAX];
    size_t h = sl_avpar_flv_header(SL_CODEC_HEVC, 1, 1, 0, hdr);
    sl_buf_t *b = sl_buf_new(h + (size_t)hl);
    memcpy(b->data, hdr, h);
    memcpy(b->data + h, hvcc, (size_t)hl);
    b->len = (uint32_t)(h + (size_t)hl);
    sl_frame_t *f = NULL;
    assert_int_equal(sl_frame_new(SL_FLV_VIDEO, 0, b, &f), 0);
    out->f[out->n++] = f;
    AVFrame *fr = av_frame_alloc();
    fr->format = AV_PIX_FMT_YUV420P;
    fr->width = W;
    fr->height = H;
    assert_int_equal(av_frame_get_buffer(fr, 0), 0);
    AVPacket *pkt = av_packet_alloc();
    for (int i = 0; i <= N_FRAMES / 2; i++) {
        if (i < N_FRAMES / 2) {
            av_frame_make_writable(fr);
            for (int y = 0; y < H; y++)
                memset(fr->data[0] + y * fr->linesize[0], (uint8_t)(y + i * 4), W);
            memset(fr->data[1], 128, (size_t)fr->linesize[1] * H / 2);
            memset(fr->data[2], 128, (size_t)fr->linesize[2] * H / 2);
            fr->pts = (int64_t)i * 1000 / FPS;
            assert_int_equal(avcodec_send_frame(ctx, fr), 0);
        } else {
            avcodec_send_frame(ctx, NULL);
        }
        while (avcodec_receive_packet(ctx, pkt) == 0) {
            size_t n = sl__vt_to_avcc(pkt->data, (size_t)pkt->size, NULL);
            uint8_t *d = malloc(n);
            sl__vt_to_avcc(pkt->data, (size_t)pkt->size, d);
            int key = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
            h = sl_avpar_flv_header(SL_CODEC_HEVC, 0, key, 0, hdr);
            b = sl_buf_new(h + n);
            memcpy(b->data, hdr, h);
            memcpy(b->data + h, d, n);
            b->len = (uint32_t)(h + n);
            free(d);
            assert_int_equal(sl_frame_new(SL_FLV_VIDEO, (uint32_t)pkt->dts, b, &f), 0);
            assert_true(out->n < MAX_OUT);
            out->f[out->n++] = f;
            av_packet_unref(pkt);
        }
    }
    av_packet_free(&pkt);
    av_frame_free(&fr);
    avcodec_free_context(&ctx);
    LSAN_ON();
    return 1;
}

typedef struct {
    uv_loop_t loop;
    uv_timer_t poll;
    sl_vtranscoder_t *t;
    fset_t got[2];
    uint64_t want_decoded; /* stop once this many pictures are decoded and delivered */
    uint64_t start_ms;
    int timed_out;
    int free_in_cb;
} fix_t;

static void on_out(void *ud, size_t variant, sl_frame_t *f)
{
    fix_t *x = ud;
    assert_true(variant < 2);
    assert_true(x->got[variant].n < MAX_OUT);
    x->got[variant].f[x->got[variant].n++] = sl_frame_ref(f);
    if (x->free_in_cb) {
        sl_vtranscoder_free(x->t);
        x->t = NULL;
    }
}

static void on_poll(uv_timer_t *h)
{
    fix_t *x = h->data;
    if (uv_now(&x->loop) - x->start_ms > DEADLINE_MS) {
        x->timed_out = 1;
        uv_stop(&x->loop);
        return;
    }
    if (!x->t) {
        uv_stop(&x->loop);
        return;
    }
    sl_vtranscoder_stats_t st;
    sl_vtranscoder_stats(x->t, &st);
    if (st.decoded + st.errors >= x->want_decoded && x->got[0].n > 0) {
        /* the last picture's outputs are queued with it: one more turn delivers them */
        uv_stop(&x->loop);
    }
}

static void fix_init(fix_t *x, const sl_vt_variant_t *v, size_t n)
{
    memset(x, 0, sizeof *x);
    assert_int_equal(uv_loop_init(&x->loop), 0);
    assert_int_equal(sl_vtranscoder_new(&x->loop, v, n, FPS, "ultrafast", on_out, x, &x->t), 0);
    assert_int_equal(uv_timer_init(&x->loop, &x->poll), 0);
    x->poll.data = x;
}

static void run(fix_t *x)
{
    x->start_ms = uv_now(&x->loop);
    assert_int_equal(uv_timer_start(&x->poll, on_poll, 5, 5), 0);
    uv_run(&x->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&x->poll);
    uv_run(&x->loop, UV_RUN_NOWAIT); /* deliver what the last wake-up queued */
    if (x->timed_out && x->t) {
        sl_vtranscoder_stats_t st;
        sl_vtranscoder_stats(x->t, &st);
        printf("timed out: in %llu decoded %llu out %llu errors %llu dropped %llu\n",
               (unsigned long long)st.in_frames, (unsigned long long)st.decoded,
               (unsigned long long)st.out_frames, (unsigned long long)st.errors,
               (unsigned long long)st.dropped);
    }
    assert_false(x->timed_out);
}

static void fix_done(fix_t *x)
{
    sl_vtranscoder_free(x->t);
    x->t = NULL;
    uv_close((uv_handle_t *)&x->poll, NULL);
    assert_int_equal(uv_run(&x->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&x->loop), 0);
    fset_clear(&x->got[0]);
    fset_clear(&x->got[1]);
}

/* Decodes a variant's output; checks size, order and keyframes; returns the picture count. */
static int check_variant(const fset_t *s, int w, int h, const uint32_t *key_dts,
                         const uint32_t *key_pts, int n_keys)
{
    assert_true(s->n > 1);
    assert_true(s->f[0]->flags & SL_FRAME_CONFIG);
    assert_int_equal(s->f[0]->codec, SL_CODEC_AVC);
    const AVCodec *c = avcodec_find_decoder(AV_CODEC_ID_H264);
    AVCodecContext *ctx = avcodec_alloc_context3(c);
    const sl_frame_t *cfg = s->f[0];
    size_t cl = cfg->body->len - cfg->data_off;
    ctx->extradata = av_mallocz(cl + AV_INPUT_BUFFER_PADDING_SIZE);
    memcpy(ctx->extradata, cfg->body->data + cfg->data_off, cl);
    ctx->extradata_size = (int)cl;
    assert_int_equal(avcodec_open2(ctx, c, NULL), 0);
    AVPacket *pkt = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    int pictures = 0, keys = 0;
    uint32_t last_dts = 0;
    for (int i = 1; i < s->n; i++) {
        const sl_frame_t *f = s->f[i];
        assert_false(f->flags & SL_FRAME_CONFIG);
        assert_true(f->dts_ms >= last_dts);
        assert_true(f->cts_ms >= 0);
        last_dts = f->dts_ms;
        if (f->flags & SL_FRAME_KEY) {
            assert_true(keys < n_keys);
            assert_int_equal(f->dts_ms, key_dts[keys]);
            assert_int_equal(f->dts_ms + (uint32_t)f->cts_ms, key_pts[keys]);
            keys++;
        }
        size_t n = f->body->len - f->data_off;
        uint8_t *d = av_mallocz(n + AV_INPUT_BUFFER_PADDING_SIZE);
        memcpy(d, f->body->data + f->data_off, n);
        assert_int_equal(av_packet_from_data(pkt, d, (int)n), 0);
        assert_int_equal(avcodec_send_packet(ctx, pkt), 0);
        av_packet_unref(pkt);
        while (avcodec_receive_frame(ctx, fr) == 0) {
            assert_int_equal(fr->width, w);
            assert_int_equal(fr->height, h);
            assert_true(fr->pict_type != AV_PICTURE_TYPE_B);
            pictures++;
        }
    }
    avcodec_send_packet(ctx, NULL);
    while (avcodec_receive_frame(ctx, fr) == 0)
        pictures++;
    assert_int_equal(keys, n_keys);
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avcodec_free_context(&ctx);
    return pictures;
}

static void test_ladder(void **state)
{
    (void)state;
    fset_t in = {0};
    uint32_t kd[4], kp[4];
    int nk = 0;
    make_source(&in, kd, kp, &nk);
    assert_int_equal(nk, 2); /* keyint 30 over 60 frames */
    sl_vt_variant_t v[2] = {{160, 120, 200000, 0}, {96, 72, 100000, 15}};
    fix_t x;
    fix_init(&x, v, 2);
    x.want_decoded = N_FRAMES - 2; /* the decoder keeps its reorder delay (2 B-frames) */
    for (int i = 0; i < in.n; i++)
        assert_int_equal(sl_vtranscoder_push(x.t, in.f[i]), 0);
    run(&x);
    sl_vtranscoder_stats_t st;
    sl_vtranscoder_stats(x.t, &st);
    assert_int_equal(st.src_width, W);
    assert_int_equal(st.src_height, H);
    assert_int_equal(st.dropped, 0);
    /* full rate: every picture but those the decoder still holds (its reorder delay) */
    int p0 = check_variant(&x.got[0], 160, 120, kd, kp, nk);
    assert_true(p0 >= N_FRAMES - 3 && p0 <= N_FRAMES);
    /* 15 fps: about half */
    int p1 = check_variant(&x.got[1], 96, 72, kd, kp, nk);
    assert_true(p1 >= N_FRAMES / 2 - 3 && p1 <= N_FRAMES / 2 + 2);
    printf("vtranscode: %d + %d pictures, worker %.1f ms for %d source frames\n", p0, p1,
           st.worker_ms, N_FRAMES);
    fix_done(&x);
    fset_clear(&in);
}

static void test_hevc_source(void **state)
{
    (void)state;
    fset_t in = {0};
    if (!sl_vtranscode_can_decode(SL_CODEC_HEVC) || !make_hevc_source(&in))
        skip();
    assert_int_equal(in.f[1]->codec, SL_CODEC_HEVC);
    uint32_t kd[4] = {0, 500}, kp[4] = {0, 500};
    sl_vt_variant_t v = {160, 120, 200000, 0};
    fix_t x;
    fix_init(&x, &v, 1);
    x.want_decoded = N_FRAMES / 2;
    for (int i = 0; i < in.n; i++)
        assert_int_equal(sl_vtranscoder_push(x.t, in.f[i]), 0);
    run(&x);
    sl_vtranscoder_stats_t st;
    sl_vtranscoder_stats(x.t, &st);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.src_width, W);
    /* H.264 out, keyframes on the source's (every 15 frames: dts 0 and 500) */
    int p = check_variant(&x.got[0], 160, 120, kd, kp, 2);
    assert_int_equal(p, N_FRAMES / 2);
    fix_done(&x);
    fset_clear(&in);
}

/* Bit writer for a hand-made SPS. */
typedef struct {
    uint8_t b[64];
    int bit;
} bw_t;

static void put_bit(bw_t *w, int v)
{
    if (v)
        w->b[w->bit / 8] |= (uint8_t)(0x80 >> (w->bit % 8));
    w->bit++;
}

static void put_bits(bw_t *w, uint32_t v, int n)
{
    for (int i = n - 1; i >= 0; i--)
        put_bit(w, (v >> i) & 1);
}

static void put_ue(bw_t *w, uint32_t v)
{
    uint32_t x = v + 1;
    int len = 0;
    while ((x >> len) > 1)
        len++;
    put_bits(w, 0, len);
    put_bits(w, x, len + 1);
}

static void test_hostile_sps(void **state)
{
    (void)state;
    bw_t w = {{0}, 0};
    put_bits(&w, 0x67, 8);  /* NAL header: SPS */
    put_bits(&w, 66, 8);    /* baseline */
    put_bits(&w, 0, 8);
    put_bits(&w, 51, 8);    /* level 5.1 */
    put_ue(&w, 0);          /* sps id */
    put_ue(&w, 0);          /* log2_max_frame_num - 4 */
    put_ue(&w, 2);          /* poc type 2 */
    put_ue(&w, 1);          /* refs */
    put_bit(&w, 0);
    put_ue(&w, 1023);       /* 16384 px wide */
    put_ue(&w, 1023);       /* 16384 px tall */
    put_bit(&w, 1);         /* frame_mbs_only */
    put_bit(&w, 1);         /* direct_8x8 */
    put_bit(&w, 0);         /* no crop */
    put_bit(&w, 0);         /* no VUI */
    put_bit(&w, 1);         /* stop bit */
    size_t sps_len = (size_t)(w.bit + 7) / 8;
    uint8_t annexb[128] = {0, 0, 0, 1};
    memcpy(annexb + 4, w.b, sps_len);
    static const uint8_t pps[] = {0, 0, 0, 1, 0x68, 0xce, 0x38, 0x80};
    memcpy(annexb + 4 + sps_len, pps, sizeof pps);
    uint8_t *avcc = NULL;
    size_t avcc_len = 0;
    assert_int_equal(sl__vt_make_avcc(annexb, 4 + sps_len + sizeof pps, &avcc, &avcc_len), 0);
    sl_frame_t *cfg = mk_video(1, 1, 0, avcc, avcc_len, 0);
    sl_free(avcc);
    static const uint8_t idr[] = {0, 0, 0, 5, 0x65, 0x88, 0x84, 0x00, 0x33};
    sl_frame_t *key = mk_video(0, 1, 0, idr, sizeof idr, 0);
    sl_vt_variant_t v = {160, 120, 200000, 0};
    fix_t x;
    fix_init(&x, &v, 1);
    x.want_decoded = 2; /* both frames end as errors */
    assert_int_equal(sl_vtranscoder_push(x.t, cfg), 0);
    assert_int_equal(sl_vtranscoder_push(x.t, key), 0);
    x.start_ms = uv_now(&x.loop);
    /* no output will come: poll until both frames were counted */
    for (;;) {
        sl_vtranscoder_stats_t st;
        sl_vtranscoder_stats(x.t, &st);
        if (st.processed >= 2)
            break;
        if (uv_now(&x.loop) - x.start_ms >= DEADLINE_MS)
            printf("in %llu decoded %llu errors %llu\n", (unsigned long long)st.in_frames,
                   (unsigned long long)st.decoded, (unsigned long long)st.errors);
        assert_true(uv_now(&x.loop) - x.start_ms < DEADLINE_MS);
        uv_run(&x.loop, UV_RUN_NOWAIT);
        uv_update_time(&x.loop);
    }
    sl_vtranscoder_stats_t st;
    sl_vtranscoder_stats(x.t, &st);
    assert_int_equal(st.decoded, 0); /* libavcodec's max_pixels refused the SPS */
    assert_true(st.errors >= 1);
    assert_int_equal(st.src_width, 0);
    assert_int_equal(x.got[0].n, 0);
    sl_frame_unref(cfg);
    sl_frame_unref(key);
    fix_done(&x);
}

static void test_overload_skips_to_key(void **state)
{
    (void)state;
    fset_t in = {0};
    uint32_t kd[4], kp[4];
    int nk = 0;
    make_source(&in, kd, kp, &nk);
    sl_vt_variant_t v = {96, 72, 100000, 0};
    fix_t x;
    fix_init(&x, &v, 1);
    sl__vtranscoder_pause(x.t, 1);
    assert_int_equal(sl_vtranscoder_push(x.t, in.f[0]), 0); /* the configuration */
    /* 3 x 60 frames while paused: the queue (SL_VT_QUEUE_MAX 120) overflows */
    for (int r = 0; r < 3; r++)
        for (int i = 1; i < in.n; i++)
            assert_int_equal(sl_vtranscoder_push(x.t, in.f[i]), 0);
    sl_vtranscoder_stats_t st;
    sl_vtranscoder_stats(x.t, &st);
    assert_true(st.dropped > 0);
    /* the queue filled (the configuration + 119 frames): the coded frames went, counted, and
     * the frames up to the next keyframe were skipped */
    assert_true(st.dropped >= SL_VT_QUEUE_MAX - 1);
    assert_true(st.in_frames + st.dropped >= 3 * (uint64_t)(in.n - 1) + 1);
    /* after the drop the first frame queued was a keyframe: the output starts clean */
    x.want_decoded = 1;
    sl__vtranscoder_pause(x.t, 0);
    run(&x);
    sl_vtranscoder_stats(x.t, &st);
    assert_int_equal(st.errors, 0);
    assert_true(x.got[0].n >= 2);
    assert_true(x.got[0].f[1]->flags & SL_FRAME_KEY);
    fix_done(&x);
    fset_clear(&in);
}

static void test_free_in_callback(void **state)
{
    (void)state;
    fset_t in = {0};
    uint32_t kd[4], kp[4];
    int nk = 0;
    make_source(&in, kd, kp, &nk);
    sl_vt_variant_t v = {96, 72, 100000, 0};
    fix_t x;
    fix_init(&x, &v, 1);
    x.free_in_cb = 1;
    x.want_decoded = 1000000;
    for (int i = 0; i < in.n; i++)
        assert_int_equal(sl_vtranscoder_push(x.t, in.f[i]), 0);
    run(&x);
    assert_int_equal(x.got[0].n, 1); /* nothing after the free */
    fix_done(&x);
    /* and free while the worker is busy */
    fix_init(&x, &v, 1);
    for (int i = 0; i < in.n; i++)
        assert_int_equal(sl_vtranscoder_push(x.t, in.f[i]), 0);
    fix_done(&x);
    fset_clear(&in);
}

static void test_bad_args(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    sl_vtranscoder_t *t = (sl_vtranscoder_t *)1;
    sl_vt_variant_t odd = {161, 120, 200000, 0}, big = {8192, 8192, 200000, 0},
                    slow = {160, 120, 1000, 0}, fast = {160, 120, 200000, 500};
    assert_int_equal(sl_vtranscoder_new(&loop, &odd, 1, 0, NULL, on_out, NULL, &t), SL_EINVAL);
    assert_null(t);
    assert_int_equal(sl_vtranscoder_new(&loop, &big, 1, 0, NULL, on_out, NULL, &t), SL_EINVAL);
    assert_int_equal(sl_vtranscoder_new(&loop, &slow, 1, 0, NULL, on_out, NULL, &t), SL_EINVAL);
    assert_int_equal(sl_vtranscoder_new(&loop, &fast, 1, 0, NULL, on_out, NULL, &t), SL_EINVAL);
    assert_int_equal(sl_vtranscoder_new(&loop, &odd, 0, 0, NULL, on_out, NULL, &t), SL_EINVAL);
    assert_true(sl_vtranscode_can_decode(SL_CODEC_AVC));
    assert_false(sl_vtranscode_can_decode(SL_CODEC_VP8));
    /* audio is refused */
    sl_vt_variant_t v = {96, 72, 100000, 0};
    assert_int_equal(sl_vtranscoder_new(&loop, &v, 1, 0, NULL, on_out, NULL, &t), 0);
    uint8_t aac[4] = {0xaf, 0x01, 1, 2};
    sl_buf_t *b = sl_buf_new(sizeof aac);
    memcpy(b->data, aac, sizeof aac);
    b->len = sizeof aac;
    sl_frame_t *f = NULL;
    assert_int_equal(sl_frame_new(SL_FLV_AUDIO, 0, b, &f), 0);
    assert_int_equal(sl_vtranscoder_push(t, f), SL_EINVAL);
    sl_frame_unref(f);
    sl_vtranscoder_free(t);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_annexb(void **state)
{
    (void)state;
    /* 3- and 4-byte start codes, an AUD dropped, trailing zeros trimmed */
    static const uint8_t in[] = {0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x65, 1, 2, 3, 0, 0, 0, 1, 0x41, 9};
    uint8_t out[64];
    size_t n = sl__vt_to_avcc(in, sizeof in, NULL);
    assert_int_equal(n, 4 + 4 + 4 + 2);
    assert_int_equal(sl__vt_to_avcc(in, sizeof in, out), n);
    static const uint8_t want[] = {0, 0, 0, 4, 0x65, 1, 2, 3, 0, 0, 0, 2, 0x41, 9};
    assert_memory_equal(out, want, sizeof want);
    assert_int_equal(sl__vt_to_avcc(in, 3, NULL), 0);
    uint8_t *a = NULL;
    size_t al = 0;
    assert_int_equal(sl__vt_make_avcc(in, sizeof in, &a, &al), SL_EPROTO); /* no SPS/PPS */
}

static int leak_check(void **state)
{
    (void)state;
    sl_frame_pool_drain();
    assert_int_equal(sl_frame_count(), 0);
    assert_int_equal(sl_alloc_blocks(), 0);
    return 0;
}

int main(void)
{
    av_log_set_level(AV_LOG_QUIET);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_ladder, leak_check),
        cmocka_unit_test_teardown(test_hevc_source, leak_check),
        cmocka_unit_test_teardown(test_hostile_sps, leak_check),
        cmocka_unit_test_teardown(test_overload_skips_to_key, leak_check),
        cmocka_unit_test_teardown(test_free_in_callback, leak_check),
        cmocka_unit_test_teardown(test_bad_args, leak_check),
        cmocka_unit_test_teardown(test_annexb, leak_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
