/*
 * The relay module (docs/cluster-relay.md): origin -> relay -> edge stream
 * relay over RTMP, as Red5 Pro's cluster restreamer. An edge (or relay)
 * pulls a stream from its upstream on a player's first demand and drops
 * the pull when idle; an origin admits those pulls by the cluster password.
 * Its settings are the `relay` section (relay_config.h). It reaches the
 * rest of the cluster only through the "cluster" service (app/svc/cluster.h)
 * and works without it from static origins.
 */
#ifndef SL_CLUSTER_RELAY_H
#define SL_CLUSTER_RELAY_H

#include "modules/module.h"

extern const sl_builtin_t sl_relay_builtin;

#endif
