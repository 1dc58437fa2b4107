/*
 * The stream manager's HTTP routes (docs/stream-manager.md):
 *   /streammanager/api/4.0/event/...        SM 4.0 lookups, lists, stats (no token)
 *   /streammanager/api/4.0/admin/node/...   SM 4.0 node admin (?accessToken=)
 *   /as/v1/auth/login                        SM 2.0 login (HTTP Basic -> JWT)
 *   /as/v1/streams/stream/...                SM 2.0 lookups, list, stats (no token)
 *   /as/v1/streams/provision/...             SM 2.0 provisions: ABR (provision/<app>/<name>)
 *                                            and restreamer (restreamer/<guid>, camParams),
 *                                            their distribution (distribute/{guid}, and
 *                                            ?restream=true on publish lookups) and persist
 * Node groups (/admin/nodegroup, /as/v1/admin/...) belong to the
 * autoscaler and the proxy (/as/v1/proxy/...) to sm_proxy: the prefixes
 * here are narrow so that theirs reach them.
 *
 * Every request is counted against its address's budget first (429 past
 * stream_manager.lookups_per_minute); paths are split into at most
 * MAX_SEGS segments of [A-Za-z0-9_.:-] and refused otherwise. Answers
 * are Red5's raw JSON (no envelope); errors are SM 4.0's
 * {"errorMessage", "timestamp"} on both APIs.
 */
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/time.h"
#include "cluster/streammanager/sm_internal.h"
#include "cluster/streammanager/sm_jwt.h"
#include "cluster/streammanager/sm_provision.h"
#include "sluice/errors.h"

#define SM4_PREFIX "/streammanager/api/4.0"
#define SM2_PROV_PREFIX "/as/v1/streams/provision"
#define MAX_SEGS 12
#define SEG_MAX 128

typedef struct segs {
    int n;
    char s[MAX_SEGS][SEG_MAX];
} segs_t;

/* Splits path (after a prefix) on '/' into s: 0, or -1 (too many, too long, bad bytes). */
static int split(const char *path, segs_t *s)
{
    s->n = 0;
    while (*path) {
        while (*path == '/')
            path++;
        if (!*path)
            break;
        size_t n = strcspn(path, "/");
        if (s->n == MAX_SEGS || n >= SEG_MAX)
            return -1;
        for (size_t i = 0; i < n; i++) {
            char c = path[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.' || c == ':'))
                return -1;
        }
        if ((n == 1 && path[0] == '.') || (n == 2 && path[0] == '.' && path[1] == '.'))
            return -1;
        memcpy(s->s[s->n], path, n);
        s->s[s->n][n] = '\0';
        s->n++;
        path += n;
    }
    return 0;
}

/* Joins segments [from, to) with '/' into out: 0 or -1 when it does not fit. */
static int join(const segs_t *s, int from, int to, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (int i = from; i < to; i++) {
        size_t n = strlen(s->s[i]);
        if (o + n + 2 > cap)
            return -1;
        if (i > from)
            out[o++] = '/';
        memcpy(out + o, s->s[i], n + 1);
        o += n;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* answers                                                             */

static void reply_json(sm_mod_t *m, sl_http_req_t *req, int status, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) {
        m->http->respond(req, 500, "application/json", "{\"errorMessage\":\"out of memory\"}",
                         32, NULL);
        return;
    }
    m->http->respond(req, status, "application/json", text, strlen(text),
                     "Cache-Control: no-store\r\n");
    free(text);
}

static void reply_err(sm_mod_t *m, sl_http_req_t *req, int status, const char *msg)
{
    reply_json(m, req, status,
               json_pack("{s:s, s:I}", "errorMessage", msg, "timestamp",
                         (json_int_t)sl_time_wall_ms()));
}

/* The HTTP status of a choice's error. */
static int status_of(int rc)
{
    switch (rc) {
    case SL_ENOTFOUND: return 404;
    case SL_EBUSY: return 503;
    case SL_EDENIED: return 409;
    case SL_EINVAL: return 400;
    default: return 503;
    }
}

static void add_ports(json_t *o, const sl_cluster_node_t *n)
{
    json_object_set_new(o, "nodeId", json_string(n->id));
    json_object_set_new(o, "rtmpPort", json_integer(n->rtmp_port));
    json_object_set_new(o, "httpPort", json_integer(n->http_port));
    json_object_set_new(o, "rtspPort", json_integer(n->rtsp_port));
    json_object_set_new(o, "srtPort", json_integer(n->srt_port));
}

/* SM 4.0's shape of one named node: {name, scope, serverAddress, region} + ports. */
static json_t *sm4_node(const char *app, const char *stream, const sl_cluster_node_t *n)
{
    char scope[SL_CLUSTER_PATH_MAX + 1];
    snprintf(scope, sizeof scope, "/%s", app);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", stream, "scope", scope,
                          "serverAddress", n->host, "region", n->region, "nodeRole", n->role);
    if (o)
        add_ports(o, n);
    return o;
}

/* SM 2.0's shape: {streamGuid, serverAddress, nodeRole, subGroup, nodeId, ...}. */
static json_t *sm2_node(const char *path, const sl_cluster_node_t *n)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "streamGuid", path, "serverAddress",
                          n->host, "nodeRole", n->role, "subGroup", n->region, "nodeGroup",
                          n->group, "nodeState", n->state);
    if (o)
        add_ports(o, n);
    return o;
}

/* Red5's node admin shape, with the load (stats 1) added. */
static json_t *node_json(const sl_cluster_node_t *n, int stats)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "identifier", n->id, "role",
                          n->role, "availabilityZone", n->region, "address", n->host, "state",
                          n->state, "launchConfig", "", "capacity",
                          (json_int_t)n->max_connections, "group", n->group);
    if (!o || !stats)
        return o;
    json_object_set_new(o, "totalConnections", json_integer(n->connections));
    json_object_set_new(o, "publishers", json_integer(n->publishers));
    json_object_set_new(o, "subscribers", json_integer(n->subscribers));
    json_object_set_new(o, "streams", json_integer(n->streams));
    json_object_set_new(o, "cpuLoad", json_real(n->cpu_load));
    json_object_set_new(o, "memoryLoad", json_real(n->mem_load));
    json_object_set_new(o, "bytesInRate", json_integer((json_int_t)n->bytes_in_rate));
    json_object_set_new(o, "bytesOutRate", json_integer((json_int_t)n->bytes_out_rate));
    json_object_set_new(o, "lastPing", json_integer((json_int_t)n->reported_ms));
    json_object_set_new(o, "startTime", json_integer((json_int_t)n->started_ms));
    return o;
}

/* ------------------------------------------------------------------ */
/* lookups                                                             */

/* endpoints=N: 1..max_endpoints into *n; 0, or -1 (answered 400). */
static int get_endpoints(sm_mod_t *m, sl_http_req_t *req, size_t *n, int *given)
{
    char v[16];
    *n = 1;
    *given = 0;
    int len = m->http->req_query_get(req, "endpoints", v, sizeof v);
    if (len == -1)
        return 0;
    char *end;
    long e = len > 0 ? strtol(v, &end, 10) : 0;
    if (len <= 0 || *end || e < 1 || e > sl_sm_cfg(m->core->cfg)->max_endpoints) {
        reply_err(m, req, 400, "endpoints must be an integer from 1 to stream_manager.max_endpoints");
        return -1;
    }
    *n = (size_t)e;
    *given = 1;
    return 0;
}

