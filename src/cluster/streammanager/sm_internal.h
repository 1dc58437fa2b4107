/*
 * What the stream manager's files share (not an API): the module's state,
 * the choice over the current cluster snapshot (streammanager.c) and the
 * HTTP routes (sm_http.c).
 */
#ifndef SL_CLUSTER_STREAMMANAGER_SM_INTERNAL_H
#define SL_CLUSTER_STREAMMANAGER_SM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "app/core.h"
#include "app/svc/cluster.h"
#include "app/svc/http.h"
#include "app/svc/streammanager.h"
#include "base/list.h"
#include "base/map.h"
#include "cluster/streammanager/sm_choose.h"
#include "cluster/streammanager/sm_config.h"

#define SM_SECRET_MAX 256
#define SM_N_ROUTES 7

typedef struct sm_mod {
    sl_core_t *core;                   /* borrowed */
    sl_sm_weights_t weights;
    int64_t node_timeout_ms;
    char admin_token[129];             /* SM 4.0 accessToken (secret) */
    uint8_t secret[SM_SECRET_MAX];     /* JWT HS256 key (secret) */
    size_t secret_len;
    char admin_user[65], admin_pass[129];
    char proxy_user[65], proxy_pass[129];
    const sl_http_svc_t *http;         /* borrowed, NULL when HTTP is off */
    void *http_ud;
    sl_http_route_t *routes[SM_N_ROUTES];
    sl_map_t pending;                  /* node id -> sm_pending_t (owned) */
    sl_map_t addrs;                    /* address key -> sm_addr_t (owned) */
    unsigned rotation;                 /* turns equal scores between lookups */
    uint64_t n_lookups, n_limited;     /* counters, for the log at stop */
    sl_list_t waits;                   /* blocking distributions waiting for their node (sm_http.c) */
    size_t n_waits;
    uv_timer_t persist_tick;           /* persist restreamer provisions re-distributed (sm_http.c) */
    int persist_on;
} sm_mod_t;

/* The cluster service, or NULL (with *ud untouched) when cluster mode is off. */
const sl_svc_cluster_t *sl__sm_cluster(sm_mod_t *m, void **ud);

/**
 * Chooses up to max_out nodes for q over the cluster snapshot, counting
 * the first as placed (pending) when count is set; copies their records
 * into out. 0 or the errors of sl_sm_choose, plus SL_EIO (no cluster).
 * q->group may be NULL or "default" (resolved here).
 */
int sl__sm_choose(sm_mod_t *m, const sl_sm_query_t *q, sl_cluster_node_t *out, size_t max_out,
                  size_t *n_out, int count, const char **why);

/** Checks an SM 4.0 accessToken from remote (the service's check_admin_token). */
int sl__sm_check_admin_token(sm_mod_t *m, const char *token, const char *remote);

/** Checks a bearer token (the service's check_token). */
int sl__sm_check_token(sm_mod_t *m, const char *bearer, const char *role);

/**
 * Counts one request from addr: 1 when it is within the per-address
 * budget, 0 when it must be answered 429.
 */
int sl__sm_rate_ok(sm_mod_t *m, const char *addr);
/** Failed credentials from addr: note one (fail 1) or ask (fail 0) whether it is blocked (1). */
int sl__sm_auth_blocked(sm_mod_t *m, const char *addr, int fail);

/** Adds the HTTP routes (0 or an error) / removes them. */
int sl__sm_http_start(sm_mod_t *m);
void sl__sm_http_stop(sm_mod_t *m);

#endif
