/*
 * Round Trip Authentication tests: Red5's request body, how answers are
 * read, and the module on a real loop against a loopback validate server
 * (../base/http_stub.h): yes with url, no, a timeout giving the default, a
 * slow answer not holding another client, invalidate on disconnect and
 * for a client that left before its yes, lazy mode kicking, and stop with
 * a validation still waiting.
 */
#define _GNU_SOURCE /* strcasestr */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "app/admission.h"
#include "app/core.h"
#include "app/events.h"
#include "base/alloc.h"
#include "base/config.h"
#include "modules/plugins/plugins.h"
#include "modules/auth_roundtrip/auth_roundtrip.h"

/* The module under test, started by the host as in the server. */
static const sl_builtin_t *const g_only[] = {&sl_auth_roundtrip_builtin, NULL};
#include "sluice/errors.h"

#include "../base/http_stub.h"
#include "builtin_config.h"

/* ------------------------------------------------------------------ */
/* wire format                                                         */

static void test_body(void **state)
{
    (void)state;
    char *b = sl_auth_roundtrip_body("u", "p\"w", "t", 1, "room1/s1");
    assert_string_equal(b, "{\"username\":\"u\",\"password\":\"p\\\"w\",\"token\":\"t\","
                           "\"type\":\"publisher\",\"streamID\":\"room1/s1\"}");
    sl_free(b);
    b = sl_auth_roundtrip_body(NULL, NULL, NULL, 0, "s");
    assert_string_equal(b, "{\"username\":\"\",\"password\":\"\",\"token\":\"\",\"type\":\"subscriber\","
                           "\"streamID\":\"s\"}");
    sl_free(b);
}

static sl_rt_verdict_t decide(int status, const char *body, char **url)
{
    return sl_auth_roundtrip_decide(status, body, strlen(body), url);
}

static void test_decide(void **state)
{
    (void)state;
    char *url = NULL;
    assert_int_equal(decide(200, "{\"result\":true,\"url\":\"http://cdn/x?sig=1\"}", &url), SL_RT_ALLOW);
    assert_string_equal(url, "http://cdn/x?sig=1");
    sl_free(url);
    assert_int_equal(decide(200, "{\"result\":true}", &url), SL_RT_ALLOW);
    assert_null(url);
    assert_int_equal(decide(200, "{\"result\":\"true\"}", NULL), SL_RT_ALLOW);
    assert_int_equal(decide(201, "{\"result\":\"TRUE\"}", NULL), SL_RT_ALLOW);
    assert_int_equal(decide(200, "{\"result\":false,\"url\":\"x\"}", &url), SL_RT_DENY);
    assert_null(url);
    assert_int_equal(decide(200, "{\"result\":1}", NULL), SL_RT_DENY);
    assert_int_equal(decide(200, "{\"result\":\"yes\"}", NULL), SL_RT_DENY);
    assert_int_equal(decide(200, "{}", NULL), SL_RT_DENY);
    assert_int_equal(decide(200, "true", NULL), SL_RT_DENY);
    assert_int_equal(decide(200, "not json", NULL), SL_RT_DENY);
    /* Duplicate keys: refused whichever copy says yes (issue 11). */
    assert_int_equal(decide(200, "{\"result\":false,\"result\":true}", NULL), SL_RT_DENY);
    assert_int_equal(decide(200, "{\"result\":true,\"result\":true}", NULL), SL_RT_DENY);
    assert_int_equal(decide(200, "{\"result\":true,\"url\":\"a\",\"url\":\"b\"}", &url), SL_RT_DENY);
    assert_null(url);
    assert_int_equal(decide(200, "{\"result\":\"tr\\u0000ue\"}", NULL), SL_RT_DENY);
    assert_int_equal(decide(403, "{\"result\":true}", NULL), SL_RT_DENY);
    assert_int_equal(decide(302, "", NULL), SL_RT_DENY);
    assert_int_equal(decide(500, "{\"result\":true}", NULL), SL_RT_FAILED);
    assert_int_equal(decide(503, "", NULL), SL_RT_FAILED);
    assert_int_equal(decide(UV_ETIMEDOUT, "", NULL), SL_RT_FAILED);
    assert_int_equal(decide(UV_ECONNREFUSED, "", NULL), SL_RT_FAILED);
}