static int query_true(sm_mod_t *m, sl_http_req_t *req, const char *key)
{
    char v[8];
    return m->http->req_query_get(req, key, v, sizeof v) >= 0 &&
           (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

static void rs_lookup(sm_mod_t *m, sl_http_req_t *req, const char *group, const char *path,
                      const char *region, int strict);

/*
 * One lookup: path "app/stream", action; sm4 picks the answer's shape
 * (SM 4.0: an object, or an array when endpoints=N was given with N > 1;
 * SM 2.0: always an array). group NULL for SM 4.0.
 */
static void lookup(sm_mod_t *m, sl_http_req_t *req, int sm4, const char *group, const segs_t *s,
                   int from, sl_sm_action_t action)
{
    char path[SL_CLUSTER_PATH_MAX], app[SL_CLUSTER_PATH_MAX];
    if (s->n - from < 2 || join(s, from, s->n, path, sizeof path) ||
        join(s, from, s->n - 1, app, sizeof app)) {
        reply_err(m, req, 400, "expected {app}/{stream}");
        return;
    }
    char region[SL_CLUSTER_NAME_MAX] = "";
    const char *keys[3] = {"region", sm4 ? "geozone" : "subgroup", sm4 ? "subgroup" : "geozone"};
    for (int i = 0; i < 3 && !region[0]; i++)
        if (m->http->req_query_get(req, keys[i], region, sizeof region) == -2) {
            reply_err(m, req, 400, "region too long");
            return;
        }
    size_t want;
    int given;
    if (get_endpoints(m, req, &want, &given))
        return;
    sl_sm_query_t q = {
        .action = action,
        .group = group,
        .path = path,
        .region = region[0] ? region : NULL,
        .strict = query_true(m, req, "strict"),
    };
    char level1[SL_SM_PROV_GUID_MAX];
    if (!sm4 && action == SL_SM_PUBLISH && query_true(m, req, "restream")) {
        /* SM 2.0 restreamer provision: distribute it (docs/stream-manager.md). */
        rs_lookup(m, req, group, path, q.region, q.strict);
        return;
    }
    if (action == SL_SM_PUBLISH && query_true(m, req, "transcode")) {
        /* ABR (docs/stream-manager.md "Provisions"): a transcoder for a
         * provisioned GUID, which the broadcaster feeds with level 1. */
        void *cud;
        const sl_svc_cluster_t *c = sl__sm_cluster(m, &cud);
        char key[SL_CLUSTER_PATH_MAX + 16];
        snprintf(key, sizeof key, "provision/%s", path);
        const char *prov = c ? c->setting(cud, key) : NULL;
        if (!c) {
            reply_err(m, req, 503, "cluster mode is off on this node");
            return;
        }
        if (!prov || sl_sm_prov_level1(prov, level1, sizeof level1)) {
            reply_err(m, req, 404, "no provision for this stream: transcode=true needs one");
            return;
        }
        q.action = action = SL_SM_TRANSCODE;
        q.path = level1;
    }
    sl_cluster_node_t out[16];
    if (want > sizeof out / sizeof out[0])
        want = sizeof out / sizeof out[0];
    size_t n;
    const char *why = "";
    int rc = sl__sm_choose(m, &q, out, want, &n, 1, &why);
    if (rc) {
        /* SM 4.0 knows 400 and 404 only: an existing broadcast is a 400 there. */
        int st = status_of(rc);
        if (sm4 && st == 409)
            st = 400;
        SL_LOGD(NULL, "stream manager: %s %s refused: %s",
                action == SL_SM_SUBSCRIBE ? "subscribe" : "publish", path, why);
        reply_err(m, req, st, why);
        return;
    }
    const char *stream = s->s[s->n - 1];
    if (sm4 && !(given && want > 1)) {
        reply_json(m, req, 200, sm4_node(app, stream, &out[0]));
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, sm4 ? sm4_node(app, stream, &out[i]) : sm2_node(path, &out[i]));
    reply_json(m, req, 200, arr);
}

/* ------------------------------------------------------------------ */
/* lists and stats                                                     */

typedef struct pres_ctx {
    const sl_svc_cluster_t *c;
    void *cud;
    const char *path;   /* only this stream, or NULL */
    const char *group;  /* only nodes of this group, or NULL */
    json_t *arr;
    int sm4;
} pres_ctx_t;

static const char *after_slash(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Red5's scope of a path: "/" + everything before the stream name ("/live"). */
static void scope_of(const char *path, char *out, size_t cap)
{
    const char *s = strrchr(path, '/');
    snprintf(out, cap, "/%.*s", s ? (int)(s - path) : 0, path);
}

static void pres_each(void *arg, const sl_cluster_presence_t *p)
{
    pres_ctx_t *x = arg;
    if (x->path && strcmp(p->path, x->path) != 0)
        return;
    const sl_cluster_node_t *n = x->c->node(x->cud, p->node);
    if (!n || (x->group && strcmp(n->group, x->group) != 0))
        return;
    char scope[SL_CLUSTER_PATH_MAX + 1];
    scope_of(p->path, scope, sizeof scope);
    json_t *o = x->sm4 ? json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "name",
                                   after_slash(p->path), "scope", scope, "serverAddress", n->host,
                                   "type", p->is_origin ? "origin" : "edge", "region", n->region,
                                   "currentSubscribers", (json_int_t)p->subscribers, "startTime",
                                   (json_int_t)p->started_ms)
                       : json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "streamGuid", p->path,
                                   "nodeId", n->id, "serverAddress", n->host, "nodeRole", n->role,
                                   "subGroup", n->region, "subscribers",
                                   (json_int_t)p->subscribers, "startTime",
                                   (json_int_t)p->started_ms);
    if (o)
        json_object_set_new(o, "nodeId", json_string(n->id));
    json_array_append_new(x->arr, o);
}

/* One stream's aggregate entry: its origin, its players on every node. */
static json_t *stream_entry(const sl_svc_cluster_t *c, void *cud, const sl_cluster_stream_t *st,
                            int sm4, int stats)
{
    const sl_cluster_node_t *o = c->node(cud, st->origin);
    const char *host = o ? o->host : "", *region = o ? o->region : "";
    char scope[SL_CLUSTER_PATH_MAX + 1];
    scope_of(st->path, scope, sizeof scope);
    json_t *e = sm4 ? json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", after_slash(st->path), "scope",
                                scope, "serverAddress", host, "type", "origin", "region", region)
                    : json_pack("{s:s, s:s, s:s, s:s, s:s}", "streamGuid", st->path, "nodeId",
                                st->origin, "serverAddress", host, "nodeRole",
                                o ? o->role : "", "subGroup", region);
    if (e && stats) {
        json_object_set_new(e, sm4 ? "currentSubscribers" : "subscribers",
                            json_integer(st->subscribers));
        json_object_set_new(e, "startTime", json_integer((json_int_t)st->started_ms));
    }
    if (e && sm4)
        json_object_set_new(e, "nodeId", json_string(st->origin));
    return e;
}

/*
 * Every placed stream (of group's origins when group is set): one entry
 * per stream, or with aggregate 0 one per (node, stream) from the nodes'
 * reports.
 */
static void list_streams(sm_mod_t *m, sl_http_req_t *req, int sm4, const char *group, int stats,
                         int aggregate)
{
    void *cud;
    const sl_svc_cluster_t *c = sl__sm_cluster(m, &cud);
    if (!c) {
        reply_err(m, req, 503, "cluster mode is off on this node");
        return;
    }
    json_t *arr = json_array();
    if (!aggregate) {
        pres_ctx_t x = {c, cud, NULL, group, arr, sm4};
        c->presences(cud, pres_each, &x);
    } else {
        const sl_cluster_stream_t *st;
        size_t n = c->streams(cud, &st);
        for (size_t i = 0; arr && i < n; i++) {
            const sl_cluster_node_t *o = c->node(cud, st[i].origin);
            if (group && (!o || strcmp(o->group, group) != 0))
                continue;
            json_array_append_new(arr, stream_entry(c, cud, &st[i], sm4, stats));
        }
    }
    reply_json(m, req, 200, arr);
}

/* One stream's stats: the aggregate entry, or per node (aggregate 0). 404 when not live. */
static void stream_stats(sm_mod_t *m, sl_http_req_t *req, int sm4, const char *group,
                         const segs_t *s, int from, int to)
{
    void *cud;
    const sl_svc_cluster_t *c = sl__sm_cluster(m, &cud);
    char path[SL_CLUSTER_PATH_MAX];
    if (!c) {
        reply_err(m, req, 503, "cluster mode is off on this node");
        return;
    }
    if (to - from < 2 || join(s, from, to, path, sizeof path)) {
        reply_err(m, req, 400, "expected {app}/{stream}");
        return;
    }
    const sl_cluster_stream_t *st = c->stream(cud, path);
    if (!st) {
        reply_err(m, req, 404, "the stream is not being published");
        return;
    }
    char v[8];
    if (m->http->req_query_get(req, "aggregate", v, sizeof v) >= 0 && strcmp(v, "false") == 0) {
        pres_ctx_t x = {c, cud, path, group, json_array(), sm4};
        c->presences(cud, pres_each, &x);
        reply_json(m, req, 200, x.arr);
        return;
    }
    reply_json(m, req, 200, stream_entry(c, cud, st, sm4, 1));
}

/* ------------------------------------------------------------------ */
/* SM 4.0 admin                                                        */

/* ?accessToken= against the admin token: 1 when right; else answered 401/403/429. */
static int admin_ok(sm_mod_t *m, sl_http_req_t *req)
{
    char tok[160];
    int len = m->http->req_query_get(req, "accessToken", tok, sizeof tok);
    int rc = sl__sm_check_admin_token(m, len >= 0 ? tok : NULL, m->http->req_remote(req, NULL));
    OPENSSL_cleanse(tok, sizeof tok);
    if (rc == 0)
        return 1;
    reply_err(m, req, rc == SL_ETOOBIG ? 429 : rc == SL_EBUSY ? 403 : 401,
              rc == SL_ETOOBIG ? "too many failed authentication attempts; try again later"
              : rc == SL_EBUSY ? "invalid accessToken"
                               : "accessToken is required");
    return 0;
}

int sl__sm_check_admin_token(sm_mod_t *m, const char *token, const char *remote)
{
    if (sl__sm_auth_blocked(m, remote, 0))
        return SL_ETOOBIG;
    if (!token)
        return SL_EDENIED;
    /* Digests of both, so that the comparison takes the same time whatever the lengths. */
    uint8_t a[32], b[32];
    SHA256((const uint8_t *)token, strlen(token), a);
    SHA256((const uint8_t *)m->admin_token, strlen(m->admin_token), b);
    if (CRYPTO_memcmp(a, b, 32) != 0) {
        sl__sm_auth_blocked(m, remote, 1);
        SL_LOGI(NULL, "stream manager: wrong accessToken from %s", remote);
        return SL_EBUSY;
    }
    return 0;
}

