/*
 * WHIP (RFC 9725) and WHEP signalling at Red5 Pro's paths, registered on
 * the HTTP server through the route service (app/svc/http.h):
 *
 *   POST    /{app}[/{room}...]/whip/endpoint/{stream}   offer -> 201 + answer (publish)
 *   POST    /{app}[/{room}...]/whep/endpoint/{stream}   offer -> 201 + answer (play)
 *   PATCH   /{app}/.../whip|whep/resource/{id}          trickle ICE (204) / ICE restart (200)
 *   DELETE  /{app}/.../whip|whep/resource/{id}          ends the session (200)
 *   OPTIONS on either                                   CORS preflight, ICE servers (204)
 *
 * {id} is the random token the Location header names (knowing it is the
 * right to change or end the session). Red5's server also takes the stream
 * name there; sluice does not, since anyone who knows a stream's name could
 * then end its publish. Status
 * codes follow Red5 (RED5-COMPAT §6.2): 201 created, 400 bad SDP, 401
 * refused by admission, 404 unknown app or stream, 406 no codec we can
 * take, 409 stream already published, 413/415 body, 429/503 budgets.
 *
 * Admission runs through the chain (simple, JWT, round trip, plugins)
 * with transport "webrtc", credentials from the query (username,
 * password, token) or `Authorization: Bearer`, before any ICE or DTLS
 * state exists: a refused client costs one parsed SDP and nothing else.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "app/admission.h"
#include "app/events.h"
#include "app/services.h"
#include "base/alloc.h"
#include "base/log.h"
#include "media/sdp.h"
#include "proto/webrtc/webrtc_internal.h"
#include "sluice/errors.h"

/* Access-Control-Allow-Origin comes from the HTTP server (http.cors_origin) on every answer:
 * a second copy here made browsers refuse every cross-origin WHIP/WHEP answer. */
#define CORS "Access-Control-Allow-Methods: POST, PATCH, DELETE, OPTIONS\r\n" \
             "Access-Control-Allow-Headers: Authorization, Content-Type, If-Match\r\n" \
             "Access-Control-Expose-Headers: Location, ETag, Link, Accept-Patch\r\n"

/* A POST waiting for admission. */
typedef struct wrtc_post {
    wrtc_t *w;
    sl_http_req_t *req;
    wrtc_pc_t *pc;
    char *body;                    /* the offer as received, parsed only once admitted */
    size_t body_len;
    sl_sdp_t *offer;               /* parsed after admission (an sl_sdp_t is ~130 KB) */
    sl_admit_t *admit;
    int in_call, finished, result;
    int had_creds;                 /* the client gave credentials (a refusal is 403, not 401) */
    char reason[256];
    char scope[WRTC_PATH_MAX + 1];
    char kind_name[5];             /* "whip" / "whep" */
} wrtc_post_t;

static int respond(wrtc_t *w, sl_http_req_t *req, int status, const char *text)
{
    char body[600];
    snprintf(body, sizeof body, "%.500s\n", text);
    return w->http->respond(req, status, "text/plain; charset=utf-8", body, strlen(body), CORS);
}

/*
 * Splits "/{scope}/{whip|whep}/{endpoint|resource}/{name}" into its parts.
 * Returns 0, or SL_EDECLINED when the path is not a WHIP/WHEP one.
 */
static int parse_path(const char *path, char *scope, size_t scope_cap, char *kind, int *is_resource,
                      char *name, size_t name_cap)
{
    const char *marks[] = {"/whip/endpoint/", "/whep/endpoint/", "/whip/resource/", "/whep/resource/"};
    for (int i = 0; i < 4; i++) {
        const char *m = strstr(path, marks[i]);
        if (!m || m == path)
            continue;
        size_t sl = (size_t)(m - path) - 1; /* without the leading '/' */
        const char *nm = m + strlen(marks[i]);
        if (sl == 0 || sl >= scope_cap || !*nm || strlen(nm) >= name_cap || strchr(nm, '/'))
            return SL_EINVAL;
        memcpy(scope, path + 1, sl);
        scope[sl] = '\0';
        memcpy(kind, marks[i] + 1, 4);
        kind[4] = '\0';
        *is_resource = i >= 2;
        snprintf(name, name_cap, "%s", nm);
        return 0;
    }
    return SL_EDECLINED;
}

