/*
 * Round Trip Authentication (see auth_roundtrip.h): the admission check,
 * the validate/invalidate calls and the bookkeeping between them.
 *
 * Bookkeeping: every request in flight is a call_t on st->calls, so stop
 * can answer or cancel it and free can release what the HTTP client
 * dropped at close. Validations answered yes are remembered per session
 * id (st->validated: id -> record_t with the distinct bodies validated),
 * and undone on that session's disconnect event. Sessions are only ever
 * found again by id (sl_core_find_session), never by a kept pointer,
 * because the client may be gone by the time an answer arrives.
 */
#include "modules/auth_roundtrip/auth_roundtrip.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app/admission.h"
#include "app/core.h"
#include "app/events.h"
#include "base/alloc.h"
#include "base/http_client.h"
#include "base/list.h"
#include "base/log.h"
#include "base/redact.h"
#include "base/map.h"
#include "modules/auth_common.h"
#include "sluice/errors.h"
#include "modules/auth_config.h"

#define REASON_DENIED "Authentication failed."
#define REASON_UNAVAILABLE "Authentication service unavailable."
#define MAX_SHUTDOWN_DRAIN_MS 2000   /* invalidations sent at shutdown get this long */
#define MAX_BODIES_PER_SESSION 16    /* distinct validations remembered per client */

typedef struct state state_t;

typedef enum { CALL_VALIDATE, CALL_INVALIDATE } call_kind_t;

/* One request in flight. */
typedef struct call {
    state_t *st;
    call_kind_t kind;
    sl_http_client_req_t *hreq;  /* NULL once answered or cancelled */
    sl_admit_t *a;               /* validate, not lazy: the check's reference */
    int lazy;                    /* validate in lazy mode: kick on no */
    int detached;                /* its session is not registered (a WebSocket used only for
                                    shared objects): no disconnect event will come, so the
                                    validation is not remembered for an invalidate */
    char sid[16];                /* the client's session id */
    const char *proto;           /* its protocol (a static string), for logs */
    char *body;                  /* the JSON sent (owned) */
    char *app, *stream;          /* for log lines once the session is gone (owned) */
    sl_list_t link;              /* in st->calls */
} call_t;

/* The validations of one session answered yes. */
typedef struct record {
    char *bodies[MAX_BODIES_PER_SESSION]; /* owned */
    int n;
} record_t;

struct state {
    sl_core_t *core;
    sl_http_client_t *http;   /* owned */
    int check_id;             /* 0 once removed */
    int listener_id;          /* 0 once removed */
    sl_list_t calls;          /* call_t in flight */
    sl_map_t validated;       /* session id -> record_t* */
    int stopped;
};

/* ------------------------------------------------------------------ */
/* wire format                                                         */

char *sl_auth_roundtrip_body(const char *username, const char *password, const char *token,
                             int publisher, const char *stream)
{
    /* Keys in Red5's order (jansson keeps insertion order). */
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "username", username ? username : "",
                          "password", password ? password : "", "token", token ? token : "",
                          "type", publisher ? "publisher" : "subscriber", "streamID",
                          stream ? stream : "");
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    char *out = s ? sl_strdup(s) : NULL;
    free(s); /* jansson's allocator */
    return out;
}

sl_rt_verdict_t sl_auth_roundtrip_decide(int status, const char *body, size_t len, char **url)
{
    if (url)
        *url = NULL;
    if (status < 100 || status >= 500)
        return SL_RT_FAILED;
    if (status < 200 || status >= 300)
        return SL_RT_DENY; /* a deliberate refusal (401, 403, ...) */
    /* Duplicate keys are refused: {"result":false,"result":true} must not be
     * read as whichever copy jansson keeps (the last), since the business
     * server (or a proxy before it) may have meant the first. */
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *r = json_object_get(o, "result");
    int yes = json_is_true(r) || (json_is_string(r) && strcasecmp(json_string_value(r), "true") == 0);
    if (yes && url) {
        const char *u = json_string_value(json_object_get(o, "url"));
        if (u && u[0])
            *url = sl_strdup(u);
    }
    json_decref(o);
    return yes ? SL_RT_ALLOW : SL_RT_DENY;
}

