/*
 * The webhooks module (see webhooks.h): configuration, the event-bus
 * listener on the loop thread, and the deliveries API. The outbox and its
 * threads are in webhooks_outbox.c.
 *
 * On the loop, an event costs one test of the event mask, one app lookup
 * and one allocation (the event and its strings copied into a single
 * block) plus a mutex to queue it; everything else (JSON, SQLite, HTTP)
 * happens on the module's threads or the store's worker.
 *
 * API, under the Server API's access rule and envelope (api.c does the
 * token and address checks before calling us):
 *   GET  /api/v1/webhooks/deliveries[?state=pending|retrying|delivered&limit=N]
 *   GET  /api/v1/webhooks/deliveries/{id}
 *   POST /api/v1/webhooks/deliveries/{id}/redeliver
 */
#include "modules/webhooks/webhooks.h"

#include <curl/curl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/services.h"
#include "app/svc/cluster.h"
#include "app/store.h"
#include "app/svc/api.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/redact.h"
#include "base/str.h"
#include "base/time.h"
#include "modules/webhooks/webhooks_internal.h"
#include "proto/http/http.h"
#include "sluice/errors.h"
#include "modules/webhooks/webhooks_config.h"

#define API_DEFAULT_LIMIT 100
#define API_MAX_LIMIT 1000
#define MAX_ENDPOINTS 256       /* distinct webhook URLs across the configuration */

static const sl_log_ctx_t g_ctx = {.proto = "webhooks"};

/* The "api" service (envelope answers), set when the endpoints are added;
 * the handlers run only after that. A static const table of the API's. */
static const sl_svc_api_t *g_api;

/* The module as the host holds it (its plugin state). */
typedef struct wh_module {
    sl_core_t *core;  /* borrowed */
    sl_webhooks_t *w; /* the running webhooks, NULL while inert */
} wh_module_t;

/* ------------------------------------------------------------------ */
/* the listener (loop thread)                                          */

static void on_event(const sl_event_t *ev, void *ud)
{
    sl_webhooks_t *w = ud;
    if ((unsigned)ev->type >= SL_EV_COUNT || !(w->mask & (1u << ev->type)))
        return;
    const sl_app_config_t *app = ev->app ? sl_core_app(w->core, ev->app) : NULL;
    if (!w->n_global && !(app && sl_webhooks_app_cfg(app)->webhook_url && sl_webhooks_app_cfg(app)->webhook_url[0]))
        return;
    /* One block: the item, then its strings. */
    const char *strs[8] = {ev->session_id, ev->proto, ev->remote_addr, ev->app,
                           ev->stream,     ev->reason, ev->query,     ev->path};
    size_t total = sizeof(sl_wh_item_t);
    for (int i = 0; i < 8; i++)
        if (strs[i])
            total += strlen(strs[i]) + 1;
    sl_wh_item_t *it = sl_malloc(total);
    if (!it) {
        SL_LOGE(&g_ctx, "webhooks: out of memory: %s event %llu not sent", sl_event_name(ev->type),
                (unsigned long long)ev->id);
        return;
    }
    memset(it, 0, sizeof *it);
    it->ev = *ev;
    it->app = app;
    const char **dst[8] = {&it->ev.session_id, &it->ev.proto, &it->ev.remote_addr, &it->ev.app,
                           &it->ev.stream,     &it->ev.reason, &it->ev.query,     &it->ev.path};
    char *p = (char *)(it + 1);
    for (int i = 0; i < 8; i++) {
        if (!strs[i]) {
            *dst[i] = NULL;
            continue;
        }
        size_t n = strlen(strs[i]) + 1;
        memcpy(p, strs[i], n);
        *dst[i] = p;
        p += n;
    }
    uv_mutex_lock(&w->mu);
    int full = w->n_queued >= SL_WEBHOOKS_MAX_QUEUED;
    /* Logged once when the queue fills and once when it takes events again,
     * not once per event: the writer is stuck because the disk is, and a
     * line per refused event would make that worse. */
    int became_full = full && !w->queue_full;
    uint64_t dropped_while_full = 0;
    if (!full) {
        if (w->queue_full) {
            dropped_while_full = w->n_dropped - w->n_dropped_logged;
            w->n_dropped_logged = w->n_dropped;
        }
        w->queue_full = 0;
        if (w->tail)
            w->tail->next = it;
        else
            w->head = it;
        w->tail = it;
        w->n_queued++;
        uv_cond_signal(&w->writer_cv);
    } else {
        w->queue_full = 1;
        w->n_dropped++;
    }
    uv_mutex_unlock(&w->mu);
    if (dropped_while_full)
        SL_LOGW(&g_ctx, "webhooks: outbox queue accepts events again; %llu events were not sent",
                (unsigned long long)dropped_while_full);
    if (full) {
        /* The writer is stuck (disk full or dead); shed rather than grow. */
        if (became_full)
            SL_LOGE(&g_ctx, "webhooks: outbox queue full (%d events): events are not sent until "
                    "the outbox can be written (first: %s event %llu)", SL_WEBHOOKS_MAX_QUEUED,
                    sl_event_name(ev->type), (unsigned long long)ev->id);
        sl_free(it);
    }
}

