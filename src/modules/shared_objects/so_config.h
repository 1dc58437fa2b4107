/*
 * The shared_objects module's settings, a section of the configuration
 * (base/config.h): `shared_objects.*` (env SLUICE_SHARED_OBJECTS_<KEY>) and
 * the per-app limits apps.<name>.so_*. The table is in so_config.c.
 */
#ifndef SL_MODULES_SHARED_OBJECTS_SO_CONFIG_H
#define SL_MODULES_SHARED_OBJECTS_SO_CONFIG_H

#include <stdint.h>

#include "base/config.h"

/* The `shared_objects` section. */
typedef struct sl_so_config {
    int enabled;                 /* the module runs (RTMP SO messages are answered) */
} sl_so_config_t;

/* Per-app limits (apps.<name>.<key>). */
typedef struct sl_so_app_config {
    int64_t so_max_objects;         /* objects per app (persistent ones included) */
    int64_t so_max_keys;            /* attributes per object */
    int64_t so_max_value_bytes;     /* one value, as JSON text */
    int64_t so_max_object_bytes;    /* all the values of one object, as JSON text */
    int64_t so_max_updates_per_sec; /* updates per second per subscriber */
    int64_t so_max_subscribers;     /* subscribers per object */
} sl_so_app_config_t;

extern const sl_config_section_t sl_so_config_section;

static inline sl_so_config_t *sl_so_cfg(const sl_config_t *cfg)
{
    return (sl_so_config_t *)sl_config_get(cfg, &sl_so_config_section);
}

static inline sl_so_app_config_t *sl_so_app_cfg(const sl_app_config_t *app)
{
    return (sl_so_app_config_t *)sl_config_app_get(app, &sl_so_config_section);
}

#endif
