/*
 * The recorder's pure rules: recording names (patterns, rooms, and every
 * way a name could leave the app's streams folder), and the FLV repair
 * that finalises a recording a crash left behind (torn tail cut, metadata
 * numbers found and rewritten). Threads, sinks and the catalog are
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

#include "modules/recorder/recorder.h"
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
}

static void test_unsafe_names(void **state)
{
    (void)state;
    char out[SL_RECORDER_NAME_MAX + 1];
    const char *bad[] = {"../x", "/etc/passwd", "a/../../b", "a//b", "./a", "a/.", "..", ".",
                         "a\\b", "a\x01" "b", "a\x7f", "caf\xc3\xa9", "a/", "/"};
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_unsafe_names),
        cmocka_unit_test(test_repair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
