/*
 * MPEG-TS demuxing through libavformat into FLV tag bodies (see
 * ts_demux.h): the custom AVIOContext, the per-packet conversion
 * (Annex-B -> length-prefixed NAL units with avcC/hvcC built from the
 * parameter sets, ADTS -> raw AAC with an AudioSpecificConfig) and the
 * timestamp rebasing.
 */
#include "proto/srt/ts_demux.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "media/avpar.h"
#include "media/flv.h"
#include "sluice/errors.h"

#define AVIO_BUF_SIZE (32 * 1024)
#define MAX_TRACKS 16 /* PMT entries looked at; more are ignored */

typedef struct param {
    uint8_t b[SL_TS_DEMUX_PARAM_MAX];
    size_t n;
} param_t;

typedef struct track {
    uint32_t codec;          /* SL_CODEC_* or 0 (ignored track) */
    param_t vps, sps, pps;   /* latest parameter sets (video) */
    int config_sent;         /* the sequence header went out for the current sets */
    uint8_t asc[2];          /* AAC: current AudioSpecificConfig */
    int asc_sent;
} track_t;

struct sl_ts_demux {
    sl_ts_read_cb read;
    sl_ts_frame_cb on_frame;
    void *ud;
    size_t max_frame_bytes;
    AVFormatContext *fc;
    AVIOContext *pb;
    AVPacket *pkt;
    track_t t[MAX_TRACKS];
    int have_base;           /* base_90k is set */
    int64_t base_90k;        /* the input's timestamp of our 0 */
    int64_t last_ms;         /* the newest dts handed out */
    uint8_t *scratch;        /* one frame being built (max_frame_bytes + header) */
    size_t scratch_cap;
    sl_ts_demux_stats_t st;
};

static int on_read(void *opaque, uint8_t *buf, int size)
{
    sl_ts_demux_t *d = opaque;
    int n = d->read(d->ud, buf, size);
    if (n > 0)
        return n > size ? size : n;
    return n == 0 ? AVERROR_EOF : AVERROR(EIO);
}

sl_ts_demux_t *sl_ts_demux_new(sl_ts_read_cb read, sl_ts_frame_cb on_frame, void *ud,
                               size_t max_frame_bytes)
{
    sl_ts_demux_t *d = sl_calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->read = read;
    d->on_frame = on_frame;
    d->ud = ud;
    d->max_frame_bytes = max_frame_bytes ? max_frame_bytes : 8u << 20;
    return d;
}

void sl_ts_demux_free(sl_ts_demux_t *d)
{
    if (!d)
        return;
    if (d->fc)
        avformat_close_input(&d->fc); /* custom I/O: pb is ours */
    if (d->pb) {
        av_freep(&d->pb->buffer);
        avio_context_free(&d->pb);
    }
    av_packet_free(&d->pkt);
    sl_free(d->scratch);
    sl_free(d);
}

void sl_ts_demux_stats(const sl_ts_demux_t *d, sl_ts_demux_stats_t *out) { *out = d->st; }

/* ------------------------------------------------------------------ */
/* parameter sets                                                      */

/* Removes emulation-prevention bytes (00 00 03) into out; returns its length. */
static size_t unescape(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    size_t o = 0, zeros = 0;
    for (size_t i = 0; i < n && o < cap; i++) {
        if (zeros >= 2 && in[i] == 3) {
            zeros = 0;
            continue;
        }
        zeros = in[i] == 0 ? zeros + 1 : 0;
        out[o++] = in[i];
    }
    return o;
}

size_t sl_ts_avcc_build(const uint8_t *sps, size_t sps_len, const uint8_t *pps, size_t pps_len,
                        uint8_t *out, size_t cap)
{
    size_t need = 11 + sps_len + pps_len;
    if (sps_len < 4 || !pps_len || need > cap || sps_len > 0xffff || pps_len > 0xffff)
        return 0;
    uint8_t *p = out;
    *p++ = 1;
    *p++ = sps[1]; /* profile */
    *p++ = sps[2]; /* compatibility */
    *p++ = sps[3]; /* level */
    *p++ = 0xff;   /* 4-byte NAL lengths */
    *p++ = 0xe1;   /* one SPS */
    sl_wr_be16(p, (uint16_t)sps_len), p += 2;
    memcpy(p, sps, sps_len), p += sps_len;
    *p++ = 1;      /* one PPS */
    sl_wr_be16(p, (uint16_t)pps_len), p += 2;
    memcpy(p, pps, pps_len), p += pps_len;
    return (size_t)(p - out);
}

