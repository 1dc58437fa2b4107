/*
 * FLV codec configurations <-> libav codec parameters (see avpar.h).
 * Extracted from the HLS muxer so that MP4 recording and MP4 VOD set up
 * libav's streams exactly as HLS does.
 */
#include "media/avpar.h"

#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <string.h>

#include "media/flv.h"
#include "sluice/errors.h"

#define PROBE_SAMPLE_MAX (64 * 1024 * 1024) /* larger keyframes are not parsed for the size */

int sl_avpar_aac_config(const uint8_t *asc, size_t len, uint32_t *sample_rate,
                        uint32_t *channels)
{
    static const uint32_t rates[13] = {96000, 88200, 64000, 48000, 44100, 32000, 24000,
                                       22050, 16000, 12000, 11025, 8000, 7350};
    /* A tiny MSB-first bit reader over the first bytes of the config. */
    uint64_t bits = 0;
    size_t nbits = len > 7 ? 56 : len * 8;
    for (size_t i = 0; i < 7; i++)
        bits = bits << 8 | (i < len ? asc[i] : 0);
    size_t pos = 0;
#define TAKE(n) (pos += (n), pos > nbits ? 0 : (uint32_t)((bits >> (56 - pos)) & ((1u << (n)) - 1)))
    uint32_t aot = TAKE(5);
    if (aot == 31)
        aot = 32 + TAKE(6);
    uint32_t sfi = TAKE(4);
    uint32_t rate;
    if (sfi == 15)
        rate = TAKE(24);
    else
        rate = sfi < 13 ? rates[sfi] : 0;
    uint32_t cc = TAKE(4);
#undef TAKE
    if (pos > nbits || aot == 0 || rate == 0)
        return SL_EPROTO;
    *sample_rate = rate;
    *channels = cc == 0 ? 2 : cc == 7 ? 8 : cc <= 6 ? cc : 2;
    return 0;
}

static int set_extradata(AVCodecParameters *par, const uint8_t *p, size_t n)
{
    if (!p || !n || n > SL_AVPAR_CONFIG_MAX)
        return SL_EINVAL;
    av_freep(&par->extradata);
    par->extradata_size = 0;
    par->extradata = av_mallocz(n + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!par->extradata)
        return SL_ENOMEM;
    memcpy(par->extradata, p, n);
    par->extradata_size = (int)n;
    return 0;
}

/*
 * The picture size, read by libavcodec's parser from the configuration
 * (given as extradata) and a keyframe's data: the mp4 muxer writes it
 * into the track header. Leaves *w, *h alone when it cannot tell.
 */
static void probe_size(enum AVCodecID id, const uint8_t *config, size_t config_len,
                       const uint8_t *sample, size_t sample_len, uint32_t *w, uint32_t *h)
{
    if (!sample || !sample_len || sample_len > PROBE_SAMPLE_MAX)
        return;
    AVCodecParserContext *pc = av_parser_init(id);
    AVCodecContext *cc = avcodec_alloc_context3(NULL);
    uint8_t *data = av_malloc(sample_len + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!pc || !cc || !data)
        goto out;
    cc->extradata = av_mallocz(config_len + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!cc->extradata)
        goto out;
    memcpy(cc->extradata, config, config_len);
    cc->extradata_size = (int)config_len;
    memcpy(data, sample, sample_len);
    memset(data + sample_len, 0, AV_INPUT_BUFFER_PADDING_SIZE);
    pc->flags |= PARSER_FLAG_COMPLETE_FRAMES;
    uint8_t *o = NULL;
    int osize = 0;
    av_parser_parse2(pc, cc, &o, &osize, data, (int)sample_len, AV_NOPTS_VALUE, AV_NOPTS_VALUE, 0);
    if (pc->width > 0 && pc->height > 0) {
        *w = (uint32_t)pc->width;
        *h = (uint32_t)pc->height;
    }
out:
    av_free(data);
    avcodec_free_context(&cc);
    if (pc)
        av_parser_close(pc);
}

