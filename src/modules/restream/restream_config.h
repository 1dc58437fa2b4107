/*
 * The restream module's settings (section `restream`; see
 * restream_config.c for the table): the pulls and pushes configured in
 * sluice.yml, as text with one entry per line (restream_spec.h parses
 * them), and the budgets, timeouts and retry pacing every pull and push
 * shares.
 */
#ifndef SL_MODULES_RESTREAM_CONFIG_H
#define SL_MODULES_RESTREAM_CONFIG_H

#include <stdint.h>

#include "base/config.h"

typedef struct sl_restream_config {
    char *pull;                 /* pull entries, one per line (restream_spec.h) */
    char *push;                 /* push entries, one per line */
    int64_t max_pulls;          /* pulls on the server (config and API) */
    int64_t max_pulls_per_app;
    int64_t max_pushes;         /* push rules on the server */
    int64_t max_pushes_per_app;
    int64_t max_outputs;        /* running push outputs on the server ("*" rules make several) */
    int64_t idle_timeout_ms;    /* on_demand pulls: stop after this long without players */
    int64_t on_demand_wait_ms;  /* a first player waits this long for the source */
    int64_t open_timeout_ms;    /* connecting to a source or destination */
    int64_t read_timeout_ms;    /* no data from a source for this long: reconnect */
    int64_t retry_min_ms;       /* reconnect backoff: first window */
    int64_t retry_max_ms;       /* reconnect backoff: cap */
    int64_t push_queue_bytes;   /* frames waiting for a slow destination */
} sl_restream_config_t;

/** The section descriptor (listed in src/builtin_config.c). */
extern const sl_config_section_t sl_restream_config_section;

/** The section's settings of cfg (borrowed, like cfg). */
static inline const sl_restream_config_t *sl_restream_cfg(const sl_config_t *cfg)
{
    return (const sl_restream_config_t *)sl_config_get(cfg, &sl_restream_config_section);
}

#endif
