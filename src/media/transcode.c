/*
 * Audio transcoder, to AAC or Opus from AAC, Opus, G.711 or MP3, off the loop
 * (see transcode.h).
 *
 * Shape: the loop thread copies each input frame's codec bytes into a job
 * (sl_malloc is thread-safe: its counters are atomic) and appends it to a
 * ring under `mu`, signalling `cv`. The worker thread pops a job, decodes
 * it (libavcodec), converts the samples to the encoder's format, rate and
 * layout (libswresample), cuts them into encoder-sized frames through an
 * AVAudioFifo, encodes, and wraps each packet into an FLV audio tag body
 * in a fresh sl_buf_t. A fresh buffer belongs to the worker alone until it
 * is handed over under the mutex, so its plain refcount is never touched
 * by two threads. The worker then wakes the loop with uv_async_send; the
 * async callback makes the sl_frame_t (the frame pool is loop-only) and
 * calls the user's callback.
 *
 * All libav state (decoder, resampler, FIFO, encoder) is the worker's
 * once the thread starts; the encoder is opened in sl_transcoder_new so
 * that a missing codec is reported at once. The worker frees that state
 * itself when told to stop; sl_transcoder_free joins it.
 */
#include "media/transcode.h"

#include <libavcodec/avcodec.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <sys/prctl.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/log.h"
#include "media/avpar.h"
#include "sluice/errors.h"

#define FIFO_MAX_SAMPLES (SL_TRANSCODE_RATE * 2) /* resampled audio waiting for the encoder */
#define CONFIG_MAX 1024                          /* larger codec configurations are refused */

/* One input frame, copied on the loop thread. */
typedef struct job {
    uint8_t *data;      /* codec bytes + AV_INPUT_BUFFER_PADDING_SIZE zeros (owned) */
    uint32_t len;       /* codec bytes */
    uint32_t dts_ms;    /* input timeline */
    uint32_t codec;     /* SL_CODEC_* of the input (sl_transcode_can_decode) */
    uint8_t is_config;  /* AudioSpecificConfig / OpusHead */
} job_t;

/* One output body, built on the worker, waiting for the loop. */
typedef struct out_item {
    struct out_item *next;
    sl_buf_t *body;  /* FLV audio tag body (owned reference) */
    uint32_t dts_ms;
} out_item_t;

/* Worker-only state: touched by the worker thread alone once it runs. */
typedef struct wstate {
    AVCodecContext *dec;      /* current decoder, NULL before a configuration */
    uint32_t dec_codec;       /* its SL_CODEC_* */
    uint8_t dec_cfg[CONFIG_MAX]; /* configuration it was opened with */
    uint32_t dec_cfg_len;
    SwrContext *swr;          /* converter for the decoder's current output */
    int swr_rate, swr_fmt;    /* ... and what it was built for */
    AVChannelLayout swr_layout;
    uint8_t **cvt;            /* converted-samples scratch (encoder format) */
    int cvt_cap;              /* samples per channel it holds */
    AVAudioFifo *fifo;        /* converted samples waiting for a full encoder frame */
    AVCodecContext *enc;      /* output encoder (opened in sl_transcoder_new) */
    AVFrame *dframe;          /* decoded frame */
    AVFrame *eframe;          /* frame handed to the encoder */
    AVPacket *pkt;            /* packet in and out */
    int64_t enc_pts;          /* samples sent to the encoder (its pts) */
    int synced;               /* a timeline anchor exists */
    uint32_t out_anchor_ms;   /* output dts of sample 0 of the current timeline */
    uint64_t out_samples;     /* samples emitted since the anchor (64-bit: no drift, no wrap) */
    uint32_t in_anchor_ms;    /* input dts where the current timeline began */
    uint64_t in_samples;      /* decoded input samples since then, at in_rate */
    int in_rate;              /* decoder sample rate */
    uint32_t last_in_dts;     /* dts of the previous coded input frame */
    int cfg_sent;             /* the output sequence header has been emitted */
    out_item_t *head, *tail;  /* outputs of the current job, handed over in one go */
    int n_out;
    uint64_t errors;          /* errors of the current job */
} wstate_t;

