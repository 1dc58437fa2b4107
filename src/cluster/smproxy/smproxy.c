/*
 * The stream manager proxy (Red5 SM 2.0's as-proxy; see smproxy.h and
 * docs/stream-manager-proxy.md). One route, /as/v1/proxy, on the HTTP
 * server of the stream manager node:
 *
 *   POST|OPTIONS  /as/v1/proxy/whip|whep/{app}/{stream}         -> the chosen node's
 *                 /{app}/whip|whep/endpoint/{stream}
 *   PATCH|DELETE|OPTIONS /as/v1/proxy/whip|whep/resource/{node}/{app}/{token}
 *                                                               -> that node's resource
 *   GET           /as/v1/proxy/ws/publish|subscribe/{app}/{stream}  (smproxy_ws.c)
 *   any           /as/v1/proxy/forward/?target=<node Server API URL>
 *
 * The node is chosen by the "streammanager" service (its weighted choice,
 * the group's limits) or, when that service does not run, by a fallback
 * over the "cluster" snapshot (smproxy_route.c). The client may name it
 * (`host=`, as Red5's HTML5 SDK does after reading Session-Host), but only
 * a node of the snapshot. Forwarding uses the loop's libcurl multi client
 * (base/http_client.h), so the loop never waits on a node: the request is
 * answered from the completion callback. The node's Location is rewritten
 * so that the resource goes through the proxy again and names its node in
 * the path (a stateless proxy: any stream manager can serve the PATCH or
 * DELETE); Session-Host tells the client which node serves it (the SDK's
 * WebRTC.Endpoint.Changed). ICE is not proxied: the node's SDP answer
 * names the node's own candidates and media flows between browser and
 * node, as with Red5.
 *
 * Budgets: forwarded requests in flight per client address and per server
 * (sm_proxy.max_requests*), the request body (max_body), the node's answer
 * (max_response, the client's cap), a timeout on each forward. The forward
 * proxy needs the Server API's token (check_access of the "api" service)
 * and reaches only the /api/ paths of nodes in the snapshot (the SSRF
 * check); neither the token nor a target's query is ever logged.
 */
#include "cluster/smproxy/smproxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app/services.h"
#include "app/svc/api.h"
#include "app/svc/streammanager.h"
#include "base/alloc.h"
#include "base/time.h"
#include "cluster/smproxy/smproxy_internal.h"
#include "sluice/errors.h"

const sl_log_ctx_t sl__smproxy_log = {.proto = "smproxy"};
#define LOGCTX (&sl__smproxy_log)

#define HDR_CAP 4096          /* node answer headers passed on, bytes */
#define MAX_SERVING 256       /* nodes considered as serving one stream (fallback) */

/* Access-Control-Allow-Origin comes from the server (http.cors_origin); a second one
 * would make browsers refuse the answer. */
#define CORS "Access-Control-Allow-Methods: POST, PATCH, DELETE, OPTIONS\r\n" \
             "Access-Control-Allow-Headers: Authorization, Content-Type, If-Match\r\n" \
             "Access-Control-Expose-Headers: Location, ETag, Link, Accept-Patch, Session-Host\r\n"

/* One forwarded request waiting for its node. */
typedef struct smp_fwd {
    smp_t *p;
    sl_http_req_t *req;              /* the client's request, answered from on_done */
    sl_http_client_req_t *creq;      /* the forward, until on_done */
    sl_list_t link;                  /* in p->pending */
    sl_smproxy_kind_t kind;
    char addr[64];                   /* client address (its budget) */
    char node[SL_CLUSTER_ID_MAX];
    char session_host[SL_CLUSTER_HOST_MAX + 8];
    char ctype[128];                 /* the node's Content-Type */
    char hdr[HDR_CAP];               /* headers passed on ("Name: value\r\n"...) */
    size_t hdr_len;
    char what[1024];                 /* "POST whip live/s1" for the log */
} smp_fwd_t;

/* ------------------------------------------------------------------ */
/* budgets                                                             */

int sl__smproxy_addr_take(smp_t *p, const char *addr, int64_t limit)
{
    uintptr_t n = (uintptr_t)sl_map_get(&p->per_addr, addr);
    if ((int64_t)n >= limit)
        return 0;
    return sl_map_set(&p->per_addr, addr, (void *)(n + 1)) == 0;
}

