/*
 * The RPC router (src/modules/rpc) on a real loop, started through the
 * extension host like in the server, with handlers registered in the "rpc"
 * service by the test. What is proved here: an answer never reaches the
 * requester inside route (a handler replying at once is delivered from the
 * loop); a handler that never replies is timed out, and its late reply
 * afterwards is harmless; a handler's error text becomes the reason; a
 * method without a handler or business server is refused at once; the
 * per-client budget refuses the call over it, and the server's counts a
 * timed-out call until its handler replies; server -> client invoke of an
 * unknown client is refused; stopping answers the waiting calls
 * SL_ECLOSED. The loop closes with no handle left and nothing stays
 * allocated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h>

#include "app/core.h"
#include "app/services.h"
#include "app/svc/rpc.h"
#include "app/svc/rpc_router.h"
#include "base/alloc.h"
#include "base/config.h"
#include "builtin_config.h"
#include "modules/plugins/plugins.h"
#include "modules/rpc/rpc.h"
#include "sluice/errors.h"

typedef struct {
    int calls;
    int status;
    char result[256];
    char reason[256];
} answer_t;

static void on_answer(void *ud, int status, const char *result, const char *reason)
{
    answer_t *a = ud;
    a->calls++;
    a->status = status;
    snprintf(a->result, sizeof a->result, "%s", result ? result : "");
    snprintf(a->reason, sizeof a->reason, "%s", reason ? reason : "");
}

static int h_sync(void *ud, const char *method, const char *args, sl_rpc_reply_cb reply, void *rud)
{
    (void)ud, (void)method;
    reply(rud, 0, args);
    return 0;
}

static int h_err(void *ud, const char *method, const char *args, sl_rpc_reply_cb reply, void *rud)
{
    (void)ud, (void)method, (void)args;
    reply(rud, SL_EINVAL, "bad seat");
    return 0;
}

/* Keeps the reply for later (or never). */
typedef struct {
    sl_rpc_reply_cb reply;
    void *rud;
} kept_t;

static int h_keep(void *ud, const char *method, const char *args, sl_rpc_reply_cb reply, void *rud)
{
    (void)method, (void)args;
    kept_t *k = ud;
    k->reply = reply;
    k->rud = rud;
    return 0;
}

/* Runs the loop until a->calls reaches n (bounded by the loop's own timers). */
static void run_until(uv_loop_t *loop, answer_t *a, int n)
{
    for (int i = 0; i < 10000 && a->calls < n; i++)
        uv_run(loop, UV_RUN_ONCE);
    assert_int_equal(a->calls, n);
}

