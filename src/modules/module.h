/*
 * Built-in modules: features that sit on the core's extension points
 * (event bus listeners, admission checks, HTTP routes, services) rather
 * than inside a protocol. Each is written against the public plugin
 * interface (include/sluice/plugin.h): a `static const sl_plugin_t` with
 * init/stop/destroy/reload, which the host (src/modules/plugins) runs
 * through the same path as a dlopen'ed plugin: the loader's ABI check
 * (src/app/loader.c), init in table order after the listeners are up,
 * reload on a configuration reload, stop in reverse order, destroy after
 * the loop has closed every handle (DESIGN.md §5, docs/internals/SEAMS.md).
 *
 * What a built-in has and a plugin does not is in its sl_builtin_t: its
 * settings table, its configuration check, and (through sl_host_core /
 * sl_host_http, below) the core and the HTTP server. Built-ins register
 * their own listeners and checks in named phases, so they leave on_event
 * and admit NULL.
 */
#ifndef SL_MODULES_MODULE_H
#define SL_MODULES_MODULE_H

#include "app/core.h"
#include "base/config.h"
#include "sluice/plugin.h"

typedef struct sl_http_server sl_http_server_t;

/** One built-in module: its plugin descriptor and what only a built-in has. */
typedef struct sl_builtin {
    /**
     * The module as a plugin (SL_PLUGIN_ABI, name, init, destroy
     * mandatory; stop and reload optional). init receives the same host API
     * table as a plugin; the built-in reaches the core with sl_host_core(h).
     * A built-in with nothing configured returns 0 with *state NULL (inert):
     * at each reload the host runs its init again instead of its reload, so
     * that it starts when the new configuration gives it work (the one rule
     * that differs from a plugin's, whose reload gets a NULL state). stop
     * and destroy are called after a successful init whatever the state,
     * NULL included. reload(state) runs after core->cfg points at the new
     * configuration, which passed every check (this module's included):
     * 0; SL_EAGAIN when its changed settings need a restart (nothing was
     * changed); another negative error when it failed (it keeps its old
     * settings). Configurations stay allocated until exit, so a module that
     * compares with the old one keeps a pointer to the one it started with.
     */
    const sl_plugin_t *plugin;
    /**
     * The module's settings (its section of sluice.yml and per-app keys;
     * see base/config.h), or NULL. Modules may share one (the three auth
     * modules own `auth` together). The process lists every section in
     * file order in src/builtin_config.c; a test checks that each module's
     * is there.
     */
    const sl_config_section_t *config;
    /**
     * Validates the module's settings in cfg (borrowed, for the call) without
     * side effects: files are read and parsed but nothing is opened for
     * good, written, or started. Every problem is reported through err with
     * sl_config_report (so the user sees the file and line that set the
     * key), not logged; checking goes on after a problem so that all of them
     * are reported at once. Returns the number of problems (0 = fine).
     * Runs for --check-config, at start before any listener opens, and on
     * reload before anything changes; init and reload may assume it
     * passed. May be NULL (nothing to check).
     */
    int (*check)(const sl_config_t *cfg, sl_config_err_cb err, void *ud);
} sl_builtin_t;

/** The built-in modules in start order; NULL-terminated. */
extern const sl_builtin_t *const sl_builtin_modules[];

/**
 * The core a built-in runs in (borrowed; valid until its destroy returns).
 * Only for built-ins: the handle of a dlopen'ed plugin answers too, but a
 * plugin cannot name this function (it is not exported).
 */
sl_core_t *sl_host_core(sl_host_t *h);

/**
 * The HTTP server for routes (borrowed, same lifetime as the core), or
 * NULL when HTTP is off. Only for built-ins, like sl_host_core.
 */
sl_http_server_t *sl_host_http(sl_host_t *h);

#endif