void sl__smproxy_addr_give(smp_t *p, const char *addr)
{
    uintptr_t n = (uintptr_t)sl_map_get(&p->per_addr, addr);
    if (SL_NEVER(n == 0))
        return;
    if (n == 1)
        sl_map_del(&p->per_addr, addr);
    else
        sl_map_set(&p->per_addr, addr, (void *)(n - 1)); /* the key exists: no allocation */
}

/* An error in SM 4.0's shape ({"errorMessage", "timestamp"}), with CORS. */
static int answer_error(smp_t *p, sl_http_req_t *req, int status, const char *msg)
{
    char body[512];
    int n = snprintf(body, sizeof body, "{\"errorMessage\":\"%s\",\"timestamp\":%llu}", msg,
                     (unsigned long long)sl_time_wall_ms());
    if (n < 0 || (size_t)n >= sizeof body)
        n = 0;
    p->http->respond(req, status, "application/json", body, (size_t)n, CORS "Cache-Control: no-store\r\n");
    return 0;
}

/* ------------------------------------------------------------------ */
/* choosing the node                                                   */

typedef struct serving {
    const char *path;
    const char *ids[MAX_SERVING];
    size_t n;
} serving_t;

static void add_serving(void *arg, const sl_cluster_presence_t *pr)
{
    serving_t *s = arg;
    if (s->n < MAX_SERVING && strcmp(pr->path, s->path) == 0)
        s->ids[s->n++] = pr->node;
}

int sl__smproxy_pick(smp_t *p, sl_http_req_t *req, sl_sm_action_t action, const char *path,
                     sl_cluster_node_t *out)
{
    const sl_http_svc_t *h = p->http;
    void *cud = NULL;
    const sl_svc_cluster_t *cl = sl_service_get(p->core, SL_SVC_CLUSTER, SL_SVC_CLUSTER_MAJOR, 0, &cud);
    if (!cl) {
        answer_error(p, req, 503, "cluster mode is off on this node");
        return 1;
    }
    char host[SL_CLUSTER_HOST_MAX + 8], group[SL_CLUSTER_NAME_MAX], region[SL_CLUSTER_NAME_MAX],
        strict[8];
    int has_host = h->req_query_get(req, "host", host, sizeof host) > 0;
    if (h->req_query_get(req, "nodeGroup", group, sizeof group) <= 0 &&
        h->req_query_get(req, "nodegroup", group, sizeof group) <= 0)
        group[0] = '\0';
    if (h->req_query_get(req, "subgroup", region, sizeof region) <= 0 &&
        h->req_query_get(req, "region", region, sizeof region) <= 0)
        region[0] = '\0';
    if (h->req_query_get(req, "strict", strict, sizeof strict) <= 0)
        strict[0] = '\0';

    const sl_cluster_node_t *nodes = NULL;
    size_t n = cl->nodes(cud, &nodes);
    if (has_host) {
        /* The client names the node (Red5's SDK sends back Session-Host):
         * only a node of the snapshot, never an address of its choosing. */
        const sl_cluster_node_t *nd = sl_smproxy_find_host(nodes, n, host);
        if (!nd || !nd->http_port) {
            answer_error(p, req, 404, "host is not a node of this cluster");
            return 1;
        }
        *out = *nd;
        return 0;
    }
    sl_sm_query_t q = {
        .action = action,
        .group = group[0] ? group : NULL,
        .path = path,
        .region = region[0] ? region : NULL,
        .strict = strcmp(strict, "true") == 0 || strcmp(strict, "1") == 0,
    };
    const char *why = "no node";
    void *sud = NULL;
    const sl_svc_streammanager_t *sm =
        sl_service_get(p->core, SL_SVC_STREAMMANAGER, SL_SVC_STREAMMANAGER_MAJOR, 0, &sud);
    if (sm) {
        int rc = sm->choose(sud, &q, out, &why);
        if (rc == 0)
            return 0;
        int status = rc == SL_ENOTFOUND ? 404 : rc == SL_EDENIED ? 409 : 503;
        answer_error(p, req, status, why ? why : "no node");
        return 1;
    }
    /* No stream manager service here: the cluster snapshot's own answer. */
    const sl_cluster_stream_t *st = cl->stream(cud, path);
    if (action == SL_SM_PUBLISH && st) {
        answer_error(p, req, 409, "the stream is already live");
        return 1;
    }
    serving_t sv = {.path = path};
    if (action == SL_SM_SUBSCRIBE) {
        if (!st) {
            answer_error(p, req, 404, "the stream is not live on any node");
            return 1;
        }
        sv.ids[sv.n++] = st->origin;
        cl->presences(cud, add_serving, &sv);
    }
    const sl_cluster_node_t *nd = sl_smproxy_fallback_choose(nodes, n, &q, sv.ids, sv.n, &why);
    if (!nd) {
        answer_error(p, req, action == SL_SM_PUBLISH ? 503 : 404, why);
        return 1;
    }
    *out = *nd;
    return 0;
}

