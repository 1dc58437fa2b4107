/*
 * The host side of the plugin ABI (see plugins.h): running the built-in
 * modules and the plugins of sluice.yml through one path, the host API
 * table every one of them receives, and the "rpc" service. Each running
 * extension is one `struct sl_host` (the opaque handle of host.h): its
 * configuration entry (a built-in's is made up: its name, every app, no
 * settings), its library (none for a built-in), its state, and what it
 * registered through the host (event listener, admission check, timers,
 * RPC methods, routes), so that stop can remove all of it before the
 * extension's own stop runs. Built-ins also reach the core and the HTTP
 * server (sl_host_core, sl_host_http: module.h).
 *
 * Handles given to plugins are internal objects under public names:
 * sl_admission_t is the core's sl_admit_t; sl_http_request_t a small
 * wrapper of a request of the "http" service and the route it came by
 * (which knows the app); sl_websocket_t a wrapper around sl_ws_t. Routes
 * go through the "http" service (src/app/svc/http.h), at the APP priority.
 *
 * Everything runs on the loop thread except the work callbacks of
 * work_queue and the log function, which a worker may call.
 */
#include "modules/plugins/plugins.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "app/admission.h"
#include "app/events.h"
#include "app/loader.h"
#include "app/services.h"
#include "app/svc/extensions.h"
#include "app/svc/http.h"
#include "app/svc/recorder.h"
#include "app/svc/rpc.h"
#include "app/svc/rpc_router.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/time.h"
#include "sluice/host.h"
#include "sluice/plugin.h"
#include "sluice/version.h"

/* The public event numbering is the bus's (host.h promises it never changes). */
_Static_assert(SL_PLUGIN_EV_CONNECT == (int)SL_EV_CONNECT, "event numbering");
_Static_assert(SL_PLUGIN_EV_RECORD_DELETED == (int)SL_EV_RECORD_DELETED, "event numbering");
_Static_assert(SL_PLUGIN_EV_ROOM_STOP == (int)SL_EV_ROOM_STOP, "event numbering");
_Static_assert(SL_PLUGIN_EV_PUSH_DOWN == (int)SL_EV_PUSH_DOWN, "event numbering");
_Static_assert(SL_PLUGIN_EV_PUSH_DOWN + 1 == (int)SL_EV_COUNT, "every bus event is public");
_Static_assert(SL_ADMISSION_PLAY == (int)SL_ADMIT_PLAY, "admission numbering");
_Static_assert(SL_PLUGIN_LOG_DEBUG == (int)SL_LOG_DEBUG, "log levels");

typedef struct sl_plugins plugins_t;

struct sl_host {
    plugins_t *mod;                  /* the host (borrowed back-pointer) */
    const sl_plugin_config_t *cfg;   /* its sluice.yml entry (borrowed from core->cfg), or
                                        &own_cfg for a built-in */
    const sl_builtin_t *builtin;     /* the built-in module, or NULL for a plugin */
    sl_plugin_config_t own_cfg;      /* a built-in's entry: its name, no apps (all), no settings */
    sl_plugin_lib_t lib;             /* the library (handle NULL when built in) and its
                                        descriptor copy */
    void *state;                     /* what init returned */
    int started;                     /* init succeeded: stop/destroy are due */
    int stopped;                     /* stop ran: no new registrations */
    int ev_id;                       /* event listener id, 0 when none */
    int admit_id;                    /* admission check id, 0 when none */
    sl_list_t timers;                /* struct sl_timer, live ones */
    sl_list_t invokes;               /* invoke_t waiting for a client's answer */
    char log_name[80];               /* "plugin:<name>" (a built-in: its name), the log
                                        lines' protocol field and the listener's name */
};

struct sl_timer {
    uv_timer_t uv;
    sl_host_t *h;
    sl_timer_fn cb;
    void *arg;
    sl_list_t link;                  /* in h->timers while running */
};

/* One registered route: /{app}{path} of one plugin. */
typedef struct route {
    sl_host_t *h;
    char app[SL_CONFIG_APP_NAME_MAX + 1];
    char *prefix;                    /* "/{app}{path}", owned */
    sl_http_route_t *handle;         /* from the http service, for route_remove */
    sl_http_handler_fn cb;           /* HTTP route, or */
    const sl_ws_handlers_t *ws;      /* WebSocket route (borrowed, static in the plugin) */
    void *ud;
} route_t;

struct sl_http_request {
    sl_http_req_t *req;              /* the service's request */
    route_t *r;                      /* the route it came by */
    int in_handler;                  /* inside the plugin's handler call */
    int answered;                    /* http_respond was called */
};

struct sl_websocket {
    sl_ws_t *ws;                     /* NULL once closed */
    route_t *r;
    void *conn;                      /* the plugin's per-connection state */
};

typedef struct rpc_method {
    char name[64];
    char *owner;                     /* owned */
    sl_rpc_method_cb cb;
    void *ud;
    sl_host_t *h;                    /* the plugin that registered it, or NULL */
} rpc_method_t;

struct sl_plugins {
    sl_core_t *core;
    sl_http_server_t *server;        /* the HTTP server for built-ins' routes, or NULL */
    int stopped;                     /* sl_plugins_stop ran */
    const sl_http_svc_t *http;       /* the "http" service once a route needed it, else NULL */
    void *http_ud;                   /* its state */
    sl_host_t **hosts;               /* n_hosts loaded plugins, in load order */
    size_t n_hosts;
    route_t **routes;                /* every route (freed at free: the server keeps pointers) */
    size_t n_routes;
    rpc_method_t *methods;           /* the RPC registry */
    size_t n_methods;
    int rpc_registered;
    int ext_registered;              /* the "extensions" service is ours */
};

typedef struct work {
    uv_work_t req;
    sl_work_fn work;
    sl_work_done_fn done;
    void *arg;
} work_t;

static const sl_host_api_t g_api;

