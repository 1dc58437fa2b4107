/*
 * Video transcoder for ABR variants, off the loop (see vtranscode.h).
 *
 * Shape (as media/transcode.c): the loop copies each input frame's codec
 * bytes into a job and appends it to a ring under `mu`; the worker pops a
 * job, decodes it once, and for each variant scales the picture
 * (libswscale) and encodes it (libx264). Each encoded packet becomes an
 * FLV AVC video tag body in a fresh sl_buf_t (worker-private until handed
 * over under the mutex); the async callback makes the frames on the loop.
 *
 * libx264 writes Annex B (start codes) even with a global header; FLV
 * wants AVCC: the worker builds the avcC record from the encoder's SPS and
 * PPS once, and rewrites each packet's NAL units with 4-byte lengths
 * (dropping access unit delimiters).
 *
 * Timestamps: the decoder returns pictures in presentation order carrying
 * their pts; the input dts are kept in a FIFO in decode order and the k-th
 * picture out takes the k-th dts in (never above its own pts), so a
 * source without B-frames keeps its timestamps exactly and one with them
 * keeps its keyframes' dts and pts (see the header on alignment).
 */
#include "media/vtranscode.h"

#include <libavcodec/avcodec.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "base/alloc.h"
#include "base/log.h"
#include "media/avpar.h"
#include "sluice/errors.h"

#define TS_RING 64 /* input timings remembered (decoder delay is a few pictures) */

typedef struct job {
    uint8_t *data;      /* codec bytes + AV_INPUT_BUFFER_PADDING_SIZE zeros (owned) */
    uint32_t len;
    uint32_t dts_ms;
    int32_t cts_ms;
    uint32_t codec;
    uint8_t is_config, is_key;
} job_t;

typedef struct out_item {
    struct out_item *next;
    sl_buf_t *body;     /* FLV video tag body (owned reference) */
    uint32_t dts_ms;
    uint8_t variant;
} out_item_t;

/* One output, worker-only after the thread starts. */
typedef struct vt_out {
    sl_vt_variant_t v;
    AVCodecContext *enc;
    struct SwsContext *sws;
    int sws_w, sws_h, sws_fmt;   /* what sws was built for */
    AVFrame *frame;              /* scaled picture, variant size, yuv420p */
    uint8_t *avcc;               /* AVCDecoderConfigurationRecord (sl_malloc) */
    size_t avcc_len;
    int cfg_sent;
    int64_t next_due_us;         /* fps limiting: next picture kept at or after this pts */
    int64_t last_dts;            /* output dts never goes back */
    struct { int64_t pts, dts; } ts[TS_RING]; /* pictures sent to the encoder */
    unsigned ts_n;
} vt_out_t;

typedef struct wstate {
    AVCodecContext *dec;
    uint32_t dec_codec;
    uint8_t dec_cfg[SL_VT_CONFIG_MAX];
    uint32_t dec_cfg_len;
    AVFrame *dframe;
    AVPacket *pkt;
    int64_t dts_fifo[TS_RING];   /* input dts in decode order, not yet given to a picture */
    unsigned dts_head, dts_n;
    struct { int64_t pts; uint8_t key; } keys[TS_RING]; /* input pts -> keyframe flag */
    unsigned keys_n;
    out_item_t *head, *tail;
    int n_out;
    uint64_t errors, decoded;
    uint32_t src_w, src_h;
} wstate_t;

struct sl_vtranscoder {
    uv_loop_t *loop;
    sl_vtranscoder_out_cb out;
    void *ud;
    size_t n_out_variants;
    vt_out_t vo[SL_VT_VARIANTS_MAX];  /* worker-only once it runs */
    uv_async_t async;
    uv_thread_t thread;
    int thread_started;
    uv_mutex_t mu;                    /* guards what follows */
    uv_cond_t cv;
    job_t ring[SL_VT_QUEUE_MAX];
    int in_head, in_n;
    size_t in_bytes;
    int skip_to_key;                  /* overload: input dropped until the next keyframe */
    out_item_t *out_head, *out_tail;
    int out_n;
    int stop, paused;
    int closing;                      /* loop thread only */
    sl_vtranscoder_stats_t st;
    wstate_t w;
};