/* A bit reader over an unescaped RBSP. */
typedef struct bits {
    const uint8_t *p;
    size_t n, pos; /* pos in bits */
    int err;
} bits_t;

static uint32_t rd(bits_t *b, int k)
{
    uint32_t v = 0;
    while (k-- > 0) {
        if (b->pos >= b->n * 8) {
            b->err = 1;
            return 0;
        }
        v = v << 1 | ((b->p[b->pos >> 3] >> (7 - (b->pos & 7))) & 1);
        b->pos++;
    }
    return v;
}

static uint32_t ue(bits_t *b)
{
    int zeros = 0;
    while (!b->err && rd(b, 1) == 0)
        if (++zeros > 31) {
            b->err = 1;
            return 0;
        }
    return ((1u << zeros) - 1) + rd(b, zeros);
}

static size_t put_array(uint8_t *p, uint8_t type, const uint8_t *nal, size_t n)
{
    p[0] = (uint8_t)(0x80 | type); /* array_completeness */
    sl_wr_be16(p + 1, 1);
    sl_wr_be16(p + 3, (uint16_t)n);
    memcpy(p + 5, nal, n);
    return 5 + n;
}

size_t sl_ts_hvcc_build(const uint8_t *vps, size_t vps_len, const uint8_t *sps, size_t sps_len,
                        const uint8_t *pps, size_t pps_len, uint8_t *out, size_t cap)
{
    uint8_t rbsp[SL_TS_DEMUX_PARAM_MAX];
    if (!vps_len || !pps_len || sps_len > sizeof rbsp || vps_len > 0xffff || pps_len > 0xffff)
        return 0;
    size_t rn = unescape(sps, sps_len, rbsp, sizeof rbsp);
    if (rn < 15)
        return 0;
    size_t need = 23 + 3 * 5 + vps_len + sps_len + pps_len;
    if (need > cap)
        return 0;
    /* rbsp[0..1]: NAL header; rbsp[2]: vps id (4), max_sub_layers_minus1 (3),
     * temporal_id_nesting (1); rbsp[3..14]: general_profile_tier_level. */
    int max_sub = (rbsp[2] >> 1) & 7;
    int nested = rbsp[2] & 1;
    bits_t b = {rbsp, rn, 15 * 8, 0};
    uint32_t chroma = 1, depth_l = 0, depth_c = 0;
    if (max_sub > 0) {
        int prof[8] = {0}, lev[8] = {0};
        for (int i = 0; i < max_sub; i++) {
            prof[i] = (int)rd(&b, 1);
            lev[i] = (int)rd(&b, 1);
        }
        for (int i = max_sub; i < 8; i++)
            rd(&b, 2);
        for (int i = 0; i < max_sub; i++) {
            if (prof[i])
                rd(&b, 32), rd(&b, 32), rd(&b, 24);
            if (lev[i])
                rd(&b, 8);
        }
    }
    ue(&b); /* sps_seq_parameter_set_id */
    chroma = ue(&b);
    if (chroma == 3)
        rd(&b, 1);
    ue(&b), ue(&b); /* width, height */
    if (rd(&b, 1))
        ue(&b), ue(&b), ue(&b), ue(&b); /* conformance window */
    depth_l = ue(&b);
    depth_c = ue(&b);
    if (b.err || chroma > 3 || depth_l > 7 || depth_c > 7)
        chroma = 1, depth_l = 0, depth_c = 0; /* a guess the decoders do not rely on */
    uint8_t *p = out;
    *p++ = 1;
    memcpy(p, rbsp + 3, 12); /* profile space/tier/idc, compat flags, constraint flags, level */
    p += 12;
    sl_wr_be16(p, 0xf000), p += 2; /* min_spatial_segmentation_idc 0 */
    *p++ = 0xfc;                   /* parallelismType 0 */
    *p++ = (uint8_t)(0xfc | chroma);
    *p++ = (uint8_t)(0xf8 | depth_l);
    *p++ = (uint8_t)(0xf8 | depth_c);
    sl_wr_be16(p, 0), p += 2; /* avgFrameRate unknown */
    *p++ = (uint8_t)(((max_sub + 1) & 7) << 3 | nested << 2 | 3); /* 4-byte lengths */
    *p++ = 3;
    p += put_array(p, 32, vps, vps_len);
    p += put_array(p, 33, sps, sps_len);
    p += put_array(p, 34, pps, pps_len);
    return (size_t)(p - out);
}

