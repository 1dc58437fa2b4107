/*
 * The RPC module (see rpc.h): the router of client calls and the
 * server -> client invoke, with their budgets and events.
 *
 * A client call is a call_t on st->calls from route until its answer is
 * delivered. Its answer is always delivered from the call's own timer
 * (started with 0 ms once the answer is known), so the requester's
 * callback never runs inside route, even when a handler answers at once.
 * A handler registered in the "rpc" service cannot be cancelled: when a
 * call times out before its handler answers, the call is delivered
 * (timeout) but stays allocated until the handler's reply arrives (or the
 * module is freed), so the handler's reply_ud never dangles. It leaves its
 * client's count at delivery but the server's (rpc.max_calls) only when
 * freed: a handler that never replies ends up refusing new calls instead of
 * growing memory without bound.
 *
 * Requesters are never kept as pointers by this module: the RTMP side finds
 * its client again by session id when the answer comes (rtmp_rpc.c), the
 * API keeps its request (valid until answered).
 */
#include "modules/rpc/rpc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/core.h"
#include "app/events.h"
#include "app/services.h"
#include "app/svc/rpc.h"
#include "app/svc/rpc_router.h"
#include "base/alloc.h"
#include "base/assert.h"
#include "base/http_client.h"
#include "base/list.h"
#include "base/log.h"
#include "base/map.h"
#include "base/redact.h"
#include "base/time.h"
#include "modules/rpc/rpc_config.h"
#include "modules/rpc/rpc_json.h"
#include "sluice/errors.h"

#define MAX_METHOD_LEN 255
#define MAX_PARAMS_BYTES (1024u * 1024u) /* a call's arguments as JSON */
#define HTTP_SLACK_MS 1000               /* the call's timer decides; curl's timeout is a backstop */

typedef struct state state_t;

typedef enum {
    CALL_WAITING = 0, /* no answer yet */
    CALL_ANSWERED,    /* answer stored, delivery timer started */
    CALL_DELIVERED,   /* requester told; alive only for a handler that has not replied */
} call_phase_t;

/* One client -> server call. */
typedef struct call {
    state_t *st;
    sl_list_t link;              /* in st->calls until delivered */
    uv_timer_t timer;            /* timeout, then the 0 ms delivery */
    call_phase_t phase;
    int handler_pending;         /* a registered handler has the call and has not replied */
    int timer_closed;            /* the timer's close callback ran */
    sl_http_client_req_t *hreq;  /* the business server request, NULL when none */
    sl_rpc_route_cb cb;
    void *cb_ud;
    char sid[16];                /* caller's session id, "" for the API */
    const char *proto;           /* static string */
    char *app, *method;          /* owned */
    size_t max_reply;            /* the app's rpc_max_reply_bytes */
    uint64_t start_ms;           /* loop time at route */
    int status;                  /* the answer */
    char *result, *reason;       /* owned */
} call_t;

/* One server -> client invoke. */
typedef struct invoke {
    state_t *st;
    sl_list_t link;              /* in st->invokes */
    sl_rpc_route_cb cb;
    void *cb_ud;
    char sid[16];
    const char *proto;
    char *app, *method;          /* owned */
    uint64_t start_ms;
} invoke_t;

struct state {
    sl_core_t *core;
    sl_http_client_t *http;      /* owned */
    size_t http_max_reply;       /* the cap the client was made with */
    sl_list_t calls;             /* call_t not yet delivered */
    sl_list_t lingering;         /* call_t delivered, waiting for their handler's reply */
    sl_list_t invokes;           /* invoke_t waiting for the client */
    sl_map_t per_client;         /* session id -> calls in flight (uintptr_t) */
    size_t n_calls, n_invokes;
    int registered;
    int stopped;
    sl_rpc_json_t *json;         /* callServer over the WebSocket and data channels (owned) */
};

static const sl_svc_rpc_router_t g_router;

/* ------------------------------------------------------------------ */
/* wire format                                                         */

