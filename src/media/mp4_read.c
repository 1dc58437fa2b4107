/*
 * The MP4 reader (see mp4_read.h): libavformat's mov demuxer turned into
 * FLV tags, for VOD of MP4 recordings. Runs on worker threads only.
 *
 * Packets become FLV tag bodies (sl_avpar_flv_header + the sample as
 * stored: MP4 samples of H.264/HEVC are already length-prefixed NAL units,
 * as FLV wants them), with the sequence headers made from the tracks'
 * extradata (avcC, hvcC, av1C, AudioSpecificConfig, OpusHead). A fragment
 * stores a run of each track's samples, so the reader reads ahead
 * (bounded) and hands them over merged by decode time, as a live stream
 * would send them.
 */
#include "media/mp4_read.h"

#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "media/avpar.h"
#include "media/flv.h"
#include "sluice/errors.h"

/* ------------------------------------------------------------------ */
/* reading                                                             */

/*
 * Samples read ahead, per track, to hand them over in decode-time order:
 * a fragment stores a run of one track's samples then a run of the
 * other's, and the demuxer returns them nearly in file order.
 */
typedef struct pending {
    struct pending *next;
    AVPacket *pkt;          /* owned */
    int64_t dts_ms;
} pending_t;

#define REORDER_MAX_PACKETS 4096        /* read-ahead bound (a track missing for long) */
#define REORDER_MAX_BYTES (16u << 20)

struct sl_mp4_reader {
    AVFormatContext *ic;    /* owned */
    AVPacket *pkt;          /* owned */
    int vi, ai;             /* the video and audio streams played, or -1 */
    uint32_t vcodec, acodec;
    int need_head;          /* metadata and configurations go before the next frame */
    uint64_t duration_ms;
    pending_t *q_head[2], *q_tail[2]; /* read ahead: [0] video, [1] audio */
    size_t q_packets, q_bytes;
    int eof;                /* the demuxer has nothing more (until a seek) */
};

static void queue_clear(sl_mp4_reader_t *r)
{
    for (int i = 0; i < 2; i++) {
        while (r->q_head[i]) {
            pending_t *p = r->q_head[i];
            r->q_head[i] = p->next;
            av_packet_free(&p->pkt);
            sl_free(p);
        }
        r->q_tail[i] = NULL;
    }
    r->q_packets = r->q_bytes = 0;
}

int sl_mp4_reader_open(const char *file, sl_mp4_reader_t **out)
{
    *out = NULL;
    sl_mp4_reader_t *r = sl_calloc(1, sizeof *r);
    if (!r)
        return SL_ENOMEM;
    r->vi = r->ai = -1;
    r->need_head = 1;
    if (!(r->pkt = av_packet_alloc())) {
        sl_free(r);
        return SL_ENOMEM;
    }
    if (avformat_open_input(&r->ic, file, NULL, NULL) < 0) {
        sl_mp4_reader_close(r);
        return SL_EPROTO;
    }
    for (unsigned i = 0; i < r->ic->nb_streams; i++) {
        AVCodecParameters *par = r->ic->streams[i]->codecpar;
        uint32_t codec = sl_avpar_codec_of(par);
        if (!codec || !par->extradata_size)
            continue;
        if (par->codec_type == AVMEDIA_TYPE_VIDEO && r->vi < 0) {
            r->vi = (int)i;
            r->vcodec = codec;
        } else if (par->codec_type == AVMEDIA_TYPE_AUDIO && r->ai < 0) {
            r->ai = (int)i;
            r->acodec = codec;
        }
    }
    for (unsigned i = 0; i < r->ic->nb_streams; i++)
        if ((int)i != r->vi && (int)i != r->ai)
            r->ic->streams[i]->discard = AVDISCARD_ALL;
    if (r->vi < 0 && r->ai < 0) {
        sl_mp4_reader_close(r);
        return SL_EPROTO;
    }
    if (r->ic->duration > 0)
        r->duration_ms = (uint64_t)av_rescale(r->ic->duration, 1000, AV_TIME_BASE);
    *out = r;
    return 0;
}

void sl_mp4_reader_close(sl_mp4_reader_t *r)
{
    if (!r)
        return;
    queue_clear(r);
    avformat_close_input(&r->ic);
    av_packet_free(&r->pkt);
    sl_free(r);
}

uint64_t sl_mp4_reader_duration(const sl_mp4_reader_t *r) { return r->duration_ms; }

int sl_mp4_reader_seek(sl_mp4_reader_t *r, uint32_t ms)
{
    int si = r->vi >= 0 ? r->vi : r->ai;
    AVStream *st = r->ic->streams[si];
    int64_t ts = av_rescale_q(ms, (AVRational){1, 1000}, st->time_base);
    r->need_head = 1;
    r->eof = 0;
    queue_clear(r);
    if (av_seek_frame(r->ic, si, ts, AVSEEK_FLAG_BACKWARD) >= 0)
        return 0;
    /* Before the first keyframe, or no index: from the start. */
    if (av_seek_frame(r->ic, si, 0, AVSEEK_FLAG_BACKWARD | AVSEEK_FLAG_ANY) >= 0)
        return 0;
    return SL_EIO;
}