/* ---- built-ins' access (module.h) -------------------------------------- */

/* The core; see module.h. */
sl_core_t *sl_host_core(sl_host_t *h) { return h->mod->core; }

/* The HTTP server or NULL; see module.h. */
sl_http_server_t *sl_host_http(sl_host_t *h) { return h->mod->server; }

/* ---- identity, settings, log ------------------------------------------ */

static const char *h_name(sl_host_t *h) { return h->cfg->name; }

static const char *h_setting(sl_host_t *h, const char *key)
{
    if (!key)
        return NULL;
    for (size_t i = 0; i < h->cfg->n_settings; i++)
        if (strcmp(h->cfg->settings[2 * i], key) == 0)
            return h->cfg->settings[2 * i + 1];
    return NULL;
}

/* 1 when app (a scope path: "live" or "live/room") is the plugin's. */
static int h_serves_app(sl_host_t *h, const char *app)
{
    if (!h->cfg->n_apps)
        return 1;
    if (!app)
        return 0;
    size_t len = strcspn(app, "/");
    for (size_t i = 0; i < h->cfg->n_apps; i++)
        if (strlen(h->cfg->apps[i]) == len && strncmp(h->cfg->apps[i], app, len) == 0)
            return 1;
    return 0;
}

static void h_log(sl_host_t *h, int level, const char *fmt, ...)
{
    if (level < SL_PLUGIN_LOG_ERROR)
        level = SL_PLUGIN_LOG_ERROR;
    if (level > SL_PLUGIN_LOG_DEBUG)
        level = SL_PLUGIN_LOG_DEBUG;
    if (!sl_log_enabled((sl_log_level_t)level))
        return;
    sl_log_ctx_t ctx = {.proto = h ? h->log_name : "plugin"};
    va_list ap;
    va_start(ap, fmt);
    sl_logv((sl_log_level_t)level, &ctx, fmt, ap);
    va_end(ap);
}

static void h_free(void *p) { sl_free(p); }

/* ---- admission --------------------------------------------------------- */

static int h_admission_info(sl_admission_t *pa, sl_admission_info_t *out)
{
    sl_admit_t *a = (sl_admit_t *)pa;
    if (!a || !out)
        return SL_EINVAL;
    const sl_admit_req_t *r = sl_admit_request(a);
    const sl_session_t *s = sl_admit_session(a);
    memset(out, 0, sizeof *out);
    out->size = sizeof *out;
    out->kind = (int)r->kind;
    out->app = r->app;
    out->stream = r->stream;
    out->transport = r->transport;
    out->query = r->query;
    out->username = r->username;
    out->password = r->password;
    out->token = r->token;
    out->publish_mode = r->publish_mode;
    out->remote_addr = s ? s->remote_addr : NULL;
    return 0;
}

static void h_admission_hold(sl_admission_t *a) { sl_admit_ref((sl_admit_t *)a); }

static void h_admission_resume(sl_admission_t *a, int result, const char *reason)
{
    if (result != SL_OK && result != SL_EDECLINED && result != SL_EDENIED)
        result = SL_EDENIED; /* a plugin's error refuses: admission fails closed */
    sl_admit_resume((sl_admit_t *)a, result, reason);
}

static void h_admission_set_reason(sl_admission_t *a, const char *reason)
{
    sl_admit_set_reason((sl_admit_t *)a, reason);
}

/* The check registered for a plugin with an admit callback. */
static int on_admit(sl_admit_t *a, void *ud)
{
    sl_host_t *h = ud;
    if (h->stopped || !h_serves_app(h, sl_admit_request(a)->app))
        return SL_EDECLINED;
    int rc = h->lib.desc.admit(h->state, (sl_admission_t *)a);
    if (rc != SL_OK && rc != SL_EDECLINED && rc != SL_EDENIED && rc != SL_EPENDING) {
        h_log(h, SL_PLUGIN_LOG_WARN, "admit returned %d (%s): refused", rc, sl_strerror(rc));
        sl_admit_set_reason(a, "refused");
        rc = SL_EDENIED;
    }
    return rc;
}

/* ---- events ------------------------------------------------------------ */

static void on_event(const sl_event_t *ev, void *ud)
{
    sl_host_t *h = ud;
    if (h->stopped || (ev->app && !h_serves_app(h, ev->app)))
        return;
    sl_plugin_event_t pe = {
        .size = sizeof pe,
        .type = (int)ev->type,
        .name = sl_event_name(ev->type),
        .id = ev->id,
        .time_ms = ev->time_ms,
        .session_id = ev->session_id,
        .proto = ev->proto,
        .remote_addr = ev->remote_addr,
        .remote_port = ev->remote_port,
        .app = ev->app,
        .stream = ev->stream,
        .reason = ev->reason,
        .query = ev->query,
        .path = ev->path,
        .bytes_in = ev->bytes_in,
        .bytes_out = ev->bytes_out,
        .duration_ms = ev->duration_ms,
        .method = ev->method,
        .direction = ev->direction,
        .status = ev->status,
    };
    h->lib.desc.on_event(h->state, &pe);
}

/* ---- timers and work --------------------------------------------------- */

static void timer_closed(uv_handle_t *uv) { sl_free(uv->data); }

static void on_timer(uv_timer_t *uv)
{
    struct sl_timer *t = uv->data;
    if (!uv_is_active((uv_handle_t *)uv)) /* one-shot: it is over once fired */
        sl_list_remove(&t->link), sl_list_init(&t->link);
    t->cb(t->arg);
    if (!sl_list_linked(&t->link) && !uv_is_closing((uv_handle_t *)uv))
        uv_close((uv_handle_t *)uv, timer_closed);
}

