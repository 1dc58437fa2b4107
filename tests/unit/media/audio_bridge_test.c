/*
 * Audio bridge tests (media/audio_bridge.h) on a real uv loop and hub:
 * one second of G.711 A-law, mu-law and Opus (encoded in-process with
 * libavcodec) goes in; the stream's sink gets an AAC sequence header with
 * a valid AudioSpecificConfig (AAC-LC, 48 kHz, stereo) before any AAC
 * frame, then AAC frames with monotonic timestamps that start where the
 * input started (minus the encoder's 1024-sample delay) and span what it
 * spans. The lazy policy: without a sink needing AAC nothing is
 * transcoded, a side subscriber gets the original frames untouched, a
 * player that registered a side is not counted as needing AAC, the first
 * sink that needs AAC starts the transcoder; AAC input passes straight
 * to the hub and stands the bridge down; the registry finds the bridge by stream and forgets it when
 * it is freed. Waits are a uv timer polling with a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <libavutil/log.h>

#include "base/alloc.h"
#include "media/audio_bridge.h"
#include "media/avpar.h"
#include "sluice/errors.h"

#define MAX_FRAMES 512
#define DEADLINE_MS 20000
#define BASE_DTS 1000

typedef struct {
    sl_sink_t sink;
    sl_frame_t *got[MAX_FRAMES];
    int n;
} rec_t;

static void rec_frame(sl_sink_t *s, sl_frame_t *f)
{
    rec_t *r = s->ctx;
    if (f->kind == SL_FLV_AUDIO && r->n < MAX_FRAMES)
        r->got[r->n++] = sl_frame_ref(f);
}
static const sl_sink_ops_t rec_ops = {rec_frame, NULL, NULL};

static void rec_init(rec_t *r)
{
    memset(r, 0, sizeof(*r));
    r->sink.ops = &rec_ops;
    r->sink.ctx = r;
    sl_list_init(&r->sink.link);
}

static void rec_clear(rec_t *r)
{
    for (int i = 0; i < r->n; i++)
        sl_frame_unref(r->got[i]);
    r->n = 0;
}

typedef struct {
    sl_audio_side_t side;
    int n, codec_ok;
} side_rec_t;

static void side_frame(sl_audio_side_t *s, sl_frame_t *f)
{
    side_rec_t *r = s->ctx;
    r->n++;
    r->codec_ok += f->codec == SL_CODEC_OPUS || f->codec == SL_CODEC_FLV_AUDIO(7);
}

static sl_frame_t *mk_frame(uint32_t codec, int is_config, const uint8_t *p, size_t n, uint32_t dts)
{
    uint8_t hdr[SL_AVPAR_TAG_HEADER_MAX];
    size_t hl = sl_avpar_flv_header(codec, is_config, 0, 0, hdr);
    assert_true(hl > 0);
    sl_buf_t *b = sl_buf_new(hl + n);
    assert_non_null(b);
    memcpy(b->data, hdr, hl);
    memcpy(b->data + hl, p, n);
    b->len = (uint32_t)(hl + n);
    sl_frame_t *f;
    assert_int_equal(sl_frame_new(SL_FLV_AUDIO, dts, b, &f), 0);
    assert_int_equal(f->codec, codec);
    return f;
}

/* One second of a 440 Hz tone as `codec` frames of 20 ms from BASE_DTS: G.711 8 kHz mono or
 * Opus 48 kHz stereo (OpusHead first when with_head). Returns the number of frames. */