static void test_router(void **state)
{
    (void)state;
    int64_t bytes0 = sl_alloc_bytes();
    static const char yml[] = "rpc: {max_calls: 2}\n"
                              "apps:\n  live: {rpc_timeout: 100ms, rpc_max_calls_per_client: 1}\n";
    sl_config_t cfg;
    uv_loop_t loop;
    sl_core_t core;
    sl_plugins_t *st = NULL;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    assert_int_equal(sl_config_load_string(&cfg, yml, sizeof yml - 1, "t.yml", NULL, NULL), 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(sl_core_init(&core, &loop, &cfg), 0);
    static const sl_builtin_t *const builtins[] = {&sl_rpc_builtin, NULL};
    assert_int_equal(sl_plugins_check(&cfg, builtins, NULL, NULL), 0);
    assert_int_equal(sl_plugins_start(&core, NULL, builtins, &st), 0);

    void *rud = NULL, *hud = NULL;
    const sl_svc_rpc_router_t *r =
        sl_service_get(&core, SL_SVC_RPC_ROUTER, SL_SVC_RPC_ROUTER_MAJOR, 0, &rud);
    const sl_rpc_service_t *rpc = sl_service_get(&core, SL_RPC_SERVICE, 1, 0, &hud);
    assert_non_null(r);
    assert_non_null(rpc);
    kept_t never = {0}, late = {0}, late2 = {0};
    assert_int_equal(rpc->add(hud, "sync", "t", h_sync, NULL), 0);
    assert_int_equal(rpc->add(hud, "err", "t", h_err, NULL), 0);
    assert_int_equal(rpc->add(hud, "never", "t", h_keep, &never), 0);
    assert_int_equal(rpc->add(hud, "late", "t", h_keep, &late), 0);
    assert_int_equal(rpc->add(hud, "late2", "t", h_keep, &late2), 0);

    /* A handler that replies inside the call: delivered from the loop. */
    answer_t a = {0};
    sl_rpc_route_req_t q = {.app = "live", .method = "sync", .params_json = "[1,\"x\"]"};
    assert_int_equal(r->route(rud, &q, on_answer, &a), 0);
    assert_int_equal(a.calls, 0);
    run_until(&loop, &a, 1);
    assert_int_equal(a.status, 0);
    assert_string_equal(a.result, "[1,\"x\"]");

    /* The handler's error text is the reason. */
    answer_t e = {0};
    q.method = "err";
    assert_int_equal(r->route(rud, &q, on_answer, &e), 0);
    run_until(&loop, &e, 1);
    assert_int_equal(e.status, SL_EIO);
    assert_string_equal(e.reason, "bad seat");

    /* Nothing answers: refused now. Params must be an array for the business server only. */
    q.method = "nope";
    assert_int_equal(r->route(rud, &q, on_answer, &e), SL_ENOTFOUND);
    q.app = "nosuchapp";
    assert_int_equal(r->route(rud, &q, on_answer, &e), SL_ENOTFOUND);
    q.app = "live";

    /* Timeout, then the late reply is dropped; the per-client budget holds meanwhile. */
    answer_t t = {0}, busy = {0};
    sl_rpc_route_req_t qc = {.app = "live", .session_id = "S1", .proto = "rtmp", .method = "late"};
    assert_int_equal(r->route(rud, &qc, on_answer, &t), 0);
    assert_int_equal(r->route(rud, &qc, on_answer, &busy), SL_EBUSY);
    run_until(&loop, &t, 1);
    assert_int_equal(t.status, UV_ETIMEDOUT);
    assert_non_null(late.reply);
    late.reply(late.rud, 0, "\"too late\"");
    assert_int_equal(t.calls, 1);
    assert_int_equal(busy.calls, 0);

    /* Server -> client: no such client. */
    assert_int_equal(r->invoke_client(rud, "NOSUCH", "m", "[]", 1000, on_answer, &e), SL_ENOTFOUND);
    assert_int_equal(r->invoke_client(rud, "NOSUCH", "m", "[]", 0, on_answer, &e), SL_EINVAL);

    /* A timed-out call whose handler has not replied still counts against rpc.max_calls
     * (2 here): with one waiting too, a third is refused until the late reply frees it. */
    answer_t x = {0}, s = {0}, y = {0};
    q.method = "late2";
    assert_int_equal(r->route(rud, &q, on_answer, &x), 0);
    run_until(&loop, &x, 1);
    assert_int_equal(x.status, UV_ETIMEDOUT);
    q.method = "never";
    assert_int_equal(r->route(rud, &q, on_answer, &s), 0); /* stop answers it, below */
    q.method = "sync";
    assert_int_equal(r->route(rud, &q, on_answer, &y), SL_EBUSY);
    late2.reply(late2.rud, 0, "1");
    uv_run(&loop, UV_RUN_NOWAIT); /* its timer's close callback, if still due, frees it */
    assert_int_equal(r->route(rud, &q, on_answer, &y), 0);
    run_until(&loop, &y, 1);
    assert_int_equal(y.status, 0);

    /* Stop answers what waits: the call on a handler that never replies. */
    sl_plugins_stop(st);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.status, SL_ECLOSED);
    assert_null(sl_service_get(&core, SL_SVC_RPC_ROUTER, 1, 0, NULL));
    uv_run(&loop, UV_RUN_DEFAULT);
    sl_plugins_free(st);
    sl_core_cleanup(&core);
    assert_int_equal(uv_loop_close(&loop), 0);
    sl_config_cleanup(&cfg);
    assert_int_equal(sl_alloc_bytes(), bytes0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_router),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