/* The Link headers for configured ICE servers (RFC 9725 §4.6), appended to out. */
static void ice_links(const wrtc_t *w, char *out, size_t cap)
{
    const sl_webrtc_config_t *wc = sl_webrtc_cfg(w->core->cfg);
    size_t n = strlen(out);
    for (const char *m = wc->ice_servers; m && *m;) {
        while (*m == ' ' || *m == ',')
            m++;
        size_t len = strcspn(m, ", ");
        if (!len)
            break;
        int turn = strncmp(m, "turn", 4) == 0;
        int k;
        if (turn && wc->ice_username[0])
            k = snprintf(out + n, cap - n,
                         "Link: <%.*s>; rel=\"ice-server\"; username=\"%s\"; credential=\"%s\"; "
                         "credential-type=\"password\"\r\n",
                         (int)len, m, wc->ice_username, wc->ice_credential);
        else
            k = snprintf(out + n, cap - n, "Link: <%.*s>; rel=\"ice-server\"\r\n", (int)len, m);
        if (k < 0 || (size_t)k >= cap - n) {
            out[n] = '\0';
            return;
        }
        n += (size_t)k;
        m += len;
    }
}

/*
 * The publish mode a WHIP POST asks for: Red5's WHIP takes mode=live|record|
 * append; record=<anything> is the short form (record=append appends, and
 * false, 0, no and live mean live, so that a form's unchecked box does not
 * record). mode= wins when both are given. NULL for an unknown mode= value,
 * which the caller refuses (400) rather than silently not recording.
 */
static const char *query_publish_mode(const sl_http_svc_t *h, sl_http_req_t *req)
{
    static const char *const modes[] = {"live", "record", "append"};
    char v[16];
    if (h->req_query_get(req, "mode", v, sizeof v) >= 0) {
        for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
            if (strcasecmp(v, modes[i]) == 0)
                return modes[i];
        return NULL;
    }
    if (h->req_query_get(req, "record", v, sizeof v) < 0)
        return "live";
    if (strcasecmp(v, "append") == 0)
        return "append";
    if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no") || !strcasecmp(v, "live"))
        return "live";
    return "record";
}

/* Credentials as every HTTP route reads them: query, then Bearer. */
static void find_creds(const wrtc_t *w, sl_http_req_t *req, char *user, size_t ucap, char *pass,
                       size_t pcap, char *token, size_t tcap)
{
    const sl_http_svc_t *h = w->http;
    if (h->req_query_get(req, "username", user, ucap) < 0)
        user[0] = '\0';
    if (h->req_query_get(req, "password", pass, pcap) < 0)
        pass[0] = '\0';
    if (h->req_query_get(req, "token", token, tcap) < 0)
        token[0] = '\0';
    const char *auth = h->req_header(req, "Authorization");
    if (!token[0] && auth && strncasecmp(auth, "Bearer ", 7) == 0) {
        const char *v = auth + 7;
        while (*v == ' ')
            v++;
        snprintf(token, tcap, "%s", v);
    }
}

static size_t addr_count(wrtc_t *w, const char *addr)
{
    return (size_t)(uintptr_t)sl_map_get(&w->per_addr, addr);
}

static void addr_add(wrtc_t *w, const char *addr, int delta)
{
    size_t n = addr_count(w, addr);
    if (delta < 0 && n <= 1) {
        sl_map_del(&w->per_addr, addr);
        return;
    }
    sl_map_set(&w->per_addr, addr, (void *)(uintptr_t)(n + (size_t)delta));
}