/* The node addressed as {ip}: by its public or private address, or by its id. */
static const sl_cluster_node_t *find_node(const sl_svc_cluster_t *c, void *cud, const char *key)
{
    const sl_cluster_node_t *nodes;
    size_t n = c->nodes(cud, &nodes);
    for (size_t i = 0; i < n; i++)
        if (strcmp(nodes[i].id, key) == 0)
            return &nodes[i];
    for (size_t i = 0; i < n; i++)
        if (strcmp(nodes[i].host, key) == 0 || strcmp(nodes[i].private_host, key) == 0)
            return &nodes[i];
    return NULL;
}

typedef struct parents_ctx {
    const sl_svc_cluster_t *c;
    void *cud;
    const char *node;
    json_t *arr;
} parents_ctx_t;

/* For a node's stats: the origins of the streams it serves and does not hold. */
static void parents_each(void *arg, const sl_cluster_presence_t *p)
{
    parents_ctx_t *x = arg;
    if (p->is_origin || strcmp(p->node, x->node) != 0)
        return;
    const sl_cluster_stream_t *st = x->c->stream(x->cud, p->path);
    const sl_cluster_node_t *o = st ? x->c->node(x->cud, st->origin) : NULL;
    if (!o)
        return;
    size_t i;
    json_t *v;
    json_array_foreach(x->arr, i, v) if (strcmp(json_string_value(v), o->host) == 0) return;
    json_array_append_new(x->arr, json_string(o->host));
}

static void sunset(sm_mod_t *m, sl_http_req_t *req, const sl_svc_cluster_t *c, void *cud)
{
    size_t len;
    const uint8_t *body = m->http->req_body(req, &len);
    if (!body || len > 65536) {
        reply_err(m, req, 400, "expected a JSON array of node addresses");
        return;
    }
    json_t *arr = sl_sm_prov_parse((const char *)body, len); /* the capped parse (depth 16) */
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > 1024) {
        json_decref(arr);
        reply_err(m, req, 400, "expected a JSON array of node addresses");
        return;
    }
    json_t *done = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        const sl_cluster_node_t *n = json_is_string(v) ? find_node(c, cud, json_string_value(v)) : NULL;
        if (!n) {
            json_decref(arr);
            json_decref(done);
            reply_err(m, req, 404, "no such node");
            return;
        }
        char id[SL_CLUSTER_ID_MAX];
        snprintf(id, sizeof id, "%s", n->id);
        int rc = c->set_state(cud, id, "SOFT_SUNSET");
        if (rc) {
            json_decref(arr);
            json_decref(done);
            reply_err(m, req, rc == SL_ENOTFOUND ? 404 : 503, sl_strerror(rc));
            return;
        }
        SL_LOGI(NULL, "stream manager: node %s set to SOFT_SUNSET (drain)", id);
        json_array_append_new(done, json_pack("{s:s, s:s}", "identifier", id, "state", "SOFT_SUNSET"));
    }
    json_decref(arr);
    reply_json(m, req, 200, done);
}

static void sm4_provision(sm_mod_t *m, sl_http_req_t *req, const segs_t *s,
                          const sl_svc_cluster_t *c, void *cud);

static void sm4_admin(sm_mod_t *m, sl_http_req_t *req, const segs_t *s)
{
    if (!admin_ok(m, req))
        return;
    void *cud;
    const sl_svc_cluster_t *c = sl__sm_cluster(m, &cud);
    if (!c) {
        reply_err(m, req, 503, "cluster mode is off on this node");
        return;
    }
    if (s->n >= 3 && strcmp(s->s[1], "event") == 0 && strcmp(s->s[2], "meta") == 0) {
        sm4_provision(m, req, s, c, cud);
        return;
    }
    if (s->n < 2 || strcmp(s->s[1], "node") != 0) {
        reply_err(m, req, 404, "no such resource");
        return;
    }
    const char *method = m->http->req_method(req);
    /* s: admin node {ip} [stats] | admin node sunset */
    if (s->n == 3 && strcmp(s->s[2], "sunset") == 0) {
        if (strcmp(method, "POST") != 0) {
            reply_err(m, req, 405, "use POST");
            return;
        }
        sunset(m, req, c, cud);
        return;
    }
    if (s->n < 3 || s->n > 4 || (s->n == 4 && strcmp(s->s[3], "stats") != 0)) {
        reply_err(m, req, 404, "no such resource");
        return;
    }
    const sl_cluster_node_t *n = find_node(c, cud, s->s[2]);
    if (!n) {
        reply_err(m, req, 404, "no such node");
        return;
    }
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
        json_t *o = node_json(n, s->n == 4);
        if (o && s->n == 4) {
            parents_ctx_t x = {c, cud, n->id, json_array()};
            c->presences(cud, parents_each, &x);
            json_object_set_new(o, "parents", x.arr);
        }
        reply_json(m, req, 200, o);
        return;
    }
    if (strcmp(method, "DELETE") == 0 && s->n == 3) {
        /* Red5 terminates the node; here it leaves service: SOFT_SUNSET
         * (drain), or HARD_SUNSET with force=true. A process driver or the
         * platform stops it (docs/stream-manager.md). */
        const char *state = query_true(m, req, "force") ? "HARD_SUNSET" : "SOFT_SUNSET";
        char id[SL_CLUSTER_ID_MAX];
        snprintf(id, sizeof id, "%s", n->id);
        json_t *o = node_json(n, 0);
        int rc = c->set_state(cud, id, state);
        if (rc) {
            json_decref(o);
            reply_err(m, req, rc == SL_ENOTFOUND ? 404 : 503, sl_strerror(rc));
            return;
        }
        SL_LOGI(NULL, "stream manager: node %s set to %s", id, state);
        json_object_set_new(o, "state", json_string(state));
        reply_json(m, req, 200, o);
        return;
    }
    reply_err(m, req, 405, "method not allowed");
}

/* ------------------------------------------------------------------ */
/* routes                                                              */

/* The per-address budget; 1 when the request may go on (else answered 429). */
static int budget_ok(sm_mod_t *m, sl_http_req_t *req)
{
    if (sl__sm_rate_ok(m, m->http->req_remote(req, NULL)))
        return 1;
    reply_err(m, req, 429, "too many requests from this address; try again later");
    return 0;
}

/* ------------------------------------------------------------------ */
/* provisions (ABR): the cluster settings provision/<app>/<name>        */

/* The request's body parsed as JSON (capped); NULL when answered 400. */
static json_t *body_json(sm_mod_t *m, sl_http_req_t *req)
{
    size_t len;
    const uint8_t *body = m->http->req_body(req, &len);
    json_t *j = body && len <= SL_SM_PROV_BODY_MAX ? sl_sm_prov_parse((const char *)body, len) : NULL;
    if (!j)
        reply_err(m, req, 400, body && len > SL_SM_PROV_BODY_MAX
                                   ? "the body is larger than 64 KiB"
                                   : "the body is not JSON (or nests too deep)");
    return j;
}

/* The stored canonical provision of guid, parsed (new reference), or NULL. */
static json_t *prov_get(const sl_svc_cluster_t *c, void *cud, const char *guid)
{
    char key[SL_SM_PROV_GUID_MAX + 16];
    snprintf(key, sizeof key, "provision/%s", guid);
    const char *text = c->setting(cud, key);
    return text ? sl_sm_prov_parse(text, strlen(text)) : NULL;
}

/* Writes (canon non-NULL) or deletes guid's provision: 0, or answered (400/503). */
static int prov_put(sm_mod_t *m, sl_http_req_t *req, const sl_svc_cluster_t *c, void *cud,
                    const char *guid, const json_t *canon)
{
    char key[SL_SM_PROV_GUID_MAX + 16];
    snprintf(key, sizeof key, "provision/%s", guid);
    char *text = canon ? json_dumps(canon, JSON_COMPACT) : NULL;
    int rc = canon && !text ? SL_ENOMEM : c->put_setting(cud, key, text);
    free(text);
    if (rc) {
        reply_err(m, req, rc == SL_EINVAL ? 400 : 503,
                  rc == SL_EIO ? "the cluster's Redis is unreachable" : sl_strerror(rc));
        return -1;
    }
    SL_LOGI(NULL, "stream manager: provision %s %s", guid, canon ? "written" : "deleted");
    return 0;
}

static void prov_list_each(void *arg, const char *key, const char *json)
{
    (void)key;
    json_t *j = sl_sm_prov_parse(json, strlen(json));
    if (j)
        json_array_append_new(arg, j);
}