static double thread_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- Annex B -> AVCC ------------------------------------------------------------------ */

/*
 * Finds the next NAL unit in p[0..n) from *pos: Annex B start codes. Sets
 * *nal and *nal_len and advances *pos; 0 when there is none left.
 */
static int next_nal(const uint8_t *p, size_t n, size_t *pos, const uint8_t **nal, size_t *nal_len)
{
    size_t i = *pos;
    /* skip to the byte after a start code */
    while (i + 3 <= n && !(p[i] == 0 && p[i + 1] == 0 && p[i + 2] == 1))
        i++;
    if (i + 3 > n)
        return 0;
    i += 3;
    size_t start = i;
    while (i + 3 <= n && !(p[i] == 0 && p[i + 1] == 0 && (p[i + 2] == 1 || p[i + 2] == 0)))
        i++;
    size_t end = i + 3 <= n ? i : n;
    while (end > start && p[end - 1] == 0) /* trailing zeros belong to the next start code */
        end--;
    *pos = i + 3 <= n ? i : n;
    *nal = p + start;
    *nal_len = end - start;
    return 1;
}

int sl__vt_make_avcc(const uint8_t *p, size_t n, uint8_t **out, size_t *out_len)
{
    const uint8_t *sps = NULL, *pps = NULL, *nal;
    size_t sps_len = 0, pps_len = 0, nl, pos = 0;
    while (next_nal(p, n, &pos, &nal, &nl)) {
        if (nl == 0)
            continue;
        if ((nal[0] & 0x1f) == 7 && !sps) {
            sps = nal;
            sps_len = nl;
        } else if ((nal[0] & 0x1f) == 8 && !pps) {
            pps = nal;
            pps_len = nl;
        }
    }
    if (!sps || !pps || sps_len < 4 || sps_len > 0xffff || pps_len > 0xffff)
        return SL_EPROTO;
    size_t len = 6 + 2 + sps_len + 1 + 2 + pps_len;
    uint8_t *b = sl_malloc(len);
    if (!b)
        return SL_ENOMEM;
    size_t o = 0;
    b[o++] = 1;
    b[o++] = sps[1]; /* profile */
    b[o++] = sps[2]; /* constraints */
    b[o++] = sps[3]; /* level */
    b[o++] = 0xff;   /* 4-byte NAL lengths */
    b[o++] = 0xe1;   /* one SPS */
    b[o++] = (uint8_t)(sps_len >> 8);
    b[o++] = (uint8_t)sps_len;
    memcpy(b + o, sps, sps_len);
    o += sps_len;
    b[o++] = 1;      /* one PPS */
    b[o++] = (uint8_t)(pps_len >> 8);
    b[o++] = (uint8_t)pps_len;
    memcpy(b + o, pps, pps_len);
    o += pps_len;
    *out = b;
    *out_len = o;
    return 0;
}

size_t sl__vt_to_avcc(const uint8_t *annexb, size_t n, uint8_t *out)
{
    size_t pos = 0, nl, off = 0;
    const uint8_t *nal;
    while (next_nal(annexb, n, &pos, &nal, &nl)) {
        if (!nl || (nal[0] & 0x1f) == 9) /* access unit delimiters are Annex B only */
            continue;
        if (out) {
            out[off] = (uint8_t)(nl >> 24);
            out[off + 1] = (uint8_t)(nl >> 16);
            out[off + 2] = (uint8_t)(nl >> 8);
            out[off + 3] = (uint8_t)nl;
            memcpy(out + off + 4, nal, nl);
        }
        off += 4 + nl;
    }
    return off;
}

/* ---- worker: output ------------------------------------------------------------------- */

