/*
 * The autoscaler's pure parts: the expression language (as_expr.c: every
 * operator, aggregate and metric, precedence, the caps, each refusal), the
 * NodeGroupConfig reader (as_group.c: Red5's shape, defaults, refusals, the
 * rule state round trip), the planner (as_plan.c: min, max, cool-down,
 * pause, launches in flight, out/in expressions, manualscale, the least
 * loaded victims), and the process
 * driver's template and the webhook signature (as_driver.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/alloc.h"
#include "cluster/autoscale/as_driver.h"
#include "cluster/autoscale/as_expr.h"
#include "cluster/autoscale/as_group.h"
#include "cluster/autoscale/as_plan.h"
#include "sluice/errors.h"

static sl_cluster_node_t g_nodes[4];
static const sl_cluster_node_t *g_ptrs[4];

static void set_nodes(void)
{
    memset(g_nodes, 0, sizeof g_nodes);
    for (int i = 0; i < 4; i++) {
        snprintf(g_nodes[i].id, sizeof g_nodes[i].id, "edge-%d", i);
        snprintf(g_nodes[i].role, sizeof g_nodes[i].role, "edge");
        g_nodes[i].connections = (uint32_t)(10 * (i + 1)); /* 10 20 30 40 */
        g_nodes[i].subscribers = (uint32_t)(i + 1);        /* 1 2 3 4 */
        g_nodes[i].cpu_load = 20.0 * (i + 1);              /* 20 40 60 80 */
        g_nodes[i].max_connections = 100;
        g_ptrs[i] = &g_nodes[i];
    }
}

static double ev(const char *text, size_t n)
{
    sl_as_expr_t e;
    const char *why;
    size_t at;
    int rc = sl_as_expr_parse(text, strlen(text), &e, &why, &at);
    if (rc)
        fail_msg("'%s' refused: %s at %zu", text, why, at);
    return sl_as_expr_eval(&e, g_ptrs, n);
}

static int refused(const char *text, int want_rc)
{
    sl_as_expr_t e;
    const char *why = NULL;
    size_t at;
    int rc = sl_as_expr_parse(text, strlen(text), &e, &why, &at);
    if (rc != want_rc || !why)
        fail_msg("'%s': rc %d (wanted %d), why %s", text, rc, want_rc, why ? why : "(none)");
    return 1;
}

static void test_expr_values(void **state)
{
    (void)state;
    set_nodes();
    assert_true(ev("avg(cpu.process.load)", 4) == 50.0);
    assert_true(ev("max(connections)", 4) == 40.0);
    assert_true(ev("min(connections)", 4) == 10.0);
    assert_true(ev("sum(subscribers)", 4) == 10.0);
    assert_true(ev("count()", 3) == 3.0);
    assert_true(ev("count(connections)", 2) == 2.0);
    assert_true(ev("avg(connections.load)", 4) == 25.0);
    assert_true(ev("avg(cpu.process.load) > 95.0", 4) == 0.0);
    assert_true(ev("avg(cpu.process.load) > 45", 4) == 1.0);
    assert_true(ev("avg(connections) > 3 && max(cpu) >= 80", 4) == 1.0);
    assert_true(ev("avg(connections) > 300 || min(subscribers) == 1", 4) == 1.0);
    assert_true(ev("!(avg(connections) > 3)", 4) == 0.0);
    assert_true(ev("1 + 2 * 3", 0) == 7.0);
    assert_true(ev("(1 + 2) * 3", 0) == 9.0);
    assert_true(ev("10 - 4 - 3", 0) == 3.0);           /* left to right */
    assert_true(ev("-2 * -3", 0) == 6.0);
    assert_true(ev("sum(connections) / count() < 30", 4) == 1.0);
    assert_true(ev("5 / 0", 0) == 0.0);                /* no inf */
    assert_true(ev("1 < 2 && 2 <= 2 && 3 != 4 && !false && true", 0) == 1.0);
    assert_true(ev("1.5e2 == 150", 0) == 1.0);
    /* aggregates over no node are 0 (count() is 0 too) */
    assert_true(ev("avg(connections)", 0) == 0.0);
    assert_true(ev("count()", 0) == 0.0);
    /* && and || short-circuit: the right side is not needed */
    assert_true(ev("0 && (1/0 > 1)", 0) == 0.0);
    /* blank text: the empty expression, never true */
    sl_as_expr_t e;
    const char *why;
    size_t at;
    assert_int_equal(sl_as_expr_parse("  ", 2, &e, &why, &at), 0);
    assert_false(sl_as_expr_true(&e, g_ptrs, 4));
}

