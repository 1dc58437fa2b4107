/*
 * The MPEG-TS muxer of SRT readers (see ts_mux.h), on libavformat's
 * mpegts muxer with custom I/O into an sl_wbuf_t.
 */
#include "proto/srt/ts_mux.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "media/avpar.h"
#include "media/flv.h"
#include "sluice/errors.h"

#define AVIO_BUF_SIZE (7 * 188 * 8)

#if LIBAVFORMAT_VERSION_MAJOR >= 61
#define AVIO_WRITE_CONST const
#else
#define AVIO_WRITE_CONST
#endif

struct sl_ts_mux {
    AVFormatContext *oc;
    AVIOContext *pb;
    AVPacket *pkt;
    sl_wbuf_t out;
    int out_failed;
    AVStream *vst, *ast;
    sl_buf_t *vcfg, *acfg;  /* the configs it was built for (refs), to notice changes */
    int64_t last_dts[2];    /* kept strictly increasing per track */
    int have_last[2];
};

static int on_write(void *opaque, AVIO_WRITE_CONST uint8_t *buf, int size)
{
    sl_ts_mux_t *m = opaque;
    if (size > 0 && sl_wbuf_put(&m->out, buf, (size_t)size)) {
        m->out_failed = 1;
        return AVERROR(ENOMEM);
    }
    return size;
}

static int codec_ok(uint32_t c)
{
    return c == SL_CODEC_AVC || c == SL_CODEC_HEVC || c == SL_CODEC_AAC || c == SL_CODEC_OPUS;
}

static int add(sl_ts_mux_t *m, const sl_frame_t *cfg, AVStream **out)
{
    if (!cfg || !codec_ok(cfg->codec) || cfg->body->len <= cfg->data_off)
        return 0;
    AVStream *st = avformat_new_stream(m->oc, NULL);
    if (!st)
        return SL_ENOMEM;
    const uint8_t *c = cfg->body->data + cfg->data_off;
    size_t cl = cfg->body->len - cfg->data_off;
    int rc = cfg->kind == SL_FLV_VIDEO ? sl_avpar_set_video(st->codecpar, cfg->codec, c, cl, NULL, 0, 0, 0)
                                       : sl_avpar_set_audio(st->codecpar, cfg->codec, c, cl);
    if (rc)
        return rc;
    st->time_base = (AVRational){1, 90000};
    *out = st;
    return 0;
}

int sl_ts_mux_new(const sl_frame_t *video_config, const sl_frame_t *audio_config, sl_ts_mux_t **out)
{
    *out = NULL;
    AVDictionary *opts = NULL;
    uint8_t *iobuf = NULL;
    int rc = SL_ENOMEM;
    sl_ts_mux_t *m = sl_calloc(1, sizeof *m);
    if (!m)
        return SL_ENOMEM;
    sl_wbuf_init(&m->out, SL_TS_MUX_OUT_MAX);
    if (avformat_alloc_output_context2(&m->oc, NULL, "mpegts", NULL) < 0 || !m->oc) {
        rc = SL_EIO;
        goto fail;
    }
    if (!(iobuf = av_malloc(AVIO_BUF_SIZE)))
        goto fail;
    if (!(m->pb = avio_alloc_context(iobuf, AVIO_BUF_SIZE, 1, m, NULL, on_write, NULL)))
        goto fail;
    iobuf = NULL;
    m->pb->seekable = 0;
    m->oc->pb = m->pb;
    m->oc->flags |= AVFMT_FLAG_CUSTOM_IO;
    if (!(m->pkt = av_packet_alloc()))
        goto fail;
    if ((rc = add(m, video_config, &m->vst)) || (rc = add(m, audio_config, &m->ast)))
        goto fail;
    rc = SL_EINVAL;
    if (!m->vst && !m->ast)
        goto fail;
    m->vcfg = m->vst ? sl_buf_ref(video_config->body) : NULL;
    m->acfg = m->ast ? sl_buf_ref(audio_config->body) : NULL;
    /* Low latency: every audio frame is its own PES (no 2930-byte batching),
     * a PCR every 40 ms, PAT/PMT every 100 ms. */
    av_dict_set(&opts, "pes_payload_size", "0", 0);
    av_dict_set(&opts, "pcr_period", "40", 0);
    av_dict_set(&opts, "pat_period", "0.1", 0);
    m->oc->max_delay = 0;
    int arc = avformat_write_header(m->oc, &opts);
    if (arc < 0) {
        char msg[AV_ERROR_MAX_STRING_SIZE];
        av_strerror(arc, msg, sizeof msg);
        SL_LOGW(NULL, "srt: cannot start the TS muxer: %s", msg);
        rc = arc == AVERROR(ENOMEM) ? SL_ENOMEM : SL_EIO;
        goto fail;
    }
    avio_flush(m->pb);
    av_dict_free(&opts);
    *out = m;
    return 0;
fail:
    av_dict_free(&opts);
    av_free(iobuf);
    sl_ts_mux_free(m);
    return rc;
}

