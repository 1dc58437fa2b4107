/*
 * The settings table of the stream manager (see sm_config.h): keys,
 * types, defaults, bounds and docs, exactly as the YAML, the environment
 * and the generated docs show them.
 */
#include "cluster/streammanager/sm_config.h"

#include <stddef.h>

#define C(f) offsetof(sl_sm_config_t, f)

static const sl_config_slot_t g_slots[] = {
    {"enabled", SL_CONFIG_BOOL, C(enabled), "false", 0, 0, NULL,
     "Answer Red5's Stream Manager APIs (/streammanager/api/4.0 and /as/v1) on this node; needs "
     "cluster.enabled (docs/stream-manager.md).",
     SL_CONFIG_RESTART},
    {"admin_token", SL_CONFIG_STRING, C(admin_token), "", 0, 128, NULL,
     "SM 4.0 admin token (?accessToken=, Red5's rest.administratorToken); empty = generate one "
     "into data_dir/sm_admin_token.",
     SL_CONFIG_RESTART},
    {"auth_secret", SL_CONFIG_STRING, C(auth_secret), "", 0, 256, NULL,
     "SM 2.0 JWT signing secret (HS256, R5AS_AUTH_SECRET), at least 32 bytes; empty = generate "
     "one into data_dir/sm_auth_secret.",
     SL_CONFIG_RESTART},
    {"jwt_ttl", SL_CONFIG_DURATION, C(jwt_ttl_ms), "400m", 60 * SL_CONFIG_SEC,
     30 * 24 * SL_CONFIG_HOUR, NULL,
     "Lifetime of a token from PUT /as/v1/auth/login (R5AS_AUTH_JWT_TTL_MINUTES).", 0},
    {"admin_user", SL_CONFIG_STRING, C(admin_user), "admin", 1, 64, NULL,
     "SM 2.0 admin user (R5AS_AUTH_USER).", SL_CONFIG_RESTART},
    {"admin_password", SL_CONFIG_STRING, C(admin_password), "", 0, 128, NULL,
     "SM 2.0 admin password (R5AS_AUTH_PASS); empty = generate one into "
     "data_dir/sm_admin_password (there is no default password).",
     SL_CONFIG_RESTART},
    {"proxy_user", SL_CONFIG_STRING, C(proxy_user), "proxy", 0, 64, NULL,
     "SM 2.0 proxy user (R5AS_PROXY_USER); empty = none.", SL_CONFIG_RESTART},
    {"proxy_password", SL_CONFIG_STRING, C(proxy_password), "", 0, 128, NULL,
     "SM 2.0 proxy password (R5AS_PROXY_PASS); empty = generate one into "
     "data_dir/sm_proxy_password.",
     SL_CONFIG_RESTART},
    {"weights", SL_CONFIG_STRING, C(weights), "streams=1 connections=1 subscribers=1 memory=1 restreamer=1 cpu=1",
     0, 512, NULL,
     "Node choice weights (Red5's instanceevaluator.<metric>.metricweight): streams, connections, "
     "subscribers, memory, restreamer, cpu; the least loaded node wins.",
     0},
    {"node_timeout", SL_CONFIG_DURATION, C(node_timeout_ms), "0", 0, 10 * SL_CONFIG_MINUTE, NULL,
     "A node whose last load report is older than this is never named; 0 = cluster.lease.", 0},
    {"max_endpoints", SL_CONFIG_INT, C(max_endpoints), "10", 1, 100, NULL,
     "Most nodes one lookup may ask for (endpoints=N).", 0},
    {"lookups_per_minute", SL_CONFIG_INT, C(lookups_per_minute), "600", 1, 1000000, NULL,
     "Stream Manager requests per client address per minute (IPv6 per /64) before 429.", 0},
    {"max_addresses", SL_CONFIG_INT, C(max_addresses), "4096", 16, 1000000, NULL,
     "Addresses whose requests are counted; when full, the oldest record is forgotten.", 0},
    {"auth_fail_limit", SL_CONFIG_INT, C(auth_fail_limit), "20", 1, 100000, NULL,
     "Failed logins and admin tokens per address per minute before 429.", 0},
};

const sl_config_section_t sl_sm_config_section = {
    .name = "stream_manager",
    .doc = "Stream manager: Red5 Pro's SM 4.0 and SM 2.0 lookups and admin over the cluster",
    .size = sizeof(sl_sm_config_t),
    .slots = g_slots,
    .n_slots = sizeof g_slots / sizeof g_slots[0],
};
