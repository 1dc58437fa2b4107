/*
 * The sluice process: command line, configuration, logging, the loop, the
 * listeners, signals and graceful shutdown.
 *
 *   sluice [--config FILE] [--check-config] [--print-config yaml|markdown] [--version]
 *
 * Configuration comes from the built-in defaults, then the YAML file
 * (--config, or ./sluice.yml when present), then SLUICE_<SECTION>_<KEY>
 * environment variables. Then every check that start depends on runs
 * (certificates, each module's sl_builtin_t.check: files readable, URL
 * schemes, event names...), reporting each problem at the file:line that set
 * it; --check-config stops there, and a start with problems exits before any
 * listener opens. SIGINT/SIGTERM stop gracefully: listeners close,
 * clients are told their streams end, pending writes drain (bounded by
 * server.shutdown_timeout), and the process exits 0. A second signal exits
 * at once. SIGHUP (or POST /api/v1/server/reload, through the "server"
 * service) reloads the configuration: see reload_apply.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <uv.h>

#include "api/api.h"
#include "app/core.h"
#include "app/services.h"
#include "app/store.h"
#include "app/svc/server.h"
#include "base/alloc.h"
#include "base/fs.h"
#include "base/config.h"
#include "base/log.h"
#include "media/frame.h"
#include "modules/module.h"
#include "net/workers.h"
#include "modules/plugins/plugins.h"
#include "proto/http/http.h"
#include "proto/proto.h"
#include "sluice/errors.h"
#include "sluice/version.h"
#include "proto/http/http_config.h"
#include "builtin_config.h"

extern char **environ;

#define MAX_PROTOCOLS 16
#define WORKER_INBOX_CAP 65536 /* least messages waiting per worker loop (net/workers.h) */

/* The installed web root (console, SDK, test pages), set at configure time by
 * CMake (-DSL_WEB_ROOT=..., default ${CMAKE_INSTALL_PREFIX}/share/sluice/web).
 * http.web_root "auto" uses it when the working directory has no web/. */
#ifndef SL_WEB_ROOT_DEFAULT
#define SL_WEB_ROOT_DEFAULT "/usr/local/share/sluice/web"
#endif

typedef struct {
    sl_core_t core;
    void *proto_state[MAX_PROTOCOLS]; /* of each started protocol, NULL when off */
    int n_protocols;                  /* protocols (of the table) started or skipped */
    sl_http_server_t *http;           /* the "http" protocol's server (routes), else NULL */
    sl_api_t *api;
    sl_plugins_t *extensions;      /* the built-in modules and the plugins (owned), NULL
                                      before they start */
    sl_store_t *store;             /* {data_dir}/sluice.db, the one SQLite writer (owned) */
    uv_signal_t sigint, sigterm;
    int signals;
    /* reload (see reload_apply) */
    const char *config_path;       /* the file read at start, NULL = defaults only (borrowed) */
    uv_signal_t sighup;            /* SIGHUP: reload */
    int sighup_open;
    sl_config_t **retired;         /* configurations replaced by a reload, freed at exit */
    size_t n_retired;
    sl_config_t *current;          /* the configuration a reload installed, or NULL (the one
                                      main loaded is on its stack) */
} app_t;

static void print_err(void *ud, const char *where, int line, const char *msg)
{
    int *n = ud;
    (*n)++;
    if (line > 0)
        fprintf(stderr, "%s:%d: %s\n", where, line, msg);
    else
        fprintf(stderr, "%s: %s\n", where, msg);
}

/*
 * The checks that need more than the config tables: each enabled
 * protocol's (certificates that load) and each module's (files readable,
 * URL schemes, event names...). Every problem goes to err with the file
 * and line that set its key. Returns the number of problems.
 */
static int check_config(const sl_config_t *cfg, sl_config_err_cb err, void *ud)
{
    int n = 0;
    for (int i = 0; sl_builtin_protocols[i]; i++) {
        const sl_proto_t *p = sl_builtin_protocols[i];
        if (p->check && p->enabled(cfg))
            n += p->check(cfg, err, ud);
    }
    return n + sl_plugins_check(cfg, sl_builtin_modules, err, ud);
}

