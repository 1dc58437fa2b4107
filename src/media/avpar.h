/*
 * Between our frames and libav: FLV-style codec configurations (the bytes
 * after a sequence header's FLV/E-RTMP header: avcC, hvcC, av1C, an AAC
 * AudioSpecificConfig, an OpusHead) turned into libav codec parameters,
 * and back into FLV tag bodies. Used wherever a libavformat muxer or
 * demuxer meets sl_frame_t payloads: the HLS muxer (modules/hls), MP4
 * recording and MP4 VOD (modules/recorder).
 *
 * Pure functions over bytes and a caller's AVCodecParameters; no state,
 * thread-safe (the recorder calls them from its writer thread and from
 * libuv's thread pool). libav types are forward-declared: including this
 * header does not pull libav's headers in.
 */
#ifndef SL_MEDIA_AVPAR_H
#define SL_MEDIA_AVPAR_H

#include <stddef.h>
#include <stdint.h>

struct AVCodecParameters;

#define SL_AVPAR_CONFIG_MAX (1024 * 1024) /* larger configurations are refused */
#define SL_AVPAR_TAG_HEADER_MAX 8         /* longest FLV/E-RTMP header sl_avpar_flv_header writes */

/**
 * Reads the sample rate and channel count from an AAC AudioSpecificConfig.
 * Returns 0, or SL_EPROTO when it is too short or names no sample rate or
 * object type.
 */
int sl_avpar_aac_config(const uint8_t *asc, size_t len, uint32_t *sample_rate,
                        uint32_t *channels);

/**
 * Fills par for a video track from its configuration record (borrowed; it
 * is copied into par->extradata): codec type and id, extradata, and the
 * picture size, read by libavcodec's parser from the configuration and
 * `sample` (a keyframe's codec bytes, may be NULL), else width/height
 * (from metadata; 0 = unknown). codec: SL_CODEC_AVC, _HEVC or _AV1.
 * Returns 0, SL_EINVAL (other codec, empty or oversized config, or an
 * AVC/HEVC record that sl_avpar_video_config_ok refuses), SL_ENOMEM. On
 * error par may hold a partial extradata: the caller frees par as usual
 * (avcodec_parameters_free or its stream).
 */
int sl_avpar_set_video(struct AVCodecParameters *par, uint32_t codec, const uint8_t *config,
                       size_t config_len, const uint8_t *sample, size_t sample_len,
                       uint32_t width, uint32_t height);

#define SL_AVPAR_PS_MAX 64 /* parameter sets in one AVC/HEVC record */

/**
 * Whether an AVC (avcC) or HEVC (hvcC) configuration record is whole:
 * every parameter set it announces is there, non-empty and inside len, at
 * most SL_AVPAR_PS_MAX of them. A record in Annex B form (it starts with a
 * start code) passes, and so does any other codec's. A publisher's record
 * reaches libavcodec's mp4toannexb filters, whose older versions trust its
 * counts (an hvcC announcing 255 x 65535 empty NAL units made FFmpeg 5.1
 * grow a buffer 4 bytes at a time, for seconds, on the event loop): every
 * record goes through here first. 1 whole, 0 not.
 */
int sl_avpar_video_config_ok(uint32_t codec, const uint8_t *config, size_t len);

/**
 * Fills par for an audio track from its configuration (borrowed, copied):
 * SL_CODEC_AAC (AudioSpecificConfig: rate, channels, 1024-sample frames)
 * or SL_CODEC_OPUS (OpusHead: 48 kHz, channels, pre-skip). Returns 0,
 * SL_EINVAL (other codec or unparsable config), SL_ENOMEM; same cleanup
 * rule as sl_avpar_set_video.
 */
int sl_avpar_set_audio(struct AVCodecParameters *par, uint32_t codec, const uint8_t *config,
                       size_t config_len);

/**
 * The SL_CODEC_* value of a libav stream's codec id, for the codecs an
 * FLV tag can carry back (H.264, HEVC, AV1, AAC, Opus); 0 for others.
 */
uint32_t sl_avpar_codec_of(const struct AVCodecParameters *par);

/**
 * Writes the FLV tag body header for a frame of `codec` into out (at least
 * SL_AVPAR_TAG_HEADER_MAX bytes): legacy FLV for H.264, AAC, MP3 and G.711
 * (SL_CODEC_FLV_AUDIO(7) and (8), which have no configuration), Enhanced
 * RTMP (FourCC) for HEVC, AV1 and Opus. is_config: a sequence header /
 * SequenceStart (cts ignored); else a coded frame, a video keyframe when
 * is_key. The codec bytes follow the header. Returns the header length,
 * or 0 for a codec not listed above.
 */
size_t sl_avpar_flv_header(uint32_t codec, int is_config, int is_key, int32_t cts_ms,
                           uint8_t *out);

#endif
