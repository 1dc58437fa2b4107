/*
 * Unit tests for the HTTP server core (src/proto/http). First the pure
 * layer: URL decoding, query lookup, header lookup and token lists, route
 * matching, the static path check, content types, dates, the WebSocket
 * accept key (RFC 6455's own example), UTF-8 checking, and the request
 * framer fed from memory (limits, pipelining, chunked bodies, every way of
 * cutting the input). Then the server on a real loop, driven by a plain
 * non-blocking client socket in the same thread: ordering of pipelined
 * answers when an earlier handler answers late, HEAD, 100-continue,
 * streaming with backpressure and close callbacks, a request orphaned by
 * its client, and a WebSocket echo with the close handshake. Routes used
 * here exist only in this test. The framer tests check that sl_malloc is
 * back where it started (with SL_FAULT_INJECTION, also when any one of its
 * allocations fails); the loop tests check that, and that the loop closes
 * with no handle left once the server has stopped.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "app/core.h"
#include "app/services.h"
#include "app/svc/http.h"
#include "base/alloc.h"
#include "proto/http/http.h"
#include "proto/http/http_parse.h"
#include "sluice/errors.h"
#include "proto/http/http_config.h"
#include "builtin_config.h"

/* ---- pure helpers ----------------------------------------------------- */

static void test_url_decode(void **state)
{
    (void)state;
    char a[] = "%41b+c%2f";
    assert_int_equal(sl_http_url_decode(a, 1), 5);
    assert_string_equal(a, "Ab c/");
    char b[] = "%41b+c";
    assert_int_equal(sl_http_url_decode(b, 0), 4);
    assert_string_equal(b, "Ab+c");
    char c[] = "%zz%4%";
    assert_int_equal(sl_http_url_decode(c, 1), 6);
    assert_string_equal(c, "%zz%4%");
    char d[] = "a%00b";
    assert_int_equal(sl_http_url_decode(d, 0), 3); /* the length tells about the NUL */
    assert_int_equal(strlen(d), 1);
}