struct sl_transcoder {
    uv_loop_t *loop;
    uint32_t to_codec;
    sl_transcoder_out_cb out;
    void *ud;
    uv_async_t async;         /* worker -> loop wake-up; its close frees the struct */
    uv_thread_t thread;
    int thread_started;
    uv_mutex_t mu;            /* guards everything below */
    uv_cond_t cv;             /* job queued, stop, or unpause */
    job_t ring[SL_TRANSCODE_QUEUE_MAX]; /* input jobs, oldest at in_head */
    int in_head, in_n;
    out_item_t *out_head, *out_tail; /* outputs for the loop, oldest first */
    int out_n;
    int stop;                 /* the worker must exit */
    int paused;               /* test hook: the worker takes no job */
    int closing;              /* sl_transcoder_free was called (loop thread only) */
    sl_transcoder_stats_t st; /* counters (under mu) */
    wstate_t w;               /* worker-only */
};

static double thread_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- worker: output ------------------------------------------------------------------- */

/* Queues one tag body (header for the output codec + payload) on the job's output list. */
static int emit_body(wstate_t *w, uint32_t codec, int is_config, const uint8_t *p, size_t n,
                     uint32_t dts_ms)
{
    uint8_t hdr[SL_AVPAR_TAG_HEADER_MAX];
    size_t hlen = sl_avpar_flv_header(codec, is_config, 0, 0, hdr);
    if (!SL_ALWAYS(hlen > 0))
        return SL_EINVAL;
    sl_buf_t *b = sl_buf_new(hlen + n);
    out_item_t *it = sl_malloc(sizeof(*it));
    if (!b || !it) {
        sl_buf_unref(b);
        sl_free(it);
        return SL_ENOMEM;
    }
    memcpy(b->data, hdr, hlen);
    if (n)
        memcpy(b->data + hlen, p, n);
    b->len = (uint32_t)(hlen + n);
    it->next = NULL;
    it->body = b;
    it->dts_ms = dts_ms;
    if (w->tail)
        w->tail->next = it;
    else
        w->head = it;
    w->tail = it;
    w->n_out++;
    return 0;
}

/* Drains the encoder's packets into tag bodies, stamping them from the sample counter. */
static void drain_encoder(sl_transcoder_t *t)
{
    wstate_t *w = &t->w;
    for (;;) {
        int rc = avcodec_receive_packet(w->enc, w->pkt);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return;
        if (rc < 0) {
            w->errors++;
            return;
        }
        /* dts = anchor + samples / rate, from the 64-bit counter: rounding
         * never accumulates (AAC's 21.333 ms step stays exact over hours). */
        /* The encoder's delay (AAC's 1024 priming samples, Opus's pre-skip)
         * puts the first input sample that many samples into the decoded
         * output: the packet is stamped that much earlier so that decoded
         * sound stays in step with the input's (and the video's) clock.
         * Before the anchor it clamps at 0 (the first packet of a stream). */
        int64_t at = (int64_t)w->out_anchor_ms * SL_TRANSCODE_RATE / 1000 + (int64_t)w->out_samples -
                     (int64_t)w->enc->initial_padding;
        uint32_t dts = at > 0 ? (uint32_t)(at * 1000 / SL_TRANSCODE_RATE) : 0;
        int64_t dur = w->pkt->duration > 0 ? w->pkt->duration : w->enc->frame_size;
        w->out_samples += (uint64_t)dur;
        if (!w->cfg_sent) {
            if (emit_body(w, t->to_codec, 1, w->enc->extradata, (size_t)w->enc->extradata_size, dts))
                w->errors++;
            else
                w->cfg_sent = 1;
        }
        if (emit_body(w, t->to_codec, 0, w->pkt->data, (size_t)w->pkt->size, dts))
            w->errors++;
        av_packet_unref(w->pkt);
    }
}