static int h_timer_start(sl_host_t *h, uint64_t timeout_ms, uint64_t repeat_ms, sl_timer_fn cb,
                         void *arg, sl_timer_t **out)
{
    if (!cb || h->stopped)
        return SL_EINVAL;
    struct sl_timer *t = sl_calloc(1, sizeof *t);
    if (!t)
        return SL_ENOMEM;
    t->h = h;
    t->cb = cb;
    t->arg = arg;
    uv_timer_init(h->mod->core->loop, &t->uv);
    t->uv.data = t;
    sl_list_push_back(&h->timers, &t->link);
    uv_timer_start(&t->uv, on_timer, timeout_ms, repeat_ms);
    if (out)
        *out = t;
    return 0;
}

/* Stops t; safe inside its callback (on_timer then closes nothing twice). */
static void h_timer_stop(sl_timer_t *t)
{
    if (!t || uv_is_closing((uv_handle_t *)&t->uv))
        return;
    if (sl_list_linked(&t->link))
        sl_list_remove(&t->link), sl_list_init(&t->link);
    uv_close((uv_handle_t *)&t->uv, timer_closed);
}

static void work_run(uv_work_t *req)
{
    work_t *w = req->data;
    w->work(w->arg);
}

static void work_after(uv_work_t *req, int status)
{
    work_t *w = req->data;
    if (w->done)
        w->done(w->arg, status == UV_ECANCELED ? SL_ECLOSED : 0);
    sl_free(w);
}

static int h_work_queue(sl_host_t *h, sl_work_fn fn, sl_work_done_fn done, void *arg)
{
    if (!fn)
        return SL_EINVAL;
    work_t *w = sl_calloc(1, sizeof *w);
    if (!w)
        return SL_ENOMEM;
    w->work = fn;
    w->done = done;
    w->arg = arg;
    w->req.data = w;
    int rc = uv_queue_work(h->mod->core->loop, &w->req, work_run, work_after);
    if (rc) {
        sl_free(w);
        return rc;
    }
    return 0;
}

/* ---- HTTP and WebSocket routes ----------------------------------------- */

/* The http service, looked up when a plugin adds its first route. */
static const sl_http_svc_t *http_svc(plugins_t *m)
{
    if (!m->http)
        m->http = sl_service_get(m->core, SL_HTTP_SVC_NAME, SL_HTTP_SVC_MAJOR, 0, &m->http_ud);
    return m->http;
}

static void ws_on_message(sl_ws_t *ws, const uint8_t *data, size_t len, int is_text, void *ud)
{
    (void)ws;
    struct sl_websocket *w = ud;
    if (w->r->ws->on_message)
        w->r->ws->on_message(w->r->ud, w->conn, w, (const char *)data, len, is_text);
}

static void ws_on_close(sl_ws_t *ws, void *ud)
{
    (void)ws;
    struct sl_websocket *w = ud;
    if (w->r->ws->on_close)
        w->r->ws->on_close(w->r->ud, w->conn, w);
    w->ws = NULL;
    sl_free(w);
}

static const sl_ws_ops_t g_ws_ops = {.on_message = ws_on_message, .on_close = ws_on_close};

static int h_http_info(sl_http_request_t *preq, sl_http_request_info_t *out);

/*
 * The service's handler for every plugin route. The plugin's request
 * handle is a small wrapper (request + route, for http_info's app) freed
 * when the plugin answers, or at once when its handler declines without
 * answering.
 */
static int on_route(sl_http_req_t *req, void *ud)
{
    route_t *r = ud;
    plugins_t *m = r->h->mod;
    if (r->h->stopped)
        return SL_EDECLINED;
    struct sl_http_request *w = sl_calloc(1, sizeof *w);
    if (!w)
        return SL_ENOMEM;
    w->req = req;
    w->r = r;
    if (r->cb) {
        w->in_handler = 1;
        int rc = r->cb(r->ud, w);
        w->in_handler = 0;
        int answered = w->answered;
        if (answered || rc) /* answered now, or declined/failed without answering */
            sl_free(w);
        return answered ? 0 : rc; /* 0 unanswered: the plugin answers later */
    }
    struct sl_websocket *ws = sl_calloc(1, sizeof *ws);
    if (!ws) {
        sl_free(w);
        return SL_ENOMEM;
    }
    ws->r = r;
    sl_http_request_info_t info;
    h_http_info(w, &info);
    int rc = m->http->ws_accept(req, &g_ws_ops, ws, &ws->ws);
    if (rc) {
        sl_free(ws);
        sl_free(w);
        return 0; /* answered (or the client left) */
    }
    /* The request strings stay valid until its response is complete: the
     * 101 is only queued, so on_open may read them (its contract: for the
     * call only). */
    if (r->ws->on_open && r->ws->on_open(r->ud, ws, &info, &ws->conn))
        m->http->ws_close(ws->ws, 1008, "refused");
    sl_free(w);
    return 0;
}

/* Adds /{app}{path} for every app the plugin serves; shared by http_route and ws_route. */
static int add_route(sl_host_t *h, const char *method, const char *path, sl_http_handler_fn cb,
                     const sl_ws_handlers_t *ws, void *ud)
{
    plugins_t *m = h->mod;
    if (!path || path[0] != '/' || strstr(path, "..") || strlen(path) > 256 || h->stopped)
        return SL_EINVAL;
    const sl_http_svc_t *svc = http_svc(m);
    if (!svc)
        return SL_ENOTFOUND;
    const sl_config_t *cfg = m->core->cfg;
    for (size_t i = 0; i < cfg->n_apps; i++) {
        const sl_app_config_t *app = &cfg->apps[i];
        if (!app->enabled || !h_serves_app(h, app->name))
            continue;
        route_t **grown = sl_realloc(m->routes, (m->n_routes + 1) * sizeof *grown);
        if (!grown)
            return SL_ENOMEM;
        m->routes = grown;
        route_t *r = sl_calloc(1, sizeof *r);
        size_t n = 1 + strlen(app->name) + strlen(path) + 1;
        char *prefix = r ? sl_malloc(n) : NULL;
        if (!prefix) {
            sl_free(r);
            return SL_ENOMEM;
        }
        snprintf(prefix, n, "/%s%s", app->name, path);
        snprintf(r->app, sizeof r->app, "%s", app->name);
        r->h = h;
        r->prefix = prefix;
        r->cb = cb;
        r->ws = ws;
        r->ud = ud;
        m->routes[m->n_routes++] = r;
        /* Prefixes match whole segments: /live/hello takes /live/hello and
         * /live/hello/x, not /live/helloworld. Plugins' routes stand with the
         * other app routes, before static files. */
        sl_http_route_spec_t spec = {
            .method = ws ? "GET" : method,
            .prefix = prefix,
            .prio = SL_HTTP_PRIO_APP,
            .name = h->log_name,
            .serves = "",
            .cb = on_route,
            .ud = r,
        };
        int rc = svc->route_add(m->http_ud, &spec, &r->handle);
        if (rc)
            return rc;
    }
    return 0;
}