static void test_expr_refusals(void **state)
{
    (void)state;
    refused("connections > 3", SL_EINVAL);       /* bare metric */
    refused("avg(nope) > 3", SL_EINVAL);          /* unknown metric */
    refused("median(connections)", SL_EINVAL);    /* unknown function */
    refused("avg(connections > 3", SL_EINVAL);    /* missing ')' */
    refused("avg(connections) >", SL_EINVAL);     /* missing operand */
    refused("1 2", SL_EINVAL);                    /* trailing text */
    refused("1 | 2", SL_EINVAL);
    refused("1 & 2", SL_EINVAL);
    refused("avg connections", SL_EINVAL);
    refused("1e999", SL_EINVAL);                  /* not finite */
    refused("((((((((((((((((((1))))))))))))))))))", SL_EDEPTH);
    char big[SL_AS_EXPR_TEXT_MAX + 2];
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    refused(big, SL_ETOOBIG);
    /* too many terms: 1+1+1... past the node array */
    char many[SL_AS_EXPR_TEXT_MAX];
    size_t n = 0;
    for (int i = 0; i < 60; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "%s1", i ? "+" : "");
    refused(many, SL_ETOOBIG);
    /* a NUL inside the given length */
    sl_as_expr_t e;
    const char *why;
    size_t at;
    assert_int_equal(sl_as_expr_parse("1\0 > 0", 6, &e, &why, &at), SL_EINVAL);
}

static const char *GROUP_JSON =
    "{\"name\":\"ng1\",\"cloudPlatform\":\"DOCKER\",\"maxSubscribers\":500,"
    "\"roles\":{\"origin\":{\"name\":\"origin\",\"capabilities\":[\"PUBLISH\"]},"
    "\"edge\":{\"name\":\"edge\",\"parentRoleName\":\"origin\",\"capabilities\":[\"SUBSCRIBE\"]}},"
    "\"groups\":{\"default\":{\"subGroupName\":\"default\",\"rulesByRole\":{"
    "\"origin\":{\"nodeRoleName\":\"origin\",\"min\":1,\"max\":1},"
    "\"edge\":{\"nodeRoleName\":\"edge\",\"min\":1,\"max\":3,\"increment\":2,\"coolDownPeriod\":5000,"
    "\"outExpression\":\"avg(connections) > 3\",\"inExpression\":\"avg(connections) < 1\"}}}}}";

static int gparse(const char *json, sl_as_group_t *g, const char **why)
{
    return sl_as_group_parse(json, strlen(json), 60000, g, why);
}

