/*
 * libFuzzer target for the configuration loader (src/base/config.c): the
 * input is a sluice.yml. Each run fills the defaults, loads the input over
 * them with a no-op error callback and frees everything; it aborts if the
 * counted allocator is not back where it started, so a leak on any error
 * path is a finding, not just a crash. Seeds live in
 * tests/fuzz/corpus/config/; the same file links with the shared corpus
 * replayer so every `make test` runs them.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/alloc.h"
#include "base/config.h"
#include "proto/rtmp/rtmp_config.h"
#include "builtin_config.h"

static void ignore_error(void *ud, const char *where, int line, const char *msg)
{
    (void)ud;
    (void)where;
    (void)line;
    (void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Entry point called by libFuzzer (or the replayer) once per input; always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_config_t cfg;
    int64_t before = sl_alloc_bytes();
    if (sl_config_defaults(&cfg) != 0)
        return 0;
    sl_config_load_string(&cfg, (const char *)data, size, "fuzz.yml", ignore_error, NULL);
    /* Whatever was loaded must still be a well-formed config. */
    for (size_t i = 0; i < cfg.n_apps; i++)
        if (!cfg.apps[i].name || !sl_config_app(&cfg, cfg.apps[i].name))
            abort();
    if (!cfg.server_data_dir || !cfg.server_node_name || !sl_rtmp_cfg(&cfg)->bind)
        abort();
    sl_config_cleanup(&cfg);
    if (sl_alloc_bytes() != before)
        abort();
    return 0;
}
