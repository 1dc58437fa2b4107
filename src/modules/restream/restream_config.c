/*
 * The settings table of the restream module (see restream_config.h):
 * keys, types, defaults, bounds and docs, exactly as the YAML, the
 * environment and the generated docs show them.
 */
#include "modules/restream/restream_config.h"

#include <stddef.h>

#define C(f) offsetof(sl_restream_config_t, f)

static const sl_config_slot_t g_slots[] = {
    {"pull", SL_CONFIG_STRING, C(pull), "", 0, 65536, NULL,
     "Streams pulled from another server, one per line: `app/stream url [mode=always|on_demand] "
     "[idle_timeout=30s] [standby=/file.mp4] [rtsp_transport=tcp|udp]` (docs/restream.md).",
     0},
    {"push", SL_CONFIG_STRING, C(push), "", 0, 65536, NULL,
     "Live streams forwarded to RTMP(S)/SRT destinations, one per line: `app/stream url` or "
     "`app/* url` (every stream of the app; {stream} in the url is replaced, else /stream is "
     "appended).",
     0},
    {"max_pulls", SL_CONFIG_INT, C(max_pulls), "64", 0, 100000, NULL,
     "Most pulls on the server (configured and created through the API).", 0},
    {"max_pulls_per_app", SL_CONFIG_INT, C(max_pulls_per_app), "32", 0, 100000, NULL,
     "Most pulls into one app.", 0},
    {"max_pushes", SL_CONFIG_INT, C(max_pushes), "64", 0, 100000, NULL,
     "Most push rules on the server (configured and created through the API).", 0},
    {"max_pushes_per_app", SL_CONFIG_INT, C(max_pushes_per_app), "32", 0, 100000, NULL,
     "Most push rules of one app.", 0},
    {"max_outputs", SL_CONFIG_INT, C(max_outputs), "128", 0, 100000, NULL,
     "Most push connections running at once (a `*` rule opens one per live stream).", 0},
    {"idle_timeout", SL_CONFIG_DURATION, C(idle_timeout_ms), "30s", 1000, 24 * SL_CONFIG_HOUR,
     NULL, "An on_demand pull stops after this long without players (default of its entry).",
     0},
    {"on_demand_wait", SL_CONFIG_DURATION, C(on_demand_wait_ms), "10s", 0, 60 * SL_CONFIG_SEC,
     NULL, "A first player of an on_demand pull waits this long for the source to come up.", 0},
    {"open_timeout", SL_CONFIG_DURATION, C(open_timeout_ms), "10s", 500, 120 * SL_CONFIG_SEC,
     NULL, "Connecting to a source or a destination fails after this long.", 0},
    {"read_timeout", SL_CONFIG_DURATION, C(read_timeout_ms), "5s", 500, 120 * SL_CONFIG_SEC,
     NULL, "A source that sends nothing for this long is reconnected.", 0},
    {"retry_min", SL_CONFIG_DURATION, C(retry_min_ms), "500ms", 10, 60 * SL_CONFIG_SEC, NULL,
     "Reconnect backoff: first window (doubles per failure, jittered).", 0},
    {"retry_max", SL_CONFIG_DURATION, C(retry_max_ms), "30s", 100, SL_CONFIG_HOUR, NULL,
     "Reconnect backoff: longest wait.", 0},
    {"push_queue_bytes", SL_CONFIG_SIZE, C(push_queue_bytes), "8MB", 64 * SL_CONFIG_KB,
     512 * SL_CONFIG_MB, NULL,
     "Frames waiting for a slow push destination; past it the queue drops to the next keyframe.",
     0},
};

const sl_config_section_t sl_restream_config_section = {
    .name = "restream",
    .doc = "Restreaming: pulling streams from cameras and servers, pushing streams out",
    .size = sizeof(sl_restream_config_t),
    .slots = g_slots,
    .n_slots = sizeof g_slots / sizeof g_slots[0],
};