/* Reads a 16-bit length and skips that many non-zero bytes; 0 past the end. */
static int skip_ps(const uint8_t *p, size_t len, size_t *pos)
{
    if (len - *pos < 2)
        return 0;
    size_t n = (size_t)p[*pos] << 8 | p[*pos + 1];
    *pos += 2;
    if (n == 0 || n > len - *pos)
        return 0;
    *pos += n;
    return 1;
}

int sl_avpar_video_config_ok(uint32_t codec, const uint8_t *p, size_t len)
{
    if (codec != SL_CODEC_AVC && codec != SL_CODEC_HEVC)
        return 1;
    if (!p || len < 3)
        return 0;
    if ((p[0] == 0 && p[1] == 0 && p[2] == 1) ||
        (len >= 4 && p[0] == 0 && p[1] == 0 && p[2] == 0 && p[3] == 1))
        return 1; /* Annex B: the filters pass it through */
    size_t pos, total = 0;
    if (codec == SL_CODEC_AVC) {
        /* version, profile, compat, level, 0xfc|lenSize-1, 0xe0|numSPS, SPS..., numPPS, PPS... */
        if (len < 7 || p[0] != 1)
            return 0;
        unsigned nsps = p[5] & 0x1f;
        pos = 6;
        for (unsigned i = 0; i < nsps; i++)
            if (!skip_ps(p, len, &pos))
                return 0;
        if (pos >= len)
            return 0;
        unsigned npps = p[pos++];
        if (nsps + npps > SL_AVPAR_PS_MAX)
            return 0;
        for (unsigned i = 0; i < npps; i++)
            if (!skip_ps(p, len, &pos))
                return 0;
        return 1; /* high profiles may carry more bytes after the PPS */
    }
    /* HEVCDecoderConfigurationRecord: 22 bytes, numOfArrays, then per array
     * type(1) numNalus(2) and each NAL unit length(2) + bytes. */
    if (len < 23)
        return 0;
    unsigned arrays = p[22];
    pos = 23;
    for (unsigned a = 0; a < arrays; a++) {
        if (len - pos < 3)
            return 0;
        size_t cnt = (size_t)p[pos + 1] << 8 | p[pos + 2];
        pos += 3;
        total += cnt;
        if (total > SL_AVPAR_PS_MAX)
            return 0;
        for (size_t i = 0; i < cnt; i++)
            if (!skip_ps(p, len, &pos))
                return 0;
    }
    return 1;
}

int sl_avpar_set_video(AVCodecParameters *par, uint32_t codec, const uint8_t *config,
                       size_t config_len, const uint8_t *sample, size_t sample_len,
                       uint32_t width, uint32_t height)
{
    if (!sl_avpar_video_config_ok(codec, config, config_len))
        return SL_EINVAL;
    enum AVCodecID id = codec == SL_CODEC_AVC    ? AV_CODEC_ID_H264
                        : codec == SL_CODEC_HEVC ? AV_CODEC_ID_HEVC
                        : codec == SL_CODEC_AV1  ? AV_CODEC_ID_AV1
                                                 : AV_CODEC_ID_NONE;
    if (id == AV_CODEC_ID_NONE)
        return SL_EINVAL;
    par->codec_type = AVMEDIA_TYPE_VIDEO;
    par->codec_id = id;
    int rc = set_extradata(par, config, config_len);
    if (rc)
        return rc;
    probe_size(id, config, config_len, sample, sample_len, &width, &height);
    par->width = (int)width;
    par->height = (int)height;
    return 0;
}

