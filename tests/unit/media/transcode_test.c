/*
 * Transcoder tests: a 2 s, 1 kHz stereo sine is encoded in-process with
 * libavcodec to AAC and to Opus FLV bodies, pushed through the AAC -> Opus
 * and Opus -> AAC transcoders on a real uv loop, and the output is decoded
 * again: frame count for the duration, sequence header first, dts exact
 * on the 64-bit sample clock (20 ms for Opus, 1024/48000 s for AAC, no
 * drift), dominant frequency 1 kHz (Goertzel scan) and a healthy RMS.
 * Also: a >200 ms input gap resynchronises; a full queue drops the oldest
 * coded frames, keeps the configuration, counts and never blocks; free
 * while the worker is busy and free from inside the output callback are
 * clean (ASan); garbage frames are counted as errors. Waits are a uv timer
 * polling the counters, with a deadline: no sleeps. CPU time per second of
 * audio is printed for each direction.
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
#include "media/avpar.h"
#include "media/transcode.h"
#include "sluice/errors.h"

#define RATE 48000
#define TONE_HZ 1000.0
#define SECONDS 2
#define MAX_FRAMES 1024
#define DEADLINE_MS 20000

typedef struct {
    sl_frame_t *f[MAX_FRAMES];
    int n;
} fset_t;

static void fset_clear(fset_t *s)
{
    for (int i = 0; i < s->n; i++)
        sl_frame_unref(s->f[i]);
    s->n = 0;
}

static sl_frame_t *mk_frame(uint32_t codec, int is_config, const uint8_t *p, size_t n, uint32_t dts)
{
    uint8_t hdr[SL_AVPAR_TAG_HEADER_MAX];
    size_t h = sl_avpar_flv_header(codec, is_config, 0, 0, hdr);
    sl_buf_t *b = sl_buf_new(h + n);
    assert_non_null(b);
    memcpy(b->data, hdr, h);
    memcpy(b->data + h, p, n);
    b->len = (uint32_t)(h + n);
    sl_frame_t *f = NULL;
    assert_int_equal(sl_frame_new(SL_FLV_AUDIO, dts, b, &f), 0);
    return f;
}

/* Encodes `seconds` of a 1 kHz sine (amplitude 0.5) at rate Hz on channels channels to
 * codec FLV frames: the sequence header, then coded frames stamped base_dts + n * step. */
static void make_input_fmt(uint32_t codec, int rate, int channels, uint32_t base_dts, int seconds,
                           fset_t *out)
{
    const AVCodec *c = avcodec_find_encoder_by_name(codec == SL_CODEC_AAC ? "aac" : "libopus");
    assert_non_null(c);
    AVCodecContext *ctx = avcodec_alloc_context3(c);
    ctx->sample_rate = rate;
    av_channel_layout_default(&ctx->ch_layout, channels);
    ctx->time_base = (AVRational){1, rate};
    ctx->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    ctx->sample_fmt = codec == SL_CODEC_AAC ? AV_SAMPLE_FMT_FLTP : AV_SAMPLE_FMT_FLT;
    ctx->bit_rate = codec == SL_CODEC_AAC ? 128000 : 96000;
    assert_int_equal(avcodec_open2(ctx, c, NULL), 0);
    int fs = ctx->frame_size;
    out->n = 0;
    out->f[out->n++] = mk_frame(codec, 1, ctx->extradata, (size_t)ctx->extradata_size, base_dts);

    AVFrame *fr = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();
    fr->format = ctx->sample_fmt;
    fr->sample_rate = rate;
    fr->nb_samples = fs;
    av_channel_layout_copy(&fr->ch_layout, &ctx->ch_layout);
    assert_int_equal(av_frame_get_buffer(fr, 0), 0);
    int64_t total = (int64_t)seconds * rate, s = 0;
    uint64_t idx = 0;
    for (int flushing = 0;;) {
        if (s + fs <= total) {
            assert_int_equal(av_frame_make_writable(fr), 0);
            for (int i = 0; i < fs; i++) {
                float v = 0.5f * (float)sin(2.0 * M_PI * TONE_HZ * (double)(s + i) / rate);
                for (int ch = 0; ch < channels; ch++) {
                    if (codec == SL_CODEC_AAC)
                        ((float *)fr->data[ch])[i] = v;
                    else
                        ((float *)fr->data[0])[channels * i + ch] = v;
                }
            }
            fr->pts = s;
            s += fs;
            assert_int_equal(avcodec_send_frame(ctx, fr), 0);
        } else if (!flushing) {
            flushing = 1;
            assert_int_equal(avcodec_send_frame(ctx, NULL), 0);
        }
        int rc;
        while ((rc = avcodec_receive_packet(ctx, pkt)) == 0) {
            assert_true(out->n < MAX_FRAMES);
            uint32_t dts = base_dts + (uint32_t)(idx * (uint64_t)fs * 1000 / (uint64_t)rate);
            out->f[out->n++] = mk_frame(codec, 0, pkt->data, (size_t)pkt->size, dts);
            idx++;
            av_packet_unref(pkt);
        }
        if (rc == AVERROR_EOF)
            break;
        assert_int_equal(rc, AVERROR(EAGAIN));
    }
    av_packet_free(&pkt);
    av_frame_free(&fr);
    avcodec_free_context(&ctx);
}

