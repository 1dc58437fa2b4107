/*
 * The node choice (see sm_choose.h). Everything here is a pure function
 * of its arguments: the module feeds it the cluster snapshot, the group's
 * limits and its own count of placements since each node's last report.
 */
#include "cluster/streammanager/sm_choose.h"

#include <stdlib.h>
#include <string.h>

#include "sluice/errors.h"

#define WEIGHTS_TEXT_MAX 512
#define WEIGHT_MAX 1000.0

int sl_sm_weights_parse(const char *text, sl_sm_weights_t *w)
{
    static const struct {
        const char *name;
        size_t off;
    } metrics[] = {
        {"streams", offsetof(sl_sm_weights_t, streams)},
        {"connections", offsetof(sl_sm_weights_t, connections)},
        {"subscribers", offsetof(sl_sm_weights_t, subscribers)},
        {"memory", offsetof(sl_sm_weights_t, memory)},
        {"restreamer", offsetof(sl_sm_weights_t, restreamer)},
        {"cpu", offsetof(sl_sm_weights_t, cpu)},
    };
    if (!text)
        return 0;
    if (strlen(text) > WEIGHTS_TEXT_MAX)
        return SL_EINVAL;
    const char *p = text;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n')
            p++;
        if (!*p)
            return 0;
        size_t klen = strcspn(p, "= ,\t\n");
        if (p[klen] != '=')
            return SL_EINVAL;
        size_t i;
        for (i = 0; i < sizeof metrics / sizeof metrics[0]; i++)
            if (strlen(metrics[i].name) == klen && strncmp(p, metrics[i].name, klen) == 0)
                break;
        if (i == sizeof metrics / sizeof metrics[0])
            return SL_EINVAL;
        p += klen + 1;
        char num[32];
        size_t vlen = strcspn(p, " ,\t\n");
        if (vlen == 0 || vlen >= sizeof num)
            return SL_EINVAL;
        memcpy(num, p, vlen);
        num[vlen] = '\0';
        char *end;
        double val = strtod(num, &end);
        /* !(val >= 0) also refuses NaN. */
        if (*end || !(val >= 0) || val > WEIGHT_MAX)
            return SL_EINVAL;
        *(double *)((char *)w + metrics[i].off) = val;
        p += vlen;
    }
}

double sl_sm_score(const sl_cluster_node_t *n, const sl_sm_weights_t *w, uint32_t pending)
{
    double conns = (double)n->connections + pending;
    /* Capacity known: connections as a percent of it, as memory and CPU are,
     * so that a big node and a small one compare by how full they are. */
    if (n->max_connections > 0)
        conns = 100.0 * conns / (double)n->max_connections;
    double sum = w->streams * n->streams + w->connections * conns +
                 w->subscribers * ((double)n->subscribers + pending) +
                 w->memory * (n->mem_load > 0 ? n->mem_load : 0) +
                 w->restreamer * n->publishers + w->cpu * (n->cpu_load > 0 ? n->cpu_load : 0);
    double wsum = w->streams + w->connections + w->subscribers + w->memory + w->restreamer + w->cpu;
    return wsum > 0 ? sum / wsum : 0;
}

const char *sl_sm_group_resolve(const sl_sm_view_t *v, const char *group)
{
    for (size_t i = 0; group && group[0] && i < v->n_nodes; i++)
        if (strcmp(v->nodes[i].group, group) == 0)
            return group;
    if (group && group[0] && strcmp(group, "default") != 0)
        return group;
    /* "default" (or none) with no such group: the one group, if only one exists. */
    const char *only = NULL;
    for (size_t i = 0; i < v->n_nodes; i++) {
        if (!only)
            only = v->nodes[i].group;
        else if (strcmp(only, v->nodes[i].group) != 0)
            return "default";
    }
    return only ? only : "default";
}

int sl_sm_node_usable(const sl_sm_view_t *v, const sl_cluster_node_t *n)
{
    if (n->reported_ms + v->node_timeout_ms < v->now_ms)
        return 0;
    return n->state[0] == '\0' || strcmp(n->state, "INSERVICE") == 0;
}

static int role_is(const sl_cluster_node_t *n, const char *role)
{
    return strcmp(n->role, role) == 0 || strcmp(n->role, "all") == 0;
}

typedef struct cand {
    size_t idx;
    double score;
    unsigned turn; /* position after rotation, for equal scores */
} cand_t;

static int cand_cmp(const void *a, const void *b)
{
    const cand_t *x = a, *y = b;
    /* Scores within a hair are equal: rotate among them. */
    double d = x->score - y->score;
    if (d < -1e-9)
        return -1;
    if (d > 1e-9)
        return 1;
    return x->turn < y->turn ? -1 : x->turn > y->turn;
}

