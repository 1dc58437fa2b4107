/*
 * The exec hooks module: its settings, a section of the configuration (base/config.h).
 *
 * The table in exec_hooks_config.c declares every key (YAML `exec.*`, env SLUICE_EXEC_<KEY>); the engine fills the structs
 * below, which the owner reads with sl_exec_cfg(cfg).
 */
#ifndef SL_MODULES_EXEC_HOOKS_EXEC_HOOKS_CONFIG_H
#define SL_MODULES_EXEC_HOOKS_EXEC_HOOKS_CONFIG_H

#include <stdint.h>

#include "base/config.h"

/* The `exec` section. */
typedef struct sl_exec_config {
    char *on_connect;
    char *on_disconnect;
    char *on_publish;
    char *on_unpublish;
    char *on_play;
    char *on_play_stop;
    char *on_record_done;
    int64_t timeout_ms;
    int64_t max_concurrent;
    int shell;
} sl_exec_config_t;

/** The section descriptor, to list in the configuration (see src/builtin_config.c). */
extern const sl_config_section_t sl_exec_config_section;

/** This section of cfg (borrowed; never NULL once the section is registered). */
static inline sl_exec_config_t *sl_exec_cfg(const sl_config_t *cfg)
{
    return (sl_exec_config_t *)sl_config_get(cfg, &sl_exec_config_section);
}

#endif
