/*
 * The autoscaler's settings (section `autoscale`; the table is in
 * autoscale_config.c): whether this node evaluates the node groups' scale
 * rules, how often, which driver carries the decisions out, and the
 * driver's own keys. See docs/autoscaling.md.
 */
#ifndef SL_CLUSTER_AUTOSCALE_AUTOSCALE_CONFIG_H
#define SL_CLUSTER_AUTOSCALE_AUTOSCALE_CONFIG_H

#include <stdint.h>

#include "base/config.h"

typedef enum { SL_AS_DRIVER_NONE = 0, SL_AS_DRIVER_PROCESS = 1, SL_AS_DRIVER_WEBHOOK = 2 } sl_as_driver_kind_t;

typedef struct sl_autoscale_config {
    int enabled;                  /* evaluate scale rules and serve the node group admin API */
    int64_t interval_ms;          /* evaluation period */
    int64_t driver;               /* sl_as_driver_kind_t */
    int64_t default_cooldown_ms;  /* a rule's coolDownPeriod when it gives none */
    int64_t launch_timeout_ms;    /* a launched node must register within this */
    int64_t drain_timeout_ms;     /* a draining node is stopped after this even with sessions */
    int64_t lease_ms;             /* the evaluator's lease (one evaluator at a time) */
    char *jwt_secret;             /* HS256 secret of SM 2.0 admin JWTs (= stream_manager's) */
    char *process_binary;         /* process driver: the sluice binary ("" = this one) */
    char *process_config;         /* process driver: config template file */
    char *process_dir;            /* process driver: configs and logs ("" = data_dir/autoscale) */
    int64_t process_port_min;     /* process driver: ports for the nodes it starts */
    int64_t process_port_max;
    int64_t process_max;          /* process driver: most processes at once */
    char *webhook_url;            /* webhook driver: where decisions are POSTed */
    char *webhook_secret;         /* webhook driver: HMAC-SHA256 key (X-Sluice-Signature) */
    int64_t webhook_timeout_ms;
    int64_t webhook_retries;      /* attempts after the first, with backoff */
} sl_autoscale_config_t;

/** The section descriptor (listed in src/builtin_config.c). */
extern const sl_config_section_t sl_autoscale_config_section;

/** The section's settings of cfg (borrowed, like cfg). */
static inline const sl_autoscale_config_t *sl_autoscale_cfg(const sl_config_t *cfg)
{
    return (const sl_autoscale_config_t *)sl_config_get(cfg, &sl_autoscale_config_section);
}

#endif
