/*
 * media/avpar.c: FLV codec configurations turned into libav codec
 * parameters (what the HLS muxer and MP4 recording give libavformat) and
 * the codec ids read back for MP4 VOD. The FLV headers it writes are
 * checked against the parser in tests/unit/modules/recorder_test.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <libavcodec/avcodec.h>

#include "media/avpar.h"
#include "media/flv.h"
#include "sluice/errors.h"

static void test_aac(void **state)
{
    (void)state;
    AVCodecParameters *par = avcodec_parameters_alloc();
    assert_non_null(par);
    static const uint8_t asc[] = {0x12, 0x10}; /* AAC-LC, 44.1 kHz, stereo */
    assert_int_equal(sl_avpar_set_audio(par, SL_CODEC_AAC, asc, sizeof asc), 0);
    assert_int_equal(par->codec_id, AV_CODEC_ID_AAC);
    assert_int_equal(par->codec_type, AVMEDIA_TYPE_AUDIO);
    assert_int_equal(par->sample_rate, 44100);
    assert_int_equal(par->ch_layout.nb_channels, 2);
    assert_int_equal(par->extradata_size, 2);
    assert_memory_equal(par->extradata, asc, 2);
    assert_int_equal(sl_avpar_codec_of(par), SL_CODEC_AAC);
    /* Set twice (a reused parameter set): the old extradata is replaced, not leaked. */
    assert_int_equal(sl_avpar_set_audio(par, SL_CODEC_AAC, asc, sizeof asc), 0);
    static const uint8_t bad[] = {0x00, 0x00}; /* object type 0 */
    assert_int_equal(sl_avpar_set_audio(par, SL_CODEC_AAC, bad, sizeof bad), SL_EINVAL);
    assert_int_equal(sl_avpar_set_audio(par, SL_CODEC_MP3, asc, sizeof asc), SL_EINVAL);
    avcodec_parameters_free(&par);
}

static void test_opus(void **state)
{
    (void)state;
    AVCodecParameters *par = avcodec_parameters_alloc();
    assert_non_null(par);
    /* OpusHead: version 1, 2 channels, pre-skip 312, 48000 Hz, gain 0, mapping 0 */
    static const uint8_t head[] = {'O', 'p', 'u', 's', 'H', 'e', 'a', 'd', 1, 2, 0x38, 0x01,
                                   0x80, 0xBB, 0, 0, 0, 0, 0};
    assert_int_equal(sl_avpar_set_audio(par, SL_CODEC_OPUS, head, sizeof head), 0);
    assert_int_equal(par->codec_id, AV_CODEC_ID_OPUS);
    assert_int_equal(par->sample_rate, 48000);
    assert_int_equal(par->ch_layout.nb_channels, 2);
    assert_int_equal(par->initial_padding, 312);
    assert_int_equal(sl_avpar_codec_of(par), SL_CODEC_OPUS);
    assert_int_equal(sl_avpar_set_audio(par, SL_CODEC_OPUS, head, 18), SL_EINVAL);
    uint8_t wrong[sizeof head];
    memcpy(wrong, head, sizeof head);
    wrong[0] = 'X';
    assert_int_equal(sl_avpar_set_audio(par, SL_CODEC_OPUS, wrong, sizeof wrong), SL_EINVAL);
    avcodec_parameters_free(&par);
}