/* SM 4.0: admin event meta {scope..} {stream}. */
static void sm4_provision(sm_mod_t *m, sl_http_req_t *req, const segs_t *s,
                          const sl_svc_cluster_t *c, void *cud)
{
    char guid[SL_CLUSTER_PATH_MAX], app[SL_CLUSTER_PATH_MAX];
    if (s->n < 5 || join(s, 3, s->n, guid, sizeof guid) || join(s, 3, s->n - 1, app, sizeof app)) {
        reply_err(m, req, 400, "expected /admin/event/meta/{scope}/{stream}");
        return;
    }
    const char *method = m->http->req_method(req);
    json_t *old = prov_get(c, cud, guid);
    if (strcmp(method, "GET") == 0 || strcmp(method, "DELETE") == 0) {
        if (!old) {
            reply_err(m, req, 404, "no provision for this stream");
            return;
        }
        if (method[0] == 'D' && prov_put(m, req, c, cud, guid, NULL)) {
            json_decref(old);
            return;
        }
        json_t *o = sl_sm_prov_to_sm4(old, (long long)sl_time_wall_ms());
        json_decref(old);
        reply_json(m, req, 200, o);
        return;
    }
    if (strcmp(method, "POST") != 0 && strcmp(method, "PUT") != 0) {
        json_decref(old);
        reply_err(m, req, 405, "use GET, POST, PUT or DELETE");
        return;
    }
    /* POST creates (400 when one exists: SM 4.0 knows no 409), PUT replaces (404 when none). */
    int create = method[1] == 'O', exists = old != NULL;
    json_decref(old);
    if (create ? exists : !exists) {
        reply_err(m, req, create ? 400 : 404,
                  create ? "a provision for this stream exists: use PUT to update it"
                         : "no provision for this stream");
        return;
    }
    json_t *body = body_json(m, req);
    if (!body)
        return;
    json_t *canon;
    char err[200];
    int rc = sl_sm_prov_from_sm4(body, app, s->s[s->n - 1], &canon, err, sizeof err);
    json_decref(body);
    if (rc) {
        reply_err(m, req, 400, err);
        return;
    }
    if (prov_put(m, req, c, cud, guid, canon) == 0)
        reply_json(m, req, 200, sl_sm_prov_to_sm4(canon, (long long)sl_time_wall_ms()));
    json_decref(canon);
}

/* SM 2.0's bearer check for an admin route: 1 when allowed, else answered 401/403/429. */
static int bearer_admin_ok(sm_mod_t *m, sl_http_req_t *req)
{
    const char *addr = m->http->req_remote(req, NULL);
    if (sl__sm_auth_blocked(m, addr, 0)) {
        reply_err(m, req, 429, "too many failed authentication attempts; try again later");
        return 0;
    }
    int rc = sl__sm_check_token(m, m->http->req_header(req, "Authorization"), "admin");
    if (rc == 0)
        return 1;
    if (rc == SL_EDENIED)
        sl__sm_auth_blocked(m, addr, 1);
    reply_err(m, req, rc == SL_EBUSY ? 403 : 401,
              rc == SL_EBUSY ? "this token's role may not do this" : "a valid admin token is required");
    return 0;
}

/* ------------------------------------------------------------------ */
/* restreamer provisions: the cluster settings restreamer/<guid>        */

#define RS_PREFIX "restreamer/"
#define RS_STATUS_PREFIX "restreamer-status/"
#define DIST_WAIT_MS 10000    /* blocking=true: how long the node has to take the provision */
#define DIST_POLL_MS 100
#define DIST_WAITS_MAX 64     /* blocking distributions at once */

/* The setting of key prefix+guid parsed (new reference), or NULL. */
static json_t *setting_json(const sl_svc_cluster_t *c, void *cud, const char *prefix,
                            const char *guid)
{
    char key[SL_SM_PROV_GUID_MAX + 32];
    if ((size_t)snprintf(key, sizeof key, "%s%s", prefix, guid) >= sizeof key)
        return NULL;
    const char *text = c->setting(cud, key);
    return text ? sl_sm_prov_parse(text, strlen(text)) : NULL;
}

/* Writes (obj non-NULL) or deletes (with its status) guid's restreamer provision: 0, or answered. */
static int rs_put(sm_mod_t *m, sl_http_req_t *req, const sl_svc_cluster_t *c, void *cud,
                  const char *guid, const json_t *obj)
{
    char key[SL_SM_RS_GUID_MAX + 32];
    snprintf(key, sizeof key, RS_PREFIX "%s", guid);
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    int rc = obj && !text ? SL_ENOMEM : c->put_setting(cud, key, text);
    free(text);
    if (!rc && !obj) {
        snprintf(key, sizeof key, RS_STATUS_PREFIX "%s", guid);
        rc = c->put_setting(cud, key, NULL);
    }
    if (rc) {
        if (req)
            reply_err(m, req, rc == SL_EINVAL ? 400 : 503,
                      rc == SL_EIO ? "the cluster's Redis is unreachable" : sl_strerror(rc));
        return -1;
    }
    SL_LOGI(NULL, "stream manager: restreamer provision %s %s", guid, obj ? "written" : "deleted");
    return 0;
}

static const char *rs_stream_guid(const json_t *prov)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(prov, "streams"), 0), "streamGuid"));
}

/* The action a capability mask asks for: 0 when none sluice carries out. */
static sl_sm_action_t caps_action(int caps)
{
    if (caps & SL_SM_CAP_PUBLISH)
        return SL_SM_PUBLISH;
    if (caps & SL_SM_CAP_SUBSCRIBE)
        return SL_SM_SUBSCRIBE;
    if (caps & SL_SM_CAP_TRANSCODE)
        return SL_SM_TRANSCODE;
    return 0;
}

/* 1 when node n (the provision's current one) may keep it for action. */
static int node_keeps(const sl_cluster_node_t *n, sl_sm_action_t action)
{
    if (n->state[0] && strcmp(n->state, "INSERVICE") != 0)
        return 0;
    if (strcmp(n->role, "all") == 0)
        return 1;
    switch (action) {
    case SL_SM_PUBLISH: return strcmp(n->role, "origin") == 0;
    case SL_SM_SUBSCRIBE: return strcmp(n->role, "edge") == 0;
    case SL_SM_TRANSCODE: return strcmp(n->role, "transcoder") == 0;
    default: return 0;
    }
}

/* A blocking distribution waiting for its node's status (sl_list in m->waits). */
typedef struct dist_wait {
    sl_list_t link;
    uv_timer_t timer;
    sm_mod_t *m;
    sl_http_req_t *req;
    char guid[SL_CLUSTER_PATH_MAX];
    char node[SL_CLUSTER_ID_MAX];
    long long dist_time;          /* the distribution's time, which the status echoes */
    uint64_t deadline;            /* loop time */
    json_t *answer;               /* owned: the StreamLocation array */
} dist_wait_t;

static void wait_closed(uv_handle_t *h)
{
    sl_free(h->data);
}

/* Answers w (status, and answer or msg) and frees it. */
static void wait_end(dist_wait_t *w, int status, const char *msg)
{
    sm_mod_t *m = w->m;
    if (status == 200) {
        reply_json(m, w->req, 200, w->answer);
        w->answer = NULL;
    } else {
        reply_err(m, w->req, status, msg);
    }
    json_decref(w->answer);
    sl_list_remove(&w->link);
    m->n_waits--;
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, wait_closed);
}

static void on_wait_tick(uv_timer_t *t)
{
    dist_wait_t *w = t->data;
    void *cud;
    const sl_svc_cluster_t *c = sl__sm_cluster(w->m, &cud);
    json_t *st = c ? setting_json(c, cud, RS_STATUS_PREFIX, w->guid) : NULL;
    json_t *prov = c ? setting_json(c, cud, RS_PREFIX, w->guid) : NULL;
    const char *node = json_string_value(json_object_get(st, "nodeId"));
    json_t *dt = json_object_get(st, "distributed");
    int mine = node && strcmp(node, w->node) == 0 && json_is_integer(dt) &&
               json_integer_value(dt) == w->dist_time;
    const char *state = json_string_value(json_object_get(st, "state"));
    char msg[300];
    if (!prov) {
        wait_end(w, 404, "the provision was deleted while it was distributed");
    } else if (mine && state && strcmp(state, "running") == 0) {
        wait_end(w, 200, NULL);
    } else if (mine) {
        json_int_t code = json_integer_value(json_object_get(st, "code"));
        snprintf(msg, sizeof msg, "node %s could not carry out the provision: %s", w->node,
                 json_string_value(json_object_get(st, "error"))
                     ? json_string_value(json_object_get(st, "error"))
                     : "unknown error");
        wait_end(w, code >= 400 && code < 600 ? (int)code : 502, msg);
    } else if (uv_now(w->m->core->loop) >= w->deadline) {
        snprintf(msg, sizeof msg, "node %s did not report the provision within %d s", w->node,
                 DIST_WAIT_MS / 1000);
        wait_end(w, 504, msg);
    }
    json_decref(st);
    json_decref(prov);
}

/* 1 when prov (a restreamer provision) pushes its stream out rather than pulling it in. */
static int rs_is_push(const json_t *prov)
{
    const char *t = json_string_value(json_object_get(
        json_object_get(json_object_get(json_array_get(json_object_get(prov, "streams"), 0),
                                        "camParams"),
                        "properties"),
        "type"));
    return t && (strcmp(t, "rtmp-push") == 0 || strcmp(t, "rtmps-push") == 0 ||
                 strcmp(t, "srt-push") == 0 || strcmp(t, "srt-caller") == 0);
}

