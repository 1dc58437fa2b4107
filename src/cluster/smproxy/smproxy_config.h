/*
 * The stream manager proxy (src/cluster/smproxy): its settings, the
 * `sm_proxy` section of the configuration (base/config.h).
 *
 * The table in smproxy_config.c declares every key (YAML `sm_proxy.*`, env
 * SLUICE_SM_PROXY_<KEY>); the engine fills the struct below, which the
 * module reads with sl_smproxy_cfg(cfg).
 */
#ifndef SL_CLUSTER_SMPROXY_SMPROXY_CONFIG_H
#define SL_CLUSTER_SMPROXY_SMPROXY_CONFIG_H

#include <stdint.h>

#include "base/config.h"

/* The `sm_proxy` section. */
typedef struct sl_smproxy_config {
    int enabled;                  /* serve /as/v1/proxy/... on this node */
    int64_t timeout_ms;           /* one forwarded request, connect included */
    int64_t max_body_bytes;       /* a client's request body (SDP, trickle, forward) */
    int64_t max_response_bytes;   /* a node's answer we hold before passing it on */
    int64_t max_requests;         /* forwarded requests in flight, whole server */
    int64_t max_requests_per_addr;/* forwarded requests in flight per client address */
    int64_t ws_max_sessions;      /* WebSocket proxy sessions, whole server */
    int64_t ws_max_per_addr;      /* WebSocket proxy sessions per client address */
    int64_t ws_max_buffered_bytes;/* bytes queued per direction of one session */
    int64_t ws_idle_timeout_ms;   /* a session with no byte either way is closed */
} sl_smproxy_config_t;

/** The section descriptor, listed in src/builtin_config.c. */
extern const sl_config_section_t sl_smproxy_config_section;

/** This section of cfg (borrowed; never NULL once the section is registered). */
static inline sl_smproxy_config_t *sl_smproxy_cfg(const sl_config_t *cfg)
{
    return (sl_smproxy_config_t *)sl_config_get(cfg, &sl_smproxy_config_section);
}

#endif
