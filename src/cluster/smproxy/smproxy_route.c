/*
 * The stream manager proxy's pure parts (see smproxy_route.h): path
 * parsing, resource URL rewriting, the forward proxy's SSRF check and the
 * fallback node choice. No allocation, no loop: every buffer is the
 * caller's, every length is checked before a copy.
 */
#include "cluster/smproxy/smproxy_route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sluice/errors.h"

/* A path segment a proxy path may hold: not empty, ".", "..", and no
 * control byte, backslash or '%' (the path is decoded already). */
static int seg_ok(const char *s, size_t n)
{
    if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c == 0x7f || c == '\\' || c == '%' || c == '?' || c == '#')
            return 0;
    }
    return 1;
}

/* Copies n bytes of s into out (cap), NUL-terminated: 0 or SL_EINVAL. */
static int copy_n(char *out, size_t cap, const char *s, size_t n)
{
    if (n + 1 > cap)
        return SL_EINVAL;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

/*
 * Splits rest ("a/b/c") into its first len-1 segments (the scope, copied
 * into scope) and its last (the name): every segment checked; at least
 * one scope segment.
 */
static int split_scope_name(const char *rest, sl_smproxy_path_t *out)
{
    size_t len = strlen(rest);
    const char *slash = strrchr(rest, '/');
    if (!slash || slash == rest)
        return SL_EINVAL;
    const char *p = rest;
    while (p < slash) {
        const char *e = memchr(p, '/', (size_t)(slash - p));
        size_t n = e ? (size_t)(e - p) : (size_t)(slash - p);
        if (!seg_ok(p, n))
            return SL_EINVAL;
        p += n + 1;
    }
    const char *name = slash + 1;
    size_t nlen = len - (size_t)(name - rest);
    if (!seg_ok(name, nlen))
        return SL_EINVAL;
    if (copy_n(out->scope, sizeof out->scope, rest, (size_t)(slash - rest)) ||
        copy_n(out->name, sizeof out->name, name, nlen))
        return SL_EINVAL;
    return 0;
}

int sl_smproxy_parse_path(const char *path, sl_smproxy_path_t *out)
{
    memset(out, 0, sizeof *out);
    size_t plen = strlen(SL_SMPROXY_PREFIX);
    if (strncmp(path, SL_SMPROXY_PREFIX, plen) != 0 || (path[plen] != '/' && path[plen] != '\0'))
        return SL_EDECLINED;
    if (strnlen(path, SL_SMPROXY_PATH_MAX + 1) > SL_SMPROXY_PATH_MAX)
        return SL_EINVAL;
    const char *p = path + plen;
    if (*p == '/')
        p++;
    const char *e = strchr(p, '/');
    size_t klen = e ? (size_t)(e - p) : strlen(p);
    const char *rest = e ? e + 1 : "";
    if (klen == 7 && strncmp(p, "forward", 7) == 0) {
        if (*rest)
            return SL_ENOTFOUND;
        out->kind = SL_SMPROXY_FORWARD;
        return 0;
    }
    if (klen == 2 && strncmp(p, "ws", 2) == 0) {
        out->kind = SL_SMPROXY_WS;
        if (strncmp(rest, "publish/", 8) == 0) {
            out->publish = 1;
            rest += 8;
        } else if (strncmp(rest, "subscribe/", 10) == 0) {
            rest += 10;
        } else {
            return SL_EINVAL;
        }
        return split_scope_name(rest, out);
    }
    if (klen != 4 || (strncmp(p, "whip", 4) != 0 && strncmp(p, "whep", 4) != 0))
        return SL_ENOTFOUND;
    out->kind = p[2] == 'i' ? SL_SMPROXY_WHIP : SL_SMPROXY_WHEP;
    /* A resource: "resource/{node}/{scope}/{token}" with at least one scope segment.
     * An app named "resource" still has its endpoints: "resource/{stream}" is
     * one segment too short to be a resource. */
    if (strncmp(rest, "resource/", 9) == 0) {
        const char *nd = rest + 9;
        const char *ne = strchr(nd, '/');
        if (ne && strchr(ne + 1, '/')) {
            if (!seg_ok(nd, (size_t)(ne - nd)) ||
                copy_n(out->node, sizeof out->node, nd, (size_t)(ne - nd)))
                return SL_EINVAL;
            out->is_resource = 1;
            return split_scope_name(ne + 1, out);
        }
    }
    return split_scope_name(rest, out);
}

/* The node id may sit in one path segment as it is (ids are names, not paths). */
static int id_ok(const char *id)
{
    size_t n = strlen(id);
    if (!seg_ok(id, n))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (id[i] == '/' || (unsigned char)id[i] > 0x7e)
            return 0;
    return 1;
}

int sl_smproxy_resource_path(const char *location, const char *node_id, char *out, size_t cap)
{
    if (!location || !id_ok(node_id))
        return SL_EINVAL;
    size_t llen = strnlen(location, SL_SMPROXY_PATH_MAX + 1);
    if (llen > SL_SMPROXY_PATH_MAX)
        return SL_EINVAL;
    const char *p = location;
    /* An absolute URL: skip the scheme and authority. */
    const char *sch = strstr(p, "://");
    if (sch && sch < p + 8) {
        p = strchr(sch + 3, '/');
        if (!p)
            return SL_EINVAL;
    }
    if (*p != '/')
        return SL_EINVAL;
    size_t len = strcspn(p, "?#");
    /* ".../{scope}/{whip|whep}/resource/{token}" */
    const char *mark = NULL;
    for (const char *q = p; (q = strstr(q, "/resource/")) && q < p + len; q++)
        mark = q;
    if (!mark || mark - p < 6 || mark[-5] != '/')
        return SL_EINVAL;
    const char *kind = mark - 4;
    if (strncmp(kind, "whip", 4) != 0 && strncmp(kind, "whep", 4) != 0)
        return SL_EINVAL;
    const char *token = mark + 10;
    size_t tlen = len - (size_t)(token - p);
    size_t slen = (size_t)(kind - 1 - (p + 1));
    if (!seg_ok(token, tlen) || memchr(token, '/', tlen) || slen == 0)
        return SL_EINVAL;
    /* Every scope segment must be a proxy path segment too. */
    const char *s = p + 1, *send = kind - 1;
    while (s < send) {
        const char *e = memchr(s, '/', (size_t)(send - s));
        size_t n = e ? (size_t)(e - s) : (size_t)(send - s);
        if (!seg_ok(s, n))
            return SL_EINVAL;
        s += n + 1;
    }
    int w = snprintf(out, cap, SL_SMPROXY_PREFIX "/%.4s/resource/%s/%.*s/%.*s", kind, node_id,
                     (int)slen, p + 1, (int)tlen, token);
    if (w < 0 || (size_t)w >= cap)
        return SL_ETOOBIG;
    return 0;
}

const char *sl_smproxy_node_addr(const sl_cluster_node_t *node, int *port)
{
    *port = node->http_port;
    if (!node->http_port)
        return NULL;
    return node->private_host[0] ? node->private_host : node->host;
}

const sl_cluster_node_t *sl_smproxy_find_host(const sl_cluster_node_t *nodes, size_t n,
                                              const char *host)
{
    if (!host || !host[0])
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(nodes[i].id, host) == 0)
            return &nodes[i];
    const char *colon = strrchr(host, ':');
    const char *close = strrchr(host, ']');
    if (colon && (!close || colon > close)) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (*end || port <= 0 || port > 65535)
            return NULL;
        size_t hlen = (size_t)(colon - host);
        for (size_t i = 0; i < n; i++) {
            const sl_cluster_node_t *nd = &nodes[i];
            if (nd->http_port != port)
                continue;
            if ((strlen(nd->host) == hlen && strncmp(nd->host, host, hlen) == 0) ||
                (strlen(nd->private_host) == hlen && strncmp(nd->private_host, host, hlen) == 0))
                return nd;
        }
        return NULL;
    }
    const sl_cluster_node_t *found = NULL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(nodes[i].host, host) == 0 || strcmp(nodes[i].private_host, host) == 0) {
            if (found)
                return NULL; /* several nodes share that address: the port must say which */
            found = &nodes[i];
        }
    }
    return found;
}

