/*
 * MP4 recording through libavformat (see recorder_mp4.h). The writer runs
 * on the recorder's writer thread, the repair there too (at start); neither
 * touches the loop.
 *
 * Writing: libavformat's mp4 muxer with movflags
 * frag_keyframe+empty_moov+default_base_moof: ftyp and an empty moov are
 * written at once, then one moof+mdat fragment per video keyframe (and at
 * least every frag_ms, so audio-only files and long GOPs are cut too).
 * The muxer keeps a fragment's samples in memory and writes it whole, and
 * our write callback goes straight to the file with write(2): after every
 * packet handed over, the file ends at a fragment boundary. A kill -9
 * therefore leaves a file that plays up to its last fragment; a write
 * error in the middle of a fragment (disk full) leaves a torn one that the
 * caller cuts off at sl__rec_mp4_good_size(). As in the HLS muxer, each
 * track holds its newest frame until the next one gives its exact
 * duration.
 *
 * Reading (VOD) is media/mp4_read.c.
 */
#include "modules/recorder/recorder_mp4.h"

#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/fs.h"
#include "media/avpar.h"
#include "media/flv.h"
#include "sluice/errors.h"

#define AVIO_BUF_SIZE (64 * 1024)
#define VIDEO_DEFAULT_MS 40  /* the last frame's duration before an interval is known */
#define AUDIO_DEFAULT_MS 23

#if LIBAVFORMAT_VERSION_MAJOR >= 61
#define AVIO_WRITE_CONST const
#else
#define AVIO_WRITE_CONST
#endif

enum { TRACK_VIDEO = 0, TRACK_AUDIO = 1, N_TRACKS = 2 };

/* ------------------------------------------------------------------ */
/* writing                                                             */

typedef struct w_track {
    uint32_t codec;         /* SL_CODEC_* of the configuration / track */
    uint8_t *config;        /* latest configuration bytes (sl_malloc'd) */
    size_t config_len;
    AVStream *st;           /* the muxer's stream once the header is written (owned by oc) */
    AVPacket *held;         /* newest frame, waiting for its duration (owned) */
    int have_last;
    int64_t last_dts;       /* ms */
    int64_t last_interval;  /* ms */
    int64_t default_ms;
} w_track_t;

struct sl_rec_mp4 {
    int fd;                 /* borrowed */
    const sl_log_ctx_t *log;/* borrowed */
    unsigned frag_ms;
    AVFormatContext *oc;    /* owned */
    AVIOContext *pb;        /* owned (custom I/O) */
    int started;            /* header written */
    int finished;           /* trailer written (config change): later frames are ignored */
    int err;                /* -errno of the first failed write, 0 */
    uint64_t size;          /* bytes written */
    uint64_t good_size;     /* bytes written up to the last whole fragment */
    w_track_t t[N_TRACKS];
};

static int on_write(void *opaque, AVIO_WRITE_CONST uint8_t *buf, int size)
{
    sl_rec_mp4_t *w = opaque;
    if (w->err)
        return AVERROR(-w->err);
    size_t n = (size_t)size;
    const uint8_t *p = buf;
    while (n) {
        ssize_t r = write(w->fd, p, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            w->err = -errno;
            return AVERROR(errno);
        }
        p += r;
        n -= (size_t)r;
        w->size += (uint64_t)r;
    }
    return size;
}

int sl__rec_mp4_new(int fd, unsigned frag_ms, const sl_log_ctx_t *log, sl_rec_mp4_t **out)
{
    sl_rec_mp4_t *w = sl_calloc(1, sizeof *w);
    if (!w)
        return SL_ENOMEM;
    w->fd = fd;
    w->log = log;
    w->frag_ms = frag_ms;
    w->t[TRACK_VIDEO].default_ms = VIDEO_DEFAULT_MS;
    w->t[TRACK_AUDIO].default_ms = AUDIO_DEFAULT_MS;
    *out = w;
    return 0;
}

uint64_t sl__rec_mp4_size(const sl_rec_mp4_t *w) { return w->size; }
uint64_t sl__rec_mp4_good_size(const sl_rec_mp4_t *w) { return w->good_size; }

