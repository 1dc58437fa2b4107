/*
 * The restream module's pure parts: the text form of pull and push
 * entries (restream_spec.c: fields, options, every refusal with its
 * reason, line numbers) and the worker's H.264 Annex B -> AVCC conversion
 * (restream_io.c: parameter sets collected and reported as changed once,
 * AUD dropped, IDR seen, the output bound) and Red5's restreamer servlet
 * body (restream_servlet.c: each type's URL, defaults, every refusal).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "modules/restream/restream_io.h"
#include "modules/restream/restream_servlet.h"
#include "modules/restream/restream_spec.h"
#include "sluice/errors.h"

static int parse(const char *line, int push, sl_rs_spec_t *s, const char **why)
{
    *why = NULL;
    return sl_rs_spec_parse(line, strlen(line), push, s, why);
}

static void test_pull_entry(void **state)
{
    (void)state;
    sl_rs_spec_t s;
    const char *why;
    assert_int_equal(parse("live/cam1 rtsp://u:p@10.0.0.5:554/h264 mode=on_demand "
                           "idle_timeout=20s standby=/srv/slate.mp4 rtsp_transport=udp",
                           0, &s, &why), 0);
    assert_string_equal(s.app, "live");
    assert_string_equal(s.stream, "cam1");
    assert_string_equal(s.url, "rtsp://u:p@10.0.0.5:554/h264");
    assert_int_equal(s.mode, SL_RS_ON_DEMAND);
    assert_int_equal(s.idle_timeout_ms, 20000);
    assert_string_equal(s.standby, "/srv/slate.mp4");
    assert_int_equal(s.rtsp_udp, 1);
    assert_int_equal(parse("live/room1/cam rtmp://h/app/s", 0, &s, &why), 0);
    assert_string_equal(s.stream, "room1/cam");
    assert_int_equal(s.mode, SL_RS_ALWAYS);
    assert_int_equal(s.idle_timeout_ms, 0);
    assert_int_equal(parse("   # a comment", 0, &s, &why), 1);
    assert_int_equal(parse("  \t ", 0, &s, &why), 1);
}

static void test_refusals(void **state)
{
    (void)state;
    sl_rs_spec_t s;
    const char *why;
    static const struct { const char *line; int push; } bad[] = {
        {"live rtsp://h/x", 0},                       /* no stream */
        {"live/cam", 0},                              /* no url */
        {"live/cam file:///etc/passwd", 0},           /* scheme */
        {"live/cam rtsp://h/x mode=sometimes", 0},
        {"live/cam rtsp://h/x idle_timeout=500ms", 0},
        {"live/cam rtsp://h/x idle_timeout=abc", 0},
        {"live/cam rtsp://h/x colour=red", 0},
        {"live/cam rtsp://h/x standby=", 0},
        {"live/cam rtsp://h/x rtsp_transport=sctp", 0},
        {"live/cam rtsp://h/x noequals", 0},
        {"../x/cam rtsp://h/x", 0},
        {"live/a..b rtsp://h/x", 0},
        {"live/* rtsp://h/x", 0},                     /* "*" is for pushes */
        {"live/s rtsp://h/x", 1},                     /* push: rtmp(s)/srt only */
        {"live/s http://h/x", 1},
        {"live/s rtmp://h/x mode=always", 1},         /* push: no options */
        {"live/s rtmp://", 1},                        /* nothing after the scheme */
        {"live/s rtmp://h/a b c d e f g h i", 1},     /* too many fields */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = parse(bad[i].line, bad[i].push, &s, &why);
        if (rc != SL_EINVAL)
            fail_msg("accepted: %s", bad[i].line);
        assert_non_null(why);
    }
    assert_int_equal(parse("live/* rtmp://h/app/{stream}", 1, &s, &why), 0);
    assert_string_equal(s.stream, "*");
    char long_line[SL_RS_LINE_MAX + 10];
    memset(long_line, 'a', sizeof long_line);
    memcpy(long_line, "live/s rtmp://", 14);
    assert_int_equal(sl_rs_spec_parse(long_line, sizeof long_line, 1, &s, &why), SL_EINVAL);
}

