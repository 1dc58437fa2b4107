/*
 * The "relay" service: what the cluster relay (src/cluster/relay) knows of
 * the relay connections on this node, for the parts that count players
 * (the cluster core's load reports, the stream manager, the Server API).
 * On an origin (or a relay), each edge that plays a stream from it holds one
 * RTMP session here, Red5's "cluster-restreamer" connection: a subscriber
 * by role, but a whole node's players behind it, not a player. Subtract
 * restreamers(path) from a stream's subscribers to count real players.
 * Provided while the relay module runs (relay.enabled or cluster mode);
 * absent otherwise (then no session is a relay connection). Loop thread
 * only.
 */
#ifndef SL_APP_SVC_RELAY_H
#define SL_APP_SVC_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "app/services.h"

#define SL_SVC_RELAY "relay"
#define SL_SVC_RELAY_MAJOR 1
#define SL_SVC_RELAY_MINOR 0

typedef struct sl_svc_relay {
    /** 1 when the session (by public id) is another node's relay connection playing here. */
    int (*is_restreamer)(void *ud, const char *session_id);
    /** Relay connections playing path ("app/stream") on this node now. */
    uint32_t (*restreamers)(void *ud, const char *path);
    /** Streams this node pulls from an upstream now (its own relay sessions, protocol "cluster"). */
    size_t (*pulls)(void *ud);
} sl_svc_relay_t;

#endif
