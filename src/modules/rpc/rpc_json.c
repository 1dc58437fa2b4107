/*
 * The JSON form of client -> server calls (see rpc_json.h): Red5 HTML5
 * SDK's RTCPublisher / RTCSubscriber callServer(method, args) posts
 *
 *   {"callAdapter":{"method":"m","arguments":[...]},"id":"3fa1","async":true}
 *
 * on its message transport (the signalling WebSocket, or the `red5pro`
 * data channel once the SDK switched to it) and resolves its promise with
 * the `data` of the message that carries the same id and "async":true, or
 * rejects it with its `error`. This adapter takes the key through the
 * "webrtc-ws" service (so the protocol never knows about calls), hands the
 * call to the "rpc_router" service with the session's id, app and
 * username, and answers on the carrier the call came on.
 *
 * Only a conn with an admitted WebRTC session may call (callServer exists
 * only on publishers and subscribers): a socket that has no session yet is
 * answered with an error. Budgets are the router's (calls in flight per
 * client and per server, reply size, timeout); the socket's own message
 * size and rate caps come first. The router's answer always comes later
 * and exactly once: a call whose conn closed in between (or whose adapter
 * stopped) is an orphan whose answer is dropped. Loop thread only.
 */
#include "modules/rpc/rpc_json.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "app/core.h"
#include "app/services.h"
#include "app/svc/rpc_router.h"
#include "app/svc/webrtc_ws.h"
#include "base/alloc.h"
#include "base/list.h"
#include "base/log.h"
#include "base/str.h"
#include "sluice/errors.h"

#define RJ_KEY "callAdapter"
#define RJ_RETRY_MS 250        /* looking for the "webrtc-ws" service */
#define RJ_MAX_BYTES (1024u * 1024u) /* a message; the socket's own cap is smaller */

static const sl_log_ctx_t g_rjctx = {.proto = "rpc-json"};

/* One call in flight. */
typedef struct rj_call {
    struct sl_rpc_json *j;     /* NULL once the adapter stopped (orphan) */
    sl_wsig_conn_t *c;         /* borrowed; NULL once the conn closed (orphan) */
    sl_list_t link;            /* in j->calls while j is alive */
    int has_id;                /* the message had an id (string or number) */
    char id[SL_RPC_JSON_ID_MAX + 1]; /* as text */
    int id_is_num;             /* echo it back as a number */
} rj_call_t;

/* ---- parsing ---- */

void sl_rpc_json_call_cleanup(sl_rpc_json_call_t *c)
{
    if (!c)
        return;
    sl_free(c->params_json);
    c->params_json = NULL;
}

int sl_rpc_json_parse(const char *text, size_t len, sl_rpc_json_call_t *out)
{
    memset(out, 0, sizeof *out);
    if (!text || len > RJ_MAX_BYTES)
        return SL_ETOOBIG;
    json_error_t jerr;
    json_t *msg = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = SL_EINVAL;
    json_t *id = json_object_get(msg, "id");
    if (json_is_string(id) && json_string_length(id) <= SL_RPC_JSON_ID_MAX &&
        strlen(json_string_value(id)) == json_string_length(id)) {
        out->has_id = 1;
        snprintf(out->id, sizeof out->id, "%s", json_string_value(id));
    } else if (json_is_integer(id)) {
        out->has_id = 1;
        out->id_is_num = 1;
        snprintf(out->id, sizeof out->id, "%lld", (long long)json_integer_value(id));
    }
    json_t *body = json_object_get(msg, RJ_KEY);
    json_t *m = json_object_get(body, "method");
    const char *method = json_string_value(m);
    if (!json_is_object(body) || !method || !method[0] || strlen(method) != json_string_length(m) ||
        json_string_length(m) >= sizeof out->method)
        goto done;
    memcpy(out->method, method, json_string_length(m) + 1);
    json_t *a = json_object_get(body, "arguments");
    json_t *params = json_is_array(a) ? json_incref(a) : json_array();
    if (params && a && !json_is_array(a) && !json_is_null(a) && json_array_append(params, a)) {
        json_decref(params);
        params = NULL;
    }
    char *txt = params ? json_dumps(params, JSON_COMPACT) : NULL;
    json_decref(params);
    out->params_json = txt ? sl_strdup(txt) : NULL;
    free(txt); /* jansson's allocator */
    rc = out->params_json ? 0 : SL_ENOMEM;
done:
    json_decref(msg);
    return rc;
}