static int queue_body(wstate_t *w, size_t variant, sl_buf_t *b, uint32_t dts_ms)
{
    out_item_t *it = sl_malloc(sizeof *it);
    if (!it) {
        sl_buf_unref(b);
        return SL_ENOMEM;
    }
    it->next = NULL;
    it->body = b;
    it->dts_ms = dts_ms;
    it->variant = (uint8_t)variant;
    if (w->tail)
        w->tail->next = it;
    else
        w->head = it;
    w->tail = it;
    w->n_out++;
    return 0;
}

static int emit_config(wstate_t *w, size_t variant, vt_out_t *o, uint32_t dts_ms)
{
    uint8_t hdr[SL_AVPAR_TAG_HEADER_MAX];
    size_t hl = sl_avpar_flv_header(SL_CODEC_AVC, 1, 1, 0, hdr);
    sl_buf_t *b = sl_buf_new(hl + o->avcc_len);
    if (!b)
        return SL_ENOMEM;
    memcpy(b->data, hdr, hl);
    memcpy(b->data + hl, o->avcc, o->avcc_len);
    b->len = (uint32_t)(hl + o->avcc_len);
    return queue_body(w, variant, b, dts_ms);
}

/* The dts remembered for the picture of pts (ring lookup); pts itself when unknown. */
static int64_t dts_of(vt_out_t *o, int64_t pts)
{
    unsigned n = o->ts_n < TS_RING ? o->ts_n : TS_RING;
    for (unsigned k = 0; k < n; k++) {
        unsigned i = (o->ts_n - 1 - k) % TS_RING;
        if (o->ts[i].pts == pts)
            return o->ts[i].dts;
    }
    return pts;
}

static void drain_encoder(sl_vtranscoder_t *t, size_t vi)
{
    wstate_t *w = &t->w;
    vt_out_t *o = &t->vo[vi];
    AVPacket *pkt = w->pkt;
    for (;;) {
        int rc = avcodec_receive_packet(o->enc, pkt);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return;
        if (rc < 0) {
            w->errors++;
            return;
        }
        int64_t pts = pkt->pts;
        int64_t dts = dts_of(o, pts);
        if (dts > pts)
            dts = pts;
        if (dts < o->last_dts)
            dts = o->last_dts;
        o->last_dts = dts;
        int key = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
        size_t total = sl__vt_to_avcc(pkt->data, (size_t)pkt->size, NULL);
        uint8_t hdr[SL_AVPAR_TAG_HEADER_MAX];
        size_t hl = sl_avpar_flv_header(SL_CODEC_AVC, 0, key, (int32_t)(pts - dts), hdr);
        sl_buf_t *b = total ? sl_buf_new(hl + total) : NULL;
        if (!b) {
            w->errors++;
            av_packet_unref(pkt);
            continue;
        }
        memcpy(b->data, hdr, hl);
        b->len = (uint32_t)(hl + sl__vt_to_avcc(pkt->data, (size_t)pkt->size, b->data + hl));
        av_packet_unref(pkt);
        if (!o->cfg_sent) {
            if (emit_config(w, vi, o, (uint32_t)dts)) {
                w->errors++;
                sl_buf_unref(b);
                continue;
            }
            o->cfg_sent = 1;
        }
        if (queue_body(w, vi, b, (uint32_t)dts))
            w->errors++;
    }
}