static int count(void *ud, const sl_rs_spec_t *s, int line_no)
{
    (void)s;
    int *n = ud;
    n[0]++;
    n[1] = line_no;
    return 0;
}

static void test_each_lines(void **state)
{
    (void)state;
    int n[2] = {0, 0}, bad = 0;
    const char *why = NULL;
    assert_int_equal(sl_rs_spec_each("live/a rtmp://h/x\n\n# c\nlive/b srt://h:1\n", 1, count, n,
                                     &why, &bad), 0);
    assert_int_equal(n[0], 2);
    assert_int_equal(n[1], 4);
    assert_int_equal(sl_rs_spec_each("live/a rtmp://h/x\nlive/b nope\n", 1, count, n, &why, &bad),
                     SL_EINVAL);
    assert_int_equal(bad, 2);
    assert_int_equal(sl_rs_spec_each(NULL, 0, count, n, &why, &bad), 0);
}

static void test_annexb(void **state)
{
    (void)state;
    static const uint8_t au[] = {
        0, 0, 0, 1, 0x09, 0xf0,                         /* AUD: dropped */
        0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xaa,       /* SPS */
        0, 0, 1, 0x68, 0xce, 0x3c, 0x80,                /* PPS */
        0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0x33,          /* IDR slice */
    };
    uint8_t out[128], sps[1024], pps[1024];
    size_t sps_len = 0, pps_len = 0;
    int changed = 0, idr = 0;
    int n = sl_rs_annexb_to_avcc(au, sizeof au, out, sizeof out, sps, &sps_len, pps, &pps_len,
                                 &changed, &idr);
    assert_int_equal(n, 4 + 5);
    assert_memory_equal(out, "\x00\x00\x00\x05\x65\x88\x84\x00\x33", 9);
    assert_int_equal(sps_len, 5);
    assert_int_equal(pps_len, 4);
    assert_true(changed);
    assert_true(idr);
    changed = idr = 0;
    n = sl_rs_annexb_to_avcc(au, sizeof au, out, sizeof out, sps, &sps_len, pps, &pps_len,
                             &changed, &idr);
    assert_int_equal(n, 9);
    assert_false(changed); /* same parameter sets: no new sequence header */
    assert_int_equal(sl_rs_annexb_to_avcc(au, sizeof au, out, 8, sps, &sps_len, pps, &pps_len,
                                          &changed, &idr), SL_ETOOBIG);
    static const uint8_t junk[] = {1, 2, 3, 4, 0, 0};
    assert_int_equal(sl_rs_annexb_to_avcc(junk, sizeof junk, out, sizeof out, sps, &sps_len, pps,
                                          &pps_len, &changed, &idr), 0);
}

/* H.265 Annex B: VPS/SPS/PPS aside, AUD dropped, IRAP flagged, the rest length-prefixed. */
static void test_annexb_hevc(void **state)
{
    (void)state;
    static const uint8_t au[] = {
        0, 0, 0, 1, 0x46, 0x01, 0x50,                   /* AUD (35): dropped */
        0, 0, 0, 1, 0x40, 0x01, 0x0c, 0x01,             /* VPS (32) */
        0, 0, 1, 0x42, 0x01, 0x01, 0x01, 0x60,          /* SPS (33) */
        0, 0, 1, 0x44, 0x01, 0xc1, 0x72,                /* PPS (34) */
        0, 0, 1, 0x4e, 0x01, 0x05, 0x1a,                /* SEI (39): kept */
        0, 0, 1, 0x26, 0x01, 0xaf, 0x06, 0x20,          /* IDR_W_RADL (19) slice */
    };
    uint8_t out[128], vps[1024], sps[1024], pps[1024];
    size_t vps_len = 0, sps_len = 0, pps_len = 0;
    int changed = 0, irap = 0;
    int n = sl_rs_annexb_to_hvcc(au, sizeof au, out, sizeof out, vps, &vps_len, sps, &sps_len, pps,
                                 &pps_len, &changed, &irap);
    assert_int_equal(n, 4 + 4 + 4 + 5);
    assert_memory_equal(out, "\x00\x00\x00\x04\x4e\x01\x05\x1a\x00\x00\x00\x05\x26\x01\xaf\x06\x20", 17);
    assert_int_equal(vps_len, 4);
    assert_int_equal(sps_len, 5);
    assert_int_equal(pps_len, 4);
    assert_true(changed);
    assert_true(irap);
    changed = irap = 0;
    static const uint8_t trail[] = {0, 0, 1, 0x02, 0x01, 0xd0, 0x09}; /* TRAIL_R (1) */
    n = sl_rs_annexb_to_hvcc(trail, sizeof trail, out, sizeof out, vps, &vps_len, sps, &sps_len, pps,
                             &pps_len, &changed, &irap);
    assert_int_equal(n, 8);
    assert_false(changed);
    assert_false(irap);
    assert_int_equal(sl_rs_annexb_to_hvcc(au, sizeof au, out, 8, vps, &vps_len, sps, &sps_len, pps,
                                          &pps_len, &changed, &irap), SL_ETOOBIG);
}

