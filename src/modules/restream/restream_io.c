/*
 * The restream worker threads (see restream_io.h): inputs demux with
 * libavformat into FLV tag bodies, outputs mux frames with libavformat.
 *
 * Codec bytes. Our frames carry H.264/HEVC as AVCC/HVCC (length-prefixed
 * NAL units) behind an avcC/hvcC sequence header, AAC as raw frames behind
 * an AudioSpecificConfig, Opus behind an OpusHead (flv.h). Sources differ:
 * RTMP and MP4/FLV files already give that shape; RTSP, MPEG-TS (SRT,
 * HLS) give H.264 as Annex B with SPS/PPS in band (or in the SDP) and AAC
 * as ADTS. The input turns Annex B into AVCC (building avcC from the
 * SPS/PPS it meets, and sending a new sequence header when they change)
 * and strips ADTS headers (building the AudioSpecificConfig from the
 * first). HEVC in Annex B (RTSP, MPEG-TS) is turned into length-prefixed
 * NAL units the same way, its hvcC built from the VPS/SPS/PPS it meets
 * (sl_h265_hvcc_record, media/rtp_h265.h, which reads profile, tier and
 * level from the SPS).
 *
 * Interrupts. Every blocking libavformat call polls an interrupt callback
 * that answers "stop" when the loop asked the thread to end or a deadline
 * passed (open_ms to connect, read_ms of silence), so no call blocks for
 * longer than its timeout and a stop is noticed within milliseconds.
 */
#include "modules/restream/restream_io.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/backoff.h"
#include "media/avpar.h"
#include "media/flv.h"
#include "media/rtp_h264.h"
#include "media/rtp_h265.h"
#include "sluice/errors.h"

#define PS_MAX 1024                   /* an SPS or PPS larger than this is dropped */
#define AU_MAX (8u << 20)             /* an access unit larger than this is dropped */

/* ------------------------------------------------------------------ */
/* channel                                                             */

struct sl_rs_chan {
    atomic_int refs;
    uv_mutex_t mu;
    int closed;                      /* the loop side is gone (under mu) */
    sl_rs_item_t *head, *tail;       /* waiting (under mu) */
    size_t bytes, max_bytes;         /* frame bytes waiting, bound */
    uint64_t dropped;
    uv_async_t async;                /* loop side */
    sl_rs_items_cb cb;
    void *ud;
};

void sl_rs_item_free(sl_rs_item_t *it)
{
    if (!it)
        return;
    if (it->body)
        sl_buf_unref(it->body);
    sl_free(it);
}

static void chan_unref(sl_rs_chan_t *ch)
{
    if (atomic_fetch_sub(&ch->refs, 1) != 1)
        return;
    while (ch->head) {
        sl_rs_item_t *it = ch->head;
        ch->head = it->next;
        sl_rs_item_free(it);
    }
    uv_mutex_destroy(&ch->mu);
    sl_free(ch);
}

static void on_async(uv_async_t *a)
{
    sl_rs_chan_t *ch = a->data;
    uv_mutex_lock(&ch->mu);
    sl_rs_item_t *items = ch->head;
    ch->head = ch->tail = NULL;
    ch->bytes = 0;
    uv_mutex_unlock(&ch->mu);
    if (items)
        ch->cb(ch->ud, items);
}

static void on_async_closed(uv_handle_t *h) { chan_unref(h->data); }

int sl_rs_chan_new(uv_loop_t *loop, size_t max_bytes, sl_rs_items_cb cb, void *ud,
                   sl_rs_chan_t **out)
{
    sl_rs_chan_t *ch = sl_calloc(1, sizeof *ch);
    if (!ch)
        return SL_ENOMEM;
    atomic_init(&ch->refs, 1);
    ch->max_bytes = max_bytes;
    ch->cb = cb;
    ch->ud = ud;
    int rc = uv_mutex_init(&ch->mu);
    if (rc) {
        sl_free(ch);
        return rc;
    }
    if ((rc = uv_async_init(loop, &ch->async, on_async))) {
        uv_mutex_destroy(&ch->mu);
        sl_free(ch);
        return rc;
    }
    ch->async.data = ch;
    *out = ch;
    return 0;
}

void sl_rs_chan_close(sl_rs_chan_t *ch)
{
    if (!ch)
        return;
    uv_mutex_lock(&ch->mu);
    ch->closed = 1;
    sl_rs_item_t *items = ch->head;
    ch->head = ch->tail = NULL;
    uv_mutex_unlock(&ch->mu);
    while (items) {
        sl_rs_item_t *it = items;
        items = it->next;
        sl_rs_item_free(it);
    }
    uv_close((uv_handle_t *)&ch->async, on_async_closed);
}

uint64_t sl_rs_chan_dropped(sl_rs_chan_t *ch)
{
    uv_mutex_lock(&ch->mu);
    uint64_t n = ch->dropped;
    uv_mutex_unlock(&ch->mu);
    return n;
}

/* Thread side: hands an item to the loop (or frees it when the loop is gone or behind). */
static void chan_post(sl_rs_chan_t *ch, sl_rs_item_t *it)
{
    size_t n = it->body ? it->body->len : 0;
    uv_mutex_lock(&ch->mu);
    if (ch->closed || (it->type == SL_RS_ITEM_FRAME && ch->bytes + n > ch->max_bytes)) {
        if (!ch->closed)
            ch->dropped++;
        uv_mutex_unlock(&ch->mu);
        sl_rs_item_free(it);
        return;
    }
    if (ch->tail)
        ch->tail->next = it;
    else
        ch->head = it;
    ch->tail = it;
    ch->bytes += n;
    uv_async_send(&ch->async);
    uv_mutex_unlock(&ch->mu);
}

