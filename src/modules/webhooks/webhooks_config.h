/*
 * The webhooks module: its settings, a section of the configuration (base/config.h).
 *
 * The table in webhooks_config.c declares every key (YAML `webhooks.*`, env SLUICE_WEBHOOKS_<KEY>) and the per-app keys apps.<name>.<key>; the engine fills the structs
 * below, which the owner reads with sl_webhooks_cfg(cfg) and sl_webhooks_app_cfg(app).
 */
#ifndef SL_MODULES_WEBHOOKS_WEBHOOKS_CONFIG_H
#define SL_MODULES_WEBHOOKS_WEBHOOKS_CONFIG_H

#include <stdint.h>

#include "base/config.h"

/* The `webhooks` section. */
typedef struct sl_webhooks_config {
    char *url;
    char *secret;
    char *events;
    int64_t timeout_ms;
    int64_t retry_max_ms;
    int64_t retention_ms;                /* delivered rows kept this long; 0 = forever */
    int raw_query;                       /* send the client's query unmasked */
} sl_webhooks_config_t;

/* Per-app settings of this section (apps.<name>.<key>). */
typedef struct sl_webhooks_app_config {
    char *webhook_url;                   /* extra webhook endpoints for this app */
} sl_webhooks_app_config_t;

/** The section descriptor, to list in the configuration (see src/builtin_config.c). */
extern const sl_config_section_t sl_webhooks_config_section;

/** This section of cfg (borrowed; never NULL once the section is registered). */
static inline sl_webhooks_config_t *sl_webhooks_cfg(const sl_config_t *cfg)
{
    return (sl_webhooks_config_t *)sl_config_get(cfg, &sl_webhooks_config_section);
}

/** This section's settings of one app (borrowed, like the app). */
static inline sl_webhooks_app_config_t *sl_webhooks_app_cfg(const sl_app_config_t *app)
{
    return (sl_webhooks_app_config_t *)sl_config_app_get(app, &sl_webhooks_config_section);
}

#endif