static void test_video(void **state)
{
    (void)state;
    AVCodecParameters *par = avcodec_parameters_alloc();
    assert_non_null(par);
    static const uint8_t cfg[] = {1, 0x64, 0, 0x1f, 0xff, 0xe0, 0}; /* an avcC with no SPS */
    /* No sample to parse: the size given (from metadata) is kept. */
    assert_int_equal(sl_avpar_set_video(par, SL_CODEC_AVC, cfg, sizeof cfg, NULL, 0, 640, 360), 0);
    assert_int_equal(par->codec_id, AV_CODEC_ID_H264);
    assert_int_equal(par->codec_type, AVMEDIA_TYPE_VIDEO);
    assert_int_equal(par->width, 640);
    assert_int_equal(par->height, 360);
    assert_int_equal(sl_avpar_codec_of(par), SL_CODEC_AVC);
    assert_int_equal(sl_avpar_set_video(par, SL_CODEC_AV1, cfg, sizeof cfg, NULL, 0, 0, 0), 0);
    assert_int_equal(sl_avpar_codec_of(par), SL_CODEC_AV1);
    assert_int_equal(sl_avpar_set_video(par, SL_CODEC_VP9, cfg, sizeof cfg, NULL, 0, 0, 0),
                     SL_EINVAL);
    assert_int_equal(sl_avpar_set_video(par, SL_CODEC_HEVC, cfg, 0, NULL, 0, 0, 0), SL_EINVAL);
    par->codec_id = AV_CODEC_ID_VP8;
    assert_int_equal(sl_avpar_codec_of(par), 0);
    avcodec_parameters_free(&par);
}

/* Records whose counts lie are refused before libavcodec sees them. */
static void test_video_config_ok(void **state)
{
    (void)state;
    /* avcC: 1 SPS of 4 bytes, 1 PPS of 2. */
    static const uint8_t avcc[] = {1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f,
                                   1, 0, 2, 0x68, 0xee};
    assert_true(sl_avpar_video_config_ok(SL_CODEC_AVC, avcc, sizeof avcc));
    for (size_t n = 0; n < sizeof avcc; n++) /* every truncation is refused */
        assert_false(sl_avpar_video_config_ok(SL_CODEC_AVC, avcc, n));
    uint8_t zero_sps[sizeof avcc];
    memcpy(zero_sps, avcc, sizeof avcc);
    zero_sps[7] = 0; /* an empty SPS */
    assert_false(sl_avpar_video_config_ok(SL_CODEC_AVC, zero_sps, sizeof zero_sps));
    /* hvcC: 22 header bytes, 3 arrays (VPS, SPS, PPS) of one NAL unit each. */
    uint8_t hvcc[64] = {1};
    size_t n = 22;
    hvcc[n++] = 3;
    for (int t = 32; t <= 34; t++) {
        hvcc[n++] = (uint8_t)(0x80 | t);
        hvcc[n++] = 0;
        hvcc[n++] = 1;
        hvcc[n++] = 0;
        hvcc[n++] = 3;
        hvcc[n++] = (uint8_t)(t << 1);
        hvcc[n++] = 1;
        hvcc[n++] = 0xaa;
    }
    assert_true(sl_avpar_video_config_ok(SL_CODEC_HEVC, hvcc, n));
    for (size_t k = 0; k < n; k++)
        assert_false(sl_avpar_video_config_ok(SL_CODEC_HEVC, hvcc, k));
    /* The record that stalled FFmpeg 5.1: 255 arrays announcing 65535 empty NAL units. */
    uint8_t liar[32] = {1};
    liar[22] = 255;
    liar[23] = 0x20;
    liar[24] = 0xff;
    liar[25] = 0xff;
    assert_false(sl_avpar_video_config_ok(SL_CODEC_HEVC, liar, sizeof liar));
    AVCodecParameters *par = avcodec_parameters_alloc();
    assert_int_equal(sl_avpar_set_video(par, SL_CODEC_HEVC, liar, sizeof liar, NULL, 0, 0, 0),
                     SL_EINVAL);
    avcodec_parameters_free(&par);
    /* Annex B and other codecs pass. */
    static const uint8_t annexb[] = {0, 0, 0, 1, 0x40, 1};
    assert_true(sl_avpar_video_config_ok(SL_CODEC_HEVC, annexb, sizeof annexb));
    assert_true(sl_avpar_video_config_ok(SL_CODEC_AV1, liar, 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aac),
        cmocka_unit_test(test_opus),
        cmocka_unit_test(test_video),
        cmocka_unit_test(test_video_config_ok),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
