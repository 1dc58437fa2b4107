/*
 * The stream manager proxy (docs/stream-manager-proxy.md): Red5 SM 2.0's
 * /as/v1/proxy, so that browsers reach the cluster's nodes through the
 * stream manager only. WHIP and WHEP (and their resources' PATCH, DELETE,
 * OPTIONS) are forwarded to the node the "streammanager" service chooses
 * (or, without it, a fallback over the "cluster" service's snapshot);
 * /as/v1/proxy/ws/... relays Red5's WebSocket signalling to the node;
 * /as/v1/proxy/forward/?target= reaches a node's Server API and nothing
 * else. Its settings are the `sm_proxy` section (smproxy_config.h); off
 * unless sm_proxy.enabled.
 */
#ifndef SL_CLUSTER_SMPROXY_SMPROXY_H
#define SL_CLUSTER_SMPROXY_SMPROXY_H

#include "modules/module.h"

/* The built-in module (modules.c lists it). */
extern const sl_builtin_t sl_smproxy_builtin;

#endif
