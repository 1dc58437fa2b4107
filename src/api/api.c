/*
 * The Red5 Pro-compatible Server API (see api.h). Paths, parameters,
 * field names and the envelope follow RED5-COMPAT.md §1 exactly; sluice's
 * additions are new fields on the same objects and new paths beside
 * Red5's, never changes to what Red5 clients read.
 *
 * Scopes: Red5 paths are "/default/{app}[/{room}...]". The `scope`
 * parameter names a room inside the app ("room1", or "/default/live/room1"
 * / "/live/room1" in full); without it, lists cover the whole app and
 * stream names are given relative to the app ("room1/stream1").
 */
#include "api/api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api_internal.h"
#include "app/admission.h"
#include "app/events.h"
#include "app/services.h"
#include "app/svc/api.h"
#include "app/svc/extensions.h"
#include "app/svc/server.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/time.h"
#include "media/flv.h"
#include "sluice/errors.h"
#include "sluice/version.h"
#include "api/api_config.h"

#define FMS_VERSION "RED5/1,0,7,0"
#define AUTH_FAIL_WINDOW_MS 60000

/* ------------------------------------------------------------------ */
/* envelope                                                            */

int sl__api_ok(sl_http_req_t *req, json_t *data)
{
    json_t *o = json_pack("{s:s, s:i, s:o, s:I}", "status", "success", "code", 200, "data",
                          data ? data : json_null(), "timestamp", (json_int_t)sl_time_wall_ms());
    if (!o)
        return sl_http_respond_json(req, 500, "{\"status\":\"error\",\"code\":500}");
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    int rc = sl_http_respond_json(req, 200, txt ? txt : "{}");
    free(txt);
    return rc;
}

int sl__api_err(sl_http_req_t *req, int code, const char *msg)
{
    json_t *o = json_pack("{s:s, s:i, s:s, s:I}", "status", "error", "code", code, "message", msg,
                          "timestamp", (json_int_t)sl_time_wall_ms());
    char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    int rc = sl_http_respond_json(req, code, txt ? txt : "{\"status\":\"error\"}");
    free(txt);
    return rc;
}

/* ------------------------------------------------------------------ */
/* access control                                                      */

typedef struct fail_rec {
    uint64_t window_start;
    unsigned fails;
} fail_rec_t;

static int host_allowed(const sl_api_t *api, const char *addr)
{
    const char *list = sl_api_cfg(api->core->cfg)->hosts;
    if (!list || !*list)
        return 0;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (strcmp(tok, "*") == 0 || strcmp(tok, addr) == 0)
            return 1;
        if (strcmp(tok, "localhost") == 0 &&
            (strcmp(addr, "127.0.0.1") == 0 || strcmp(addr, "::1") == 0 ||
             strcmp(addr, "::ffff:127.0.0.1") == 0))
            return 1;
    }
    return 0;
}

/*
 * Makes room in the failure table before a new address is added: records
 * whose window has passed are dropped (without this, every address that
 * ever failed once would keep a record for the life of the process); if the
 * table is still full (api.auth_fail_max_addresses addresses failing within
 * a minute), the record whose window started first is forgotten, so that a
 * new address is always counted. A spray from more addresses than the table
 * holds gets auth_fail_limit tries per address per eviction, which is why
 * IPv6 addresses are counted per /64 (see fail_key).
 */