/* ---- reload ---------------------------------------------------------- */

/* What a reload found, collected for the log and the API answer. */
typedef struct {
    json_t *problems;     /* "file:line: message" of a refused configuration */
    json_t *apps_added, *apps_removed, *apps_changed, *keys_changed, *restart, *modules_restart;
    size_t n_changes;
    const sl_config_t *cfg; /* the running configuration, whose slot flags say "restart" */
} reload_report_t;

/* An extension answered a reload with rc: logged and listed. */
static void reload_module_report(void *ud, const char *name, int rc)
{
    reload_report_t *r = ud;
    if (rc == SL_EAGAIN)
        SL_LOGW(NULL, "config reload: module %s: its new settings need a restart", name);
    else
        SL_LOGE(NULL, "config reload: module %s: %s (it keeps its old settings)", name,
                sl_strerror(rc));
    json_array_append_new(r->modules_restart, json_string(name));
}

static void reload_problem(void *ud, const char *where, int line, const char *msg)
{
    reload_report_t *r = ud;
    char text[1024];
    if (line > 0)
        snprintf(text, sizeof text, "%s:%d: %s", where, line, msg);
    else
        snprintf(text, sizeof text, "%s: %s", where, msg);
    SL_LOGE(NULL, "config reload: %s", text);
    json_array_append_new(r->problems, json_string(text));
}

/* Appends name to list unless it is there already. */
static void add_unique(json_t *list, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
        if (strcmp(json_string_value(v), name) == 0)
            return;
    json_array_append_new(list, json_string(name));
}

static void reload_diff(void *ud, sl_config_diff_t kind, const char *key)
{
    reload_report_t *r = ud;
    r->n_changes++;
    if (kind == SL_CONFIG_DIFF_APP_ADDED || kind == SL_CONFIG_DIFF_APP_REMOVED) {
        json_array_append_new(kind == SL_CONFIG_DIFF_APP_ADDED ? r->apps_added : r->apps_removed,
                              json_string(key + 5)); /* after "apps." */
        return;
    }
    if (strncmp(key, "apps.", 5) == 0) {
        char name[SL_CONFIG_APP_NAME_MAX + 1];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(key + 5, "."), key + 5);
        add_unique(r->apps_changed, name);
    }
    /* A setting flagged SL_CONFIG_RESTART by its owner's table (listeners,
     * TLS files, data_dir, values copied into long-lived structures at start). */
    int restart = sl_config_slot_needs_restart(r->cfg, key) == 1;
    json_array_append_new(restart ? r->restart : r->keys_changed, json_string(key));
}

/*
 * Reloads the configuration: the same file and environment as at start,
 * loaded into a new struct and checked completely (the checks of start and
 * --check-config: check_config and every module's check). A configuration
 * with problems changes nothing: they are logged and returned. Otherwise:
 *  - settings whose slot is flagged SL_CONFIG_RESTART (sl_config_slot_
 *    needs_restart) that changed keep their running value (the new struct
 *    gets the old one) and are reported as needing a restart;
 *  - core->cfg points at the new struct, so every later lookup (apps added
 *    or removed, per-app switches, limits read per connection) sees it.
 *    The old struct is not freed before exit: sessions and modules keep
 *    pointers into it (an HLS stream's app settings, a webhook item's app,
 *    strings a module borrowed at start), and a reload is rare and small
 *    (a few KB), so keeping them is both simple and safe. An app removed
 *    by a reload refuses new clients (like an unknown app); its sessions
 *    stay until they leave, under the settings they were admitted with.
 *  - the log level and format, and the server-wide RTMP partial budget
 *    are set again; each module's reload re-reads what it cached.
 * Connected clients are not touched. Fills r; returns 0, SL_EINVAL (the
 * configuration has problems), SL_EBUSY (shutting down) or SL_ENOMEM.
 */