static int sv(const char *body, sl_rs_sv_req_t *q, const char **why)
{
    *why = NULL;
    return sl_rs_servlet_parse(body, strlen(body), "live", q, why);
}

static void test_servlet_create(void **state)
{
    (void)state;
    static sl_rs_sv_req_t q;
    const char *why;
    /* rtmp-push from parts: default port, streamName, context from the URL's app */
    assert_int_equal(sv("{\"guid\":\"\",\"context\":\"\",\"name\":\"s1\",\"level\":0,"
                        "\"parameters\":{\"action\":\"create\",\"type\":\"rtmp-push\","
                        "\"host\":\"10.0.0.9\",\"application\":\"live\"}}", &q, &why), 0);
    assert_int_equal(q.action, SL_RS_SV_CREATE);
    assert_int_equal(q.push, 1);
    assert_string_equal(q.context, "live");
    assert_string_equal(q.spec.url, "rtmp://10.0.0.9:1935/live/s1");
    assert_string_equal(q.spec.app, "live");
    assert_string_equal(q.spec.stream, "s1");
    assert_int_equal(sv("{\"name\":\"s1\",\"parameters\":{\"action\":\"create\",\"type\":"
                        "\"rtmps-push\",\"host\":\"::1\",\"port\":\"8443\",\"application\":"
                        "\"app\",\"streamName\":\"key\"}}", &q, &why), 0);
    assert_string_equal(q.spec.url, "rtmps://[::1]:8443/app/key");
    assert_int_equal(sv("{\"name\":\"s1\",\"parameters\":{\"action\":\"create\",\"type\":"
                        "\"srt-push\",\"ip\":\"10.0.0.9\",\"port\":9000,\"streamid\":"
                        "\"publish:live/s1\"}}", &q, &why), 0);
    assert_string_equal(q.spec.url, "srt://10.0.0.9:9000?streamid=publish:live/s1");
    /* srt ingest from ip/port: caller; a context with a sub-scope; pull options */
    assert_int_equal(sv("{\"context\":\"/live/room1/\",\"name\":\"cam\",\"parameters\":"
                        "{\"action\":\"create\",\"type\":\"srt\",\"ip\":\"10.0.0.5\","
                        "\"port\":5799,\"mode\":\"on_demand\",\"idle_timeout\":20}}", &q, &why), 0);
    assert_int_equal(q.push, 0);
    assert_string_equal(q.context, "live/room1");
    assert_string_equal(q.spec.url, "srt://10.0.0.5:5799?mode=caller");
    assert_string_equal(q.spec.stream, "room1/cam");
    assert_int_equal(q.spec.mode, SL_RS_ON_DEMAND);
    assert_int_equal(q.spec.idle_timeout_ms, 20000);
    assert_int_equal(sv("{\"guid\":\"cam-1\",\"name\":\"c\",\"parameters\":{\"action\":"
                        "\"create\",\"type\":\"hls\",\"url\":\"https://h/x.m3u8\"}}", &q, &why), 0);
    assert_string_equal(q.guid, "cam-1");
    assert_string_equal(q.type, "hls");
}

