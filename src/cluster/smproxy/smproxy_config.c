/*
 * The settings table of the stream manager proxy (see smproxy_config.h):
 * keys, types, defaults, bounds and docs, exactly as the YAML, the
 * environment and the generated docs show them.
 */
#include "cluster/smproxy/smproxy_config.h"

#include <stddef.h>

#define OFF(f) offsetof(sl_smproxy_config_t, f)

static const sl_config_slot_t g_slots[] = {
    {"enabled", SL_CONFIG_BOOL, OFF(enabled), "false", 0, 0, NULL,
     "Serve Red5 SM 2.0's proxy on this node (the stream manager): /as/v1/proxy/whip|whep/{app}/{stream}, /as/v1/proxy/ws/..., /as/v1/proxy/forward/?target=. Needs cluster mode.", 0},
    {"timeout", SL_CONFIG_DURATION, OFF(timeout_ms), "10s", 100, 5 * SL_CONFIG_MINUTE, NULL,
     "Time a node has to answer one forwarded request (connect included); past it the client gets 504.", 0},
    {"max_body", SL_CONFIG_SIZE, OFF(max_body_bytes), "64k", 1024, 16 * SL_CONFIG_MB, NULL,
     "Largest request body forwarded (an SDP offer, a trickle fragment, a forwarded API call); larger gets 413.", 0},
    {"max_response", SL_CONFIG_SIZE, OFF(max_response_bytes), "1MB", 4 * SL_CONFIG_KB, 64 * SL_CONFIG_MB, NULL,
     "Largest node answer held and passed on; a larger one gets 502.", 0},
    {"max_requests", SL_CONFIG_INT, OFF(max_requests), "512", 1, 1000000, NULL,
     "Forwarded HTTP requests in flight on this node; past it clients get 503.", 0},
    {"max_requests_per_address", SL_CONFIG_INT, OFF(max_requests_per_addr), "16", 1, 1000000, NULL,
     "Forwarded HTTP requests in flight per client address; past it the address gets 429.", 0},
    {"ws_max_sessions", SL_CONFIG_INT, OFF(ws_max_sessions), "1024", 1, 1000000, NULL,
     "WebSocket proxy sessions open on this node; past it upgrades get 503.", 0},
    {"ws_max_per_address", SL_CONFIG_INT, OFF(ws_max_per_addr), "16", 1, 1000000, NULL,
     "WebSocket proxy sessions per client address; past it the address gets 429.", 0},
    {"ws_max_buffered", SL_CONFIG_SIZE, OFF(ws_max_buffered_bytes), "256k", 4 * SL_CONFIG_KB, 64 * SL_CONFIG_MB, NULL,
     "Bytes queued per direction of one WebSocket proxy session (the slower side's backlog); past it the session is closed.", 0},
    {"ws_idle_timeout", SL_CONFIG_DURATION, OFF(ws_idle_timeout_ms), "60s", 1 * SL_CONFIG_SEC, 24 * SL_CONFIG_HOUR, NULL,
     "A WebSocket proxy session with no byte either way for this long is closed.", 0},
};

const sl_config_section_t sl_smproxy_config_section = {
    .name = "sm_proxy",
    .doc = "The stream manager's proxy (Red5 SM 2.0 /as/v1/proxy): WHIP/WHEP, WebSocket and Server API forwarding to the cluster's nodes.",
    .size = sizeof(sl_smproxy_config_t),
    .slots = g_slots,
    .n_slots = sizeof g_slots / sizeof g_slots[0],
};
