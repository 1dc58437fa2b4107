/*
 * The "cluster" service: what one sluice node knows of the others, for the
 * parts that place streams and move them between nodes (the edge relay,
 * the stream manager, the autoscaler, the API). Provided by src/cluster/core
 * while cluster mode is on (cluster.enabled); absent on a single node, so
 * every user must work, or answer clearly, without it.
 *
 * The truth lives in Redis (DESIGN.md §6): each node writes its record and
 * load report under a lease, stream placements are written atomically by
 * the origin that accepted the publisher, and commands between nodes travel
 * over pub/sub. The provider keeps a local snapshot of every node record and
 * placement, refreshed on its report interval (and on pub/sub news), so
 * that readers answer synchronously on the loop thread: a snapshot may be
 * up to one interval old, and `fresh` says when it was taken. When Redis is
 * unreachable the snapshot stops refreshing (`redis_up` is 0): nodes keep
 * serving what they serve, new placements fail with SL_EIO, and the
 * node writes its state again when Redis returns.
 *
 * Everything here runs on the loop thread. Pointers returned point into the
 * current snapshot and stay valid until the caller returns to the loop.
 */
#ifndef SL_APP_SVC_CLUSTER_H
#define SL_APP_SVC_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "app/services.h"

#define SL_SVC_CLUSTER "cluster"
#define SL_SVC_CLUSTER_MAJOR 1
#define SL_SVC_CLUSTER_MINOR 1

#define SL_CLUSTER_ID_MAX 64      /* node id, bytes with the NUL */
#define SL_CLUSTER_NAME_MAX 64    /* role, group, region, state names */
#define SL_CLUSTER_HOST_MAX 256   /* a host name or address */
#define SL_CLUSTER_PATH_MAX 512   /* app/stream (rooms nest) */

/* Node roles, as Red5 Pro names them ("origin", "edge", "relay", "transcoder"), plus "all". */
/* Node states, as Red5 Pro's SM 2.0 names them: "INSERVICE", "SOFT_SUNSET" (draining: no new
 * placements, existing sessions finish), "HARD_SUNSET" (about to stop), "FAULT". */

/* One node: its record (what it is, where clients reach it) and its last load report. */
typedef struct sl_cluster_node {
    char id[SL_CLUSTER_ID_MAX];           /* unique, stable for the process's life */
    char role[SL_CLUSTER_NAME_MAX];       /* "origin", "edge", "relay", "transcoder", "all" */
    char group[SL_CLUSTER_NAME_MAX];      /* node group (SM 2.0 nodeGroup), "default" by default */
    char region[SL_CLUSTER_NAME_MAX];     /* "" when unset */
    char state[SL_CLUSTER_NAME_MAX];      /* "INSERVICE", "SOFT_SUNSET", ... */
    char host[SL_CLUSTER_HOST_MAX];       /* the address clients use (public) */
    char private_host[SL_CLUSTER_HOST_MAX]; /* the address nodes use between them */
    uint16_t rtmp_port, http_port, rtsp_port, srt_port; /* 0 when that listener is off */
    uint64_t started_ms;                  /* wall clock, ms since the epoch */
    uint64_t reported_ms;                 /* wall clock of its last report */
    /* load, from its last report */
    uint32_t connections;                 /* every session of every protocol */
    uint32_t publishers, subscribers;     /* sessions by role (relay pulls count as publishers) */
    uint32_t streams;                     /* live streams in its hub */
    double cpu_load;                      /* this process's CPU, percent of one machine (0..100) */
    double mem_load;                      /* this process's RSS, percent of the machine's memory */
    uint64_t bytes_in_rate, bytes_out_rate; /* bytes/s over the last interval */
    uint32_t max_connections;             /* its capacity (server budget), 0 = unknown */
} sl_cluster_node_t;

/* Where one live stream is: its origin, and the nodes that serve it now. */
typedef struct sl_cluster_stream {
    char path[SL_CLUSTER_PATH_MAX];       /* "app/stream" (app may hold rooms: "app/room/stream") */
    char origin[SL_CLUSTER_ID_MAX];       /* node id of the origin that holds the publisher */
    uint64_t started_ms;                  /* wall clock, when it was placed */
    uint32_t subscribers;                 /* players on every node, from the last reports */
} sl_cluster_stream_t;