/* Encodes every full encoder frame waiting in the FIFO. */
static void encode_fifo(sl_transcoder_t *t)
{
    wstate_t *w = &t->w;
    int fs = w->enc->frame_size;
    while (av_audio_fifo_size(w->fifo) >= fs) {
        if (av_frame_make_writable(w->eframe) < 0) {
            w->errors++;
            return;
        }
        if (av_audio_fifo_read(w->fifo, (void **)w->eframe->data, fs) != fs) {
            w->errors++;
            return;
        }
        w->eframe->pts = w->enc_pts;
        w->enc_pts += fs;
        if (avcodec_send_frame(w->enc, w->eframe) < 0) {
            w->errors++;
            continue;
        }
        drain_encoder(t);
    }
}

/* ---- worker: input -------------------------------------------------------------------- */

/* (Re)builds the converter when the decoder's output format differs from what it was built for. */
static int ensure_swr(sl_transcoder_t *t, AVFrame *f)
{
    wstate_t *w = &t->w;
    if (w->swr && w->swr_rate == f->sample_rate && w->swr_fmt == f->format &&
        av_channel_layout_compare(&w->swr_layout, &f->ch_layout) == 0)
        return 0;
    swr_free(&w->swr);
    av_channel_layout_uninit(&w->swr_layout);
    if (swr_alloc_set_opts2(&w->swr, &w->enc->ch_layout, w->enc->sample_fmt, w->enc->sample_rate,
                            &f->ch_layout, f->format, f->sample_rate, 0, NULL) < 0) {
        swr_free(&w->swr);
        return SL_EIO;
    }
    /* Mono goes to both channels at full level: libswresample's own mono
     * upmix is -3 dB, which would make a mono publisher quieter. */
    static const double mono_to_stereo[2] = {1.0, 1.0}; /* out x in, stride 1 */
    int bad = f->ch_layout.nb_channels == 1 && w->enc->ch_layout.nb_channels == 2 &&
              swr_set_matrix(w->swr, mono_to_stereo, 1) < 0;
    if (bad || swr_init(w->swr) < 0) {
        swr_free(&w->swr);
        return SL_EIO;
    }
    if (av_channel_layout_copy(&w->swr_layout, &f->ch_layout) < 0) {
        swr_free(&w->swr);
        return SL_ENOMEM;
    }
    w->swr_rate = f->sample_rate;
    w->swr_fmt = f->format;
    return 0;
}

/* Converts one decoded frame into the FIFO, then encodes what is complete. */
static void convert_frame(sl_transcoder_t *t, AVFrame *f)
{
    wstate_t *w = &t->w;
    if (f->sample_rate <= 0 || f->nb_samples <= 0 || ensure_swr(t, f)) {
        w->errors++;
        return;
    }
    int need = swr_get_out_samples(w->swr, f->nb_samples);
    if (need < 0) {
        w->errors++;
        return;
    }
    if (need > w->cvt_cap) {
        if (w->cvt)
            av_freep(&w->cvt[0]);
        av_freep(&w->cvt);
        w->cvt_cap = 0;
        if (av_samples_alloc_array_and_samples(&w->cvt, NULL, w->enc->ch_layout.nb_channels, need,
                                               w->enc->sample_fmt, 0) < 0) {
            w->errors++;
            return;
        }
        w->cvt_cap = need;
    }
    int got = swr_convert(w->swr, w->cvt, w->cvt_cap, (const uint8_t **)f->extended_data,
                          f->nb_samples);
    if (got < 0) {
        w->errors++;
        return;
    }
    /* The FIFO is bounded: the encoder keeps up with one decoded frame at a
     * time, so only a broken encoder could fill it; then old audio goes. */
    if (av_audio_fifo_size(w->fifo) + got > FIFO_MAX_SAMPLES) {
        av_audio_fifo_reset(w->fifo);
        w->errors++;
    }
    if (got > 0 && av_audio_fifo_write(w->fifo, (void **)w->cvt, got) != got) {
        w->errors++;
        return;
    }
    encode_fifo(t);
}