static int h_http_route(sl_host_t *h, const char *method, const char *path, sl_http_handler_fn cb,
                        void *ud)
{
    if (!cb)
        return SL_EINVAL;
    return add_route(h, method, path, cb, NULL, ud);
}

static int h_ws_route(sl_host_t *h, const char *path, const sl_ws_handlers_t *handlers, void *ud)
{
    if (!handlers || handlers->size < sizeof(size_t))
        return SL_EINVAL;
    return add_route(h, "GET", path, NULL, handlers, ud);
}

static int h_http_info(sl_http_request_t *w, sl_http_request_info_t *out)
{
    if (!w || !out)
        return SL_EINVAL;
    const sl_http_svc_t *svc = w->r->h->mod->http;
    size_t body_len = 0;
    memset(out, 0, sizeof *out);
    out->size = sizeof *out;
    out->method = svc->req_method(w->req);
    out->path = svc->req_path(w->req);
    out->query = svc->req_query(w->req);
    out->app = w->r->app;
    out->subpath = out->path + 1 + strlen(w->r->app);
    out->body = svc->req_body(w->req, &body_len);
    out->body_len = body_len;
    out->remote_addr = svc->req_remote(w->req, NULL);
    return 0;
}

static const char *h_http_header(sl_http_request_t *w, const char *name)
{
    return w && name ? w->r->h->mod->http->req_header(w->req, name) : NULL;
}

static int h_http_respond(sl_http_request_t *w, int status, const char *content_type,
                          const void *body, size_t len)
{
    if (!w || w->answered)
        return SL_EINVAL;
    int rc = w->r->h->mod->http->respond(w->req, status, content_type, body, len, NULL);
    w->answered = 1;
    if (!w->in_handler) /* an answer from later: the handle ends here */
        sl_free(w);
    return rc;
}

static int h_ws_send(sl_websocket_t *w, const char *text, size_t len)
{
    if (!w || !w->ws)
        return SL_ECLOSED;
    return w->r->h->mod->http->ws_send(w->ws, text, len, 1);
}

static void h_ws_close(sl_websocket_t *w, int code, const char *reason)
{
    if (w && w->ws)
        w->r->h->mod->http->ws_close(w->ws, code, reason);
}

/* ---- statistics and actions -------------------------------------------- */

static const char *role_name(sl_role_t role)
{
    return role == SL_ROLE_PUBLISHER ? "publisher" : role == SL_ROLE_SUBSCRIBER ? "subscriber" : "none";
}

/* Dumps j (taken) into a string the plugin frees with api->free. */
static char *dump_owned(json_t *j)
{
    if (!j)
        return NULL;
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text)
        return NULL;
    char *out = sl_strdup(text);
    free(text); /* jansson's allocator, not ours */
    return out;
}

static char *h_stats_json(sl_host_t *h, const char *what)
{
    sl_core_t *core = h->mod->core;
    if (!what)
        return NULL;
    if (strcmp(what, "server") == 0) {
        return dump_owned(json_pack("{s:s, s:I, s:I, s:I, s:I}", "version", SL_VERSION_STRING,
                                    "uptime_ms", (json_int_t)(sl_time_wall_ms() - core->start_ms),
                                    "sessions", (json_int_t)core->n_sessions, "total_sessions",
                                    (json_int_t)core->total_sessions, "streams",
                                    (json_int_t)sl_hub_count(core->hub)));
    }
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    if (strcmp(what, "sessions") == 0) {
        sl_list_t *it, *nx;
        sl_list_foreach_safe(it, nx, &core->sessions)
        {
            sl_session_t *s = sl_container_of(it, sl_session_t, link);
            json_array_append_new(
                arr, json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s, s:I, s:I}", "id", s->id,
                               "proto", s->proto ? s->proto : "", "remote_addr", s->remote_addr,
                               "app", s->app, "stream", s->stream, "role", role_name(s->role),
                               "bytes_in", (json_int_t)s->bytes_in, "bytes_out",
                               (json_int_t)s->bytes_out));
        }
    } else if (strcmp(what, "streams") == 0) {
        size_t pos = 0;
        sl_stream_t *st;
        while ((st = sl_hub_next(core->hub, &pos)))
            json_array_append_new(arr, json_pack("{s:s, s:b, s:I}", "name", st->name,
                                                 "publishing", st->publisher != NULL,
                                                 "subscribers", (json_int_t)st->n_players));
    } else {
        json_decref(arr);
        return NULL;
    }
    return dump_owned(arr);
}

static int h_kick(sl_host_t *h, const char *session_id, const char *reason)
{
    sl_list_t *it, *nx;
    if (!session_id)
        return SL_EINVAL;
    sl_list_foreach_safe(it, nx, &h->mod->core->sessions)
    {
        sl_session_t *s = sl_container_of(it, sl_session_t, link);
        if (strcmp(s->id, session_id) == 0 && s->ops && s->ops->kick) {
            h_log(h, SL_PLUGIN_LOG_INFO, "kicks session %s", s->id);
            s->ops->kick(s, reason ? reason : "kicked by a plugin");
            return 0;
        }
    }
    return SL_ENOTFOUND;
}