static void post_free(wrtc_post_t *p)
{
    if (p->admit)
        sl_admit_cancel(p->admit);
    sl_free(p->body);
    sl_free(p->offer);
    sl_free(p);
}

/* Admission done (allowed): the session is set up and answered. */
static void post_finish(wrtc_post_t *p)
{
    wrtc_t *w = p->w;
    wrtc_pc_t *pc = p->pc;
    sl_http_req_t *req = p->req;
    if (p->result) {
        SL_LOGI(&pc->sess.log, "webrtc %s refused: %s", p->kind_name, p->reason[0] ? p->reason : "denied");
        /* 401 without credentials (with a challenge), 403 with refused
         * ones: what every HTTP route of sluice answers. */
        char hdr[512];
        snprintf(hdr, sizeof hdr, CORS "%s", p->had_creds ? "" : "WWW-Authenticate: Bearer realm=\"sluice\"\r\n");
        char body[300];
        snprintf(body, sizeof body, "%.250s\n", p->reason[0] ? p->reason : p->had_creds ? "Forbidden" : "Unauthorized");
        w->http->respond(req, p->had_creds ? 403 : 401, "text/plain; charset=utf-8", body, strlen(body), hdr);
        wrtc_pc_close(pc, "refused");
        post_free(p);
        return;
    }
    sl_session_admitted(&pc->sess);
    pc->admitted = 1;
    sl_events_emit_session(w->core, &pc->sess, SL_EV_CONNECT, NULL);
    char why[256] = "";
    int status = 0;
    if (pc->kind == WRTC_PUBLISHER) {
        sl_stream_t *st = sl_hub_find(w->core->hub, pc->path);
        if (st && st->publisher)
            status = 409, snprintf(why, sizeof why, "stream %.200s is already being published", pc->path);
    } else {
        sl_stream_t *st = sl_hub_find(w->core->hub, pc->path);
        if (!st || !st->publisher)
            status = 404, snprintf(why, sizeof why, "stream %.200s not found", pc->path);
    }
    if (!status) {
        /* Parsed only now: an unadmitted client cannot make us parse (or hold) an SDP. */
        char err[160] = "";
        p->offer = sl_malloc(sizeof(*p->offer));
        if (!p->offer)
            status = 500, snprintf(why, sizeof why, "out of memory");
        else if (sl_sdp_parse(p->body, p->body_len, p->offer, err, sizeof err))
            status = 400, snprintf(why, sizeof why, "bad SDP offer: %s", err);
    }
    if (!status) {
        int rc = wrtc_pc_setup(pc, p->offer, why, sizeof why);
        if (rc > 0)
            status = rc;
    }
    if (status) {
        SL_LOGI(&pc->sess.log, "webrtc %s refused (%d): %s", p->kind_name, status, why);
        respond(w, req, status, why);
        wrtc_pc_close(pc, why);
        post_free(p);
        return;
    }
    size_t cap = 16384;
    char *answer = sl_malloc(cap);
    int alen = answer ? wrtc_pc_answer(pc, p->offer, answer, cap) : SL_ENOMEM;
    if (alen < 0) {
        SL_LOGW(&pc->sess.log, "webrtc %s: cannot write the answer: %s", p->kind_name, sl_strerror(alen));
        respond(w, req, 500, "internal error");
        wrtc_pc_close(pc, "answer failed");
        sl_free(answer);
        post_free(p);
        return;
    }
    if (pc->kind == WRTC_PUBLISHER && wrtc_pub_start(pc)) {
        respond(w, req, 409, "stream unavailable");
        wrtc_pc_close(pc, "publish failed");
        sl_free(answer);
        post_free(p);
        return;
    }
    char hdr[4096];
    snprintf(hdr, sizeof hdr,
             CORS "Location: /%.512s/%.4s/resource/%.32s\r\nETag: \"%s\"\r\n"
             "Accept-Patch: application/trickle-ice-sdpfrag\r\nCache-Control: no-store\r\n",
             p->scope, p->kind_name, pc->resource, pc->etag);
    ice_links(w, hdr, sizeof hdr);
    w->c.sessions_total++;
    pc->answered = 1;
    SL_LOGI(&pc->sess.log, "webrtc %s session created (%s:%d)", p->kind_name, pc->sess.remote_addr,
            pc->sess.remote_port);
    w->http->respond(req, 201, "application/sdp", answer, (size_t)alen, hdr);
    sl_free(answer);
    post_free(p);
}