/* ------------------------------------------------------------------ */
/* forwarding                                                          */

static void fwd_free(smp_fwd_t *f)
{
    smp_t *p = f->p;
    sl_list_remove(&f->link);
    p->n_requests--;
    sl__smproxy_addr_give(p, f->addr);
    sl_free(f);
}

/* Appends "Name: value\r\n" to the headers passed on (dropped past HDR_CAP). */
static void hdr_add(smp_fwd_t *f, const char *name, const char *value, size_t vlen)
{
    int n = snprintf(f->hdr + f->hdr_len, sizeof f->hdr - f->hdr_len, "%s: %.*s\r\n", name,
                     (int)vlen, value);
    if (n > 0 && (size_t)n < sizeof f->hdr - f->hdr_len)
        f->hdr_len += (size_t)n;
    else
        f->hdr[f->hdr_len] = '\0';
}

/* One line of the node's answer head: keeps what the client needs. */
static void on_header(const char *line, size_t len, void *ud)
{
    smp_fwd_t *f = ud;
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) { /* a (new) response starts */
        f->hdr_len = 0;
        f->hdr[0] = '\0';
        f->ctype[0] = '\0';
        return;
    }
    const char *colon = memchr(line, ':', len);
    if (!colon)
        return;
    size_t nlen = (size_t)(colon - line);
    const char *v = colon + 1;
    size_t vlen = len - nlen - 1;
    while (vlen && (*v == ' ' || *v == '\t')) {
        v++;
        vlen--;
    }
    while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
#define IS(name) (nlen == sizeof(name) - 1 && strncasecmp(line, name, nlen) == 0)
    if (IS("Content-Type")) {
        snprintf(f->ctype, sizeof f->ctype, "%.*s", (int)vlen, v);
        return;
    }
    if (f->kind == SL_SMPROXY_FORWARD)
        return; /* a Server API answer: its body and type only */
    if (IS("Location")) {
        char loc[SL_SMPROXY_PATH_MAX + 1], out[SL_SMPROXY_PATH_MAX + 256];
        if (vlen > SL_SMPROXY_PATH_MAX)
            return;
        memcpy(loc, v, vlen);
        loc[vlen] = '\0';
        if (sl_smproxy_resource_path(loc, f->node, out, sizeof out) == 0)
            hdr_add(f, "Location", out, strlen(out));
        else
            SL_LOGI(LOGCTX, "smproxy: %s: node %s sent a Location of another shape: dropped",
                    f->what, f->node);
    } else if (IS("ETag") || IS("Link") || IS("Accept-Patch") || IS("Accept-Post") || IS("Allow")) {
        char name[16];
        snprintf(name, sizeof name, "%.*s", (int)nlen, line);
        hdr_add(f, name, v, vlen);
    }
#undef IS
}