static void test_group_parse(void **state)
{
    (void)state;
    static sl_as_group_t g;
    const char *why;
    assert_int_equal(gparse(GROUP_JSON, &g, &why), 0);
    assert_string_equal(g.name, "ng1");
    assert_string_equal(g.platform, "DOCKER");
    assert_int_equal(g.max_subscribers, 500);
    assert_int_equal(g.n_roles, 2);
    assert_int_equal(g.n_subs, 1);
    const sl_as_rule_t *r = sl_as_group_rule(&g, "default", "edge");
    assert_non_null(r);
    assert_int_equal(r->min, 1);
    assert_int_equal(r->max, 3);
    assert_int_equal(r->increment, 2);
    assert_int_equal(r->cooldown_ms, 5000);
    assert_true(r->out_expr.root >= 0);
    r = sl_as_group_rule(&g, "default", "origin");
    assert_non_null(r);
    assert_int_equal(r->increment, 1);          /* default */
    assert_int_equal(r->cooldown_ms, 60000);    /* default */
    assert_true(r->out_expr.root < 0);          /* no expression: never */
    assert_null(sl_as_group_rule(&g, "eu", "edge"));
    /* arrays work too; scalingPaused */
    assert_int_equal(gparse("{\"name\":\"a-b_c\",\"scalingPaused\":true,\"groups\":[{\"subGroupName\":"
                            "\"eu\",\"rulesByRole\":[{\"nodeRoleName\":\"edge\",\"min\":0,\"max\":2}]}]}",
                            &g, &why), 0);
    assert_true(g.paused);
    assert_non_null(sl_as_group_rule(&g, "eu", "edge"));
}

static void test_group_refusals(void **state)
{
    (void)state;
    static sl_as_group_t g;
    static const char *bad[] = {
        "[]",
        "{}",
        "{\"name\":\"seventeen-chars-x\"}",
        "{\"name\":\"a b\"}",
        "{\"name\":\"ng\",\"groups\":{\"d\":{\"rulesByRole\":{\"edge\":{\"min\":3,\"max\":2}}}}}",
        "{\"name\":\"ng\",\"groups\":{\"d\":{\"rulesByRole\":{\"edge\":{\"min\":-1}}}}}",
        "{\"name\":\"ng\",\"groups\":{\"d\":{\"rulesByRole\":{\"edge\":{\"max\":201}}}}}",
        "{\"name\":\"ng\",\"groups\":{\"d\":{\"rulesByRole\":{\"edge\":{\"increment\":0}}}}}",
        "{\"name\":\"ng\",\"groups\":{\"d\":{\"rulesByRole\":{\"edge\":{\"outExpression\":\"x >\"}}}}}",
        "{\"name\":\"ng\",\"groups\":{\"d\":{\"rulesByRole\":{\"edge\":{\"outExpression\":5}}}}}",
        "{\"name\":\"ng\",\"roles\":{\"origin\":{}},\"groups\":{\"d\":{\"rulesByRole\":{\"edge\":{}}}}}",
        "{\"name\":\"ng\",\"roles\":{\"e\":{\"capabilities\":[\"FLY\"]}}}",
        "{\"name\":\"ng\",\"scalingPaused\":\"yes\"}",
        "{\"name\":\"ng\",\"name\":\"ng2\"}",
        "{\"name\":\"ng\",\"maxSubscribers\":-5}",
        "{\"name\":\"ng\",\"roles\":{\"a\":{},\"b\":{},\"c\":{},\"d\":{},\"e\":{},\"f\":{},\"g\":{}}}",
        "{\"name\":\"ng\",\"groups\":[{\"name\":\"a\"},{\"name\":\"a\"}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = NULL;
        if (gparse(bad[i], &g, &why) != SL_EINVAL || !why)
            fail_msg("accepted or no reason: %s", bad[i]);
    }
    char *big = sl_malloc(SL_AS_GROUP_JSON_MAX + 2);
    memset(big, ' ', SL_AS_GROUP_JSON_MAX + 1);
    big[SL_AS_GROUP_JSON_MAX + 1] = '\0';
    const char *why;
    assert_int_equal(gparse(big, &g, &why), SL_ETOOBIG);
    sl_free(big);
}

