/*
 * The stream manager's choice of a node (docs/stream-manager.md, "How a
 * node is chosen"): pure functions over a snapshot of the cluster's nodes,
 * so that the rules can be unit-tested without Redis or a loop.
 *
 * A node can be named only when it is alive (its last report is younger
 * than the node timeout), INSERVICE, and in the asked group. Publish names
 * a node with role origin (or all); subscribe names an edge (or all) and,
 * when the group has no such node in service, the stream's origin. Among
 * the candidates the lowest score wins: the weighted mean of the node's
 * reported load (Red5's instanceevaluator.*.metricweight, plus CPU) with
 * the placements made since its last report added, so that lookups
 * between two reports spread instead of all naming the same node; equal
 * scores rotate.
 */
#ifndef SL_CLUSTER_STREAMMANAGER_SM_CHOOSE_H
#define SL_CLUSTER_STREAMMANAGER_SM_CHOOSE_H

#include <stddef.h>
#include <stdint.h>

#include "app/svc/cluster.h"
#include "app/svc/streammanager.h"

#define SL_SM_MAX_CANDIDATES 1024 /* nodes considered by one choice */

/* The weights of each metric (0 = ignored). */
typedef struct sl_sm_weights {
    double streams;      /* live streams in the node's hub */
    double connections;  /* sessions, as a percent of its capacity when known */
    double subscribers;  /* players */
    double memory;       /* RSS, percent of the machine */
    double restreamer;   /* relay pulls and publishers */
    double cpu;          /* process CPU, percent */
} sl_sm_weights_t;

/**
 * Parses "streams=1 connections=2.5 ..." (spaces or commas between pairs;
 * metrics not named keep their value in *w, which the caller presets).
 * 0, or SL_EINVAL (unknown metric, a weight not in 0..1000, text over 512
 * bytes) with *w partly updated.
 */
int sl_sm_weights_parse(const char *text, sl_sm_weights_t *w);

/**
 * The node's load score (lower is better) with `pending` placements made
 * since its last report counted as extra connections and subscribers.
 * Never negative; 0 when every weight is 0.
 */
double sl_sm_score(const sl_cluster_node_t *n, const sl_sm_weights_t *w, uint32_t pending);

/** What one choice sees (every pointer borrowed for the call). */
typedef struct sl_sm_view {
    const sl_cluster_node_t *nodes; /* the snapshot's nodes */
    size_t n_nodes;
    const uint32_t *pending;        /* per node, placements since its report; NULL = none */
    uint64_t now_ms;                /* wall clock */
    uint64_t node_timeout_ms;       /* reports older than this: dead */
    const sl_sm_weights_t *weights;
    const char *origin_id;          /* the stream's origin node id; NULL when not placed */
    int64_t max_publishers;         /* the group's limit; 0 = none */
    int64_t max_subscribers;
    uint32_t n_publishers;          /* the group's live streams now */
    uint32_t n_subscribers;         /* the group's players now */
    unsigned rotation;              /* turns equal scores (a counter the caller advances) */
} sl_sm_view_t;

/**
 * The group a query means: group itself when a node is in it; "default",
 * NULL or "" when every node is in one group: that group (Red5: `default`
 * is accepted when only one group exists); else group (which may match no
 * node). Returns a pointer into v's nodes or group, or "default".
 */
const char *sl_sm_group_resolve(const sl_sm_view_t *v, const char *group);

/**
 * 1 when node n may be named now: alive under v's timeout and INSERVICE
 * (an empty state, a node that has not said, counts as in service).
 */
int sl_sm_node_usable(const sl_sm_view_t *v, const sl_cluster_node_t *n);

/**
 * Chooses up to max_out nodes for q (q->group already resolved) and
 * writes their indexes into v->nodes to out, best first; *n_out gets the
 * count (>= 1 on success). 0; SL_ENOTFOUND (subscribe: not live, or its
 * origin dead; no node with the role, in the region when strict);
 * SL_EBUSY (the group's limit is reached); SL_EDENIED (publish: the stream
 * is live already); SL_EINVAL (max_out 0). *why (static text) says which.
 */
int sl_sm_choose(const sl_sm_view_t *v, const sl_sm_query_t *q, size_t *out, size_t max_out,
                 size_t *n_out, const char **why);

#endif