/* Scales and encodes one decoded picture for variant vi. */
static void encode_variant(sl_vtranscoder_t *t, size_t vi, AVFrame *f, int64_t pts, int64_t dts,
                           int key)
{
    wstate_t *w = &t->w;
    vt_out_t *o = &t->vo[vi];
    if (o->v.fps) {
        int64_t step = 1000000 / (int64_t)o->v.fps, pts_us = pts * 1000;
        if (!key && o->next_due_us && pts_us + 2000 < o->next_due_us)
            return; /* over the variant's frame rate */
        o->next_due_us = (o->next_due_us && o->next_due_us + step > pts_us)
                             ? o->next_due_us + step
                             : pts_us + step;
    }
    if (!o->sws || o->sws_w != f->width || o->sws_h != f->height || o->sws_fmt != f->format) {
        sws_freeContext(o->sws);
        o->sws = sws_getContext(f->width, f->height, f->format, o->v.width, o->v.height,
                                AV_PIX_FMT_YUV420P, SWS_BILINEAR, NULL, NULL, NULL);
        if (!o->sws) {
            w->errors++;
            return;
        }
        o->sws_w = f->width;
        o->sws_h = f->height;
        o->sws_fmt = f->format;
    }
    if (av_frame_make_writable(o->frame) < 0) {
        w->errors++;
        return;
    }
    sws_scale(o->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, o->frame->data,
              o->frame->linesize);
    o->frame->pts = pts;
    /* Keyframes exactly where the source has them: ABR needs aligned GOPs. */
    o->frame->pict_type = key ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
    unsigned i = o->ts_n++ % TS_RING;
    o->ts[i].pts = pts;
    o->ts[i].dts = dts;
    if (avcodec_send_frame(o->enc, o->frame) < 0) {
        w->errors++;
        return;
    }
    drain_encoder(t, vi);
}

/* ---- worker: input -------------------------------------------------------------------- */

static enum AVCodecID decoder_id(uint32_t codec)
{
    return codec == SL_CODEC_AVC ? AV_CODEC_ID_H264
           : codec == SL_CODEC_HEVC ? AV_CODEC_ID_HEVC
                                    : AV_CODEC_ID_NONE;
}

int sl_vtranscode_can_decode(uint32_t codec)
{
    enum AVCodecID id = decoder_id(codec);
    return id != AV_CODEC_ID_NONE && avcodec_find_decoder(id) != NULL &&
           avcodec_find_encoder_by_name("libx264") != NULL;
}

int sl_vt_variant_check(const sl_vt_variant_t *v)
{
    if (!v || v->width < SL_VT_DIM_MIN || v->height < SL_VT_DIM_MIN || v->width > SL_VT_MAX_DIM ||
        v->height > SL_VT_MAX_DIM || (v->width & 1) || (v->height & 1) ||
        (uint64_t)v->width * v->height > SL_VT_MAX_PIXELS || v->bitrate < 32000 ||
        v->bitrate > 50000000 || v->fps > 120)
        return SL_EINVAL;
    return 0;
}

/* Opens the decoder from a configuration record, refusing pictures over the caps first. */
static int open_decoder(wstate_t *w, uint32_t codec, const uint8_t *cfg, uint32_t cfg_len)
{
    avcodec_free_context(&w->dec);
    w->dec_codec = 0;
    w->dec_cfg_len = 0;
    w->dts_n = 0;
    w->keys_n = 0;
    const AVCodec *c = avcodec_find_decoder(decoder_id(codec));
    AVCodecParameters *par = avcodec_parameters_alloc();
    AVCodecContext *ctx = NULL;
    int rc = SL_ENOMEM;
    if (!c || !par)
        goto fail;
    if ((rc = sl_avpar_set_video(par, codec, cfg, cfg_len, NULL, 0, 0, 0)))
        goto fail;
    rc = SL_ETOOBIG; /* a hostile SPS: nothing is allocated for its size */
    if (par->width > SL_VT_MAX_DIM || par->height > SL_VT_MAX_DIM ||
        (uint64_t)par->width * (uint64_t)par->height > SL_VT_MAX_PIXELS)
        goto fail;
    rc = SL_ENOMEM;
    if (!(ctx = avcodec_alloc_context3(c)))
        goto fail;
    rc = SL_EIO;
    if (avcodec_parameters_to_context(ctx, par) < 0)
        goto fail;
    ctx->pkt_timebase = (AVRational){1, 1000};
    ctx->max_pixels = SL_VT_MAX_PIXELS; /* libavcodec refuses larger pictures before allocating */
    ctx->thread_count = 1;               /* one core per transcoder: predictable CPU */
    if (avcodec_open2(ctx, c, NULL) < 0)
        goto fail;
    avcodec_parameters_free(&par);
    w->dec = ctx;
    w->dec_codec = codec;
    memcpy(w->dec_cfg, cfg, cfg_len);
    w->dec_cfg_len = cfg_len;
    return 0;
fail:
    avcodec_parameters_free(&par);
    avcodec_free_context(&ctx);
    return rc;
}

