/*
 * The Server API's RPC endpoints (docs/integration/rpc.md), answered
 * asynchronously through the service "rpc_router" (the RPC module):
 *
 *   POST /api/v1/applications/{app}/invoke            {method, parameters}
 *     Red5's "invoke an application method": the same route as a client's
 *     call (a registered handler, else the business server). data = the
 *     result. 404 no such method, 502 the business server failed (or its
 *     reply was refused), 504 no answer in time, 503 too many calls.
 *   POST /api/v1/applications/{app}/clients/{id}/invoke {method, params, timeout_ms}
 *     Calls method on one client. data = {client, status:"result"|"error"|"sent",
 *     value}. 404 no such client, 409 its protocol cannot be called, 504
 *     no answer in time, 410 the client left before answering.
 *   POST /api/v1/applications/{app}/invoke/clients?stream=&scope= {method, params, timeout_ms}
 *     Calls method on every client of the app (or scope), or only those of
 *     one stream (publisher and players), at once; answers when every one
 *     has answered or timed out. data = [{client, status, value|reason}]
 *     with status result, sent (WebRTC: no answer exists), error, timeout,
 *     closed or refused.
 *
 * The request stays valid until answered (http service contract), so each
 * pending call holds it; answering a client that went away is harmless.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "app/services.h"
#include "app/svc/rpc_router.h"
#include "base/alloc.h"
#include "proto/http/http.h"
#include "sluice/errors.h"

#define DEFAULT_INVOKE_TIMEOUT_MS 5000
#define MAX_INVOKE_TIMEOUT_MS 300000
#define MAX_FANOUT_CLIENTS 10000 /* clients one broadcast invoke may address */

static const sl_svc_rpc_router_t *router_of(sl_api_t *api, void **ud)
{
    return sl_service_get(api->core, SL_SVC_RPC_ROUTER, SL_SVC_RPC_ROUTER_MAJOR, 0, ud);
}

/* Parses a JSON text the router handed back (it checked it); NULL -> JSON null. */
static json_t *parse_or_null(const char *txt)
{
    json_t *j = txt ? json_loads(txt, JSON_DECODE_ANY, NULL) : NULL;
    return j ? j : json_null();
}

/* ---- Red5's /invoke ------------------------------------------------ */

static void on_app_invoke(void *ud, int status, const char *result_json, const char *reason)
{
    sl_http_req_t *req = ud;
    if (status == 0) {
        sl__api_ok(req, parse_or_null(result_json));
        return;
    }
    int code = status == SL_ENOTFOUND ? 404
               : status == UV_ETIMEDOUT ? 504
               : status == SL_ECLOSED ? 503
                                       : 502;
    sl__api_err(req, code, reason ? reason : sl_strerror(status));
}

static int app_invoke(sl_api_t *api, sl_http_req_t *req, const sl_app_config_t *app,
                      const char *scope)
{
    json_t *body = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, NULL);
    const char *method = json_string_value(json_object_get(body, "method"));
    json_t *params = json_object_get(body, "parameters");
    if (!params)
        params = json_object_get(body, "params");
    if (!method || !method[0] || (params && !json_is_array(params) && !json_is_null(params))) {
        json_decref(body);
        return sl__api_err(req, 400, "Body must be {\"method\": name, \"parameters\": [...]}.");
    }
    char *ptxt = params && json_is_array(params) ? json_dumps(params, JSON_COMPACT) : NULL;
    void *rud = NULL;
    const sl_svc_rpc_router_t *r = router_of(api, &rud);
    sl_rpc_route_req_t rr = {.app = scope, .proto = "api", .method = method,
                             .params_json = ptxt ? ptxt : "[]"};
    int rc = r ? r->route(rud, &rr, on_app_invoke, req) : SL_ENOTFOUND;
    free(ptxt);
    char msg[200];
    if (rc == SL_ENOTFOUND)
        snprintf(msg, sizeof msg, "No handler for method %.100s in application %s.", method, app->name);
    json_decref(body);
    if (rc == 0)
        return 0;
    if (rc == SL_ENOTFOUND)
        return sl__api_err(req, 404, msg);
    if (rc == SL_EBUSY)
        return sl__api_err(req, 503, "Too many calls in flight.");
    if (rc == SL_EINVAL || rc == SL_ETOOBIG)
        return sl__api_err(req, 400, "Invalid method or parameters.");
    return sl__api_err(req, 500, sl_strerror(rc));
}

