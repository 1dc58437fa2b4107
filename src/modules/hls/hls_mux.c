/*
 * The HLS muxer (see hls_mux.h): libavformat's mpegts and mp4 muxers
 * writing through custom I/O into an sl_wbuf_t, with the held-frame
 * scheme that gives fMP4 samples exact durations.
 *
 * Packets are handed to av_write_frame() without a reference-counted
 * buffer: libavformat then reads the frame's bytes in place (the mp4
 * muxer copies them into its fragment buffer, the mpegts muxer into TS
 * packets; the TS bitstream filters make their own refcounted copy). The
 * frame stays referenced by the stream for the duration of the call, so
 * nothing is copied just to hand it over.
 */
#include "modules/hls/hls_mux.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "media/avpar.h"
#include "media/flv.h"
#include "sluice/errors.h"

#define AVIO_BUF_SIZE (64 * 1024) /* libav's write buffer; a moof must fit (update_size seeks in it) */
#define VIDEO_DEFAULT_MS 40       /* duration estimates before an interval is known */
#define AUDIO_DEFAULT_MS 23

#if LIBAVFORMAT_VERSION_MAJOR >= 61
#define AVIO_WRITE_CONST const
#else
#define AVIO_WRITE_CONST
#endif

enum { TRACK_VIDEO = 0, TRACK_AUDIO = 1, N_TRACKS = 2 };

typedef struct mux_track {
    int present;            /* the muxer has this track */
    AVStream *st;           /* libav's stream (owned by oc) */
    sl_frame_t *held;       /* fMP4: newest frame, waiting for its duration (owned ref) */
    int64_t held_dts;       /* its adjusted dts, ms */
    int have_last;          /* a frame was accepted */
    int64_t last_dts;       /* adjusted dts of the last accepted frame, ms (extended past 32 bits) */
    int64_t last_interval;  /* last dts step, ms, for estimates */
    int64_t default_ms;     /* estimate before any step is known */
} mux_track_t;

struct sl_hls_mux {
    AVFormatContext *oc;    /* owned */
    AVIOContext *pb;        /* owned (custom I/O) */
    AVPacket *pkt;          /* reused for every write */
    sl_wbuf_t out;          /* bytes written since the last cut */
    int fmp4;
    int out_failed;         /* the write callback could not append */
    int resend_headers;     /* TS: repeat PAT/PMT at the next packet */
    mux_track_t t[N_TRACKS];
};

/* ------------------------------------------------------------------ */
/* helpers                                                             */

int sl_hls_codec_supported(uint32_t codec, int fmp4)
{
    (void)fmp4; /* H.264, HEVC and AAC go in both containers */
    return codec == SL_CODEC_AVC || codec == SL_CODEC_HEVC || codec == SL_CODEC_AAC;
}

int sl_hls_aac_config(const uint8_t *asc, size_t len, uint32_t *sample_rate, uint32_t *channels)
{
    return sl_avpar_aac_config(asc, len, sample_rate, channels);
}

static void av_log_to_sl(void *avcl, int level, const char *fmt, va_list vl)
{
    if (level > AV_LOG_VERBOSE)
        return;
    /* libav's warnings are about its own choices (e.g. no edit list with
     * empty_moov): debug; its errors also come back as return codes. */
    sl_log_level_t sl = level <= AV_LOG_ERROR ? SL_LOG_WARN : SL_LOG_DEBUG;
    if (!sl_log_enabled(sl))
        return;
    char line[512];
    int print_prefix = 1;
    av_log_format_line2(avcl, level, fmt, vl, line, sizeof line, &print_prefix);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (n)
        sl_log(sl, NULL, "libav: %s", line);
}

void sl_hls_mux_log_init(void) { av_log_set_callback(av_log_to_sl); }

static int on_write(void *opaque, AVIO_WRITE_CONST uint8_t *buf, int size)
{
    sl_hls_mux_t *m = opaque;
    if (size > 0 && sl_wbuf_put(&m->out, buf, (size_t)size)) {
        m->out_failed = 1;
        return AVERROR(ENOMEM);
    }
    return size;
}