static int make_input(uint32_t codec, int with_head, sl_frame_t **out)
{
    int g711 = codec != SL_CODEC_OPUS;
    const AVCodec *c = avcodec_find_encoder_by_name(
        !g711 ? "libopus" : codec == SL_CODEC_FLV_AUDIO(7) ? "pcm_alaw" : "pcm_mulaw");
    assert_non_null(c);
    AVCodecContext *ctx = avcodec_alloc_context3(c);
    int rate = g711 ? 8000 : 48000, ch = g711 ? 1 : 2, fs = rate / 50;
    ctx->sample_rate = rate;
    av_channel_layout_default(&ctx->ch_layout, ch);
    ctx->time_base = (AVRational){1, rate};
    ctx->sample_fmt = g711 ? AV_SAMPLE_FMT_S16 : AV_SAMPLE_FMT_FLT;
    ctx->bit_rate = 64000;
    if (!g711)
        ctx->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    assert_int_equal(avcodec_open2(ctx, c, NULL), 0);
    int n = 0;
    if (!g711 && with_head)
        out[n++] = mk_frame(codec, 1, ctx->extradata, (size_t)ctx->extradata_size, BASE_DTS);
    AVFrame *fr = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();
    fr->format = ctx->sample_fmt;
    fr->sample_rate = rate;
    fr->nb_samples = fs;
    av_channel_layout_copy(&fr->ch_layout, &ctx->ch_layout);
    assert_int_equal(av_frame_get_buffer(fr, 0), 0);
    for (int k = 0; k < 50; k++) {
        assert_int_equal(av_frame_make_writable(fr), 0);
        for (int i = 0; i < fs; i++) {
            double v = 0.5 * sin(2.0 * M_PI * 440.0 * (double)(k * fs + i) / rate);
            for (int j = 0; j < ch; j++) {
                if (g711)
                    ((int16_t *)fr->data[0])[i] = (int16_t)(v * 32767);
                else
                    ((float *)fr->data[0])[ch * i + j] = (float)v;
            }
        }
        fr->pts = (int64_t)k * fs;
        assert_int_equal(avcodec_send_frame(ctx, fr), 0);
        while (avcodec_receive_packet(ctx, pkt) == 0) {
            assert_true(n < 64);
            /* The k-th packet out covers the k-th 20 ms (libopus delays by
             * whole packets, G.711 not at all): stamp by order. */
            out[n] = mk_frame(codec, 0, pkt->data, (size_t)pkt->size, BASE_DTS + 20u * (uint32_t)(n - (with_head && !g711)));
            n++;
            av_packet_unref(pkt);
        }
    }
    av_packet_free(&pkt);
    av_frame_free(&fr);
    avcodec_free_context(&ctx);
    return n;
}

typedef struct {
    uv_loop_t loop;
    uv_timer_t poll;
    sl_hub_t *hub;
    sl_stream_t *st;
    sl_audio_bridge_t *b;
    rec_t player;      /* an RTMP-like player: needs AAC */
    int want;          /* stop once the player has this many audio frames */
    uint64_t start_ms;
    int timed_out;
} fix_t;

static int publisher_token;

static void fix_init(fix_t *x)
{
    memset(x, 0, sizeof(*x));
    assert_int_equal(uv_loop_init(&x->loop), 0);
    assert_int_equal(uv_timer_init(&x->loop, &x->poll), 0);
    x->poll.data = x;
    x->hub = sl_hub_new(1 << 20);
    assert_non_null(x->hub);
    assert_int_equal(sl_hub_publish(x->hub, "live/cam", &publisher_token, &x->st), 0);
    assert_int_equal(sl_audio_bridge_new(&x->loop, x->st, NULL, &x->b), 0);
    rec_init(&x->player);
}

static void fix_done(fix_t *x)
{
    sl_audio_bridge_free(x->b);
    assert_null(sl_audio_bridge_of(x->st));
    sl_stream_remove_sink(&x->player.sink);
    sl_stream_unpublish(x->st);
    rec_clear(&x->player);
    sl_hub_free(x->hub);
    uv_close((uv_handle_t *)&x->poll, NULL);
    assert_int_equal(uv_run(&x->loop, UV_RUN_DEFAULT), 0); /* the transcoder's handle closes */
    assert_int_equal(uv_loop_close(&x->loop), 0);
}

static void on_poll(uv_timer_t *h)
{
    fix_t *x = h->data;
    if (uv_now(&x->loop) - x->start_ms > DEADLINE_MS) {
        x->timed_out = 1;
        uv_stop(&x->loop);
    } else if (x->player.n >= x->want) {
        uv_stop(&x->loop);
    }
}

static void run_until(fix_t *x, int want)
{
    x->want = want;
    x->start_ms = uv_now(&x->loop);
    assert_int_equal(uv_timer_start(&x->poll, on_poll, 2, 2), 0);
    uv_run(&x->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&x->poll);
    assert_false(x->timed_out);
}

