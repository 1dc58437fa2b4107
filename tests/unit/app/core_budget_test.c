/*
 * Connection budgets of the core (src/app/core.c), with fake sessions in
 * place of protocol connections: the per-address limit counts and frees
 * per address, the pending share displaces the oldest pending session
 * (kicked quietly) and admitted sessions are never displaced, the total
 * refuses, every excess is counted per budget and the server-wide log
 * gate opens once per interval; and sl_query_is_safe() refuses control
 * bytes raw or percent-encoded (%00 above all).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "app/core.h"
#include "base/alloc.h"
#include "sluice/errors.h"
#include "builtin_config.h"

#define N_FAKE 16

typedef struct {
    sl_session_t sess;  /* first, as in every protocol */
    int kicked;         /* 1 kicked, 2 kicked quietly */
    int used;           /* registered in this test */
} fake_t;

static fake_t g_fake[N_FAKE];
static uv_loop_t g_loop;

/* A protocol's kick: close at once, which unregisters the session. */
static void fake_kick(sl_session_t *s, const char *reason)
{
    (void)reason;
    fake_t *f = (fake_t *)s;
    f->kicked = 1 + s->close_quietly;
    sl_session_unregister(s->core, s);
}

static const sl_session_ops_t fake_ops = {.kick = fake_kick};

/* Registers fake i from addr and runs the accept budgets; returns their answer. */
static int fake_accept(sl_core_t *core, int i, const char *addr)
{
    const char *why = NULL;
    memset(&g_fake[i], 0, sizeof g_fake[i]);
    g_fake[i].used = 1;
    sl_session_register(core, &g_fake[i].sess, &fake_ops, "test");
    snprintf(g_fake[i].sess.remote_addr, sizeof g_fake[i].sess.remote_addr, "%s", addr);
    int rc = sl_session_accept(core, &g_fake[i].sess, &why);
    if (rc) {
        assert_non_null(why);
        sl_session_unregister(core, &g_fake[i].sess);
    }
    return rc;
}

static void close_all(sl_core_t *core)
{
    for (int i = 0; i < N_FAKE; i++) {
        if (g_fake[i].used && !g_fake[i].kicked)
            sl_session_unregister(core, &g_fake[i].sess); /* idempotent */
        g_fake[i].used = 0;
    }
}

static void test_per_address(void **state)
{
    (void)state;
    sl_config_t cfg;
    sl_core_t core;
    sl_config_defaults(&cfg);
    cfg.server_max_connections_per_address = 2;
    assert_int_equal(sl_core_init(&core, &g_loop, &cfg), 0);
    assert_int_equal(fake_accept(&core, 0, "10.0.0.1"), 0);
    assert_int_equal(fake_accept(&core, 1, "10.0.0.1"), 0);
    assert_int_equal(fake_accept(&core, 2, "10.0.0.1"), SL_EBUSY);
    assert_int_equal(fake_accept(&core, 3, "10.0.0.1"), SL_EBUSY);
    assert_int_equal(fake_accept(&core, 4, "10.0.0.2"), 0); /* another address */
    assert_int_equal(core.budget_exceeded[SL_BUDGET_CONNECTIONS_PER_ADDRESS], 2);
    /* One closes: the address has room again. */
    sl_session_unregister(&core, &g_fake[0].sess);
    assert_int_equal(fake_accept(&core, 5, "10.0.0.1"), 0);
    close_all(&core);
    assert_int_equal(core.addr_conns.n, 0); /* entries go with their last connection */
    assert_int_equal(core.n_sessions, 0);
    assert_int_equal(core.n_pending, 0);
    sl_core_cleanup(&core);
    sl_config_cleanup(&cfg);
}

