/*
 * The autoscaler module (autoscale.h, docs/autoscaling.md). On a node with
 * autoscale.enabled it
 *  - serves the node group admin API: Red5 SM 2.0's /as/v1/admin/nodegroup
 *    (Bearer JWT) and SM 4.0's /streammanager/api/4.0/admin/nodegroup and
 *    /admin/configurations/scalepolicy (?accessToken=), storing node groups
 *    as cluster settings "nodegroup/<name>";
 *  - every autoscale.interval, while it holds the evaluator lease, reads
 *    each node group, decides per (subgroup, role) rule with sl_as_plan and
 *    carries the decision out: scale out through the driver; scale in by
 *    draining the least loaded nodes (SOFT_SUNSET, then HARD_SUNSET and a
 *    driver stop once their sessions are gone or drain_timeout passed);
 *  - shows its state and last decisions at GET /api/v1/autoscale.
 *
 * It keeps nothing that matters in memory: each rule's state (decision
 * generation, cool-down clock, launches and drains in progress) is the
 * cluster setting "autoscale/state/<group>/<sub>/<role>", so another
 * autoscale node takes over where this one stopped.
 *
 * One evaluator at a time. The cluster service has no lock, so the lease
 * is a setting, "autoscale/lease" = {node, until}: a node takes it when it
 * is free or expired, and evaluates only once two snapshots refreshed from
 * Redis after its write still name it (two nodes that wrote at once both
 * see the same winner at their next refreshes). The holder renews it at half
 * its life. What remains of a race (a refresh that comes before the other
 * node's write) is made harmless by the shared state: a decision bumps the
 * rule's generation and starts its cool-down in the setting, launches are
 * named after the generation's sequence (the process driver ignores a
 * node it already runs), and decisions carry an id,
 * "<group>/<sub>/<role>#<gen>", on which a webhook receiver dedupes.
 */
#include "cluster/autoscale/autoscale.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "app/store.h"
#include "app/svc/api.h"
#include "app/svc/cluster.h"
#include "app/svc/http.h"
#include "app/svc/streammanager.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/time.h"
#include "cluster/autoscale/as_driver.h"
#include "cluster/autoscale/as_group.h"
#include "cluster/autoscale/as_plan.h"
#include "cluster/autoscale/autoscale_config.h"
#include "sluice/errors.h"

static const sl_log_ctx_t g_ctx = {.proto = "autoscale"};

#define LEASE_KEY "autoscale/lease"
#define STATE_PREFIX "autoscale/state/"
#define GROUP_PREFIX "nodegroup/"
#define POLICY_PREFIX "scalepolicy/"
#define FAILED_RETRY_MS 5000        /* a launch whose process died is retried after this */
#define LOG_MAX 32                  /* decisions kept for GET /api/v1/autoscale */
#define PATH_SEGS_MAX 6
#define SEG_MAX 64
#define KEY_MAX 320
#define SM2_PREFIX "/as/v1/admin/nodegroup"
#define SM4_GROUP_PREFIX "/streammanager/api/4.0/admin/nodegroup"
#define SM4_POLICY_PREFIX "/streammanager/api/4.0/admin/configurations/scalepolicy"
#define SM4_LAUNCH_PREFIX "/streammanager/api/4.0/admin/configurations/launchconfig"
#define SM4_ALARM_PREFIX "/streammanager/api/4.0/admin/alarm"
#define LAUNCH_KEY "launchconfig/"
#define N_ROUTES 5

typedef struct logged {
    char id[KEY_MAX];
    char action[16];
    char nodes[256];
    char reason[48];
    uint64_t at_ms;
} logged_t;

typedef struct as_mod {
    sl_core_t *core;
    const sl_autoscale_config_t *cfg;
    uv_timer_t tick;
    sl_as_driver_t *drv;
    const sl_http_svc_t *http;
    void *http_ud;
    sl_http_route_t *routes[N_ROUTES];
    const sl_svc_api_t *api;
    void *api_ud;
    int evaluator;                  /* holds a confirmed lease */
    uint64_t acquired_ms;           /* when this node wrote a lease it did not hold */
    uint64_t seen_fresh_ms;         /* first snapshot after acquired_ms (confirmation) */
    uint64_t n_ticks, n_decisions;
    logged_t log[LOG_MAX];
    int log_next, log_n;
} as_mod_t;

static const sl_svc_cluster_t *cluster(as_mod_t *m, void **ud)
{
    return sl_service_get(m->core, SL_SVC_CLUSTER, SL_SVC_CLUSTER_MAJOR, 0, ud);
}

/* ------------------------------------------------------------------ */
/* evaluation                                                          */

/*
 * A rule state, read from and written to the cluster settings. The core's
 * snapshot keeps a local write until Redis answers with it (writes carry a
 * sequence), so a refresh sent before a write no longer puts the old state
 * back: no local copy is needed here (test_autoscale's decisions prove it:
 * a replayed decision would launch a node twice).
 */
static const char *state_get(as_mod_t *m, const sl_svc_cluster_t *cl, void *ud, const char *key)
{
    (void)m;
    return cl->setting(ud, key);
}

static int state_put(as_mod_t *m, const sl_svc_cluster_t *cl, void *ud, const char *key,
                     const char *json, uint64_t gen)
{
    (void)m;
    (void)gen;
    return cl->put_setting(ud, key, json);
}

/* A node's sessions that a drain waits for: players, and publishers on an origin. */
static uint32_t drain_sessions(const sl_cluster_node_t *n)
{
    if (strcmp(n->role, "origin") == 0 || strcmp(n->role, "transcoder") == 0 ||
        strcmp(n->role, "all") == 0)
        return n->publishers + n->subscribers;
    return n->subscribers;
}

static int node_in(const sl_as_group_t *g, const sl_as_subgroup_t *s, const sl_as_rule_t *r,
                   const sl_cluster_node_t *n)
{
    if (strcmp(n->group, g->name) != 0 || strcmp(n->role, r->role) != 0)
        return 0;
    if (strcmp(n->region, s->name) == 0)
        return 1;
    return n->region[0] == '\0' && (g->n_subs == 1 || strcmp(s->name, "default") == 0);
}

static int tracked_has(const sl_as_tracked_t *t, int n, const char *id)
{
    for (int i = 0; i < n; i++)
        if (strcmp(t[i].id, id) == 0)
            return 1;
    return 0;
}

static void tracked_drop(sl_as_tracked_t *t, int *n, int i)
{
    memmove(&t[i], &t[i + 1], (size_t)(*n - i - 1) * sizeof *t);
    (*n)--;
}

static void log_decision(as_mod_t *m, const char *id, const char *action, const char *const *nodes,
                         int n_nodes, const char *reason)
{
    logged_t *l = &m->log[m->log_next];
    m->log_next = (m->log_next + 1) % LOG_MAX;
    if (m->log_n < LOG_MAX)
        m->log_n++;
    memset(l, 0, sizeof *l);
    snprintf(l->id, sizeof l->id, "%s", id);
    snprintf(l->action, sizeof l->action, "%s", action);
    snprintf(l->reason, sizeof l->reason, "%s", reason ? reason : "");
    size_t off = 0;
    for (int i = 0; i < n_nodes && off < sizeof l->nodes; i++)
        off += (size_t)snprintf(l->nodes + off, sizeof l->nodes - off, "%s%s", i ? " " : "",
                                nodes[i]);
    l->at_ms = sl_time_wall_ms();
}

typedef struct rule_ctx {
    as_mod_t *m;
    const sl_svc_cluster_t *cl;
    void *ud;
    const sl_as_group_t *g;
} rule_ctx_t;