static void chan_note(sl_rs_chan_t *ch, int src, sl_rs_item_type_t type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void chan_note(sl_rs_chan_t *ch, int src, sl_rs_item_type_t type, const char *fmt, ...)
{
    sl_rs_item_t *it = sl_calloc(1, sizeof *it);
    if (!it)
        return;
    it->type = type;
    it->src = src;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->msg, sizeof it->msg, fmt, ap);
    va_end(ap);
    chan_post(ch, it);
}

/* ------------------------------------------------------------------ */
/* thread plumbing shared by inputs and outputs                        */

/* Threads alive (started and not yet past their last free), for sl_rs_threads_wait. */
static pthread_mutex_t g_threads_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_threads_cond = PTHREAD_COND_INITIALIZER;
static int g_threads;

static void thread_exited(void)
{
    pthread_mutex_lock(&g_threads_mu);
    g_threads--;
    pthread_cond_broadcast(&g_threads_cond);
    pthread_mutex_unlock(&g_threads_mu);
}

int sl_rs_threads_wait(uint64_t timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(timeout_ms / 1000);
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&g_threads_mu);
    while (g_threads > 0 && pthread_cond_timedwait(&g_threads_cond, &g_threads_mu, &ts) == 0)
        ;
    int left = g_threads;
    pthread_mutex_unlock(&g_threads_mu);
    return left;
}

typedef struct worker {
    atomic_int refs;                 /* the loop's and the thread's */
    atomic_int stop;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int64_t deadline_us;             /* av_gettime_relative() after which calls are interrupted */
    sl_rs_chan_t *ch;                /* a reference */
    int src;
    char *url;
    sl_rs_timing_t t;
    sl_backoff_t backoff;
} worker_t;

static int interrupt_cb(void *opaque)
{
    worker_t *w = opaque;
    if (atomic_load(&w->stop))
        return 1;
    return w->deadline_us && av_gettime_relative() > w->deadline_us;
}

static void arm(worker_t *w, uint64_t ms) { w->deadline_us = av_gettime_relative() + (int64_t)ms * 1000; }

/* Waits up to ms or until stopped; returns 1 when stopped. */
static int nap(worker_t *w, uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    while (!atomic_load(&w->stop)) {
        if (pthread_cond_timedwait(&w->cond, &w->mu, &ts))
            break;
    }
    pthread_mutex_unlock(&w->mu);
    return atomic_load(&w->stop);
}

static int worker_init(worker_t *w, sl_rs_chan_t *ch, int src, const char *url,
                       const sl_rs_timing_t *t)
{
    if (!(w->url = sl_strdup(url)))
        return SL_ENOMEM;
    atomic_init(&w->refs, 2);
    atomic_init(&w->stop, 0);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    atomic_fetch_add(&ch->refs, 1);
    w->ch = ch;
    w->src = src;
    w->t = *t;
    sl_backoff_init(&w->backoff, (uint64_t)(uintptr_t)w ^ (uint64_t)av_gettime());
    return 0;
}

/* Drops a reference; 1 when it was the last (the caller frees its struct). */
static int worker_unref(worker_t *w)
{
    if (atomic_fetch_sub(&w->refs, 1) != 1)
        return 0;
    chan_unref(w->ch);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
    sl_free(w->url);
    return 1;
}

