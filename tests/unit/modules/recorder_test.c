/*
 * The recorder's pure rules: recording names (patterns, rooms, and every
 * way a name could leave the app's streams folder), and the FLV repair
 * that finalises a recording a crash left behind (torn tail cut, metadata
 * numbers found and rewritten), the MP4 repair (a torn fragment cut), and
 * the FLV headers the MP4 reader writes (parsed back by media/flv.c). Threads, sinks and the catalog are
 * exercised end to end by tests/e2e/test_recording.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "media/avpar.h"
#include "media/flv.h"
#include "modules/recorder/recorder.h"
#include "modules/recorder/recorder_mp4.h"
#include "sluice/errors.h"

static void test_names(void **state)
{
    (void)state;
    char out[SL_RECORDER_NAME_MAX + 1];
    time_t t = 1700000000; /* 2023-11-14 22:13:20 UTC */
    assert_int_equal(sl_recorder_make_name(NULL, "s1", t, out, sizeof out), 0);
    assert_string_equal(out, "s1.flv");
    assert_int_equal(sl_recorder_make_name("", "s1", t, out, sizeof out), 0);
    assert_string_equal(out, "s1.flv");
    assert_int_equal(sl_recorder_make_name("{name}_%Y%m%d-%H%M%S", "s1", t, out, sizeof out), 0);
    assert_string_equal(out, "s1_20231114-221320.flv");
    assert_int_equal(sl_recorder_make_name("room1/{name}", "s1", t, out, sizeof out), 0);
    assert_string_equal(out, "room1/s1.flv");
    assert_int_equal(sl_recorder_make_name("keep.flv", "s1", t, out, sizeof out), 0);
    assert_string_equal(out, "keep.flv");
    /* A '%' in the stream name is not a strftime field. */
    assert_int_equal(sl_recorder_make_name(NULL, "a%Yb", t, out, sizeof out), 0);
    assert_string_equal(out, "a%Yb.flv");
    /* .mp4 picks MP4 and is kept; the app's format fills in a missing extension. */
    assert_int_equal(sl_recorder_make_name("keep.mp4", "s1", t, out, sizeof out), 0);
    assert_string_equal(out, "keep.mp4");
    assert_int_equal(sl_recorder_make_name_ext(NULL, "s1", t, "mp4", out, sizeof out), 0);
    assert_string_equal(out, "s1.mp4");
    assert_int_equal(sl_recorder_make_name_ext("x.flv", "s1", t, "mp4", out, sizeof out), 0);
    assert_string_equal(out, "x.flv");
    assert_int_equal(sl_recorder_make_name_ext(".mp4", "s1", t, "mp4", out, sizeof out), SL_EINVAL);
    assert_int_equal(sl_recorder_make_name_ext("", "..", t, "mp4", out, sizeof out), SL_EINVAL);
}

static void test_unsafe_names(void **state)
{
    (void)state;
    char out[SL_RECORDER_NAME_MAX + 1];
    const char *bad[] = {"../x", "/etc/passwd", "a/../../b", "a//b", "./a", "a/.", "..", ".",
                         "a\\b", ("a\x01" "b"), "a\x7f", "caf\xc3\xa9", "a/", "/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        strcpy(out, "junk");
        assert_int_equal(sl_recorder_make_name(bad[i], "s", 0, out, sizeof out), SL_EINVAL);
        assert_string_equal(out, "");
    }
    /* {name} is checked after substitution too. */
    assert_int_equal(sl_recorder_make_name(NULL, "../s", 0, out, sizeof out), SL_EINVAL);
    char longname[400];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(sl_recorder_make_name(longname, "s", 0, out, sizeof out), SL_ETOOBIG);
    assert_int_equal(sl_recorder_make_name(NULL, "s", 0, out, 4), SL_ETOOBIG);
}

