/*
 * Built-in modules: features that sit on the core's extension points
 * (event bus listeners, admission checks, HTTP routes) rather than inside
 * a protocol. Each is one const struct; main.c runs every module's check
 * (for --check-config, and at start before any listener opens), starts them
 * in table order after the listeners are up, calls each one's reload when
 * the configuration is reloaded, and stops them in reverse order on
 * shutdown.
 *
 * This is the internal form of the plugin interface of DESIGN.md §5: the
 * stable C ABI (include/sluice/plugin.h, dlopen'ed plugins) will wrap the
 * same extension points; built-ins then move onto it unchanged in shape.
 */
#ifndef SL_MODULES_MODULE_H
#define SL_MODULES_MODULE_H

#include "app/core.h"
#include "base/config.h"

typedef struct sl_http_server sl_http_server_t;

typedef struct sl_module {
    const char *name;
    /**
     * The module's settings (its section of sluice.yml and per-app keys;
     * see base/config.h), or NULL. Modules may share one (the three auth
     * modules own `auth` together). The process lists every section in
     * file order in src/builtin_config.c; a test checks that each module's
     * is there.
     */
    const sl_config_section_t *config;
    /**
     * Starts the module: reads its configuration from core->cfg, registers
     * its listeners/checks/routes (http may be NULL when HTTP is off), and
     * returns its state in *state. A module with nothing configured returns
     * 0 with *state NULL and stays inert. An error aborts startup.
     */
    int (*start)(sl_core_t *core, sl_http_server_t *http, void **state);
    /** Graceful stop (close handles, finish or persist work). May be NULL. */
    void (*stop)(void *state);
    /** Frees the state after the loop has closed the module's handles. May be NULL. */
    void (*free)(void *state);
    /**
     * Validates the module's settings in cfg (borrowed, for the call) without
     * side effects: files are read and parsed but nothing is opened for
     * good, written, or started. Every problem is reported through err with
     * sl_config_report (so the user sees the file and line that set the
     * key), not logged; checking goes on after a problem so that all of them
     * are reported at once. Returns the number of problems (0 = fine).
     * main runs it for --check-config, at start before any listener
     * opens, and on reload before anything changes; start and reload may
     * assume it passed. May be NULL (nothing to check).
     */
    int (*check)(const sl_config_t *cfg, sl_config_err_cb err, void *ud);
    /**
     * Live reload (SIGHUP, POST /api/v1/server/reload): the new
     * configuration new_cfg passed every check (this module's `check`
     * included) and core->cfg already points at it; old_cfg is the one the
     * module ran with. The module re-reads the settings it cached at start
     * (files, keys, URLs, timers) so that they apply to new work; work in
     * flight may finish under the old settings. Both configurations stay
     * allocated until exit, so pointers into old_cfg (apps, strings) taken
     * earlier stay valid. *state is the module's state, NULL when it was
     * inert: the module may then start (set *state, as start does) when
     * new_cfg gives it work; http as for start. Returns 0; SL_EAGAIN when a
     * change of its settings can only take effect after a restart (main
     * reports the module as needing one; nothing was changed); another
     * negative error when the reload failed (logged by main; the module
     * must be left running on its old settings). Runs on the loop thread.
     * May be NULL: the module reads everything from core->cfg when it needs
     * it, or has nothing that changes.
     */
    int (*reload)(sl_core_t *core, sl_http_server_t *http, void **state,
                  const sl_config_t *old_cfg, const sl_config_t *new_cfg);
} sl_module_t;

/** The built-in modules in start order; NULL-terminated. */
extern const sl_module_t *const sl_builtin_modules[];

#endif