static void admit_done(sl_admit_t *a, int result, const char *reason, void *ud)
{
    wrtc_post_t *p = ud;
    p->finished = 1;
    p->result = result;
    snprintf(p->reason, sizeof p->reason, "%s", reason ? reason : "");
    if (p->in_call)
        return;
    if (p->admit == a) {
        p->admit = NULL;
        sl_admit_unref(a);
    }
    p->pc->pending_post = NULL;
    post_finish(p);
}

void wrtc__post_cancel(void *post)
{
    wrtc_post_t *p = post;
    respond(p->w, p->req, 503, "server shutting down");
    post_free(p);
}

static int on_post(wrtc_t *w, sl_http_req_t *req, const char *scope, const char *kind, const char *stream)
{
    const sl_http_svc_t *h = w->http;
    const sl_webrtc_config_t *wc = sl_webrtc_cfg(w->core->cfg);
    const sl_app_config_t *app = sl_core_app(w->core, scope);
    if (!app || !sl_webrtc_app_cfg(app)->webrtc)
        return respond(w, req, 404, "no such application");
    int publish = kind[2] == 'i';
    if (publish ? !app->allow_publish : !app->allow_play)
        return respond(w, req, 403, publish ? "publishing is not allowed in this application"
                                            : "playing is not allowed in this application");
    char path[WRTC_PATH_MAX + 1];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", scope, stream) >= sizeof path ||
        !sl_name_is_safe(path, WRTC_PATH_MAX))
        return respond(w, req, 400, "bad stream name");
    const char *ct = h->req_header(req, "Content-Type");
    if (!ct || strncasecmp(ct, "application/sdp", 15) != 0)
        return respond(w, req, 415, "the offer must be application/sdp");
    size_t blen = 0;
    const uint8_t *body = h->req_body(req, &blen);
    if (blen > (size_t)wc->max_sdp_bytes)
        return respond(w, req, 413, "offer too large");
    if (!body || !blen)
        return respond(w, req, 400, "empty offer");
    int port = 0;
    const char *remote = h->req_remote(req, &port);
    if (w->n_pcs >= (size_t)wc->max_sessions || w->stopping)
        return respond(w, req, 503, "server busy");
    if (addr_count(w, remote ? remote : "") >= (size_t)wc->max_sessions_per_address)
        return respond(w, req, 429, "too many sessions from this address");
    const char *q = h->req_query(req);
    if (!sl_query_is_safe(q))
        return respond(w, req, 400, "bad query string");

    wrtc_post_t *p = sl_calloc(1, sizeof(*p));
    if (!p)
        return SL_ENOMEM;
    p->w = w;
    p->req = req;
    snprintf(p->scope, sizeof p->scope, "%s", scope);
    snprintf(p->kind_name, sizeof p->kind_name, "%s", kind);
    p->body = sl_malloc(blen);
    if (!p->body) {
        sl_free(p);
        return SL_ENOMEM;
    }
    memcpy(p->body, body, blen);
    p->body_len = blen;
    wrtc_pc_t *pc = wrtc_pc_alloc(w, publish ? WRTC_PUBLISHER : WRTC_VIEWER, path, remote, port);
    if (!pc) {
        post_free(p); /* and the body it holds */
        return SL_ENOMEM;
    }
    addr_add(w, pc->sess.remote_addr, 1);
    pc->addr_counted = 1;
    p->pc = pc;
    if (sl_session_set_app(&pc->sess, scope) || sl_session_set_stream(&pc->sess, stream) ||
        sl_session_set_query(&pc->sess, q && q[0] ? q : NULL)) {
        wrtc_pc_close(pc, "out of memory");
        post_free(p); /* and the body it holds */
        return SL_ENOMEM;
    }
    char user[512] = "", pass[512] = "", token[8194] = "";
    find_creds(w, req, user, sizeof user, pass, sizeof pass, token, sizeof token);
    p->had_creds = user[0] || pass[0] || token[0];
    sl_admit_req_t ar = {
        .kind = publish ? SL_ADMIT_PUBLISH : SL_ADMIT_PLAY,
        .app = pc->sess.app,
        .stream = pc->sess.stream,
        .transport = "webrtc",
        .query = q,
        .username = user[0] ? user : NULL,
        .password = pass[0] ? pass : NULL,
        .token = token[0] ? token : NULL,
        .publish_mode = publish ? "live" : NULL,
    };
    if (publish && !(ar.publish_mode = query_publish_mode(h, req))) {
        wrtc_pc_close(pc, "bad publish mode");
        post_free(p); /* and the body it holds */
        return respond(w, req, 400, "mode must be live, record or append");
    }
    pc->sess.publish_mode = !publish || strcmp(ar.publish_mode, "live") == 0 ? SL_PUBLISH_LIVE
                            : strcmp(ar.publish_mode, "append") == 0 ? SL_PUBLISH_APPEND
                                                                      : SL_PUBLISH_RECORD;
    sl_admit_t *a = NULL;
    p->in_call = 1;
    int rc = sl_admit(w->core, &pc->sess, &ar, admit_done, p, &a);
    p->in_call = 0;
    if (rc == SL_EPENDING) {
        p->admit = a;
        pc->pending_post = p;
        return 0;
    }
    if (rc == SL_OK && p->finished) {
        post_finish(p);
        return 0;
    }
    wrtc_pc_close(pc, "admission failed");
    post_free(p);
    return rc ? rc : SL_EINVAL;
}