/* Per node and stream, from its last report: who plays what where (for /event/list/stats). */
typedef struct sl_cluster_presence {
    const char *node;                     /* node id */
    const char *path;                     /* "app/stream" */
    int is_origin;                        /* the publisher is on this node */
    uint32_t subscribers;                 /* players of this stream on this node */
    uint64_t started_ms;
} sl_cluster_presence_t;

/* A message from another node over pub/sub (see send). */
typedef void (*sl_cluster_msg_cb)(void *ud, const char *from_node, const char *topic,
                                  const char *json);

typedef struct sl_svc_cluster {
    /** This node's record (always present while the service is registered). */
    const sl_cluster_node_t *(*self)(void *ud);
    /** 1 when the last exchange with Redis succeeded; *fresh_ms: wall clock of the snapshot. */
    int (*redis_up)(void *ud, uint64_t *fresh_ms);
    /**
     * The snapshot's live nodes (leases not expired), this one included:
     * sets *out (borrowed) and returns the count.
     */
    size_t (*nodes)(void *ud, const sl_cluster_node_t **out);
    /** The node with that id, or NULL. */
    const sl_cluster_node_t *(*node)(void *ud, const char *id);
    /** The snapshot's placed streams: sets *out (borrowed) and returns the count. */
    size_t (*streams)(void *ud, const sl_cluster_stream_t **out);
    /** Where path ("app/stream") is placed, or NULL when no origin holds it. */
    const sl_cluster_stream_t *(*stream)(void *ud, const char *path);
    /**
     * Calls each(arg, presence) for every (node, stream) pair the nodes
     * reported in their last load reports.
     */
    void (*presences)(void *ud, void (*each)(void *arg, const sl_cluster_presence_t *p),
                      void *arg);
    /**
     * Sets a node's state (this node or another: written in Redis and told
     * to the node over pub/sub). "SOFT_SUNSET" drains: the node takes no new
     * placement and sessions finish. 0, SL_ENOTFOUND, SL_EIO (Redis down).
     */
    int (*set_state)(void *ud, const char *node_id, const char *state);
    /**
     * Sends topic/json (borrowed, copied) to one node (node_id) or to every
     * node (node_id NULL), this one included when it matches. Fire and
     * forget over pub/sub: 0, or SL_EIO while Redis is down.
     * Topics in use: "kick" {"session":id} | {"app","stream","role"},
     * "unpublish" {"app","stream"}, "so" (shared objects), "state".
     */
    int (*send)(void *ud, const char *node_id, const char *topic, const char *json);
    /**
     * Registers cb for messages whose topic equals topic (or every topic
     * when NULL). Returns a handle > 0 for unlisten, or a negative SL_E*.
     */
    int (*listen)(void *ud, const char *topic, sl_cluster_msg_cb cb, void *cb_ud);
    void (*unlisten)(void *ud, int handle);
    /** The cluster password (nodes authenticate to each other with it), "" when none. */
    const char *(*password)(void *ud);
    /**
     * Cluster-wide settings, a small key -> JSON store in Redis mirrored in
     * the snapshot. Keys in use: "nodegroup/<name>" (a node group's config,
     * Red5 SM 2.0's NodeGroupConfig shape), "scalepolicy/<name>",
     * "provision/<app/stream>". setting: the JSON (borrowed) or NULL.
     */
    const char *(*setting)(void *ud, const char *key);
    /**
     * Writes (json non-NULL, borrowed, copied) or deletes (json NULL) a
     * setting in Redis and in the snapshot at once. 0, SL_EINVAL (key or
     * JSON too large), SL_EIO (Redis down).
     */
    int (*put_setting)(void *ud, const char *key, const char *json);
    /** Calls each(arg, key, json) for every setting whose key starts with prefix. */
    void (*settings)(void *ud, const char *prefix,
                     void (*each)(void *arg, const char *key, const char *json), void *arg);
    /**
     * Valid from 1.1. Claims path ("app/stream") for this node as its
     * origin, for a stream published inside the node without a publisher's
     * admission (the abr module's variants): the placement is written now
     * (or when Redis returns) and refreshed every interval until the
     * stream's unpublish event, or release. Call it before the stream's
     * publish event. 0, SL_EINVAL (empty or too long), SL_ENOMEM; a stream
     * another node holds stays theirs (logged by the provider).
     */
    int (*claim)(void *ud, const char *path);
    /** Valid from 1.1. Drops this node's claim on path (no-op when it holds none). */
    void (*release)(void *ud, const char *path);
} sl_svc_cluster_t;

#endif