/* Candidates with the role in group (and region when asked) into c (cap entries); the count. */
static size_t collect(const sl_sm_view_t *v, const sl_sm_query_t *q, const char *role,
                      int in_region_only, cand_t *c, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < v->n_nodes && n < cap; i++) {
        const sl_cluster_node_t *node = &v->nodes[i];
        if (!role_is(node, role) || !sl_sm_node_usable(v, node))
            continue;
        if (q->group && strcmp(node->group, q->group) != 0)
            continue;
        if (in_region_only && strcmp(node->region, q->region) != 0)
            continue;
        c[n].idx = i;
        c[n].score = sl_sm_score(node, v->weights, v->pending ? v->pending[i] : 0);
        c[n].turn = (unsigned)((i + v->n_nodes - (v->rotation % (v->n_nodes ? v->n_nodes : 1))) %
                               (v->n_nodes ? v->n_nodes : 1));
        n++;
    }
    return n;
}

/* Candidates for role, honouring region (preferred, or only when strict). */
static size_t collect_region(const sl_sm_view_t *v, const sl_sm_query_t *q, const char *role,
                             cand_t *c)
{
    int has_region = q->region && q->region[0];
    size_t n = has_region ? collect(v, q, role, 1, c, SL_SM_MAX_CANDIDATES) : 0;
    if (n == 0 && !(has_region && q->strict))
        n = collect(v, q, role, 0, c, SL_SM_MAX_CANDIDATES);
    return n;
}

static const sl_cluster_node_t *find(const sl_sm_view_t *v, const char *id, size_t *idx)
{
    for (size_t i = 0; id && i < v->n_nodes; i++)
        if (strcmp(v->nodes[i].id, id) == 0) {
            *idx = i;
            return &v->nodes[i];
        }
    return NULL;
}

int sl_sm_choose(const sl_sm_view_t *v, const sl_sm_query_t *q, size_t *out, size_t max_out,
                 size_t *n_out, const char **why)
{
    static cand_t c[SL_SM_MAX_CANDIDATES]; /* loop thread only */
    *n_out = 0;
    if (max_out == 0) {
        *why = "no endpoint asked for";
        return SL_EINVAL;
    }
    size_t origin_idx = 0;
    const sl_cluster_node_t *origin = find(v, v->origin_id, &origin_idx);
    /* A placement whose origin is dead is stale: the stream is not live. */
    int live = origin && origin->reported_ms + v->node_timeout_ms >= v->now_ms;
    size_t n;
    if (q->action == SL_SM_TRANSCODE) {
        /* ABR: the broadcaster publishes the level-1 variant (q->path) to a
         * transcoder, which becomes the origin of every variant. */
        if (live) {
            *why = "the stream is already being published";
            return SL_EDENIED;
        }
        if (v->max_publishers > 0 && v->n_publishers >= v->max_publishers) {
            *why = "the node group's maxPublishers is reached";
            return SL_EBUSY;
        }
        n = collect_region(v, q, "transcoder", c);
        if (n == 0) {
            *why = "no transcoder in service in the node group (or region)";
            return SL_EBUSY;
        }
    } else if (q->action == SL_SM_PUBLISH) {
        if (live) {
            *why = "the stream is already being published";
            return SL_EDENIED;
        }
        if (v->max_publishers > 0 && v->n_publishers >= v->max_publishers) {
            *why = "the node group's maxPublishers is reached";
            return SL_EBUSY;
        }
        n = collect_region(v, q, "origin", c);
        if (n == 0) {
            *why = "no origin in service in the node group (or region)";
            return SL_ENOTFOUND;
        }
    } else if (q->action == SL_SM_SUBSCRIBE) {
        if (!live) {
            *why = "the stream is not being published";
            return SL_ENOTFOUND;
        }
        if (v->max_subscribers > 0 && v->n_subscribers >= v->max_subscribers) {
            *why = "the node group's maxSubscribers is reached";
            return SL_EBUSY;
        }
        n = collect_region(v, q, "edge", c);
        if (n == 0) {
            /* No edge in service: the origin serves its players itself, when it
             * may be named and sits where a strict query asks. */
            sl_sm_query_t any = *q;
            cand_t none[1];
            any.region = NULL;
            if (collect(v, &any, "edge", 0, none, 1) == 0 && sl_sm_node_usable(v, origin) &&
                (!q->strict || !q->region || !q->region[0] ||
                 strcmp(origin->region, q->region) == 0)) {
                out[0] = origin_idx;
                *n_out = 1;
                return 0;
            }
            *why = "no edge in service in the node group (or region)";
            return SL_ENOTFOUND;
        }
    } else {
        *why = "unknown action";
        return SL_EINVAL;
    }
    qsort(c, n, sizeof c[0], cand_cmp);
    for (size_t i = 0; i < n && i < max_out; i++)
        out[(*n_out)++] = c[i].idx;
    return 0;
}