static void on_done(int status, const char *body, size_t len, void *ud)
{
    smp_fwd_t *f = ud;
    smp_t *p = f->p;
    f->creq = NULL;
    if (status < 0) {
        int code = status == UV_ETIMEDOUT ? 504 : 502;
        SL_LOGI(LOGCTX, "smproxy: %s -> node %s failed: %s", f->what, f->node, sl_strerror(status));
        answer_error(p, f->req, code, status == UV_ETIMEDOUT ? "the node did not answer in time"
                                      : status == SL_ETOOBIG ? "the node's answer is too large"
                                                            : "the node cannot be reached");
        fwd_free(f);
        return;
    }
    char extra[HDR_CAP + 1024];
    if (f->kind == SL_SMPROXY_FORWARD)
        snprintf(extra, sizeof extra, "Cache-Control: no-store\r\n");
    else
        snprintf(extra, sizeof extra, CORS "Session-Host: %s\r\nCache-Control: no-store\r\n%s",
                 f->session_host, f->hdr);
    SL_LOGD(LOGCTX, "smproxy: %s -> node %s: %d", f->what, f->node, status);
    int empty = status == 204 || status == 304 || len == 0;
    p->http->respond(f->req, status, empty ? NULL : (f->ctype[0] ? f->ctype : NULL),
                     empty ? NULL : body, empty ? 0 : len, extra);
    fwd_free(f);
}

/*
 * Starts forwarding req to url (method, body and the headers named) for a
 * request whose budget is already taken; answers req now on failure.
 */
static int forward(smp_t *p, sl_http_req_t *req, smp_fwd_t *f, const char *url, int pass_auth)
{
    const sl_http_svc_t *h = p->http;
    size_t blen = 0;
    const uint8_t *body = h->req_body(req, &blen);
    const char *ct = h->req_header(req, "Content-Type");
    char auth[1024], ifm[256], accept[256];
    const char *hdrs[4];
    size_t nh = 0;
    const char *v;
    if (pass_auth && (v = h->req_header(req, "Authorization")) && strlen(v) < 1000) {
        snprintf(auth, sizeof auth, "Authorization: %s", v);
        hdrs[nh++] = auth;
    }
    if ((v = h->req_header(req, "If-Match")) && strlen(v) < 200) {
        snprintf(ifm, sizeof ifm, "If-Match: %s", v);
        hdrs[nh++] = ifm;
    }
    if ((v = h->req_header(req, "Accept")) && strlen(v) < 200) {
        snprintf(accept, sizeof accept, "Accept: %s", v);
        hdrs[nh++] = accept;
    }
    hdrs[nh] = NULL;
    const char *method = h->req_method(req);
    sl_http_client_request_t r = {
        .method = strcmp(method, "HEAD") == 0 ? "GET" : method,
        .url = url,
        .body = blen ? body : NULL,
        .body_len = blen,
        .content_type = ct && strlen(ct) < 200 ? ct : NULL,
        .headers = hdrs,
        .timeout_ms = (uint64_t)sl_smproxy_cfg(p->cfg)->timeout_ms,
        .on_header = on_header,
    };
    int rc = sl_http_client_start(p->cli, &r, on_done, f, &f->creq);
    if (rc) {
        SL_LOGW(LOGCTX, "smproxy: %s: cannot start the forward: %s", f->what, sl_strerror(rc));
        answer_error(p, req, 503, "cannot forward now");
        fwd_free(f);
        return 0;
    }
    p->total_requests++;
    return 0;
}

/* Takes the budgets of one forwarded request; answers req and returns NULL when over. */
static smp_fwd_t *fwd_new(smp_t *p, sl_http_req_t *req, sl_smproxy_kind_t kind)
{
    const sl_smproxy_config_t *c = sl_smproxy_cfg(p->cfg);
    const char *addr = p->http->req_remote(req, NULL);
    size_t blen = 0;
    p->http->req_body(req, &blen);
    if ((int64_t)blen > c->max_body_bytes) {
        p->refused++;
        answer_error(p, req, 413, "request body too large");
        return NULL;
    }
    if (p->n_requests >= c->max_requests) {
        p->refused++;
        SL_LOGW(LOGCTX, "smproxy: %lld requests in flight (sm_proxy.max_requests): refusing",
                (long long)p->n_requests);
        answer_error(p, req, 503, "too many proxied requests");
        return NULL;
    }
    smp_fwd_t *f = sl_calloc(1, sizeof *f);
    if (!f) {
        answer_error(p, req, 503, "out of memory");
        return NULL;
    }
    snprintf(f->addr, sizeof f->addr, "%s", addr ? addr : "?");
    if (!sl__smproxy_addr_take(p, f->addr, c->max_requests_per_addr)) {
        p->refused++;
        SL_LOGI(LOGCTX, "smproxy: %s has %lld requests in flight (sm_proxy.max_requests_per_address)",
                f->addr, (long long)c->max_requests_per_addr);
        sl_free(f);
        answer_error(p, req, 429, "too many proxied requests from this address");
        return NULL;
    }
    f->p = p;
    f->req = req;
    f->kind = kind;
    sl_list_push_back(&p->pending, &f->link);
    p->n_requests++;
    return f;
}