static void make_input(uint32_t codec, uint32_t base_dts, int seconds, fset_t *out)
{
    make_input_fmt(codec, RATE, 2, base_dts, seconds, out);
}

/* ---- running a transcoder on a loop ------------------------------------------------------ */

typedef struct {
    uv_loop_t loop;
    uv_timer_t poll;
    sl_transcoder_t *t;
    fset_t got;          /* output frames (referenced) */
    uint64_t pushed;     /* frames accepted */
    uint64_t start_ms;
    int timed_out;
    int free_in_cb;      /* free the transcoder from inside the first callback */
} fix_t;

static void on_out(void *ud, sl_frame_t *f)
{
    fix_t *x = ud;
    assert_true(x->got.n < MAX_FRAMES);
    x->got.f[x->got.n++] = sl_frame_ref(f);
    if (x->free_in_cb) {
        sl_transcoder_free(x->t);
        x->t = NULL;
    }
}

/* Stops the loop once every pushed frame is processed and delivered, or at the deadline. */
static void on_poll(uv_timer_t *h)
{
    fix_t *x = h->data;
    if (uv_now(&x->loop) - x->start_ms > DEADLINE_MS) {
        x->timed_out = 1;
        uv_stop(&x->loop);
        return;
    }
    if (!x->t)
        return;
    sl_transcoder_stats_t st;
    sl_transcoder_stats(x->t, &st);
    if (st.processed + st.dropped >= x->pushed && st.pending_out == 0)
        uv_stop(&x->loop);
}

static void fix_init(fix_t *x, uint32_t to_codec)
{
    memset(x, 0, sizeof(*x));
    assert_int_equal(uv_loop_init(&x->loop), 0);
    assert_int_equal(sl_transcoder_new(&x->loop, to_codec, on_out, x, &x->t), 0);
    assert_int_equal(uv_timer_init(&x->loop, &x->poll), 0);
    x->poll.data = x;
}

static void push_all(fix_t *x, const fset_t *in)
{
    for (int i = 0; i < in->n; i++) {
        assert_int_equal(sl_transcoder_push(x->t, in->f[i]), 0);
        x->pushed++;
    }
}

/* Runs the loop until the transcoder is idle (all pushed input done and delivered). */
static void run_until_idle(fix_t *x)
{
    x->start_ms = uv_now(&x->loop);
    assert_int_equal(uv_timer_start(&x->poll, on_poll, 2, 2), 0);
    uv_run(&x->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&x->poll);
    assert_false(x->timed_out);
}

static void fix_done(fix_t *x)
{
    sl_transcoder_free(x->t);
    x->t = NULL;
    uv_close((uv_handle_t *)&x->poll, NULL);
    assert_int_equal(uv_run(&x->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&x->loop), 0);
    fset_clear(&x->got);
}

/* ---- checking the output ----------------------------------------------------------------- */

