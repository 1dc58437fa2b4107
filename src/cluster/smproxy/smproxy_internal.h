/*
 * The stream manager proxy's shared state between its files: smproxy.c
 * (the module, HTTP forwarding of WHIP/WHEP and the Server API) and
 * smproxy_ws.c (the WebSocket relay). Not a public header.
 */
#ifndef SL_CLUSTER_SMPROXY_SMPROXY_INTERNAL_H
#define SL_CLUSTER_SMPROXY_SMPROXY_INTERNAL_H

#include <stdint.h>

#include "app/core.h"
#include "app/svc/cluster.h"
#include "app/svc/http.h"
#include "base/http_client.h"
#include "base/list.h"
#include "base/log.h"
#include "base/map.h"
#include "cluster/smproxy/smproxy_config.h"
#include "cluster/smproxy/smproxy_route.h"

typedef struct smp {
    sl_core_t *core;                /* borrowed */
    const sl_config_t *cfg;         /* the configuration it runs with (reload swaps it) */
    const sl_http_svc_t *http;      /* the route service, looked up at init */
    void *http_ud;
    sl_http_route_t *route;         /* /as/v1/proxy */
    sl_http_route_t *admin_route;   /* SM 4.0 /admin/proxy/clients */
    uint64_t next_ws_id;            /* ids of WebSocket sessions (admin API) */
    sl_http_client_t *cli;          /* outgoing requests to the nodes (owned) */
    sl_list_t pending;              /* smp_fwd_t in flight */
    sl_list_t ws;                   /* smp_ws_t open */
    sl_map_t per_addr;              /* client address -> requests + WS sessions held (uintptr_t) */
    int64_t n_requests;             /* HTTP requests in flight */
    int64_t n_ws;                   /* WebSocket sessions open */
    uint64_t total_requests, total_ws, refused; /* since start (logged at stop) */
    int stopping;
} smp_t;

extern const sl_log_ctx_t sl__smproxy_log;

/** Takes one unit of addr's budget (limit per address): 1 taken, 0 over the limit or no memory. */
int sl__smproxy_addr_take(smp_t *p, const char *addr, int64_t limit);
/** Gives back one unit taken with sl__smproxy_addr_take. */
void sl__smproxy_addr_give(smp_t *p, const char *addr);

/**
 * Resolves the node for a proxied session of path (WHIP/WHEP endpoint or
 * WS) from the request's query (host, nodeGroup, subgroup/region, strict):
 * copies it into *out and returns 0, or answers req itself (404, 409, 503)
 * and returns 1.
 */
int sl__smproxy_pick(smp_t *p, sl_http_req_t *req, sl_sm_action_t action, const char *path,
                     sl_cluster_node_t *out);

/** The WebSocket relay of /as/v1/proxy/ws/... (smproxy_ws.c): answers req. */
int sl__smproxy_ws_start(smp_t *p, sl_http_req_t *req, const sl_smproxy_path_t *pp);
/**
 * SM 4.0's `/streammanager/api/4.0/admin/proxy/clients[/{id}]` (GET lists
 * the WebSocket sessions, ?filter=healthy|unhealthy|any, ?count=true;
 * DELETE closes one or all), with the stream manager's accessToken check:
 * answers req.
 */
int sl__smproxy_ws_admin(sl_http_req_t *req, void *ud);

/** Closes every relay session (module stop). */
void sl__smproxy_ws_stop_all(smp_t *p);

#endif
