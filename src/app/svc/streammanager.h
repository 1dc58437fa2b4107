/*
 * The "streammanager" service: the stream manager's choice of a node for a
 * publisher or a player, for the parts that act on it without answering a
 * lookup themselves (the WHIP/WHEP/WebSocket proxy, the API). Provided by
 * src/cluster/streammanager on nodes whose cluster.stream_manager is on.
 * Runs on the loop thread, over the "cluster" service's snapshot.
 */
#ifndef SL_APP_SVC_STREAMMANAGER_H
#define SL_APP_SVC_STREAMMANAGER_H

#include <stddef.h>

#include "app/services.h"
#include "app/svc/cluster.h"

#define SL_SVC_STREAMMANAGER "streammanager"
#define SL_SVC_STREAMMANAGER_MAJOR 1
#define SL_SVC_STREAMMANAGER_MINOR 2

typedef enum {
    SL_SM_PUBLISH = 1,            /* SM 4.0 action=broadcast, SM 2.0 .../publish/... */
    SL_SM_SUBSCRIBE = 2,          /* SM 4.0 action=subscribe, SM 2.0 .../subscribe/... */
    SL_SM_TRANSCODE = 3,          /* from 1.2: publish through a transcoder (transcode=true);
                                   * path is the provision's level-1 variant */
} sl_sm_action_t;

/* What a lookup asks for (strings borrowed; NULL or "" when not given). */
typedef struct sl_sm_query {
    sl_sm_action_t action;
    const char *group;            /* node group (SM 2.0 nodeGroup); NULL: the default group */
    const char *path;             /* "app/stream" (rooms nest) */
    const char *region;           /* region= / subgroup= */
    int strict;                   /* strict=true: only that region */
} sl_sm_query_t;

typedef struct sl_svc_streammanager {
    /**
     * Chooses the node for q and copies its record into *out. 0;
     * SL_ENOTFOUND (subscribe: the stream is not live anywhere; or no node
     * with the role, in the region when strict); SL_EBUSY (the group's
     * maxPublishers / maxSubscribers is reached: answer 503); SL_EDENIED
     * (publish: the stream is already live); SL_EIO (no cluster state).
     * SL_SM_TRANSCODE (1.2) names a node of role transcoder (or all) and
     * answers SL_EBUSY when none is in service.
     * *why (static) says which, for the error message.
     */
    int (*choose)(void *ud, const sl_sm_query_t *q, sl_cluster_node_t *out, const char **why);
    /**
     * Valid from 1.1. Checks an SM 2.0 token (from PUT /as/v1/auth/login)
     * for the modules that serve SM 2.0 routes needing one (node group
     * admin, the proxy): bearer is the Authorization header's value
     * ("Bearer <JWT>") or the bare JWT (borrowed). role "admin" accepts only
     * an admin's token, "proxy" a proxy's or an admin's, NULL any valid
     * token. 0; SL_EDENIED (missing, malformed, badly signed or expired:
     * answer 401); SL_EBUSY (a valid token of a role that may not do this:
     * answer 403). The token itself is never logged.
     */
    int (*check_token)(void *ud, const char *bearer, const char *role);
    /**
     * Valid from 1.2. Checks an SM 4.0 ?accessToken= (token borrowed, NULL
     * when absent) against stream_manager.admin_token, for the modules that
     * serve SM 4.0 admin routes (the proxy's /admin/proxy/clients). remote
     * is the client's address: failures count against its budget
     * (stream_manager.auth_fail_limit). 0; SL_EDENIED (missing: 401);
     * SL_EBUSY (wrong: 403); SL_ETOOBIG (too many failures: 429).
     */
    int (*check_admin_token)(void *ud, const char *token, const char *remote);
} sl_svc_streammanager_t;

#endif