static void make_room(sl_api_t *api, uint64_t now)
{
    size_t cap = (size_t)sl_api_cfg(api->core->cfg)->auth_fail_max_addrs;
    if (api->fails.n < cap)
        return;
    char **stale = sl_calloc(api->fails.n, sizeof(char *));
    if (!stale)
        return;
    size_t n_stale = 0, pos = 0;
    sl_map_entry_t *e;
    const char *oldest = NULL;
    uint64_t oldest_start = UINT64_MAX;
    while ((e = sl_map_next(&api->fails, &pos))) { /* collect first: no change while iterating */
        fail_rec_t *fr = e->val;
        if (now - fr->window_start > AUTH_FAIL_WINDOW_MS)
            stale[n_stale++] = e->key;
        else if (fr->window_start < oldest_start) {
            oldest_start = fr->window_start;
            oldest = e->key;
        }
    }
    if (!n_stale && oldest) {
        stale[n_stale++] = (char *)oldest;
        api->n_fail_evicted++;
    }
    for (size_t i = 0; i < n_stale; i++) {
        char key[128]; /* addresses are at most 63 bytes (sl_session_t.remote_addr) */
        snprintf(key, sizeof key, "%s", stale[i]); /* sl_map_del frees the map's copy */
        sl_free(sl_map_del(&api->fails, key));
    }
    sl_free(stale);
}

/*
 * The failure table's key for a client address: the address itself, or for
 * IPv6 (not IPv4-mapped) its /64, since one host usually owns a whole /64
 * and could otherwise spray from as many addresses as it likes.
 */
static const char *fail_key(const char *addr, char *out, size_t cap)
{
    struct in6_addr a6;
    if (strchr(addr, ':') && strncmp(addr, "::ffff:", 7) != 0 &&
        inet_pton(AF_INET6, addr, &a6) == 1) {
        memset(a6.s6_addr + 8, 0, 8);
        char buf[INET6_ADDRSTRLEN];
        if (inet_ntop(AF_INET6, &a6, buf, sizeof buf)) {
            snprintf(out, cap, "%s/64", buf);
            return out;
        }
    }
    snprintf(out, cap, "%s", addr);
    return out;
}

/* Constant-time comparison, so the token cannot be guessed byte by byte. */
static int token_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < la && i < lb; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

/*
 * Checks the client address and token. Returns 0 when allowed; otherwise
 * it has answered the request (403/401/429) and returns 1.
 */
int sl__api_check_access(sl_api_t *api, sl_http_req_t *req)
{
    if (!host_allowed(api, req->remote_addr)) {
        sl__api_err(req, 403, "Host not allowed.");
        return 1;
    }
    char tok[256];
    int have = sl_http_query_get(req->query, "accessToken", tok, sizeof tok);
    if (have < 0) {
        const char *auth = sl_http_req_header(req, "authorization");
        if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
            snprintf(tok, sizeof tok, "%s", auth + 7);
            have = 1;
        }
    }
    /* The right token always passes, before the limiter is consulted: failures
     * from a shared address (NAT, a proxy, a neighbour guessing) must not lock
     * out the real admin. The limiter answers wrong tokens only. */
    if (have >= 0 && token_equal(tok, api->token))
        return 0;
    uint64_t now = uv_now(api->core->loop);
    char key[128];
    fail_key(req->remote_addr, key, sizeof key);
    fail_rec_t *fr = sl_map_get(&api->fails, key);
    if (fr && now - fr->window_start > AUTH_FAIL_WINDOW_MS) {
        fr->window_start = now;
        fr->fails = 0;
    }
    if (fr && (int64_t)fr->fails >= sl_api_cfg(api->core->cfg)->auth_fail_limit) {
        api->n_auth_limited++;
        sl__api_err(req, 429, "Too many failed authentication attempts; try again later.");
        return 1;
    }
    api->n_auth_failed++;
    if (!fr) {
        make_room(api, now);
        if ((fr = sl_calloc(1, sizeof(*fr))) && sl_map_set(&api->fails, key, fr)) {
            sl_free(fr);
            fr = NULL;
        }
        if (fr)
            fr->window_start = now;
    }
    if (fr)
        fr->fails++;
    SL_LOGI(&(sl_log_ctx_t){.proto = "http"}, "api: %s token from %s", have < 0 ? "missing" : "wrong",
            req->remote_addr);
    sl__api_err(req, 401, have < 0 ? "Missing accessToken." : "Invalid accessToken.");
    return 1;
}