/* Power of freq in x[0..n) (Goertzel). */
static double goertzel(const float *x, int n, double freq)
{
    double k = 2.0 * cos(2.0 * M_PI * freq / RATE), s1 = 0, s2 = 0;
    for (int i = 0; i < n; i++) {
        double s0 = x[i] + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    return s1 * s1 + s2 * s2 - k * s1 * s2;
}

/* Decodes the output frames (config first) to channel 0 as float; returns the sample count. */
static int decode_output(const fset_t *s, uint32_t codec, float *pcm, int cap)
{
    assert_true(s->n > 1);
    sl_frame_t *cfg = s->f[0];
    assert_true(cfg->flags & SL_FRAME_CONFIG);
    assert_int_equal(cfg->codec, codec);
    AVCodecParameters *par = avcodec_parameters_alloc();
    assert_int_equal(sl_avpar_set_audio(par, codec, cfg->body->data + cfg->data_off,
                                        cfg->body->len - cfg->data_off), 0);
    assert_int_equal(par->sample_rate, RATE);
    assert_int_equal(par->ch_layout.nb_channels, 2);
    const AVCodec *c = avcodec_find_decoder(par->codec_id);
    AVCodecContext *ctx = avcodec_alloc_context3(c);
    assert_int_equal(avcodec_parameters_to_context(ctx, par), 0);
    assert_int_equal(avcodec_open2(ctx, c, NULL), 0);
    AVPacket *pkt = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    int n = 0;
    for (int i = 1; i < s->n; i++) {
        sl_frame_t *f = s->f[i];
        assert_false(f->flags & SL_FRAME_CONFIG);
        assert_int_equal(f->codec, codec);
        uint32_t len = f->body->len - f->data_off;
        assert_int_equal(av_new_packet(pkt, (int)len), 0);
        memcpy(pkt->data, f->body->data + f->data_off, len);
        assert_int_equal(avcodec_send_packet(ctx, pkt), 0);
        av_packet_unref(pkt);
        while (avcodec_receive_frame(ctx, fr) == 0) {
            int planar = av_sample_fmt_is_planar(fr->format);
            int ch = fr->ch_layout.nb_channels;
            assert_true(fr->format == AV_SAMPLE_FMT_FLTP || fr->format == AV_SAMPLE_FMT_FLT);
            for (int k = 0; k < fr->nb_samples && n < cap; k++)
                pcm[n++] = planar ? ((float *)fr->data[0])[k] : ((float *)fr->data[0])[k * ch];
            av_frame_unref(fr);
        }
    }
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avcodec_free_context(&ctx);
    avcodec_parameters_free(&par);
    return n;
}

/* The encoders' delay in samples: AAC-LC primes 1024, libopus's pre-skip is 312. */
static int enc_delay(uint32_t codec)
{
    return codec == SL_CODEC_AAC ? 1024 : 312;
}

/* The dts of the output sample `samples` after an anchor at base_dts (ms), delay removed. */
static uint32_t primed_dts(uint32_t codec, uint32_t base_dts, int64_t samples)
{
    int64_t at = (int64_t)base_dts * RATE / 1000 + samples - enc_delay(codec);
    return at > 0 ? (uint32_t)(at * 1000 / RATE) : 0;
}

/* Checks count, header bytes, timestamps and the decoded tone of a transcoder's output. */
static void check_output(const fset_t *s, uint32_t codec, uint32_t base_dts, int min_n, int max_n)
{
    int coded = s->n - 1;
    printf("  %s output: %d coded frames, dts %u .. %u\n", sl_codec_name(codec), coded,
           s->f[0]->dts_ms, s->f[s->n - 1]->dts_ms);
    assert_in_range(coded, min_n, max_n);
    /* Bodies: what flv.c accepts for the codec. */
    const uint8_t *b0 = s->f[0]->body->data, *b1 = s->f[1]->body->data;
    if (codec == SL_CODEC_AAC) {
        assert_int_equal(b0[0], 0xAF);
        assert_int_equal(b0[1], 0x00);
        assert_int_equal(b1[0], 0xAF);
        assert_int_equal(b1[1], 0x01);
    } else {
        assert_int_equal(b0[0], 0x90);
        assert_memory_equal(b0 + 1, "Opus", 4);
        assert_memory_equal(b0 + 5, "OpusHead", 8);
        assert_int_equal(b1[0], 0x91);
        assert_memory_equal(b1 + 1, "Opus", 4);
        for (int i = 1; i < s->n; i++) /* 20 ms at 64 kb/s: one RTP payload each */
            assert_in_range(s->f[i]->body->len - 5, 1, 400);
    }
    /* Timestamps: the first is the input's minus the encoder's delay (so the
     * decoded sound starts where the input's did), then samples / rate on a
     * 64-bit clock; never below 0. */
    uint32_t step = codec == SL_CODEC_AAC ? 1024 : 960;
    assert_int_equal(s->f[0]->dts_ms, primed_dts(codec, base_dts, 0));
    for (int k = 0; k < coded; k++) {
        double exact = base_dts + ((double)k * step - enc_delay(codec)) * 1000.0 / RATE;
        if (exact < 0)
            exact = 0;
        double d = (double)s->f[k + 1]->dts_ms - exact;
        assert_true(d > -1.0 && d <= 0.0); /* rounded down, never accumulated */
        if (k > 0) {
            uint32_t dd = s->f[k + 1]->dts_ms - s->f[k]->dts_ms;
            if (codec == SL_CODEC_OPUS)
                assert_int_equal(dd, 20);
            else
                assert_in_range(dd, 21, 22);
        }
    }
    /* The decoded signal: 1 kHz dominates, with real energy. */
    static float pcm[RATE * 4];
    int n = decode_output(s, codec, pcm, RATE * 4);
    assert_true(n >= RATE * 3 / 2);
    const float *win = pcm + RATE / 4; /* skip priming and the transient */
    int wn = RATE / 2;
    double rms = 0;
    for (int i = 0; i < wn; i++)
        rms += (double)win[i] * win[i];
    rms = sqrt(rms / wn);
    double best_f = 0, best_p = -1, p1k = goertzel(win, wn, TONE_HZ), other = 0;
    for (double f = 100; f <= 8000; f += 50) {
        double p = goertzel(win, wn, f);
        if (p > best_p) {
            best_p = p;
            best_f = f;
        }
        if (fabs(f - TONE_HZ) > 200 && p > other)
            other = p;
    }
    printf("  decoded: %d samples, rms %.3f, dominant %.0f Hz, 1 kHz / next peak %.0f dB\n", n,
           rms, best_f, 10 * log10(p1k / (other + 1e-12)));
    assert_true(fabs(best_f - TONE_HZ) < 1.0);
    assert_true(rms > 0.3 && rms < 0.4); /* amplitude 0.5 sine: rms 0.354 (mono upmixed at full level) */
    assert_true(p1k > 1000.0 * other);
}

static void report_cpu(fix_t *x, const char *what)
{
    sl_transcoder_stats_t st;
    sl_transcoder_stats(x->t, &st);
    printf("  %s: worker CPU %.1f ms for %d s of audio = %.1f ms per second (%.2f%% of a core); "
           "in %llu out %llu dropped %llu errors %llu\n", what, st.worker_ms, SECONDS,
           st.worker_ms / SECONDS, st.worker_ms / SECONDS / 10.0, (unsigned long long)st.in_frames,
           (unsigned long long)st.out_frames, (unsigned long long)st.dropped,
           (unsigned long long)st.errors);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_aac_to_opus(void **state)
{
    (void)state;
    fset_t in;
    make_input(SL_CODEC_AAC, 5000, SECONDS, &in);
    fix_t x;
    fix_init(&x, SL_CODEC_OPUS);
    push_all(&x, &in);
    run_until_idle(&x);
    report_cpu(&x, "aac->opus");
    sl_transcoder_stats_t st;
    sl_transcoder_stats(x.t, &st);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.in_frames, (uint64_t)in.n);
    assert_int_equal(st.out_frames, (uint64_t)x.got.n);
    /* 2 s + the AAC priming frame = ~102 packets of 20 ms, less what the encoders hold. */
    check_output(&x.got, SL_CODEC_OPUS, 5000, 95, 103);
    fix_done(&x);
    fset_clear(&in);
}

static void test_opus_to_aac(void **state)
{
    (void)state;
    fset_t in;
    make_input(SL_CODEC_OPUS, 7000, SECONDS, &in);
    fix_t x;
    fix_init(&x, SL_CODEC_AAC);
    push_all(&x, &in);
    run_until_idle(&x);
    report_cpu(&x, "opus->aac");
    sl_transcoder_stats_t st;
    sl_transcoder_stats(x.t, &st);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.dropped, 0);
    /* 2 s = 93.75 frames of 1024 samples, less what the encoder holds. */
    check_output(&x.got, SL_CODEC_AAC, 7000, 88, 95);
    fix_done(&x);
    fset_clear(&in);
}

