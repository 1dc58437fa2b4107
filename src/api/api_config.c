/*
 * The settings table of the Server API (see api_config.h): keys, types, defaults,
 * bounds and docs, exactly as the YAML, the environment and the generated
 * docs show them.
 */
#include "api/api_config.h"

#include <stddef.h>

static const sl_config_slot_t g_slots[] = {
    {"access_token", SL_CONFIG_STRING, offsetof(sl_api_config_t, access_token), "", 0, 128, NULL,
     "Server API token (?accessToken= or Authorization: Bearer); empty = generate one in data_dir/api_token.", SL_CONFIG_RESTART},
    {"hosts", SL_CONFIG_STRING, offsetof(sl_api_config_t, hosts), "*", 0, 1023, NULL,
     "Comma-separated client addresses allowed to use the API (localhost matches loopback); * = any.", 0},
    {"auth_fail_limit", SL_CONFIG_INT, offsetof(sl_api_config_t, auth_fail_limit), "20", 1, 100000, NULL,
     "Failed token checks per address per minute before wrong tokens from the address get 429 (a right token always passes).", 0},
    {"auth_fail_max_addresses", SL_CONFIG_INT, offsetof(sl_api_config_t, auth_fail_max_addrs), "4096", 16, 1000000, NULL,
     "Addresses whose failed token checks are counted (IPv6 per /64); when full, the oldest record is forgotten.", 0},
    {"metrics_public", SL_CONFIG_BOOL, offsetof(sl_api_config_t, metrics_public), "true", 0, 0, NULL,
     "Serve /metrics without the token (for Prometheus scrapers).", 0},
};

const sl_config_section_t sl_api_config_section = {
    .name = "api",
    .doc = "The Red5 Pro-compatible Server API (/api/v1) and metrics.",
    .size = sizeof(sl_api_config_t),
    .slots = g_slots,
    .n_slots = sizeof g_slots / sizeof g_slots[0],
};