static int key_of(const wstate_t *w, int64_t pts)
{
    unsigned n = w->keys_n < TS_RING ? w->keys_n : TS_RING;
    for (unsigned k = 0; k < n; k++) {
        unsigned i = (w->keys_n - 1 - k) % TS_RING;
        if (w->keys[i].pts == pts)
            return w->keys[i].key;
    }
    return 0;
}

static void process(sl_vtranscoder_t *t, const job_t *j)
{
    wstate_t *w = &t->w;
    if (j->is_config) {
        if (w->dec && w->dec_codec == j->codec && w->dec_cfg_len == j->len &&
            memcmp(w->dec_cfg, j->data, j->len) == 0)
            return; /* a repeated sequence header */
        if (open_decoder(w, j->codec, j->data, j->len))
            w->errors++;
        return;
    }
    if (!w->dec || w->dec_codec != j->codec) {
        w->errors++; /* coded video needs its configuration first */
        return;
    }
    int64_t pts = (int64_t)j->dts_ms + j->cts_ms;
    if (w->dts_n == TS_RING) { /* a decoder that never outputs: forget the oldest */
        w->dts_head = (w->dts_head + 1) % TS_RING;
        w->dts_n--;
    }
    w->dts_fifo[(w->dts_head + w->dts_n++) % TS_RING] = j->dts_ms;
    unsigned ki = w->keys_n++ % TS_RING;
    w->keys[ki].pts = pts;
    w->keys[ki].key = j->is_key;
    w->pkt->data = j->data;
    w->pkt->size = (int)j->len;
    w->pkt->pts = pts;
    w->pkt->dts = j->dts_ms;
    w->pkt->flags = j->is_key ? AV_PKT_FLAG_KEY : 0;
    int rc = avcodec_send_packet(w->dec, w->pkt);
    w->pkt->data = NULL;
    w->pkt->size = 0;
    w->pkt->flags = 0;
    if (rc < 0) {
        w->errors++;
        w->dts_n--; /* it will give no picture */
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
        AVFrame *f = w->dframe;
        int64_t fpts = f->best_effort_timestamp != AV_NOPTS_VALUE ? f->best_effort_timestamp
                                                                   : f->pts;
        int64_t dts = fpts;
        if (w->dts_n) {
            dts = w->dts_fifo[w->dts_head];
            w->dts_head = (w->dts_head + 1) % TS_RING;
            w->dts_n--;
        }
        if (dts > fpts)
            dts = fpts;
        if (f->width <= 0 || f->height <= 0 || f->width > SL_VT_MAX_DIM ||
            f->height > SL_VT_MAX_DIM) {
            w->errors++;
            av_frame_unref(f);
            continue;
        }
        w->decoded++;
        w->src_w = (uint32_t)f->width;
        w->src_h = (uint32_t)f->height;
        int key = key_of(w, fpts) || f->key_frame;
        for (size_t vi = 0; vi < t->n_out_variants; vi++)
            encode_variant(t, vi, f, fpts, dts, key);
        av_frame_unref(f);
    }
}