/* WHIP/WHEP endpoint or resource. */
static int on_webrtc(smp_t *p, sl_http_req_t *req, const sl_smproxy_path_t *pp)
{
    const sl_http_svc_t *h = p->http;
    const char *method = h->req_method(req);
    const char *kind = pp->kind == SL_SMPROXY_WHIP ? "whip" : "whep";
    if (pp->is_resource ? (strcmp(method, "PATCH") && strcmp(method, "DELETE") && strcmp(method, "OPTIONS"))
                        : (strcmp(method, "POST") && strcmp(method, "OPTIONS")))
        return h->respond(req, 405, "text/plain", "method not allowed\n", 19,
                          pp->is_resource ? CORS "Allow: PATCH, DELETE, OPTIONS\r\n"
                                          : CORS "Allow: POST, OPTIONS\r\n"),
               0;
    sl_cluster_node_t node;
    char path[SL_CLUSTER_PATH_MAX + SL_SMPROXY_NAME_MAX + 2];
    snprintf(path, sizeof path, "%s/%s", pp->scope, pp->name);
    if (pp->is_resource) {
        void *cud = NULL;
        const sl_svc_cluster_t *cl = sl_service_get(p->core, SL_SVC_CLUSTER, SL_SVC_CLUSTER_MAJOR, 0, &cud);
        if (!cl)
            return answer_error(p, req, 503, "cluster mode is off on this node");
        const sl_cluster_node_t *nd = cl->node(cud, pp->node);
        if (!nd || !nd->http_port)
            return answer_error(p, req, 404, "the node of this session is gone");
        node = *nd;
    } else if (sl__smproxy_pick(p, req, pp->kind == SL_SMPROXY_WHIP ? SL_SM_PUBLISH : SL_SM_SUBSCRIBE,
                                path, &node)) {
        return 0;
    }
    smp_fwd_t *f = fwd_new(p, req, pp->kind);
    if (!f)
        return 0;
    snprintf(f->node, sizeof f->node, "%s", node.id);
    snprintf(f->session_host, sizeof f->session_host, "%s:%u", node.host, (unsigned)node.http_port);
    snprintf(f->what, sizeof f->what, "%.16s %s %.800s", method, kind, pp->is_resource ? pp->scope : path);
    int port;
    const char *addr = sl_smproxy_node_addr(&node, &port);
    int v6 = strchr(addr, ':') != NULL;
    const char *q = h->req_query(req);
    char url[SL_CLUSTER_HOST_MAX + SL_SMPROXY_PATH_MAX + 2200];
    int n = snprintf(url, sizeof url, "http://%s%s%s:%d/%s/%s/%s/%s%s%s", v6 ? "[" : "", addr,
                     v6 ? "]" : "", port, pp->scope, kind, pp->is_resource ? "resource" : "endpoint",
                     pp->is_resource ? pp->name : pp->name, q[0] ? "?" : "", q);
    if (n < 0 || (size_t)n >= sizeof url) {
        answer_error(p, req, 414, "request too long");
        fwd_free(f);
        return 0;
    }
    SL_LOGI(LOGCTX, "smproxy: %s from %s -> node %s (%s)", f->what, f->addr, node.id, f->session_host);
    return forward(p, req, f, url, 1);
}