static int reload_apply(app_t *app, reload_report_t *r)
{
    if (app->core.shutting_down)
        return SL_EBUSY;
    sl_config_t *cfg = sl_malloc(sizeof *cfg);
    sl_config_t **retired = sl_realloc(app->retired, (app->n_retired + 1) * sizeof *retired);
    if (retired)
        app->retired = retired;
    if (!cfg || !retired || sl_config_defaults(cfg)) {
        sl_free(cfg);
        return SL_ENOMEM;
    }
    size_t n_before = json_array_size(r->problems);
    if (app->config_path) {
        int rc = sl_config_load_file(cfg, app->config_path, reload_problem, r);
        if (rc && json_array_size(r->problems) == n_before)
            reload_problem(r, app->config_path, 0, sl_strerror(rc));
    }
    sl_config_apply_env(cfg, environ, reload_problem, r);
    check_config(cfg, reload_problem, r);
    if (json_array_size(r->problems) > n_before) {
        size_t n = json_array_size(r->problems) - n_before;
        SL_LOGE(NULL, "config reload refused: %zu problem%s; nothing changed", n,
                n == 1 ? "" : "s");
        sl_config_cleanup(cfg);
        sl_free(cfg);
        return SL_EINVAL;
    }
    const sl_config_t *old = app->core.cfg;
    r->cfg = old;
    sl_config_diff(old, cfg, reload_diff, r);
    size_t i;
    json_t *v;
    json_array_foreach(r->restart, i, v) {
        if (sl_config_copy_key(cfg, old, json_string_value(v)) == SL_ENOMEM) {
            sl_config_cleanup(cfg);
            sl_free(cfg);
            return SL_ENOMEM;
        }
    }
    if (app->current)
        app->retired[app->n_retired++] = app->current;
    app->current = cfg;
    __atomic_store_n(&app->core.cfg, cfg, __ATOMIC_RELEASE); /* pool threads may read it */
    sl_log_set_level((sl_log_level_t)cfg->log_level);
    sl_log_set_json(cfg->log_format == 1);
    /* RTMP's setting, read by key: main names no protocol's header for it. */
    app->core.rtmp_partial.limit = sl_config_int(cfg, "rtmp.max_partial_bytes_total");
    for (int i = 0; i < app->n_protocols; i++)
        if (sl_builtin_protocols[i]->reload && app->proto_state[i])
            sl_builtin_protocols[i]->reload(app->proto_state[i], cfg);
    sl_plugins_reload(app->extensions, old, cfg, reload_module_report, r);
    json_array_foreach(r->restart, i, v)
        SL_LOGW(NULL, "config reload: %s changed: needs a restart (keeps its running value "
                "until then)", json_string_value(v));
    SL_LOGI(NULL, "config reloaded (%zu change%s)", r->n_changes, r->n_changes == 1 ? "" : "s");
    return 0;
}

/* The "server" service's reload (src/app/svc/server.h). */
static int svc_reload(void *ud, char **out_json)
{
    app_t *app = ud;
    reload_report_t r = {
        .problems = json_array(), .apps_added = json_array(), .apps_removed = json_array(),
        .apps_changed = json_array(), .keys_changed = json_array(), .restart = json_array(),
        .modules_restart = json_array(),
    };
    int rc = SL_ENOMEM;
    json_t *o = NULL;
    *out_json = NULL;
    if (r.problems && r.apps_added && r.apps_removed && r.apps_changed && r.keys_changed &&
        r.restart && r.modules_restart)
        rc = reload_apply(app, &r);
    if (rc == SL_EINVAL)
        o = json_pack("{s:O}", "problems", r.problems);
    else if (rc == 0)
        o = json_pack("{s:I, s:O, s:O, s:O, s:O, s:O, s:O}", "changes", (json_int_t)r.n_changes,
                      "apps_added", r.apps_added, "apps_removed", r.apps_removed, "apps_changed",
                      r.apps_changed, "keys_changed", r.keys_changed, "restart_required",
                      r.restart, "modules_restart_required", r.modules_restart);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (text) {
        *out_json = sl_strdup(text);
        free(text);
    }
    json_decref(o);
    json_t *all[] = {r.problems, r.apps_added, r.apps_removed, r.apps_changed, r.keys_changed,
                     r.restart, r.modules_restart};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        json_decref(all[k]);
    return rc;
}