static void test_state_roundtrip(void **state)
{
    (void)state;
    sl_as_state_t st, back;
    sl_as_state_parse(NULL, &st);
    assert_int_equal(st.manual, -1);
    assert_int_equal(st.gen, 0);
    st.gen = 7;
    st.last_action_ms = 1700000000000ULL;
    st.next_seq = 3;
    st.manual = 2;
    st.n_pending = 1;
    snprintf(st.pending[0].id, sizeof st.pending[0].id, "ng1-edge-3");
    st.pending[0].since_ms = 5;
    st.n_draining = 1;
    snprintf(st.draining[0].id, sizeof st.draining[0].id, "ng1-edge-1");
    st.draining[0].hard = 1;
    char *js = sl_as_state_dump(&st);
    assert_non_null(js);
    sl_as_state_parse(js, &back);
    sl_free(js);
    assert_int_equal(back.gen, 7);
    assert_int_equal(back.last_action_ms, 1700000000000ULL);
    assert_int_equal(back.next_seq, 3);
    assert_int_equal(back.manual, 2);
    assert_int_equal(back.n_pending, 1);
    assert_string_equal(back.pending[0].id, "ng1-edge-3");
    assert_int_equal(back.n_draining, 1);
    assert_true(back.draining[0].hard);
    sl_as_state_parse("not json", &back);       /* bad: fresh */
    assert_int_equal(back.gen, 0);
    assert_int_equal(back.manual, -1);
}

static void plan(const sl_as_rule_t *r, size_t n_active, int pending, int draining, int manual,
                 uint64_t now, uint64_t last, int paused, sl_as_plan_out_t *out)
{
    sl_as_plan_in_t in = {.rule = r, .paused = paused, .active = g_ptrs, .n_active = n_active,
                          .n_pending = pending, .n_draining = draining, .manual = manual,
                          .now_ms = now, .last_action_ms = last};
    sl_as_plan(&in, out);
}

