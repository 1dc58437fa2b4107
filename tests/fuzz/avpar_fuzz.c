/*
 * Fuzz target: codec configurations from a publisher (src/media/avpar.c),
 * the bytes after a sequence header's FLV/E-RTMP header: an AAC
 * AudioSpecificConfig, an OpusHead, avcC/hvcC/av1C records (with a
 * keyframe sample for the picture size). They reach libav through these
 * functions whenever a stream is muxed to HLS or recorded as MP4. The
 * first input byte picks the codec; the rest is split into config and
 * sample. Checks: nothing crashes or leaks, and an accepted AAC config
 * names a real rate and channel count.
 */
#include <stddef.h>
#include <stdint.h>

#include <libavcodec/avcodec.h>

#include "media/avpar.h"
#include "media/flv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t codecs[] = {SL_CODEC_AAC, SL_CODEC_OPUS, SL_CODEC_AVC, SL_CODEC_HEVC,
                                      SL_CODEC_AV1, SL_CODEC_MP3};
    if (size < 2)
        return 0;
    uint32_t codec = codecs[data[0] % (sizeof codecs / sizeof codecs[0])];
    size_t split = 1 + (size - 1) * data[1] / 255; /* config | sample */
    if (split < 2)
        split = 2;
    const uint8_t *cfg = data + 2, *sample = data + split;
    size_t cfg_len = split - 2, sample_len = size - split;

    uint32_t rate = 0, channels = 0;
    if (sl_avpar_aac_config(cfg, cfg_len, &rate, &channels) == 0 && (rate == 0 || channels > 8))
        __builtin_trap();

    AVCodecParameters *par = avcodec_parameters_alloc();
    if (!par)
        return 0;
    if (codec == SL_CODEC_AAC || codec == SL_CODEC_OPUS || codec == SL_CODEC_MP3)
        (void)sl_avpar_set_audio(par, codec, cfg, cfg_len);
    else
        (void)sl_avpar_set_video(par, codec, cfg, cfg_len, sample_len ? sample : NULL, sample_len,
                                 0, 0);
    (void)sl_avpar_codec_of(par);
    avcodec_parameters_free(&par);

    uint8_t hdr[SL_AVPAR_TAG_HEADER_MAX];
    if (sl_avpar_flv_header(codec, data[1] & 1, data[1] & 2, (int32_t)size, hdr) >
        SL_AVPAR_TAG_HEADER_MAX)
        __builtin_trap();
    return 0;
}
