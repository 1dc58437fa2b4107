/*
 * Protocol table tests (src/proto/protocols.c, proto.h): the table lists
 * RTMP then HTTP with every mandatory callback; enabled() follows the
 * configuration; the certificate checks that moved out of main report at
 * the key that names the file (HTTPS's at http.tls_cert; RTMPS's own at
 * rtmp.tls_cert; HTTPS's pair used by RTMPS reported once, by HTTP, when
 * HTTP runs, else by RTMP at http.tls_cert).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "base/config.h"
#include "proto/http/http.h"
#include "proto/proto.h"
#include "proto/rtmp/rtmp_server.h"
#include "proto/rtsp/rtsp_server.h"
#include "proto/webrtc/webrtc.h"
#include "builtin_config.h"

typedef struct {
    int n;
    char msgs[4][512];
} errs_t;

static void on_err(void *ud, const char *where, int line, const char *msg)
{
    (void)where;
    (void)line;
    errs_t *e = ud;
    if (e->n < 4)
        snprintf(e->msgs[e->n], sizeof e->msgs[0], "%s", msg);
    e->n++;
}

static void load(sl_config_t *cfg, const char *yaml)
{
    assert_int_equal(sl_config_defaults(cfg), 0);
    assert_int_equal(sl_config_load_string(cfg, yaml, strlen(yaml), "test", NULL, NULL), 0);
}

static void test_table(void **state)
{
    (void)state;
    const char *names[] = {"rtmp", "http", "webrtc", "srt", "mpegts", "rtsp"};
    int n = 0;
    for (; sl_builtin_protocols[n]; n++) {
        const sl_proto_t *p = sl_builtin_protocols[n];
        assert_true(n < 6);
        assert_string_equal(p->name, names[n]);
        assert_non_null(p->enabled);
        assert_non_null(p->start);
        assert_non_null(p->stop);
        assert_non_null(p->free);
    }
    assert_int_equal(n, 6);
    assert_ptr_equal(sl_builtin_protocols[0], &sl_rtmp_proto);
    assert_ptr_equal(sl_builtin_protocols[1], &sl_http_proto);
    assert_ptr_equal(sl_builtin_protocols[2], &sl_webrtc_proto); /* after HTTP: routes on its service */
    assert_ptr_equal(sl_builtin_protocols[5], &sl_rtsp_proto);
    sl_config_t cfg;
    load(&cfg, "rtmp:\n  enabled: false\nhttp:\n  enabled: true\n");
    assert_false(sl_rtmp_proto.enabled(&cfg));
    assert_true(sl_http_proto.enabled(&cfg));
    sl_config_cleanup(&cfg);
}

static void test_checks(void **state)
{
    (void)state;
    sl_config_t cfg;
    errs_t e;
    /* No certificate anywhere: nothing to check. */
    load(&cfg, "http:\n  enabled: true\n");
    memset(&e, 0, sizeof e);
    assert_int_equal(sl_http_proto.check(&cfg, on_err, &e), 0);
    assert_int_equal(sl_rtmp_proto.check(&cfg, on_err, &e), 0);
    assert_int_equal(e.n, 0);
    sl_config_cleanup(&cfg);

    /* HTTPS's pair, unreadable, shared by RTMPS: reported once, by HTTP. */
    load(&cfg, "http:\n  enabled: true\n  tls_cert: /nonexistent/c.pem\n"
               "  tls_key: /nonexistent/k.pem\n");
    memset(&e, 0, sizeof e);
    assert_int_equal(sl_http_proto.check(&cfg, on_err, &e), 1);
    assert_int_equal(sl_rtmp_proto.check(&cfg, on_err, &e), 0);
    assert_int_equal(e.n, 1);
    assert_memory_equal(e.msgs[0], "http.tls_cert", 13);
    sl_config_cleanup(&cfg);

    /* The same with HTTP off: RTMP reports it, at http.tls_cert. */
    load(&cfg, "http:\n  enabled: false\n  tls_cert: /nonexistent/c.pem\n"
               "  tls_key: /nonexistent/k.pem\n");
    memset(&e, 0, sizeof e);
    assert_int_equal(sl_rtmp_proto.check(&cfg, on_err, &e), 1);
    assert_memory_equal(e.msgs[0], "http.tls_cert", 13);
    sl_config_cleanup(&cfg);

    /* RTMPS's own pair: reported at rtmp.tls_cert. */
    load(&cfg, "rtmp:\n  tls_cert: /nonexistent/c.pem\n  tls_key: /nonexistent/k.pem\n");
    memset(&e, 0, sizeof e);
    assert_int_equal(sl_rtmp_proto.check(&cfg, on_err, &e), 1);
    assert_memory_equal(e.msgs[0], "rtmp.tls_cert", 13);
    sl_config_cleanup(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
