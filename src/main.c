/*
 * The sluice process: command line, configuration, logging, the loop, the
 * listeners, signals and graceful shutdown.
 *
 *   sluice [--config FILE] [--check-config] [--print-config yaml|markdown] [--version]
 *
 * Configuration comes from the built-in defaults, then the YAML file
 * (--config, or ./sluice.yml when present), then SLUICE_<SECTION>_<KEY>
 * environment variables. Then every check that start depends on runs
 * (certificates, each module's sl_module_t.check: files readable, URL
 * schemes, event names...), reporting each problem at the file:line that set
 * it; --check-config stops there, and a start with problems exits before any
 * listener opens. SIGINT/SIGTERM stop gracefully: listeners close,
 * clients are told their streams end, pending writes drain (bounded by
 * server.shutdown_timeout), and the process exits 0. A second signal exits
 * at once.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "api/api.h"
#include "app/core.h"
#include "app/store.h"
#include "base/alloc.h"
#include "base/fs.h"
#include "base/config.h"
#include "base/log.h"
#include "media/frame.h"
#include "modules/module.h"
#include "proto/http/http.h"
#include "proto/proto.h"
#include "sluice/errors.h"
#include "sluice/version.h"
#include "proto/http/http_config.h"
#include "builtin_config.h"

extern char **environ;

#define MAX_MODULES 32
#define MAX_PROTOCOLS 16

typedef struct {
    sl_core_t core;
    void *proto_state[MAX_PROTOCOLS]; /* of each started protocol, NULL when off */
    int n_protocols;                  /* protocols (of the table) started or skipped */
    sl_http_server_t *http;           /* the "http" protocol's server (routes), else NULL */
    sl_api_t *api;
    void *module_state[MAX_MODULES];
    int n_modules;                 /* modules started */
    sl_store_t *store;             /* {data_dir}/sluice.db, the one SQLite writer (owned) */
    uv_signal_t sigint, sigterm;
    int signals;
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
    for (int i = 0; sl_builtin_modules[i]; i++)
        if (sl_builtin_modules[i]->check)
            n += sl_builtin_modules[i]->check(cfg, err, ud);
    return n;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sluice [--config FILE] [--check-config] [--print-config yaml|markdown] [--version]\n"
            "  --config FILE       configuration file (default ./sluice.yml when present)\n"
            "  --check-config      validate the configuration, print every error, exit\n"
            "  --print-config FMT  print the default configuration as yaml or markdown\n"
            "  --version           print the version\n");
}

static void on_signal_closed(uv_handle_t *h) { (void)h; }

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
    for (int i = app->n_modules - 1; i >= 0; i--)
        if (sl_builtin_modules[i]->stop && app->module_state[i])
            sl_builtin_modules[i]->stop(app->module_state[i]);
    sl_api_stop(app->api);
    stop_protocols(app);
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
        if (!rc && sl_http_cfg(&cfg)->web_root[0])
            rc = sl_http_static(app.http, "/", sl_http_cfg(&cfg)->web_root);
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
    for (; sl_builtin_modules[app.n_modules] && app.n_modules < MAX_MODULES; app.n_modules++) {
        const sl_module_t *m = sl_builtin_modules[app.n_modules];
        rc = m->start(&app.core, app.http, &app.module_state[app.n_modules]);
        if (rc) {
            /* A module that failed after setting its state is stopped and
             * freed with the others (the plugins module has loaded some). */
            if (app.module_state[app.n_modules])
                app.n_modules++;
            SL_LOGE(NULL, "module %s failed to start: %s", m->name, sl_strerror(rc));
            exit_code = 1;
            goto out;
        }
    }
    uv_run(loop, UV_RUN_DEFAULT);

    uv_close((uv_handle_t *)&app.sigint, on_signal_closed);
    uv_close((uv_handle_t *)&app.sigterm, on_signal_closed);
    uv_run(loop, UV_RUN_DEFAULT);
out:
    if (exit_code) {
        /* Startup failed after some handles were opened: close them. */
        for (int i = app.n_modules - 1; i >= 0; i--)
            if (sl_builtin_modules[i]->stop && app.module_state[i])
                sl_builtin_modules[i]->stop(app.module_state[i]);
        sl_api_stop(app.api);
        stop_protocols(&app);
        uv_close((uv_handle_t *)&app.sigint, on_signal_closed);
        uv_close((uv_handle_t *)&app.sigterm, on_signal_closed);
        uv_run(loop, UV_RUN_DEFAULT);
    }
    for (int i = app.n_modules - 1; i >= 0; i--)
        if (sl_builtin_modules[i]->free && app.module_state[i])
            sl_builtin_modules[i]->free(app.module_state[i]);
    /* After the modules: they finalise their statements through it, and its
     * last done callbacks run here; the loop then closes its handle. */
    sl_store_close(app.store);
    uv_run(loop, UV_RUN_DEFAULT);
    sl_api_free(app.api);
    for (int i = app.n_protocols - 1; i >= 0; i--)
        if (sl_builtin_protocols[i]->free && app.proto_state[i])
            sl_builtin_protocols[i]->free(app.proto_state[i]);
    sl_core_cleanup(&app.core);
    sl_frame_pool_drain();
    if (uv_loop_close(loop) != 0)
        SL_LOGW(NULL, "loop closed with handles still open");
    sl_config_cleanup(&cfg);
    /* The allocator's count is news only when it is not zero (a leak); the
     * e2e tests read both lines (tests/e2e/conftest.py). */
    if (sl_alloc_bytes() || sl_alloc_blocks())
        SL_LOGW(NULL, "stopped (memory still allocated: %lld bytes in %lld blocks)",
                (long long)sl_alloc_bytes(), (long long)sl_alloc_blocks());
    else
        SL_LOGI(NULL, "stopped");
    return exit_code;
}