/* ---- server -> client ---------------------------------------------- */

/* The body of a client invoke: method, params (or parameters), timeout_ms. */
static int parse_invoke_body(sl_http_req_t *req, json_t **body, const char **method, char **params,
                             uint64_t *timeout_ms)
{
    *params = NULL;
    *body = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, NULL);
    *method = json_string_value(json_object_get(*body, "method"));
    json_t *p = json_object_get(*body, "params");
    if (!p)
        p = json_object_get(*body, "parameters");
    json_t *t = json_object_get(*body, "timeout_ms");
    *timeout_ms = DEFAULT_INVOKE_TIMEOUT_MS;
    if (t && (!json_is_integer(t) || json_integer_value(t) < 1 ||
              json_integer_value(t) > MAX_INVOKE_TIMEOUT_MS))
        return SL_EINVAL;
    if (t)
        *timeout_ms = (uint64_t)json_integer_value(t);
    if (!*method || !(*method)[0] || (p && !json_is_array(p) && !json_is_null(p)))
        return SL_EINVAL;
    if (p && json_is_array(p)) {
        char *txt = json_dumps(p, JSON_COMPACT);
        *params = txt ? sl_strdup(txt) : NULL;
        free(txt);
        if (!*params)
            return SL_ENOMEM;
    }
    return 0;
}

/* One client's answer as an entry: {client, status, value | reason}. */
static json_t *answer_json(const char *client, int status, const char *result_json,
                           const char *reason)
{
    const char *word = status == 0 && !result_json ? "sent" /* fire-and-forget (WebRTC) */
                       : status == 0 ? "result"
                       : status == SL_EDENIED ? "error"
                       : status == UV_ETIMEDOUT ? "timeout"
                       : status == SL_ECLOSED ? "closed"
                                               : "refused";
    json_t *o = json_pack("{s:s, s:s}", "client", client, "status", word);
    if (o && ((status == 0 && result_json) || status == SL_EDENIED))
        json_object_set_new(o, "value", parse_or_null(result_json));
    else if (o && status)
        json_object_set_new(o, "reason", json_string(reason ? reason : sl_strerror(status)));
    return o;
}

typedef struct one_ctx {
    sl_http_req_t *req;
    char client[16];
} one_ctx_t;

static void on_client_invoke(void *ud, int status, const char *result_json, const char *reason)
{
    one_ctx_t *x = ud;
    if (status == 0 || status == SL_EDENIED)
        sl__api_ok(x->req, answer_json(x->client, status, result_json, reason));
    else
        sl__api_err(x->req, status == UV_ETIMEDOUT ? 504 : status == SL_ECLOSED ? 410 : 502,
                    reason ? reason : sl_strerror(status));
    sl_free(x);
}

static int invoke_err(sl_http_req_t *req, int rc)
{
    switch (rc) {
    case SL_ENOTFOUND: return sl__api_err(req, 404, "Client not found.");
    case SL_EDECLINED: return sl__api_err(req, 409, "This client's protocol cannot be invoked.");
    case SL_EBUSY: return sl__api_err(req, 503, "Too many invokes in flight.");
    case SL_EINVAL: return sl__api_err(req, 400, "Invalid method or params.");
    case SL_ECLOSED: return sl__api_err(req, 410, "The client is not connected.");
    default: return sl__api_err(req, 500, sl_strerror(rc));
    }
}

static int client_invoke(sl_api_t *api, sl_http_req_t *req, sl_session_t *s)
{
    json_t *body;
    const char *method;
    char *params;
    uint64_t timeout_ms;
    int rc = parse_invoke_body(req, &body, &method, &params, &timeout_ms);
    if (rc) {
        json_decref(body);
        sl_free(params);
        return rc == SL_ENOMEM ? sl__api_err(req, 500, "Out of memory.")
                               : sl__api_err(req, 400, "Body must be {\"method\": name, \"params\": "
                                                       "[...], \"timeout_ms\": 1..300000}.");
    }
    void *rud = NULL;
    const sl_svc_rpc_router_t *r = router_of(api, &rud);
    one_ctx_t *x = sl_calloc(1, sizeof(*x));
    rc = !r ? SL_EDECLINED : !x ? SL_ENOMEM : 0;
    if (!rc) {
        x->req = req;
        snprintf(x->client, sizeof x->client, "%s", s->id);
        rc = r->invoke_client(rud, s->id, method, params, timeout_ms, on_client_invoke, x);
    }
    json_decref(body);
    sl_free(params);
    if (rc == 0)
        return 0;
    sl_free(x);
    return invoke_err(req, rc);
}

