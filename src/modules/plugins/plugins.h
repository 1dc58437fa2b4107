/*
 * The host of every extension: the built-in modules (sl_builtin_modules,
 * src/modules/modules.c) and the plugins named in sluice.yml, both
 * `sl_plugin_t` descriptors (include/sluice/plugin.h) run through one path.
 * Each goes through the loader's ABI check (src/app/loader.c: a built-in's
 * descriptor as it is, a plugin's after dlopen), receives the same host API
 * table (implemented here on the core's extension points: event bus,
 * admission, HTTP routes, services, timers, the libuv worker pool) and the
 * same lifecycle: init in order (built-ins in table order, then plugins in
 * file order), reload, stop in reverse order, destroy after the loop has
 * closed every handle, then dlclose for a plugin. It also provides the
 * service "rpc" 1.0 (src/app/svc/rpc.h), the registry of RPC method
 * handlers, and "extensions" 1.0 (src/app/svc/extensions.h), the list of
 * what it runs.
 *
 * main.c runs it: sl_plugins_check for --check-config and before any
 * listener opens, sl_plugins_start after the listeners and the API,
 * sl_plugins_reload on SIGHUP and POST /api/v1/server/reload, then
 * sl_plugins_stop and sl_plugins_free at shutdown. Loop thread throughout.
 */
#ifndef SL_MODULES_PLUGINS_H
#define SL_MODULES_PLUGINS_H

#include "modules/module.h"

/** Every running extension (opaque). */
typedef struct sl_plugins sl_plugins_t;

/**
 * The configuration checks of start: each built-in's check, then each
 * plugin entry of cfg loads and passes the ABI check (and is unloaded
 * again: nothing of it runs) and names only apps that exist. Problems go
 * to err (sl_config_report, at the key's file:line). builtins is a
 * NULL-terminated table (sl_builtin_modules). Returns the number of
 * problems.
 */
int sl_plugins_check(const sl_config_t *cfg, const sl_builtin_t *const *builtins,
                     sl_config_err_cb err, void *ud);

/**
 * Starts the extensions: inits each built-in of builtins (NULL-terminated,
 * borrowed for good) in order, registers the services "rpc" and
 * "extensions" (src/app/svc/extensions.h), then inits each plugin of
 * core->cfg. http may be NULL (HTTP off). *out is set as soon as
 * anything was allocated, also on failure: the caller then stops and frees
 * it as after a run (what started is stopped and destroyed, in reverse
 * order). Returns 0, or the error of the first extension that failed (it
 * is logged, naming the extension).
 */
int sl_plugins_start(sl_core_t *core, sl_http_server_t *http, const sl_builtin_t *const *builtins,
                     sl_plugins_t **out);

/**
 * Live reload: core->cfg already points at new_cfg, which passed every
 * check; both configurations stay allocated until exit. Each built-in's
 * reload runs in table order; then the plugins: one whose settings changed
 * and that has a reload callback (ABI 1.1) reads the new settings and its
 * reload runs; any other change of `plugins:` (a plugin added, removed,
 * another path or apps, settings of a plugin without reload) needs a
 * restart (SL_EAGAIN under the name "plugins", nothing changed). Every
 * extension that answered nonzero is passed to report(ud, name, rc) (main
 * logs it and lists it in modules_restart_required). Routes of apps added
 * by a reload appear only after a restart. Returns the number of reports.
 */
int sl_plugins_reload(sl_plugins_t *p, const sl_config_t *old_cfg, const sl_config_t *new_cfg,
                      void (*report)(void *ud, const char *name, int rc), void *ud);

/**
 * Graceful stop, in reverse start order: for each started extension, its
 * host-registered listener, check, timers, RPC methods and routes go, then
 * its stop callback; then "rpc" and "extensions" are unregistered. NULL and a second call
 * are no-ops.
 */
void sl_plugins_stop(sl_plugins_t *p);

/**
 * After the loop has closed every handle: each started extension's destroy
 * (reverse order), each plugin's dlclose, then p itself. NULL is fine.
 */
void sl_plugins_free(sl_plugins_t *p);

/**
 * The state the extension named name returned from init, or NULL (not
 * running, or it keeps none). For tests that reach into a module.
 */
void *sl_plugins_state(sl_plugins_t *p, const char *name);

#endif