/* ------------------------------------------------------------------ */
/* calls                                                               */

static void call_free(call_t *c)
{
    sl_list_remove(&c->link);
    sl_free(c->body);
    sl_free(c->app);
    sl_free(c->stream);
    sl_free(c);
}

/* A log context naming the call's client (valid while c lives). */
static sl_log_ctx_t call_log(const call_t *c)
{
    return (sl_log_ctx_t){.sid = c->sid, .proto = c->proto, .app = c->app, .stream = c->stream};
}

static call_t *call_new(state_t *st, call_kind_t kind, const char *sid, const char *app,
                        const char *stream, const char *body)
{
    call_t *c = sl_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    sl_list_init(&c->link);
    c->st = st;
    c->kind = kind;
    snprintf(c->sid, sizeof c->sid, "%s", sid ? sid : "");
    c->body = sl_strdup(body);
    c->app = app ? sl_strdup(app) : NULL;
    c->stream = stream ? sl_strdup(stream) : NULL;
    if (!c->body || (app && !c->app) || (stream && !c->stream)) {
        call_free(c);
        return NULL;
    }
    sl_list_push_back(&st->calls, &c->link);
    return c;
}

static void on_invalidate(int status, const char *body, size_t len, void *ud)
{
    call_t *c = ud;
    sl_log_ctx_t log = call_log(c);
    c->hreq = NULL;
    char rb[256], ab[256];
    if (status >= 200 && status < 300) {
        snprintf(ab, sizeof ab, "%.*s", (int)(len > 200 ? 200 : len), body ? body : "");
        SL_LOGI(&log, "round trip: invalidate answered HTTP %d: %s", status,
                sl_redact(ab, rb, sizeof rb));
    }
    else if (status > 0)
        SL_LOGW(&log, "round trip: invalidate answered HTTP %d", status);
    else
        SL_LOGW(&log, "round trip: invalidate failed: %s", sl_strerror(status));
    call_free(c);
}

/* POSTs body to the invalidate URL, if one is set; fire and forget. */
static void send_invalidate(state_t *st, const char *sid, const char *app, const char *stream,
                            const char *body)
{
    const char *url = sl_auth_cfg(st->core->cfg)->roundtrip_invalidate_url;
    if (!url || !url[0])
        return;
    sl_log_ctx_t log = {.sid = sid, .app = app, .stream = stream};
    call_t *c = call_new(st, CALL_INVALIDATE, sid, app, stream, body);
    int rc = c ? sl_http_client_post_json(st->http, url, body,
                                          (uint64_t)sl_auth_cfg(st->core->cfg)->roundtrip_timeout_ms, NULL,
                                          on_invalidate, c, &c->hreq)
               : SL_ENOMEM;
    if (rc) {
        SL_LOGW(&log, "round trip: cannot send invalidate: %s", sl_strerror(rc));
        if (c)
            call_free(c);
        return;
    }
    SL_LOGD(&log, "round trip: invalidate sent");
}

/* Remembers a yes for the session's disconnect; distinct bodies only. */
static void remember(state_t *st, const call_t *c)
{
    record_t *r = sl_map_get(&st->validated, c->sid);
    if (!r) {
        if (!(r = sl_calloc(1, sizeof(*r))))
            goto nomem;
        if (sl_map_set(&st->validated, c->sid, r)) {
            sl_free(r);
            goto nomem;
        }
    }
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->bodies[i], c->body) == 0)
            return;
    if (r->n == MAX_BODIES_PER_SESSION) {
        sl_log_ctx_t log = call_log(c);
        SL_LOGW(&log, "round trip: %d validations on one connection; not all will be invalidated",
                MAX_BODIES_PER_SESSION);
        return;
    }
    if (!(r->bodies[r->n] = sl_strdup(c->body)))
        goto nomem;
    r->n++;
    return;
nomem:;
    sl_log_ctx_t log = call_log(c);
    SL_LOGE(&log, "round trip: out of memory; this client will not be invalidated");
}

static void record_free(record_t *r)
{
    for (int i = 0; i < r->n; i++)
        sl_free(r->bodies[i]);
    sl_free(r);
}

