/*
 * Unit tests for the string and file-system helpers of base (src/base/str.c,
 * src/base/fs.c): hex both ways, URL decoding in place and from a slice,
 * query lookup (first and last occurrence, decoded names, cut values),
 * comma-separated lists, and mkdir -p and whole reads and writes on a
 * temporary folder.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/fs.h"
#include "base/str.h"

static void test_hex(void **state)
{
    (void)state;
    assert_int_equal(sl_hex_val('0'), 0);
    assert_int_equal(sl_hex_val('9'), 9);
    assert_int_equal(sl_hex_val('a'), 10);
    assert_int_equal(sl_hex_val('F'), 15);
    assert_int_equal(sl_hex_val('g'), -1);
    assert_int_equal(sl_hex_val('/'), -1);
    assert_int_equal(sl_hex_val(0), -1);

    const uint8_t in[] = {0x00, 0x1f, 0xab, 0xff};
    char out[9];
    sl_hex_encode(in, sizeof in, out, 0);
    assert_string_equal(out, "001fabff");
    sl_hex_encode(in, sizeof in, out, 1);
    assert_string_equal(out, "001FABFF");
    sl_hex_encode(in, 0, out, 0);
    assert_string_equal(out, "");

    uint8_t back[4];
    assert_int_equal(sl_hex_decode("001FabfF", 8, back, sizeof back), 4);
    assert_memory_equal(back, in, 4);
    assert_int_equal(sl_hex_decode("001", 3, back, sizeof back), -1);        /* odd */
    assert_int_equal(sl_hex_decode("0011223344", 10, back, sizeof back), -1); /* too long */
    assert_int_equal(sl_hex_decode("zz", 2, back, sizeof back), -1);
    assert_int_equal(sl_hex_decode("", 0, back, sizeof back), 0);
}

static void test_url_decode(void **state)
{
    (void)state;
    char s[64];
    strcpy(s, "a%20b+c%2Fd");
    assert_int_equal(sl_url_decode(s, 1), 7);
    assert_string_equal(s, "a b c/d");
    strcpy(s, "a+b");
    sl_url_decode(s, 0);
    assert_string_equal(s, "a+b");
    strcpy(s, "100%, %zz %4");
    assert_int_equal(sl_url_decode(s, 0), strlen("100%, %zz %4"));
    assert_string_equal(s, "100%, %zz %4"); /* kept when not two hex digits */
    strcpy(s, "x%00y");
    assert_int_equal(sl_url_decode(s, 0), 3);
    assert_memory_equal(s, "x\0y", 3);

    char out[8];
    assert_int_equal(sl_url_decode_n("a%41+bXYZ", 6, out, sizeof out), 4);
    assert_string_equal(out, "aA b");
    assert_int_equal(sl_url_decode_n("%4", 2, out, sizeof out), 2);
    assert_string_equal(out, "%4");
    assert_int_equal(sl_url_decode_n("12345678", 8, out, sizeof out), -1);
    assert_string_equal(out, "1234567");
    assert_int_equal(sl_url_decode_n("x", 1, out, 0), -1);
}

static void test_query_get(void **state)
{
    (void)state;
    char v[16];
    const char *q = "a=1&b=two+words&a=3&flag&c%5Fd=%41&long=0123456789abcdefXYZ";
    assert_int_equal(sl_query_get(q, "a", SL_QUERY_FIRST, v, sizeof v), 1);
    assert_string_equal(v, "1");
    assert_int_equal(sl_query_get(q, "a", SL_QUERY_LAST, v, sizeof v), 1);
    assert_string_equal(v, "3");
    assert_int_equal(sl_query_get(q, "b", SL_QUERY_FIRST, v, sizeof v), 9);
    assert_string_equal(v, "two words");
    assert_int_equal(sl_query_get(q, "flag", SL_QUERY_FIRST, v, sizeof v), 0);
    assert_string_equal(v, "");
    assert_int_equal(sl_query_get(q, "c_d", SL_QUERY_FIRST, v, sizeof v), 1);
    assert_string_equal(v, "A");
    assert_int_equal(sl_query_get(q, "long", SL_QUERY_FIRST, v, sizeof v), -2);
    assert_string_equal(v, "0123456789abcde");
    assert_int_equal(sl_query_get(q, "zz", SL_QUERY_FIRST, v, sizeof v), -1);
    assert_int_equal(sl_query_get(q, "", SL_QUERY_FIRST, v, sizeof v), -1);
    assert_int_equal(sl_query_get(NULL, "a", SL_QUERY_FIRST, v, sizeof v), -1);
    assert_int_equal(sl_query_get(q, NULL, SL_QUERY_FIRST, v, sizeof v), -1);
    assert_int_equal(sl_query_get("", "a", SL_QUERY_LAST, v, sizeof v), -1);
    /* "ab" is not "a". */
    assert_int_equal(sl_query_get("ab=1", "a", SL_QUERY_FIRST, v, sizeof v), -1);
}

