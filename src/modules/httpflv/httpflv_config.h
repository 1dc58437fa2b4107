/*
 * The HTTP-FLV module: its settings, a section of the configuration (base/config.h).
 *
 * The table in httpflv_config.c declares every key and the per-app keys apps.<name>.<key>; the engine fills the structs
 * below, which the owner reads with sl_httpflv_app_cfg(app).
 */
#ifndef SL_MODULES_HTTPFLV_HTTPFLV_CONFIG_H
#define SL_MODULES_HTTPFLV_HTTPFLV_CONFIG_H

#include <stdint.h>

#include "base/config.h"

/* Per-app settings of this section (apps.<name>.<key>). */
typedef struct sl_httpflv_app_config {
    int httpflv;                         /* serve live streams as HTTP-FLV */
} sl_httpflv_app_config_t;

/** The section descriptor, to list in the configuration (see src/builtin_config.c). */
extern const sl_config_section_t sl_httpflv_config_section;

/** This section's settings of one app (borrowed, like the app). */
static inline sl_httpflv_app_config_t *sl_httpflv_app_cfg(const sl_app_config_t *app)
{
    return (sl_httpflv_app_config_t *)sl_config_app_get(app, &sl_httpflv_config_section);
}

#endif