/*
 * Places restreamer provision prov (borrowed, the stored setting; its
 * "distribution" is updated in place) of guid for the action its
 * capabilities ask, into *chosen: the node that has it keeps it while it is
 * in service with a fitting role (Red5: "will keep choosing the same server
 * node"); else prefer (a node already chosen for the same stream) when it
 * fits; else, for a push with PUBLISH, the origin of its live stream; else a
 * node chosen as for a lookup. write: the distribution is written into the
 * setting (0: chosen only, distribute=false). 0 with *dist_time (the
 * distribution's time), or an HTTP status with *why.
 */
static int rs_place(sm_mod_t *m, const sl_svc_cluster_t *c, void *cud, const char *group,
                    const char *guid, json_t *prov, int caps, const char *region, int strict,
                    int write, const sl_cluster_node_t *prefer, sl_cluster_node_t *chosen,
                    long long *dist_time, const char **why)
{
    const char *sg = rs_stream_guid(prov);
    sl_sm_action_t action = caps_action(caps);
    if (!sg || !action) {
        *why = "capabilities: sluice distributes restreamers to PUBLISH, SUBSCRIBE or TRANSCODE "
               "nodes only";
        return 400;
    }
    json_t *dist = json_object_get(prov, "distribution");
    const char *cur = json_string_value(json_object_get(dist, "nodeId"));
    const sl_cluster_node_t *cn = cur ? c->node(cud, cur) : NULL;
    const sl_cluster_stream_t *live = c->stream(cud, sg);
    const sl_cluster_node_t *origin = live ? c->node(cud, live->origin) : NULL;
    if (cn && node_keeps(cn, action)) {
        *chosen = *cn;
    } else if (prefer && node_keeps(prefer, action)) {
        *chosen = *prefer;
    } else if (action == SL_SM_PUBLISH && rs_is_push(prov) && origin) {
        /* A push forwards a live stream: it runs where the stream's publisher is. */
        *chosen = *origin;
    } else {
        /* A publish choice refuses a live stream: the restreamer's own, on a node that went. */
        sl_sm_query_t q = {.action = action, .group = group, .path = sg, .region = region,
                           .strict = strict};
        size_t n;
        int rc = sl__sm_choose(m, &q, chosen, 1, &n, 1, why);
        if (rc)
            return status_of(rc);
    }
    *dist_time = json_integer_value(json_object_get(dist, "time"));
    if (write && (!cur || strcmp(cur, chosen->id) != 0)) {
        *dist_time = (long long)sl_time_wall_ms();
        json_object_set_new(prov, "distribution",
                            json_pack("{s:s, s:s, s:s, s:s, s:I}", "nodeId", chosen->id,
                                      "serverAddress", chosen->host, "nodeRole", chosen->role,
                                      "nodeGroup", chosen->group, "time",
                                      (json_int_t)*dist_time));
        if (rs_put(m, NULL, c, cud, guid, prov)) {
            *why = "the cluster's Redis is unreachable";
            return 503;
        }
        SL_LOGI(NULL, "stream manager: restreamer provision %s (%s) distributed to %s", guid, sg,
                chosen->id);
    }
    return 0;
}

/*
 * Distributes restreamer provision prov (borrowed) of guid (rs_place) and
 * answers Red5's StreamLocation array; blocking: the answer waits until the
 * node says it carried it out. Answers every case.
 */
static void rs_distribute(sm_mod_t *m, sl_http_req_t *req, const sl_svc_cluster_t *c, void *cud,
                          const char *group, const char *guid, json_t *prov, int caps,
                          const char *region, int strict, int write, int blocking)
{
    sl_cluster_node_t chosen;
    long long dist_time = 0;
    const char *why = "";
    int st = rs_place(m, c, cud, group, guid, prov, caps, region, strict, write, NULL, &chosen,
                      &dist_time, &why);
    if (st) {
        reply_err(m, req, st, why);
        return;
    }
    json_t *answer = json_array();
    json_array_append_new(answer, sm2_node(rs_stream_guid(prov), &chosen));
    if (!write || !blocking) {
        reply_json(m, req, 200, answer);
        return;
    }
    if (m->n_waits >= DIST_WAITS_MAX) {
        json_decref(answer);
        reply_err(m, req, 503, "too many blocking distributions at once: try blocking=false");
        return;
    }
    dist_wait_t *w = sl_calloc(1, sizeof *w);
    if (!w) {
        json_decref(answer);
        reply_err(m, req, 503, "out of memory");
        return;
    }
    w->m = m;
    w->req = req;
    w->answer = answer;
    w->dist_time = dist_time;
    w->deadline = uv_now(m->core->loop) + DIST_WAIT_MS;
    snprintf(w->guid, sizeof w->guid, "%s", guid);
    snprintf(w->node, sizeof w->node, "%s", chosen.id);
    uv_timer_init(m->core->loop, &w->timer);
    w->timer.data = w;
    sl_list_push_back(&m->waits, &w->link);
    m->n_waits++;
    uv_timer_start(&w->timer, on_wait_tick, 0, DIST_POLL_MS);
}

#define RS_FIND_MAX 16 /* restreamer provisions of one stream distributed by one lookup */

typedef struct rs_find {
    const char *path;
    size_t n;
    json_t *found[RS_FIND_MAX];  /* new references */
    char guid[RS_FIND_MAX][SL_SM_RS_GUID_MAX];
} rs_find_t;

static void rs_find_each(void *arg, const char *key, const char *json)
{
    rs_find_t *f = arg;
    if (f->n == RS_FIND_MAX)
        return;
    json_t *j = sl_sm_prov_parse(json, strlen(json));
    const char *sg = rs_stream_guid(j);
    if (sg && strcmp(sg, f->path) == 0 && strlen(key + strlen(RS_PREFIX)) < SL_SM_RS_GUID_MAX) {
        snprintf(f->guid[f->n], sizeof f->guid[0], "%s", key + strlen(RS_PREFIX));
        f->found[f->n++] = j;
        return;
    }
    json_decref(j);
}

/*
 * GET .../publish/{app}/{stream}?restream=true: distributes every
 * restreamer provision of the stream (up to RS_FIND_MAX: an ingest and the
 * pushes out of it) to one node where it can, and answers that node.
 */
static void rs_lookup(sm_mod_t *m, sl_http_req_t *req, const char *group, const char *path,
                      const char *region, int strict)
{
    void *cud;
    const sl_svc_cluster_t *c = sl__sm_cluster(m, &cud);
    if (!c) {
        reply_err(m, req, 503, "cluster mode is off on this node");
        return;
    }
    rs_find_t *f = sl_calloc(1, sizeof *f);
    if (!f) {
        reply_err(m, req, 503, "out of memory");
        return;
    }
    f->path = path;
    c->settings(cud, RS_PREFIX, rs_find_each, f);
    char v[8];
    int write = !(m->http->req_query_get(req, "distribute", v, sizeof v) >= 0 &&
                  (strcmp(v, "false") == 0 || strcmp(v, "0") == 0));
    /* The ingest (a pull) first: it decides where the stream is, and the pushes follow it. */
    sl_cluster_node_t first, chosen;
    int have = 0, st = 404;
    const char *why = "no restreamer provision for this stream: restream=true needs one";
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < f->n; i++) {
            if (rs_is_push(f->found[i]) != pass)
                continue;
            long long t;
            const char *w = "";
            int rc = rs_place(m, c, cud, group, f->guid[i], f->found[i],
                              sl_sm_prov_caps(f->found[i], NULL), region, strict, write,
                              have ? &first : NULL, &chosen, &t, &w);
            if (rc == 0 && !have) {
                first = chosen;
                have = 1;
            } else if (rc && !have) {
                st = rc;
                why = w;
            }
        }
    json_t *answer = NULL;
    if (have) {
        answer = json_array();
        json_array_append_new(answer, sm2_node(path, &first));
    }
    for (size_t i = 0; i < f->n; i++)
        json_decref(f->found[i]);
    sl_free(f);
    if (have)
        reply_json(m, req, 200, answer);
    else
        reply_err(m, req, st, why);
}

/* Red5's persist: "true" (string or boolean) in the provision's properties. */
static int rs_persist(const json_t *prov)
{
    const json_t *v = json_object_get(
        json_object_get(json_object_get(json_array_get(json_object_get(prov, "streams"), 0),
                                        "camParams"),
                        "properties"),
        "persist");
    return json_is_true(v) || (json_is_string(v) && strcmp(json_string_value(v), "true") == 0);
}

#define PERSIST_PER_TICK 16  /* provisions placed again per tick */

typedef struct persist_scan {
    const sl_svc_cluster_t *c;
    void *cud;
    size_t n;
    char guid[PERSIST_PER_TICK][SL_SM_RS_GUID_MAX];
} persist_scan_t;

/* Collects (the settings may not change while they are walked) the provisions to place. */
static void persist_each(void *arg, const char *key, const char *json)
{
    persist_scan_t *ps = arg;
    const char *guid = key + strlen(RS_PREFIX);
    if (ps->n >= PERSIST_PER_TICK || strlen(guid) >= SL_SM_RS_GUID_MAX)
        return;
    json_t *prov = sl_sm_prov_parse(json, strlen(json));
    const char *cur = json_string_value(
        json_object_get(json_object_get(prov, "distribution"), "nodeId"));
    const sl_cluster_node_t *cn = cur ? ps->c->node(ps->cud, cur) : NULL;
    int keeps = cn && node_keeps(cn, caps_action(sl_sm_prov_caps(prov, NULL)));
    if (cur && rs_persist(prov) && !keeps)
        snprintf(ps->guid[ps->n++], sizeof ps->guid[0], "%s", guid);
    json_decref(prov);
}

