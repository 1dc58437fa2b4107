/*
 * The host of extensions without plugins: it provides the service "rpc" 1.0
 * (src/app/svc/rpc.h) while it runs, whose registry adds, lists, calls
 * and removes methods; nothing calls it in the server yet, so this test is
 * its caller. A config with a plugin that cannot load makes the module's
 * check report it against the entry's file and line, and start fail with
 * everything cleaned up. A reload that adds a plugin needs a restart.
 * Built-in modules run through the same host: init in table order, stop
 * and destroy in reverse, reload (an inert one inited again), the ABI
 * check, the "extensions" listing. Nothing is left allocated afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h>

#include "app/core.h"
#include "app/services.h"
#include "app/svc/extensions.h"
#include "app/svc/rpc.h"
#include "base/alloc.h"
#include "base/config.h"
#include "builtin_config.h"
#include "modules/plugins/plugins.h"
#include "sluice/errors.h"

typedef struct {
    int calls;
    int status;
    char result[256];
} reply_t;

static void on_reply(void *ud, int status, const char *json)
{
    reply_t *r = ud;
    r->calls++;
    r->status = status;
    snprintf(r->result, sizeof r->result, "%s", json ? json : "");
}

/* Echoes its arguments wrapped: {"method": ..., "args": ...}. */
static int echo(void *ud, const char *method, const char *args, sl_rpc_reply_cb reply, void *rud)
{
    char out[256];
    (*(int *)ud)++;
    snprintf(out, sizeof out, "{\"method\":\"%s\",\"args\":%s}", method, args);
    reply(rud, 0, out);
    return 0;
}

static void each_method(void *arg, const char *method, const char *owner)
{
    char *out = arg;
    strcat(out, method);
    strcat(out, "@");
    strcat(out, owner);
    strcat(out, ";");
}

/* Writes "name=rc" of the last extension a reload reported. */
static void on_reload_report(void *ud, const char *name, int rc)
{
    snprintf(ud, 64, "%s=%d", name, rc);
}

static void test_rpc_service(void **state)
{
    (void)state;
    int64_t bytes0 = sl_alloc_bytes();
    sl_config_t cfg;
    uv_loop_t loop;
    sl_core_t core;
    sl_plugins_t *st = NULL;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(sl_core_init(&core, &loop, &cfg), 0);
    assert_int_equal(sl_plugins_check(&cfg, NULL, NULL, NULL), 0);
    assert_int_equal(sl_plugins_start(&core, NULL, NULL, &st), 0);

    void *ud = NULL;
    const sl_rpc_service_t *rpc =
        sl_service_get(&core, SL_RPC_SERVICE, SL_RPC_SERVICE_MAJOR, SL_RPC_SERVICE_MINOR, &ud);
    assert_non_null(rpc);
    int n_calls = 0;
    reply_t r = {0};
    assert_int_equal(rpc->call(ud, "room.echo", "[1]", on_reply, &r), SL_ENOTFOUND);
    assert_int_equal(rpc->add(ud, "room.echo", "test", echo, &n_calls), 0);
    assert_int_equal(rpc->add(ud, "room.echo", "other", echo, &n_calls), SL_EBUSY);
    assert_int_equal(rpc->add(ud, "", "test", echo, &n_calls), SL_EINVAL);
    assert_int_equal(rpc->add(ud, "second", "test2", echo, &n_calls), 0);
    char list[128] = "";
    rpc->each(ud, each_method, list);
    assert_string_equal(list, "room.echo@test;second@test2;");

    assert_int_equal(rpc->call(ud, "room.echo", "{\"a\":1}", on_reply, &r), 0);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.result, "{\"method\":\"room.echo\",\"args\":{\"a\":1}}");
    assert_int_equal(rpc->call(ud, "second", NULL, on_reply, &r), 0); /* no args: null */
    assert_string_equal(r.result, "{\"method\":\"second\",\"args\":null}");
    assert_int_equal(n_calls, 2);

    rpc->remove(ud, "room.echo");
    assert_int_equal(rpc->call(ud, "room.echo", "[]", on_reply, &r), SL_ENOTFOUND);

    /* Reload: nothing in `plugins:` changed is fine; a plugin added needs a restart. */
    static const char added[] = "plugins:\n  - {name: late, path: /x/late.so}\n";
    sl_config_t cfg2;
    assert_int_equal(sl_config_defaults(&cfg2), 0);
    assert_int_equal(sl_config_load_string(&cfg2, added, sizeof added - 1, "r.yml", NULL, NULL), 0);
    char who[64] = "";
    assert_int_equal(sl_plugins_reload(st, &cfg, &cfg, on_reload_report, who), 0);
    assert_string_equal(who, "");
    assert_int_equal(sl_plugins_reload(st, &cfg, &cfg2, on_reload_report, who), 1);
    char want[64];
    snprintf(want, sizeof want, "plugins=%d", SL_EAGAIN); /* a plugin added needs a restart */
    assert_string_equal(who, want);
    sl_config_cleanup(&cfg2);

    sl_plugins_stop(st);
    assert_null(sl_service_get(&core, SL_RPC_SERVICE, 1, 0, NULL)); /* gone with the module */
    uv_run(&loop, UV_RUN_DEFAULT);
    sl_plugins_free(st);
    sl_core_cleanup(&core);
    assert_int_equal(uv_loop_close(&loop), 0);
    sl_config_cleanup(&cfg);
    assert_int_equal(sl_alloc_bytes(), bytes0);
}

