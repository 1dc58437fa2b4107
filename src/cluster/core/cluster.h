/*
 * The cluster core (docs/cluster.md): in cluster mode (cluster.enabled)
 * this node writes its record and load report to Redis under a lease,
 * keeps a snapshot of every node's record, of the stream placements and of
 * the cluster-wide settings, places the streams its publishers start
 * (one origin per stream, cluster-wide), carries messages between nodes
 * over pub/sub (kick, unpublish, state changes), and provides the
 * "cluster" service (src/app/svc/cluster.h) that the relay, the stream
 * manager, the autoscaler, the webhooks and the API build on. It serves
 * GET /api/v1/cluster and /api/v1/cluster/nodes. Inert (no Redis, no
 * service) when cluster mode is off.
 */
#ifndef SL_CLUSTER_CORE_CLUSTER_H
#define SL_CLUSTER_CORE_CLUSTER_H

#include "modules/module.h"

extern const sl_builtin_t sl_cluster_builtin;

#endif