/* /as/v1/proxy/forward/?target=: a node's Server API, for the admin only. */
static int on_forward(smp_t *p, sl_http_req_t *req)
{
    const sl_http_svc_t *h = p->http;
    /* The admin's SM 2.0 token (PUT /as/v1/auth/login, checked by the
     * stream manager's service) or the Server API's own token. */
    int allowed = 0;
    const char *bearer = h->req_header(req, "Authorization");
    void *sud = NULL;
    const sl_svc_streammanager_t *sm =
        sl_service_get(p->core, SL_SVC_STREAMMANAGER, SL_SVC_STREAMMANAGER_MAJOR, 1, &sud);
    if (sm && bearer && strncasecmp(bearer, "Bearer ", 7) == 0) {
        int rc = sm->check_token(sud, bearer, "admin");
        if (rc == SL_EBUSY)
            return answer_error(p, req, 403, "an admin token is required");
        allowed = rc == 0;
    }
    if (!allowed) {
        void *aud = NULL;
        const sl_svc_api_t *api = sl_service_get(p->core, SL_SVC_API, SL_SVC_API_MAJOR, 1, &aud);
        if (!api)
            return answer_error(p, req, 503, "the Server API is off on this node");
        if (api->check_access(aud, (struct sl_http_req *)req))
            return 0; /* answered: 401, 403 or 429 */
    }
    const char *m = h->req_method(req);
    if (strcmp(m, "GET") && strcmp(m, "HEAD") && strcmp(m, "POST") && strcmp(m, "PUT") &&
        strcmp(m, "DELETE") && strcmp(m, "PATCH"))
        return answer_error(p, req, 405, "method not forwarded");
    char target[SL_SMPROXY_URL_MAX + 1];
    int tl = h->req_query_get(req, "target", target, sizeof target);
    if (tl == -2)
        return answer_error(p, req, 414, "target too long");
    if (tl <= 0)
        return answer_error(p, req, 400, "target= is required");
    void *cud = NULL;
    const sl_svc_cluster_t *cl = sl_service_get(p->core, SL_SVC_CLUSTER, SL_SVC_CLUSTER_MAJOR, 0, &cud);
    if (!cl)
        return answer_error(p, req, 503, "cluster mode is off on this node");
    const sl_cluster_node_t *nodes = NULL, *node = NULL;
    size_t n = cl->nodes(cud, &nodes);
    char url[SL_SMPROXY_URL_MAX + SL_CLUSTER_HOST_MAX + 16];
    int rc = sl_smproxy_forward_target(target, nodes, n, url, sizeof url, &node);
    if (rc == SL_EDENIED) {
        p->refused++;
        SL_LOGI(LOGCTX, "smproxy: forward from %s refused: the target is not a node's Server API",
                h->req_remote(req, NULL));
        return answer_error(p, req, 403, "target is not the Server API of a node of this cluster");
    }
    if (rc)
        return answer_error(p, req, 400, "malformed target");
    smp_fwd_t *f = fwd_new(p, req, SL_SMPROXY_FORWARD);
    if (!f)
        return 0;
    snprintf(f->node, sizeof f->node, "%s", node->id);
    /* The path only: a target's query may carry the node's accessToken. */
    size_t plen = strcspn(url, "?");
    snprintf(f->what, sizeof f->what, "forward %s %.*s", h->req_method(req),
             (int)(plen < 200 ? plen : 200), url);
    SL_LOGI(LOGCTX, "smproxy: %s from %s -> node %s", f->what, f->addr, node->id);
    return forward(p, req, f, url, 0);
}

static int on_request(sl_http_req_t *req, void *ud)
{
    smp_t *p = ud;
    if (p->stopping)
        return answer_error(p, req, 503, "shutting down");
    sl_smproxy_path_t pp;
    int rc = sl_smproxy_parse_path(p->http->req_path(req), &pp);
    if (rc == SL_EDECLINED)
        return SL_EDECLINED;
    if (rc == SL_ENOTFOUND)
        return answer_error(p, req, 404, "no such proxy endpoint");
    if (rc)
        return answer_error(p, req, 400, "malformed proxy path");
    switch (pp.kind) {
    case SL_SMPROXY_FORWARD:
        return on_forward(p, req);
    case SL_SMPROXY_WS:
        return sl__smproxy_ws_start(p, req, &pp);
    default:
        return on_webrtc(p, req, &pp);
    }
}

/* ------------------------------------------------------------------ */
/* module                                                              */

