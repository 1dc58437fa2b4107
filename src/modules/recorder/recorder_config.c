/*
 * The settings table of the recorder module (see recorder_config.h): keys, types, defaults,
 * bounds and docs, exactly as the YAML, the environment and the generated
 * docs show them.
 */
#include "modules/recorder/recorder_config.h"

#include <stddef.h>

/* Index order is the value: it must match sl_record_format_t. */
static const char *const record_format_names[] = {"flv", "mp4", NULL};

static const sl_config_slot_t g_slots[] = {
    {"queue_max", SL_CONFIG_SIZE, offsetof(sl_recorder_config_t, queue_max_bytes), "64MB", 64 * SL_CONFIG_KB, 4 * SL_CONFIG_GB, NULL,
     "Bytes one recording may have waiting for the disk; past it frames are dropped up to the next keyframe.", SL_CONFIG_RESTART},
};

static const sl_config_slot_t g_app_slots[] = {
    {"record", SL_CONFIG_BOOL, offsetof(sl_recorder_app_config_t, record), "false", 0, 0, NULL,
     "Record every stream published to this app to {data_dir}/{app}/streams/ (as if published with mode record).", 0},
    {"record_pattern", SL_CONFIG_STRING, offsetof(sl_recorder_app_config_t, record_pattern), "", 0, 255, NULL,
     "File name of policy recordings: {name} is the stream name, strftime fields allowed (e.g. {name}_%Y%m%d-%H%M%S); empty = the stream name.", 0},
    {"record_format", SL_CONFIG_ENUM, offsetof(sl_recorder_app_config_t, record_format), "flv", 0, 0, record_format_names,
     "Container of this app's recordings when the name has no extension: flv, or mp4 (fragmented; a name ending in .mp4 always picks it).", 0},
};

const sl_config_section_t sl_recorder_config_section = {
    .name = "recorder",
    .doc = "Recording to FLV or fragmented MP4 under {data_dir}/{app}/streams/ (per-app settings: apps.<name>.record*).",
    .size = sizeof(sl_recorder_config_t),
    .slots = g_slots,
    .n_slots = sizeof g_slots / sizeof g_slots[0],
    .app_size = sizeof(sl_recorder_app_config_t),
    .app_slots = g_app_slots,
    .n_app_slots = sizeof g_app_slots / sizeof g_app_slots[0],
};