static int h_unpublish(sl_host_t *h, const char *app, const char *stream)
{
    sl_list_t *it, *nx;
    if (!app || !stream)
        return SL_EINVAL;
    sl_list_foreach_safe(it, nx, &h->mod->core->sessions)
    {
        sl_session_t *s = sl_container_of(it, sl_session_t, link);
        if (s->role == SL_ROLE_PUBLISHER && s->app && s->stream && strcmp(s->app, app) == 0 &&
            strcmp(s->stream, stream) == 0 && s->ops && s->ops->kick) {
            h_log(h, SL_PLUGIN_LOG_INFO, "unpublishes %s/%s", app, stream);
            s->ops->kick(s, "unpublished by a plugin"); /* players get UnpublishNotify */
            return 0;
        }
    }
    return SL_ENOTFOUND;
}

/* "app/stream" into out; SL_EINVAL when it does not fit or a part is missing. */
static int stream_path(char *out, size_t cap, const char *app, const char *stream)
{
    if (!app || !stream || !app[0] || !stream[0])
        return SL_EINVAL;
    int n = snprintf(out, cap, "%s/%s", app, stream);
    return n < 0 || (size_t)n >= cap ? SL_EINVAL : 0;
}

/*
 * Recording goes through the service "recorder" 1.0 (src/app/svc/
 * recorder.h); SL_ENOTFOUND when no recorder runs, as host.h says.
 */
static int h_record_start(sl_host_t *h, const char *app, const char *stream, const char *saveas,
                          int append)
{
    void *ud;
    char path[512], name[512];
    const sl_svc_recorder_t *rec =
        sl_service_get(h->mod->core, SL_SVC_RECORDER, SL_SVC_RECORDER_MAJOR, 0, &ud);
    int rc = stream_path(path, sizeof path, app, stream);
    if (rc)
        return rc;
    if (!rec)
        return SL_ENOTFOUND;
    rc = rec->start(ud, path, saveas, append, name, sizeof name);
    if (rc == 0)
        h_log(h, SL_PLUGIN_LOG_INFO, "records %s as %s", path, name);
    return rc;
}

static int h_record_stop(sl_host_t *h, const char *app, const char *stream)
{
    void *ud;
    char path[512];
    const sl_svc_recorder_t *rec =
        sl_service_get(h->mod->core, SL_SVC_RECORDER, SL_SVC_RECORDER_MAJOR, 0, &ud);
    int rc = stream_path(path, sizeof path, app, stream);
    if (rc)
        return rc;
    if (!rec)
        return SL_ENOTFOUND;
    rc = rec->stop(ud, path);
    return rc == SL_EDENIED ? SL_ENOTFOUND : rc; /* not one of ours to stop: as not recording */
}

static const void *h_service_get(sl_host_t *h, const char *name, int major, int min_minor,
                                 void **ud)
{
    return sl_service_get(h->mod->core, name, major, min_minor, ud);
}

/* ---- the RPC registry (service "rpc" 1.0) ------------------------------ */

static rpc_method_t *rpc_find(plugins_t *m, const char *name)
{
    for (size_t i = 0; i < m->n_methods; i++)
        if (strcmp(m->methods[i].name, name) == 0)
            return &m->methods[i];
    return NULL;
}

static int rpc_add_for(plugins_t *m, sl_host_t *h, const char *method, const char *owner,
                       sl_rpc_method_cb cb, void *ud)
{
    if (!method || !method[0] || strlen(method) >= sizeof m->methods[0].name || !cb)
        return SL_EINVAL;
    if (rpc_find(m, method))
        return SL_EBUSY;
    rpc_method_t *grown = sl_realloc(m->methods, (m->n_methods + 1) * sizeof *grown);
    if (!grown)
        return SL_ENOMEM;
    m->methods = grown;
    rpc_method_t *r = &grown[m->n_methods];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", method);
    r->owner = sl_strdup(owner ? owner : "");
    if (!r->owner)
        return SL_ENOMEM;
    r->cb = cb;
    r->ud = ud;
    r->h = h;
    m->n_methods++;
    return 0;
}

static void rpc_remove_at(plugins_t *m, size_t i)
{
    sl_free(m->methods[i].owner);
    memmove(&m->methods[i], &m->methods[i + 1], (m->n_methods - i - 1) * sizeof m->methods[0]);
    m->n_methods--;
}

static int rpc_call(void *ud, const char *method, const char *args_json, sl_rpc_reply_cb reply,
                    void *reply_ud)
{
    plugins_t *m = ud;
    rpc_method_t *r = method ? rpc_find(m, method) : NULL;
    if (!r || !reply)
        return r ? SL_EINVAL : SL_ENOTFOUND;
    return r->cb(r->ud, method, args_json ? args_json : "null", reply, reply_ud);
}

static void rpc_each(void *ud, void (*each)(void *arg, const char *method, const char *owner),
                     void *arg)
{
    plugins_t *m = ud;
    for (size_t i = 0; i < m->n_methods; i++)
        each(arg, m->methods[i].name, m->methods[i].owner);
}

static int rpc_add(void *ud, const char *method, const char *owner, sl_rpc_method_cb cb,
                   void *cb_ud)
{
    return rpc_add_for(ud, NULL, method, owner, cb, cb_ud);
}

static void rpc_remove(void *ud, const char *method)
{
    plugins_t *m = ud;
    for (size_t i = 0; method && i < m->n_methods; i++)
        if (strcmp(m->methods[i].name, method) == 0) {
            rpc_remove_at(m, i);
            return;
        }
}