/*
 * The session a resource URL names. Only the random token of the Location
 * header does: Red5's server also takes the stream name there, which lets
 * anyone who knows a stream's name end its publish; sluice does not.
 */
static wrtc_pc_t *find_resource(wrtc_t *w, const char *scope, const char *name)
{
    (void)scope;
    return wrtc_find(w, name);
}

static int on_patch(wrtc_t *w, sl_http_req_t *req, wrtc_pc_t *pc)
{
    const sl_http_svc_t *h = w->http;
    const char *ct = h->req_header(req, "Content-Type");
    if (!ct || strncasecmp(ct, "application/trickle-ice-sdpfrag", 31) != 0)
        return respond(w, req, 415, "expected application/trickle-ice-sdpfrag");
    const char *im = h->req_header(req, "If-Match");
    char quoted[32];
    snprintf(quoted, sizeof quoted, "\"%s\"", pc->etag);
    if (im && strcmp(im, "*") != 0 && strcmp(im, quoted) != 0)
        return respond(w, req, 412, "ETag does not match the session");
    size_t blen = 0;
    const uint8_t *body = h->req_body(req, &blen);
    if (blen > 16384)
        return respond(w, req, 413, "fragment too large");
    sl_sdp_frag_t frag;
    char err[160] = "";
    if (sl_sdp_parse_frag(body ? (const char *)body : "", blen, &frag, err, sizeof err))
        return respond(w, req, 400, err[0] ? err : "bad sdpfrag");
    if (frag.ice_ufrag[0] && strcmp(frag.ice_ufrag, pc->remote_ufrag) != 0) {
        /* ICE restart: new credentials on our side, answered as a fragment. */
        if (wrtc_pc_ice_restart(pc, frag.ice_ufrag))
            return respond(w, req, 500, "ICE restart failed");
        char out[2048];
        int n = wrtc_pc_frag_answer(pc, out, sizeof out);
        if (n < 0)
            return respond(w, req, 500, "ICE restart failed");
        char hdr[512];
        snprintf(hdr, sizeof hdr, CORS "ETag: \"%s\"\r\n", pc->etag);
        SL_LOGI(&pc->sess.log, "webrtc ICE restart");
        return h->respond(req, 200, "application/trickle-ice-sdpfrag", out, (size_t)n, hdr);
    }
    /* Trickled candidates: an ICE-lite server learns the peer's address from its checks. */
    return h->respond(req, 204, NULL, NULL, 0, CORS);
}

