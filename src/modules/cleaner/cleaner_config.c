/*
 * The settings table of the cleaner module (see cleaner_config.h): keys, types, defaults,
 * bounds and docs, exactly as the YAML, the environment and the generated
 * docs show them.
 */
#include "modules/cleaner/cleaner_config.h"

#include <stddef.h>

static const sl_config_slot_t g_slots[] = {
    {"interval", SL_CONFIG_DURATION, offsetof(sl_cleaner_config_t, interval_ms), "10m", 1 * SL_CONFIG_SEC, 24 * SL_CONFIG_HOUR, NULL,
     "Time between two sweeps of the recordings of apps with record_max_age or record_max_bytes.", 0},
};

static const sl_config_slot_t g_app_slots[] = {
    {"record_max_age", SL_CONFIG_DURATION, offsetof(sl_cleaner_app_config_t, record_max_age_ms), "0", 0, 87600 * SL_CONFIG_HOUR, NULL,
     "The cleaner deletes this app's recordings older than this (never one being written or waiting for upload); 0 = keep them.", 0},
    {"record_max_bytes", SL_CONFIG_SIZE, offsetof(sl_cleaner_app_config_t, record_max_bytes), "0", 0, 1024 * 1024 * SL_CONFIG_GB, NULL,
     "The cleaner deletes this app's oldest recordings while they take more than this; 0 = no quota.", 0},
};

const sl_config_section_t sl_cleaner_config_section = {
    .name = "cleaner",
    .doc = "Deletes old recordings (per-app settings: apps.<name>.record_max_age, record_max_bytes).",
    .size = sizeof(sl_cleaner_config_t),
    .slots = g_slots,
    .n_slots = sizeof g_slots / sizeof g_slots[0],
    .app_size = sizeof(sl_cleaner_app_config_t),
    .app_slots = g_app_slots,
    .n_app_slots = sizeof g_app_slots / sizeof g_app_slots[0],
};