static const sl_rpc_service_t g_rpc = {
    .call = rpc_call, .each = rpc_each, .add = rpc_add, .remove = rpc_remove,
};

static int h_rpc_register(sl_host_t *h, const char *method, sl_rpc_handler_fn cb, void *ud)
{
    if (h->stopped)
        return SL_EINVAL;
    /* sl_rpc_handler_fn and sl_rpc_method_cb have the same shape (reply types match). */
    return rpc_add_for(h->mod, h, method, h->cfg->name, cb, ud);
}

static void h_rpc_unregister(sl_host_t *h, const char *method)
{
    plugins_t *m = h->mod;
    for (size_t i = 0; method && i < m->n_methods; i++)
        if (m->methods[i].h == h && strcmp(m->methods[i].name, method) == 0) {
            rpc_remove_at(m, i);
            return;
        }
}

/* ---- the table --------------------------------------------------------- */

/* ---- server -> client calls (ABI 1.3) ------------------------------------- */

/* One invoke_client waiting: the router's callback finds the plugin through it. */
typedef struct invoke {
    sl_host_t *h;                    /* NULL once the plugin stopped: the answer is dropped */
    sl_invoke_reply_fn reply;
    void *ctx;
    sl_list_t link;                  /* in h->invokes while h is set */
} invoke_t;

static void on_invoke_answer(void *ud, int status, const char *result_json, const char *reason)
{
    invoke_t *iv = ud;
    (void)reason;
    if (iv->h) {
        sl_list_remove(&iv->link);
        iv->reply(iv->ctx, status, result_json);
    }
    sl_free(iv);
}

static int h_invoke_client(sl_host_t *h, const char *session_id, const char *method,
                           const char *params_json, uint64_t timeout_ms, sl_invoke_reply_fn reply,
                           void *ctx)
{
    if (!reply || h->stopped)
        return SL_EINVAL;
    void *rud = NULL;
    const sl_svc_rpc_router_t *r = sl_service_get(h->mod->core, SL_SVC_RPC_ROUTER,
                                                  SL_SVC_RPC_ROUTER_MAJOR, 0, &rud);
    if (!r)
        return SL_EDECLINED;
    invoke_t *iv = sl_calloc(1, sizeof(*iv));
    if (!iv)
        return SL_ENOMEM;
    iv->h = h;
    iv->reply = reply;
    iv->ctx = ctx;
    int rc = r->invoke_client(rud, session_id, method, params_json, timeout_ms, on_invoke_answer, iv);
    if (rc) {
        sl_free(iv);
        return rc;
    }
    sl_list_push_back(&h->invokes, &iv->link);
    return 0;
}

static const sl_host_api_t g_api = {
    .abi_major = SL_ABI_MAJOR,
    .abi_minor = SL_ABI_MINOR,
    .size = sizeof(sl_host_api_t),
    .server_version = SL_VERSION_STRING,
    .name = h_name,
    .setting = h_setting,
    .serves_app = h_serves_app,
    .log = h_log,
    .strerror = sl_strerror,
    .free = h_free,
    .admission_info = h_admission_info,
    .admission_hold = h_admission_hold,
    .admission_resume = h_admission_resume,
    .admission_set_reason = h_admission_set_reason,
    .timer_start = h_timer_start,
    .timer_stop = h_timer_stop,
    .work_queue = h_work_queue,
    .http_route = h_http_route,
    .http_info = h_http_info,
    .http_header = h_http_header,
    .http_respond = h_http_respond,
    .ws_route = h_ws_route,
    .ws_send = h_ws_send,
    .ws_close = h_ws_close,
    .stats_json = h_stats_json,
    .kick = h_kick,
    .unpublish = h_unpublish,
    .record_start = h_record_start,
    .record_stop = h_record_stop,
    .service_get = h_service_get,
    .rpc_register = h_rpc_register,
    .rpc_unregister = h_rpc_unregister,
    .invoke_client = h_invoke_client,
};

/* ---- the host of every extension ---------------------------------------- */

/* The service "extensions": every extension whose init succeeded, in order. */
static void ext_each(void *ud, void (*each)(void *arg, const sl_extension_info_t *info),
                     void *arg)
{
    plugins_t *m = ud;
    for (size_t i = 0; i < m->n_hosts; i++) {
        const sl_host_t *h = m->hosts[i];
        if (!h->started)
            continue;
        const sl_extension_info_t info = {
            .name = h->cfg->name,
            .kind = h->builtin ? "builtin" : "plugin",
            .version = h->lib.desc.version,
            .description = h->lib.desc.description,
            .path = h->builtin ? NULL : h->cfg->path,
            .abi_major = h->lib.desc.abi_major,
            .abi_minor = h->lib.desc.abi_minor,
        };
        each(arg, &info);
    }
}

static const sl_svc_extensions_t g_extensions = {.each = ext_each};

/* Each plugin entry loads and passes the ABI check, and names existing apps. */
static int plugins_check(const sl_config_t *cfg, sl_config_err_cb err, void *ud)
{
    int n = 0;
    for (size_t i = 0; i < cfg->n_plugins; i++) {
        const sl_plugin_config_t *p = &cfg->plugins[i];
        char key[SL_CONFIG_APP_NAME_MAX + 16], why[1024];
        sl_plugin_lib_t lib;
        snprintf(key, sizeof key, "plugins.%s", p->name);
        if (sl_plugin_lib_open(p->path, &lib, why, sizeof why)) {
            sl_config_report(cfg, key, err, ud, "%s", why);
            n++;
        } else {
            sl_plugin_lib_close(&lib);
        }
        for (size_t j = 0; j < p->n_apps; j++)
            if (!sl_config_app(cfg, p->apps[j])) {
                sl_config_report(cfg, key, err, ud, "plugin %s names the app '%s', which does not exist",
                                 p->name, p->apps[j]);
                n++;
            }
    }
    return n;
}