/* A broadcast invoke: the answers gathered so far. */
typedef struct fan {
    sl_http_req_t *req;
    json_t *answers;      /* array, one slot per client addressed */
    size_t remaining;     /* answers still to come */
    int started;          /* every invoke has been sent */
} fan_t;

typedef struct fan_slot {
    fan_t *fan;
    size_t index;
    char client[16];
} fan_slot_t;

static void fan_done_if_complete(fan_t *f)
{
    if (!f->started || f->remaining)
        return;
    sl__api_ok(f->req, f->answers);
    sl_free(f);
}

static void on_fan_answer(void *ud, int status, const char *result_json, const char *reason)
{
    fan_slot_t *slot = ud;
    fan_t *f = slot->fan;
    json_array_set_new(f->answers, slot->index, answer_json(slot->client, status, result_json, reason));
    sl_free(slot);
    f->remaining--;
    fan_done_if_complete(f);
}

static int in_scope(const sl_session_t *s, const char *scope, int whole_app)
{
    if (!s->app)
        return 0;
    size_t n = strlen(scope);
    return strcmp(s->app, scope) == 0 || (whole_app && strncmp(s->app, scope, n) == 0 && s->app[n] == '/');
}

static int fan_invoke(sl_api_t *api, sl_http_req_t *req, const char *scope, int whole_app)
{
    char stream[512];
    int has_stream = sl_http_query_get(req->query, "stream", stream, sizeof stream) > 0;
    json_t *body;
    const char *method;
    char *params;
    uint64_t timeout_ms;
    int rc = parse_invoke_body(req, &body, &method, &params, &timeout_ms);
    void *rud = NULL;
    const sl_svc_rpc_router_t *r = router_of(api, &rud);
    fan_t *f = rc ? NULL : sl_calloc(1, sizeof(*f));
    if (!f || !(f->answers = json_array())) {
        json_decref(body);
        sl_free(params);
        sl_free(f);
        return rc == SL_EINVAL ? sl__api_err(req, 400, "Body must be {\"method\": name, \"params\": "
                                                       "[...], \"timeout_ms\": 1..300000}.")
                               : sl__api_err(req, 500, "Out of memory.");
    }
    f->req = req;
    size_t n = 0;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &api->core->sessions) {
        sl_session_t *s = sl_container_of(it, sl_session_t, link);
        if (!in_scope(s, scope, whole_app) || !s->ops || !s->ops->invoke)
            continue;
        if (has_stream && (!s->stream || strcmp(s->stream, stream) != 0))
            continue;
        if (n == MAX_FANOUT_CLIENTS)
            break;
        fan_slot_t *slot = sl_calloc(1, sizeof(*slot));
        json_array_append_new(f->answers, json_null());
        if (slot) {
            slot->fan = f;
            slot->index = n;
            snprintf(slot->client, sizeof slot->client, "%s", s->id);
        }
        rc = !slot ? SL_ENOMEM : !r ? SL_EDECLINED
                                    : r->invoke_client(rud, s->id, method, params, timeout_ms,
                                                       on_fan_answer, slot);
        if (rc) {
            json_array_set_new(f->answers, n, answer_json(s->id, rc, NULL, sl_strerror(rc)));
            sl_free(slot);
        } else {
            f->remaining++;
        }
        n++;
    }
    json_decref(body);
    sl_free(params);
    f->started = 1; /* answers never come inside invoke_client: none has yet */
    fan_done_if_complete(f);
    return 0;
}

int sl__api_rpc_route(sl_api_t *api, sl_http_req_t *req, const sl_app_config_t *app,
                      const char *scope, int whole_app, char **seg, int n)
{
    if (n == 1)
        return app_invoke(api, req, app, scope);
    if (n == 2)
        return fan_invoke(api, req, scope, whole_app);
    sl_session_t *s = sl_core_find_session(api->core, seg[1]);
    if (!s || !in_scope(s, scope, whole_app))
        return sl__api_err(req, 404, "Client not found.");
    return client_invoke(api, req, s);
}