/* Sends the invalidations of one session and forgets it. */
static void invalidate_session(state_t *st, const char *sid, const char *app, const char *stream)
{
    record_t *r = sl_map_del(&st->validated, sid);
    if (!r)
        return;
    for (int i = 0; i < r->n; i++)
        send_invalidate(st, sid, app, stream, r->bodies[i]);
    record_free(r);
}

static void on_validate(int status, const char *body, size_t len, void *ud)
{
    call_t *c = ud;
    state_t *st = c->st;
    const sl_config_t *cfg = st->core->cfg;
    sl_log_ctx_t log = call_log(c);
    c->hreq = NULL;
    char *url = NULL;
    sl_rt_verdict_t v = sl_auth_roundtrip_decide(status, body, len, &url);
    int allow = v == SL_RT_ALLOW || (v == SL_RT_FAILED && sl_auth_cfg(cfg)->roundtrip_default == 1);
    const char *reason = v == SL_RT_DENY ? REASON_DENIED : REASON_UNAVAILABLE;
    if (v == SL_RT_FAILED && status > 0)
        SL_LOGW(&log, "round trip: validate failed (HTTP %d); default: %s", status,
                allow ? "allow" : "deny");
    else if (v == SL_RT_FAILED)
        SL_LOGW(&log, "round trip: validate failed (%s); default: %s", sl_strerror(status),
                allow ? "allow" : "deny");
    else if (v == SL_RT_ALLOW)
        SL_LOGI(&log, "round trip: validate answered yes (HTTP %d)", status);
    else /* a refusal: WARN, once per admission, like the other auth checks */
        SL_LOGW(&log, "round trip: refused: validate answered no (HTTP %d)", status);

    /* Is the client still there? A non-lazy admission knows (cancelled =
     * gone); a lazy one is looked up by id. */
    sl_session_t *s = c->a ? sl_admit_session(c->a) : sl_core_find_session(st->core, c->sid);
    if (v == SL_RT_ALLOW) {
        if (s) {
            if (!c->detached)
                remember(st, c);
        } else {
            SL_LOGI(&log, "round trip: client left before the answer; invalidating");
            send_invalidate(st, c->sid, c->app, c->stream, c->body);
        }
    }
    if (c->a) {
        if (allow && url)
            sl_admit_set_note(c->a, "url", url);
        sl_admit_resume(c->a, allow ? SL_OK : SL_EDENIED, allow ? NULL : reason);
        c->a = NULL;
    } else if (!allow && s && s->ops && s->ops->kick) {
        SL_LOGW(&log, "round trip (lazy): disconnecting the client: %s", reason);
        s->ops->kick(s, reason); /* emits its disconnect event at once */
    }
    sl_free(url);
    call_free(c);
}

/* ------------------------------------------------------------------ */
/* admission and events                                                */

static int check(sl_admit_t *a, void *ud)
{
    state_t *st = ud;
    const sl_admit_req_t *req = sl_admit_request(a);
    const sl_config_t *cfg = st->core->cfg;
    if (req->kind == SL_ADMIT_CONNECT || !sl__auth_app_for(a, offsetof(sl_auth_app_config_t, auth_roundtrip)))
        return SL_EDECLINED;
    sl_session_t *s = sl_admit_session(a);
    /* Red5 validates a shared object connect as a publisher (streamID = the object). */
    int publisher = req->kind == SL_ADMIT_PUBLISH || req->kind == SL_ADMIT_SO_CONNECT;
    char *body = sl_auth_roundtrip_body(req->username, req->password, req->token, publisher, req->stream);
    call_t *c = body ? call_new(st, CALL_VALIDATE, s ? s->id : "", req->app, req->stream, body) : NULL;
    sl_free(body);
    if (!c)
        return SL_ENOMEM;
    c->lazy = sl_auth_cfg(cfg)->roundtrip_lazy;
    c->detached = s && !s->core;
    c->proto = s ? s->proto : NULL;
    if (!c->lazy)
        c->a = sl_admit_ref(a);
    int rc = sl_http_client_post_json(st->http, sl_auth_cfg(cfg)->roundtrip_validate_url, c->body,
                                      (uint64_t)sl_auth_cfg(cfg)->roundtrip_timeout_ms, NULL, on_validate, c,
                                      &c->hreq);
    if (rc) {
        /* Could not even ask: the configured default, now. */
        sl_log_ctx_t log = call_log(c);
        int allow = sl_auth_cfg(cfg)->roundtrip_default == 1;
        SL_LOGW(&log, "round trip: cannot send validate: %s; default: %s", sl_strerror(rc),
                allow ? "allow" : "deny");
        if (c->a)
            sl_admit_unref(c->a);
        call_free(c);
        if (allow)
            return SL_OK;
        sl_admit_set_reason(a, REASON_UNAVAILABLE);
        return SL_EDENIED;
    }
    SL_LOGD(s ? &s->log : NULL, "round trip: validating %s%s", publisher ? "publisher" : "subscriber",
            c->lazy ? " (lazy)" : "");
    return c->lazy ? SL_OK : SL_EPENDING;
}

