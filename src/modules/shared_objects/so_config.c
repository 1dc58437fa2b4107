/*
 * The settings table of the shared_objects module (see so_config.h): keys,
 * types, defaults, bounds and docs, exactly as the YAML, the environment
 * and the generated docs show them.
 */
#include "modules/shared_objects/so_config.h"

#include <stddef.h>

static const sl_config_slot_t g_slots[] = {
    {"enabled", SL_CONFIG_BOOL, offsetof(sl_so_config_t, enabled), "true", 0, 0, NULL,
     "Remote Shared Objects (RTMP message types 16/19, the sharedobjects API); off = RTMP SO messages are ignored.", 0},
};

static const sl_config_slot_t g_app_slots[] = {
    {"so_max_objects", SL_CONFIG_INT, offsetof(sl_so_app_config_t, so_max_objects), "100", 0, 1000000, NULL,
     "Shared objects this app may hold at once (persistent ones included); 0 = shared objects off for the app.", 0},
    {"so_max_keys", SL_CONFIG_INT, offsetof(sl_so_app_config_t, so_max_keys), "1000", 1, 1000000, NULL,
     "Attributes one shared object may hold.", 0},
    {"so_max_value_bytes", SL_CONFIG_SIZE, offsetof(sl_so_app_config_t, so_max_value_bytes), "64k", 16, 16 * SL_CONFIG_MB, NULL,
     "Largest attribute value or message, measured as JSON text.", 0},
    {"so_max_object_bytes", SL_CONFIG_SIZE, offsetof(sl_so_app_config_t, so_max_object_bytes), "1m", 64, 256 * SL_CONFIG_MB, NULL,
     "Largest shared object (all its keys and values as JSON text).", 0},
    {"so_max_updates_per_sec", SL_CONFIG_INT, offsetof(sl_so_app_config_t, so_max_updates_per_sec), "100", 1, 1000000, NULL,
     "Updates (set, delete, send) one client may make per second on one object; more are refused with SharedObject.UpdateRateExceeded.", 0},
    {"so_max_subscribers", SL_CONFIG_INT, offsetof(sl_so_app_config_t, so_max_subscribers), "1000", 1, 1000000, NULL,
     "Clients connected to one shared object at once.", 0},
};

const sl_config_section_t sl_so_config_section = {
    .name = "shared_objects",
    .doc = "Remote Shared Objects (per-app limits: apps.<name>.so_max_*; see docs/integration/shared-objects.md).",
    .size = sizeof(sl_so_config_t),
    .slots = g_slots,
    .n_slots = sizeof g_slots / sizeof g_slots[0],
    .app_size = sizeof(sl_so_app_config_t),
    .app_slots = g_app_slots,
    .n_app_slots = sizeof g_app_slots / sizeof g_app_slots[0],
};
