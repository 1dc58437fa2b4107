/*
 * The RPC module's settings (base/config.h): the `rpc` section (server-wide
 * budget) and the per-app keys apps.<name>.rpc_* (the business server that
 * answers calls no handler takes, and the per-call limits). The table is in
 * rpc_config.c; the module reads the structs with sl_rpc_cfg(cfg) and
 * sl_rpc_app_cfg(app).
 */
#ifndef SL_MODULES_RPC_RPC_CONFIG_H
#define SL_MODULES_RPC_RPC_CONFIG_H

#include <stdint.h>

#include "base/config.h"

/* The `rpc` section. */
typedef struct sl_rpc_config {
    int64_t max_calls;                   /* client -> server calls in flight, whole server */
    int64_t max_invokes;                 /* server -> client invokes in flight, whole server */
} sl_rpc_config_t;

/* Per-app settings (apps.<name>.<key>). */
typedef struct sl_rpc_app_config {
    char *rpc_url;                       /* the business server; "" = only registered handlers */
    int64_t rpc_timeout_ms;              /* a call without an answer by then fails */
    int64_t rpc_max_reply_bytes;         /* a larger reply is refused */
    int64_t rpc_max_calls_per_client;    /* calls in flight per client */
} sl_rpc_app_config_t;

/** The section descriptor (listed in src/builtin_config.c). */
extern const sl_config_section_t sl_rpc_config_section;

/** This section of cfg (borrowed; never NULL once the section is registered). */
static inline sl_rpc_config_t *sl_rpc_cfg(const sl_config_t *cfg)
{
    return (sl_rpc_config_t *)sl_config_get(cfg, &sl_rpc_config_section);
}

/** This section's settings of one app (borrowed, like the app). */
static inline sl_rpc_app_config_t *sl_rpc_app_cfg(const sl_app_config_t *app)
{
    return (sl_rpc_app_config_t *)sl_config_app_get(app, &sl_rpc_config_section);
}

#endif