/* Loads {data}/api_token or creates it with a random token. */
static int load_token(sl_api_t *api)
{
    const sl_config_t *cfg = api->core->cfg;
    if (sl_api_cfg(cfg)->access_token && sl_api_cfg(cfg)->access_token[0]) {
        snprintf(api->token, sizeof api->token, "%s", sl_api_cfg(cfg)->access_token);
        return 0;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/api_token", cfg->server_data_dir);
    FILE *f = fopen(path, "r");
    if (f) {
        char line[sizeof api->token];
        int ok = fgets(line, sizeof line, f) != NULL;
        fclose(f);
        line[strcspn(line, "\r\n")] = '\0';
        if (ok && strlen(line) >= 16) {
            snprintf(api->token, sizeof api->token, "%s", line);
            api->token_generated = 1;
            return 0;
        }
    }
    uint8_t r[16];
    if (RAND_bytes(r, sizeof r) != 1)
        return SL_EIO;
    for (int i = 0; i < 16; i++)
        snprintf(api->token + 2 * i, 3, "%02x", r[i]);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -errno;
    /* open() keeps the mode of a file that already existed (an unusable,
     * short token file being replaced): the secret is owner-only either way. */
    if (fchmod(fd, 0600) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    size_t n = strlen(api->token);
    int ok = write(fd, api->token, n) == (ssize_t)n && write(fd, "\n", 1) == 1;
    close(fd);
    if (!ok)
        return SL_EIO;
    api->token_generated = 2;
    return 0;
}


int sl_api_add_route(sl_api_t *api, const char *segment, sl_http_handler_cb cb, void *ud)
{
    if (!segment || !segment[0] || strlen(segment) >= sizeof api->ext[0].segment ||
        strchr(segment, '/'))
        return SL_EINVAL;
    for (size_t i = 0; i < api->n_ext; i++)
        if (strcmp(api->ext[i].segment, segment) == 0)
            return SL_EBUSY;
    if (api->n_ext == SL_API_MAX_EXT)
        return SL_ETOOBIG;
    sl_api_ext_t *e = &api->ext[api->n_ext++];
    snprintf(e->segment, sizeof e->segment, "%s", segment);
    e->cb = cb;
    e->ud = ud;
    return 0;
}

static int svc_add_route(void *ud, const char *segment, sl_http_handler_cb cb, void *cb_ud)
{
    return sl_api_add_route(ud, segment, cb, cb_ud);
}

static int svc_check_access(void *ud, sl_http_req_t *req)
{
    return sl__api_check_access(ud, req);
}

/* Service "api" (src/app/svc/api.h): how modules reach the API. */
static const sl_svc_api_t api_service = {
    .add_route = svc_add_route,
    .ok = sl__api_ok,
    .err = sl__api_err,
    .check_access = svc_check_access,
};

/* ------------------------------------------------------------------ */
/* routing                                                             */

#define MAX_SEGS 12

static int split_path(char *p, char **segs)
{
    int n = 0;
    for (char *tok = strtok(p, "/"); tok && n < MAX_SEGS; tok = strtok(NULL, "/"))
        segs[n++] = tok;
    return n;
}

static void route_each(void *arg, const sl_http_route_info_t *r)
{
    const char *serves = r->serves;
    json_t *o = json_pack("{s:s?, s:s, s:s?, s:s, s:s?, s:o}", "method", r->method, "prefix",
                          r->prefix, "suffixes", r->suffixes, "priority", r->prio_name, "name",
                          r->name, "serves", json_array());
    if (!o)
        return;
    json_t *list = json_object_get(o, "serves");
    for (const char *p = serves; p && *p;) {
        size_t n = strcspn(p, " ");
        if (n)
            json_array_append_new(list, json_stringn(p, n));
        p += n;
        p += strspn(p, " ");
    }
    if (!serves)
        json_object_set_new(o, "serves", json_null());
    json_array_append_new(arg, o);
}

/*
 * GET /api/v1/server/routes: the HTTP route table in dispatch order
 * (priority, longer prefix, registration), with each route's method,
 * prefix, suffix filter, priority name and what it serves
 * (sl_http_route_doc). "serves" is null for a route that was never
 * documented; "suffixes" null when it takes every path under its prefix.
 */
static int server_routes(sl_api_t *api, sl_http_req_t *req)
{
    json_t *list = json_array();
    if (!list)
        return SL_ENOMEM;
    if (api->http)
        sl_http_routes_each(api->http, route_each, list);
    return sl__api_ok(req, list);
}

/*
 * POST /api/v1/server/reload: reloads the configuration through the
 * "server" service (main.c). 200 with what changed; 400 with the list of
 * problems ("file:line: message") when the new configuration is refused
 * (then nothing changed); 503 while shutting down or when nothing provides
 * the service.
 */
static int server_reload(sl_api_t *api, sl_http_req_t *req)
{
    void *ud = NULL;
    const sl_svc_server_t *svc =
        sl_service_get(api->core, SL_SVC_SERVER_NAME, SL_SVC_SERVER_MAJOR, 0, &ud);
    if (!svc || !svc->reload)
        return sl__api_err(req, 503, "Reload is not available.");
    char *text = NULL;
    int rc = svc->reload(ud, &text);
    json_t *answer = text ? json_loads(text, 0, NULL) : NULL;
    sl_free(text);
    if (rc == 0 && answer)
        return sl__api_ok(req, answer);
    if (rc == SL_EINVAL && answer) {
        json_t *o = json_pack("{s:s, s:i, s:s, s:O?, s:I}", "status", "error", "code", 400,
                              "message", "The configuration has problems; nothing changed.",
                              "problems", json_object_get(answer, "problems"), "timestamp",
                              (json_int_t)sl_time_wall_ms());
        json_decref(answer);
        char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        rc = sl_http_respond_json(req, 400, txt ? txt : "{\"status\":\"error\",\"code\":400}");
        free(txt);
        return rc;
    }
    json_decref(answer);
    if (rc == SL_EBUSY)
        return sl__api_err(req, 503, "The server is shutting down.");
    return sl__api_err(req, 500, rc ? sl_strerror(rc) : "Out of memory.");
}

static void service_each(void *arg, const char *name, int major, int minor)
{
    char version[32];
    snprintf(version, sizeof version, "%d.%d", major, minor);
    json_array_append_new(arg, json_pack("{s:s, s:s, s:i, s:i}", "name", name, "version", version,
                                         "major", major, "minor", minor));
}

static void listener_each(void *arg, const char *name, int phase)
{
    json_array_append_new(arg, json_pack("{s:s, s:s}", "name", name, "phase",
                                         sl_event_phase_name(phase)));
}

static void check_each(void *arg, const char *name, int phase)
{
    json_array_append_new(arg, json_pack("{s:s, s:s}", "name", name, "phase",
                                         sl_admit_phase_name(phase)));
}

/*
 * GET /api/v1/server/services: the seams in use (docs/internals/SEAMS.md):
 * registered services with their versions, event listeners in delivery
 * order and admission checks in chain order, each with its phase's name.
 */
static int server_services(sl_api_t *api, sl_http_req_t *req)
{
    json_t *services = json_array(), *listeners = json_array(), *checks = json_array();
    json_t *o = json_object();
    if (!services || !listeners || !checks || !o) {
        json_decref(services);
        json_decref(listeners);
        json_decref(checks);
        json_decref(o);
        return SL_ENOMEM;
    }
    sl_services_each(api->core, service_each, services);
    sl_events_each(api->core, listener_each, listeners);
    sl_admit_checks_each(api->core, check_each, checks);
    json_object_set_new(o, "services", services);
    json_object_set_new(o, "event_listeners", listeners);
    json_object_set_new(o, "admission_checks", checks);
    return sl__api_ok(req, o);
}

static void extension_each(void *arg, const sl_extension_info_t *x)
{
    char abi[32];
    snprintf(abi, sizeof abi, "%d.%d", x->abi_major, x->abi_minor);
    json_array_append_new(arg, json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:s?}", "name", x->name,
                                         "kind", x->kind, "version", x->version, "description",
                                         x->description, "abi", abi, "path", x->path));
}