static void test_pending_share_displaces_oldest(void **state)
{
    (void)state;
    sl_config_t cfg;
    sl_core_t core;
    sl_config_defaults(&cfg);
    cfg.server_max_connections = 8;
    cfg.server_max_pending_connections = 3;
    assert_int_equal(sl_core_init(&core, &g_loop, &cfg), 0);
    assert_int_equal(fake_accept(&core, 0, "10.0.0.1"), 0);
    sl_session_admitted(&g_fake[0].sess); /* a client: never displaced */
    for (int i = 1; i <= 3; i++)
        assert_int_equal(fake_accept(&core, i, "10.0.0.1"), 0);
    assert_int_equal(core.n_pending, 3);
    /* The fourth pending one displaces the oldest pending (1), quietly. */
    assert_int_equal(fake_accept(&core, 4, "10.0.0.1"), 0);
    assert_int_equal(g_fake[1].kicked, 2);
    assert_int_equal(g_fake[0].kicked, 0);
    assert_int_equal(core.n_pending, 3);
    assert_int_equal(fake_accept(&core, 5, "10.0.0.1"), 0);
    assert_int_equal(g_fake[2].kicked, 2);
    assert_int_equal(core.budget_exceeded[SL_BUDGET_PENDING_CONNECTIONS], 2);
    close_all(&core);
    assert_int_equal(core.n_pending, 0);
    sl_core_cleanup(&core);
    sl_config_cleanup(&cfg);
}

static void test_total_and_default_share(void **state)
{
    (void)state;
    sl_config_t cfg;
    sl_core_t core;
    sl_config_defaults(&cfg);
    cfg.server_max_connections = 4; /* pending share: a quarter, 1 */
    assert_int_equal(sl_core_init(&core, &g_loop, &cfg), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(fake_accept(&core, i, "10.0.0.1"), 0);
        sl_session_admitted(&g_fake[i].sess);
    }
    assert_int_equal(fake_accept(&core, 4, "10.0.0.1"), SL_EBUSY);
    assert_int_equal(core.budget_exceeded[SL_BUDGET_CONNECTIONS], 1);
    sl_session_unregister(&core, &g_fake[3].sess);
    assert_int_equal(fake_accept(&core, 5, "10.0.0.1"), 0);  /* pending: 1 */
    sl_session_unregister(&core, &g_fake[2].sess);
    assert_int_equal(fake_accept(&core, 6, "10.0.0.1"), 0);  /* displaces 5 */
    assert_int_equal(g_fake[5].kicked, 2);
    close_all(&core);
    sl_core_cleanup(&core);
    sl_config_cleanup(&cfg);
}

static void test_log_gate(void **state)
{
    (void)state;
    sl_config_t cfg;
    sl_core_t core;
    uint64_t unlogged = 99;
    sl_config_defaults(&cfg);
    assert_int_equal(sl_core_init(&core, &g_loop, &cfg), 0);
    assert_int_equal(sl_core_budget_exceeded(&core, SL_BUDGET_RTMP_PARTIAL, &unlogged), 1);
    assert_int_equal(unlogged, 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(sl_core_budget_exceeded(&core, SL_BUDGET_RTMP_PARTIAL, NULL), 0);
    assert_int_equal(core.budget_exceeded[SL_BUDGET_RTMP_PARTIAL], 6);
    assert_string_equal(sl_budget_name(SL_BUDGET_RTMP_PARTIAL), "rtmp_partial");
    assert_string_equal(sl_budget_name(SL_BUDGET_CONNECTIONS_PER_ADDRESS), "connections_per_address");
    for (int b = 0; b < SL_BUDGET_COUNT; b++)
        assert_non_null(sl_budget_name((sl_budget_t)b)); /* every kind is named */
    sl_core_cleanup(&core);
    sl_config_cleanup(&cfg);
}

static void test_query_is_safe(void **state)
{
    (void)state;
    assert_true(sl_query_is_safe(NULL));
    assert_true(sl_query_is_safe(""));
    assert_true(sl_query_is_safe("username=a&password=b%20c%2B%zz%4"));
    assert_false(sl_query_is_safe("password=secret%00x"));
    assert_false(sl_query_is_safe("password=secret%0A"));
    assert_false(sl_query_is_safe("password=secret%0d"));
    assert_false(sl_query_is_safe("token=a%7Fb"));
    assert_false(sl_query_is_safe("token=a\tb"));
    assert_true(sl_query_is_safe("token=%C3%A9")); /* UTF-8 is not a control byte */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_address),
        cmocka_unit_test(test_pending_share_displaces_oldest),
        cmocka_unit_test(test_total_and_default_share),
        cmocka_unit_test(test_log_gate),
        cmocka_unit_test(test_query_is_safe),
    };
    uv_loop_init(&g_loop);
    int64_t before = sl_alloc_bytes();
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (sl_alloc_bytes() != before) {
        fprintf(stderr, "leak: %lld bytes\n", (long long)(sl_alloc_bytes() - before));
        return 1;
    }
    assert_int_equal(uv_loop_close(&g_loop), 0);
    return rc;
}
