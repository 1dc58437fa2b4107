/*
 * RTSP request parsing (src/proto/rtsp/rtsp_req.c): a request head with
 * CSeq and a body length, incomplete and oversized heads, malformed request
 * lines; Transport specifications (interleaved, client ports, mode=record,
 * the first usable of several); Basic and Digest Authorization; URL
 * splitting with Red5's `;key=value;` parameters and a query.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "proto/rtsp/rtsp_req.h"
#include "sluice/errors.h"

static sl_rtsp_req_t req;

static int parse(const char *s, size_t cap)
{
    return sl_rtsp_req_parse((const uint8_t *)s, strlen(s), cap, &req);
}

static void test_request(void **state)
{
    (void)state;
    const char *a = "\r\nANNOUNCE rtsp://h:8554/live/s RTSP/1.0\r\nCSeq: 7\r\nContent-Type: application/sdp\r\n"
                    "Content-Length: 12\r\n\r\nv=0\r\n";
    assert_int_equal(parse(a, 8192), 0);
    assert_string_equal(req.method, "ANNOUNCE");
    assert_string_equal(req.url, "rtsp://h:8554/live/s");
    assert_int_equal(req.cseq, 7);
    assert_int_equal(req.content_length, 12);
    assert_int_equal(req.head_len, strlen(a) - 5);
    assert_string_equal(sl_rtsp_req_header(&req, "content-type"), "application/sdp");
    assert_null(sl_rtsp_req_header(&req, "Session"));
    assert_int_equal(parse("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n", 8192), SL_EAGAIN);
    assert_int_equal(parse("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 32), SL_ETOOBIG);
    assert_int_equal(parse("OPTIONS * HTTP/1.1\r\n\r\n", 8192), SL_EPROTO);
    assert_int_equal(parse("options * RTSP/1.0\r\n\r\n", 8192), SL_EPROTO);
    assert_int_equal(parse("OPTIONS * RTSP/1.0\r\nCSeq: x\r\n\r\n", 8192), SL_EPROTO);
    assert_int_equal(parse("OPTIONS * RTSP/1.0\r\nno colon\r\n\r\n", 8192), SL_EPROTO);
}

static void test_transport(void **state)
{
    (void)state;
    sl_rtsp_transport_t t;
    assert_int_equal(sl_rtsp_transport_parse("RTP/AVP/TCP;unicast;interleaved=2-3;mode=record", &t), 0);
    assert_true(t.tcp && t.record);
    assert_int_equal(t.interleaved[0], 2);
    assert_int_equal(t.interleaved[1], 3);
    assert_int_equal(sl_rtsp_transport_parse("RAW/RAW/UDP;unicast, RTP/AVP;unicast;client_port=5000-5001", &t), 0);
    assert_false(t.tcp);
    assert_int_equal(t.client_port[0], 5000);
    assert_int_equal(t.client_port[1], 5001);
    assert_int_equal(sl_rtsp_transport_parse("RTP/AVP;client_port=70000-70001", &t), SL_EPROTO);
    assert_int_equal(sl_rtsp_transport_parse("RTP/AVP/TCP;interleaved=300-301", &t), SL_EPROTO);
    assert_int_equal(sl_rtsp_transport_parse("", &t), SL_EPROTO);
}

static void test_auth(void **state)
{
    (void)state;
    sl_rtsp_auth_t a;
    assert_int_equal(sl_rtsp_auth_parse("Basic YWxpY2U6cDpx", &a), 0); /* alice:p:q */
    assert_int_equal(a.scheme, SL_RTSP_AUTH_BASIC);
    assert_string_equal(a.username, "alice");
    assert_string_equal(a.password, "p:q");
    assert_int_equal(sl_rtsp_auth_parse("Basic bm9jb2xvbg==", &a), SL_EPROTO); /* "nocolon" */
    assert_int_equal(sl_rtsp_auth_parse("Basic !!!!", &a), SL_EPROTO);
    assert_int_equal(sl_rtsp_auth_parse("Digest username=\"bob\", realm=\"sluice\", nonce=\"AB\", "
                                        "uri=\"rtsp://h/live/s\", response=\"0f\", qop=auth, nc=00000001, "
                                        "cnonce=\"c\", opaque=\"ignored\"", &a), 0);
    assert_int_equal(a.scheme, SL_RTSP_AUTH_DIGEST);
    assert_string_equal(a.username, "bob");
    assert_string_equal(a.uri, "rtsp://h/live/s");
    assert_string_equal(a.nc, "00000001");
    assert_int_equal(sl_rtsp_auth_parse("Digest realm=\"x\"", &a), SL_EPROTO);
    assert_int_equal(sl_rtsp_auth_parse("Bearer abc", &a), SL_EPROTO);
}

static void test_url(void **state)
{
    (void)state;
    char path[64], params[64], query[64];
    assert_int_equal(sl_rtsp_url_split("rtsp://h:8554/live/cam1;username=u;password=p;/trackID=1?token=t", path,
                                       sizeof path, params, sizeof params, query, sizeof query), 0);
    assert_string_equal(path, "live/cam1/trackID=1");
    assert_string_equal(params, "username=u&password=p");
    assert_string_equal(query, "token=t");
    assert_int_equal(sl_rtsp_url_split("rtsps://h/live/s", path, sizeof path, params, sizeof params, query,
                                       sizeof query), 0);
    assert_string_equal(path, "live/s");
    assert_int_equal(sl_rtsp_url_split("http://h/live/s", path, sizeof path, params, sizeof params, query,
                                       sizeof query), SL_EPROTO);
    assert_int_equal(sl_rtsp_url_split("rtsp://h", path, sizeof path, params, sizeof params, query, sizeof query),
                     SL_EPROTO);
    assert_int_equal(sl_rtsp_url_split("rtsp://h/live/s", path, 4, params, sizeof params, query, sizeof query),
                     SL_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request),
        cmocka_unit_test(test_transport),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