void sl_ts_mux_free(sl_ts_mux_t *m)
{
    if (!m)
        return;
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
    if (m->vcfg)
        sl_buf_unref(m->vcfg);
    if (m->acfg)
        sl_buf_unref(m->acfg);
    sl_free(m);
}

static int same(const sl_buf_t *a, const sl_frame_t *f)
{
    if (!a || !f)
        return !a && (!f || !codec_ok(f->codec));
    return a == f->body || (a->len == f->body->len && memcmp(a->data, f->body->data, a->len) == 0);
}

int sl_ts_mux_matches(const sl_ts_mux_t *m, const sl_frame_t *video_config, const sl_frame_t *audio_config)
{
    return same(m->vcfg, video_config) && same(m->acfg, audio_config);
}

int sl_ts_mux_write(sl_ts_mux_t *m, const sl_frame_t *f)
{
    if (f->flags & (SL_FRAME_CONFIG | SL_FRAME_META | SL_FRAME_EOS) || f->body->len <= f->data_off)
        return 0;
    AVStream *st = f->kind == SL_FLV_VIDEO ? m->vst : f->kind == SL_FLV_AUDIO ? m->ast : NULL;
    if (!st)
        return 0;
    int ti = f->kind == SL_FLV_VIDEO ? 0 : 1;
    int64_t dts = f->dts_ms;
    if (m->have_last[ti]) {
        /* extend past 32 bits and keep strictly increasing */
        int64_t ext = (m->last_dts[ti] & ~(int64_t)0xffffffff) | f->dts_ms;
        if (ext < m->last_dts[ti] - 0x80000000LL)
            ext += 0x100000000LL;
        else if (ext > m->last_dts[ti] + 0x80000000LL)
            ext -= 0x100000000LL;
        dts = ext <= m->last_dts[ti] ? m->last_dts[ti] + 1 : ext;
    }
    m->last_dts[ti] = dts;
    m->have_last[ti] = 1;
    AVPacket *pkt = m->pkt;
    pkt->data = f->body->data + f->data_off;
    pkt->size = (int)(f->body->len - f->data_off);
    pkt->stream_index = st->index;
    pkt->dts = dts;
    pkt->pts = dts + (f->cts_ms > 0 ? f->cts_ms : 0);
    pkt->flags = ti == 1 || (f->flags & SL_FRAME_KEY) ? AV_PKT_FLAG_KEY : 0;
    av_packet_rescale_ts(pkt, (AVRational){1, 1000}, st->time_base);
    int arc = av_write_frame(m->oc, pkt);
    av_packet_unref(pkt);
    if (arc >= 0)
        avio_flush(m->pb);
    if (m->out_failed)
        return SL_ETOOBIG;
    return arc < 0 ? SL_EIO : 0;
}

const uint8_t *sl_ts_mux_take(sl_ts_mux_t *m, size_t *len)
{
    *len = m->out.len;
    m->out.len = 0; /* the bytes stay valid until the next write */
    return m->out.data;
}