char *sl_rpc_business_body(const char *app, const char *session, const char *method,
                           const char *params_json, const char *username)
{
    json_t *params = params_json ? json_loads(params_json, JSON_DECODE_ANY, NULL) : json_array();
    if (!json_is_array(params)) {
        json_decref(params);
        return NULL;
    }
    json_t *o = json_pack("{s:s, s:o, s:s, s:o, s:o}", "app", app ? app : "", "session",
                          session && session[0] ? json_string(session) : json_null(), "method",
                          method ? method : "", "params", params, "username",
                          username && username[0] ? json_string(username) : json_null());
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    char *out = s ? sl_strdup(s) : NULL;
    free(s); /* jansson's allocator */
    return out;
}

/* The event's status word for an answer. */
static const char *status_word(int status)
{
    switch (status) {
    case 0: return "ok";
    case UV_ETIMEDOUT: return "timeout";
    case SL_ETOOBIG: return "too_big";
    case SL_ENOTFOUND: return "not_found";
    case SL_ECLOSED: return "closed";
    default: return "error";
    }
}

static void emit(state_t *st, const char *sid, const char *proto, const char *app,
                 const char *method, const char *direction, int status, const char *reason,
                 uint64_t start_ms)
{
    sl_event_t ev = {.type = SL_EV_RPC};
    sl_session_t *s = sid && sid[0] ? sl_core_find_session(st->core, sid) : NULL;
    ev.session_id = sid && sid[0] ? sid : NULL;
    ev.proto = proto;
    if (s) {
        ev.remote_addr = s->remote_addr;
        ev.remote_port = s->remote_port;
        ev.stream = s->stream;
    }
    ev.app = app;
    ev.method = method;
    ev.direction = direction;
    ev.status = status_word(status);
    ev.reason = status ? reason : NULL;
    uint64_t now = uv_now(st->core->loop);
    ev.duration_ms = now > start_ms ? now - start_ms : 0;
    sl_events_emit(st->core, &ev);
}

/* ------------------------------------------------------------------ */
/* client -> server calls                                              */

static void per_client_add(state_t *st, const char *sid, int delta)
{
    if (!sid[0])
        return;
    uintptr_t n = (uintptr_t)sl_map_get(&st->per_client, sid);
    n = delta > 0 ? n + 1 : (n ? n - 1 : 0);
    if (n)
        (void)sl_map_set(&st->per_client, sid, (void *)n); /* ENOMEM: the count is lost, safely */
    else
        sl_map_del(&st->per_client, sid);
}

static void call_free(call_t *c)
{
    sl_free(c->app);
    sl_free(c->method);
    sl_free(c->result);
    sl_free(c->reason);
    sl_free(c);
}

/* Frees a call that was counted in st->n_calls (every call past route's checks). */
static void call_destroy(call_t *c)
{
    c->st->n_calls--;
    sl_list_remove(&c->link);
    call_free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    call_t *c = h->data;
    c->timer_closed = 1;
    if (!c->handler_pending)
        call_destroy(c);
}

