/*
 * The stream manager module (docs/stream-manager.md): on a node with
 * stream_manager.enabled, answers Red5 Pro's Stream Manager 4.0 API
 * (/streammanager/api/4.0: lookups, lists, stats, node admin) and the
 * lookups, listing, stats and login of Stream Manager 2.0 (/as/v1/streams,
 * /as/v1/auth/login), statelessly over the "cluster" service; and provides
 * the "streammanager" service (src/app/svc/streammanager.h) to the proxy
 * and the autoscaler. Its settings are the `stream_manager` section
 * (sm_config.h).
 */
#ifndef SL_CLUSTER_STREAMMANAGER_H
#define SL_CLUSTER_STREAMMANAGER_H

#include "modules/module.h"

extern const sl_builtin_t sl_streammanager_builtin;

#endif
