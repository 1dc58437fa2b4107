/*
 * The autoscaler's drivers (docs/autoscaling.md "Drivers"): what carries a
 * decision out once the planner made it.
 *  - none: nothing (the decision is logged and shown by GET /api/v1/autoscale);
 *  - process: starts `sluice` processes on this machine, one per node, from
 *    a config template (ports taken free from a range), logs to files, and
 *    stops them with SIGTERM (SIGKILL after a grace); children are reaped
 *    by libuv; never a shell;
 *  - webhook: POSTs each decision as JSON to the business, signed with
 *    HMAC-SHA256 like sluice's webhooks, retried with backoff.
 * A scale-out names the node ids to create (the process driver gives each
 * its cluster.node_id; the business is asked to do the same), so that the
 * autoscaler recognises them when they register. A scale-in reaches the
 * driver only when the node has drained (autoscale.c).
 *
 * Loop thread only.
 */
#ifndef SL_CLUSTER_AUTOSCALE_AS_DRIVER_H
#define SL_CLUSTER_AUTOSCALE_AS_DRIVER_H

#include <stddef.h>
#include <uv.h>

#include "cluster/autoscale/as_plan.h"
#include "cluster/autoscale/autoscale_config.h"

typedef struct sl_as_driver sl_as_driver_t;

/* One decision for the driver (strings borrowed for the call). */
typedef struct sl_as_decision {
    const char *id;               /* "<group>/<sub>/<role>#<gen>[/<node>]": receivers dedupe on it */
    const char *group, *sub, *role;
    sl_as_action_t action;
    const char *const *nodes;     /* node ids to create (scale out) or stop (scale in) */
    int n_nodes;
    const char *reason;           /* the planner's reason */
} sl_as_decision_t;

/* The variable through which the process driver names itself to its children. */
#define SL_AS_PARENT_ENV "SL_AUTOSCALE_PARENT"

/**
 * Called first thing at start by every sluice process: when started by a
 * process driver (SL_AUTOSCALE_PARENT in the environment), asks the
 * kernel for SIGTERM when that parent dies (prctl PR_SET_PDEATHSIG, so a
 * stream manager killed with -9 leaves no node behind), and stops at once
 * when the parent is already gone. Removes the variable, so that what this
 * process starts does not inherit it. Linux only (elsewhere a no-op).
 */
void sl_as_child_guard(void);

typedef struct sl_store sl_store_t;

/**
 * Makes the webhook driver's decisions durable (a no-op for the others):
 * each decision is written to the store's table autoscale_webhook before it
 * is sent and deleted once delivered or given up; the rows found now (a
 * restart, even after kill -9) are delivered again, with the same
 * X-Sluice-Delivery id (receivers deduplicate on it). Call once, at start
 * (it blocks on the store). store borrowed, outlives the driver. 0, or the
 * store's error (the driver then keeps decisions in memory only).
 */
int sl_as_driver_use_store(sl_as_driver_t *d, sl_store_t *store);

/**
 * Creates the driver cfg->driver names on loop (borrowed, both outlive
 * the driver). data_dir: server.data_dir (the process driver's default
 * folder). 0; SL_EINVAL with *why (static) when its settings are missing
 * (process: no process_config; webhook: no webhook_url); SL_ENOMEM.
 */
int sl_as_driver_new(uv_loop_t *loop, const sl_autoscale_config_t *cfg, const char *data_dir,
                     sl_as_driver_t **out, const char **why);

/**
 * Carries out a decision: scale out starts (or asks for) d->nodes, scale
 * in stops them. 0 when started (the outcome is logged; a webhook retries
 * on its own), or a negative SL_E* when it could not start (process: no
 * free port, over process_max, spawn failure: logged with the reason).
 */
int sl_as_driver_apply(sl_as_driver_t *drv, const sl_as_decision_t *d);

/** The driver's name: "none", "process", "webhook". */
const char *sl_as_driver_name(const sl_as_driver_t *drv);

/**
 * Process driver: 1 while the process of node id runs, 0 when it exited or
 * was never started. Other drivers: -1 (unknown).
 */
int sl_as_driver_running(const sl_as_driver_t *drv, const char *id);

/**
 * Process driver: 1 (once) when the process of node id exited without being
 * asked to (a bad template, a port taken meanwhile): the autoscaler then
 * gives the launch up at once instead of waiting for launch_timeout. 0
 * otherwise, and always for the other drivers.
 */
int sl_as_driver_failed(sl_as_driver_t *drv, const char *id);

/**
 * Stops everything: the process driver sends SIGTERM to each child it
 * started (the nodes leave the cluster as the autoscaler's node stops),
 * the webhook driver cancels retries; handles are closed. The driver is
 * freed by the loop's close callbacks: do not use it afterwards.
 */
void sl_as_driver_close(sl_as_driver_t *drv);

/**
 * Replaces {name} placeholders of tmpl: vars is a NULL-terminated list of
 * name, value pairs. Unknown placeholders stay as written. Returns an
 * sl_malloc'ed string (caller frees) or NULL (no memory, or result over
 * 1 MB).
 */
char *sl_as_template_fill(const char *tmpl, const char *const *vars);

/** HMAC-SHA256 of "<ts>.<body>" as "sha256=<hex>" into out (72 bytes). 0 or SL_EIO. */
int sl_as_sign(const char *secret, const char *ts, const char *body, char out[72]);

#endif
