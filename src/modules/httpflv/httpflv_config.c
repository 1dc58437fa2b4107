/*
 * The settings table of the HTTP-FLV module (see httpflv_config.h): keys, types, defaults,
 * bounds and docs, exactly as the YAML, the environment and the generated
 * docs show them.
 */
#include "modules/httpflv/httpflv_config.h"

#include <stddef.h>

static const sl_config_slot_t g_app_slots[] = {
    {"httpflv", SL_CONFIG_BOOL, offsetof(sl_httpflv_app_config_t, httpflv), "true", 0, 0, NULL,
     "Serve this app's live streams as HTTP-FLV at /{app}/{stream}.flv.", 0},
};

const sl_config_section_t sl_httpflv_config_section = {
    .name = NULL,
    .doc = NULL,
    .app_size = sizeof(sl_httpflv_app_config_t),
    .app_slots = g_app_slots,
    .n_app_slots = sizeof g_app_slots / sizeof g_app_slots[0],
};