/*
 * Once a second: restreamer provisions that say persist and whose node is
 * gone are distributed again (Red5: "if a given restreaming node fails ...
 * the Stream Manager" redistributes), in the group they were distributed
 * in. Every stream manager node does it; two at once may pick different
 * nodes, and the last write wins (the node not named stops its copy at its
 * next scan).
 */
static void on_persist_tick(uv_timer_t *t)
{
    sm_mod_t *m = t->data;
    void *cud;
    const sl_svc_cluster_t *c = sl__sm_cluster(m, &cud);
    uint64_t fresh;
    if (!c || !c->redis_up(cud, &fresh))
        return;
    persist_scan_t *ps = sl_calloc(1, sizeof *ps);
    if (!ps)
        return;
    ps->c = c;
    ps->cud = cud;
    c->settings(cud, RS_PREFIX, persist_each, ps);
    for (size_t i = 0; i < ps->n; i++) {
        json_t *prov = setting_json(c, cud, RS_PREFIX, ps->guid[i]);
        json_t *dist = json_object_get(prov, "distribution");
        char was[SL_CLUSTER_ID_MAX], group[SL_CLUSTER_NAME_MAX];
        snprintf(was, sizeof was, "%s", json_string_value(json_object_get(dist, "nodeId"))
                                            ? json_string_value(json_object_get(dist, "nodeId"))
                                            : "?");
        snprintf(group, sizeof group, "%s",
                 json_string_value(json_object_get(dist, "nodeGroup"))
                     ? json_string_value(json_object_get(dist, "nodeGroup"))
                     : "default");
        sl_cluster_node_t chosen;
        long long dt;
        const char *why = "";
        int st = prov ? rs_place(m, c, cud, group, ps->guid[i], prov, sl_sm_prov_caps(prov, NULL),
                                 NULL, 0, 1, NULL, &chosen, &dt, &why)
                      : 404;
        if (st == 0)
            SL_LOGI(NULL, "stream manager: restreamer provision %s (persist) moved from %s to %s",
                    ps->guid[i], was, chosen.id);
        else if (prov)
            SL_LOGD(NULL, "stream manager: restreamer provision %s (persist) not placed yet: %s",
                    ps->guid[i], why);
        json_decref(prov);
    }
    sl_free(ps);
}

/* POST /as/v1/streams/provision/{ng}/distribute/{guid}?capabilities&endpoints&blocking&... */
static void distribute(sm_mod_t *m, sl_http_req_t *req, const sl_svc_cluster_t *c, void *cud,
                       const char *group, const char *guid)
{
    char capv[160] = "", region[SL_CLUSTER_NAME_MAX] = "", v[8];
    if (m->http->req_query_get(req, "capabilities", capv, sizeof capv) == -2 ||
        m->http->req_query_get(req, "subgroup", region, sizeof region) == -2) {
        reply_err(m, req, 400, "capabilities or subgroup too long");
        return;
    }
    if (!region[0] && m->http->req_query_get(req, "region", region, sizeof region) == -2) {
        reply_err(m, req, 400, "region too long");
        return;
    }
    size_t want;
    int given;
    if (get_endpoints(m, req, &want, &given))
        return;
    int blocking = !(m->http->req_query_get(req, "blocking", v, sizeof v) >= 0 &&
                     (strcmp(v, "false") == 0 || strcmp(v, "0") == 0));
    int strict = query_true(m, req, "strict");
    json_t *prov = setting_json(c, cud, RS_PREFIX, guid);
    int restream = prov != NULL;
    if (!prov)
        prov = prov_get(c, cud, guid);
    if (!prov) {
        reply_err(m, req, 404, "no such provision");
        return;
    }
    int caps = sl_sm_prov_caps(prov, capv);
    if (caps < 0) {
        json_decref(prov);
        reply_err(m, req, 400, "capabilities must be a comma-separated list of PUBLISH, "
                               "SUBSCRIBE, TRANSCODE, MIX, ZIXI, XILINX");
        return;
    }
    if (restream) {
        /* One node carries a restreamer out (it publishes or pushes one stream): endpoints>1
         * still names one. */
        rs_distribute(m, req, c, cud, group, guid, prov, caps, region[0] ? region : NULL, strict,
                      1, blocking);
        json_decref(prov);
        return;
    }
    /* An ABR provision: every transcoder reads it from the cluster settings already; the
     * distribution names the nodes the capabilities ask (a transcoder takes level 1). */
    sl_sm_action_t action = caps_action(caps);
    char level1[SL_SM_PROV_GUID_MAX];
    char *text = json_dumps(prov, JSON_COMPACT);
    int l1 = text ? sl_sm_prov_level1(text, level1, sizeof level1) : SL_ENOMEM;
    free(text);
    json_decref(prov);
    if (!action || l1) {
        reply_err(m, req, 400, !action ? "capabilities: PUBLISH, SUBSCRIBE or TRANSCODE"
                                       : "the provision has no level 1");
        return;
    }
    sl_sm_query_t q = {.action = action, .group = group,
                       .path = action == SL_SM_PUBLISH ? guid : level1,
                       .region = region[0] ? region : NULL, .strict = strict};
    sl_cluster_node_t out[16];
    if (want > sizeof out / sizeof out[0])
        want = sizeof out / sizeof out[0];
    size_t n;
    const char *why = "";
    int rc = sl__sm_choose(m, &q, out, want, &n, 1, &why);
    if (rc) {
        reply_err(m, req, status_of(rc), why);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, sm2_node(q.path, &out[i]));
    reply_json(m, req, 200, arr);
}

static void rs_list_each(void *arg, const char *key, const char *json)
{
    (void)key;
    json_t *j = sl_sm_prov_parse(json, strlen(json));
    if (j)
        json_array_append_new(arg, j);
}

/* ?status=true on a restreamer provision: where it is and what its node said. */
static void rs_add_status(const sl_svc_cluster_t *c, void *cud, const char *guid, json_t *prov)
{
    json_t *dist = json_object_get(prov, "distribution");
    json_t *st = setting_json(c, cud, RS_STATUS_PREFIX, guid);
    json_t *dt = json_object_get(st, "distributed");
    int current = dist && json_is_integer(dt) &&
                  json_integer_value(dt) == json_integer_value(json_object_get(dist, "time"));
    if (current) {
        json_object_set_new(prov, "status", st);
        return;
    }
    json_decref(st);
    json_object_set_new(prov, "status", json_pack("{s:s}", "state", dist ? "WAIT" : "NEW"));
}

/* SM 2.0: /as/v1/streams/provision/{ng}[/{guid...}] and {ng}/distribute/{guid}. Provisions are
 * cluster-wide: {ng} is checked for its form only (and names the group a distribution picks
 * from). */