/* The libavcodec decoder of an input codec (AV_CODEC_ID_NONE: not one we take). */
static enum AVCodecID decoder_id(uint32_t codec)
{
    switch (codec) {
    case SL_CODEC_AAC: return AV_CODEC_ID_AAC;
    case SL_CODEC_OPUS: return AV_CODEC_ID_OPUS;
    case SL_CODEC_MP3: return AV_CODEC_ID_MP3;
    case SL_CODEC_FLV_AUDIO(7): return AV_CODEC_ID_PCM_ALAW;
    case SL_CODEC_FLV_AUDIO(8): return AV_CODEC_ID_PCM_MULAW;
    default: return AV_CODEC_ID_NONE;
    }
}

int sl_transcode_can_decode(uint32_t codec)
{
    enum AVCodecID id = decoder_id(codec);
    return id != AV_CODEC_ID_NONE && avcodec_find_decoder(id) != NULL;
}

/* Opens a decoder for codec from its configuration (NULL: Opus defaults, stereo). */
static int open_decoder(wstate_t *w, uint32_t codec, const uint8_t *cfg, uint32_t cfg_len)
{
    avcodec_free_context(&w->dec);
    w->dec_codec = 0;
    w->dec_cfg_len = 0;
    enum AVCodecID id = decoder_id(codec);
    const AVCodec *c = id != AV_CODEC_ID_NONE ? avcodec_find_decoder(id) : NULL;
    if (!c)
        return SL_EIO;
    AVCodecContext *ctx = avcodec_alloc_context3(c);
    AVCodecParameters *par = avcodec_parameters_alloc();
    int rc = SL_ENOMEM;
    if (!ctx || !par)
        goto fail;
    if (cfg) {
        if ((rc = sl_avpar_set_audio(par, codec, cfg, cfg_len)))
            goto fail;
        rc = SL_EIO;
        if (avcodec_parameters_to_context(ctx, par) < 0)
            goto fail;
    } else if (codec == SL_CODEC_FLV_AUDIO(7) || codec == SL_CODEC_FLV_AUDIO(8)) {
        /* G.711 (RTP payload types 8 and 0): 8 kHz mono by definition. */
        ctx->sample_rate = 8000;
        av_channel_layout_default(&ctx->ch_layout, 1);
    } else {
        /* Opus without OpusHead decodes as 48 kHz stereo (mono too); MP3 and
         * the others read rate and layout from their own frame headers. */
        ctx->sample_rate = SL_TRANSCODE_RATE;
        av_channel_layout_default(&ctx->ch_layout, 2);
    }
    ctx->pkt_timebase = (AVRational){1, 1000};
    rc = SL_EIO;
    if (avcodec_open2(ctx, c, NULL) < 0)
        goto fail;
    avcodec_parameters_free(&par);
    w->dec = ctx;
    w->dec_codec = codec;
    if (cfg) {
        memcpy(w->dec_cfg, cfg, cfg_len);
        w->dec_cfg_len = cfg_len;
    }
    return 0;
fail:
    avcodec_parameters_free(&par);
    avcodec_free_context(&ctx);
    return rc;
}

/* Restarts the output timeline at the input dts (first frame, or after a jump). */
static void resync(wstate_t *w, uint32_t dts_ms)
{
    w->synced = 1;
    w->out_anchor_ms = dts_ms;
    w->out_samples = 0;
    w->in_anchor_ms = dts_ms;
    w->in_samples = 0;
    av_audio_fifo_reset(w->fifo);
}