static void wstate_cleanup(sl_vtranscoder_t *t)
{
    wstate_t *w = &t->w;
    avcodec_free_context(&w->dec);
    av_frame_free(&w->dframe);
    av_packet_free(&w->pkt);
    for (size_t i = 0; i < SL_VT_VARIANTS_MAX; i++) {
        vt_out_t *o = &t->vo[i];
        avcodec_free_context(&o->enc);
        sws_freeContext(o->sws);
        o->sws = NULL;
        av_frame_free(&o->frame);
        sl_free(o->avcc);
        o->avcc = NULL;
    }
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
    sl_vtranscoder_t *t = arg;
    wstate_t *w = &t->w;
    prctl(PR_SET_NAME, "sl-vtranscode", 0, 0, 0); /* top -H, bench/abr-cpu.sh */
    uv_mutex_lock(&t->mu);
    for (;;) {
        while (!t->stop && (t->paused || t->in_n == 0))
            uv_cond_wait(&t->cv, &t->mu);
        if (t->stop)
            break;
        job_t j = t->ring[t->in_head];
        t->in_head = (t->in_head + 1) % SL_VT_QUEUE_MAX;
        t->in_n--;
        t->in_bytes -= j.len;
        uv_mutex_unlock(&t->mu);

        double t0 = thread_cpu_ms();
        w->errors = 0;
        w->decoded = 0;
        process(t, &j);
        job_free(&j);
        double spent = thread_cpu_ms() - t0;

        uv_mutex_lock(&t->mu);
        t->st.errors += w->errors;
        t->st.decoded += w->decoded;
        t->st.processed++;
        t->st.worker_ms += spent;
        t->st.src_width = w->src_w;
        t->st.src_height = w->src_h;
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
            while (t->out_n > SL_VT_OUT_MAX) { /* the loop is not taking them */
                out_item_t *old = t->out_head;
                t->out_head = old->next;
                if (!t->out_head)
                    t->out_tail = NULL;
                old->next = NULL;
                out_list_free(old);
                t->out_n--;
                t->st.dropped++;
            }
        }
        if (wake)
            uv_async_send(&t->async);
    }
    uv_mutex_unlock(&t->mu);
    out_list_free(w->head);
    w->head = w->tail = NULL;
    wstate_cleanup(t);
}

/* ---- loop side ------------------------------------------------------------------------ */

static void on_async(uv_async_t *h)
{
    sl_vtranscoder_t *t = h->data;
    while (!t->closing) {
        uv_mutex_lock(&t->mu);
        out_item_t *it = t->out_head;
        if (it) {
            t->out_head = it->next;
            if (!t->out_head)
                t->out_tail = NULL;
            t->out_n--;
        }
        uv_mutex_unlock(&t->mu);
        if (!it)
            return;
        sl_frame_t *f = NULL;
        size_t vi = it->variant;
        int rc = sl_frame_new(SL_FLV_VIDEO, it->dts_ms, it->body, &f); /* takes the body */
        sl_free(it);
        uv_mutex_lock(&t->mu);
        if (rc)
            t->st.errors++;
        else
            t->st.out_frames++;
        uv_mutex_unlock(&t->mu);
        if (rc)
            continue;
        t->out(t->ud, vi, f); /* may free t: `closing` is set and t lives until on_closed */
        sl_frame_unref(f);
    }
}

static void on_closed(uv_handle_t *h)
{
    sl_vtranscoder_t *t = h->data;
    uv_cond_destroy(&t->cv);
    uv_mutex_destroy(&t->mu);
    sl_free(t);
}