static int av_fail(const char *what, int averr)
{
    char msg[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(averr, msg, sizeof msg);
    SL_LOGW(NULL, "hls: %s: %s", what, msg);
    return averr == AVERROR(ENOMEM) ? SL_ENOMEM : SL_EIO;
}

static int add_video(sl_hls_mux_t *m, const sl_hls_track_t *v)
{
    if (v->codec != SL_CODEC_AVC && v->codec != SL_CODEC_HEVC)
        return SL_EINVAL;
    AVStream *st = avformat_new_stream(m->oc, NULL);
    if (!st)
        return SL_ENOMEM;
    AVCodecParameters *par = st->codecpar;
    int rc = sl_avpar_set_video(par, v->codec, v->config, v->config_len, v->sample, v->sample_len,
                                v->width, v->height);
    if (rc)
        return rc;
    if (m->fmp4 && v->codec == SL_CODEC_HEVC)
        par->codec_tag = MKTAG('h', 'v', 'c', '1'); /* what Apple's players require */
    st->time_base = (AVRational){1, 1000};
    m->t[TRACK_VIDEO].present = 1;
    m->t[TRACK_VIDEO].st = st;
    m->t[TRACK_VIDEO].default_ms = VIDEO_DEFAULT_MS;
    return 0;
}

static int add_audio(sl_hls_mux_t *m, const sl_hls_track_t *a)
{
    if (a->codec != SL_CODEC_AAC)
        return SL_EINVAL;
    uint32_t rate, channels;
    if (sl_hls_aac_config(a->config, a->config_len, &rate, &channels))
        return SL_EINVAL;
    AVStream *st = avformat_new_stream(m->oc, NULL);
    if (!st)
        return SL_ENOMEM;
    int rc = sl_avpar_set_audio(st->codecpar, a->codec, a->config, a->config_len);
    if (rc)
        return rc;
    st->time_base = (AVRational){1, 1000};
    m->t[TRACK_AUDIO].present = 1;
    m->t[TRACK_AUDIO].st = st;
    m->t[TRACK_AUDIO].default_ms = AUDIO_DEFAULT_MS;
    return 0;
}

/* ------------------------------------------------------------------ */
/* lifetime                                                            */

int sl_hls_mux_new(int fmp4, const sl_hls_track_t *video, const sl_hls_track_t *audio,
                   sl_hls_mux_t **out, sl_buf_t **init_out)
{
    *out = NULL;
    if (init_out)
        *init_out = NULL;
    if (!video && !audio)
        return SL_EINVAL;
    AVDictionary *opts = NULL;
    uint8_t *iobuf = NULL;
    int rc = SL_ENOMEM;
    sl_hls_mux_t *m = sl_calloc(1, sizeof(*m));
    if (!m)
        return SL_ENOMEM;
    m->fmp4 = fmp4;
    sl_wbuf_init(&m->out, SL_BUF_MAX);
    int arc = avformat_alloc_output_context2(&m->oc, NULL, fmp4 ? "mp4" : "mpegts", NULL);
    if (arc < 0 || !m->oc) {
        rc = av_fail("cannot create the muxer", arc < 0 ? arc : AVERROR(ENOMEM));
        goto fail;
    }
    iobuf = av_malloc(AVIO_BUF_SIZE);
    if (!iobuf)
        goto fail;
    m->pb = avio_alloc_context(iobuf, AVIO_BUF_SIZE, 1, m, NULL, on_write, NULL);
    if (!m->pb)
        goto fail;
    iobuf = NULL; /* the context owns it now */
    m->pb->seekable = 0;
    m->oc->pb = m->pb;
    m->oc->flags |= AVFMT_FLAG_CUSTOM_IO;
    if (!(m->pkt = av_packet_alloc()))
        goto fail;
    if (video && (rc = add_video(m, video)))
        goto fail;
    if (audio && (rc = add_audio(m, audio)))
        goto fail;
    if (fmp4) {
        /* frag_custom: a fragment per cut; empty_moov: the init section is
         * written now; frag_discont: absolute decode times (tfdt). */
        av_dict_set(&opts, "movflags", "+frag_custom+empty_moov+default_base_moof+frag_discont", 0);
        av_dict_set(&opts, "video_track_timescale", "90000", 0);
        /* Without this the mp4 muxer shifts the first sample of each track
         * to 0 (avoid_negative_ts make_zero): audio and video would lose
         * their relative start, and decode times their absolute value. */
        m->oc->avoid_negative_ts = AVFMT_AVOID_NEG_TS_DISABLED;
    } else {
        /* A PCR every 40 ms whatever the tracks (the muxer's own choice
         * needs a frame rate the FLV input does not carry). */
        av_dict_set(&opts, "pcr_period", "40", 0);
    }
    arc = avformat_write_header(m->oc, &opts);
    if (arc < 0) {
        rc = av_fail("cannot start the muxer", arc);
        goto fail;
    }
    avio_flush(m->pb);
    rc = SL_ENOMEM;
    if (m->out_failed)
        goto fail;
    if (fmp4) {
        sl_buf_t *init = m->out.len ? sl_wbuf_to_buf(&m->out) : NULL;
        if (!init)
            goto fail;
        if (init_out)
            *init_out = init;
        else
            sl_buf_unref(init);
    }
    av_dict_free(&opts);
    *out = m;
    return 0;
fail:
    av_dict_free(&opts);
    av_free(iobuf);
    sl_hls_mux_free(m);
    return rc;
}

void sl_hls_mux_free(sl_hls_mux_t *m)
{
    if (!m)
        return;
    for (int i = 0; i < N_TRACKS; i++)
        sl_frame_unref(m->t[i].held);
    if (m->pb) {
        av_freep(&m->pb->buffer);
        avio_context_free(&m->pb);
    }
    if (m->oc) {
        m->oc->pb = NULL;
        avformat_free_context(m->oc);
    }
    av_packet_free(&m->pkt);
    sl_wbuf_cleanup(&m->out);
    sl_free(m);
}

/* ------------------------------------------------------------------ */
/* writing                                                             */

static int track_of(const sl_hls_mux_t *m, const sl_frame_t *f)
{
    if (f->flags & (SL_FRAME_CONFIG | SL_FRAME_META | SL_FRAME_EOS))
        return -1;
    if (f->body->len <= f->data_off)
        return -1;
    if (f->kind == SL_FLV_VIDEO && m->t[TRACK_VIDEO].present)
        return TRACK_VIDEO;
    if (f->kind == SL_FLV_AUDIO && m->t[TRACK_AUDIO].present)
        return TRACK_AUDIO;
    return -1;
}

/*
 * The frame's dts on the track's timeline: extended past 32 bits (RTMP
 * timestamps wrap after 49 days) and kept strictly increasing, as both
 * muxers require.
 */
static int64_t adjust(const mux_track_t *t, uint32_t dts)
{
    if (!t->have_last)
        return dts;
    int64_t ext = (t->last_dts & ~(int64_t)0xffffffff) | dts;
    if (ext < t->last_dts - 0x80000000LL)
        ext += 0x100000000LL;
    else if (ext > t->last_dts + 0x80000000LL)
        ext -= 0x100000000LL;
    return ext <= t->last_dts ? t->last_dts + 1 : ext;
}

uint32_t sl_hls_mux_adjusted_dts(const sl_hls_mux_t *m, const sl_frame_t *f)
{
    int ti = track_of(m, f);
    return ti < 0 ? f->dts_ms : (uint32_t)adjust(&m->t[ti], f->dts_ms);
}

void sl_hls_mux_video_size(const sl_hls_mux_t *m, uint32_t *width, uint32_t *height)
{
    const mux_track_t *t = &m->t[TRACK_VIDEO];
    *width = t->present ? (uint32_t)t->st->codecpar->width : 0;
    *height = t->present ? (uint32_t)t->st->codecpar->height : 0;
}

static int write_packet(sl_hls_mux_t *m, int ti, const sl_frame_t *f, int64_t dts, int64_t duration)
{
    mux_track_t *t = &m->t[ti];
    AVPacket *pkt = m->pkt;
    pkt->data = f->body->data + f->data_off;
    pkt->size = (int)(f->body->len - f->data_off);
    pkt->stream_index = t->st->index;
    pkt->dts = dts;
    pkt->pts = dts + (f->cts_ms > 0 ? f->cts_ms : 0);
    pkt->duration = duration;
    pkt->flags = ti == TRACK_AUDIO || (f->flags & SL_FRAME_KEY) ? AV_PKT_FLAG_KEY : 0;
    av_packet_rescale_ts(pkt, (AVRational){1, 1000}, t->st->time_base);
    if (m->resend_headers) {
        av_opt_set(m->oc->priv_data, "mpegts_flags", "+resend_headers", 0);
        m->resend_headers = 0;
    }
    int arc = av_write_frame(m->oc, pkt);
    av_packet_unref(pkt); /* not refcounted: resets the fields, frees nothing of ours */
    if (m->out_failed)
        return SL_ETOOBIG;
    if (arc < 0)
        return av_fail("cannot mux a frame", arc);
    return 0;
}

/* Writes a track's held frame, now that its successor's dts is known. */
static int release_held(sl_hls_mux_t *m, int ti, int64_t next_dts)
{
    mux_track_t *t = &m->t[ti];
    if (!t->held)
        return 0;
    int64_t duration = next_dts - t->held_dts;
    int rc = write_packet(m, ti, t->held, t->held_dts, duration > 0 ? duration : 1);
    sl_frame_unref(t->held);
    t->held = NULL;
    return rc;
}

int sl_hls_mux_write(sl_hls_mux_t *m, sl_frame_t *f)
{
    int ti = track_of(m, f);
    if (ti < 0)
        return 0;
    mux_track_t *t = &m->t[ti];
    int64_t dts = adjust(t, f->dts_ms);
    int rc = 0;
    if (m->fmp4) {
        rc = release_held(m, ti, dts);
        t->held = sl_frame_ref(f);
        t->held_dts = dts;
    } else {
        rc = write_packet(m, ti, f, dts, 0);
    }
    if (t->have_last && dts > t->last_dts)
        t->last_interval = dts - t->last_dts;
    t->last_dts = dts;
    t->have_last = 1;
    return rc;
}

static int flush_out(sl_hls_mux_t *m, sl_buf_t **out)
{
    int arc = av_write_frame(m->oc, NULL);
    avio_flush(m->pb);
    if (m->out_failed)
        return SL_ETOOBIG;
    if (arc < 0)
        return av_fail("cannot flush the muxer", arc);
    if (!m->out.len)
        return 0;
    *out = sl_wbuf_to_buf(&m->out);
    return *out ? 0 : SL_ENOMEM;
}

int sl_hls_mux_cut(sl_hls_mux_t *m, const sl_frame_t *next, int segment_start, sl_buf_t **out)
{
    *out = NULL;
    int rc = 0;
    if (m->fmp4 && next) {
        int ti = track_of(m, next);
        if (ti >= 0)
            rc = release_held(m, ti, adjust(&m->t[ti], next->dts_ms));
    }
    rc = rc ? rc : flush_out(m, out);
    if (!rc && segment_start && !m->fmp4)
        m->resend_headers = 1;
    return rc;
}

int sl_hls_mux_finish(sl_hls_mux_t *m, sl_buf_t **out)
{
    *out = NULL;
    int rc = 0;
    for (int i = 0; i < N_TRACKS && !rc; i++) {
        mux_track_t *t = &m->t[i];
        if (t->held)
            rc = release_held(m, i, t->held_dts + (t->last_interval ? t->last_interval : t->default_ms));
    }
    return rc ? rc : flush_out(m, out);
}