/* An FLV: header, onMetaData {duration, filesize}, two video tags (ts 0, 1000). */
static size_t make_flv(uint8_t *b)
{
    size_t n = 0;
    memcpy(b, "FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00", 13);
    n = 13;
    static const uint8_t meta[] = {
        2, 0, 10, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a', 8, 0, 0, 0, 2,
        0, 8, 'd', 'u', 'r', 'a', 't', 'i', 'o', 'n', 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 8, 'f', 'i', 'l', 'e', 's', 'i', 'z', 'e', 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 9};
    uint32_t ts[3] = {0, 0, 1000};
    for (int i = 0; i < 3; i++) {
        const uint8_t *body = meta;
        size_t len = sizeof meta;
        static const uint8_t video[] = {0x17, 1, 0, 0, 0, 0xaa, 0xbb};
        if (i) {
            body = video;
            len = sizeof video;
        }
        uint8_t *t = b + n;
        t[0] = i ? 9 : 18;
        t[1] = 0, t[2] = 0, t[3] = (uint8_t)len;
        t[4] = (uint8_t)(ts[i] >> 16), t[5] = (uint8_t)(ts[i] >> 8), t[6] = (uint8_t)ts[i];
        t[7] = t[8] = t[9] = t[10] = 0;
        memcpy(t + 11, body, len);
        uint32_t pts = (uint32_t)len + 11;
        t[11 + len] = 0, t[12 + len] = 0, t[13 + len] = (uint8_t)(pts >> 8),
        t[14 + len] = (uint8_t)pts;
        n += 11 + len + 4;
    }
    return n;
}

static int temp_file(const uint8_t *b, size_t n)
{
    char path[] = "/tmp/sl_rec_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, b, n), (ssize_t)n);
    return fd;
}

static void test_repair(void **state)
{
    (void)state;
    uint8_t b[512];
    size_t n = make_flv(b);
    /* Whole file: nothing cut. */
    int fd = temp_file(b, n);
    sl_recorder_flv_scan_t scan;
    assert_int_equal(sl_recorder_flv_repair(fd, &scan), 0);
    assert_int_equal(scan.size, n);
    assert_int_equal(scan.n_tags, 3);
    assert_int_equal(scan.truncated, 0);
    assert_int_equal(scan.first_ts, 0);
    assert_int_equal(scan.last_ts, 1000);
    assert_true(scan.duration_off > 0 && scan.filesize_off > scan.duration_off);
    assert_int_equal(sl_recorder_flv_set_meta(fd, &scan, 1.0, (double)n), 0);
    uint8_t num[8];
    assert_int_equal(pread(fd, num, 8, scan.duration_off), 8);
    assert_memory_equal(num, "\x3f\xf0\x00\x00\x00\x00\x00\x00", 8); /* 1.0 */
    close(fd);
    /* Every torn tail (a prefix of the last tag) is cut back to the second tag. */
    size_t last_tag = n - (11 + 7 + 4);
    for (size_t cut = last_tag + 1; cut < n; cut++) {
        fd = temp_file(b, cut);
        assert_int_equal(sl_recorder_flv_repair(fd, &scan), 0);
        assert_int_equal(scan.size, last_tag);
        assert_int_equal(scan.truncated, cut - last_tag);
        assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)last_tag);
        assert_int_equal(scan.last_ts, 0);
        close(fd);
    }
    /* A wrong PreviousTagSize ends the file there too. */
    b[n - 1] ^= 0xff;
    fd = temp_file(b, n);
    assert_int_equal(sl_recorder_flv_repair(fd, &scan), 0);
    assert_int_equal(scan.size, last_tag);
    close(fd);
    /* Not an FLV: refused, untouched. */
    fd = temp_file((const uint8_t *)"hello world, not flv", 20);
    assert_int_equal(sl_recorder_flv_repair(fd, &scan), SL_EPROTO);
    assert_int_equal(lseek(fd, 0, SEEK_END), 20);
    close(fd);
}

/* Appends a box of type with n body bytes (zeros) at b. */
static size_t box(uint8_t *b, const char *type, size_t n)
{
    uint32_t size = (uint32_t)(8 + n);
    b[0] = (uint8_t)(size >> 24);
    b[1] = (uint8_t)(size >> 16);
    b[2] = (uint8_t)(size >> 8);
    b[3] = (uint8_t)size;
    memcpy(b + 4, type, 4);
    memset(b + 8, 0, n);
    return 8 + n;
}