static void count_err(void *ud, const char *where, int line, const char *msg)
{
    char *out = ud;
    snprintf(out, 512, "%s:%d: %s", where, line, msg);
}

static void test_unloadable_plugin(void **state)
{
    (void)state;
    int64_t bytes0 = sl_alloc_bytes();
    static const char yml[] = "plugins:\n"
                              "  - name: ghost\n"
                              "    path: /nonexistent/ghost.so\n"
                              "    apps: [live]\n"
                              "    settings: {a: 1, b: two}\n";
    sl_config_t cfg;
    uv_loop_t loop;
    sl_core_t core;
    sl_plugins_t *st = NULL;
    char msg[512] = "";
    assert_int_equal(sl_config_defaults(&cfg), 0);
    assert_int_equal(sl_config_load_string(&cfg, yml, sizeof yml - 1, "t.yml", NULL, NULL), 0);
    assert_int_equal(cfg.n_plugins, 1);
    assert_string_equal(cfg.plugins[0].name, "ghost");
    assert_int_equal(cfg.plugins[0].n_apps, 1);
    assert_int_equal(cfg.plugins[0].n_settings, 2);
    assert_string_equal(cfg.plugins[0].settings[3], "two");
    assert_int_equal(sl_plugins_check(&cfg, NULL, count_err, msg), 1);
    assert_non_null(strstr(msg, "t.yml:2: plugins.ghost: plugin /nonexistent/ghost.so: cannot load"));
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(sl_core_init(&core, &loop, &cfg), 0);
    assert_int_equal(sl_plugins_start(&core, NULL, NULL, &st), SL_ENOTFOUND);
    assert_non_null(st); /* main stops and frees the host after a failed start */
    sl_plugins_stop(st);
    uv_run(&loop, UV_RUN_DEFAULT);
    sl_plugins_free(st);
    sl_core_cleanup(&core);
    assert_int_equal(uv_loop_close(&loop), 0);
    sl_config_cleanup(&cfg);
    assert_int_equal(sl_alloc_bytes(), bytes0);
}

/* ---- built-ins through the host -------------------------------------- */

/* What the fake built-ins did, in order: "<name>.<callback>;" */
static char g_calls[512];
static int g_b_has_work; /* whether built-in "b" finds work (init sets a state) */

static void called(const char *name, const char *what)
{
    size_t n = strlen(g_calls);
    snprintf(g_calls + n, sizeof g_calls - n, "%s.%s;", name, what);
}

static int a_init(const sl_host_api_t *api, sl_host_t *h, void **state)
{
    assert_non_null(api);
    assert_non_null(sl_host_core(h)); /* a built-in reaches the core */
    assert_null(sl_host_http(h));     /* HTTP is off in this test */
    assert_string_equal(api->name(h), "a");
    assert_int_equal(api->serves_app(h, "any"), 1);
    assert_null(api->setting(h, "x"));
    called("a", "init");
    *state = &g_calls; /* any non-NULL state */
    return 0;
}
static void a_stop(void *state) { assert_non_null(state), called("a", "stop"); }
static void a_destroy(void *state) { assert_non_null(state), called("a", "destroy"); }
static int a_reload(void *state) { assert_non_null(state), called("a", "reload"); return 0; }

static int b_init(const sl_host_api_t *api, sl_host_t *h, void **state)
{
    (void)api, (void)h;
    called("b", g_b_has_work ? "init+work" : "init");
    *state = g_b_has_work ? &g_b_has_work : NULL;
    return 0;
}
static void b_stop(void *state) { called("b", state ? "stop" : "stop(inert)"); }
static void b_destroy(void *state) { called("b", state ? "destroy" : "destroy(inert)"); }
static int b_reload(void *state) { assert_non_null(state), called("b", "reload"); return SL_EAGAIN; }

static const sl_plugin_t a_plugin = {SL_PLUGIN_ABI, .name = "a", .version = "7", .init = a_init,
                                     .stop = a_stop, .destroy = a_destroy, .reload = a_reload};