/* What most RTMP encoders send: 44.1 kHz mono AAC; resampled and upmixed to 48 kHz stereo Opus. */
static void test_aac_44k_mono_to_opus(void **state)
{
    (void)state;
    fset_t in;
    make_input_fmt(SL_CODEC_AAC, 44100, 1, 300, SECONDS, &in);
    fix_t x;
    fix_init(&x, SL_CODEC_OPUS);
    push_all(&x, &in);
    run_until_idle(&x);
    report_cpu(&x, "aac 44.1k mono->opus");
    sl_transcoder_stats_t st;
    sl_transcoder_stats(x.t, &st);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.dropped, 0);
    check_output(&x.got, SL_CODEC_OPUS, 300, 95, 103);
    fix_done(&x);
    fset_clear(&in);
}

/* Opus without an OpusHead (what WebRTC gives) decodes as stereo. */
static void test_opus_without_header(void **state)
{
    (void)state;
    fset_t in;
    make_input(SL_CODEC_OPUS, 0, 1, &in);
    fix_t x;
    fix_init(&x, SL_CODEC_AAC);
    for (int i = 1; i < in.n; i++) {
        assert_int_equal(sl_transcoder_push(x.t, in.f[i]), 0);
        x.pushed++;
    }
    run_until_idle(&x);
    sl_transcoder_stats_t st;
    sl_transcoder_stats(x.t, &st);
    assert_int_equal(st.errors, 0);
    assert_true(x.got.n > 40);
    assert_int_equal(x.got.f[0]->dts_ms, 0);
    fix_done(&x);
    fset_clear(&in);
}

