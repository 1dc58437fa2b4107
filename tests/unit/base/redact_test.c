/*
 * Unit tests for the log redaction helper (src/base/redact.c) and the
 * retry backoff (src/base/backoff.c): every documented secret shape is
 * masked, what is not a secret is left alone, a cut copy never shows part
 * of a secret, and the backoff's waits stay within their window and cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/backoff.h"
#include "base/redact.h"

static void expect(const char *in, const char *want)
{
    char out[SL_REDACT_MAX];
    assert_string_equal(sl_redact(in, out, sizeof out), want);
}

static void test_query_parameters(void **state)
{
    (void)state;
    expect("rtmp://127.0.0.1:1935/live?username=bob&password=hunter2",
           "rtmp://127.0.0.1:1935/live?username=bob&password=***");
    expect("/api/v1/streams?accessToken=abc123&x=1", "/api/v1/streams?accessToken=***&x=1");
    expect("/live/cam1.m3u8?token=t0k&sid=42", "/live/cam1.m3u8?token=***&sid=42");
    expect("a?access_token=1;secret=2;key=3;signature=4;jwt=5;credential=6;auth=7",
           "a?access_token=***;secret=***;key=***;signature=***;jwt=***;credential=***;auth=***");
    expect("?X-Amz-Signature=abcd&X-Amz-Credential=AK%2F2024", "?X-Amz-Signature=***&X-Amz-Credential=***");
    expect("?PASSWORD=Up", "?PASSWORD=***");
    expect("?password=", "?password=");
    expect("?stream=cam1&app=live", "?stream=cam1&app=live");
}

/* Red5's cluster restreamer: the password is masked, its companions stay readable. */
static void test_restreamer(void **state)
{
    (void)state;
    expect("rtmp://o:1935/live?restreamer=pw1&cluster-restreamer-context=live&"
           "cluster-restreamer-name=s1",
           "rtmp://o:1935/live?restreamer=***&cluster-restreamer-context=live&"
           "cluster-restreamer-name=s1");
    assert_true(sl_redact_is_secret_name("Restreamer", 10));
    assert_false(sl_redact_is_secret_name("restreamers", 11));
}

static void test_userinfo_and_jwt(void **state)
{
    (void)state;
    expect("http://user:pa55@hooks.example.com/in?x=1", "http://user:***@hooks.example.com/in?x=1");
    expect("https://user@host/path", "https://user@host/path");
    expect("https://host/p@th:x", "https://host/p@th:x");
    expect("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl end",
           "Bearer *** end");
    expect("rtmp://h/live?eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig", "rtmp://h/live?***");
    expect("eyJ.not-a-jwt", "eyJ.not-a-jwt");
    /* A JWT as the value of a name that says nothing of secrets. */
    expect("?t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig&x=1", "?t=***&x=1");
    expect("abceyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig", "abceyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig");
}

static void test_command_lines(void **state)
{
    (void)state;
    expect("API_TOKEN=abc /usr/bin/notify --secret=s3cr3t --name=cam1",
           "API_TOKEN=*** /usr/bin/notify --secret=*** --name=cam1");
}

static void test_cut_and_null(void **state)
{
    (void)state;
    char small[24];
    const char *r = sl_redact("http://h/x?password=averyveryverylongsecret", small, sizeof small);
    assert_null(strstr(r, "avery"));
    assert_true(strlen(r) < sizeof small);
    assert_string_equal(r + strlen(r) - 3, "...");
    char out[16];
    assert_string_equal(sl_redact(NULL, out, sizeof out), "-");
    char tiny[4];
    assert_string_equal(sl_redact("password=x", tiny, sizeof tiny), "");
}

static void test_backoff(void **state)
{
    (void)state;
    sl_backoff_t b;
    sl_backoff_init(&b, 42);
    uint64_t window = 1000;
    for (int i = 1; i <= 40; i++) {
        uint64_t d = sl_backoff_fail(&b, 1000, 8000);
        assert_true(d >= window / 2 && d <= window);
        if (window < 8000)
            window *= 2;
    }
    assert_int_equal(b.failures, 40);
    assert_int_equal(sl_backoff_ok(&b), 40);
    assert_int_equal(sl_backoff_ok(&b), 0);
    uint64_t d = sl_backoff_fail(&b, 1000, 8000);
    assert_true(d >= 500 && d <= 1000);
    /* Degenerate arguments stay sane. */
    assert_true(sl_backoff_fail(&b, 0, 0) <= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_parameters),
        cmocka_unit_test(test_restreamer),
        cmocka_unit_test(test_userinfo_and_jwt),
        cmocka_unit_test(test_command_lines),
        cmocka_unit_test(test_cut_and_null),
        cmocka_unit_test(test_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
