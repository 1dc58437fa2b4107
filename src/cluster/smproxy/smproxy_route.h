/*
 * The stream manager proxy's pure parts (no loop, no services): parsing the
 * proxy's own paths, encoding a node into a proxied WHIP/WHEP resource URL,
 * the SSRF check of /as/v1/proxy/forward/?target= against the cluster
 * snapshot, and the fallback choice of a node when no "streammanager"
 * service runs. smproxy.c drives them; the unit test and the fuzz target
 * call them directly. Every input is capped (SL_SMPROXY_*_MAX) and parsing
 * never reads past a NUL.
 */
#ifndef SL_CLUSTER_SMPROXY_SMPROXY_ROUTE_H
#define SL_CLUSTER_SMPROXY_SMPROXY_ROUTE_H

#include <stddef.h>

#include "app/svc/cluster.h"
#include "app/svc/streammanager.h"

#define SL_SMPROXY_PREFIX "/as/v1/proxy"
#define SL_SMPROXY_ADMIN_PREFIX "/streammanager/api/4.0/admin/proxy/clients"
#define SL_SMPROXY_PATH_MAX 1024   /* a proxy path, bytes */
#define SL_SMPROXY_NAME_MAX 256    /* a stream name or resource token, with the NUL */
#define SL_SMPROXY_URL_MAX 2048    /* a forward target, bytes */

typedef enum {
    SL_SMPROXY_WHIP = 1,           /* /as/v1/proxy/whip/... */
    SL_SMPROXY_WHEP = 2,           /* /as/v1/proxy/whep/... */
    SL_SMPROXY_WS = 3,             /* /as/v1/proxy/ws/{publish|subscribe}/{app}/{stream} */
    SL_SMPROXY_FORWARD = 4,        /* /as/v1/proxy/forward[/] */
} sl_smproxy_kind_t;

/* A parsed proxy path. */
typedef struct sl_smproxy_path {
    sl_smproxy_kind_t kind;
    int is_resource;                      /* WHIP/WHEP: .../resource/{node}/{scope}/{token} */
    int publish;                          /* WS: 1 publish, 0 subscribe */
    char node[SL_CLUSTER_ID_MAX];         /* resource: the node id the path names */
    char scope[SL_CLUSTER_PATH_MAX];      /* app (rooms nest: "app/room") */
    char name[SL_SMPROXY_NAME_MAX];       /* the stream (endpoint, WS) or resource token */
} sl_smproxy_path_t;

/**
 * Parses a decoded request path under SL_SMPROXY_PREFIX into *out. Shapes:
 * /whip|whep/{app}[/{room}...]/{stream} (an endpoint: POST, OPTIONS),
 * /whip|whep/resource/{node}/{app}[/...]/{token} (a resource: PATCH,
 * DELETE, OPTIONS), /ws/publish|subscribe/{app}[/...]/{stream},
 * /forward and /forward/. Segments are never empty, ".", ".." nor hold a
 * control byte, a backslash or '%'. 0; SL_EDECLINED (not under the
 * prefix); SL_ENOTFOUND (under it, an unknown kind); SL_EINVAL (malformed
 * or over a cap).
 */
int sl_smproxy_parse_path(const char *path, sl_smproxy_path_t *out);

/**
 * Rewrites a node's WHIP/WHEP Location (absolute URL or path, ending in
 * "/{scope}/whip|whep/resource/{token}", a query ignored) into the proxied
 * resource path SL_SMPROXY_PREFIX "/{kind}/resource/{node}/{scope}/{token}"
 * written to out (cap bytes, NUL-terminated). 0; SL_EINVAL (not that shape,
 * or a node id that cannot sit in a path segment); SL_ETOOBIG (out too small).
 */
int sl_smproxy_resource_path(const char *location, const char *node_id, char *out, size_t cap);

/**
 * The address and port a proxy uses to reach node's HTTP listener: its
 * private host when set, else its public host. Returns the host (borrowed
 * from node) and sets *port; NULL when the node has no HTTP listener.
 */
const char *sl_smproxy_node_addr(const sl_cluster_node_t *node, int *port);

/**
 * Finds the node a `host=` query names among nodes (n of them): its id,
 * "host:http_port" (public or private host), or a bare host when exactly
 * that host is unambiguous. NULL when none (or ambiguous).
 */
const sl_cluster_node_t *sl_smproxy_find_host(const sl_cluster_node_t *nodes, size_t n,
                                              const char *host);

/**
 * The SSRF check of the forward proxy: target (a decoded URL) must be
 * http://{host}:{port}{path}[?query] where host:port is the public or
 * private address and HTTP port of a node in nodes (n of them), with no
 * user info, a path under /api/ without dot segments, and only printable
 * ASCII. On success writes the URL to request (rebuilt from the node's own
 * address, cap bytes) into out, sets *node and returns 0; SL_EDENIED (not a
 * node, or a path outside /api/); SL_EINVAL (malformed); SL_ETOOBIG.
 */
int sl_smproxy_forward_target(const char *target, const sl_cluster_node_t *nodes, size_t n,
                              char *out, size_t cap, const sl_cluster_node_t **node);

/**
 * The fallback choice when no "streammanager" service runs: publish, the
 * in-service origin (role "origin" or "all") of q->group (any group when
 * NULL or "default") with the fewest connections, in q->region first (only
 * there when q->strict); subscribe, among the nodes in serving[] (ids of
 * nodes that serve q->path, n_serving of them), the same way, an edge or
 * relay before the origin. Returns the node (borrowed from nodes) or NULL
 * with *why set (static).
 */
const sl_cluster_node_t *sl_smproxy_fallback_choose(const sl_cluster_node_t *nodes, size_t n,
                                                    const sl_sm_query_t *q,
                                                    const char *const *serving, size_t n_serving,
                                                    const char **why);

#endif