/* Room for n more bytes in *buf. */
static int reserve(uint8_t **buf, size_t len, size_t *cap, size_t n)
{
    if (len + n <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 64 * 1024;
    while (ncap < len + n)
        ncap *= 2;
    uint8_t *nb = sl_realloc(*buf, ncap);
    if (!nb)
        return SL_ENOMEM;
    *buf = nb;
    *cap = ncap;
    return 0;
}

/* Appends one FLV tag: header, body (head bytes then data), PreviousTagSize. */
static int put_tag(uint8_t **buf, size_t *len, size_t *cap, uint8_t type, uint32_t ts,
                   const uint8_t *head, size_t head_len, const uint8_t *data, size_t data_len)
{
    size_t body = head_len + data_len;
    if (body > 0xffffff)
        return 0; /* cannot be an FLV tag: skipped */
    int rc = reserve(buf, *len, cap, 11 + body + 4);
    if (rc)
        return rc;
    uint8_t *p = *buf + *len;
    p[0] = type;
    p[1] = (uint8_t)(body >> 16);
    p[2] = (uint8_t)(body >> 8);
    p[3] = (uint8_t)body;
    p[4] = (uint8_t)(ts >> 16);
    p[5] = (uint8_t)(ts >> 8);
    p[6] = (uint8_t)ts;
    p[7] = (uint8_t)(ts >> 24);
    p[8] = p[9] = p[10] = 0;
    if (head_len)
        memcpy(p + 11, head, head_len);
    if (data_len)
        memcpy(p + 11 + head_len, data, data_len);
    uint32_t prev = (uint32_t)(11 + body);
    p += 11 + body;
    p[0] = (uint8_t)(prev >> 24);
    p[1] = (uint8_t)(prev >> 16);
    p[2] = (uint8_t)(prev >> 8);
    p[3] = (uint8_t)prev;
    *len += 11 + body + 4;
    return 0;
}

static uint8_t *amf_num(uint8_t *p, const char *key, double v)
{
    size_t n = strlen(key);
    p[0] = 0;
    p[1] = (uint8_t)n;
    memcpy(p + 2, key, n);
    p += 2 + n;
    *p++ = 0; /* number */
    uint64_t u;
    memcpy(&u, &v, 8);
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(u >> (56 - 8 * i));
    return p;
}

/* FLV codec ids for onMetaData, as the recorder writes them in FLV files. */
static double meta_codec_id(uint32_t codec)
{
    return codec == SL_CODEC_AVC ? 7 : codec == SL_CODEC_AAC ? 10 : (double)codec;
}

/* onMetaData and the sequence headers, stamped ts. */
static int put_head(sl_mp4_reader_t *r, uint32_t ts, uint8_t **buf, size_t *len, size_t *cap)
{
    uint8_t meta[256], *p = meta;
    *p++ = 2; /* string */
    *p++ = 0;
    *p++ = 10;
    memcpy(p, "onMetaData", 10);
    p += 10;
    *p++ = 8; /* ECMA array */
    memset(p, 0, 4);
    p += 4;
    p = amf_num(p, "duration", (double)r->duration_ms / 1000.0);
    if (r->vi >= 0) {
        const AVCodecParameters *par = r->ic->streams[r->vi]->codecpar;
        p = amf_num(p, "videocodecid", meta_codec_id(r->vcodec));
        p = amf_num(p, "width", par->width);
        p = amf_num(p, "height", par->height);
    }
    if (r->ai >= 0)
        p = amf_num(p, "audiocodecid", meta_codec_id(r->acodec));
    *p++ = 0;
    *p++ = 0;
    *p++ = 9; /* object end */
    int rc = put_tag(buf, len, cap, SL_FLV_DATA, ts, meta, (size_t)(p - meta), NULL, 0);
    int idx[2] = {r->vi, r->ai};
    uint32_t codec[2] = {r->vcodec, r->acodec};
    for (int i = 0; i < 2 && !rc; i++) {
        if (idx[i] < 0)
            continue;
        const AVCodecParameters *par = r->ic->streams[idx[i]]->codecpar;
        uint8_t h[SL_AVPAR_TAG_HEADER_MAX];
        size_t hl = sl_avpar_flv_header(codec[i], 1, 1, 0, h);
        rc = put_tag(buf, len, cap, i == 0 ? SL_FLV_VIDEO : SL_FLV_AUDIO, ts, h, hl,
                     par->extradata, (size_t)par->extradata_size);
    }
    return rc;
}

/* The decode time of pkt in ms (0 when unknown or negative: an edit list's lead-in). */
static int64_t dts_ms_of(const sl_mp4_reader_t *r, const AVPacket *pkt, int64_t *pts_ms)
{
    AVStream *st = r->ic->streams[pkt->stream_index];
    AVRational ms = {1, 1000};
    int64_t dts = pkt->dts != AV_NOPTS_VALUE ? pkt->dts : pkt->pts;
    int64_t d = dts == AV_NOPTS_VALUE ? 0 : av_rescale_q(dts, st->time_base, ms);
    *pts_ms = pkt->pts == AV_NOPTS_VALUE ? d : av_rescale_q(pkt->pts, st->time_base, ms);
    return d < 0 ? 0 : d;
}

/* Reads one packet of a played track into its queue: 0, 1 at the end, or an error. */
static int read_ahead(sl_mp4_reader_t *r)
{
    for (;;) {
        int arc = av_read_frame(r->ic, r->pkt);
        if (arc == AVERROR_EOF) {
            r->eof = 1;
            return 1;
        }
        if (arc < 0)
            return arc == AVERROR(ENOMEM) ? SL_ENOMEM : SL_EIO;
        int ti = r->pkt->stream_index == r->vi ? 0 : r->pkt->stream_index == r->ai ? 1 : -1;
        if (ti < 0 || r->pkt->size <= 0) {
            av_packet_unref(r->pkt);
            continue;
        }
        pending_t *p = sl_calloc(1, sizeof *p);
        if (!p || !(p->pkt = av_packet_alloc())) {
            sl_free(p);
            av_packet_unref(r->pkt);
            return SL_ENOMEM;
        }
        av_packet_move_ref(p->pkt, r->pkt);
        int64_t pts_ms;
        p->dts_ms = dts_ms_of(r, p->pkt, &pts_ms);
        if (r->q_tail[ti])
            r->q_tail[ti]->next = p;
        else
            r->q_head[ti] = p;
        r->q_tail[ti] = p;
        r->q_packets++;
        r->q_bytes += (size_t)p->pkt->size;
        return 0;
    }
}

/* The next sample in decode-time order (taken off its queue), NULL when none is ready. */
static pending_t *next_sample(sl_mp4_reader_t *r)
{
    int have[2] = {r->q_head[0] != NULL, r->q_head[1] != NULL};
    int want[2] = {r->vi >= 0, r->ai >= 0};
    int ti;
    if (have[0] && have[1])
        ti = r->q_head[1]->dts_ms < r->q_head[0]->dts_ms;
    else if ((have[0] || have[1]) && (r->eof || !want[have[0] ? 1 : 0] ||
                                       r->q_packets >= REORDER_MAX_PACKETS ||
                                       r->q_bytes >= REORDER_MAX_BYTES))
        ti = have[0] ? 0 : 1; /* the other track has ended, is absent, or lags too far */
    else
        return NULL;
    pending_t *p = r->q_head[ti];
    r->q_head[ti] = p->next;
    if (!r->q_head[ti])
        r->q_tail[ti] = NULL;
    r->q_packets--;
    r->q_bytes -= (size_t)p->pkt->size;
    return p;
}

int sl_mp4_reader_read(sl_mp4_reader_t *r, size_t want, uint8_t **buf, size_t *len,
                        size_t *cap)
{
    size_t start = *len;
    while (*len - start < want) {
        pending_t *p = next_sample(r);
        if (!p) {
            if (r->eof)
                return 1;
            int rrc = read_ahead(r);
            if (rrc < 0)
                return rrc;
            continue;
        }
        AVPacket *pkt = p->pkt;
        int is_video = pkt->stream_index == r->vi;
        int64_t pts_ms;
        int64_t dts_ms = dts_ms_of(r, pkt, &pts_ms);
        int64_t cts = pts_ms - dts_ms;
        if (cts < 0 || cts > 0x7fffff)
            cts = 0;
        int rc = 0;
        if (r->need_head) {
            r->need_head = 0;
            rc = put_head(r, (uint32_t)dts_ms, buf, len, cap);
        }
        uint8_t h[SL_AVPAR_TAG_HEADER_MAX];
        uint32_t codec = is_video ? r->vcodec : r->acodec;
        size_t hl = sl_avpar_flv_header(codec, 0, (pkt->flags & AV_PKT_FLAG_KEY) != 0,
                                        (int32_t)cts, h);
        if (!rc)
            rc = put_tag(buf, len, cap, is_video ? SL_FLV_VIDEO : SL_FLV_AUDIO,
                         (uint32_t)dts_ms, h, hl, pkt->data, (size_t)pkt->size);
        av_packet_free(&p->pkt);
        sl_free(p);
        if (rc)
            return rc;
    }
    return 0;
}
