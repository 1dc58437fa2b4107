/*
 * The JSON form of shared objects (src/modules/shared_objects/so_json.c)
 * against a fake "webrtc-ws" service registered after the module started
 * (the WebRTC protocol starts after modules): the adapter finds it from its
 * timer, takes its five keys, holds messages while a socket's admission is
 * pending and runs them in order once allowed, answers Fail to a refused
 * socket, maps changes to Red5's events (subtype 4 for others, 5 for the
 * writer, 6 for send, 9 for delete) with versions, leaves its objects when
 * the socket closes, and removes its keys at stop. Each object connect is
 * admitted (admit_kind, kind SL_ADMIT_SO_CONNECT, stream = the name): a
 * refusal answers Connect Fail SharedObject.NoReadAccess, a pending one
 * holds the connect and what follows, then runs them in order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include <uv.h>

#include "app/admission.h"
#include "app/core.h"
#include "app/services.h"
#include "app/svc/sharedobjects.h"
#include "app/svc/webrtc_ws.h"
#include "base/alloc.h"
#include "builtin_config.h"
#include "modules/plugins/plugins.h"
#include "modules/shared_objects/shared_objects.h"
#include "sluice/errors.h"

/* The fake service's conn: what was sent to it, one message a line. */
struct sl_wsig_conn {
    char out[8192];
    int admit_rc;            /* what admit() answers first: 0, SL_EDENIED or SL_EPENDING */
    sl_wsig_admit_cb cb;     /* the pending admission's callback */
    void *cb_ud;
    int so_rc;               /* what admit_kind answers: 0, SL_EDENIED or SL_EPENDING */
    int so_kind;             /* the last admit_kind's kind and stream */
    char so_stream[64];
    void (*so_done)(struct sl_admit *a, int result, const char *reason, void *ud);
    void *so_ud;
};

typedef struct fake {
    sl_wsig_handler_spec_t h[8];
    char keys[8][64];
    int n, removed;
} fake_t;

static fake_t g_fake;

static int f_add(void *svc, const sl_wsig_handler_spec_t *spec)
{
    fake_t *f = svc;
    if (f->n == 8)
        return SL_ETOOBIG;
    snprintf(f->keys[f->n], sizeof f->keys[0], "%s", spec->key);
    f->h[f->n] = *spec;
    f->h[f->n].key = f->keys[f->n];
    f->n++;
    return 0;
}

static void f_remove(void *svc, const char *key)
{
    fake_t *f = svc;
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->keys[i], key))
            f->removed++;
}

static int f_send(sl_wsig_conn_t *c, const char *json, size_t len)
{
    size_t n = strlen(c->out);
    snprintf(c->out + n, sizeof c->out - n, "%.*s\n", (int)len, json);
    return 0;
}

static const char *f_scope(const sl_wsig_conn_t *c) { (void)c; return "live"; }
static const char *f_id(const sl_wsig_conn_t *c) { (void)c; return "so-1"; }
static const char *f_remote(const sl_wsig_conn_t *c) { (void)c; return "127.0.0.1"; }
static sl_session_t *f_session(const sl_wsig_conn_t *c) { (void)c; return NULL; }
static int f_is_dc(const sl_wsig_conn_t *c) { (void)c; return 0; }

static int f_admit(sl_wsig_conn_t *c, sl_wsig_admit_cb cb, void *ud)
{
    if (c->admit_rc == SL_EPENDING) {
        c->cb = cb;
        c->cb_ud = ud;
    }
    return c->admit_rc;
}

static int f_admit_kind(sl_wsig_conn_t *c, int kind, const char *stream,
                        void (*done)(struct sl_admit *a, int result, const char *reason, void *ud),
                        void *ud, struct sl_admit **out)
{
    c->so_kind = kind;
    snprintf(c->so_stream, sizeof c->so_stream, "%s", stream);
    *out = NULL; /* no real admission: nothing to cancel */
    if (c->so_rc == SL_EPENDING) {
        c->so_done = done;
        c->so_ud = ud;
        return SL_EPENDING;
    }
    done(NULL, c->so_rc, NULL, ud);
    return 0;
}

static const sl_wsig_svc_t g_fake_svc = {
    .handler_add = f_add, .handler_remove = f_remove, .send = f_send, .scope = f_scope,
    .id = f_id, .remote = f_remote, .session = f_session, .admit = f_admit, .is_datachannel = f_is_dc,
    .admit_kind = f_admit_kind,
};