int sl_smproxy_forward_target(const char *target, const sl_cluster_node_t *nodes, size_t n,
                              char *out, size_t cap, const sl_cluster_node_t **node)
{
    *node = NULL;
    size_t tlen = strnlen(target, SL_SMPROXY_URL_MAX + 1);
    if (tlen > SL_SMPROXY_URL_MAX)
        return SL_ETOOBIG;
    for (size_t i = 0; i < tlen; i++) {
        unsigned char c = (unsigned char)target[i];
        if (c < 0x21 || c > 0x7e || c == '\\')
            return SL_EINVAL;
    }
    if (strncasecmp(target, "http://", 7) != 0)
        return SL_EDENIED; /* nodes' Server APIs are plain HTTP on their http_port */
    const char *auth = target + 7;
    size_t alen = strcspn(auth, "/?#");
    if (alen == 0 || memchr(auth, '@', alen))
        return SL_EINVAL;
    const char *path = auth + alen;
    if (*path != '/')
        return SL_EINVAL;
    if (strchr(path, '#'))
        return SL_EINVAL;
    /* host[:port], IPv6 in brackets */
    char host[SL_CLUSTER_HOST_MAX];
    const char *hp = auth, *hend, *portp = NULL;
    if (*hp == '[') {
        const char *rb = memchr(hp, ']', alen);
        if (!rb)
            return SL_EINVAL;
        hp++;
        hend = rb;
        if (rb + 1 < auth + alen) {
            if (rb[1] != ':')
                return SL_EINVAL;
            portp = rb + 2;
        }
    } else {
        const char *colon = memchr(hp, ':', alen);
        hend = colon ? colon : auth + alen;
        if (colon)
            portp = colon + 1;
    }
    if (hend == hp || copy_n(host, sizeof host, hp, (size_t)(hend - hp)))
        return SL_EINVAL;
    long port = 80;
    if (portp) {
        size_t pl = (size_t)(auth + alen - portp);
        if (pl == 0 || pl > 5)
            return SL_EINVAL;
        port = 0;
        for (size_t i = 0; i < pl; i++) {
            if (portp[i] < '0' || portp[i] > '9')
                return SL_EINVAL;
            port = port * 10 + (portp[i] - '0');
        }
        if (port <= 0 || port > 65535)
            return SL_EINVAL;
    }
    /* Only a node's Server API, and no way out of it through dot segments. */
    size_t plen = strcspn(path, "?");
    if (strncmp(path, "/api/", 5) != 0)
        return SL_EDENIED;
    for (size_t i = 0; i + 1 < plen; i++) {
        if (path[i] == '/' && path[i + 1] == '.')
            return SL_EDENIED;
        if (path[i] == '%' && i + 2 < tlen && path[i + 1] == '2' && (path[i + 2] | 0x20) == 'e')
            return SL_EDENIED;
    }
    const sl_cluster_node_t *found = NULL;
    for (size_t i = 0; i < n && !found; i++) {
        const sl_cluster_node_t *nd = &nodes[i];
        if (!nd->http_port || nd->http_port != port)
            continue;
        if (strcasecmp(nd->host, host) == 0 || (nd->private_host[0] && strcasecmp(nd->private_host, host) == 0))
            found = nd;
    }
    if (!found)
        return SL_EDENIED;
    int aport;
    const char *addr = sl_smproxy_node_addr(found, &aport);
    int v6 = strchr(addr, ':') != NULL;
    int w = snprintf(out, cap, "http://%s%s%s:%d%s", v6 ? "[" : "", addr, v6 ? "]" : "", aport, path);
    if (w < 0 || (size_t)w >= cap)
        return SL_ETOOBIG;
    *node = found;
    return 0;
}

