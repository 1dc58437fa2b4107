/*
 * The stream manager's settings (section `stream_manager`; the table is in
 * sm_config.c): whether this node answers Red5's Stream Manager APIs, the
 * secrets of its admin surfaces (SM 4.0's accessToken, SM 2.0's users and
 * JWT secret; empty = generated into server.data_dir, never logged), the
 * weights of the node choice (Red5's instanceevaluator.*.metricweight, plus
 * CPU) and the budgets of the public lookups.
 */
#ifndef SL_CLUSTER_STREAMMANAGER_SM_CONFIG_H
#define SL_CLUSTER_STREAMMANAGER_SM_CONFIG_H

#include <stdint.h>

#include "base/config.h"

typedef struct sl_sm_config {
    int enabled;                   /* answer /streammanager/api/4.0 and /as/v1 on this node */
    char *admin_token;             /* SM 4.0 ?accessToken= ("" = data_dir/sm_admin_token) */
    char *auth_secret;             /* SM 2.0 JWT HS256 secret ("" = data_dir/sm_auth_secret) */
    int64_t jwt_ttl_ms;            /* lifetime of a token from /as/v1/auth/login */
    char *admin_user;              /* SM 2.0 admin user name */
    char *admin_password;          /* its password ("" = data_dir/sm_admin_password) */
    char *proxy_user;              /* SM 2.0 proxy user name ("" = no proxy user) */
    char *proxy_password;          /* its password ("" = data_dir/sm_proxy_password) */
    char *weights;                 /* "streams=1 connections=1 ..." (sm_choose.h) */
    int64_t node_timeout_ms;       /* a node whose last report is older is dead; 0 = cluster.lease */
    int64_t max_endpoints;         /* most nodes one lookup may ask for (endpoints=N) */
    int64_t lookups_per_minute;    /* per client address (IPv6 per /64) */
    int64_t max_addresses;         /* addresses whose lookups are counted */
    int64_t auth_fail_limit;       /* failed logins/tokens per address per minute */
} sl_sm_config_t;

/** The section descriptor (listed in src/builtin_config.c). */
extern const sl_config_section_t sl_sm_config_section;

/** This section of cfg (borrowed, like cfg). */
static inline const sl_sm_config_t *sl_sm_cfg(const sl_config_t *cfg)
{
    return (const sl_sm_config_t *)sl_config_get(cfg, &sl_sm_config_section);
}

#endif