static int open_encoder(vt_out_t *o, double fps_hint, const char *preset)
{
    const AVCodec *c = avcodec_find_encoder_by_name("libx264");
    if (!c) {
        SL_LOGE(NULL, "vtranscode: libavcodec has no libx264 encoder");
        return SL_EIO;
    }
    AVCodecContext *ctx = avcodec_alloc_context3(c);
    if (!ctx)
        return SL_ENOMEM;
    int fps = fps_hint >= 1 && fps_hint <= 240 ? (int)(fps_hint + 0.5) : 30;
    if (o->v.fps && (int)o->v.fps < fps)
        fps = (int)o->v.fps;
    ctx->width = (int)o->v.width;
    ctx->height = (int)o->v.height;
    ctx->pix_fmt = AV_PIX_FMT_YUV420P;
    ctx->time_base = (AVRational){1, 1000};
    ctx->framerate = (AVRational){fps, 1};
    ctx->bit_rate = o->v.bitrate;
    ctx->rc_max_rate = o->v.bitrate;
    ctx->rc_buffer_size = (int)o->v.bitrate; /* one second of VBV: CBR-like */
    ctx->max_b_frames = 0;
    ctx->gop_size = -1;          /* x264-params below: keyframes only where we force them */
    ctx->thread_count = 1;
    ctx->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "preset", preset && *preset ? preset : "veryfast", 0);
    av_dict_set(&opts, "tune", "zerolatency", 0);
    av_dict_set(&opts, "profile", "main", 0);
    av_dict_set(&opts, "forced-idr", "1", 0);
    av_dict_set(&opts, "x264-params", "keyint=infinite:scenecut=0:open-gop=0", 0);
    int rc = avcodec_open2(ctx, c, &opts);
    av_dict_free(&opts);
    if (rc < 0 || ctx->extradata_size <= 0) {
        char msg[AV_ERROR_MAX_STRING_SIZE] = "no extradata";
        if (rc < 0)
            av_strerror(rc, msg, sizeof msg);
        SL_LOGE(NULL, "vtranscode: cannot open libx264 (%ux%u, %u bit/s): %s", o->v.width,
                o->v.height, o->v.bitrate, msg);
        avcodec_free_context(&ctx);
        return SL_EIO;
    }
    o->enc = ctx;
    if ((rc = sl__vt_make_avcc(ctx->extradata, (size_t)ctx->extradata_size, &o->avcc, &o->avcc_len)))
        return rc == SL_ENOMEM ? rc : SL_EIO;
    o->frame = av_frame_alloc();
    if (!o->frame)
        return SL_ENOMEM;
    o->frame->format = AV_PIX_FMT_YUV420P;
    o->frame->width = ctx->width;
    o->frame->height = ctx->height;
    if (av_frame_get_buffer(o->frame, 0) < 0)
        return SL_ENOMEM;
    return 0;
}

int sl_vtranscoder_new(uv_loop_t *loop, const sl_vt_variant_t *v, size_t n, double fps_hint,
                       const char *preset, sl_vtranscoder_out_cb out, void *ud,
                       sl_vtranscoder_t **out_t)
{
    if (out_t)
        *out_t = NULL;
    if (!loop || !v || !out || !out_t || n == 0 || n > SL_VT_VARIANTS_MAX)
        return SL_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (sl_vt_variant_check(&v[i]))
            return SL_EINVAL;
    sl_vtranscoder_t *t = sl_calloc(1, sizeof *t);
    if (!t)
        return SL_ENOMEM;
    int rc = 0, have_mu = 0, have_cv = 0;
    t->loop = loop;
    t->out = out;
    t->ud = ud;
    t->n_out_variants = n;
    for (size_t i = 0; i < n; i++) {
        t->vo[i].v = v[i];
        if ((rc = open_encoder(&t->vo[i], fps_hint, preset)))
            goto fail;
    }
    rc = SL_ENOMEM;
    t->w.dframe = av_frame_alloc();
    t->w.pkt = av_packet_alloc();
    if (!t->w.dframe || !t->w.pkt)
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
        SL_LOGE(NULL, "vtranscode: cannot start the worker thread: %s", uv_strerror(rc));
        wstate_cleanup(t);
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
    wstate_cleanup(t);
    sl_free(t);
    return rc;
}

/* Drops every queued coded frame (configurations stay); under mu. */
static void drop_queued(sl_vtranscoder_t *t)
{
    int kept = 0;
    for (int k = 0; k < t->in_n; k++) {
        job_t *j = &t->ring[(t->in_head + k) % SL_VT_QUEUE_MAX];
        if (j->is_config) {
            t->ring[(t->in_head + kept++) % SL_VT_QUEUE_MAX] = *j;
            continue;
        }
        t->in_bytes -= j->len;
        job_free(j);
        t->st.dropped++;
    }
    t->in_n = kept;
}

