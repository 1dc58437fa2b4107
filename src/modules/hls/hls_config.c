/*
 * The settings table of the HLS module (see hls_config.h): keys, types, defaults,
 * bounds and docs, exactly as the YAML, the environment and the generated
 * docs show them.
 */
#include "modules/hls/hls_config.h"

#include <stddef.h>

/* Index order is the value: it must match sl_hls_format_t. */
static const char *const hls_format_names[] = {"ts", "fmp4", NULL};

static const sl_config_slot_t g_slots[] = {
    {"session_timeout", SL_CONFIG_DURATION, offsetof(sl_hls_config_t, session_timeout_ms), "30s", 1 * SL_CONFIG_SEC, 1 * SL_CONFIG_HOUR,
     NULL, "An HLS player that sends no request for this long has left (play_stop is emitted).", 0},
    {"max_sessions", SL_CONFIG_INT, offsetof(sl_hls_config_t, max_sessions), "5000", 1, 1000000, NULL,
     "HLS player sessions in all (they are not connections: server.max_connections does not count "
     "them); past it a new player gets 429.", 0},
    {"max_sessions_per_address", SL_CONFIG_INT, offsetof(sl_hls_config_t, max_sessions_per_address), "200", 1, 1000000,
     NULL, "HLS player sessions from one client address (viewers behind one NAT share it: raise it "
     "for a large office); past it a new player from that address gets 429.", 0},
};

static const sl_config_slot_t g_app_slots[] = {
    {"hls", SL_CONFIG_BOOL, offsetof(sl_hls_app_config_t, hls), "true", 0, 0, NULL,
     "Serve this app's live streams as HLS at /{app}/{stream}.m3u8 (Red5's HLS plugin).", 0},
    {"hls_segment", SL_CONFIG_DURATION, offsetof(sl_hls_app_config_t, hls_segment_ms), "6s", 1 * SL_CONFIG_SEC, 60 * SL_CONFIG_SEC, NULL,
     "HLS segment length (Red5 itemLength): a segment is cut at the first keyframe after it.", 0},
    {"hls_window", SL_CONFIG_INT, offsetof(sl_hls_app_config_t, hls_window), "5", 1, 100, NULL,
     "HLS segments listed in the live playlist (Red5 itemCount).", 0},
    {"hls_format", SL_CONFIG_ENUM, offsetof(sl_hls_app_config_t, hls_format), "ts", 0, 0, hls_format_names,
     "HLS segment container: MPEG-TS, or fragmented MP4 (CMAF).", 0},
    {"hls_low_latency", SL_CONFIG_BOOL, offsetof(sl_hls_app_config_t, hls_low_latency), "false", 0, 0, NULL,
     "Low-Latency HLS: partial segments, blocking playlist reload, preload hints (implies fmp4).", 0},
    {"hls_part", SL_CONFIG_DURATION, offsetof(sl_hls_app_config_t, hls_part_ms), "333ms", 100, 2 * SL_CONFIG_SEC, NULL,
     "Low-Latency HLS partial segment length (PART-TARGET).", 0},
    {"hls_disk", SL_CONFIG_BOOL, offsetof(sl_hls_app_config_t, hls_disk), "false", 0, 0, NULL,
     "Also write HLS segments and playlists under {data_dir}/{app}/streams/hls/ (Red5 useDiskWrites).", 0},
};

const sl_config_section_t sl_hls_config_section = {
    .name = "hls",
    .doc = "HLS and Low-Latency HLS players (per-app settings: apps.<name>.hls*).",
    .size = sizeof(sl_hls_config_t),
    .slots = g_slots,
    .n_slots = sizeof g_slots / sizeof g_slots[0],
    .app_size = sizeof(sl_hls_app_config_t),
    .app_slots = g_app_slots,
    .n_app_slots = sizeof g_app_slots / sizeof g_app_slots[0],
};