static void on_event(const sl_event_t *ev, void *ud)
{
    state_t *st = ud;
    if (ev->type == SL_EV_DISCONNECT && ev->session_id)
        invalidate_session(st, ev->session_id, ev->app, ev->stream);
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */

static void stop(void *state)
{
    state_t *st = state;
    if (!st || st->stopped)
        return;
    st->stopped = 1;
    if (st->check_id > 0)
        sl_admit_remove_check(st->core, st->check_id);
    if (st->listener_id > 0)
        sl_events_unsubscribe(st->core, st->listener_id);
    st->check_id = st->listener_id = 0;
    /* Validations still waiting are answered now (the clients are about
     * to be disconnected anyway). */
    sl_list_t *it, *nx;
    sl_list_foreach_safe(it, nx, &st->calls) {
        call_t *c = sl_container_of(it, call_t, link);
        if (c->kind != CALL_VALIDATE)
            continue;
        sl_http_client_cancel(c->hreq);
        c->hreq = NULL;
        if (c->a)
            sl_admit_resume(c->a, SL_EDENIED, "Server shutting down.");
        call_free(c);
    }
    /* Clients still connected leave with the server: undo their
     * validations as a disconnect would, then give those calls a moment. */
    size_t pos = 0;
    sl_map_entry_t *e;
    while ((e = sl_map_next(&st->validated, &pos))) {
        record_t *r = e->val;
        for (int i = 0; i < r->n; i++)
            send_invalidate(st, e->key, NULL, NULL, r->bodies[i]);
        record_free(r);
    }
    sl_map_cleanup(&st->validated);
    sl_map_init(&st->validated);
    uint64_t drain = (uint64_t)sl_auth_cfg(st->core->cfg)->roundtrip_timeout_ms;
    if (st->http)
        sl_http_client_close(st->http, drain < MAX_SHUTDOWN_DRAIN_MS ? drain : MAX_SHUTDOWN_DRAIN_MS,
                             NULL, NULL);
}

static void free_state(void *state)
{
    state_t *st = state;
    if (!st)
        return;
    /* Calls the client cancelled at close never called back. */
    while (!sl_list_empty(&st->calls)) {
        call_t *c = sl_container_of(st->calls.next, call_t, link);
        if (c->a)
            sl_admit_unref(c->a);
        call_free(c);
    }
    size_t pos = 0;
    sl_map_entry_t *e;
    while ((e = sl_map_next(&st->validated, &pos)))
        record_free(e->val);
    sl_map_cleanup(&st->validated);
    sl_http_client_free(st->http);
    sl_free(st);
}

static int start(const sl_host_api_t *api, sl_host_t *h, void **out)
{
    sl_core_t *core = sl_host_core(h);
    (void)api;
    *out = NULL;
    const sl_config_t *cfg = core->cfg;
    const char *used_by = NULL;
    for (size_t i = 0; i < cfg->n_apps && !used_by; i++)
        if (cfg->apps[i].enabled && sl_auth_app_cfg(&cfg->apps[i])->auth_roundtrip)
            used_by = cfg->apps[i].name;
    if (!used_by)
        return 0;
    if (!sl_auth_cfg(cfg)->roundtrip_validate_url || !sl_auth_cfg(cfg)->roundtrip_validate_url[0]) {
        SL_LOGE(NULL, "round trip: app %s has auth_roundtrip on but auth.roundtrip_validate_url is not set",
                used_by);
        return SL_EINVAL;
    }
    state_t *st = sl_calloc(1, sizeof(*st));
    if (!st)
        return SL_ENOMEM;
    st->core = core;
    sl_list_init(&st->calls);
    sl_map_init(&st->validated);
    int rc = sl_http_client_new(core->loop, NULL, &st->http);
    if (rc)
        goto fail;
    rc = sl_admit_add_check(core, "auth_roundtrip", SL_ADMIT_PHASE_REMOTE, check, st);
    if (rc < 0)
        goto fail;
    st->check_id = rc;
    rc = sl_events_subscribe(core, "auth_roundtrip", SL_EV_PHASE_STATE, on_event, st);
    if (rc < 0)
        goto fail;
    st->listener_id = rc;
    char rb1[SL_REDACT_MAX], rb2[SL_REDACT_MAX];
    SL_LOGI(NULL, "round trip: validate %s, invalidate %s, timeout %lld ms, default %s%s",
            sl_redact(sl_auth_cfg(cfg)->roundtrip_validate_url, rb1, sizeof rb1),
            sl_auth_cfg(cfg)->roundtrip_invalidate_url[0]
                ? sl_redact(sl_auth_cfg(cfg)->roundtrip_invalidate_url, rb2, sizeof rb2) : "(none)",
            (long long)sl_auth_cfg(cfg)->roundtrip_timeout_ms, sl_auth_cfg(cfg)->roundtrip_default ? "allow" : "deny",
            sl_auth_cfg(cfg)->roundtrip_lazy ? ", lazy" : "");
    *out = st;
    return 0;
fail:
    stop(st);
    free_state(st); /* the client frees itself once its handles are closed */
    return rc;
}

/*
 * No reload callback: the URLs, timeout, default and lazy switch are read
 * from core->cfg at each call, so a running module has nothing to re-read
 * (calls in flight finish against the old URL). Inert until now, the host
 * runs start (the init) again at a reload, which starts it when an app
 * turned auth_roundtrip on.
 */

/* True when url starts with http:// or https:// and names something after it. */
static int is_http_url(const char *url)
{
    return (strncmp(url, "http://", 7) == 0 && url[7]) || (strncmp(url, "https://", 8) == 0 && url[8]);
}

/*
 * --check-config and start: an app with auth_roundtrip on needs
 * auth.roundtrip_validate_url; both endpoints, when set, must be http:// or
 * https:// URLs (libcurl would otherwise fail each call at run time and the
 * configured default would silently decide every admission).
 */
static int check_config(const sl_config_t *cfg, sl_config_err_cb err, void *ud)
{
    const char *used_by = NULL;
    int n = 0;
    for (size_t i = 0; i < cfg->n_apps && !used_by; i++)
        if (cfg->apps[i].enabled && sl_auth_app_cfg(&cfg->apps[i])->auth_roundtrip)
            used_by = cfg->apps[i].name;
    const char *urls[2] = {sl_auth_cfg(cfg)->roundtrip_validate_url, sl_auth_cfg(cfg)->roundtrip_invalidate_url};
    const char *keys[2] = {"auth.roundtrip_validate_url", "auth.roundtrip_invalidate_url"};
    for (int i = 0; i < 2; i++) {
        if (urls[i] && urls[i][0] && !is_http_url(urls[i])) {
            sl_config_report(cfg, keys[i], err, ud, "'%.200s' is not an http:// or https:// URL",
                             urls[i]);
            n++;
        }
    }
    if (used_by && (!urls[0] || !urls[0][0])) {
        char key[SL_CONFIG_APP_NAME_MAX + 24];
        snprintf(key, sizeof key, "apps.%s.auth_roundtrip", used_by);
        sl_config_report(cfg, key, err, ud, "is on but auth.roundtrip_validate_url is not set");
        n++;
    }
    return n;
}

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI,
    .name = "auth_roundtrip",
    .description = "admission by a call to the business's server",
    .init = start,
    .stop = stop,
    .destroy = free_state,
};

const sl_builtin_t sl_auth_roundtrip_builtin = {
    .plugin = &plugin,
    .config = &sl_auth_config_section,
    .check = check_config,
};