static void test_plan(void **state)
{
    (void)state;
    static sl_as_group_t g;
    const char *why;
    set_nodes();
    assert_int_equal(gparse(GROUP_JSON, &g, &why), 0);
    const sl_as_rule_t *r = sl_as_group_rule(&g, "default", "edge"); /* 1..3 +2, out >3, in <1 */
    sl_as_plan_out_t o;
    /* below min: out to min at once (cool-down or pause do not hold it) */
    plan(r, 0, 0, 0, -1, 1000, 999, 1, &o);
    assert_int_equal(o.action, SL_AS_SCALE_OUT);
    assert_int_equal(o.count, 1);
    assert_string_equal(o.reason, "below min");
    /* a launch in flight counts toward min */
    plan(r, 0, 1, 0, -1, 1000, 0, 0, &o);
    assert_int_equal(o.action, SL_AS_NONE);
    /* out expression (avg connections 10 > 3): +increment, capped at max */
    plan(r, 1, 0, 0, -1, 100000, 0, 0, &o);
    assert_int_equal(o.action, SL_AS_SCALE_OUT);
    assert_int_equal(o.count, 2);
    assert_string_equal(o.reason, "outExpression");
    plan(r, 2, 0, 0, -1, 100000, 0, 0, &o);
    assert_int_equal(o.count, 1);               /* 2 + 2 > max 3 */
    plan(r, 3, 0, 0, -1, 100000, 0, 0, &o);
    assert_int_equal(o.action, SL_AS_NONE);     /* at max */
    /* cool-down, pause, launches hold the expressions */
    plan(r, 1, 0, 0, -1, 100000, 96000, 0, &o);
    assert_int_equal(o.action, SL_AS_NONE);
    assert_string_equal(o.reason, "cool-down");
    plan(r, 1, 0, 0, -1, 100000, 94000, 0, &o);
    assert_int_equal(o.action, SL_AS_SCALE_OUT);
    plan(r, 1, 0, 0, -1, 100000, 0, 1, &o);
    assert_string_equal(o.reason, "paused");
    plan(r, 1, 1, 0, -1, 100000, 0, 0, &o);
    assert_string_equal(o.reason, "launching");
    /* above max: in, least loaded first (even when paused) */
    static sl_as_group_t g2;
    assert_int_equal(gparse("{\"name\":\"g\",\"groups\":{\"d\":{\"rulesByRole\":{\"edge\":{\"min\":1,"
                            "\"max\":2,\"inExpression\":\"avg(subscribers) < 3\"}}}}}", &g2, &why), 0);
    const sl_as_rule_t *r2 = sl_as_group_rule(&g2, "d", "edge");
    g_nodes[0].subscribers = 9;                 /* edge-1 (2 subs) is now the lightest */
    plan(r2, 4, 0, 0, -1, 100000, 0, 1, &o);
    assert_int_equal(o.action, SL_AS_SCALE_IN);
    assert_int_equal(o.count, 2);
    assert_string_equal(o.reason, "above max");
    assert_int_equal(o.victims[0], 1);
    assert_int_equal(o.victims[1], 2);
    /* in expression: avg subs of edge-1, edge-2 = 2.5 < 3: one goes, the lighter */
    g_ptrs[0] = &g_nodes[1];
    g_ptrs[1] = &g_nodes[2];
    plan(r2, 2, 0, 0, -1, 100000, 0, 0, &o);
    assert_int_equal(o.action, SL_AS_SCALE_IN);
    assert_int_equal(o.count, 1);
    assert_int_equal(o.victims[0], 0);
    assert_string_equal(o.reason, "inExpression");
    /* not while a drain is in progress, never below min */
    plan(r2, 2, 0, 1, -1, 100000, 0, 0, &o);
    assert_int_equal(o.action, SL_AS_NONE);
    plan(r2, 1, 0, 0, -1, 100000, 0, 0, &o);
    assert_int_equal(o.action, SL_AS_NONE);
    set_nodes();
    /* manualscale: to the target within min..max, no cool-down */
    plan(r, 1, 0, 0, 3, 100000, 99999, 1, &o);
    assert_int_equal(o.action, SL_AS_SCALE_OUT);
    assert_int_equal(o.count, 2);
    assert_string_equal(o.reason, "manualscale");
    plan(r, 3, 0, 0, 1, 100000, 99999, 0, &o);
    assert_int_equal(o.action, SL_AS_SCALE_IN);
    assert_int_equal(o.count, 2);
    assert_int_equal(o.victims[0], 0);          /* edge-0: the least loaded */
    plan(r, 2, 0, 0, 2, 100000, 0, 0, &o);
    assert_string_equal(o.reason, "manualscale reached");
    plan(r, 1, 0, 0, 9, 100000, 0, 0, &o);      /* clamped to max 3 */
    assert_int_equal(o.count, 2);
    assert_string_equal(sl_as_action_name(SL_AS_SCALE_OUT), "scale_out");
}

static void test_template_and_sign(void **state)
{
    (void)state;
    const char *vars[] = {"node_id", "ng1-edge-1", "rtmp_port", "21000", NULL, NULL};
    char *s = sl_as_template_fill("cluster:\n  node_id: {node_id}\nrtmp:\n  port: {rtmp_port}\n"
                                  "x: {unknown} {node_id\n", vars);
    assert_non_null(s);
    assert_string_equal(s, "cluster:\n  node_id: ng1-edge-1\nrtmp:\n  port: 21000\n"
                           "x: {unknown} {node_id\n");
    sl_free(s);
    char sig[72];
    assert_int_equal(sl_as_sign("k", "1700000000", "{}", sig), 0);
    assert_int_equal(strncmp(sig, "sha256=", 7), 0);
    assert_int_equal(strlen(sig), 7 + 64);
    char again[72];
    sl_as_sign("k", "1700000000", "{}", again);
    assert_string_equal(sig, again);
    sl_as_sign("k", "1700000001", "{}", again);
    assert_string_not_equal(sig, again);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expr_values),
        cmocka_unit_test(test_expr_refusals),
        cmocka_unit_test(test_group_parse),
        cmocka_unit_test(test_group_refusals),
        cmocka_unit_test(test_state_roundtrip),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_template_and_sign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