static const sl_plugin_t b_plugin = {SL_PLUGIN_ABI, .name = "b", .init = b_init, .stop = b_stop,
                                     .destroy = b_destroy, .reload = b_reload};
static const sl_builtin_t a_builtin = {.plugin = &a_plugin};
static const sl_builtin_t b_builtin = {.plugin = &b_plugin};

/* Counts each extension the "extensions" service lists, as "name:kind:abi;". */
static void list_one(void *arg, const sl_extension_info_t *x)
{
    char *out = arg;
    size_t n = strlen(out);
    snprintf(out + n, 256 - n, "%s:%s:%d.%d;", x->name, x->kind, x->abi_major, x->abi_minor);
}

/*
 * Built-ins go through the plugin path: init in table order, an inert one
 * (no state) inited again at a reload instead of reloaded, the others
 * reloaded (a nonzero answer reported by name), stop and destroy in reverse
 * order whatever the state, listed by "extensions"; a descriptor the ABI
 * check refuses is not run.
 */
static void test_builtins_run_as_plugins(void **state)
{
    (void)state;
    int64_t bytes0 = sl_alloc_bytes();
    sl_config_t cfg;
    uv_loop_t loop;
    sl_core_t core;
    assert_int_equal(sl_config_defaults(&cfg), 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(sl_core_init(&core, &loop, &cfg), 0);
    const sl_builtin_t *const table[] = {&a_builtin, &b_builtin, NULL};
    g_calls[0] = '\0';
    g_b_has_work = 0;
    sl_plugins_t *st = NULL;
    assert_int_equal(sl_plugins_start(&core, NULL, table, &st), 0);
    assert_string_equal(g_calls, "a.init;b.init;");
    assert_null(sl_plugins_state(st, "b"));

    void *ud;
    const sl_svc_extensions_t *ext = sl_service_get(&core, SL_SVC_EXTENSIONS, 1, 0, &ud);
    assert_non_null(ext);
    char list[256] = "";
    ext->each(ud, list_one, list);
    char want[256];
    snprintf(want, sizeof want, "a:builtin:%d.%d;b:builtin:%d.%d;", SL_ABI_MAJOR, SL_ABI_MINOR,
             SL_ABI_MAJOR, SL_ABI_MINOR);
    assert_string_equal(list, want);

    /* Reload: a reloads; b, inert, is inited again and now finds work. */
    g_calls[0] = '\0';
    g_b_has_work = 1;
    char who[64] = "";
    assert_int_equal(sl_plugins_reload(st, &cfg, &cfg, on_reload_report, who), 0);
    assert_string_equal(g_calls, "a.reload;b.init+work;");
    assert_non_null(sl_plugins_state(st, "b"));
    /* Next reload: b has a state, so its reload runs (and asks for a restart). */
    g_calls[0] = '\0';
    assert_int_equal(sl_plugins_reload(st, &cfg, &cfg, on_reload_report, who), 1);
    assert_string_equal(g_calls, "a.reload;b.reload;");
    snprintf(want, sizeof want, "b=%d", SL_EAGAIN);
    assert_string_equal(who, want);

    g_calls[0] = '\0';
    sl_plugins_stop(st);
    sl_plugins_stop(st); /* twice: once */
    assert_null(sl_service_get(&core, SL_SVC_EXTENSIONS, 1, 0, NULL));
    uv_run(&loop, UV_RUN_DEFAULT);
    sl_plugins_free(st);
    assert_string_equal(g_calls, "b.stop;a.stop;b.destroy;a.destroy;");

    /* An inert built-in is stopped and destroyed with its NULL state; a
     * descriptor of another ABI is refused before anything of it runs. */
    static const sl_plugin_t bad_plugin = {.abi_major = SL_ABI_MAJOR + 1, .abi_minor = 0,
                                           .size = sizeof(sl_plugin_t), .name = "bad",
                                           .init = a_init, .destroy = a_destroy};
    static const sl_builtin_t bad_builtin = {.plugin = &bad_plugin};
    const sl_builtin_t *const bad_table[] = {&b_builtin, &bad_builtin, &a_builtin, NULL};
    g_calls[0] = '\0';
    g_b_has_work = 0;
    assert_int_equal(sl_plugins_start(&core, NULL, bad_table, &st), SL_EINVAL);
    sl_plugins_stop(st);
    uv_run(&loop, UV_RUN_DEFAULT);
    sl_plugins_free(st);
    assert_string_equal(g_calls, "b.init;b.stop(inert);b.destroy(inert);");

    sl_core_cleanup(&core);
    assert_int_equal(uv_loop_close(&loop), 0);
    sl_config_cleanup(&cfg);
    assert_int_equal(sl_alloc_bytes(), bytes0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rpc_service),
        cmocka_unit_test(test_unloadable_plugin),
        cmocka_unit_test(test_builtins_run_as_plugins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