/* The built-ins' checks in table order, then the plugins'; see plugins.h. */
int sl_plugins_check(const sl_config_t *cfg, const sl_builtin_t *const *builtins,
                     sl_config_err_cb err, void *ud)
{
    int n = 0;
    for (size_t i = 0; builtins && builtins[i]; i++)
        if (builtins[i]->check)
            n += builtins[i]->check(cfg, err, ud);
    return n + plugins_check(cfg, err, ud);
}

static void host_stop(sl_host_t *h)
{
    plugins_t *m = h->mod;
    if (!h->started || h->stopped)
        return;
    h->stopped = 1;
    if (h->ev_id > 0)
        sl_events_unsubscribe(m->core, h->ev_id);
    if (h->admit_id > 0)
        sl_admit_remove_check(m->core, h->admit_id);
    h->ev_id = h->admit_id = 0;
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &h->timers)
        h_timer_stop(sl_container_of(it, struct sl_timer, link));
    while (!sl_list_empty(&h->invokes)) { /* answers still due are dropped */
        invoke_t *iv = sl_container_of(h->invokes.next, invoke_t, link);
        sl_list_remove(&iv->link);
        iv->h = NULL;
    }
    for (size_t i = m->n_methods; i-- > 0;)
        if (m->methods[i].h == h)
            rpc_remove_at(m, i);
    for (size_t i = 0; i < m->n_routes; i++) /* no new request reaches a stopped plugin */
        if (m->routes[i]->h == h && m->routes[i]->handle && m->http) {
            m->http->route_remove(m->http_ud, m->routes[i]->handle);
            m->routes[i]->handle = NULL;
        }
    if (h->lib.desc.stop)
        h->lib.desc.stop(h->state);
}

/* Stops every started extension, plugins first; see plugins.h. */
void sl_plugins_stop(sl_plugins_t *m)
{
    if (!m || m->stopped)
        return;
    m->stopped = 1;
    for (size_t i = m->n_hosts; i-- > 0;)
        host_stop(m->hosts[i]);
    if (m->rpc_registered)
        sl_service_unregister(m->core, SL_RPC_SERVICE, &g_rpc);
    if (m->ext_registered)
        sl_service_unregister(m->core, SL_SVC_EXTENSIONS, &g_extensions);
    m->rpc_registered = m->ext_registered = 0;
}

/* destroy, dlclose, the records; see plugins.h. */
void sl_plugins_free(sl_plugins_t *m)
{
    if (!m)
        return;
    for (size_t i = m->n_hosts; i-- > 0;) {
        sl_host_t *h = m->hosts[i];
        if (h->started)
            h->lib.desc.destroy(h->state);
        sl_plugin_lib_close(&h->lib);
        sl_free(h);
    }
    sl_free(m->hosts);
    for (size_t i = 0; i < m->n_routes; i++) {
        sl_free(m->routes[i]->prefix);
        sl_free(m->routes[i]);
    }
    sl_free(m->routes);
    while (m->n_methods)
        rpc_remove_at(m, m->n_methods - 1);
    sl_free(m->methods);
    sl_free(m);
}

/*
 * Opens (a plugin: dlopen; a built-in: its descriptor as linked), checks
 * and starts one extension: builtin set, or pc for a plugin. The one path
 * of both kinds. 0, or an error logged loudly (startup fails).
 */
static int host_start(plugins_t *m, const sl_builtin_t *builtin, const sl_plugin_config_t *pc)
{
    char why[1024];
    sl_host_t *h = sl_calloc(1, sizeof *h);
    if (!h)
        return SL_ENOMEM;
    sl_host_t **grown = sl_realloc(m->hosts, (m->n_hosts + 1) * sizeof *grown);
    if (!grown) {
        sl_free(h);
        return SL_ENOMEM;
    }
    m->hosts = grown;
    m->hosts[m->n_hosts++] = h;
    h->mod = m;
    h->builtin = builtin;
    sl_list_init(&h->timers);
    sl_list_init(&h->invokes);
    int rc;
    if (builtin) {
        h->own_cfg.name = (char *)(builtin->plugin && builtin->plugin->name ? builtin->plugin->name
                                                                             : "(unnamed)");
        h->own_cfg.path = (char *)"(built in)";
        h->cfg = pc = &h->own_cfg;
        snprintf(h->log_name, sizeof h->log_name, "%s", pc->name);
        rc = sl_plugin_lib_builtin(builtin->plugin, &h->lib, why, sizeof why);
    } else {
        h->cfg = pc;
        snprintf(h->log_name, sizeof h->log_name, "plugin:%s", pc->name);
        rc = sl_plugin_lib_open(pc->path, &h->lib, why, sizeof why);
    }
    if (rc) {
        SL_LOGE(NULL, "%s", why);
        return rc;
    }
    const sl_plugin_t *d = &h->lib.desc;
    rc = d->init(&g_api, h, &h->state);
    if (rc) {
        if (builtin)
            SL_LOGE(NULL, "module %s failed to start: %s", pc->name, sl_strerror(rc));
        else
            SL_LOGE(NULL, "plugin %s (%s): init failed: %s", pc->name, pc->path, sl_strerror(rc));
        return rc < 0 ? rc : SL_EINVAL;
    }
    h->started = 1;
    if (d->on_event) {
        rc = sl_events_subscribe(m->core, h->log_name, SL_EV_PHASE_PLUGIN, on_event, h);
        if (rc < 0)
            return rc;
        h->ev_id = rc;
    }
    if (d->admit) {
        rc = sl_admit_add_check(m->core, h->log_name, SL_ADMIT_PHASE_PLUGIN, on_admit, h);
        if (rc < 0)
            return rc;
        h->admit_id = rc;
    }
    if (!builtin)
        SL_LOGI(NULL, "plugin %s loaded: %s %s (ABI %d.%d, host ABI %d.%d) from %s", pc->name,
                d->name, d->version ? d->version : "", d->abi_major, d->abi_minor, SL_ABI_MAJOR,
                SL_ABI_MINOR, pc->path);
    return 0;
}