struct sl_rpc_json {
    sl_core_t *core;
    const sl_wsig_svc_t *ws;   /* NULL until found */
    void *ws_ud;
    int registered;
    uv_timer_t timer;
    sl_list_t calls;           /* rj_call_t in flight */
};

/* {"id":I,"async":true, data|error}: the SDK's async reply. */
static void reply(sl_rpc_json_t *j, sl_wsig_conn_t *c, const rj_call_t *call, json_t *data,
                  const char *error)
{
    json_t *o = json_object();
    if (!o) {
        json_decref(data);
        return;
    }
    if (call->has_id)
        json_object_set_new(o, "id", call->id_is_num ? json_integer(strtoll(call->id, NULL, 10))
                                                     : json_string(call->id));
    json_object_set_new(o, "async", json_true());
    if (error)
        json_object_set_new(o, "error", json_string(error));
    else
        json_object_set_new(o, "data", data ? data : json_null());
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(o);
    if (s)
        (void)j->ws->send(c, s, strlen(s)); /* closed or full: the client lost it */
    free(s); /* jansson's allocator */
}

static void on_answer(void *ud, int status, const char *result_json, const char *reason)
{
    rj_call_t *call = ud;
    sl_rpc_json_t *j = call->j;
    if (j) {
        sl_list_remove(&call->link);
        if (call->c) {
            if (status == 0) {
                json_t *r = json_loads(result_json ? result_json : "null", JSON_DECODE_ANY, NULL);
                reply(j, call->c, call, r, r ? NULL : "Reply is not JSON.");
            } else {
                reply(j, call->c, call, NULL, reason ? reason : sl_strerror(status));
            }
        }
    }
    sl_free(call);
}

/* The username the session connected with (its query), for the business server. */
static const char *username_of(const sl_session_t *s, char *buf, size_t cap)
{
    if (!s || !s->query)
        return NULL;
    return sl_query_get(s->query, "username", SL_QUERY_FIRST, buf, cap) > 0 ? buf : NULL;
}

static int on_message(sl_wsig_conn_t *c, const char *text, size_t len, void *ud)
{
    sl_rpc_json_t *j = ud;
    sl_rpc_json_call_t pc;
    int prc = sl_rpc_json_parse(text, len, &pc);
    rj_call_t *call = sl_calloc(1, sizeof *call);
    int rc = 0;
    if (!call || prc == SL_ENOMEM) {
        rc = SL_ENOMEM;
        goto done;
    }
    call->j = j;
    call->c = c;
    sl_list_init(&call->link);
    call->has_id = pc.has_id;
    call->id_is_num = pc.id_is_num;
    memcpy(call->id, pc.id, sizeof call->id);
    if (prc) {
        reply(j, c, call, NULL, "callAdapter needs {\"method\": name, \"arguments\": [...]}.");
        goto done;
    }
    sl_session_t *s = j->ws->session(c);
    if (!s) {
        reply(j, c, call, NULL, "Not connected: call after publishing or subscribing.");
        goto done;
    }
    void *rud = NULL;
    const sl_svc_rpc_router_t *r =
        sl_service_get(j->core, SL_SVC_RPC_ROUTER, SL_SVC_RPC_ROUTER_MAJOR, 0, &rud);
    char user[256];
    const sl_rpc_route_req_t req = {
        .app = s->app ? s->app : j->ws->scope(c),
        .session_id = s->id,
        .proto = j->ws->is_datachannel(c) ? "webrtc-dc" : "webrtc-ws",
        .username = username_of(s, user, sizeof user),
        .method = pc.method,
        .params_json = pc.params_json,
    };
    int rrc = r ? r->route(rud, &req, on_answer, call) : SL_ENOTFOUND;
    if (rrc == 0) {
        sl_list_push_back(&j->calls, &call->link);
        call = NULL; /* on_answer frees it */
        goto done;
    }
    SL_LOGD(&s->log, "rpc-json: %s refused: %s", pc.method, sl_strerror(rrc));
    reply(j, c, call, NULL, rrc == SL_ENOTFOUND ? "Method not found."
                            : rrc == SL_EBUSY   ? "Too many calls in flight."
                            : rrc == SL_ETOOBIG ? "Arguments too large."
                            : rrc == SL_EINVAL  ? "Invalid method or arguments."
                                                : sl_strerror(rrc));
done:
    sl_free(call);
    sl_rpc_json_call_cleanup(&pc);
    return rc;
}