/* Delivers text to the handler of its key, as webrtc_ws.c does. */
static int deliver(sl_wsig_conn_t *c, const char *text)
{
    json_t *m = json_loads(text, 0, NULL);
    assert_non_null(m);
    for (int i = 0; i < g_fake.n; i++) {
        if (json_object_get(m, g_fake.keys[i])) {
            json_decref(m);
            return g_fake.h[i].on_message(c, text, strlen(text), g_fake.h[i].ud);
        }
    }
    json_decref(m);
    fail_msg("no handler for %s", text);
    return -1;
}

static void closed(sl_wsig_conn_t *c)
{
    for (int i = 0; i < g_fake.n; i++)
        if (g_fake.h[i].on_close)
            g_fake.h[i].on_close(c, g_fake.h[i].ud);
}

static void on_tick(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, NULL);
}

static void test_so_json(void **state)
{
    (void)state;
    int64_t blocks = sl_alloc_blocks();
    sl_config_t cfg;
    const char *yaml = "apps:\n  live:\n    so_max_value_bytes: 64\n";
    assert_int_equal(sl_config_defaults(&cfg), 0);
    assert_int_equal(sl_config_load_string(&cfg, yaml, strlen(yaml), "t", NULL, NULL), 0);
    uv_loop_t loop;
    sl_core_t core;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(sl_core_init(&core, &loop, &cfg), 0);
    static const sl_builtin_t *const only[] = {&sl_shared_objects_builtin, NULL};
    sl_plugins_t *mod = NULL;
    assert_int_equal(sl_plugins_start(&core, NULL, only, &mod), 0);

    /* The service comes after the module: found from the timer. */
    assert_int_equal(g_fake.n, 0);
    assert_int_equal(sl_service_register(&core, SL_WEBRTC_WS_SVC_NAME, 1, 2, &g_fake_svc, &g_fake), 0);
    /* The adapter's timer does not keep a loop alive: a one-shot timer here does. */
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 20, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(g_fake.n, 5);

    /* A pending admission holds the messages, then runs them in order. */
    static sl_wsig_conn_t a, b, bad;
    a.admit_rc = SL_EPENDING;
    assert_int_equal(deliver(&a, "{\"sharedObjectGetRemote\":{\"name\":\"board\"}}"), 0);
    assert_int_equal(deliver(&a, "{\"sharedObjectConnect\":{\"name\":\"board\"}}"), 0);
    assert_string_equal(a.out, "");
    assert_non_null(a.cb);
    a.admit_rc = 0;
    a.cb(&a, 0, a.cb_ud);
    assert_non_null(strstr(a.out, "\"status\":\"SharedObject.Status.GetRemote\""));
    assert_true(strstr(a.out, "GetRemote") < strstr(a.out, "\"status\":\"SharedObject.Status.Connect\""));
    assert_non_null(strstr(a.out, "\"message\":\"Success\",\"version\":0"));
    assert_int_equal(a.so_kind, SL_ADMIT_SO_CONNECT);
    assert_string_equal(a.so_stream, "board");

    /* The object's own admission: refused -> NoReadAccess; pending -> held, then in order. */
    static sl_wsig_conn_t sec, slow;
    sec.so_rc = SL_EDENIED;
    assert_int_equal(deliver(&sec, "{\"sharedObjectConnect\":{\"name\":\"wb2\"}}"), 0);
    assert_non_null(strstr(sec.out, "\"message\":\"Fail\",\"code\":\"SharedObject.NoReadAccess\""));
    assert_null(strstr(sec.out, "Success"));
    slow.so_rc = SL_EPENDING;
    assert_int_equal(deliver(&slow, "{\"sharedObjectConnect\":{\"name\":\"wb2\"}}"), 0);
    assert_int_equal(deliver(&slow, "{\"sharedObjectSetProperty\":{\"name\":\"wb2\",\"key\":\"s\",\"value\":1}}"), 0);
    assert_string_equal(slow.out, "");
    assert_non_null(slow.so_done);
    slow.so_done(NULL, 0, NULL, slow.so_ud);
    assert_non_null(strstr(slow.out, "\"status\":\"SharedObject.Status.Connect\",\"message\":\"Success\""));
    assert_non_null(strstr(slow.out, "{\"subtype\":5,\"attribute\":\"s\"}"));
    assert_true(strstr(slow.out, "Success") < strstr(slow.out, "\"subtype\":5"));
    closed(&sec);
    closed(&slow);

    /* A second socket: admitted at once; it writes, the other hears it. */
    b.admit_rc = 0;
    assert_int_equal(deliver(&b, "{\"sharedObjectConnect\":{\"name\":\"board\"}}"), 0);
    a.out[0] = b.out[0] = '\0';
    assert_int_equal(deliver(&b, "{\"sharedObjectSetProperty\":{\"name\":\"board\",\"key\":\"k\",\"value\":[1]}}"), 0);
    assert_string_equal(a.out, "{\"data\":{\"name\":\"board\",\"type\":\"sharedobject\",\"version\":1,"
                               "\"events\":[{\"subtype\":4,\"attribute\":\"k\",\"value\":[1]}]}}\n");
    assert_string_equal(b.out, "{\"data\":{\"name\":\"board\",\"type\":\"sharedobject\",\"version\":1,"
                               "\"events\":[{\"subtype\":5,\"attribute\":\"k\"}]}}\n");
    a.out[0] = b.out[0] = '\0';
    assert_int_equal(deliver(&a, "{\"sharedObjectSend\":{\"name\":\"board\",\"method\":\"m\",\"message\":\"x\"}}"), 0);
    assert_non_null(strstr(b.out, "{\"subtype\":6,\"method\":\"m\",\"value\":[\"x\"]}"));
    assert_int_equal(deliver(&a, "{\"sharedObjectSetProperty\":{\"name\":\"board\",\"key\":\"k\"}}"), 0);
    assert_non_null(strstr(b.out, "\"version\":3,\"events\":[{\"subtype\":9,\"attribute\":\"k\"}]"));
    /* Limits and mistakes: errors, nothing applied. */
    a.out[0] = '\0';
    assert_int_equal(deliver(&a, "{\"sharedObjectSetProperty\":{\"name\":\"board\",\"key\":\"big\",\"value\":"
                                 "\"0123456789012345678901234567890123456789012345678901234567890123456789\"}}"), 0);
    assert_non_null(strstr(a.out, "\"code\":\"SharedObject.LimitExceeded\""));
    assert_int_equal(deliver(&a, "{\"sharedObjectSetProperty\":{\"name\":\"other\",\"key\":\"k\",\"value\":1}}"), 0);
    assert_non_null(strstr(a.out, "SharedObject.NotConnected"));
    assert_int_equal(deliver(&a, "{\"sharedObjectConnect\":{\"name\":\"\"}}"), 0);
    assert_non_null(strstr(a.out, "a shared object needs a name"));

    /* A refused socket: Fail, joins nothing. */
    bad.admit_rc = SL_EDENIED;
    assert_int_equal(deliver(&bad, "{\"sharedObjectConnect\":{\"name\":\"board\"}}"), 0);
    assert_non_null(strstr(bad.out, "\"message\":\"Fail\",\"code\":\"NetConnection.Connect.Rejected\""));
    void *sud;
    const sl_so_service_t *so = sl_service_get(&core, SL_SO_SERVICE, 1, 0, &sud);
    sl_so_stats_t st;
    assert_int_equal(so->get(sud, "live", "board", NULL, &st), 0);
    assert_int_equal(st.active_listeners, 2);

    /* Close: a leaves; b's socket closes: the object goes with its last subscriber. */
    b.out[0] = '\0';
    assert_int_equal(deliver(&a, "{\"sharedObjectClose\":{\"name\":\"board\"}}"), 0);
    assert_non_null(strstr(a.out, "SharedObject.Status.Disconnect"));
    assert_string_equal(b.out, "");
    closed(&a);
    closed(&bad);
    closed(&b);
    assert_int_equal(so->get(sud, "live", "board", NULL, NULL), SL_ENOTFOUND);

    /* A client still in at stop leaves without an event; the keys are removed. */
    static sl_wsig_conn_t late;
    assert_int_equal(deliver(&late, "{\"sharedObjectConnect\":{\"name\":\"x\"}}"), 0);
    sl_plugins_stop(mod);
    assert_int_equal(g_fake.removed, 5);
    sl_service_unregister(&core, SL_WEBRTC_WS_SVC_NAME, &g_fake_svc);
    uv_run(&loop, UV_RUN_DEFAULT);
    sl_plugins_free(mod);
    sl_admit_cleanup(&core);
    sl_core_cleanup(&core);
    assert_int_equal(uv_loop_close(&loop), 0);
    sl_config_cleanup(&cfg);
    assert_int_equal(sl_alloc_blocks(), blocks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_so_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