static int in_service(const sl_cluster_node_t *nd)
{
    return nd->state[0] == '\0' || strcmp(nd->state, "INSERVICE") == 0;
}

static int group_ok(const sl_cluster_node_t *nd, const char *group)
{
    return !group || !group[0] || strcmp(group, "default") == 0 || strcmp(nd->group, group) == 0;
}

/* Lower is better: the other region (non-strict) ranks after every node of the region. */
static int better(const sl_cluster_node_t *a, int a_rank, const sl_cluster_node_t *b, int b_rank)
{
    if (!b)
        return 1;
    if (a_rank != b_rank)
        return a_rank < b_rank;
    return a->connections < b->connections;
}

const sl_cluster_node_t *sl_smproxy_fallback_choose(const sl_cluster_node_t *nodes, size_t n,
                                                    const sl_sm_query_t *q,
                                                    const char *const *serving, size_t n_serving,
                                                    const char **why)
{
    const sl_cluster_node_t *best = NULL;
    int best_rank = 0;
    int region = q->region && q->region[0];
    for (size_t i = 0; i < n; i++) {
        const sl_cluster_node_t *nd = &nodes[i];
        if (!in_service(nd) || !group_ok(nd, q->group) || !nd->http_port)
            continue;
        int rank = 0;
        if (region && strcmp(nd->region, q->region) != 0) {
            if (q->strict)
                continue;
            rank = 2;
        }
        int is_origin = strcmp(nd->role, "origin") == 0 || strcmp(nd->role, "all") == 0;
        if (q->action == SL_SM_PUBLISH) {
            if (!is_origin)
                continue;
        } else {
            int serves = 0;
            for (size_t k = 0; k < n_serving && !serves; k++)
                serves = strcmp(serving[k], nd->id) == 0;
            if (!serves)
                continue;
            rank += is_origin; /* edges and relays first: the origin keeps its uplink */
        }
        if (better(nd, rank, best, best_rank)) {
            best = nd;
            best_rank = rank;
        }
    }
    if (!best)
        *why = q->action == SL_SM_PUBLISH ? "no origin in service for this group and region"
                                          : "the stream is not live on any node";
    return best;
}