/*
 * GET /api/v1/server/plugins: every extension the host runs, built-in
 * modules (kind "builtin") then plugins (kind "plugin"), in start order,
 * from the service "extensions" (an empty list when it is not running).
 */
static int server_plugins(sl_api_t *api, sl_http_req_t *req)
{
    json_t *list = json_array();
    if (!list)
        return SL_ENOMEM;
    void *ud;
    const sl_svc_extensions_t *x =
        sl_service_get(api->core, SL_SVC_EXTENSIONS, SL_SVC_EXTENSIONS_MAJOR, 0, &ud);
    if (x)
        x->each(ud, extension_each, list);
    return sl__api_ok(req, list);
}

static int api_handler(sl_http_req_t *req, void *ud)
{
    sl_api_t *api = ud;
    char path[2048];
    if (strlen(req->path) >= sizeof path)
        return sl__api_err(req, 400, "Path too long.");
    snprintf(path, sizeof path, "%s", req->path + strlen("/api/v1"));
    char *seg[MAX_SEGS];
    int n = split_path(path, seg);
    int is_get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    int is_del = strcmp(req->method, "DELETE") == 0;
    int is_post = strcmp(req->method, "POST") == 0;

    if (sl__api_check_access(api, req))
        return 0;
    if (n == 1 && strcmp(seg[0], "events") == 0 && is_get)
        return sl__api_events_accept(api, req);
    if (n == 2 && strcmp(seg[0], "server") == 0 && strcmp(seg[1], "reload") == 0 && is_post)
        return server_reload(api, req);
    if (n >= 1 && strcmp(seg[0], "server") == 0 && is_get) {
        if (n == 1)
            return sl__api_server_info(api, req);
        if (n == 2 && strcmp(seg[1], "ping") == 0)
            return sl__api_ok(req, json_integer((json_int_t)sl_time_wall_ms()));
        if (n == 2 && strcmp(seg[1], "statistics") == 0)
            return sl__api_server_stats(api, req);
        if (n == 2 && strcmp(seg[1], "routes") == 0)
            return server_routes(api, req);
        if (n == 2 && strcmp(seg[1], "services") == 0)
            return server_services(api, req);
        if (n == 2 && strcmp(seg[1], "plugins") == 0)
            return server_plugins(api, req);
    }
    if (n >= 1 && strcmp(seg[0], "applications") == 0) {
        if (n == 1 && is_get)
            return sl__api_app_list(api, req);
        if (n == 2 && strcmp(seg[1], "statistics") == 0 && is_get)
            return sl__api_apps_stats(api, req);
        if (n >= 2) {
            const sl_app_config_t *app = sl_core_app(api->core, seg[1]);
            if (!app) {
                char msg[160];
                snprintf(msg, sizeof msg, "Application %.100s not found.", seg[1]);
                return sl__api_err(req, 404, msg);
            }
            return sl__api_app_route(api, req, app, seg + 2, n - 2, is_get, is_del, is_post);
        }
    }
    /* Module endpoints (sl_api_add_route), already past the access check. */
    for (size_t i = 0; n >= 1 && i < api->n_ext; i++)
        if (strcmp(seg[0], api->ext[i].segment) == 0)
            return api->ext[i].cb(req, api->ext[i].ud);
    return sl__api_err(req, 404, "No such API endpoint.");
}

