/*
 * The autoscaler's decision for one rule (as_plan.h). Kept free of I/O and
 * of the clock so that each branch is a unit test.
 */
#include "cluster/autoscale/as_plan.h"

#include <string.h>

const char *sl_as_action_name(sl_as_action_t a)
{
    return a == SL_AS_SCALE_OUT ? "scale_out" : a == SL_AS_SCALE_IN ? "scale_in" : "none";
}

/* 1 when node a carries less than b: fewer sessions, then less CPU, then the younger one. */
static int lighter(const sl_cluster_node_t *a, const sl_cluster_node_t *b)
{
    uint32_t sa = a->subscribers + a->publishers, sb = b->subscribers + b->publishers;
    if (sa != sb)
        return sa < sb;
    if (a->connections != b->connections)
        return a->connections < b->connections;
    if (a->cpu_load != b->cpu_load)
        return a->cpu_load < b->cpu_load;
    if (a->started_ms != b->started_ms)
        return a->started_ms > b->started_ms;
    return strcmp(a->id, b->id) < 0;
}

/* Picks the count lightest nodes of in->active into out->victims (selection, n is small). */
static void pick_victims(const sl_as_plan_in_t *in, sl_as_plan_out_t *out)
{
    if (out->count > SL_AS_PENDING_MAX)
        out->count = SL_AS_PENDING_MAX;
    if ((size_t)out->count > in->n_active)
        out->count = (int)in->n_active;
    for (int k = 0; k < out->count; k++) {
        int best = -1;
        for (size_t i = 0; i < in->n_active; i++) {
            int taken = 0;
            for (int j = 0; j < k; j++)
                taken |= out->victims[j] == (int)i;
            if (!taken && (best < 0 || lighter(in->active[i], in->active[best])))
                best = (int)i;
        }
        out->victims[k] = best;
    }
}

static void decide(sl_as_plan_out_t *out, sl_as_action_t a, int count, const char *why)
{
    out->action = count > 0 ? a : SL_AS_NONE;
    out->count = count > 0 ? count : 0;
    out->reason = why;
}

void sl_as_plan(const sl_as_plan_in_t *in, sl_as_plan_out_t *out)
{
    const sl_as_rule_t *r = in->rule;
    int active = (int)in->n_active;
    int total = active + in->n_pending;
    memset(out, 0, sizeof *out);
    out->reason = "steady";
    if (in->manual >= 0) {
        int want = in->manual < r->min ? r->min : in->manual > r->max ? r->max : in->manual;
        if (total < want)
            decide(out, SL_AS_SCALE_OUT, want - total, "manualscale");
        else if (in->n_pending == 0 && active > want)
            decide(out, SL_AS_SCALE_IN, active - want, "manualscale");
        else
            out->reason = "manualscale reached";
    } else if (total < r->min) {
        decide(out, SL_AS_SCALE_OUT, r->min - total, "below min");
    } else if (active > r->max) {
        decide(out, SL_AS_SCALE_IN, active - r->max, "above max");
    } else if (in->paused) {
        out->reason = "paused";
    } else if (in->last_action_ms && in->now_ms < in->last_action_ms + (uint64_t)r->cooldown_ms) {
        out->reason = "cool-down";
    } else if (in->n_pending > 0) {
        out->reason = "launching";
    } else if (total < r->max && sl_as_expr_true(&r->out_expr, in->active, in->n_active)) {
        int n = r->increment < r->max - total ? r->increment : r->max - total;
        decide(out, SL_AS_SCALE_OUT, n, "outExpression");
    } else if (in->n_draining == 0 && active > r->min &&
               sl_as_expr_true(&r->in_expr, in->active, in->n_active)) {
        int n = r->increment < active - r->min ? r->increment : active - r->min;
        decide(out, SL_AS_SCALE_IN, n, "inExpression");
    }
    if (out->action == SL_AS_SCALE_IN)
        pick_victims(in, out);
}