/* True when dts is more than SL_TRANSCODE_RESYNC_MS away from where the input should be. */
static int input_jumped(const wstate_t *w, uint32_t dts_ms)
{
    int64_t d_prev = (int64_t)dts_ms - (int64_t)w->last_in_dts;
    if (d_prev > SL_TRANSCODE_RESYNC_MS || d_prev < -SL_TRANSCODE_RESYNC_MS)
        return 1;
    if (w->in_rate <= 0)
        return 0;
    int64_t expect = (int64_t)w->in_anchor_ms + (int64_t)(w->in_samples * 1000 / (uint64_t)w->in_rate);
    int64_t d_exp = (int64_t)dts_ms - expect;
    return d_exp > SL_TRANSCODE_RESYNC_MS || d_exp < -SL_TRANSCODE_RESYNC_MS;
}

/* Runs one job through decoder, converter and encoder. */
static void process(sl_transcoder_t *t, const job_t *j)
{
    wstate_t *w = &t->w;
    if (j->is_config) {
        if (w->dec && w->dec_codec == j->codec && w->dec_cfg_len == j->len &&
            memcmp(w->dec_cfg, j->data, j->len) == 0)
            return; /* a repeated sequence header: keep the decoder and its state */
        if (j->len > CONFIG_MAX || open_decoder(w, j->codec, j->data, j->len))
            w->errors++;
        return;
    }
    if (!w->dec || w->dec_codec != j->codec) {
        /* AAC cannot be decoded without its AudioSpecificConfig; Opus can
         * (WebRTC sends no header), as stereo, which also decodes mono, and
         * so can G.711 and MP3, which have no configuration at all. */
        if (j->codec == SL_CODEC_AAC || open_decoder(w, j->codec, NULL, 0)) {
            w->errors++;
            return;
        }
    }
    if (!w->synced || input_jumped(w, j->dts_ms))
        resync(w, j->dts_ms);
    w->last_in_dts = j->dts_ms;
    w->pkt->data = j->data;
    w->pkt->size = (int)j->len;
    w->pkt->pts = w->pkt->dts = j->dts_ms;
    int rc = avcodec_send_packet(w->dec, w->pkt);
    w->pkt->data = NULL;
    w->pkt->size = 0;
    if (rc < 0) {
        w->errors++;
        return;
    }
    for (;;) {
        rc = avcodec_receive_frame(w->dec, w->dframe);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            break;
        if (rc < 0) {
            w->errors++;
            break;
        }
        if (w->dframe->sample_rate > 0 && w->dframe->sample_rate != w->in_rate) {
            w->in_rate = w->dframe->sample_rate;
            w->in_anchor_ms = j->dts_ms; /* rate change: count from here */
            w->in_samples = 0;
        }
        w->in_samples += (uint64_t)w->dframe->nb_samples;
        convert_frame(t, w->dframe);
        av_frame_unref(w->dframe);
    }
}

static void wstate_cleanup(wstate_t *w)
{
    avcodec_free_context(&w->dec);
    avcodec_free_context(&w->enc);
    swr_free(&w->swr);
    av_channel_layout_uninit(&w->swr_layout);
    if (w->cvt)
        av_freep(&w->cvt[0]);
    av_freep(&w->cvt);
    if (w->fifo)
        av_audio_fifo_free(w->fifo);
    w->fifo = NULL;
    av_frame_free(&w->dframe);
    av_frame_free(&w->eframe);
    av_packet_free(&w->pkt);
}

static void job_free(job_t *j)
{
    sl_free(j->data);
    j->data = NULL;
}

static void out_list_free(out_item_t *it)
{
    while (it) {
        out_item_t *next = it->next;
        sl_buf_unref(it->body);
        sl_free(it);
        it = next;
    }
}

