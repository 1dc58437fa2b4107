/*
 * The Server API: its settings, a section of the configuration (base/config.h).
 *
 * The table in api_config.c declares every key (YAML `api.*`, env SLUICE_API_<KEY>); the engine fills the structs
 * below, which the owner reads with sl_api_cfg(cfg).
 */
#ifndef SL_API_API_CONFIG_H
#define SL_API_API_CONFIG_H

#include <stdint.h>

#include "base/config.h"

/* The `api` section. */
typedef struct sl_api_config {
    char *access_token;                  /* "" = generated, kept in data_dir/api_token */
    char *hosts;                         /* allow-list, "*" = any */
    int64_t auth_fail_limit;             /* failures per address per minute */
    int64_t auth_fail_max_addrs;         /* failure records kept (oldest evicted) */
    int metrics_public;                  /* /metrics without token */
} sl_api_config_t;

/** The section descriptor, to list in the configuration (see src/builtin_config.c). */
extern const sl_config_section_t sl_api_config_section;

/** This section of cfg (borrowed; never NULL once the section is registered). */
static inline sl_api_config_t *sl_api_cfg(const sl_config_t *cfg)
{
    return (sl_api_config_t *)sl_config_get(cfg, &sl_api_config_section);
}

#endif