/* The drains and launches in progress of one rule: advances them; 1 when st changed. */
static int advance(rule_ctx_t *x, const sl_as_subgroup_t *s, const sl_as_rule_t *r,
                   sl_as_state_t *st, uint64_t now)
{
    as_mod_t *m = x->m;
    int dirty = 0;
    for (int i = 0; i < st->n_pending;) {
        sl_as_tracked_t *p = &st->pending[i];
        if (x->cl->node(x->ud, p->id)) {
            SL_LOGI(&g_ctx, "autoscale: node %s (%s/%s/%s) registered after %llu ms", p->id,
                    x->g->name, s->name, r->role, (unsigned long long)(now - p->since_ms));
            tracked_drop(st->pending, &st->n_pending, i);
            dirty = 1;
        } else if (sl_as_driver_failed(m->drv, p->id) || p->hard) {
            /* Its process exited before it registered: given up FAILED_RETRY_MS after its
             * launch (not launch_timeout), which also paces a template that always fails. */
            if (!p->hard) {
                SL_LOGW(&g_ctx, "autoscale: node %s (%s/%s/%s) exited before it registered",
                        p->id, x->g->name, s->name, r->role);
                p->hard = 1;
                dirty = 1;
            }
            if (now >= p->since_ms + FAILED_RETRY_MS) {
                tracked_drop(st->pending, &st->n_pending, i);
                dirty = 1;
            } else {
                i++;
            }
        } else if (now >= p->since_ms + (uint64_t)m->cfg->launch_timeout_ms) {
            SL_LOGW(&g_ctx, "autoscale: node %s (%s/%s/%s) did not register within %lld ms: "
                    "given up", p->id, x->g->name, s->name, r->role,
                    (long long)m->cfg->launch_timeout_ms);
            const char *ids[1] = {p->id};
            sl_as_decision_t d = {.id = p->id, .group = x->g->name, .sub = s->name,
                                  .role = r->role, .action = SL_AS_SCALE_IN, .nodes = ids,
                                  .n_nodes = 1, .reason = "launch timeout"};
            if (sl_as_driver_running(m->drv, p->id) == 1)
                sl_as_driver_apply(m->drv, &d);
            tracked_drop(st->pending, &st->n_pending, i);
            dirty = 1;
        } else {
            i++;
        }
    }
    for (int i = 0; i < st->n_draining;) {
        sl_as_tracked_t *d = &st->draining[i];
        const sl_cluster_node_t *n = x->cl->node(x->ud, d->id);
        if (!n) {
            if (sl_as_driver_running(m->drv, d->id) == 1) {
                if (!d->hard) {
                    /* it left the cluster (lease lost) but its process runs: stop it */
                    const char *ids[1] = {d->id};
                    sl_as_decision_t dec = {.id = d->id, .group = x->g->name, .sub = s->name,
                                            .role = r->role, .action = SL_AS_SCALE_IN,
                                            .nodes = ids, .n_nodes = 1, .reason = "left"};
                    sl_as_driver_apply(m->drv, &dec);
                    d->hard = 1;
                    dirty = 1;
                }
                i++;
                continue;
            }
            SL_LOGI(&g_ctx, "autoscale: node %s (%s/%s/%s) drained and gone after %llu ms",
                    d->id, x->g->name, s->name, r->role,
                    (unsigned long long)(now - d->since_ms));
            tracked_drop(st->draining, &st->n_draining, i);
            dirty = 1;
            continue;
        }
        uint32_t left = drain_sessions(n);
        if (!d->hard && (left == 0 || now >= d->since_ms + (uint64_t)m->cfg->drain_timeout_ms)) {
            char id[KEY_MAX];
            snprintf(id, sizeof id, "%s/%s/%s#%llu/%s", x->g->name, s->name, r->role,
                     (unsigned long long)st->gen, d->id);
            if (left)
                SL_LOGW(&g_ctx, "autoscale: node %s still has %u sessions after drain_timeout: "
                        "stopping it", d->id, left);
            else
                SL_LOGI(&g_ctx, "autoscale: node %s drained (no sessions left): HARD_SUNSET, "
                        "stopping it", d->id);
            int rc = x->cl->set_state(x->ud, d->id, "HARD_SUNSET");
            if (rc)
                SL_LOGW(&g_ctx, "autoscale: HARD_SUNSET of %s: %s", d->id, sl_strerror(rc));
            const char *ids[1] = {d->id};
            sl_as_decision_t dec = {.id = id, .group = x->g->name, .sub = s->name,
                                    .role = r->role, .action = SL_AS_SCALE_IN, .nodes = ids,
                                    .n_nodes = 1, .reason = left ? "drain timeout" : "drained"};
            sl_as_driver_apply(m->drv, &dec);
            log_decision(m, id, "stop", ids, 1, dec.reason);
            d->hard = 1;
            dirty = 1;
        }
        i++;
    }
    return dirty;
}

static void eval_rule(rule_ctx_t *x, const sl_as_subgroup_t *s, const sl_as_rule_t *r)
{
    as_mod_t *m = x->m;
    char key[KEY_MAX];
    snprintf(key, sizeof key, STATE_PREFIX "%s/%s/%s", x->g->name, s->name, r->role);
    sl_as_state_t st;
    sl_as_state_parse(state_get(m, x->cl, x->ud, key), &st);
    uint64_t now = sl_time_wall_ms();
    int dirty = advance(x, s, r, &st, now);

    const sl_cluster_node_t *all;
    size_t n_all = x->cl->nodes(x->ud, &all);
    const sl_cluster_node_t **active = sl_calloc(n_all ? n_all : 1, sizeof *active);
    if (!active)
        return;
    size_t n_active = 0;
    for (size_t i = 0; i < n_all; i++) {
        const sl_cluster_node_t *n = &all[i];
        if (!node_in(x->g, s, r, n) || tracked_has(st.draining, st.n_draining, n->id))
            continue;
        if (n->state[0] == '\0' || strcmp(n->state, "INSERVICE") == 0)
            active[n_active++] = n;
    }
    sl_as_plan_in_t in = {.rule = r, .paused = x->g->paused, .active = active,
                          .n_active = n_active, .n_pending = st.n_pending,
                          .n_draining = st.n_draining, .manual = st.manual, .now_ms = now,
                          .last_action_ms = st.last_action_ms};
    sl_as_plan_out_t out;
    sl_as_plan(&in, &out);
    if (st.manual >= 0 && strcmp(out.reason, "manualscale reached") == 0) {
        st.manual = -1;
        dirty = 1;
    }
    if (out.action != SL_AS_NONE) {
        char id[KEY_MAX], names[SL_AS_PENDING_MAX][SL_CLUSTER_ID_MAX];
        const char *ids[SL_AS_PENDING_MAX];
        int n_ids = 0;
        st.gen++;
        st.last_action_ms = now;
        snprintf(id, sizeof id, "%s/%s/%s#%llu", x->g->name, s->name, r->role,
                 (unsigned long long)st.gen);
        if (out.action == SL_AS_SCALE_OUT) {
            for (int k = 0; k < out.count && st.n_pending < SL_AS_PENDING_MAX; k++) {
                /* a name no node of the snapshot uses (a former one may still be leaving) */
                do
                    snprintf(names[n_ids], sizeof names[n_ids], "%s-%s-%llu", x->g->name,
                             r->role, (unsigned long long)++st.next_seq);
                while (x->cl->node(x->ud, names[n_ids]) && st.next_seq < UINT32_MAX);
                ids[n_ids] = names[n_ids];
                sl_as_tracked_t *p = &st.pending[st.n_pending++];
                memset(p, 0, sizeof *p);
                memcpy(p->id, names[n_ids], sizeof p->id); /* same size, NUL-terminated */
                p->since_ms = now;
                n_ids++;
            }
        } else {
            for (int k = 0; k < out.count && st.n_draining < SL_AS_PENDING_MAX; k++) {
                const sl_cluster_node_t *v = active[out.victims[k]];
                int rc = x->cl->set_state(x->ud, v->id, "SOFT_SUNSET");
                if (rc) {
                    SL_LOGW(&g_ctx, "autoscale: cannot drain %s: %s", v->id, sl_strerror(rc));
                    continue;
                }
                sl_as_tracked_t *d = &st.draining[st.n_draining++];
                memset(d, 0, sizeof *d);
                snprintf(d->id, sizeof d->id, "%s", v->id);
                d->since_ms = now;
                snprintf(names[n_ids], sizeof names[n_ids], "%s", v->id);
                ids[n_ids] = names[n_ids];
                n_ids++;
            }
        }
        m->n_decisions++;
        SL_LOGI(&g_ctx, "autoscale: decision %s: %s %d (%s; %zu in service, %d launching, %d "
                "draining)%s%s", id, sl_as_action_name(out.action), n_ids, out.reason, n_active,
                in.n_pending, in.n_draining,
                out.action == SL_AS_SCALE_IN ? ": draining " : ": launching ",
                n_ids ? ids[0] : "");
        log_decision(m, id, sl_as_action_name(out.action), ids, n_ids, out.reason);
        if (out.action == SL_AS_SCALE_OUT && n_ids) {
            sl_as_decision_t dec = {.id = id, .group = x->g->name, .sub = s->name,
                                    .role = r->role, .action = out.action, .nodes = ids,
                                    .n_nodes = n_ids, .reason = out.reason};
            sl_as_driver_apply(m->drv, &dec);
        }
        dirty = 1;
    }
    sl_free(active);
    if (dirty) {
        char *json = sl_as_state_dump(&st);
        int rc = json ? state_put(m, x->cl, x->ud, key, json, st.gen) : SL_ENOMEM;
        if (rc)
            SL_LOGW(&g_ctx, "autoscale: cannot save %s: %s", key, sl_strerror(rc));
        sl_free(json);
    }
}