static void on_close(sl_wsig_conn_t *c, void *ud)
{
    sl_rpc_json_t *j = ud;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &j->calls) {
        rj_call_t *call = sl_container_of(it, rj_call_t, link);
        if (call->c == c)
            call->c = NULL;
    }
}

static int try_register(sl_rpc_json_t *j)
{
    void *ud = NULL;
    const sl_wsig_svc_t *ws =
        sl_service_get(j->core, SL_WEBRTC_WS_SVC_NAME, SL_WEBRTC_WS_SVC_MAJOR, 1, &ud);
    if (!ws)
        return SL_ENOTFOUND;
    j->ws = ws;
    j->ws_ud = ud;
    const sl_wsig_handler_spec_t spec = {
        .key = RJ_KEY, .on_message = on_message, .on_close = on_close, .ud = j};
    int rc = ws->handler_add(ud, &spec);
    if (rc) {
        SL_LOGE(&g_rjctx, "rpc: cannot take the JSON message %s: %s", RJ_KEY, sl_strerror(rc));
        return rc;
    }
    j->registered = 1;
    SL_LOGI(&g_rjctx, "rpc: callServer (%s) taken on the WebSocket and data channels", RJ_KEY);
    return 0;
}

static void on_timer(uv_timer_t *t)
{
    sl_rpc_json_t *j = t->data;
    if (try_register(j) != SL_ENOTFOUND)
        uv_timer_stop(t); /* registered, or failed for good (logged) */
}

sl_rpc_json_t *sl_rpc_json_start(sl_core_t *core)
{
    sl_rpc_json_t *j = sl_calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->core = core;
    sl_list_init(&j->calls);
    uv_timer_init(core->loop, &j->timer);
    j->timer.data = j;
    uv_unref((uv_handle_t *)&j->timer);
    if (try_register(j) == SL_ENOTFOUND)
        uv_timer_start(&j->timer, on_timer, 0, RJ_RETRY_MS);
    return j;
}

static void timer_closed(uv_handle_t *h)
{
    sl_free(h->data);
}

void sl_rpc_json_stop(sl_rpc_json_t *j)
{
    if (!j)
        return;
    if (j->registered) {
        void *ud = NULL;
        const sl_wsig_svc_t *ws =
            sl_service_get(j->core, SL_WEBRTC_WS_SVC_NAME, SL_WEBRTC_WS_SVC_MAJOR, 1, &ud);
        if (ws == j->ws && ud == j->ws_ud) /* else it stopped first: its table is gone */
            ws->handler_remove(ud, RJ_KEY);
        j->registered = 0;
    }
    while (!sl_list_empty(&j->calls)) {
        rj_call_t *call = sl_container_of(j->calls.next, rj_call_t, link);
        sl_list_remove(&call->link);
        call->j = NULL; /* the router still answers it once: on_answer frees it */
        call->c = NULL;
    }
    uv_timer_stop(&j->timer);
    uv_close((uv_handle_t *)&j->timer, timer_closed);
}
