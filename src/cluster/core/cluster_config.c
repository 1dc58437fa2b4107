/*
 * The settings table of the cluster core (see cluster_config.h): keys,
 * types, defaults, bounds and docs, exactly as the YAML, the environment
 * (SLUICE_CLUSTER_<KEY>) and the generated docs show them.
 */
#include "cluster/core/cluster_config.h"

#include <stddef.h>

const char *const sl_cluster_role_names[] = {"all", "origin", "edge", "relay", "transcoder", NULL};

#define O(f) offsetof(sl_cluster_config_t, f)
#define R SL_CONFIG_RESTART

static const sl_config_slot_t g_slots[] = {
    {"enabled", SL_CONFIG_BOOL, O(enabled), "false", 0, 0, NULL,
     "Join a cluster coordinated through Redis (docs/cluster.md). Off: a single node, no Redis.", R},
    {"redis", SL_CONFIG_STRING, O(redis), "127.0.0.1:6379", 1, 1024, NULL,
     "Redis address(es), host:port separated by commas ([v6]:port for IPv6), tried in turn.", R},
    {"sentinel", SL_CONFIG_STRING, O(sentinel), "", 0, 1024, NULL,
     "Redis Sentinel address(es), host:port separated by commas; set: the master comes from them and redis is ignored.", R},
    {"sentinel_master", SL_CONFIG_STRING, O(sentinel_master), "mymaster", 1, 128, NULL,
     "The master's name the Sentinels monitor.", R},
    {"redis_cluster", SL_CONFIG_BOOL, O(redis_cluster), "false", 0, 0, NULL,
     "The redis addresses are Redis Cluster seed nodes: every key gets one hash tag (sluice: -> "
     "{sluice}:), MOVED and ASK are followed; needs redis_db 0 and no sentinel.", R},
    {"redis_password", SL_CONFIG_STRING, O(redis_password), "", 0, 512, NULL,
     "Redis AUTH password (a secret: never logged nor shown by the API); empty = none.", R},
    {"redis_username", SL_CONFIG_STRING, O(redis_username), "", 0, 256, NULL,
     "Redis 6 ACL user: with it, AUTH <user> <redis_password>; empty = the default user "
     "(AUTH <redis_password>).", R},
    {"redis_db", SL_CONFIG_INT, O(redis_db), "0", 0, 1024, NULL,
     "Redis database index (SELECT); 0 with redis_cluster (Redis Cluster has only db 0).", R},
    {"prefix", SL_CONFIG_STRING, O(prefix), "sluice:", 0, 64, NULL,
     "Prefix of every Redis key and of the pub/sub channel: clusters sharing one Redis differ by it.", R},
    {"password", SL_CONFIG_STRING, O(password), "", 0, 512, NULL,
     "The cluster password nodes authenticate to each other with (Red5's cluster.password; a secret).", R},
    {"node_id", SL_CONFIG_STRING, O(node_id), "", 0, 63, NULL,
     "This node's id, [A-Za-z0-9._-]; empty = generated at start (stable for the process's life).", R},
    {"role", SL_CONFIG_ENUM, O(role), "all", 0, 0, sl_cluster_role_names,
     "This node's role: origin (takes publishers), edge (serves players), relay, transcoder, or all.", R},
    {"group", SL_CONFIG_STRING, O(group), "default", 1, 63, NULL,
     "Node group (Red5 SM 2.0 nodeGroup).", R},
    {"region", SL_CONFIG_STRING, O(region), "", 0, 63, NULL,
     "Region this node is in (stream manager lookups by region); empty = none.", R},
    {"public_host", SL_CONFIG_STRING, O(public_host), "", 0, 255, NULL,
     "Address clients reach this node at; empty = the RTMP listener's bind address (127.0.0.1 for 0.0.0.0).", R},
    {"private_host", SL_CONFIG_STRING, O(private_host), "", 0, 255, NULL,
     "Address other nodes reach this node at; empty = public_host.", R},
    {"lease", SL_CONFIG_DURATION, O(lease_ms), "5s", 500, 10 * SL_CONFIG_MINUTE, NULL,
     "Lease of this node's record and placements: a node that stops reporting disappears after it.", R},
    {"report_interval", SL_CONFIG_DURATION, O(report_interval_ms), "1s", 100, SL_CONFIG_MINUTE, NULL,
     "Time between two load reports and snapshot refreshes (must be under lease).", R},
    {"command_timeout", SL_CONFIG_DURATION, O(command_timeout_ms), "2s", 100, SL_CONFIG_MINUTE, NULL,
     "A Redis command (or connection attempt) without an answer this long drops the link and reconnects.", R},
    {"reconnect_max", SL_CONFIG_DURATION, O(reconnect_max_ms), "5s", 100, 10 * SL_CONFIG_MINUTE, NULL,
     "Cap of the backoff between two attempts to reach Redis.", R},
};

const sl_config_section_t sl_cluster_config_section = {
    .name = "cluster",
    .doc = "Cluster mode (docs/cluster.md): node registry, stream placement and messages between nodes over Redis.",
    .size = sizeof(sl_cluster_config_t),
    .slots = g_slots,
    .n_slots = sizeof g_slots / sizeof g_slots[0],
};