/* ------------------------------------------------------------------ */
/* packets                                                             */

static void emit(sl_ts_demux_t *d, uint8_t kind, int64_t dts, const uint8_t *hdr, size_t hn,
                 const uint8_t *data, size_t n)
{
    sl_buf_t *b = sl_buf_new(hn + n);
    if (!b) {
        d->st.dropped++;
        return;
    }
    memcpy(b->data, hdr, hn);
    if (n)
        memcpy(b->data + hn, data, n);
    b->len = hn + n;
    d->st.frames++;
    d->st.bytes += b->len;
    d->on_frame(d->ud, kind, dts, b);
}

static int set_param(param_t *p, const uint8_t *nal, size_t n)
{
    if (n > sizeof p->b || (p->n == n && memcmp(p->b, nal, n) == 0))
        return 0;
    memcpy(p->b, nal, n);
    p->n = n;
    return 1;
}

/* Next NAL unit of an Annex-B buffer: returns its start and length, or NULL at the end. */
static const uint8_t *next_nal(const uint8_t **cur, const uint8_t *end, size_t *len)
{
    const uint8_t *p = *cur;
    while (p + 3 <= end && !(p[0] == 0 && p[1] == 0 && p[2] == 1))
        p++;
    if (p + 3 > end)
        return NULL;
    const uint8_t *s = p + 3, *q = s;
    while (q + 3 <= end && !(q[0] == 0 && q[1] == 0 && (q[2] == 1 || (q[2] == 0 && q + 4 <= end && q[3] == 1))))
        q++;
    if (q + 3 > end)
        q = end;
    *cur = q;
    size_t n = (size_t)(q - s);
    while (n > 0 && s[n - 1] == 0) /* trailing zeros belong to the next start code */
        n--;
    *len = n;
    return s;
}

static void on_video(sl_ts_demux_t *d, track_t *t, int64_t dts, int32_t cts, const uint8_t *data,
                     size_t n, int pkt_key)
{
    int hevc = t->codec == SL_CODEC_HEVC;
    uint8_t hdr[SL_AVPAR_TAG_HEADER_MAX];
    size_t out = 0;
    int key = 0;
    const uint8_t *cur = data, *end = data + n, *nal;
    size_t nl;
    while ((nal = next_nal(&cur, end, &nl)) != NULL) {
        if (!nl)
            continue;
        int type = hevc ? (nal[0] >> 1) & 0x3f : nal[0] & 0x1f;
        if (hevc ? type == 32 : 0) {
            t->config_sent &= !set_param(&t->vps, nal, nl);
            continue;
        }
        if (hevc ? type == 33 : type == 7) {
            t->config_sent &= !set_param(&t->sps, nal, nl);
            continue;
        }
        if (hevc ? type == 34 : type == 8) {
            t->config_sent &= !set_param(&t->pps, nal, nl);
            continue;
        }
        if (hevc ? type == 35 : type == 9) /* access unit delimiter */
            continue;
        if (hevc ? (type >= 16 && type <= 23) : type == 5)
            key = 1;
        if (out + 4 + nl > d->max_frame_bytes) {
            d->st.dropped++;
            return;
        }
        sl_wr_be32(d->scratch + out, (uint32_t)nl);
        memcpy(d->scratch + out + 4, nal, nl);
        out += 4 + nl;
    }
    (void)pkt_key;
    if (!t->config_sent && t->sps.n && t->pps.n && (!hevc || t->vps.n)) {
        uint8_t rec[3 * SL_TS_DEMUX_PARAM_MAX + 64];
        size_t rl = hevc ? sl_ts_hvcc_build(t->vps.b, t->vps.n, t->sps.b, t->sps.n, t->pps.b, t->pps.n, rec, sizeof rec)
                         : sl_ts_avcc_build(t->sps.b, t->sps.n, t->pps.b, t->pps.n, rec, sizeof rec);
        if (rl) {
            size_t hl = sl_avpar_flv_header(t->codec, 1, 1, 0, hdr);
            emit(d, SL_FLV_VIDEO, dts, hdr, hl, rec, rl);
            t->config_sent = 1;
        }
    }
    if (!t->config_sent || !out) {
        if (out)
            d->st.dropped++; /* no parameter sets yet: nothing can decode it */
        return;
    }
    size_t hl = sl_avpar_flv_header(t->codec, 0, key, cts, hdr);
    emit(d, SL_FLV_VIDEO, dts, hdr, hl, d->scratch, out);
}