static void each_group(void *arg, const char *key, const char *json)
{
    rule_ctx_t *x = arg;
    sl_as_group_t *g = sl_malloc(sizeof *g);
    if (!g)
        return;
    const char *why;
    int rc = sl_as_group_parse(json, strlen(json), x->m->cfg->default_cooldown_ms, g, &why);
    if (rc) {
        SL_LOGD(&g_ctx, "autoscale: setting %s skipped: %s", key, why ? why : sl_strerror(rc));
    } else {
        x->g = g;
        for (int s = 0; s < g->n_subs; s++)
            for (int r = 0; r < g->subs[s].n_rules; r++)
                eval_rule(x, &g->subs[s], &g->subs[s].rules[r]);
    }
    sl_free(g);
}

/*
 * The lease (see the file comment): 1 when this node may evaluate now.
 */
static int lease_hold(as_mod_t *m, const sl_svc_cluster_t *cl, void *ud, uint64_t fresh_ms)
{
    const char *self = cl->self(ud)->id;
    uint64_t now = sl_time_wall_ms(), until = 0;
    char holder[SL_CLUSTER_ID_MAX] = "";
    const char *txt = cl->setting(ud, LEASE_KEY);
    json_t *o = txt ? json_loads(txt, 0, NULL) : NULL;
    const char *h = json_string_value(json_object_get(o, "node"));
    if (h && strlen(h) < sizeof holder)
        snprintf(holder, sizeof holder, "%s", h);
    if (json_is_integer(json_object_get(o, "until")))
        until = (uint64_t)json_integer_value(json_object_get(o, "until"));
    json_decref(o);
    int mine = strcmp(holder, self) == 0;
    if (!mine && holder[0] && until > now) {
        if (m->evaluator)
            SL_LOGI(&g_ctx, "autoscale: node %s evaluates now (lease)", holder);
        m->evaluator = 0;
        m->acquired_ms = 0;
        return 0;
    }
    if (!mine || until < now + (uint64_t)m->cfg->lease_ms / 2) {
        char buf[SL_CLUSTER_ID_MAX + 64];
        snprintf(buf, sizeof buf, "{\"node\":\"%s\",\"until\":%llu}", self,
                 (unsigned long long)(now + (uint64_t)m->cfg->lease_ms));
        if (cl->put_setting(ud, LEASE_KEY, buf))
            return 0;
        if (!mine || !m->acquired_ms) {
            m->acquired_ms = now;
            m->seen_fresh_ms = 0;
        }
        if (!mine)
            return 0;
    }
    if (!m->acquired_ms)
        m->acquired_ms = now;
    /*
     * Confirmed by Redis: a refresh that ended after our write may have read
     * the settings before it (the core sends HGETALL first, then reads the
     * nodes), so wait for a second refresh, which began after the first ended.
     */
    if (fresh_ms <= m->acquired_ms)
        return 0;
    if (!m->evaluator && (!m->seen_fresh_ms || fresh_ms <= m->seen_fresh_ms)) {
        if (!m->seen_fresh_ms)
            m->seen_fresh_ms = fresh_ms;
        return 0;
    }
    if (!m->evaluator)
        SL_LOGI(&g_ctx, "autoscale: this node (%s) evaluates the scale rules (driver %s)", self,
                sl_as_driver_name(m->drv));
    m->evaluator = 1;
    return 1;
}

static void on_tick(uv_timer_t *t)
{
    as_mod_t *m = t->data;
    void *ud;
    const sl_svc_cluster_t *cl = cluster(m, &ud);
    m->n_ticks++;
    uint64_t fresh = 0;
    if (!cl || !cl->redis_up(ud, &fresh)) {
        m->evaluator = 0;
        return;
    }
    if (!lease_hold(m, cl, ud, fresh))
        return;
    rule_ctx_t x = {.m = m, .cl = cl, .ud = ud};
    cl->settings(ud, GROUP_PREFIX, each_group, &x);
}

/* ------------------------------------------------------------------ */
/* HTTP helpers                                                        */

static int reply_json(as_mod_t *m, sl_http_req_t *req, int status, json_t *body)
{
    char *txt = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY)
                     : NULL;
    json_decref(body);
    if (!txt)
        return m->http->respond(req, 500, "text/plain", "out of memory", 13, NULL);
    int rc = m->http->respond(req, status, "application/json", txt, strlen(txt), NULL);
    free(txt);
    return rc;
}

/* Red5's error body: {"errorMessage", "timestamp"}. */
static int reply_err(as_mod_t *m, sl_http_req_t *req, int status, const char *msg)
{
    return reply_json(m, req, status,
                      json_pack("{s:s, s:I}", "errorMessage", msg, "timestamp",
                                (json_int_t)sl_time_wall_ms()));
}

/* Splits the path after prefix into segments; the count, or -1 when too many or too long. */
static int split(const char *path, const char *prefix, char seg[PATH_SEGS_MAX][SEG_MAX])
{
    const char *p = path + strlen(prefix);
    int n = 0;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (n >= PATH_SEGS_MAX || len >= SEG_MAX)
            return -1;
        memcpy(seg[n], p, len);
        seg[n][len] = '\0';
        n++;
        p += len;
    }
    return n;
}

/* The Server API's access check (allow-list, ?accessToken= or Bearer): 0 = go on. */
static int api_auth(as_mod_t *m, sl_http_req_t *req)
{
    void *ud;
    const sl_svc_api_t *api = sl_service_get(m->core, SL_SVC_API, SL_SVC_API_MAJOR, 1, &ud);
    if (!api || !api->check_access) {
        reply_err(m, req, 403, "the admin API needs the stream manager (SM 2.0 login) or the "
                               "Server API");
        return 1;
    }
    return api->check_access(ud, req);
}

/*
 * SM 2.0: a Bearer JWT of an admin, checked by the stream manager's
 * check_token (one secret, one verifier: stream_manager.auth_secret); on a
 * node without the stream manager, the Server API's check. 0 = go on.
 */
static int sm2_auth(as_mod_t *m, sl_http_req_t *req)
{
    void *ud;
    const sl_svc_streammanager_t *sm =
        sl_service_get(m->core, SL_SVC_STREAMMANAGER, SL_SVC_STREAMMANAGER_MAJOR, 1, &ud);
    if (!sm)
        return api_auth(m, req);
    int rc = sm->check_token(ud, m->http->req_header(req, "Authorization"), "admin");
    if (rc == 0)
        return 0;
    if (rc == SL_EBUSY)
        reply_err(m, req, 403, "this token's role may not administer node groups");
    else
        reply_err(m, req, 401, "Authorization: Bearer <JWT> of an admin required "
                               "(PUT /as/v1/auth/login); invalid or expired token");
    return 1;
}

static json_t *load_setting(const sl_svc_cluster_t *cl, void *ud, const char *key)
{
    const char *txt = cl->setting(ud, key);
    return txt ? json_loads(txt, 0, NULL) : NULL;
}