/* ------------------------------------------------------------------ */
/* the module on a loop                                                */

static uv_loop_t g_loop;
static int64_t g_blocks;
static sl_config_t g_cfg;
static sl_core_t g_core;
static sl_plugins_t *g_state;
static stub_t g_stub;
static int g_invalidates;
static char g_invalidate_body[1024];
static int g_validates;

/* The business's server: decides by username. */
static long respond(stub_t *s, const char *path, const char *body, int *status, const char **resp, void *ud)
{
    (void)s;
    (void)ud;
    if (strcmp(path, "/invalidate") == 0) {
        g_invalidates++;
        snprintf(g_invalidate_body, sizeof g_invalidate_body, "%s", body);
        *resp = "{\"result\":true}";
        return 0;
    }
    g_validates++;
    json_t *o = json_loads(body, 0, NULL);
    const char *user = json_string_value(json_object_get(o, "username"));
    long delay = 0;
    if (!user || strcmp(user, "no") == 0) {
        *resp = "{\"result\":false}";
    } else if (strcmp(user, "never") == 0) {
        delay = -1;
    } else if (strcmp(user, "slow") == 0) {
        *resp = "{\"result\":true}";
        delay = 300;
    } else if (strcmp(user, "err") == 0) {
        *status = 500;
        *resp = "oops";
    } else {
        *resp = "{\"result\":true,\"url\":\"http://cdn.example/s1?sig=abc\"}";
    }
    json_decref(o);
    return delay;
}

typedef struct fake {
    sl_session_t s;     /* first: the core's view */
    int kicks;
    char kick_reason[128];
} fake_t;

static void fake_kick(sl_session_t *s, const char *reason)
{
    fake_t *f = (fake_t *)s;
    f->kicks++;
    snprintf(f->kick_reason, sizeof f->kick_reason, "%s", reason ? reason : "");
    sl_events_emit_session(&g_core, s, SL_EV_DISCONNECT, reason);
    sl_session_unregister(&g_core, s);
}

static const sl_session_ops_t g_fake_ops = {.kick = fake_kick};

static void fake_open(fake_t *f)
{
    memset(f, 0, sizeof(*f));
    sl_session_register(&g_core, &f->s, &g_fake_ops, "rtmp");
    sl_session_set_app(&f->s, "live");
}

static void fake_close(fake_t *f)
{
    if (!sl_list_linked(&f->s.link))
        return;
    sl_events_emit_session(&g_core, &f->s, SL_EV_DISCONNECT, "closed");
    sl_session_unregister(&g_core, &f->s);
}

typedef struct done_rec {
    int calls;
    int result;
    char reason[128];
    char url[128];
} done_rec_t;

static void on_done(sl_admit_t *a, int result, const char *reason, void *ud)
{
    done_rec_t *d = ud;
    d->calls++;
    d->result = result;
    snprintf(d->reason, sizeof d->reason, "%s", reason ? reason : "");
    const char *u = sl_admit_note(a, "url");
    snprintf(d->url, sizeof d->url, "%s", u ? u : "");
}

static void tick(uv_timer_t *t) { (void)t; }

/* Runs the loop until *flag reaches want or ms pass. */
static int run_until(const int *flag, int want, uint64_t ms)
{
    uv_timer_t wd;
    uv_timer_init(&g_loop, &wd);
    uv_timer_start(&wd, tick, 10, 10);
    uv_update_time(&g_loop);
    uint64_t end = uv_now(&g_loop) + ms;
    while (*flag < want && uv_now(&g_loop) < end)
        uv_run(&g_loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&wd, NULL);
    uv_run(&g_loop, UV_RUN_NOWAIT);
    return *flag >= want;
}

/* Starts an admission; returns its handle when pending (else NULL). */
static sl_admit_t *start_admit(fake_t *f, sl_admit_kind_t kind, const char *user, done_rec_t *d)
{
    memset(d, 0, sizeof(*d));
    sl_admit_req_t req = {.kind = kind, .app = "live", .stream = "s1", .transport = "rtmp",
                          .username = user, .password = "pw", .token = "tok"};
    sl_admit_t *h = NULL;
    int rc = sl_admit(&g_core, &f->s, &req, on_done, d, &h);
    assert_true(rc == SL_OK || rc == SL_EPENDING);
    return rc == SL_EPENDING ? h : NULL;
}