static const sl_svc_server_t g_server_svc = {.reload = svc_reload};

static void on_sighup(uv_signal_t *s, int signum)
{
    (void)signum;
    app_t *app = s->data;
    char *answer = NULL;
    SL_LOGI(NULL, "SIGHUP: reloading the configuration");
    int rc = svc_reload(app, &answer);
    if (rc && rc != SL_EINVAL) /* SL_EINVAL: the problems are logged already */
        SL_LOGE(NULL, "config reload failed: %s", sl_strerror(rc));
    sl_free(answer);
}

/*
 * Makes reload reachable: SIGHUP and the "server" service (the API's
 * POST /api/v1/server/reload). The SIGHUP handle does not keep the loop
 * alive. Called once the core exists; 0 or an error (then nothing to undo).
 */
static int reload_init(app_t *app, const char *config_path)
{
    app->config_path = config_path;
    int rc = sl_service_register(&app->core, SL_SVC_SERVER_NAME, SL_SVC_SERVER_MAJOR,
                                 SL_SVC_SERVER_MINOR, &g_server_svc, app);
    if (rc)
        return rc;
    uv_signal_init(app->core.loop, &app->sighup);
    app->sighup.data = app;
    app->sighup_open = 1;
    uv_signal_start(&app->sighup, on_sighup, SIGHUP);
    uv_unref((uv_handle_t *)&app->sighup);
    return 0;
}

/* Stops taking reloads (shutdown): closes the SIGHUP handle, drops the service. */
static void reload_stop(app_t *app)
{
    if (!app->sighup_open)
        return;
    app->sighup_open = 0;
    sl_service_unregister(&app->core, SL_SVC_SERVER_NAME, &g_server_svc);
    uv_close((uv_handle_t *)&app->sighup, NULL);
}

/* Frees every configuration a reload installed (after the core is gone). */
static void reload_cleanup(app_t *app)
{
    for (size_t i = 0; i < app->n_retired; i++) {
        sl_config_cleanup(app->retired[i]);
        sl_free(app->retired[i]);
    }
    sl_free(app->retired);
    if (app->current) {
        sl_config_cleanup(app->current);
        sl_free(app->current);
    }
    app->retired = NULL;
    app->current = NULL;
    app->n_retired = 0;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sluice [--config FILE] [--check-config] [--print-config yaml|markdown] [--version]\n"
            "  --config FILE       configuration file (default ./sluice.yml when present)\n"
            "  --check-config      validate the configuration, print every error, exit\n"
            "  --print-config FMT  print the default configuration as yaml or markdown\n"
            "  --version           print the version\n"
            "http.web_root auto: ./web, else ../share/sluice/web beside the binary, else %s\n"
            "(the first with an index.html)\n",
            SL_WEB_ROOT_DEFAULT);
}

static void on_signal_closed(uv_handle_t *h) { (void)h; }

/* True when dir/index.html is a readable file. */
static int has_index(const char *dir)
{
    char path[4200];
    struct stat st;
    if (snprintf(path, sizeof path, "%s/index.html", dir) >= (int)sizeof path)
        return 0;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

/*
 * The folder served at / for http.web_root: "" serves none; any value other
 * than "auto" is used as it is; "auto" (the default) is the first of these
 * that holds index.html:
 *  1. ./web, in the working directory: the source tree, where `make run`
 *     starts (a developer's pages win over an older installed copy);
 *  2. <folder of the binary>/../share/sluice/web: an installed tree wherever
 *     it was put (a DESTDIR staging root, `dpkg -x`, a moved prefix);
 *  3. SL_WEB_ROOT_DEFAULT, compiled in at configure time.
 * None: a warning, and no pages. The answer is written to out (size n).
 */
static void web_root_resolve(const char *configured, char *out, size_t n)
{
    if (strcmp(configured, "auto") != 0) {
        snprintf(out, n, "%s", configured);
        return;
    }
    if (has_index("./web")) {
        snprintf(out, n, "./web");
        return;
    }
    char exe[4096];
    size_t exe_len = sizeof exe;
    if (uv_exepath(exe, &exe_len) == 0) {
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            if (snprintf(out, n, "%s/../share/sluice/web", exe) < (int)n && has_index(out))
                return;
        }
    }
    if (has_index(SL_WEB_ROOT_DEFAULT)) {
        snprintf(out, n, "%s", SL_WEB_ROOT_DEFAULT);
        return;
    }
    SL_LOGW(NULL, "http: web_root auto: no index.html in ./web, beside the binary "
            "(../share/sluice/web) or in %s; no web pages are served (set http.web_root)",
            SL_WEB_ROOT_DEFAULT);
    out[0] = '\0';
}