static int on_provision(sl_http_req_t *req, void *ud)
{
    sm_mod_t *m = ud;
    if (!budget_ok(m, req))
        return 0;
    segs_t s;
    if (split(m->http->req_path(req) + strlen(SM2_PROV_PREFIX), &s) || s.n < 1 ||
        strlen(s.s[0]) >= SL_CLUSTER_NAME_MAX) {
        reply_err(m, req, s.n == 0 ? 404 : 400, "expected /as/v1/streams/provision/{nodeGroup}"
                                                "[/{provisionGuid}]");
        return 0;
    }
    if (!bearer_admin_ok(m, req))
        return 0;
    void *cud;
    const sl_svc_cluster_t *c = sl__sm_cluster(m, &cud);
    if (!c) {
        reply_err(m, req, 503, "cluster mode is off on this node");
        return 0;
    }
    const char *method = m->http->req_method(req);
    if (s.n >= 3 && strcmp(s.s[1], "distribute") == 0 && strcmp(method, "POST") == 0) {
        char guid[SL_CLUSTER_PATH_MAX];
        if (join(&s, 2, s.n, guid, sizeof guid)) {
            reply_err(m, req, 400, "path too long");
            return 0;
        }
        distribute(m, req, c, cud, s.s[0], guid);
        return 0;
    }
    if (s.n >= 2) {
        char guid[SL_CLUSTER_PATH_MAX];
        if (join(&s, 1, s.n, guid, sizeof guid)) {
            reply_err(m, req, 400, "path too long");
            return 0;
        }
        int del = strcmp(method, "DELETE") == 0;
        if (!del && strcmp(method, "GET") != 0) {
            reply_err(m, req, 405, "use GET or DELETE");
            return 0;
        }
        json_t *old = prov_get(c, cud, guid);
        int restream = 0;
        if (!old && (old = setting_json(c, cud, RS_PREFIX, guid)))
            restream = 1;
        if (!old) {
            reply_err(m, req, 404, "no such provision");
            return 0;
        }
        if (del && (restream ? rs_put(m, req, c, cud, guid, NULL)
                             : prov_put(m, req, c, cud, guid, NULL))) {
            json_decref(old);
            return 0;
        }
        if (restream && !del && query_true(m, req, "status"))
            rs_add_status(c, cud, guid, old);
        reply_json(m, req, 200, old);
        return 0;
    }
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
        json_t *arr = json_array();
        c->settings(cud, "provision/", prov_list_each, arr);
        c->settings(cud, RS_PREFIX, rs_list_each, arr);
        reply_json(m, req, 200, arr);
        return 0;
    }
    int create = strcmp(method, "POST") == 0;
    if (!create && strcmp(method, "PUT") != 0) {
        reply_err(m, req, 405, "use GET, POST or PUT");
        return 0;
    }
    json_t *body = body_json(m, req);
    if (!body)
        return 0;
    /* Red5's body is an array of ProvisionRequests; one bare object is accepted too. */
    if (json_is_object(body)) {
        json_t *a = json_array();
        json_array_append_new(a, body);
        body = a;
    }
    if (!json_is_array(body) || json_array_size(body) == 0 ||
        json_array_size(body) > SL_SM_PROV_MAX_PER_BODY) {
        json_decref(body);
        reply_err(m, req, 400, "expected an array of 1 to 32 provisions");
        return 0;
    }
    /* Every provision is checked before any is written. A restreamer provision (camParams)
     * replaced by PUT keeps its distribution: its node carries out the new one. */
    json_t *done = json_array();
    size_t i;
    json_t *v;
    char err[200];
    json_array_foreach(body, i, v) {
        json_t *canon;
        int rs = sl_sm_prov_is_restream(v);
        int rc = rs ? sl_sm_prov_restream_canon(v, NULL, &canon, err, sizeof err)
                    : sl_sm_prov_canon(v, NULL, &canon, err, sizeof err);
        if (rc) {
            json_decref(body);
            json_decref(done);
            reply_err(m, req, 400, err);
            return 0;
        }
        const char *g = json_string_value(json_object_get(canon, rs ? "provisionGuid"
                                                                    : "streamGuid"));
        json_t *old = rs ? setting_json(c, cud, RS_PREFIX, g) : prov_get(c, cud, g);
        json_t *other = rs ? prov_get(c, cud, g) : setting_json(c, cud, RS_PREFIX, g);
        if (rs && old && json_object_get(old, "distribution"))
            json_object_set(canon, "distribution", json_object_get(old, "distribution"));
        json_array_append_new(done, canon);
        int clash = (create && old) || other;
        json_decref(old);
        json_decref(other);
        if (clash) {
            json_decref(body);
            json_decref(done);
            reply_err(m, req, 409, other ? "a provision of the other kind has this GUID"
                                         : "a provision with this GUID exists: use PUT to "
                                           "replace it");
            return 0;
        }
    }
    json_decref(body);
    json_array_foreach(done, i, v) {
        int rs = json_object_get(v, "provisionGuid") != NULL;
        const char *g = json_string_value(json_object_get(v, rs ? "provisionGuid" : "streamGuid"));
        if (rs ? rs_put(m, req, c, cud, g, v) : prov_put(m, req, c, cud, g, v)) {
            json_decref(done);
            return 0;
        }
    }
    reply_json(m, req, 200, done);
    return 0;
}

/* The origin of any live stream of room ("app/room"), or NULL. */
static const sl_cluster_node_t *room_node(const sl_svc_cluster_t *c, void *cud, const char *room)
{
    const sl_cluster_stream_t *st;
    size_t n = c->streams(cud, &st), len = strlen(room);
    for (size_t i = 0; i < n; i++)
        if (strncmp(st[i].path, room, len) == 0 && st[i].path[len] == '/') {
            const sl_cluster_node_t *o = c->node(cud, st[i].origin);
            if (o && (!o->state[0] || strcmp(o->state, "INSERVICE") == 0))
                return o;
        }
    return NULL;
}

/*
 * SM 4.0 conference: GET /event/{scope}/{room}/join. Everyone of a room
 * must meet on one node: the origin of a stream already live in the room,
 * else an origin chosen as for a broadcast (the room becomes its).
 */
static void join_room(sm_mod_t *m, sl_http_req_t *req, const segs_t *s)
{
    char room[SL_CLUSTER_PATH_MAX], app[SL_CLUSTER_PATH_MAX];
    void *cud;
    const sl_svc_cluster_t *c = sl__sm_cluster(m, &cud);
    if (!c) {
        reply_err(m, req, 503, "cluster mode is off on this node");
        return;
    }
    if (join(s, 1, s->n - 1, room, sizeof room) || join(s, 1, s->n - 2, app, sizeof app)) {
        reply_err(m, req, 400, "expected /event/{scope}/{room}/join");
        return;
    }
    const sl_cluster_node_t *n = room_node(c, cud, room);
    sl_cluster_node_t chosen;
    if (!n) {
        sl_sm_query_t q = {.action = SL_SM_PUBLISH, .path = room};
        size_t got;
        const char *why = "";
        int rc = sl__sm_choose(m, &q, &chosen, 1, &got, 1, &why);
        if (rc) {
            reply_err(m, req, status_of(rc) == 409 ? 400 : status_of(rc), why);
            return;
        }
        n = &chosen;
    }
    reply_json(m, req, 200, sm4_node(app, s->s[s->n - 2], n));
}

/*
 * SM 4.0 VOD listings: GET /media/{scope}/mediafiles|playlists. The files
 * are on the nodes (their recorder's /{scope}/mediafiles, Red5's live
 * webapp list): the answer is a 307 to an origin in service, which lists
 * its own (clients that follow redirects, as curl -L and browsers do, get
 * Red5's {"mediafiles":[...]}). Playlists are the HLS recordings' .m3u8,
 * which sluice lists in the same mediafiles answer.
 */
static void media_list(sm_mod_t *m, sl_http_req_t *req, const segs_t *s)
{
    char app[SL_CLUSTER_PATH_MAX];
    if (s->n < 3 || (strcmp(s->s[s->n - 1], "mediafiles") != 0 &&
                     strcmp(s->s[s->n - 1], "playlists") != 0) ||
        join(s, 1, s->n - 1, app, sizeof app)) {
        reply_err(m, req, 404, "expected /media/{scope}/mediafiles or /media/{scope}/playlists");
        return;
    }
    char probe[SL_CLUSTER_PATH_MAX + 8];
    snprintf(probe, sizeof probe, "%s/.vod", app);
    sl_sm_query_t q = {.action = SL_SM_PUBLISH, .path = probe};
    sl_cluster_node_t n;
    size_t got;
    const char *why = "";
    int rc = sl__sm_choose(m, &q, &n, 1, &got, 0, &why);
    if (rc || !n.http_port) {
        reply_err(m, req, rc ? status_of(rc) : 503, rc ? why : "the origin serves no HTTP");
        return;
    }
    char loc[SL_CLUSTER_HOST_MAX + SL_CLUSTER_PATH_MAX + 64];
    int v6 = strchr(n.host, ':') != NULL;
    snprintf(loc, sizeof loc, "Location: http://%s%s%s:%u/%s/mediafiles\r\nCache-Control: no-store\r\n",
             v6 ? "[" : "", n.host, v6 ? "]" : "", n.http_port, app);
    m->http->respond(req, 307, "application/json", "{}", 2, loc);
}

static int on_sm4(sl_http_req_t *req, void *ud)
{
    sm_mod_t *m = ud;
    if (!budget_ok(m, req))
        return 0;
    segs_t s;
    const char *path = m->http->req_path(req) + strlen(SM4_PREFIX);
    if (split(path, &s) || s.n < 1) {
        reply_err(m, req, 400, "bad path");
        return 0;
    }
    const char *method = m->http->req_method(req);
    if (strcmp(s.s[0], "admin") == 0) {
        sm4_admin(m, req, &s);
        return 0;
    }
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (!get) {
        reply_err(m, req, 405, "use GET");
        return 0;
    }
    if (s.n == 2 && strcmp(s.s[1], "list") == 0) {
        list_streams(m, req, 1, NULL, 0, 1);
        return 0;
    }
    if (s.n == 3 && strcmp(s.s[1], "list") == 0 && strcmp(s.s[2], "stats") == 0) {
        char v[8];
        int agg = !(m->http->req_query_get(req, "aggregate", v, sizeof v) >= 0 &&
                    strcmp(v, "false") == 0);
        list_streams(m, req, 1, NULL, 1, agg);
        return 0;
    }
    if (strcmp(s.s[0], "media") == 0) {
        media_list(m, req, &s);
        return 0;
    }
    if (s.n >= 4 && strcmp(s.s[s.n - 1], "join") == 0) {
        join_room(m, req, &s);
        return 0;
    }
    if (s.n >= 4 && strcmp(s.s[s.n - 1], "stats") == 0) {
        stream_stats(m, req, 1, NULL, &s, 1, s.n - 1);
        return 0;
    }
    char action[16];
    if (m->http->req_query_get(req, "action", action, sizeof action) < 0) {
        reply_err(m, req, 400, "action=broadcast or action=subscribe is required");
        return 0;
    }
    if (strcmp(action, "broadcast") == 0)
        lookup(m, req, 1, NULL, &s, 1, SL_SM_PUBLISH);
    else if (strcmp(action, "subscribe") == 0)
        lookup(m, req, 1, NULL, &s, 1, SL_SM_SUBSCRIBE);
    else
        reply_err(m, req, 400, "action must be broadcast or subscribe");
    return 0;
}