/* The built-ins in table order, "rpc" and "extensions", then the plugins; see plugins.h. */
int sl_plugins_start(sl_core_t *core, sl_http_server_t *http, const sl_builtin_t *const *builtins,
                     sl_plugins_t **out)
{
    *out = NULL;
    plugins_t *m = sl_calloc(1, sizeof *m);
    if (!m)
        return SL_ENOMEM;
    m->core = core;
    m->server = http; /* built-ins' routes; plugins' go through the "http" service */
    *out = m; /* from here, the caller's stop/free clean up after a failure */
    int rc;
    for (size_t i = 0; builtins && builtins[i]; i++) {
        rc = host_start(m, builtins[i], NULL);
        if (rc)
            return rc;
    }
    /* After the built-ins (where the plugins module's start registered "rpc"
     * when it was the table's last line), before the plugins that use it. */
    rc = sl_service_register(core, SL_RPC_SERVICE, SL_RPC_SERVICE_MAJOR, SL_RPC_SERVICE_MINOR,
                             &g_rpc, m);
    if (rc)
        return rc;
    m->rpc_registered = 1;
    rc = sl_service_register(core, SL_SVC_EXTENSIONS, SL_SVC_EXTENSIONS_MAJOR,
                             SL_SVC_EXTENSIONS_MINOR, &g_extensions, m);
    if (rc)
        return rc;
    m->ext_registered = 1;
    for (size_t i = 0; core->cfg && i < core->cfg->n_plugins; i++) {
        rc = host_start(m, NULL, &core->cfg->plugins[i]);
        if (rc)
            return rc;
    }
    return 0;
}

/* See plugins.h. */
void *sl_plugins_state(sl_plugins_t *m, const char *name)
{
    for (size_t i = 0; m && name && i < m->n_hosts; i++)
        if (m->hosts[i]->started && strcmp(m->hosts[i]->cfg->name, name) == 0)
            return m->hosts[i]->state;
    return NULL;
}

/* The entry of new_cfg named name, or NULL. */
static const sl_plugin_config_t *entry_named(const sl_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_plugins; i++)
        if (strcmp(cfg->plugins[i].name, name) == 0)
            return &cfg->plugins[i];
    return NULL;
}

static int strv_equal(char *const *a, char *const *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(a[i], b[i]))
            return 0;
    return 1;
}

/*
 * The plugins' part of a reload (see sl_plugins_reload). A plugin follows
 * a reload when only its settings changed and it has a reload callback
 * (ABI 1.1): its handle then reads the new entry and its reload runs.
 * Anything else that changed in `plugins:` (a plugin added, removed, moved
 * to another file or other apps, settings of a plugin without reload)
 * needs a restart: SL_EAGAIN, nothing changed.
 */
static int reload_plugins(plugins_t *m, const sl_config_t *new_cfg)
{
    size_t n_plugins = 0;
    for (size_t i = 0; i < m->n_hosts; i++)
        n_plugins += !m->hosts[i]->builtin;
    if (new_cfg->n_plugins != n_plugins)
        return SL_EAGAIN;
    for (size_t i = 0; i < m->n_hosts; i++) {
        const sl_host_t *h = m->hosts[i];
        if (h->builtin)
            continue;
        const sl_plugin_config_t *n = entry_named(new_cfg, h->cfg->name);
        if (!n || strcmp(n->path, h->cfg->path) || n->n_apps != h->cfg->n_apps ||
            !strv_equal(n->apps, h->cfg->apps, n->n_apps))
            return SL_EAGAIN;
        int same = n->n_settings == h->cfg->n_settings &&
                   strv_equal(n->settings, h->cfg->settings, 2 * n->n_settings);
        if (!same && !h->lib.desc.reload)
            return SL_EAGAIN;
    }
    int rc = 0;
    for (size_t i = 0; i < m->n_hosts; i++) {
        sl_host_t *h = m->hosts[i];
        if (h->builtin)
            continue;
        const sl_plugin_config_t *n = entry_named(new_cfg, h->cfg->name);
        int same = n->n_settings == h->cfg->n_settings &&
                   strv_equal(n->settings, h->cfg->settings, 2 * n->n_settings);
        h->cfg = n; /* both configurations stay allocated until exit */
        if (same || h->stopped)
            continue;
        int r = h->lib.desc.reload(h->state);
        if (r) {
            h_log(h, SL_PLUGIN_LOG_WARN, "reload failed: %s", sl_strerror(r));
            rc = r < 0 ? r : SL_EINVAL;
        } else {
            h_log(h, SL_PLUGIN_LOG_INFO, "settings reloaded");
        }
    }
    return rc;
}

/* Built-ins' reload in table order, then the plugins'; see plugins.h. */
int sl_plugins_reload(sl_plugins_t *m, const sl_config_t *old_cfg, const sl_config_t *new_cfg,
                      void (*report)(void *ud, const char *name, int rc), void *ud)
{
    (void)old_cfg; /* each extension kept what it needs of the configuration it started with */
    int n = 0;
    if (!m)
        return 0;
    for (size_t i = 0; i < m->n_hosts; i++) {
        sl_host_t *h = m->hosts[i];
        if (!h->builtin || !h->started || h->stopped)
            continue;
        int rc = 0;
        if (!h->state) /* inert: its init may find work in the new configuration */
            rc = h->lib.desc.init(&g_api, h, &h->state);
        else if (h->lib.desc.reload)
            rc = h->lib.desc.reload(h->state);
        if (rc) {
            n++;
            if (report)
                report(ud, h->cfg->name, rc);
        }
    }
    int rc = reload_plugins(m, new_cfg);
    if (rc) {
        n++;
        if (report)
            report(ud, "plugins", rc);
    }
    return n;
}