/* ------------------------------------------------------------------ */
/* the API (loop thread; SQL on the store's worker)                    */

typedef enum { API_LIST, API_GET, API_REDELIVER } api_kind_t;

typedef struct {
    sl_webhooks_t *w;
    sl_http_req_t *req;
    api_kind_t kind;
    char state[16];              /* list filter, "" = all */
    int limit;
    char id[SL_WEBHOOKS_ID_MAX];
    /* result */
    int status;                  /* 200, or an HTTP error */
    const char *msg;             /* static error text */
    json_t *data;                /* owned until answered */
} api_work_t;

#define ROW_COLUMNS                                                                           \
    "id, event, endpoint, state, attempts, last_status, last_error, created, next_attempt," \
    " delivered_at"

static json_t *int_or_null(sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return json_null();
    return json_integer((json_int_t)sqlite3_column_int64(st, col));
}

static json_t *text_or_null(sqlite3_stmt *st, int col)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    return s ? json_string((const char *)s) : json_null();
}

/* The API object of the row st is on (columns in ROW_COLUMNS order). */
static json_t *row_json(sqlite3_stmt *st)
{
    const char *state = (const char *)sqlite3_column_text(st, 3);
    int delivered = state && strcmp(state, "delivered") == 0;
    return json_pack("{s:o, s:o, s:o, s:o, s:I, s:o, s:o, s:o, s:o, s:o}",
                     "id", text_or_null(st, 0), "event", text_or_null(st, 1),
                     "endpoint", text_or_null(st, 2), "state", text_or_null(st, 3),
                     "attempts", (json_int_t)sqlite3_column_int64(st, 4),
                     "last_status", int_or_null(st, 5), "last_error", text_or_null(st, 6),
                     "created", int_or_null(st, 7),
                     "next_attempt", delivered ? json_null() : int_or_null(st, 8),
                     "delivered_at", int_or_null(st, 9));
}

/* Fills a->data with one delivery, or sets a 404. */
static void fetch_one(api_work_t *a, sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT " ROW_COLUMNS " FROM webhook_deliveries WHERE id = ?1", -1,
                           &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        a->data = row_json(st);
        a->status = a->data ? 200 : 500;
    } else if (rc == SQLITE_DONE) {
        a->status = 404;
        a->msg = "No such delivery.";
    } else {
        goto fail;
    }
    sqlite3_finalize(st);
    return;
fail:
    SL_LOGW(&g_ctx, "webhooks api: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    a->status = 500;
    a->msg = "The outbox cannot be read.";
}