int sl_avpar_set_audio(AVCodecParameters *par, uint32_t codec, const uint8_t *config,
                       size_t config_len)
{
    uint32_t rate, channels;
    if (codec == SL_CODEC_AAC) {
        if (sl_avpar_aac_config(config, config_len, &rate, &channels))
            return SL_EINVAL;
        par->codec_id = AV_CODEC_ID_AAC;
        par->frame_size = 1024;
    } else if (codec == SL_CODEC_OPUS) {
        /* OpusHead: magic(8) version(1) channels(1) pre-skip(2, LE) rate(4, LE) ... */
        if (config_len < 19 || memcmp(config, "OpusHead", 8) != 0 || config[9] == 0)
            return SL_EINVAL;
        par->codec_id = AV_CODEC_ID_OPUS;
        rate = 48000; /* Opus always decodes at 48 kHz; the header's rate is informative */
        channels = config[9];
        par->initial_padding = config[10] | config[11] << 8;
    } else {
        return SL_EINVAL;
    }
    par->codec_type = AVMEDIA_TYPE_AUDIO;
    int rc = set_extradata(par, config, config_len);
    if (rc)
        return rc;
    par->sample_rate = (int)rate;
    av_channel_layout_uninit(&par->ch_layout);
    av_channel_layout_default(&par->ch_layout, (int)channels);
    return 0;
}

uint32_t sl_avpar_codec_of(const AVCodecParameters *par)
{
    switch (par->codec_id) {
    case AV_CODEC_ID_H264: return SL_CODEC_AVC;
    case AV_CODEC_ID_HEVC: return SL_CODEC_HEVC;
    case AV_CODEC_ID_AV1: return SL_CODEC_AV1;
    case AV_CODEC_ID_AAC: return SL_CODEC_AAC;
    case AV_CODEC_ID_OPUS: return SL_CODEC_OPUS;
    default: return 0;
    }
}

static void put_fourcc(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_si24(uint8_t *p, int32_t v)
{
    uint32_t u = (uint32_t)v & 0xffffff;
    p[0] = (uint8_t)(u >> 16);
    p[1] = (uint8_t)(u >> 8);
    p[2] = (uint8_t)u;
}

size_t sl_avpar_flv_header(uint32_t codec, int is_config, int is_key, int32_t cts_ms,
                           uint8_t *out)
{
    switch (codec) {
    case SL_CODEC_AVC:
        /* frameType(4) | codecId 7, AVCPacketType, composition time */
        out[0] = (uint8_t)((is_key || is_config ? 0x10 : 0x20) | 7);
        out[1] = is_config ? 0 : 1;
        put_si24(out + 2, is_config ? 0 : cts_ms);
        return 5;
    case SL_CODEC_HEVC:
    case SL_CODEC_AV1:
        /* E-RTMP: 1 | frameType(3) | packetType(4), FourCC; HEVC coded frames
         * carry a composition time (CodedFrames), AV1 has none (CodedFramesX). */
        out[0] = (uint8_t)(0x80 | (is_key || is_config ? 0x10 : 0x20) |
                           (is_config ? 0 : codec == SL_CODEC_HEVC ? 1 : 3));
        put_fourcc(out + 1, codec);
        if (codec == SL_CODEC_HEVC && !is_config) {
            put_si24(out + 5, cts_ms);
            return 8;
        }
        return 5;
    case SL_CODEC_AAC:
        /* soundFormat 10, 44 kHz, 16 bit, stereo (fixed for AAC), AACPacketType */
        out[0] = 0xAF;
        out[1] = is_config ? 0 : 1;
        return 2;
    case SL_CODEC_FLV_AUDIO(7):
    case SL_CODEC_FLV_AUDIO(8):
        /* G.711: soundFormat 7 / 8, rate index 0, 16-bit, mono (what FLV
         * muxers write for 8 kHz G.711); no configuration exists. */
        out[0] = codec == SL_CODEC_FLV_AUDIO(7) ? 0x72 : 0x82;
        return 1;
    case SL_CODEC_MP3:
        /* soundFormat 2, 44 kHz, 16 bit, stereo: MP3 frames carry their own. */
        out[0] = 0x2F;
        return 1;
    case SL_CODEC_OPUS:
        /* E-RTMP audio: soundFormat 9 (ExHeader) | packetType, FourCC */
        out[0] = (uint8_t)(0x90 | (is_config ? 0 : 1));
        put_fourcc(out + 1, codec);
        return 5;
    default:
        return 0;
    }
}