/* Decodes HTTP Basic credentials into user and pass: 0 or -1. */
static int basic_creds(const char *h, char *user, size_t ucap, char *pass, size_t pcap)
{
    if (!h || strncasecmp(h, "Basic ", 6) != 0)
        return -1;
    h += 6;
    while (*h == ' ')
        h++;
    size_t n = strcspn(h, " \r\n");
    if (n == 0 || n > 512 || n % 4)
        return -1;
    uint8_t out[400];
    int len = EVP_DecodeBlock(out, (const uint8_t *)h, (int)n);
    if (len < 0)
        return -1;
    /* EVP_DecodeBlock counts the padding's zero bytes. */
    for (size_t i = n; i > 0 && h[i - 1] == '='; i--)
        len--;
    if (len < 0)
        return -1;
    uint8_t *colon = memchr(out, ':', (size_t)len);
    if (!colon || (size_t)(colon - out) >= ucap || (size_t)(len - (colon - out) - 1) >= pcap ||
        memchr(out, '\0', (size_t)len))
        return -1;
    memcpy(user, out, (size_t)(colon - out));
    user[colon - out] = '\0';
    memcpy(pass, colon + 1, (size_t)(len - (colon - out) - 1));
    pass[len - (colon - out) - 1] = '\0';
    OPENSSL_cleanse(out, sizeof out);
    return 0;
}

static int same_secret(const char *a, const char *b)
{
    uint8_t x[32], y[32];
    SHA256((const uint8_t *)a, strlen(a), x);
    SHA256((const uint8_t *)b, strlen(b), y);
    return CRYPTO_memcmp(x, y, 32) == 0;
}

static int on_login(sl_http_req_t *req, void *ud)
{
    sm_mod_t *m = ud;
    if (!budget_ok(m, req))
        return 0;
    const char *addr = m->http->req_remote(req, NULL);
    if (strcmp(m->http->req_path(req), "/as/v1/auth/login") != 0) {
        reply_err(m, req, 404, "no such resource");
        return 0;
    }
    if (strcmp(m->http->req_method(req), "PUT") != 0 && strcmp(m->http->req_method(req), "POST")) {
        reply_err(m, req, 405, "use PUT");
        return 0;
    }
    if (sl__sm_auth_blocked(m, addr, 0)) {
        reply_err(m, req, 429, "too many failed authentication attempts; try again later");
        return 0;
    }
    char user[129], pass[257];
    const char *role = NULL;
    if (basic_creds(m->http->req_header(req, "Authorization"), user, sizeof user, pass,
                    sizeof pass) == 0) {
        /* Both comparisons run whatever the first gives: no timing hint of the user. */
        int is_admin = same_secret(user, m->admin_user) & same_secret(pass, m->admin_pass);
        int is_proxy = m->proxy_user[0] && same_secret(user, m->proxy_user) &
                                               same_secret(pass, m->proxy_pass);
        role = is_admin ? "admin" : is_proxy ? "proxy" : NULL;
    } else {
        user[0] = '\0';
    }
    OPENSSL_cleanse(pass, sizeof pass);
    if (!role) {
        sl__sm_auth_blocked(m, addr, 1);
        SL_LOGI(NULL, "stream manager: login refused from %s", addr);
        const char *body = "{\"errorMessage\":\"invalid credentials\"}";
        m->http->respond(req, 401, "application/json", body, strlen(body),
                         "WWW-Authenticate: Basic realm=\"stream manager\"\r\n");
        return 0;
    }
    char tok[SL_SM_JWT_MAX];
    int rc = sl_sm_jwt_sign(m->secret, m->secret_len, user, role, sl_time_wall_ms() / 1000,
                            (uint64_t)sl_sm_cfg(m->core->cfg)->jwt_ttl_ms / 1000, tok, sizeof tok);
    if (rc) {
        reply_err(m, req, 500, sl_strerror(rc));
        return 0;
    }
    SL_LOGI(NULL, "stream manager: %s logged in (%s) from %s", user, role, addr);
    reply_json(m, req, 200, json_pack("{s:s}", "token", tok));
    OPENSSL_cleanse(tok, sizeof tok);
    return 0;
}

static int on_streams(sl_http_req_t *req, void *ud)
{
    sm_mod_t *m = ud;
    if (!budget_ok(m, req))
        return 0;
    segs_t s;
    const char *path = m->http->req_path(req) + strlen("/as/v1/streams");
    if (split(path, &s)) {
        reply_err(m, req, 400, "bad path");
        return 0;
    }
    const char *method = m->http->req_method(req);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        reply_err(m, req, 405, "use GET");
        return 0;
    }
    /* stream {ng} | stream {ng} publish|subscribe {app..} {stream} | stream {ng} stream {app..} {stream} */
    if (s.n < 2 || strcmp(s.s[0], "stream") != 0 || strlen(s.s[1]) >= SL_CLUSTER_NAME_MAX) {
        reply_err(m, req, 404, "no such resource");
        return 0;
    }
    const char *ng = s.s[1];
    void *cud;
    const sl_svc_cluster_t *c = sl__sm_cluster(m, &cud);
    const char *group = ng;
    if (c) {
        const sl_cluster_node_t *nodes;
        sl_sm_view_t v = {.nodes = NULL};
        v.n_nodes = c->nodes(cud, &nodes);
        v.nodes = nodes;
        group = sl_sm_group_resolve(&v, ng);
    }
    if (s.n == 2) {
        list_streams(m, req, 0, group, 1, 1);
        return 0;
    }
    if (strcmp(s.s[2], "publish") == 0)
        lookup(m, req, 0, ng, &s, 3, SL_SM_PUBLISH);
    else if (strcmp(s.s[2], "subscribe") == 0)
        lookup(m, req, 0, ng, &s, 3, SL_SM_SUBSCRIBE);
    else if (strcmp(s.s[2], "stream") == 0)
        stream_stats(m, req, 0, group, &s, 3, s.n);
    else
        reply_err(m, req, 404, "no such resource");
    return 0;
}

int sl__sm_http_start(sm_mod_t *m)
{
    m->http = sl_service_get(m->core, SL_HTTP_SVC_NAME, SL_HTTP_SVC_MAJOR, 0, &m->http_ud);
    if (!m->http) {
        SL_LOGW(NULL, "stream manager: HTTP is off: its APIs are not served");
        return 0;
    }
    const sl_http_route_spec_t routes[SM_N_ROUTES] = {
        {.prefix = SM4_PREFIX "/event", .prio = SL_HTTP_PRIO_CORE,
         .name = "Stream Manager 4.0 lookups", .serves = "", .cb = on_sm4, .ud = m},
        {.prefix = SM4_PREFIX "/admin/node", .prio = SL_HTTP_PRIO_CORE,
         .name = "Stream Manager 4.0 node admin", .serves = "", .cb = on_sm4, .ud = m},
        {.prefix = SM4_PREFIX "/media", .prio = SL_HTTP_PRIO_CORE,
         .name = "Stream Manager 4.0 VOD listings", .serves = "", .cb = on_sm4, .ud = m},
        {.prefix = SM4_PREFIX "/admin/event", .prio = SL_HTTP_PRIO_CORE,
         .name = "Stream Manager 4.0 stream provisions", .serves = "", .cb = on_sm4, .ud = m},
        {.prefix = SM2_PROV_PREFIX, .prio = SL_HTTP_PRIO_CORE,
         .name = "Stream Manager 2.0 provisions", .serves = "", .cb = on_provision, .ud = m},
        {.prefix = "/as/v1/auth", .prio = SL_HTTP_PRIO_CORE, .name = "Stream Manager 2.0 login",
         .serves = "", .cb = on_login, .ud = m},
        {.prefix = "/as/v1/streams/stream", .prio = SL_HTTP_PRIO_CORE,
         .name = "Stream Manager 2.0 streams", .serves = "", .cb = on_streams, .ud = m},
    };
    uv_timer_init(m->core->loop, &m->persist_tick);
    m->persist_tick.data = m;
    uv_timer_start(&m->persist_tick, on_persist_tick, 1000, 1000);
    m->persist_on = 1;
    for (int i = 0; i < SM_N_ROUTES; i++) {
        int rc = m->http->route_add(m->http_ud, &routes[i], &m->routes[i]);
        if (rc) {
            sl__sm_http_stop(m);
            return rc;
        }
    }
    return 0;
}

void sl__sm_http_stop(sm_mod_t *m)
{
    if (!m->http)
        return;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &m->waits)
        wait_end(sl_container_of(it, dist_wait_t, link), 503, "the stream manager is stopping");
    if (m->persist_on) {
        uv_timer_stop(&m->persist_tick);
        uv_close((uv_handle_t *)&m->persist_tick, NULL);
        m->persist_on = 0;
    }
    for (int i = 0; i < SM_N_ROUTES; i++) {
        m->http->route_remove(m->http_ud, m->routes[i]);
        m->routes[i] = NULL;
    }
}
