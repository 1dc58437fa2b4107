/*
 * The settings table of the abr module (see abr_config.h): keys, types,
 * defaults, bounds and docs, as the YAML, the environment and the
 * generated docs show them.
 */
#include "modules/abr/abr_config.h"

#include <stddef.h>

#define C(f) offsetof(sl_abr_config_t, f)

static const sl_config_slot_t g_slots[] = {
    {"enabled", SL_CONFIG_BOOL, C(enabled), "false", 0, 0, NULL,
     "Run the ABR transcoder: make the variants of provisioned streams (with a cluster, only on "
     "nodes of role transcoder or all; docs/abr.md).",
     0},
    {"provisions", SL_CONFIG_STRING, C(provisions), "", 0, 65536, NULL,
     "Provisions held by this node: one JSON provision (Red5 SM 2.0 shape) or a JSON array of "
     "them; more can be added through /api/v1/abr/provisions.",
     0},
    {"preset", SL_CONFIG_STRING, C(preset), "veryfast", 1, 32, NULL,
     "x264 preset of the variants (ultrafast, superfast, veryfast, faster, fast, medium).", 0},
    {"max_transcoders", SL_CONFIG_INT, C(max_transcoders), "4", 0, 1024, NULL,
     "Most provisioned sources transcoded at once (each uses about one core at 720p).", 0},
    {"max_provisions", SL_CONFIG_INT, C(max_provisions), "256", 1, 100000, NULL,
     "Most provisions held (configuration, API and cluster together).", 0},
    {"settings_interval", SL_CONFIG_DURATION, C(settings_interval_ms), "1s", 100,
     60 * SL_CONFIG_SEC, NULL,
     "How often the cluster's provision settings (provision/...) are read again.", 0},
};

const sl_config_section_t sl_abr_config_section = {
    .name = "abr",
    .doc = "ABR variants: stream provisions and the video transcoder (Red5 Pro's transcoder role)",
    .size = sizeof(sl_abr_config_t),
    .slots = g_slots,
    .n_slots = sizeof g_slots / sizeof g_slots[0],
};
