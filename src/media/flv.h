/*
 * FLV tag bodies: what a media message's first bytes say about the codec,
 * frame type and packet type, for both legacy FLV and Enhanced RTMP
 * (E-RTMP v1/v2: the FourCC extension). This is the only place that reads
 * those bits, so every protocol agrees on what a keyframe and a sequence
 * header are. Pure functions over bytes; fuzzed (tests/fuzz/flv_fuzz.c).
 *
 * The body is the RTMP message payload / FLV tag data (no 11-byte tag
 * header). Codec bytes (NAL units in AVCC/HVCC form, an AAC raw frame,
 * an Opus packet, a codec configuration record) start at `data_off`.
 */
#ifndef SL_MEDIA_FLV_H
#define SL_MEDIA_FLV_H

#include <stddef.h>
#include <stdint.h>

#define SL_FLV_AUDIO 8
#define SL_FLV_VIDEO 9
#define SL_FLV_DATA 18

/* Codec identifiers: FourCC values in host order (e.g. 'avc1'). */
#define SL_FOURCC(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))
#define SL_CODEC_AVC SL_FOURCC('a', 'v', 'c', '1')
#define SL_CODEC_HEVC SL_FOURCC('h', 'v', 'c', '1')
#define SL_CODEC_AV1 SL_FOURCC('a', 'v', '0', '1')
#define SL_CODEC_VP8 SL_FOURCC('v', 'p', '0', '8')
#define SL_CODEC_VP9 SL_FOURCC('v', 'p', '0', '9')
#define SL_CODEC_AAC SL_FOURCC('m', 'p', '4', 'a')
#define SL_CODEC_OPUS SL_FOURCC('O', 'p', 'u', 's')
#define SL_CODEC_MP3 SL_FOURCC('.', 'm', 'p', '3')
#define SL_CODEC_FLAC SL_FOURCC('f', 'L', 'a', 'C')
#define SL_CODEC_AC3 SL_FOURCC('a', 'c', '-', '3')
#define SL_CODEC_EAC3 SL_FOURCC('e', 'c', '-', '3')
/* Legacy FLV codec ids without a FourCC get a private tag: 'flv' + id. */
#define SL_CODEC_FLV_VIDEO(id) SL_FOURCC('f', 'l', 'v', '0' + (id))
#define SL_CODEC_FLV_AUDIO(id) SL_FOURCC('f', 'l', 'a', 'A' + (id))
#define SL_CODEC_NONE 0

typedef struct sl_flv_info {
    uint32_t codec;   /* SL_CODEC_* */
    uint8_t is_key;   /* video keyframe (audio: always 0) */
    uint8_t is_config;/* sequence header / codec configuration record */
    uint8_t is_eos;   /* end-of-sequence marker */
    uint8_t is_ex;    /* Enhanced RTMP header */
    uint8_t is_info;  /* video info/command frame (frame type 5): not media */
    uint8_t multitrack; /* E-RTMP multitrack packet (passed through as is) */
    int32_t cts_ms;   /* composition time offset (pts - dts) */
    uint32_t data_off;/* offset of codec bytes in the body */
} sl_flv_info_t;

/**
 * Parses a video tag body. Returns 0 and fills info, or SL_EPROTO when the
 * body is too short or inconsistent for what its first byte announces.
 */
int sl_flv_parse_video(const uint8_t *body, size_t len, sl_flv_info_t *info);
/** Parses an audio tag body; same contract. */
int sl_flv_parse_audio(const uint8_t *body, size_t len, sl_flv_info_t *info);
/** Short printable codec name ("h264", "hevc", "aac", ...) for logs and stats. */
const char *sl_codec_name(uint32_t codec);

#endif
