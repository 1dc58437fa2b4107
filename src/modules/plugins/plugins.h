/*
 * The plugins module: the host side of the public plugin ABI
 * (include/sluice/plugin.h, host.h). For every entry of `plugins:` in
 * sluice.yml it loads the shared object through the loader
 * (src/app/loader.c: dlopen, ABI checked both ways), hands it the host API
 * (the function table implemented here, on the core's extension points:
 * event bus, admission, HTTP routes, services, timers, the libuv worker
 * pool), and stops and unloads it at shutdown. It also provides the service
 * "rpc" 1.0 (src/app/svc/rpc.h), the registry of RPC method handlers.
 *
 * Listed last in the module table: plugins start after every built-in
 * module (their listeners and checks come after the built-ins' anyway, in
 * the "plugin" phase) and stop first.
 */
#ifndef SL_MODULES_PLUGINS_H
#define SL_MODULES_PLUGINS_H

#include "modules/module.h"

/** The module (listed in src/modules/modules.c). */
extern const sl_module_t sl_plugins_module;

/**
 * Live reload: sl_plugins_module's reload (sl_module_t.reload, called by
 * main's reload_apply). new_cfg passed every check and both
 * configurations stay allocated until exit. A plugin whose settings
 * changed and that has a reload callback (ABI 1.1) reads the new settings
 * and its reload runs; returns 0, or that callback's error. Any other
 * change of `plugins:` (a plugin added, removed, another path or apps,
 * settings of a plugin without reload) returns SL_EAGAIN with nothing
 * changed: it needs a restart. Routes of apps added by a reload appear
 * only after a restart. Loop thread.
 */
int sl__plugins_reload(sl_core_t *core, sl_http_server_t *http, void **state,
                       const sl_config_t *old_cfg, const sl_config_t *new_cfg);

#endif