static void test_query_get(void **state)
{
    (void)state;
    const char *q = "a=1&b=hello+world&c=%2Fx&d&e=&a%5Fb=u&long=0123456789";
    char out[8];
    assert_int_equal(sl_http_query_get(q, "a", out, sizeof out), 1);
    assert_string_equal(out, "1");
    char big[32];
    assert_int_equal(sl_http_query_get(q, "b", big, sizeof big), 11);
    assert_string_equal(big, "hello world");
    assert_int_equal(sl_http_query_get(q, "c", out, sizeof out), 2);
    assert_string_equal(out, "/x");
    assert_int_equal(sl_http_query_get(q, "d", out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_equal(sl_http_query_get(q, "e", out, sizeof out), 0);
    assert_int_equal(sl_http_query_get(q, "a_b", out, sizeof out), 1);
    assert_string_equal(out, "u");
    /* too long for cap: -2 (told apart from missing), with what fit */
    assert_int_equal(sl_http_query_get(q, "long", out, sizeof out), -2);
    assert_int_equal(strlen(out), sizeof out - 1);
    assert_int_equal(sl_http_query_get(q, "long", big, sizeof big), 10);
    assert_int_equal(sl_http_query_get(q, "zz", out, sizeof out), -1);
    assert_int_equal(sl_http_query_get(q, "", out, sizeof out), -1);
    assert_int_equal(sl_http_query_get(NULL, "a", out, sizeof out), -1);
    assert_int_equal(sl_http_query_get("", "a", out, sizeof out), -1);
    assert_int_equal(sl_http_query_get("a=1", "a", out, 0), -1);
    assert_int_equal(sl_http_query_get("&&a=2&", "a", out, sizeof out), 1);
    assert_string_equal(out, "2");
}

static void test_headers(void **state)
{
    (void)state;
    sl_http_header_t h[] = {{"host", "example"}, {"connection", "keep-alive, Upgrade"},
                            {"x-empty", ""}};
    sl_http_req_t req;
    memset(&req, 0, sizeof req);
    req.headers = h;
    req.n_headers = 3;
    assert_string_equal(sl_http_req_header(&req, "host"), "example");
    assert_string_equal(sl_http_req_header(&req, "Host"), "example");
    assert_string_equal(sl_http_req_header(&req, "x-empty"), "");
    assert_null(sl_http_req_header(&req, "cookie"));
    assert_true(sl__http_header_has_token(h[1].value, "upgrade"));
    assert_true(sl__http_header_has_token(h[1].value, "KEEP-ALIVE"));
    assert_false(sl__http_header_has_token(h[1].value, "keep"));
    assert_false(sl__http_header_has_token(h[1].value, "alive, upgrade"));
    assert_false(sl__http_header_has_token(NULL, "upgrade"));
    assert_true(sl__http_header_has_token(" websocket ", "websocket"));
    assert_false(sl__http_header_has_token("", "websocket"));
}

static void test_route_match(void **state)
{
    (void)state;
    assert_true(sl__http_route_match(NULL, "/api/v1/", NULL, "DELETE", "/api/v1/x"));
    assert_true(sl__http_route_match("GET", "/api", NULL, "GET", "/api"));
    assert_true(sl__http_route_match("GET", "/api", NULL, "HEAD", "/api/x"));
    assert_false(sl__http_route_match("GET", "/api", NULL, "GET", "/apix")); /* whole segments */
    assert_false(sl__http_route_match("GET", "/api", NULL, "POST", "/api"));
    assert_false(sl__http_route_match("HEAD", "/api", NULL, "GET", "/api"));
    assert_false(sl__http_route_match("POST", "/api/v1/", NULL, "POST", "/api/v1"));
    assert_true(sl__http_route_match(NULL, "/", NULL, "OPTIONS", "/"));
    assert_true(sl__http_route_match(NULL, "/", "", "GET", "/any/thing"));
    assert_false(sl__http_route_match(NULL, "/a", NULL, "GET", "*"));
    /* Suffix filters: any of the space-separated endings. */
    const char *hls = ".m3u8 .ts .m4s .mp4";
    assert_true(sl__http_route_match("GET", "/", hls, "GET", "/live/a.m3u8"));
    assert_true(sl__http_route_match("GET", "/", hls, "GET", "/live/a_3.ts"));
    assert_true(sl__http_route_match("GET", "/", hls, "GET", "/live/a_init1.mp4"));
    assert_false(sl__http_route_match("GET", "/", hls, "GET", "/live/a.flv"));
    assert_false(sl__http_route_match("GET", "/", hls, "GET", "/live/index.html"));
    assert_false(sl__http_route_match("GET", "/", hls, "GET", "/live/a.m3u8x"));
    assert_false(sl__http_route_match("GET", "/", "  .ts  ", "GET", "ts"));
    assert_true(sl__http_route_match("GET", "/", "  .ts  ", "GET", "/.ts"));
    assert_true(sl__http_route_match("GET", "/live", ".flv", "GET", "/live/x.flv"));
    assert_false(sl__http_route_match("GET", "/live", ".flv", "GET", "/lively/x.flv"));
}

static void test_static_path(void **state)
{
    (void)state;
    const char *ok[] = {"", "index.html", "a/b/c.js", "..a", "a..", ".well-known/x", "a//b",
                        "./a", "a/.", "live/broadcast.html"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_true(sl__http_static_path_ok(ok[i], strlen(ok[i])));
    const char *bad[] = {"..", "../x", "a/..", "a/../b", "a\\b", "a\x01", "a\x7f", "/../"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(sl__http_static_path_ok(bad[i], strlen(bad[i])));
    char nul[] = "a\0b";
    assert_false(sl__http_static_path_ok(nul, 3));
}

static void test_content_type(void **state)
{
    (void)state;
    assert_string_equal(sl__http_content_type("x.HTML"), "text/html; charset=utf-8");
    assert_string_equal(sl__http_content_type("web/app.js"), "text/javascript; charset=utf-8");
    assert_string_equal(sl__http_content_type("s.css"), "text/css; charset=utf-8");
    assert_string_equal(sl__http_content_type("a.json"), "application/json");
    assert_string_equal(sl__http_content_type("i.png"), "image/png");
    assert_string_equal(sl__http_content_type("i.svg"), "image/svg+xml");
    assert_string_equal(sl__http_content_type("live/s.m3u8"), "application/vnd.apple.mpegurl");
    assert_string_equal(sl__http_content_type("seg1.ts"), "video/mp2t");
    assert_string_equal(sl__http_content_type("v.mp4"), "video/mp4");
    assert_string_equal(sl__http_content_type("v.flv"), "video/x-flv");
    assert_string_equal(sl__http_content_type("favicon.ico"), "image/x-icon");
    assert_string_equal(sl__http_content_type("noext"), "application/octet-stream");
    assert_string_equal(sl__http_content_type("dir.d/file"), "application/octet-stream");
    assert_string_equal(sl__http_content_type("trailingdot."), "application/octet-stream");
}

static void test_ws_accept_key(void **state)
{
    (void)state;
    char out[29];
    /* RFC 6455 section 1.3. */
    assert_int_equal(sl__http_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_equal(sl__http_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=", out), SL_EINVAL);
    assert_int_equal(sl__http_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ===", out), SL_EINVAL);
    assert_int_equal(sl__http_ws_accept_key("dGhlIHNhbXBsZSBub2*jZQ==", out), SL_EINVAL);
    assert_int_equal(sl__http_ws_accept_key(NULL, out), SL_EINVAL);
    assert_string_equal(out, "");
}

static void test_utf8(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t n;
        int ok;
    } cases[] = {
        {"plain", 5, 1},
        {"\xc3\xa9t\xc3\xa9", 6, 1},          /* é */
        {"\xe2\x82\xac", 3, 1},               /* € */
        {"\xf0\x9f\x8e\xa5", 4, 1},           /* U+1F3A5 */
        {"\xf4\x8f\xbf\xbf", 4, 1},           /* U+10FFFF */
        {"\xc0\x80", 2, 0},                   /* overlong NUL */
        {"\xe0\x80\xaf", 3, 0},               /* overlong '/' */
        {"\xed\xa0\x80", 3, 0},               /* surrogate */
        {"\xf4\x90\x80\x80", 4, 0},           /* past U+10FFFF */
        {"\xe2\x82", 2, 0},                   /* truncated */
        {"\x80", 1, 0},                       /* lone continuation */
        {"\xff", 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(sl__http_utf8_valid((const uint8_t *)cases[i].s, cases[i].n), cases[i].ok);
}

static void test_date_and_reason(void **state)
{
    (void)state;
    char d[32];
    sl__http_date(784111777, d);
    assert_string_equal(d, "Sun, 06 Nov 1994 08:49:37 GMT");
    sl__http_date(0, d);
    assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_string_equal(sl__http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(sl__http_reason(408), "Request Timeout");
    assert_string_equal(sl__http_reason(299), "Status");
    assert_string_equal(sl__http_reason(42), "Unknown");
}

/* ---- the request framer ------------------------------------------------ */

static const sl_http_limits_t lim_default = {
    .max_header_bytes = 1024, .max_headers = 8, .max_body_bytes = 64, .max_url_bytes = 128};

/* Feeds s whole (step 0) or in pieces of step bytes; collects up to max requests. */
static int parse_all(const sl_http_limits_t *lim, const char *s, size_t len, size_t step,
                     sl_http_msg_t **msgs, int max, int *status)
{
    sl_http_parser_t p;
    sl_http_parser_init(&p, lim);
    int n = 0, rc = 0;
    size_t off = 0, avail = step ? 0 : len;
    *status = 0;
    while (off < len) {
        if (step)
            avail = off + step - (off % step) > len ? len : off + step - (off % step);
        size_t used = 0;
        rc = sl_http_parser_feed(&p, (const uint8_t *)s + off, avail - off, &used);
        off += used;
        if (rc < 0) {
            *status = p.status;
            break;
        }
        if (rc == 1) {
            sl_http_msg_t *m = sl_http_parser_take(&p);
            int upgrade = m->upgrade;
            if (n < max)
                msgs[n++] = m;
            else
                sl_http_msg_free(m);
            if (upgrade)
                break;
        }
    }
    sl_http_parser_cleanup(&p);
    return n;
}

static void free_msgs(sl_http_msg_t **m, int n)
{
    for (int i = 0; i < n; i++)
        sl_http_msg_free(m[i]);
}

static void test_parse_get(void **state)
{
    (void)state;
    int64_t before = sl_alloc_bytes();
    static const char req[] = "GET /a%20b/c?x=1&y=%41 HTTP/1.1\r\nHost: h\r\nX-Thing:  v1  \r\n"
                              "X-Empty:\r\nACCEPT: */*\r\n\r\n";
    for (size_t step = 0; step <= 7; step++) {
        sl_http_msg_t *m[2] = {NULL, NULL};
        int status;
        int n = parse_all(&lim_default, req, sizeof req - 1, step, m, 2, &status);
        assert_int_equal(n, 1);
        assert_int_equal(status, 0);
        assert_string_equal(m[0]->method, "GET");
        assert_string_equal(m[0]->url, "/a%20b/c?x=1&y=%41");
        assert_string_equal(m[0]->raw_path, "/a%20b/c");
        assert_string_equal(m[0]->path, "/a b/c");
        assert_string_equal(m[0]->query, "x=1&y=%41");
        assert_int_equal(m[0]->n_headers, 4);
        assert_string_equal(m[0]->headers[0].name, "host");
        assert_string_equal(m[0]->headers[1].name, "x-thing");
        assert_string_equal(m[0]->headers[1].value, "v1");
        assert_string_equal(m[0]->headers[2].name, "x-empty");
        assert_string_equal(m[0]->headers[2].value, "");
        assert_string_equal(m[0]->headers[3].name, "accept");
        assert_null(m[0]->body);
        assert_int_equal(m[0]->body_len, 0);
        assert_true(m[0]->keep_alive);
        assert_false(m[0]->upgrade);
        free_msgs(m, n);
    }
    assert_int_equal(sl_alloc_bytes(), before);
}

static void test_parse_pipelined(void **state)
{
    (void)state;
    int64_t before = sl_alloc_bytes();
    static const char req[] = "GET /1 HTTP/1.1\r\n\r\n"
                              "POST /2 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
                              "\r\nPOST /3 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: t\r\n\r\n"
                              "HEAD /4 HTTP/1.1\r\nConnection: close\r\n\r\n";
    for (size_t step = 0; step <= 5; step++) {
        sl_http_msg_t *m[4];
        int status;
        int n = parse_all(&lim_default, req, sizeof req - 1, step, m, 4, &status);
        assert_int_equal(status, 0);
        assert_int_equal(n, 4);
        assert_string_equal(m[0]->path, "/1");
        assert_string_equal(m[1]->path, "/2");
        assert_int_equal(m[1]->body_len, 5);
        assert_memory_equal(m[1]->body, "hello", 5);
        assert_string_equal(m[2]->path, "/3");
        assert_int_equal(m[2]->body_len, 5);
        assert_memory_equal(m[2]->body, "abcde", 5);
        assert_int_equal(m[2]->n_headers, 1); /* the trailer is dropped */
        assert_string_equal(m[3]->method, "HEAD");
        assert_false(m[3]->keep_alive);
        free_msgs(m, n);
    }
    assert_int_equal(sl_alloc_bytes(), before);
}

/* The framer stops right after one request: the next stays unread. */
static void test_parse_stops_after_request(void **state)
{
    (void)state;
    static const char req[] = "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n";
    sl_http_parser_t p;
    sl_http_parser_init(&p, &lim_default);
    size_t used = 0;
    assert_int_equal(sl_http_parser_feed(&p, (const uint8_t *)req, sizeof req - 1, &used), 1);
    assert_int_equal(used, 19);
    assert_int_equal(p.phase, SL_HTTP_PHASE_DONE);
    /* Not taken yet: nothing more is consumed. */
    size_t used2 = 99;
    assert_int_equal(sl_http_parser_feed(&p, (const uint8_t *)req + used, 5, &used2), 1);
    assert_int_equal(used2, 0);
    sl_http_msg_t *m = sl_http_parser_take(&p);
    assert_non_null(m);
    assert_null(sl_http_parser_take(&p));
    assert_int_equal(p.phase, SL_HTTP_PHASE_IDLE);
    assert_int_equal(sl_http_parser_feed(&p, (const uint8_t *)req + used, 10, &used2), 0);
    assert_int_equal(used2, 10);
    assert_int_equal(p.phase, SL_HTTP_PHASE_HEAD);
    sl_http_msg_free(m);
    sl_http_parser_cleanup(&p); /* with a request half parsed */
}

static void test_parse_versions(void **state)
{
    (void)state;
    struct {
        const char *req;
        int keep_alive, upgrade;
    } cases[] = {
        {"GET / HTTP/1.0\r\n\r\n", 0, 0},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1, 0},
        {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 0, 0},
        {"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sl_http_msg_t *m[1] = {NULL};
        int status;
        int n = parse_all(&lim_default, cases[i].req, strlen(cases[i].req), 0, m, 1, &status);
        assert_int_equal(n, 1);
        assert_int_equal(m[0]->keep_alive, cases[i].keep_alive);
        assert_int_equal(m[0]->upgrade, cases[i].upgrade);
        free_msgs(m, n);
    }
}

static void test_parse_targets(void **state)
{
    (void)state;
    sl_http_msg_t *m[1] = {NULL};
    int status;
    const char *abs = "GET http://host:80/p/q?r=1 HTTP/1.1\r\n\r\n";
    assert_int_equal(parse_all(&lim_default, abs, strlen(abs), 0, m, 1, &status), 1);
    assert_string_equal(m[0]->path, "/p/q");
    assert_string_equal(m[0]->query, "r=1");
    free_msgs(m, 1);
    const char *star = "OPTIONS * HTTP/1.1\r\n\r\n";
    assert_int_equal(parse_all(&lim_default, star, strlen(star), 0, m, 1, &status), 1);
    assert_string_equal(m[0]->path, "*");
    free_msgs(m, 1);
    const char *noq = "GET /x? HTTP/1.1\r\n\r\n";
    assert_int_equal(parse_all(&lim_default, noq, strlen(noq), 0, m, 1, &status), 1);
    assert_string_equal(m[0]->query, "");
    free_msgs(m, 1);
    const char *nul = "GET /a%00b HTTP/1.1\r\n\r\n";
    assert_int_equal(parse_all(&lim_default, nul, strlen(nul), 0, m, 1, &status), 0);
    assert_int_equal(status, 400);
}

static void test_parse_errors(void **state)
{
    (void)state;
    int64_t before = sl_alloc_bytes();
    char big[2048];
    struct {
        const char *req;
        int status;
    } cases[] = {
        {"GARBAGE\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n", 413},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n", 0}, /* 64: fine so far */
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n", 413},
        {"GET / HTTP/1.1\r\na:1\r\nb:1\r\nc:1\r\nd:1\r\ne:1\r\nf:1\r\ng:1\r\nh:1\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\na:1\r\nb:1\r\nc:1\r\nd:1\r\ne:1\r\nf:1\r\ng:1\r\nh:1\r\ni:1\r\n\r\n", 431},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t step = 0; step <= 3; step++) {
            sl_http_msg_t *m[1] = {NULL};
            int status;
            size_t len = strlen(cases[i].req);
            /* The 413 chunked case must see the chunk's bytes to fail. */
            char buf[256];
            snprintf(buf, sizeof buf, "%s%s", cases[i].req,
                     cases[i].status == 413 && strstr(cases[i].req, "41\r\n") ? "0123456789"
                                                                             "0123456789"
                                                                             "0123456789"
                                                                             "0123456789"
                                                                             "0123456789"
                                                                             "0123456789"
                                                                             "01234" : "");
            len = strlen(buf);
            int n = parse_all(&lim_default, buf, len, step, m, 1, &status);
            if (status != cases[i].status)
                print_message("case %zu step %zu: status %d\n", i, step, status);
            assert_int_equal(status, cases[i].status);
            free_msgs(m, n);
        }
    }
    /* URL: 128 bytes pass, 129 get 414. */
    for (int extra = 0; extra <= 1; extra++) {
        size_t url_len = 128 + (size_t)extra;
        int k = snprintf(big, sizeof big, "GET /");
        memset(big + k, 'u', url_len - 1);
        k += (int)url_len - 1;
        k += snprintf(big + k, sizeof big - (size_t)k, " HTTP/1.1\r\n\r\n");
        for (size_t step = 0; step <= 2; step++) {
            sl_http_msg_t *m[1] = {NULL};
            int status;
            int n = parse_all(&lim_default, big, (size_t)k, step ? step * 13 : 0, m, 1, &status);
            assert_int_equal(status, extra ? 414 : 0);
            assert_int_equal(n, extra ? 0 : 1);
            free_msgs(m, n);
        }
    }
    assert_int_equal(sl_alloc_bytes(), before);
}

/* The head limit is exact, whatever the cut: 1024 bytes pass, 1025 get 431. */
static void test_parse_head_limit(void **state)
{
    (void)state;
    sl_http_limits_t lim = lim_default;
    lim.max_url_bytes = 4096;
    char req[2048];
    for (int over = 0; over <= 1; over++) {
        size_t total = 1024 + (size_t)over;
        /* "GET / HTTP/1.1\r\nX: vvv...\r\n\r\n" of exactly total bytes */
        size_t fixed = strlen("GET / HTTP/1.1\r\nX: ") + strlen("\r\n\r\n");
        int k = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nX: ");
        memset(req + k, 'v', total - fixed);
        k += (int)(total - fixed);
        k += snprintf(req + k, sizeof req - (size_t)k, "\r\n\r\n");
        assert_int_equal(k, (int)total);
        for (size_t step = 0; step <= 40; step += 7) {
            sl_http_msg_t *m[1] = {NULL};
            int status;
            int n = parse_all(&lim, req, (size_t)k, step, m, 1, &status);
            assert_int_equal(status, over ? 431 : 0);
            assert_int_equal(n, over ? 0 : 1);
            free_msgs(m, n);
        }
    }
    /* Leading blank lines count toward the head. */
    char crlfs[1100];
    memset(crlfs, '\n', sizeof crlfs);
    sl_http_msg_t *m[1] = {NULL};
    int status;
    assert_int_equal(parse_all(&lim, crlfs, sizeof crlfs, 0, m, 1, &status), 0);
    assert_int_equal(status, 431);
}

static void test_parse_expect_continue(void **state)
{
    (void)state;
    static const char head[] = "POST /u HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n";
    sl_http_parser_t p;
    sl_http_parser_init(&p, &lim_default);
    size_t used;
    assert_int_equal(sl_http_parser_feed(&p, (const uint8_t *)head, sizeof head - 1, &used), 0);
    assert_int_equal(p.phase, SL_HTTP_PHASE_BODY);
    assert_true(p.expect_continue);
    assert_int_equal(sl_http_parser_feed(&p, (const uint8_t *)"ok", 2, &used), 1);
    sl_http_msg_t *m = sl_http_parser_take(&p);
    assert_int_equal(m->body_len, 2);
    assert_false(p.expect_continue);
    sl_http_msg_free(m);
    sl_http_parser_cleanup(&p);
}

/* Allocation failure at every step: a clean 500 (SL_ENOMEM), never a leak. */
static void test_parse_alloc_failures(void **state)
{
    (void)state;
    if (!sl_alloc_fail_at(0, 0))
        skip(); /* built without SL_FAULT_INJECTION */
    static const char req[] = "GET /a?b=c HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n"
                              "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "3\r\nabc\r\n0\r\n\r\n";
    int failures_seen = 0;
    for (uint64_t n = 1; n < 100; n++) {
        int64_t before = sl_alloc_bytes();
        uint64_t failed_before = sl_alloc_failed_count();
        sl_http_parser_t p;
        sl_http_parser_init(&p, &lim_default);
        sl_alloc_fail_at(n, 0);
        size_t off = 0;
        int requests = 0;
        while (off < sizeof req - 1) {
            size_t used;
            int rc = sl_http_parser_feed(&p, (const uint8_t *)req + off, sizeof req - 1 - off, &used);
            off += used;
            if (rc < 0) {
                assert_int_equal(rc, SL_ENOMEM);
                assert_int_equal(p.status, 500);
                break;
            }
            if (rc == 1) {
                sl_http_msg_free(sl_http_parser_take(&p));
                requests++;
            }
        }
        sl_alloc_fail_at(0, 0);
        sl_http_parser_cleanup(&p);
        assert_int_equal(sl_alloc_bytes(), before);
        if (sl_alloc_failed_count() == failed_before) {
            assert_int_equal(requests, 2); /* past the last allocation: all went well */
            break;
        }
        failures_seen++;
    }
    assert_true(failures_seen > 3);
}

/* ---- the server on a loop ---------------------------------------------- */

typedef struct fix {
    int64_t mem_before;
    uv_loop_t loop;
    sl_config_t cfg;
    sl_core_t core;
    sl_http_server_t *srv;
    int port;
    /* what the test routes saw */
    int stream_closed;
    int ws_closed;
    int ws_messages;
    int ws_too_big;      /* sl_ws_send_text said SL_ETOOBIG */
    int ws_big_refused;  /* an over-long message was refused */
    int big_too_big;
    int big_written;
    sl_http_req_t *big_req;
    int orphan_rc;
    int orphan_answered;
} fix_t;

typedef struct later {
    uv_timer_t timer;
    sl_http_req_t *req;
    fix_t *f;
    const char *body;
    int orphan;
} later_t;

static void later_closed(uv_handle_t *h) { sl_free(h->data); }

static void later_fire(uv_timer_t *t)
{
    later_t *l = t->data;
    int rc = sl_http_respond(l->req, 200, "text/plain", l->body, strlen(l->body), NULL);
    if (l->orphan) {
        l->f->orphan_rc = rc;
        l->f->orphan_answered = 1;
    }
    uv_close((uv_handle_t *)&l->timer, later_closed);
}

static int answer_later(fix_t *f, sl_http_req_t *req, const char *body, uint64_t ms, int orphan)
{
    later_t *l = sl_calloc(1, sizeof(*l));
    if (!l)
        return SL_ENOMEM;
    l->req = req;
    l->f = f;
    l->body = body;
    l->orphan = orphan;
    uv_timer_init(&f->loop, &l->timer);
    l->timer.data = l;
    uv_timer_start(&l->timer, later_fire, ms, 0);
    return 0;
}

static int h_fast(sl_http_req_t *req, void *ud)
{
    return sl_http_respond(req, 200, "text/plain", "fast-body", 9, NULL);
}

static int h_slow(sl_http_req_t *req, void *ud) { return answer_later(ud, req, "slow-body", 60, 0); }

static int h_orphan(sl_http_req_t *req, void *ud) { return answer_later(ud, req, "late", 150, 1); }

static int h_echo(sl_http_req_t *req, void *ud)
{
    return sl_http_respond(req, 200, "application/octet-stream", req->body, req->body_len, NULL);
}

static int h_decline(sl_http_req_t *req, void *ud) { return SL_EDECLINED; }

static int h_fail(sl_http_req_t *req, void *ud) { return SL_EIO; }

static void stream_closed(sl_http_req_t *req, void *ud)
{
    fix_t *f = ud;
    f->stream_closed++;
    if (f->big_req == req)
        f->big_req = NULL;
}

static int h_stream(sl_http_req_t *req, void *ud)
{
    int rc = sl_http_stream_start(req, 200, "text/plain", "Cache-Control: no-cache\r\n",
                                  stream_closed, ud);
    if (rc)
        return rc == SL_ECLOSED ? 0 : rc;
    sl_buf_t *a = sl_buf_from("aaa", 3), *b = sl_buf_from("bbbb", 4), *e = sl_buf_new(0);
    assert_int_equal(sl_http_stream_write(req, a), 0);
    assert_int_equal(sl_http_stream_write(req, e), 0); /* empty: ignored, not the end */
    assert_int_equal(sl_http_stream_write(req, b), 0);
    sl_buf_unref(a);
    sl_buf_unref(b);
    sl_buf_unref(e);
    return sl_http_stream_end(req);
}

/* A stream whose writes are handed over after its first chunk: the rest
 * is written on the duplicate descriptor, then the end closes. */
static int h_handover(sl_http_req_t *req, void *ud)
{
    int rc = sl_http_stream_start(req, 200, "text/plain", NULL, stream_closed, ud);
    if (rc)
        return rc == SL_ECLOSED ? 0 : rc;
    sl_buf_t *a = sl_buf_from("aaa", 3);
    assert_int_equal(sl_http_stream_write(req, a), 0);
    int fd = -1, chunked = 0;
    sl_buf_t *unsent = NULL;
    assert_int_equal(sl_http_stream_handover(req, &fd, &unsent, &chunked), 0);
    assert_true(fd >= 0);
    assert_int_equal(chunked, 1);
    assert_non_null(unsent);
    assert_true(unsent->len > 20 && memcmp(unsent->data, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_memory_equal(unsent->data + unsent->len - 10, "\r\n3\r\naaa\r\n", 10);
    assert_int_equal(sl_http_stream_write(req, a), SL_EINVAL); /* the owner's now */
    assert_int_equal(sl_http_stream_pending(req), 0);
    int fd2, chunked2;
    sl_buf_t *unsent2;
    assert_int_equal(sl_http_stream_handover(req, &fd2, &unsent2, &chunked2), SL_ECLOSED); /* once */
    sl_buf_unref(a);
    static const char rest[] = "4\r\nbbbb\r\n0\r\n\r\n";
    assert_int_equal(write(fd, unsent->data, unsent->len), (ssize_t)unsent->len);
    assert_int_equal(write(fd, rest, sizeof rest - 1), (ssize_t)(sizeof rest - 1));
    sl_buf_unref(unsent);
    close(fd);
    return sl_http_stream_end(req); /* closes the connection */
}

/* A sized stream (Content-Length: 7); /sized-short ends after 3 bytes. */
static int h_sized(sl_http_req_t *req, void *ud)
{
    int short_body = strstr(req->path, "short") != NULL;
    int rc = sl_http_stream_start_sized(req, 206, "text/plain", "Content-Range: bytes 0-6/9\r\n",
                                        7, stream_closed, ud);
    if (rc)
        return rc == SL_ECLOSED ? 0 : rc;
    sl_buf_t *a = sl_buf_from("aaa", 3), *b = sl_buf_from("bbbb", 4), *x = sl_buf_from("x", 1);
    assert_int_equal(sl_http_stream_write(req, a), 0);
    if (!short_body) {
        assert_int_equal(sl_http_stream_write(req, b), 0);
        assert_int_equal(sl_http_stream_write(req, x), SL_EINVAL); /* past the length */
    }
    sl_buf_unref(a);
    sl_buf_unref(b);
    sl_buf_unref(x);
    rc = sl_http_stream_end(req);
    return rc == SL_ECLOSED && short_body ? 0 : rc;
}

/* Writes 16 KB chunks until the pending bound refuses one. */
static int h_bigstream(sl_http_req_t *req, void *ud)
{
    fix_t *f = ud;
    int rc = sl_http_stream_start(req, 200, "application/octet-stream", NULL, stream_closed, f);
    if (rc)
        return 0;
    f->big_req = req;
    sl_buf_t *chunk = sl_buf_new(16384);
    memset(chunk->data, 'z', 16384);
    chunk->len = 16384;
    for (int i = 0; i < 1000; i++) {
        rc = sl_http_stream_write(req, chunk);
        if (rc == SL_ETOOBIG) {
            f->big_too_big = 1;
            break;
        }
        assert_int_equal(rc, 0);
        f->big_written++;
    }
    sl_buf_unref(chunk);
    assert_true(sl_http_stream_pending(req) > 0);
    return 0;
}

static void ws_msg(sl_ws_t *ws, const uint8_t *data, size_t len, int is_text, void *ud)
{
    fix_t *f = ud;
    f->ws_messages++;
    assert_non_null(sl_ws_session(ws));
    assert_string_equal(sl_ws_session(ws)->proto, "ws");
    if (len == 3 && memcmp(data, "big", 3) == 0) {
        static char big[4096];
        if (sl_ws_send_text(ws, big, sizeof big) == SL_ETOOBIG) /* over ws_max_message_bytes */
            f->ws_big_refused = 1;
    }
    int rc = sl_ws_send_text(ws, (const char *)data, len);
    if (rc == SL_ETOOBIG)
        f->ws_too_big = 1; /* the send queue is full: the client does not read */
    else
        assert_int_equal(rc, 0);
}

static void ws_close_cb(sl_ws_t *ws, void *ud)
{
    fix_t *f = ud;
    f->ws_closed++;
}

static const sl_ws_ops_t echo_ops = {.on_message = ws_msg, .on_close = ws_close_cb};

static int h_ws(sl_http_req_t *req, void *ud)
{
    sl_ws_t *ws;
    sl_http_ws_accept(req, &echo_ops, ud, &ws);
    return 0;
}

static int setup_server(void **state)
{
    fix_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->mem_before = sl_alloc_bytes();
    assert_int_equal(sl_config_defaults(&f->cfg), 0);
    sl_http_cfg(&f->cfg)->port = 0;
    sl_free(sl_http_cfg(&f->cfg)->bind);
    sl_http_cfg(&f->cfg)->bind = sl_strdup("127.0.0.1");
    sl_http_cfg(&f->cfg)->stream_max_pending_bytes = 256 * 1024;
    f->cfg.server_shutdown_timeout_ms = 300;
    sl_http_cfg(&f->cfg)->ws_max_message_bytes = 2048;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(sl_core_init(&f->core, &f->loop, &f->cfg), 0);
    assert_int_equal(sl_http_server_start(&f->core, &f->srv), 0);
    f->port = sl_http_server_port(f->srv);
    assert_true(f->port > 0);
    assert_int_equal(sl_http_route(f->srv, "GET", "/fast", SL_HTTP_PRIO_CORE, h_fast, f), 0);
    assert_int_equal(sl_http_route(f->srv, "GET", "/slow", SL_HTTP_PRIO_CORE, h_slow, f), 0);
    assert_int_equal(sl_http_route(f->srv, "GET", "/orphan", SL_HTTP_PRIO_CORE, h_orphan, f), 0);
    assert_int_equal(sl_http_route(f->srv, "POST", "/echo", SL_HTTP_PRIO_CORE, h_echo, f), 0);
    assert_int_equal(sl_http_route(f->srv, NULL, "/stream", SL_HTTP_PRIO_CORE, h_stream, f), 0);
    assert_int_equal(sl_http_route(f->srv, NULL, "/handover", SL_HTTP_PRIO_CORE, h_handover, f), 0);
    assert_int_equal(sl_http_route(f->srv, NULL, "/sized", SL_HTTP_PRIO_CORE, h_sized, f), 0);
    assert_int_equal(sl_http_route(f->srv, NULL, "/sized-short", SL_HTTP_PRIO_CORE, h_sized, f), 0);
    assert_int_equal(sl_http_route(f->srv, NULL, "/bigstream", SL_HTTP_PRIO_CORE, h_bigstream, f), 0);
    assert_int_equal(sl_http_route(f->srv, "GET", "/ws", SL_HTTP_PRIO_CORE, h_ws, f), 0);
    assert_int_equal(sl_http_route(f->srv, NULL, "/declined", SL_HTTP_PRIO_CORE, h_decline, f), 0);
    assert_int_equal(sl_http_route(f->srv, NULL, "/declined", SL_HTTP_PRIO_CORE, h_fast, f), 0);
    assert_int_equal(sl_http_route(f->srv, NULL, "/fail", SL_HTTP_PRIO_CORE, h_fail, f), 0);
    *state = f;
    return 0;
}

static int teardown_server(void **state)
{
    fix_t *f = *state;
    sl_http_server_stop(f->srv);
    uv_run(&f->loop, UV_RUN_DEFAULT); /* runs dry once every handle is closed */
    sl_http_server_free(f->srv);
    sl_core_cleanup(&f->core);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    sl_config_cleanup(&f->cfg);
    assert_int_equal(sl_alloc_bytes(), f->mem_before);
    free(f);
    return 0;
}

/* A non-blocking client socket driven from the test's thread. */
typedef struct client {
    int fd;
    char buf[1 << 16];
    size_t len;
    int eof;
} client_t;

static client_t *cli_open(fix_t *f)
{
    client_t *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)f->port);
    sa.sin_addr.s_addr = htonl(0x7f000001);
    /* The listener's backlog completes the connection without the loop. */
    assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    fcntl(c->fd, F_SETFL, O_NONBLOCK);
    return c;
}

static void cli_close(client_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

static void cli_send(client_t *c, const void *p, size_t n)
{
    assert_int_equal(send(c->fd, p, n, 0), (ssize_t)n);
}

static void cli_sends(client_t *c, const char *s) { cli_send(c, s, strlen(s)); }

/* Closes with a reset (SO_LINGER 0), as a client that vanishes does. */
static void cli_reset(client_t *c)
{
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    cli_close(c);
}

/* Runs the loop and reads until pred holds or timeout_ms passes; returns pred's value. */
static int pump(fix_t *f, client_t *c, int (*pred)(client_t *, const void *), const void *arg,
                int timeout_ms)
{
    uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        if (c && !c->eof && c->len < sizeof c->buf - 1) {
            ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len, MSG_DONTWAIT);
            if (n > 0)
                c->len += (size_t)n;
            else if (n == 0)
                c->eof = 1;
            c->buf[c->len] = '\0';
        }
        if (pred(c, arg))
            return 1;
        if (uv_hrtime() > deadline)
            return 0;
        usleep(1000); /* the poll interval of a deadline-bounded wait */
    }
}

static int has(client_t *c, const void *needle)
{
    return memmem(c->buf, c->len, needle, strlen(needle)) != NULL;
}
static int is_eof(client_t *c, const void *unused) { return c->eof; }
static int fix_flag(client_t *c, const void *flag) { return *(const int *)flag; }

static size_t count(const client_t *c, const char *needle)
{
    size_t n = 0, nl = strlen(needle);
    for (const char *p = c->buf; (p = memmem(p, c->len - (size_t)(p - c->buf), needle, nl)); p += nl)
        n++;
    return n;
}

static void test_server_pipelining_order(void **state)
{
    fix_t *f = *state;
    client_t *c = cli_open(f);
    /* The slow one answers 60 ms after the fast ones: order must hold. */
    static const char reqs[] = "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /missing HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /declined HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /fail HTTP/1.1\r\nHost: t\r\n\r\n";
    cli_send(c, reqs, sizeof reqs - 1);
    assert_true(pump(f, c, has, "internal server error", 3000));
    const char *slow = strstr(c->buf, "slow-body");
    const char *fast = strstr(c->buf, "fast-body");
    const char *missing = strstr(c->buf, "404 Not Found");
    const char *declined = fast ? strstr(fast + 1, "fast-body") : NULL;
    const char *failed = strstr(c->buf, "500 Internal Server Error");
    assert_non_null(slow);
    assert_non_null(fast);
    assert_non_null(missing);
    assert_non_null(declined);
    assert_non_null(failed);
    assert_true(slow < fast && fast < missing && missing < declined && declined < failed);
    assert_int_equal(count(c, "HTTP/1.1 "), 5);
    assert_int_equal(count(c, "Server: sluice/"), 5);
    assert_int_equal(count(c, "Date: "), 5);
    assert_int_equal(count(c, "Access-Control-Allow-Origin: *"), 5);
    /* Keep-alive: the same socket serves another request afterwards. */
    c->len = 0;
    cli_sends(c, "GET /fast HTTP/1.1\r\n\r\n");
    assert_true(pump(f, c, has, "fast-body", 3000));
    cli_close(c);
}

static int head_then_get(client_t *c, const void *unused)
{
    return count(c, "HTTP/1.1 200") == 2 && has(c, "fast-body");
}

static void test_server_head_and_options(void **state)
{
    fix_t *f = *state;
    client_t *c = cli_open(f);
    static const char reqs[] = "HEAD /fast HTTP/1.1\r\n\r\nGET /fast HTTP/1.1\r\n\r\n";
    cli_send(c, reqs, sizeof reqs - 1);
    assert_true(pump(f, c, head_then_get, NULL, 3000));
    /* The HEAD answer carries the length but no body: the GET follows at once. */
    assert_int_equal(count(c, "Content-Length: 9\r\n"), 2);
    assert_int_equal(count(c, "fast-body"), 1);
    const char *second = strstr(c->buf + 1, "HTTP/1.1 200");
    assert_non_null(second);
    assert_memory_equal(second - 4, "\r\n\r\n", 4);
    c->len = 0;
    cli_sends(c, "OPTIONS /anything HTTP/1.1\r\nOrigin: x\r\n\r\n");
    assert_true(pump(f, c, has, "Max-Age", 3000));
    assert_true(has(c, "HTTP/1.1 204 No Content\r\n"));
    assert_true(has(c, "Access-Control-Allow-Methods: GET, POST, PUT, PATCH, DELETE, OPTIONS\r\n"));
    assert_true(has(c, "Access-Control-Allow-Headers: Authorization, Content-Type\r\n"));
    assert_false(has(c, "Content-Length"));
    cli_close(c);
}

static void test_server_expect_continue_and_close(void **state)
{
    fix_t *f = *state;
    client_t *c = cli_open(f);
    static const char head[] = "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\n"
                               "Content-Length: 5\r\nConnection: close\r\n\r\n";
    cli_send(c, head, sizeof head - 1);
    assert_true(pump(f, c, has, "HTTP/1.1 100 Continue\r\n\r\n", 3000));
    cli_sends(c, "hello");
    assert_true(pump(f, c, is_eof, NULL, 3000)); /* Connection: close honoured */
    assert_true(has(c, "Connection: close\r\n"));
    assert_true(has(c, "\r\n\r\nhello"));
    cli_close(c);
}

static void test_server_limits(void **state)
{
    fix_t *f = *state;
    client_t *c = cli_open(f);
    char req[20000];
    int k = snprintf(req, sizeof req, "GET /fast HTTP/1.1\r\nX-Big: ");
    memset(req + k, 'b', 17000);
    k += 17000;
    k += snprintf(req + k, sizeof req - (size_t)k, "\r\n\r\n");
    cli_send(c, req, (size_t)k);
    assert_true(pump(f, c, is_eof, NULL, 5000));
    assert_true(has(c, "HTTP/1.1 431 "));
    cli_close(c);
    c = cli_open(f);
    static const char body[] = "POST /echo HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n";
    cli_send(c, body, sizeof body - 1);
    assert_true(pump(f, c, is_eof, NULL, 5000));
    assert_true(has(c, "HTTP/1.1 413 "));
    cli_close(c);
}

static int stream_done(client_t *c, const void *unused) { return has(c, "fast-body"); }

static void test_server_stream(void **state)
{
    fix_t *f = *state;
    client_t *c = cli_open(f);
    static const char reqs[] = "GET /stream HTTP/1.1\r\n\r\nGET /fast HTTP/1.1\r\n\r\n";
    cli_send(c, reqs, sizeof reqs - 1);
    assert_true(pump(f, c, stream_done, NULL, 3000));
    assert_true(has(c, "Transfer-Encoding: chunked\r\n"));
    assert_true(has(c, "Cache-Control: no-cache\r\n"));
    assert_true(has(c, "\r\n\r\n3\r\naaa\r\n4\r\nbbbb\r\n0\r\n\r\nHTTP/1.1 200 OK"));
    assert_int_equal(f->stream_closed, 1);
    /* HEAD of a stream: the head, no body, no close callback. */
    c->len = 0;
    cli_sends(c, "HEAD /stream HTTP/1.1\r\n\r\nGET /fast HTTP/1.1\r\n\r\n");
    assert_true(pump(f, c, stream_done, NULL, 3000));
    assert_false(has(c, "aaa"));
    assert_int_equal(f->stream_closed, 1);
    /* HTTP/1.0: no chunk framing, the end of the body is the close. */
    c->len = 0;
    cli_sends(c, "GET /stream HTTP/1.0\r\n\r\n");
    assert_true(pump(f, c, is_eof, NULL, 3000));
    assert_true(has(c, "\r\n\r\naaabbbb"));
    assert_false(has(c, "chunked"));
    assert_int_equal(f->stream_closed, 2);
    cli_close(c);
}

/* A handed-over stream: the owner's bytes follow the server's in order, the
 * end closes the connection, and a request pipelined behind is not served. */
static void test_server_stream_handover(void **state)
{
    fix_t *f = *state;
    client_t *c = cli_open(f);
    cli_sends(c, "GET /handover HTTP/1.1\r\n\r\nGET /fast HTTP/1.1\r\n\r\n");
    assert_true(pump(f, c, is_eof, NULL, 3000));
    assert_true(has(c, "Transfer-Encoding: chunked\r\n"));
    assert_true(has(c, "\r\n\r\n3\r\naaa\r\n4\r\nbbbb\r\n0\r\n\r\n"));
    assert_false(has(c, "fast-body"));
    assert_true(pump(f, NULL, fix_flag, &f->stream_closed, 3000));
    assert_int_equal(f->stream_closed, 1);
    cli_close(c);
}

/* Sized streams: Content-Length, no chunk framing, keep-alive after the last
 * byte; a HEAD gets the length; ending short closes the connection. */
static void test_server_stream_sized(void **state)
{
    fix_t *f = *state;
    client_t *c = cli_open(f);
    cli_sends(c, "GET /sized HTTP/1.1\r\n\r\nGET /fast HTTP/1.1\r\n\r\n");
    assert_true(pump(f, c, stream_done, NULL, 3000));
    assert_true(has(c, "HTTP/1.1 206 Partial Content\r\n"));
    assert_true(has(c, "Content-Length: 7\r\n"));
    assert_true(has(c, "Content-Range: bytes 0-6/9\r\n"));
    assert_false(has(c, "chunked"));
    assert_true(has(c, "\r\n\r\naaabbbbHTTP/1.1 200 OK"));
    assert_int_equal(f->stream_closed, 1);
    c->len = 0;
    cli_sends(c, "HEAD /sized HTTP/1.1\r\n\r\nGET /fast HTTP/1.1\r\n\r\n");
    assert_true(pump(f, c, stream_done, NULL, 3000));
    assert_true(has(c, "Content-Length: 7\r\n"));
    assert_false(has(c, "aaa"));
    c->len = 0;
    cli_sends(c, "GET /sized-short HTTP/1.1\r\n\r\nGET /fast HTTP/1.1\r\n\r\n");
    assert_true(pump(f, c, is_eof, NULL, 3000));
    assert_false(has(c, "fast-body"));
    cli_close(c);
}

static void test_server_stream_backpressure(void **state)
{
    fix_t *f = *state;
    client_t *c = cli_open(f);
    cli_sends(c, "GET /bigstream HTTP/1.1\r\n\r\n");
    assert_true(pump(f, NULL, fix_flag, &f->big_too_big, 3000));
    /* 256 KB bound: at most 16 chunks of 16 KB (+ framing) queued at once. */
    assert_true(f->big_written > 0 && f->big_written <= 16);
    assert_non_null(f->big_req);
    assert_true(sl_http_stream_pending(f->big_req) <= 256 * 1024);
    /* The client goes away without reading: the owner hears it once. */
    cli_close(c);
    assert_true(pump(f, NULL, fix_flag, &f->stream_closed, 3000));
    assert_int_equal(f->stream_closed, 1);
    assert_null(f->big_req);
}

static void test_server_orphan(void **state)
{
    fix_t *f = *state;
    client_t *c = cli_open(f);
    cli_sends(c, "GET /orphan HTTP/1.1\r\n\r\n");
    pump(f, c, has, "never", 30);
    size_t before = f->core.n_sessions;
    cli_reset(c);
    /* The late answer finds the client gone. */
    assert_true(pump(f, NULL, fix_flag, &f->orphan_answered, 3000));
    assert_int_equal(f->orphan_rc, SL_ECLOSED);
    assert_true(f->core.n_sessions < before);
}

/* Masks and frames a client message (RFC 6455 5.2; payload < 126 bytes). */
static size_t ws_frame(uint8_t *out, int opcode, const void *payload, size_t n)
{
    static const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    out[0] = (uint8_t)(0x80 | opcode);
    out[1] = (uint8_t)(0x80 | n);
    memcpy(out + 2, mask, 4);
    for (size_t i = 0; i < n; i++)
        out[6 + i] = ((const uint8_t *)payload)[i] ^ mask[i % 4];
    return 6 + n;
}

static void test_server_websocket(void **state)
{
    fix_t *f = *state;
    client_t *c = cli_open(f);
    static const char up[] = "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                             "Connection: keep-alive, Upgrade\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n";
    uint8_t frame[64];
    char both[sizeof up + 64];
    /* A frame right behind the upgrade request must not be lost. */
    memcpy(both, up, sizeof up - 1);
    size_t fl = ws_frame(frame, 1, "hello", 5);
    memcpy(both + sizeof up - 1, frame, fl);
    cli_send(c, both, sizeof up - 1 + fl);
    assert_true(pump(f, c, has, "\x81\x05hello", 3000));
    assert_true(has(c, "HTTP/1.1 101 Switching Protocols\r\n"));
    assert_true(has(c, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert_int_equal(f->ws_messages, 1);
    /* Ping is answered by wslay. */
    fl = ws_frame(frame, 9, "p", 1);
    cli_send(c, frame, fl);
    assert_true(pump(f, c, has, "\x8a\x01p", 3000));
    /* Invalid UTF-8 in a text message: close 1007. */
    fl = ws_frame(frame, 1, "\xc0\x80", 2);
    cli_send(c, frame, fl);
    assert_true(pump(f, c, has, "\x88", 3000));
    assert_true(has(c, "\x03\xef")); /* 1007 */
    /* Our close is answered; then the server closes the socket. */
    uint8_t code[2] = {0x03, 0xef};
    fl = ws_frame(frame, 8, code, 2);
    cli_send(c, frame, fl);
    assert_true(pump(f, c, is_eof, NULL, 3000));
    cli_close(c);
    assert_true(pump(f, NULL, fix_flag, &f->ws_closed, 3000));
    assert_int_equal(f->ws_closed, 1);
    assert_int_equal(f->ws_messages, 1);
}

static const char ws_up[] = "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                            "Sec-WebSocket-Version: 13\r\n\r\n";

/* A client frame with a 16-bit length (126..65535 bytes of payload). */
static size_t ws_frame16(uint8_t *out, int opcode, const uint8_t *payload, size_t n)
{
    static const uint8_t mask[4] = {0xa1, 0xb2, 0xc3, 0xd4};
    out[0] = (uint8_t)(0x80 | opcode);
    out[1] = 0x80 | 126;
    out[2] = (uint8_t)(n >> 8);
    out[3] = (uint8_t)n;
    memcpy(out + 4, mask, 4);
    for (size_t i = 0; i < n; i++)
        out[8 + i] = payload[i] ^ mask[i % 4];
    return 8 + n;
}

static void test_server_websocket_limits(void **state)
{
    fix_t *f = *state;
    uint8_t frame[8192], payload[4096];
    /* The send queue: a client that writes but never reads fills it, and
     * the sender is told SL_ETOOBIG instead of memory growing. */
    client_t *c = cli_open(f);
    int small = 4096;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    cli_send(c, ws_up, sizeof ws_up - 1);
    pump(f, NULL, fix_flag, &f->ws_too_big, 50);
    size_t fl = ws_frame(frame, 1, "big", 3);
    cli_send(c, frame, fl);
    assert_true(pump(f, NULL, fix_flag, &f->ws_big_refused, 3000));
    memset(payload, 'm', 2000);
    fl = ws_frame16(frame, 1, payload, 2000);
    for (int i = 0; i < 20000 && !f->ws_too_big; i++) {
        if (send(c->fd, frame, fl, MSG_DONTWAIT) != (ssize_t)fl)
            break; /* our own buffer is full: let the server read */
        if (i % 16 == 0)
            uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    assert_true(pump(f, NULL, fix_flag, &f->ws_too_big, 5000));
    cli_reset(c);
    assert_true(pump(f, NULL, fix_flag, &f->ws_closed, 3000));
    /* A message over ws_max_message_bytes: close 1009. */
    c = cli_open(f);
    cli_send(c, ws_up, sizeof ws_up - 1);
    memset(payload, 'x', 3000);
    fl = ws_frame16(frame, 1, payload, 3000);
    cli_send(c, frame, fl);
    assert_true(pump(f, c, has, "\x88", 3000));
    assert_true(has(c, "\x03\xf1")); /* 1009 */
    cli_close(c);
}

static void test_server_websocket_bad_upgrade(void **state)
{
    fix_t *f = *state;
    client_t *c = cli_open(f);
    static const char up[] = "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n";
    cli_send(c, up, sizeof up - 1);
    assert_true(pump(f, c, is_eof, NULL, 3000));
    assert_true(has(c, "HTTP/1.1 400 "));
    assert_true(has(c, "Sec-WebSocket-Version: 13\r\n"));
    assert_int_equal(f->ws_closed, 0);
    cli_close(c);
}

static void test_server_kick_and_stop(void **state)
{
    fix_t *f = *state;
    client_t *a = cli_open(f), *b = cli_open(f), *w = cli_open(f);
    cli_sends(a, "GET /fast HTTP/1.1\r\n\r\n");
    assert_true(pump(f, a, has, "fast-body", 3000));
    cli_sends(b, "GET /fa");
    static const char up[] = "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n";
    cli_send(w, up, sizeof up - 1);
    assert_true(pump(f, w, has, "\r\n\r\n", 3000));
    assert_int_equal(f->core.n_sessions, 3);
    /* kick through the session registry */
    sl_session_t *s = sl_container_of(f->core.sessions.next, sl_session_t, link);
    assert_string_equal(s->proto, "http");
    assert_non_null(s->ops->pending);
    s->ops->kick(s, "test kick");
    assert_true(pump(f, a, is_eof, NULL, 3000));
    /* graceful stop: the WebSocket gets 1001, the others close */
    sl_http_server_stop(f->srv);
    assert_true(pump(f, w, has, "\x88", 3000));
    assert_true(has(w, "\x03\xe9")); /* 1001 */
    assert_true(pump(f, b, is_eof, NULL, 3000));
    cli_close(a);
    cli_close(b);
    cli_close(w);
}

/* ---- route order and the "http" service ---- */

/* Answers with the text ud points to (a static string). */
static int h_text(sl_http_req_t *req, void *ud)
{
    return sl_http_respond(req, 200, "text/plain", ud, strlen(ud), NULL);
}

static int n_declines;
static sl_http_server_t *decline_srv;
static sl_http_route_t *decline_victim;

/* Declines, counting; removes decline_victim first when set (a handler
 * changing the table while the dispatcher walks it). */
static int h_count_decline(sl_http_req_t *req, void *ud)
{
    (void)req;
    (void)ud;
    n_declines++;
    if (decline_victim) {
        sl_http_route_remove(decline_srv, decline_victim);
        decline_victim = NULL;
    }
    return SL_EDECLINED;
}

/* One GET on a fresh connection; the answer's body must contain want. */
static void expect_body(fix_t *f, const char *path, const char *want)
{
    client_t *c = cli_open(f);
    char req[256];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nConnection: close\r\n\r\n", path);
    cli_sends(c, req);
    assert_true(pump(f, c, is_eof, NULL, 3000));
    if (!has(c, want))
        fail_msg("GET %s: wanted \"%s\" in:\n%s", path, want, c->buf);
    cli_close(c);
}

typedef struct order_list {
    char names[32][16];
    int n;
} order_list_t;

static void collect(void *arg, const sl_http_route_info_t *r)
{
    order_list_t *o = arg;
    if (o->n < 32)
        snprintf(o->names[o->n++], sizeof o->names[0], "%s", r->name ? r->name : "-");
}

/*
 * Dispatch order is priority, then longer prefix, then registration,
 * whatever order routes were added in; suffix filters and whole-segment
 * prefixes select; a decline passes on; the static priority comes last
 * even when registered first.
 */
static void test_server_route_order(void **state)
{
    fix_t *f = *state;
    sl_http_route_spec_t st = {.method = "GET", .prefix = "/", .prio = SL_HTTP_PRIO_STATIC,
                               .name = "static", .cb = h_text, .ud = "from-static"};
    sl_http_route_spec_t app_root = {.method = "GET", .prefix = "/", .suffixes = ".m3u8 .ts",
                                     .prio = SL_HTTP_PRIO_APP, .name = "app-root", .cb = h_text,
                                     .ud = "from-app-root"};
    sl_http_route_spec_t app_live = {.prefix = "/live", .prio = SL_HTTP_PRIO_APP,
                                     .name = "app-live", .cb = h_text, .ud = "from-app-live"};
    sl_http_route_spec_t app_live2 = {.prefix = "/live", .prio = SL_HTTP_PRIO_APP,
                                      .name = "app-live2", .cb = h_text, .ud = "from-app-live2"};
    sl_http_route_spec_t core_x = {.prefix = "/live/x", .prio = SL_HTTP_PRIO_CORE,
                                   .name = "core-x", .cb = h_count_decline};
    sl_http_route_t *live = NULL, *core_x_route = NULL;
    assert_int_equal(sl_http_route_add(f->srv, &st, NULL), 0);
    assert_int_equal(sl_http_route_add(f->srv, &app_root, NULL), 0);
    assert_int_equal(sl_http_route_add(f->srv, &app_live, &live), 0);
    assert_non_null(live);
    assert_int_equal(sl_http_route_add(f->srv, &app_live2, NULL), 0);
    assert_int_equal(sl_http_route_add(f->srv, &core_x, &core_x_route), 0);
    /* Bad specs are refused. */
    sl_http_route_spec_t bad = {.prefix = "live", .cb = h_text};
    assert_int_equal(sl_http_route_add(f->srv, &bad, NULL), SL_EINVAL);
    bad.prefix = "/";
    bad.cb = NULL;
    assert_int_equal(sl_http_route_add(f->srv, &bad, NULL), SL_EINVAL);
    bad.cb = h_text;
    bad.prio = (sl_http_prio_t)7;
    assert_int_equal(sl_http_route_add(f->srv, &bad, NULL), SL_EINVAL);

    /* The listing is in dispatch order: the fixture's core routes (added
     * first, "/declined" and "/bigstream" among them, undocumented), the
     * longest core prefix first; then app by prefix length; static last. */
    order_list_t o = {0};
    sl_http_routes_each(f->srv, collect, &o);
    assert_true(o.n >= 5);
    assert_string_equal(o.names[o.n - 1], "static");
    assert_string_equal(o.names[o.n - 2], "app-root");
    assert_string_equal(o.names[o.n - 3], "app-live2");
    assert_string_equal(o.names[o.n - 4], "app-live");
    int core_x_at = -1;
    for (int i = 0; i < o.n; i++)
        if (strcmp(o.names[i], "core-x") == 0)
            core_x_at = i;
    assert_true(core_x_at >= 0 && core_x_at < o.n - 4);
    assert_string_equal(sl_http_prio_name(SL_HTTP_PRIO_CORE), "core");
    assert_string_equal(sl_http_prio_name(SL_HTTP_PRIO_APP), "app");
    assert_string_equal(sl_http_prio_name(SL_HTTP_PRIO_STATIC), "static");

    expect_body(f, "/fast", "fast-body");              /* core before static "/" */
    expect_body(f, "/live/a.m3u8", "from-app-live");   /* longer prefix first */
    expect_body(f, "/other/a.m3u8", "from-app-root");  /* suffix filter */
    expect_body(f, "/other/a.txt", "from-static");     /* nobody else: static */
    expect_body(f, "/lively", "from-static");          /* "/live" is a whole segment */
    n_declines = 0;
    expect_body(f, "/live/x", "from-app-live");        /* core declined, app took it */
    assert_int_equal(n_declines, 1);

    /* A handler that removes a later route while the walk is on: the walk
     * goes on after the decliner and never sees the removed one. */
    decline_srv = f->srv;
    decline_victim = live;
    n_declines = 0;
    expect_body(f, "/live/x/y", "from-app-live2");
    assert_int_equal(n_declines, 1);
    expect_body(f, "/live/x/y", "from-app-live2");
    assert_int_equal(n_declines, 2);
    sl_http_route_remove(f->srv, NULL); /* no-op */
    /* A handler that removes its own route as it declines. */
    decline_victim = core_x_route;
    n_declines = 0;
    expect_body(f, "/live/x", "from-app-live2");
    assert_int_equal(n_declines, 1);
    expect_body(f, "/live/x", "from-app-live2");
    assert_int_equal(n_declines, 1); /* gone */
}

/* The "http" service: registered by the server, a thin table over it. */
static int h_svc(sl_http_req_t *req, void *ud)
{
    const sl_http_svc_t *svc = ud;
    char out[256], q[32];
    size_t body_len = 0;
    int port = 0;
    const uint8_t *body = svc->req_body(req, &body_len);
    const char *remote = svc->req_remote(req, &port);
    assert_int_equal(svc->req_query_get(req, "a", q, sizeof q), 1);
    snprintf(out, sizeof out, "%s %s q=%s a=%s h=%s remote=%s body=%.*s sess=%d",
             svc->req_method(req), svc->req_path(req), svc->req_query(req), q,
             svc->req_header(req, "X-Test") ? svc->req_header(req, "X-Test") : "-",
             remote && port > 0 ? "yes" : "no", (int)body_len, body ? (const char *)body : "",
             svc->req_session(req) != NULL);
    return svc->respond(req, 201, "text/plain", out, strlen(out), "X-Svc: 1\r\n");
}

static void test_server_http_service(void **state)
{
    fix_t *f = *state;
    void *ud = NULL;
    const sl_http_svc_t *svc = sl_service_get(&f->core, SL_HTTP_SVC_NAME, SL_HTTP_SVC_MAJOR, 0,
                                              &ud);
    assert_non_null(svc);
    assert_ptr_equal(ud, f->srv);
    assert_null(sl_service_get(&f->core, SL_HTTP_SVC_NAME, SL_HTTP_SVC_MAJOR + 1, 0, NULL));
    sl_http_route_spec_t spec = {.method = "POST", .prefix = "/plug", .prio = SL_HTTP_PRIO_APP,
                                 .name = "plug", .serves = "", .cb = h_svc, .ud = (void *)svc};
    sl_http_route_t *r = NULL;
    assert_int_equal(svc->route_add(ud, &spec, &r), 0);
    client_t *c = cli_open(f);
    cli_sends(c, "POST /plug/x?a=b HTTP/1.1\r\nX-Test: yes\r\nContent-Length: 4\r\n\r\nbody");
    assert_true(pump(f, c, has, "sess=1", 3000));
    assert_true(has(c, "HTTP/1.1 201 "));
    assert_true(has(c, "X-Svc: 1\r\n"));
    assert_true(has(c, "POST /plug/x q=a=b a=b h=yes remote=yes body=body sess=1"));
    cli_close(c);
    svc->route_remove(ud, r);
    c = cli_open(f);
    cli_sends(c, "POST /plug/x?a=b HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_true(pump(f, c, has, "404 Not Found", 3000));
    cli_close(c);
    /* Stopping the server withdraws the service. */
    sl_http_server_stop(f->srv);
    assert_null(sl_service_get(&f->core, SL_HTTP_SVC_NAME, SL_HTTP_SVC_MAJOR, 0, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_decode),
        cmocka_unit_test(test_query_get),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_route_match),
        cmocka_unit_test(test_static_path),
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_ws_accept_key),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_date_and_reason),
        cmocka_unit_test(test_parse_get),
        cmocka_unit_test(test_parse_pipelined),
        cmocka_unit_test(test_parse_stops_after_request),
        cmocka_unit_test(test_parse_versions),
        cmocka_unit_test(test_parse_targets),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_head_limit),
        cmocka_unit_test(test_parse_expect_continue),
        cmocka_unit_test(test_parse_alloc_failures),
        cmocka_unit_test_setup_teardown(test_server_pipelining_order, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_server_head_and_options, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_server_expect_continue_and_close, setup_server,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_server_limits, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_server_stream, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_server_stream_handover, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_server_stream_sized, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_server_stream_backpressure, setup_server,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_server_orphan, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_server_websocket, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_server_websocket_limits, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_server_websocket_bad_upgrade, setup_server,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_server_kick_and_stop, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_server_route_order, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_server_http_service, setup_server, teardown_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