/* Validates and stores a NodeGroupConfig (root borrowed). 0 or an HTTP status with *why. */
static int store_group(as_mod_t *m, const sl_svc_cluster_t *cl, void *ud, json_t *root,
                       sl_as_group_t *g, const char **why)
{
    char *txt = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!txt) {
        *why = "out of memory";
        return 500;
    }
    int status = 0;
    int rc = sl_as_group_parse(txt, strlen(txt), m->cfg->default_cooldown_ms, g, why);
    if (rc) {
        if (rc == SL_ETOOBIG)
            *why = "node group config too large";
        status = 400;
    } else {
        char key[KEY_MAX];
        snprintf(key, sizeof key, GROUP_PREFIX "%s", g->name);
        rc = cl->put_setting(ud, key, txt);
        if (rc) {
            *why = rc == SL_EIO ? "cluster state unavailable (Redis down)" : "cannot store it";
            status = rc == SL_EIO ? 503 : 400;
        }
    }
    free(txt);
    return status;
}

typedef struct collect {
    json_t *arr;
    size_t prefix_len;
    int sm4;
} collect_t;

static json_t *sm4_group_view(json_t *cfgj, const char *name);

static void collect_group(void *arg, const char *key, const char *json)
{
    collect_t *c = arg;
    if (!c->sm4) {
        json_array_append_new(c->arr, json_string(key + c->prefix_len));
        return;
    }
    json_t *o = json_loads(json, 0, NULL);
    if (o)
        json_array_append_new(c->arr, sm4_group_view(o, key + c->prefix_len));
    json_decref(o);
}

/* Every setting with prefix (the states of a deleted group): deleted. */
static void collect_key(void *arg, const char *key, const char *json)
{
    (void)json;
    json_array_append_new(((collect_t *)arg)->arr, json_string(key));
}

static void delete_prefix(as_mod_t *m, const sl_svc_cluster_t *cl, void *ud, const char *prefix)
{
    (void)m;
    collect_t c = {.arr = json_array()};
    cl->settings(ud, prefix, collect_key, &c);
    size_t i;
    json_t *v;
    json_array_foreach(c.arr, i, v)
        cl->put_setting(ud, json_string_value(v), NULL);
    json_decref(c.arr);
}

typedef struct status_ctx {
    as_mod_t *m;
    const sl_svc_cluster_t *cl;
    void *ud;
    json_t *seen;                   /* state keys done */
    json_t *items;
    const char *group;
    const char *sub, *role, *state; /* filters, NULL = any */
} status_ctx_t;

static void status_pending(void *arg, const char *key, const char *json)
{
    status_ctx_t *c = arg;
    char sub[SEG_MAX], role[SEG_MAX];
    if (json_object_get(c->seen, key))
        return;
    json_object_set_new(c->seen, key, json_true());
    const char *rest = key + strlen(STATE_PREFIX) + strlen(c->group) + 1;
    const char *slash = strchr(rest, '/');
    if (!slash || (size_t)(slash - rest) >= sizeof sub || strlen(slash + 1) >= sizeof role)
        return;
    snprintf(sub, sizeof sub, "%.*s", (int)(slash - rest), rest);
    snprintf(role, sizeof role, "%s", slash + 1);
    if ((c->sub && strcmp(c->sub, sub)) || (c->role && strcmp(c->role, role)) ||
        (c->state && strcmp(c->state, "CREATING")))
        return;
    sl_as_state_t st;
    sl_as_state_parse(json, &st);
    for (int i = 0; i < st.n_pending; i++)
        json_array_append_new(
            c->items, json_pack("{s:{s:s, s:s, s:s, s:s}, s:{}}", "scalingEvent", "nodeId",
                                st.pending[i].id, "nodeRoleName", role, "subGroupName", sub,
                                "state", "CREATING", "nodeEvent"));
}

static int sm2_status(as_mod_t *m, sl_http_req_t *req, const sl_svc_cluster_t *cl, void *ud,
                      const char *group)
{
    char key[KEY_MAX], f_sub[SEG_MAX], f_role[SEG_MAX], f_state[SEG_MAX];
    snprintf(key, sizeof key, GROUP_PREFIX "%s", group);
    if (!cl->setting(ud, key))
        return reply_err(m, req, 404, "no such node group");
    status_ctx_t c = {.m = m, .cl = cl, .ud = ud, .seen = json_object(), .items = json_array(),
                      .group = group};
    if (m->http->req_query_get(req, "subGroup", f_sub, sizeof f_sub) > 0)
        c.sub = f_sub;
    if (m->http->req_query_get(req, "role", f_role, sizeof f_role) > 0)
        c.role = f_role;
    if (m->http->req_query_get(req, "state", f_state, sizeof f_state) > 0)
        c.state = f_state;
    const sl_cluster_node_t *all;
    size_t n = cl->nodes(ud, &all);
    for (size_t i = 0; i < n; i++) {
        const sl_cluster_node_t *nd = &all[i];
        const char *sub = nd->region[0] ? nd->region : "default";
        const char *state = nd->state[0] ? nd->state : "INSERVICE";
        if (strcmp(nd->group, group) != 0 || (c.sub && strcmp(c.sub, sub)) ||
            (c.role && strcmp(c.role, nd->role)) || (c.state && strcmp(c.state, state)))
            continue;
        json_array_append_new(
            c.items,
            json_pack("{s:{s:s, s:s, s:s, s:s}, s:{s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:f, s:f}}",
                      "scalingEvent", "nodeId", nd->id, "nodeRoleName", nd->role,
                      "subGroupName", sub, "state", state, "nodeEvent", "publicIp", nd->host,
                      "privateIp", nd->private_host[0] ? nd->private_host : nd->host,
                      "rtmpPort", nd->rtmp_port, "httpPort", nd->http_port, "connections",
                      nd->connections, "publishers", nd->publishers, "subscribers",
                      nd->subscribers, "cpuLoad", nd->cpu_load, "memoryLoad", nd->mem_load));
    }
    snprintf(key, sizeof key, STATE_PREFIX "%s/", group);
    cl->settings(ud, key, status_pending, &c);
    json_decref(c.seen);
    return reply_json(m, req, 200, c.items);
}

static int sm2_manualscale(as_mod_t *m, sl_http_req_t *req, const sl_svc_cluster_t *cl, void *ud,
                           const char *group, const char *sub, const char *role)
{
    char key[KEY_MAX], num[16];
    snprintf(key, sizeof key, GROUP_PREFIX "%s", group);
    const char *txt = cl->setting(ud, key);
    if (!txt)
        return reply_err(m, req, 404, "no such node group");
    if (m->http->req_query_get(req, "nodeCount", num, sizeof num) <= 0)
        return reply_err(m, req, 400, "nodeCount is required");
    char *end;
    long count = strtol(num, &end, 10);
    if (*end || count < 0 || count > SL_AS_NODE_MAX)
        return reply_err(m, req, 400, "nodeCount must be an integer in 0..200");
    sl_as_group_t *g = sl_malloc(sizeof *g);
    const char *why;
    if (!g)
        return reply_err(m, req, 500, "out of memory");
    int rc = sl_as_group_parse(txt, strlen(txt), m->cfg->default_cooldown_ms, g, &why);
    const sl_as_rule_t *r = rc ? NULL : sl_as_group_rule(g, sub, role);
    int min = r ? r->min : 0, max = r ? r->max : 0;
    sl_free(g);
    if (!r)
        return reply_err(m, req, 404, "no rule for that subgroup and role");
    if (count < min || count > max)
        return reply_err(m, req, 400, "nodeCount is outside the rule's min..max");
    snprintf(key, sizeof key, STATE_PREFIX "%s/%s/%s", group, sub, role);
    sl_as_state_t st;
    sl_as_state_parse(state_get(m, cl, ud, key), &st);
    st.manual = (int)count;
    char *js = sl_as_state_dump(&st);
    rc = js ? state_put(m, cl, ud, key, js, st.gen) : SL_ENOMEM;
    sl_free(js);
    if (rc)
        return reply_err(m, req, rc == SL_EIO ? 503 : 500, "cannot store the target");
    SL_LOGI(&g_ctx, "autoscale: manualscale %s/%s/%s to %ld nodes", group, sub, role, count);
    return reply_json(m, req, 200,
                      json_pack("{s:s, s:s, s:s, s:i}", "nodeGroup", group, "subGroup", sub,
                                "role", role, "nodeCount", (int)count));
}