static int on_healthz(sl_http_req_t *req, void *ud)
{
    (void)ud;
    return sl_http_respond(req, 200, "text/plain", "ok\n", 3, NULL);
}

/* Graceful stop of every started protocol, in reverse table order. */
static void stop_protocols(app_t *app)
{
    for (int i = app->n_protocols - 1; i >= 0; i--)
        if (sl_builtin_protocols[i]->stop && app->proto_state[i])
            sl_builtin_protocols[i]->stop(app->proto_state[i]);
}

static void on_signal(uv_signal_t *s, int signum)
{
    app_t *app = s->data;
    if (++app->signals > 1) {
        SL_LOGW(NULL, "second signal: exiting now");
        _exit(1);
    }
    SL_LOGI(NULL, "%s: shutting down (%zu sessions)", signum == SIGINT ? "SIGINT" : "SIGTERM",
            app->core.n_sessions);
    app->core.shutting_down = 1;
    sl_plugins_stop(app->extensions);
    sl_api_stop(app->api);
    stop_protocols(app);
    reload_stop(app);
    /* Signal handles stay referenced but must not keep the loop alive. */
    uv_unref((uv_handle_t *)&app->sigint);
    uv_unref((uv_handle_t *)&app->sigterm);
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    int check_only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strcmp(argv[i], "--check-config") == 0) {
            check_only = 1;
        } else if (strcmp(argv[i], "--print-config") == 0 && i + 1 < argc) {
            const char *fmt = argv[++i];
            if (strcmp(fmt, "yaml") == 0)
                sl_config_write_yaml(stdout);
            else if (strcmp(fmt, "markdown") == 0)
                sl_config_write_markdown(stdout);
            else {
                usage(stderr);
                return 2;
            }
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("sluice %s (plugin ABI %d.%d)\n", SL_VERSION_STRING, SL_ABI_MAJOR, SL_ABI_MINOR);
            return 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "sluice: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!config_path && getenv("SLUICE_CONFIG"))
        config_path = getenv("SLUICE_CONFIG");
    if (!config_path && access("sluice.yml", R_OK) == 0)
        config_path = "sluice.yml";

    sl_config_t cfg;
    int n_err = 0;
    if (sl_config_defaults(&cfg)) {
        fprintf(stderr, "sluice: out of memory\n");
        return 1;
    }
    if (config_path) {
        int rc = sl_config_load_file(&cfg, config_path, print_err, &n_err);
        if (rc && !n_err)
            fprintf(stderr, "%s: %s\n", config_path, sl_strerror(rc)), n_err++;
    }
    sl_config_apply_env(&cfg, environ, print_err, &n_err);
    /* Everything start would refuse, found before anything opens: a start that
     * fails here has printed no listener line, and --check-config runs the
     * very same checks. They run even after a syntax error, so that one run
     * names every problem. */
    check_config(&cfg, print_err, &n_err); /* print_err counts what it prints */
    if (n_err) {
        fprintf(stderr, "sluice: %d configuration error%s\n", n_err, n_err == 1 ? "" : "s");
        sl_config_cleanup(&cfg);
        return 1;
    }
    if (check_only) {
        printf("%s: configuration OK\n", config_path ? config_path : "(defaults)");
        sl_config_cleanup(&cfg);
        return 0;
    }
    sl_log_set_level((sl_log_level_t)cfg.log_level);
#ifdef SL_FAULT_INJECTION
    /* Test builds only: leak this many bytes on purpose, so that the e2e suite
     * can prove its exit-report check catches a leak (test_lifecycle.py). */
    if (getenv("SL_TEST_LEAK_BYTES") && atoi(getenv("SL_TEST_LEAK_BYTES")) > 0)
        (void)sl_malloc((size_t)atoi(getenv("SL_TEST_LEAK_BYTES")));
#endif
    sl_log_set_json(cfg.log_format == 1);
    signal(SIGPIPE, SIG_IGN);

    int rc = sl_mkdir_p(cfg.server_data_dir);
    if (rc) {
        SL_LOGE(NULL, "cannot create data folder %s: %s", cfg.server_data_dir, sl_strerror(rc));
        sl_config_cleanup(&cfg);
        return 1;
    }

    app_t app;
    memset(&app, 0, sizeof app);
    uv_loop_t *loop = uv_default_loop();
    if (sl_core_init(&app.core, loop, &cfg)) {
        SL_LOGE(NULL, "out of memory");
        return 1;
    }
    /* The worker loops (server.workers): started before the protocols so
     * they can find them on the core; none with one loop, which is then
     * exactly the single-loop server. */
    int n_workers = (int)cfg.server_workers;
    if (n_workers == 0) {
        unsigned cores = uv_available_parallelism();
        n_workers = cores > SL_WORKERS_MAX ? SL_WORKERS_MAX : (int)cores;
    }
    if (n_workers > 1) {
        /* Workers post the main loop at most a close request and a "gone"
         * per connection (rtmp_conn.c), so its inbox sized from
         * max_connections never refuses; a worker's inbox takes one message
         * per frame per stream it plays, plus control bytes: a full one makes
         * a relay drop to the next keyframe, other posts wait for room. */
        size_t inbox_cap = (size_t)cfg.server_max_connections * 4;
        if (inbox_cap < WORKER_INBOX_CAP)
            inbox_cap = WORKER_INBOX_CAP;
        rc = sl_workers_new(loop, n_workers, inbox_cap, sl_frame_pool_drain, &app.core.workers);
        if (rc) {
            SL_LOGE(NULL, "server.workers %d: cannot start the worker loops: %s", n_workers,
                    sl_strerror(rc));
            sl_core_cleanup(&app.core);
            sl_config_cleanup(&cfg);
            return 1;
        }
        SL_LOGI(NULL, "%d event loops (server.workers): the main loop and %d workers", n_workers,
                n_workers - 1);
    }
    /* Signals first (and only then the "starting" line): the listeners open
     * before the modules start, so a supervisor may see the ports and send
     * SIGTERM while we still start. libuv queues it, and the loop then stops
     * gracefully (exit 0) instead of the default action killing a
     * half-started process. */
    uv_signal_init(loop, &app.sigint);
    uv_signal_init(loop, &app.sigterm);
    app.sigint.data = app.sigterm.data = &app;
    uv_signal_start(&app.sigint, on_signal, SIGINT);
    uv_signal_start(&app.sigterm, on_signal, SIGTERM);
    if (reload_init(&app, config_path))
        SL_LOGW(NULL, "reload: not available (out of memory)");
    SL_LOGI(NULL, "sluice %s starting (config %s, data %s)", SL_VERSION_STRING,
            config_path ? config_path : "defaults", cfg.server_data_dir);
    int exit_code = 0;
    /* The protocols, in table order; each logs where it listens. */
    for (; sl_builtin_protocols[app.n_protocols] && app.n_protocols < MAX_PROTOCOLS;
         app.n_protocols++) {
        const sl_proto_t *p = sl_builtin_protocols[app.n_protocols];
        if (!p->enabled(&cfg))
            continue;
        rc = p->start(&app.core, &app.proto_state[app.n_protocols]);
        if (rc) {
            /* The protocol logged why; a state it left is stopped and freed below. */
            exit_code = 1;
            app.n_protocols++;
            goto out;
        }
        if (p == &sl_http_proto)
            app.http = sl_http_proto_server(app.proto_state[app.n_protocols]);
    }
    if (app.http) {
        const sl_http_route_spec_t healthz = {.method = "GET", .prefix = "/healthz",
                                              .prio = SL_HTTP_PRIO_CORE, .name = "healthz",
                                              .serves = "", .cb = on_healthz};
        rc = sl_http_route_add(app.http, &healthz, NULL);
        rc = rc ? rc : sl_api_start(&app.core, app.http, &app.api);
        char web_root[4200];
        web_root_resolve(sl_http_cfg(&cfg)->web_root, web_root, sizeof web_root);
        if (!rc && web_root[0]) {
            SL_LOGI(NULL, "http: web pages from %s", web_root);
            rc = sl_http_static(app.http, "/", web_root);
        }
        if (rc) {
            SL_LOGE(NULL, "http: cannot start the API: %s", sl_strerror(rc));
            exit_code = 1;
            goto out;
        }
    }
    /* The store opens before the modules: they find it as the service "store"
     * and run their migrations at start. Without it (the file cannot be opened)
     * each module does what it did when its own connection failed. */
    char db_path[4096];
    snprintf(db_path, sizeof db_path, "%s/%s", cfg.server_data_dir, SL_STORE_FILE);
    rc = sl_store_open(&app.core, db_path, &app.store);
    if (rc)
        SL_LOGE(NULL, "store %s not opened: %s", db_path, sl_strerror(rc));
    /* The built-in modules in table order, then the plugins: one path (the
     * host logs which one failed; what started is stopped and freed below). */
    rc = sl_plugins_start(&app.core, app.http, sl_builtin_modules, &app.extensions);
    if (rc) {
        exit_code = 1;
        goto out;
    }
    uv_run(loop, UV_RUN_DEFAULT);

    uv_close((uv_handle_t *)&app.sigint, on_signal_closed);
    uv_close((uv_handle_t *)&app.sigterm, on_signal_closed);
    uv_run(loop, UV_RUN_DEFAULT);
out:
    if (exit_code) {
        /* Startup failed after some handles were opened: close them. */
        sl_plugins_stop(app.extensions);
        sl_api_stop(app.api);
        stop_protocols(&app);
        reload_stop(&app);
        uv_close((uv_handle_t *)&app.sigint, on_signal_closed);
        uv_close((uv_handle_t *)&app.sigterm, on_signal_closed);
        uv_run(loop, UV_RUN_DEFAULT);
    }
    sl_plugins_free(app.extensions);
    /* After the modules: they finalise their statements through it, and its
     * last done callbacks run here; the loop then closes its handle. */
    sl_store_close(app.store);
    uv_run(loop, UV_RUN_DEFAULT);
    sl_api_free(app.api);
    for (int i = app.n_protocols - 1; i >= 0; i--)
        if (sl_builtin_protocols[i]->free && app.proto_state[i])
            sl_builtin_protocols[i]->free(app.proto_state[i]);
    /* Every protocol has let go of the worker loops (their handles there
     * are closed): the threads end and are joined. */
    sl_workers_stop(app.core.workers);
    sl_workers_free(app.core.workers);
    app.core.workers = NULL;
    sl_core_cleanup(&app.core);
    sl_frame_pool_drain();
    if (uv_loop_close(loop) != 0)
        SL_LOGW(NULL, "loop closed with handles still open");
    sl_config_cleanup(&cfg);
    reload_cleanup(&app);
    /* The allocator's count is news only when it is not zero (a leak); the
     * e2e tests read both lines (tests/e2e/conftest.py). */
    if (sl_alloc_bytes() || sl_alloc_blocks())
        SL_LOGW(NULL, "stopped (memory still allocated: %lld bytes in %lld blocks)",
                (long long)sl_alloc_bytes(), (long long)sl_alloc_blocks());
    else
        SL_LOGI(NULL, "stopped");
    return exit_code;
}