/* Codec frames in, AAC out: header first with a valid ASC, then monotonic frames spanning the input. */
static void check_to_aac(uint32_t codec)
{
    fix_t x;
    fix_init(&x);
    assert_ptr_equal(sl_audio_bridge_of(x.st), x.b);
    assert_int_equal(sl_hub_add_sink(x.hub, "live/cam", &x.player.sink), 0);
    assert_int_equal(sl_audio_bridge_aac_consumers(x.b), 1);
    sl_frame_t *in[64];
    int n = make_input(codec, 1, in);
    assert_true(n >= 45);
    for (int i = 0; i < n; i++)
        sl_audio_bridge_push(x.b, in[i]);
    /* 1 s of input is 46.9 AAC frames; the encoder holds the last one or two. */
    run_until(&x, 1 + 44);
    sl_audio_bridge_stats_t st;
    sl_transcoder_stats_t tc;
    sl_audio_bridge_stats(x.b, &st, &tc);
    assert_int_equal(st.transcoding, 1);
    assert_int_equal(st.starts, 1);
    assert_int_equal(tc.errors, 0);
    /* The sequence header: AAC-LC, 48 kHz, stereo. */
    sl_frame_t *cfg = x.player.got[0];
    assert_int_equal(cfg->codec, SL_CODEC_AAC);
    assert_true(cfg->flags & SL_FRAME_CONFIG);
    const uint8_t *asc = cfg->body->data + cfg->data_off;
    size_t asc_len = cfg->body->len - cfg->data_off;
    uint32_t rate = 0, chans = 0;
    assert_int_equal(sl_avpar_aac_config(asc, asc_len, &rate, &chans), 0);
    assert_int_equal(asc[0] >> 3, 2); /* audioObjectType 2: AAC-LC */
    assert_int_equal(rate, 48000);
    assert_int_equal(chans, 2);
    assert_ptr_equal(x.st->audio_config, cfg);
    /* Frames: monotonic, 21-22 ms apart, starting at the input's first
     * sample minus the encoder's 1024-sample delay (21.3 ms). */
    uint32_t first = x.player.got[1]->dts_ms, last = first;
    for (int i = 1; i < x.player.n; i++) {
        sl_frame_t *f = x.player.got[i];
        assert_int_equal(f->codec, SL_CODEC_AAC);
        assert_false(f->flags & SL_FRAME_CONFIG);
        if (i > 1) {
            assert_true(f->dts_ms >= last);
            assert_in_range(f->dts_ms - last, 21, 22);
        }
        last = f->dts_ms;
    }
    printf("  %s -> AAC: %d frames, dts %u .. %u (input %u .. %u)\n", codec == SL_CODEC_OPUS ? "Opus" : "G.711",
           x.player.n - 1, first, last, in[0]->dts_ms, in[n - 1]->dts_ms);
    assert_int_equal(first, BASE_DTS - 22);
    /* run_until stops at 44 AAC frames or more (the thread may deliver a burst): the 44th
     * starts at BASE_DTS - 22 + 43 * 21.3 = BASE_DTS + 895. */
    assert_in_range(last, BASE_DTS + 890, BASE_DTS + 1000);
    for (int i = 0; i < n; i++)
        sl_frame_unref(in[i]);
    fix_done(&x);
}

static void test_pcma_to_aac(void **state)
{
    (void)state;
    check_to_aac(SL_CODEC_FLV_AUDIO(7));
}

static void test_pcmu_to_aac(void **state)
{
    (void)state;
    check_to_aac(SL_CODEC_FLV_AUDIO(8));
}

static void test_opus_to_aac(void **state)
{
    (void)state;
    check_to_aac(SL_CODEC_OPUS);
}