static void test_mp4_repair(void **state)
{
    (void)state;
    uint8_t b[1024];
    size_t n = box(b, "ftyp", 16);
    n += box(b + n, "moov", 40);
    size_t header = n;
    n += box(b + n, "moof", 30);
    n += box(b + n, "mdat", 100);
    size_t one = n;
    n += box(b + n, "moof", 30);
    n += box(b + n, "mdat", 100);
    int fd = temp_file(b, n);
    sl_recorder_mp4_scan_t scan;
    assert_int_equal(sl_recorder_mp4_repair(fd, &scan), 0);
    assert_int_equal(scan.size, n);
    assert_int_equal(scan.n_fragments, 2);
    assert_int_equal(scan.truncated, 0);
    assert_true(scan.has_moov);
    close(fd);
    /* Every cut inside the second fragment (moof alone, or a short mdat) goes back to the first. */
    for (size_t cut = one + 1; cut < n; cut++) {
        fd = temp_file(b, cut);
        assert_int_equal(sl_recorder_mp4_repair(fd, &scan), 0);
        assert_int_equal(scan.size, one);
        assert_int_equal(scan.n_fragments, 1);
        assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)one);
        close(fd);
    }
    /* Only the header: kept (plays as an empty file). */
    fd = temp_file(b, header + 20);
    assert_int_equal(sl_recorder_mp4_repair(fd, &scan), 0);
    assert_int_equal(scan.size, header);
    close(fd);
    /* No moov, or not an MP4: refused, untouched. */
    fd = temp_file(b, 24);
    assert_int_equal(sl_recorder_mp4_repair(fd, &scan), SL_EPROTO);
    assert_int_equal(lseek(fd, 0, SEEK_END), 24);
    close(fd);
    fd = temp_file((const uint8_t *)"hello world, not mp4", 20);
    assert_int_equal(sl_recorder_mp4_repair(fd, &scan), SL_EPROTO);
    close(fd);
}

/* The FLV headers made for MP4 samples parse back to the same facts. */
static void test_flv_headers(void **state)
{
    (void)state;
    static const uint32_t video[] = {SL_CODEC_AVC, SL_CODEC_HEVC, SL_CODEC_AV1};
    uint8_t h[SL_AVPAR_TAG_HEADER_MAX + 4];
    sl_flv_info_t info;
    for (size_t i = 0; i < 3; i++) {
        for (int cfg = 0; cfg < 2; cfg++) {
            size_t n = sl_avpar_flv_header(video[i], cfg, 1, 40, h);
            assert_true(n > 0 && n <= SL_AVPAR_TAG_HEADER_MAX);
            memset(h + n, 0xAB, 4); /* some codec bytes */
            assert_int_equal(sl_flv_parse_video(h, n + 4, &info), 0);
            assert_int_equal(info.codec, video[i]);
            assert_int_equal(info.is_config, cfg);
            assert_int_equal(info.is_key, 1);
            assert_int_equal(info.data_off, n);
            if (!cfg && video[i] != SL_CODEC_AV1)
                assert_int_equal(info.cts_ms, 40);
        }
        size_t n = sl_avpar_flv_header(video[i], 0, 0, 0, h);
        assert_int_equal(sl_flv_parse_video(h, n + 4, &info), 0);
        assert_int_equal(info.is_key, 0);
    }
    static const uint32_t audio[] = {SL_CODEC_AAC, SL_CODEC_OPUS};
    for (size_t i = 0; i < 2; i++) {
        for (int cfg = 0; cfg < 2; cfg++) {
            size_t n = sl_avpar_flv_header(audio[i], cfg, 0, 0, h);
            memset(h + n, 0xAB, 4);
            assert_int_equal(sl_flv_parse_audio(h, n + 4, &info), 0);
            assert_int_equal(info.codec, audio[i]);
            assert_int_equal(info.is_config, cfg);
            assert_int_equal(info.data_off, n);
        }
    }
    /* One-byte headers (no configuration): MP3 and G.711, which pulls and RTSP cameras bring. */
    assert_int_equal(sl_avpar_flv_header(SL_CODEC_MP3, 0, 0, 0, h), 1);
    assert_int_equal(h[0], 0x2F);
    assert_int_equal(sl_avpar_flv_header(SL_CODEC_FLV_AUDIO(8), 0, 0, 0, h), 1);
    assert_int_equal(h[0], 0x82);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_unsafe_names),
        cmocka_unit_test(test_repair),
        cmocka_unit_test(test_mp4_repair),
        cmocka_unit_test(test_flv_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
