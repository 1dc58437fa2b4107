/*
 * The relay module's settings (section `relay`; relay_config.c holds the
 * table): static origins and the cluster password for clusters without
 * Redis (Red5's conf/cluster.xml), and the pacing and budgets of every
 * pull an edge or a relay runs (docs/cluster-relay.md).
 */
#ifndef SL_CLUSTER_RELAY_CONFIG_H
#define SL_CLUSTER_RELAY_CONFIG_H

#include <stdint.h>

#include "base/config.h"

typedef struct sl_relay_config {
    int enabled;                /* edge/relay pulls and the origin's password check */
    char *origins;              /* static upstreams "host[:port]", tried in order */
    char *password;             /* cluster password when the cluster service has none */
    int64_t idle_timeout_ms;    /* a pull stops after this long without players */
    int64_t wait_ms;            /* a first player waits this long for the first keyframe */
    int64_t open_timeout_ms;    /* connecting to an upstream (handshake to Play.Start) */
    int64_t read_timeout_ms;    /* an upstream silent this long is lost */
    int64_t retry_min_ms;       /* upstream lost: first backoff window */
    int64_t retry_max_ms;       /* upstream lost: backoff cap */
    int64_t give_up_ms;         /* upstream lost: unpublish after this long without it */
    int64_t max_pulls;          /* pulls running on this node */
    int64_t max_message_size;   /* largest RTMP message accepted from an upstream */
    int64_t max_hops;           /* relay links in a chain (origin -> relay -> edge = 2) */
} sl_relay_config_t;

/** The section descriptor (listed in src/builtin_config.c). */
extern const sl_config_section_t sl_relay_config_section;

/** The section's settings of cfg (borrowed, like cfg). */
static inline const sl_relay_config_t *sl_relay_cfg(const sl_config_t *cfg)
{
    return (const sl_relay_config_t *)sl_config_get(cfg, &sl_relay_config_section);
}

#endif