/* /as/v1/admin/nodegroup[...] */
static int sm2_handler(sl_http_req_t *req, void *vm)
{
    as_mod_t *m = vm;
    char seg[PATH_SEGS_MAX][SEG_MAX], key[KEY_MAX];
    const char *method = m->http->req_method(req);
    int n = split(m->http->req_path(req), SM2_PREFIX, seg);
    if (n < 0)
        return reply_err(m, req, 404, "not found");
    if (sm2_auth(m, req))
        return 0;
    void *ud;
    const sl_svc_cluster_t *cl = cluster(m, &ud);
    if (!cl)
        return reply_err(m, req, 503, "cluster mode is off (cluster.enabled)");
    int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (n == 0 && is_get) {
        collect_t c = {.arr = json_array(), .prefix_len = strlen(GROUP_PREFIX)};
        cl->settings(ud, GROUP_PREFIX, collect_group, &c);
        return reply_json(m, req, 200, c.arr);
    }
    if (n == 0 && (!strcmp(method, "POST") || !strcmp(method, "PUT"))) {
        size_t len;
        const uint8_t *body = m->http->req_body(req, &len);
        if (len > SL_AS_GROUP_JSON_MAX)
            return reply_err(m, req, 413, "node group config too large");
        json_t *root = body ? json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL)
                            : NULL;
        const char *name = json_string_value(json_object_get(root, "name"));
        if (!json_is_object(root) || !name || !sl_as_group_name_ok(name)) {
            json_decref(root);
            return reply_err(m, req, 400, "a NodeGroupConfig with a name of 1..16 characters");
        }
        snprintf(key, sizeof key, GROUP_PREFIX "%s", name);
        if (!strcmp(method, "POST") && cl->setting(ud, key)) {
            json_decref(root);
            return reply_err(m, req, 409, "node group exists (PUT to replace it)");
        }
        sl_as_group_t *g = sl_malloc(sizeof *g);
        const char *why = "out of memory";
        int status = g ? store_group(m, cl, ud, root, g, &why) : 500;
        sl_free(g);
        if (status) {
            json_decref(root);
            return reply_err(m, req, status, why);
        }
        SL_LOGI(&g_ctx, "autoscale: node group %s %s", name,
                !strcmp(method, "POST") ? "created" : "stored");
        return reply_json(m, req, !strcmp(method, "POST") ? 201 : 200, root);
    }
    if (n == 2 && is_get && !strcmp(seg[0], "status"))
        return sm2_status(m, req, cl, ud, seg[1]);
    if (n >= 1)
        snprintf(key, sizeof key, GROUP_PREFIX "%s", seg[0]);
    if (n == 1 && is_get) {
        json_t *o = load_setting(cl, ud, key);
        return o ? reply_json(m, req, 200, o) : reply_err(m, req, 404, "no such node group");
    }
    if (n == 1 && !strcmp(method, "DELETE")) {
        if (!cl->setting(ud, key))
            return reply_err(m, req, 404, "no such node group");
        int rc = cl->put_setting(ud, key, NULL);
        if (rc)
            return reply_err(m, req, 503, "cluster state unavailable (Redis down)");
        char pfx[KEY_MAX];
        snprintf(pfx, sizeof pfx, STATE_PREFIX "%s/", seg[0]);
        delete_prefix(m, cl, ud, pfx);
        SL_LOGI(&g_ctx, "autoscale: node group %s deleted (its nodes are left running)", seg[0]);
        return reply_json(m, req, 200, json_pack("{s:s}", "name", seg[0]));
    }
    if (n == 2 && !strcmp(seg[1], "pause") && !strcmp(method, "PUT")) {
        char resume[8] = "";
        m->http->req_query_get(req, "resume", resume, sizeof resume);
        json_t *o = load_setting(cl, ud, key);
        if (!o)
            return reply_err(m, req, 404, "no such node group");
        json_object_set_new(o, "scalingPaused", json_boolean(strcmp(resume, "true") != 0));
        char *txt = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        int rc = txt ? cl->put_setting(ud, key, txt) : SL_ENOMEM;
        free(txt);
        if (rc) {
            json_decref(o);
            return reply_err(m, req, 503, "cluster state unavailable (Redis down)");
        }
        SL_LOGI(&g_ctx, "autoscale: node group %s %s", seg[0],
                strcmp(resume, "true") ? "paused" : "resumed");
        return reply_json(m, req, 200, o);
    }
    if (n == 4 && !strcmp(seg[3], "manualscale") && !strcmp(method, "POST"))
        return sm2_manualscale(m, req, cl, ud, seg[0], seg[1], seg[2]);
    return reply_err(m, req, 404, "not found");
}

/* ------------------------------------------------------------------ */
/* SM 4.0: node groups and scale policies                              */

/* The SM 4.0 view of a stored group (cfgj borrowed). */
static json_t *sm4_group_view(json_t *cfgj, const char *name)
{
    json_t *meta = json_object_get(cfgj, "sm40");
    json_t *regions = json_object_get(meta, "regions");
    return json_pack("{s:s, s:s, s:i, s:o, s:s, s:s, s:s, s:I}", "id", name, "name", name,
                     "originConnections", 0, "regions",
                     regions ? json_incref(regions) : json_array(),
                     "launchConfig",
                     json_string_value(json_object_get(meta, "launchConfig")) ?: "default",
                     "scalePolicy",
                     json_string_value(json_object_get(meta, "scalePolicy")) ?: "default",
                     "state", json_is_true(json_object_get(cfgj, "scalingPaused")) ? "paused"
                                                                                   : "active",
                     "timestamp", (json_int_t)sl_time_wall_ms());
}

/* Builds a NodeGroupConfig from an SM 4.0 scale policy (policy borrowed). */
static json_t *sm4_to_group(as_mod_t *m, const char *name, json_t *policy, json_t *body)
{
    json_t *groups = json_object(), *roles = json_object();
    json_t *regions = json_object_get(json_object_get(policy, "targets"), "region"), *reg;
    size_t i, j;
    json_array_foreach(regions, i, reg) {
        const char *rname = json_string_value(json_object_get(reg, "name"));
        json_t *rules = json_object(), *t;
        json_array_foreach(json_object_get(reg, "target"), j, t) {
            const char *role = json_string_value(json_object_get(t, "role"));
            if (!role)
                continue;
            json_t *cool = json_object_get(t, "coolDownPeriod");
            json_object_set_new(
                rules, role,
                json_pack("{s:s, s:O?, s:O?, s:O?, s:I, s:s, s:s}", "nodeRoleName", role, "min",
                          json_object_get(t, "minLimit"), "max", json_object_get(t, "maxLimit"),
                          "increment", json_object_get(t, "scaleAdjustment"), "coolDownPeriod",
                          json_is_integer(cool) ? json_integer_value(cool)
                                                : (json_int_t)m->cfg->default_cooldown_ms,
                          "outExpression", "avg(connections.load) > 60",
                          "inExpression", "avg(connections.load) < 20"));
            if (!json_object_get(roles, role))
                json_object_set_new(roles, role, json_pack("{s:s}", "name", role));
        }
        json_object_set_new(groups, rname ? rname : "default",
                            json_pack("{s:s, s:o}", "subGroupName", rname ? rname : "default",
                                      "rulesByRole", rules));
    }
    return json_pack("{s:s, s:s, s:o, s:o, s:{s:O?, s:O?, s:O?}}", "name", name, "cloudPlatform",
                     "SLUICE", "roles", roles, "groups", groups, "sm40", "regions",
                     json_object_get(body, "regions"), "launchConfig",
                     json_object_get(body, "launchConfig"), "scalePolicy",
                     json_object_get(body, "scalePolicy"));
}