static void worker_stop(worker_t *w)
{
    pthread_mutex_lock(&w->mu);
    atomic_store(&w->stop, 1);
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

static int spawn(void *(*fn)(void *), void *arg)
{
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_mutex_lock(&g_threads_mu);
    g_threads++;
    pthread_mutex_unlock(&g_threads_mu);
    int rc = pthread_create(&th, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    if (rc)
        thread_exited();
    return rc ? -rc : 0;
}

static const char *av_why(int err, char *buf, size_t cap)
{
    if (av_strerror(err, buf, cap) < 0)
        snprintf(buf, cap, "error %d", err);
    return buf;
}

/* ------------------------------------------------------------------ */
/* Annex B -> AVCC                                                     */

/* The next start code at or after i: its offset, and its length in *sc (0 when none). */
static size_t next_start(const uint8_t *d, size_t len, size_t i, size_t *sc)
{
    for (; i + 3 <= len; i++) {
        if (d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1) {
            *sc = 3;
            if (i > 0 && d[i - 1] == 0) {
                *sc = 4;
                return i - 1;
            }
            return i;
        }
    }
    *sc = 0;
    return len;
}

static int is_annexb(const uint8_t *d, size_t len)
{
    return (len >= 3 && d[0] == 0 && d[1] == 0 && d[2] == 1) ||
           (len >= 4 && d[0] == 0 && d[1] == 0 && d[2] == 0 && d[3] == 1);
}

/*
 * Annex B -> 4-byte length-prefixed NAL units, for H.264 (hevc 0: SPS 7,
 * PPS 8 kept aside, AUD 9 dropped, IDR 5 is a keyframe) and H.265 (hevc
 * 1: VPS 32, SPS 33, PPS 34 kept aside, AUD 35 dropped, IRAP 16-23 is a
 * keyframe). ps[i]/ps_len[i]: the parameter sets (VPS, SPS, PPS; H.264
 * has no VPS: ps[0] unused), each at most PS_MAX bytes (larger: dropped).
 */
static int annexb_convert(const uint8_t *data, size_t len, uint8_t *out, size_t cap, int hevc,
                          uint8_t *ps[3], size_t *ps_len[3], int *changed, int *is_key)
{
    size_t o = 0, sc;
    size_t pos = next_start(data, len, 0, &sc);
    while (sc) {
        size_t nal = pos + sc;
        size_t sc2;
        size_t end = next_start(data, len, nal, &sc2);
        size_t n = end - nal;
        /* trailing zero bytes belong to no NAL */
        while (n > 0 && data[nal + n - 1] == 0 && sc2 == 0)
            n--;
        if (n > 0) {
            unsigned type = hevc ? (data[nal] >> 1) & 0x3fu : data[nal] & 0x1fu;
            int set = hevc ? (type >= 32 && type <= 34 ? (int)type - 32 : -1)
                           : (type == 7 ? 1 : type == 8 ? 2 : -1);
            int aud = hevc ? type == 35 : type == 9;
            if (set >= 0) {
                if (n <= PS_MAX && (*ps_len[set] != n || memcmp(ps[set], data + nal, n) != 0)) {
                    memcpy(ps[set], data + nal, n);
                    *ps_len[set] = n;
                    *changed = 1;
                }
            } else if (!aud) {
                if (hevc ? type >= 16 && type <= 23 : type == 5)
                    *is_key = 1;
                if (o + 4 + n > cap)
                    return SL_ETOOBIG;
                out[o] = (uint8_t)(n >> 24);
                out[o + 1] = (uint8_t)(n >> 16);
                out[o + 2] = (uint8_t)(n >> 8);
                out[o + 3] = (uint8_t)n;
                memcpy(out + o + 4, data + nal, n);
                o += 4 + n;
            }
        }
        pos = end;
        sc = sc2;
    }
    return (int)o;
}

int sl_rs_annexb_to_avcc(const uint8_t *data, size_t len, uint8_t *out, size_t cap,
                         uint8_t *sps, size_t *sps_len, uint8_t *pps, size_t *pps_len,
                         int *changed, int *has_idr)
{
    size_t unused = 0;
    uint8_t *ps[3] = {NULL, sps, pps};
    size_t *ps_len[3] = {&unused, sps_len, pps_len};
    return annexb_convert(data, len, out, cap, 0, ps, ps_len, changed, has_idr);
}

int sl_rs_annexb_to_hvcc(const uint8_t *data, size_t len, uint8_t *out, size_t cap,
                         uint8_t *vps, size_t *vps_len, uint8_t *sps, size_t *sps_len,
                         uint8_t *pps, size_t *pps_len, int *changed, int *has_irap)
{
    uint8_t *ps[3] = {vps, sps, pps};
    size_t *ps_len[3] = {vps_len, sps_len, pps_len};
    return annexb_convert(data, len, out, cap, 1, ps, ps_len, changed, has_irap);
}

/* ------------------------------------------------------------------ */
/* inputs                                                              */

struct sl_rs_input {
    worker_t w;
    int file_loop, rtsp_udp;
    /* one connection's state */
    AVFormatContext *ic;
    int vi, ai;
    uint32_t vcodec, acodec;
    int vcfg_sent, acfg_sent;
    int seg_start;
    uint8_t vps[PS_MAX], sps[PS_MAX], pps[PS_MAX]; /* parameter sets (VPS: H.265 only) */
    size_t vps_len, sps_len, pps_len;
    uint8_t *au;                     /* AVCC scratch (AU_MAX) */
    /* pacing (file_loop) */
    int64_t wall0_us, dts0_ms;
    int clock_set;
};

static void input_free(sl_rs_input_t *in)
{
    if (worker_unref(&in->w)) {
        sl_free(in->au);
        sl_free(in);
    }
}

/* Posts one frame: FLV header for codec then data (n bytes). */
static void post_frame(sl_rs_input_t *in, uint8_t kind, uint32_t codec, int is_config,
                       int is_key, int32_t cts, int64_t dts_ms, const uint8_t *data, size_t n)
{
    uint8_t h[SL_AVPAR_TAG_HEADER_MAX];
    size_t hl = sl_avpar_flv_header(codec, is_config, is_key, cts, h);
    if (!hl || hl + n > 0xffffff)
        return;
    sl_rs_item_t *it = sl_calloc(1, sizeof *it);
    sl_buf_t *b = it ? sl_buf_new(hl + n) : NULL;
    if (!b) {
        sl_free(it);
        return;
    }
    memcpy(b->data, h, hl);
    if (n)
        memcpy(b->data + hl, data, n);
    b->len = hl + n;
    it->type = SL_RS_ITEM_FRAME;
    it->src = in->w.src;
    it->kind = kind;
    it->dts_ms = dts_ms;
    it->body = b;
    it->seg_start = in->seg_start;
    in->seg_start = 0;
    chan_post(in->w.ch, it);
}

static void send_avc_config(sl_rs_input_t *in, int64_t dts_ms)
{
    uint8_t rec[11 + 2 * PS_MAX];
    int n = sl_h264_avcc_record(in->sps, in->sps_len, in->pps, in->pps_len, rec, sizeof rec);
    if (n > 0) {
        post_frame(in, SL_FLV_VIDEO, SL_CODEC_AVC, 1, 1, 0, dts_ms, rec, (size_t)n);
        in->vcfg_sent = 1;
    }
}

/* The hvcC of the VPS/SPS/PPS seen so far, as the H.265 sequence header. */
static void send_hevc_config(sl_rs_input_t *in, int64_t dts_ms)
{
    uint8_t rec[SL_H265_MAX_RECORD];
    int n = sl_h265_hvcc_record(in->vps, in->vps_len, in->sps, in->sps_len, in->pps, in->pps_len, rec,
                                sizeof rec);
    if (n > 0) {
        post_frame(in, SL_FLV_VIDEO, SL_CODEC_HEVC, 1, 1, 0, dts_ms, rec, (size_t)n);
        in->vcfg_sent = 1;
    }
}

/* Annex B H.265 (RTSP, MPEG-TS, HLS sources) to hvcC frames. */
static void hevc_annexb(sl_rs_input_t *in, const uint8_t *d, size_t n, int key, int32_t cts, int64_t dts_ms)
{
    int changed = 0, irap = 0;
    int o = sl_rs_annexb_to_hvcc(d, n, in->au, AU_MAX, in->vps, &in->vps_len, in->sps, &in->sps_len,
                                 in->pps, &in->pps_len, &changed, &irap);
    if (o < 0)
        return;
    if (changed && in->vps_len && in->sps_len && in->pps_len)
        send_hevc_config(in, dts_ms);
    if (o > 0 && in->vcfg_sent)
        post_frame(in, SL_FLV_VIDEO, SL_CODEC_HEVC, 0, key || irap, cts, dts_ms, in->au, (size_t)o);
}

/* The AudioSpecificConfig of an ADTS header (2 bytes into asc). */
static void adts_asc(const uint8_t *h, uint8_t asc[2])
{
    unsigned profile = (h[2] >> 6) + 1u, sri = (h[2] >> 2) & 15u;
    unsigned ch = ((h[2] & 1u) << 2) | (h[3] >> 6);
    unsigned v = profile << 11 | sri << 7 | ch << 3;
    asc[0] = (uint8_t)(v >> 8);
    asc[1] = (uint8_t)v;
}

/* Sends the configurations the streams' extradata already hold. */
static void send_configs(sl_rs_input_t *in, int64_t dts_ms)
{
    if (in->vi >= 0 && !in->vcfg_sent) {
        const AVCodecParameters *par = in->ic->streams[in->vi]->codecpar;
        const uint8_t *ex = par->extradata;
        size_t exn = (size_t)par->extradata_size;
        if (exn > 0 && ex[0] == 1) {
            post_frame(in, SL_FLV_VIDEO, in->vcodec, 1, 1, 0, dts_ms, ex, exn);
            in->vcfg_sent = 1;
        } else if (exn > 0 && in->vcodec == SL_CODEC_HEVC && is_annexb(ex, exn)) {
            hevc_annexb(in, ex, exn, 0, 0, dts_ms); /* parameter sets only: the hvcC */
        } else if (exn > 0 && in->vcodec == SL_CODEC_AVC && is_annexb(ex, exn)) {
            int changed = 0, idr = 0;
            if (sl_rs_annexb_to_avcc(ex, exn, in->au, AU_MAX, in->sps, &in->sps_len, in->pps,
                                     &in->pps_len, &changed, &idr) >= 0 &&
                in->sps_len && in->pps_len)
                send_avc_config(in, dts_ms);
        }
    }
    if (in->ai >= 0 && !in->acfg_sent) {
        const AVCodecParameters *par = in->ic->streams[in->ai]->codecpar;
        if (par->extradata_size > 0) {
            post_frame(in, SL_FLV_AUDIO, in->acodec, 1, 0, 0, dts_ms, par->extradata,
                       (size_t)par->extradata_size);
            in->acfg_sent = 1;
        } else if (in->acodec == SL_CODEC_OPUS) {
            uint8_t head[19] = {'O', 'p', 'u', 's', 'H', 'e', 'a', 'd', 1,
                                (uint8_t)(par->ch_layout.nb_channels > 0 ? par->ch_layout.nb_channels : 2),
                                0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0};
            post_frame(in, SL_FLV_AUDIO, SL_CODEC_OPUS, 1, 0, 0, dts_ms, head, sizeof head);
            in->acfg_sent = 1;
        }
    }
}

static void on_packet(sl_rs_input_t *in, AVPacket *pkt)
{
    AVStream *st = in->ic->streams[pkt->stream_index];
    AVRational ms = {1, 1000};
    int64_t dts = pkt->dts != AV_NOPTS_VALUE ? pkt->dts : pkt->pts;
    if (dts == AV_NOPTS_VALUE)
        return;
    int64_t dts_ms = av_rescale_q(dts, st->time_base, ms);
    int64_t pts_ms = pkt->pts != AV_NOPTS_VALUE ? av_rescale_q(pkt->pts, st->time_base, ms) : dts_ms;
    int64_t cts = pts_ms - dts_ms;
    if (cts < 0 || cts > 0x7fffff)
        cts = 0;
    send_configs(in, dts_ms);
    const uint8_t *d = pkt->data;
    size_t n = (size_t)pkt->size;
    if (pkt->stream_index == in->vi) {
        int key = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
        if (in->vcodec == SL_CODEC_AVC && is_annexb(d, n)) {
            int changed = 0, idr = 0;
            int o = sl_rs_annexb_to_avcc(d, n, in->au, AU_MAX, in->sps, &in->sps_len, in->pps,
                                         &in->pps_len, &changed, &idr);
            if (o < 0)
                return;
            if (changed && in->sps_len && in->pps_len)
                send_avc_config(in, dts_ms);
            if (o == 0 || !in->vcfg_sent)
                return;
            post_frame(in, SL_FLV_VIDEO, SL_CODEC_AVC, 0, key || idr, (int32_t)cts, dts_ms,
                       in->au, (size_t)o);
            return;
        }
        if (in->vcodec == SL_CODEC_HEVC && is_annexb(d, n)) {
            hevc_annexb(in, d, n, key, (int32_t)cts, dts_ms);
            return;
        }
        if (is_annexb(d, n) || !in->vcfg_sent)
            return;
        post_frame(in, SL_FLV_VIDEO, in->vcodec, 0, key, (int32_t)cts, dts_ms, d, n);
        return;
    }
    if (pkt->stream_index != in->ai)
        return;
    if (in->acodec == SL_CODEC_AAC && n >= 7 && d[0] == 0xff && (d[1] & 0xf0) == 0xf0) {
        size_t hl = (d[1] & 1) ? 7 : 9;
        if (!in->acfg_sent) {
            uint8_t asc[2];
            adts_asc(d, asc);
            post_frame(in, SL_FLV_AUDIO, SL_CODEC_AAC, 1, 0, 0, dts_ms, asc, 2);
            in->acfg_sent = 1;
        }
        if (n <= hl)
            return;
        d += hl;
        n -= hl;
    }
    if (!in->acfg_sent)
        return;
    post_frame(in, SL_FLV_AUDIO, in->acodec, 0, 0, 0, dts_ms, d, n);
}

/* Paces a file at real time: waits until dts is due. 1 when stopped. */
static int pace(sl_rs_input_t *in, const AVPacket *pkt)
{
    AVStream *st = in->ic->streams[pkt->stream_index];
    int64_t dts = pkt->dts != AV_NOPTS_VALUE ? pkt->dts : pkt->pts;
    if (dts == AV_NOPTS_VALUE)
        return 0;
    int64_t dts_ms = av_rescale_q(dts, st->time_base, (AVRational){1, 1000});
    int64_t now = av_gettime_relative();
    if (!in->clock_set) {
        in->clock_set = 1;
        in->wall0_us = now;
        in->dts0_ms = dts_ms;
    }
    int64_t due = in->wall0_us + (dts_ms - in->dts0_ms) * 1000;
    if (due > now + 1000)
        return nap(&in->w, (uint64_t)((due - now) / 1000));
    return 0;
}

static uint32_t pick_codec(const AVCodecParameters *par)
{
    switch (par->codec_id) {
    case AV_CODEC_ID_H264: return SL_CODEC_AVC;
    case AV_CODEC_ID_HEVC: return SL_CODEC_HEVC;
    case AV_CODEC_ID_AAC: return SL_CODEC_AAC;
    case AV_CODEC_ID_OPUS: return SL_CODEC_OPUS;
    /* These reach the hub through the pull's audio bridge (AAC for HLS
     * and RTMP; the original for RTSP players and WHEP viewers). */
    case AV_CODEC_ID_PCM_ALAW: return SL_CODEC_FLV_AUDIO(7);
    case AV_CODEC_ID_PCM_MULAW: return SL_CODEC_FLV_AUDIO(8);
    case AV_CODEC_ID_MP3: return SL_CODEC_MP3;
    default: return 0;
    }
}

/* One connection: 0 when it ended (why filled), after posting UP if it opened. */
static int input_session(sl_rs_input_t *in, char *why, size_t cap, int *opened)
{
    worker_t *w = &in->w;
    char eb[128];
    AVDictionary *opts = NULL;
    if (strncmp(w->url, "rtsp", 4) == 0)
        av_dict_set(&opts, "rtsp_transport", in->rtsp_udp ? "udp" : "tcp", 0);
    av_dict_set(&opts, "analyzeduration", "2000000", 0);
    in->ic = avformat_alloc_context();
    if (!in->ic) {
        snprintf(why, cap, "out of memory");
        av_dict_free(&opts);
        return SL_ENOMEM;
    }
    in->ic->interrupt_callback = (AVIOInterruptCB){interrupt_cb, w};
    arm(w, w->t.open_ms);
    int rc = avformat_open_input(&in->ic, w->url, NULL, &opts);
    av_dict_free(&opts);
    if (rc < 0) {
        snprintf(why, cap, "open failed: %s", av_why(rc, eb, sizeof eb));
        return SL_EIO;
    }
    arm(w, w->t.open_ms);
    rc = avformat_find_stream_info(in->ic, NULL);
    if (rc < 0) {
        snprintf(why, cap, "no stream information: %s", av_why(rc, eb, sizeof eb));
        return SL_EIO;
    }
    in->vi = in->ai = -1;
    for (unsigned i = 0; i < in->ic->nb_streams; i++) {
        const AVCodecParameters *par = in->ic->streams[i]->codecpar;
        uint32_t c = pick_codec(par);
        if (par->codec_type == AVMEDIA_TYPE_VIDEO && in->vi < 0 && c) {
            in->vi = (int)i;
            in->vcodec = c;
        } else if (par->codec_type == AVMEDIA_TYPE_AUDIO && in->ai < 0 && c) {
            in->ai = (int)i;
            in->acodec = c;
        }
    }
    if (in->vi < 0 && in->ai < 0) {
        snprintf(why, cap, "no H.264, H.265, AAC, Opus, G.711 or MP3 track");
        return SL_EPROTO;
    }
    in->vcfg_sent = in->acfg_sent = 0;
    /* G.711 and MP3 have no configuration: their frames go at once. */
    if (in->ai >= 0 && in->acodec != SL_CODEC_AAC && in->acodec != SL_CODEC_OPUS)
        in->acfg_sent = 1;
    in->vps_len = in->sps_len = in->pps_len = 0;
    in->seg_start = 1;
    in->clock_set = 0;
    *opened = 1;
    {
        char desc[160];
        int off = 0;
        if (in->vi >= 0) {
            const AVCodecParameters *p = in->ic->streams[in->vi]->codecpar;
            off = snprintf(desc, sizeof desc, "%s %dx%d", avcodec_get_name(p->codec_id), p->width,
                           p->height);
        }
        if (in->ai >= 0)
            snprintf(desc + off, sizeof desc - (size_t)off, "%s%s", off ? ", " : "",
                     avcodec_get_name(in->ic->streams[in->ai]->codecpar->codec_id));
        chan_note(w->ch, w->src, SL_RS_ITEM_UP, "%s", desc);
    }
    sl_backoff_ok(&w->backoff);
    AVPacket *pkt = av_packet_alloc();
    if (!pkt) {
        snprintf(why, cap, "out of memory");
        return SL_ENOMEM;
    }
    for (;;) {
        arm(w, w->t.read_ms);
        rc = av_read_frame(in->ic, pkt);
        if (rc == AVERROR_EOF && in->file_loop) {
            /* Standby: play the file again (a new timeline segment). */
            arm(w, w->t.open_ms);
            if (av_seek_frame(in->ic, -1, 0, AVSEEK_FLAG_BACKWARD) < 0) {
                snprintf(why, cap, "cannot loop the file");
                break;
            }
            in->seg_start = 1;
            in->clock_set = 0;
            continue;
        }
        if (rc < 0) {
            if (atomic_load(&w->stop))
                snprintf(why, cap, "stopped");
            else if (rc == AVERROR_EXIT)
                snprintf(why, cap, "no data for %llu ms", (unsigned long long)w->t.read_ms);
            else
                snprintf(why, cap, "%s", rc == AVERROR_EOF ? "end of stream" : av_why(rc, eb, sizeof eb));
            break;
        }
        if (in->file_loop && pace(in, pkt)) {
            av_packet_unref(pkt);
            snprintf(why, cap, "stopped");
            break;
        }
        if (pkt->size > 0 && (size_t)pkt->size <= AU_MAX)
            on_packet(in, pkt);
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    return 0;
}

static void *input_main(void *arg)
{
    sl_rs_input_t *in = arg;
    worker_t *w = &in->w;
    while (!atomic_load(&w->stop)) {
        char why[160] = "";
        int opened = 0;
        input_session(in, why, sizeof why, &opened);
        avformat_close_input(&in->ic);
        if (atomic_load(&w->stop))
            break;
        chan_note(w->ch, w->src, SL_RS_ITEM_DOWN, "%s", why);
        uint64_t wait = sl_backoff_fail(&w->backoff, w->t.retry_min_ms, w->t.retry_max_ms);
        if (nap(w, wait))
            break;
    }
    input_free(in);
    thread_exited();
    return NULL;
}

int sl_rs_input_start(sl_rs_chan_t *ch, int src, const char *url, int file_loop, int rtsp_udp,
                      const sl_rs_timing_t *t, sl_rs_input_t **out)
{
    sl_rs_input_t *in = sl_calloc(1, sizeof *in);
    if (!in)
        return SL_ENOMEM;
    if (!(in->au = sl_malloc(AU_MAX)) || worker_init(&in->w, ch, src, url, t)) {
        sl_free(in->au);
        sl_free(in);
        return SL_ENOMEM;
    }
    in->file_loop = file_loop;
    in->rtsp_udp = rtsp_udp;
    in->vi = in->ai = -1;
    int rc = spawn(input_main, in);
    if (rc) {
        input_free(in);
        input_free(in);
        return rc;
    }
    *out = in;
    return 0;
}

void sl_rs_input_stop(sl_rs_input_t *in)
{
    if (!in)
        return;
    worker_stop(&in->w);
    input_free(in);
}

/* ------------------------------------------------------------------ */
/* outputs                                                             */

struct sl_rs_output {
    worker_t w;
    /* queue (under w.mu) */
    sl_rs_pkt_t *head, *tail;
    size_t bytes, max_bytes;
    int need_key;                    /* drop media until a video keyframe */
    sl_rs_out_stats_t stats;         /* under w.mu */
    /* thread side */
    sl_rs_pkt_t *vcfg, *acfg;        /* latest configurations (owned copies) */
    AVFormatContext *oc;
    int ovi, oai;                    /* output stream indexes or -1 */
    int64_t base_ms;                 /* dts of the first frame written */
    int64_t last_dts[2];
    int audio_seen;                  /* audio frames before any video configuration */
    int connected_once;
};

static void pkts_free(sl_rs_pkt_t *p)
{
    while (p) {
        sl_rs_pkt_t *n = p->next;
        sl_free(p);
        p = n;
    }
}

static void output_free(sl_rs_output_t *o)
{
    if (worker_unref(&o->w)) {
        pkts_free(o->head);
        sl_free(o->vcfg);
        sl_free(o->acfg);
        sl_free(o);
    }
}

int sl_rs_output_offer(sl_rs_output_t *o, uint8_t kind, uint32_t codec, int is_key,
                       int is_config, uint32_t dts_ms, int32_t cts_ms, const uint8_t *data,
                       size_t len)
{
    pthread_mutex_lock(&o->w.mu);
    if (!is_config) {
        if (o->bytes + len > o->max_bytes) {
            /* Slow destination: drop what waits (configurations stay), resume at a keyframe. */
            sl_rs_pkt_t **pp = &o->head;
            o->tail = NULL;
            while (*pp) {
                sl_rs_pkt_t *p = *pp;
                if (!p->is_config) {
                    *pp = p->next;
                    o->bytes -= p->len;
                    o->stats.dropped++;
                    sl_free(p);
                } else {
                    o->tail = p;
                    pp = &p->next;
                }
            }
            o->need_key = 1;
        }
        if (o->need_key) {
            if (kind != SL_FLV_VIDEO || !is_key) {
                o->stats.dropped++;
                pthread_mutex_unlock(&o->w.mu);
                return 0;
            }
            o->need_key = 0;
        }
    }
    sl_rs_pkt_t *p = sl_malloc(sizeof *p + len);
    if (!p) {
        pthread_mutex_unlock(&o->w.mu);
        return SL_ENOMEM;
    }
    p->next = NULL;
    p->kind = kind;
    p->is_key = (uint8_t)is_key;
    p->is_config = (uint8_t)is_config;
    p->codec = codec;
    p->dts_ms = dts_ms;
    p->cts_ms = cts_ms;
    p->len = len;
    memcpy(p->data, data, len);
    if (o->tail)
        o->tail->next = p;
    else
        o->head = p;
    o->tail = p;
    o->bytes += len;
    pthread_cond_signal(&o->w.cond);
    pthread_mutex_unlock(&o->w.mu);
    return 0;
}

void sl_rs_output_stats(sl_rs_output_t *o, sl_rs_out_stats_t *out)
{
    pthread_mutex_lock(&o->w.mu);
    *out = o->stats;
    pthread_mutex_unlock(&o->w.mu);
}

/* Thread: takes the next frame, waiting up to 200 ms. NULL when none (or stopped). */
static sl_rs_pkt_t *take(sl_rs_output_t *o)
{
    pthread_mutex_lock(&o->w.mu);
    if (!o->head && !atomic_load(&o->w.stop)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&o->w.cond, &o->w.mu, &ts);
    }
    sl_rs_pkt_t *p = o->head;
    if (p) {
        o->head = p->next;
        if (!o->head)
            o->tail = NULL;
        o->bytes -= p->len;
        p->next = NULL;
    }
    pthread_mutex_unlock(&o->w.mu);
    return p;
}

/* Thread: the queue is flushed and media waits for a keyframe (after a disconnect). */
static void flush_queue(sl_rs_output_t *o)
{
    pthread_mutex_lock(&o->w.mu);
    sl_rs_pkt_t *p = o->head;
    o->head = o->tail = NULL;
    o->bytes = 0;
    o->need_key = 1;
    pthread_mutex_unlock(&o->w.mu);
    while (p) {
        sl_rs_pkt_t *n = p->next;
        if (p->is_config) {
            sl_rs_pkt_t **slot = p->kind == SL_FLV_VIDEO ? &o->vcfg : &o->acfg;
            sl_free(*slot);
            *slot = p;
        } else {
            pthread_mutex_lock(&o->w.mu);
            o->stats.dropped++;
            pthread_mutex_unlock(&o->w.mu);
            sl_free(p);
        }
        p = n;
    }
}

static void set_error(sl_rs_output_t *o, const char *why)
{
    pthread_mutex_lock(&o->w.mu);
    o->stats.errors++;
    o->stats.up = 0;
    snprintf(o->stats.last_error, sizeof o->stats.last_error, "%s", why);
    pthread_mutex_unlock(&o->w.mu);
}

static void close_out(sl_rs_output_t *o, int trailer)
{
    if (!o->oc)
        return;
    if (trailer && o->oc->pb) {
        arm(&o->w, 2000);
        av_write_trailer(o->oc);
    }
    if (o->oc->pb)
        avio_closep(&o->oc->pb);
    avformat_free_context(o->oc);
    o->oc = NULL;
}

/* Thread: connects and writes the header (first: the keyframe it starts with, whose
 * parameter sets give the picture size). 0, or an error with why filled. */
static int open_out(sl_rs_output_t *o, const sl_rs_pkt_t *first, char *why, size_t cap)
{
    worker_t *w = &o->w;
    char eb[128];
    int srt = strncmp(w->url, "srt://", 6) == 0;
    const char *fmt = srt ? "mpegts" : "flv";
    int rc = avformat_alloc_output_context2(&o->oc, NULL, fmt, NULL);
    if (rc < 0 || !o->oc) {
        snprintf(why, cap, "cannot make a %s muxer", fmt);
        return SL_ENOMEM;
    }
    o->oc->interrupt_callback = (AVIOInterruptCB){interrupt_cb, w};
    o->ovi = o->oai = -1;
    sl_rs_pkt_t *cfg[2] = {o->vcfg, o->acfg};
    for (int i = 0; i < 2; i++) {
        if (!cfg[i])
            continue;
        uint32_t c = cfg[i]->codec;
        if (!srt && c != SL_CODEC_AVC && c != SL_CODEC_AAC)
            continue; /* the FLV muxer of Debian's libavformat takes H.264 and AAC only */
        AVStream *st = avformat_new_stream(o->oc, NULL);
        if (!st) {
            snprintf(why, cap, "out of memory");
            return SL_ENOMEM;
        }
        st->time_base = (AVRational){1, 1000};
        int key = first->kind == SL_FLV_VIDEO;
        rc = i == 0 ? sl_avpar_set_video(st->codecpar, c, cfg[i]->data, cfg[i]->len,
                                         key ? first->data : NULL, key ? first->len : 0, 0, 0)
                    : sl_avpar_set_audio(st->codecpar, c, cfg[i]->data, cfg[i]->len);
        if (rc) {
            snprintf(why, cap, "unusable %s configuration", i == 0 ? "video" : "audio");
            return SL_EPROTO;
        }
        if (i == 0)
            o->ovi = st->index;
        else
            o->oai = st->index;
    }
    if (o->ovi < 0 && o->oai < 0) {
        snprintf(why, cap, "no codec this destination can carry");
        return SL_EPROTO;
    }
    arm(w, w->t.open_ms);
    rc = avio_open2(&o->oc->pb, w->url, AVIO_FLAG_WRITE, &o->oc->interrupt_callback, NULL);
    if (rc < 0) {
        snprintf(why, cap, "connect failed: %s", av_why(rc, eb, sizeof eb));
        return SL_EIO;
    }
    AVDictionary *opts = NULL;
    if (!srt)
        av_dict_set(&opts, "flvflags", "no_duration_filesize", 0);
    arm(w, w->t.open_ms);
    rc = avformat_write_header(o->oc, &opts);
    av_dict_free(&opts);
    if (rc < 0) {
        snprintf(why, cap, "header failed: %s", av_why(rc, eb, sizeof eb));
        return SL_EIO;
    }
    o->base_ms = -1;
    o->last_dts[0] = o->last_dts[1] = -1;
    return 0;
}

/* Thread: writes one frame; 0 or an error (why filled). */
static int write_pkt(sl_rs_output_t *o, const sl_rs_pkt_t *p, char *why, size_t cap)
{
    int vid = p->kind == SL_FLV_VIDEO;
    int idx = vid ? o->ovi : o->oai;
    if (idx < 0)
        return 0;
    if (o->base_ms < 0)
        o->base_ms = p->dts_ms;
    int64_t dts = (int64_t)p->dts_ms - o->base_ms;
    if (dts < 0)
        dts = 0;
    if (dts <= o->last_dts[vid ? 0 : 1])
        dts = o->last_dts[vid ? 0 : 1] + 1;
    o->last_dts[vid ? 0 : 1] = dts;
    AVPacket *pkt = av_packet_alloc();
    if (!pkt) {
        snprintf(why, cap, "out of memory");
        return SL_ENOMEM;
    }
    if (av_new_packet(pkt, (int)p->len) < 0) {
        av_packet_free(&pkt);
        snprintf(why, cap, "out of memory");
        return SL_ENOMEM;
    }
    memcpy(pkt->data, p->data, p->len);
    pkt->stream_index = idx;
    pkt->dts = dts;
    pkt->pts = dts + (vid ? p->cts_ms : 0);
    if (p->is_key || !vid)
        pkt->flags |= AV_PKT_FLAG_KEY;
    arm(&o->w, o->w.t.read_ms);
    int rc = av_write_frame(o->oc, pkt);
    av_packet_free(&pkt);
    if (rc < 0) {
        char eb[128];
        snprintf(why, cap, "write failed: %s", av_why(rc, eb, sizeof eb));
        return SL_EIO;
    }
    return 0;
}

static void *output_main(void *arg)
{
    sl_rs_output_t *o = arg;
    worker_t *w = &o->w;
    uint64_t bytes_before = 0;       /* bytes of earlier connections */
    while (!atomic_load(&w->stop)) {
        sl_rs_pkt_t *p = take(o);
        if (!p)
            continue;
        if (p->is_config) {
            sl_rs_pkt_t **slot = p->kind == SL_FLV_VIDEO ? &o->vcfg : &o->acfg;
            sl_free(*slot);
            *slot = p;
            continue;
        }
        if (!o->oc) {
            /* Start at a video keyframe when the stream has video, else after ~2 s of audio. */
            int start = (p->kind == SL_FLV_VIDEO && p->is_key && o->vcfg) ||
                        (p->kind == SL_FLV_AUDIO && !o->vcfg && o->acfg && ++o->audio_seen > 100);
            if (!start) {
                sl_free(p);
                continue;
            }
            char why[160];
            if (open_out(o, p, why, sizeof why)) {
                close_out(o, 0);
                sl_free(p);
                if (atomic_load(&w->stop))
                    break;
                set_error(o, why);
                chan_note(w->ch, w->src, SL_RS_ITEM_DOWN, "%s", why);
                uint64_t wait = sl_backoff_fail(&w->backoff, w->t.retry_min_ms, w->t.retry_max_ms);
                if (nap(w, wait))
                    break;
                flush_queue(o);
                continue;
            }
            sl_backoff_ok(&w->backoff);
            pthread_mutex_lock(&w->mu);
            if (o->connected_once)
                o->stats.reconnects++;
            o->stats.up = 1;
            bytes_before = o->stats.bytes;
            pthread_mutex_unlock(&w->mu);
            o->connected_once = 1;
            chan_note(w->ch, w->src, SL_RS_ITEM_UP, "connected");
        }
        char why[160];
        int rc = write_pkt(o, p, why, sizeof why);
        if (!rc) {
            pthread_mutex_lock(&w->mu);
            o->stats.frames++;
            o->stats.bytes = bytes_before + (uint64_t)avio_tell(o->oc->pb);
            pthread_mutex_unlock(&w->mu);
        }
        sl_free(p);
        if (rc) {
            close_out(o, 0);
            if (atomic_load(&w->stop))
                break;
            set_error(o, why);
            chan_note(w->ch, w->src, SL_RS_ITEM_DOWN, "%s", why);
            uint64_t wait = sl_backoff_fail(&w->backoff, w->t.retry_min_ms, w->t.retry_max_ms);
            if (nap(w, wait))
                break;
            flush_queue(o);
        }
    }
    close_out(o, 1);
    output_free(o);
    thread_exited();
    return NULL;
}

int sl_rs_output_start(sl_rs_chan_t *ch, int src, const char *url, size_t max_bytes,
                       const sl_rs_timing_t *t, sl_rs_output_t **out)
{
    sl_rs_output_t *o = sl_calloc(1, sizeof *o);
    if (!o)
        return SL_ENOMEM;
    if (worker_init(&o->w, ch, src, url, t)) {
        sl_free(o);
        return SL_ENOMEM;
    }
    o->max_bytes = max_bytes;
    o->need_key = 1;
    o->ovi = o->oai = -1;
    int rc = spawn(output_main, o);
    if (rc) {
        output_free(o);
        output_free(o);
        return rc;
    }
    *out = o;
    return 0;
}

void sl_rs_output_stop(sl_rs_output_t *o)
{
    if (!o)
        return;
    worker_stop(&o->w);
    output_free(o);
}
