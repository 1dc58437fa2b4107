/*
 * The HLS module: its settings, a section of the configuration (base/config.h).
 *
 * The table in hls_config.c declares every key (YAML `hls.*`, env SLUICE_HLS_<KEY>) and the per-app keys apps.<name>.<key>; the engine fills the structs
 * below, which the owner reads with sl_hls_cfg(cfg) and sl_hls_app_cfg(app).
 */
#ifndef SL_MODULES_HLS_HLS_CONFIG_H
#define SL_MODULES_HLS_HLS_CONFIG_H

#include <stdint.h>

#include "base/config.h"

/* Values of sl_hls_app_config_t.hls_format (the order of the names in hls_config.c). */
typedef enum {
    SL_HLS_FORMAT_TS = 0,
    SL_HLS_FORMAT_FMP4 = 1,
} sl_hls_format_t;

/* The `hls` section. */
typedef struct sl_hls_config {
    int64_t session_timeout_ms;          /* an HLS player silent this long has left */
    int64_t max_sessions;                /* HLS sessions in all (not connections) */
    int64_t max_sessions_per_address;    /* HLS sessions from one remote address */
} sl_hls_config_t;

/* Per-app settings of this section (apps.<name>.<key>). */
typedef struct sl_hls_app_config {
    int hls;                             /* serve live streams as HLS */
    int64_t hls_segment_ms;              /* target segment length (Red5 itemLength) */
    int64_t hls_window;                  /* segments in the live playlist (Red5 itemCount) */
    int64_t hls_format;                  /* sl_hls_format_t: 0 ts, 1 fmp4 */
    int hls_low_latency;                 /* LL-HLS: parts, blocking reload (implies fmp4) */
    int64_t hls_part_ms;                 /* LL-HLS part target */
    int hls_disk;                        /* also write segments and playlists to data_dir */
} sl_hls_app_config_t;

/** The section descriptor, to list in the configuration (see src/builtin_config.c). */
extern const sl_config_section_t sl_hls_config_section;

/** This section of cfg (borrowed; never NULL once the section is registered). */
static inline sl_hls_config_t *sl_hls_cfg(const sl_config_t *cfg)
{
    return (sl_hls_config_t *)sl_config_get(cfg, &sl_hls_config_section);
}

/** This section's settings of one app (borrowed, like the app). */
static inline sl_hls_app_config_t *sl_hls_app_cfg(const sl_app_config_t *app)
{
    return (sl_hls_app_config_t *)sl_config_app_get(app, &sl_hls_config_section);
}

#endif