static void test_list(void **state)
{
    (void)state;
    const char *items[8];
    size_t lens[8], n = 0, len;
    for (const char *c = " one ,\ttwo\t,, ,three four,", *it; (it = sl_list_next(&c, &len));) {
        assert_true(n < 8);
        items[n] = it;
        lens[n++] = len;
    }
    assert_int_equal(n, 3);
    assert_int_equal(lens[0], 3);
    assert_memory_equal(items[0], "one", 3);
    assert_int_equal(lens[1], 3);
    assert_memory_equal(items[1], "two", 3);
    assert_int_equal(lens[2], 10);
    assert_memory_equal(items[2], "three four", 10);

    /* Items cut in place by a caller that owns the string. */
    char own[] = "a, bb ,c";
    const char *cut[4];
    n = 0;
    for (const char *cc = own, *it; (it = sl_list_next(&cc, &len));) {
        own[it - own + len] = '\0';
        cut[n++] = it;
    }
    assert_int_equal(n, 3);
    assert_string_equal(cut[0], "a");
    assert_string_equal(cut[1], "bb");
    assert_string_equal(cut[2], "c");

    const char *c = NULL;
    assert_null(sl_list_next(&c, &len));
    c = " , ,";
    assert_null(sl_list_next(&c, &len));

    assert_true(sl_list_has("gzip, Deflate", "deflate"));
    assert_true(sl_list_has("gzip", "GZIP"));
    assert_false(sl_list_has("gzip, deflate", "gzi"));
    assert_false(sl_list_has("gzip", ""));
    assert_false(sl_list_has(NULL, "gzip"));
    assert_false(sl_list_has("gzip", NULL));
}

static void test_mkdir_p(void **state)
{
    (void)state;
    char base[] = "/tmp/sl-str-test.XXXXXX";
    assert_non_null(mkdtemp(base));
    char path[256], file[300];
    snprintf(path, sizeof path, "%s/a/b/c", base);
    assert_int_equal(sl_mkdir_p(path), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(sl_mkdir_p(path), 0); /* exists already: fine */
    /* A file in the way: the error of mkdir, negated. */
    snprintf(file, sizeof file, "%s/a/f", base);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(path, sizeof path, "%s/a/f/g", base);
    assert_true(sl_mkdir_p(path) < 0);
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_true(sl_mkdir_p(big) < 0);
    /* Whole writes and reads. */
    snprintf(file, sizeof file, "%s/data", base);
    int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(sl_write_full(fd, "hello world", 11), 0);
    assert_int_equal(sl_pwrite_full(fd, "W", 1, 6), 0);
    char got[16] = {0};
    assert_int_equal(sl_pread_full(fd, got, 11, 0), 1);
    assert_string_equal(got, "hello World");
    assert_int_equal(sl_pread_full(fd, got, 5, 8), 0); /* only 3 bytes left */
    assert_int_equal(sl_pread_full(fd, got, 0, 100), 1);
    close(fd);
    assert_int_equal(sl_pread_full(fd, got, 1, 0), -EBADF);
    assert_int_equal(sl_write_full(fd, "x", 1), -EBADF);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_url_decode),
        cmocka_unit_test(test_query_get),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_mkdir_p),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
