/*
 * The settings table of the exec hooks module (see exec_hooks_config.h): keys, types, defaults,
 * bounds and docs, exactly as the YAML, the environment and the generated
 * docs show them.
 */
#include "modules/exec_hooks/exec_hooks_config.h"

#include <stddef.h>

static const sl_config_slot_t g_slots[] = {
    {"on_connect", SL_CONFIG_STRING, offsetof(sl_exec_config_t, on_connect), "", 0, 4095, NULL,
     "Command run when a client connects (event fields in SLUICE_* variables, see docs/integration/exec-hooks.md).", 0},
    {"on_disconnect", SL_CONFIG_STRING, offsetof(sl_exec_config_t, on_disconnect), "", 0, 4095, NULL,
     "Command run when a client disconnects.", 0},
    {"on_publish", SL_CONFIG_STRING, offsetof(sl_exec_config_t, on_publish), "", 0, 4095, NULL,
     "Command run when a stream starts (e.g. ffmpeg making a thumbnail).", 0},
    {"on_unpublish", SL_CONFIG_STRING, offsetof(sl_exec_config_t, on_unpublish), "", 0, 4095, NULL,
     "Command run when a stream ends.", 0},
    {"on_play", SL_CONFIG_STRING, offsetof(sl_exec_config_t, on_play), "", 0, 4095, NULL,
     "Command run when a player starts.", 0},
    {"on_play_stop", SL_CONFIG_STRING, offsetof(sl_exec_config_t, on_play_stop), "", 0, 4095, NULL,
     "Command run when a player stops.", 0},
    {"on_record_done", SL_CONFIG_STRING, offsetof(sl_exec_config_t, on_record_done), "", 0, 4095, NULL,
     "Command run when a recording is saved (its file in SLUICE_EVENT_PATH).", 0},
    {"timeout", SL_CONFIG_DURATION, offsetof(sl_exec_config_t, timeout_ms), "60s", 100, 24 * SL_CONFIG_HOUR, NULL,
     "A hook still running after this long is killed.", 0},
    {"max_concurrent", SL_CONFIG_INT, offsetof(sl_exec_config_t, max_concurrent), "4", 1, 1024, NULL,
     "Hooks running at once; more wait in a queue.", 0},
    {"shell", SL_CONFIG_BOOL, offsetof(sl_exec_config_t, shell), "false", 0, 0, NULL,
     "Run commands through /bin/sh -c (pipes, redirections); otherwise split on spaces and exec directly.", 0},
};

const sl_config_section_t sl_exec_config_section = {
    .name = "exec",
    .doc = "Commands run on events, without a shell unless exec.shell is set.",
    .size = sizeof(sl_exec_config_t),
    .slots = g_slots,
    .n_slots = sizeof g_slots / sizeof g_slots[0],
};
