/*
 * The cluster core's settings (section `cluster`; the table is in
 * cluster_config.c): whether this node joins a cluster, where Redis is
 * (addresses, Sentinels and a master name, or Redis Cluster seed nodes),
 * the cluster password, and
 * what this node says of itself in its record (id, role, group, region,
 * the hosts clients and nodes reach it at), with the lease and report
 * interval that pace the record. Read by src/cluster/core/cluster.c only.
 */
#ifndef SL_CLUSTER_CORE_CLUSTER_CONFIG_H
#define SL_CLUSTER_CORE_CLUSTER_CONFIG_H

#include <stdint.h>

#include "base/config.h"

/* Node roles, in the order of the `role` enum's names. */
typedef enum {
    SL_CLUSTER_ROLE_ALL = 0,
    SL_CLUSTER_ROLE_ORIGIN,
    SL_CLUSTER_ROLE_EDGE,
    SL_CLUSTER_ROLE_RELAY,
    SL_CLUSTER_ROLE_TRANSCODER,
} sl_cluster_role_t;

typedef struct sl_cluster_config {
    int enabled;                 /* cluster mode on */
    char *redis;                 /* "host:port[,host:port...]" tried in turn */
    char *sentinel;              /* "host:port[,...]" of Sentinels; "" = talk to redis directly */
    char *sentinel_master;       /* the master's name the Sentinels know */
    int redis_cluster;           /* redis lists Redis Cluster seed nodes (MOVED/ASK followed) */
    char *redis_password;        /* AUTH password (secret), "" = none */
    char *redis_username;        /* Redis 6 ACL user for AUTH user pass, "" = the default user */
    int64_t redis_db;            /* SELECT index */
    char *prefix;                /* every key and the bus channel start with it */
    char *password;              /* the cluster password (secret): nodes authenticate with it */
    char *node_id;               /* "" = generated at start */
    int64_t role;                /* sl_cluster_role_t */
    char *group;                 /* node group */
    char *region;                /* "" = none */
    char *public_host;           /* "" = the RTMP listener's bind address (127.0.0.1 if any) */
    char *private_host;          /* "" = public_host */
    int64_t lease_ms;            /* a record lives this long without a refresh */
    int64_t report_interval_ms;  /* time between two reports (and snapshot refreshes) */
    int64_t command_timeout_ms;  /* a Redis command without a reply this long drops the link */
    int64_t reconnect_max_ms;    /* backoff cap between two connection attempts */
} sl_cluster_config_t;

/** The section descriptor (listed in src/builtin_config.c). */
extern const sl_config_section_t sl_cluster_config_section;

/** Role names as the config and the record spell them ("all", "origin", ...). */
extern const char *const sl_cluster_role_names[];

/** The section's settings of cfg (borrowed, like cfg). */
static inline const sl_cluster_config_t *sl_cluster_cfg(const sl_config_t *cfg)
{
    return (const sl_cluster_config_t *)sl_config_get(cfg, &sl_cluster_config_section);
}

#endif
