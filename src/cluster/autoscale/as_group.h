/*
 * Node groups and their scale rules (docs/autoscaling.md "Node groups"):
 * Red5 SM 2.0's NodeGroupConfig, as posted to /as/v1/admin/nodegroup and
 * stored as the cluster setting "nodegroup/<name>", read into a fixed
 * struct the planner (as_plan.h) works on; and the per-rule state the
 * autoscaler keeps beside it (setting "autoscale/state/<group>/<sub>/<role>")
 * so that any stream manager node can take over the evaluation.
 *
 * Pure and bounded: a body over SL_AS_GROUP_JSON_MAX is refused, names have
 * fixed caps, roles and subgroups are counted, and every expression goes
 * through sl_as_expr_parse. A config the parser accepts is one the
 * autoscaler can run. Fuzzed by tests/fuzz/as_expr_fuzz.c (with the expressions).
 */
#ifndef SL_CLUSTER_AUTOSCALE_AS_GROUP_H
#define SL_CLUSTER_AUTOSCALE_AS_GROUP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/autoscale/as_expr.h"

#define SL_AS_GROUP_JSON_MAX 32768  /* a NodeGroupConfig body */
#define SL_AS_GROUP_NAME_MAX 17     /* group name, <= 16 bytes (Red5's limit) + NUL */
#define SL_AS_NAME_MAX 33           /* role, subgroup, platform names + NUL */
#define SL_AS_ROLES_MAX 6           /* roles of one group */
#define SL_AS_SUBGROUPS_MAX 8       /* subgroups of one group */
#define SL_AS_NODE_MAX 200          /* most nodes of one role in a subgroup (max) */
#define SL_AS_PENDING_MAX 32        /* pending launches and drains kept per rule */

/* Red5's role capabilities (bit set). */
#define SL_AS_CAP_PUBLISH 1u
#define SL_AS_CAP_SUBSCRIBE 2u
#define SL_AS_CAP_TRANSCODE 4u
#define SL_AS_CAP_MIX 8u

typedef struct sl_as_role {
    char name[SL_AS_NAME_MAX];        /* "origin", "edge", "relay", "transcoder": a node's role */
    char parent[SL_AS_NAME_MAX];      /* parentRoleName, "" when none */
    unsigned caps;                    /* SL_AS_CAP_* */
} sl_as_role_t;

/* One rulesByRole entry of a subgroup. */
typedef struct sl_as_rule {
    char role[SL_AS_NAME_MAX];
    int min, max, increment;          /* node counts; 0 <= min <= max <= SL_AS_NODE_MAX */
    int64_t cooldown_ms;              /* coolDownPeriod: between two scale actions of the rule */
    sl_as_expr_t out_expr, in_expr;   /* outExpression, inExpression ("" = never) */
} sl_as_rule_t;

typedef struct sl_as_subgroup {
    char name[SL_AS_NAME_MAX];        /* subGroupName (a node's region), "default" by default */
    sl_as_rule_t rules[SL_AS_ROLES_MAX];
    int n_rules;
} sl_as_subgroup_t;

typedef struct sl_as_group {
    char name[SL_AS_GROUP_NAME_MAX];
    char platform[SL_AS_NAME_MAX];    /* cloudPlatform, informational */
    int64_t max_publishers;           /* maxPublishers, 0 = no limit (the stream manager's) */
    int64_t max_subscribers;          /* maxSubscribers */
    int paused;                       /* scalingPaused: the autoscaler keeps min..max only */
    sl_as_role_t roles[SL_AS_ROLES_MAX];
    int n_roles;
    sl_as_subgroup_t subs[SL_AS_SUBGROUPS_MAX];
    int n_subs;
} sl_as_group_t;

/**
 * Reads a NodeGroupConfig (json, len bytes, untrusted) into *out (caller
 * allocated; it owns no memory). `roles` and `groups` are objects keyed
 * by name (Red5's shape) or arrays of objects with `name` /
 * `subGroupName`; rules are `rulesByRole` keyed by role name. Defaults:
 * increment 1, coolDownPeriod default_cooldown_ms, subgroup "default".
 * Returns 0; SL_ETOOBIG (body too large); SL_EINVAL with *why (static
 * text, or the expression parser's) naming the field.
 */
int sl_as_group_parse(const char *json, size_t len, int64_t default_cooldown_ms,
                      sl_as_group_t *out, const char **why);

/** 1 when name is a valid group name: 1..16 bytes of [A-Za-z0-9_-]. */
int sl_as_group_name_ok(const char *name);

/** The rule for role in subgroup sub of g, or NULL. */
const sl_as_rule_t *sl_as_group_rule(const sl_as_group_t *g, const char *sub, const char *role);

/* One node the autoscaler launched or is draining. */
typedef struct sl_as_tracked {
    char id[SL_CLUSTER_ID_MAX];
    uint64_t since_ms;                /* launch or drain start, wall clock */
    int hard;                         /* draining: HARD_SUNSET set, stop requested;
                                       * launching: its process died (retry soon) */
} sl_as_tracked_t;

/* The state of one rule, shared through the setting "autoscale/state/<g>/<sub>/<role>". */
typedef struct sl_as_state {
    uint64_t gen;                     /* bumps at each decision: decisions are keyed by it */
    uint64_t last_action_ms;          /* wall clock of the last decision (cool-down) */
    int manual;                       /* manualscale target, -1 = none */
    uint64_t next_seq;                /* node id sequence of launches */
    sl_as_tracked_t pending[SL_AS_PENDING_MAX];
    int n_pending;
    sl_as_tracked_t draining[SL_AS_PENDING_MAX];
    int n_draining;
} sl_as_state_t;

/** Reads a state setting (json may be NULL: a fresh state). Bad JSON gives a fresh state. */
void sl_as_state_parse(const char *json, sl_as_state_t *out);

/** The state as JSON (caller frees with sl_free), or NULL (no memory). */
char *sl_as_state_dump(const sl_as_state_t *st);

#define SL_AS_LAUNCH_JSON_MAX 16384 /* an SM 4.0 launch configuration body */

/** 1 when name is 1..64 bytes of [A-Za-z0-9_.-] (a launch configuration's name). */
int sl_as_launch_name_ok(const char *name);

/**
 * Parses and checks an SM 4.0 launch configuration body (text, len bytes,
 * at most SL_AS_LAUNCH_JSON_MAX, nesting at most 16 deep):
 * {"launchconfig":{"name", "targets":{"target":[1..8 {"role", "instanceType"?,
 * "connectionCapacity"?}]}, ...}} with roles of sluice and a capacity that is a
 * non-negative integer. url_name: the name the URL gives (PUT), which the
 * body's must equal, or NULL. Returns the JSON (a new reference) or NULL
 * with *why (static) saying why.
 */
json_t *sl_as_launch_parse(const char *text, size_t len, const char *url_name, const char **why);

#endif
