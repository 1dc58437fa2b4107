/*
 * The settings table of the relay module (see relay_config.h): keys,
 * types, defaults, bounds and docs, exactly as the YAML, the environment
 * and the generated docs show them.
 */
#include "cluster/relay/relay_config.h"

#include <stddef.h>

#define C(f) offsetof(sl_relay_config_t, f)

static const sl_config_slot_t g_slots[] = {
    {"enabled", SL_CONFIG_BOOL, C(enabled), "false", 0, 0, NULL,
     "Relay streams between nodes: a play of a stream not live here pulls it from its origin "
     "(or a relay) over RTMP; with a password, admit other nodes' pulls. On by itself when "
     "cluster.enabled is.",
     0},
    {"origins", SL_CONFIG_STRING, C(origins), "", 0, 4096, NULL,
     "Static clustering without Redis (Red5's cluster.xml `origins`): the nodes streams are "
     "pulled from, `host[:port]` (RTMP, port 1935 by default) separated by commas or spaces, "
     "tried in order. Unused when the cluster service names the origin.",
     0},
    {"password", SL_CONFIG_STRING, C(password), "", 0, 256, NULL,
     "The cluster password nodes present to each other (`restreamer=`), when cluster.password "
     "is not set. Empty: relay connections are not recognised (they go through the normal "
     "checks).",
     0},
    {"idle_timeout", SL_CONFIG_DURATION, C(idle_timeout_ms), "10s", 500, SL_CONFIG_HOUR, NULL,
     "A pull stops after this long without players.", 0},
    {"wait", SL_CONFIG_DURATION, C(wait_ms), "10s", 0, 60 * SL_CONFIG_SEC, NULL,
     "A first player of a stream being pulled waits this long for its first keyframe.", 0},
    {"open_timeout", SL_CONFIG_DURATION, C(open_timeout_ms), "5s", 500, 120 * SL_CONFIG_SEC,
     NULL, "Connecting to an upstream (up to NetStream.Play.Start) fails after this long.", 0},
    {"read_timeout", SL_CONFIG_DURATION, C(read_timeout_ms), "5s", 500, 120 * SL_CONFIG_SEC,
     NULL, "An upstream that sends nothing for this long is lost.", 0},
    {"retry_min", SL_CONFIG_DURATION, C(retry_min_ms), "250ms", 10, 60 * SL_CONFIG_SEC, NULL,
     "Upstream lost while players stay: first retry window (doubles per failure, jittered).",
     0},
    {"retry_max", SL_CONFIG_DURATION, C(retry_max_ms), "4s", 10, SL_CONFIG_HOUR, NULL,
     "Upstream lost: longest retry window.", 0},
    {"give_up", SL_CONFIG_DURATION, C(give_up_ms), "20s", 0, SL_CONFIG_HOUR, NULL,
     "Upstream lost: after this long without it the stream is unpublished here.", 0},
    {"max_pulls", SL_CONFIG_INT, C(max_pulls), "256", 0, 100000, NULL,
     "Most pulls running on this node at once (one per stream).", 0},
    {"max_message_size", SL_CONFIG_SIZE, C(max_message_size), "8MB", 64 * SL_CONFIG_KB,
     64 * SL_CONFIG_MB, NULL, "Largest RTMP message accepted from an upstream.", 0},
    {"max_hops", SL_CONFIG_INT, C(max_hops), "4", 1, 16, NULL,
     "Most relay links in a chain (edge <- relay <- origin is 2): a loop of static origins "
     "ends here.",
     0},
};

const sl_config_section_t sl_relay_config_section = {
    .name = "relay",
    .doc = "Cluster relay: edges and relays pull streams from origins over RTMP on demand",
    .size = sizeof(sl_relay_config_t),
    .slots = g_slots,
    .n_slots = sizeof g_slots / sizeof g_slots[0],
};