static int metrics_handler(sl_http_req_t *req, void *ud)
{
    sl_api_t *api = ud;
    if (strcmp(req->path, "/metrics") != 0)
        return SL_EDECLINED;
    if (!sl_api_cfg(api->core->cfg)->metrics_public && sl__api_check_access(api, req))
        return 0;
    return sl__api_metrics(api, req);
}

static void on_lag_timer(uv_timer_t *t)
{
    sl_api_t *api = t->data;
    uint64_t now = uv_hrtime();
    if (api->lag_last_ns) {
        int64_t lag_ns = (int64_t)(now - api->lag_last_ns) - 1000000000LL;
        api->loop_lag_ms = lag_ns > 0 ? (double)lag_ns / 1e6 : 0;
        if (api->loop_lag_ms > api->loop_lag_max_ms)
            api->loop_lag_max_ms = api->loop_lag_ms;
    }
    api->lag_last_ns = now;
}

int sl_api_start(sl_core_t *core, sl_http_server_t *http, sl_api_t **out)
{
    *out = NULL;
    sl_api_t *api = sl_calloc(1, sizeof(*api));
    if (!api)
        return SL_ENOMEM;
    api->core = core;
    sl_map_init(&api->fails);
    sl_list_init(&api->watchers);
    int rc = load_token(api);
    if (rc) {
        sl_free(api);
        return rc;
    }
    api->http = http;
    /* Modules add their /api/v1 endpoints through the service (they start after the API). */
    rc = sl_service_register(core, SL_SVC_API, SL_SVC_API_MAJOR, SL_SVC_API_MINOR, &api_service,
                             api);
    /* Names and statistics of streams, behind the API token: no stream data. */
    const sl_http_route_spec_t api_route = {.prefix = "/api/v1/", .prio = SL_HTTP_PRIO_CORE,
                                            .name = "api", .serves = "", .cb = api_handler,
                                            .ud = api};
    const sl_http_route_spec_t metrics_route = {.prefix = "/metrics", .prio = SL_HTTP_PRIO_CORE,
                                                .name = "metrics", .serves = "",
                                                .cb = metrics_handler, .ud = api};
    rc = rc ? rc : sl_http_route_add(http, &api_route, NULL);
    rc = rc ? rc : sl_http_route_add(http, &metrics_route, NULL);
    rc = rc ? rc : sl__api_events_start(api);
    if (rc) {
        sl_service_unregister(core, SL_SVC_API, &api_service);
        sl_map_cleanup(&api->fails);
        sl_free(api);
        return rc;
    }
    uv_timer_init(core->loop, &api->lag_timer);
    api->lag_timer.data = api;
    uv_timer_start(&api->lag_timer, on_lag_timer, 1000, 1000);
    uv_unref((uv_handle_t *)&api->lag_timer);
    /* The token itself is never logged (logs are shipped and kept far longer
     * than the token stays secret): the file is where an operator reads it. */
    if (api->token_generated == 2)
        SL_LOGI(NULL, "api: generated an access token into %s/api_token (read it there)",
                core->cfg->server_data_dir);
    else if (api->token_generated == 1)
        SL_LOGI(NULL, "api: access token from %s/api_token", core->cfg->server_data_dir);
    else
        SL_LOGI(NULL, "api: access token from the configuration");
    *out = api;
    return 0;
}

void sl_api_stop(sl_api_t *api)
{
    if (!api || api->stopped)
        return;
    api->stopped = 1;
    sl__api_events_stop(api);
    uv_close((uv_handle_t *)&api->lag_timer, NULL);
}

void sl_api_free(sl_api_t *api)
{
    if (!api)
        return;
    sl_service_unregister(api->core, SL_SVC_API, &api_service);
    size_t pos = 0;
    sl_map_entry_t *e;
    while ((e = sl_map_next(&api->fails, &pos)))
        sl_free(e->val);
    sl_map_cleanup(&api->fails);
    sl_free(api);
}
