/*
 * The autoscaler (docs/autoscaling.md): node groups and their scale rules
 * (Red5 SM 2.0's NodeGroupConfig, SM 4.0's node groups and scale
 * policies), evaluated on the node(s) with autoscale.enabled over the
 * "cluster" service (src/app/svc/cluster.h), decisions carried out by a
 * driver (as_driver.h), scale-in by draining. Settings: the `autoscale`
 * section (autoscale_config.h).
 */
#ifndef SL_CLUSTER_AUTOSCALE_AUTOSCALE_H
#define SL_CLUSTER_AUTOSCALE_AUTOSCALE_H

#include "modules/module.h"

extern const sl_builtin_t sl_autoscale_builtin;

#endif