/* The requester has been told: off the live list; free once nothing refers to c. */
static void call_release(call_t *c)
{
    state_t *st = c->st;
    sl_list_remove(&c->link);
    sl_list_push_back(&st->lingering, &c->link);
    if (!uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

static void deliver(call_t *c)
{
    state_t *st = c->st;
    SL_ASSERT(c->phase == CALL_ANSWERED);
    c->phase = CALL_DELIVERED;
    per_client_add(st, c->sid, -1); /* st->n_calls drops when c is freed (see call_destroy) */
    sl_log_ctx_t log = {.sid = c->sid[0] ? c->sid : NULL, .proto = c->proto, .app = c->app};
    if (c->status)
        SL_LOGI(&log, "rpc: %s failed: %s", c->method, c->reason ? c->reason : sl_strerror(c->status));
    else
        SL_LOGD(&log, "rpc: %s answered (%zu bytes)", c->method, c->result ? strlen(c->result) : 0);
    c->cb(c->cb_ud, c->status, c->status ? NULL : c->result,
          c->status ? (c->reason ? c->reason : sl_strerror(c->status)) : NULL);
    emit(st, c->sid, c->proto, c->app, c->method, "in", c->status, c->reason, c->start_ms);
    call_release(c);
}

static void on_timer(uv_timer_t *t)
{
    call_t *c = t->data;
    if (c->phase == CALL_ANSWERED) {
        deliver(c);
        return;
    }
    /* The timeout. */
    if (c->hreq) {
        sl_http_client_cancel(c->hreq);
        c->hreq = NULL;
    }
    c->phase = CALL_ANSWERED;
    c->status = UV_ETIMEDOUT;
    char why[96];
    snprintf(why, sizeof why, "No answer within %llu ms.",
             (unsigned long long)(uv_now(c->st->core->loop) - c->start_ms));
    c->reason = sl_strdup(why);
    deliver(c);
}

/*
 * Stores the answer (result: a JSON text, checked here; reason: static or
 * copied) and schedules its delivery. Once per call; later answers are
 * dropped.
 */
static void answer(call_t *c, int status, const char *result, size_t len, const char *reason)
{
    if (c->phase != CALL_WAITING)
        return;
    if (!status) {
        json_t *j = len > c->max_reply ? NULL : json_loadb(result, len, JSON_DECODE_ANY, NULL);
        if (len > c->max_reply) {
            status = SL_ETOOBIG;
            reason = "Reply too large.";
        } else if (!j) {
            status = SL_EIO;
            reason = "Reply is not JSON.";
        }
        json_decref(j);
    }
    c->phase = CALL_ANSWERED;
    c->status = status;
    if (!status && !(c->result = sl_strndup(result, len))) {
        c->status = SL_ENOMEM;
        reason = "Out of memory.";
    }
    if (reason)
        c->reason = sl_strdup(reason);
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, on_timer, 0, 0);
}

/* The "rpc" service's reply: exactly once per call a handler took. */
static void on_handler_reply(void *ud, int status, const char *result_json)
{
    call_t *c = ud;
    c->handler_pending = 0;
    if (c->phase == CALL_WAITING) {
        if (status == 0) {
            const char *r = result_json ? result_json : "null";
            answer(c, 0, r, strlen(r), NULL);
        } else {
            char why[160];
            snprintf(why, sizeof why, "%.150s", result_json && result_json[0] ? result_json
                                                : sl_strerror(status));
            answer(c, SL_EIO, NULL, 0, why);
        }
        return;
    }
    if (c->phase == CALL_DELIVERED && c->timer_closed)
        call_destroy(c); /* from st->lingering */
    /* ANSWERED (a timeout being delivered), or DELIVERED with the timer
     * still closing: the timer's close callback frees it. */
}

static void on_business(int status, const char *body, size_t len, void *ud)
{
    call_t *c = ud;
    c->hreq = NULL;
    char why[128];
    if (status == UV_ETIMEDOUT) {
        answer(c, UV_ETIMEDOUT, NULL, 0, "The business server did not answer in time.");
    } else if (status == SL_ETOOBIG) {
        answer(c, SL_ETOOBIG, NULL, 0, "Reply too large.");
    } else if (status < 0) {
        snprintf(why, sizeof why, "The business server is unreachable (%s).", sl_strerror(status));
        answer(c, SL_EIO, NULL, 0, why);
    } else if (status < 200 || status >= 300) {
        snprintf(why, sizeof why, "The business server answered HTTP %d.", status);
        answer(c, SL_EIO, NULL, 0, why);
    } else {
        answer(c, 0, body, len, NULL);
    }
}

static int route(void *ud, const sl_rpc_route_req_t *req, sl_rpc_route_cb cb, void *cb_ud)
{
    state_t *st = ud;
    if (!req || !req->app || !req->method || !req->method[0] || strlen(req->method) > MAX_METHOD_LEN ||
        !cb)
        return SL_EINVAL;
    if (st->stopped)
        return SL_ECLOSED;
    const char *params = req->params_json ? req->params_json : "[]";
    if (strlen(params) > MAX_PARAMS_BYTES)
        return SL_ETOOBIG;
    const sl_app_config_t *app = sl_core_app(st->core, req->app);
    if (!app)
        return SL_ENOTFOUND;
    const sl_rpc_app_config_t *acfg = sl_rpc_app_cfg(app);
    const char *sid = req->session_id ? req->session_id : "";
    const char *proto = req->proto ? req->proto : "api";
    if (st->n_calls >= (size_t)sl_rpc_cfg(st->core->cfg)->max_calls ||
        (sid[0] && (uintptr_t)sl_map_get(&st->per_client, sid) >=
                       (uintptr_t)acfg->rpc_max_calls_per_client)) {
        emit(st, sid, proto, req->app, req->method, "in", SL_EBUSY, "Too many calls in flight.",
             uv_now(st->core->loop));
        return SL_EBUSY;
    }

    call_t *c = sl_calloc(1, sizeof(*c));
    if (!c)
        return SL_ENOMEM;
    c->st = st;
    c->cb = cb;
    c->cb_ud = cb_ud;
    snprintf(c->sid, sizeof c->sid, "%s", sid);
    c->proto = proto;
    c->app = sl_strdup(req->app);
    c->method = sl_strdup(req->method);
    c->max_reply = (size_t)acfg->rpc_max_reply_bytes;
    c->start_ms = uv_now(st->core->loop);
    if (!c->app || !c->method) {
        call_free(c);
        return SL_ENOMEM;
    }
    uv_timer_init(st->core->loop, &c->timer);
    c->timer.data = c;
    sl_list_push_back(&st->calls, &c->link);
    st->n_calls++;
    per_client_add(st, c->sid, +1);
    uv_timer_start(&c->timer, on_timer, (uint64_t)acfg->rpc_timeout_ms, 0);

    /* (a) a registered handler */
    void *rpc_ud = NULL;
    const sl_rpc_service_t *rpc = sl_service_get(st->core, SL_RPC_SERVICE, SL_RPC_SERVICE_MAJOR, 0,
                                                 &rpc_ud);
    int rc = SL_ENOTFOUND;
    if (rpc) {
        c->handler_pending = 1;
        rc = rpc->call(rpc_ud, req->method, params, on_handler_reply, c);
        if (rc)
            c->handler_pending = 0;
    }
    if (rc == 0)
        return 0;
    if (rc != SL_ENOTFOUND) {
        char why[128];
        snprintf(why, sizeof why, "The handler refused the call (%s).", sl_strerror(rc));
        answer(c, SL_EIO, NULL, 0, why);
        return 0;
    }
    /* (b) the business server */
    const char *url = acfg->rpc_url;
    if (!url || !url[0]) {
        rc = SL_ENOTFOUND;
        goto undo;
    }
    if (c->max_reply > st->http_max_reply)
        c->max_reply = st->http_max_reply; /* raised by a reload: the client's cap holds */
    char *body = sl_rpc_business_body(req->app, c->sid, req->method, params, req->username);
    if (!body) {
        rc = SL_EINVAL;
        goto undo;
    }
    rc = sl_http_client_post_json(st->http, url, body, (uint64_t)acfg->rpc_timeout_ms + HTTP_SLACK_MS,
                                  NULL, on_business, c, &c->hreq);
    sl_free(body);
    if (rc) {
        char why[128];
        snprintf(why, sizeof why, "Cannot call the business server (%s).", sl_strerror(rc));
        answer(c, SL_EIO, NULL, 0, why);
    }
    return 0;
undo:
    /* Nothing answers this call: refuse it now, with no callback. */
    if (rc == SL_ENOTFOUND)
        emit(st, c->sid, c->proto, c->app, c->method, "in", rc, "Method not found.", c->start_ms);
    per_client_add(st, c->sid, -1);
    c->phase = CALL_DELIVERED;
    call_release(c); /* freed (and uncounted) when its timer has closed */
    return rc;
}

/* ------------------------------------------------------------------ */
/* server -> client invokes                                            */

static void invoke_free(invoke_t *iv)
{
    sl_list_remove(&iv->link);
    sl_free(iv->app);
    sl_free(iv->method);
    sl_free(iv);
}

static void on_client_answer(void *ud, int status, const char *result_json)
{
    invoke_t *iv = ud;
    state_t *st = iv->st;
    const char *reason = NULL;
    switch (status) {
    case 0: break;
    case SL_EDENIED: reason = "The client answered with an error."; break;
    case UV_ETIMEDOUT: reason = "The client did not answer in time."; break;
    case SL_ECLOSED: reason = "The client disconnected."; break;
    default: reason = sl_strerror(status); break;
    }
    st->n_invokes--;
    iv->cb(iv->cb_ud, status, result_json, reason);
    emit(st, iv->sid, iv->proto, iv->app, iv->method, "out", status, reason, iv->start_ms);
    invoke_free(iv);
}

static int invoke_client(void *ud, const char *session_id, const char *method,
                         const char *params_json, uint64_t timeout_ms, sl_rpc_route_cb cb,
                         void *cb_ud)
{
    state_t *st = ud;
    if (!session_id || !method || !method[0] || strlen(method) > MAX_METHOD_LEN || !cb ||
        timeout_ms == 0 || timeout_ms > 300000)
        return SL_EINVAL;
    if (st->stopped)
        return SL_ECLOSED;
    sl_session_t *s = sl_core_find_session(st->core, session_id);
    if (!s)
        return SL_ENOTFOUND;
    if (!s->ops || !s->ops->invoke)
        return SL_EDECLINED;
    if (st->n_invokes >= (size_t)sl_rpc_cfg(st->core->cfg)->max_invokes)
        return SL_EBUSY;
    invoke_t *iv = sl_calloc(1, sizeof(*iv));
    if (!iv)
        return SL_ENOMEM;
    sl_list_init(&iv->link);
    iv->st = st;
    iv->cb = cb;
    iv->cb_ud = cb_ud;
    snprintf(iv->sid, sizeof iv->sid, "%s", s->id);
    iv->proto = s->proto;
    iv->app = s->app ? sl_strdup(s->app) : NULL;
    iv->method = sl_strdup(method);
    iv->start_ms = uv_now(st->core->loop);
    if ((s->app && !iv->app) || !iv->method) {
        invoke_free(iv);
        return SL_ENOMEM;
    }
    int rc = s->ops->invoke(s, method, params_json ? params_json : "[]", timeout_ms,
                            on_client_answer, iv);
    if (rc) {
        invoke_free(iv);
        return rc;
    }
    sl_list_push_back(&st->invokes, &iv->link);
    st->n_invokes++;
    SL_LOGD(&s->log, "rpc: invoking %s on the client", method);
    return 0;
}

static const sl_svc_rpc_router_t g_router = {
    .route = route,
    .invoke_client = invoke_client,
};

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */

static void stop(void *state)
{
    state_t *st = state;
    if (!st || st->stopped)
        return;
    st->stopped = 1;
    sl_rpc_json_stop(st->json); /* its calls still in flight become orphans, answered below */
    st->json = NULL;
    if (st->registered)
        sl_service_unregister(st->core, SL_SVC_RPC_ROUTER, &g_router);
    st->registered = 0;
    /* Calls still waiting are answered now. */
    while (!sl_list_empty(&st->calls)) {
        call_t *c = sl_container_of(st->calls.next, call_t, link);
        if (c->hreq) {
            sl_http_client_cancel(c->hreq);
            c->hreq = NULL;
        }
        if (c->phase == CALL_WAITING) {
            c->phase = CALL_ANSWERED;
            c->status = SL_ECLOSED;
            c->reason = sl_strdup("Server shutting down.");
        }
        deliver(c); /* moves it to lingering and closes its timer */
    }
    /* Invokes end with their clients (the protocols answer SL_ECLOSED). */
    if (st->http)
        sl_http_client_close(st->http, 0, NULL, NULL);
}

static void free_state(void *state)
{
    state_t *st = state;
    if (!st)
        return;
    /* Calls whose handler never replied (the timers are closed by now). */
    while (!sl_list_empty(&st->lingering))
        call_destroy(sl_container_of(st->lingering.next, call_t, link));
    while (!sl_list_empty(&st->invokes))
        invoke_free(sl_container_of(st->invokes.next, invoke_t, link));
    sl_map_cleanup(&st->per_client);
    sl_http_client_free(st->http);
    sl_free(st);
}

/* The largest rpc_max_reply_bytes of any app: the HTTP client's cap. */
static size_t max_reply_of(const sl_config_t *cfg)
{
    size_t m = 16;
    for (size_t i = 0; i < cfg->n_apps; i++) {
        size_t v = (size_t)sl_rpc_app_cfg(&cfg->apps[i])->rpc_max_reply_bytes;
        if (v > m)
            m = v;
    }
    return m;
}

static int start(const sl_host_api_t *api, sl_host_t *h, void **out)
{
    (void)api;
    sl_core_t *core = sl_host_core(h);
    *out = NULL;
    state_t *st = sl_calloc(1, sizeof(*st));
    if (!st)
        return SL_ENOMEM;
    st->core = core;
    sl_list_init(&st->calls);
    sl_list_init(&st->lingering);
    sl_list_init(&st->invokes);
    sl_map_init(&st->per_client);
    st->http_max_reply = max_reply_of(core->cfg);
    /* One byte over the largest cap, so that "too big" is told apart from "exactly the cap". */
    sl_http_client_opts_t o = {.max_response_bytes = st->http_max_reply + 1};
    int rc = sl_http_client_new(core->loop, &o, &st->http);
    if (rc)
        goto fail;
    rc = sl_service_register(core, SL_SVC_RPC_ROUTER, SL_SVC_RPC_ROUTER_MAJOR,
                             SL_SVC_RPC_ROUTER_MINOR, &g_router, st);
    if (rc)
        goto fail;
    st->registered = 1;
    st->json = sl_rpc_json_start(core);
    if (!st->json) {
        rc = SL_ENOMEM;
        goto fail;
    }
    *out = st;
    return 0;
fail:
    stop(st);
    free_state(st);
    return rc;
}

/*
 * Settings are read at each call, so a reload needs nothing, except a
 * larger rpc_max_reply_bytes than the HTTP client was made with: that
 * needs a restart (until then the old cap holds).
 */
static int reload(void *state)
{
    state_t *st = state;
    if (st && max_reply_of(st->core->cfg) > st->http_max_reply)
        return SL_EAGAIN;
    return 0;
}

/* rpc_url, when set, must be an http:// or https:// URL. */
static int check_config(const sl_config_t *cfg, sl_config_err_cb err, void *ud)
{
    int n = 0;
    for (size_t i = 0; i < cfg->n_apps; i++) {
        const char *url = sl_rpc_app_cfg(&cfg->apps[i])->rpc_url;
        if (url && url[0] && !((strncmp(url, "http://", 7) == 0 && url[7]) ||
                               (strncmp(url, "https://", 8) == 0 && url[8]))) {
            char key[SL_CONFIG_APP_NAME_MAX + 24];
            snprintf(key, sizeof key, "apps.%s.rpc_url", cfg->apps[i].name);
            sl_config_report(cfg, key, err, ud, "'%.200s' is not an http:// or https:// URL", url);
            n++;
        }
    }
    return n;
}

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI,
    .name = "rpc",
    .description = "client calls to handlers or the business server, and server calls to clients",
    .init = start,
    .stop = stop,
    .destroy = free_state,
    .reload = reload,
};

const sl_builtin_t sl_rpc_builtin = {
    .plugin = &plugin,
    .config = &sl_rpc_config_section,
    .check = check_config,
};