/* A jump of the input timeline (> 200 ms) restarts the output timeline there. */
static void test_gap_resyncs(void **state)
{
    (void)state;
    fset_t in;
    make_input(SL_CODEC_OPUS, 1000, SECONDS, &in);
    /* Frames from 1 s of audio on are moved 3 s later: a 3 s hole. */
    for (int i = 51; i < in.n; i++)
        in.f[i]->dts_ms += 3000;
    fix_t x;
    fix_init(&x, SL_CODEC_AAC);
    push_all(&x, &in);
    run_until_idle(&x);
    int jumps = 0, at = -1;
    for (int i = 2; i < x.got.n; i++) {
        uint32_t d = x.got.f[i]->dts_ms - x.got.f[i - 1]->dts_ms;
        if (d > 22) {
            jumps++;
            at = i;
        } else {
            assert_in_range(d, 21, 22);
        }
    }
    assert_int_equal(jumps, 1);
    printf("  gap: output %u -> %u (input jumped %u -> %u)\n", x.got.f[at - 1]->dts_ms,
           x.got.f[at]->dts_ms, in.f[50]->dts_ms, in.f[51]->dts_ms);
    /* The new timeline starts at the first input frame after the hole. */
    assert_int_equal(x.got.f[at]->dts_ms, primed_dts(SL_CODEC_AAC, in.f[51]->dts_ms, 0));
    /* ... and the end stays within a frame or two of the input's end. */
    int64_t end_diff = (int64_t)x.got.f[x.got.n - 1]->dts_ms - (int64_t)in.f[in.n - 1]->dts_ms;
    assert_true(end_diff > -100 && end_diff < 30);
    fix_done(&x);
    fset_clear(&in);
}

/* A full queue drops the oldest coded frames (never the configuration), counts, never blocks. */
static void test_overflow_drops(void **state)
{
    (void)state;
    fset_t in;
    make_input(SL_CODEC_AAC, 0, SECONDS, &in);
    fix_t x;
    fix_init(&x, SL_CODEC_OPUS);
    sl__transcoder_pause(x.t, 1);
    int total = 600;
    uint64_t t0 = uv_hrtime();
    assert_int_equal(sl_transcoder_push(x.t, in.f[0]), 0); /* the config */
    for (int i = 0; i < total; i++) {
        sl_frame_t *f = in.f[1 + i % (in.n - 1)];
        uint32_t save = f->dts_ms;
        f->dts_ms = (uint32_t)(i * 1024 * 1000 / RATE);
        assert_int_equal(sl_transcoder_push(x.t, f), 0);
        f->dts_ms = save;
    }
    uint64_t push_ns = uv_hrtime() - t0;
    x.pushed = (uint64_t)total + 1;
    sl_transcoder_stats_t st;
    sl_transcoder_stats(x.t, &st);
    printf("  overflow: %d pushes into a stalled worker in %.2f ms, %llu dropped\n", total + 1,
           push_ns / 1e6, (unsigned long long)st.dropped);
    assert_int_equal(st.in_frames, (uint64_t)total + 1);
    assert_int_equal(st.dropped, (uint64_t)(total + 1 - SL_TRANSCODE_QUEUE_MAX));
    assert_true(push_ns < 500u * 1000 * 1000);
    sl__transcoder_pause(x.t, 0);
    run_until_idle(&x);
    sl_transcoder_stats(x.t, &st);
    /* The configuration survived the drops: everything kept decodes. */
    assert_int_equal(st.processed, SL_TRANSCODE_QUEUE_MAX);
    assert_int_equal(st.errors, 0);
    assert_true(x.got.n > 200);
    fix_done(&x);
    fset_clear(&in);
}