static void log_av(const sl_rec_mp4_t *w, const char *what, int averr)
{
    char msg[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(averr, msg, sizeof msg);
    SL_LOGW(w->log, "recorder: mp4: %s: %s", what, msg);
}

/* The error to report after a libav call: our write error first, else SL_EIO. */
static int fail_code(const sl_rec_mp4_t *w, int averr)
{
    if (w->err)
        return w->err;
    return averr == AVERROR(ENOMEM) ? SL_ENOMEM : SL_EIO;
}

/*
 * Makes the muxer with a track per configuration seen (a codec the mp4
 * muxer cannot take from us is left out, with a log line) and writes the
 * header. sample: the first frame's codec bytes (kind first_kind), for
 * the picture size.
 */
static int start(sl_rec_mp4_t *w, int first_kind, const uint8_t *sample, size_t sample_len)
{
    AVDictionary *opts = NULL;
    AVCodecParameters *pars[N_TRACKS] = {NULL, NULL};
    uint8_t *iobuf = NULL;
    int rc = SL_ENOMEM, n_tracks = 0;
    for (int i = 0; i < N_TRACKS; i++) {
        w_track_t *t = &w->t[i];
        if (!t->config)
            continue;
        if (!(pars[i] = avcodec_parameters_alloc()))
            goto fail;
        int trc = i == TRACK_VIDEO
                      ? sl_avpar_set_video(pars[i], t->codec, t->config, t->config_len,
                                           first_kind == SL_FLV_VIDEO ? sample : NULL,
                                           first_kind == SL_FLV_VIDEO ? sample_len : 0, 0, 0)
                      : sl_avpar_set_audio(pars[i], t->codec, t->config, t->config_len);
        if (trc == SL_ENOMEM)
            goto fail;
        if (trc) {
            SL_LOGW(w->log, "recorder: mp4: %s %s cannot be recorded to MP4; track left out",
                    i == TRACK_VIDEO ? "video" : "audio", sl_codec_name(t->codec));
            avcodec_parameters_free(&pars[i]);
            continue;
        }
        n_tracks++;
    }
    if (!n_tracks) {
        SL_LOGW(w->log, "recorder: mp4: no track to record");
        rc = SL_EINVAL;
        goto fail;
    }
    int arc = avformat_alloc_output_context2(&w->oc, NULL, "mp4", NULL);
    if (arc < 0 || !w->oc) {
        w->oc = NULL;
        log_av(w, "cannot create the muxer", arc < 0 ? arc : AVERROR(ENOMEM));
        goto fail;
    }
    if (!(iobuf = av_malloc(AVIO_BUF_SIZE)))
        goto fail;
    w->pb = avio_alloc_context(iobuf, AVIO_BUF_SIZE, 1, w, NULL, on_write, NULL);
    if (!w->pb)
        goto fail;
    iobuf = NULL; /* the context owns it now */
    w->pb->seekable = 0;
    w->oc->pb = w->pb;
    w->oc->flags |= AVFMT_FLAG_CUSTOM_IO;
    for (int i = 0; i < N_TRACKS; i++) {
        w_track_t *t = &w->t[i];
        if (!pars[i])
            continue;
        AVStream *st = avformat_new_stream(w->oc, NULL);
        if (!st || avcodec_parameters_copy(st->codecpar, pars[i]) < 0)
            goto fail;
        if (t->codec == SL_CODEC_HEVC)
            st->codecpar->codec_tag = MKTAG('h', 'v', 'c', '1');
        st->time_base = (AVRational){1, 1000};
        t->st = st;
    }
    char frag_us[32];
    snprintf(frag_us, sizeof frag_us, "%llu", (unsigned long long)w->frag_ms * 1000ULL);
    av_dict_set(&opts, "movflags", "+frag_keyframe+empty_moov+default_base_moof", 0);
    av_dict_set(&opts, "frag_duration", frag_us, 0);
    arc = avformat_write_header(w->oc, &opts);
    if (arc < 0) {
        log_av(w, "cannot start the muxer", arc);
        rc = fail_code(w, arc);
        goto fail;
    }
    avio_flush(w->pb);
    if (w->err) {
        rc = w->err;
        goto fail;
    }
    av_dict_free(&opts);
    for (int i = 0; i < N_TRACKS; i++)
        avcodec_parameters_free(&pars[i]);
    w->good_size = w->size;
    w->started = 1;
    return 0;
fail:
    av_dict_free(&opts);
    av_free(iobuf);
    for (int i = 0; i < N_TRACKS; i++) {
        avcodec_parameters_free(&pars[i]);
        w->t[i].st = NULL;
    }
    if (w->pb) {
        av_freep(&w->pb->buffer);
        avio_context_free(&w->pb);
    }
    if (w->oc) {
        w->oc->pb = NULL;
        avformat_free_context(w->oc);
        w->oc = NULL;
    }
    return rc;
}

/* Writes a track's held frame with the given duration (ms). */
static int release_held(sl_rec_mp4_t *w, w_track_t *t, int64_t duration)
{
    AVPacket *pkt = t->held;
    if (!pkt || !pkt->data)
        return 0;
    pkt->duration = duration > 0 ? duration : 1;
    pkt->stream_index = t->st->index;
    av_packet_rescale_ts(pkt, (AVRational){1, 1000}, t->st->time_base);
    int arc = av_write_frame(w->oc, pkt);
    av_packet_unref(pkt);
    avio_flush(w->pb);
    if (w->err)
        return w->err;
    if (arc < 0) {
        log_av(w, "cannot write a frame", arc);
        return fail_code(w, arc);
    }
    w->good_size = w->size;
    return 0;
}

/* Writes the held frames, the last fragment and the index. */
static int finish_file(sl_rec_mp4_t *w)
{
    int rc = 0;
    if (!w->started || w->finished)
        return 0;
    w->finished = 1;
    for (int i = 0; i < N_TRACKS && !rc; i++) {
        w_track_t *t = &w->t[i];
        if (t->st && t->held && t->held->data)
            rc = release_held(w, t, t->last_interval ? t->last_interval : t->default_ms);
    }
    if (!rc && !w->err) {
        int arc = av_write_trailer(w->oc);
        avio_flush(w->pb);
        if (w->err)
            rc = w->err;
        else if (arc < 0)
            rc = fail_code(w, arc);
        else
            w->good_size = w->size;
    }
    return rc ? rc : w->err;
}

int sl__rec_mp4_write(sl_rec_mp4_t *w, uint8_t type, uint32_t ts, const uint8_t *body,
                      size_t len)
{
    if (w->finished || w->err)
        return w->err;
    sl_flv_info_t info;
    int ti;
    if (type == SL_FLV_VIDEO && sl_flv_parse_video(body, len, &info) == 0)
        ti = TRACK_VIDEO;
    else if (type == SL_FLV_AUDIO && sl_flv_parse_audio(body, len, &info) == 0)
        ti = TRACK_AUDIO;
    else
        return 0; /* data (our MP4 has no metadata track) or an unparsable tag */
    if (info.multitrack || info.is_eos || info.is_info || info.data_off > len)
        return 0;
    w_track_t *t = &w->t[ti];
    const uint8_t *data = body + info.data_off;
    size_t n = len - info.data_off;
    if (info.is_config) {
        if (!w->started) {
            uint8_t *copy = n ? sl_malloc(n) : NULL;
            if (!copy)
                return n ? SL_ENOMEM : 0;
            memcpy(copy, data, n);
            sl_free(t->config);
            t->config = copy;
            t->config_len = n;
            t->codec = info.codec;
            return 0;
        }
        if (!t->st)
            return 0; /* a track that appeared after the header: not recorded (documented) */
        if (t->codec == info.codec && t->config_len == n && memcmp(t->config, data, n) == 0)
            return 0; /* the same configuration again */
        SL_LOGI(w->log, "recorder: mp4: the %s configuration changed: the file ends here",
                ti == TRACK_VIDEO ? "video" : "audio");
        int rc = finish_file(w);
        return rc ? rc : SL_REC_MP4_CHANGED;
    }
    if (!n)
        return 0;
    if (!w->started) {
        int rc = start(w, type, data, n);
        if (rc)
            return rc;
    }
    if (!t->st || t->codec != info.codec)
        return 0;
    int64_t dts = ts;
    if (t->have_last && dts <= t->last_dts)
        dts = t->last_dts + 1; /* the muxer wants strictly increasing decode times */
    if (t->held && t->held->data) {
        int rc = release_held(w, t, dts - t->last_dts);
        if (rc)
            return rc;
    }
    if (!t->held && !(t->held = av_packet_alloc()))
        return SL_ENOMEM;
    if (av_new_packet(t->held, (int)n) < 0)
        return SL_ENOMEM;
    memcpy(t->held->data, data, n);
    t->held->dts = dts;
    t->held->pts = dts + (info.cts_ms > 0 ? info.cts_ms : 0);
    t->held->flags = ti == TRACK_AUDIO || info.is_key ? AV_PKT_FLAG_KEY : 0;
    if (t->have_last && dts > t->last_dts)
        t->last_interval = dts - t->last_dts;
    t->last_dts = dts;
    t->have_last = 1;
    return 0;
}

int sl__rec_mp4_finish(sl_rec_mp4_t *w, uint64_t *size, uint64_t *good_size)
{
    if (!w)
        return 0;
    int rc = finish_file(w);
    *size = w->size;
    *good_size = w->good_size;
    for (int i = 0; i < N_TRACKS; i++) {
        av_packet_free(&w->t[i].held);
        sl_free(w->t[i].config);
    }
    if (w->pb) {
        av_freep(&w->pb->buffer);
        avio_context_free(&w->pb);
    }
    if (w->oc) {
        w->oc->pb = NULL;
        avformat_free_context(w->oc);
    }
    sl_free(w);
    return rc;
}

/* ------------------------------------------------------------------ */
/* repair                                                              */

int sl_recorder_mp4_repair(int fd, sl_recorder_mp4_scan_t *scan)
{
    memset(scan, 0, sizeof *scan);
    struct stat stt;
    if (fstat(fd, &stt))
        return SL_EIO;
    uint64_t file_len = (uint64_t)stt.st_size, pos = 0, good = 0;
    int in_fragment = 0; /* a moof was seen, its mdat not yet */
    while (pos + 8 <= file_len) {
        uint8_t h[16];
        size_t want = file_len - pos >= 16 ? 16 : 8;
        int r = sl_pread_full(fd, h, want, (off_t)pos);
        if (r < 0)
            return SL_EIO;
        if (r == 0)
            break;
        uint64_t size = sl_rd_be32(h), hdr = 8;
        if (size == 1) {
            if (want < 16)
                break;
            size = (uint64_t)sl_rd_be32(h + 8) << 32 | sl_rd_be32(h + 12);
            hdr = 16;
        } else if (size == 0) {
            size = file_len - pos; /* to the end of the file */
        }
        int printable = 1;
        for (int i = 4; i < 8; i++)
            printable &= h[i] >= 0x20 && h[i] < 0x7f;
        if (!printable || size < hdr || size > file_len - pos)
            break;
        if (pos == 0 && memcmp(h + 4, "ftyp", 4) != 0)
            return SL_EPROTO;
        if (memcmp(h + 4, "moof", 4) == 0) {
            in_fragment = 1;
        } else if (memcmp(h + 4, "mdat", 4) == 0) {
            if (in_fragment)
                scan->n_fragments++;
            in_fragment = 0;
            good = pos + size;
        } else if (!in_fragment) {
            /* Only a moov that is kept counts (one inside a torn fragment would go). */
            if (memcmp(h + 4, "moov", 4) == 0)
                scan->has_moov = 1;
            good = pos + size;
        }
        pos += size;
    }
    if (!scan->has_moov)
        return SL_EPROTO;
    scan->size = good;
    if (good < file_len) {
        scan->truncated = file_len - good;
        if (ftruncate(fd, (off_t)good))
            return SL_EIO;
    }
    return 0;
}

int sl_recorder_mp4_duration(const char *file, uint64_t *duration_ms, char *codecs, size_t cap)
{
    AVFormatContext *ic = NULL;
    AVPacket *pkt = av_packet_alloc();
    int rc = SL_EPROTO;
    *duration_ms = 0;
    if (codecs && cap)
        codecs[0] = '\0';
    if (!pkt || avformat_open_input(&ic, file, NULL, NULL) < 0)
        goto out;
    int64_t first = INT64_MAX, end = INT64_MIN;
    while (av_read_frame(ic, pkt) >= 0) {
        AVStream *st = ic->streams[pkt->stream_index];
        AVRational ms = {1, 1000};
        int64_t dts = pkt->dts != AV_NOPTS_VALUE ? pkt->dts : pkt->pts;
        if (dts != AV_NOPTS_VALUE) {
            int64_t d = av_rescale_q(dts, st->time_base, ms);
            int64_t e = av_rescale_q(dts + (pkt->duration > 0 ? pkt->duration : 0),
                                     st->time_base, ms);
            if (d < first)
                first = d;
            if (e > end)
                end = e;
        }
        av_packet_unref(pkt);
    }
    if (end > first)
        *duration_ms = (uint64_t)(end - first);
    if (codecs && cap) {
        size_t o = 0;
        for (unsigned i = 0; i < ic->nb_streams && o < cap; i++) {
            const char *name = avcodec_get_name(ic->streams[i]->codecpar->codec_id);
            int w = snprintf(codecs + o, cap - o, "%s%s", o ? "," : "", name);
            if (w < 0 || (size_t)w >= cap - o)
                break;
            o += (size_t)w;
        }
    }
    rc = 0;
out:
    avformat_close_input(&ic);
    av_packet_free(&pkt);
    return rc;
}