static void worker_main(void *arg)
{
    sl_transcoder_t *t = arg;
    wstate_t *w = &t->w;
    /* Named so that top -H and bench/audio-bridge-cpu.sh can tell its CPU apart. */
    prctl(PR_SET_NAME, "sl-transcode", 0, 0, 0);
    uv_mutex_lock(&t->mu);
    for (;;) {
        while (!t->stop && (t->paused || t->in_n == 0))
            uv_cond_wait(&t->cv, &t->mu);
        if (t->stop)
            break;
        job_t j = t->ring[t->in_head];
        t->in_head = (t->in_head + 1) % SL_TRANSCODE_QUEUE_MAX;
        t->in_n--;
        uv_mutex_unlock(&t->mu);

        double t0 = thread_cpu_ms();
        w->errors = 0;
        process(t, &j);
        job_free(&j);
        double spent = thread_cpu_ms() - t0;

        uv_mutex_lock(&t->mu);
        t->st.errors += w->errors;
        t->st.worker_ms += spent;
        t->st.processed++;
        int wake = w->head != NULL;
        if (w->head) {
            if (t->out_tail)
                t->out_tail->next = w->head;
            else
                t->out_head = w->head;
            t->out_tail = w->tail;
            t->out_n += w->n_out;
            w->head = w->tail = NULL;
            w->n_out = 0;
            /* The loop is not taking frames: keep the newest, count the rest. */
            while (t->out_n > SL_TRANSCODE_OUT_MAX) {
                out_item_t *old = t->out_head;
                t->out_head = old->next;
                old->next = NULL;
                out_list_free(old);
                t->out_n--;
                t->st.dropped++;
            }
        }
        t->st.pending_out = (uint64_t)t->out_n;
        if (wake)
            uv_async_send(&t->async);
    }
    uv_mutex_unlock(&t->mu);
    out_list_free(w->head);
    w->head = w->tail = NULL;
    wstate_cleanup(w);
}

/* ---- loop side ------------------------------------------------------------------------ */

static void on_async(uv_async_t *h)
{
    sl_transcoder_t *t = h->data;
    while (!t->closing) {
        uv_mutex_lock(&t->mu);
        out_item_t *it = t->out_head;
        if (it) {
            t->out_head = it->next;
            if (!t->out_head)
                t->out_tail = NULL;
            t->out_n--;
            t->st.pending_out = (uint64_t)t->out_n;
        }
        uv_mutex_unlock(&t->mu);
        if (!it)
            return;
        sl_frame_t *f = NULL;
        int rc = sl_frame_new(SL_FLV_AUDIO, it->dts_ms, it->body, &f); /* takes the body */
        sl_free(it);
        uv_mutex_lock(&t->mu);
        if (rc)
            t->st.errors++;
        else
            t->st.out_frames++;
        uv_mutex_unlock(&t->mu);
        if (rc)
            continue;
        t->out(t->ud, f); /* may free t: `closing` is then set and the struct lives until on_closed */
        sl_frame_unref(f);
    }
}

static void on_closed(uv_handle_t *h)
{
    sl_transcoder_t *t = h->data;
    uv_cond_destroy(&t->cv);
    uv_mutex_destroy(&t->mu);
    sl_free(t);
}