/* Lazy: nothing needs AAC -> no transcoder; sides get the original; the first AAC sink starts it. */
static void test_lazy_and_sides(void **state)
{
    (void)state;
    fix_t x;
    fix_init(&x);
    sl_frame_t *in[64];
    int n = make_input(SL_CODEC_OPUS, 1, in);
    /* A side without a sink (a WebRTC publisher's own viewers) and a player
     * that registered a side beside its hub sink (an RTSP player). */
    side_rec_t lone = {.side = {.on_frame = side_frame}}, rtsp = {.side = {.on_frame = side_frame}};
    lone.side.ctx = &lone;
    rtsp.side.ctx = &rtsp;
    rec_t rtsp_sink;
    rec_init(&rtsp_sink);
    assert_int_equal(sl_hub_add_sink(x.hub, "live/cam", &rtsp_sink.sink), 0);
    rtsp.side.sink = &rtsp_sink.sink;
    assert_int_equal(sl_audio_bridge_side_add(x.b, &lone.side), 0);
    assert_int_equal(sl_audio_bridge_side_add(x.b, &rtsp.side), 0);
    assert_int_equal(sl_audio_bridge_side_add(x.b, &rtsp.side), SL_EINVAL); /* already attached */
    assert_int_equal(sl_audio_bridge_aac_consumers(x.b), 0);
    for (int i = 0; i < 10; i++)
        sl_audio_bridge_push(x.b, in[i]);
    sl_audio_bridge_stats_t st;
    sl_audio_bridge_stats(x.b, &st, NULL);
    assert_int_equal(st.transcoding, 0);
    assert_int_equal(st.starts, 0);
    assert_int_equal(lone.n, 10);
    assert_int_equal(lone.codec_ok, 10);
    assert_int_equal(rtsp.n, 10);
    assert_int_equal(rtsp_sink.n, 0); /* the hub got no audio: nobody needed AAC */
    assert_int_equal(sl_audio_bridge_codec(x.b), SL_CODEC_OPUS);
    assert_non_null(sl_audio_bridge_config(x.b)); /* the OpusHead */
    /* A late side gets the configuration first. */
    side_rec_t late = {.side = {.on_frame = side_frame}};
    late.side.ctx = &late;
    assert_int_equal(sl_audio_bridge_side_add(x.b, &late.side), 0);
    assert_int_equal(late.n, 1);
    sl_audio_bridge_side_remove(&late.side);
    sl_audio_bridge_side_remove(&late.side); /* twice is harmless */
    /* A sink that needs AAC: the next frame starts the transcoder. */
    assert_int_equal(sl_hub_add_sink(x.hub, "live/cam", &x.player.sink), 0);
    assert_int_equal(sl_audio_bridge_aac_consumers(x.b), 1);
    for (int i = 10; i < n; i++)
        sl_audio_bridge_push(x.b, in[i]);
    sl_audio_bridge_stats(x.b, &st, NULL);
    assert_int_equal(st.transcoding, 1);
    run_until(&x, 10);
    assert_int_equal(x.player.got[0]->codec, SL_CODEC_AAC);
    assert_true(x.player.got[0]->flags & SL_FRAME_CONFIG);
    assert_int_equal(lone.n, n);
    /* An AAC frame (a standby source of a pull) goes straight to the hub. */
    static const uint8_t raw[4] = {0x21, 0x10, 0x04, 0x60};
    sl_frame_t *aac = mk_frame(SL_CODEC_AAC, 0, raw, sizeof raw, 5000);
    int before = rtsp_sink.n;
    sl_audio_bridge_push(x.b, aac);
    assert_int_equal(rtsp_sink.n, before + 1);
    assert_ptr_equal(rtsp_sink.got[rtsp_sink.n - 1], aac);
    sl_frame_unref(aac);
    /* ... and the bridge stands down: its codec is AAC now, nothing is transcoded. */
    assert_int_equal(sl_audio_bridge_codec(x.b), SL_CODEC_AAC);
    assert_null(sl_audio_bridge_config(x.b));
    sl_audio_bridge_stats(x.b, &st, NULL);
    assert_int_equal(st.transcoding, 0);
    /* Freeing the bridge detaches the sides. */
    sl_stream_remove_sink(&rtsp_sink.sink);
    rec_clear(&rtsp_sink);
    for (int i = 0; i < n; i++)
        sl_frame_unref(in[i]);
    fix_done(&x);
    assert_null(lone.side.bridge);
    assert_null(rtsp.side.bridge);
}

/* A second bridge on the same stream is refused; NULL arguments are refused. */
static void test_bad_args(void **state)
{
    (void)state;
    fix_t x;
    fix_init(&x);
    sl_audio_bridge_t *b2 = NULL;
    assert_int_equal(sl_audio_bridge_new(&x.loop, x.st, NULL, &b2), SL_EBUSY);
    assert_null(b2);
    assert_int_equal(sl_audio_bridge_new(NULL, x.st, NULL, &b2), SL_EINVAL);
    assert_int_equal(sl_audio_bridge_side_add(x.b, NULL), SL_EINVAL);
    sl_audio_bridge_push(x.b, NULL);
    sl_audio_bridge_push(NULL, NULL);
    sl_audio_bridge_update(NULL, 0);
    sl_audio_bridge_restart(NULL, "test");
    sl_audio_bridge_free(NULL);
    assert_null(sl_audio_bridge_of(NULL));
    fix_done(&x);
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
        cmocka_unit_test_teardown(test_pcma_to_aac, leak_check),
        cmocka_unit_test_teardown(test_pcmu_to_aac, leak_check),
        cmocka_unit_test_teardown(test_opus_to_aac, leak_check),
        cmocka_unit_test_teardown(test_lazy_and_sides, leak_check),
        cmocka_unit_test_teardown(test_bad_args, leak_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