static void setup_with(const char *extra)
{
    g_blocks = sl_alloc_blocks();
    assert_int_equal(uv_loop_init(&g_loop), 0);
    assert_int_equal(stub_start(&g_stub, &g_loop, respond, NULL), 0);
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "auth:\n"
             "  roundtrip_validate_url: http://127.0.0.1:%d/validate\n"
             "  roundtrip_invalidate_url: http://127.0.0.1:%d/invalidate\n"
             "  roundtrip_timeout: 400ms\n%s"
             "apps:\n  live:\n    auth_roundtrip: true\n  open: {}\n",
             g_stub.port, g_stub.port, extra);
    assert_int_equal(sl_config_defaults(&g_cfg), 0);
    assert_int_equal(sl_config_load_string(&g_cfg, yaml, strlen(yaml), "t", NULL, NULL), 0);
    assert_int_equal(sl_core_init(&g_core, &g_loop, &g_cfg), 0);
    assert_int_equal(sl_plugins_start(&g_core, NULL, g_only, &g_state), 0);
    assert_non_null(sl_plugins_state(g_state, "auth_roundtrip"));
    g_invalidates = g_validates = 0;
    g_invalidate_body[0] = '\0';
}

static int setup(void **state)
{
    (void)state;
    setup_with("");
    return 0;
}