/* Freeing while the worker has a full queue to chew on is clean and prompt. */
static void test_free_while_busy(void **state)
{
    (void)state;
    fset_t in;
    make_input(SL_CODEC_OPUS, 0, SECONDS, &in);
    for (int round = 0; round < 3; round++) {
        fix_t x;
        fix_init(&x, SL_CODEC_AAC);
        for (int rep = 0; rep < 2; rep++)
            push_all(&x, &in);
        if (round == 1)
            uv_run(&x.loop, UV_RUN_NOWAIT); /* maybe some output pending on the async */
        fix_done(&x); /* frees with work queued and, likely, a frame in hand */
    }
    fset_clear(&in);
}

/* The output callback may free its transcoder: no callback follows. */
static void test_free_in_callback(void **state)
{
    (void)state;
    fset_t in;
    make_input(SL_CODEC_AAC, 0, SECONDS, &in);
    fix_t x;
    fix_init(&x, SL_CODEC_OPUS);
    x.free_in_cb = 1;
    push_all(&x, &in);
    x.start_ms = uv_now(&x.loop);
    assert_int_equal(uv_timer_start(&x.poll, on_poll, 2, 2), 0);
    while (x.t && !x.timed_out)
        uv_run(&x.loop, UV_RUN_ONCE);
    assert_false(x.timed_out);
    assert_int_equal(x.got.n, 1);
    uv_run(&x.loop, UV_RUN_NOWAIT); /* more output may have been queued: it is not delivered */
    assert_int_equal(x.got.n, 1);
    fix_done(&x); /* runs the loop: the close callback frees the transcoder */
    fset_clear(&in);
}

/* Garbage is counted as errors, never crashes, and the stream recovers. */
static void test_garbage(void **state)
{
    (void)state;
    srand(7);
    fset_t in;
    make_input(SL_CODEC_AAC, 0, 1, &in);
    fix_t x;
    fix_init(&x, SL_CODEC_OPUS);
    fset_t junk = {0};
    uint8_t rnd[400];
    /* Coded frames before any configuration: each one an error. */
    for (int i = 0; i < 10; i++) {
        for (size_t k = 0; k < sizeof rnd; k++)
            rnd[k] = (uint8_t)rand();
        junk.f[junk.n++] = mk_frame(SL_CODEC_AAC, 0, rnd, 50 + (size_t)i * 30, (uint32_t)i * 21);
    }
    push_all(&x, &junk);
    run_until_idle(&x);
    sl_transcoder_stats_t st;
    sl_transcoder_stats(x.t, &st);
    assert_int_equal(st.errors, 10);
    fset_clear(&junk);
    /* A configuration that names no sample rate: an error. */
    uint8_t bad_asc[2] = {0x07, 0x80}; /* object type 0 */
    junk.f[junk.n++] = mk_frame(SL_CODEC_AAC, 1, bad_asc, 2, 300);
    /* A real configuration, then random bytes as raw AAC. */
    junk.f[junk.n++] = sl_frame_ref(in.f[0]);
    for (int i = 0; i < 100; i++) {
        size_t n = 1 + (size_t)rand() % sizeof rnd;
        for (size_t k = 0; k < n; k++)
            rnd[k] = (uint8_t)rand();
        junk.f[junk.n++] = mk_frame(SL_CODEC_AAC, 0, rnd, n, 300 + (uint32_t)i * 21);
    }
    push_all(&x, &junk);
    run_until_idle(&x);
    sl_transcoder_stats(x.t, &st);
    printf("  garbage: %llu errors for 111 bad frames\n", (unsigned long long)st.errors);
    assert_true(st.errors >= 11 + 50);
    /* Then the real stream still transcodes. */
    uint64_t before = st.out_frames;
    push_all(&x, &in);
    run_until_idle(&x);
    sl_transcoder_stats(x.t, &st);
    assert_true(st.out_frames >= before + 40);
    fix_done(&x);
    fset_clear(&junk);
    fset_clear(&in);
}