static void api_list(api_work_t *a, sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    const char *sql = a->state[0]
        ? "SELECT " ROW_COLUMNS " FROM webhook_deliveries WHERE state = ?1 ORDER BY seq DESC LIMIT ?2"
        : "SELECT " ROW_COLUMNS " FROM webhook_deliveries ORDER BY seq DESC LIMIT ?2";
    json_t *arr = json_array();
    if (!arr || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        goto fail;
    if (a->state[0])
        sqlite3_bind_text(st, 1, a->state, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, a->limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (json_array_append_new(arr, row_json(st)))
            goto fail;
    if (rc != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    a->data = arr;
    a->status = 200;
    return;
fail:
    SL_LOGW(&g_ctx, "webhooks api: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    json_decref(arr);
    a->status = 500;
    a->msg = "The outbox cannot be read.";
}

static void api_redeliver(api_work_t *a, sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "UPDATE webhook_deliveries SET state = 'pending',"
                           " next_attempt = CASE WHEN next_attempt = ?2 THEN ?2 + 1 ELSE ?2 END,"
                           " delivered_at = NULL WHERE id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)sl_time_wall_ms());
    if (sqlite3_step(st) != SQLITE_DONE)
        goto fail;
    int changed = sqlite3_changes(db);
    sqlite3_finalize(st);
    if (!changed) {
        a->status = 404;
        a->msg = "No such delivery.";
        return;
    }
    sl__webhooks_wake_senders(a->w);
    SL_LOGI(&g_ctx, "webhooks: delivery %s re-queued through the API", a->id);
    fetch_one(a, db);
    return;
fail:
    SL_LOGW(&g_ctx, "webhooks api: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    a->status = 500;
    a->msg = "The outbox cannot be written.";
}

static int api_work(sqlite3 *db, void *arg)
{
    api_work_t *a = arg;
    if (a->kind == API_LIST)
        api_list(a, db);
    else if (a->kind == API_GET)
        fetch_one(a, db);
    else
        api_redeliver(a, db);
    return 0;
}

static void api_done(void *arg, int status)
{
    api_work_t *a = arg;
    if (status == 0 && a->status == 200) {
        g_api->ok(a->req, a->data); /* steals data */
        a->data = NULL;
    } else {
        g_api->err(a->req, status ? 500 : a->status, a->msg ? a->msg : "Internal error.");
    }
    json_decref(a->data);
    sl_free(a);
}

/* Splits the path after /api/v1/ into at most max segments; returns the count. */
static int split_segments(char *path, char **seg, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(path, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
        if (n == max)
            return max + 1;
        seg[n++] = tok;
    }
    return n;
}

static int api_handler(sl_http_req_t *req, void *ud);

/*
 * Adds /api/v1/webhooks/ through the "api" service (w may be NULL: the
 * inert module lists nothing). No API running (HTTP off): nothing to add.
 */
static int add_api_route(sl_core_t *core, sl_webhooks_t *w)
{
    void *api_ud;
    const sl_svc_api_t *api = sl_service_get(core, SL_SVC_API, SL_SVC_API_MAJOR, 0, &api_ud);
    if (!api)
        return 0;
    g_api = api;
    return api->add_route(api_ud, "webhooks", api_handler, w);
}

static int api_handler(sl_http_req_t *req, void *ud)
{
    sl_webhooks_t *w = ud;
    char path[1024];
    const char *p = req->path;
    if (strncmp(p, "/api/v1/", 8) != 0 || strlen(p) >= sizeof path)
        return g_api->err(req, 404, "No such API endpoint.");
    snprintf(path, sizeof path, "%s", p + 8);
    char *seg[5];
    int n = split_segments(path, seg, 4);
    int is_get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    int is_post = strcmp(req->method, "POST") == 0;
    if (n < 2 || n > 4 || strcmp(seg[0], "webhooks") != 0 || strcmp(seg[1], "deliveries") != 0)
        return g_api->err(req, 404, "No such API endpoint.");
    api_work_t *a = sl_calloc(1, sizeof(*a));
    if (!a)
        return g_api->err(req, 503, "Out of memory.");
    a->w = w;
    a->req = req;
    if (n == 2 && is_get) {
        a->kind = API_LIST;
        a->limit = API_DEFAULT_LIMIT;
        char val[32];
        if (sl_http_query_get(req->query, "state", a->state, sizeof a->state) < 0)
            a->state[0] = '\0';
        if (a->state[0] && strcmp(a->state, "pending") != 0 &&
            strcmp(a->state, "retrying") != 0 && strcmp(a->state, "delivered") != 0) {
            sl_free(a);
            return g_api->err(req, 400, "state must be pending, retrying or delivered.");
        }
        if (sl_http_query_get(req->query, "limit", val, sizeof val) >= 0) {
            char *end = NULL;
            long v = strtol(val, &end, 10);
            if (!val[0] || *end || v < 1 || v > API_MAX_LIMIT) {
                sl_free(a);
                return g_api->err(req, 400, "limit must be a number from 1 to 1000.");
            }
            a->limit = (int)v;
        }
    } else if (n == 3 && is_get) {
        a->kind = API_GET;
        snprintf(a->id, sizeof a->id, "%s", seg[2]);
    } else if (n == 4 && is_post && strcmp(seg[3], "redeliver") == 0) {
        a->kind = API_REDELIVER;
        snprintf(a->id, sizeof a->id, "%s", seg[2]);
    } else {
        sl_free(a);
        return g_api->err(req, (n == 3 || n == 4) && !is_get && !is_post ? 405 : 404,
                           "No such API endpoint.");
    }
    if (!w) { /* webhooks off (no URL configured): an empty outbox, no database to read */
        int list = a->kind == API_LIST;
        sl_free(a);
        return list ? g_api->ok(req, json_array()) : g_api->err(req, 404, "No such delivery.");
    }
    int rc = sl_store_submit(w->store, api_work, api_done, a);
    if (rc) {
        sl_free(a);
        return g_api->err(req, 503, "Cannot queue the request.");
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* configuration and lifecycle                                         */

/* Adds url to the distinct endpoint list (w->eps). 0, SL_EINVAL or SL_ENOMEM. */
static int add_endpoint(sl_webhooks_t *w, const char *url, size_t len, const char *where)
{
    if (!(len > 7 && strncmp(url, "http://", 7) == 0) &&
        !(len > 8 && strncmp(url, "https://", 8) == 0)) {
        char raw[SL_REDACT_MAX], rb[SL_REDACT_MAX];
        snprintf(raw, sizeof raw, "%.*s", (int)len, url);
        SL_LOGE(&g_ctx, "%s: '%s' is not an http:// or https:// URL", where,
                sl_redact(raw, rb, sizeof rb));
        return SL_EINVAL;
    }
    for (size_t i = 0; i < w->n_eps; i++)
        if (strlen(w->eps[i].url) == len && memcmp(w->eps[i].url, url, len) == 0)
            return 0;
    if (w->n_eps == MAX_ENDPOINTS) {
        SL_LOGE(&g_ctx, "%s: more than %d distinct webhook URLs", where, MAX_ENDPOINTS);
        return SL_ETOOBIG;
    }
    char *copy = sl_strndup(url, len);
    char rb[SL_REDACT_MAX];
    char *log_url = copy ? sl_strdup(sl_redact(copy, rb, sizeof rb)) : NULL;
    if (!copy || !log_url) {
        sl_free(copy);
        sl_free(log_url);
        return SL_ENOMEM;
    }
    w->eps[w->n_eps] = (sl_wh_endpoint_t){.w = w, .url = copy, .log_url = log_url};
    w->n_eps++;
    return 0;
}

/* Walks a comma-separated URL list; optionally keeps the pieces in *out. */
static int parse_urls(sl_webhooks_t *w, const char *list, const char *where, char ***out,
                      size_t *n_out)
{
    size_t len;
    for (const char *c = list, *p; (p = sl_list_next(&c, &len));) {
        int rc = add_endpoint(w, p, len, where);
        if (rc)
            return rc;
        if (out) {
            char **nl = sl_realloc(*out, (*n_out + 1) * sizeof(char *));
            if (!nl)
                return SL_ENOMEM;
            *out = nl;
            if (!(nl[*n_out] = sl_strndup(p, len)))
                return SL_ENOMEM;
            (*n_out)++;
        }
    }
    return 0;
}

static void wh_free(void *state)
{
    sl_webhooks_t *w = state;
    if (!w)
        return;
    if (w->listener > 0)
        sl_events_unsubscribe(w->core, w->listener);
    sl__webhooks_threads_join(w);
    uint64_t dropped = w->n_dropped;
    /* Whatever is still queued was never accepted by the outbox. */
    for (sl_wh_item_t *it = w->head, *next; it; it = next) {
        next = it->next;
        sl_free(it);
        dropped++;
    }
    if (dropped)
        SL_LOGW(&g_ctx, "webhooks: %llu events were never written to the outbox",
                (unsigned long long)dropped);
    for (size_t i = 0; i < w->n_eps; i++) {
        sl_free(w->eps[i].url);
        sl_free(w->eps[i].log_url);
    }
    sl_free(w->eps);
    for (size_t i = 0; i < w->n_global; i++)
        sl_free(w->global_urls[i]);
    sl_free(w->global_urls);
    while (w->retired) {
        sl_wh_retired_t *r = w->retired;
        w->retired = r->next;
        for (size_t i = 0; i < r->n; i++)
            sl_free(r->urls[i]);
        sl_free(r->urls);
        sl_free(r);
    }
    uv_cond_destroy(&w->writer_cv);
    uv_cond_destroy(&w->sender_cv);
    uv_mutex_destroy(&w->mu);
    sl_free(w->db_path);
    sl_free(w->node);
    int curl_ref = w->curl_ref;
    sl_free(w);
    if (curl_ref)
        curl_global_cleanup();
}

static int wh_start(sl_core_t *core, sl_http_server_t *http, sl_webhooks_t **state)
{
    *state = NULL;
    const sl_config_t *cfg = core->cfg;
    uint32_t mask = 0;
    char bad[64];
    if (sl__webhooks_parse_events(sl_webhooks_cfg(cfg)->events, &mask, bad, sizeof bad)) {
        SL_LOGE(&g_ctx, "webhooks.events: unknown event '%s' (names: connection-connect, "
                "stream-published, ..., or sluice's: connect, publish, upload_done, ...)", bad);
        return SL_EINVAL;
    }
    int any = sl_webhooks_cfg(cfg)->url && sl_webhooks_cfg(cfg)->url[0];
    for (size_t i = 0; i < cfg->n_apps && !any; i++)
        any = sl_webhooks_app_cfg(&cfg->apps[i])->webhook_url && sl_webhooks_app_cfg(&cfg->apps[i])->webhook_url[0];
    if (!any) /* nothing configured: inert, no database, no threads; the API lists nothing */
        return http ? add_api_route(core, NULL) : 0;

    int rc = SL_ENOMEM;
    sl_webhooks_t *w = sl_calloc(1, sizeof(*w));
    if (!w)
        return SL_ENOMEM;
    w->core = core;
    w->cfg = cfg;
    w->mask = mask;
    uv_mutex_init(&w->mu);
    uv_cond_init(&w->writer_cv);
    uv_cond_init(&w->sender_cv);
    /* Same allocator choice as base/http_client.c: whichever initialises
     * curl first, its allocations are counted by sl_malloc. */
    if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, sl_malloc, sl_free, sl_realloc, sl_strdup,
                             sl_calloc) != CURLE_OK) {
        rc = SL_EIO;
        goto fail;
    }
    w->curl_ref = 1;
    size_t path_len = strlen(cfg->server_data_dir) + sizeof("/" SL_WEBHOOKS_DB_NAME);
    w->db_path = sl_malloc(path_len);
    w->node = sl_strdup(cfg->server_node_name ? cfg->server_node_name : "");
    w->eps = sl_calloc(MAX_ENDPOINTS, sizeof(*w->eps));
    if (!w->db_path || !w->node || !w->eps)
        goto fail;
    snprintf(w->db_path, path_len, "%s/%s", cfg->server_data_dir, SL_WEBHOOKS_DB_NAME);
    rc = parse_urls(w, sl_webhooks_cfg(cfg)->url, "webhooks.url", &w->global_urls, &w->n_global);
    for (size_t i = 0; i < cfg->n_apps && !rc; i++) {
        char where[SL_CONFIG_APP_NAME_MAX + 32];
        snprintf(where, sizeof where, "apps.%s.webhook_url", cfg->apps[i].name);
        rc = parse_urls(w, sl_webhooks_app_cfg(&cfg->apps[i])->webhook_url, where, NULL, NULL);
    }
    if (rc)
        goto fail;
    w->store = sl_store_find(core);
    /* In cluster mode, payloads name this node's role and id (the cluster module inits
     * first; its identity is fixed for the process's life, so a copy serves the writer
     * thread, which must not call the service). */
    void *cl_ud;
    const sl_svc_cluster_t *cl = sl_service_get(core, SL_SVC_CLUSTER, SL_SVC_CLUSTER_MAJOR, 0, &cl_ud);
    if (cl) {
        const sl_cluster_node_t *self = cl->self(cl_ud);
        snprintf(w->cluster.type, sizeof w->cluster.type, "%s", sl__webhooks_cluster_type(self->role));
        snprintf(w->cluster.id, sizeof w->cluster.id, "%s", self->id);
        snprintf(w->cluster.host, sizeof w->cluster.host, "%s", self->host);
    }
    rc = sl__webhooks_threads_start(w);
    if (rc) {
        SL_LOGE(&g_ctx, "webhooks: cannot start the outbox (%s): %s", w->db_path, sl_strerror(rc));
        goto fail;
    }
    rc = sl_events_subscribe(core, "webhooks", SL_EV_PHASE_NOTIFY, on_event, w);
    if (rc < 0)
        goto fail;
    w->listener = rc;
    rc = 0;
    if (http)
        rc = add_api_route(core, w);
    if (rc)
        goto fail;
    SL_LOGI(&g_ctx, "webhooks: %zu endpoint%s, outbox %s", w->n_eps, w->n_eps == 1 ? "" : "s",
            w->db_path);
    *state = w;
    return 0;
fail:
    wh_free(w);
    return rc;
}

/*
 * Configuration reload. Running, the module takes the new event selection
 * and URLs: endpoints new to it get their sender thread (an endpoint no
 * longer listed keeps its thread until exit and delivers what its rows
 * still hold), the global list is swapped under the lock (the writer reads
 * it there; the old list is kept until free), per-app URLs are read from
 * the event's app at each event, and the secret, timeout, retry and
 * retention settings through the new configuration pointer. Inert until
 * now (no URL at start), it cannot start without a restart: its API
 * route was registered without state (SL_EAGAIN).
 */
static int wh_reload(void *state)
{
    wh_module_t *mod = state;
    sl_webhooks_t *w = mod->w;
    const sl_config_t *new_cfg = mod->core->cfg;
    if (!w) {
        const char *url = sl_webhooks_cfg(new_cfg)->url;
        int any = url && url[0];
        for (size_t i = 0; i < new_cfg->n_apps && !any; i++) {
            url = sl_webhooks_app_cfg(&new_cfg->apps[i])->webhook_url;
            any = url && url[0];
        }
        return any ? SL_EAGAIN : 0;
    }
    uint32_t mask = 0;
    char bad[64];
    if (sl__webhooks_parse_events(sl_webhooks_cfg(new_cfg)->events, &mask, bad, sizeof bad))
        return SL_EINVAL; /* the check refused it already */
    size_t n_eps_before = w->n_eps;
    char **globals = NULL;
    size_t n_globals = 0;
    sl_wh_retired_t *r = sl_calloc(1, sizeof *r);
    int rc = r ? parse_urls(w, sl_webhooks_cfg(new_cfg)->url, "webhooks.url", &globals, &n_globals)
               : SL_ENOMEM;
    for (size_t i = 0; i < new_cfg->n_apps && !rc; i++) {
        char where[SL_CONFIG_APP_NAME_MAX + 32];
        snprintf(where, sizeof where, "apps.%s.webhook_url", new_cfg->apps[i].name);
        rc = parse_urls(w, sl_webhooks_app_cfg(&new_cfg->apps[i])->webhook_url, where, NULL, NULL);
    }
    for (size_t i = n_eps_before; i < w->n_eps && !rc; i++)
        rc = sl__webhooks_sender_start(w, &w->eps[i]);
    if (rc) { /* endpoints added stay (harmless: a sender without rows waits) */
        for (size_t i = 0; i < n_globals; i++)
            sl_free(globals[i]);
        sl_free(globals);
        sl_free(r);
        return rc;
    }
    uv_mutex_lock(&w->mu);
    r->urls = w->global_urls;
    r->n = w->n_global;
    w->global_urls = globals;
    w->n_global = n_globals;
    __atomic_store_n(&w->cfg, new_cfg, __ATOMIC_RELEASE);
    uv_mutex_unlock(&w->mu);
    r->next = w->retired;
    w->retired = r;
    w->mask = mask;
    if (w->n_eps > n_eps_before)
        SL_LOGI(&g_ctx, "webhooks: %zu new endpoint%s", w->n_eps - n_eps_before,
                w->n_eps - n_eps_before == 1 ? "" : "s");
    return 0;
}

/* Graceful stop: senders finish their attempt (bounded by the shutdown
 * timeout) and exit; the listener and the writer keep going until free, so
 * the disconnects and unpublishes of the shutdown itself reach the outbox. */
static void wh_stop(void *state)
{
    wh_module_t *mod = state;
    sl_webhooks_t *w = mod->w;
    if (w)
        sl__webhooks_senders_stop(w, (uint64_t)sl__wh_cfg(w)->server_shutdown_timeout_ms);
}

/* The plugin's destroy: the webhooks' state, then the module's. */
static void wh_destroy(void *state)
{
    wh_module_t *mod = state;
    wh_free(mod->w);
    sl_free(mod);
}

/*
 * The plugin's init: the module keeps a state even when nothing is
 * configured (inert: no database, no threads), so that a reload can say
 * that webhooks added later need a restart.
 */
static int wh_init(const sl_host_api_t *api, sl_host_t *h, void **state)
{
    (void)api;
    wh_module_t *mod = sl_calloc(1, sizeof *mod);
    if (!mod)
        return SL_ENOMEM;
    mod->core = sl_host_core(h);
    int rc = wh_start(mod->core, sl_host_http(h), &mod->w);
    if (rc) {
        sl_free(mod);
        return rc;
    }
    *state = mod;
    return 0;
}

static const sl_plugin_t plugin = {
    SL_PLUGIN_ABI,
    .name = "webhooks",
    .description = "POSTs events to URLs through a durable outbox",
    .init = wh_init,
    .stop = wh_stop,
    .destroy = wh_destroy,
    .reload = wh_reload,
};

const sl_builtin_t sl_webhooks_builtin = {
    .plugin = &plugin,
    .config = &sl_webhooks_config_section,
    .check = sl__webhooks_check,
};