static int on_request(sl_http_req_t *req, void *ud)
{
    wrtc_t *w = ud;
    const sl_http_svc_t *h = w->http;
    char scope[WRTC_PATH_MAX + 1], kind[5], name[256];
    int is_resource = 0;
    int rc = parse_path(h->req_path(req), scope, sizeof scope, kind, &is_resource, name, sizeof name);
    if (rc == SL_EDECLINED)
        return SL_EDECLINED;
    if (rc)
        return respond(w, req, 400, "bad WHIP/WHEP path");
    const char *method = h->req_method(req);
    if (strcmp(method, "OPTIONS") == 0) {
        char hdr[4096];
        snprintf(hdr, sizeof hdr, CORS "Accept-Post: application/sdp\r\n"
                 "Accept-Patch: application/trickle-ice-sdpfrag\r\n");
        ice_links(w, hdr, sizeof hdr);
        return h->respond(req, 204, NULL, NULL, 0, hdr);
    }
    if (!is_resource) {
        if (strcmp(method, "POST") != 0)
            return h->respond(req, 405, "text/plain", "use POST\n", 9, CORS "Allow: POST, OPTIONS\r\n");
        return on_post(w, req, scope, kind, name);
    }
    wrtc_pc_t *pc = find_resource(w, scope, name);
    if (!pc || strncmp(pc->path, scope, strlen(scope)) != 0 ||
        (pc->kind == WRTC_PUBLISHER) != (kind[2] == 'i'))
        return respond(w, req, 404, "no such session");
    if (strcmp(method, "DELETE") == 0) {
        SL_LOGI(&pc->sess.log, "webrtc session ended by DELETE");
        wrtc_pc_close(pc, "ended by the client (DELETE)");
        return h->respond(req, 200, NULL, NULL, 0, CORS);
    }
    if (strcmp(method, "PATCH") == 0)
        return on_patch(w, req, pc);
    return h->respond(req, 405, "text/plain", "use PATCH or DELETE\n", 20,
                      CORS "Allow: PATCH, DELETE, OPTIONS\r\n");
}

void wrtc__addr_release(wrtc_t *w, const char *addr)
{
    addr_add(w, addr, -1);
}

int wrtc_signal_start(wrtc_t *w)
{
    const void *ud = NULL;
    w->http = sl_service_get(w->core, SL_HTTP_SVC_NAME, SL_HTTP_SVC_MAJOR, 0, (void **)&ud);
    if (!w->http) {
        SL_LOGW(NULL, "webrtc: HTTP is off: no WHIP/WHEP signalling");
        return 0;
    }
    w->http_ud = (void *)ud;
    const sl_http_route_spec_t route = {
        .method = NULL, .prefix = "/", .suffixes = NULL, .prio = SL_HTTP_PRIO_APP,
        .name = "webrtc",
        .serves = "/{app}/whep/endpoint/{stream}", /* WHIP takes data in; WHEP serves it */
        .cb = on_request, .ud = w,
    };
    return w->http->route_add(w->http_ud, &route, &w->routes[0]);
}

void wrtc_signal_stop(wrtc_t *w)
{
    if (w->http && w->routes[0]) {
        w->http->route_remove(w->http_ud, w->routes[0]);
        w->routes[0] = NULL;
    }
}
