/*
 * The recorder module: its settings, a section of the configuration (base/config.h).
 *
 * The table in recorder_config.c declares every key (YAML `recorder.*`, env SLUICE_RECORDER_<KEY>) and the per-app keys apps.<name>.<key>; the engine fills the structs
 * below, which the owner reads with sl_recorder_cfg(cfg) and sl_recorder_app_cfg(app).
 */
#ifndef SL_MODULES_RECORDER_RECORDER_CONFIG_H
#define SL_MODULES_RECORDER_RECORDER_CONFIG_H

#include <stdint.h>

#include "base/config.h"

/* Values of sl_recorder_app_config_t.record_format (the order of the names in recorder_config.c). */
typedef enum {
    SL_RECORD_FORMAT_FLV = 0,
    SL_RECORD_FORMAT_MP4 = 1, /* fragmented MP4 */
} sl_record_format_t;

/* The `recorder` section. */
typedef struct sl_recorder_config {
    int64_t queue_max_bytes;             /* per recording: bytes waiting for the disk */
} sl_recorder_config_t;

/* Per-app settings of this section (apps.<name>.<key>). */
typedef struct sl_recorder_app_config {
    int record;                          /* record every stream published to this app */
    char *record_pattern;                /* file name for policy recordings ({name}, strftime); "" = stream name */
    int64_t record_format;               /* sl_record_format_t: container of recordings without an extension */
} sl_recorder_app_config_t;

/** The section descriptor, to list in the configuration (see src/builtin_config.c). */
extern const sl_config_section_t sl_recorder_config_section;

/** This section of cfg (borrowed; never NULL once the section is registered). */
static inline sl_recorder_config_t *sl_recorder_cfg(const sl_config_t *cfg)
{
    return (sl_recorder_config_t *)sl_config_get(cfg, &sl_recorder_config_section);
}

/** This section's settings of one app (borrowed, like the app). */
static inline sl_recorder_app_config_t *sl_recorder_app_cfg(const sl_app_config_t *app)
{
    return (sl_recorder_app_config_t *)sl_config_app_get(app, &sl_recorder_config_section);
}

#endif
