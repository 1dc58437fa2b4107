/*
 * Fuzz target: the autoscaler's untrusted text. The same bytes go to the
 * scale-rule expression parser and evaluator (as_expr.c; rules come from
 * the admin API), the NodeGroupConfig reader (as_group.c), the rule state
 * reader (a setting anyone with Redis access could write), the SM 4.0
 * launch configuration body (as_group.c).
 * Nothing may read out of bounds or loop; a refusal
 * says why; what parses evaluates to a finite number.
 */
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "cluster/autoscale/as_expr.h"
#include "cluster/autoscale/as_group.h"
#include "sluice/errors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sl_as_expr_t e;
    static sl_as_group_t g;
    static sl_cluster_node_t nodes[3];
    const sl_cluster_node_t *ptrs[3] = {&nodes[0], &nodes[1], &nodes[2]};
    const char *why = NULL;
    size_t at = 0;
    for (int i = 0; i < 3; i++) {
        nodes[i].connections = (uint32_t)(i * 7);
        nodes[i].cpu_load = i * 33.3;
        nodes[i].max_connections = (uint32_t)i; /* 0: connections.load's division guard */
    }
    int rc = sl_as_expr_parse((const char *)data, size, &e, &why, &at);
    if (rc == 0) {
        for (size_t n = 0; n <= 3; n++)
            if (!isfinite(sl_as_expr_eval(&e, ptrs, n)))
                __builtin_trap();
    } else if (!why || at > size) {
        __builtin_trap();
    }
    rc = sl_as_group_parse((const char *)data, size, 60000, &g, &why);
    if (rc && !why)
        __builtin_trap();
    if (rc == 0 && (g.n_subs > SL_AS_SUBGROUPS_MAX || g.n_roles > SL_AS_ROLES_MAX ||
                    !sl_as_group_name_ok(g.name)))
        __builtin_trap();
    for (int s = 0; rc == 0 && s < g.n_subs; s++)
        for (int r = 0; r < g.subs[s].n_rules; r++) {
            const sl_as_rule_t *rule = &g.subs[s].rules[r];
            if (rule->min > rule->max || rule->increment < 1)
                __builtin_trap();
            sl_as_expr_true(&rule->out_expr, ptrs, 3);
            sl_as_expr_true(&rule->in_expr, ptrs, 3);
        }
    json_t *lc = sl_as_launch_parse((const char *)data, size, NULL, &why);
    if (lc) {
        /* accepted: a name that passes the URL check and 1..8 targets */
        const char *n = json_string_value(json_object_get(json_object_get(lc, "launchconfig"), "name"));
        if (!n || !sl_as_launch_name_ok(n))
            __builtin_trap();
        json_decref(lc);
    } else if (!why) {
        __builtin_trap();
    }
    char *text = sl_malloc(size + 1);
    if (text) {
        memcpy(text, data, size);
        text[size] = '\0';
        static sl_as_state_t st;
        sl_as_state_parse(text, &st);
        if (st.n_pending > SL_AS_PENDING_MAX || st.n_draining > SL_AS_PENDING_MAX)
            __builtin_trap();
        sl_free(text);
    }
    return 0;
}
