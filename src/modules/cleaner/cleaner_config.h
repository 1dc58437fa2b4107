/*
 * The cleaner module: its settings, a section of the configuration (base/config.h).
 *
 * The table in cleaner_config.c declares every key (YAML `cleaner.*`, env SLUICE_CLEANER_<KEY>) and the per-app keys apps.<name>.<key>; the engine fills the structs
 * below, which the owner reads with sl_cleaner_cfg(cfg) and sl_cleaner_app_cfg(app).
 */
#ifndef SL_MODULES_CLEANER_CLEANER_CONFIG_H
#define SL_MODULES_CLEANER_CLEANER_CONFIG_H

#include <stdint.h>

#include "base/config.h"

/* The `cleaner` section. */
typedef struct sl_cleaner_config {
    int64_t interval_ms;                 /* time between two sweeps */
} sl_cleaner_config_t;

/* Per-app settings of this section (apps.<name>.<key>). */
typedef struct sl_cleaner_app_config {
    int64_t record_max_age_ms;           /* the cleaner deletes recordings older than this; 0 = keep */
    int64_t record_max_bytes;            /* the cleaner keeps the app's recordings under this; 0 = no quota */
} sl_cleaner_app_config_t;

/** The section descriptor, to list in the configuration (see src/builtin_config.c). */
extern const sl_config_section_t sl_cleaner_config_section;

/** This section of cfg (borrowed; never NULL once the section is registered). */
static inline sl_cleaner_config_t *sl_cleaner_cfg(const sl_config_t *cfg)
{
    return (sl_cleaner_config_t *)sl_config_get(cfg, &sl_cleaner_config_section);
}

/** This section's settings of one app (borrowed, like the app). */
static inline sl_cleaner_app_config_t *sl_cleaner_app_cfg(const sl_app_config_t *app)
{
    return (sl_cleaner_app_config_t *)sl_config_app_get(app, &sl_cleaner_config_section);
}

#endif
