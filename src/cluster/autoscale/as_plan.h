/*
 * The autoscaler's decision for one rule (group, subgroup, role) at one
 * tick, as a pure function of what the cluster snapshot shows and the
 * rule's shared state (as_group.h): no I/O, so the unit tests drive it with
 * made-up nodes (tests/unit/cluster/autoscale_test.c). The module
 * (autoscale.c) carries the decision out through the driver.
 *
 * Order of the checks (docs/autoscaling.md "How a decision is made"):
 *   1. a manualscale target: scale to it (within min..max), no cool-down;
 *   2. fewer nodes (in service + launching) than min: scale out to min;
 *   3. more nodes in service than max: scale in to max;
 *   4. paused, in cool-down, or nodes still launching: nothing;
 *   5. outExpression true and below max: scale out by increment (capped at max);
 *   6. inExpression true, above min and nothing draining: scale in by
 *      increment (capped at min), the least loaded nodes first.
 */
#ifndef SL_CLUSTER_AUTOSCALE_AS_PLAN_H
#define SL_CLUSTER_AUTOSCALE_AS_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "cluster/autoscale/as_group.h"

typedef enum { SL_AS_NONE = 0, SL_AS_SCALE_OUT = 1, SL_AS_SCALE_IN = 2 } sl_as_action_t;

typedef struct sl_as_plan_in {
    const sl_as_rule_t *rule;
    int paused;                              /* the group's scalingPaused */
    const sl_cluster_node_t *const *active;  /* nodes of the role in the subgroup, INSERVICE */
    size_t n_active;
    int n_pending;                           /* launched, not registered yet */
    int n_draining;                          /* SOFT_SUNSET / HARD_SUNSET, not gone yet */
    int manual;                              /* manualscale target, -1 = none */
    uint64_t now_ms, last_action_ms;         /* wall clock */
} sl_as_plan_in_t;

typedef struct sl_as_plan_out {
    sl_as_action_t action;
    int count;                               /* nodes to add or remove */
    int victims[SL_AS_PENDING_MAX];          /* scale in: indexes into active, least loaded first */
    const char *reason;                      /* static: "below min", "outExpression", ... */
} sl_as_plan_out_t;

/** Decides for one rule (see above). Never fails; out->action SL_AS_NONE when nothing to do. */
void sl_as_plan(const sl_as_plan_in_t *in, sl_as_plan_out_t *out);

/** The name of an action: "none", "scale_out", "scale_in". */
const char *sl_as_action_name(sl_as_action_t a);

#endif