/* SM 4.0's node group stats: connections and, per role, nodes, active nodes, capacity, load. */
static json_t *sm4_group_stats(const sl_svc_cluster_t *cl, void *ud, const char *group)
{
    const sl_cluster_node_t *nodes;
    size_t n = cl->nodes(ud, &nodes);
    json_t *by_role = json_object();
    json_int_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const sl_cluster_node_t *nd = &nodes[i];
        if (strcmp(nd->group, group) != 0)
            continue;
        total += nd->connections;
        json_t *r = json_object_get(by_role, nd->role);
        if (!r) {
            r = json_pack("{s:s, s:I, s:I, s:I, s:I}", "type", nd->role, "totalNodeCount",
                          (json_int_t)0, "totalActiveNodeCount", (json_int_t)0,
                          "netConnectionCapacity", (json_int_t)0, "netConnectionLoad",
                          (json_int_t)0);
            json_object_set_new(by_role, nd->role, r);
        }
        static const char *const keys[] = {"totalNodeCount", "totalActiveNodeCount",
                                           "netConnectionCapacity", "netConnectionLoad"};
        json_int_t add[4] = {1, !nd->state[0] || !strcmp(nd->state, "INSERVICE"),
                             (json_int_t)nd->max_connections, (json_int_t)nd->connections};
        for (int k = 0; k < 4; k++)
            json_object_set_new(r, keys[k],
                                json_integer(json_integer_value(json_object_get(r, keys[k])) + add[k]));
    }
    json_t *arr = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(by_role, k, v) json_array_append(arr, v);
    json_decref(by_role);
    return json_pack("{s:I, s:o}", "totalConnections", total, "targetTypeLoadSummary", arr);
}

static int sm4_group_handler(sl_http_req_t *req, void *vm)
{
    as_mod_t *m = vm;
    char seg[PATH_SEGS_MAX][SEG_MAX], key[KEY_MAX];
    const char *method = m->http->req_method(req);
    int n = split(m->http->req_path(req), SM4_GROUP_PREFIX, seg);
    if (n < 0 || n > 2)
        return reply_err(m, req, 404, "not found");
    if (api_auth(m, req))
        return 0;
    void *ud;
    const sl_svc_cluster_t *cl = cluster(m, &ud);
    if (!cl)
        return reply_err(m, req, 503, "cluster mode is off (cluster.enabled)");
    int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (n == 2) {
        snprintf(key, sizeof key, GROUP_PREFIX "%s", seg[0]);
        if (!cl->setting(ud, key))
            return reply_err(m, req, 404, "no such node group");
        if (!strcmp(seg[1], "stats") && is_get)
            return reply_json(m, req, 200, sm4_group_stats(cl, ud, seg[0]));
        if (!strcmp(seg[1], "resize") && !strcmp(method, "POST")) {
            /* Red5's resize, as a manual scale of one role (?role=, default edge) of the
             * default subgroup to ?nodeCount= nodes (the SM 2.0 manualscale's rules). */
            char role[SEG_MAX] = "edge";
            m->http->req_query_get(req, "role", role, sizeof role);
            return sm2_manualscale(m, req, cl, ud, seg[0], "default", role);
        }
        return reply_err(m, req, 404, "not found");
    }
    if (n == 0 && is_get) {
        collect_t c = {.arr = json_array(), .prefix_len = strlen(GROUP_PREFIX), .sm4 = 1};
        cl->settings(ud, GROUP_PREFIX, collect_group, &c);
        return reply_json(m, req, 200, c.arr);
    }
    if (n == 1) {
        snprintf(key, sizeof key, GROUP_PREFIX "%s", seg[0]);
        json_t *o = load_setting(cl, ud, key);
        if (!o)
            return reply_err(m, req, 404, "no such node group");
        if (is_get) {
            json_t *v = sm4_group_view(o, seg[0]);
            json_decref(o);
            return reply_json(m, req, 200, v);
        }
        json_decref(o);
        if (!strcmp(method, "DELETE")) {
            cl->put_setting(ud, key, NULL);
            char pfx[KEY_MAX];
            snprintf(pfx, sizeof pfx, STATE_PREFIX "%s/", seg[0]);
            delete_prefix(m, cl, ud, pfx);
            return reply_json(m, req, 200, json_pack("{s:s}", "name", seg[0]));
        }
        return reply_err(m, req, 405, "method not allowed");
    }
    if (strcmp(method, "POST") != 0)
        return reply_err(m, req, 405, "method not allowed");
    size_t len;
    const uint8_t *body = m->http->req_body(req, &len);
    if (len > SL_AS_GROUP_JSON_MAX)
        return reply_err(m, req, 413, "body too large");
    json_t *b = body ? json_loadb((const char *)body, len, 0, NULL) : NULL;
    const char *pname = json_string_value(json_object_get(b, "scalePolicy"));
    char name[SL_AS_GROUP_NAME_MAX];
    const char *given = json_string_value(json_object_get(b, "name"));
    if (!json_is_object(b) || !pname) {
        json_decref(b);
        return reply_err(m, req, 400, "body {regions, launchConfig, scalePolicy} required");
    }
    if (given && sl_as_group_name_ok(given))
        snprintf(name, sizeof name, "%s", given);
    else
        snprintf(name, sizeof name, "group-%08llx",
                 (unsigned long long)(sl_time_wall_ms() ^ (uintptr_t)b) & 0xffffffffULL);
    char pkey[KEY_MAX];
    snprintf(pkey, sizeof pkey, POLICY_PREFIX "%s", pname);
    json_t *pol = load_setting(cl, ud, pkey);
    if (!pol) {
        json_decref(b);
        return reply_err(m, req, 400, "no such scale policy");
    }
    json_t *g = sm4_to_group(m, name, json_object_get(pol, "policy") ?: pol, b);
    json_decref(pol);
    sl_as_group_t *gs = sl_malloc(sizeof *gs);
    const char *why = "out of memory";
    int status = g && gs ? store_group(m, cl, ud, g, gs, &why) : 500;
    sl_free(gs);
    json_decref(b);
    if (status) {
        json_decref(g);
        return reply_err(m, req, status, why);
    }
    json_t *v = sm4_group_view(g, name);
    json_decref(g);
    return reply_json(m, req, 201, v);
}

static void collect_policy(void *arg, const char *key, const char *json)
{
    collect_t *c = arg;
    json_t *o = json_loads(json, 0, NULL);
    json_t *p = json_object_get(o, "policy");
    (void)key;
    if (p)
        json_array_append(c->arr, p);
    json_decref(o);
}

static int sm4_policy_handler(sl_http_req_t *req, void *vm)
{
    as_mod_t *m = vm;
    char seg[PATH_SEGS_MAX][SEG_MAX], key[KEY_MAX];
    const char *method = m->http->req_method(req);
    int n = split(m->http->req_path(req), SM4_POLICY_PREFIX, seg);
    if (n < 0 || n > 1)
        return reply_err(m, req, 404, "not found");
    if (api_auth(m, req))
        return 0;
    void *ud;
    const sl_svc_cluster_t *cl = cluster(m, &ud);
    if (!cl)
        return reply_err(m, req, 503, "cluster mode is off (cluster.enabled)");
    int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (n == 0 && is_get) {
        collect_t c = {.arr = json_array()};
        cl->settings(ud, POLICY_PREFIX, collect_policy, &c);
        return reply_json(m, req, 200, json_pack("{s:o}", "policies", c.arr));
    }
    if (n == 1 && (is_get || !strcmp(method, "DELETE"))) {
        snprintf(key, sizeof key, POLICY_PREFIX "%s", seg[0]);
        json_t *o = load_setting(cl, ud, key);
        if (!o)
            return reply_err(m, req, 404, "no such scale policy");
        if (!is_get)
            cl->put_setting(ud, key, NULL);
        return reply_json(m, req, 200, o);
    }
    if (!((n == 0 && !strcmp(method, "POST")) || (n == 1 && !strcmp(method, "PUT"))))
        return reply_err(m, req, 405, "method not allowed");
    size_t len;
    const uint8_t *body = m->http->req_body(req, &len);
    if (len > SL_AS_GROUP_JSON_MAX)
        return reply_err(m, req, 413, "body too large");
    json_t *b = body ? json_loadb((const char *)body, len, 0, NULL) : NULL;
    json_t *pol = json_object_get(b, "policy");
    const char *name = json_string_value(json_object_get(pol, "name"));
    if (n == 1 && name && strcmp(name, seg[0]))
        name = NULL;
    if (!json_is_object(pol) || !name || !sl_as_group_name_ok(name) ||
        !json_is_array(json_object_get(json_object_get(pol, "targets"), "region"))) {
        json_decref(b);
        return reply_err(m, req, 400, "{\"policy\":{name, targets:{region:[...]}}} required");
    }
    /* the policy must make a valid group: try it */
    json_t *trial = sm4_to_group(m, "check", pol, b);
    sl_as_group_t *gs = sl_malloc(sizeof *gs);
    char *tt = trial ? json_dumps(trial, JSON_COMPACT) : NULL;
    const char *why = "out of memory";
    int rc = tt && gs ? sl_as_group_parse(tt, strlen(tt), 0, gs, &why) : SL_ENOMEM;
    free(tt);
    sl_free(gs);
    json_decref(trial);
    if (rc) {
        json_decref(b);
        return reply_err(m, req, 400, why ? why : "invalid policy");
    }
    snprintf(key, sizeof key, POLICY_PREFIX "%s", name);
    char *txt = json_dumps(b, JSON_COMPACT | JSON_PRESERVE_ORDER);
    rc = txt ? cl->put_setting(ud, key, txt) : SL_ENOMEM;
    free(txt);
    if (rc) {
        json_decref(b);
        return reply_err(m, req, 503, "cluster state unavailable (Redis down)");
    }
    return reply_json(m, req, n == 0 ? 201 : 200, b);
}