static int setup_lazy(void **state)
{
    (void)state;
    setup_with("  roundtrip_lazy: true\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sl_plugins_stop(g_state);
    /* The module's client drains; then the stub goes. */
    int never = 0;
    run_until(&never, 1, 300);
    stub_stop(&g_stub);
    uv_run(&g_loop, UV_RUN_DEFAULT);
    sl_plugins_free(g_state);
    sl_events_cleanup(&g_core);
    sl_admit_cleanup(&g_core);
    sl_core_cleanup(&g_core);
    assert_int_equal(uv_loop_close(&g_loop), 0);
    sl_config_cleanup(&g_cfg);
    assert_int_equal(sl_alloc_blocks(), g_blocks);
    return 0;
}

static void test_yes_no_default(void **state)
{
    (void)state;
    fake_t f;
    fake_open(&f);
    done_rec_t d;
    /* connect is not Round Trip's business */
    assert_null(start_admit(&f, SL_ADMIT_CONNECT, "no", &d));
    assert_int_equal(d.result, 0);
    assert_int_equal(g_validates, 0);

    sl_admit_t *h = start_admit(&f, SL_ADMIT_PUBLISH, "yes", &d);
    assert_non_null(h);
    assert_true(run_until(&d.calls, 1, 5000));
    assert_int_equal(d.result, 0);
    assert_string_equal(d.url, "http://cdn.example/s1?sig=abc");
    assert_string_equal(g_stub.last_body, "{\"username\":\"yes\",\"password\":\"pw\",\"token\":\"tok\","
                                          "\"type\":\"publisher\",\"streamID\":\"s1\"}");
    assert_non_null(strcasestr(g_stub.last_head, "Content-Type: application/json"));
    assert_non_null(strcasestr(g_stub.last_head, "Accept: application/json"));
    sl_admit_unref(h);

    h = start_admit(&f, SL_ADMIT_PLAY, "no", &d);
    assert_true(run_until(&d.calls, 1, 5000));
    assert_int_equal(d.result, SL_EDENIED);
    assert_string_equal(d.reason, "Authentication failed.");
    assert_non_null(strstr(g_stub.last_body, "\"type\":\"subscriber\""));
    sl_admit_unref(h);

    /* no answer within the timeout: the default (deny) */
    uv_update_time(&g_loop);
    uint64_t t0 = uv_now(&g_loop);
    h = start_admit(&f, SL_ADMIT_PLAY, "never", &d);
    assert_true(run_until(&d.calls, 1, 5000));
    assert_int_equal(d.result, SL_EDENIED);
    assert_string_equal(d.reason, "Authentication service unavailable.");
    assert_true(uv_now(&g_loop) - t0 >= 350);
    sl_admit_unref(h);

    h = start_admit(&f, SL_ADMIT_PLAY, "err", &d);
    assert_true(run_until(&d.calls, 1, 5000));
    assert_int_equal(d.result, SL_EDENIED);
    sl_admit_unref(h);

    /* an app without round trip is not asked */
    int before = g_validates;
    memset(&d, 0, sizeof d);
    sl_admit_req_t req = {.kind = SL_ADMIT_PUBLISH, .app = "open", .stream = "x", .transport = "rtmp"};
    assert_int_equal(sl_admit(&g_core, &f.s, &req, on_done, &d, &h), SL_OK);
    assert_int_equal(d.result, 0);
    assert_int_equal(g_validates, before);

    /* the yes is undone on disconnect, with the same body */
    assert_int_equal(g_invalidates, 0);
    fake_close(&f);
    assert_true(run_until(&g_invalidates, 1, 5000));
    assert_string_equal(g_invalidate_body, "{\"username\":\"yes\",\"password\":\"pw\",\"token\":\"tok\","
                                           "\"type\":\"publisher\",\"streamID\":\"s1\"}");
}

static void test_slow_does_not_block(void **state)
{
    (void)state;
    fake_t a, b;
    fake_open(&a);
    fake_open(&b);
    done_rec_t da, db;
    sl_admit_t *ha = start_admit(&a, SL_ADMIT_PUBLISH, "slow", &da);
    sl_admit_t *hb = start_admit(&b, SL_ADMIT_PUBLISH, "yes", &db);
    assert_true(run_until(&db.calls, 1, 5000));
    assert_int_equal(da.calls, 0); /* still waiting for its slow answer */
    assert_true(run_until(&da.calls, 1, 5000));
    assert_int_equal(da.result, 0);
    sl_admit_unref(ha);
    sl_admit_unref(hb);
    fake_close(&a);
    fake_close(&b);
    assert_true(run_until(&g_invalidates, 2, 5000));
}

static void test_left_before_answer(void **state)
{
    (void)state;
    fake_t f;
    fake_open(&f);
    done_rec_t d;
    sl_admit_t *h = start_admit(&f, SL_ADMIT_PLAY, "slow", &d);
    /* The client goes away: the protocol cancels the admission. */
    sl_admit_cancel(h);
    fake_close(&f);
    assert_int_equal(g_invalidates, 0);
    /* The yes arrives for nobody: undone at once. */
    assert_true(run_until(&g_invalidates, 1, 5000));
    assert_int_equal(d.calls, 0);
    assert_non_null(strstr(g_invalidate_body, "\"username\":\"slow\""));
}

static void test_stop_while_waiting(void **state)
{
    (void)state;
    fake_t f;
    fake_open(&f);
    done_rec_t d;
    sl_admit_t *h = start_admit(&f, SL_ADMIT_PLAY, "never", &d);
    assert_true(run_until(&g_validates, 1, 5000));
    sl_plugins_stop(g_state);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.result, SL_EDENIED);
    sl_admit_unref(h);
    fake_close(&f);
}

static void test_lazy(void **state)
{
    (void)state;
    fake_t f, g;
    fake_open(&f);
    fake_open(&g);
    done_rec_t d;
    /* admitted at once */
    assert_null(start_admit(&f, SL_ADMIT_PUBLISH, "no", &d));
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.result, 0);
    assert_null(start_admit(&g, SL_ADMIT_PUBLISH, "yes", &d));
    assert_int_equal(d.result, 0);
    /* ... and kicked when the answer is no */
    assert_true(run_until(&f.kicks, 1, 5000));
    assert_string_equal(f.kick_reason, "Authentication failed.");
    assert_int_equal(g.kicks, 0);
    /* the yes is remembered for the invalidate */
    assert_true(run_until(&g_validates, 2, 5000));
    int never = 0;
    run_until(&never, 1, 200);
    assert_int_equal(g.kicks, 0);
    fake_close(&g);
    assert_true(run_until(&g_invalidates, 1, 5000));
    /* a client gone before its no is not kicked (nothing to find) */
    fake_open(&f);
    assert_null(start_admit(&f, SL_ADMIT_PUBLISH, "no", &d));
    fake_close(&f);
    run_until(&never, 1, 300);
    assert_int_equal(f.kicks, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_decide),
        cmocka_unit_test_setup_teardown(test_yes_no_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_does_not_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_left_before_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_while_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lazy, setup_lazy, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
