/*
 * The abr module's settings (section `abr`; abr_config.c has the table):
 * whether this node makes ABR variants, the provisions it holds itself
 * (for a node without a cluster), the x264 preset and the budgets.
 */
#ifndef SL_MODULES_ABR_CONFIG_H
#define SL_MODULES_ABR_CONFIG_H

#include <stdint.h>

#include "base/config.h"

typedef struct sl_abr_config {
    int enabled;                /* the module runs (transcodes when the role allows) */
    char *provisions;           /* JSON: one provision object or an array of them */
    char *preset;               /* x264 preset of every variant */
    int64_t max_transcoders;    /* transcoders running at once (one per provisioned source) */
    int64_t max_provisions;     /* provisions held (config + API + cluster) */
    int64_t settings_interval_ms; /* the cluster's provision settings are re-read this often */
} sl_abr_config_t;

/** The section descriptor (listed in src/builtin_config.c). */
extern const sl_config_section_t sl_abr_config_section;

/** The section's settings of cfg (borrowed, like cfg). */
static inline const sl_abr_config_t *sl_abr_cfg(const sl_config_t *cfg)
{
    return (const sl_abr_config_t *)sl_config_get(cfg, &sl_abr_config_section);
}

#endif