static int open_encoder(wstate_t *w, uint32_t to_codec)
{
    const char *name = to_codec == SL_CODEC_AAC ? "aac" : "libopus";
    const AVCodec *c = avcodec_find_encoder_by_name(name);
    if (!c) {
        SL_LOGE(NULL, "transcode: libavcodec has no %s encoder", name);
        return SL_EIO;
    }
    AVCodecContext *ctx = avcodec_alloc_context3(c);
    if (!ctx)
        return SL_ENOMEM;
    ctx->sample_rate = SL_TRANSCODE_RATE;
    av_channel_layout_default(&ctx->ch_layout, SL_TRANSCODE_CHANNELS);
    ctx->time_base = (AVRational){1, SL_TRANSCODE_RATE};
    ctx->flags |= AV_CODEC_FLAG_GLOBAL_HEADER; /* the sequence header needs extradata */
    AVDictionary *opts = NULL;
    if (to_codec == SL_CODEC_AAC) {
        ctx->sample_fmt = AV_SAMPLE_FMT_FLTP;
        ctx->bit_rate = SL_TRANSCODE_AAC_BITRATE;
        ctx->profile = FF_PROFILE_AAC_LOW;
    } else {
        ctx->sample_fmt = AV_SAMPLE_FMT_FLT;
        ctx->bit_rate = SL_TRANSCODE_OPUS_BITRATE;
        av_dict_set(&opts, "frame_duration", "20", 0);
        av_dict_set(&opts, "application", "audio", 0);
    }
    int rc = avcodec_open2(ctx, c, &opts);
    av_dict_free(&opts);
    if (rc < 0 || ctx->frame_size <= 0 || ctx->extradata_size <= 0) {
        char msg[AV_ERROR_MAX_STRING_SIZE] = "no frame size or extradata";
        if (rc < 0)
            av_strerror(rc, msg, sizeof msg);
        SL_LOGE(NULL, "transcode: cannot open the %s encoder: %s", name, msg);
        avcodec_free_context(&ctx);
        return SL_EIO;
    }
    w->enc = ctx;
    return 0;
}

int sl_transcoder_new(uv_loop_t *loop, uint32_t to_codec, sl_transcoder_out_cb out, void *ud,
                      sl_transcoder_t **out_t)
{
    if (out_t)
        *out_t = NULL;
    if (!loop || !out || !out_t || (to_codec != SL_CODEC_AAC && to_codec != SL_CODEC_OPUS))
        return SL_EINVAL;
    sl_transcoder_t *t = sl_calloc(1, sizeof(*t));
    if (!t)
        return SL_ENOMEM;
    int rc = 0, have_mu = 0, have_cv = 0;
    t->loop = loop;
    t->to_codec = to_codec;
    t->out = out;
    t->ud = ud;
    wstate_t *w = &t->w;
    if ((rc = open_encoder(w, to_codec)))
        goto fail;
    rc = SL_ENOMEM;
    w->fifo = av_audio_fifo_alloc(w->enc->sample_fmt, w->enc->ch_layout.nb_channels,
                                  w->enc->frame_size * 4);
    w->dframe = av_frame_alloc();
    w->eframe = av_frame_alloc();
    w->pkt = av_packet_alloc();
    if (!w->fifo || !w->dframe || !w->eframe || !w->pkt)
        goto fail;
    w->eframe->format = w->enc->sample_fmt;
    w->eframe->sample_rate = w->enc->sample_rate;
    w->eframe->nb_samples = w->enc->frame_size;
    if (av_channel_layout_copy(&w->eframe->ch_layout, &w->enc->ch_layout) < 0 ||
        av_frame_get_buffer(w->eframe, 0) < 0)
        goto fail;
    if ((rc = uv_mutex_init(&t->mu)))
        goto fail;
    have_mu = 1;
    if ((rc = uv_cond_init(&t->cv)))
        goto fail;
    have_cv = 1;
    if ((rc = uv_async_init(loop, &t->async, on_async)))
        goto fail;
    t->async.data = t;
    if ((rc = uv_thread_create(&t->thread, worker_main, t))) {
        /* The async handle is live: close it; on_closed frees t (and the locks). */
        SL_LOGE(NULL, "transcode: cannot start the worker thread: %s", uv_strerror(rc));
        wstate_cleanup(w);
        t->closing = 1;
        uv_close((uv_handle_t *)&t->async, on_closed);
        return rc;
    }
    t->thread_started = 1;
    *out_t = t;
    return 0;
fail:
    if (have_cv)
        uv_cond_destroy(&t->cv);
    if (have_mu)
        uv_mutex_destroy(&t->mu);
    wstate_cleanup(w);
    sl_free(t);
    return rc;
}