int sl_vtranscoder_push(sl_vtranscoder_t *t, const sl_frame_t *in)
{
    if (!t || !in || !in->body || in->kind != SL_FLV_VIDEO)
        return SL_EINVAL;
    if (t->closing)
        return SL_ECLOSED;
    if (in->flags & SL_FRAME_EOS)
        return 0;
    if (decoder_id(in->codec) == AV_CODEC_ID_NONE)
        return SL_EINVAL;
    if (in->data_off > in->body->len)
        return SL_EINVAL;
    uint32_t n = in->body->len - in->data_off;
    int is_config = (in->flags & SL_FRAME_CONFIG) != 0, is_key = (in->flags & SL_FRAME_KEY) != 0;
    if (n > SL_VT_FRAME_MAX || (is_config && n > SL_VT_CONFIG_MAX))
        return SL_ETOOBIG;
    uv_mutex_lock(&t->mu);
    int full = t->in_n == SL_VT_QUEUE_MAX || t->in_bytes + n > SL_VT_QUEUE_BYTES;
    if (full) {
        /* Overload: the variants skip to the next keyframe rather than lag. */
        drop_queued(t);
        t->skip_to_key = 1;
    }
    if (t->skip_to_key && !is_config) {
        if (!is_key) {
            t->st.dropped++;
            uv_mutex_unlock(&t->mu);
            return 0;
        }
        t->skip_to_key = 0;
    }
    if (t->in_n == SL_VT_QUEUE_MAX) { /* nothing but configurations: keep the newest */
        t->in_bytes -= t->ring[t->in_head].len;
        job_free(&t->ring[t->in_head]);
        t->in_head = (t->in_head + 1) % SL_VT_QUEUE_MAX;
        t->in_n--;
    }
    uv_mutex_unlock(&t->mu);

    job_t j = {.len = n, .dts_ms = in->dts_ms, .cts_ms = in->cts_ms, .codec = in->codec,
               .is_config = (uint8_t)is_config, .is_key = (uint8_t)is_key};
    j.data = sl_malloc((size_t)n + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!j.data)
        return SL_ENOMEM;
    memcpy(j.data, in->body->data + in->data_off, n);
    memset(j.data + n, 0, AV_INPUT_BUFFER_PADDING_SIZE);

    uv_mutex_lock(&t->mu);
    if (t->in_n == SL_VT_QUEUE_MAX) { /* cannot happen: only the loop thread adds */
        uv_mutex_unlock(&t->mu);
        job_free(&j);
        return SL_EAGAIN;
    }
    t->ring[(t->in_head + t->in_n) % SL_VT_QUEUE_MAX] = j;
    t->in_n++;
    t->in_bytes += n;
    t->st.in_frames++;
    uv_cond_signal(&t->cv);
    uv_mutex_unlock(&t->mu);
    return 0;
}

void sl_vtranscoder_free(sl_vtranscoder_t *t)
{
    if (!t || t->closing)
        return;
    t->closing = 1;
    uv_mutex_lock(&t->mu);
    t->stop = 1;
    uv_cond_signal(&t->cv);
    uv_mutex_unlock(&t->mu);
    if (t->thread_started)
        uv_thread_join(&t->thread);
    for (; t->in_n > 0; t->in_n--) {
        job_free(&t->ring[t->in_head]);
        t->in_head = (t->in_head + 1) % SL_VT_QUEUE_MAX;
    }
    out_list_free(t->out_head);
    t->out_head = t->out_tail = NULL;
    t->out_n = 0;
    uv_close((uv_handle_t *)&t->async, on_closed);
}

void sl_vtranscoder_stats(const sl_vtranscoder_t *t, sl_vtranscoder_stats_t *st)
{
    sl_vtranscoder_t *m = (sl_vtranscoder_t *)t;
    uv_mutex_lock(&m->mu);
    *st = t->st;
    uv_mutex_unlock(&m->mu);
}

void sl__vtranscoder_pause(sl_vtranscoder_t *t, int paused)
{
    uv_mutex_lock(&t->mu);
    t->paused = paused;
    uv_cond_signal(&t->cv);
    uv_mutex_unlock(&t->mu);
}
