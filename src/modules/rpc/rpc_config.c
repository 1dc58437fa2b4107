/*
 * The RPC module's settings table (see rpc_config.h): one place that
 * drives the YAML keys, the SLUICE_RPC_* environment overrides, sluice.yml
 * and docs/config.md.
 */
#include "modules/rpc/rpc_config.h"

#include <stddef.h>

static const sl_config_slot_t g_slots[] = {
    {"max_calls", SL_CONFIG_INT, offsetof(sl_rpc_config_t, max_calls), "1000", 1, 1000000, NULL,
     "Client calls (NetConnection.call, /invoke) in flight in the whole server; more are refused.", 0},
    {"max_invokes", SL_CONFIG_INT, offsetof(sl_rpc_config_t, max_invokes), "1000", 1, 1000000, NULL,
     "Server-to-client invokes (POST .../invoke) in flight in the whole server; more are refused.", 0},
};

static const sl_config_slot_t g_app_slots[] = {
    {"rpc_url", SL_CONFIG_STRING, offsetof(sl_rpc_app_config_t, rpc_url), "", 0, 4095, NULL,
     "Business server for client calls no handler takes (POST {app,session,method,params,username}); \"\" = none.", 0},
    {"rpc_timeout", SL_CONFIG_DURATION, offsetof(sl_rpc_app_config_t, rpc_timeout_ms), "10s", 100,
     5 * SL_CONFIG_MINUTE, NULL, "A client call without an answer by then fails (never retried).", 0},
    {"rpc_max_reply_bytes", SL_CONFIG_SIZE, offsetof(sl_rpc_app_config_t, rpc_max_reply_bytes), "64k", 16,
     16 * 1024 * 1024, NULL, "Largest reply (business server or handler) passed back to a caller.", 0},
    {"rpc_max_calls_per_client", SL_CONFIG_INT, offsetof(sl_rpc_app_config_t, rpc_max_calls_per_client), "8",
     1, 1000, NULL, "Calls one client may have in flight; more are refused at once.", 0},
};

const sl_config_section_t sl_rpc_config_section = {
    .name = "rpc",
    .doc = "Remote calls: clients to handlers or the business server, and the server to clients.",
    .size = sizeof(sl_rpc_config_t),
    .slots = g_slots,
    .n_slots = sizeof g_slots / sizeof g_slots[0],
    .app_size = sizeof(sl_rpc_app_config_t),
    .app_slots = g_app_slots,
    .n_app_slots = sizeof g_app_slots / sizeof g_app_slots[0],
};