/* A stream manager's restreamer provision read as a servlet create (Red5's SM 2.0 names). */
static void test_servlet_from_provision(void **state)
{
    (void)state;
    static sl_rs_sv_req_t q;
    const char *why = NULL;
#define PV(props)                                                                              \
    "{\"provisionGuid\":\"p-1\",\"streams\":[{\"streamGuid\":\"live/room1/cam1\",\"abrLevel\":0," \
    "\"camParams\":{\"properties\":" props "}}],\"distribution\":{\"nodeId\":\"n1\",\"time\":5}}"
    const char *t = PV("{\"action\":\"create\",\"type\":\"srt\",\"ip\":\"10.0.0.5\","
                       "\"port\":\"5799\",\"latency\":100,\"audio\":true}");
    assert_int_equal(sl_rs_servlet_from_provision(t, strlen(t), &q, &why), 0);
    assert_string_equal(q.guid, "p-1");
    assert_string_equal(q.context, "live/room1");
    assert_string_equal(q.name, "cam1");
    assert_int_equal(q.push, 0);
    assert_string_equal(q.spec.url, "srt://10.0.0.5:5799?mode=caller");
    t = PV("{\"type\":\"ipcam\",\"host\":\"192.168.1.10\",\"port\":5443,"
           "\"remoteContextPath\":\"axis-media\",\"remoteStreamName\":\"media.amp\"}");
    assert_int_equal(sl_rs_servlet_from_provision(t, strlen(t), &q, &why), 0);
    assert_string_equal(q.type, "rtsp");
    assert_string_equal(q.spec.url, "rtsp://192.168.1.10:5443/axis-media/media.amp");
    t = PV("{\"type\":\"srt-caller\",\"ip\":\"10.1.2.3\",\"port\":\"8000\",\"role\":\"sender\"}");
    assert_int_equal(sl_rs_servlet_from_provision(t, strlen(t), &q, &why), 0);
    assert_int_equal(q.push, 1);
    assert_string_equal(q.type, "srt-push");
    assert_string_equal(q.spec.url, "srt://10.1.2.3:8000");
    t = PV("{\"type\":\"rtmp-push\",\"rtmpUri\":\"rtmp://h/live/social1\",\"persist\":\"false\"}");
    assert_int_equal(sl_rs_servlet_from_provision(t, strlen(t), &q, &why), 0);
    assert_string_equal(q.spec.url, "rtmp://h/live/social1");
    /* The servlet takes Red5's names too. */
    assert_int_equal(sv("{\"name\":\"s1\",\"parameters\":{\"action\":\"create\",\"type\":"
                        "\"rtmp-push\",\"rtmpUri\":\"rtmp://h/live/k\"}}", &q, &why), 0);
    assert_string_equal(q.spec.url, "rtmp://h/live/k");
    assert_int_equal(sv("{\"name\":\"s1\",\"parameters\":{\"action\":\"create\",\"type\":"
                        "\"srt-caller\",\"ip\":\"10.0.0.9\",\"port\":9000}}", &q, &why), 0);
    assert_int_equal(q.push, 1);
    /* Refusals say why. */
    const char *bad[] = {
        "", "[]", "{\"provisionGuid\":\"p-1\"}",
        "{\"provisionGuid\":\"p-1\",\"streams\":[{\"streamGuid\":\"nolash\",\"camParams\":"
        "{\"properties\":{\"type\":\"rtsp\",\"url\":\"rtsp://h/x\"}}}]}",
        PV("{\"type\":\"ipcam\"}"),
        PV("{\"type\":\"zixi\",\"url\":\"zixi://h\"}"),
        PV("{\"type\":\"rtsp\",\"url\":\"rtmp://h/x\"}"),
        PV("{\"type\":\"srt\",\"ip\":\"h\"}"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        int rc = sl_rs_servlet_from_provision(bad[i], strlen(bad[i]), &q, &why);
        if (rc == 0 || !why)
            fail_msg("accepted or no reason: %s", bad[i]);
    }
#undef PV
}

static void test_servlet_refusals(void **state)
{
    (void)state;
    static sl_rs_sv_req_t q;
    static char big[SL_RS_SV_BODY_MAX + 2];
    const char *why;
    const char *bad[] = {
        "", "[]", "{", "{\"parameters\":1}", "{\"parameters\":{\"action\":7}}",
        "{\"parameters\":{\"action\":\"dance\"}}",
        "{\"parameters\":{\"action\":\"kill\"}}",              /* no guid nor name */
        "{\"name\":\"s\",\"parameters\":{\"action\":\"create\"}}", /* no type */
        "{\"name\":\"s\",\"parameters\":{\"action\":\"create\",\"type\":\"udp\",\"url\":\"udp://h:1\"}}",
        "{\"name\":\"s\",\"parameters\":{\"action\":\"create\",\"type\":\"mpegts\",\"url\":\"udp://h:1\"}}",
        "{\"name\":\"s\",\"parameters\":{\"action\":\"create\",\"type\":\"rtsp\",\"url\":\"rtmp://h/a/b\"}}",
        "{\"name\":\"s\",\"parameters\":{\"action\":\"create\",\"type\":\"rtsp\"}}", /* no url */
        "{\"name\":\"s\",\"parameters\":{\"action\":\"create\",\"type\":\"srt\",\"ip\":\"h\"}}",
        "{\"name\":\"s\",\"parameters\":{\"action\":\"create\",\"type\":\"srt\",\"ip\":\"h\",\"port\":70000}}",
        "{\"name\":\"s\",\"parameters\":{\"action\":\"create\",\"type\":\"rtmp-push\",\"host\":\"a b\",\"application\":\"x\"}}",
        "{\"name\":\"s\",\"parameters\":{\"action\":\"create\",\"type\":\"rtmp-push\",\"host\":\"h/x\",\"application\":\"x\"}}",
        "{\"name\":\"s\",\"parameters\":{\"action\":\"create\",\"type\":\"rtmp-push\",\"host\":\"h\"}}",
        "{\"name\":\"s\",\"parameters\":{\"action\":\"create\",\"type\":\"rtmp\",\"url\":\"rtmp://h/a b\"}}",
        "{\"name\":\"s\",\"parameters\":{\"action\":\"create\",\"type\":\"rtmp\",\"url\":\"rtmp://h/a\",\"mode\":\"sometimes\"}}",
        "{\"name\":\"a/b\",\"parameters\":{\"action\":\"create\",\"type\":\"rtmp\",\"url\":\"rtmp://h/a\"}}",
        "{\"parameters\":{\"action\":\"create\",\"type\":\"rtmp\",\"url\":\"rtmp://h/a\"}}", /* no name */
        "{\"guid\":\"a b\",\"parameters\":{\"action\":\"list\"}}",
        "{\"guid\":7,\"parameters\":{\"action\":\"list\"}}",
        "{\"level\":\"x\",\"parameters\":{\"action\":\"list\"}}",
        "{\"name\":\"a\",\"name\":\"b\",\"parameters\":{\"action\":\"list\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = sv(bad[i], &q, &why);
        if (rc != SL_EINVAL || !why)
            fail_msg("accepted or no reason: %s", bad[i]);
    }
    memset(big, ' ', sizeof big);
    assert_int_equal(sl_rs_servlet_parse(big, sizeof big, "live", &q, &why), SL_ETOOBIG);
    /* list is the default action (Red5) */
    assert_int_equal(sv("{\"parameters\":{\"type\":\"rtsp\"}}", &q, &why), 0);
    assert_int_equal(q.action, SL_RS_SV_LIST);
    assert_int_equal(sv("{\"context\":\"\",\"parameters\":{\"action\":\"update\"}}", &q, &why), 0);
    assert_int_equal(q.action, SL_RS_SV_UPDATE);
    assert_int_equal(sv("{\"name\":\"s\",\"parameters\":{\"action\":\"kill\"}}", &q, &why), 0);
    assert_int_equal(q.action, SL_RS_SV_KILL);
    assert_string_equal(q.context, "live");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pull_entry),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_each_lines),
        cmocka_unit_test(test_annexb),
        cmocka_unit_test(test_annexb_hevc),
        cmocka_unit_test(test_servlet_create),
        cmocka_unit_test(test_servlet_refusals),
        cmocka_unit_test(test_servlet_from_provision),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