/* ------------------------------------------------------------------ */
/* GET /api/v1/autoscale                                               */

static void status_rule(void *arg, const char *key, const char *json)
{
    json_t *o = json_loads(json, 0, NULL);
    if (o)
        json_object_set_new(arg, key + strlen(STATE_PREFIX), o);
}

static int api_handler(sl_http_req_t *req, void *vm)
{
    as_mod_t *m = vm;
    if (strcmp(m->http->req_method(req), "GET") && strcmp(m->http->req_method(req), "HEAD"))
        return m->api->err(req, 405, "method not allowed");
    json_t *decisions = json_array();
    for (int i = 0; i < m->log_n; i++) {
        const logged_t *l = &m->log[(m->log_next - m->log_n + i + LOG_MAX) % LOG_MAX];
        json_array_append_new(decisions,
                              json_pack("{s:s, s:s, s:s, s:s, s:I}", "id", l->id, "action",
                                        l->action, "nodes", l->nodes, "reason", l->reason,
                                        "timestamp", (json_int_t)l->at_ms));
    }
    json_t *rules = json_object();
    void *ud;
    const sl_svc_cluster_t *cl = cluster(m, &ud);
    if (cl) {
        cl->settings(ud, STATE_PREFIX, status_rule, rules);
    }
    return m->api->ok(req, json_pack("{s:b, s:b, s:s, s:I, s:I, s:o, s:o}", "cluster", cl != NULL,
                                     "evaluator", m->evaluator, "driver",
                                     sl_as_driver_name(m->drv), "ticks", (json_int_t)m->n_ticks,
                                     "decisions_made", (json_int_t)m->n_decisions, "rules",
                                     rules, "decisions", decisions));
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */

static int check(const sl_config_t *cfg, sl_config_err_cb err, void *ud)
{
    const sl_autoscale_config_t *c = sl_autoscale_cfg(cfg);
    int problems = 0;
    if (!c->enabled)
        return 0;
    if (c->driver == SL_AS_DRIVER_PROCESS && (!c->process_config || !c->process_config[0])) {
        sl_config_report(cfg, "autoscale.process_config", err, ud,
                         "the process driver needs a config template");
        problems++;
    }
    if (c->driver == SL_AS_DRIVER_PROCESS && c->process_port_max - c->process_port_min < 4) {
        sl_config_report(cfg, "autoscale.process_port_max", err, ud,
                         "the range must hold at least 5 ports");
        problems++;
    }
    if (c->driver == SL_AS_DRIVER_WEBHOOK && (!c->webhook_url || !c->webhook_url[0])) {
        sl_config_report(cfg, "autoscale.webhook_url", err, ud,
                         "the webhook driver needs a URL");
        problems++;
    }
    return problems;
}

static void as_free(as_mod_t *m)
{
    sl_free(m);
}

/* ------------------------------------------------------------------ */
/* SM 4.0 launch configurations and the scale-out alarm                 */

static void collect_launch(void *arg, const char *key, const char *json)
{
    (void)key;
    json_t *o = json_loads(json, 0, NULL);
    if (o)
        json_array_append_new(arg, o);
}

static int sm4_launch_handler(sl_http_req_t *req, void *vm)
{
    as_mod_t *m = vm;
    char seg[PATH_SEGS_MAX][SEG_MAX], key[KEY_MAX];
    const char *method = m->http->req_method(req);
    int n = split(m->http->req_path(req), SM4_LAUNCH_PREFIX, seg);
    if (n < 0 || n > 1 || (n == 1 && !sl_as_launch_name_ok(seg[0])))
        return reply_err(m, req, 404, "not found");
    if (api_auth(m, req))
        return 0;
    void *ud;
    const sl_svc_cluster_t *cl = cluster(m, &ud);
    if (!cl)
        return reply_err(m, req, 503, "cluster mode is off (cluster.enabled)");
    int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (n == 0 && is_get) {
        json_t *arr = json_array();
        cl->settings(ud, LAUNCH_KEY, collect_launch, arr);
        return reply_json(m, req, 200, json_pack("{s:o}", "launchconfigs", arr));
    }
    if (n == 1) {
        snprintf(key, sizeof key, LAUNCH_KEY "%s", seg[0]);
        json_t *old = load_setting(cl, ud, key);
        if (!old)
            return reply_err(m, req, 404, "no such launch configuration");
        if (is_get)
            return reply_json(m, req, 200, old);
        json_decref(old);
        if (!strcmp(method, "DELETE")) {
            int rc = cl->put_setting(ud, key, NULL);
            return rc ? reply_err(m, req, 503, sl_strerror(rc))
                      : reply_json(m, req, 200, json_pack("{s:s}", "name", seg[0]));
        }
        if (strcmp(method, "PUT") != 0)
            return reply_err(m, req, 405, "method not allowed");
    } else if (strcmp(method, "POST") != 0) {
        return reply_err(m, req, 405, "method not allowed");
    }
    size_t len;
    const uint8_t *body = m->http->req_body(req, &len);
    if (len > SL_AS_LAUNCH_JSON_MAX)
        return reply_err(m, req, 413, "body too large");
    const char *why = "a JSON body is required";
    json_t *b = body ? sl_as_launch_parse((const char *)body, len, n == 1 ? seg[0] : NULL, &why)
                     : NULL;
    if (!b)
        return reply_err(m, req, 400, why);
    snprintf(key, sizeof key, LAUNCH_KEY "%s",
             json_string_value(json_object_get(json_object_get(b, "launchconfig"), "name")));
    if (n == 0 && cl->setting(ud, key)) {
        json_decref(b);
        return reply_err(m, req, 409, "a launch configuration with this name exists");
    }
    char *txt = json_dumps(b, JSON_COMPACT | JSON_PRESERVE_ORDER);
    int rc = txt ? cl->put_setting(ud, key, txt) : SL_ENOMEM;
    free(txt);
    if (rc) {
        json_decref(b);
        return reply_err(m, req, rc == SL_EINVAL ? 400 : 503, sl_strerror(rc));
    }
    SL_LOGI(&g_ctx, "autoscale: %s stored", key);
    return reply_json(m, req, n == 0 ? 201 : 200, b);
}

/*
 * POST /admin/alarm/scaleout/{name}?type=edge&threshold=60: Red5's
 * scale-out alarm, as the out expression "avg(connections.load) > T" of
 * the rules of that role: in every node group for the alarm "default",
 * else in the node group of that name.
 */
static int sm4_alarm_handler(sl_http_req_t *req, void *vm)
{
    as_mod_t *m = vm;
    char seg[PATH_SEGS_MAX][SEG_MAX];
    int n = split(m->http->req_path(req), SM4_ALARM_PREFIX, seg);
    if (n != 2 || strcmp(seg[0], "scaleout") != 0)
        return reply_err(m, req, 404, "not found");
    if (api_auth(m, req))
        return 0;
    if (strcmp(m->http->req_method(req), "POST") != 0)
        return reply_err(m, req, 405, "use POST");
    void *ud;
    const sl_svc_cluster_t *cl = cluster(m, &ud);
    if (!cl)
        return reply_err(m, req, 503, "cluster mode is off (cluster.enabled)");
    char type[SEG_MAX] = "edge", thr[16] = "60";
    m->http->req_query_get(req, "type", type, sizeof type);
    m->http->req_query_get(req, "threshold", thr, sizeof thr);
    char *end;
    long t = strtol(thr, &end, 10);
    if (*end || t < 1 || t > 100)
        return reply_err(m, req, 400, "threshold must be a percent from 1 to 100");
    char expr[64];
    snprintf(expr, sizeof expr, "avg(connections.load) > %ld", t);
    collect_t keys = {.arr = json_array()};
    cl->settings(ud, GROUP_PREFIX, collect_key, &keys);
    json_t *done = json_array();
    size_t i;
    json_t *k;
    int status = 0;
    const char *why = NULL;
    json_array_foreach(keys.arr, i, k) {
        const char *gname = json_string_value(k) + strlen(GROUP_PREFIX);
        if (strcmp(seg[1], "default") != 0 && strcmp(seg[1], gname) != 0)
            continue;
        json_t *g = load_setting(cl, ud, json_string_value(k));
        int changed = 0;
        const char *sub;
        json_t *sg;
        json_object_foreach(json_object_get(g, "groups"), sub, sg) {
            json_t *rule = json_object_get(json_object_get(sg, "rulesByRole"), type);
            if (json_is_object(rule)) {
                json_object_set_new(rule, "outExpression", json_string(expr));
                changed = 1;
            }
        }
        sl_as_group_t *gs = changed ? sl_malloc(sizeof *gs) : NULL;
        if (changed)
            status = gs ? store_group(m, cl, ud, g, gs, &why) : 500;
        sl_free(gs);
        json_decref(g);
        if (status)
            break;
        if (changed)
            json_array_append_new(done, json_string(gname));
    }
    json_decref(keys.arr);
    if (status) {
        json_decref(done);
        return reply_err(m, req, status, why ? why : "out of memory");
    }
    if (json_array_size(done) == 0) {
        json_decref(done);
        return reply_err(m, req, 404, "no node group has a rule for that role");
    }
    SL_LOGI(&g_ctx, "autoscale: alarm scaleout/%s: %s rules out when %s", seg[1], type, expr);
    return reply_json(m, req, 200,
                      json_pack("{s:s, s:s, s:i, s:s, s:o}", "name", seg[1], "type", type,
                                "threshold", (int)t, "outExpression", expr, "nodeGroups", done));
}

static int as_init(const sl_host_api_t *hapi, sl_host_t *h, void **state)
{
    (void)hapi;
    sl_core_t *core = sl_host_core(h);
    const sl_autoscale_config_t *cfg = sl_autoscale_cfg(core->cfg);
    *state = NULL;
    sl_as_child_guard(); /* a node a process driver started dies with it */
    if (!cfg->enabled)
        return 0;
    as_mod_t *m = sl_calloc(1, sizeof *m);
    if (!m)
        return SL_ENOMEM;
    m->core = core;
    m->cfg = cfg;
    if (cfg->jwt_secret && cfg->jwt_secret[0])
        SL_LOGW(&g_ctx, "autoscale: autoscale.jwt_secret is deprecated and ignored: SM 2.0 tokens "
                        "are checked by the stream manager (stream_manager.auth_secret)");
    const char *why = NULL;
    int rc = sl_as_driver_new(core->loop, cfg, core->cfg->server_data_dir, &m->drv, &why);
    if (rc) {
        SL_LOGE(&g_ctx, "autoscale: %s", why ? why : sl_strerror(rc));
        as_free(m);
        return rc;
    }
    sl_store_t *store = sl_store_find(core);
    if (cfg->driver == SL_AS_DRIVER_WEBHOOK && !store)
        SL_LOGW(&g_ctx, "autoscale: no store: webhook decisions are kept in memory only");
    else if (store && (rc = sl_as_driver_use_store(m->drv, store)) != 0)
        SL_LOGW(&g_ctx, "autoscale: the webhook outbox is unavailable (%s): decisions are kept "
                        "in memory only", sl_strerror(rc));
    rc = 0;
    m->http = sl_service_get(core, SL_HTTP_SVC_NAME, SL_HTTP_SVC_MAJOR, 0, &m->http_ud);
    if (m->http) {
        static const struct {
            const char *prefix, *name;
            sl_http_handler_cb cb;
        } routes[N_ROUTES] = {
            {SM2_PREFIX, "SM 2.0 node group admin", sm2_handler},
            {SM4_GROUP_PREFIX, "SM 4.0 node group admin", sm4_group_handler},
            {SM4_POLICY_PREFIX, "SM 4.0 scale policies", sm4_policy_handler},
            {SM4_LAUNCH_PREFIX, "SM 4.0 launch configurations", sm4_launch_handler},
            {SM4_ALARM_PREFIX, "SM 4.0 scale-out alarm", sm4_alarm_handler},
        };
        for (int i = 0; i < N_ROUTES && !rc; i++) {
            sl_http_route_spec_t spec = {.method = NULL, .prefix = routes[i].prefix,
                                         .prio = SL_HTTP_PRIO_CORE, .name = routes[i].name,
                                         .serves = "", .cb = routes[i].cb, .ud = m};
            rc = m->http->route_add(m->http_ud, &spec, &m->routes[i]);
        }
    }
    m->api = sl_service_get(core, SL_SVC_API, SL_SVC_API_MAJOR, 0, &m->api_ud);
    if (!rc && m->api)
        rc = m->api->add_route(m->api_ud, "autoscale", api_handler, m);
    if (rc) {
        for (int i = 0; i < N_ROUTES; i++)
            if (m->routes[i])
                m->http->route_remove(m->http_ud, m->routes[i]);
        sl_as_driver_close(m->drv);
        as_free(m);
        return rc;
    }
    uv_timer_init(core->loop, &m->tick);
    m->tick.data = m;
    uv_timer_start(&m->tick, on_tick, (uint64_t)cfg->interval_ms, (uint64_t)cfg->interval_ms);
    SL_LOGI(&g_ctx, "autoscale: on (driver %s, every %lld ms)", sl_as_driver_name(m->drv),
            (long long)cfg->interval_ms);
    *state = m;
    return 0;
}

static void as_stop(void *state)
{
    as_mod_t *m = state;
    if (!m)
        return;
    for (int i = 0; i < N_ROUTES; i++)
        if (m->routes[i])
            m->http->route_remove(m->http_ud, m->routes[i]);
    memset(m->routes, 0, sizeof m->routes);
    uv_timer_stop(&m->tick);
    uv_close((uv_handle_t *)&m->tick, NULL);
    sl_as_driver_close(m->drv);
    m->drv = NULL;
}

static void as_destroy(void *state)
{
    if (state)
        as_free(state);
}

/* enabled and the driver need a restart (the driver keeps the settings it started with);
 * intervals, timeouts and the lease apply at once. */
static int as_reload(void *state)
{
    as_mod_t *m = state;
    const sl_autoscale_config_t *n = sl_autoscale_cfg(m->core->cfg);
    if (n->enabled != m->cfg->enabled || n->driver != m->cfg->driver)
        return SL_EAGAIN;
    m->cfg = n;
    uv_timer_set_repeat(&m->tick, (uint64_t)n->interval_ms);
    return 0;
}

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI,
    .name = "autoscale",
    .description = "node groups, scale rules, the autoscaler and its drivers",
    .init = as_init,
    .stop = as_stop,
    .destroy = as_destroy,
    .reload = as_reload,
};

const sl_builtin_t sl_autoscale_builtin = {
    .plugin = &plugin,
    .config = &sl_autoscale_config_section,
    .check = check,
};