int sl_transcoder_push(sl_transcoder_t *t, const sl_frame_t *in)
{
    if (!t || !in || !in->body || in->kind != SL_FLV_AUDIO)
        return SL_EINVAL;
    if (t->closing)
        return SL_ECLOSED;
    if (!sl_transcode_can_decode(in->codec) || in->codec == t->to_codec)
        return SL_EINVAL;
    if (in->flags & SL_FRAME_EOS)
        return 0;
    if (in->data_off > in->body->len)
        return SL_EINVAL;
    uint32_t n = in->body->len - in->data_off;
    if (n > SL_TRANSCODE_FRAME_MAX)
        return SL_ETOOBIG;
    job_t j = {.len = n, .dts_ms = in->dts_ms, .codec = in->codec,
               .is_config = (in->flags & SL_FRAME_CONFIG) != 0};
    /* libavcodec reads up to AV_INPUT_BUFFER_PADDING_SIZE past a packet's end. */
    j.data = sl_malloc((size_t)n + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!j.data)
        return SL_ENOMEM;
    memcpy(j.data, in->body->data + in->data_off, n);
    memset(j.data + n, 0, AV_INPUT_BUFFER_PADDING_SIZE);

    uv_mutex_lock(&t->mu);
    if (t->in_n == SL_TRANSCODE_QUEUE_MAX) {
        /* Full: drop the oldest coded frame. A configuration is kept, because
         * without it every later AAC frame would be undecodable. */
        int k = 0;
        while (k < t->in_n && t->ring[(t->in_head + k) % SL_TRANSCODE_QUEUE_MAX].is_config)
            k++;
        if (k == t->in_n)
            k = 0; /* nothing but configurations: the oldest goes */
        job_free(&t->ring[(t->in_head + k) % SL_TRANSCODE_QUEUE_MAX]);
        for (; k > 0; k--) /* close the hole: shift the older configurations up by one */
            t->ring[(t->in_head + k) % SL_TRANSCODE_QUEUE_MAX] =
                t->ring[(t->in_head + k - 1) % SL_TRANSCODE_QUEUE_MAX];
        t->in_head = (t->in_head + 1) % SL_TRANSCODE_QUEUE_MAX;
        t->in_n--;
        t->st.dropped++;
    }
    t->ring[(t->in_head + t->in_n) % SL_TRANSCODE_QUEUE_MAX] = j;
    t->in_n++;
    t->st.in_frames++;
    uv_cond_signal(&t->cv);
    uv_mutex_unlock(&t->mu);
    return 0;
}

void sl_transcoder_free(sl_transcoder_t *t)
{
    if (!t || t->closing)
        return;
    t->closing = 1;
    uv_mutex_lock(&t->mu);
    t->stop = 1;
    uv_cond_signal(&t->cv);
    uv_mutex_unlock(&t->mu);
    if (t->thread_started)
        uv_thread_join(&t->thread); /* the worker frees its libav state on the way out */
    for (; t->in_n > 0; t->in_n--) {
        job_free(&t->ring[t->in_head]);
        t->in_head = (t->in_head + 1) % SL_TRANSCODE_QUEUE_MAX;
    }
    out_list_free(t->out_head);
    t->out_head = t->out_tail = NULL;
    t->out_n = 0;
    uv_close((uv_handle_t *)&t->async, on_closed);
}

void sl_transcoder_stats(const sl_transcoder_t *t, sl_transcoder_stats_t *st)
{
    sl_transcoder_t *m = (sl_transcoder_t *)t; /* the lock is not part of the logical state */
    uv_mutex_lock(&m->mu);
    *st = t->st;
    uv_mutex_unlock(&m->mu);
}

void sl__transcoder_pause(sl_transcoder_t *t, int paused)
{
    uv_mutex_lock(&t->mu);
    t->paused = paused;
    uv_cond_signal(&t->cv);
    uv_mutex_unlock(&t->mu);
}
