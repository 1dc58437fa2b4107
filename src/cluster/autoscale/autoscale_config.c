/*
 * The settings table of the autoscaler (autoscale_config.h): keys, types,
 * defaults, bounds and docs, as the YAML, the environment and the
 * generated docs show them.
 */
#include "cluster/autoscale/autoscale_config.h"

#include <stddef.h>

#define C(f) offsetof(sl_autoscale_config_t, f)

static const char *const g_drivers[] = {"none", "process", "webhook", NULL};

static const sl_config_slot_t g_slots[] = {
    {"enabled", SL_CONFIG_BOOL, C(enabled), "false", 0, 0, NULL,
     "Evaluate the node groups' scale rules on this node (a stream manager node; needs "
     "cluster.enabled) and serve the node group admin API (docs/autoscaling.md).",
     0},
    {"interval", SL_CONFIG_DURATION, C(interval_ms), "2s", 200, 10 * SL_CONFIG_MINUTE, NULL,
     "How often the scale rules are evaluated.", 0},
    {"driver", SL_CONFIG_ENUM, C(driver), "none", 0, 0, g_drivers,
     "What carries decisions out: none (logged and shown only), process (starts and stops "
     "sluice processes on this machine), webhook (POSTs each decision to webhook_url).",
     SL_CONFIG_RESTART},
    {"default_cooldown", SL_CONFIG_DURATION, C(default_cooldown_ms), "60s", 0, 24 * SL_CONFIG_HOUR,
     NULL, "Cool-down between two scale actions of a rule that sets no coolDownPeriod.", 0},
    {"launch_timeout", SL_CONFIG_DURATION, C(launch_timeout_ms), "60s", 1000, SL_CONFIG_HOUR,
     NULL, "A launched node that has not registered after this is given up (and stopped).", 0},
    {"drain_timeout", SL_CONFIG_DURATION, C(drain_timeout_ms), "10m", 0, 24 * SL_CONFIG_HOUR,
     NULL,
     "A draining node (SOFT_SUNSET) is stopped after this even if sessions remain; until then "
     "it stops only once its last session left.",
     0},
    {"lease", SL_CONFIG_DURATION, C(lease_ms), "10s", 1000, 10 * SL_CONFIG_MINUTE, NULL,
     "The evaluator's lease: with several autoscale nodes, one evaluates while its lease "
     "(renewed each interval) holds.",
     0},
    {"jwt_secret", SL_CONFIG_STRING, C(jwt_secret), "", 0, 512, NULL,
     "Deprecated and ignored (a warning at start): the SM 2.0 admin API's Bearer JWTs are "
     "checked by the stream manager (stream_manager.auth_secret); without the stream manager "
     "the Server API's access check applies.",
     0},
    {"process_binary", SL_CONFIG_STRING, C(process_binary), "", 0, 4096, NULL,
     "Process driver: the sluice binary to start (empty = this process's own).", 0},
    {"process_config", SL_CONFIG_STRING, C(process_config), "", 0, 4096, NULL,
     "Process driver: a config template file; {node_id} {role} {group} {subgroup} {dir} "
     "{rtmp_port} {http_port} {rtsp_port} {srt_port} {webrtc_port} are replaced.",
     0},
    {"process_dir", SL_CONFIG_STRING, C(process_dir), "", 0, 4096, NULL,
     "Process driver: where each node's config, data and log go (empty = data_dir/autoscale).",
     0},
    {"process_port_min", SL_CONFIG_INT, C(process_port_min), "21000", 1024, 65535, NULL,
     "Process driver: lowest port given to a started node (each takes five free ports).", 0},
    {"process_port_max", SL_CONFIG_INT, C(process_port_max), "21999", 1024, 65535, NULL,
     "Process driver: highest port given to a started node.", 0},
    {"process_max", SL_CONFIG_INT, C(process_max), "16", 1, 200, NULL,
     "Process driver: most node processes running at once.", 0},
    {"webhook_url", SL_CONFIG_STRING, C(webhook_url), "", 0, 2048, NULL,
     "Webhook driver: decisions are POSTed here as {group, subGroup, role, action, count, "
     "nodes, id}.",
     0},
    {"webhook_secret", SL_CONFIG_STRING, C(webhook_secret), "", 0, 512, NULL,
     "Webhook driver: HMAC-SHA256 key of the X-Sluice-Signature header (as webhooks.secret).",
     0},
    {"webhook_timeout", SL_CONFIG_DURATION, C(webhook_timeout_ms), "10s", 100,
     120 * SL_CONFIG_SEC, NULL, "Webhook driver: one POST's timeout.", 0},
    {"webhook_retries", SL_CONFIG_INT, C(webhook_retries), "5", 0, 100, NULL,
     "Webhook driver: retries of a failed POST (backoff from 500 ms, doubling, up to 30 s).", 0},
};

const sl_config_section_t sl_autoscale_config_section = {
    .name = "autoscale",
    .doc = "Autoscaling: node groups, scale rules and the drivers that carry decisions out",
    .size = sizeof(sl_autoscale_config_t),
    .slots = g_slots,
    .n_slots = sizeof g_slots / sizeof g_slots[0],
};