static int smp_init(const sl_host_api_t *api, sl_host_t *h, void **state)
{
    (void)api;
    sl_core_t *core = sl_host_core(h);
    *state = NULL;
    const sl_smproxy_config_t *c = sl_smproxy_cfg(core->cfg);
    if (!c->enabled)
        return 0;
    void *hud = NULL;
    const sl_http_svc_t *http = sl_service_get(core, SL_HTTP_SVC_NAME, SL_HTTP_SVC_MAJOR, 0, &hud);
    if (!http) {
        SL_LOGW(LOGCTX, "smproxy: sm_proxy.enabled but HTTP is off: no proxy");
        return 0;
    }
    smp_t *p = sl_calloc(1, sizeof *p);
    if (!p)
        return SL_ENOMEM;
    p->core = core;
    p->cfg = core->cfg;
    p->http = http;
    p->http_ud = hud;
    sl_list_init(&p->pending);
    sl_list_init(&p->ws);
    sl_map_init(&p->per_addr);
    sl_http_client_opts_t o = {.max_connections = 64,
                               .max_response_bytes = (size_t)c->max_response_bytes};
    int rc = sl_http_client_new(core->loop, &o, &p->cli);
    if (rc)
        goto fail;
    const sl_http_route_spec_t spec = {
        .method = NULL, .prefix = SL_SMPROXY_PREFIX, .prio = SL_HTTP_PRIO_CORE,
        .name = "sm_proxy", .serves = "", .cb = on_request, .ud = p,
        .options = 1, /* Red5's SDK reads Session-Host from the OPTIONS answer */
    };
    rc = http->route_add(hud, &spec, &p->route);
    if (rc)
        goto fail;
    const sl_http_route_spec_t admin = {
        .method = NULL, .prefix = SL_SMPROXY_ADMIN_PREFIX, .prio = SL_HTTP_PRIO_CORE,
        .name = "sm_proxy sessions (SM 4.0 admin)", .serves = "", .cb = sl__smproxy_ws_admin,
        .ud = p,
    };
    rc = http->route_add(hud, &admin, &p->admin_route);
    if (rc) {
        http->route_remove(hud, p->route);
        goto fail;
    }
    SL_LOGI(LOGCTX, "smproxy: serving " SL_SMPROXY_PREFIX "/whip|whep|ws|forward");
    *state = p;
    return 0;
fail:
    sl_http_client_free(p->cli);
    sl_map_cleanup(&p->per_addr);
    sl_free(p);
    return rc;
}

static void smp_stop(void *state)
{
    smp_t *p = state;
    if (!p)
        return;
    p->stopping = 1;
    if (p->route)
        p->http->route_remove(p->http_ud, p->route);
    if (p->admin_route)
        p->http->route_remove(p->http_ud, p->admin_route);
    p->route = p->admin_route = NULL;
    while (!sl_list_empty(&p->pending)) {
        smp_fwd_t *f = sl_container_of(p->pending.next, smp_fwd_t, link);
        if (f->creq)
            sl_http_client_cancel(f->creq);
        answer_error(p, f->req, 503, "shutting down");
        fwd_free(f);
    }
    sl__smproxy_ws_stop_all(p);
    sl_http_client_close(p->cli, 0, NULL, NULL);
    SL_LOGI(LOGCTX, "smproxy: stopped (%llu requests and %llu WebSocket sessions proxied, %llu refused)",
            (unsigned long long)p->total_requests, (unsigned long long)p->total_ws,
            (unsigned long long)p->refused);
}

static void smp_free(void *state)
{
    smp_t *p = state;
    if (!p)
        return;
    sl_http_client_free(p->cli);
    sl_map_cleanup(&p->per_addr);
    sl_free(p);
}

/* A reload takes the new limits; turning the proxy off (or on) needs a restart. */
static int smp_reload(void *state)
{
    smp_t *p = state;
    if (!sl_smproxy_cfg(p->core->cfg)->enabled)
        return SL_EAGAIN;
    p->cfg = p->core->cfg;
    return 0;
}

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI,
    .name = "sm_proxy",
    .description = "the stream manager's proxy: WHIP/WHEP, WebSocket and Server API to the nodes",
    .init = smp_init,
    .stop = smp_stop,
    .destroy = smp_free,
    .reload = smp_reload,
};

const sl_builtin_t sl_smproxy_builtin = {
    .plugin = &plugin,
    .config = &sl_smproxy_config_section,
};