static const uint32_t g_aac_rates[16] = {96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050,
                                         16000, 12000, 11025, 8000, 7350, 0, 0, 0};

static void on_aac(sl_ts_demux_t *d, track_t *t, int64_t dts, const uint8_t *p, size_t n)
{
    uint8_t hdr[SL_AVPAR_TAG_HEADER_MAX];
    int64_t frame_i = 0;
    while (n >= 7) {
        if (p[0] != 0xff || (p[1] & 0xf6) != 0xf0) {
            d->st.dropped++;
            return;
        }
        size_t hl = (p[1] & 1) ? 7 : 9;
        size_t fl = (size_t)((p[3] & 3) << 11 | p[4] << 3 | p[5] >> 5);
        unsigned aot = (unsigned)(p[2] >> 6) + 1, sfi = (p[2] >> 2) & 0xf;
        unsigned ch = (unsigned)((p[2] & 1) << 2 | p[3] >> 6);
        if (fl < hl || fl > n || !g_aac_rates[sfi]) {
            d->st.dropped++;
            return;
        }
        uint8_t asc[2] = {(uint8_t)(aot << 3 | sfi >> 1), (uint8_t)((sfi & 1) << 7 | ch << 3)};
        int64_t fdts = dts + frame_i * 1024 * 1000 / g_aac_rates[sfi];
        if (!t->asc_sent || memcmp(asc, t->asc, 2) != 0) {
            memcpy(t->asc, asc, 2);
            t->asc_sent = 1;
            size_t h = sl_avpar_flv_header(SL_CODEC_AAC, 1, 0, 0, hdr);
            emit(d, SL_FLV_AUDIO, fdts, hdr, h, asc, 2);
        }
        size_t h = sl_avpar_flv_header(SL_CODEC_AAC, 0, 0, 0, hdr);
        if (fl > hl)
            emit(d, SL_FLV_AUDIO, fdts, hdr, h, p + hl, fl - hl);
        p += fl, n -= fl, frame_i++;
    }
}

static void on_opus(sl_ts_demux_t *d, track_t *t, const AVCodecParameters *par, int64_t dts,
                    const uint8_t *p, size_t n)
{
    uint8_t hdr[SL_AVPAR_TAG_HEADER_MAX];
    if (!t->config_sent) {
        uint8_t head[19] = {'O', 'p', 'u', 's', 'H', 'e', 'a', 'd', 1, 2, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 0};
        const uint8_t *cfg = head;
        size_t cl = sizeof head;
        if (par->extradata && par->extradata_size >= 19 && par->extradata_size <= 1024 &&
            memcmp(par->extradata, "OpusHead", 8) == 0) {
            cfg = par->extradata;
            cl = (size_t)par->extradata_size;
        } else if (par->ch_layout.nb_channels == 1) {
            head[9] = 1;
        }
        size_t h = sl_avpar_flv_header(SL_CODEC_OPUS, 1, 0, 0, hdr);
        emit(d, SL_FLV_AUDIO, dts, hdr, h, cfg, cl);
        t->config_sent = 1;
    }
    size_t h = sl_avpar_flv_header(SL_CODEC_OPUS, 0, 0, 0, hdr);
    emit(d, SL_FLV_AUDIO, dts, hdr, h, p, n);
}

/* The packet's dts in ms on our timeline (see the header: rebased on jumps). */
static int64_t packet_dts(sl_ts_demux_t *d, const AVStream *st, const AVPacket *pkt, int32_t *cts)
{
    int64_t dts = pkt->dts != AV_NOPTS_VALUE ? pkt->dts : pkt->pts;
    *cts = 0;
    if (dts == AV_NOPTS_VALUE)
        return d->last_ms;
    int64_t t90 = av_rescale_q(dts, st->time_base, (AVRational){1, 90000});
    if (!d->have_base) {
        d->have_base = 1;
        d->base_90k = t90;
    }
    int64_t ms = (t90 - d->base_90k) / 90;
    if (ms < d->last_ms - SL_TS_DEMUX_JUMP_MS || ms > d->last_ms + SL_TS_DEMUX_JUMP_MS) {
        /* A new timeline (encoder restart, 33-bit wrap): continue from where we are. */
        d->base_90k = t90 - d->last_ms * 90;
        ms = d->last_ms;
    }
    if (ms > d->last_ms)
        d->last_ms = ms;
    if (pkt->pts != AV_NOPTS_VALUE && pkt->dts != AV_NOPTS_VALUE && pkt->pts > pkt->dts) {
        int64_t c = av_rescale_q(pkt->pts - pkt->dts, st->time_base, (AVRational){1, 1000});
        *cts = c > 0x7fffff ? 0x7fffff : (int32_t)c;
    }
    return ms < 0 ? 0 : ms;
}