/* Allocation failure at every early step (SL_FAULT_INJECTION builds): an error or a count, no leak. */
static void test_alloc_failures(void **state)
{
    (void)state;
    if (!sl_alloc_fail_at(0, 0))
        skip(); /* built without SL_FAULT_INJECTION */
    fset_t in;
    make_input(SL_CODEC_AAC, 0, 1, &in);
    int created = 0;
    for (uint64_t n = 1; n <= 60; n++) {
        fix_t x;
        memset(&x, 0, sizeof(x));
        assert_int_equal(uv_loop_init(&x.loop), 0);
        assert_int_equal(uv_timer_init(&x.loop, &x.poll), 0);
        x.poll.data = &x;
        sl_alloc_fail_at(n, 0);
        int rc = sl_transcoder_new(&x.loop, SL_CODEC_OPUS, on_out, &x, &x.t);
        if (rc) {
            assert_int_equal(rc, SL_ENOMEM);
            assert_null(x.t);
        } else {
            created++;
            for (int i = 0; i < in.n; i++) {
                rc = sl_transcoder_push(x.t, in.f[i]);
                assert_true(rc == 0 || rc == SL_ENOMEM);
                x.pushed += rc == 0;
            }
            run_until_idle(&x);
        }
        sl_alloc_fail_at(0, 0);
        fix_done(&x);
    }
    assert_true(created > 50);
    fset_clear(&in);
}

static void test_bad_args(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    sl_transcoder_t *t = (sl_transcoder_t *)1;
    assert_int_equal(sl_transcoder_new(&loop, SL_CODEC_MP3, on_out, NULL, &t), SL_EINVAL);
    assert_null(t);
    assert_int_equal(sl_transcoder_new(&loop, SL_CODEC_AAC, NULL, NULL, &t), SL_EINVAL);
    assert_int_equal(sl_transcoder_new(&loop, SL_CODEC_AAC, on_out, NULL, &t), 0);
    fset_t in;
    make_input(SL_CODEC_AAC, 0, 1, &in);
    assert_int_equal(sl_transcoder_push(t, in.f[1]), SL_EINVAL); /* already AAC */
    uint8_t v[6] = {0x17, 0x01, 0, 0, 0, 0};
    sl_buf_t *b = sl_buf_from(v, sizeof v);
    sl_frame_t *vf;
    assert_int_equal(sl_frame_new(SL_FLV_VIDEO, 0, b, &vf), 0);
    assert_int_equal(sl_transcoder_push(t, vf), SL_EINVAL); /* not audio */
    sl_frame_unref(vf);
    static uint8_t big[SL_TRANSCODE_FRAME_MAX + 1];
    sl_frame_t *bf = mk_frame(SL_CODEC_OPUS, 0, big, sizeof big, 0);
    assert_int_equal(sl_transcoder_push(t, bf), SL_ETOOBIG);
    sl_frame_unref(bf);
    sl_transcoder_free(t);
    sl_transcoder_free(NULL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    fset_clear(&in);
}

/* Everything allocated through sl_malloc came back. */
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
    av_log_set_level(AV_LOG_QUIET); /* the garbage test makes the AAC decoder chatty */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_aac_to_opus, leak_check),
        cmocka_unit_test_teardown(test_opus_to_aac, leak_check),
        cmocka_unit_test_teardown(test_aac_44k_mono_to_opus, leak_check),
        cmocka_unit_test_teardown(test_opus_without_header, leak_check),
        cmocka_unit_test_teardown(test_gap_resyncs, leak_check),
        cmocka_unit_test_teardown(test_overflow_drops, leak_check),
        cmocka_unit_test_teardown(test_free_while_busy, leak_check),
        cmocka_unit_test_teardown(test_free_in_callback, leak_check),
        cmocka_unit_test_teardown(test_garbage, leak_check),
        cmocka_unit_test_teardown(test_alloc_failures, leak_check),
        cmocka_unit_test_teardown(test_bad_args, leak_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