static uint32_t codec_of(const AVCodecParameters *par)
{
    switch (par->codec_id) {
    case AV_CODEC_ID_H264: return SL_CODEC_AVC;
    case AV_CODEC_ID_HEVC: return SL_CODEC_HEVC;
    case AV_CODEC_ID_AAC: return SL_CODEC_AAC;
    case AV_CODEC_ID_OPUS: return SL_CODEC_OPUS;
    default: return 0;
    }
}

static void on_packet(sl_ts_demux_t *d, const AVPacket *pkt)
{
    if (pkt->stream_index < 0 || pkt->stream_index >= MAX_TRACKS ||
        (unsigned)pkt->stream_index >= d->fc->nb_streams || pkt->size <= 0)
        return;
    const AVStream *st = d->fc->streams[pkt->stream_index];
    track_t *t = &d->t[pkt->stream_index];
    uint32_t codec = codec_of(st->codecpar);
    if (!codec || (size_t)pkt->size > d->max_frame_bytes) {
        d->st.dropped++;
        return;
    }
    if (t->codec != codec) {
        memset(t, 0, sizeof *t);
        t->codec = codec;
    }
    int32_t cts;
    int64_t dts = packet_dts(d, st, pkt, &cts);
    if (codec == SL_CODEC_AVC || codec == SL_CODEC_HEVC) {
        /* One video track goes to the hub: the first one seen. */
        if (d->st.video_codec && d->st.video_codec != codec)
            return;
        d->st.video_codec = codec;
        on_video(d, t, dts, cts, pkt->data, (size_t)pkt->size, pkt->flags & AV_PKT_FLAG_KEY);
    } else {
        if (d->st.audio_codec && d->st.audio_codec != codec)
            return;
        d->st.audio_codec = codec;
        if (codec == SL_CODEC_AAC)
            on_aac(d, t, dts, pkt->data, (size_t)pkt->size);
        else
            on_opus(d, t, st->codecpar, dts, pkt->data, (size_t)pkt->size);
    }
}

int sl_ts_demux_run(sl_ts_demux_t *d)
{
    int rc = SL_ENOMEM;
    uint8_t *iobuf = NULL;
    if (!d->scratch) {
        d->scratch_cap = d->max_frame_bytes;
        if (!(d->scratch = sl_malloc(d->scratch_cap)))
            return SL_ENOMEM;
    }
    if (!(d->pkt = av_packet_alloc()) || !(iobuf = av_malloc(AVIO_BUF_SIZE)))
        goto fail;
    d->pb = avio_alloc_context(iobuf, AVIO_BUF_SIZE, 0, d, on_read, NULL, NULL);
    if (!d->pb)
        goto fail;
    iobuf = NULL;
    d->pb->seekable = 0;
    if (!(d->fc = avformat_alloc_context()))
        goto fail;
    d->fc->pb = d->pb;
    d->fc->flags |= AVFMT_FLAG_CUSTOM_IO;
    d->fc->probesize = SL_TS_DEMUX_PROBE_BYTES;
    const AVInputFormat *fmt = av_find_input_format("mpegts");
    if (!fmt) {
        rc = SL_EIO;
        goto fail;
    }
    int arc = avformat_open_input(&d->fc, NULL, fmt, NULL);
    if (arc < 0) {
        /* avformat_open_input freed the context on failure (not our pb). */
        d->fc = NULL;
        rc = arc == AVERROR(ENOMEM) ? SL_ENOMEM : arc == AVERROR_EOF ? 0 : SL_EPROTO;
        goto fail;
    }
    for (;;) {
        arc = av_read_frame(d->fc, d->pkt);
        if (arc < 0)
            break;
        on_packet(d, d->pkt);
        av_packet_unref(d->pkt);
    }
    rc = arc == AVERROR_EOF || arc == AVERROR(EIO) ? 0 : arc == AVERROR(ENOMEM) ? SL_ENOMEM : SL_EPROTO;
fail:
    av_free(iobuf);
    return rc;
}
